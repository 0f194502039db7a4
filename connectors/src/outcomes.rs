//! What became of every record the connector read (记录去向): each has exactly one outcome —
//! written to its raw topic, quarantined with a reason, skipped as an identical duplicate, or
//! (push only) rejected back to its sender — counted when the transaction that decided it
//! committed, never before. `GET /reconciliation` shows the counts per instance (a push client
//! is the instance `push:<system_id>`) and whether read = written + quarantined + skipped +
//! rejected; an operator joins `written` with the hub's `received`. The totals travel in each
//! instance's progress record (`outcomes`), committed in the same transaction as the records
//! they count, so the reconciliation survives restarts exactly as the data does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{IntCounterVec, Registry};
use serde::{Deserialize, Serialize};

/// The counts of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Source records read (rows, items, pushed records).
    pub read: u64,
    /// Raw records committed.
    pub written: u64,
    /// Records committed to quarantine.
    pub quarantined: u64,
    /// Records skipped as identical to one committed before (same record id and version).
    pub skipped: u64,
    /// Pushed records answered as rejected and never written.
    pub rejected: u64,
}

impl Counts {
    /// Whether every record read has its outcome.
    pub fn balanced(&self) -> bool {
        self.read == self.written + self.quarantined + self.skipped + self.rejected
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.written += other.written;
        self.quarantined += other.quarantined;
        self.skipped += other.skipped;
        self.rejected += other.rejected;
    }
}

/// The outcome counters of a connector process: `connector_records_{read,written,
/// quarantined,skipped,rejected}_total{instance}`, and the same counts for the reconciliation.
#[derive(Clone)]
pub struct Outcomes {
    counters: [IntCounterVec; 5],
    counts: Arc<Mutex<BTreeMap<String, Counts>>>,
}

impl Outcomes {
    /// Creates the counters in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| {
            telemetry::metrics::counter_vec(registry, name, help, &["instance"])
        };
        Ok(Outcomes {
            counters: [
                counter("connector_records_read_total", "Source records read.")?,
                counter(
                    "connector_records_written_total",
                    "Raw records committed to Kafka.",
                )?,
                counter(
                    "connector_records_quarantined_total",
                    "Source records committed to quarantine.",
                )?,
                counter(
                    "connector_records_skipped_total",
                    "Source records skipped as identical to one committed before.",
                )?,
                counter(
                    "connector_records_rejected_total",
                    "Pushed records answered as rejected and not written.",
                )?,
            ],
            counts: Arc::default(),
        })
    }

    /// Adds what a committed transaction of `instance` decided.
    pub fn committed(&self, instance: &str, counts: &Counts) {
        let mut all = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(instance.to_owned()).or_default().add(counts);
        let values = [
            counts.read,
            counts.written,
            counts.quarantined,
            counts.skipped,
            counts.rejected,
        ];
        for (counter, value) in self.counters.iter().zip(values) {
            counter.with_label_values(&[instance]).inc_by(value);
        }
    }

    /// Starts the reconciliation of `instance` from `committed`, the totals its progress
    /// record carries (the Prometheus counters start from zero with the process, as counters
    /// do).
    pub fn restore(&self, instance: &str, committed: &Counts) {
        let mut all = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(instance.to_owned(), *committed);
    }

    /// The counts of every instance that has committed something.
    pub fn snapshot(&self) -> BTreeMap<String, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `GET /reconciliation`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/reconciliation", get(reconciliation))
            .with_state(self.clone())
    }
}

/// One instance's line of the reconciliation.
#[derive(Serialize)]
struct Line {
    #[serde(flatten)]
    counts: Counts,
    balanced: bool,
}

/// The reconciliation: counts per instance, their totals, and whether all balance.
#[derive(Serialize)]
struct Reconciliation {
    instances: BTreeMap<String, Line>,
    total: Counts,
    balanced: bool,
}

async fn reconciliation(State(outcomes): State<Outcomes>) -> Json<Reconciliation> {
    let snapshot = outcomes.snapshot();
    let mut total = Counts::default();
    for counts in snapshot.values() {
        total.add(counts);
    }
    let instances: BTreeMap<String, Line> = snapshot
        .into_iter()
        .map(|(id, counts)| {
            let balanced = counts.balanced();
            (id, Line { counts, balanced })
        })
        .collect();
    let balanced = instances.values().all(|l| l.balanced);
    Json(Reconciliation {
        instances,
        total,
        balanced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_balance_when_every_record_has_an_outcome() {
        let registry = Registry::new();
        let outcomes = Outcomes::new(&registry).expect("counters");
        outcomes.committed(
            "i1",
            &Counts {
                read: 5,
                written: 3,
                quarantined: 1,
                skipped: 1,
                rejected: 0,
            },
        );
        outcomes.committed(
            "i1",
            &Counts {
                read: 2,
                rejected: 2,
                ..Counts::default()
            },
        );
        let i1 = outcomes.snapshot()["i1"];
        assert_eq!((i1.read, i1.rejected), (7, 2));
        assert!(i1.balanced());
        assert!(
            !Counts {
                read: 1,
                ..Counts::default()
            }
            .balanced()
        );
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("exposition");
        assert!(text.contains("connector_records_skipped_total{instance=\"i1\"} 1"));
    }
}
