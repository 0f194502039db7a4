//! One source instance: reads its system, maps each record, and stages records, quarantined
//! records and progress together in its slot's transaction. Every source record ends in exactly one of
//! two places: its raw topic or the quarantine topic.

use std::num::NonZeroUsize;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock};

use chrono::Utc;
use rdkafka::error::KafkaError;
use schemas::codec::{CodecError, Encoder};
use schemas::records::{DataDomain, Quarantine, QuarantineStage, ReportingLevel};
use schemas::registry::RegistryClient;
use serde_json::{Value, json};

use crate::config::{ConnectorConfig, ErrorsTolerance, InstanceConfig};
use crate::limits::Limits;
use crate::mapping::{self, SourceRecord};
use crate::outcomes::Counts;
use crate::raw::RawEncoder;
use crate::slot::Stage;
use crate::transactor::Outgoing;

/// Why an instance stopped working; a record-level problem is never one of these (it goes to
/// quarantine).
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Kafka refused a transaction or could not be reached.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A topic the connector needs could not be created.
    #[error("kafka topics: {0}")]
    Topics(#[from] schemas::KafkaError),
    /// The Schema Registry could not register a schema.
    #[error("schema registry: {0}")]
    Schema(#[from] CodecError),
    /// The Schema Registry URL is unusable.
    #[error("schema registry: {0}")]
    Registry(#[from] schemas::registry::RegistryError),
    /// The source could not be read (folder missing, permissions…).
    #[error("reading the source: {0}")]
    Source(#[from] std::io::Error),
    /// The source system answered with an error or nothing usable, after retries.
    #[error("source system: {0}")]
    SourceSystem(String),
    /// The source sent something the connector refuses to go past (a paging cycle, an
    /// oversize page): the instance stays failed, with `code`, until the system is fixed.
    #[error("{message}")]
    Refused {
        /// Stable code, e.g. `cursor_cycle`, `page_too_large`.
        code: &'static str,
        /// Chinese first, naming what was refused.
        message: String,
    },
    /// The poll panicked (a bug): caught, reported, and retried like any failed poll.
    #[error("internal error (panic): {0}")]
    Panicked(String),
    /// A sample (`connector validate --sample`) has all it asked for: the poll ends, nothing
    /// was written.
    #[error("the sample is complete")]
    Sampled,
    /// The stored progress does not fit this source kind.
    #[error("stored progress is unreadable: {0}")]
    Progress(serde_json::Error),
}

impl InstanceError {
    /// A stable code for metrics and the management API.
    pub fn code(&self) -> &'static str {
        match self {
            InstanceError::Kafka(_) => "kafka",
            InstanceError::Topics(_) => "kafka_topics",
            InstanceError::Schema(_) | InstanceError::Registry(_) => "schema_registry",
            InstanceError::Source(_) => "source_io",
            InstanceError::SourceSystem(_) => "source_system",
            InstanceError::Refused { code, .. } => code,
            InstanceError::Progress(_) => "progress",
            InstanceError::Panicked(_) => "panic",
            InstanceError::Sampled => "sampled",
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Source records read.
    pub read: u64,
    /// Raw records written.
    pub written: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Records skipped as identical to one committed before.
    pub skipped: u64,
    /// How far the source was ahead when the poll began — the age of the oldest change not yet
    /// read (zero when there was none) — where the source kind can tell.
    pub lag: Option<std::time::Duration>,
}

/// The registry ids of the schemas an instance writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaIds {
    /// Id of the domain's raw schema.
    pub raw: u32,
    /// Id of the quarantine schema.
    pub quarantine: u32,
}

/// Where the instance writes and who it is.
pub(crate) struct Context<'a> {
    pub(crate) config: &'a InstanceConfig,
    connector_id: &'a str,
    topic: String,
    quarantine_topic: &'a str,
    raw: &'a RawEncoder,
    quarantine: &'a Encoder<Quarantine>,
    /// What one input may cost.
    pub(crate) limits: &'a Limits,
    /// Set when the process stops: long waits end early.
    pub(crate) stop: &'a AtomicBool,
}

/// A source instance: its configuration and encoders. Its progress and transactions belong to
/// the task slot it runs in ([`crate::slot`]).
pub struct Instance {
    config: InstanceConfig,
    connector_id: String,
    quarantine_topic: String,
    raw: RawEncoder,
    quarantine: Encoder<Quarantine>,
    limits: Limits,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
}

impl Instance {
    /// Registers the schemas the instance writes with and returns their ids.
    pub async fn register(
        config: &InstanceConfig,
        registry: &RegistryClient,
    ) -> Result<SchemaIds, InstanceError> {
        let raw = RawEncoder::register(config.domain, registry)
            .await?
            .schema_id();
        Ok(SchemaIds {
            raw,
            quarantine: Encoder::<Quarantine>::register(registry).await?.schema_id(),
        })
    }

    /// The instance, with encoders for the registered schema `ids`. Waits inside a poll (retry
    /// backoff) end early once `stop` is set; the poll then fails without committing, and
    /// nothing is lost.
    pub fn new(
        connector: &ConnectorConfig,
        config: InstanceConfig,
        ids: SchemaIds,
        runtime: tokio::runtime::Handle,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, InstanceError> {
        Ok(Instance {
            raw: RawEncoder::with_schema_id(config.domain, ids.raw)?,
            quarantine: Encoder::with_schema_id(ids.quarantine)?,
            config,
            connector_id: connector.connector_id.clone(),
            quarantine_topic: connector.quarantine_topic.clone(),
            limits: connector.limits.clone(),
            runtime,
            stop,
        })
    }

    /// The instance's configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// Ingests everything the source has now, staging each batch in the slot's open
    /// transaction (`stage`). Blocks.
    pub(crate) fn poll(&mut self, stage: &mut Stage<'_>) -> Result<PollStats, InstanceError> {
        let context = Context {
            config: &self.config,
            connector_id: &self.connector_id,
            topic: self.config.topic(),
            quarantine_topic: &self.quarantine_topic,
            raw: &self.raw,
            quarantine: &self.quarantine,
            limits: &self.limits,
            stop: &self.stop,
        };
        let mut committer = Committer {
            stage,
            stats: PollStats::default(),
        };
        crate::sources::poll(&self.config.source, &context, &self.runtime, &mut committer)?;
        Ok(committer.stats)
    }
}

/// Stages a source's batches with the progress they reach, and counts what they hold.
pub(crate) struct Committer<'s, 'a> {
    stage: &'s mut Stage<'a>,
    stats: PollStats,
}

/// What one transaction holds: the messages to write, and how many source records they (and
/// the records skipped) stand for.
pub(crate) struct Batch {
    /// Source records read for this batch.
    pub(crate) read: u64,
    /// Raw and quarantine records to write.
    pub(crate) out: Vec<Outgoing>,
    /// Records read but skipped as identical duplicates.
    pub(crate) skipped: u64,
}

impl Batch {
    /// A batch in which every record read became one message.
    pub(crate) fn of(out: Vec<Outgoing>) -> Self {
        Batch {
            read: out.len() as u64,
            out,
            skipped: 0,
        }
    }
}

impl Committer<'_, '_> {
    /// The progress as the source kind's type: the last staged (committed, or in the slot's
    /// open transaction), its default before the first commit.
    pub(crate) fn progress<P: serde::de::DeserializeOwned + Default>(
        &self,
    ) -> Result<P, InstanceError> {
        match self.stage.progress() {
            Value::Null => Ok(P::default()),
            value => serde_json::from_value(value.clone()).map_err(InstanceError::Progress),
        }
    }

    /// Stages the batch's messages and the new `progress` in the slot's open transaction, which
    /// commits them together (with other instances' batches) once it is full or old enough, or
    /// when [`Committer::durable`] asks. Its outcomes are counted when it commits.
    pub(crate) fn commit(
        &mut self,
        context: &Context<'_>,
        batch: Batch,
        progress: &impl serde::Serialize,
    ) -> Result<(), InstanceError> {
        let written = batch
            .out
            .iter()
            .filter(|m| m.topic == context.topic)
            .count() as u64;
        let counts = Counts {
            read: batch.read,
            written,
            quarantined: batch.out.len() as u64 - written,
            skipped: batch.skipped,
            rejected: 0,
        };
        if counts.quarantined > 0 && context.config.errors_tolerance == ErrorsTolerance::None {
            let first = batch.out.iter().find(|m| m.topic != context.topic);
            return Err(InstanceError::Refused {
                code: "errors_tolerance_none",
                message: format!(
                    "记录无法写入，且本实例不容忍错误 (a record cannot be written and the instance \
                     has errors_tolerance = \"none\"): {}; nothing of the batch was written",
                    first.map_or("", |m| m.key.as_str())
                ),
            });
        }
        if !counts.balanced() {
            // A source kind's accounting is wrong: visible here and in the reconciliation.
            tracing::error!(instance = %context.config.id, ?counts, "batch outcomes do not add up");
        }
        let value = serde_json::to_value(progress).map_err(InstanceError::Progress)?;
        self.stage.stage(batch.out, value, counts)?;
        self.stats.read += counts.read;
        self.stats.written += counts.written;
        self.stats.quarantined += counts.quarantined;
        self.stats.skipped += counts.skipped;
        Ok(())
    }

    /// Commits the slot's open transaction now: before an action outside Kafka (a file moved
    /// to `done/`) that must follow only what is committed.
    pub(crate) fn durable(&mut self) -> Result<(), InstanceError> {
        self.stage.flush()
    }

    /// Records the source's lag when the poll began (only the first call counts).
    pub(crate) fn lag(&mut self, lag: std::time::Duration) {
        self.stats.lag.get_or_insert(lag);
    }
}

impl Context<'_> {
    fn provenance(&self, record_id: &str, mapped: Option<&mapping::Mapped>, batch: &str) -> Value {
        json!({
            "source_system_id": self.config.system_id,
            "reporting_level": ReportingLevel::from(self.config.level),
            "reporter_region_code": self.config.region_code,
            "source_record_id": record_id,
            "source_timestamp": mapped.and_then(|m| m.source_timestamp),
            "received_at": Utc::now(),
            "connector_id": self.connector_id,
            "batch_id": batch,
        })
    }

    /// The raw record of a row, or its quarantine record.
    pub(crate) fn map_row(
        &self,
        fields: &impl SourceRecord,
        batch: &str,
        location: String,
    ) -> Result<Outgoing, InstanceError> {
        let original = || serde_json::to_vec(fields).ok();
        let mapped = match mapping::map(&self.config.mapping, fields) {
            Ok(m) => m,
            Err(e) => {
                return self.quarantine_record(
                    e.code,
                    Some(e.field),
                    e.message,
                    None,
                    location,
                    original(),
                );
            }
        };
        let provenance = self.provenance(&mapped.record_id, Some(&mapped), batch);
        let mut record = Value::Object(mapped.fields);
        record["provenance"] = provenance;
        let encoded = self.raw.encode(&mut record).map(|encoded| {
            let (key, payload) = encoded.keyed(mapped.record_id);
            let fits = self.limits.record_fits(key.len(), payload.len());
            (key, payload, fits)
        });
        match encoded {
            Ok((_, _, Err(message))) => self.quarantine_record(
                "record_too_large",
                None,
                message,
                Some(record["provenance"].take()),
                location,
                original(),
            ),
            Ok((key, payload, Ok(()))) => Ok(Outgoing {
                topic: self.topic.clone(),
                key,
                payload,
            }),
            Err(e) => self.quarantine_record(
                e.code(),
                None,
                e.to_string(),
                Some(record["provenance"].take()),
                location,
                original(),
            ),
        }
    }

    /// The quarantine record of a source record (or file) at `location`. Its original bytes
    /// and texts are cut to [`QUOTED_BYTES`] and [`QUOTED_CHARS`], so the quarantine record of
    /// an oversize input is itself small enough to write.
    pub(crate) fn quarantine_record(
        &self,
        code: &str,
        field: Option<String>,
        message: String,
        provenance: Option<Value>,
        location: String,
        original: Option<Vec<u8>>,
    ) -> Result<Outgoing, InstanceError> {
        // Every text a source controls is cut, so the quarantine record stays small.
        let provenance = provenance
            .map(|mut p| {
                if let Value::Object(fields) = &mut p {
                    for value in fields.values_mut() {
                        if let Value::String(text) = value {
                            *text = cut(std::mem::take(text), QUOTED_CHARS);
                        }
                    }
                }
                p
            })
            .and_then(|p| serde_json::from_value(p).ok());
        let original = original.map(|mut bytes| {
            bytes.truncate(QUOTED_BYTES);
            bytes
        });
        let location = cut(location, QUOTED_CHARS);
        let record = Quarantine {
            stage: QuarantineStage::Ingest,
            error_code: code.to_owned(),
            message: cut(message, QUOTED_CHARS),
            field: field.map(|f| cut(f, QUOTED_CHARS)),
            domain: Some(DataDomain::from(self.config.domain)),
            provenance,
            source_topic: None,
            source_partition: None,
            source_offset: None,
            source_location: Some(location.clone()),
            original_key: None,
            original_value: original,
            quarantined_at: Utc::now(),
        };
        Ok(Outgoing {
            topic: self.quarantine_topic.to_owned(),
            key: format!("{}/{location}", self.config.id),
            payload: self.quarantine.encode(&record)?,
        })
    }
}

/// How much of an input's original bytes a quarantine record quotes.
pub(crate) const QUOTED_BYTES: usize = 64 * 1024;

/// How many characters of a message, field name or location a quarantine record keeps.
pub(crate) const QUOTED_CHARS: usize = 1024;

/// `text` cut to at most `chars` characters, with `…` where it was cut.
pub(crate) fn cut(mut text: String, chars: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(chars) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// How many threads [`map_in_parallel`] uses: one per core.
static THREADS: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));

/// Below this many items per thread, a thread costs more than it saves.
const MIN_ITEMS_PER_THREAD: usize = 256;

/// `map` applied to each of `items` on every core, the results in `items`' order; the first
/// error (in that order) stops it.
pub(crate) fn map_in_parallel<T: Sync, U: Send>(
    items: &[T],
    map: impl Fn(&T) -> Result<U, InstanceError> + Sync,
) -> Result<Vec<U>, InstanceError> {
    let threads = (*THREADS).min(items.len() / MIN_ITEMS_PER_THREAD).max(1);
    let mut parts = items.chunks(items.len().div_ceil(threads).max(1));
    let first = parts.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let others: Vec<_> = parts
            .map(|part| scope.spawn(|| part.iter().map(&map).collect::<Result<Vec<U>, _>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for item in first {
            out.push(map(item)?);
        }
        for other in others {
            out.extend(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            );
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_mapping_keeps_order_and_stops_at_the_first_error() {
        for n in [0, 1, MIN_ITEMS_PER_THREAD * 2 + 1, 10_000] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = map_in_parallel(&items, |i| Ok(i * 2)).expect("maps");
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        let items: Vec<usize> = (0..10_000).collect();
        let failed = map_in_parallel(&items, |&i| {
            if i % 4000 == 3999 {
                Err(InstanceError::SourceSystem(i.to_string()))
            } else {
                Ok(i)
            }
        });
        assert!(
            matches!(&failed, Err(InstanceError::SourceSystem(at)) if at == "3999"),
            "{failed:?}"
        );
    }
}
