//! The pipeline's Prometheus metrics (`hub_` prefix). Labels come from closed sets: stages,
//! domains, outcomes and error codes.

use std::time::Duration;

use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec, Registry, exponential_buckets};

/// The pipeline's metric handles (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    /// `hub_records_in_total{domain}`: raw records read.
    pub records_in: IntCounterVec,
    /// `hub_records_out_total{domain, outcome}`: what became of them.
    pub records_out: IntCounterVec,
    /// `hub_records_quarantined_total{domain, stage, code}`.
    pub quarantined: IntCounterVec,
    /// `hub_conflicts_total{domain}`: fields on which published reports disagree.
    pub conflicts: IntCounterVec,
    /// `hub_batch_duration_seconds{stage}`: processing and committing one batch.
    pub batch_duration: HistogramVec,
    /// `hub_transactions_total{stage, result}`: committed or aborted.
    pub transactions: IntCounterVec,
    /// `hub_consumer_lag_records{stage}`: records behind the partitions' ends.
    pub lag: IntGaugeVec,
    /// `hub_state_entities{domain}`: entities in the local stores.
    pub state_entities: IntGaugeVec,
    /// `hub_state_restore_duration_seconds{domain}`: rebuilding a store from its changelog.
    pub restore_duration: HistogramVec,
    /// `hub_state_restore_records_total{domain,from}`: changelog records read to restore
    /// stores, `from` = `checkpoint` (a cleanly closed store's tail) or `beginning`.
    pub restore_records: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        use telemetry::metrics::{counter_vec, gauge_vec, histogram_vec};
        let counter =
            |name: &str, help: &str, labels: &[&str]| counter_vec(registry, name, help, labels);
        let gauge =
            |name: &str, help: &str, labels: &[&str]| gauge_vec(registry, name, help, labels);
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            histogram_vec(
                registry,
                name,
                help,
                labels,
                exponential_buckets(0.001, 4.0, 10)?,
            )
        };
        Ok(Metrics {
            records_in: counter(
                "hub_records_in_total",
                "Raw records read by the hub.",
                &["domain"],
            )?,
            records_out: counter(
                "hub_records_out_total",
                "Input records by outcome: published, merged_duplicate, unchanged, quarantined.",
                &["domain", "outcome"],
            )?,
            quarantined: counter(
                "hub_records_quarantined_total",
                "Records quarantined, by stage and error code.",
                &["domain", "stage", "code"],
            )?,
            conflicts: counter(
                "hub_conflicts_total",
                "Fields of published national records on which reports disagree.",
                &["domain"],
            )?,
            batch_duration: histogram(
                "hub_batch_duration_seconds",
                "Time to process and commit one batch.",
                &["stage"],
            )?,
            transactions: counter(
                "hub_transactions_total",
                "Kafka transactions by result: commit or abort.",
                &["stage", "result"],
            )?,
            lag: gauge(
                "hub_consumer_lag_records",
                "Records between the stage's committed positions and the partitions' ends.",
                &["stage"],
            )?,
            state_entities: gauge(
                "hub_state_entities",
                "Entities held in the local state stores.",
                &["domain"],
            )?,
            restore_duration: histogram(
                "hub_state_restore_duration_seconds",
                "Time to rebuild a partition's state store from its changelog.",
                &["domain"],
            )?,
            restore_records: counter(
                "hub_state_restore_records_total",
                "Changelog records read to restore state stores, from a checkpoint or from the \
                 beginning.",
                &["domain", "from"],
            )?,
        })
    }

    /// Counts a committed batch.
    pub fn committed(&self, stage: &str, took: Duration) {
        self.transactions
            .with_label_values(&[stage, "commit"])
            .inc();
        self.batch_duration
            .with_label_values(&[stage])
            .observe(took.as_secs_f64());
    }

    /// Counts an aborted batch.
    pub fn aborted(&self, stage: &str) {
        self.transactions.with_label_values(&[stage, "abort"]).inc();
    }
}
