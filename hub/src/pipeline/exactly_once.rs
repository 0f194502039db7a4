//! Consume–transform–produce, exactly once (as Kafka Streams' `exactly_once_v2`): a stage's
//! consumer reads a batch, the stage turns it into output records, and one Kafka transaction
//! carries the outputs, the state changes and the consumer's offsets
//! (`send_offsets_to_transaction` with the group's metadata, which also fences a zombie that
//! lost the partitions). Only after the commit are the state changes applied locally; after an
//! abort the consumer rewinds to the batch's first offsets and the batch is done again.
//!
//! Everything here blocks, so a stage runs on a thread of its own, never on a tokio worker.
//!
//! Telemetry never blocks a stage: its lag comes from the consumer's statistics
//! (`statistics.interval.ms`, [`ConsumerStats`]), which librdkafka computes from the offsets its
//! fetches already bring back, with no request of its own; the stage reports its progress to
//! [`Health`](super::metrics::Health), which `/readyz` reads.
//!
//! **Recovery.** A lost broker or a cut network fails or times out the batch's transaction
//! steps; the batch is aborted and done again until the broker answers, with no restart of the
//! process. A commit that timed out is resumed (called again) until the broker says committed or
//! aborted, never given up: its outcome is unknown until then, and aborting or re-reading the
//! batch could publish it twice. An abort that times out is resumed the same way. Only a fatal
//! error (a fenced producer) or a producer whose transaction cannot be ended makes the stage
//! start over with a new consumer and producer ([`super`]'s `spawn_stage`). Repeating client
//! errors are logged once per [`LOG_EVERY`] with the count held back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use schemas::ClientSettings;
use serde::Deserialize;
use telemetry::logging::Throttle;

use super::PipelineError;
use super::metrics::{Metrics, StageThread, stall_after};

/// How long one transaction step may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How often the consumer reports its statistics (and so the stage its lag).
const STATS_EVERY: Duration = Duration::from_secs(5);

/// `reconnect.backoff.max.ms` of a stage's clients: once a broker is back, the stage is back
/// within a second (librdkafka's default lets it wait up to 10 s more).
const RECONNECT_BACKOFF_MAX: &str = "1000";

/// The consumer's `session.timeout.ms`: the transaction timeout, at least the broker's minimum
/// (`group.min.session.timeout.ms`, 6 s). A dead process's partitions move on after about the
/// time its open transaction takes to be aborted; and after an outage longer than this, the
/// group forms again once the members the broker still lists expire, this long after it is back
/// (with librdkafka's 45 s default, the stages sat idle that long after a broker restart).
fn session_timeout(transaction_timeout: Duration) -> Duration {
    transaction_timeout.max(Duration::from_secs(6))
}

/// A repeating client error (a broker down, a cut network) is logged at most once this often.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// A consumed record, copied out of the consumer's buffer.
#[derive(Debug, Clone)]
pub struct Input {
    /// Topic it was read from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Kafka key.
    pub key: Option<Vec<u8>>,
    /// Kafka value.
    pub payload: Option<Vec<u8>>,
}

/// A record to write in the batch's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Topic.
    pub topic: String,
    /// Partition, when the stage decides it (changelogs follow their input partition);
    /// otherwise the key's murmur2 hash decides, as Java clients do.
    pub partition: Option<i32>,
    /// Kafka key.
    pub key: String,
    /// Value; `None` writes a tombstone.
    pub payload: Option<Vec<u8>>,
}

/// Where a stage puts the records its batch writes.
pub trait Sink {
    /// Adds a record to the batch's transaction.
    fn push(&mut self, output: Output);
}

/// Collects the records (for tests of what a stage writes).
impl Sink for Vec<Output> {
    fn push(&mut self, output: Output) {
        Vec::push(self, output);
    }
}

/// Sends each record into the open transaction as soon as the stage puts it, so that the
/// client compresses and ships the batch while the stage still works on it, rather than all
/// of it after. A send that fails fails the batch: the first error is kept for the end of it.
struct Sending<'p> {
    producer: &'p ThreadedProducer<Acknowledged>,
    failed: Option<KafkaError>,
}

impl Sink for Sending<'_> {
    fn push(&mut self, output: Output) {
        if self.failed.is_none()
            && let Err(e) = send(self.producer, &output)
        {
            self.failed = Some(e);
        }
    }
}

/// A stage of the pipeline, driven by [`run`].
pub trait Stage {
    /// State changes of one batch, applied once its transaction committed.
    type Pending;

    /// Turns a batch into outputs (put in `out`) and pending state changes. An error
    /// aborts the batch; records that cannot be processed must become outputs (quarantine),
    /// not errors.
    fn process(
        &mut self,
        batch: &[Input],
        out: &mut dyn Sink,
    ) -> Result<Self::Pending, PipelineError>;

    /// Applies a committed batch's state changes; `written` tells where its records landed.
    fn committed(&mut self, pending: Self::Pending, written: &Written)
    -> Result<(), PipelineError>;

    /// The partitions were taken away: forget their state.
    fn revoked(&mut self, partitions: &BTreeSet<(String, i32)>);

    /// A batch's transaction failed and the batch will be done again. Whether the broker
    /// committed it after all is unknown, so state built from committed batches must be
    /// rebuilt from the changelog.
    fn aborted(&mut self) {}

    /// Whether the stage has work of its own (such as expiring state) even without input:
    /// then an empty batch is processed.
    fn due(&self) -> bool {
        false
    }

    /// The partitions the stage's consumer holds, told before a batch whenever they changed.
    fn assignment(&mut self, _held: &BTreeSet<(String, i32)>) {}
}

/// How a stage's consumer and producer are set up.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Stage name, for logs, metrics and ids (`resolve`).
    pub stage: &'static str,
    /// Consumer group id.
    pub group_id: String,
    /// Topics to read.
    pub topics: Vec<String>,
    /// `transactional.id` of this process's producer for the stage; stable across restarts
    /// of the same process, so that a restart fences its predecessor at once.
    pub transactional_id: String,
    /// A batch ends after this many records…
    pub batch_records: usize,
    /// …or this long after its first record.
    pub batch_interval: Duration,
    /// `transaction.timeout.ms`: how long a dead process's open transaction can hold up the
    /// partitions' next owner.
    pub transaction_timeout: Duration,
}

/// Where a committed transaction's records landed: per topic and partition, the offset after
/// its last record there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written(HashMap<String, HashMap<i32, i64>>);

impl Written {
    /// The offset after the transaction's last record in `topic`'s `partition`, if it wrote
    /// there.
    pub fn next_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic)?.get(&partition).copied()
    }

    fn record(&mut self, topic: &str, partition: i32, offset: i64) {
        if !self.0.contains_key(topic) {
            self.0.insert(topic.to_owned(), HashMap::new());
        }
        let next = self
            .0
            .get_mut(topic)
            .expect("inserted above")
            .entry(partition)
            .or_insert(0);
        *next = (*next).max(offset + 1);
    }
}

/// Collects the acknowledged offsets of the open transaction's records.
struct Acknowledged {
    written: Mutex<Written>,
    log: ClientLog,
}

impl Acknowledged {
    fn take(&self) -> Written {
        std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ClientContext for Acknowledged {
    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error("producer", &error, reason);
    }
}

impl ProducerContext for Acknowledged {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(message.topic(), message.partition(), message.offset());
        }
    }
}

/// Partitions revoked since the loop last looked.
#[derive(Default)]
struct Revocations(Mutex<BTreeSet<(String, i32)>>);

/// The stage's client logs: repeating errors throttled per client and code.
#[derive(Clone)]
struct ClientLog {
    stage: &'static str,
    throttle: Arc<Throttle>,
}

impl ClientLog {
    /// `Some(lines held back)` when a line for `key` may be written now.
    fn allow(&self, key: &str) -> Option<u64> {
        self.throttle.allow(key, Instant::now())
    }

    fn error(&self, client: &str, error: &KafkaError, reason: &str) {
        let code = error
            .rdkafka_error_code()
            .map_or_else(|| "other".to_owned(), |c| format!("{c:?}"));
        if let Some(held_back) = self.allow(&format!("{client}\u{0}{code}")) {
            tracing::warn!(stage = self.stage, client, %error, reason, held_back, "kafka client error");
        }
    }

    /// A batch failed and will be done again: logged once per code and interval.
    fn failed_batch(&self, error: &PipelineError) {
        if let Some(held_back) = self.allow(&format!("batch\u{0}{}", error.code())) {
            tracing::warn!(stage = self.stage, code = error.code(), %error, held_back, "batch aborted; retrying");
        }
    }
}

struct StageContext {
    revoked: Arc<Revocations>,
    metrics: Metrics,
    health: StageThread,
    log: ClientLog,
}

impl ClientContext for StageContext {
    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice::<ConsumerStats>(statistics) {
            Ok(stats) => self.metrics.lag(&self.health, stats.lag(), Instant::now()),
            Err(e) => {
                if let Some(held_back) = self.log.allow("statistics") {
                    tracing::warn!(stage = self.log.stage, error = %e, held_back, "unreadable consumer statistics");
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error("consumer", &error, reason);
    }
}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut revoked = self.revoked.0.lock().unwrap_or_else(|e| e.into_inner());
            for e in list.elements() {
                revoked.insert((e.topic().to_owned(), e.partition()));
            }
        }
    }
}

/// Runs `stage` until `stop` is set or a fatal error (e.g. the producer was fenced by a newer
/// process with the same id). Blocks.
pub fn run<S: Stage>(
    settings: &ClientSettings,
    config: &LoopConfig,
    stage: &mut S,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), PipelineError> {
    let revoked = Arc::new(Revocations::default());
    let log = ClientLog {
        stage: config.stage,
        throttle: Arc::new(Throttle::new(LOG_EVERY)),
    };
    let health = metrics.health.thread(
        config.stage,
        &config.transactional_id,
        stall_after(config.transaction_timeout),
        Instant::now(),
    );
    let consumer: BaseConsumer<StageContext> = settings
        .client_config()
        .set("group.id", &config.group_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Range gives every member the same partition numbers of every topic with the same
        // count, as Kafka Streams co-partitions a sub-topology's inputs: partition p of
        // `raw.<domain>` goes with partition p of `hub.repartition.<domain>` and its store, so
        // reports already in the right raw partition are resolved where they are read.
        .set("partition.assignment.strategy", "range")
        .set(
            "statistics.interval.ms",
            STATS_EVERY.as_millis().to_string(),
        )
        .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX)
        .set(
            "session.timeout.ms",
            session_timeout(config.transaction_timeout)
                .as_millis()
                .to_string(),
        )
        .create_with_context(StageContext {
            revoked: revoked.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            log: log.clone(),
        })?;
    let producer: ThreadedProducer<Acknowledged> = settings
        .client_config()
        .set("transactional.id", &config.transactional_id)
        .set(
            "transaction.timeout.ms",
            config.transaction_timeout.as_millis().to_string(),
        )
        .set("enable.idempotence", "true")
        .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        // lz4: a fraction of zstd's CPU (zstd was a tenth of the resolve stage's), still
        // about halving what repartition, changelog and national topics hold.
        .set("compression.type", "lz4")
        .create_with_context(Acknowledged {
            written: Mutex::default(),
            log: log.clone(),
        })?;
    producer.init_transactions(TIMEOUT)?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(stage = config.stage, group = %config.group_id, "stage started");

    let mut holding: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut batch: Vec<Input> = Vec::with_capacity(config.batch_records);
    while !stop.load(Ordering::Acquire) {
        batch.clear();
        let filling = Instant::now();
        let mut deadline: Option<Instant> = None;
        while batch.len() < config.batch_records && !stop.load(Ordering::Acquire) {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_millis(200),
            };
            if wait.is_zero() {
                break;
            }
            let message = consumer.poll(wait.min(Duration::from_millis(100)));
            // Records read from partitions since revoked belong to their next owner now.
            let gone = std::mem::take(&mut *revoked.0.lock().unwrap_or_else(|e| e.into_inner()));
            if !gone.is_empty() {
                batch.retain(|i| !gone.contains(&(i.topic.clone(), i.partition)));
                stage.revoked(&gone);
                if batch.is_empty() {
                    health.released();
                }
                tracing::info!(stage = config.stage, partitions = ?gone, "partitions revoked");
            }
            match message {
                Some(Ok(m)) => {
                    if deadline.is_none() {
                        deadline = Some(Instant::now() + config.batch_interval);
                        health.holding();
                    }
                    batch.push(Input {
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                    });
                }
                // E.g. fenced by a static member with the same id: start over.
                Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => return Err(e.into()),
                // The broker is away, a partition has no leader: the client retries by itself.
                Some(Err(e)) => log.error("poll", &e, ""),
                // Idle: back to the outer loop, which runs due work.
                None if batch.is_empty() => break,
                None => {}
            }
        }
        // A rebalance may have given the stage partitions it has no input from yet, whose
        // state it still keeps (expiring stream states).
        let now_held = held(&consumer.assignment()?);
        if now_held != holding {
            tracing::info!(
                stage = config.stage,
                partitions = now_held.len(),
                "partitions held"
            );
            stage.assignment(&now_held);
            holding = now_held;
        }
        if batch.is_empty() && !stage.due() {
            continue;
        }
        let started = Instant::now();
        match transact(&consumer, &producer, stage, &batch, stop) {
            Ok((pending, written, processed)) => {
                stage.committed(pending, &written)?;
                metrics.committed(&health, started.elapsed(), Instant::now());
                // Where a batch's time goes (filling it, the stage's work, the rest of the
                // transaction): the first question when a stage runs below its ceiling.
                tracing::debug!(
                    stage = config.stage,
                    records = batch.len(),
                    fill_ms = started.duration_since(filling).as_millis() as u64,
                    process_ms = processed.as_millis() as u64,
                    rest_ms = started.elapsed().saturating_sub(processed).as_millis() as u64,
                    "batch committed"
                );
            }
            Err(e) => {
                metrics.aborted(config.stage);
                stage.aborted();
                if e.is_fatal() {
                    return Err(e);
                }
                log.failed_batch(&e);
                // A transaction that cannot be ended leaves the producer unusable: start over.
                abort(&producer, stop)?;
                rewind(&consumer, &batch)?;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    health.released();
    tracing::info!(stage = config.stage, "stage stopped");
    Ok(())
}

/// One batch in one transaction: the stage's pending changes, where the records landed and
/// how long the stage's own work took. On an error the transaction is left open (or was never
/// begun): the caller aborts it.
fn transact<S: Stage>(
    consumer: &BaseConsumer<StageContext>,
    producer: &ThreadedProducer<Acknowledged>,
    stage: &mut S,
    batch: &[Input],
    stop: &AtomicBool,
) -> Result<(S::Pending, Written, Duration), PipelineError> {
    // Acknowledgements of an aborted transaction's records are of no use.
    producer.context().take();
    producer.begin_transaction()?;
    let mut sending = Sending {
        producer,
        failed: None,
    };
    let processing = Instant::now();
    let pending = stage.process(batch, &mut sending)?;
    if let Some(e) = sending.failed {
        return Err(e.into());
    }
    let processed = processing.elapsed();
    if !batch.is_empty() {
        let group = consumer
            .group_metadata()
            .ok_or(PipelineError::NoGroupMetadata)?;
        producer.send_offsets_to_transaction(&next_offsets(batch)?, &group, TIMEOUT)?;
    }
    // Every delivery report has been served once nothing is in flight.
    schemas::kafka::await_acknowledgements(producer, TIMEOUT)?;
    commit(producer, stop)?;
    Ok((pending, producer.context().take(), processed))
}

/// The (topic, partition) pairs of an assignment.
fn held(assignment: &TopicPartitionList) -> BTreeSet<(String, i32)> {
    assignment
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

/// Commits the open transaction. A retriable error (a timeout, the broker away) leaves the
/// commit in progress, and librdkafka's answer is to call commit again, which resumes it: until
/// it answers committed or failed, or the stage stops. Aborting instead could leave a commit
/// that happened all the same unseen (and the batch done twice); librdkafka refuses an abort
/// while the commit is in progress anyway.
fn commit(producer: &ThreadedProducer<Acknowledged>, stop: &AtomicBool) -> Result<(), KafkaError> {
    let stage = producer.context().log.stage;
    resume(stage, "commit", stop, || {
        producer.commit_transaction(TIMEOUT)
    })
}

/// Aborts the open transaction, resuming an abort that timed out, until it is done or the stage
/// stops. An error means the producer's transaction cannot be ended: the stage must start over.
fn abort(producer: &ThreadedProducer<Acknowledged>, stop: &AtomicBool) -> Result<(), KafkaError> {
    let stage = producer.context().log.stage;
    resume(stage, "abort", stop, || producer.abort_transaction(TIMEOUT))
}

/// Calls a resumable transaction step again while it fails with a retriable error and the stage
/// runs, logging the 1st, 2nd, 4th, 8th… retry.
fn resume(
    stage: &str,
    step: &str,
    stop: &AtomicBool,
    mut call: impl FnMut() -> Result<(), KafkaError>,
) -> Result<(), KafkaError> {
    let mut attempts: u32 = 1;
    loop {
        match call() {
            Err(KafkaError::Transaction(e))
                if e.is_retriable() && !stop.load(Ordering::Acquire) =>
            {
                if attempts.is_power_of_two() {
                    tracing::warn!(stage, step, error = %e, attempts, "transaction step not confirmed yet; resuming it");
                }
                attempts += 1;
            }
            done => return done,
        }
    }
}

/// What the stage reads of the consumer's statistics (librdkafka's `STATISTICS.md`): per
/// topic and partition, the offsets its lag derives from.
#[derive(Debug, Default, Deserialize)]
struct ConsumerStats {
    #[serde(default)]
    topics: HashMap<String, TopicStats>,
}

#[derive(Debug, Default, Deserialize)]
struct TopicStats {
    #[serde(default)]
    partitions: HashMap<i32, PartitionStats>,
}

/// One partition's offsets; librdkafka says -1001 (offsets) or -1 (lags) for unknown.
#[derive(Debug, Deserialize)]
struct PartitionStats {
    /// Assigned to this consumer (not a partition it only knows of).
    #[serde(default)]
    desired: bool,
    /// The last stable offset minus the offset after the last record handed to the stage
    /// (stored automatically; past transaction markers).
    #[serde(default = "unknown")]
    consumer_lag_stored: i64,
    /// The last stable offset minus the group's committed offset.
    #[serde(default = "unknown")]
    consumer_lag: i64,
    /// The first offset the broker holds.
    #[serde(default = "unknown")]
    lo_offset: i64,
    /// The last stable offset: with read_committed, the end of what the stage can read.
    #[serde(default = "unknown")]
    ls_offset: i64,
}

fn unknown() -> i64 {
    -1
}

impl ConsumerStats {
    /// Records not read yet, summed over the assigned partitions whose lag is known.
    fn lag(&self) -> i64 {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|(partition, p)| **partition >= 0 && p.desired)
            .filter_map(|(_, p)| p.lag())
            .sum()
    }
}

impl PartitionStats {
    /// From the last record the stage read; before that, from the group's committed offset;
    /// with neither (a new group, `auto.offset.reset=earliest`), everything the broker holds.
    fn lag(&self) -> Option<i64> {
        if self.consumer_lag_stored >= 0 {
            Some(self.consumer_lag_stored)
        } else if self.consumer_lag >= 0 {
            Some(self.consumer_lag)
        } else if self.ls_offset >= 0 && self.lo_offset >= 0 {
            Some((self.ls_offset - self.lo_offset).max(0))
        } else {
            None
        }
    }
}

/// The offsets to commit: one past the last record read of each partition.
fn next_offsets(batch: &[Input]) -> Result<TopicPartitionList, KafkaError> {
    let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for i in batch {
        let o = last.entry((&i.topic, i.partition)).or_insert(i.offset);
        *o = (*o).max(i.offset);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in last {
        list.add_partition_offset(topic, partition, Offset::Offset(offset + 1))?;
    }
    Ok(list)
}

/// Points the consumer back at the first record of the aborted batch in each partition.
fn rewind(consumer: &BaseConsumer<StageContext>, batch: &[Input]) -> Result<(), KafkaError> {
    let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for i in batch {
        let o = first.entry((&i.topic, i.partition)).or_insert(i.offset);
        *o = (*o).min(i.offset);
    }
    for ((topic, partition), offset) in first {
        consumer.seek(topic, partition, Offset::Offset(offset), TIMEOUT)?;
    }
    Ok(())
}

fn send(producer: &ThreadedProducer<Acknowledged>, output: &Output) -> Result<(), KafkaError> {
    let mut record = BaseRecord::<str, [u8]>::to(&output.topic).key(&output.key);
    if let Some(partition) = output.partition {
        record = record.partition(partition);
    }
    if let Some(payload) = &output.payload {
        record = record.payload(payload);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(topic: &str, partition: i32, offset: i64) -> Input {
        Input {
            topic: topic.to_owned(),
            partition,
            offset,
            key: None,
            payload: None,
        }
    }

    #[test]
    fn lag_comes_from_the_assigned_partitions_in_the_statistics() {
        // One partition's statistics (librdkafka's names, -1001 = invalid offset, -1 = unknown
        // lag) → its lag.
        #[rustfmt::skip]
        let cases = [
            ("read up to the end", r#""desired":true,"consumer_lag_stored":0,"consumer_lag":40,"lo_offset":0,"ls_offset":40"#, Some(0)),
            ("records left after the last read", r#""desired":true,"consumer_lag_stored":12,"consumer_lag":30,"lo_offset":0,"ls_offset":40"#, Some(12)),
            ("nothing read yet: from the committed offset", r#""desired":true,"consumer_lag_stored":-1,"consumer_lag":25,"lo_offset":0,"ls_offset":40"#, Some(25)),
            ("a new group: everything held", r#""desired":true,"consumer_lag_stored":-1,"consumer_lag":-1,"lo_offset":5,"ls_offset":40"#, Some(35)),
            ("not fetched yet", r#""desired":true,"consumer_lag_stored":-1,"consumer_lag":-1,"lo_offset":-1001,"ls_offset":-1001"#, None),
            ("fields missing", r#""desired":true"#, None),
        ];
        for (name, fields, lag) in cases {
            let p: PartitionStats = serde_json::from_str(&format!("{{{fields}}}")).expect(name);
            assert_eq!(p.lag(), lag, "{name}");
        }
    }

    #[test]
    fn consumer_lag_sums_assigned_partitions_only() {
        // Trimmed from a real report: partition -1 is librdkafka's unassigned placeholder, and
        // partition 2 of raw.vehicle was revoked (desired false).
        let json = r#"{"name":"rdkafka#consumer-1","type":"consumer","ts":1,"brokers":{},
          "topics":{
            "raw.vehicle":{"topic":"raw.vehicle","partitions":{
              "0":{"partition":0,"desired":true,"consumer_lag_stored":3,"consumer_lag":9,"lo_offset":0,"ls_offset":9,"fetch_state":"active"},
              "2":{"partition":2,"desired":false,"consumer_lag_stored":50,"consumer_lag":50,"lo_offset":0,"ls_offset":50},
              "-1":{"partition":-1,"desired":false,"consumer_lag_stored":-1,"consumer_lag":-1,"lo_offset":-1001,"ls_offset":-1001}}},
            "raw.institution":{"topic":"raw.institution","partitions":{
              "0":{"partition":0,"desired":true,"consumer_lag_stored":-1,"consumer_lag":4,"lo_offset":0,"ls_offset":4},
              "1":{"partition":1,"desired":true,"consumer_lag_stored":-1,"consumer_lag":-1,"lo_offset":-1001,"ls_offset":-1001}}}},
          "cgrp":{"state":"up"}}"#;
        let stats: ConsumerStats = serde_json::from_str(json).expect("statistics");
        assert_eq!(stats.lag(), 7);
        let none: ConsumerStats =
            serde_json::from_str(r#"{"name":"c","topics":{}}"#).expect("empty");
        assert_eq!(none.lag(), 0);
    }

    #[test]
    fn written_offsets_are_one_past_the_last_acknowledged() {
        let mut written = Written::default();
        for (topic, partition, offset) in [("c", 0, 5), ("c", 0, 3), ("c", 1, 0), ("d", 0, 9)] {
            written.record(topic, partition, offset);
        }
        assert_eq!(written.next_offset("c", 0), Some(6));
        assert_eq!(written.next_offset("c", 1), Some(1));
        assert_eq!(written.next_offset("d", 0), Some(10));
        assert_eq!(written.next_offset("d", 1), None);
        assert_eq!(written.next_offset("e", 0), None);
    }

    #[test]
    fn offsets_to_commit_are_one_past_the_last_read() {
        let batch = [
            input("raw.vehicle", 0, 7),
            input("raw.vehicle", 1, 3),
            input("raw.vehicle", 0, 9),
            input("raw.institution", 0, 0),
        ];
        let list = next_offsets(&batch).expect("list");
        let got: Vec<(String, i32, Offset)> = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect();
        assert_eq!(
            got,
            [
                ("raw.institution".to_owned(), 0, Offset::Offset(1)),
                ("raw.vehicle".to_owned(), 0, Offset::Offset(10)),
                ("raw.vehicle".to_owned(), 1, Offset::Offset(4)),
            ]
        );
    }
}
