//! `simulator`: serves or exports the regional systems of a seeded world.
//!
//! - `simulator serve --seed 7 --size tiny --addr 127.0.0.1:0` prints
//!   `listening=http://127.0.0.1:PORT` once ready, then serves until interrupted.
//! - `simulator export --seed 7 --size tiny --out DIR [--malformed-every 10]` writes the files of
//!   the file-based systems and `DIR/ground-truth.json`.
//! - `simulator systems --seed 7 --size tiny` prints the system list as JSON.
//! - `simulator postgres --seed 7 --size tiny --url 'host=127.0.0.1 user=postgres' --table t`
//!   writes the PostgreSQL-backed system into table `t` (`--print-sql` prints its DDL).

use anyhow::Context;
use clap::{Parser, Subcommand};
use simulator::{Simulator, Size, World, export, server};
use std::io::Write;
use std::sync::Arc;

#[derive(Parser)]
#[command(about = "Regional simulator: fake provincial, city and county systems")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct WorldArgs {
    /// Seed everything derives from.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// tiny, small or national.
    #[arg(long, default_value = "tiny")]
    size: Size,
}

impl WorldArgs {
    fn simulator(&self) -> Simulator {
        Simulator::new(World::new(self.seed, self.size))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        #[command(flatten)]
        world: WorldArgs,
        /// Address to bind (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: std::net::SocketAddr,
    },
    /// Write the file-based systems' files and ground-truth.json.
    Export {
        #[command(flatten)]
        world: WorldArgs,
        /// Output directory.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Make every n-th data row of every file malformed (0 = none).
        #[arg(long, default_value_t = 0)]
        malformed_every: usize,
    },
    /// Write one system's records into a PostgreSQL table (recreated), or print its DDL.
    Postgres {
        #[command(flatten)]
        world: WorldArgs,
        /// System id (default: the one PostgreSQL-backed system).
        #[arg(long)]
        system: Option<String>,
        /// libpq connection string or URL, e.g. `host=127.0.0.1 port=5432 user=postgres`.
        #[arg(long, env = "HUITONG_PG_URL")]
        url: Option<String>,
        /// Table name.
        #[arg(long, default_value = "sim_records")]
        table: String,
        /// Only print the CREATE TABLE statement.
        #[arg(long)]
        print_sql: bool,
    },
    /// Print the system list (JSON).
    Systems {
        #[command(flatten)]
        world: WorldArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    match cli.command {
        Command::Serve { world, addr } => {
            let sim = Arc::new(world.simulator());
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let bound = listener.local_addr()?;
            writeln!(stdout.lock(), "listening=http://{bound}")?;
            stdout.lock().flush()?;
            tokio::select! {
                r = server::serve(listener, sim) => r.context("serving")?,
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::Export {
            world,
            out,
            malformed_every,
        } => {
            let sim = world.simulator();
            let truth = export::export(&sim, &out, &export::ExportOptions { malformed_every })
                .with_context(|| format!("exporting to {}", out.display()))?;
            let files = sim.systems().iter().filter_map(export::file_name).count();
            writeln!(
                stdout.lock(),
                "exported {files} files and ground-truth.json ({} systems) to {}",
                truth.systems.len(),
                out.display()
            )?;
        }
        Command::Postgres {
            world,
            system,
            url,
            table,
            print_sql,
        } => {
            let sim = world.simulator();
            let id = match system {
                Some(id) => id,
                None => sim
                    .systems()
                    .iter()
                    .find(|s| s.protocol == simulator::systems::Protocol::Postgres)
                    .map(|s| s.id.clone())
                    .context("no PostgreSQL-backed system")?,
            };
            let (sys, _) = sim
                .system(&id)
                .with_context(|| format!("unknown system {id}"))?;
            if print_sql {
                writeln!(
                    stdout.lock(),
                    "{}",
                    simulator::postgres::create_table_sql(&sim, sys, &table)
                )?;
            } else {
                let url = url.context("--url or HUITONG_PG_URL is required")?;
                let n = simulator::postgres::load(&sim, &id, &url, &table).await?;
                writeln!(stdout.lock(), "wrote {n} rows of {id} to {table}")?;
            }
        }
        Command::Systems { world } => {
            let sim = world.simulator();
            serde_json::to_writer_pretty(stdout.lock(), sim.systems())?;
            writeln!(stdout.lock())?;
        }
    }
    Ok(())
}
