//! The `hub` binary: creates the exchange's topics, serves the operator endpoints and the
//! Schema Registry API, and runs until stopped.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use hub::registry::{RegistryConfig, SchemaRegistry};
use schemas::ClientSettings;
use schemas::kafka::{TopicOutcome, ensure_topics};
use schemas::registry::{RegistryClient, register_contract};
use schemas::topics::{self, Partitions};

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
    /// Partitions of report and registry topics.
    #[arg(long, env = "HUB_REPORT_PARTITIONS", default_value_t = Partitions::default().report)]
    report_partitions: i32,
    /// Partitions of stream topics (vehicle positions).
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
    let specs = topics::all(Partitions {
        stream: args.stream_partitions,
        report: args.report_partitions,
    });
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

    let mut router = telemetry::http::router(ops.clone());
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
    let registry_url = match &args.registry_url {
        Some(url) => url.clone(),
        None => format!("http://{}", reachable(args.http_addr)),
    };
    let client = RegistryClient::new(&registry_url).context("schema registry URL")?;
    let ids = register_contract(&client)
        .await
        .with_context(|| format!("registering the contract's schemas at {registry_url}"))?;
    for (name, id) in &ids {
        tracing::info!(subject = %name.subject(), id, "schema registered");
    }

    ops.set_ready(true);
    tracing::info!(
        bootstrap = %settings.bootstrap,
        topics = outcomes.len(),
        "hub ready"
    );

    let served = server.await.context("HTTP server task")?;
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
