//! Start-up check: is the cluster reachable, and do the raw topics that connectors write exist?

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use schemas::{ClientSettings, Domain, KafkaError, topics};

/// What the cluster holds for one domain's raw topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTopicState {
    /// The domain.
    pub domain: Domain,
    /// The raw topic's name.
    pub topic: String,
    /// Its partition count, or `None` when the topic does not exist.
    pub partitions: Option<usize>,
}

/// Asks the cluster for the raw topics of every domain.
pub fn raw_topics(
    settings: &ClientSettings,
    timeout: Duration,
) -> Result<Vec<RawTopicState>, KafkaError> {
    let consumer: BaseConsumer = settings.client_config().create()?;
    let metadata = consumer.fetch_metadata(None, timeout)?;
    Ok(Domain::ALL
        .into_iter()
        .map(|domain| {
            let topic = topics::raw(domain);
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len());
            RawTopicState {
                domain,
                topic,
                partitions,
            }
        })
        .collect())
}
