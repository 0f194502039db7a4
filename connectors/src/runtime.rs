//! Runs a configuration's instances: one worker thread each (their Kafka transaction calls
//! block), restarted after errors with backoff, counted in Prometheus metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use schemas::registry::RegistryClient;

use crate::config::{ConnectorConfig, InstanceConfig};
use crate::instance::{Instance, InstanceError, SchemaIds};

/// Per-instance metrics (`connector_` prefix; the `instance` label comes from the
/// configuration, a closed set).
#[derive(Clone)]
pub struct Metrics {
    read: IntCounterVec,
    written: IntCounterVec,
    quarantined: IntCounterVec,
    errors: IntCounterVec,
    last_success: IntGaugeVec,
    poll_duration: HistogramVec,
}

impl Metrics {
    /// Creates the metrics in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let last_success = IntGaugeVec::new(
            Opts::new(
                "connector_last_success_timestamp_seconds",
                "When the instance last completed a poll (Unix time).",
            ),
            &["instance"],
        )?;
        registry.register(Box::new(last_success.clone()))?;
        let poll_duration = HistogramVec::new(
            HistogramOpts::new(
                "connector_poll_duration_seconds",
                "Time to read, map and commit what the source had.",
            )
            .buckets(prometheus::exponential_buckets(0.005, 4.0, 9)?),
            &["instance"],
        )?;
        registry.register(Box::new(poll_duration.clone()))?;
        Ok(Metrics {
            read: counter(
                "connector_records_read_total",
                "Source records read.",
                &["instance"],
            )?,
            written: counter(
                "connector_records_written_total",
                "Raw records committed to Kafka.",
                &["instance"],
            )?,
            quarantined: counter(
                "connector_records_quarantined_total",
                "Source records committed to quarantine.",
                &["instance"],
            )?,
            errors: counter(
                "connector_errors_total",
                "Polls that failed, by error code.",
                &["instance", "code"],
            )?,
            last_success,
            poll_duration,
        })
    }
}

/// The running instances; dropping it does not stop them, [`Runtime::stop`] does.
pub struct Runtime {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Runtime {
    /// Registers every instance's schemas (retrying while the registry is unreachable), then
    /// starts one worker per instance.
    pub async fn start(config: ConnectorConfig, metrics: Metrics) -> Result<Self, InstanceError> {
        let registry = RegistryClient::new(&config.registry_url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for instance in &config.instances {
            let ids = register_with_retry(instance, &registry).await?;
            let worker = Worker {
                config: instance.clone(),
                connector: config.clone(),
                ids,
                metrics: metrics.clone(),
                stop: stop.clone(),
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("instance-{}", instance.id))
                    .spawn(move || worker.run())
                    .map_err(InstanceError::Source)?,
            );
        }
        Ok(Runtime { stop, workers })
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

struct Worker {
    config: InstanceConfig,
    connector: ConnectorConfig,
    ids: SchemaIds,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps up to `duration`, waking early when asked to stop.
    fn pause(&self, duration: Duration) {
        let until = Instant::now() + duration;
        while !self.stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
    }

    fn run(self) {
        let id = self.config.id.clone();
        let mut running: Option<Instance> = None;
        let mut backoff = Duration::from_millis(500);
        while !self.stopped() {
            let instance = match running.as_mut() {
                Some(instance) => instance,
                None => match Instance::start(
                    self.config.clone(),
                    &self.connector.connector_id,
                    &self.connector.kafka,
                    &self.connector.progress_topic,
                    &self.connector.quarantine_topic,
                    self.ids,
                ) {
                    Ok(instance) => running.insert(instance),
                    Err(e) => {
                        self.failed(&e, backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        continue;
                    }
                },
            };
            let started = Instant::now();
            match instance.poll() {
                Ok(stats) => {
                    backoff = Duration::from_millis(500);
                    self.metrics
                        .read
                        .with_label_values(&[&id])
                        .inc_by(stats.read);
                    self.metrics
                        .written
                        .with_label_values(&[&id])
                        .inc_by(stats.written);
                    self.metrics
                        .quarantined
                        .with_label_values(&[&id])
                        .inc_by(stats.quarantined);
                    self.metrics
                        .poll_duration
                        .with_label_values(&[&id])
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics
                        .last_success
                        .with_label_values(&[&id])
                        .set(chrono::Utc::now().timestamp());
                    self.pause(self.config.poll_interval);
                }
                Err(e) => {
                    // Start over: a new producer fences nothing but ourselves, and the progress
                    // is read back from what Kafka committed.
                    running = None;
                    self.failed(&e, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
        tracing::info!(instance = %id, "instance stopped");
    }

    fn failed(&self, error: &InstanceError, backoff: Duration) {
        self.metrics
            .errors
            .with_label_values(&[&self.config.id, error.code()])
            .inc();
        tracing::error!(instance = %self.config.id, code = error.code(), error = %error, "instance failed; restarting");
        self.pause(backoff);
    }
}
