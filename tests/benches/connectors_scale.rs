//! The connector at national scale: ~3,000 counties × 8 domains ≈ 24,000 `http_poll`
//! instances on one connector process, against a synthetic HTTP source of the simulator's
//! shape served in-process (every instance its own system: one page of `RECORDS` vehicles,
//! then an empty page), and the real broker (`KAFKA_BOOTSTRAP`). Run with
//! `ops/bench/connectors-scale`; `SCALE_INSTANCES` and `SCALE_RECORDS` change the size.
//!
//! Prints, beside the ceiling — a transactional producer writing as many records of the same
//! size to the same broker in the same run, in transactions of the size the slots use:
//! - `start_s`: from starting the runtime until every slot has its producer and its
//!   instances' progress;
//! - `rss_mib`: the process's peak resident memory (the in-process source and registry
//!   included);
//! - `producers_per_min`: transactional producers created per minute after start-up;
//! - `progress_bytes_per_commit`: progress-record bytes per committed transaction;
//! - `records_per_s`: records written per second once started — those committed after
//!   start-up over the time from start-up's end until every one is committed (the figure
//!   including start-up is printed on the line before).
//!
//! Targets: start-up ≤ 30 s, RSS ≤ 1 GiB, no producer created per poll, ≥ 50,000 records/s.

/// The allocator the `connector` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query};
use axum::routing::get;
use connectors::config::ConnectorConfig;
use connectors::runtime::{Metrics, Runtime};
use serde_json::{Value, json};
use tests::{connector_topics, start_registry, unique};

/// One system's page: `records` vehicles on page 1, nothing after.
async fn page(
    UrlPath(system): UrlPath<usize>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> axum::Json<Value> {
    let records: usize = std::env::var("SCALE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let first = query.get("page").is_none_or(|p| p == "1");
    let items: Vec<Value> = if first {
        (0..records)
            .map(|i| {
                json!({
                    "车架号": format!("S{system:06}V{i:04}"),
                    "号牌号码": format!("云A{:05}", (system * 7 + i) % 100_000),
                    "使用单位代码": "11530114015162553X",
                    "使用单位": "呈贡区机关事务管理局",
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    axum::Json(json!({ "items": items, "total_pages": 1 }))
}

/// The configuration of `instances` instances, one per system of the source at `base`.
fn configuration(
    instances: usize,
    base: &str,
    registry_url: &str,
    topics: &tests::ConnectorTopics,
) -> String {
    let mut text = format!(
        "connector_id = \"{}\"\nregistry_url = \"{registry_url}\"\nprogress_topic = \"{}\"\n\
         quarantine_topic = \"{}\"\n[kafka]\nbootstrap = \"{}\"\n",
        unique("scale"),
        topics.progress,
        topics.quarantine,
        tests::bootstrap()
    );
    for i in 0..instances {
        text.push_str(&format!(
            "[[instance]]\nid = \"county-{i:05}\"\nsystem_id = \"county-{i:05}-vehicles\"\n\
             region_code = \"530114\"\nlevel = \"county\"\ndomain = \"vehicle\"\n\
             topic = \"{raw}\"\npoll_interval = \"1h\"\n[instance.source]\nkind = \"http_poll\"\n\
             url = \"{base}/systems/{i}/records\"\npagination = {{ style = \"page\", page_size = 100 }}\nrequests_per_second = 1000.0\n\
             [instance.mapping]\nrecord_id = [\"车架号\"]\n\
             fields = {{ vin = \"车架号\", plate = \"号牌号码\", owner_uscc = \"使用单位代码\", owner_name = \"使用单位\" }}\n",
            raw = topics.raw,
        ));
    }
    text
}

/// Peak resident memory of this process, MiB (Linux: `VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A counter's value in `registry`.
fn counter(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value())
        .sum()
}

/// Records/s of a transactional producer writing `records` messages of `size` bytes to
/// `topic`, in transactions of `per_transaction`: what the broker takes on this machine.
fn ceiling(topic: &str, records: usize, size: usize, per_transaction: usize) -> f64 {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = tests::settings()
        .client_config()
        .set("transactional.id", unique("scale-ceiling"))
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    let payload = vec![0u8; size];
    let started = Instant::now();
    let mut sent = 0;
    while sent < records {
        producer.begin_transaction().expect("begin");
        for i in sent..(sent + per_transaction).min(records) {
            let key = format!("ceiling-{i}");
            let mut record = BaseRecord::<str, [u8]>::to(topic)
                .key(&key)
                .payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        producer.commit_transaction(timeout).expect("commit");
        sent = (sent + per_transaction).min(records);
    }
    records as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let instances: usize = std::env::var("SCALE_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24_000);
    let records: usize = std::env::var("SCALE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().route("/systems/{system}/records", get(page));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (_registry, registry_url) = start_registry().await;
        let topics = connector_topics().await;
        let text = configuration(instances, &base, &registry_url, &topics);
        let config = ConnectorConfig::parse(Path::new("scale.toml"), &text).expect("configuration");
        let slots = config.slots;
        let metrics_registry = prometheus::Registry::new();
        let metrics = Metrics::new(&metrics_registry).expect("metrics");
        // Read from the reconciliation, not a scrape: gathering 24,000 instances' series every
        // 100 ms would cost more than the work measured.
        let outcomes = metrics.outcomes().clone();
        let written = move || -> u64 { outcomes.snapshot().values().map(|c| c.written).sum() };
        let started = Instant::now();
        let running = Runtime::start(config, metrics).await.expect("runtime");
        let controls = running.controls();
        while controls.values().any(|c| c.status().progress.is_none()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let start_s = started.elapsed().as_secs_f64();
        let written_at_start = written() as f64;
        let producers_at_start = counter(&metrics_registry, "connector_producers_created_total");
        let total = (instances * records) as f64;
        let deadline = Instant::now() + Duration::from_secs(1800);
        while (written() as f64) < total {
            assert!(
                Instant::now() < deadline,
                "not every record written within 30 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let after_start = seconds - start_s;
        let after =
            counter(&metrics_registry, "connector_producers_created_total") - producers_at_start;
        let transactions = counter(&metrics_registry, "connector_transactions_total");
        let progress_bytes = counter(&metrics_registry, "connector_progress_bytes_total");
        tokio::task::spawn_blocking(move || running.stop())
            .await
            .expect("stop");
        let rss = peak_rss_mib();
        // Encoded raw vehicles of this shape are ~120 bytes.
        let topic = topics.raw.clone();
        let ceiling = tokio::task::spawn_blocking(move || {
            ceiling(
                &topic,
                instances * records,
                120,
                connectors::slot::TRANSACTION_MESSAGES,
            )
        })
        .await
        .expect("ceiling");
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "instances={instances} records={} slots={slots} transactions={transactions} \
             producers_at_start={producers_at_start} written_during_start={written_at_start} \
             records_per_s_including_start={:.0} ceiling_records_per_s={ceiling:.0}",
            instances * records,
            total / seconds
        )
        .expect("stdout");
        writeln!(
            out,
            "start_s={start_s:.1} rss_mib={rss:.0} producers_per_min={:.1} \
             progress_bytes_per_commit={:.0} records_per_s={:.0}",
            after / (seconds / 60.0),
            progress_bytes / transactions.max(1.0),
            (total - written_at_start) / after_start.max(f64::EPSILON)
        )
        .expect("stdout");
    });
}
