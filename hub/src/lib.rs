//! The hub (枢纽): consumes what regions reported from the raw topics and publishes one clean
//! national record per entity. See ARCHITECTURE.md for the stages and their invariants.

pub mod pipeline;
pub mod registry;
pub mod stages;
