//! The `hub` binary as operators run it: two replicas started at the same moment against one
//! registry topic serve the same schema ids.

use schemas::SchemaName;
use std::collections::BTreeMap;
use tests::{HubProcess, unique};

/// A hub with the registry on `registry_topic`, its pipeline on topics of its own (with few
/// partitions: the defaults are sized for the national stream).
fn start_hub(registry_topic: &str, transactional_id: &str) -> HubProcess {
    let id = unique("hub");
    HubProcess::start(&[
        "--registry-topic".to_owned(),
        registry_topic.to_owned(),
        "--registry-transactional-id".to_owned(),
        transactional_id.to_owned(),
        "--topic-prefix".to_owned(),
        format!("{id}."),
        "--group-prefix".to_owned(),
        id.clone(),
        "--instance-id".to_owned(),
        id.clone(),
        "--state-dir".to_owned(),
        std::env::temp_dir().join(&id).display().to_string(),
        "--stream-partitions".to_owned(),
        "2".to_owned(),
        "--report-partitions".to_owned(),
        "1".to_owned(),
    ])
}

/// subject → id of the latest version, as a hub serves it.
async fn subject_ids(client: &reqwest::Client, url: &str) -> BTreeMap<String, u64> {
    let mut ids = BTreeMap::new();
    for name in SchemaName::all() {
        let subject = name.subject();
        let body: serde_json::Value = client
            .get(format!("{url}/subjects/{subject}/versions/latest"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("{url}: {subject}: {e}"))
            .json()
            .await
            .expect("JSON body");
        ids.insert(subject, body["id"].as_u64().expect("id"));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_started_together_register_one_id_per_schema() {
    let (topic, txn) = (unique("schemas"), unique("registry"));
    let mut a = start_hub(&topic, &txn);
    let mut b = start_hub(&topic, &txn);
    let client = reqwest::Client::new();
    a.wait_ready(&client).await;
    b.wait_ready(&client).await;

    let from_a = subject_ids(&client, &a.url).await;
    let from_b = subject_ids(&client, &b.url).await;
    assert_eq!(from_a, from_b, "both replicas serve the same ids");
    let distinct: std::collections::BTreeSet<_> = from_a.values().collect();
    assert_eq!(
        distinct.len(),
        SchemaName::all().len(),
        "one id per schema: {from_a:?}"
    );
}
