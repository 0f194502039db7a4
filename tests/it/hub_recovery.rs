//! The hub after a broker restart, on a broker of this test's own (the shared one stays up):
//! GPS fixes are sent at a steady rate while the broker is stopped and started again on the
//! same data directory and port (`ops/dev kafka restart`). The same hub process — never
//! restarted — resumes by itself: every fix is published exactly once, the reconciliation
//! balances, and `/readyz` said not ready while the hub could not make progress.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use schemas::records::{GeodeticDatum, Provenance, RawVehiclePosition, ReportingLevel};
use schemas::{ClientSettings, Domain};
use serde_json::Value;
use tests::{HubProcess, unique};

/// Vehicles sending fixes, and fixes per vehicle.
const VEHICLES: usize = 20;
const FIXES: usize = 200;
/// Fixes sent per second, all vehicles together.
const RATE: u64 = 100;
/// `--transaction-timeout` of the hub: a stage counts as stalled after 2 × 5 s = 10 s.
const TRANSACTION_TIMEOUT: &str = "5s";
/// How long the broker stays down: well past the stall limit.
const DOWN_SECONDS: u64 = 10;
/// 2025-06-30T08:00:00+08:00, the first fix's time.
const FIRST_FIX_MS: i64 = 1_751_241_600_000;

/// A single-node broker of this test's own, started by `ops/dev kafka start` with a state
/// folder of its own; stopped (and its data removed) when dropped.
struct OwnBroker {
    state_dir: PathBuf,
    bootstrap: String,
}

impl OwnBroker {
    fn start() -> Self {
        let state_dir = std::env::temp_dir().join(unique("recovery-kafka"));
        let out = ops_dev(&state_dir, &["kafka", "start"]);
        let bootstrap = out
            .lines()
            .find_map(|l| l.strip_prefix("bootstrap="))
            .unwrap_or_else(|| panic!("no bootstrap= line from ops/dev kafka start: {out}"))
            .to_owned();
        OwnBroker {
            state_dir,
            bootstrap,
        }
    }

    /// Stops the broker, waits `down` seconds, starts it again on the same data and port.
    fn restart(&self, down: u64) {
        ops_dev(&self.state_dir, &["kafka", "restart", &down.to_string()]);
    }

    fn settings(&self) -> ClientSettings {
        ClientSettings::new(self.bootstrap.clone())
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        // `kafka stop` removes the broker's data: keep its logs of a failed run.
        if std::thread::panicking() {
            let state =
                std::fs::read_to_string(self.state_dir.join("kafka.env")).unwrap_or_default();
            if let Some(data) = state.lines().find_map(|l| l.strip_prefix("KAFKA_DATA=")) {
                for log in ["kafka.log.previous", "kafka.log"] {
                    let kept = std::env::temp_dir().join(format!("{}-{log}", unique("recovery")));
                    if std::fs::copy(Path::new(data).join(log), &kept).is_ok() {
                        eprintln!("the test broker's {log} is kept in {}", kept.display());
                    }
                }
            }
        }
        let _ = std::process::Command::new(ops_dev_path())
            .args(["kafka", "stop"])
            .env("HUITONG_STATE_DIR", &self.state_dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

fn ops_dev_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/dev")
}

/// Runs `ops/dev` with `args` and the state folder `state_dir`; its standard output.
fn ops_dev(state_dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(ops_dev_path())
        .args(args)
        .env("HUITONG_STATE_DIR", state_dir)
        // A second broker beside the shared one: a smaller heap is plenty for this test.
        .env("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running ops/dev");
    assert!(out.status.success(), "ops/dev {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A VIN of vehicle `n` with its check digit.
fn vin(n: usize) -> String {
    let draft = format!("LFP0918Y0MF8{n:05}");
    let check = schemas::ids::vin_check(&draft).expect("17 characters");
    format!("{}{check}{}", &draft[..8], &draft[9..])
}

/// Fix `i` of vehicle `n`, as a county system relays it.
fn fix(n: usize, i: usize) -> RawVehiclePosition {
    let at = chrono::DateTime::from_timestamp_millis(FIRST_FIX_MS + i as i64 * 1000)
        .expect("a time")
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
    RawVehiclePosition {
        provenance: Provenance {
            source_system_id: "recovery-county-gps".to_owned(),
            reporting_level: ReportingLevel::County,
            reporter_region_code: "150102".to_owned(),
            source_record_id: format!("{n}-{i}"),
            source_timestamp: None,
            received_at: chrono::Utc::now(),
            connector_id: "recovery-test".to_owned(),
            batch_id: None,
        },
        terminal_id: None,
        plate: Some(format!("蒙A1{n:04}")),
        vin: Some(vin(n)),
        region_code: Some("150102".to_owned()),
        fix_time: at.to_rfc3339(),
        latitude: 40.81 + i as f64 * 1e-4,
        longitude: 111.65,
        datum: GeodeticDatum::Wgs84,
        speed_kmh: Some(42.0),
        heading_deg: None,
        odometer_km: None,
    }
}

/// Counts the producer's delivery reports.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends `records` (key, payload) to `topic` at [`RATE`] per second, as a connector would:
/// idempotent, and patient enough to wait out the broker's restart. Returns once all are
/// acknowledged.
fn send_steadily(settings: &ClientSettings, topic: &str, records: &[(String, Vec<u8>)]) {
    let producer: ThreadedProducer<Deliveries> = settings
        .client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "180000")
        .create_with_context(Deliveries::default())
        .expect("producer");
    let started = Instant::now();
    for (n, (key, payload)) in records.iter().enumerate() {
        let due = started + Duration::from_millis(n as u64 * 1000 / RATE);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut record = BaseRecord::to(topic).key(key.as_str()).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(180)).expect("flushed");
    let context = producer.context();
    assert_eq!(
        (
            context.delivered.load(Ordering::Relaxed),
            context.failed.load(Ordering::Relaxed)
        ),
        (records.len() as u64, 0),
        "every fix reaches the broker"
    );
}

/// The hub's `/reconciliation`, or why it could not be read.
async fn reconciliation(client: &reqwest::Client, hub: &str) -> Result<Value, String> {
    let response = client
        .get(format!("{hub}/reconciliation"))
        .timeout(Duration::from_secs(90))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    match status.is_success() {
        true => serde_json::from_str(&body).map_err(|e| e.to_string()),
        false => Err(format!("{status}: {body}")),
    }
}

/// What `/readyz` answered, from a probe every 250 ms until `done`: per status, how often and
/// the first answer.
async fn watch_readiness(
    client: reqwest::Client,
    url: String,
    done: Arc<AtomicBool>,
) -> BTreeMap<u16, (usize, String)> {
    let mut seen: BTreeMap<u16, (usize, String)> = BTreeMap::new();
    while !done.load(Ordering::Acquire) {
        if let Ok(r) = client
            .get(format!("{url}/readyz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            seen.entry(status).or_insert((0, body)).0 += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_resumes_by_itself_after_a_broker_restart_under_load() {
    let broker = tokio::task::spawn_blocking(OwnBroker::start)
        .await
        .expect("starting a broker");
    let id = unique("recovery");
    let state_dir = std::env::temp_dir().join(&id);
    let args: Vec<String> = [
        ("--topic-prefix", format!("{id}.")),
        ("--group-prefix", id.clone()),
        ("--instance-id", id.clone()),
        ("--state-dir", state_dir.display().to_string()),
        ("--transaction-timeout", TRANSACTION_TIMEOUT.to_owned()),
        ("--batch-records", "200".to_owned()),
        ("--stream-partitions", "3".to_owned()),
        ("--report-partitions", "1".to_owned()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_owned(), v])
    .collect();
    let mut hub = HubProcess::start_on(&broker.bootstrap, &args);
    let client = reqwest::Client::new();
    hub.wait_ready(&client).await;

    let registry = schemas::registry::RegistryClient::new(&hub.url).expect("registry client");
    let encoder = schemas::codec::Encoder::<RawVehiclePosition>::register(&registry)
        .await
        .expect("raw schema");
    // Fix by fix, the vehicles in turn, as their terminals report.
    let records: Vec<(String, Vec<u8>)> = (0..FIXES)
        .flat_map(|i| (0..VEHICLES).map(move |n| (n, i)))
        .map(|(n, i)| {
            let record = fix(n, i);
            let payload = encoder.encode(&record).expect("encodes");
            (record.provenance.source_record_id, payload)
        })
        .collect();
    let expected: Vec<String> = (0..VEHICLES)
        .flat_map(|n| {
            (0..FIXES).map(move |i| format!("{}|{}", vin(n), FIRST_FIX_MS + i as i64 * 1000))
        })
        .collect();

    let done = Arc::new(AtomicBool::new(false));
    let readiness = tokio::spawn(watch_readiness(
        client.clone(),
        hub.url.clone(),
        done.clone(),
    ));
    let names = hub::pipeline::TopicNames {
        prefix: format!("{id}."),
    };
    let sender = {
        let (settings, topic) = (broker.settings(), names.raw(Domain::VehiclePosition));
        std::thread::spawn(move || send_steadily(&settings, &topic, &records))
    };
    // Under load, the broker goes away for a while and comes back.
    let total = (VEHICLES * FIXES) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let received = reconciliation(&client, &hub.url)
            .await
            .ok()
            .and_then(|r| r["total"]["received"].as_u64())
            .unwrap_or(0);
        if received >= total / 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the hub did not start working");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let restarted_at = Instant::now();
    {
        let broker = &broker;
        tokio::task::block_in_place(|| broker.restart(DOWN_SECONDS));
    }
    eprintln!("broker back after {:?}", restarted_at.elapsed());
    tokio::task::spawn_blocking(move || sender.join())
        .await
        .expect("thread")
        .expect("every fix sent");

    // The same hub catches up by itself.
    let deadline = Instant::now() + Duration::from_secs(120);
    let balanced = loop {
        if let Ok(r) = reconciliation(&client, &hub.url).await
            && r["total"]["received"].as_u64() >= Some(total)
            && r["balanced"] == Value::Bool(true)
        {
            break r;
        }
        assert!(hub.exited().is_none(), "the hub exited");
        assert!(
            Instant::now() < deadline,
            "the hub did not resume: {:?}",
            reconciliation(&client, &hub.url)
                .await
                .map(|r| r["total"].clone())
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    eprintln!(
        "caught up {:?} after the restart began",
        restarted_at.elapsed()
    );
    let totals = &balanced["total"];
    assert_eq!(
        [
            "received",
            "published",
            "merged_duplicate",
            "unchanged",
            "quarantined"
        ]
        .map(|k| totals[k].as_u64()),
        [Some(total), Some(total), Some(0), Some(0), Some(0)],
        "every fix counted once, and published: {totals}"
    );

    // Each fix on the national topic exactly once.
    let mut national: BTreeMap<String, usize> = BTreeMap::new();
    let (settings, topic) = (broker.settings(), names.national(Domain::VehiclePosition));
    let national = tokio::task::spawn_blocking(move || {
        schemas::kafka::read_to_end(
            &settings,
            &topic,
            None,
            Duration::from_secs(60),
            |_, k, _| {
                *national
                    .entry(String::from_utf8_lossy(k).into_owned())
                    .or_default() += 1;
            },
        )
        .map(|()| national)
    })
    .await
    .expect("thread")
    .expect("reading the national topic");
    let repeated: Vec<_> = national.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "published more than once: {repeated:?}"
    );
    let keys: Vec<&String> = national.keys().collect();
    let mut wanted: Vec<&String> = expected.iter().collect();
    wanted.sort();
    assert_eq!(keys.len(), wanted.len(), "one national record per fix");
    assert_eq!(keys, wanted, "the national records are the fixes sent");

    // Ready again, and not ready while it could not make progress.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{}/readyz", hub.url))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the hub is not ready again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    done.store(true, Ordering::Release);
    let seen = readiness.await.expect("readiness probe");
    eprintln!("/readyz answers: {seen:?}");
    assert!(
        seen.get(&503)
            .is_some_and(|(_, body)| body.contains("no progress")),
        "/readyz said not ready while a stage could not make progress: {seen:?}"
    );
    assert!(hub.exited().is_none(), "the same hub process throughout");
    drop(hub);
    let _ = std::fs::remove_dir_all(state_dir);
}
