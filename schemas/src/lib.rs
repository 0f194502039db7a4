//! Huitong's data contract (数据契约): the domains the exchange carries, the Kafka topics that
//! carry them, and how a process reaches the cluster that holds those topics.
//!
//! Everything another team needs to read or write Huitong's topics is defined here, so that the
//! hub, the connectors and the tests agree on one source of truth.

pub mod codec;
pub mod contract;
pub mod divisions;
pub mod domain;
pub mod evolution;
pub mod ids;
pub mod kafka;
pub mod logical;
pub mod partition;
pub mod records;
pub mod registry;
pub mod topics;
pub mod wire;

pub use contract::{Record, SchemaName};
pub use domain::Domain;
pub use kafka::{ClientSettings, KafkaError};
pub use topics::{TopicKind, TopicSpec};
