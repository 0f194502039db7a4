//! Each instance's progress (cursor, watermark, file checksums) lives in a compacted Kafka topic,
//! keyed by instance id, and is written in the same transaction as the records it covers
//! (as Kafka Connect's exactly-once sources do, KIP-618).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::error::KafkaError;
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
    let mut progress = HashMap::new();
    schemas::kafka::read_to_end(settings, topic, None, timeout, |_, key, payload| {
        let Ok(key) = std::str::from_utf8(key) else {
            return;
        };
        match payload.map(serde_json::from_slice::<Value>) {
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
    })?;
    Ok(progress)
}
