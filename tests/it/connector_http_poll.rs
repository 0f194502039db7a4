//! `http_poll` instances read the regional simulator's HTTP systems — in each pagination style
//! and in each dialect of regional APIs (other parameter names, nested items, totals of records
//! or pages or `hasMore`, offsets, `Link` headers, API keys from a file), through 5xx answers,
//! 429s (`Retry-After` in seconds and as an HTTP date), truncated and repeated pages and
//! requests that outlast the instance's timeout, and over mTLS — and the raw topic then holds
//! exactly the records the simulator's ground truth says each system serves.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use connectors::config::ConnectorConfig;
use connectors::instance::{Instance, InstanceError, PollStats};
use connectors::slot::Slot;
use schemas::registry::RegistryClient;
use simulator::systems::{GroundTruth, SystemProfile};
use simulator::{Simulator, Size, World};
use tests::{
    ConnectorTopics, TestCa, connector_topics, raw_record_ids, read_partition, start_registry,
    unique,
};

/// The `[instance.source]` body reading `profile` at `base` with `pagination`, plus `extra`
/// settings (timeout, TLS files), and the field holding the record id.
fn http_source(
    base: &str,
    profile: &SystemProfile,
    pagination: &str,
    extra: &str,
) -> (String, String) {
    (
        format!(
            "kind = \"http_poll\"\nurl = \"{base}/systems/{}/records\"\n\
             bearer_token = \"{}\"\npagination = {pagination}\n{extra}",
            profile.id, profile.token
        ),
        profile.id_field.clone(),
    )
}

/// Runs an instance of `profile` with `source` on topics of its own: polls until the source
/// has nothing new, then once more. Returns both polls' stats (or the error that ended the
/// first) and the raw topic.
async fn ingest(
    profile: &SystemProfile,
    registry_url: &str,
    source: (String, String),
) -> (Result<(PollStats, PollStats), InstanceError>, String) {
    let ConnectorTopics {
        raw: topic,
        quarantine,
        progress,
    } = connector_topics().await;
    let text = format!(
        "connector_id = \"{}\"\nregistry_url = \"{registry_url}\"\nprogress_topic = \"{progress}\"\nquarantine_topic = \"{quarantine}\"\n[kafka]\nbootstrap = \"{}\"\n{}",
        // Its own connector id: the slots' transactional ids derive from it, and the tests
        // of this file run at once.
        tests::unique("http-test"),
        tests::bootstrap(),
        simulator::connector_config::instance_toml(
            profile,
            "",
            &simulator::connector_config::Overrides {
                instance_id: Some(unique("http")),
                topic: Some(topic.clone()),
                pagination: None,
                source: Some(source),
            },
        )
        .expect("vehicle systems map from flat fields")
    );
    let config = ConnectorConfig::parse(Path::new("http.toml"), &text).expect("config");
    let registry = RegistryClient::new(registry_url).expect("client");
    let instance = config.instances[0].clone();
    let ids = Instance::register(&instance, &registry)
        .await
        .expect("schemas");
    let handle = tokio::runtime::Handle::current();
    let polls = tokio::task::spawn_blocking(move || {
        let mut running = Slot::single(&config, instance, ids, handle).expect("instance starts");
        let first = running.poll_once()?;
        // Nothing new: a second poll writes nothing.
        let second = running.poll_once()?;
        Ok((first, second))
    })
    .await
    .expect("instance thread");
    (polls, topic)
}

/// Asserts that `topic` holds each of `profile`'s records exactly once, and nothing else.
fn assert_exact(truth: &GroundTruth, profile: &SystemProfile, topic: &str, label: &str) {
    let expected = truth
        .systems
        .iter()
        .find(|s| s.id == profile.id)
        .expect("system in the ground truth");
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    for id in raw_record_ids(topic) {
        *keys.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "{label}: written twice: {repeated:?}");
    let mut want = expected.record_ids.clone();
    want.sort();
    assert_eq!(
        keys.into_keys().collect::<Vec<_>>(),
        want,
        "{label} ({}): the raw topic holds exactly the system's records",
        profile.id
    );
}

/// The simulator's vehicle systems, those holding the most records first.
fn vehicle_systems(sim: &Simulator) -> Vec<&SystemProfile> {
    let mut systems: Vec<(usize, &SystemProfile)> = sim
        .systems()
        .iter()
        .enumerate()
        .filter(|(_, p)| p.domain.as_str() == "vehicle")
        .map(|(i, p)| (sim.len(i), p))
        .collect();
    systems.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    systems.into_iter().map(|(_, p)| p).collect()
}

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

    // One vehicle system per pagination style (the simulator serves each in every style); the
    // cursor one also gets every fault, stalls beyond its 1 s timeout included.
    let styles = [
        (r#"{ style = "page", page_size = 9 }"#, false),
        (r#"{ style = "cursor", limit = 7 }"#, true),
        (r#"{ style = "updated_since", limit = 8 }"#, false),
    ];
    for ((pagination, faults), profile) in styles.into_iter().zip(vehicle_systems(&sim)) {
        if faults {
            let response = client
                .post(format!("{base}/systems/{}/faults", profile.id))
                .json(&serde_json::json!({
                    "error_5xx_rate": 0.3,
                    "rate_429_every": 5,
                    "truncate_pages": 2,
                    "repeat_pages": 2,
                    "stall_every": 11,
                    "stall_ms": 1_500,
                }))
                .send()
                .await
                .expect("setting faults");
            assert!(response.status().is_success(), "{}", response.status());
        }
        let source = http_source(&base, profile, pagination, "timeout = \"1s\"");
        let (polls, topic) = ingest(profile, &registry_url, source).await;
        let (first, second) = polls.expect("polls");
        assert_eq!(
            second.written, 0,
            "{pagination}: a second poll repeats nothing"
        );
        assert_exact(&truth, profile, &topic, pagination);
        assert_eq!(first.quarantined, 0, "{pagination}");
        if faults {
            let status: simulator::server::FaultStatus = client
                .get(format!("{base}/systems/{}/faults", profile.id))
                .send()
                .await
                .expect("reading faults")
                .json()
                .await
                .expect("fault status");
            let f = &status.faults;
            assert!(
                status.stalled > 0 && f.truncate_pages == 0 && f.repeat_pages == 0,
                "every fault struck: {status:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_systems_in_their_own_dialects_are_ingested_exactly_despite_faults() {
    use simulator::server::Dialect;
    let sim = Arc::new(Simulator::new(World::new(20_251_125, Size::Tiny)));
    let (addr, _server) =
        simulator::server::spawn(sim.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator");
    let base = format!("http://{addr}");
    let truth = sim.ground_truth();
    let (_registry, registry_url) = start_registry().await;
    let client = reqwest::Client::new();
    let dir = std::env::temp_dir().join(unique("api-keys"));
    std::fs::create_dir_all(&dir).expect("folder");
    let faults = serde_json::json!({
        "error_5xx_rate": 0.3,
        "rate_429_every": 4,
        "truncate_pages": 1,
        "repeat_pages": 2,
    });
    let quiet = serde_json::json!({});
    // (dialect, the end read another way than the dialect's own, faults)
    let cases = [
        (Dialect::PageNoSize, None, &quiet),
        (Dialect::PageNoSize, None, &faults),
        (Dialect::Current, None, &faults),
        (Dialect::HasMore, None, &faults),
        (Dialect::HasMore, Some("end = \"short_page\" }"), &quiet),
        (Dialect::Offset, None, &faults),
        (Dialect::Link, None, &faults),
    ];
    let systems = vehicle_systems(&sim);
    for (i, (dialect, end, faults)) in cases.into_iter().enumerate() {
        let profile = systems[i % systems.len()];
        let label = format!("{dialect:?} {end:?} {faults}");
        let response = client
            .post(format!("{base}/systems/{}/faults", profile.id))
            .json(faults)
            .send()
            .await
            .expect("setting faults");
        assert!(response.status().is_success(), "{}", response.status());
        // The API key from a file, as a mounted secret is.
        let key = dir.join(format!("key-{i}"));
        std::fs::write(&key, format!("{}\n", profile.token)).expect("key");
        let mut source = simulator::connector_config::dialect_source(
            profile,
            &base,
            dialect,
            9,
            &format!("{{ file = {:?} }}", key.display().to_string()),
        );
        if let Some(end) = end {
            let at = source.rfind("end = ").expect("an end");
            source.replace_range(at.., end);
        }
        source.push_str("\ntimeout = \"2s\"");
        let (polls, topic) =
            ingest(profile, &registry_url, (source, profile.id_field.clone())).await;
        let (first, second) = polls.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(second.written, 0, "{label}: a second poll repeats nothing");
        assert_eq!(first.quarantined, 0, "{label}");
        assert_exact(&truth, profile, &topic, &label);
        let status: simulator::server::FaultStatus = client
            .get(format!("{base}/systems/{}/faults", profile.id))
            .send()
            .await
            .expect("reading faults")
            .json()
            .await
            .expect("fault status");
        if faults.as_object().is_some_and(|f| f.is_empty()) {
            // One request per page of 9 (not one per record), and one for the second poll.
            let records = truth
                .systems
                .iter()
                .find(|s| s.id == profile.id)
                .expect("system")
                .record_ids
                .len();
            let pages = records.div_ceil(9).max(1) as u64
                + u64::from(end.is_some() && records.is_multiple_of(9));
            assert_eq!(status.requests, pages + 1, "{label}: {records} records");
        } else {
            let f = &status.faults;
            assert!(
                f.truncate_pages == 0 && f.repeat_pages == 0,
                "{label}: every fault struck: {status:?}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_systems_that_want_client_certificates_are_ingested_over_mtls() {
    let sim = Arc::new(Simulator::new(World::new(20_251_124, Size::Tiny)));
    let truth = sim.ground_truth();
    let profile = vehicle_systems(&sim)[0];
    // The system's CA certifies its server and the connector, as a provincial platform does.
    let ca = TestCa::new("云南省政务外网 CA");
    let server = ca.server(&["127.0.0.1"]);
    let (addr, _server) = simulator::server::spawn_tls(
        sim.clone(),
        "127.0.0.1:0".parse().expect("addr"),
        ca.mtls_server_config(&server),
    )
    .await
    .expect("simulator over mTLS");
    let base = format!("https://{addr}");
    let (_registry, registry_url) = start_registry().await;

    let dir = std::env::temp_dir().join(unique("mtls"));
    std::fs::create_dir_all(&dir).expect("folder");
    let (identity, server_ca) = (dir.join("connector.pem"), dir.join("ca.pem"));
    std::fs::write(&identity, ca.client("汇通连接器").identity_pem()).expect("identity");
    std::fs::write(&server_ca, &ca.pem).expect("CA");
    let pagination = r#"{ style = "cursor", limit = 20 }"#;

    let with_identity = format!(
        "client_identity = {:?}\nserver_ca = {:?}",
        identity.display().to_string(),
        server_ca.display().to_string()
    );
    let (polls, topic) = ingest(
        profile,
        &registry_url,
        http_source(&base, profile, pagination, &with_identity),
    )
    .await;
    let (first, _) = polls.expect("polls over mTLS");
    assert_eq!(first.quarantined, 0);
    assert_exact(&truth, profile, &topic, "mTLS");

    // Without the identity the system refuses the connection: the poll fails and writes nothing.
    let without = format!(
        "server_ca = {:?}\nmax_attempts = 2",
        server_ca.display().to_string()
    );
    let (polls, topic) = ingest(
        profile,
        &registry_url,
        http_source(&base, profile, pagination, &without),
    )
    .await;
    let error = polls.expect_err("no client certificate");
    assert_eq!(error.code(), "source_system", "{error}");
    let message = error.to_string();
    assert!(
        message.contains("CertificateRequired") && message.contains("check client_identity"),
        "the error says what is wrong: {message}"
    );
    assert!(read_partition(&topic, "read_committed").is_empty());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
