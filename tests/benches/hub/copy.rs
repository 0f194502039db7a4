//! The no-op exactly-once copies, each run as a child process of the bench (the bench binary
//! again, `BENCH_CHILD` set), so that its CPU and memory are its own:
//!
//! - `copy`: one hop, raw → out;
//! - `topology`: the hub's shape with its stage a no-op: one stage reading the raw and the
//!   repartition topic, as the hub's. With co-partitioned input (`BENCH_COPARTITIONED=1`, the
//!   default) every raw record goes to national plus a changelog record in the input's
//!   partition, as the hub resolves a report already in its entity's partition where it reads
//!   it. With `BENCH_COPARTITIONED=0` every raw record goes to the repartition topic (keyed as
//!   read) and, read from there, to national plus the changelog record: the hop the hub makes
//!   for a report whose entity's partition another of its threads holds (the no-op, not
//!   decoding, cannot tell which: it sends them all, the hub's shape with many threads). One
//!   outcomes record per batch.
//!
//! Every stage runs the hub's own consume–transform–produce loop,
//! [`hub::pipeline::exactly_once::run`], with a [`NoOp`] stage: the same consumer and
//! transactional producer settings (assignment strategy, compression, linger), batches of at
//! most `BENCH_BATCH_RECORDS` records or `BENCH_BATCH_INTERVAL_MS` from their first, one
//! transaction per batch carrying its outputs and the consumer's offsets,
//! `BENCH_TRANSACTION_TIMEOUT_MS`, and `BENCH_STAGE_THREADS` threads, as the hub runs them. So
//! the ceilings cannot drift from the hub in batch, client or compression settings; what they
//! leave out is the stage's work (they do copy each record out of the consumer's buffers and
//! into its outputs, as the loop hands them to any stage).
//!
//! The child prints `ready` once its stage threads are started (their clients coming up, as
//! the hub's `/readyz` answers before its stage joined its group), `done` once its stage
//! threads committed `BENCH_EXPECTED` records to their last output (never when 0), and stops
//! when its standard input closes.

use std::collections::BTreeSet;
use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hub::pipeline::PipelineError;
use hub::pipeline::exactly_once::{self, Input, LoopConfig, Output, Sink, Stage, Written};
use hub::pipeline::metrics::Metrics;

/// Where a stage writes what it reads.
#[derive(Debug, Clone)]
enum Hop {
    /// Every record to `out`, keyed as read.
    Copy { out: String },
    /// The hub's stage: records of `repartition`, and of `raw` when `copartitioned`, to
    /// `national` and `changelog` (the input's partition); other records of `raw` to
    /// `repartition` (partitioned by their key). An outcomes record per batch.
    Hub {
        raw: String,
        repartition: String,
        national: String,
        changelog: String,
        outcomes: String,
        copartitioned: bool,
    },
}

/// A stage that does nothing but write each record where the hub's stage would write its
/// result, and count what it committed to its last output.
struct NoOp {
    hop: Hop,
    /// The key of the batch's outcomes record: the stage's running total, as the hub keys it.
    outcomes_key: String,
    /// Records read by this stage thread so far.
    total: u64,
    /// Records committed to the last output (out, national), all threads: what `done` waits
    /// for.
    committed: Arc<AtomicU64>,
}

/// What a batch leaves to do once committed: records read, records written to the last
/// output.
type Counts = (u64, u64);

impl NoOp {
    fn new(stage: &str, writer: &str, hop: Hop, committed: Arc<AtomicU64>) -> Self {
        NoOp {
            hop,
            outcomes_key: format!(
                r#"{{"stage":"{stage}","writer":"{writer}","domain":"vehicle-position","province":"53"}}"#
            ),
            total: 0,
            committed,
        }
    }

    /// The outcomes record of a batch: the shape of the hub's running totals, one region.
    fn outcomes(&self, topic: &str, batch: usize) -> Output {
        let total = self.total + batch as u64;
        Output {
            topic: topic.to_owned(),
            partition: None,
            key: self.outcomes_key.clone(),
            payload: Some(format!(r#"{{"530114":{{"in":{total}}}}}"#).into_bytes()),
        }
    }
}

fn output(topic: &str, partition: Option<i32>, input: &Input) -> Output {
    Output {
        topic: topic.to_owned(),
        partition,
        key: String::from_utf8_lossy(input.key.as_deref().unwrap_or_default()).into_owned(),
        payload: input.payload.clone(),
    }
}

impl Stage for NoOp {
    type Pending = Counts;

    fn process(&mut self, batch: &[Input], out: &mut dyn Sink) -> Result<Counts, PipelineError> {
        let mut last = 0;
        match &self.hop {
            Hop::Copy { out: topic } => {
                for input in batch {
                    out.push(output(topic, None, input));
                }
                last = batch.len() as u64;
            }
            Hop::Hub {
                raw,
                repartition,
                national,
                changelog,
                outcomes,
                copartitioned,
            } => {
                for input in batch {
                    if input.topic == *raw && !copartitioned {
                        out.push(output(repartition, None, input));
                    } else {
                        out.push(output(national, None, input));
                        out.push(output(changelog, Some(input.partition), input));
                        last += 1;
                    }
                }
                if !batch.is_empty() {
                    out.push(self.outcomes(outcomes, batch.len()));
                }
            }
        }
        Ok((batch.len() as u64, last))
    }

    fn committed(&mut self, (read, last): Counts, _: &Written) -> Result<(), PipelineError> {
        self.total += read;
        self.committed.fetch_add(last, Ordering::AcqRel);
        Ok(())
    }

    fn revoked(&mut self, _: &BTreeSet<(String, i32)>) {}
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn env_parse<T: std::str::FromStr>(name: &str) -> T {
    let v = env(name);
    v.parse()
        .unwrap_or_else(|_| panic!("{name}={v} is not a valid value"))
}

/// The stage of copy `kind` (`copy` or `topology`) on `raw`, with names under `prefix`: its
/// name (as the hub names its stage), group, topics and hop.
fn stage(
    kind: &str,
    prefix: &str,
    raw: String,
    copartitioned: bool,
) -> (&'static str, String, Vec<String>, Hop) {
    match kind {
        "copy" => (
            "copy",
            format!("{prefix}copy"),
            vec![raw],
            Hop::Copy {
                out: format!("{prefix}bench.copy.out"),
            },
        ),
        "topology" => {
            let repartition = format!("{prefix}bench.topology.repartition");
            (
                "resolve",
                format!("{prefix}topology"),
                vec![raw.clone(), repartition.clone()],
                Hop::Hub {
                    raw,
                    repartition,
                    national: format!("{prefix}bench.topology.national"),
                    changelog: format!("{prefix}bench.topology.changelog"),
                    outcomes: format!("{prefix}bench.topology.outcomes"),
                    copartitioned,
                },
            )
        }
        other => panic!("unknown BENCH_CHILD {other}"),
    }
}

/// The child's entry point: `kind` is `copy` or `topology`.
pub fn child(kind: &str) {
    let prefix = env("BENCH_PREFIX");
    let batch_records: usize = env_parse("BENCH_BATCH_RECORDS");
    let batch_interval = Duration::from_millis(env_parse("BENCH_BATCH_INTERVAL_MS"));
    let transaction_timeout = Duration::from_millis(env_parse("BENCH_TRANSACTION_TIMEOUT_MS"));
    let threads_count: usize = env_parse("BENCH_STAGE_THREADS");
    let copartitioned = env("BENCH_COPARTITIONED") == "1";
    let expected: u64 = env_parse("BENCH_EXPECTED");
    let (name, group, topics, hop) = stage(kind, &prefix, env("BENCH_INPUT"), copartitioned);
    let settings = tests::settings();
    let metrics = Metrics::new(&prometheus::Registry::new()).expect("stage metrics");
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..threads_count.max(1))
        .map(|thread| {
            let config = LoopConfig {
                stage: name,
                group_id: group.clone(),
                topics: topics.clone(),
                transactional_id: format!("{group}-{thread}"),
                batch_records,
                batch_interval,
                transaction_timeout,
            };
            let mut stage = NoOp::new(
                name,
                &config.transactional_id,
                hop.clone(),
                committed.clone(),
            );
            let (settings, metrics, stop) = (settings.clone(), metrics.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("stage-{name}-{thread}"))
                .spawn(move || {
                    if let Err(e) =
                        exactly_once::run(&settings, &config, &mut stage, &metrics, &stop)
                    {
                        eprintln!("stage {} failed: {e}", config.transactional_id);
                        std::process::exit(1);
                    }
                })
                .expect("stage thread")
        })
        .collect();
    say!("ready");
    std::io::stdout().flush().expect("stdout");
    {
        let (stop, committed) = (stop.clone(), committed.clone());
        std::thread::spawn(move || {
            let mut said = false;
            while !stop.load(Ordering::Acquire) {
                if !said && expected > 0 && committed.load(Ordering::Acquire) >= expected {
                    say!("done");
                    std::io::stdout().flush().expect("stdout");
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
    // The bench closes standard input to stop the child.
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().expect("stage thread");
    }
}
