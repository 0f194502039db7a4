//! How a Huitong process reaches the Kafka cluster, and how the contract's topics are created
//! there.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use serde::Deserialize;

use crate::TopicSpec;

/// Connection settings shared by every Kafka client of a process.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// Comma-separated `host:port` list of brokers (`bootstrap.servers`).
    pub bootstrap: String,
    /// Raw librdkafka settings passed through unchanged (TLS, SASL, tuning), e.g.
    /// `security.protocol = "SASL_SSL"`. See librdkafka's CONFIGURATION.md.
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

impl ClientSettings {
    /// Settings for a cluster at `bootstrap` with no extra options.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ClientSettings {
            bootstrap: bootstrap.into(),
            librdkafka_options: BTreeMap::new(),
        }
    }

    /// A librdkafka configuration with the bootstrap servers and pass-through options set;
    /// callers add their client-specific settings on top.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.librdkafka_options {
            config.set(key, value);
        }
        config
    }
}

/// Errors talking to Kafka, each with a stable code for logs and metrics.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The client could not be created or a request failed as a whole.
    #[error("kafka client error: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create a topic.
    #[error("cannot create topic `{topic}`: {code}")]
    TopicCreation {
        /// The topic that was refused.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

impl KafkaError {
    /// A stable, bounded code for metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            KafkaError::Client(_) => "kafka_client",
            KafkaError::TopicCreation { .. } => "topic_creation",
        }
    }
}

/// What [`ensure_topics`] did to one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOutcome {
    /// The topic did not exist and was created.
    Created,
    /// The topic existed already; it was left as it was.
    Existed,
}

/// Creates the topics that do not exist yet; existing topics are left alone, so every process
/// can call this at start-up.
pub async fn ensure_topics(
    settings: &ClientSettings,
    specs: &[TopicSpec],
    replication_factor: i32,
) -> Result<Vec<(String, TopicOutcome)>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let configs: Vec<_> = specs.iter().map(TopicSpec::configs).collect();
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&configs)
        .map(|(spec, configs)| {
            configs.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(replication_factor),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics(&new_topics, &options).await?;
    results
        .into_iter()
        .map(|result| match result {
            Ok(topic) => Ok((topic, TopicOutcome::Created)),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                Ok((topic, TopicOutcome::Existed))
            }
            Err((topic, code)) => Err(KafkaError::TopicCreation { topic, code }),
        })
        .collect()
}

/// Reads `partitions` of `topic` (all of them when `None`) from the beginning up to the high
/// watermarks seen at the start, committed records only, handing each record's key and value
/// (`None` for a tombstone) to `visit` in offset order per partition. Blocks.
///
/// This is how a compacted state topic is loaded back (connector progress, hub state stores).
/// It waits for transactions open at the start to end: stopping at the last stable offset
/// could miss a record committed after another writer's transaction began.
pub fn read_to_end(
    settings: &ClientSettings,
    topic: &str,
    partitions: Option<&[i32]>,
    timeout: Duration,
    visit: impl FnMut(i32, &[u8], Option<&[u8]>),
) -> Result<(), rdkafka::error::KafkaError> {
    read_from(settings, topic, partitions, |_, _| None, timeout, visit).map(|_| ())
}

/// The offsets a partition holds, `low..high` (the high watermark counts uncommitted records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first offset still in the log.
    pub low: i64,
    /// One past the last record written.
    pub high: i64,
}

/// [`read_to_end`], starting in each partition where `start` says given the partition and its
/// [`Span`] (`None`: from its first record), and returning the spans read: everything below
/// each `high` has been handed to `visit`.
pub fn read_from(
    settings: &ClientSettings,
    topic: &str,
    partitions: Option<&[i32]>,
    mut start: impl FnMut(i32, Span) -> Option<i64>,
    timeout: Duration,
    mut visit: impl FnMut(i32, &[u8], Option<&[u8]>),
) -> Result<BTreeMap<i32, Span>, rdkafka::error::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError as ClientError;
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};

    let deadline = std::time::Instant::now() + timeout;
    // Watermarks asked with read_uncommitted are high watermarks; read_committed would give
    // the last stable offset.
    let watermarks: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_uncommitted")
        .create()?;
    let metadata = until_answered(topic, deadline, || {
        watermarks.fetch_metadata(Some(topic), timeout)
    })?;
    let mut spans = BTreeMap::new();
    let mut targets = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let id = partition.id();
        if partitions.is_some_and(|wanted| !wanted.contains(&id)) {
            continue;
        }
        // The high watermark counts uncommitted records too: reading up to it waits for them.
        let (low, high) = until_answered(topic, deadline, || {
            watermarks.fetch_watermarks(topic, id, timeout)
        })?;
        let span = Span { low, high };
        spans.insert(id, span);
        let from = start(id, span);
        if high > from.unwrap_or(low) {
            targets.insert(id, high);
            let offset = from.map_or(Offset::Beginning, Offset::Offset);
            assignment.add_partition_offset(topic, id, offset)?;
        }
    }
    if targets.is_empty() {
        return Ok(spans);
    }
    // Made only when there is something to read: an empty changelog (every store of a new
    // deployment) is restored without a client's start-up.
    // No group: the partitions are assigned, and nothing is ever committed.
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.assign(&assignment)?;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                if let Some(key) = msg.key() {
                    visit(msg.partition(), key, msg.payload());
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
            return Ok(spans);
        }
        if std::time::Instant::now() > deadline {
            return Err(ClientError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            ));
        }
    }
}

/// The number of partitions of each of `topics`, asking until every one has partitions or
/// `timeout` has passed (a topic just created may not be in the metadata yet).
pub fn partition_counts(
    settings: &ClientSettings,
    topics: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, i32>, rdkafka::error::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError as ClientError;

    let deadline = std::time::Instant::now() + timeout;
    let client: BaseConsumer = settings.client_config().create()?;
    let mut counts = BTreeMap::new();
    for topic in topics {
        let count = until_answered(topic, deadline, || {
            let metadata = client.fetch_metadata(Some(topic), timeout)?;
            match metadata.topics().first().map(|t| t.partitions().len()) {
                Some(n) if n > 0 => Ok(i32::try_from(n).unwrap_or(i32::MAX)),
                _ => Err(ClientError::MetadataFetch(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                )),
            }
        })?;
        counts.insert(topic.clone(), count);
    }
    Ok(counts)
}

/// `ask`'s answer, asked again until it is not an error or `deadline` has passed: a topic
/// created a moment ago may have no leader yet (`NotLeaderForPartition`).
fn until_answered<T>(
    topic: &str,
    deadline: std::time::Instant,
    mut ask: impl FnMut() -> Result<T, rdkafka::error::KafkaError>,
) -> Result<T, rdkafka::error::KafkaError> {
    loop {
        match ask() {
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!(%topic, error = %e, "topic not ready; asking again");
                std::thread::sleep(Duration::from_millis(100));
            }
            answer => return answer,
        }
    }
}

/// Waits until Kafka acknowledged every message a threaded producer sent, so that
/// `commit_transaction` finds nothing left to flush: rust-rdkafka's flush, which it runs first,
/// waits for acknowledgements in whole 100 ms polls (`BaseProducer::poll` waits out its
/// timeout), which would make every transaction last at least 100 ms. The producer's own
/// polling thread serves the acknowledgements meanwhile.
pub fn await_acknowledgements<C: rdkafka::producer::ProducerContext>(
    producer: &rdkafka::producer::ThreadedProducer<C>,
    timeout: Duration,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::producer::Producer;

    let deadline = std::time::Instant::now() + timeout;
    while producer.in_flight_count() > 0 {
        if std::time::Instant::now() >= deadline {
            return Err(rdkafka::error::KafkaError::Flush(
                RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
