//! One running source instance: reads its system, maps each record, and commits records,
//! quarantined records and progress together. Every source record ends in exactly one of
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

use crate::config::{ConnectorConfig, InstanceConfig, SourceConfig};
use crate::mapping::{self, SourceRecord};
use crate::raw::RawEncoder;
use crate::transactor::{Outgoing, Transactor};

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
            InstanceError::Progress(_) => "progress",
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
    /// Set when the process stops: long waits end early.
    pub(crate) stop: &'a AtomicBool,
}

/// A source instance with its encoders, transactional producer and progress.
pub struct Instance {
    config: InstanceConfig,
    connector_id: String,
    quarantine_topic: String,
    raw: RawEncoder,
    quarantine: Encoder<Quarantine>,
    transactor: Transactor,
    progress: Value,
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

    /// Starts the instance: fences any earlier process of it, then loads its committed progress.
    /// Blocks.
    pub fn start(
        connector: &ConnectorConfig,
        config: InstanceConfig,
        ids: SchemaIds,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, InstanceError> {
        let (connector_id, settings) = (&connector.connector_id, &connector.kafka);
        let (progress_topic, quarantine_topic) =
            (&connector.progress_topic, &connector.quarantine_topic);
        let raw = RawEncoder::with_schema_id(config.domain, ids.raw)?;
        let quarantine = Encoder::with_schema_id(ids.quarantine)?;
        let transactor = Transactor::start(settings, &config.id, progress_topic)?;
        let stored = crate::progress::load_all(
            settings,
            progress_topic,
            std::time::Duration::from_secs(60),
        )?
        .remove(&config.id);
        let progress = stored.unwrap_or(Value::Null);
        tracing::info!(instance = %config.id, %progress, "instance started");
        Ok(Instance {
            config,
            connector_id: connector_id.to_owned(),
            quarantine_topic: quarantine_topic.to_owned(),
            raw,
            quarantine,
            transactor,
            progress,
            runtime,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Makes waits inside a poll (retry backoff) end early once `stop` is set; the poll then
    /// fails without committing, and nothing is lost.
    pub fn stop_when(&mut self, stop: Arc<AtomicBool>) {
        self.stop = stop;
    }

    /// The progress committed last, in its stored JSON form.
    pub fn progress(&self) -> Value {
        self.progress.clone()
    }

    /// Forgets the committed progress (a tombstone in the progress topic): the next poll starts
    /// from the beginning of the source. Blocks.
    pub fn reset(&mut self) -> Result<(), InstanceError> {
        self.transactor.reset()?;
        self.progress = Value::Null;
        Ok(())
    }

    /// Ingests everything the source has now. Blocks.
    pub fn poll(&mut self) -> Result<PollStats, InstanceError> {
        let context = Context {
            config: &self.config,
            connector_id: &self.connector_id,
            topic: self.config.topic(),
            quarantine_topic: &self.quarantine_topic,
            raw: &self.raw,
            quarantine: &self.quarantine,
            stop: &self.stop,
        };
        let mut committer = Committer {
            transactor: &self.transactor,
            progress: &mut self.progress,
            stats: PollStats::default(),
        };
        match &self.config.source {
            SourceConfig::FileDrop(source) => {
                crate::sources::file_drop::poll(&context, source, &mut committer)?;
            }
            SourceConfig::HttpPoll(source) => {
                crate::sources::http_poll::poll(&context, source, &self.runtime, &mut committer)?;
            }
            SourceConfig::SqlPoll(source) => {
                crate::sources::sql_poll::poll(&context, source, &self.runtime, &mut committer)?;
            }
        }
        Ok(committer.stats)
    }
}

/// Commits batches with the progress they reach, and counts what they hold.
pub(crate) struct Committer<'a> {
    transactor: &'a Transactor,
    progress: &'a mut Value,
    stats: PollStats,
}

impl Committer<'_> {
    /// The committed progress as the source kind's type (its default before the first commit).
    pub(crate) fn progress<P: serde::de::DeserializeOwned + Default>(
        &self,
    ) -> Result<P, InstanceError> {
        match &*self.progress {
            Value::Null => Ok(P::default()),
            value => serde_json::from_value(value.clone()).map_err(InstanceError::Progress),
        }
    }

    /// Writes `out` and the new `progress` in one transaction; once Kafka has them, `progress`
    /// is the committed one.
    pub(crate) fn commit(
        &mut self,
        context: &Context<'_>,
        out: Vec<Outgoing>,
        progress: &impl serde::Serialize,
    ) -> Result<(), InstanceError> {
        let value = serde_json::to_value(progress).map_err(InstanceError::Progress)?;
        self.transactor.commit(&out, &value)?;
        *self.progress = value;
        for message in &out {
            if message.topic == context.topic {
                self.stats.written += 1;
            } else {
                self.stats.quarantined += 1;
            }
        }
        Ok(())
    }

    /// Counts source records read.
    pub(crate) fn read(&mut self, n: u64) {
        self.stats.read += n;
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
        match self.raw.encode(&mut record) {
            Ok(payload) => Ok(Outgoing {
                topic: self.topic.clone(),
                key: mapped.record_id,
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

    pub(crate) fn quarantine_record(
        &self,
        code: &str,
        field: Option<String>,
        message: String,
        provenance: Option<Value>,
        location: String,
        original: Option<Vec<u8>>,
    ) -> Result<Outgoing, InstanceError> {
        let provenance = provenance.and_then(|p| serde_json::from_value(p).ok());
        let record = Quarantine {
            stage: QuarantineStage::Ingest,
            error_code: code.to_owned(),
            message,
            field,
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
