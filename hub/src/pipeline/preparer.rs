//! The prepare step of the hub's stage: decode → validate → normalise → key
//! ([`crate::stages`]) of a raw record of any domain, giving the report in national form, or
//! the reason to quarantine it. A report resolved where it is read is handed over as the parts
//! resolution reads; one for another thread is framed as the repartition topic carries it, and
//! decodes there to the same parts, its values packed to the same bytes (tested per domain in
//! `national`).

use std::collections::HashMap;
use std::sync::Arc;

use schemas::Domain;
use schemas::codec::{Decoder, Encoder};
use schemas::contract::Record;
use schemas::records::{
    QuarantineStage, RawAssetCard, RawEnergyReport, RawInstitution, RawOfficeBuilding,
    RawOperatingCost, RawVehicle, RawVehiclePosition, RawVehicleQuota,
};
use schemas::registry::RegistryClient;

use super::national::{self, Envelope, NationalCodecs, ReportParts};
use super::quarantine::Reason;
use crate::stages::key::Keyed;
use crate::stages::{self, Rules};

/// A report ready for resolution.
pub struct Prepared {
    /// Its entity id: the repartition topic's key.
    pub entity_id: String,
    /// The reporter's region, for the accounting.
    pub region: String,
    /// The national record holding this one report, in the form its resolver needs.
    pub report: PreparedReport,
}

/// The national record holding one report.
pub enum PreparedReport {
    /// For resolution in this thread.
    Parts(ReportParts),
    /// Framed, for the repartition topic.
    Framed(Vec<u8>),
}

trait DomainStages: Send + Sync {
    fn prepare(
        &self,
        bytes: &[u8],
        rules: &Rules,
        runtime: &tokio::runtime::Handle,
        here: &dyn Fn(&str) -> bool,
    ) -> Result<Prepared, Reason>;
}

struct Typed<R>
where
    R: stages::Stage + Record,
    R::National: Record,
{
    decoder: Decoder<R>,
    encoder: Encoder<R::National>,
}

impl<R> DomainStages for Typed<R>
where
    R: stages::Stage + Record + Send + Sync,
    R::National: Record + Keyed + Envelope + Send + Sync,
{
    fn prepare(
        &self,
        bytes: &[u8],
        rules: &Rules,
        runtime: &tokio::runtime::Handle,
        here: &dyn Fn(&str) -> bool,
    ) -> Result<Prepared, Reason> {
        let decoded = match self.decoder.try_decode_cached(bytes) {
            Ok(Some(raw)) => Ok(raw),
            // A schema id not seen yet: ask the registry once.
            Ok(None) => runtime.block_on(self.decoder.decode(bytes)),
            Err(e) => Err(e),
        };
        let raw = decoded.map_err(|e| Reason {
            stage: QuarantineStage::Decode,
            code: e.code().to_owned(),
            field: None,
            message: format!("无法解码原始记录 (the raw record does not decode): {e}"),
            provenance: None,
        })?;
        let provenance = raw.provenance().clone();
        let rejected = |stage, code: &str, field: &str, message: String| Reason {
            stage,
            code: code.to_owned(),
            field: (!field.is_empty()).then(|| field.to_owned()),
            message,
            provenance: Some(Box::new(provenance.clone())),
        };
        let mut accepted = stages::process(raw, rules)
            .map_err(|r| rejected(r.stage, r.error_code(), r.field(), r.message()))?;
        accepted
            .record
            .assign_key()
            .map_err(|f| rejected(f.stage, f.code, &f.field, f.message))?;
        let entity_id = accepted.record.entity_id().to_owned();
        let unfit =
            |code: &str, message: String| rejected(QuarantineStage::Normalise, code, "", message);
        let report = if here(&entity_id) {
            PreparedReport::Parts(national::into_parts(accepted.record).map_err(|e| {
                unfit(
                    e.code(),
                    format!("标准化记录结构不符 (the national form does not fit): {e}"),
                )
            })?)
        } else {
            PreparedReport::Framed(self.encoder.encode(&accepted.record).map_err(|e| {
                unfit(
                    e.code(),
                    format!("标准化记录无法编码 (the national form does not encode): {e}"),
                )
            })?)
        };
        Ok(Prepared {
            entity_id,
            region: provenance.reporter_region_code,
            report,
        })
    }
}

/// The raw decoders and national encoders of every domain.
#[derive(Clone)]
pub struct RawCodecs(Arc<HashMap<Domain, Box<dyn DomainStages>>>);

impl RawCodecs {
    /// The domains' stages, writing national records under the schema ids `national`
    /// registered (the repartition topics carry national records).
    pub fn new(
        registry: Arc<RegistryClient>,
        national: &NationalCodecs,
    ) -> Result<Self, schemas::codec::CodecError> {
        fn typed<R>(
            registry: &Arc<RegistryClient>,
            schema_id: u32,
        ) -> Result<Box<dyn DomainStages>, schemas::codec::CodecError>
        where
            R: stages::Stage + Record + Send + Sync + 'static,
            R::National: Record + Keyed + Envelope + Send + Sync + 'static,
        {
            Ok(Box::new(Typed::<R> {
                decoder: Decoder::new(registry.clone()),
                encoder: Encoder::with_schema_id(schema_id)?,
            }))
        }
        let mut by_domain = HashMap::new();
        for domain in Domain::ALL {
            let id = national.schema_id(domain);
            let stages = match domain {
                Domain::Institution => typed::<RawInstitution>(&registry, id)?,
                Domain::Vehicle => typed::<RawVehicle>(&registry, id)?,
                Domain::VehiclePosition => typed::<RawVehiclePosition>(&registry, id)?,
                Domain::VehicleQuota => typed::<RawVehicleQuota>(&registry, id)?,
                Domain::OfficeBuilding => typed::<RawOfficeBuilding>(&registry, id)?,
                Domain::EnergyReport => typed::<RawEnergyReport>(&registry, id)?,
                Domain::AssetCard => typed::<RawAssetCard>(&registry, id)?,
                Domain::OperatingCost => typed::<RawOperatingCost>(&registry, id)?,
            };
            by_domain.insert(domain, stages);
        }
        Ok(RawCodecs(Arc::new(by_domain)))
    }

    /// Decode → validate → normalise → key for one raw record of `domain`; `here` tells from
    /// the entity id whether the report is resolved in this thread.
    pub fn prepare(
        &self,
        domain: Domain,
        bytes: &[u8],
        rules: &Rules,
        runtime: &tokio::runtime::Handle,
        here: &dyn Fn(&str) -> bool,
    ) -> Result<Prepared, Reason> {
        self.0
            .get(&domain)
            .expect("every domain has its stages")
            .prepare(bytes, rules, runtime, here)
    }
}
