//! The `hub` binary as operators run it: two replicas started at the same moment against one
//! registry topic serve the same schema ids.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use schemas::SchemaName;
use tests::{binary, bootstrap, free_port, unique};

/// A hub process, stopped with SIGTERM (then SIGKILL) when dropped.
struct Hub {
    child: Child,
    url: String,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_hub(registry_topic: &str, transactional_id: &str) -> Hub {
    let port = free_port();
    let child = Command::new(binary("hub"))
        .args(["--bootstrap", &bootstrap()])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args(["--registry-topic", registry_topic])
        .args(["--registry-transactional-id", transactional_id])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the hub");
    Hub {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(client: &reqwest::Client, hub: &mut Hub) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(status)) = hub.child.try_wait() {
            panic!("hub at {} exited during start-up: {status}", hub.url);
        }
        if let Ok(r) = client.get(format!("{}/readyz", hub.url)).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "hub at {} not ready", hub.url);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    wait_ready(&client, &mut a).await;
    wait_ready(&client, &mut b).await;

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
