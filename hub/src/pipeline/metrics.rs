//! The pipeline's Prometheus metrics (`hub_` prefix) and its stages' [`Health`], which
//! `/readyz` reads. Labels come from closed sets: stages, domains, outcomes and error codes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec, Registry, exponential_buckets};

/// The pipeline's metric handles (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    /// `hub_records_in_total{domain}`: raw records read.
    pub records_in: IntCounterVec,
    /// `hub_records_out_total{domain, outcome}`: what became of them.
    pub records_out: IntCounterVec,
    /// `hub_records_repartitioned_total{domain}`: raw records whose entity's partition another
    /// thread or process holds, sent on through `hub.repartition.<domain>` (reports their
    /// producer did not co-partition, or a rebalance).
    pub repartitioned: IntCounterVec,
    /// `hub_records_quarantined_total{domain, stage, code}`.
    pub quarantined: IntCounterVec,
    /// `hub_conflicts_total{domain}`: fields on which published reports disagree.
    pub conflicts: IntCounterVec,
    /// `hub_batch_duration_seconds{stage}`: processing and committing one batch.
    pub batch_duration: HistogramVec,
    /// `hub_transactions_total{stage, result}`: committed or aborted.
    pub transactions: IntCounterVec,
    /// `hub_consumer_lag_records{stage}`: records behind the partitions' ends, from the
    /// consumer's statistics (set through [`Metrics::lag`]).
    pub lag: IntGaugeVec,
    /// `hub_state_entities{domain}`: entities in the local stores.
    pub state_entities: IntGaugeVec,
    /// `hub_state_restore_duration_seconds{domain}`: rebuilding a store from its changelog.
    pub restore_duration: HistogramVec,
    /// `hub_state_restore_records_total{domain,from}`: changelog records read to restore
    /// stores, `from` = `checkpoint` (a cleanly closed store's tail) or `beginning`.
    pub restore_records: IntCounterVec,
    /// Whether each stage makes progress, for `/readyz`.
    pub health: Health,
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
            repartitioned: counter(
                "hub_records_repartitioned_total",
                "Raw records sent on through the repartition topic, not resolved where read.",
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
                "Records between the stage's read positions and its partitions' last stable \
                 offsets, from the consumer's statistics.",
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
            health: Health::default(),
        })
    }

    /// Records a stage thread's lag, measured at `now`: its health, and the gauge of its
    /// stage (the sum over the stage's threads).
    pub fn lag(&self, thread: &StageThread, lag: i64, now: Instant) {
        thread.lag(lag, now);
        self.lag
            .with_label_values(&[thread.stage()])
            .set(self.health.stage_lag(thread.stage()));
    }

    /// Counts a committed batch, which is the stage thread's progress.
    pub fn committed(&self, thread: &StageThread, took: Duration, now: Instant) {
        thread.committed(now);
        let stage = thread.stage();
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

/// How long a stage may go without progress while input waits before it counts as stalled:
/// twice the transaction timeout (a dead process's open transaction holds up the partitions'
/// last stable offset for up to one timeout, and the partitions' next owner needs a batch more),
/// at least 10 s.
pub fn stall_after(transaction_timeout: Duration) -> Duration {
    (transaction_timeout * 2).max(Duration::from_secs(10))
}

/// Whether the pipeline's stage threads make progress: a thread is *stalled* when input waits
/// for it (its lag is above zero, or it holds records it read and has not committed) and it has
/// made no progress for longer than its [`stall_after`]. Progress is a committed batch, or a
/// moment with nothing waiting. `/readyz` answers 503 while a thread is stalled.
///
/// Each stage thread updates its own entry ([`StageThread`]: a lock per batch and per
/// statistics report); the HTTP server reads them all. Shared by clones.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<BTreeMap<String, StageThread>>>);

/// One stage thread's entry in [`Health`], held by the thread (cheap to clone).
#[derive(Debug, Clone)]
pub struct StageThread {
    stage: &'static str,
    id: Arc<str>,
    state: Arc<Mutex<Progress>>,
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    stall_after: Duration,
    /// Records not read yet, from the last statistics report (`None` before the first).
    lag: Option<i64>,
    /// Records read and not committed yet (a batch in its transaction, or one aborted and
    /// about to be read again).
    holding: bool,
    /// The last committed batch, or the last moment nothing waited.
    progress: Instant,
}

/// A stage thread that makes no progress, as [`Health::check`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// Stage name.
    pub stage: &'static str,
    /// The thread's id (its transactional id).
    pub thread: String,
    /// Time since its last progress.
    pub since: Duration,
    /// Its lag, when known.
    pub lag: Option<i64>,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self.since.as_secs();
        let lag = self.lag.map_or("?".to_owned(), |l| l.to_string());
        write!(
            f,
            "阶段 {stage}（{thread}）已 {since} 秒无进展，待处理 {lag} 条 \
             (stage {stage}, thread {thread}: no progress for {since} s with input waiting, \
             lag {lag})",
            stage = self.stage,
            thread = self.thread,
        )
    }
}

impl Health {
    /// The entry of stage thread `id` (its transactional id) starting at `now`, with
    /// `stall_after` for its first progress. A thread that starts over after a failure gets
    /// its entry back: the time since its last progress goes on.
    pub fn thread(
        &self,
        stage: &'static str,
        id: &str,
        stall_after: Duration,
        now: Instant,
    ) -> StageThread {
        let mut threads = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let thread = threads
            .entry(id.to_owned())
            .or_insert_with(|| StageThread {
                stage,
                id: id.into(),
                state: Arc::new(Mutex::new(Progress {
                    stall_after,
                    lag: None,
                    holding: false,
                    progress: now,
                })),
            })
            .clone();
        thread.with(|p| p.stall_after = stall_after);
        thread
    }

    /// The lag of `stage`: the sum over its threads.
    pub fn stage_lag(&self, stage: &str) -> i64 {
        let threads = self.0.lock().unwrap_or_else(|e| e.into_inner());
        threads
            .values()
            .filter(|t| t.stage == stage)
            .filter_map(|t| t.with(|p| p.lag))
            .sum()
    }

    /// The stage threads stalled at `now`, none when all make progress.
    pub fn check(&self, now: Instant) -> Vec<Stall> {
        let threads = self.0.lock().unwrap_or_else(|e| e.into_inner());
        threads
            .values()
            .filter_map(|t| {
                let p = t.with(|p| *p);
                let waiting = p.holding || p.lag.is_some_and(|l| l > 0);
                let since = now.saturating_duration_since(p.progress);
                (waiting && since > p.stall_after).then(|| Stall {
                    stage: t.stage,
                    thread: t.id.to_string(),
                    since,
                    lag: p.lag,
                })
            })
            .collect()
    }

    /// For `/readyz`: `Err` names the stalled stage threads, a line each.
    pub fn ready(&self, now: Instant) -> Result<(), String> {
        let stalls = self.check(now);
        if stalls.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = stalls.iter().map(Stall::to_string).collect();
        Err(lines.join("\n"))
    }
}

impl StageThread {
    /// Its stage's name.
    pub fn stage(&self) -> &'static str {
        self.stage
    }

    /// The thread's lag was measured at `now`.
    pub fn lag(&self, lag: i64, now: Instant) {
        self.with(|p| {
            p.lag = Some(lag);
            if lag <= 0 && !p.holding {
                p.progress = now;
            }
        });
    }

    /// The thread read records it has not committed yet.
    pub fn holding(&self) {
        self.with(|p| p.holding = true);
    }

    /// The thread committed a batch at `now`: what it held is done.
    pub fn committed(&self, now: Instant) {
        self.with(|p| {
            p.holding = false;
            p.progress = now;
        });
    }

    /// The thread gave up the records it held (its partitions were revoked, or it stopped).
    pub fn released(&self) {
        self.with(|p| p.holding = false);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Progress) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What happens to a stage thread, in order.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        Lag(i64),
        Holding,
        Committed,
        Released,
        Started,
    }

    #[test]
    fn a_stage_thread_is_stalled_while_input_waits_without_progress() {
        use Event::*;
        /// Name, events at seconds since the start, the check's time, stalled for how long
        /// (stall after 10 s).
        type Case = (&'static str, &'static [(u64, Event)], u64, Option<u64>);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("just started", &[], 5, None),
            ("started, nothing known", &[], 60, None),
            ("started with lag, no batch yet", &[(1, Lag(50))], 9, None),
            ("started with lag, no batch past the limit", &[(1, Lag(50))], 11, Some(11)),
            ("idle: nothing waits", &[(1, Lag(0))], 600, None),
            ("input arrives after a long idle time", &[(1, Lag(0)), (300, Lag(0)), (305, Lag(7))], 310, None),
            ("input waits after a long idle time", &[(1, Lag(0)), (295, Lag(0)), (300, Lag(7))], 306, Some(11)),
            ("batches commit under load", &[(1, Lag(900)), (8, Committed), (16, Committed)], 24, None),
            ("commits stop under load", &[(1, Lag(900)), (8, Committed)], 30, Some(22)),
            ("stuck in a transaction, lag read 0", &[(1, Holding), (2, Lag(0))], 20, Some(20)),
            ("an aborted batch is still held", &[(1, Holding), (5, Lag(0)), (9, Holding), (10, Lag(0))], 15, Some(15)),
            ("held, then committed", &[(1, Holding), (5, Committed), (6, Lag(0))], 40, None),
            ("held, then revoked", &[(1, Holding), (5, Released), (6, Lag(0))], 40, None),
            ("progress again after a stall", &[(1, Lag(5)), (40, Committed), (41, Lag(5))], 45, None),
            ("started over after a failure: the clock goes on", &[(1, Holding), (8, Started)], 12, Some(12)),
            ("started over, idle", &[(1, Lag(0)), (8, Started)], 60, None),
        ];
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let limit = Duration::from_secs(10);
        for (name, events, check, stalled) in cases {
            let health = Health::default();
            let thread = health.thread("resolve", "hub-resolve-0", limit, t0);
            for (s, event) in *events {
                match event {
                    Lag(l) => thread.lag(*l, at(*s)),
                    Holding => thread.holding(),
                    Committed => thread.committed(at(*s)),
                    Released => thread.released(),
                    Started => drop(health.thread("resolve", "hub-resolve-0", limit, at(*s))),
                }
            }
            let got: Vec<u64> = health
                .check(at(*check))
                .iter()
                .map(|s| s.since.as_secs())
                .collect();
            assert_eq!(got, stalled.iter().copied().collect::<Vec<_>>(), "{name}");
        }
    }

    #[test]
    fn threads_of_a_stage_are_checked_one_by_one_and_their_lags_summed() {
        let t0 = Instant::now();
        let limit = Duration::from_secs(10);
        let health = Health::default();
        let (a, b) = (
            health.thread("resolve", "hub-resolve-0", limit, t0),
            health.thread("resolve", "hub-resolve-1", limit, t0),
        );
        let prepare = health.thread("prepare", "hub-prepare-0", limit, t0);
        let at = |s| t0 + Duration::from_secs(s);
        // b is stuck with a batch; a and prepare commit.
        b.holding();
        b.lag(40, at(1));
        a.lag(2, at(1));
        prepare.lag(5, at(1));
        a.committed(at(15));
        prepare.committed(at(15));
        assert_eq!(health.stage_lag("resolve"), 42);
        assert_eq!(health.stage_lag("prepare"), 5);
        let stalls = health.check(at(20));
        assert_eq!(
            stalls,
            [Stall {
                stage: "resolve",
                thread: "hub-resolve-1".to_owned(),
                since: Duration::from_secs(20),
                lag: Some(40),
            }]
        );
        assert_eq!(
            health.ready(at(20)),
            Err(
                "阶段 resolve（hub-resolve-1）已 20 秒无进展，待处理 40 条 (stage resolve, \
                 thread hub-resolve-1: no progress for 20 s with input waiting, lag 40)"
                    .to_owned()
            )
        );
        assert_eq!(health.ready(at(5)), Ok(()));
    }

    #[test]
    fn the_stall_limit_is_twice_the_transaction_timeout_and_at_least_ten_seconds() {
        for (timeout, limit) in [(1, 10), (5, 10), (15, 30), (60, 120)] {
            assert_eq!(
                stall_after(Duration::from_secs(timeout)),
                Duration::from_secs(limit),
                "{timeout} s"
            );
        }
    }
}
