//! Runs a configuration's instances: one worker thread each (their Kafka transaction calls
//! block), restarted after errors with backoff, counted in Prometheus metrics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::{GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec, Registry};
use schemas::registry::RegistryClient;

use crate::config::{ConnectorConfig, InstanceConfig};
use crate::instance::{Instance, InstanceError, SchemaIds};
use crate::outcomes::Outcomes;

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
}

/// The running instances; dropping it does not stop them, [`Runtime::stop`] does.
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
    /// Paused by an operator: holds no transaction, reads nothing.
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
    /// The committed progress, once the instance has started.
    pub progress: Option<serde_json::Value>,
}

/// An operator's request to an instance's worker.
pub enum Command {
    /// Stop polling after the current batch.
    Pause,
    /// Poll again.
    Resume,
    /// Start over: new producer, progress read back from Kafka.
    Restart,
    /// Forget the progress (only while paused); the answer comes back on the channel.
    Reset(mpsc::Sender<Result<(), String>>),
}

/// The handle the management API holds on one instance.
pub struct Control {
    status: Arc<Mutex<Status>>,
    commands: Mutex<mpsc::Sender<Command>>,
}

impl Control {
    /// The instance's status now.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends a request to the worker; false if it has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(command)
            .is_ok()
    }
}

impl Runtime {
    /// Registers every instance's schemas (retrying while the registry is unreachable), then
    /// starts one worker per instance.
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
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        let mut controls = BTreeMap::new();
        let slots = Arc::new(Slots {
            free: Mutex::new(config.max_active_instances),
            freed: Condvar::new(),
        });
        let keep_producer = config.instances.len() <= config.max_active_instances;
        for instance in &config.instances {
            let ids = register_with_retry(instance, &registry).await?;
            let status = Arc::new(Mutex::new(Status {
                state: State::Running,
                error: None,
                progress: None,
            }));
            let (commands, inbox) = mpsc::channel();
            controls.insert(
                instance.id.clone(),
                Control {
                    status: status.clone(),
                    commands: Mutex::new(commands),
                },
            );
            let worker = Worker {
                config: instance.clone(),
                connector: config.clone(),
                ids,
                metrics: metrics.clone(),
                stop: stop.clone(),
                status,
                inbox,
                runtime: tokio::runtime::Handle::current(),
                slots: slots.clone(),
                keep_producer,
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("instance-{}", instance.id))
                    .spawn(move || worker.run())
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

    /// Asks every worker to stop after its current batch and waits for them.
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
                tracing::warn!(instance = %instance.id, error = %e, "registering schemas; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

struct Worker {
    config: InstanceConfig,
    connector: ConnectorConfig,
    ids: SchemaIds,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<Status>>,
    inbox: mpsc::Receiver<Command>,
    runtime: tokio::runtime::Handle,
    slots: Arc<Slots>,
    /// Whether every instance can hold its producer between polls.
    keep_producer: bool,
}

/// Bounds how many instances hold a producer at once: each has its own librdkafka client
/// threads, and a process with hundreds of them would starve its cores.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// Takes a slot, waiting for one; false if asked to stop meanwhile.
    fn acquire(&self, stop: &AtomicBool) -> bool {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if stop.load(Ordering::Acquire) {
                return false;
            }
            if *free > 0 {
                *free -= 1;
                return true;
            }
            free = self
                .freed
                .wait_timeout(free, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn release(&self) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.freed.notify_one();
    }
}

impl Worker {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn set(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Waits up to `duration` for an operator's command, waking early to notice a stop.
    fn wait(&self, duration: Duration) -> Option<Command> {
        let until = Instant::now() + duration;
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.inbox.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(command) => return Some(command),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    fn start(&self) -> Result<Instance, InstanceError> {
        let mut instance = Instance::start(
            &self.connector,
            self.config.clone(),
            self.ids,
            self.runtime.clone(),
        )?;
        instance.stop_when(self.stop.clone());
        instance.count_into(self.metrics.outcomes.clone());
        let progress = instance.progress();
        self.set(|s| s.progress = Some(progress));
        Ok(instance)
    }

    fn run(self) {
        let id = self.config.id.clone();
        let mut running: Option<Instance> = None;
        let mut paused = false;
        let mut backoff = Duration::from_millis(500);
        let mut next = Duration::ZERO;
        while !self.stopped() {
            match self.wait(next) {
                Some(Command::Pause) => paused = true,
                Some(Command::Resume) => paused = false,
                Some(Command::Restart) => running = None,
                Some(Command::Reset(reply)) => {
                    let _ = reply.send(self.reset(paused, &mut running));
                }
                None => {}
            }
            if self.stopped() {
                break;
            }
            if paused {
                // A paused instance holds no producer: another process may take it over.
                running = None;
                self.set(|s| s.state = State::Paused);
                next = Duration::from_secs(3600);
                continue;
            }
            if !self.slots.acquire(&self.stop) {
                break;
            }
            let result = match running.as_mut() {
                Some(instance) => Ok(instance),
                None => self.start().map(|i| running.insert(i)),
            }
            .and_then(|instance| {
                let started = Instant::now();
                // A bug tripped by some input must not end the worker while its status still
                // says RUNNING: the poll fails, is reported, and is retried with backoff.
                let stats =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| instance.poll()))
                        .unwrap_or_else(|panic| Err(InstanceError::Panicked(panic_text(&panic))))?;
                Ok((stats, started.elapsed(), instance.progress()))
            });
            if !self.keep_producer {
                running = None;
            }
            self.slots.release();
            match result {
                Ok((stats, elapsed, progress)) => {
                    backoff = Duration::from_millis(500);
                    self.metrics
                        .poll_duration
                        .with_label_values(&[&id])
                        .observe(elapsed.as_secs_f64());
                    self.metrics
                        .last_success
                        .with_label_values(&[&id])
                        .set(chrono::Utc::now().timestamp());
                    if let Some(lag) = stats.lag {
                        self.metrics
                            .lag
                            .with_label_values(&[&id])
                            .set(lag.as_secs_f64());
                    }
                    self.set(|s| {
                        s.state = State::Running;
                        s.error = None;
                        s.progress = Some(progress);
                    });
                    next = self.config.poll_interval;
                }
                Err(e) => {
                    // Start over: a new producer, and the progress read back from what Kafka
                    // committed.
                    running = None;
                    self.metrics
                        .errors
                        .with_label_values(&[&id, e.code()])
                        .inc();
                    tracing::error!(instance = %id, code = e.code(), error = %e, "instance failed; restarting");
                    self.set(|s| {
                        s.state = State::Failed;
                        s.error = Some((e.code().to_owned(), e.to_string()));
                    });
                    next = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
        self.set(|s| s.state = State::Stopped);
        tracing::info!(instance = %id, "instance stopped");
    }

    /// Forgets the instance's progress; only while paused, so no batch is in flight.
    fn reset(&self, paused: bool, running: &mut Option<Instance>) -> Result<(), String> {
        if !paused {
            return Err(
                "请先暂停该实例 (pause the instance before resetting its progress)".to_owned(),
            );
        }
        let mut instance = match running.take() {
            Some(instance) => instance,
            None => self.start().map_err(|e| e.to_string())?,
        };
        instance.reset().map_err(|e| e.to_string())?;
        self.set(|s| s.progress = Some(instance.progress()));
        // Paused instances hold no producer.
        drop(instance);
        Ok(())
    }
}
