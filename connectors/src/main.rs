//! The `connector` binary.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use connectors::config::ConnectorConfig;
use connectors::runtime::{Metrics, Runtime};
use schemas::ClientSettings;

/// mimalloc instead of glibc's malloc: at national scale (tens of thousands of instances,
/// `ops/bench/connectors-scale`) allocation and freeing were about a third of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command-line options; every option can also be set by the environment variable named.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the source instances of a configuration file until SIGTERM or Ctrl-C.
    Run {
        /// The configuration file (TOML).
        #[arg(long, env = "CONNECTOR_CONFIG")]
        config: PathBuf,
        /// Address of the management API (`/connectors/...`), `/metrics`, `/healthz` and
        /// `/readyz`.
        #[arg(long, env = "CONNECTOR_HTTP_ADDR", default_value = "127.0.0.1:9645")]
        http_addr: SocketAddr,
        /// Log JSON lines instead of human-readable text.
        #[arg(long, env = "CONNECTOR_LOG_JSON")]
        log_json: bool,
    },
    /// Checks a configuration file against the contract without running it: mapping
    /// targets, required fields, symbols, date formats, URLs, files and directories. Prints
    /// one line per finding (`file:line: field: message`). Exit code 0 when valid, 1 when not,
    /// 2 when a system cannot be read for `--sample`.
    Validate {
        /// The configuration file (TOML).
        #[arg(long, env = "CONNECTOR_CONFIG")]
        config: PathBuf,
        /// Also read this many records of every instance from its system, from the start, and
        /// print what they become (one JSON line each: instance, topic, key, record — raw or
        /// quarantine), writing nothing anywhere.
        #[arg(long, default_value_t = 0)]
        sample: usize,
    },
    /// Checks that the cluster answers and lists the raw topics connectors write to. Exit
    /// code 0 when every topic is there, 1 when one is missing, 2 when the cluster does not
    /// answer.
    Check {
        /// Kafka bootstrap servers (`host:port[,host:port]`).
        #[arg(long, env = "KAFKA_BOOTSTRAP")]
        bootstrap: String,
    },
}

/// Exit code of a configuration or cluster state that is not valid.
const INVALID: u8 = 1;
/// Exit code of a system or cluster that does not answer.
const UNREACHABLE: u8 = 2;

fn main() -> std::process::ExitCode {
    let outcome = match Args::parse().command {
        Command::Run {
            config,
            http_addr,
            log_json,
        } => run(&config, http_addr, log_json).map(|()| 0),
        Command::Validate { config, sample } => validate(&config, sample),
        Command::Check { bootstrap } => check(&ClientSettings::new(bootstrap)),
    };
    match outcome {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `connector validate`: the findings, and whether there were any; with `sample`, what the
/// first records of every instance become.
fn validate(path: &std::path::Path, sample: usize) -> anyhow::Result<u8> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return Ok(INVALID);
        }
    };
    let config = match ConnectorConfig::parse(path, &text) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return Ok(INVALID);
        }
    };
    let report = connectors::validate::validate(path, &text, &config);
    let mut out = std::io::stdout().lock();
    write!(out, "{report}")?;
    if report.findings.is_empty() {
        writeln!(
            out,
            "{}: valid ({} instances{})",
            path.display(),
            config.instances.len(),
            config
                .push
                .as_ref()
                .map(|p| format!(", {} push clients", p.clients.len()))
                .unwrap_or_default()
        )?;
    } else {
        return Ok(INVALID);
    }
    if sample == 0 {
        return Ok(0);
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let mut code = 0;
    for instance in &config.instances {
        let id = instance.id.clone();
        let handle = runtime.handle().clone();
        match connectors::slot::Slot::sample(&config, instance.clone(), sample, handle) {
            Ok(messages) => {
                for mut message in messages {
                    message["instance"] = serde_json::Value::String(id.clone());
                    writeln!(out, "{message}")?;
                }
            }
            Err(e) => {
                eprintln!("{id}: {} ({})", e, e.code());
                code = UNREACHABLE;
            }
        }
    }
    Ok(code)
}

fn run(path: &std::path::Path, http_addr: SocketAddr, log_json: bool) -> anyhow::Result<()> {
    telemetry::init_logging(log_json);
    // Checked before anything starts: a bad file stops here with file, line and field.
    let config = ConnectorConfig::load(path)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let registry = telemetry::registry("connector").context("metrics registry")?;
        let metrics = Metrics::new(&registry).context("connector metrics")?;
        let shared_metrics = metrics.clone();
        let ops = telemetry::OpsState::new(registry);
        let listener = tokio::net::TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("binding {http_addr}"))?;
        let instances = config.instances.len();
        let connector_id = config.connector_id.clone();
        let push_config = config.push.clone();
        let limits = config.limits.clone();
        let (registry_url, kafka, progress_topic) = (
            config.registry_url.clone(),
            config.kafka.clone(),
            config.progress_topic.clone(),
        );
        let workers = Runtime::start(config, metrics)
            .await
            .context("starting the instances")?;
        // After the instances: their start created the progress topic the endpoint writes to.
        let push = match &push_config {
            Some(push) => {
                let registry = schemas::registry::RegistryClient::new(&registry_url)?;
                let (addr, task) = connectors::push::start(
                    push,
                    &limits,
                    &shared_metrics,
                    &connector_id,
                    &kafka,
                    &progress_topic,
                    &registry,
                )
                .await
                .context("starting the push endpoint")?;
                tracing::info!(%addr, clients = push.clients.len(), "push endpoint ready");
                Some(task)
            }
            None => None,
        };
        let router = telemetry::router(ops.clone())
            .merge(connectors::management::router(
                &connector_id,
                workers.controls(),
            ))
            .merge(shared_metrics.outcomes().router());
        let server = tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(telemetry::shutdown_signal())
                .into_future(),
        );
        ops.set_ready(true);
        tracing::info!(%http_addr, instances, "connector running");
        let served = server.await.context("HTTP server task")?;
        tokio::task::spawn_blocking(move || workers.stop())
            .await
            .context("stopping the instances")?;
        served.context("serving HTTP")?;
        if let Some(push) = push {
            push.abort();
        }
        tracing::info!("connector stopped");
        Ok(())
    })
}

fn check(settings: &ClientSettings) -> anyhow::Result<u8> {
    let states = match connectors::preflight::raw_topics(settings, Duration::from_secs(10)) {
        Ok(states) => states,
        Err(e) => {
            eprintln!("the cluster does not answer: {e}");
            return Ok(UNREACHABLE);
        }
    };
    let mut out = std::io::stdout().lock();
    let mut missing = 0;
    for state in &states {
        match state.partitions {
            Some(n) => writeln!(out, "{:<24} {n} partitions", state.topic)?,
            None => {
                missing += 1;
                writeln!(out, "{:<24} MISSING (the hub creates it)", state.topic)?;
            }
        }
    }
    if missing > 0 {
        eprintln!("{missing} raw topic(s) missing");
        return Ok(INVALID);
    }
    Ok(0)
}
