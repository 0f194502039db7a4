//! The `hub` binary: creates the exchange's topics, serves the operator endpoints and the
//! Schema Registry API, and runs until stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use hub::pipeline::metrics::Metrics as PipelineMetrics;
use hub::pipeline::{Pipeline, PipelineConfig, TopicNames};
use hub::registry::{RegistryConfig, SchemaRegistry};
use hub::stages::Rules;
use hub::stages::resolve::SurvivorshipPolicy;
use schemas::ClientSettings;
use schemas::kafka::{TopicOutcome, ensure_topics};
use schemas::registry::{RegistryClient, register_contract};
use schemas::topics::{Partitions, Retention};

/// mimalloc instead of glibc's malloc, as in the connector: allocation and freeing were about a
/// third of the resolve stage's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command-line options; every option can also be set by the environment variable named.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Kafka bootstrap servers (`host:port[,host:port]`).
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    bootstrap: String,
    /// Address of the HTTP endpoints: `/metrics`, `/healthz`, `/readyz` and, unless
    /// `--registry-url` is set, the Schema Registry API.
    #[arg(long, env = "HUB_HTTP_ADDR", default_value = "127.0.0.1:9644")]
    http_addr: SocketAddr,
    /// Replication factor of the topics the hub creates (1 on a single-node cluster).
    #[arg(long, env = "HUB_REPLICATION_FACTOR", default_value_t = 1)]
    replication_factor: i32,
    /// Partitions of report and registry topics, `hub.outcomes` and `hub.quarantine` (sizing
    /// rule: ARCHITECTURE.md, "Topics at national scale"; fixed once the topics exist).
    #[arg(long, env = "HUB_REPORT_PARTITIONS", default_value_t = Partitions::default().report)]
    report_partitions: i32,
    /// Partitions of stream topics (vehicle positions): at least the stage threads that must be
    /// busy at peak, across all processes.
    #[arg(long, env = "HUB_STREAM_PARTITIONS", default_value_t = Partitions::default().stream)]
    stream_partitions: i32,
    /// Compacted topic storing the Schema Registry (one partition, created if missing).
    #[arg(long, env = "HUB_REGISTRY_TOPIC", default_value = hub::registry::DEFAULT_TOPIC)]
    registry_topic: String,
    /// `transactional.id` of the registry's writer; every hub replica must use the same one,
    /// which is what serialises their registry writes.
    #[arg(
        long,
        env = "HUB_REGISTRY_TRANSACTIONAL_ID",
        default_value = hub::registry::DEFAULT_TRANSACTIONAL_ID
    )]
    registry_transactional_id: String,
    /// URL of an external Confluent-compatible Schema Registry. When set, the hub uses it and
    /// does not serve the registry API itself.
    #[arg(long, env = "HUB_REGISTRY_URL")]
    registry_url: Option<String>,
    /// Log JSON lines instead of human-readable text.
    #[arg(long, env = "HUB_LOG_JSON")]
    log_json: bool,
    /// This process's stable id (e.g. the pod name of a StatefulSet): the stages'
    /// transactional ids derive from it, so a restarted process fences its predecessor at once.
    /// Two live processes must not share it.
    #[arg(long, env = "HUB_INSTANCE_ID", default_value = "hub-0")]
    instance_id: String,
    /// Prefix of the stage's consumer group (`<prefix>-resolve`) and transactional ids; every
    /// process of one hub deployment uses the same.
    #[arg(long, env = "HUB_GROUP_PREFIX", default_value = "huitong-hub")]
    group_prefix: String,
    /// Threads of the stage (as Kafka Streams' `num.stream.threads`); by default half the
    /// cores, since the broker's clients (compression, fetches) take about as much CPU again.
    /// More threads than partitions idle.
    #[arg(long, env = "HUB_STAGE_THREADS", default_value_t = default_stage_threads())]
    stage_threads: usize,
    /// Records per transaction, at most. A transaction costs a few broker round trips, so
    /// large batches are what let one thread approach the broker's exactly-once ceiling; the
    /// interval bounds the latency they add.
    #[arg(long, env = "HUB_BATCH_RECORDS", default_value_t = 20_000)]
    batch_records: usize,
    /// Time per transaction, at most, from its first record (e.g. `100ms`).
    #[arg(long, env = "HUB_BATCH_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    batch_interval: Duration,
    /// `transaction.timeout.ms` of the stages' producers: how long a dead process's open
    /// transaction can hold up the partitions' next owner.
    #[arg(long, env = "HUB_TRANSACTION_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    transaction_timeout: Duration,
    /// Folder of the local state stores, one subfolder per instance id. A store closed cleanly
    /// is kept there and brought up to date from its checkpoint; any other is rebuilt from its
    /// changelog.
    #[arg(long, env = "HUB_STATE_DIR", default_value = "/tmp/huitong-hub-state")]
    state_dir: std::path::PathBuf,
    /// How long the state of a GPS fix is kept after its first report (every level's copy of a
    /// fix arrives within minutes; later copies are published again). The stream changelog the
    /// hub creates keeps records for twice that.
    #[arg(long, env = "HUB_STREAM_STATE_RETENTION", default_value = "1h", value_parser = humantime::parse_duration)]
    stream_state_retention: Duration,
    /// How long the national stream feed (`national.vehicle-position.v1`) keeps a GPS point
    /// before it is deleted; applies to topics the hub creates.
    #[arg(long, env = "HUB_STREAM_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    stream_retention: Duration,
    /// Memory cache of each partition's state store, in MiB.
    #[arg(long, env = "HUB_STATE_CACHE_MIB", default_value_t = 16)]
    state_cache_mib: usize,
    /// Put before every topic name the pipeline uses (e.g. `staging.`), so that several hubs
    /// can share one cluster; empty in production.
    #[arg(long, env = "HUB_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Folder with `units.toml`, `labels.toml` or `checks.toml` replacing the shipped ones in
    /// `hub/config/` (a file missing there keeps its shipped version).
    #[arg(long, env = "HUB_RULES_DIR")]
    rules_dir: Option<std::path::PathBuf>,
    /// Survivorship rules (TOML) replacing the shipped `hub/config/survivorship.toml`.
    #[arg(long, env = "HUB_SURVIVORSHIP")]
    survivorship: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init_logging(args.log_json);

    let metrics = telemetry::registry("hub").context("creating metrics registry")?;
    let ops = telemetry::http::OpsState::new(metrics.clone());
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding HTTP address {}", args.http_addr))?;

    let settings = ClientSettings::new(args.bootstrap);
    let names = TopicNames {
        prefix: args.topic_prefix.clone(),
    };
    let specs = names.specs(
        Partitions {
            stream: args.stream_partitions,
            report: args.report_partitions,
        },
        Retention {
            stream: args.stream_retention,
            stream_state: args.stream_state_retention,
        },
    );
    let outcomes = ensure_topics(&settings, &specs, args.replication_factor)
        .await
        .context("creating the exchange's topics")?;
    for (topic, outcome) in &outcomes {
        tracing::info!(
            topic,
            created = *outcome == TopicOutcome::Created,
            "topic ready"
        );
    }

    let registry = match &args.registry_url {
        Some(url) => {
            tracing::info!(url, "using an external schema registry");
            None
        }
        None => {
            let config = RegistryConfig {
                topic: args.registry_topic.clone(),
                transactional_id: args.registry_transactional_id.clone(),
                replication_factor: args.replication_factor,
                ..RegistryConfig::default()
            };
            let registry = SchemaRegistry::start(&settings, config, &metrics)
                .await
                .context("starting the schema registry")?;
            Some(registry)
        }
    };

    let registry_url = match &args.registry_url {
        Some(url) => url.clone(),
        None => format!("http://{}", reachable(args.http_addr)),
    };
    let client = Arc::new(RegistryClient::new(&registry_url).context("schema registry URL")?);
    let mut router = telemetry::http::router(ops.clone())
        .merge(hub::pipeline::replay::router(
            settings.clone(),
            names.clone(),
            client.clone(),
            format!("{}-replay", args.group_prefix),
        ))
        .merge(hub::pipeline::accounting::router(
            settings.clone(),
            names.outcomes(),
        ));
    if let Some(registry) = &registry {
        router = router.merge(registry.router());
    }
    tracing::info!(
        addr = %args.http_addr,
        registry = registry.is_some(),
        "HTTP endpoints listening"
    );
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(telemetry::shutdown_signal())
            .into_future(),
    );

    if let Some(registry) = &registry {
        // /readyz stays 503 until the registry has read its topic to the end.
        loop {
            match registry.wait_ready(Duration::from_secs(10)).await {
                Ok(()) => {
                    tracing::info!("schema registry ready");
                    break;
                }
                Err(_) if server.is_finished() => break,
                Err(e) if e.code() == "timeout" => {
                    tracing::info!("schema registry still loading its topic");
                }
                Err(e) => return Err(e).context("loading the schema registry"),
            }
        }
    }
    // The contract's schemas are registered through the REST client, whether the registry is
    // our own or external: one code path, and what consumers see is what we registered.
    let ids = register_contract(&client)
        .await
        .with_context(|| format!("registering the contract's schemas at {registry_url}"))?;
    for (name, id) in &ids {
        tracing::info!(subject = %name.subject(), id, "schema registered");
    }

    let policy = match &args.survivorship {
        Some(path) => SurvivorshipPolicy::load(path)
            .with_context(|| format!("reading survivorship rules {}", path.display()))?,
        None => SurvivorshipPolicy::shipped(),
    };
    let rules = match &args.rules_dir {
        Some(dir) => Rules::load(dir)
            .with_context(|| format!("reading validation rules from {}", dir.display()))?,
        None => Rules::embedded().clone(),
    };
    let pipeline_metrics = PipelineMetrics::new(&metrics).context("creating pipeline metrics")?;
    // /readyz says 503 while a stage makes no progress with input waiting (see Health).
    let health = pipeline_metrics.health.clone();
    ops.set_probe(Arc::new(move || health.ready(std::time::Instant::now())));
    let pipeline = Pipeline::start(
        PipelineConfig {
            settings: settings.clone(),
            instance_id: args.instance_id.clone(),
            group_prefix: args.group_prefix.clone(),
            topics: names.clone(),
            stage_threads: args.stage_threads,
            batch_records: args.batch_records,
            batch_interval: args.batch_interval,
            transaction_timeout: args.transaction_timeout,
            // One folder per instance: two processes on one machine must not share stores.
            state_dir: args.state_dir.join(&args.instance_id),
            state_cache_bytes: args.state_cache_mib << 20,
            stream_state_retention: args.stream_state_retention,
            policy,
            rules: Arc::new(rules),
        },
        client,
        pipeline_metrics,
    )
    .await
    .context("starting the pipeline")?;

    ops.set_ready(true);
    tracing::info!(
        bootstrap = %settings.bootstrap,
        topics = outcomes.len(),
        "hub ready"
    );

    let served = server.await.context("HTTP server task")?;
    tokio::task::spawn_blocking(move || pipeline.stop())
        .await
        .context("stopping the pipeline")?;
    if let Some(registry) = &registry {
        registry.shutdown().await;
    }
    served.context("serving HTTP endpoints")?;
    tracing::info!("hub stopped");
    Ok(())
}

/// The address a local client uses to reach a listener bound to `addr` (a wildcard address is
/// reached through loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

/// Half the cores this process may use, at least one.
fn default_stage_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
