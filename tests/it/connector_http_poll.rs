//! `http_poll` instances read the regional simulator's HTTP systems — in each pagination style,
//! and through 5xx answers, 429s, truncated and repeated pages — and the raw topic then holds
//! exactly the records the simulator's ground truth says each system serves.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use connectors::config::ConnectorConfig;
use connectors::instance::Instance;
use schemas::registry::RegistryClient;
use simulator::systems::Protocol;
use simulator::{Simulator, Size, World};
use tests::{ConnectorTopics, connector_topics, read_partition, start_registry, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_systems_are_ingested_exactly_despite_faults() {
    let sim = Arc::new(Simulator::new(World::new(20_251_123, Size::Tiny)));
    let (addr, _server) =
        simulator::server::spawn(sim.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator");
    let base = format!("http://{addr}");
    let truth = sim.ground_truth();
    let (_registry, registry_url) = start_registry().await;
    let client = reqwest::Client::new();

    // One vehicle system per pagination style; the cursor one also gets every fault.
    let styles = [
        (
            Protocol::HttpPage,
            r#"{ style = "page", page_size = 9 }"#,
            false,
        ),
        (
            Protocol::HttpCursor,
            r#"{ style = "cursor", limit = 7 }"#,
            true,
        ),
        (
            Protocol::HttpUpdatedSince,
            r#"{ style = "updated_since", limit = 8 }"#,
            false,
        ),
    ];
    for (protocol, pagination, faults) in styles {
        let profile = sim
            .systems()
            .iter()
            .find(|p| p.protocol == protocol && p.domain.as_str() == "vehicle")
            .or_else(|| {
                sim.systems()
                    .iter()
                    .find(|p| p.domain.as_str() == "vehicle")
            })
            .expect("a vehicle system");
        if faults {
            let response = client
                .post(format!("{base}/systems/{}/faults", profile.id))
                .json(&serde_json::json!({
                    "error_5xx_rate": 0.3,
                    "rate_429_every": 5,
                    "truncate_pages": 2,
                    "repeat_pages": 2,
                }))
                .send()
                .await
                .expect("setting faults");
            assert!(response.status().is_success(), "{}", response.status());
        }
        let ConnectorTopics {
            raw: topic,
            quarantine,
            progress,
        } = connector_topics().await;
        let text = format!(
            "connector_id = \"http-test\"\nregistry_url = \"{registry_url}\"\nprogress_topic = \"{progress}\"\nquarantine_topic = \"{quarantine}\"\n[kafka]\nbootstrap = \"{}\"\n{}",
            tests::bootstrap(),
            simulator::connector_config::instance_toml(
                profile,
                &base,
                &simulator::connector_config::Overrides {
                    instance_id: Some(unique("http")),
                    topic: Some(topic.clone()),
                    pagination: Some(pagination.to_owned()),
                    source: None,
                },
            )
            .expect("vehicle systems map from flat fields")
        );
        let config = ConnectorConfig::parse(Path::new("http.toml"), &text).expect("config");
        let registry = RegistryClient::new(&registry_url).expect("client");
        let instance = config.instances[0].clone();
        let ids = Instance::register(&instance, &registry)
            .await
            .expect("schemas");
        let handle = tokio::runtime::Handle::current();
        let stats = tokio::task::spawn_blocking(move || {
            let mut running =
                Instance::start(&config, instance, ids, handle).expect("instance starts");
            let first = running.poll().expect("poll");
            // Nothing new: a second poll writes nothing.
            let second = running.poll().expect("second poll");
            (first, second)
        })
        .await
        .expect("instance thread");
        assert_eq!(
            stats.1.written, 0,
            "{protocol:?}: a second poll repeats nothing"
        );

        let expected = truth
            .systems
            .iter()
            .find(|s| s.id == profile.id)
            .expect("system in the ground truth");
        let mut keys: BTreeMap<String, usize> = BTreeMap::new();
        for (key, _) in read_partition(&topic, "read_committed") {
            *keys
                .entry(String::from_utf8(key.expect("key")).expect("UTF-8"))
                .or_default() += 1;
        }
        let repeated: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "{protocol:?}: written twice: {repeated:?}"
        );
        let mut want = expected.record_ids.clone();
        want.sort();
        assert_eq!(
            keys.into_keys().collect::<Vec<_>>(),
            want,
            "{protocol:?} ({}): the raw topic holds exactly the system's records",
            profile.id
        );
        assert_eq!(stats.0.quarantined, 0, "{protocol:?}");
    }
}
