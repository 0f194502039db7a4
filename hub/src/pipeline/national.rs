//! National records of every domain: decoded from, and encoded to, the Confluent-framed Avro of
//! `national.<domain>.v1` and the repartition topics. Resolution holds a report's values
//! packed ([`Values::Packed`]: the typed record, envelope cleared, as named MessagePack) and
//! merges in their JSON form, so one code path serves all eight domains while the common
//! cases never build the JSON form.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::DateTime;
use schemas::Domain;
use schemas::codec::{CodecError, Decoder, Encoder};
use schemas::contract::Record;
use schemas::records::{
    NationalAssetCard, NationalEnergyReport, NationalInstitution, NationalOfficeBuilding,
    NationalOperatingCost, NationalVehicle, NationalVehiclePosition, NationalVehicleQuota,
    Provenance,
};
use schemas::registry::RegistryClient;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::stages::resolve::{ENVELOPE, Publication, Unpack, UnpackError, Values};

/// Why a national record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NationalError {
    /// The bytes are not a record of the domain's national schema.
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// The JSON form does not fit the domain's national record.
    #[error("国家标准记录结构不符 (the record does not fit the national schema): {0}")]
    Shape(#[from] serde_json::Error),
    /// The record does not pack, or packed values do not read as the domain's record.
    #[error("国家标准记录无法打包 (the record does not pack): {0}")]
    Packed(String),
}

impl NationalError {
    /// A stable code for quarantine records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            NationalError::Codec(e) => e.code(),
            NationalError::Shape(_) => "national_shape",
            NationalError::Packed(_) => "national_packed",
        }
    }
}

/// The fields of a national record that resolution sets rather than compares.
pub(crate) trait Envelope {
    /// Takes the contributions and warnings out and clears the rest of the envelope (conflicts,
    /// revision, update time), so that what remains are the report's values alone: two
    /// reports saying the same pack to the same bytes.
    fn take_envelope(&mut self) -> (Vec<Provenance>, Vec<String>);
    /// Sets the envelope of a record to publish from its publication (whose values the
    /// record already holds).
    fn set_envelope(&mut self, publication: Publication);
}

/// [`Envelope`] for national records; those with a revision and an update time name both
/// fields (stream records have neither: each point is published once).
macro_rules! envelope {
    ($($national:ty $(: $revision:ident, $updated_at:ident)?);* $(;)?) => {
        $(impl Envelope for $national {
            fn take_envelope(&mut self) -> (Vec<Provenance>, Vec<String>) {
                self.conflicts.clear();
                $(
                    self.$revision = 0;
                    self.$updated_at = DateTime::UNIX_EPOCH;
                )?
                (
                    std::mem::take(&mut self.contributions),
                    std::mem::take(&mut self.warnings),
                )
            }
            fn set_envelope(&mut self, publication: Publication) {
                let merged = publication.merged;
                self.entity_id = merged.entity_id;
                self.contributions = merged.contributions;
                self.conflicts = merged.conflicts;
                self.warnings = merged.warnings;
                $(
                    self.$revision = publication.revision;
                    self.$updated_at = publication.updated_at;
                )?
            }
        })*
    };
}

envelope!(
    NationalAssetCard: revision, updated_at;
    NationalEnergyReport: revision, updated_at;
    NationalInstitution: revision, updated_at;
    NationalOfficeBuilding: revision, updated_at;
    NationalOperatingCost: revision, updated_at;
    NationalVehicle: revision, updated_at;
    NationalVehicleQuota: revision, updated_at;
    NationalVehiclePosition;
);

/// A national record read as the report of one source: its values packed, its contributions
/// and its warnings.
pub type ReportParts = (Values, Vec<Provenance>, Vec<String>);

/// A national record holding one report, as resolution reads it: what [`NationalCodecs`]
/// gives for the record's framed form, without the Avro round trip.
pub(crate) fn into_parts<T: Serialize + Envelope>(
    mut record: T,
) -> Result<ReportParts, NationalError> {
    let (contributions, warnings) = record.take_envelope();
    // Named: the bytes live in states for as long as an entity does, and a field added to the
    // record (the registry allows it anywhere, with a default) must not shift the others.
    // Sized for a typical record: growing the buffer field by field cost more than packing.
    let mut packed = Vec::with_capacity(1024);
    rmp_serde::encode::write_named(&mut packed, &record)
        .map_err(|e| NationalError::Packed(e.to_string()))?;
    Ok((Values::Packed(packed), contributions, warnings))
}

fn unpacked<T: DeserializeOwned>(packed: &[u8]) -> Result<T, NationalError> {
    rmp_serde::from_slice(packed).map_err(|e| NationalError::Packed(e.to_string()))
}

/// A domain's national record codec; as [`Unpack`], it reads the domain's packed values.
trait Codec: Unpack + Send + Sync {
    fn decode(
        &self,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<Map<String, Value>, NationalError>;
    fn decode_report(
        &self,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<ReportParts, NationalError>;
    fn encode(&self, publication: Publication) -> Result<Vec<u8>, NationalError>;
    fn schema_id(&self) -> u32;
}

struct Typed<T: Record> {
    decoder: Decoder<T>,
    encoder: Encoder<T>,
}

impl<T: Record> Typed<T> {
    fn read(&self, bytes: &[u8], runtime: &tokio::runtime::Handle) -> Result<T, NationalError> {
        Ok(match self.decoder.try_decode_cached(bytes)? {
            Some(record) => record,
            // A schema id not seen yet: ask the registry once.
            None => runtime.block_on(self.decoder.decode(bytes))?,
        })
    }
}

/// The JSON form of a record, as an object.
fn json_form<T: Serialize>(record: &T) -> Result<Map<String, Value>, NationalError> {
    match serde_json::to_value(record)? {
        Value::Object(map) => Ok(map),
        _ => unreachable!("records serialise to JSON objects"),
    }
}

impl<T: Record + Envelope + Send + Sync> Unpack for Typed<T> {
    fn unpack(&self, packed: &[u8]) -> Result<Map<String, Value>, UnpackError> {
        let mut values = unpacked::<T>(packed)
            .and_then(|record| json_form(&record))
            .map_err(|e| UnpackError(e.to_string()))?;
        for field in ENVELOPE {
            values.remove(field);
        }
        Ok(values)
    }
}

impl<T: Record + Envelope + Send + Sync> Codec for Typed<T> {
    fn decode(
        &self,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<Map<String, Value>, NationalError> {
        json_form(&self.read(bytes, runtime)?)
    }

    fn decode_report(
        &self,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<ReportParts, NationalError> {
        into_parts(self.read(bytes, runtime)?)
    }

    fn encode(&self, publication: Publication) -> Result<Vec<u8>, NationalError> {
        let record: T = if let Values::Packed(packed) = &publication.merged.values {
            // Values no merge changed (a first report, identical relays): typed all the way.
            let mut record: T = unpacked(packed)?;
            record.set_envelope(publication);
            record
        } else {
            let record = publication
                .into_record(self)
                .map_err(|e| NationalError::Packed(e.to_string()))?;
            serde_json::from_value(Value::Object(record))?
        };
        Ok(self.encoder.encode(&record)?)
    }

    fn schema_id(&self) -> u32 {
        self.encoder.schema_id()
    }
}

/// Codecs of every domain's national record.
#[derive(Clone)]
pub struct NationalCodecs(Arc<HashMap<Domain, Box<dyn Codec>>>);

impl NationalCodecs {
    /// Registers every national schema and builds its codec.
    pub async fn register(registry: Arc<RegistryClient>) -> Result<Self, CodecError> {
        async fn typed<T: Record + Envelope + Send + Sync + 'static>(
            registry: &Arc<RegistryClient>,
        ) -> Result<Box<dyn Codec>, CodecError> {
            Ok(Box::new(Typed::<T> {
                decoder: Decoder::new(registry.clone()),
                encoder: Encoder::register(registry).await?,
            }))
        }
        let mut codecs = HashMap::new();
        for domain in Domain::ALL {
            let codec = match domain {
                Domain::Institution => typed::<NationalInstitution>(&registry).await?,
                Domain::Vehicle => typed::<NationalVehicle>(&registry).await?,
                Domain::VehiclePosition => typed::<NationalVehiclePosition>(&registry).await?,
                Domain::VehicleQuota => typed::<NationalVehicleQuota>(&registry).await?,
                Domain::OfficeBuilding => typed::<NationalOfficeBuilding>(&registry).await?,
                Domain::EnergyReport => typed::<NationalEnergyReport>(&registry).await?,
                Domain::AssetCard => typed::<NationalAssetCard>(&registry).await?,
                Domain::OperatingCost => typed::<NationalOperatingCost>(&registry).await?,
            };
            codecs.insert(domain, codec);
        }
        Ok(NationalCodecs(Arc::new(codecs)))
    }

    /// The registry's id of `domain`'s national schema, as registered at start-up.
    pub fn schema_id(&self, domain: Domain) -> u32 {
        self.codec(domain).schema_id()
    }

    fn codec(&self, domain: Domain) -> &dyn Codec {
        self.0
            .get(&domain)
            .map(Box::as_ref)
            .expect("every domain has a codec")
    }

    /// The JSON form of a framed national record of `domain`. Blocks on the registry the first
    /// time a schema id is seen.
    pub fn decode(
        &self,
        domain: Domain,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<Map<String, Value>, NationalError> {
        self.codec(domain).decode(bytes, runtime)
    }

    /// A framed national record of `domain` holding one report, as resolution reads it: its
    /// values packed, its contributions and its warnings. Blocks on the registry the first
    /// time a schema id is seen.
    pub fn decode_report(
        &self,
        domain: Domain,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<ReportParts, NationalError> {
        self.codec(domain).decode_report(bytes, runtime)
    }

    /// Reads `domain`'s packed values.
    pub fn unpacker(&self, domain: Domain) -> &dyn Unpack {
        self.codec(domain)
    }

    /// The framed national record of a publication of `domain`.
    pub fn encode(
        &self,
        domain: Domain,
        publication: Publication,
    ) -> Result<Vec<u8>, NationalError> {
        self.codec(domain).encode(publication)
    }
}

#[cfg(test)]
mod tests {
    use schemas::contract::{self, SchemaName};

    use super::*;
    use crate::stages::key::Keyed;
    use crate::stages::resolve::Merged;
    use crate::stages::tests as fixtures;
    use crate::stages::{self, Stage};

    /// The codec of `T` without a registry: its schema preloaded under id 7.
    fn offline<T: Record + Envelope + Send + Sync>() -> Typed<T> {
        let registry = RegistryClient::new("http://127.0.0.1:9/unused").expect("client");
        let decoder = Decoder::new(Arc::new(registry));
        let SchemaName::National(_) = T::SCHEMA else {
            panic!("a national record");
        };
        decoder
            .preload(7, contract::schema_json(T::SCHEMA))
            .expect("preload");
        Typed {
            decoder,
            encoder: Encoder::with_schema_id(7).expect("encoder"),
        }
    }

    /// A domain's valid raw record, prepared: packed, unpacked to the JSON form, published
    /// from either form to the same bytes, and packed again to the same bytes after the
    /// repartition topic's round trip (so a report resolved where it was read and one that
    /// came through the topic compare equal byte for byte).
    fn round_trip<R>(raw: R)
    where
        R: Stage,
        R::National: Record + Envelope + Keyed + Send + Sync + Clone,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let codec = offline::<R::National>();
        let mut record = stages::process(raw, fixtures::rules())
            .expect("a valid record")
            .record;
        record.assign_key().expect("keyed");
        let entity_id = record.entity_id().to_owned();
        let mut json = json_form(&record).expect("JSON");
        for field in ENVELOPE {
            json.remove(field);
        }
        let (values, contributions, warnings) = into_parts(record).expect("packs");
        let Values::Packed(packed) = &values else {
            panic!("prepared reports are packed");
        };
        assert_eq!(codec.unpack(packed).expect("unpacks"), json, "unpacked");
        let publication = |values: Values| Publication {
            merged: Merged {
                entity_id: entity_id.clone(),
                values,
                contributions: contributions.clone(),
                conflicts: Vec::new(),
                warnings: warnings.clone(),
            },
            revision: 3,
            updated_at: "2025-03-28T02:00:00.123Z".parse().expect("time"),
        };
        let from_packed = codec
            .encode(publication(values.clone()))
            .expect("publishes packed");
        let from_json = codec
            .encode(publication(Values::Json(json)))
            .expect("publishes from JSON");
        assert_eq!(from_packed, from_json, "the same record either way");
        let (again, listed, _) = codec
            .decode_report(&from_packed, runtime.handle())
            .expect("decodes");
        assert_eq!(again, values, "packed again to the same bytes");
        assert_eq!(listed, contributions);
    }

    #[test]
    fn reports_pack_and_publish_alike_in_every_domain() {
        round_trip(fixtures::institution());
        round_trip(fixtures::vehicle());
        round_trip(fixtures::position());
        round_trip(fixtures::quota());
        round_trip(fixtures::building());
        round_trip(fixtures::energy());
        round_trip(fixtures::asset());
        round_trip(fixtures::cost());
    }
}
