//! Topic creation through the admin API, as the hub does at start-up.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use schemas::kafka::TopicOutcome;
use schemas::{TopicKind, TopicSpec};
use tests::{create_topics, settings, unique};

/// The topic's `cleanup.policy`, waiting for the broker to learn of a topic
/// just created: in KRaft, `CreateTopics` returns once the controller has
/// committed it, and a broker may answer `DescribeConfigs` without the topic's
/// entries for a moment after.
fn cleanup_policy(topic: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let admin: AdminClient<DefaultClientContext> =
        settings().client_config().create().expect("admin client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = runtime.block_on(admin.describe_configs(
            &[ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        ));
        let policy = match &answer {
            Ok(results) => results
                .first()
                .and_then(|result| result.as_ref().ok())
                .and_then(|resource| resource.get("cleanup.policy"))
                .and_then(|entry| entry.value.clone()),
            Err(_) => None,
        };
        if let Some(policy) = policy {
            return policy;
        }
        assert!(
            Instant::now() < deadline,
            "cleanup.policy of {topic} not described within 30 s: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn creates_compacted_and_normal_topics_once() {
    let compacted = unique("national");
    let normal = unique("raw");
    let specs = [
        TopicSpec {
            name: compacted.clone(),
            kind: TopicKind::National,
            partitions: 3,
        },
        TopicSpec {
            name: normal.clone(),
            kind: TopicKind::Raw,
            partitions: 2,
        },
    ];

    let first = create_topics(&specs);
    assert!(
        first.iter().all(|(_, o)| *o == TopicOutcome::Created),
        "{first:?}"
    );
    assert_eq!(cleanup_policy(&compacted), "compact");
    assert_eq!(cleanup_policy(&normal), "delete");

    // A second start-up finds the topics and leaves them alone.
    let second = create_topics(&specs);
    assert!(
        second.iter().all(|(_, o)| *o == TopicOutcome::Existed),
        "{second:?}"
    );
}
