//! The Schema Registry (模式注册中心) the hub serves: Confluent's REST API, stored in a
//! compacted Kafka topic, consistent across any number of hub replicas without a coordinator
//! of our own.
//!
//! - `record.rs`: the storage topic's records (Confluent's `_schemas` shape).
//! - `state.rs`: the in-memory state built from them, and how each write is decided on it.
//! - `reader.rs`: the thread that applies the topic to the state, in log order.
//! - `writer.rs`: writes, serialised across replicas by one shared `transactional.id`.
//! - `avro.rs`, `compat.rs`: schema identity and compatibility (apache-avro decides).
//! - `http.rs`: the REST API; `metrics.rs`: `hub_registry_*`; `error.rs`: Confluent's codes.
//!
//! Reads are served from the local state; a read that finds nothing first catches up with the
//! log, so a schema registered through any replica is found through every replica once its
//! registration was answered.

mod avro;
mod compat;
mod error;
mod http;
mod metrics;
mod reader;
mod record;
mod state;
mod writer;

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use schemas::kafka::ensure_topics;
use schemas::{ClientSettings, TopicKind, TopicSpec};
use tokio::sync::watch;
use tokio::time::Instant;

pub use avro::AVRO;
pub use compat::{CompatibilityLevel, UnknownLevel};
pub use error::RegistryError;
pub use http::CONTENT_TYPE;
pub use state::{RegistrySnapshot, SchemaVersion, SnapshotVersion, VersionSelector};

use metrics::Metrics;
use reader::Reader;
use state::{Op, Outcome, State};
use writer::Writer;

/// Default name of the storage topic.
pub const DEFAULT_TOPIC: &str = "hub.schemas";
/// Default `transactional.id` shared by every replica's writer.
pub const DEFAULT_TRANSACTIONAL_ID: &str = "huitong-schema-registry";

/// How a registry instance stores its data and behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// The compacted, one-partition storage topic (created if missing).
    pub topic: String,
    /// The `transactional.id` of the writer. Every replica serving the same topic must use
    /// the same one: that is what serialises their writes.
    pub transactional_id: String,
    /// Replication factor used if the storage topic has to be created.
    pub replication_factor: i32,
    /// The level of subjects without one of their own while no global level is set.
    pub default_compatibility: CompatibilityLevel,
    /// How long a request may wait: for the store to load, for earlier writes, for a write
    /// to be retried after fencing.
    pub operation_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            topic: DEFAULT_TOPIC.to_owned(),
            transactional_id: DEFAULT_TRANSACTIONAL_ID.to_owned(),
            replication_factor: 1,
            default_compatibility: CompatibilityLevel::default(),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// A running registry instance: a handle to its state, reader and writer (cheap to clone).
///
/// The reader thread stops when the last handle is dropped (or on [`SchemaRegistry::shutdown`]).
#[derive(Clone)]
pub struct SchemaRegistry {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: RegistryConfig,
    settings: ClientSettings,
    state: Arc<RwLock<State>>,
    applied: watch::Receiver<i64>,
    /// A client for end offsets (read_committed: the last stable offset).
    offsets: Arc<BaseConsumer>,
    /// The end offset seen at start-up: ready once the reader applied up to it.
    startup_end: i64,
    reader: Reader,
    writer: tokio::sync::Mutex<Writer>,
    /// When the last completed read-to-end started (see [`Inner::sync`]).
    last_sync: tokio::sync::Mutex<Option<Instant>>,
    metrics: Metrics,
}

impl SchemaRegistry {
    /// Creates the storage topic if missing, starts the reader and returns at once; the
    /// registry is ready ([`SchemaRegistry::is_ready`]) when the reader caught up with the
    /// end of the topic as it was at start-up. Metrics go to `metrics`.
    pub async fn start(
        settings: &ClientSettings,
        config: RegistryConfig,
        metrics: &prometheus::Registry,
    ) -> Result<SchemaRegistry, RegistryError> {
        let metrics = Metrics::new(metrics)?;
        let spec = TopicSpec {
            name: config.topic.clone(),
            // National topics are compacted: the latest record per key is kept forever.
            kind: TopicKind::National,
            partitions: 1,
        };
        ensure_topics(settings, &[spec], config.replication_factor).await?;

        // The end-offset queries get a client of their own: on the reader's connection they
        // would queue behind its long-polling fetches.
        let offsets = Arc::new(read_committed_consumer(settings, &config)?);
        let startup_end = startup_end_offset(&offsets, &config).await?;

        let state = Arc::new(RwLock::new(State::default()));
        let (applied_tx, applied) = watch::channel(0);
        let reader = Reader::spawn(
            Arc::new(read_committed_consumer(settings, &config)?),
            config.topic.clone(),
            state.clone(),
            applied_tx,
            metrics.clone(),
        )
        .map_err(|source| RegistryError::Kafka {
            operation: "assigning the registry topic",
            source,
        })?;
        tracing::info!(
            topic = %config.topic,
            transactional_id = %config.transactional_id,
            end_offset = startup_end,
            "schema registry loading"
        );
        Ok(SchemaRegistry {
            inner: Arc::new(Inner {
                config,
                settings: settings.clone(),
                state,
                applied,
                offsets,
                startup_end,
                reader,
                writer: tokio::sync::Mutex::new(Writer::default()),
                last_sync: tokio::sync::Mutex::new(None),
                metrics,
            }),
        })
    }

    /// The configuration the instance runs with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// Whether the reader runs and has applied the topic up to its end at start-up.
    pub fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }

    /// Waits until [`SchemaRegistry::is_ready`], at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), RegistryError> {
        self.inner.wait_ready(Instant::now() + timeout).await
    }

    /// The REST API as an axum router (no state left to provide); merge it with other routes.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// Serves the REST API alone on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Stops the reader thread and waits for it; afterwards the instance is not ready.
    pub async fn shutdown(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.reader.stop()).await;
    }

    /// Registers an AVRO schema (`schema_type` `None` or `"AVRO"`) under `subject`; returns its
    /// id. An equal schema already in the subject returns its id without a write; one
    /// registered elsewhere keeps its id in a new version.
    pub async fn register(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<u32, RegistryError> {
        validate_subject(subject)?;
        let schema = parse_schema(schema, schema_type)?;
        match self
            .inner
            .write(Op::Register {
                subject: subject.to_owned(),
                schema,
            })
            .await?
        {
            Outcome::Registered { id, .. } => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    /// The schema text with id `id`.
    pub async fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        self.inner
            .read(|state| {
                state
                    .schema_by_id(id)
                    .ok_or(RegistryError::SchemaNotFound { id: Some(id) })
            })
            .await
    }

    /// One version of a subject (soft-deleted ones only with `deleted`).
    pub async fn version(
        &self,
        subject: &str,
        version: VersionSelector,
        deleted: bool,
    ) -> Result<SchemaVersion, RegistryError> {
        self.inner
            .read(|state| state.version(subject, version, deleted))
            .await
    }

    /// The version of `subject` with a schema equal to `schema`.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
        deleted: bool,
    ) -> Result<SchemaVersion, RegistryError> {
        let schema = parse_schema(schema, schema_type)?;
        self.inner
            .read(|state| state.lookup(subject, &schema, deleted))
            .await
    }

    /// Subjects with a live version (all subjects with `deleted`), sorted.
    pub async fn subjects(&self, deleted: bool) -> Result<Vec<String>, RegistryError> {
        self.inner.wait_ready_for_request().await?;
        Ok(self.inner.state().subjects(deleted))
    }

    /// Sets the global (`subject` `None`) or a subject's compatibility level.
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        if let Some(subject) = subject {
            validate_subject(subject)?;
        }
        self.inner
            .write(Op::SetLevel {
                subject: subject.map(str::to_owned),
                level,
            })
            .await
            .map(|_| ())
    }

    /// The level that applies to `subject` (or the global level for `None`).
    pub async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<CompatibilityLevel, RegistryError> {
        self.inner.wait_ready_for_request().await?;
        let default = self.inner.config.default_compatibility;
        let state = self.inner.state();
        Ok(match subject {
            Some(subject) => state.effective_level(subject, default),
            None => state.global_level(default),
        })
    }

    /// A copy of the state as this instance has applied it so far.
    pub fn snapshot(&self) -> RegistrySnapshot {
        self.inner.state().snapshot()
    }

    /// Reads the storage topic to its current end: afterwards every write answered before
    /// the call is visible here.
    pub async fn catch_up(&self) -> Result<(), RegistryError> {
        let deadline = Instant::now() + self.inner.config.operation_timeout;
        self.inner.sync(deadline).await
    }
}

impl Inner {
    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    fn is_ready(&self) -> bool {
        self.reader.is_alive() && self.applied() >= self.startup_end
    }

    fn reader_stopped() -> RegistryError {
        RegistryError::Store {
            reason: "the registry's reader stopped".to_owned(),
        }
    }

    async fn wait_ready(&self, deadline: Instant) -> Result<(), RegistryError> {
        self.wait_applied(self.startup_end, deadline, "loading the schema store")
            .await
    }

    async fn wait_ready_for_request(&self) -> Result<(), RegistryError> {
        if self.is_ready() {
            return Ok(());
        }
        self.wait_ready(Instant::now() + self.config.operation_timeout)
            .await
    }

    /// Waits until the reader applied everything before `offset`.
    async fn wait_applied(
        &self,
        offset: i64,
        deadline: Instant,
        operation: &'static str,
    ) -> Result<(), RegistryError> {
        if !self.reader.is_alive() {
            return Err(Self::reader_stopped());
        }
        let mut applied = self.applied.clone();
        // Wake up now and then to notice a reader that died.
        loop {
            let step = (Instant::now() + Duration::from_millis(500)).min(deadline);
            match tokio::time::timeout_at(step, applied.wait_for(|a| *a >= offset)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(_)) => return Err(Self::reader_stopped()),
                Err(_) if Instant::now() >= deadline => {
                    return Err(RegistryError::Timeout { operation });
                }
                Err(_) if !self.reader.is_alive() => return Err(Self::reader_stopped()),
                Err(_) => {}
            }
        }
    }

    /// Reads the log to its end: fetches the end offset, then waits until the reader applied
    /// it. Concurrent callers share one read-to-end when it started after they called.
    async fn sync(&self, deadline: Instant) -> Result<(), RegistryError> {
        let requested = Instant::now();
        let mut last = tokio::time::timeout_at(deadline, self.last_sync.lock())
            .await
            .map_err(|_| RegistryError::Timeout {
                operation: "reading the schema store to its end",
            })?;
        if last.is_some_and(|started| started >= requested) {
            return Ok(());
        }
        let started = Instant::now();
        let timeout = deadline.saturating_duration_since(started);
        let end = end_offset(&self.offsets, &self.config.topic, timeout).await?;
        self.wait_applied(end, deadline, "reading the schema store to its end")
            .await?;
        *last = Some(started);
        Ok(())
    }

    /// Answers a read from the local state; if it finds nothing, catches up with the log and
    /// asks again (a registration through another replica may not be applied here yet).
    async fn read<T>(
        &self,
        query: impl Fn(&State) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        self.wait_ready_for_request().await?;
        let first = query(&self.state());
        match first {
            Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => {
                let deadline = Instant::now() + self.config.operation_timeout;
                match self.sync(deadline).await {
                    Ok(()) => query(&self.state()),
                    Err(sync_error) => {
                        tracing::warn!(error = %sync_error, "registry read: cannot catch up with the log");
                        Err(e)
                    }
                }
            }
            other => other,
        }
    }

    /// Performs a write (see `writer.rs`), counting its outcome.
    async fn write(&self, op: Op) -> Result<Outcome, RegistryError> {
        self.wait_ready_for_request().await?;
        let kind = op.kind();
        let result = writer::execute(self, op).await;
        let outcome = match &result {
            Ok((_, true)) => "committed",
            Ok((_, false)) => "unchanged",
            Err(e) if e.is_client_error() => "rejected",
            Err(_) => "failed",
        };
        self.metrics.writes.with_label_values(&[outcome]).inc();
        match &result {
            Ok((outcome, committed)) => {
                tracing::info!(op = kind, ?outcome, committed, "registry write")
            }
            Err(e) if e.is_client_error() => {
                tracing::debug!(op = kind, code = e.code(), error = %e, "registry write rejected")
            }
            Err(e) => {
                tracing::warn!(op = kind, code = e.code(), error = %e, "registry write failed")
            }
        }
        result.map(|(outcome, _)| outcome)
    }
}

/// A `read_committed` consumer of the storage topic that never commits offsets.
fn read_committed_consumer(
    settings: &ClientSettings,
    config: &RegistryConfig,
) -> Result<BaseConsumer, RegistryError> {
    // librdkafka needs a group id to `assign`; the registry never joins the group nor commits
    // offsets, so every replica may share it.
    settings
        .client_config()
        .set("group.id", format!("{}.reader", config.transactional_id))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|source| RegistryError::Kafka {
            operation: "creating a registry consumer",
            source,
        })
}

/// The end (last stable) offset of the storage topic's partition.
async fn end_offset(
    consumer: &Arc<BaseConsumer>,
    topic: &str,
    timeout: Duration,
) -> Result<i64, RegistryError> {
    let consumer = consumer.clone();
    let topic = topic.to_owned();
    let timeout = timeout.max(Duration::from_millis(100));
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::Consumer as _;
        consumer.fetch_watermarks(&topic, 0, timeout)
    })
    .await
    .unwrap_or(Err(rdkafka::error::KafkaError::Canceled))
    .map(|(_, high)| high)
    .map_err(|source| RegistryError::Kafka {
        operation: "fetching the registry topic's end offset",
        source,
    })
}

/// The end offset at start-up, retried while a just-created topic's metadata propagates.
async fn startup_end_offset(
    consumer: &Arc<BaseConsumer>,
    config: &RegistryConfig,
) -> Result<i64, RegistryError> {
    let deadline = Instant::now() + config.operation_timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match end_offset(
            consumer,
            &config.topic,
            remaining.min(Duration::from_secs(5)),
        )
        .await
        {
            Ok(end) => return Ok(end),
            Err(e) if Instant::now() + pause < deadline => {
                tracing::debug!(topic = %config.topic, error = %e, "registry topic not available yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Checks a subject name: not blank, no control characters.
fn validate_subject(subject: &str) -> Result<(), RegistryError> {
    if subject.trim().is_empty() || subject.chars().any(char::is_control) {
        return Err(RegistryError::InvalidSubject {
            subject: subject.escape_debug().to_string(),
        });
    }
    Ok(())
}

fn parse_schema(
    text: &str,
    schema_type: Option<&str>,
) -> Result<Arc<avro::ParsedSchema>, RegistryError> {
    avro::parse(text, schema_type)
        .map(Arc::new)
        .map_err(|reason| RegistryError::InvalidSchema { reason })
}

fn unexpected(outcome: Outcome) -> RegistryError {
    RegistryError::Store {
        reason: format!("unexpected write outcome {outcome:?}"),
    }
}
