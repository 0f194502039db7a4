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
