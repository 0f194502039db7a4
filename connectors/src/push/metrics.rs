//! The push endpoint's metrics (`connector_push_*`) and its log line per refused or partly
//! rejected batch. Records are counted once their batch's transaction committed; requests
//! when they are answered. Every label comes from a closed set: HTTP statuses the endpoint
//! answers with, outcomes, and stable error codes.

use std::time::{Duration, Instant};

use prometheus::{HistogramVec, IntCounterVec, Registry};
use telemetry::logging::Throttle;

/// Counters and the request-duration histogram of the push endpoint.
#[derive(Clone)]
pub struct PushMetrics {
    requests: IntCounterVec,
    records: IntCounterVec,
    duration: HistogramVec,
    throttle: std::sync::Arc<Throttle>,
}

impl PushMetrics {
    /// Creates the metrics in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        use telemetry::metrics::{counter_vec, histogram_vec};
        Ok(PushMetrics {
            requests: counter_vec(
                registry,
                "connector_push_requests_total",
                "Push requests answered, by HTTP status.",
                &["status"],
            )?,
            records: counter_vec(
                registry,
                "connector_push_records_total",
                "Pushed records whose batch committed, by outcome (accepted, rejected, \
                 duplicate) and error code (empty unless rejected).",
                &["outcome", "code"],
            )?,
            duration: histogram_vec(
                registry,
                "connector_push_request_duration_seconds",
                "Time from a push request's arrival to its answer.",
                &[],
                prometheus::exponential_buckets(0.005, 4.0, 9)?,
            )?,
            throttle: std::sync::Arc::new(Throttle::new(Duration::from_secs(60))),
        })
    }

    /// One answered request.
    pub(super) fn answered(&self, status: u16, started: Instant) {
        self.requests
            .with_label_values(&[&status.to_string()])
            .inc();
        self.duration
            .with_label_values::<&str>(&[])
            .observe(started.elapsed().as_secs_f64());
    }

    /// The records of a committed batch: accepted, duplicates, and rejections by code.
    pub(super) fn committed<'a>(
        &self,
        accepted: u64,
        duplicate: u64,
        rejected: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        self.records
            .with_label_values(&["accepted", ""])
            .inc_by(accepted);
        self.records
            .with_label_values(&["duplicate", ""])
            .inc_by(duplicate);
        for (code, n) in rejected {
            self.records
                .with_label_values(&["rejected", code])
                .inc_by(n);
        }
    }

    /// The log line of a batch refused whole or with rejected records: at most one a minute
    /// per system and code, saying how many were held back.
    pub(super) fn log_rejected(
        &self,
        system: &str,
        domain: &str,
        status: u16,
        code: &str,
        rejected: u64,
    ) {
        let Some(held_back) = self
            .throttle
            .allow(&format!("{system}\u{0}{code}"), Instant::now())
        else {
            return;
        };
        tracing::info!(
            system,
            domain,
            status,
            code,
            rejected,
            held_back,
            "push batch refused or records rejected"
        );
    }
}
