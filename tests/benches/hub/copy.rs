//! The no-op exactly-once copies, each run as a child process of the bench (the bench binary
//! again, `BENCH_CHILD` set), so that its CPU and memory are its own:
//!
//! - `copy`: one hop, raw → out;
//! - `topology`: the hub's shape with every stage a no-op. With co-partitioned input
//!   (`BENCH_COPARTITIONED=1`, the default) one stage, as the hub resolves reports already in
//!   their partition where it reads them: raw → national plus a changelog record per record in
//!   the input's partition, one outcomes record per batch. With `BENCH_COPARTITIONED=0` the
//!   two stages every report then goes through: prepare (raw → repartition, keyed as read, one
//!   outcomes record per batch) and resolve (repartition → national plus the changelog record,
//!   one outcomes record per batch).
//!
//! Every stage runs the hub's own consume–transform–produce loop,
//! [`hub::pipeline::exactly_once::run`], with a [`NoOp`] stage: the same consumer and
//! transactional producer settings, batches of at most `BENCH_BATCH_RECORDS` records or
//! `BENCH_BATCH_INTERVAL_MS` from their first, one transaction per batch carrying its outputs
//! and the consumer's offsets, `BENCH_TRANSACTION_TIMEOUT_MS`, and `BENCH_STAGE_THREADS`
//! threads per stage, as the hub runs them. So the ceilings cannot drift from the hub in batch,
//! client or compression settings; what they leave out is the stages' work.
//!
//! The child prints `ready` once its stage threads are started (their clients coming up, as
//! the hub's `/readyz` answers before its stages joined their groups), `done` once its last
//! stage committed `BENCH_EXPECTED` records (never when 0), and stops when its standard input
//! closes.

use std::collections::BTreeSet;
use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hub::pipeline::PipelineError;
use hub::pipeline::exactly_once::{self, Input, LoopConfig, Output, Stage, Written};
use hub::pipeline::metrics::Metrics;

/// Where a stage writes what it reads.
#[derive(Debug, Clone)]
pub enum Hop {
    /// Every record to `out`, keyed as read.
    Copy { out: String },
    /// Every record to `repartition` (partitioned by its key), an outcomes record per batch.
    Prepare {
        repartition: String,
        outcomes: String,
    },
    /// Every record to `national` and to `changelog` (the input's partition), an outcomes
    /// record per batch.
    Resolve {
        national: String,
        changelog: String,
        outcomes: String,
    },
}

/// One stage of a copy: its name, input, group and outputs.
#[derive(Debug, Clone)]
struct StageSpec {
    /// `prepare`, `resolve` or `copy`, as the hub names its stages.
    name: &'static str,
    input: String,
    group: String,
    hop: Hop,
}

/// A stage that does nothing but write each record where the hub's stage of its place would
/// write its result, and count what it committed.
struct NoOp {
    hop: Hop,
    /// The key of the batch's outcomes record: the stage's running total, as the hub keys it.
    outcomes_key: String,
    /// Records committed so far by this stage thread.
    total: u64,
    /// Records committed by the last stage, all threads: what `done` waits for.
    committed: Option<Arc<AtomicU64>>,
}

impl NoOp {
    fn new(stage: &'static str, writer: &str, hop: Hop, committed: Option<Arc<AtomicU64>>) -> Self {
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
    /// Records in the batch.
    type Pending = u64;

    fn process(&mut self, batch: &[Input], out: &mut Vec<Output>) -> Result<u64, PipelineError> {
        for input in batch {
            match &self.hop {
                Hop::Copy { out: topic } => out.push(output(topic, None, input)),
                Hop::Prepare { repartition, .. } => out.push(output(repartition, None, input)),
                Hop::Resolve {
                    national,
                    changelog,
                    ..
                } => {
                    out.push(output(national, None, input));
                    out.push(output(changelog, Some(input.partition), input));
                }
            }
        }
        if let Hop::Prepare { outcomes, .. } | Hop::Resolve { outcomes, .. } = &self.hop
            && !batch.is_empty()
        {
            out.push(self.outcomes(outcomes, batch.len()));
        }
        Ok(batch.len() as u64)
    }

    fn committed(&mut self, records: u64, _: &Written) -> Result<(), PipelineError> {
        self.total += records;
        if let Some(c) = &self.committed {
            c.fetch_add(records, Ordering::AcqRel);
        }
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

/// The stages of copy `kind` (`copy` or `topology`) on `input`, with names under `prefix`.
fn stages(kind: &str, prefix: &str, input: String, copartitioned: bool) -> Vec<StageSpec> {
    let national = format!("{prefix}bench.topology.national");
    let changelog = format!("{prefix}bench.topology.changelog");
    let outcomes = format!("{prefix}bench.topology.outcomes");
    let repartition = format!("{prefix}bench.topology.repartition");
    match (kind, copartitioned) {
        ("copy", _) => vec![StageSpec {
            name: "copy",
            input,
            group: format!("{prefix}copy"),
            hop: Hop::Copy {
                out: format!("{prefix}bench.copy.out"),
            },
        }],
        // The hub resolves co-partitioned reports in the stage that reads them.
        ("topology", true) => vec![StageSpec {
            name: "prepare",
            input,
            group: format!("{prefix}topology-prepare"),
            hop: Hop::Resolve {
                national,
                changelog,
                outcomes,
            },
        }],
        ("topology", false) => vec![
            StageSpec {
                name: "prepare",
                input,
                group: format!("{prefix}topology-prepare"),
                hop: Hop::Prepare {
                    repartition: repartition.clone(),
                    outcomes: outcomes.clone(),
                },
            },
            StageSpec {
                name: "resolve",
                input: repartition,
                group: format!("{prefix}topology-resolve"),
                hop: Hop::Resolve {
                    national,
                    changelog,
                    outcomes,
                },
            },
        ],
        (other, _) => panic!("unknown BENCH_CHILD {other}"),
    }
}

/// The child's entry point: `kind` is `copy` or `topology`.
pub fn child(kind: &str) {
    let prefix = env("BENCH_PREFIX");
    let batch_records: usize = env_parse("BENCH_BATCH_RECORDS");
    let batch_interval = Duration::from_millis(env_parse("BENCH_BATCH_INTERVAL_MS"));
    let transaction_timeout = Duration::from_millis(env_parse("BENCH_TRANSACTION_TIMEOUT_MS"));
    let threads_per_stage: usize = env_parse("BENCH_STAGE_THREADS");
    let copartitioned = env("BENCH_COPARTITIONED") == "1";
    let expected: u64 = env_parse("BENCH_EXPECTED");
    let stages = stages(kind, &prefix, env("BENCH_INPUT"), copartitioned);
    let settings = tests::settings();
    let metrics = Metrics::new(&prometheus::Registry::new()).expect("stage metrics");
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let last = stages.len() - 1;
    let mut threads = Vec::new();
    for (i, spec) in stages.into_iter().enumerate() {
        for thread in 0..threads_per_stage.max(1) {
            let transactional_id = format!("{}-{thread}", spec.group);
            let config = LoopConfig {
                stage: spec.name,
                group_id: spec.group.clone(),
                topics: vec![spec.input.clone()],
                transactional_id: transactional_id.clone(),
                batch_records,
                batch_interval,
                transaction_timeout,
            };
            let counter = (i == last).then(|| committed.clone());
            let mut stage = NoOp::new(spec.name, &transactional_id, spec.hop.clone(), counter);
            let (settings, metrics, stop) = (settings.clone(), metrics.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("stage-{}-{thread}", spec.name))
                    .spawn(move || {
                        if let Err(e) =
                            exactly_once::run(&settings, &config, &mut stage, &metrics, &stop)
                        {
                            eprintln!("stage {} failed: {e}", config.transactional_id);
                            std::process::exit(1);
                        }
                    })
                    .expect("stage thread"),
            );
        }
    }
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
