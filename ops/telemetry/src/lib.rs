//! What every Huitong process offers operators: structured logs (`tracing`), a Prometheus
//! registry with `<prefix>_build_info` and process metrics, and the `/metrics`, `/healthz` and
//! `/readyz` endpoints. Shared by the hub and the connector.

pub mod http;
pub mod logging;

pub use http::{OpsState, router};
pub use logging::{init_logging, registry};
