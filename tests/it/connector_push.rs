//! The push endpoint over HTTPS (rustls): a county may submit only its own county's records, a
//! prefecture its counties', a province everything below; out-of-scope records are rejected per
//! record (403 when all are) and never written; a repeated batch is acknowledged, not written
//! twice; an unknown client gets nothing.

use std::net::SocketAddr;

use connectors::config::Level;
use connectors::push::{PushClient, PushConfig};
use schemas::registry::RegistryClient;
use schemas::{TopicKind, TopicSpec};
use serde_json::{Value, json};
use tests::{read_partition, settings, start_registry, unique};

fn client(token: &str, system: &str, region: &str, level: Level) -> PushClient {
    PushClient {
        token: token.to_owned(),
        system_id: system.to_owned(),
        region_code: region.to_owned(),
        level,
    }
}

fn vehicle(id: &str, region: &str) -> Value {
    json!({
        "record_id": id, "region_code": region,
        "vin": id, "plate": "云A12345", "owner_uscc": "11530114015162553X",
        "owner_name": "呈贡区机关事务管理局",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_scoped_by_region_and_idempotent_by_batch() {
    let (_registry, registry_url) = start_registry().await;
    let prefix = format!("{}.", unique("pushraw"));
    let raw_topic = format!("{prefix}vehicle");
    let progress = unique("progress");
    schemas::kafka::ensure_topics(
        &settings(),
        &[
            TopicSpec {
                name: raw_topic.clone(),
                kind: TopicKind::Raw,
                partitions: 1,
            },
            TopicSpec {
                name: progress.clone(),
                kind: TopicKind::State,
                partitions: 1,
            },
        ],
        1,
    )
    .await
    .expect("topics");

    let dir = std::env::temp_dir().join(unique("tls"));
    std::fs::create_dir_all(&dir).expect("folder");
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
    let config = PushConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tls_cert: dir.join("cert.pem"),
        tls_key: dir.join("key.pem"),
        topic_prefix: prefix,
        clients: vec![
            client("county-token", "cg-county", "530114", Level::County),
            client("city-token", "km-city", "530100", Level::Prefecture),
            client("province-token", "yn-province", "530000", Level::Province),
        ],
    };
    let registry = RegistryClient::new(&registry_url).expect("client");
    let (addr, _server): (SocketAddr, _) =
        connectors::push::start(&config, "push-test", &settings(), &progress, &registry)
            .await
            .expect("push endpoint");
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("root"),
        )
        .resolve("localhost", addr)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}/push/v1/vehicle/batches", addr.port());
    let send = |token: Option<&'static str>, body: Value| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let mut request = http.post(&url).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON answer"))
        }
    };

    // A county: its own record in, its neighbour's and its prefecture's out, per record.
    let batch = json!({ "batch_id": "b1", "records": [
        vehicle("V1", "530114"), vehicle("V2", "530102"), vehicle("V3", "530100")
    ]});
    let (status, body) = send(Some("county-token"), batch.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(body["results"][1]["code"], "out_of_scope");
    assert!(
        body["results"][1]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("记录所属行政区划 530102")
    );

    // The same batch again: acknowledged, nothing written twice.
    let (status, body) = send(Some("county-token"), batch).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    // All out of scope: 403.
    let (status, body) = send(
        Some("county-token"),
        json!({ "batch_id": "b2", "records": [vehicle("V4", "500154")] }),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // A prefecture may submit its counties'; a province everything in the province.
    let (status, body) = send(
        Some("city-token"),
        json!({ "batch_id": "c1", "records": [vehicle("V5", "530114"), vehicle("V6", "532901")] }),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let (status, body) = send(
        Some("province-token"),
        json!({ "batch_id": "p1", "records": [vehicle("V7", "533103"), vehicle("V8", "150121")] }),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );

    // A record that does not fit the raw schema is rejected with a code, not written.
    let (status, body) = send(
        Some("province-token"),
        json!({ "batch_id": "p2", "records": [{ "record_id": "V9", "region_code": "530114" }] }),
    )
    .await;
    assert_eq!(
        (status, body["results"][0]["code"].as_str()),
        (200, Some("raw_shape")),
        "{body}"
    );

    // No token, a wrong token: nothing.
    let (status, _) = send(
        None,
        json!({ "batch_id": "x", "records": [vehicle("V10", "530114")] }),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = send(Some("forged"), json!({ "batch_id": "x", "records": [] })).await;
    assert_eq!(status, 401);

    let keys: Vec<String> = read_partition(&raw_topic, "read_committed")
        .into_iter()
        .map(|(k, _)| String::from_utf8(k.expect("key")).expect("UTF-8"))
        .collect();
    assert_eq!(
        keys,
        ["V1", "V5", "V7"],
        "exactly the in-scope records, once"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
