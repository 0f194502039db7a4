//! Replaying quarantined records (隔离记录重放): once the cause of a quarantine is fixed (a unit
//! added to `units.toml`, a division code to the table, a defect mended), an operator sends
//! the records back to the topic they came from, byte for byte, and the pipeline takes them
//! again. A replayed record is a new input: it is counted again and gets an outcome again, so
//! the reconciliation still balances; a record replayed twice resolves as unchanged.
//!
//! Records a connector quarantined (stage `INGEST`) have no source topic: their cause is in the
//! source system or the connector's mapping, and they come back by re-reading the source.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use schemas::codec::Decoder;
use schemas::records::{Quarantine, QuarantineStage};
use schemas::registry::RegistryClient;
use schemas::{ClientSettings, Domain};
use serde::{Deserialize, Serialize};

use super::{PipelineError, TopicNames};

/// Which quarantined records to replay; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayFilter {
    /// Only records with this error code (e.g. `unit_unknown`).
    #[serde(default)]
    pub error_code: Option<String>,
    /// Only records of this domain.
    #[serde(default)]
    pub domain: Option<Domain>,
    /// Only records quarantined by this stage (e.g. `VALIDATE`).
    #[serde(default)]
    pub stage: Option<QuarantineStage>,
}

impl ReplayFilter {
    fn matches(&self, q: &Quarantine) -> bool {
        self.error_code.as_ref().is_none_or(|c| *c == q.error_code)
            && self
                .domain
                .is_none_or(|d| q.domain.map(Domain::from) == Some(d))
            && self.stage.is_none_or(|s| s == q.stage)
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    /// Quarantined records read.
    pub examined: u64,
    /// Records sent back to their source topics.
    pub replayed: u64,
    /// Matching records that cannot be replayed (quarantined by a connector, or without
    /// their original bytes).
    pub not_replayable: u64,
}

/// Sends every quarantined record matching `filter` back to its source topic, in one Kafka
/// transaction. Blocks.
pub fn replay(
    settings: &ClientSettings,
    topics: &TopicNames,
    registry: Arc<RegistryClient>,
    runtime: &tokio::runtime::Handle,
    transactional_id: &str,
    filter: &ReplayFilter,
) -> Result<ReplaySummary, PipelineError> {
    let decoder = Decoder::<Quarantine>::new(registry);
    let mut summary = ReplaySummary::default();
    let mut chosen: Vec<(String, Option<Vec<u8>>, Vec<u8>)> = Vec::new();
    let mut failed = None;
    schemas::kafka::read_to_end(
        settings,
        &topics.quarantine(),
        None,
        Duration::from_secs(60),
        |_, _, value| {
            let Some(value) = value else { return };
            summary.examined += 1;
            let decoded = match decoder.try_decode_cached(value) {
                Ok(Some(q)) => Ok(q),
                Ok(None) => runtime.block_on(decoder.decode(value)),
                Err(e) => Err(e),
            };
            let q = match decoded {
                Ok(q) => q,
                Err(e) => {
                    failed.get_or_insert(e);
                    return;
                }
            };
            if !filter.matches(&q) {
                return;
            }
            match (q.source_topic, q.original_value) {
                (Some(topic), Some(value)) => chosen.push((topic, q.original_key, value)),
                _ => summary.not_replayable += 1,
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if chosen.is_empty() {
        return Ok(summary);
    }
    let producer: ThreadedProducer<DefaultProducerContext> = settings
        .client_config()
        .set("transactional.id", transactional_id)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create()?;
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout)?;
    producer.begin_transaction()?;
    let sent = chosen.iter().try_for_each(|(topic, key, value)| {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        producer.send(record).map_err(|(e, _)| e)
    });
    let acknowledged =
        sent.and_then(|()| schemas::kafka::await_acknowledgements(&producer, timeout));
    match acknowledged.and_then(|()| producer.commit_transaction(timeout)) {
        Ok(()) => {
            summary.replayed = chosen.len() as u64;
            tracing::info!(
                replayed = summary.replayed,
                ?filter,
                "quarantined records replayed"
            );
            Ok(summary)
        }
        Err(e) => {
            let _ = producer.abort_transaction(timeout);
            Err(e.into())
        }
    }
}

/// `POST /quarantine/replay` with a JSON [`ReplayFilter`] (`{}` replays everything
/// replayable): answers the [`ReplaySummary`]. Every replica uses the same `transactional_id`,
/// so two replays at once do not interleave: the later one fences the earlier, which fails.
pub fn router(
    settings: ClientSettings,
    topics: TopicNames,
    registry: Arc<RegistryClient>,
    transactional_id: String,
) -> axum::Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    axum::Router::new().route(
        "/quarantine/replay",
        axum::routing::post(move |axum::Json(filter): axum::Json<ReplayFilter>| {
            let (settings, topics, registry, id) = (
                settings.clone(),
                topics.clone(),
                registry.clone(),
                transactional_id.clone(),
            );
            async move {
                let runtime = tokio::runtime::Handle::current();
                let done = tokio::task::spawn_blocking(move || {
                    replay(&settings, &topics, registry, &runtime, &id, &filter)
                })
                .await;
                match done {
                    Ok(Ok(summary)) => axum::Json(summary).into_response(),
                    Ok(Err(e)) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(serde_json::json!({
                            "error_code": e.code(),
                            "message": format!("重放失败，请稍后重试 (the replay failed; retry later): {e}"),
                        })),
                    )
                        .into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use schemas::records::DataDomain;

    #[test]
    fn filters_match_every_given_field() {
        let q = Quarantine {
            stage: QuarantineStage::Normalise,
            error_code: "unit_unknown".to_owned(),
            message: String::new(),
            field: None,
            domain: Some(DataDomain::from(Domain::Vehicle)),
            provenance: None,
            source_topic: Some("raw.vehicle".to_owned()),
            source_partition: Some(0),
            source_offset: Some(7),
            source_location: None,
            original_key: None,
            original_value: Some(vec![0]),
            quarantined_at: Utc::now(),
        };
        let code = |c: &str| ReplayFilter {
            error_code: Some(c.to_owned()),
            ..ReplayFilter::default()
        };
        let cases = [
            (ReplayFilter::default(), true),
            (code("unit_unknown"), true),
            (code("uscc_check_character"), false),
            (
                ReplayFilter {
                    domain: Some(Domain::Vehicle),
                    stage: Some(QuarantineStage::Normalise),
                    ..code("unit_unknown")
                },
                true,
            ),
            (
                ReplayFilter {
                    domain: Some(Domain::Institution),
                    ..ReplayFilter::default()
                },
                false,
            ),
        ];
        for (filter, want) in cases {
            assert_eq!(filter.matches(&q), want, "{filter:?}");
        }
    }
}
