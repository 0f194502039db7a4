//! The hub's stage (Kafka Streams' one sub-topology per domain): reads `raw.<domain>` and
//! `hub.repartition.<domain>`, keeps each partition's entity states in a local [`Store`]
//! restored from `hub.changelog.<domain>`, and writes the national records, the state changes
//! and the outcome counts in the batch's transaction.
//!
//! A raw record is prepared first (decode → validate → normalise → key, [`RawCodecs`]). Its
//! entity belongs to partition [`partition_for`]`(`[`partition_key`]`)` of the repartition
//! topic: if this thread holds that partition — always so for a record its producer
//! co-partitioned (`schemas::partition`), since the range assignor gives a member the same
//! partitions of the raw and repartition topics — the report is resolved at once
//! ([`crate::stages::resolve`]); otherwise it goes to that partition of the repartition topic,
//! where the thread holding it resolves it. Either way a report is resolved by the only thread
//! holding its entity's partition and store.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use schemas::partition::{partition_for, partition_key};
use schemas::records::QuarantineStage;
use schemas::{ClientSettings, Domain};

use super::accounting::{Counted, Ledger, Tally};
use super::exactly_once::{Input, Output, Sink, Stage, Written};
use super::metrics::Metrics;
use super::national::{NationalCodecs, ReportParts};
use super::preparer::{PreparedReport, RawCodecs};
use super::quarantine::{Quarantiner, Reason};
use super::store::{self, Change, OpenFiles, Store};
use super::{PipelineError, TopicNames};
use crate::stages::Rules;
use crate::stages::resolve::{
    EntityState, Outcome, Republish, SourceReport, SurvivorshipPolicy, resolve,
};

/// A partition of a domain's repartition topic (and of its changelog).
type PartitionId = (Domain, i32);

/// The resolve stage of one hub process.
pub struct Resolver {
    /// The stage producer's running outcome totals.
    pub outcomes: Ledger,
    /// Topic names.
    pub topics: TopicNames,
    /// Kafka settings, for restoring stores.
    pub settings: ClientSettings,
    /// Survivorship rules.
    pub policy: SurvivorshipPolicy,
    /// National record codecs.
    pub codecs: NationalCodecs,
    /// Writes quarantine records.
    pub quarantine: Quarantiner,
    /// Where the stores live.
    pub state_dir: PathBuf,
    /// Memory cache per store, bytes.
    pub cache_bytes: usize,
    /// How long restoring a store may wait for the changelog.
    pub restore_timeout: Duration,
    /// Metrics.
    pub metrics: Metrics,
    /// For the registry, when a schema id is new.
    pub runtime: tokio::runtime::Handle,
    /// How long the state of a stream entity (a GPS fix) is kept after its first report.
    pub stream_retention: Duration,
    /// When expired stream states were last looked for.
    pub swept: Instant,
    /// The stores of the partitions this thread owns.
    pub stores: HashMap<PartitionId, Store>,
    /// The store files of every resolve thread of the process.
    pub open_files: OpenFiles,
    /// The domains' raw decoders and national encoders (the prepare step).
    pub raw: RawCodecs,
    /// Validation and normalisation rules.
    pub rules: Arc<Rules>,
    /// Partitions of each domain's repartition topic (and of its changelog): what
    /// [`partition_for`] divides by.
    pub partitions: HashMap<Domain, i32>,
    /// The repartition partitions this thread's consumer holds, as of the batch.
    pub held: HashSet<PartitionId>,
}

/// State changes of a batch, by partition.
pub type Changes = Vec<(PartitionId, Change)>;

/// How long a kept store of a partition this instance no longer owns stays on disk (Kafka
/// Streams' `state.cleanup.delay.ms`): long enough for a rolling restart or a rebalance to bring
/// the partition back.
const KEEP_UNOWNED: Duration = Duration::from_secs(600);

/// Stores restored at once when a batch needs several.
const PARALLEL_RESTORES: usize = 16;

/// How often expired stream states are looked for, and at most how many go per batch.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
const SWEEP_LIMIT: usize = 10_000;

impl Resolver {
    /// Opens the stores of `partitions` this thread does not hold yet, all at once: each
    /// restore mostly waits for its changelog, so a stage assigned many partitions starts in
    /// about the time of its largest one.
    fn open_stores(&mut self, partitions: BTreeSet<PartitionId>) -> Result<(), PipelineError> {
        let missing: Vec<PartitionId> = partitions
            .into_iter()
            .filter(|p| !self.stores.contains_key(p))
            .collect();
        let opened: Vec<Result<Store, PipelineError>> = match missing.as_slice() {
            [] => return Ok(()),
            [one] => vec![self.open_store(*one)],
            several => {
                let this = &*self;
                let mut opened = Vec::with_capacity(several.len());
                // A restore is a consumer of its own: at most this many at once.
                for chunk in several.chunks(PARALLEL_RESTORES) {
                    std::thread::scope(|scope| {
                        let running: Vec<_> = chunk
                            .iter()
                            .map(|&p| scope.spawn(move || this.open_store(p)))
                            .collect();
                        opened.extend(running.into_iter().map(|t| {
                            t.join().unwrap_or_else(|_| {
                                Err(PipelineError::State("a store restore panicked".to_owned()))
                            })
                        }));
                    });
                }
                opened
            }
        };
        for (partition, store) in missing.into_iter().zip(opened) {
            self.stores.insert(partition, store?);
        }
        Ok(())
    }

    /// The store of `partition`: the one this instance closed cleanly, brought up to date
    /// from its checkpoint, or else rebuilt from the whole changelog.
    fn open_store(&self, partition: PartitionId) -> Result<Store, PipelineError> {
        let (domain, p) = partition;
        let started = Instant::now();
        let path = self.store_path(partition);
        // A thread that just lost the partition closes its store within a poll.
        let held = self.open_files.hold(&path, Duration::from_secs(30))?;
        let (mut store, checkpoint) = Store::open(&path, self.cache_bytes)?;
        let (from, (next, records)) = match self.replay(&mut store, partition, checkpoint)? {
            Some(done) if checkpoint.is_some() => ("checkpoint", done),
            Some(done) => ("beginning", done),
            None => {
                // The changelog no longer holds the checkpoint (recreated or truncated).
                drop(store);
                store = Store::create(&path, self.cache_bytes)?;
                let done = self.replay(&mut store, partition, None)?;
                (
                    "beginning",
                    done.expect("a replay from the beginning always fits"),
                )
            }
        };
        store.advance(next);
        store.hold(held);
        let took = started.elapsed();
        let entities = store.len()?;
        self.metrics
            .restore_duration
            .with_label_values(&[domain.as_str()])
            .observe(took.as_secs_f64());
        self.metrics
            .restore_records
            .with_label_values(&[domain.as_str(), from])
            .inc_by(records);
        self.metrics
            .state_entities
            .with_label_values(&[domain.as_str()])
            .add(i64::try_from(entities).unwrap_or(i64::MAX));
        tracing::info!(%domain, partition = p, entities, records, from, ?took, "state store restored");
        Ok(store)
    }

    /// Applies `partition`'s changelog to `store` from `checkpoint` (from the beginning when
    /// `None`). Returns the offset below which the store now holds every record and the number
    /// of records read — or `None`, having read nothing, when the changelog no longer spans the
    /// checkpoint.
    fn replay(
        &self,
        store: &mut Store,
        (domain, p): PartitionId,
        checkpoint: Option<i64>,
    ) -> Result<Option<(i64, u64)>, PipelineError> {
        let mut pending: Vec<Change> = Vec::new();
        let mut failed = None;
        let (mut read, mut stale) = (0u64, false);
        let spans = schemas::kafka::read_from(
            &self.settings,
            &self.topics.changelog(domain),
            Some(&[p]),
            |_, span| match checkpoint {
                Some(at) if (span.low..=span.high).contains(&at) => Some(at),
                Some(_) => {
                    stale = true;
                    Some(span.high)
                }
                None => None,
            },
            self.restore_timeout,
            |_, key, value| {
                if failed.is_some() {
                    return;
                }
                read += 1;
                let expires_at = value.and_then(|v| EntityState::expiry(v).ok()).flatten();
                pending.push(Change {
                    key: String::from_utf8_lossy(key).into_owned(),
                    value: value.map(<[u8]>::to_vec),
                    expires_at,
                });
                if pending.len() >= 10_000 {
                    failed = apply(store, &mut pending).err();
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        if stale {
            return Ok(None);
        }
        apply(store, &mut pending)?;
        let next = spans.get(&p).map_or(0, |span| span.high);
        Ok(Some((next, read)))
    }
}

fn apply(store: &mut Store, pending: &mut Vec<Change>) -> Result<(), PipelineError> {
    store.apply(pending.iter())?;
    pending.clear();
    Ok(())
}

impl Stage for Resolver {
    type Pending = Changes;

    fn process(&mut self, batch: &[Input], out: &mut dyn Sink) -> Result<Changes, PipelineError> {
        let now = Utc::now();
        let mut changes = self.sweep(out)?;
        let mut tally = Tally::default();
        let mut work: Vec<Work<'_>> = Vec::with_capacity(batch.len());
        for input in batch {
            if let Some(domain) = self.topics.raw_domain(&input.topic) {
                if let Some(w) = self.prepare(domain, input, &mut tally, out)? {
                    work.push(w);
                }
            } else if let Some(domain) = self.topics.repartition_domain(&input.topic) {
                work.push(Work {
                    domain,
                    partition: input.partition,
                    entity: input
                        .key
                        .as_deref()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .unwrap_or_default(),
                    report: WorkReport::Framed(input.payload.as_deref()),
                    input,
                });
            }
        }
        // Every held partition of a domain with input, not only those in the batch: the rest
        // of the domain's input is a batch or two away, and stores opened together restore in
        // parallel instead of one per batch on the batch's path.
        let domains: HashSet<Domain> = work.iter().map(|w| w.domain).collect();
        let needed = work
            .iter()
            .map(|w| (w.domain, w.partition))
            .chain(
                self.held
                    .iter()
                    .copied()
                    .filter(|(d, _)| domains.contains(d)),
            )
            .collect();
        self.open_stores(needed)?;
        // States touched by this batch: read-your-writes within the batch.
        let mut batch_states = BatchStates::default();
        for w in work {
            self.resolve_one(w, now, &mut batch_states, &mut tally, out)?;
        }
        for key in batch_states.changed {
            let state = &batch_states.touched[&key];
            let bytes = state.encode();
            let ((domain, p), entity) = key;
            out.push(Output {
                topic: self.topics.changelog(domain),
                partition: Some(p),
                key: entity.clone(),
                payload: Some(bytes.clone()),
            });
            changes.push((
                (domain, p),
                Change {
                    key: entity,
                    value: Some(bytes),
                    expires_at: state.expires_at,
                },
            ));
        }
        self.outcomes.write(&tally, out)?;
        Ok(changes)
    }

    fn committed(&mut self, changes: Changes, written: &Written) -> Result<(), PipelineError> {
        self.outcomes.committed();
        let mut by_store: HashMap<PartitionId, Vec<Change>> = HashMap::new();
        for (partition, change) in changes {
            by_store.entry(partition).or_default().push(change);
        }
        for (partition, mut changes) in by_store {
            // In key order, the B-tree's pages are visited once each, in order; stable, so a
            // key swept and written again in one batch keeps its last change.
            changes.sort_by(|a, b| a.key.cmp(&b.key));
            if let Some(store) = self.stores.get_mut(&partition) {
                let before = i64::try_from(store.len()?).unwrap_or(i64::MAX);
                store.apply(&changes)?;
                if let Some(next) =
                    written.next_offset(&self.topics.changelog(partition.0), partition.1)
                {
                    store.advance(next);
                }
                let after = i64::try_from(store.len()?).unwrap_or(i64::MAX);
                self.metrics
                    .state_entities
                    .with_label_values(&[partition.0.as_str()])
                    .add(after - before);
            }
        }
        Ok(())
    }

    fn assignment(&mut self, held: &BTreeSet<(String, i32)>) {
        self.held = held
            .iter()
            .filter_map(|(topic, p)| Some((self.topics.repartition_domain(topic)?, *p)))
            .collect();
    }

    fn due(&self) -> bool {
        self.swept.elapsed() >= SWEEP_EVERY
            && self
                .stores
                .keys()
                .chain(&self.held)
                .any(|(d, _)| d.is_stream())
    }

    fn revoked(&mut self, partitions: &BTreeSet<(String, i32)>) {
        let gone: Vec<PartitionId> = partitions
            .iter()
            .filter_map(|(topic, p)| Some((self.topics.repartition_domain(topic)?, *p)))
            .collect();
        self.close(&gone);
    }

    fn aborted(&mut self) {
        self.outcomes.aborted();
        // The commit may have happened all the same (an error can arrive after the broker
        // committed), so no store can be trusted past its checkpoint — the changelog offset
        // below which it holds every committed record, since changes are applied only after a
        // commit. Closed with it, each store reads the changelog's tail on its next use and
        // takes the batch's changes if and only if the broker committed them, without the
        // rebuild from the beginning that would cost minutes at national scale.
        let held: Vec<PartitionId> = self.stores.keys().copied().collect();
        self.close(&held);
    }
}

/// A report to resolve in this batch: read from the repartition topic, or prepared from a raw
/// record whose entity's partition this thread holds.
struct Work<'a> {
    domain: Domain,
    /// The partition of the repartition topic (and store) the entity belongs to.
    partition: i32,
    entity: String,
    /// The national record holding the one report.
    report: WorkReport<'a>,
    /// The record read, for quarantine.
    input: &'a Input,
}

/// The national record of a [`Work`].
enum WorkReport<'a> {
    /// Prepared in this batch.
    Parts(ReportParts),
    /// Read from the repartition topic, framed; `None` for an empty record.
    Framed(Option<&'a [u8]>),
}

/// The states a batch reads and changes, by partition and entity (hashed: entity ids of one
/// vehicle share long prefixes, which ordered maps compare again on every lookup).
#[derive(Default)]
struct BatchStates {
    touched: HashMap<(PartitionId, String), EntityState>,
    changed: HashSet<(PartitionId, String)>,
    /// The committed states of each partition the batch reads, as of its start.
    readers: HashMap<PartitionId, store::Reader>,
}

impl Resolver {
    /// The prepare step of a raw record: decode → validate → normalise → key. The report is
    /// resolved here if this thread holds its entity's partition; otherwise it goes on through
    /// the repartition topic to the thread that does. `None` when it is not resolved here.
    fn prepare<'a>(
        &self,
        domain: Domain,
        input: &'a Input,
        tally: &mut Tally,
        out: &mut dyn Sink,
    ) -> Result<Option<Work<'a>>, PipelineError> {
        self.metrics
            .records_in
            .with_label_values(&[domain.as_str()])
            .inc();
        let partitions = self.partitions.get(&domain).copied().unwrap_or(1);
        let target = |entity: &str| partition_for(partition_key(entity).as_bytes(), partitions);
        let here = |entity: &str| self.held.contains(&(domain, target(entity)));
        let prepared = match input.payload.as_deref() {
            Some(bytes) => self
                .raw
                .prepare(domain, bytes, &self.rules, &self.runtime, &here),
            None => Err(Reason {
                stage: QuarantineStage::Decode,
                code: "empty_record".to_owned(),
                field: None,
                message: "记录为空 (the record has no value)".to_owned(),
                provenance: None,
            }),
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(reason) => {
                let region = reason
                    .provenance
                    .as_ref()
                    .map_or("unknown", |p| p.reporter_region_code.as_str())
                    .to_owned();
                tally.add(domain, &region, Counted::In);
                tally.add(domain, &region, Counted::Quarantined);
                out.push(self.quarantine.output(
                    &self.topics,
                    domain,
                    input,
                    reason,
                    &self.metrics,
                )?);
                return Ok(None);
            }
        };
        tally.add(domain, &prepared.region, Counted::In);
        let partition = target(&prepared.entity_id);
        let payload = match prepared.report {
            PreparedReport::Parts(parts) => {
                return Ok(Some(Work {
                    domain,
                    partition,
                    entity: prepared.entity_id,
                    report: WorkReport::Parts(parts),
                    input,
                }));
            }
            PreparedReport::Framed(payload) => payload,
        };
        self.metrics
            .repartitioned
            .with_label_values(&[domain.as_str()])
            .inc();
        out.push(Output {
            topic: self.topics.repartition(domain),
            partition: Some(partition),
            key: prepared.entity_id,
            payload: Some(payload),
        });
        Ok(None)
    }

    /// Resolves one report against its entity's state.
    fn resolve_one(
        &mut self,
        work: Work<'_>,
        now: chrono::DateTime<Utc>,
        states: &mut BatchStates,
        tally: &mut Tally,
        out: &mut dyn Sink,
    ) -> Result<(), PipelineError> {
        let Work {
            domain,
            partition,
            entity,
            report,
            input,
        } = work;
        let partition = (domain, partition);
        let parts = match report {
            WorkReport::Parts(parts) => Ok(parts),
            WorkReport::Framed(payload) => payload
                .ok_or_else(|| "空记录 (empty record)".to_owned())
                .and_then(|bytes| {
                    self.codecs
                        .decode_report(domain, bytes, &self.runtime)
                        .map_err(|e| e.to_string())
                }),
        };
        let report = parts.and_then(|(values, contributions, warnings)| {
            SourceReport::from_parts(values, contributions, warnings)
                .ok_or_else(|| "记录缺少来源 (no contribution)".to_owned())
        });
        let report = match report {
            Ok(report) if !entity.is_empty() => report,
            Ok(_) | Err(_) => {
                let message = report
                    .err()
                    .unwrap_or_else(|| "记录缺少实体标识 (the record has no entity id)".to_owned());
                tally.add(domain, "unknown", Counted::Quarantined);
                out.push(self.quarantine.output(
                    &self.topics,
                    domain,
                    input,
                    Reason {
                        stage: QuarantineStage::Resolve,
                        code: "report_unreadable".to_owned(),
                        field: None,
                        message,
                        provenance: None,
                    },
                    &self.metrics,
                )?);
                return Ok(());
            }
        };
        let key = (partition, entity);
        if !states.touched.contains_key(&key) {
            let reader = match states.readers.entry(partition) {
                Entry::Occupied(reader) => reader.into_mut(),
                Entry::Vacant(vacant) => {
                    let store = self.stores.get(&partition).expect("opened for the batch");
                    vacant.insert(store.reader()?)
                }
            };
            let stored = match reader.get(&key.1, EntityState::decode)? {
                Some(state) => state.map_err(|e| PipelineError::State(e.to_string()))?,
                None => EntityState::default(),
            };
            states.touched.insert(key.clone(), stored);
        }
        let state = states.touched.get_mut(&key).expect("inserted above");
        let entity = &key.1;
        let provenance = report.provenance.clone();
        let republish = if domain.is_stream() {
            Republish::OnContent
        } else {
            Republish::OnProvenance
        };
        let (outcome, published) = resolve(
            state,
            entity,
            report,
            self.policy.for_domain(domain),
            republish,
            now,
            self.codecs.unpacker(domain),
        )
        .map_err(|e| PipelineError::State(e.to_string()))?;
        if domain.is_stream() && state.expires_at.is_none() {
            let retention = u64::try_from(self.stream_retention.as_millis()).unwrap_or(u64::MAX);
            state.expires_at = Some(unix_ms(now).saturating_add(retention));
        }
        let encoded = published.map(|publication| {
            let conflicts = publication.merged.conflicts.len();
            (conflicts, self.codecs.encode(domain, publication))
        });
        let region = &provenance.reporter_region_code;
        match encoded {
            None => {}
            Some((conflicts, Ok(payload))) => {
                self.metrics
                    .conflicts
                    .with_label_values(&[domain.as_str()])
                    .inc_by(conflicts as u64);
                out.push(Output {
                    topic: self.topics.national(domain),
                    partition: None,
                    key: entity.clone(),
                    payload: Some(payload),
                });
            }
            Some((_, Err(e))) => {
                // A merged record the national schema refuses is a hub defect: the report
                // waits in quarantine for the fix and a replay.
                tally.add(domain, region, Counted::Quarantined);
                out.push(self.quarantine.output(
                    &self.topics,
                    domain,
                    input,
                    Reason {
                        stage: QuarantineStage::Publish,
                        code: e.code().to_owned(),
                        field: None,
                        message: e.to_string(),
                        provenance: Some(Box::new(provenance)),
                    },
                    &self.metrics,
                )?);
                return Ok(());
            }
        }
        // A merge that published nothing (a stream relay) still changed the state.
        if outcome != Outcome::Unchanged {
            states.changed.insert(key);
        }
        tally.add(domain, region, counted(outcome));
        self.metrics
            .records_out
            .with_label_values(&[domain.as_str(), outcome.as_str()])
            .inc();
        Ok(())
    }

    fn store_path(&self, (domain, p): PartitionId) -> PathBuf {
        self.state_dir.join(format!("{domain}-{p}.redb"))
    }

    /// Deletes the kept stores of partitions this instance has not owned for
    /// [`KEEP_UNOWNED`].
    fn remove_unowned_stores(&self) {
        let Ok(entries) = std::fs::read_dir(&self.state_dir) else {
            return;
        };
        let owned: BTreeSet<PathBuf> = self.stores.keys().map(|&p| self.store_path(p)).collect();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "redb")
                || owned.contains(&path)
                || self.open_files.is_held(&path)
            {
                continue;
            }
            let unowned_for = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| at.elapsed().ok());
            if unowned_for.is_some_and(|age| age >= KEEP_UNOWNED) {
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::info!(path = %path.display(), "unowned state store removed"),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "unowned state store not removed")
                    }
                }
            }
        }
    }

    /// Closes the stores of `partitions`, each kept with its checkpoint.
    fn close(&mut self, partitions: &[PartitionId]) {
        for partition in partitions {
            if let Some(store) = self.stores.remove(partition) {
                let held = store.len().unwrap_or(0);
                self.metrics
                    .state_entities
                    .with_label_values(&[partition.0.as_str()])
                    .sub(i64::try_from(held).unwrap_or(i64::MAX));
            }
        }
    }
}

impl Resolver {
    /// Every [`SWEEP_EVERY`], the stream states whose time has come: their tombstones go to the
    /// changelog in this batch's transaction, and the returned deletions are applied with it.
    fn sweep(&mut self, out: &mut dyn Sink) -> Result<Changes, PipelineError> {
        let mut changes = Changes::new();
        if self.swept.elapsed() < SWEEP_EVERY {
            return Ok(changes);
        }
        self.swept = Instant::now();
        // A rebalance closes every store, and input reopens them: the stores of stream
        // partitions that get no input any more still have states to expire.
        let streams: BTreeSet<PartitionId> = self
            .held
            .iter()
            .filter(|(d, _)| d.is_stream())
            .copied()
            .collect();
        self.open_stores(streams)?;
        self.remove_unowned_stores();
        let now = unix_ms(Utc::now());
        for (&(domain, p), store) in &self.stores {
            if !domain.is_stream() {
                continue;
            }
            for (at, key) in store.expired(now, SWEEP_LIMIT)? {
                out.push(Output {
                    topic: self.topics.changelog(domain),
                    partition: Some(p),
                    key: key.clone(),
                    payload: None,
                });
                changes.push((
                    (domain, p),
                    Change {
                        key,
                        value: None,
                        expires_at: Some(at),
                    },
                ));
            }
        }
        Ok(changes)
    }
}

fn unix_ms(t: chrono::DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn counted(outcome: Outcome) -> Counted {
    match outcome {
        Outcome::Published => Counted::Published,
        Outcome::MergedDuplicate => Counted::MergedDuplicate,
        Outcome::Unchanged => Counted::Unchanged,
    }
}
