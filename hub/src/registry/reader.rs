//! The background reader: a dedicated thread that reads the storage topic's only partition from
//! the beginning with `isolation.level=read_committed` and applies every record, in log order,
//! to the shared state. It publishes the next offset it has applied (`applied`), which readiness
//! and writes wait on.
//!
//! Why the consumer position counts: transaction markers are never handed to the application,
//! but librdkafka advances the position past them. Every write ends with a commit marker in
//! the active segment, which compaction never cleans, so once everything is read the position
//! equals the end offset that `ListOffsets` reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::metrics::Metrics;
use super::state::{RecordOutcome, State};

/// How long one `poll` waits; bounds how quickly the thread notices a stop request.
const POLL_TIMEOUT: Duration = Duration::from_millis(20);
/// How often an empty-looking log is checked for being empty.
const EMPTY_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The running reader thread.
pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    alive: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reader {
    /// Assigns partition 0 of `topic` from the beginning and starts the thread.
    pub fn spawn(
        consumer: Arc<BaseConsumer>,
        topic: String,
        state: Arc<RwLock<State>>,
        applied: watch::Sender<i64>,
        metrics: Metrics,
    ) -> Result<Reader, KafkaError> {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
        consumer.assign(&assignment)?;

        let stop = Arc::new(AtomicBool::new(false));
        let alive = Arc::new(AtomicBool::new(true));
        let thread = {
            let stop = stop.clone();
            let alive = alive.clone();
            std::thread::Builder::new()
                .name("registry-reader".to_owned())
                .spawn(move || {
                    let _alive = AliveGuard(alive);
                    run(&consumer, &topic, &state, &applied, &metrics, &stop);
                })
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot start the registry reader thread");
                    KafkaError::Canceled
                })?
        };
        Ok(Reader {
            stop,
            alive,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Whether the thread still runs.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Asks the thread to stop and waits for it (at most one poll interval).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the registry reader thread panicked");
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Do not join here: a drop may happen on an async worker thread.
        self.stop.store(true, Ordering::Release);
    }
}

/// Marks the reader dead when its thread ends, however it ends.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn run(
    consumer: &BaseConsumer,
    topic: &str,
    state: &RwLock<State>,
    applied: &watch::Sender<i64>,
    metrics: &Metrics,
    stop: &AtomicBool,
) {
    tracing::info!(topic, "registry reader started");
    let mut next: i64 = 0;
    let mut delivered_any = false;
    let mut gauges_stale = true;
    let mut last_empty_check: Option<Instant> = None;
    // A broker that is away fails every poll: one line per error kind and half minute.
    let throttle = telemetry::logging::Throttle::new(std::time::Duration::from_secs(30));
    while !stop.load(Ordering::Acquire) {
        let mut idle = false;
        match consumer.poll(POLL_TIMEOUT) {
            Some(Ok(message)) => {
                delivered_any = true;
                let offset = message.offset();
                let outcome = match message.key() {
                    Some(key) => state.write().unwrap_or_else(PoisonError::into_inner).apply(
                        offset,
                        key,
                        message.payload(),
                    ),
                    None => RecordOutcome::Skipped("record without a key".to_owned()),
                };
                let label = match &outcome {
                    RecordOutcome::Applied => "applied",
                    RecordOutcome::Ignored => "ignored",
                    RecordOutcome::Skipped(reason) => {
                        tracing::warn!(
                            topic,
                            offset,
                            reason,
                            "skipping a malformed registry record"
                        );
                        "skipped"
                    }
                };
                metrics.records.with_label_values(&[label]).inc();
                next = next.max(offset + 1);
                gauges_stale = true;
            }
            Some(Err(e)) => {
                let kind = format!("{:?}", e.rdkafka_error_code());
                if let Some(held_back) = throttle.allow(&kind, Instant::now()) {
                    tracing::warn!(topic, error = %e, held_back, "reading the registry topic");
                }
                idle = true;
            }
            None => idle = true,
        }

        match position(consumer, topic) {
            Some(position) => next = next.max(position),
            // Nothing handed out yet: the log may be empty while starting past offset 0
            // (records removed by retention), which the position cannot show. An empty log
            // (low == high) is applied up to its end. Checked at most once a second.
            None if idle
                && !delivered_any
                && last_empty_check.is_none_or(|at| at.elapsed() >= EMPTY_CHECK_INTERVAL) =>
            {
                last_empty_check = Some(Instant::now());
                if let Ok((low, high)) = consumer.fetch_watermarks(topic, 0, POLL_TIMEOUT * 10)
                    && low == high
                {
                    next = next.max(high);
                }
            }
            None => {}
        }

        applied.send_if_modified(|current| {
            if *current < next {
                *current = next;
                true
            } else {
                false
            }
        });
        metrics.applied_offset.set(next);
        if idle && gauges_stale {
            let state = state.read().unwrap_or_else(PoisonError::into_inner);
            metrics
                .schemas
                .set(i64::try_from(state.schema_count()).unwrap_or(i64::MAX));
            metrics
                .subjects
                .set(i64::try_from(state.live_subject_count()).unwrap_or(i64::MAX));
            gauges_stale = false;
        }
    }
    tracing::info!(topic, "registry reader stopped");
}

/// The consumer's position in partition 0: the offset after the last record or transaction
/// marker handed through `poll`.
fn position(consumer: &BaseConsumer, topic: &str) -> Option<i64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, 0)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}
