//! The `hub` binary: creates the exchange's topics, serves the operator endpoints and runs until
//! stopped.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use schemas::ClientSettings;
use schemas::kafka::{TopicOutcome, ensure_topics};
use schemas::topics::{self, Partitions};

/// Command-line options; every option can also be set by the environment variable named.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Kafka bootstrap servers (`host:port[,host:port]`).
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    bootstrap: String,
    /// Address of the operator HTTP endpoints (`/metrics`, `/healthz`, `/readyz`).
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
    /// Log JSON lines instead of human-readable text.
    #[arg(long, env = "HUB_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    hub::telemetry::init_logging(args.log_json);

    let registry = hub::telemetry::registry("hub").context("creating metrics registry")?;
    let ops = hub::ops_http::OpsState::new(registry);
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding operator HTTP address {}", args.http_addr))?;
    tracing::info!(addr = %args.http_addr, "operator endpoints listening");
    let server = axum::serve(listener, hub::ops_http::router(ops.clone()))
        .with_graceful_shutdown(shutdown_signal());

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
    ops.set_ready(true);
    tracing::info!(
        bootstrap = %settings.bootstrap,
        topics = outcomes.len(),
        "hub ready"
    );

    server.await.context("serving operator endpoints")?;
    tracing::info!("hub stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, so that Kubernetes and Ctrl-C both stop the hub cleanly.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
