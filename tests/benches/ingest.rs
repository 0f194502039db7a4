//! Connector throughput on this machine, against the real broker (`KAFKA_BOOTSTRAP`):
//! a GBK CSV export of vehicles through a `file_drop` instance, and the simulator's HTTP
//! vehicle systems through `http_poll`. Prints records/s, and the CPU time per record of this
//! process (the connector's threads, and for `http_poll` the in-process simulator's; not the
//! broker's), which other load on the machine hardly moves. Run with `ops/bench/ingest`.
//!
//! Target: ≥ 50,000 records/s for a local CSV file into Kafka.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use connectors::config::ConnectorConfig;
use connectors::instance::{Instance, PollStats};
use connectors::slot::Slot;
use schemas::registry::RegistryClient;
use tests::{ConnectorTopics, connector_topics, start_registry, unique};

const ROWS: usize = 200_000;

fn gbk_export(rows: usize) -> Vec<u8> {
    let mut text = String::with_capacity(rows * 96);
    text.push_str("车架号,号牌号码,使用单位统一社会信用代码,使用单位名称,能源类型,购置价格\r\n");
    for row in 0..rows {
        text.push_str(&format!(
            "B{row:016},云A{:05},11530114015162553X,呈贡区机关事务管理局,纯电动,{}.{}\r\n",
            row % 100_000,
            10 + row % 30,
            row % 10
        ));
    }
    encoding_rs::GBK.encode(&text).0.into_owned()
}

/// CPU seconds this process has used so far, all threads, ended ones too (Linux:
/// `/proc/self/stat`, in clock ticks of `USER_HZ`, 1/100 s on x86 and ARM).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks = |field: usize| fields[field - 3].parse::<f64>().expect("clock ticks");
    (ticks(14) + ticks(15)) / 100.0
}

/// What one poll did and cost.
struct Run {
    stats: PollStats,
    /// Wall-clock seconds.
    seconds: f64,
    /// CPU seconds of this process meanwhile.
    cpu: f64,
}

/// Runs one poll of the configuration's only instance.
async fn run(text: String) -> Run {
    let config = ConnectorConfig::parse(Path::new("bench.toml"), &text).expect("config");
    let registry = RegistryClient::new(&config.registry_url).expect("client");
    let instance = config.instances[0].clone();
    let ids = Instance::register(&instance, &registry)
        .await
        .expect("schemas");
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut running = Slot::single(&config, instance, ids, handle).expect("instance starts");
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let stats = running.poll_once().expect("poll");
        Run {
            stats,
            seconds: started.elapsed().as_secs_f64(),
            cpu: cpu_seconds() - cpu,
        }
    })
    .await
    .expect("instance thread")
}

fn header(registry: &str, topics: &ConnectorTopics) -> String {
    format!(
        "connector_id = \"bench\"\nregistry_url = \"{registry}\"\nquarantine_topic = \"{}\"\nprogress_topic = \"{}\"\n[kafka]\nbootstrap = \"{}\"\nlibrdkafka_options = {{ \"linger.ms\" = \"20\", \"batch.size\" = \"1000000\", \"compression.type\" = \"lz4\" }}\n",
        topics.quarantine,
        topics.progress,
        tests::bootstrap()
    )
}

fn report(label: &str, run: Run) {
    let Run {
        stats,
        seconds,
        cpu,
    } = run;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{label}: {} records ({} written, {} quarantined) in {seconds:.2} s = {:.0} records/s; \
         CPU {cpu:.2} s = {:.1} µs/record",
        stats.read,
        stats.written,
        stats.quarantined,
        stats.read as f64 / seconds,
        cpu * 1e6 / stats.read as f64
    )
    .expect("stdout");
}

async fn file_drop(registry: &str) {
    let topics = connector_topics().await;
    let dir = std::env::temp_dir().join(unique("bench-drop"));
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join("vehicles.csv"), gbk_export(ROWS)).expect("export");
    let text = format!(
        r#"{}
[[instance]]
id = "{}"
system_id = "bench"
region_code = "530114"
level = "county"
domain = "vehicle"
topic = "{}"
batch_size = 5000
[instance.source]
kind = "file_drop"
dir = "{}"
encoding = "gbk"
complete = {{ settled = "0s" }}
[instance.mapping]
record_id = ["车架号"]
fields = {{ vin = "车架号", plate = "号牌号码", owner_uscc = "使用单位统一社会信用代码", owner_name = "使用单位名称", energy_type = "能源类型" }}
quantities = {{ purchase_price = {{ field = "购置价格", unit = "万元" }} }}
"#,
        header(registry, &topics),
        unique("bench"),
        topics.raw,
        dir.display()
    );
    report("file_drop (GBK CSV, 200k rows)", run(text).await);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

async fn http_poll(registry: &str) {
    use simulator::{Simulator, Size, World};
    let sim = Arc::new(Simulator::new(World::new(7, Size::Small)));
    let (addr, _server) =
        simulator::server::spawn(sim.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator");
    let truth = sim.ground_truth();
    let profile = sim
        .systems()
        .iter()
        .filter(|p| p.domain == schemas::Domain::Vehicle)
        .max_by_key(|p| {
            truth
                .systems
                .iter()
                .find(|s| s.id == p.id)
                .map_or(0, |s| s.record_count)
        })
        .expect("a vehicle system");
    let topics = connector_topics().await;
    let fields: Vec<String> = profile
        .fields
        .iter()
        .filter(|f| f.unit.is_none() && !matches!(f.canonical, "record_id" | "updated_at"))
        .map(|f| format!("{} = {:?}", f.canonical, f.name))
        .collect();
    let text = format!(
        r#"{}
[[instance]]
id = "{}"
system_id = "{}"
region_code = "{}"
level = "province"
domain = "vehicle"
topic = "{}"
[instance.source]
kind = "http_poll"
url = "http://{addr}/systems/{}/records"
bearer_token = "{}"
requests_per_second = 10000
pagination = {{ style = "cursor", limit = 1000 }}
[instance.mapping]
record_id = [{:?}]
fields = {{ {} }}
"#,
        header(registry, &topics),
        unique("bench"),
        profile.id,
        profile.region_code,
        topics.raw,
        profile.id,
        profile.token,
        profile.id_field,
        fields.join(", ")
    );
    report(
        &format!("http_poll (simulator, {})", profile.id),
        run(text).await,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (_registry, url) = start_registry().await;
    file_drop(&url).await;
    http_poll(&url).await;
}
