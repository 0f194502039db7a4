//! The integration tests: one binary, all tests sharing one real broker.

mod admin;
mod connector_cli;
mod connector_file_drop;
mod connector_file_export;
mod connector_http_poll;
mod connector_process;
mod connector_push;
mod connector_sql_poll;
mod feed_format;
mod hostile_input;
mod hub_pipeline;
mod hub_process;
mod hub_recovery;
mod registry;
mod transactions;
