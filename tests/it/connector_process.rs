//! The `connector` binary killed with SIGKILL at random moments while ingesting — a file drop, a
//! simulator system over HTTP and one in PostgreSQL at once — and restarted: afterwards each raw
//! topic, read with `read_committed`, holds every source record exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use simulator::connector_config::{Overrides, instance_toml};
use simulator::systems::Protocol;
use simulator::{Simulator, Size, World};
use tests::{
    ConnectorTopics, binary, connector_topics, free_port, raw_record_ids, read_partition,
    start_registry, unique,
};

const FILES: usize = 5;
const ROWS_PER_FILE: usize = 600;

fn export(file: usize) -> Vec<u8> {
    let mut text = String::from("车架号,号牌号码,使用单位统一社会信用代码,使用单位名称\r\n");
    for row in 0..ROWS_PER_FILE {
        text.push_str(&format!(
            "T{file:02}{row:014},云A{row:05},11530114015162553X,呈贡区机关事务管理局\r\n"
        ));
    }
    encoding_rs::GBK.encode(&text).0.into_owned()
}

/// Writes a configuration with one `file_drop` instance over `drop`, writing to `topics`
/// quarantine and progress topics, followed by the `more` instances.
fn write_config(
    dir: &Path,
    url: &str,
    topics: &ConnectorTopics,
    drop: &Path,
    batch_size: usize,
    more: &str,
) -> PathBuf {
    let config = dir.join("connector.toml");
    std::fs::write(
        &config,
        format!(
            r#"
connector_id = "{connector}"
registry_url = "{url}"
progress_topic = "{progress}"
quarantine_topic = "{quarantine}"
[kafka]
bootstrap = "{bootstrap}"
[[instance]]
id = "{id}"
system_id = "cg-county-vehicles"
region_code = "530114"
level = "county"
domain = "vehicle"
topic = "{raw_topic}"
batch_size = {batch_size}
poll_interval = "200ms"
[instance.source]
kind = "file_drop"
dir = "{drop}"
encoding = "gbk"
complete = {{ settled = "0s" }}
[instance.mapping]
record_id = ["车架号"]
fields = {{ vin = "车架号", plate = "号牌号码", owner_uscc = "使用单位统一社会信用代码", owner_name = "使用单位名称" }}
{more}"#,
            raw_topic = topics.raw,
            quarantine = topics.quarantine,
            progress = topics.progress,
            bootstrap = tests::bootstrap(),
            // Slot transactional ids derive from it: two tests sharing one would fence each other.
            connector = unique("kill-test"),
            id = unique("instance"),
            drop = drop.display(),
        ),
    )
    .expect("config");
    config
}

fn spawn(config: &Path) -> Child {
    spawn_on(config, free_port())
}

fn spawn_on(config: &Path, port: u16) -> Child {
    Command::new(binary("connector"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the connector")
}

/// A simulator system read over HTTP (slowly, in small pages) and the PostgreSQL-backed one,
/// each into its own raw topic, with the record ids each must end up holding.
struct SimulatedSources {
    /// Their `[[instance]]` tables.
    instances: String,
    /// Raw topic and expected record ids of each.
    expected: Vec<(String, Vec<String>)>,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn simulated_sources() -> SimulatedSources {
    let pg = std::env::var("HUITONG_PG_URL").unwrap_or_else(|_| {
        panic!(
            "HUITONG_PG_URL is not set: run the tests with `ops/dev test`, which starts PostgreSQL"
        )
    });
    let sim = std::sync::Arc::new(Simulator::new(World::new(20_251_123, Size::Tiny)));
    let truth = sim.ground_truth();
    let ids_of = |id: &str| {
        let mut ids = truth
            .systems
            .iter()
            .find(|s| s.id == id)
            .expect("system in the ground truth")
            .record_ids
            .clone();
        ids.sort();
        ids
    };
    let (addr, server) =
        simulator::server::spawn(sim.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator");
    let http = sim
        .systems()
        .iter()
        .find(|p| p.protocol == Protocol::HttpCursor && p.domain.as_str() == "vehicle-position")
        .expect("a GPS system over HTTP");
    // Slow pages keep the HTTP instance busy across several kills.
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/systems/{}/faults", http.id))
        .json(&serde_json::json!({ "latency_ms": 250 }))
        .send()
        .await
        .expect("setting faults");
    assert!(response.status().is_success(), "{}", response.status());
    let sql = sim
        .systems()
        .iter()
        .find(|p| p.protocol == Protocol::Postgres)
        .expect("the PostgreSQL-backed system");
    let table = unique("kill").replace('-', "_");
    simulator::postgres::load(&sim, &sql.id, &pg, &table)
        .await
        .expect("loading the table");
    // Read through a view that takes 30 ms a row, so the table's few rows span several kills.
    let (client, connection) = tokio_postgres::connect(&pg, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL");
    tokio::spawn(connection);
    let view = format!("{table}_slow");
    client
        .batch_execute(&format!(
            "CREATE VIEW \"{view}\" AS SELECT * FROM \"{table}\" t \
             WHERE (SELECT true FROM pg_sleep(0.03) WHERE t IS NOT NULL)"
        ))
        .await
        .expect("creating the view");
    let (http_topic, sql_topic) = (connector_topics().await.raw, connector_topics().await.raw);
    let quick = |toml: String, batch: usize| {
        toml.replace(
            "poll_interval = \"10s\"",
            &format!("poll_interval = \"200ms\"\nbatch_size = {batch}"),
        )
    };
    let instances = quick(
        instance_toml(
            http,
            &format!("http://{addr}"),
            &Overrides {
                instance_id: Some(unique("http")),
                topic: Some(http_topic.clone()),
                pagination: Some(r#"{ style = "cursor", limit = 1 }"#.to_owned()),
                source: None,
            },
        )
        .expect("GPS systems map from flat fields"),
        1,
    ) + &quick(
        instance_toml(
            sql,
            "",
            &Overrides {
                instance_id: Some(unique("sql")),
                topic: Some(sql_topic.clone()),
                pagination: None,
                source: Some((
                    format!("kind = \"sql_poll\"\nconnection = \"{pg}\"\ntable = \"{view}\""),
                    "record_id".to_owned(),
                )),
            },
        )
        .expect("the system maps from flat fields"),
        1,
    );
    SimulatedSources {
        instances,
        expected: vec![(http_topic, ids_of(&http.id)), (sql_topic, ids_of(&sql.id))],
        _server: server,
    }
}

/// How often each source record id occurs in `topic`, read committed.
fn key_counts(topic: &str) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in raw_record_ids(topic) {
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// A deterministic spread of kill delays (ms) that lands before, during and between batches.
fn delays() -> impl Iterator<Item = u64> {
    let seed = uuid::Uuid::new_v4().as_u128();
    (0..5).map(move |i| 400 + ((seed >> (i * 16)) as u64 % 2200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_connector_neither_loses_nor_repeats_records() {
    let (_registry, url) = start_registry().await;
    let topics = connector_topics().await;
    let raw_topic = topics.raw.clone();
    let dir = std::env::temp_dir().join(unique("kill"));
    let drop = dir.join("drop");
    std::fs::create_dir_all(&drop).expect("folders");
    for file in 0..FILES {
        std::fs::write(drop.join(format!("vehicles-{file}.csv")), export(file)).expect("export");
    }
    let sources = simulated_sources().await;
    let config = write_config(&dir, &url, &topics, &drop, 25, &sources.instances);

    let mut kills = 0;
    for delay in delays() {
        let mut child = spawn(&config);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if child.try_wait().expect("status").is_none() {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        child.wait().expect("reaped");
    }
    assert_eq!(
        kills, 5,
        "the connector was killed five times while running"
    );

    // A last run finishes the work.
    let mut child = spawn(&config);
    let expected = FILES * ROWS_PER_FILE;
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = drop.join("done");
    let complete = |(topic, ids): &(String, Vec<String>)| key_counts(topic).len() == ids.len();
    loop {
        let finished = (0..FILES).all(|f| done.join(format!("vehicles-{f}.csv")).exists())
            && sources.expected.iter().all(complete);
        if finished {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the connector did not finish the files"
        );
        assert!(
            child.try_wait().expect("status").is_none(),
            "connector exited"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("SIGTERM");
    child.wait().expect("reaped");

    for (topic, ids) in &sources.expected {
        let counts = key_counts(topic);
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{topic}: written twice: {twice:?}");
        let keys: Vec<String> = counts.into_keys().collect();
        assert_eq!(&keys, ids, "{topic}: exactly the system's records");
    }
    let counts = key_counts(&raw_topic);
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "records written twice: {}",
        repeated.len()
    );
    assert_eq!(
        counts.len(),
        expected,
        "every source record is in the raw topic"
    );
    let uncommitted = read_partition(&raw_topic, "read_uncommitted").len();
    assert!(
        uncommitted >= expected,
        "aborted batches are only visible uncommitted"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
) -> (u16, serde_json::Value) {
    let response = client
        .request(method, url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_pauses_resumes_and_resets_progress() {
    use reqwest::Method;

    let (_registry, url) = start_registry().await;
    let topics = connector_topics().await;
    let dir = std::env::temp_dir().join(unique("manage"));
    let drop = dir.join("drop");
    std::fs::create_dir_all(&drop).expect("folders");
    let config = write_config(&dir, &url, &topics, &drop, 100, "");
    let port = free_port();
    let mut child = spawn_on(&config, port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        assert!(
            child.try_wait().expect("status").is_none(),
            "connector exited"
        );
        if let Ok(r) = client.get(format!("{base}/connectors")).send().await
            && let Ok(ids) = r.json::<Vec<String>>().await
        {
            break ids[0].clone();
        }
        assert!(Instant::now() < deadline, "management API never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let instance = format!("{base}/connectors/{id}");
    let state =
        |body: &serde_json::Value| body["connector"]["state"].as_str().unwrap_or("").to_owned();
    let wait_state = |want: &'static str| {
        let client = client.clone();
        let instance = instance.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (_, body) = call(&client, Method::GET, &format!("{instance}/status")).await;
                if state(&body) == want {
                    return body;
                }
                assert!(Instant::now() < deadline, "never {want}: {body}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_state("RUNNING").await;
    let (code, _) = call(&client, Method::DELETE, &format!("{instance}/offsets")).await;
    assert_eq!(code, 400, "progress is reset only while paused");

    // Ingest a file, then pause: a second drop waits.
    std::fs::write(drop.join("a.csv"), export(0)).expect("drop");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !drop.join("done/a.csv").exists() {
        assert!(Instant::now() < deadline, "a.csv not ingested");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _) = call(&client, Method::PUT, &format!("{instance}/pause")).await;
    assert_eq!(code, 202);
    wait_state("PAUSED").await;
    let (_, offsets) = call(&client, Method::GET, &format!("{instance}/offsets")).await;
    assert_eq!(
        offsets["offsets"][0]["offset"]["done"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{offsets}"
    );
    std::fs::write(drop.join("b.csv"), export(1)).expect("drop");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        drop.join("b.csv").exists(),
        "a paused instance reads nothing"
    );

    // Reset: the checksum memory is gone, so a.csv dropped again is ingested again.
    let (code, body) = call(&client, Method::DELETE, &format!("{instance}/offsets")).await;
    assert_eq!(code, 200, "{body}");
    std::fs::copy(drop.join("done/a.csv"), drop.join("a-again.csv")).expect("copy");
    let (code, _) = call(&client, Method::PUT, &format!("{instance}/resume")).await;
    assert_eq!(code, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(drop.join("done/b.csv").exists() && drop.join("done/a-again.csv").exists()) {
        assert!(Instant::now() < deadline, "files not ingested after resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _) = call(&client, Method::POST, &format!("{instance}/restart")).await;
    assert_eq!(code, 202);
    wait_state("RUNNING").await;
    let (code, _) = call(
        &client,
        Method::GET,
        &format!("{base}/connectors/nope/status"),
    )
    .await;
    assert_eq!(code, 404);
    let written = read_partition(&topics.raw, "read_committed").len();
    assert_eq!(
        written,
        3 * ROWS_PER_FILE,
        "a, b, and a again after the reset"
    );

    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("SIGTERM");
    child.wait().expect("reaped");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
