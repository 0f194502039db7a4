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

/// The path of a workspace binary (`hub`, `connector`) built next to the test binary;
/// `ops/dev test` builds them before running the tests.
///
/// # Panics
/// When the binary was not built.
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target profile folder")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (ops/dev test does)",
        path.display()
    );
    path
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding an ephemeral port")
        .port()
}

/// A Kafka message's key and payload.
pub type KeyPayload = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Reads partition 0 of `topic` from its start to its end (`read_committed` or
/// `read_uncommitted`): (key, payload) pairs in offset order.
pub fn read_partition(topic: &str, isolation: &str) -> Vec<KeyPayload> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;

    let consumer: BaseConsumer = settings()
        .client_config()
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("creating consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .expect("assigning partition");
    consumer.assign(&assignment).expect("assigning partition");
    let started = std::time::Instant::now();
    let mut messages = Vec::new();
    loop {
        assert!(started.elapsed() < TIMEOUT, "timed out reading {topic}");
        match consumer.poll(TIMEOUT) {
            Some(Ok(msg)) => messages.push((
                msg.key().map(<[u8]>::to_vec),
                msg.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return messages,
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
}

/// Starts Huitong's Schema Registry in-process on a random port, over a storage topic of its
/// own; returns it (keep it alive) and its URL.
pub async fn start_registry() -> (hub::registry::SchemaRegistry, String) {
    use hub::registry::{RegistryConfig, SchemaRegistry};

    let config = RegistryConfig {
        topic: unique("schemas"),
        transactional_id: unique("registry"),
        ..RegistryConfig::default()
    };
    let registry = SchemaRegistry::start(&settings(), config, &prometheus::Registry::new())
        .await
        .expect("starting the registry");
    registry.wait_ready(TIMEOUT).await.expect("registry ready");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(registry.clone().serve(listener, std::future::pending()));
    (registry, url)
}

/// The three topics a connector test writes to, with unique names.
pub struct ConnectorTopics {
    /// Raw records.
    pub raw: String,
    /// Quarantined records.
    pub quarantine: String,
    /// Instance progress (compacted).
    pub progress: String,
}

/// Creates a raw, a quarantine and a progress topic (one partition each) on the shared broker.
pub async fn connector_topics() -> ConnectorTopics {
    use schemas::{TopicKind, TopicSpec};

    let topics = ConnectorTopics {
        raw: unique("raw"),
        quarantine: unique("quarantine"),
        progress: unique("progress"),
    };
    let specs = [
        (&topics.raw, TopicKind::Raw),
        (&topics.quarantine, TopicKind::Quarantine),
        (&topics.progress, TopicKind::State),
    ]
    .map(|(name, kind)| TopicSpec {
        name: name.clone(),
        kind,
        partitions: 1,
    });
    schemas::kafka::ensure_topics(&settings(), &specs, 1)
        .await
        .expect("creating the connector's topics");
    topics
}
