//! Quarantine records written by the hub's stages to `hub.quarantine`.

use chrono::Utc;
use schemas::Domain;
use schemas::codec::Encoder;
use schemas::records::{DataDomain, Provenance, Quarantine, QuarantineStage};

use super::exactly_once::{Input, Output};
use super::metrics::Metrics;
use super::{PipelineError, TopicNames};

/// Why a record goes to quarantine.
pub struct Reason {
    /// The stage that refused it.
    pub stage: QuarantineStage,
    /// Stable error code.
    pub code: String,
    /// The offending field, if one.
    pub field: Option<String>,
    /// Chinese first.
    pub message: String,
    /// Where it came from, if it decoded (boxed: a rejection is the rare path).
    pub provenance: Option<Box<Provenance>>,
}

/// Encodes quarantine records and counts them.
pub struct Quarantiner {
    /// Encoder of the registered quarantine schema.
    pub encoder: Encoder<Quarantine>,
}

impl Quarantiner {
    /// The output quarantining `input` (a record of `domain` read from a hub topic) for
    /// `reason`, keyed by its source position so that a replay can find it; counted in
    /// `hub_records_quarantined_total`.
    pub fn output(
        &self,
        topics: &TopicNames,
        domain: Domain,
        input: &Input,
        reason: Reason,
        metrics: &Metrics,
    ) -> Result<Output, PipelineError> {
        metrics
            .quarantined
            .with_label_values(&[domain.as_str(), reason.stage.as_str(), &reason.code])
            .inc();
        metrics
            .records_out
            .with_label_values(&[domain.as_str(), "quarantined"])
            .inc();
        let record = Quarantine {
            stage: reason.stage,
            error_code: reason.code,
            message: reason.message,
            field: reason.field,
            domain: Some(DataDomain::from(domain)),
            provenance: reason.provenance.map(|p| *p),
            source_topic: Some(input.topic.clone()),
            source_partition: Some(input.partition),
            source_offset: Some(input.offset),
            source_location: None,
            original_key: input.key.clone(),
            original_value: input.payload.clone(),
            quarantined_at: Utc::now(),
        };
        Ok(Output {
            topic: topics.quarantine(),
            partition: None,
            key: format!("{}/{}/{}", input.topic, input.partition, input.offset),
            payload: Some(self.encoder.encode(&record)?),
        })
    }
}
