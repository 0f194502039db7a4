//! Quarantine records written by the hub's stages to `hub.quarantine`.

use schemas::Domain;
use schemas::codec::Encoder;
use schemas::records::Quarantine;

use super::exactly_once::Output;
use super::metrics::Metrics;
use super::{PipelineError, TopicNames};

/// Encodes quarantine records and counts them.
pub struct Quarantiner {
    /// Encoder of the registered quarantine schema.
    pub encoder: Encoder<Quarantine>,
}

impl Quarantiner {
    /// The output carrying `record`, keyed by its source position so that a replay can find
    /// it; counted in `hub_records_quarantined_total`.
    pub fn output(
        &self,
        topics: &TopicNames,
        record: Quarantine,
        metrics: &Metrics,
    ) -> Result<Output, PipelineError> {
        let domain = record
            .domain
            .map_or("unknown", |d| Domain::from(d).as_str());
        metrics
            .quarantined
            .with_label_values(&[domain, record.stage.as_str(), &record.error_code])
            .inc();
        metrics
            .records_out
            .with_label_values(&[domain, "quarantined"])
            .inc();
        let key = format!(
            "{}/{}/{}",
            record.source_topic.as_deref().unwrap_or_default(),
            record.source_partition.unwrap_or_default(),
            record.source_offset.unwrap_or_default()
        );
        Ok(Output {
            topic: topics.quarantine(),
            partition: None,
            key,
            payload: Some(self.encoder.encode(&record)?),
        })
    }
}
