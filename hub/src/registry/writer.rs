//! Writes, serialised across every replica by Kafka's transactional fencing.
//!
//! All replicas' writers share one `transactional.id`. `init_transactions` gives the caller a
//! new producer epoch, which fences the previous holder (its next transactional call fails)
//! and completes whatever transaction that holder left open. So a replica that committed a
//! transaction held the newest epoch from its `init_transactions` to its commit, and no other
//! replica committed in between. Each write therefore:
//!
//! 1. reads the log to its end (the end offset after the request started; the local reader
//!    must reach it) and decides on that state — nothing to write (schema already registered,
//!    level already set) or rejected (incompatible, not found) ends here, without a write;
//! 2. if this process holds no producer yet: creates one and `init_transactions` (fencing the
//!    others), then goes back to 1, since the init may have completed another replica's commit;
//! 3. `begin_transaction` → produce the records → `commit_transaction`;
//! 4. waits until the local reader applied the records it wrote (their offsets come from the
//!    delivery reports; the end offset would not do: the coordinator writes the commit
//!    markers after `commit_transaction` returns, so the last stable offset may still be
//!    behind them).
//!
//! Any failure in 3 drops the producer and starts over at 1 after a jittered backoff: a
//! fenced replica re-reads what the fencing replica wrote before it decides again. Decisions
//! are recomputed from the log each time, so retries are idempotent (a registration that did
//! commit is found in step 1). Blocking librdkafka calls run on `spawn_blocking` threads.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tokio::time::Instant;

use super::record::LogRecord;
use super::state::{Decision, Op, Outcome};
use super::{Inner, RegistryError};

/// Attempts per write before giving up.
const MAX_ATTEMPTS: u32 = 20;
/// First backoff; doubles per attempt up to [`MAX_BACKOFF`], with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Upper bound on one blocking transactional call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

type TxProducer = BaseProducer<Deliveries>;

/// Remembers the highest offset a delivery report confirmed and the first delivery error of
/// the current transaction.
#[derive(Default)]
struct Deliveries {
    last_offset: AtomicI64,
    error: Mutex<Option<KafkaError>>,
}

impl Deliveries {
    fn reset(&self) {
        self.last_offset.store(-1, Ordering::Release);
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                self.last_offset
                    .fetch_max(message.offset(), Ordering::AcqRel);
            }
            Err((error, _)) => {
                self.error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(|| error.clone());
            }
        }
    }
}

/// The process's transactional producer, if it holds one.
#[derive(Default)]
pub(crate) struct Writer {
    producer: Option<Arc<TxProducer>>,
}

impl Writer {
    /// Drops the producer on a blocking thread (dropping flushes and may block).
    fn discard(&mut self) {
        if let Some(producer) = self.producer.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || drop(producer));
                }
                Err(_) => drop(producer),
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.discard();
    }
}

/// Why a transaction attempt failed.
struct Failure {
    error: KafkaError,
    /// `commit_transaction` was called: the records may be in the log.
    maybe_committed: bool,
}

fn is_fencing(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::TransactionCoordinatorFenced
        )
    )
}

/// Runs `op`, returning its outcome and whether records were committed.
pub(crate) async fn execute(inner: &Inner, op: Op) -> Result<(Outcome, bool), RegistryError> {
    let deadline = Instant::now() + inner.config.operation_timeout;
    let mut writer = tokio::time::timeout_at(deadline, inner.writer.lock())
        .await
        .map_err(|_| RegistryError::Timeout {
            operation: "waiting for earlier writes",
        })?;
    let mut maybe_committed = false;
    let mut attempt: u32 = 0;
    let mut last_error: Option<RegistryError> = None;
    loop {
        if attempt >= MAX_ATTEMPTS || Instant::now() >= deadline {
            writer.discard();
            return Err(last_error.unwrap_or(RegistryError::Timeout {
                operation: "registry write",
            }));
        }

        // 1. Read to the end and decide.
        if let Err(e) = inner.sync(deadline).await {
            attempt += 1;
            tracing::warn!(op = op.kind(), attempt, error = %e, "registry write: cannot read the log to its end");
            inner
                .metrics
                .write_retries
                .with_label_values(&["kafka"])
                .inc();
            last_error = Some(e);
            backoff(attempt, deadline).await;
            continue;
        }
        let decision = inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .decide(&op, inner.config.default_compatibility, maybe_committed)?;
        let (records, outcome) = match decision {
            Decision::Done(outcome) => return Ok((outcome, false)),
            Decision::Write(records, outcome) => (records, outcome),
        };

        // 2. Hold the newest producer epoch.
        let Some(producer) = writer.producer.clone() else {
            match init_producer(inner).await {
                Ok(producer) => {
                    tracing::info!(
                        transactional_id = %inner.config.transactional_id,
                        "registry writer holds the transactional id"
                    );
                    writer.producer = Some(producer);
                }
                Err(e) => {
                    attempt += 1;
                    let reason = if is_fencing(&e) { "fenced" } else { "kafka" };
                    tracing::warn!(op = op.kind(), attempt, reason, error = %e, "registry write: init_transactions failed");
                    inner
                        .metrics
                        .write_retries
                        .with_label_values(&[reason])
                        .inc();
                    last_error = Some(retry_error(e));
                    backoff(attempt, deadline).await;
                }
            }
            continue;
        };

        // 3. Write in one transaction.
        let topic = inner.config.topic.clone();
        let started = Instant::now();
        let result = match tokio::task::spawn_blocking(move || {
            transact(&producer, &topic, &records)
        })
        .await
        {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, "registry transaction task failed");
                Err(Failure {
                    error: KafkaError::Canceled,
                    maybe_committed: true,
                })
            }
        };
        match result {
            Ok(last_offset) => {
                let committed = started.elapsed();
                // 4. Apply what we wrote before answering.
                if let Err(e) = inner
                    .wait_applied(last_offset + 1, deadline, "applying a registry write")
                    .await
                {
                    // The next write must not decide on a state without this one: make it
                    // start with init_transactions, which waits for this commit to complete,
                    // and read the log to its end after that.
                    tracing::warn!(op = op.kind(), error = %e, "registry write committed but not yet applied locally");
                    writer.discard();
                }
                tracing::debug!(
                    op = op.kind(),
                    commit_ms = committed.as_millis() as u64,
                    applied_ms = started.elapsed().as_millis() as u64,
                    "registry transaction committed"
                );
                return Ok((outcome, true));
            }
            Err(failure) => {
                attempt += 1;
                maybe_committed |= failure.maybe_committed;
                let reason = if is_fencing(&failure.error) {
                    "fenced"
                } else {
                    "kafka"
                };
                tracing::info!(op = op.kind(), attempt, reason, error = %failure.error, "registry write attempt failed; retrying");
                inner
                    .metrics
                    .write_retries
                    .with_label_values(&[reason])
                    .inc();
                writer.discard();
                last_error = Some(retry_error(failure.error));
                backoff(attempt, deadline).await;
            }
        }
    }
}

/// The error a write ends with when retries run out: fencing that never stopped is a
/// timeout; anything else is a store error.
fn retry_error(error: KafkaError) -> RegistryError {
    if is_fencing(&error) {
        RegistryError::Timeout {
            operation: "registry write (other replicas kept taking over the transactional id)",
        }
    } else {
        RegistryError::Kafka {
            operation: "registry transaction",
            source: error,
        }
    }
}

async fn init_producer(inner: &Inner) -> Result<Arc<TxProducer>, KafkaError> {
    let config = inner
        .settings
        .client_config()
        .set("transactional.id", &inner.config.transactional_id)
        .set("transaction.timeout.ms", "15000")
        .set("linger.ms", "0")
        .set("retry.backoff.ms", "10")
        .clone();
    tokio::task::spawn_blocking(move || {
        let producer: TxProducer = config.create_with_context(Deliveries::default())?;
        producer.init_transactions(CALL_TIMEOUT)?;
        Ok(Arc::new(producer))
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}

/// Produces `records` to partition 0 in one transaction; returns the offset of the last one.
/// Blocks.
fn transact(producer: &TxProducer, topic: &str, records: &[LogRecord]) -> Result<i64, Failure> {
    // A fenced producer fails its queued messages as "purged"; its fatal error says why.
    let cause = |error: KafkaError| match producer.client().fatal_error() {
        Some((code, _)) => KafkaError::MessageProduction(code),
        None => error,
    };
    let not_committed = |error| Failure {
        error: cause(error),
        maybe_committed: false,
    };
    producer.context().reset();
    producer.begin_transaction().map_err(not_committed)?;
    for record in records {
        let mut message = BaseRecord::<[u8], [u8], ()>::with_opaque_to(topic, ())
            .partition(0)
            .key(&record.key[..]);
        if let Some(value) = &record.value {
            message = message.payload(&value[..]);
        }
        if let Err((error, _)) = producer.send(message) {
            // Leave the open transaction to the next init_transactions, which aborts it.
            return Err(not_committed(error));
        }
    }
    // Wait for the delivery reports ourselves: `commit_transaction` flushes first, and
    // rust-rdkafka's flush polls in 100 ms steps, which would add 100 ms to every write.
    let flushed_by = std::time::Instant::now() + CALL_TIMEOUT;
    while producer.in_flight_count() > 0 {
        if std::time::Instant::now() >= flushed_by {
            return Err(not_committed(KafkaError::Flush(
                RDKafkaErrorCode::OperationTimedOut,
            )));
        }
        producer.poll(Duration::from_millis(1));
    }
    // A failed delivery (e.g. fenced) dooms the transaction: do not try to commit it.
    let delivery_error = producer
        .context()
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(error) = delivery_error {
        return Err(not_committed(error));
    }
    let last_offset = producer.context().last_offset.load(Ordering::Acquire);
    if last_offset < 0 {
        return Err(not_committed(KafkaError::MessageProduction(
            RDKafkaErrorCode::Fail,
        )));
    }
    producer
        .commit_transaction(CALL_TIMEOUT)
        .map_err(|error| Failure {
            error: cause(error),
            maybe_committed: true,
        })?;
    Ok(last_offset)
}

/// Sleeps `FIRST_BACKOFF * 2^(attempt-1)` (capped), times a random factor in [0.5, 1), but
/// never past `deadline`.
async fn backoff(attempt: u32, deadline: Instant) {
    let exponential = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let random = RandomState::new().build_hasher().finish();
    let factor = 0.5 + (random % 1000) as f64 / 2000.0;
    let until = (Instant::now() + exponential.mul_f64(factor)).min(deadline);
    tokio::time::sleep_until(until).await;
}
