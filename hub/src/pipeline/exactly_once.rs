//! Consume–transform–produce, exactly once (as Kafka Streams' `exactly_once_v2`): a stage's
//! consumer reads a batch, the stage turns it into output records, and one Kafka transaction
//! carries the outputs, the state changes and the consumer's offsets
//! (`send_offsets_to_transaction` with the group's metadata, which also fences a zombie that
//! lost the partitions). Only after the commit are the state changes applied locally; after an
//! abort the consumer rewinds to the batch's first offsets and the batch is done again.
//!
//! Everything here blocks, so a stage runs on a thread of its own, never on a tokio worker.

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

use super::PipelineError;
use super::metrics::Metrics;

/// How long one transaction step may take.
const TIMEOUT: Duration = Duration::from_secs(30);

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

/// A stage of the pipeline, driven by [`run`].
pub trait Stage {
    /// State changes of one batch, applied once its transaction committed.
    type Pending;

    /// Turns a batch into outputs (appended to `out`) and pending state changes. An error
    /// aborts the batch; records that cannot be processed must become outputs (quarantine),
    /// not errors.
    fn process(
        &mut self,
        batch: &[Input],
        out: &mut Vec<Output>,
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
}

/// How a stage's consumer and producer are set up.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Stage name, for logs, metrics and ids (`prepare`, `resolve`).
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
#[derive(Default)]
struct Acknowledged(Mutex<Written>);

impl Acknowledged {
    fn take(&self) -> Written {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ClientContext for Acknowledged {}

impl ProducerContext for Acknowledged {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).record(
                message.topic(),
                message.partition(),
                message.offset(),
            );
        }
    }
}

/// Partitions revoked since the loop last looked.
#[derive(Default)]
struct Revocations(Mutex<BTreeSet<(String, i32)>>);

struct StageContext {
    revoked: Arc<Revocations>,
}

impl ClientContext for StageContext {}

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
    let consumer: BaseConsumer<StageContext> = settings
        .client_config()
        .set("group.id", &config.group_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(StageContext {
            revoked: revoked.clone(),
        })?;
    let producer: ThreadedProducer<Acknowledged> = settings
        .client_config()
        .set("transactional.id", &config.transactional_id)
        .set(
            "transaction.timeout.ms",
            config.transaction_timeout.as_millis().to_string(),
        )
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        // lz4: a fraction of zstd's CPU (zstd was a tenth of the resolve stage's), still
        // about halving what repartition, changelog and national topics hold.
        .set("compression.type", "lz4")
        .create_with_context(Acknowledged::default())?;
    producer.init_transactions(TIMEOUT)?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(stage = config.stage, group = %config.group_id, "stage started");

    let mut batch: Vec<Input> = Vec::with_capacity(config.batch_records);
    let mut out: Vec<Output> = Vec::new();
    let mut lag_measured = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if lag_measured.elapsed() >= LAG_EVERY {
            lag_measured = Instant::now();
            if let Some(lag) = lag(&consumer) {
                metrics.lag.with_label_values(&[config.stage]).set(lag);
            }
        }
        batch.clear();
        out.clear();
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
                tracing::info!(stage = config.stage, partitions = ?gone, "partitions revoked");
            }
            match message {
                Some(Ok(m)) => {
                    deadline.get_or_insert_with(|| Instant::now() + config.batch_interval);
                    batch.push(Input {
                        topic: m.topic().to_owned(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                    });
                }
                Some(Err(e)) => {
                    tracing::warn!(stage = config.stage, error = %e, "consumer error");
                }
                // Idle: back to the outer loop, which measures lag and runs due work.
                None if batch.is_empty() => break,
                None => {}
            }
        }
        if batch.is_empty() && !stage.due() {
            continue;
        }
        let started = Instant::now();
        match transact(&consumer, &producer, stage, &batch, &mut out) {
            Ok((pending, written)) => {
                stage.committed(pending, &written)?;
                metrics.committed(config.stage, started.elapsed());
            }
            Err(e) => {
                metrics.aborted(config.stage);
                stage.aborted();
                if e.is_fatal() {
                    return Err(e);
                }
                tracing::warn!(stage = config.stage, code = e.code(), error = %e, "batch aborted; retrying");
                rewind(&consumer, &batch)?;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    tracing::info!(stage = config.stage, "stage stopped");
    Ok(())
}

/// One batch in one transaction: the stage's pending changes and where the records landed.
fn transact<S: Stage>(
    consumer: &BaseConsumer<StageContext>,
    producer: &ThreadedProducer<Acknowledged>,
    stage: &mut S,
    batch: &[Input],
    out: &mut Vec<Output>,
) -> Result<(S::Pending, Written), PipelineError> {
    // Acknowledgements of an aborted transaction's records are of no use.
    producer.context().take();
    producer.begin_transaction()?;
    let result: Result<(S::Pending, Written), PipelineError> = (|| {
        let pending = stage.process(batch, out)?;
        for o in out.iter() {
            send(producer, o)?;
        }
        if !batch.is_empty() {
            let group = consumer
                .group_metadata()
                .ok_or(PipelineError::NoGroupMetadata)?;
            producer.send_offsets_to_transaction(&next_offsets(batch)?, &group, TIMEOUT)?;
        }
        // Every delivery report has been served once nothing is in flight.
        schemas::kafka::await_acknowledgements(producer, TIMEOUT)?;
        commit(producer)?;
        Ok((pending, producer.context().take()))
    })();
    if let Err(e) = &result
        && !e.is_fatal()
    {
        let _ = producer.abort_transaction(TIMEOUT);
    }
    result
}

/// Commits the open transaction. A retriable error (a timeout) leaves the commit in progress,
/// and librdkafka's answer is to call commit again, which finishes it; aborting instead could
/// leave a commit that happened all the same unseen.
fn commit(producer: &ThreadedProducer<Acknowledged>) -> Result<(), KafkaError> {
    let mut attempts = 1;
    loop {
        match producer.commit_transaction(TIMEOUT) {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempts < COMMIT_ATTEMPTS => {
                tracing::warn!(error = %e, attempts, "transaction commit retried");
                attempts += 1;
            }
            done => return done,
        }
    }
}

/// How often a retriable commit error is retried before the batch is given up.
const COMMIT_ATTEMPTS: u32 = 3;

/// How often the stage measures its consumer lag.
const LAG_EVERY: Duration = Duration::from_secs(15);

/// Records between the consumer's positions and the ends of its partitions (read_committed:
/// the last stable offsets); `None` if the broker did not answer.
fn lag(consumer: &BaseConsumer<StageContext>) -> Option<i64> {
    let positions = consumer.position().ok()?;
    let mut lag = 0;
    for e in positions.elements() {
        let (start, end) = consumer
            .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2))
            .ok()?;
        lag += match e.offset() {
            Offset::Offset(at) => (end - at).max(0),
            // Nothing consumed yet: everything is still to read.
            _ => (end - start).max(0),
        };
    }
    Some(lag)
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
