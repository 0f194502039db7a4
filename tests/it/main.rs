//! The integration tests: one binary, all tests sharing one real broker.

mod admin;
mod feed_format;
mod registry;
mod transactions;
