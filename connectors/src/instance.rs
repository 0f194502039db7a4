//! One running source instance: reads its system, maps each record, and commits records,
//! quarantined records and progress together. Every source record ends in exactly one of
//! two places: its raw topic or the quarantine topic.

use chrono::Utc;
use rdkafka::error::KafkaError;
use schemas::ClientSettings;
use schemas::codec::{CodecError, Encoder};
use schemas::records::{DataDomain, Quarantine, QuarantineStage, ReportingLevel};
use schemas::registry::RegistryClient;
use serde_json::{Value, json};

use crate::config::{InstanceConfig, SourceConfig};
use crate::mapping::{self, SourceFields};
use crate::raw::RawEncoder;
use crate::sources::file_drop::{self, FileDropProgress, FilePosition};
use crate::transactor::{Outgoing, Transactor};

/// Why an instance stopped working; a record-level problem is never one of these (it goes to
/// quarantine).
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Kafka refused a transaction or could not be reached.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The Schema Registry could not register a schema.
    #[error("schema registry: {0}")]
    Schema(#[from] CodecError),
    /// The Schema Registry URL is unusable.
    #[error("schema registry: {0}")]
    Registry(#[from] schemas::registry::RegistryError),
    /// The source could not be read (folder missing, permissions…).
    #[error("reading the source: {0}")]
    Source(#[from] std::io::Error),
    /// The stored progress does not fit this source kind.
    #[error("stored progress is unreadable: {0}")]
    Progress(serde_json::Error),
}

impl InstanceError {
    /// A stable code for metrics and the management API.
    pub fn code(&self) -> &'static str {
        match self {
            InstanceError::Kafka(_) => "kafka",
            InstanceError::Schema(_) | InstanceError::Registry(_) => "schema_registry",
            InstanceError::Source(_) => "source_io",
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
struct Context<'a> {
    config: &'a InstanceConfig,
    connector_id: &'a str,
    topic: String,
    quarantine_topic: &'a str,
    raw: &'a RawEncoder,
    quarantine: &'a Encoder<Quarantine>,
}

/// A source instance with its encoders, transactional producer and progress.
pub struct Instance {
    config: InstanceConfig,
    connector_id: String,
    quarantine_topic: String,
    raw: RawEncoder,
    quarantine: Encoder<Quarantine>,
    transactor: Transactor,
    progress: FileDropProgress,
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
        config: InstanceConfig,
        connector_id: &str,
        settings: &ClientSettings,
        progress_topic: &str,
        quarantine_topic: &str,
        ids: SchemaIds,
    ) -> Result<Self, InstanceError> {
        let raw = RawEncoder::with_schema_id(config.domain, ids.raw)?;
        let quarantine = Encoder::with_schema_id(ids.quarantine)?;
        let transactor = Transactor::start(settings, &config.id, progress_topic)?;
        let stored = crate::progress::load_all(
            settings,
            progress_topic,
            std::time::Duration::from_secs(60),
        )?
        .remove(&config.id);
        let progress = match stored {
            Some(value) => serde_json::from_value(value).map_err(InstanceError::Progress)?,
            None => FileDropProgress::default(),
        };
        tracing::info!(instance = %config.id, ?progress.current, done = progress.done.len(), "instance started");
        Ok(Instance {
            config,
            connector_id: connector_id.to_owned(),
            quarantine_topic: quarantine_topic.to_owned(),
            raw,
            quarantine,
            transactor,
            progress,
        })
    }

    /// The progress committed last, in its stored JSON form.
    pub fn progress(&self) -> Value {
        serde_json::to_value(&self.progress).unwrap_or(Value::Null)
    }

    /// Forgets the committed progress (a tombstone in the progress topic): the next poll starts
    /// from the beginning of the source. Blocks.
    pub fn reset(&mut self) -> Result<(), InstanceError> {
        self.transactor.reset()?;
        self.progress = FileDropProgress::default();
        Ok(())
    }

    /// Ingests everything the source has now. Blocks.
    pub fn poll(&mut self) -> Result<PollStats, InstanceError> {
        let Instance {
            config,
            connector_id,
            quarantine_topic,
            raw,
            quarantine,
            transactor,
            progress: committed,
        } = self;
        let SourceConfig::FileDrop(source) = &config.source;
        let context = Context {
            config,
            connector_id,
            topic: config.topic(),
            quarantine_topic,
            raw,
            quarantine,
        };
        let mut stats = PollStats::default();
        for path in file_drop::pending_files(&source.dir)? {
            let bytes = std::fs::read(&path)?;
            let checksum = file_drop::checksum(&bytes);
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if committed.is_done(&checksum) {
                // Committed by an earlier run that stopped before moving it.
                file_drop::move_to(&path, "done", &checksum)?;
                continue;
            }
            let parsed = file_drop::decode(&bytes, source.encoding)
                .and_then(|text| file_drop::rows(&text, source.delimiter));
            let rows = match parsed {
                Ok(rows) => rows,
                Err(reason) => {
                    let mut progress = committed.clone();
                    progress.finish(checksum.clone());
                    let record = context.quarantine_record(
                        "file_unreadable",
                        None,
                        reason,
                        None,
                        name.clone(),
                        Some(bytes),
                    )?;
                    commit(transactor, committed, &[record], progress)?;
                    stats.quarantined += 1;
                    file_drop::move_to(&path, "failed", &checksum)?;
                    tracing::warn!(instance = %config.id, file = %name, "unreadable file moved to failed/");
                    continue;
                }
            };
            let start = committed.resume_line(&checksum);
            let todo: Vec<_> = rows.into_iter().filter(|r| r.line >= start).collect();
            let mut chunks = todo.chunks(config.batch_size).peekable();
            if chunks.peek().is_none() {
                let mut progress = committed.clone();
                progress.finish(checksum.clone());
                commit(transactor, committed, &[], progress)?;
            }
            while let Some(chunk) = chunks.next() {
                let mut out = Vec::with_capacity(chunk.len());
                for row in chunk {
                    stats.read += 1;
                    let location = format!("{name}:{}", row.line);
                    let message = match &row.fields {
                        Ok(fields) => context.map_row(fields, &checksum, location)?,
                        Err(reason) => context.quarantine_record(
                            "row_unreadable",
                            None,
                            reason.clone(),
                            None,
                            location,
                            None,
                        )?,
                    };
                    if message.topic == context.topic {
                        stats.written += 1;
                    } else {
                        stats.quarantined += 1;
                    }
                    out.push(message);
                }
                let mut progress = committed.clone();
                match chunks.peek() {
                    Some(next) => {
                        progress.current = Some(FilePosition {
                            file: name.clone(),
                            checksum: checksum.clone(),
                            next_line: next[0].line,
                        });
                    }
                    None => progress.finish(checksum.clone()),
                }
                commit(transactor, committed, &out, progress)?;
            }
            file_drop::move_to(&path, "done", &checksum)?;
            tracing::info!(instance = %config.id, file = %name, "file ingested");
        }
        Ok(stats)
    }
}

/// Commits `out` with `progress` and, once Kafka has them, makes `progress` the committed one.
fn commit(
    transactor: &Transactor,
    committed: &mut FileDropProgress,
    out: &[Outgoing],
    progress: FileDropProgress,
) -> Result<(), InstanceError> {
    let value = serde_json::to_value(&progress).map_err(InstanceError::Progress)?;
    transactor.commit(out, &value)?;
    *committed = progress;
    Ok(())
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
    fn map_row(
        &self,
        fields: &SourceFields,
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
        let mut record = mapped.fields.clone();
        record.insert("provenance".to_owned(), provenance.clone());
        match self.raw.encode(Value::Object(record)) {
            Ok(payload) => Ok(Outgoing {
                topic: self.topic.clone(),
                key: mapped.record_id,
                payload,
            }),
            Err(e) => self.quarantine_record(
                e.code(),
                None,
                e.to_string(),
                Some(provenance),
                location,
                original(),
            ),
        }
    }

    fn quarantine_record(
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
