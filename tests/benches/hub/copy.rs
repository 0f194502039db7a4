//! The no-op exactly-once copies, each run as a child process of the bench (the bench binary
//! again, `BENCH_CHILD` set), so that its CPU and memory are its own:
//!
//! - `copy`: one hop, raw → out;
//! - `topology`: the hub's shape with every stage a no-op — prepare (raw → repartition, keyed
//!   as read, one outcomes record per batch) and resolve (repartition → national plus a
//!   changelog record per record in the input's partition, one outcomes record per batch), a
//!   thread each.
//!
//! Every stage is the hub's loop without the work: a `read_committed` consumer in a group, a
//! batch of at most `BENCH_BATCH_RECORDS` records or `BENCH_BATCH_INTERVAL_MS` from its first
//! record, and one transaction per batch carrying its outputs and the consumer's offsets
//! (`send_offsets_to_transaction`); the same client settings as the hub's stages. Records are
//! not copied out of the consumer's buffers: this is the ceiling.
//!
//! The child prints `ready` once its clients are up, `done` once its last stage committed
//! `BENCH_EXPECTED` records (never when 0), and stops when its standard input closes.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Where a stage writes what it reads.
#[derive(Clone)]
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

/// One stage: its input, group, transactional id and outputs.
#[derive(Clone)]
pub struct StageSpec {
    /// Topic read.
    pub input: String,
    /// Consumer group.
    pub group: String,
    /// Producer's transactional id.
    pub transactional_id: String,
    /// What it writes.
    pub hop: Hop,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The child's entry point: `kind` is `copy` or `topology`.
pub fn child(kind: &str) {
    let prefix = env("BENCH_PREFIX");
    let input = env("BENCH_INPUT");
    let batch_records: usize = env("BENCH_BATCH_RECORDS").parse().expect("a count");
    let interval = Duration::from_millis(env("BENCH_BATCH_INTERVAL_MS").parse().expect("ms"));
    let expected: u64 = env("BENCH_EXPECTED").parse().expect("a count");
    let stages = match kind {
        "copy" => vec![StageSpec {
            input,
            group: format!("{prefix}copy"),
            transactional_id: format!("{prefix}copy-0"),
            hop: Hop::Copy {
                out: format!("{prefix}bench.copy.out"),
            },
        }],
        "topology" => vec![
            StageSpec {
                input,
                group: format!("{prefix}topology-prepare"),
                transactional_id: format!("{prefix}topology-prepare-0"),
                hop: Hop::Prepare {
                    repartition: format!("{prefix}bench.topology.repartition"),
                    outcomes: format!("{prefix}bench.topology.outcomes"),
                },
            },
            StageSpec {
                input: format!("{prefix}bench.topology.repartition"),
                group: format!("{prefix}topology-resolve"),
                transactional_id: format!("{prefix}topology-resolve-0"),
                hop: Hop::Resolve {
                    national: format!("{prefix}bench.topology.national"),
                    changelog: format!("{prefix}bench.topology.changelog"),
                    outcomes: format!("{prefix}bench.topology.outcomes"),
                },
            },
        ],
        other => panic!("unknown BENCH_CHILD {other}"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let last = stages.len() - 1;
    let committed = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let count = stages.len();
    let threads: Vec<_> = stages
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let (stop, ready) = (stop.clone(), ready_tx.clone());
            let counter = (i == last).then(|| committed.clone());
            std::thread::Builder::new()
                .name(format!("stage-{i}"))
                .spawn(move || {
                    run(
                        &spec,
                        batch_records,
                        interval,
                        &stop,
                        counter.as_deref(),
                        &ready,
                    )
                })
                .expect("stage thread")
        })
        .collect();
    drop(ready_tx);
    // Every stage's clients are up.
    for _ in 0..count {
        ready_rx.recv().expect("a stage started");
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

/// The outcomes record a batch writes: the shape of the hub's, one row.
fn outcomes_payload(count: usize) -> Vec<u8> {
    format!(r#"[{{"domain":"vehicle-position","region":"530114","counted":"in","count":{count}}}]"#)
        .into_bytes()
}

fn run(
    spec: &StageSpec,
    batch_records: usize,
    interval: Duration,
    stop: &AtomicBool,
    committed: Option<&AtomicU64>,
    ready: &std::sync::mpsc::Sender<()>,
) {
    let settings = tests::settings();
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", &spec.group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()
        .expect("consumer");
    let producer: ThreadedProducer<DefaultProducerContext> = settings
        .client_config()
        .set("transactional.id", &spec.transactional_id)
        .set("transaction.timeout.ms", "15000")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        // As the hub's stages compress (hub/src/pipeline/exactly_once.rs).
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    producer
        .init_transactions(TIMEOUT)
        .expect("init_transactions");
    consumer.subscribe(&[&spec.input]).expect("subscribe");
    ready.send(()).expect("ready");

    let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(batch_records);
    while !stop.load(Ordering::Acquire) {
        batch.clear();
        let mut deadline: Option<Instant> = None;
        while batch.len() < batch_records && !stop.load(Ordering::Acquire) {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_millis(200),
            };
            if wait.is_zero() {
                break;
            }
            match consumer.poll(wait.min(Duration::from_millis(100))) {
                Some(Ok(m)) => {
                    deadline.get_or_insert_with(|| Instant::now() + interval);
                    batch.push(m);
                }
                Some(Err(e)) => eprintln!("consumer error: {e}"),
                None if batch.is_empty() => break,
                None => {}
            }
        }
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction().expect("begin");
        for m in &batch {
            let key = m.key().unwrap_or_default();
            let payload = m.payload().unwrap_or_default();
            match &spec.hop {
                Hop::Copy { out } => send(&producer, out, None, key, payload),
                Hop::Prepare { repartition, .. } => {
                    send(&producer, repartition, None, key, payload)
                }
                Hop::Resolve {
                    national,
                    changelog,
                    ..
                } => {
                    send(&producer, national, None, key, payload);
                    send(&producer, changelog, Some(m.partition()), key, payload);
                }
            }
        }
        if let Hop::Prepare { outcomes, .. } | Hop::Resolve { outcomes, .. } = &spec.hop {
            let key = uuid::Uuid::new_v4().to_string();
            send(
                &producer,
                outcomes,
                None,
                key.as_bytes(),
                &outcomes_payload(batch.len()),
            );
        }
        let group = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&next_offsets(&batch), &group, TIMEOUT)
            .expect("send_offsets_to_transaction");
        schemas::kafka::await_acknowledgements(&producer, TIMEOUT).expect("acknowledgements");
        producer.commit_transaction(TIMEOUT).expect("commit");
        if let Some(c) = committed {
            c.fetch_add(batch.len() as u64, Ordering::AcqRel);
        }
    }
}

fn next_offsets(batch: &[BorrowedMessage<'_>]) -> TopicPartitionList {
    let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for m in batch {
        let o = last.entry((m.topic(), m.partition())).or_insert(m.offset());
        *o = (*o).max(m.offset());
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in last {
        list.add_partition_offset(topic, partition, Offset::Offset(offset + 1))
            .expect("offset");
    }
    list
}

fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: Option<i32>,
    key: &[u8],
    payload: &[u8],
) {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic)
        .key(key)
        .payload(payload);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("producing to {topic}: {e}"),
        }
    }
}
