//! Runs a configuration's instances on its task slots ([`crate::slot`]: a thread and a
//! transactional producer each, since Kafka transaction calls block), gives operators a
//! handle on each instance, and counts in Prometheus metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::{GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec, Registry};
use schemas::Domain;
use schemas::registry::RegistryClient;

use crate::config::{ConnectorConfig, InstanceConfig};
use crate::instance::{Instance, InstanceError, SchemaIds};
use crate::outcomes::Outcomes;
use crate::slot::{Slot, slot_of};

/// Per-instance metrics (`connector_` prefix; the `instance` label comes from the
/// configuration, a closed set).
#[derive(Clone)]
pub struct Metrics {
    outcomes: Outcomes,
    push: crate::push::PushMetrics,
    errors: IntCounterVec,
    last_success: IntGaugeVec,
    lag: GaugeVec,
    poll_duration: HistogramVec,
    producers: prometheus::IntCounter,
    transactions: prometheus::IntCounter,
    progress_bytes: prometheus::IntCounter,
}

impl Metrics {
    /// Creates the metrics in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        use telemetry::metrics::{counter_vec, float_gauge_vec, gauge_vec, histogram_vec};
        let counter =
            |name: &str, help: &str, labels: &[&str]| counter_vec(registry, name, help, labels);
        let last_success = gauge_vec(
            registry,
            "connector_last_success_timestamp_seconds",
            "When the instance last completed a poll (Unix time).",
            &["instance"],
        )?;
        let lag = float_gauge_vec(
            registry,
            "connector_source_lag_seconds",
            "Age of the oldest source change not yet read when the last poll began (file drops \
             and SQL tables; absent where the source cannot tell).",
            &["instance"],
        )?;
        let poll_duration = histogram_vec(
            registry,
            "connector_poll_duration_seconds",
            "Time to read, map and commit what the source had.",
            &["instance"],
            prometheus::exponential_buckets(0.005, 4.0, 9)?,
        )?;
        Ok(Metrics {
            outcomes: Outcomes::new(registry)?,
            push: crate::push::PushMetrics::new(registry)?,
            errors: counter(
                "connector_errors_total",
                "Polls that failed, by error code.",
                &["instance", "code"],
            )?,
            last_success,
            lag,
            poll_duration,
            producers: telemetry::metrics::counter(
                registry,
                "connector_producers_created_total",
                "Transactional producers created: one per slot at start-up, and one after each \
                 failed transaction.",
            )?,
            transactions: telemetry::metrics::counter(
                registry,
                "connector_transactions_total",
                "Transactions the slots committed (each with the batches and progress of \
                 several instances).",
            )?,
            progress_bytes: telemetry::metrics::counter(
                registry,
                "connector_progress_bytes_total",
                "Bytes of progress records the slots committed (keys and values).",
            )?,
        })
    }

    /// The outcome counters, which the push endpoint and `GET /reconciliation` share.
    pub fn outcomes(&self) -> &Outcomes {
        &self.outcomes
    }

    /// The push endpoint's metrics.
    pub fn push(&self) -> &crate::push::PushMetrics {
        &self.push
    }

    /// A poll of `instance` whose batches committed.
    pub(crate) fn polled(&self, instance: &str, elapsed: Duration, lag: Option<Duration>) {
        self.poll_duration
            .with_label_values(&[instance])
            .observe(elapsed.as_secs_f64());
        self.last_success
            .with_label_values(&[instance])
            .set(chrono::Utc::now().timestamp());
        if let Some(lag) = lag {
            self.lag
                .with_label_values(&[instance])
                .set(lag.as_secs_f64());
        }
    }

    /// A slot's producer was created.
    pub(crate) fn producer_created(&self) {
        self.producers.inc();
    }

    /// A slot committed a transaction holding `progress_bytes` of progress records.
    pub(crate) fn transaction(&self, progress_bytes: usize) {
        self.transactions.inc();
        self.progress_bytes.inc_by(progress_bytes as u64);
    }

    /// A failed poll of `instance`.
    pub(crate) fn failed(&self, instance: &str, code: &str) {
        self.errors.with_label_values(&[instance, code]).inc();
    }
}

/// The running slots; dropping it does not stop them, [`Runtime::stop`] does.
pub struct Runtime {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    controls: Arc<BTreeMap<String, Control>>,
}

/// What an instance is doing, as the management API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Polling its source.
    Running,
    /// Paused by an operator: reads nothing.
    Paused,
    /// Its last attempt failed; it retries with backoff.
    Failed,
    /// Stopped with the process.
    Stopped,
}

/// An instance's status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// Current state.
    pub state: State,
    /// Code and message of the last error, while failed.
    pub error: Option<(String, String)>,
    /// The committed progress, once its slot has read it.
    pub progress: Option<serde_json::Value>,
}

impl Status {
    /// Before its slot connected.
    pub(crate) fn starting() -> Self {
        Status {
            state: State::Running,
            error: None,
            progress: None,
        }
    }
}

/// An operator's request to an instance, carried out by its slot between polls.
pub enum Command {
    /// Stop polling after the current batch.
    Pause,
    /// Poll again.
    Resume,
    /// Poll now, after the slot's producer is initialised again and the progress read back.
    Restart,
    /// Forget the progress (only while paused); the answer comes back on the channel.
    Reset(mpsc::Sender<Result<(), String>>),
}

/// The handle the management API holds on one instance.
pub struct Control {
    status: Arc<Mutex<Status>>,
    /// The instance's slot, and its place there.
    commands: Mutex<mpsc::Sender<(usize, Command)>>,
    index: usize,
}

impl Control {
    /// The instance's status now.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends a request to the instance's slot; false if it has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((self.index, command))
            .is_ok()
    }
}

impl Runtime {
    /// Registers the schemas of every domain the instances write (retrying while the registry
    /// is unreachable), then starts one thread per slot that has instances.
    pub async fn start(config: ConnectorConfig, metrics: Metrics) -> Result<Self, InstanceError> {
        let registry = RegistryClient::new(&config.registry_url)?;
        // Like Kafka Connect's offsets topic: created by the workers if missing.
        schemas::kafka::ensure_topics(
            &config.kafka,
            &[schemas::TopicSpec {
                name: config.progress_topic.clone(),
                kind: schemas::TopicKind::State,
                partitions: 1,
            }],
            config.replication_factor,
        )
        .await?;
        let mut ids: HashMap<Domain, SchemaIds> = HashMap::new();
        for instance in &config.instances {
            if let std::collections::hash_map::Entry::Vacant(entry) = ids.entry(instance.domain) {
                entry.insert(register_with_retry(instance, &registry).await?);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let slots = config.slots;
        let mut assigned: Vec<Vec<_>> = (0..slots).map(|_| Vec::new()).collect();
        let channels: Vec<_> = (0..slots).map(|_| mpsc::channel()).collect();
        let mut controls = BTreeMap::new();
        for instance in &config.instances {
            let slot = slot_of(&instance.id, slots);
            let status = Arc::new(Mutex::new(Status::starting()));
            controls.insert(
                instance.id.clone(),
                Control {
                    status: status.clone(),
                    commands: Mutex::new(channels[slot].0.clone()),
                    index: assigned[slot].len(),
                },
            );
            assigned[slot].push((instance.clone(), ids[&instance.domain], status));
        }
        let runtime = tokio::runtime::Handle::current();
        let mut workers = Vec::new();
        for (index, ((_, inbox), instances)) in channels.into_iter().zip(assigned).enumerate() {
            if instances.is_empty() {
                continue;
            }
            let slot = Slot::new(
                index,
                &config,
                instances,
                Some(metrics.clone()),
                inbox,
                stop.clone(),
                &runtime,
            )?;
            workers.push(
                std::thread::Builder::new()
                    .name(format!("slot-{index}"))
                    .spawn(move || slot.run())
                    .map_err(InstanceError::Source)?,
            );
        }
        Ok(Runtime {
            stop,
            workers,
            controls: Arc::new(controls),
        })
    }

    /// The instances' controls, by instance id, for the management API.
    pub fn controls(&self) -> Arc<BTreeMap<String, Control>> {
        self.controls.clone()
    }

    /// Asks every slot to stop after its current poll and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

async fn register_with_retry(
    instance: &InstanceConfig,
    registry: &RegistryClient,
) -> Result<SchemaIds, InstanceError> {
    let mut delay = Duration::from_millis(200);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match Instance::register(instance, registry).await {
            Ok(ids) => return Ok(ids),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(domain = %instance.domain, error = %e, "registering schemas; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}
