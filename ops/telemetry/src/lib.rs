//! What every Huitong process offers operators: structured logs (`tracing`), a Prometheus
//! registry with `<prefix>_build_info` and process metrics, and the `/metrics`, `/healthz` and
//! `/readyz` endpoints. Shared by the hub and the connector.

pub mod http;
pub mod logging;
pub mod metrics;

pub use http::{OpsState, router};
pub use logging::{init_logging, registry};

/// Resolves on SIGINT or SIGTERM, so that Kubernetes and Ctrl-C both stop a process cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
