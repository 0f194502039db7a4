//! The `connector` binary.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use schemas::ClientSettings;

/// Command-line options; every option can also be set by the environment variable named.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Kafka bootstrap servers (`host:port[,host:port]`).
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    bootstrap: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks that the cluster answers and lists the raw topics connectors write to; exits
    /// non-zero when one is missing.
    Check,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = ClientSettings::new(args.bootstrap);
    match args.command {
        Command::Check => {
            let states = connectors::preflight::raw_topics(&settings, Duration::from_secs(10))
                .context("reading cluster metadata")?;
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
            anyhow::ensure!(missing == 0, "{missing} raw topic(s) missing");
            Ok(())
        }
    }
}
