//! Accounting (对账): every raw record that enters the hub ends in exactly one outcome —
//! published, merged duplicate, unchanged or quarantined. A stage counts each batch in a
//! [`Tally`]; its [`Ledger`] turns the tally into running totals written to `hub.outcomes` in
//! the batch's own transaction, so the totals are exactly what was committed; the
//! [`Reconciliation`] sums them per domain and reporting region.
//!
//! ## Running totals, bounded
//!
//! `hub.outcomes` is compacted and holds one record per **(stage, writer, domain, province)**,
//! where the writer is the `transactional.id` of the stage producer that writes it (one per
//! process and stage thread, stable across restarts) and the province is the first two digits
//! of the reporting region's GB/T 2260 code. Its value maps each region of that province to
//! what the writer ever counted there (`{"530114": {"received": 3, "quarantined": 1}}`). A
//! batch rewrites only the keys it touched; all of one writer's keys live in one partition of
//! the topic, chosen by a hash of the writer. So the topic's size, and the cost of reading it,
//! grow with writers × domains × regions and never with time or traffic.
//!
//! **Invariant:** only the producer with transactional id *w* writes keys of writer *w*, and
//! the latest committed value of such a key in a partition is the sum of every batch *w* ever
//! committed to that key in that partition. It holds because a [`Ledger`] (1) restores its
//! totals by reading its partition to the end *after* `init_transactions` — which fenced any
//! earlier producer with the same id and settled its open transaction — and before its first
//! batch, (2) adds a batch's counts to its totals only once the batch committed
//! ([`Ledger::committed`]), and (3) after an aborted batch, whose commit may have happened after
//! all, forgets its totals and restores them again ([`Ledger::aborted`]). Partitions moving
//! between processes change nothing: totals belong to the writer, not to an input partition.
//! The reconciliation is then the sum of the latest value of every key in every partition,
//! exact across restarts, rebalances, crashes and a change of the topic's partition count
//! (a writer that lands on another partition starts a fresh total there; the old one stays in
//! the sum).
//!
//! Why not the alternatives: one shared running total per (stage, domain, region) would be
//! read-modified-written by several producers at once and lose counts; keys per hour are
//! exact but grow by one set an hour forever; keys per input partition would need every new
//! owner of a partition to read the previous owner's total before its first batch, on every
//! rebalance. Records written before running totals (a UUID key and a list of rows per batch)
//! are still summed, so an upgraded hub's reconciliation stays exact; they no longer grow.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use schemas::{ClientSettings, Domain};
use serde::{Deserialize, Serialize};

use super::PipelineError;
use super::exactly_once::{Output, Sink};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counted {
    /// A raw record read by the hub.
    In,
    /// Its entity's national values changed: published.
    Published,
    /// Same values as published before; only its provenance was added.
    MergedDuplicate,
    /// Nothing changed; nothing published.
    Unchanged,
    /// Quarantined with a reason code.
    Quarantined,
}

/// Counts gathered over one batch, by domain and region.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally(BTreeMap<Domain, BTreeMap<String, Counts>>);

impl Tally {
    /// Counts one record (allocating only for a region new to the batch).
    pub fn add(&mut self, domain: Domain, region: &str, counted: Counted) {
        let regions = self.0.entry(domain).or_default();
        match regions.get_mut(region) {
            Some(counts) => counts.add(counted, 1),
            None => regions
                .entry(region.to_owned())
                .or_default()
                .add(counted, 1),
        }
    }
}

/// What one writer counted in one region, or what a region adds up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Raw records read.
    #[serde(skip_serializing_if = "is_zero")]
    pub received: u64,
    /// Published.
    #[serde(skip_serializing_if = "is_zero")]
    pub published: u64,
    /// Merged as duplicates.
    #[serde(skip_serializing_if = "is_zero")]
    pub merged_duplicate: u64,
    /// Unchanged.
    #[serde(skip_serializing_if = "is_zero")]
    pub unchanged: u64,
    /// Quarantined.
    #[serde(skip_serializing_if = "is_zero")]
    pub quarantined: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counts {
    fn add(&mut self, counted: Counted, n: u64) {
        let field = match counted {
            Counted::In => &mut self.received,
            Counted::Published => &mut self.published,
            Counted::MergedDuplicate => &mut self.merged_duplicate,
            Counted::Unchanged => &mut self.unchanged,
            Counted::Quarantined => &mut self.quarantined,
        };
        *field += n;
    }

    fn plus(&mut self, other: &Counts) {
        self.received += other.received;
        self.published += other.published;
        self.merged_duplicate += other.merged_duplicate;
        self.unchanged += other.unchanged;
        self.quarantined += other.quarantined;
    }
}

/// The key of one running total in `hub.outcomes`, written as JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalKey {
    /// The stage (`resolve`; `prepare` in the totals of hubs that ran two stages).
    pub stage: String,
    /// The `transactional.id` of the producer that writes it.
    pub writer: String,
    /// Data domain.
    pub domain: Domain,
    /// The regions' province: [`province`].
    pub province: String,
}

/// A running total's value: region → what the writer counted there.
pub type Regions = BTreeMap<String, Counts>;

/// The group a region's total is kept in: the province (the first two digits) of a six-digit
/// GB/T 2260 code, else the region itself (`unknown` for a record that did not decode). A
/// province's value holds at most 10⁴ regions, far below Kafka's message size limit.
pub fn province(region: &str) -> &str {
    if region.len() == 6 && region.bytes().all(|b| b.is_ascii_digit()) {
        &region[..2]
    } else {
        region
    }
}

/// One writer's running totals, by domain and province.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals(BTreeMap<(Domain, String), Regions>);

impl Totals {
    /// The new values of the groups `tally` touches: their totals with the batch added.
    pub fn plus(&self, tally: &Tally) -> Vec<((Domain, String), Regions)> {
        let mut touched: BTreeMap<(Domain, String), Regions> = BTreeMap::new();
        for (domain, batch) in &tally.0 {
            for (region, counts) in batch {
                let group = (*domain, province(region).to_owned());
                let regions = touched
                    .entry(group)
                    .or_insert_with_key(|group| self.0.get(group).cloned().unwrap_or_default());
                regions.entry(region.clone()).or_default().plus(counts);
            }
        }
        touched.into_iter().collect()
    }

    /// Takes committed values from [`Totals::plus`] as the new totals of their groups.
    pub fn set(&mut self, updates: impl IntoIterator<Item = ((Domain, String), Regions)>) {
        self.0.extend(updates);
    }

    /// The totals of `stage`'s `writer` in one partition of the outcomes topic, from its
    /// records in offset order (the latest value of a key wins; a tombstone removes it). Keys
    /// of other writers and records of the per-batch form are not this writer's and are
    /// passed over; a value of its own that does not parse is an error, since counting on
    /// from a wrong total would break the balance.
    pub fn restore<'a>(
        stage: &str,
        writer: &str,
        records: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Result<Self, String> {
        let mut latest: BTreeMap<(Domain, String), Option<&[u8]>> = BTreeMap::new();
        for (key, value) in records {
            let Ok(key) = serde_json::from_slice::<TotalKey>(key) else {
                continue;
            };
            if key.stage == stage && key.writer == writer {
                latest.insert((key.domain, key.province), value);
            }
        }
        let mut totals = Totals::default();
        for (group, value) in latest {
            let Some(value) = value else { continue };
            let regions = serde_json::from_slice::<Regions>(value).map_err(|e| {
                format!(
                    "累计数不可读 (unreadable total of {stage} {writer} {} {}): {e}",
                    group.0, group.1
                )
            })?;
            totals.0.insert(group, regions);
        }
        Ok(totals)
    }
}

/// The partition of the outcomes topic (of `partitions`) holding `writer`'s totals: FNV-1a of
/// its name, so every process computes the same.
pub fn writer_partition(writer: &str, partitions: usize) -> i32 {
    let hash = writer.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let partitions = u32::try_from(partitions.max(1)).unwrap_or(u32::MAX);
    i32::try_from(hash % partitions).expect("a partition number fits i32")
}

/// A stage producer's running totals in `hub.outcomes`: restored when the stage starts, after
/// the producer's `init_transactions`, advanced by every committed batch (module doc).
#[derive(Debug, Clone)]
pub struct Ledger {
    settings: ClientSettings,
    topic: String,
    stage: &'static str,
    writer: String,
    timeout: Duration,
    /// The partition and totals read back; `None` until the first batch, and after an abort.
    restored: Option<(i32, Totals)>,
    /// The totals the open batch writes, taken once it commits.
    pending: Vec<((Domain, String), Regions)>,
}

impl Ledger {
    /// The ledger of `stage`'s producer with transactional id `writer`, in `topic`; reading it
    /// back may wait `timeout` for open transactions of other writers to end.
    ///
    /// `writer` must be the `transactional.id` of the producer that commits this ledger's
    /// records: the invariant rests on its fencing.
    pub fn new(
        settings: ClientSettings,
        topic: String,
        stage: &'static str,
        writer: String,
        timeout: Duration,
    ) -> Self {
        Ledger {
            settings,
            topic,
            stage,
            writer,
            timeout,
            restored: None,
            pending: Vec::new(),
        }
    }

    /// Appends to `out` the new running totals of the groups the batch's `tally` touched (none
    /// when it counted nothing), to be written in the batch's transaction. The first batch of a
    /// producer, and the first after an abort, reads the writer's totals back first. Blocks.
    pub fn write(&mut self, tally: &Tally, out: &mut dyn Sink) -> Result<(), PipelineError> {
        self.pending.clear();
        if tally.0.is_empty() {
            return Ok(());
        }
        if self.restored.is_none() {
            self.restored = Some(self.restore()?);
        }
        let (partition, totals) = self.restored.as_ref().expect("restored above");
        let updates = totals.plus(tally);
        for ((domain, province), regions) in &updates {
            let key = TotalKey {
                stage: self.stage.to_owned(),
                writer: self.writer.clone(),
                domain: *domain,
                province: province.clone(),
            };
            out.push(Output {
                topic: self.topic.clone(),
                partition: Some(*partition),
                key: serde_json::to_string(&key).expect("keys serialise"),
                payload: Some(serde_json::to_vec(regions).expect("totals serialise")),
            });
        }
        self.pending = updates;
        Ok(())
    }

    /// The batch committed: its totals are the writer's totals now.
    pub fn committed(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if let Some((_, totals)) = &mut self.restored {
            totals.set(pending);
        }
    }

    /// The batch's transaction failed, and whether it committed is unknown: read the totals
    /// back before the next batch.
    pub fn aborted(&mut self) {
        self.pending.clear();
        self.restored = None;
    }

    fn restore(&self) -> Result<(i32, Totals), PipelineError> {
        let spans = schemas::kafka::read_from(
            &self.settings,
            &self.topic,
            None,
            |_, span| Some(span.high),
            self.timeout,
            |_, _, _| {},
        )?;
        if spans.is_empty() {
            return Err(PipelineError::Outcomes(format!(
                "结果主题没有分区 (`{}` has no partitions)",
                self.topic
            )));
        }
        let partition = writer_partition(&self.writer, spans.len());
        let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        schemas::kafka::read_to_end(
            &self.settings,
            &self.topic,
            Some(&[partition]),
            self.timeout,
            |_, key, value| records.push((key.to_vec(), value.map(<[u8]>::to_vec))),
        )?;
        let totals = Totals::restore(
            self.stage,
            &self.writer,
            records.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
        )
        .map_err(PipelineError::Outcomes)?;
        tracing::info!(
            stage = self.stage,
            writer = %self.writer,
            partition,
            groups = totals.0.len(),
            records = records.len(),
            "outcome totals restored"
        );
        Ok((partition, totals))
    }
}

/// One row of a batch's counts, as hubs before running totals wrote them (a list per batch,
/// under a UUID key): still read, so that the balance stays exact across the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Data domain.
    pub domain: Domain,
    /// GB/T 2260 code of the reporter's area, or `unknown` when the record did not decode.
    pub region: String,
    /// What was counted.
    pub counted: Counted,
    /// How many.
    pub count: u64,
}

/// The balance of one domain and region: what came in and where it went.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Raw records read.
    pub received: u64,
    /// Published.
    pub published: u64,
    /// Merged as duplicates.
    pub merged_duplicate: u64,
    /// Unchanged.
    pub unchanged: u64,
    /// Quarantined.
    pub quarantined: u64,
    /// Read but not yet resolved (between the two stages): zero once the hub has caught up.
    pub in_flight: i64,
}

impl Balance {
    fn add(&mut self, c: &Counts) {
        self.received += c.received;
        self.published += c.published;
        self.merged_duplicate += c.merged_duplicate;
        self.unchanged += c.unchanged;
        self.quarantined += c.quarantined;
        let out = self.published + self.merged_duplicate + self.unchanged + self.quarantined;
        self.in_flight = self.received as i64 - out as i64;
    }
}

/// The reconciliation: balances per domain and region, and their total.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Per domain, then reporting region.
    pub by_domain: BTreeMap<Domain, BTreeMap<String, Balance>>,
    /// Everything.
    pub total: Balance,
    /// Whether every record read has its outcome (`in_flight` is zero everywhere).
    pub balanced: bool,
}

impl Reconciliation {
    /// Sums the latest value of every key in every partition of the outcomes topic, from its
    /// records as `(partition, key, value)` in offset order per partition. Running totals and
    /// per-batch rows are both summed; anything else is logged and passed over.
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = (i32, &'a [u8], Option<&'a [u8]>)>,
    ) -> Self {
        let mut latest: HashMap<(i32, &[u8]), Option<&[u8]>> = HashMap::new();
        for (partition, key, value) in records {
            latest.insert((partition, key), value);
        }
        let mut counts: BTreeMap<(Domain, String), Counts> = BTreeMap::new();
        for ((_, key), value) in latest {
            let Some(value) = value else { continue };
            if let Ok(key) = serde_json::from_slice::<TotalKey>(key) {
                match serde_json::from_slice::<Regions>(value) {
                    Ok(regions) => {
                        for (region, c) in regions {
                            counts.entry((key.domain, region)).or_default().plus(&c);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, ?key, "unreadable outcome total skipped"),
                }
                continue;
            }
            match serde_json::from_slice::<Vec<Row>>(value) {
                Ok(rows) => {
                    for row in rows {
                        counts
                            .entry((row.domain, row.region))
                            .or_default()
                            .add(row.counted, row.count);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "unreadable outcome record skipped"),
            }
        }
        let mut r = Reconciliation::default();
        for ((domain, region), c) in counts {
            r.by_domain
                .entry(domain)
                .or_default()
                .entry(region)
                .or_default()
                .add(&c);
            r.total.add(&c);
        }
        r.balanced = r
            .by_domain
            .values()
            .flat_map(BTreeMap::values)
            .all(|b| b.in_flight == 0);
        r
    }

    /// Reads `topic` to its end and sums it. Blocks.
    pub fn read(
        settings: &ClientSettings,
        topic: &str,
        timeout: Duration,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut records: Vec<(i32, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        schemas::kafka::read_to_end(settings, topic, None, timeout, |partition, key, value| {
            records.push((partition, key.to_vec(), value.map(<[u8]>::to_vec)));
        })?;
        Ok(Self::from_records(
            records
                .iter()
                .map(|(p, k, v)| (*p, k.as_slice(), v.as_deref())),
        ))
    }
}

/// `GET /reconciliation`: the reconciliation as JSON, read from the outcomes topic on each
/// request.
pub fn router(settings: ClientSettings, topic: String) -> axum::Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    axum::Router::new().route(
        "/reconciliation",
        axum::routing::get(move || {
            let (settings, topic) = (settings.clone(), topic.clone());
            async move {
                let read = tokio::task::spawn_blocking(move || {
                    Reconciliation::read(&settings, &topic, Duration::from_secs(60))
                })
                .await;
                match read {
                    Ok(Ok(r)) => axum::Json(r).into_response(),
                    Ok(Err(e)) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("对账数据暂不可读 (cannot read the outcomes): {e}"),
                    )
                        .into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use Counted::{In, MergedDuplicate, Published, Quarantined, Unchanged};
    use Domain::{Institution, VehiclePosition};

    fn counts(
        received: u64,
        published: u64,
        merged: u64,
        unchanged: u64,
        quarantined: u64,
    ) -> Counts {
        Counts {
            received,
            published,
            merged_duplicate: merged,
            unchanged,
            quarantined,
        }
    }

    fn tally(rows: &[(Domain, &str, Counted, u64)]) -> Tally {
        let mut t = Tally::default();
        for &(domain, region, counted, n) in rows {
            for _ in 0..n {
                t.add(domain, region, counted);
            }
        }
        t
    }

    fn key(stage: &str, writer: &str, domain: Domain, province: &str) -> Vec<u8> {
        serde_json::to_vec(&TotalKey {
            stage: stage.to_owned(),
            writer: writer.to_owned(),
            domain,
            province: province.to_owned(),
        })
        .expect("key")
    }

    #[test]
    fn regions_are_grouped_by_province() {
        let cases = [
            ("530114", "53"),
            ("150102", "15"),
            ("500101", "50"),
            ("unknown", "unknown"),
            ("5301", "5301"),
            ("53011x", "53011x"),
            ("", ""),
        ];
        for (region, want) in cases {
            assert_eq!(province(region), want, "{region}");
        }
    }

    #[test]
    fn writers_keep_their_partition() {
        let cases = [
            ("", 1, 0),
            ("a", 12, 4),
            ("huitong-hub-resolve-hub-0", 12, 7),
            ("huitong-hub-prepare-hub-0", 12, 8),
            ("huitong-hub-resolve-hub-1", 12, 8),
            ("huitong-hub-resolve-hub-1", 1, 0),
            ("huitong-hub-resolve-hub-1", 0, 0),
        ];
        for (writer, partitions, want) in cases {
            assert_eq!(
                writer_partition(writer, partitions),
                want,
                "{writer} of {partitions}"
            );
        }
    }

    /// totals before, a batch's tally → the values the batch writes: only the groups it
    /// touched, each with every region of the group.
    #[test]
    fn a_batch_rewrites_the_groups_it_touched() {
        type Case<'a> = (
            &'a [(Domain, &'a str, Counts)],
            &'a [(Domain, &'a str, Counted, u64)],
            &'a [(Domain, &'a str, &'a [(&'a str, Counts)])],
        );
        let cases: [Case<'_>; 5] = [
            // Nothing before: the batch's counts.
            (
                &[],
                &[
                    (VehiclePosition, "530114", In, 3),
                    (VehiclePosition, "530114", Quarantined, 1),
                ],
                &[(VehiclePosition, "53", &[("530114", counts(3, 0, 0, 0, 1))])],
            ),
            // Added to the region's total; the other region of the province is carried along.
            (
                &[
                    (VehiclePosition, "530114", counts(3, 0, 0, 0, 1)),
                    (VehiclePosition, "530102", counts(5, 0, 0, 0, 0)),
                ],
                &[(VehiclePosition, "530114", In, 2)],
                &[(
                    VehiclePosition,
                    "53",
                    &[
                        ("530102", counts(5, 0, 0, 0, 0)),
                        ("530114", counts(5, 0, 0, 0, 1)),
                    ],
                )],
            ),
            // Another province and domain are untouched, so not written.
            (
                &[
                    (VehiclePosition, "530114", counts(3, 0, 0, 0, 0)),
                    (Institution, "150102", counts(1, 0, 0, 0, 0)),
                ],
                &[
                    (VehiclePosition, "150102", Published, 1),
                    (VehiclePosition, "150102", MergedDuplicate, 2),
                ],
                &[(VehiclePosition, "15", &[("150102", counts(0, 1, 2, 0, 0))])],
            ),
            // Two provinces, and a record that did not decode.
            (
                &[],
                &[
                    (Institution, "500101", Unchanged, 4),
                    (Institution, "530114", Published, 1),
                    (Institution, "unknown", In, 1),
                    (Institution, "unknown", Quarantined, 1),
                ],
                &[
                    (Institution, "50", &[("500101", counts(0, 0, 0, 4, 0))]),
                    (Institution, "53", &[("530114", counts(0, 1, 0, 0, 0))]),
                    (
                        Institution,
                        "unknown",
                        &[("unknown", counts(1, 0, 0, 0, 1))],
                    ),
                ],
            ),
            // An empty batch writes nothing.
            (&[(Institution, "500101", counts(1, 1, 0, 0, 0))], &[], &[]),
        ];
        for (i, (before, batch, want)) in cases.into_iter().enumerate() {
            let mut totals = Totals::default();
            for &(domain, region, c) in before {
                totals
                    .0
                    .entry((domain, province(region).to_owned()))
                    .or_default()
                    .insert(region.to_owned(), c);
            }
            let want: Vec<((Domain, String), Regions)> = want
                .iter()
                .map(|&(domain, group, regions)| {
                    let regions = regions.iter().map(|&(r, c)| (r.to_owned(), c)).collect();
                    ((domain, group.to_owned()), regions)
                })
                .collect();
            assert_eq!(totals.plus(&tally(batch)), want, "case {i}");
        }
    }

    /// A writer's records in its partition → the totals it restores.
    #[test]
    fn a_writer_restores_the_latest_value_of_its_own_keys() {
        let mine = key("resolve", "hub-0", VehiclePosition, "53");
        let other_writer = key("resolve", "hub-1", VehiclePosition, "53");
        let other_stage = key("prepare", "hub-0", VehiclePosition, "53");
        let second = key("resolve", "hub-0", Institution, "15");
        let v = |region: &str, published: u64| {
            serde_json::to_vec(&Regions::from([(
                region.to_owned(),
                counts(0, published, 0, 0, 0),
            )]))
            .expect("value")
        };
        let legacy = serde_json::to_vec(&[Row {
            domain: VehiclePosition,
            region: "530114".to_owned(),
            counted: Published,
            count: 7,
        }])
        .expect("row");
        type Case<'a> = (
            &'a [(&'a [u8], Option<Vec<u8>>)],
            Result<&'a [(Domain, &'a str, u64)], ()>,
        );
        let cases: [Case<'_>; 6] = [
            (&[], Ok(&[])),
            (
                &[(&mine, Some(v("530114", 1))), (&mine, Some(v("530114", 4)))],
                Ok(&[(VehiclePosition, "530114", 4)]),
            ),
            (
                &[
                    (&mine, Some(v("530114", 4))),
                    (&other_writer, Some(v("530114", 9))),
                    (&other_stage, Some(v("530114", 8))),
                    (b"5f0c1c1e-uuid", Some(legacy.clone())),
                    (&second, Some(v("150102", 2))),
                ],
                Ok(&[(VehiclePosition, "530114", 4), (Institution, "150102", 2)]),
            ),
            // A tombstone (an operator's reset) starts the key over.
            (&[(&mine, Some(v("530114", 4))), (&mine, None)], Ok(&[])),
            // An unreadable value of someone else's is not ours to judge.
            (&[(&other_writer, Some(b"{".to_vec()))], Ok(&[])),
            (
                &[
                    (&mine, Some(v("530114", 4))),
                    (&mine, Some(b"[1]".to_vec())),
                ],
                Err(()),
            ),
        ];
        for (i, (records, want)) in cases.into_iter().enumerate() {
            let got = Totals::restore(
                "resolve",
                "hub-0",
                records.iter().map(|(k, v)| (*k, v.as_deref())),
            );
            match want {
                Ok(want) => {
                    let mut expected = Totals::default();
                    for &(domain, region, published) in want {
                        expected
                            .0
                            .entry((domain, province(region).to_owned()))
                            .or_default()
                            .insert(region.to_owned(), counts(0, published, 0, 0, 0));
                    }
                    assert_eq!(got, Ok(expected), "case {i}");
                }
                Err(()) => assert!(got.is_err(), "case {i}: {got:?}"),
            }
        }
    }

    /// The log of `hub.outcomes` as `(partition, key, value)`.
    type Log = Vec<(i32, Vec<u8>, Option<Vec<u8>>)>;

    fn reconcile(log: &Log) -> Reconciliation {
        Reconciliation::from_records(log.iter().map(|(p, k, v)| (*p, k.as_slice(), v.as_deref())))
    }

    #[test]
    fn the_reconciliation_sums_the_latest_value_of_every_key() {
        let v = |c: Counts| {
            serde_json::to_vec(&Regions::from([("530114".to_owned(), c)])).expect("value")
        };
        let prepare = key("prepare", "hub-0", VehiclePosition, "53");
        let resolve = key("resolve", "hub-0", VehiclePosition, "53");
        let legacy = serde_json::to_vec(&[
            Row {
                domain: VehiclePosition,
                region: "530114".to_owned(),
                counted: In,
                count: 2,
            },
            Row {
                domain: VehiclePosition,
                region: "530114".to_owned(),
                counted: Published,
                count: 2,
            },
        ])
        .expect("rows");
        let log: Log = vec![
            // Per-batch rows of an older hub, under UUID keys.
            (
                0,
                b"1b4e28ba-2fa1-11d2-883f-0016d3cca427".to_vec(),
                Some(legacy.clone()),
            ),
            (
                0,
                b"6fa459ea-ee8a-3ca4-894e-db77e160355e".to_vec(),
                Some(legacy),
            ),
            (0, prepare.clone(), Some(v(counts(3, 0, 0, 0, 1)))),
            (0, prepare.clone(), Some(v(counts(6, 0, 0, 0, 1)))),
            (0, resolve.clone(), Some(v(counts(0, 2, 1, 0, 0)))),
            // The same writer on another partition (the topic grew): a total of its own.
            (1, resolve.clone(), Some(v(counts(0, 1, 1, 0, 0)))),
            (0, b"junk".to_vec(), Some(b"not json".to_vec())),
        ];
        let r = reconcile(&log);
        let balance = &r.by_domain[&VehiclePosition]["530114"];
        assert_eq!(
            (
                balance.received,
                balance.published,
                balance.merged_duplicate,
                balance.quarantined,
                balance.in_flight
            ),
            (10, 7, 2, 1, 0)
        );
        assert!(r.balanced);
        assert_eq!(r.total.received, 10);

        let mut behind = log.clone();
        behind.push((0, prepare, Some(v(counts(7, 0, 0, 0, 1)))));
        let r = reconcile(&behind);
        assert_eq!(r.by_domain[&VehiclePosition]["530114"].in_flight, 1);
        assert!(!r.balanced, "one record still between the stages");
    }

    /// A writer's lives over one log: batches committed, one aborted after its commit went
    /// through, one aborted before, a restart. The reconciliation always equals what was
    /// committed, and the log holds one live key per group however many batches were written.
    #[test]
    fn totals_stay_exact_across_commits_aborts_and_restarts() {
        let partition = writer_partition("hub-0", 3);
        let ledger = |log: &Log| Ledger {
            settings: ClientSettings::new("unused:9092"),
            topic: "hub.outcomes".to_owned(),
            stage: "prepare",
            writer: "hub-0".to_owned(),
            timeout: Duration::from_secs(1),
            restored: Some((
                partition,
                Totals::restore(
                    "prepare",
                    "hub-0",
                    log.iter()
                        .filter(|(p, _, _)| *p == partition)
                        .map(|(_, k, v)| (k.as_slice(), v.as_deref())),
                )
                .expect("restores"),
            )),
            pending: Vec::new(),
        };
        let batch = tally(&[
            (VehiclePosition, "530114", In, 2),
            (VehiclePosition, "530114", Quarantined, 1),
            (VehiclePosition, "150102", In, 1),
        ]);
        let mut log: Log = Vec::new();
        let append = |log: &mut Log, out: &[Output]| {
            for o in out {
                assert_eq!(o.partition, Some(partition));
                log.push((partition, o.key.clone().into_bytes(), o.payload.clone()));
            }
        };
        let mut l = ledger(&log);
        let mut committed = 0;
        for _ in 0..3 {
            let mut out = Vec::new();
            l.write(&batch, &mut out).expect("writes");
            append(&mut log, &out);
            l.committed();
            committed += 1;
        }
        // Aborted before the broker committed: nothing in the log.
        let mut out = Vec::new();
        l.write(&batch, &mut out).expect("writes");
        l.aborted();
        // Aborted although the broker committed: in the log, then read back.
        let mut l = ledger(&log);
        let mut out = Vec::new();
        l.write(&batch, &mut out).expect("writes");
        append(&mut log, &out);
        l.aborted();
        committed += 1;
        // A restart, then one more batch.
        let mut l = ledger(&log);
        let mut out = Vec::new();
        l.write(&batch, &mut out).expect("writes");
        append(&mut log, &out);
        l.committed();
        committed += 1;

        let r = reconcile(&log);
        assert_eq!(
            (
                r.by_domain[&VehiclePosition]["530114"].received,
                r.by_domain[&VehiclePosition]["150102"].received
            ),
            (2 * committed, committed)
        );
        assert_eq!(r.total.quarantined, committed);
        let keys: std::collections::BTreeSet<_> = log.iter().map(|(_, k, _)| k.clone()).collect();
        assert_eq!(keys.len(), 2, "one key per province, however many batches");
        let mut out = Vec::new();
        l.write(&Tally::default(), &mut out)
            .expect("nothing to write");
        assert!(out.is_empty());
    }
}
