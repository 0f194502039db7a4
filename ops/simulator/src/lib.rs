//! Regional simulator (区域系统模拟器): fake provincial, city and county systems of Yunnan (53),
//! Chongqing (50) and Inner Mongolia (15) for the connectors' integration tests and the local
//! stack. Everything is a pure function of a seed and a [`Size`].
//!
//! - [`world`]: the entities (institutions, vehicles, buildings, energy reports, asset cards,
//!   quotas, operating costs, GPS tracks) per area, generated lazily.
//! - [`systems`]: which system reports what, in which field names, units and formatting
//!   ([`SystemProfile`]), the records in each system's form, and the [`GroundTruth`].
//! - [`server`]: the HTTP API with pagination styles, tokens and faults on demand.
//! - [`export`]: CSV (UTF-8/GBK/GB18030) and XLSX files plus `ground-truth.json`.
//! - [`codes`], [`geo`], [`divisions`]: check characters, plate formats, GCJ-02, GB/T 2260.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use std::sync::Arc;
//! let sim = Arc::new(simulator::Simulator::new(simulator::World::new(7, simulator::Size::Tiny)));
//! let (addr, _task) = simulator::server::spawn(sim.clone(), "127.0.0.1:0".parse().unwrap()).await?;
//! let truth = sim.ground_truth();
//! # Ok(()) }
//! ```

pub mod codes;
pub mod connector_config;
pub mod divisions;
pub mod export;
pub mod geo;
pub mod postgres;
pub mod push;
mod rng;
pub mod server;
pub mod systems;
pub mod world;

pub use systems::{Domain, GroundTruth, Simulator, SystemProfile};
pub use world::{Size, World};
