//! Task slots, as Kafka Connect runs tasks: a connector process runs its instances on a fixed
//! number of slots (`slots` in the file). A slot is one thread and one transactional producer
//! whose id is derived from the connector id (`huitong-connector-<connector id>-slot-<n>`); an
//! instance always runs on the same slot (by a hash of its id), so a second process with the
//! same file fences the first slot by slot, and no producer is ever created per poll.
//!
//! A slot polls its instances in turn when each is due. Their batches go into the slot's open
//! transaction ([`Stage`]), which commits records, quarantined records and the progress of
//! every instance in it at once — when it holds [`TRANSACTION_MESSAGES`] messages or
//! [`TRANSACTION_BYTES`], is [`TRANSACTION_AGE`] old, at the end of a round, or when a source
//! needs what it staged to be durable (a file moved to `done/`). Outcomes are counted only then.
//!
//! The progress of a slot's instances is read once, after its producer is initialised (which
//! fences earlier producers and ends their open transactions, so what is read is final), and
//! kept in memory ([`Ledger`]); it is read again only after a failed transaction, whose outcome
//! may be unknown.
//!
//! Changing `slots` moves instances between slots: stop every process of the connector first,
//! or an old process's slot is not fenced by the new one that took its instances.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{ConnectorConfig, InstanceConfig};
use crate::instance::{Instance, InstanceError, PollStats, SchemaIds};
use crate::outcomes::Counts;
use crate::runtime::{Command, Metrics, State, Status};
use crate::transactor::{Outgoing, ProgressRecord, Transactor};

/// An open transaction commits once it holds this many messages.
pub const TRANSACTION_MESSAGES: usize = 10_000;
/// … or this many payload bytes.
pub const TRANSACTION_BYTES: usize = 16 << 20;
/// … or once its first batch is this old (checked between polls).
pub const TRANSACTION_AGE: Duration = Duration::from_secs(1);

/// The slot an instance runs on: a stable hash of its id, whatever the order of the file.
pub fn slot_of(instance_id: &str, slots: usize) -> usize {
    use sha2::{Digest as _, Sha256};
    (crate::digest::short(&Sha256::digest(instance_id.as_bytes())) % slots.max(1) as u64) as usize
}

/// The transactional id of slot `index` of connector `connector_id`.
pub fn transactional_id(connector_id: &str, index: usize) -> String {
    format!("huitong-connector-{connector_id}-slot-{index}")
}

/// The progress of a slot's instances: what Kafka committed and what the open transaction
/// holds.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    /// The progress record committed last (`null` before the first).
    committed: Value,
    /// Every outcome committed, as the progress record carries them.
    totals: Counts,
    /// The progress and totals in the open transaction, if it holds a batch of the instance.
    staged: Option<(Value, Counts)>,
}

impl Ledger {
    /// The entries of `ids`, from the progress records read back (`stored`).
    fn new<'i>(
        ids: impl IntoIterator<Item = &'i str>,
        stored: &mut HashMap<String, Value>,
    ) -> Self {
        let entries = ids
            .into_iter()
            .map(|id| {
                let committed = stored.remove(id).unwrap_or(Value::Null);
                let totals =
                    serde_json::from_value(committed["outcomes"].clone()).unwrap_or_default();
                (
                    id.to_owned(),
                    Entry {
                        committed,
                        totals,
                        staged: None,
                    },
                )
            })
            .collect();
        Ledger { entries }
    }

    fn entry(&mut self, id: &str) -> &mut Entry {
        self.entries.entry(id.to_owned()).or_default()
    }

    /// The committed progress of `id`.
    pub(crate) fn committed(&self, id: &str) -> Value {
        self.entries
            .get(id)
            .map_or(Value::Null, |e| e.committed.clone())
    }
}

/// Where staged batches go: a Kafka transaction, or (for `connector validate --sample`) a
/// sample that writes nothing.
pub(crate) enum Sink<'a> {
    /// The slot's producer.
    Kafka(&'a Transactor),
    /// Keeps the first `wanted` raw and quarantine messages, then ends the poll.
    Sample {
        /// How many messages to keep.
        wanted: usize,
        /// What was kept.
        kept: Vec<Outgoing>,
    },
}

/// The slot's open transaction, and what became of the ones before.
pub(crate) struct Stage<'a> {
    sink: Sink<'a>,
    ledger: &'a mut Ledger,
    metrics: Option<&'a Metrics>,
    /// The instance whose poll is running.
    instance: String,
    out: Vec<Outgoing>,
    bytes: usize,
    opened: Option<Instant>,
    /// Per instance in the open transaction, the outcomes of its batches.
    counts: BTreeMap<String, Counts>,
    /// Set when a transaction failed: the producer must be initialised again and the progress
    /// read back before the slot goes on.
    pub(crate) broken: bool,
}

impl<'a> Stage<'a> {
    pub(crate) fn new(
        sink: Sink<'a>,
        ledger: &'a mut Ledger,
        metrics: Option<&'a Metrics>,
    ) -> Self {
        Stage {
            sink,
            ledger,
            metrics,
            instance: String::new(),
            out: Vec::new(),
            bytes: 0,
            opened: None,
            counts: BTreeMap::new(),
            broken: false,
        }
    }

    /// Makes `id` the instance whose batches are staged next.
    pub(crate) fn select(&mut self, id: &str) {
        id.clone_into(&mut self.instance);
    }

    /// The selected instance's progress: staged if the open transaction has some, else
    /// committed.
    pub(crate) fn progress(&self) -> &Value {
        static NONE: Value = Value::Null;
        self.ledger
            .entries
            .get(&self.instance)
            .map_or(&NONE, |entry| {
                entry
                    .staged
                    .as_ref()
                    .map_or(&entry.committed, |(progress, _)| progress)
            })
    }

    /// Adds a batch of the selected instance and its new progress to the open transaction;
    /// commits it when it is full.
    pub(crate) fn stage(
        &mut self,
        out: Vec<Outgoing>,
        mut progress: Value,
        counts: Counts,
    ) -> Result<(), InstanceError> {
        let id = self.instance.clone();
        let entry = self.ledger.entry(&id);
        let mut totals = entry.staged.as_ref().map_or(entry.totals, |(_, t)| *t);
        totals.add(&counts);
        if let Value::Object(fields) = &mut progress {
            fields.insert(
                "outcomes".to_owned(),
                serde_json::to_value(totals).map_err(InstanceError::Progress)?,
            );
        }
        entry.staged = Some((progress, totals));
        self.counts.entry(id).or_default().add(&counts);
        self.bytes += out
            .iter()
            .map(|m| m.payload.len() + m.key.len())
            .sum::<usize>();
        self.out.extend(out);
        self.opened.get_or_insert_with(Instant::now);
        if let Sink::Sample { wanted, kept } = &mut self.sink {
            kept.append(&mut self.out);
            if kept.len() >= *wanted {
                kept.truncate(*wanted);
                return Err(InstanceError::Sampled);
            }
            return Ok(());
        }
        if self.out.len() >= TRANSACTION_MESSAGES || self.bytes >= TRANSACTION_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether the open transaction is old enough to commit.
    pub(crate) fn due(&self) -> bool {
        self.opened.is_some_and(|t| t.elapsed() >= TRANSACTION_AGE)
    }

    /// Commits the open transaction: every staged batch and each instance's latest progress.
    /// On failure nothing of it is kept in memory, and the slot must start over ([`Stage::broken`]).
    pub(crate) fn flush(&mut self) -> Result<(), InstanceError> {
        let Sink::Kafka(transactor) = self.sink else {
            // A sample makes nothing durable: the poll ends before anything outside Kafka.
            return Err(InstanceError::Sampled);
        };
        if self.counts.is_empty() {
            return Ok(());
        }
        let mut progress: Vec<ProgressRecord> = Vec::with_capacity(self.counts.len());
        for id in self.counts.keys() {
            if let Some((value, _)) = &self.ledger.entry(id).staged {
                progress.push((
                    id.clone(),
                    Some(serde_json::to_vec(value).map_err(InstanceError::Progress)?),
                ));
            }
        }
        let progress_bytes: usize = progress
            .iter()
            .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        let result = transactor.commit(&self.out, &progress);
        self.out.clear();
        self.bytes = 0;
        self.opened = None;
        let counts = std::mem::take(&mut self.counts);
        for id in counts.keys() {
            let entry = self.ledger.entry(id);
            if let (Ok(()), Some((value, totals))) = (&result, entry.staged.take()) {
                entry.committed = value;
                entry.totals = totals;
            }
        }
        match result {
            Ok(()) => {
                if let Some(metrics) = self.metrics {
                    metrics.transaction(progress_bytes);
                    for (id, counts) in &counts {
                        metrics.outcomes().committed(id, counts);
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e.into())
            }
        }
    }

    /// The messages a sample kept.
    pub(crate) fn into_sample(self) -> Vec<Outgoing> {
        match self.sink {
            Sink::Sample { kept, .. } => kept,
            Sink::Kafka(_) => Vec::new(),
        }
    }
}

/// One instance on a slot, with what the slot knows about it.
struct Member {
    instance: Instance,
    status: Arc<Mutex<Status>>,
    paused: bool,
    due: Instant,
    backoff: Duration,
    /// A poll that ended well whose batches wait for their transaction: stats and duration.
    pending: Option<(PollStats, Duration)>,
}

impl Member {
    fn set(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn id(&self) -> &str {
        &self.instance.config().id
    }
}

/// A slot: its instances, its producer (once initialised) and their progress.
pub struct Slot {
    index: usize,
    connector: ConnectorConfig,
    members: Vec<Member>,
    transactor: Option<Transactor>,
    ledger: Ledger,
    metrics: Option<Metrics>,
    inbox: mpsc::Receiver<(usize, Command)>,
    stop: Arc<AtomicBool>,
}

impl Slot {
    /// Slot `index` for `instances` (each with its schema ids and status). Starts nothing.
    pub(crate) fn new(
        index: usize,
        connector: &ConnectorConfig,
        instances: Vec<(InstanceConfig, SchemaIds, Arc<Mutex<Status>>)>,
        metrics: Option<Metrics>,
        inbox: mpsc::Receiver<(usize, Command)>,
        stop: Arc<AtomicBool>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, InstanceError> {
        let mut members = Vec::with_capacity(instances.len());
        for (config, ids, status) in instances {
            members.push(Member {
                instance: Instance::new(connector, config, ids, runtime.clone(), stop.clone())?,
                status,
                paused: false,
                due: Instant::now(),
                backoff: Duration::from_millis(500),
                pending: None,
            });
        }
        Ok(Slot {
            index,
            connector: connector.clone(),
            members,
            transactor: None,
            ledger: Ledger::default(),
            metrics,
            inbox,
            stop,
        })
    }

    /// A slot of one instance, connected, for running it from a test or a benchmark
    /// ([`Slot::poll_once`]). Blocks.
    pub fn single(
        connector: &ConnectorConfig,
        instance: InstanceConfig,
        ids: SchemaIds,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, InstanceError> {
        let status = Arc::new(Mutex::new(Status::starting()));
        let (_commands, inbox) = mpsc::channel();
        let index = slot_of(&instance.id, connector.slots);
        let mut slot = Slot::new(
            index,
            connector,
            vec![(instance, ids, status)],
            None,
            inbox,
            Arc::new(AtomicBool::new(false)),
            &runtime,
        )?;
        slot.connect()?;
        Ok(slot)
    }

    /// Polls every instance of the slot once, until its source has nothing new, and commits:
    /// what the polls did. Blocks.
    pub fn poll_once(&mut self) -> Result<PollStats, InstanceError> {
        let transactor = self.transactor.as_ref().ok_or(InstanceError::SourceSystem(
            "the slot is not connected".to_owned(),
        ))?;
        let mut stage = Stage::new(Sink::Kafka(transactor), &mut self.ledger, None);
        let mut total = PollStats::default();
        for member in &mut self.members {
            stage.select(&member.instance.config().id.clone());
            let stats = member.instance.poll(&mut stage)?;
            total.read += stats.read;
            total.written += stats.written;
            total.quarantined += stats.quarantined;
            total.skipped += stats.skipped;
            total.lag = total.lag.max(stats.lag);
        }
        stage.flush()?;
        Ok(total)
    }

    /// The first `wanted` messages `instance` writes when it starts from nothing, each as JSON
    /// (`{"topic", "key", "record"}`, the record decoded from its Avro), writing nothing:
    /// `connector validate --sample`. Blocks; the error of a system that cannot be read.
    pub fn sample(
        connector: &ConnectorConfig,
        instance: InstanceConfig,
        wanted: usize,
        runtime: tokio::runtime::Handle,
    ) -> Result<Vec<Value>, InstanceError> {
        use schemas::contract::{SchemaName, schema};
        let (domain, raw_topic) = (instance.domain, instance.topic());
        let ids = SchemaIds {
            raw: 0,
            quarantine: 0,
        };
        let mut instance = Instance::new(connector, instance, ids, runtime, Arc::default())?;
        let mut ledger = Ledger::default();
        let mut stage = Stage::new(
            Sink::Sample {
                wanted,
                kept: Vec::new(),
            },
            &mut ledger,
            None,
        );
        stage.select(&instance.config().id.clone());
        match instance.poll(&mut stage) {
            Ok(_) | Err(InstanceError::Sampled) => {}
            Err(e) => return Err(e),
        }
        stage
            .into_sample()
            .into_iter()
            .map(|message| {
                let name = if message.topic == raw_topic {
                    SchemaName::Raw(domain)
                } else {
                    SchemaName::Quarantine
                };
                // Past the Confluent framing: magic byte and schema id.
                let mut datum = message.payload.get(5..).unwrap_or_default();
                let record = apache_avro::reader::datum::GenericDatumReader::builder(schema(name))
                    .build()
                    .and_then(|reader| reader.read_value(&mut datum))
                    .ok()
                    .and_then(|value| Value::try_from(value).ok())
                    .unwrap_or(Value::Null);
                Ok(serde_json::json!({
                    "topic": message.topic,
                    "key": message.key,
                    "record": record,
                }))
            })
            .collect()
    }

    /// Initialises the slot's producer (fencing any earlier one) and reads its instances'
    /// progress back. Blocks.
    fn connect(&mut self) -> Result<(), InstanceError> {
        self.transactor = None;
        let settings = &self.connector.kafka;
        let transactor = Transactor::start(
            settings,
            &transactional_id(&self.connector.connector_id, self.index),
            &self.connector.progress_topic,
        )?;
        if let Some(metrics) = &self.metrics {
            metrics.producer_created();
        }
        let mut stored = crate::progress::load_all(
            settings,
            &self.connector.progress_topic,
            Duration::from_secs(60),
        )?;
        self.ledger = Ledger::new(self.members.iter().map(Member::id), &mut stored);
        for member in &self.members {
            let id = member.id();
            if let Some(metrics) = &self.metrics {
                metrics
                    .outcomes()
                    .restore(id, &self.ledger.entries[id].totals);
            }
            let progress = self.ledger.committed(id);
            member.set(|s| s.progress = Some(progress));
        }
        self.transactor = Some(transactor);
        Ok(())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Runs the slot until the process stops: connects (again after a failed transaction, with
    /// backoff), answers operators' commands, and polls each instance when it is due.
    pub(crate) fn run(mut self) {
        let mut backoff = Duration::from_millis(500);
        let mut reconnect_at = Instant::now();
        while !self.stopped() {
            if self.transactor.is_none() {
                if Instant::now() < reconnect_at {
                    self.wait(reconnect_at);
                    continue;
                }
                if let Err(e) = self.connect() {
                    tracing::error!(slot = self.index, code = e.code(), error = %e, "slot cannot connect; retrying");
                    for member in &self.members {
                        member.set(|s| {
                            s.state = State::Failed;
                            s.error = Some((e.code().to_owned(), e.to_string()));
                        });
                    }
                    reconnect_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
                backoff = Duration::from_millis(500);
                tracing::info!(
                    slot = self.index,
                    instances = self.members.len(),
                    "slot connected"
                );
            }
            self.answer_commands();
            let now = Instant::now();
            let mut due: Vec<usize> = (0..self.members.len())
                .filter(|&i| !self.members[i].paused && self.members[i].due <= now)
                .collect();
            if due.is_empty() {
                let next = self
                    .members
                    .iter()
                    .filter(|m| !m.paused)
                    .map(|m| m.due)
                    .min()
                    .unwrap_or(now + Duration::from_secs(3600));
                self.wait(next);
                continue;
            }
            due.sort_by_key(|&i| self.members[i].due);
            if self.round(&due) {
                // The outcome of a failed commit may be unknown: start over from what Kafka has.
                self.transactor = None;
            }
        }
        for member in &self.members {
            member.set(|s| s.state = State::Stopped);
        }
        tracing::info!(slot = self.index, "slot stopped");
    }

    /// Polls the members `due` in turn, commits what they staged, and reports each one's
    /// outcome. True if a transaction failed (the slot must connect again).
    fn round(&mut self, due: &[usize]) -> bool {
        let transactor = self.transactor.as_ref().expect("connected");
        let mut stage = Stage::new(
            Sink::Kafka(transactor),
            &mut self.ledger,
            self.metrics.as_ref(),
        );
        for &i in due {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let member = &mut self.members[i];
            stage.select(&member.instance.config().id.clone());
            let started = Instant::now();
            // A bug tripped by some input must not end the slot while its status says RUNNING:
            // the poll fails, is reported, and is retried with backoff.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                member.instance.poll(&mut stage)
            }))
            .unwrap_or_else(|panic| Err(InstanceError::Panicked(panic_text(&panic))));
            match result {
                Ok(stats) => member.pending = Some((stats, started.elapsed())),
                Err(e) => fail(member, self.metrics.as_ref(), &e),
            }
            if stage.due() {
                let _ = stage.flush();
            }
            if stage.broken {
                break;
            }
        }
        if !stage.broken {
            let _ = stage.flush();
        }
        let broken = stage.broken;
        drop(stage);
        for &i in due {
            let member = &mut self.members[i];
            let Some((stats, elapsed)) = member.pending.take() else {
                continue;
            };
            if broken {
                // Its batches may not have committed: it is polled again once connected.
                member.due = Instant::now();
                member.set(|s| {
                    s.state = State::Failed;
                    s.error = Some((
                        "kafka".to_owned(),
                        "the slot's transaction failed".to_owned(),
                    ));
                });
                continue;
            }
            succeed(member, &self.ledger, self.metrics.as_ref(), stats, elapsed);
        }
        broken
    }

    /// Waits until `until`, answering commands meanwhile and waking early to notice a stop.
    fn wait(&mut self, until: Instant) {
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self
                .inbox
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok((i, command)) => {
                    self.command(i, command);
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(left.min(Duration::from_millis(100)));
                }
            }
        }
    }

    fn answer_commands(&mut self) {
        while let Ok((i, command)) = self.inbox.try_recv() {
            self.command(i, command);
        }
    }

    fn command(&mut self, i: usize, command: Command) {
        let Some(member) = self.members.get_mut(i) else {
            return;
        };
        match command {
            Command::Pause => {
                member.paused = true;
                member.set(|s| s.state = State::Paused);
            }
            Command::Resume => {
                member.paused = false;
                member.due = Instant::now();
                member.set(|s| s.state = State::Running);
            }
            Command::Restart => {
                member.due = Instant::now();
                member.backoff = Duration::from_millis(500);
                // Read the progress back from Kafka, as after any failure.
                self.transactor = None;
            }
            Command::Reset(reply) => {
                let _ = reply.send(self.reset(i));
            }
        }
    }

    /// Forgets member `i`'s progress (a tombstone); only while it is paused, so none of its
    /// batches is in flight.
    fn reset(&mut self, i: usize) -> Result<(), String> {
        if !self.members[i].paused {
            return Err(
                "请先暂停该实例 (pause the instance before resetting its progress)".to_owned(),
            );
        }
        let Some(transactor) = &self.transactor else {
            return Err("连接器暂时无法写入 Kafka (the slot is not connected to Kafka)".to_owned());
        };
        let id = self.members[i].id().to_owned();
        if let Err(e) = transactor.commit(&[], &[(id.clone(), None)]) {
            self.transactor = None;
            return Err(e.to_string());
        }
        let entry = self.ledger.entry(&id);
        entry.committed = Value::Null;
        self.members[i].set(|s| s.progress = Some(Value::Null));
        Ok(())
    }
}

/// A member's poll and its batches committed.
fn succeed(
    member: &mut Member,
    ledger: &Ledger,
    metrics: Option<&Metrics>,
    stats: PollStats,
    elapsed: Duration,
) {
    let id = member.id().to_owned();
    member.backoff = Duration::from_millis(500);
    member.due = Instant::now() + member.instance.config().poll_interval;
    if let Some(metrics) = metrics {
        metrics.polled(&id, elapsed, stats.lag);
    }
    let progress = ledger.committed(&id);
    member.set(|s| {
        s.state = State::Running;
        s.error = None;
        s.progress = Some(progress);
    });
}

/// A member's poll failed: retried with backoff.
fn fail(member: &mut Member, metrics: Option<&Metrics>, e: &InstanceError) {
    let id = member.id().to_owned();
    if let Some(metrics) = metrics {
        metrics.failed(&id, e.code());
    }
    tracing::error!(instance = %id, code = e.code(), error = %e, "poll failed; retrying");
    member.set(|s| {
        s.state = State::Failed;
        s.error = Some((e.code().to_owned(), e.to_string()));
    });
    member.due = Instant::now() + member.backoff;
    member.backoff = (member.backoff * 2).min(Duration::from_secs(60));
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
