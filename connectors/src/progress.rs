//! Each instance's progress (cursor, watermark, file checksums) lives in a compacted Kafka topic,
//! keyed by instance id, and is written in the same transaction as the records it covers
//! (as Kafka Connect's exactly-once sources do, KIP-618).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schemas::ClientSettings;
use serde_json::Value;

/// Reads the latest committed progress of every instance from `topic`.
///
/// Call it only after the instance's transactional producer was initialised: that fences any
/// earlier process of the instance and ends its open transaction, so what is read here is
/// final. Reads up to the high watermark seen at the start, waiting for other instances' open
/// transactions to end: stopping at the last stable offset could miss this instance's latest
/// progress, committed after another instance's transaction began.
pub fn load_all(
    settings: &ClientSettings,
    topic: &str,
    timeout: Duration,
) -> Result<HashMap<String, Value>, KafkaError> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()?;
    let watermarks: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_uncommitted")
        .create()?;
    let metadata = watermarks.fetch_metadata(Some(topic), timeout)?;
    let mut targets = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = watermarks.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            targets.insert(partition.id(), high);
            assignment.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
        }
    }
    let mut progress = HashMap::new();
    if targets.is_empty() {
        return Ok(progress);
    }
    consumer.assign(&assignment)?;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let Some(key) = msg.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    continue;
                };
                match msg.payload().map(serde_json::from_slice::<Value>) {
                    Some(Ok(value)) => {
                        progress.insert(key.to_owned(), value);
                    }
                    // A tombstone: the progress was reset.
                    None => {
                        progress.remove(key);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(instance = key, error = %e, "unreadable progress record skipped");
                    }
                }
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
        let positions = consumer.position()?;
        let done = positions.elements().iter().all(|e| match e.offset() {
            Offset::Offset(o) => o >= targets[&e.partition()],
            _ => false,
        });
        if done {
            return Ok(progress);
        }
        if Instant::now() > deadline {
            return Err(KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            ));
        }
    }
}
