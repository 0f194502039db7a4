//! Support for Huitong's integration tests: the shared broker's address and per-test names.
//!
//! **Invariant:** the tests never skip for want of a broker. Without `KAFKA_BOOTSTRAP` they
//! fail and say how to get one (`ops/dev test` starts a broker and sets it).

use std::time::Duration;

use schemas::ClientSettings;

/// The bootstrap servers of the broker all tests share, from `KAFKA_BOOTSTRAP`.
///
/// # Panics
/// When `KAFKA_BOOTSTRAP` is not set: a missing broker is a failure, never a skip.
pub fn bootstrap() -> String {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => panic!(
            "KAFKA_BOOTSTRAP is not set. Run the tests with `ops/dev test`, which starts a real \
             Kafka broker, or point KAFKA_BOOTSTRAP at a running cluster."
        ),
    }
}

/// Client settings for the shared broker.
pub fn settings() -> ClientSettings {
    ClientSettings::new(bootstrap())
}

/// A name no other test (or earlier run against the same broker) uses, e.g. for a topic,
/// consumer group or transactional id.
pub fn unique(prefix: &str) -> String {
    format!("it-{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// How long a test waits for the broker before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates topics on the shared broker (replication factor 1), failing the test on error.
pub fn create_topics(specs: &[schemas::TopicSpec]) -> Vec<(String, schemas::kafka::TopicOutcome)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a runtime for the admin client");
    runtime
        .block_on(schemas::kafka::ensure_topics(&settings(), specs, 1))
        .expect("creating topics on the shared broker")
}
