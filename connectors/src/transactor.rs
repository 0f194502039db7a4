//! Exactly-once writes: records, quarantined records and the progress they reach go to Kafka in
//! one transaction. Every producer has a stable `transactional.id` — a task slot of the
//! connector (`huitong-connector-<connector id>-slot-<n>`) or a push client system
//! (`huitong-connector-<connector id>-push-<system id>`) — so a second
//! process running the same work fences the first (zombie fencing), as Kafka Connect's
//! exactly-once source tasks do (KIP-618).
//!
//! Messages go to the partition Kafka's default partitioner gives their key (murmur2, as the
//! Java client and [`schemas::partition::partition_for`]; librdkafka's own default is CRC32):
//! raw records are keyed by the partition key of their entity ([`crate::raw`]), so this puts
//! them where the hub resolves that entity. The connector creates its progress topic with one
//! partition, where the partitioner makes no difference.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use schemas::ClientSettings;

/// How long a transaction step may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One message to write in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination topic.
    pub topic: String,
    /// Kafka key.
    pub key: String,
    /// Framed Avro payload.
    pub payload: Vec<u8>,
}

/// One progress record to write with a transaction: the key (an instance id) and its JSON, or
/// `None` for a tombstone (progress forgotten).
pub type ProgressRecord = (String, Option<Vec<u8>>);

/// A transactional producer and the progress topic it commits to.
pub struct Transactor {
    producer: ThreadedProducer<DefaultProducerContext>,
    progress_topic: String,
}

impl Transactor {
    /// The producer with `transactional_id`, initialised: any earlier process with that id is
    /// fenced and its open transaction ended. Blocks.
    pub fn start(
        settings: &ClientSettings,
        transactional_id: &str,
        progress_topic: &str,
    ) -> Result<Self, KafkaError> {
        let producer: ThreadedProducer<DefaultProducerContext> = settings
            .client_config()
            .set("transactional.id", transactional_id)
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create()?;
        producer.init_transactions(TIMEOUT)?;
        Ok(Transactor {
            producer,
            progress_topic: progress_topic.to_owned(),
        })
    }

    /// Writes `records` and the `progress` records atomically. Blocks. On error nothing was
    /// written (or, if the commit's answer was lost, possibly everything: read the progress
    /// back after re-initialising); a fenced producer must not be used again.
    pub fn commit(
        &self,
        records: &[Outgoing],
        progress: &[ProgressRecord],
    ) -> Result<(), KafkaError> {
        self.transaction(|| {
            for r in records {
                self.send(&r.topic, &r.key, Some(&r.payload))?;
            }
            for (key, value) in progress {
                self.send(&self.progress_topic, key, value.as_deref())?;
            }
            Ok(())
        })
    }

    fn transaction(&self, body: impl FnOnce() -> Result<(), KafkaError>) -> Result<(), KafkaError> {
        self.producer.begin_transaction()?;
        let result = body()
            .and_then(|()| schemas::kafka::await_acknowledgements(&self.producer, TIMEOUT))
            .and_then(|()| self.producer.commit_transaction(TIMEOUT));
        if let Err(e) = &result {
            let fatal = matches!(e, KafkaError::Transaction(t) if t.is_fatal());
            if !fatal {
                // Leave the producer usable for the next attempt; the batch is retried whole.
                let _ = self.producer.abort_transaction(TIMEOUT);
            }
        }
        result
    }

    fn send(&self, topic: &str, key: &str, payload: Option<&[u8]>) -> Result<(), KafkaError> {
        let mut record = BaseRecord::<str, [u8]>::to(topic).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}
