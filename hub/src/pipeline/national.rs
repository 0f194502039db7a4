//! National records of every domain in their JSON form: decoded from, and encoded to, the
//! Confluent-framed Avro of `national.<domain>.v1` and the repartition topics. Resolution
//! works on the JSON form, so one code path serves all eight domains.

use std::collections::HashMap;
use std::sync::Arc;

use schemas::Domain;
use schemas::codec::{CodecError, Decoder, Encoder};
use schemas::contract::Record;
use schemas::records::{
    NationalAssetCard, NationalEnergyReport, NationalInstitution, NationalOfficeBuilding,
    NationalOperatingCost, NationalVehicle, NationalVehiclePosition, NationalVehicleQuota,
    Provenance,
};
use schemas::registry::RegistryClient;
use serde_json::{Map, Value};

/// Why a national record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NationalError {
    /// The bytes are not a record of the domain's national schema.
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// The JSON form does not fit the domain's national record.
    #[error("国家标准记录结构不符 (the record does not fit the national schema): {0}")]
    Shape(#[from] serde_json::Error),
}

impl NationalError {
    /// A stable code for quarantine records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            NationalError::Codec(e) => e.code(),
            NationalError::Shape(_) => "national_shape",
        }
    }
}

/// A national record's contributions and warnings, taken out typed: resolution reads them as
/// they are, and only the values need the JSON form.
pub(crate) trait Envelope {
    fn take_envelope(&mut self) -> (Vec<Provenance>, Vec<String>);
}

macro_rules! envelope {
    ($($national:ty),*) => {
        $(impl Envelope for $national {
            fn take_envelope(&mut self) -> (Vec<Provenance>, Vec<String>) {
                (
                    std::mem::take(&mut self.contributions),
                    std::mem::take(&mut self.warnings),
                )
            }
        })*
    };
}

envelope!(
    NationalAssetCard,
    NationalEnergyReport,
    NationalInstitution,
    NationalOfficeBuilding,
    NationalOperatingCost,
    NationalVehicle,
    NationalVehiclePosition,
    NationalVehicleQuota
);

/// A national record read as the report of one source: its values in JSON form, its
/// contributions and its warnings.
pub type ReportParts = (Map<String, Value>, Vec<Provenance>, Vec<String>);

/// A national record holding one report, as resolution reads it: what [`NationalCodecs::decode`]
/// gives for the record's framed form, without the Avro round trip.
pub(crate) fn into_parts<T: serde::Serialize + Envelope>(
    mut record: T,
) -> Result<ReportParts, NationalError> {
    let (contributions, warnings) = record.take_envelope();
    match serde_json::to_value(record)? {
        Value::Object(map) => Ok((map, contributions, warnings)),
        _ => unreachable!("records serialise to JSON objects"),
    }
}

trait JsonCodec: Send + Sync {
    fn decode(
        &self,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<ReportParts, NationalError>;
    fn encode(&self, record: Map<String, Value>) -> Result<Vec<u8>, NationalError>;
    fn schema_id(&self) -> u32;
}

struct Typed<T: Record> {
    decoder: Decoder<T>,
    encoder: Encoder<T>,
}

impl<T: Record + Envelope + Send + Sync> JsonCodec for Typed<T> {
    fn decode(
        &self,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<ReportParts, NationalError> {
        let record = match self.decoder.try_decode_cached(bytes)? {
            Some(record) => record,
            // A schema id not seen yet: ask the registry once.
            None => runtime.block_on(self.decoder.decode(bytes))?,
        };
        into_parts(record)
    }

    fn encode(&self, record: Map<String, Value>) -> Result<Vec<u8>, NationalError> {
        let typed: T = serde_json::from_value(Value::Object(record))?;
        Ok(self.encoder.encode(&typed)?)
    }

    fn schema_id(&self) -> u32 {
        self.encoder.schema_id()
    }
}

/// Codecs of every domain's national record.
#[derive(Clone)]
pub struct NationalCodecs(Arc<HashMap<Domain, Box<dyn JsonCodec>>>);

impl NationalCodecs {
    /// Registers every national schema and builds its codec.
    pub async fn register(registry: Arc<RegistryClient>) -> Result<Self, CodecError> {
        async fn typed<T: Record + Envelope + Send + Sync + 'static>(
            registry: &Arc<RegistryClient>,
        ) -> Result<Box<dyn JsonCodec>, CodecError> {
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

    fn codec(&self, domain: Domain) -> &dyn JsonCodec {
        self.0
            .get(&domain)
            .map(Box::as_ref)
            .expect("every domain has a codec")
    }

    /// A framed national record of `domain` as the report of one source: its values in JSON
    /// form (contributions and warnings emptied), its contributions and its warnings. Blocks
    /// on the registry the first time a schema id is seen.
    pub fn decode(
        &self,
        domain: Domain,
        bytes: &[u8],
        runtime: &tokio::runtime::Handle,
    ) -> Result<ReportParts, NationalError> {
        self.codec(domain).decode(bytes, runtime)
    }

    /// The framed national record of `domain` from its JSON form.
    pub fn encode(
        &self,
        domain: Domain,
        record: Map<String, Value>,
    ) -> Result<Vec<u8>, NationalError> {
        self.codec(domain).encode(record)
    }
}
