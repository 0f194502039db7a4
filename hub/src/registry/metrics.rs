//! The registry's metrics, registered in the process's Prometheus registry. Labels come from
//! closed sets: route templates, HTTP status codes, write outcomes and retry reasons.

use prometheus::{IntCounterVec, IntGauge, Registry};

/// The registry's metric handles (cheap to clone).
#[derive(Clone)]
pub(crate) struct Metrics {
    /// `hub_registry_requests_total{endpoint, code}`.
    pub requests: IntCounterVec,
    /// `hub_registry_writes_total{outcome}`: committed, unchanged, rejected, failed.
    pub writes: IntCounterVec,
    /// `hub_registry_write_retries_total{reason}`: fenced, kafka.
    pub write_retries: IntCounterVec,
    /// `hub_registry_records_total{outcome}`: applied, ignored, skipped.
    pub records: IntCounterVec,
    /// `hub_registry_schemas`: schema ids in use.
    pub schemas: IntGauge,
    /// `hub_registry_subjects`: subjects with a live version.
    pub subjects: IntGauge,
    /// `hub_registry_applied_offset`: next offset of the storage topic the reader will apply.
    pub applied_offset: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            telemetry::metrics::counter_vec(registry, name, help, labels)
        };
        let gauge = |name: &str, help: &str| telemetry::metrics::gauge(registry, name, help);
        Ok(Metrics {
            requests: counter(
                "hub_registry_requests_total",
                "Schema Registry API requests by route template and HTTP status.",
                &["endpoint", "code"],
            )?,
            writes: counter(
                "hub_registry_writes_total",
                "Schema Registry write operations by outcome (committed, unchanged, rejected, failed).",
                &["outcome"],
            )?,
            write_retries: counter(
                "hub_registry_write_retries_total",
                "Schema Registry write attempts retried, by reason (fenced, kafka).",
                &["reason"],
            )?,
            records: counter(
                "hub_registry_records_total",
                "Storage-topic records read by the Schema Registry, by outcome (applied, ignored, skipped).",
                &["outcome"],
            )?,
            schemas: gauge(
                "hub_registry_schemas",
                "Schema ids in use in the Schema Registry.",
            )?,
            subjects: gauge(
                "hub_registry_subjects",
                "Subjects with at least one live version in the Schema Registry.",
            )?,
            applied_offset: gauge(
                "hub_registry_applied_offset",
                "Next storage-topic offset the Schema Registry's reader will apply.",
            )?,
        })
    }
}
