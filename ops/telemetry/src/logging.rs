//! Structured logging and the metrics registry.

use prometheus::{IntGaugeVec, Opts, Registry};

/// Starts structured logging: JSON lines when `json` is set (for log shippers), human-readable
/// otherwise. The level filter comes from `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A metrics registry holding the process collector and a `<prefix>_build_info` gauge.
pub fn registry(prefix: &str) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    let build_info = IntGaugeVec::new(
        Opts::new(
            format!("{prefix}_build_info"),
            "Build information; the value is always 1.",
        ),
        &["version"],
    )?;
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    registry.register(Box::new(build_info))?;
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    Ok(registry)
}
