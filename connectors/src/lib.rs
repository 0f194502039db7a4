//! Connectors (连接器): read regional systems (HTTP APIs, file drops, databases, pushes) and write
//! what they report, in raw form, to the `raw.<domain>` topics — exactly once, with each
//! instance's progress committed in the same Kafka transaction as its records.
//!
//! Data flows one way: source → [`mapping`] (pure, configured) → [`raw`] encoding →
//! [`transactor`] (records + quarantine + progress in one transaction). Raw records are keyed
//! by the partition key of the entity they report, so every level's reports of one entity land
//! in the partition of the raw topic where the hub resolves that entity ([`raw`] says why).

pub mod config;
mod digest;
pub mod instance;
pub mod limits;
pub mod management;
pub mod mapping;
pub mod outcomes;
pub mod preflight;
pub mod progress;
pub mod push;
pub mod raw;
pub mod runtime;
pub mod scope;
pub mod slot;
pub mod sources;
pub mod transactor;
pub mod validate;
