//! The hub at national volume, raced against its ceilings and a Kafka Streams peer on one
//! broker (`KAFKA_BOOTSTRAP`). Run with `ops/bench/hub`, which starts a broker if none is set
//! and builds the peer.
//!
//! **Input**, generated and loaded once before the race: `BENCH_REPORTS` position reports
//! (300,000 by default: 100,000 GPS points of `BENCH_VEHICLES` = 20,000 vehicles, each point
//! reported by the county, prefecture and province platforms, [`workload`]) in Confluent wire
//! format under the registered raw schema, into a raw topic of `BENCH_PARTITIONS` = 12
//! partitions per round (byte-identical copies: the hub reads `<prefix>raw.vehicle-position`
//! and runs on a fresh prefix each round).
//!
//! `BENCH_COPARTITIONED` says how the raw reports are keyed ([`workload::Keying`]):
//! - `1` (default): **co-partitioned**, as co-partitioning connectors write them: keyed by the
//!   vehicle's partition key (its canonical VIN) in the partition
//!   `schemas::partition::partition_for` gives it, so every report is already where the hub
//!   resolves it and none goes through `hub.repartition.<domain>`;
//! - `0`: keyed by source record id under the producer's default partitioner, as before
//!   co-partitioning, which measures the repartition path: the topology copy sends every
//!   report through the repartition hop, the hub those whose entity's partition another of
//!   its threads holds (none with one stage thread, which holds every partition: set
//!   `BENCH_STAGE_THREADS=2` or more to make the hub take the hop).
//!
//! **Contestants**, each on the same input with its own outputs and consumer group, in an
//! order rotated over `BENCH_ROUNDS` = 3 rounds, at the hub's default batch settings, stage
//! threads and transaction timeout (read from `hub --help`; `BENCH_BATCH_RECORDS`,
//! `BENCH_BATCH_INTERVAL_MS`, `BENCH_STAGE_THREADS` override them for all):
//! - `copy`: the no-op exactly-once copy, one hop raw → out: the ceiling ([`copy`]);
//! - `topology`: the no-op copy in the hub's shape: one stage reading the raw and the
//!   repartition topic; co-partitioned, one hop raw → national with a changelog write per
//!   record (compacted, as the hub's changelog; in the input's partition) and an outcomes write
//!   per batch; with `BENCH_COPARTITIONED=0`, every report raw → repartition → national, with
//!   the same changelog and outcomes writes. Both copies run the hub's own exactly-once loop
//!   with a no-op stage (`hub::pipeline::exactly_once::run`), so they share its batch, client
//!   and thread settings;
//! - `hub`: the release `hub` binary (`BENCH_HUB`, default the `hub` beside this bench; extra
//!   options in `BENCH_HUB_ARGS`, its `RUST_LOG` in `BENCH_HUB_LOG`, default `warn`), done when `GET /reconciliation` gives every report its
//!   outcome;
//! - `streams`: the Kafka Streams peer in `ops/bench/streams-peer` (EOS v2, RocksDB store
//!   changelogged, 2 threads): co-partitioned, decode, normalise, key and drop reports that
//!   add nothing in a store keyed by entity id within the task; with `BENCH_COPARTITIONED=0`,
//!   repartition by entity id first, as a Streams user would for input keyed otherwise.
//!
//! `BENCH_CONTESTANTS` (e.g. `copy,hub`) runs some only. Each is timed from ready (clients up;
//! the hub's `/readyz`; Streams RUNNING) until its last stage has committed every report, with
//! its process's CPU time (`/proc/<pid>/stat`) over the same span and its peak RSS (`VmHWM`).
//! Then, each contestant afresh, **latency** at a steady half of the hub's median rate
//! (`BENCH_LATENCY_RATE` sets it) for `BENCH_LATENCY_SECONDS` = 20 s after
//! `BENCH_LATENCY_WARMUP_SECONDS` = 5 s: from the send of a point's first report to the first
//! record of that point visible (`read_committed`) in the contestant's national topic. Then the
//! **registry snapshot** on the hub: `BENCH_INSTITUTIONS` = 10⁶ institutions, then the same
//! again with 1% changed; the second pass's reports/s and the fraction published.
//!
//! `BENCH_KEEP_WORK=1` keeps the work folder (contestants' logs) in the temp folder.
//! `BENCH_TIMEOUT_SECONDS` (300) bounds each run; a contestant still running then is measured
//! over the reports it got through (marked `*`). The last line reads
//! `ratio_to_ceiling=R ratio_to_topology_ceiling=T ratio_to_streams=S cpu_us_per_report=C
//! records_per_point=P p99_ms=L` (medians, the hub against the others).

/// Writes a line to standard output: the bench's figures.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod copy;
mod procs;
mod workload;

/// The allocator the hub's binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use schemas::codec::Encoder;
use schemas::records::{RawInstitution, RawVehiclePosition};
use schemas::topics::Partitions;
use schemas::{Domain, TopicKind, TopicSpec};

use procs::Process;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
        _ => default,
    }
}

/// What the bench runs, from the environment.
struct Config {
    reports: usize,
    vehicles: usize,
    partitions: i32,
    rounds: usize,
    institutions: usize,
    latency_seconds: u64,
    latency_warmup_seconds: u64,
    timeout: Duration,
    batch_records: usize,
    batch_interval_ms: u64,
    stage_threads: usize,
    transaction_timeout_ms: u64,
    copartitioned: bool,
    contestants: Vec<Contestant>,
    hub: PathBuf,
    hub_args: Vec<String>,
    peer: PathBuf,
    run: String,
    work: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contestant {
    Copy,
    Topology,
    Hub,
    Streams,
}

impl Contestant {
    const ALL: [Contestant; 4] = [
        Contestant::Copy,
        Contestant::Topology,
        Contestant::Hub,
        Contestant::Streams,
    ];

    fn id(self) -> &'static str {
        match self {
            Contestant::Copy => "copy",
            Contestant::Topology => "topology",
            Contestant::Hub => "hub",
            Contestant::Streams => "streams",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Contestant::Copy => "no-op copy, 1 hop (ceiling)",
            Contestant::Topology => "no-op copy, hub topology",
            Contestant::Hub => "hub",
            Contestant::Streams => "Kafka Streams peer",
        }
    }

    /// The topic its national records (or copies) end in.
    fn output(self, prefix: &str) -> String {
        match self {
            Contestant::Copy => format!("{prefix}bench.copy.out"),
            Contestant::Topology => format!("{prefix}bench.topology.national"),
            Contestant::Hub => format!(
                "{prefix}{}",
                schemas::topics::national(Domain::VehiclePosition)
            ),
            Contestant::Streams => format!("{prefix}bench.streams.national"),
        }
    }
}

/// The default of option `--name` in `hub --help` (`[default: …]`).
fn hub_default(help: &str, name: &str) -> Option<String> {
    let at = help.find(&format!("--{name} "))?;
    let rest = &help[at..];
    // The option's text ends where the next option's line starts.
    let next = rest
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| rest[i..].trim_start().starts_with('-'))
        .unwrap_or(rest.len());
    let option = &rest[..next];
    let start = option.find("[default: ")? + "[default: ".len();
    let end = option[start..].find(']')? + start;
    Some(option[start..end].to_owned())
}

impl Config {
    fn from_env() -> Self {
        let exe = std::env::current_exe().expect("bench path");
        // target/release/deps/hub-<hash> → target/release/hub
        let beside = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile folder")
            .join("hub");
        let hub: PathBuf = std::env::var_os("BENCH_HUB").map_or(beside, PathBuf::from);
        assert!(
            hub.exists(),
            "{} is not built: `cargo build --release -p hub` (ops/bench/hub does)",
            hub.display()
        );
        let help = Command::new(&hub)
            .arg("--help")
            .env_remove("HUB_BATCH_RECORDS")
            .env_remove("HUB_BATCH_INTERVAL")
            .env_remove("HUB_STAGE_THREADS")
            .env_remove("HUB_TRANSACTION_TIMEOUT")
            .output()
            .expect("hub --help");
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        let default_records: usize = hub_default(&help, "batch-records")
            .and_then(|v| v.parse().ok())
            .expect("hub --help gives --batch-records a default");
        let default_interval = hub_default(&help, "batch-interval")
            .and_then(|v| humantime::parse_duration(&v).ok())
            .expect("hub --help gives --batch-interval a default");
        let default_threads: usize = hub_default(&help, "stage-threads")
            .and_then(|v| v.parse().ok())
            .expect("hub --help gives --stage-threads a default");
        let transaction_timeout = hub_default(&help, "transaction-timeout")
            .and_then(|v| humantime::parse_duration(&v).ok())
            .expect("hub --help gives --transaction-timeout a default");
        let contestants = match std::env::var("BENCH_CONTESTANTS") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|id| {
                    *Contestant::ALL
                        .iter()
                        .find(|c| c.id() == id.trim())
                        .unwrap_or_else(|| panic!("unknown contestant {id}"))
                })
                .collect(),
            _ => Contestant::ALL.to_vec(),
        };
        let run = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let work = std::env::temp_dir().join(&run);
        std::fs::create_dir_all(&work).expect("work folder");
        Config {
            reports: env_or("BENCH_REPORTS", 300_000),
            vehicles: env_or("BENCH_VEHICLES", 20_000),
            partitions: env_or("BENCH_PARTITIONS", 12),
            rounds: env_or("BENCH_ROUNDS", 3),
            institutions: env_or("BENCH_INSTITUTIONS", 1_000_000),
            latency_seconds: env_or("BENCH_LATENCY_SECONDS", 20),
            latency_warmup_seconds: env_or("BENCH_LATENCY_WARMUP_SECONDS", 5),
            timeout: Duration::from_secs(env_or("BENCH_TIMEOUT_SECONDS", 300)),
            batch_records: env_or("BENCH_BATCH_RECORDS", default_records),
            batch_interval_ms: env_or(
                "BENCH_BATCH_INTERVAL_MS",
                u64::try_from(default_interval.as_millis()).unwrap_or(u64::MAX),
            ),
            stage_threads: env_or("BENCH_STAGE_THREADS", default_threads),
            transaction_timeout_ms: u64::try_from(transaction_timeout.as_millis())
                .unwrap_or(u64::MAX),
            copartitioned: match env_or("BENCH_COPARTITIONED", 1u8) {
                0 => false,
                1 => true,
                other => panic!("BENCH_COPARTITIONED={other}: 1 (co-partitioned) or 0"),
            },
            contestants,
            hub,
            hub_args: std::env::var("BENCH_HUB_ARGS")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            peer: std::env::var_os("BENCH_STREAMS_PEER").map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/bench/streams-peer"),
                PathBuf::from,
            ),
            run,
            work,
        }
    }

    /// How the raw position reports are keyed.
    fn keying(&self) -> workload::Keying {
        if self.copartitioned {
            workload::Keying::CoPartitioned {
                partitions: self.partitions,
            }
        } else {
            workload::Keying::SourceRecordId
        }
    }

    fn partitions(&self) -> Partitions {
        Partitions {
            stream: self.partitions,
            report: Partitions::default().report,
        }
    }
}

/// One contestant's run over the whole input.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    seconds: f64,
    cpu_seconds: f64,
    rss_mib: f64,
    /// Records in its national (or output) topic.
    national: u64,
    /// Whether it finished within the timeout.
    finished: bool,
    /// Reports it got through: all of them, or at the timeout those decided (the hub) or
    /// reflected in its output.
    processed: u64,
}

impl Run {
    /// Reports per second.
    fn rate(&self) -> f64 {
        self.processed as f64 / self.seconds
    }

    /// CPU µs per report.
    fn cpu_us(&self) -> f64 {
        self.cpu_seconds / self.processed.max(1) as f64 * 1e6
    }

    /// National (or output) records per GPS point, over the points it got through.
    fn per_point(&self, reports: u64, points: u64) -> f64 {
        let points_done = self.processed as f64 * points as f64 / reports as f64;
        self.national as f64 / points_done.max(1.0)
    }
}

/// Which GPS point a contestant's output record stands for: by its key when that is the
/// point's entity id (the hub's and the Streams peer's national records), else by its value
/// when that is one of the point's raw reports (the no-op copies keep the raw key, which is
/// the vehicle's, not the point's, when co-partitioned).
struct PointIndex {
    by_entity: HashMap<String, u32>,
    by_report: HashMap<u64, u32>,
}

impl PointIndex {
    fn new(positions: &workload::Positions) -> Self {
        PointIndex {
            by_entity: positions
                .entity_ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i as u32))
                .collect(),
            by_report: positions
                .reports
                .iter()
                .map(|r| (Self::digest(&r.payload), r.point))
                .collect(),
        }
    }

    fn digest(bytes: &[u8]) -> u64 {
        use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(bytes)
    }

    /// The point of a record with `key` and `payload`, if it stands for one.
    fn point(&self, key: Option<&[u8]>, payload: Option<&[u8]>) -> Option<u32> {
        key.and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| self.by_entity.get(k))
            .or_else(|| self.by_report.get(&Self::digest(payload?)))
            .copied()
    }
}

/// Latency at a steady load.
#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    points: usize,
    missing: usize,
}

/// The bench's broker clients, registry and encoders.
struct Bench {
    config: Config,
    runtime: tokio::runtime::Runtime,
    registry_url: String,
    _registry: hub::registry::SchemaRegistry,
    http: reqwest::Client,
    schema_file: PathBuf,
}

fn main() {
    if let Ok(kind) = std::env::var("BENCH_CHILD") {
        copy::child(&kind);
        return;
    }
    let config = Config::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (registry, registry_url) = runtime.block_on(tests::start_registry());
    let schema_file = config.work.join("raw-vehicle-position.avsc");
    std::fs::write(
        &schema_file,
        schemas::contract::schema_json(schemas::SchemaName::Raw(Domain::VehiclePosition)),
    )
    .expect("schema file");
    let bench = Bench {
        config,
        runtime,
        registry_url,
        _registry: registry,
        http: reqwest::Client::new(),
        schema_file,
    };
    bench.race();
}

/// Median, minimum and maximum.
fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Some((median, v[0], v[v.len() - 1]))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// A producer for loading input as a connector would write it (idempotent, zstd).
fn loader() -> ThreadedProducer<DefaultProducerContext> {
    tests::settings()
        .client_config()
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "zstd")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("loading producer")
}

/// Sends a record to `topic`, to `partition` if given (else the key's, by the producer's
/// partitioner).
fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: Option<i32>,
    key: &[u8],
    payload: &[u8],
) {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic)
        .key(key)
        .payload(payload);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, _)) => panic!("producing to {topic}: {e}"),
        }
    }
}

/// Waits until every partition of `topic`, created a moment ago, has a leader that answers.
fn await_leaders(topic: &str) {
    let client: BaseConsumer = tests::settings()
        .client_config()
        .create()
        .expect("metadata client");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let led = client
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|m| {
                m.topics().iter().all(|t| {
                    t.error().is_none()
                        && !t.partitions().is_empty()
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            });
        if led
            && client
                .fetch_watermarks(topic, 0, Duration::from_secs(5))
                .is_ok()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{topic} has no leader within 60 s");
}

/// Records in `topic` (committed ones, to its end).
fn count(topic: &str) -> u64 {
    let mut n = 0u64;
    schemas::kafka::read_to_end(
        &tests::settings(),
        topic,
        None,
        Duration::from_secs(300),
        |_, _, _| n += 1,
    )
    .unwrap_or_else(|e| panic!("reading {topic}: {e}"));
    n
}

/// The last stable offsets and high watermarks of a topic's partitions.
struct Watermarks {
    committed: BaseConsumer,
    uncommitted: BaseConsumer,
}

impl Watermarks {
    fn new(topic: &str) -> Self {
        let client = |isolation: &str| -> BaseConsumer {
            tests::settings()
                .client_config()
                .set("group.id", format!("{topic}-settled"))
                .set("isolation.level", isolation)
                .create()
                .expect("watermark client")
        };
        Watermarks {
            committed: client("read_committed"),
            uncommitted: client("read_uncommitted"),
        }
    }

    /// Whether no transaction is open on any partition of `topic`: its last stable offsets
    /// equal its high watermarks.
    fn settled(&self, topic: &str, partitions: i32) -> bool {
        (0..partitions).all(|p| {
            let timeout = Duration::from_secs(10);
            let stable = self.committed.fetch_watermarks(topic, p, timeout);
            let high = self.uncommitted.fetch_watermarks(topic, p, timeout);
            matches!((stable, high), (Ok((_, a)), Ok((_, b))) if a == b)
        })
    }
}

impl Bench {
    fn hub_url(port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }

    /// Creates the raw position topic under `prefix` and every contestant's outputs, with the
    /// hub's other topics too if `hub` (as it would at start-up).
    fn create_topics(&self, prefix: &str, hub: bool) {
        let names = hub::pipeline::TopicNames {
            prefix: prefix.to_owned(),
        };
        let mut specs = names.specs(
            self.config.partitions(),
            schemas::topics::Retention::default(),
        );
        // The contestants' outputs are configured as the hub's topics they stand for.
        let kind_of = |name: String| {
            specs
                .iter()
                .find(|s| s.name == name)
                .map_or(TopicKind::Internal, |s| s.kind)
        };
        let national = kind_of(names.national(Domain::VehiclePosition));
        let changelog = kind_of(names.changelog(Domain::VehiclePosition));
        let outcomes = kind_of(names.outcomes());
        if !hub {
            let raw = names.raw(Domain::VehiclePosition);
            specs.retain(|s| s.name == raw);
        }
        let p = self.config.partitions;
        for (name, kind, partitions) in [
            ("bench.copy.out", TopicKind::Internal, p),
            ("bench.topology.repartition", TopicKind::Internal, p),
            ("bench.topology.national", national, p),
            ("bench.topology.changelog", changelog, p),
            ("bench.topology.outcomes", outcomes, 1),
            ("bench.streams.national", national, p),
        ] {
            specs.push(TopicSpec {
                name: format!("{prefix}{name}"),
                kind,
                partitions,
            });
        }
        self.runtime
            .block_on(schemas::kafka::ensure_topics(&tests::settings(), &specs, 1))
            .expect("creating topics");
    }

    fn raw_topic(prefix: &str, domain: Domain) -> String {
        format!("{prefix}{}", schemas::topics::raw(domain))
    }

    /// Starts `contestant` on the topics under `prefix`; `expected` reports make it done (0:
    /// never). Returns the process and, for the hub, its HTTP port.
    fn start(&self, contestant: Contestant, prefix: &str, expected: u64) -> (Process, u16) {
        let c = &self.config;
        let log = c.work.join(format!("{prefix}{}.log", contestant.id()));
        let input = Self::raw_topic(prefix, Domain::VehiclePosition);
        let mut port = 0;
        let mut process = match contestant {
            Contestant::Copy | Contestant::Topology => {
                let mut command = Command::new(std::env::current_exe().expect("bench path"));
                command
                    .env("BENCH_CHILD", contestant.id())
                    .env("BENCH_PREFIX", prefix)
                    .env("BENCH_INPUT", &input)
                    .env("BENCH_BATCH_RECORDS", c.batch_records.to_string())
                    .env("BENCH_BATCH_INTERVAL_MS", c.batch_interval_ms.to_string())
                    .env("BENCH_STAGE_THREADS", c.stage_threads.to_string())
                    .env(
                        "BENCH_TRANSACTION_TIMEOUT_MS",
                        c.transaction_timeout_ms.to_string(),
                    )
                    .env(
                        "BENCH_COPARTITIONED",
                        if c.copartitioned { "1" } else { "0" },
                    )
                    .env("BENCH_EXPECTED", expected.to_string());
                Process::start(contestant.id(), command, &log)
            }
            Contestant::Hub => {
                port = tests::free_port();
                let mut command = Command::new(&c.hub);
                command
                    .args(["--bootstrap", &tests::bootstrap()])
                    .args(["--http-addr", &format!("127.0.0.1:{port}")])
                    .args(["--registry-url", &self.registry_url])
                    .args(["--topic-prefix", prefix])
                    .args(["--group-prefix", &format!("{prefix}hub")])
                    .args(["--instance-id", "bench-hub-0"])
                    .args(["--stream-partitions", &c.partitions.to_string()])
                    .args(["--batch-records", &c.batch_records.to_string()])
                    .args(["--batch-interval", &format!("{}ms", c.batch_interval_ms)])
                    .args(["--stage-threads", &c.stage_threads.to_string()])
                    .args([
                        "--transaction-timeout",
                        &format!("{}ms", c.transaction_timeout_ms),
                    ])
                    .arg("--state-dir")
                    .arg(c.work.join(format!("{prefix}hub-state")))
                    .args(&c.hub_args)
                    .env(
                        "RUST_LOG",
                        std::env::var("BENCH_HUB_LOG").unwrap_or_else(|_| "warn".into()),
                    );
                Process::start("hub", command, &log)
            }
            Contestant::Streams => {
                let mut command = Command::new("java");
                command
                    .arg(format!(
                        "-Dlog4j2.configurationFile={}",
                        c.peer.join("log4j2.properties").display()
                    ))
                    .arg("-cp")
                    .arg(format!(
                        "{}:{}/*",
                        c.peer.join("target/classes").display(),
                        c.peer.join("target/libs").display()
                    ))
                    .arg("huitong.bench.StreamsPeer")
                    .arg(tests::bootstrap())
                    .arg(format!("{prefix}streams"))
                    .arg(&input)
                    .arg(contestant.output(prefix))
                    .arg(c.work.join(format!("{prefix}streams-state")))
                    .arg(&self.schema_file)
                    .arg(c.partitions.to_string())
                    .arg(expected.to_string())
                    .arg(if c.copartitioned {
                        "co-partitioned"
                    } else {
                        "repartition"
                    });
                Process::start("streams", command, &log)
            }
        };
        let ready = match contestant {
            Contestant::Hub => self.wait_hub_ready(&mut process, port),
            Contestant::Streams => process.wait_line("running", Duration::from_secs(180)),
            _ => process.wait_line("ready", Duration::from_secs(60)),
        };
        assert!(
            ready,
            "{} did not start; its log: {}",
            contestant.id(),
            log.display()
        );
        (process, port)
    }

    fn wait_hub_ready(&self, process: &mut Process, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline && !process.exited() {
            let ready = self.runtime.block_on(async {
                self.http
                    .get(format!("{}/readyz", Self::hub_url(port)))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            });
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The hub's reconciliation totals, if it answered.
    fn totals(&self, port: u16) -> Option<serde_json::Value> {
        self.runtime.block_on(async {
            let r = self
                .http
                .get(format!("{}/reconciliation", Self::hub_url(port)))
                .send()
                .await
                .ok()?;
            let body: serde_json::Value = r.json().await.ok()?;
            body.get("total").cloned()
        })
    }

    /// Records with an outcome in the hub's reconciliation.
    fn decided(totals: &serde_json::Value) -> u64 {
        ["published", "merged_duplicate", "unchanged", "quarantined"]
            .iter()
            .filter_map(|f| totals.get(*f).and_then(serde_json::Value::as_u64))
            .sum()
    }

    fn field(totals: &serde_json::Value, name: &str) -> u64 {
        totals
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }

    /// Waits until the hub on `port` has decided `target` records; the totals then. Each
    /// reconciliation costs the hub a read of its outcomes topic, so it is asked about twice
    /// per remaining time estimated from its progress (every 100 ms to 2 s).
    fn wait_decided(
        &self,
        process: &mut Process,
        port: u16,
        target: u64,
    ) -> (bool, serde_json::Value) {
        let started = Instant::now();
        let deadline = started + self.config.timeout;
        let mut last = serde_json::Value::Null;
        let mut base: Option<u64> = None;
        while Instant::now() < deadline && !process.exited() {
            let mut pause = Duration::from_millis(500);
            if let Some(t) = self.totals(port) {
                let decided = Self::decided(&t);
                last = t;
                if decided >= target {
                    return (true, last);
                }
                let from = *base.get_or_insert(decided);
                let rate = (decided - from) as f64 / started.elapsed().as_secs_f64();
                if rate > 0.0 {
                    pause = Duration::from_secs_f64((target - decided) as f64 / rate / 2.0);
                }
            }
            std::thread::sleep(pause.clamp(Duration::from_millis(100), Duration::from_secs(2)));
        }
        (false, last)
    }

    /// One contestant over the whole input under `prefix`.
    fn run(&self, contestant: Contestant, prefix: &str, reports: u64, points: u64) -> Run {
        let expected = match contestant {
            Contestant::Hub => 0,
            _ => reports,
        };
        let (mut process, port) = self.start(contestant, prefix, expected);
        let pid = process.pid();
        let (started, cpu_before) = (Instant::now(), procs::cpu_seconds(pid));
        let mut decided = None;
        let finished = match contestant {
            Contestant::Hub => {
                let (done, totals) = self.wait_decided(&mut process, port, reports);
                let quarantined = Self::field(&totals, "quarantined");
                if quarantined > 0 {
                    say!("  warning: the hub quarantined {quarantined} of the bench's reports");
                }
                decided = Some(Self::decided(&totals));
                done
            }
            Contestant::Streams => {
                let done = process.wait_line("done", self.config.timeout);
                let output = contestant.output(prefix);
                let watermarks = Watermarks::new(&output);
                while done && !watermarks.settled(&output, self.config.partitions) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                done
            }
            _ => process.wait_line("done", self.config.timeout),
        };
        let seconds = started.elapsed().as_secs_f64();
        let cpu_seconds = procs::cpu_seconds(pid) - cpu_before;
        let rss_mib = procs::peak_rss_mib(pid);
        let national = count(&contestant.output(prefix));
        process.stop();
        let processed = match (finished, contestant, decided) {
            (true, _, _) => reports,
            (false, Contestant::Hub, Some(decided)) => decided,
            // The streams peer writes one record per point, the copies one per report.
            (false, Contestant::Streams, _) => national * reports / points.max(1),
            (false, _, _) => national,
        };
        let run = Run {
            seconds,
            cpu_seconds,
            rss_mib,
            national,
            finished,
            processed: processed.min(reports),
        };
        say!(
            "  {:<9} {}: {:>9.0} reports/s  {:>6.1} s  cpu {:>6.1} s  rss {:>5.0} MiB  \
             national records {} ({:.2} per point){}",
            contestant.id(),
            prefix.trim_end_matches('.'),
            run.rate(),
            seconds,
            cpu_seconds,
            rss_mib,
            national,
            run.per_point(reports, points),
            if finished {
                String::new()
            } else {
                format!(
                    "  TIMED OUT after {} of {reports} reports (figures over those)",
                    run.processed
                )
            }
        );
        run
    }

    /// Latency of `contestant` with reports sent at `rate` per second for the configured time,
    /// on fresh topics.
    fn latency(
        &self,
        contestant: Contestant,
        positions: &workload::Positions,
        keys: &Arc<PointIndex>,
        rate: f64,
    ) -> Latency {
        let prefix = format!("{}-lat-{}.", self.config.run, contestant.id());
        self.create_topics(&prefix, contestant == Contestant::Hub);
        let (process, _) = self.start(contestant, &prefix, 0);
        let sent: Arc<Vec<AtomicU64>> =
            Arc::new((0..positions.points).map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let seen_count = Arc::new(AtomicU64::new(0));
        let output = contestant.output(&prefix);
        let partitions = self.config.partitions;
        let reader = {
            let (sent, stop, keys, seen_count) =
                (sent.clone(), stop.clone(), keys.clone(), seen_count.clone());
            std::thread::spawn(move || {
                let consumer: BaseConsumer = tests::settings()
                    .client_config()
                    .set("group.id", format!("{output}-latency"))
                    .set("isolation.level", "read_committed")
                    .set("enable.auto.commit", "false")
                    .create()
                    .expect("latency consumer");
                let mut assignment = rdkafka::TopicPartitionList::new();
                for p in 0..partitions {
                    assignment
                        .add_partition_offset(&output, p, rdkafka::Offset::Beginning)
                        .expect("partition");
                }
                consumer.assign(&assignment).expect("assign");
                let mut seen = vec![false; sent.len()];
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    match consumer.poll(Duration::from_millis(100)) {
                        Some(Ok(m)) => {
                            let at = now_ms();
                            let point = keys.point(m.key(), m.payload()).map(|p| p as usize);
                            if let Some(p) = point
                                && !seen[p]
                            {
                                let from = sent[p].load(Ordering::Acquire);
                                if from > 0 {
                                    seen[p] = true;
                                    latencies.push((from, at.saturating_sub(from) as f64));
                                    seen_count.fetch_add(1, Ordering::AcqRel);
                                }
                            }
                        }
                        Some(Err(e)) => eprintln!("latency consumer: {e}"),
                        None => {}
                    }
                }
                latencies
            })
        };
        let producer = loader_latency();
        let input = Self::raw_topic(&prefix, Domain::VehiclePosition);
        producer
            .client()
            .fetch_metadata(Some(&input), Duration::from_secs(10))
            .expect("input metadata");
        let started = Instant::now();
        // Points first sent in the warm-up (groups joining, caches filling) are not measured.
        let warmup = Duration::from_secs(self.config.latency_warmup_seconds);
        let measured_from = now_ms() + u64::try_from(warmup.as_millis()).unwrap_or(0);
        let span = warmup + Duration::from_secs(self.config.latency_seconds);
        let mut next = 0usize;
        let mut points_sent = 0usize;
        while started.elapsed() < span && next < positions.reports.len() {
            let due =
                ((started.elapsed().as_secs_f64() * rate) as usize).min(positions.reports.len());
            while next < due {
                let r = &positions.reports[next];
                let at = now_ms();
                if sent[r.point as usize]
                    .compare_exchange(0, at, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    points_sent += 1;
                }
                send(&producer, &input, r.partition, r.key.as_bytes(), &r.payload);
                next += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
        let deadline = Instant::now() + Duration::from_secs(60);
        while (seen_count.load(Ordering::Acquire) as usize) < points_sent
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Release);
        let seen = reader.join().expect("latency reader");
        process.stop();
        let measured_points = sent
            .iter()
            .filter(|at| at.load(Ordering::Acquire) >= measured_from)
            .count();
        let mut latencies: Vec<f64> = seen
            .iter()
            .filter(|(from, _)| *from >= measured_from)
            .map(|(_, l)| *l)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let l = Latency {
            p50_ms: percentile(&latencies, 50.0),
            p99_ms: percentile(&latencies, 99.0),
            points: measured_points,
            missing: measured_points.saturating_sub(latencies.len()),
        };
        say!(
            "  {:<9} at {rate:.0} reports/s for {} s (after {} s of warm-up): p50 {:.0} ms  \
             p99 {:.0} ms over {} points{}",
            contestant.id(),
            self.config.latency_seconds,
            self.config.latency_warmup_seconds,
            l.p50_ms,
            l.p99_ms,
            l.points,
            if l.missing > 0 {
                format!("  ({} points not seen within 60 s)", l.missing)
            } else {
                String::new()
            }
        );
        l
    }

    /// The registry snapshot on the hub: pass 1, then (the hub paused while it is loaded) pass
    /// 2. Returns pass 2's reports/s and the fraction of it published.
    fn snapshot(&self) -> Option<(f64, f64)> {
        let count = self.config.institutions;
        if count == 0 || !self.config.contestants.contains(&Contestant::Hub) {
            return None;
        }
        let prefix = format!("{}-snapshot.", self.config.run);
        self.create_topics(&prefix, true);
        let encoder: Encoder<RawInstitution> = self
            .runtime
            .block_on(Encoder::register(
                &schemas::registry::RegistryClient::new(&self.registry_url)
                    .expect("registry client"),
            ))
            .expect("raw institution schema");
        let institutions = workload::Institutions::new();
        let topic = Self::raw_topic(&prefix, Domain::Institution);
        await_leaders(&topic);
        let load = |pass: u32| {
            let started = Instant::now();
            let producer = loader();
            let mut buffer = Vec::with_capacity(512);
            for i in 0..count {
                let (key, record) = institutions.record(i, pass);
                buffer.clear();
                encoder
                    .encode_into(&record, &mut buffer)
                    .expect("a generated institution encodes");
                send(&producer, &topic, None, key.as_bytes(), &buffer);
            }
            producer.flush(Duration::from_secs(120)).expect("flush");
            started.elapsed().as_secs_f64()
        };
        let loaded = load(1);
        say!("  pass 1: {count} institutions loaded in {loaded:.1} s");
        let (mut hub, port) = self.start(Contestant::Hub, &prefix, 0);
        let started = Instant::now();
        let (done, first) = self.wait_decided(&mut hub, port, count as u64);
        let first_s = started.elapsed().as_secs_f64();
        say!(
            "  pass 1: {:.0} reports/s ({:.1} s), published {}{}",
            count as f64 / first_s,
            first_s,
            Self::field(&first, "published"),
            if done { "" } else { "  TIMED OUT" }
        );
        if !done {
            hub.stop();
            return None;
        }
        hub.signal("STOP");
        let loaded = load(2);
        say!("  pass 2: loaded in {loaded:.1} s while the hub was paused");
        hub.signal("CONT");
        let started = Instant::now();
        let (done, second) = self.wait_decided(&mut hub, port, 2 * count as u64);
        let seconds = started.elapsed().as_secs_f64();
        hub.stop();
        let published =
            Self::field(&second, "published").saturating_sub(Self::field(&first, "published"));
        let rate = count as f64 / seconds;
        let fraction = published as f64 / count as f64;
        say!(
            "  pass 2: {rate:.0} reports/s ({seconds:.1} s), published {published} ({:.2}%), \
             unchanged {}{}",
            fraction * 100.0,
            Self::field(&second, "unchanged").saturating_sub(Self::field(&first, "unchanged")),
            if done { "" } else { "  TIMED OUT" }
        );
        done.then_some((rate, fraction))
    }

    fn race(&self) {
        let c = &self.config;
        let registry = schemas::registry::RegistryClient::new(&self.registry_url).expect("client");
        let encoder: Encoder<RawVehiclePosition> = self
            .runtime
            .block_on(Encoder::register(&registry))
            .expect("raw position schema");
        let generated = Instant::now();
        let positions = workload::positions(&encoder, c.reports, c.vehicles, c.keying());
        let reports = positions.reports.len() as u64;
        let points = positions.points as u64;
        say!(
            "hub bench {}: {reports} position reports of {points} points from {} vehicles \
             (county, prefecture and province each), {}, {} partitions, {} rounds, batches of \
             {} records or {} ms, {} thread(s) per stage; generated in {:.1} s",
            c.run,
            positions.vehicles,
            if c.copartitioned {
                "co-partitioned by vehicle"
            } else {
                "keyed by source record id (BENCH_COPARTITIONED=0)"
            },
            c.partitions,
            c.rounds,
            c.batch_records,
            c.batch_interval_ms,
            c.stage_threads,
            generated.elapsed().as_secs_f64()
        );
        if c.contestants.contains(&Contestant::Streams) {
            assert!(
                c.peer
                    .join("target/classes/huitong/bench/StreamsPeer.class")
                    .exists(),
                "the Streams peer is not built: run ops/bench/streams-peer/build (ops/bench/hub does)"
            );
        }

        // Input for every round, loaded before the race.
        let prefixes: Vec<String> = (0..c.rounds).map(|r| format!("{}-r{r}.", c.run)).collect();
        for prefix in &prefixes {
            self.create_topics(prefix, c.contestants.contains(&Contestant::Hub));
            let producer = loader();
            let topic = Self::raw_topic(prefix, Domain::VehiclePosition);
            await_leaders(&topic);
            let started = Instant::now();
            for r in &positions.reports {
                send(&producer, &topic, r.partition, r.key.as_bytes(), &r.payload);
            }
            producer.flush(Duration::from_secs(120)).expect("flush");
            say!(
                "loaded {topic}: {:.0} reports/s",
                reports as f64 / started.elapsed().as_secs_f64()
            );
        }

        let mut runs: HashMap<&'static str, Vec<Run>> = HashMap::new();
        for (round, prefix) in prefixes.iter().enumerate() {
            say!("round {}:", round + 1);
            let mut order = c.contestants.clone();
            let turn = round % order.len().max(1);
            order.rotate_left(turn);
            for contestant in order {
                let run = self.run(contestant, prefix, reports, points);
                runs.entry(contestant.id()).or_default().push(run);
            }
        }

        let rate = |c: Contestant| -> Option<(f64, f64, f64)> {
            let rates: Vec<f64> = runs.get(c.id())?.iter().map(Run::rate).collect();
            spread(&rates)
        };
        let median_of = |c: Contestant, f: &dyn Fn(&Run) -> f64| -> Option<f64> {
            let v: Vec<f64> = runs.get(c.id())?.iter().map(f).collect();
            spread(&v).map(|s| s.0)
        };

        // Latency at half the hub's rate (the ceiling's, without a hub).
        let base = rate(Contestant::Hub)
            .or_else(|| rate(Contestant::Copy))
            .map_or(10_000.0, |s| s.0);
        let load = env_or("BENCH_LATENCY_RATE", base / 2.0);
        let keys = Arc::new(PointIndex::new(&positions));
        let mut latencies: HashMap<&'static str, Latency> = HashMap::new();
        if c.latency_seconds > 0 {
            say!("latency at a steady {load:.0} reports/s:");
            for &contestant in &c.contestants {
                latencies.insert(
                    contestant.id(),
                    self.latency(contestant, &positions, &keys, load),
                );
            }
        }

        say!(
            "registry snapshot ({} institutions, twice):",
            c.institutions
        );
        let snapshot = self.snapshot();

        // The table.
        say!();
        say!(
            "{:<30} {:>10} {:>10} {:>10} {:>12} {:>9} {:>10} {:>8} {:>8}",
            "contestant",
            "reports/s",
            "min",
            "max",
            "cpu_s/10^6",
            "rss_mib",
            "out/point",
            "p50_ms",
            "p99_ms"
        );
        let na = || "-".to_owned();
        for &contestant in &c.contestants {
            let s = rate(contestant);
            let cpu = median_of(contestant, &|r| r.cpu_us());
            let rss = median_of(contestant, &|r| r.rss_mib);
            let per_point = median_of(contestant, &|r| r.per_point(reports, points));
            let l = latencies.get(contestant.id());
            let fmt =
                |v: Option<f64>, digits: usize| v.map_or_else(na, |v| format!("{v:.digits$}"));
            let timed_out = runs
                .get(contestant.id())
                .is_some_and(|r| r.iter().any(|r| !r.finished));
            say!(
                "{:<30} {:>10} {:>10} {:>10} {:>12} {:>9} {:>10} {:>8} {:>8}",
                format!(
                    "{}{}",
                    contestant.label(),
                    if timed_out { " *" } else { "" }
                ),
                fmt(s.map(|s| s.0), 0),
                fmt(s.map(|s| s.1), 0),
                fmt(s.map(|s| s.2), 0),
                fmt(cpu, 1),
                fmt(rss, 0),
                fmt(per_point, 2),
                fmt(l.map(|l| l.p50_ms), 0),
                fmt(l.map(|l| l.p99_ms), 0),
            );
        }
        if runs.values().flatten().any(|r| !r.finished) {
            say!(
                "* timed out in a round (BENCH_TIMEOUT_SECONDS={}): figures over the reports it got through",
                c.timeout.as_secs()
            );
        }
        let hub = rate(Contestant::Hub).map(|s| s.0);
        let ratio = |other: Contestant| -> Option<f64> { Some(hub? / rate(other)?.0) };
        let show = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "NaN".to_owned(), |v| format!("{v:.digits$}"))
        };
        say!(
            "hub / ceiling {}  hub / topology ceiling {}  hub / Streams peer {}",
            show(ratio(Contestant::Copy), 3),
            show(ratio(Contestant::Topology), 3),
            show(ratio(Contestant::Streams), 3)
        );
        match snapshot {
            Some((rate, fraction)) => say!(
                "registry snapshot, second pass: {rate:.0} reports/s, {:.2}% of records published",
                fraction * 100.0
            ),
            None => say!("registry snapshot, second pass: not measured"),
        }
        let processes = hub.map(|r| (300_000.0 / r).ceil());
        say!(
            "hub processes for the national stream (300,000 reports/s) at the measured rate: {}",
            show(processes, 0)
        );
        let cpu_us = median_of(Contestant::Hub, &Run::cpu_us);
        let per_point = median_of(Contestant::Hub, &|r| r.per_point(reports, points));
        let p99 = latencies.get(Contestant::Hub.id()).map(|l| l.p99_ms);
        say!(
            "ratio_to_ceiling={} ratio_to_topology_ceiling={} ratio_to_streams={} \
             cpu_us_per_report={} records_per_point={} p99_ms={}",
            show(ratio(Contestant::Copy), 3),
            show(ratio(Contestant::Topology), 3),
            show(ratio(Contestant::Streams), 3),
            show(cpu_us, 1),
            show(per_point, 2),
            show(p99, 0)
        );
    }

    /// Deletes the run's topics and its work folder (again if it was done: a no-op).
    fn cleanup(&self) {
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::client::DefaultClientContext;

        // `BENCH_KEEP_WORK=1` keeps the contestants' logs and state for a look afterwards.
        if std::env::var_os("BENCH_KEEP_WORK").is_none() {
            let _ = std::fs::remove_dir_all(&self.config.work);
        }
        let Ok(admin) = tests::settings()
            .client_config()
            .create::<AdminClient<DefaultClientContext>>()
        else {
            return;
        };
        let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(30)) else {
            return;
        };
        let topics: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|t| t.starts_with(&self.config.run))
            .collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        for chunk in names.chunks(100) {
            let _ = self
                .runtime
                .block_on(admin.delete_topics(chunk, &AdminOptions::new()));
        }
    }
}

impl Drop for Bench {
    /// A failed bench leaves nothing behind on a shared broker either.
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A producer for the latency phase: records go out at once.
fn loader_latency() -> ThreadedProducer<DefaultProducerContext> {
    tests::settings()
        .client_config()
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("compression.type", "zstd")
        .create()
        .expect("latency producer")
}
