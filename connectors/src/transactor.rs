//! Exactly-once writes: an instance's records, its quarantined records and its new progress go
//! to Kafka in one transaction. Every instance has its own `transactional.id`, so a second
//! process running the same instance fences the first (zombie fencing).

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use schemas::ClientSettings;
use serde_json::Value;

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

/// The transactional producer of one instance.
pub struct Transactor {
    producer: ThreadedProducer<DefaultProducerContext>,
    progress_topic: String,
    instance_id: String,
}

impl Transactor {
    /// The producer of instance `instance_id`, initialised: any earlier process of the instance
    /// is fenced and its open transaction ended. Blocks.
    pub fn start(
        settings: &ClientSettings,
        instance_id: &str,
        progress_topic: &str,
    ) -> Result<Self, KafkaError> {
        let producer: ThreadedProducer<DefaultProducerContext> = settings
            .client_config()
            .set(
                "transactional.id",
                format!("huitong-connector-{instance_id}"),
            )
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()?;
        producer.init_transactions(TIMEOUT)?;
        Ok(Transactor {
            producer,
            progress_topic: progress_topic.to_owned(),
            instance_id: instance_id.to_owned(),
        })
    }

    /// Writes `records` and the instance's new `progress` atomically. Blocks. On error nothing
    /// was written; a fenced producer must not be used again.
    pub fn commit(&self, records: &[Outgoing], progress: &Value) -> Result<(), KafkaError> {
        let progress = serde_json::to_vec(progress).expect("JSON values serialise");
        self.transaction(|| {
            for r in records {
                self.send(&r.topic, &r.key, Some(&r.payload))?;
            }
            self.send(&self.progress_topic, &self.instance_id, Some(&progress))
        })
    }

    /// Forgets the instance's progress (a tombstone), so it starts from the beginning.
    pub fn reset(&self) -> Result<(), KafkaError> {
        self.transaction(|| self.send(&self.progress_topic, &self.instance_id, None))
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
