//! Resolve (实体归并): every report of one entity — from the county, city and province
//! platforms, and from any other source — meets here, keyed by entity id, and becomes one
//! national record that lists every contributing report.
//!
//! The state of an entity is the latest report of each source system. A national record is a
//! pure function of that state ([`merge`]), so it does not depend on the order reports arrive
//! in: each field takes the value chosen by the domain's survivorship rule, and fields on which
//! the reports disagree are recorded as conflicts.
//!
//! - **Ownership** (`OWNING_LEVEL`, the shipped default): upper levels relay what lower levels
//!   own, so the lowest level that reported a value wins, the newest source timestamp decides
//!   only among reports of that level, and upper levels that differ are conflicts — a
//!   province's copy synced later with older content never overrides the county.
//! - **Lines** (`line_keys`): an array whose lines have a natural key (an energy report's
//!   `lines` by carrier, cost `items` by item, `rooms` by number) is merged line by line, so a
//!   disagreement is recorded on the line (`lines[ELECTRICITY].amount`) and a line some
//!   reports lack on the line itself (`lines[HEAT]`).
//! - **Unknown labels**: normalise records an unknown status as OTHER with its text in
//!   `reported_status`; both are compared like any field, and `follows` takes the text from
//!   the report whose status won.
//!
//! What one report does ([`Outcome`]):
//! - a source system sends a report older than the one it sent before, or the same content
//!   again (a daily snapshot in which nothing changed): **unchanged**, nothing is published;
//! - the report changes the national values (a first report, a revision that supersedes the
//!   earlier one, a level whose value wins): **published**, as a new revision;
//! - otherwise the report leaves the national values as they were and only adds its provenance
//!   (or a conflict): **merged duplicate**, published as a new revision listing it.
//!
//! Merging reads values in their JSON form (the schemas crate's human-readable serde form), so
//! one function serves every domain; reports arrive packed by the domain's codec
//! ([`Values`]), and only a merge of reports that differ unpacks them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemas::Domain;
use schemas::records::{Conflict, ConflictValue, Provenance, ReportingLevel, SurvivorshipRule};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields every national record has that resolution maintains rather than merges.
pub const ENVELOPE: [&str; 6] = [
    "entity_id",
    "contributions",
    "conflicts",
    "warnings",
    "revision",
    "updated_at",
];

/// What a report did to its entity's national record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The national values changed: a new revision was published.
    Published,
    /// The national values stayed; the report's provenance (or a conflict) was added and a
    /// new revision listing it was published.
    MergedDuplicate,
    /// Nothing changed; nothing was published.
    Unchanged,
}

impl Outcome {
    /// The label used in metrics and the reconciliation.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::MergedDuplicate => "merged_duplicate",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// One source system's latest report of the entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// Where it came from.
    pub provenance: Provenance,
    /// Its normalised values: the national record's fields without the envelope.
    pub values: Values,
    /// Findings that did not stop it, `CODE: message`.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A report's values, or a national record's, in one of two forms.
///
/// Reports arrive **packed**: the domain's national record, envelope cleared, in a compact
/// form only the domain's codec reads ([`Unpack`]). Packed values are compared byte for byte
/// and published without being unpacked, so the common cases — a level relaying what another
/// sent, a snapshot resending an unchanged record, a first report — never build the **JSON**
/// form, which only a merge of differing reports needs. States written before the packed form
/// hold JSON values; both forms are stored and read.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// The domain codec's form, from [`Unpack`]'s counterpart.
    Packed(Vec<u8>),
    /// The JSON form (the schemas crate's human-readable serde form), envelope fields dropped.
    Json(Map<String, Value>),
}

/// Reads packed [`Values`]: the domain's national record type knows their layout.
pub trait Unpack {
    /// The JSON form of packed values, envelope fields dropped.
    fn unpack(&self, packed: &[u8]) -> Result<Map<String, Value>, UnpackError>;
}

/// Packed values that do not read: a state or report the hub wrote that its codec no longer
/// reads (a defect, not bad input).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("无法读取报告数值 (packed values do not read): {0}")]
pub struct UnpackError(pub String);

impl Values {
    /// The JSON form, unpacked if need be.
    pub fn json(&self, unpack: &dyn Unpack) -> Result<Cow<'_, Map<String, Value>>, UnpackError> {
        match self {
            Values::Packed(bytes) => Ok(Cow::Owned(unpack.unpack(bytes)?)),
            Values::Json(map) => Ok(Cow::Borrowed(map)),
        }
    }

    /// The JSON form, owned.
    pub fn into_json(self, unpack: &dyn Unpack) -> Result<Map<String, Value>, UnpackError> {
        match self {
            Values::Packed(bytes) => unpack.unpack(&bytes),
            Values::Json(map) => Ok(map),
        }
    }

    /// Whether both say the same: equal bytes when both are packed, else equal JSON forms.
    pub fn same(&self, other: &Values, unpack: &dyn Unpack) -> Result<bool, UnpackError> {
        match (self, other) {
            (Values::Packed(a), Values::Packed(b)) if a == b => Ok(true),
            (Values::Json(a), Values::Json(b)) => Ok(a == b),
            _ => Ok(self.json(unpack)? == other.json(unpack)?),
        }
    }
}

impl Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Values::Packed(bytes) => serializer.serialize_bytes(bytes),
            Values::Json(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Stored::deserialize(deserializer)? {
            Stored::Values(values) => Ok(values),
            Stored::SameAs(_) => Err(serde::de::Error::custom(
                "a reference to another report's values outside a state",
            )),
        }
    }
}

/// A report's values as a stored state holds them: the values, or — for values equal to an
/// earlier report's of the same state (a relay of what another level sent) — that report's
/// position, so that they are stored once.
enum Stored {
    Values(Values),
    SameAs(usize),
}

impl<'de> Deserialize<'de> for Stored {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Bytes (MessagePack `bin`, or a sequence of byte values in JSON) are packed values;
        /// a map is the JSON form; an integer refers to an earlier report.
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = Stored;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "packed values (bytes), values in JSON form (a map) or a report's position",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Stored, E> {
                usize::try_from(v)
                    .map(Stored::SameAs)
                    .map_err(|_| E::custom("report position out of range"))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Stored, E> {
                Ok(Stored::Values(Values::Packed(v.to_vec())))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Stored, E> {
                Ok(Stored::Values(Values::Packed(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Stored, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(Stored::Values(Values::Packed(bytes)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Stored, A::Error> {
                Map::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|map| Stored::Values(Values::Json(map)))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// [`EntityState`] as stored: reports' values may refer to an earlier report's ([`Stored`]).
/// Its fields are [`EntityState`]'s, in its order.
#[derive(Deserialize)]
struct StoredState {
    revision: i64,
    reports: BTreeMap<String, StoredReport>,
    #[serde(default)]
    expires_at: Option<u64>,
}

/// [`SourceReport`] as stored; its fields in its order.
#[derive(Deserialize)]
struct StoredReport {
    provenance: Provenance,
    values: Stored,
    #[serde(default)]
    warnings: Vec<String>,
}

impl TryFrom<StoredState> for EntityState {
    type Error = String;

    fn try_from(stored: StoredState) -> Result<Self, String> {
        let mut listed: Vec<(String, StoredReport)> = stored.reports.into_iter().collect();
        for k in 0..listed.len() {
            if let Stored::SameAs(i) = listed[k].1.values {
                let values = match listed.get(i).map(|(_, r)| &r.values) {
                    Some(Stored::Values(values)) if i < k => values.clone(),
                    _ => return Err(format!("report {k} refers to no earlier values ({i})")),
                };
                listed[k].1.values = Stored::Values(values);
            }
        }
        let reports = listed
            .into_iter()
            .map(|(system, report)| {
                let Stored::Values(values) = report.values else {
                    unreachable!("every reference was resolved above");
                };
                let report = SourceReport {
                    provenance: report.provenance,
                    values,
                    warnings: report.warnings,
                };
                (system, report)
            })
            .collect();
        Ok(EntityState {
            revision: stored.revision,
            reports,
            expires_at: stored.expires_at,
        })
    }
}

/// How [`EntityState::encode`] writes a state: [`StoredState`]'s layout, borrowed.
#[derive(Serialize)]
struct WriteState<'a> {
    revision: i64,
    reports: BTreeMap<&'a str, WriteReport<'a>>,
    expires_at: Option<u64>,
}

#[derive(Serialize)]
struct WriteReport<'a> {
    provenance: &'a Provenance,
    values: WriteValues<'a>,
    warnings: &'a [String],
}

/// A report's values, or the position of the earlier report holding the same packed values.
enum WriteValues<'a> {
    Values(&'a Values),
    SameAs(usize),
}

impl Serialize for WriteValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WriteValues::Values(values) => values.serialize(serializer),
            WriteValues::SameAs(i) => serializer.serialize_u64(*i as u64),
        }
    }
}

impl SourceReport {
    /// The report in a national record holding that one report (the output of the prepare
    /// step): its values (envelope fields of a JSON form are dropped), its first contribution
    /// and its warnings. `None` if it has no contribution.
    pub fn from_parts(
        mut values: Values,
        contributions: Vec<Provenance>,
        warnings: Vec<String>,
    ) -> Option<Self> {
        let provenance = contributions.into_iter().next()?;
        if let Values::Json(map) = &mut values {
            for field in ENVELOPE {
                map.remove(field);
            }
        }
        Some(SourceReport {
            provenance,
            values,
            warnings,
        })
    }

    /// When the source last changed the report, else when it was received.
    fn changed_at(&self) -> DateTime<Utc> {
        self.provenance
            .source_timestamp
            .unwrap_or(self.provenance.received_at)
    }
}

/// What the hub keeps per entity (changelogged, restored after a restart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredState")]
pub struct EntityState {
    /// Revision of the last published national record (0 before the first).
    pub revision: i64,
    /// The latest report of each source system, by system id.
    pub reports: BTreeMap<String, SourceReport>,
    /// When the state may be forgotten (Unix ms): set for stream entities (GPS fixes), whose
    /// reports from every level arrive within minutes; `None` keeps it for ever.
    /// Always written (never skipped when `None`): the positional form needs every field.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// The first byte of a state in the compact binary form: MessagePack with structs as arrays
/// follows (field names are most of a named state's bytes, and every byte is paid for again in
/// the store, the changelog and its compression). Fields of the state's structs are therefore
/// only ever appended, with a default, so that older states still read.
const STATE_POSITIONAL: u8 = 2;
/// The first byte of states written before [`STATE_POSITIONAL`]: MessagePack with field names.
/// States older still are JSON and start with `{`. All three forms are read.
const STATE_NAMED: u8 = 1;

/// Why stored state bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// JSON state (written before the binary form) that does not parse.
    #[error("JSON state: {0}")]
    Json(#[from] serde_json::Error),
    /// Binary state that does not parse.
    #[error("binary state: {0}")]
    Binary(#[from] rmp_serde::decode::Error),
    /// Neither form.
    #[error("unknown state format (first byte {0})")]
    Format(u8),
}

impl EntityState {
    /// The stored form (store and changelog): positional MessagePack behind
    /// [`STATE_POSITIONAL`].
    pub fn encode(&self) -> Vec<u8> {
        let values: usize = self
            .reports
            .values()
            .map(|r| match &r.values {
                Values::Packed(bytes) => bytes.len(),
                Values::Json(_) => 512,
            })
            .sum();
        let mut out = Vec::with_capacity(32 + values + 256 * self.reports.len());
        out.push(STATE_POSITIONAL);
        // Packed values equal to an earlier report's are written as its position: the relays
        // of a GPS fix store the fix once.
        let mut first: Vec<Option<&[u8]>> = Vec::with_capacity(self.reports.len());
        let reports = self
            .reports
            .iter()
            .map(|(system, report)| {
                let values = match &report.values {
                    Values::Packed(bytes) => match first.iter().position(|b| *b == Some(bytes)) {
                        Some(i) => WriteValues::SameAs(i),
                        None => WriteValues::Values(&report.values),
                    },
                    Values::Json(_) => WriteValues::Values(&report.values),
                };
                first.push(match &report.values {
                    Values::Packed(bytes) => Some(bytes),
                    Values::Json(_) => None,
                });
                let report = WriteReport {
                    provenance: &report.provenance,
                    values,
                    warnings: &report.warnings,
                };
                (system.as_str(), report)
            })
            .collect();
        let state = WriteState {
            revision: self.revision,
            reports,
            expires_at: self.expires_at,
        };
        state
            .serialize(&mut rmp_serde::Serializer::new(&mut out))
            .expect("states serialise to MessagePack");
        out
    }

    /// A state read from its stored form, binary or JSON.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        decode_state(bytes)
    }

    /// Only the expiry of a stored state, without reading its reports.
    pub fn expiry(bytes: &[u8]) -> Result<Option<u64>, StateError> {
        use serde::de::IgnoredAny;
        /// The named forms: the field by its name.
        #[derive(Deserialize)]
        struct Expiry {
            #[serde(default)]
            expires_at: Option<u64>,
        }
        match bytes.first() {
            // The positional form: the fields before it skipped, in `EntityState`'s order.
            Some(&STATE_POSITIONAL) => {
                let (_, _, expires_at) =
                    rmp_serde::from_slice::<(IgnoredAny, IgnoredAny, Option<u64>)>(&bytes[1..])?;
                Ok(expires_at)
            }
            _ => Ok(decode_state::<Expiry>(bytes)?.expires_at),
        }
    }
}

fn decode_state<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StateError> {
    match bytes.first() {
        // Structs read from arrays and from maps alike.
        Some(&(STATE_POSITIONAL | STATE_NAMED)) => Ok(rmp_serde::from_slice(&bytes[1..])?),
        Some(b'{') => Ok(serde_json::from_slice(bytes)?),
        other => Err(StateError::Format(other.copied().unwrap_or(0))),
    }
}

/// The survivorship rules of one domain: a default and per-field exceptions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainPolicy {
    /// Rule for fields without an exception.
    pub rule: SurvivorshipRule,
    /// Rules of particular fields (top-level field names of the national record).
    #[serde(default)]
    pub fields: BTreeMap<String, SurvivorshipRule>,
    /// Fields that describe a report rather than the entity (e.g. the datum a GPS source
    /// used): taken by the rule, but a difference is not a conflict. Top-level names; a field
    /// of a keyed array's lines as `lines.cost`.
    #[serde(default)]
    pub not_compared: BTreeSet<String>,
    /// Floating-point values (coordinates, speeds) closer than this agree.
    #[serde(default = "default_float_tolerance")]
    pub float_tolerance: f64,
    /// Arrays merged line by line: array field → the field of its lines that is their natural
    /// key (`lines = "carrier"`). A disagreement is then recorded on the line
    /// (`lines[ELECTRICITY].amount`), and a line some reports lack on the line itself
    /// (`lines[HEAT]`). Arrays not listed are compared whole.
    #[serde(default)]
    pub line_keys: BTreeMap<String, String>,
    /// Fields taken from the report whose value of another field was chosen: field → that
    /// field (`reported_status = "status"`: the label of an unknown status goes with it).
    /// They are still compared on their own.
    #[serde(default)]
    pub follows: BTreeMap<String, String>,
}

fn default_float_tolerance() -> f64 {
    1e-9
}

impl DomainPolicy {
    fn rule_for(&self, field: &str) -> SurvivorshipRule {
        self.fields.get(field).copied().unwrap_or(self.rule)
    }
}

/// A survivorship file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// It could not be read.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// It is not TOML of the expected shape (the message names line and key).
    #[error("{0}")]
    Syntax(#[from] Box<toml::de::Error>),
}

/// Survivorship rules per domain (`hub/config/survivorship.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurvivorshipPolicy {
    /// Rules of domains without a section of their own.
    pub default: DomainPolicy,
    /// Rules by domain (`vehicle`, `energy-report`, …).
    #[serde(default)]
    pub domain: BTreeMap<Domain, DomainPolicy>,
}

impl SurvivorshipPolicy {
    /// The shipped rules.
    pub fn shipped() -> Self {
        toml::from_str(include_str!("../../config/survivorship.toml"))
            .expect("the shipped survivorship policy parses (tested)")
    }

    /// Rules read from a TOML file of the shipped file's shape.
    pub fn load(path: &std::path::Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path)?;
        Ok(toml::from_str(&text).map_err(Box::new)?)
    }

    /// The rules of `domain`.
    pub fn for_domain(&self, domain: Domain) -> &DomainPolicy {
        self.domain.get(&domain).unwrap_or(&self.default)
    }
}

/// When a report that leaves the national values as they were is published again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Republish {
    /// Registries and statistical reports: every new contribution is a new revision, so the
    /// national record always lists every report of the entity (a consumer sees who confirmed
    /// it, and there are few reports per entity and day).
    OnProvenance,
    /// Streams (GPS points): only a change of values, conflicts or warnings is published. Each
    /// point is reported by up to three levels within seconds, so republishing every relay would
    /// triple the national stream for no new content; the later reports' provenance is merged
    /// into the state (its changelog) all the same.
    OnContent,
}

/// Adds `report` to `state` and says what it did; returns the national record to publish, if
/// any (as the state's new revision, `updated_at` = `now`). Whatever is published is `merge`
/// of the reports it lists. Fails only when packed values do not unpack.
pub fn resolve(
    state: &mut EntityState,
    entity_id: &str,
    report: SourceReport,
    policy: &DomainPolicy,
    republish: Republish,
    now: DateTime<Utc>,
    unpack: &dyn Unpack,
) -> Result<(Outcome, Option<Publication>), UnpackError> {
    let same = |a: &SourceReport, b: &SourceReport| -> Result<bool, UnpackError> {
        Ok(a.warnings == b.warnings && a.values.same(&b.values, unpack)?)
    };
    let system = report.provenance.source_system_id.clone();
    if let Some(earlier) = state.reports.get(&system)
        && (report.changed_at() < earlier.changed_at() || same(earlier, &report)?)
    {
        return Ok((Outcome::Unchanged, None));
    }
    // The common stream case, without merging: a relay identical to every report so far
    // leaves values, conflicts (none) and warnings as they are.
    if republish == Republish::OnContent && state.revision > 0 {
        let mut identical = true;
        for earlier in state.reports.values() {
            if !same(earlier, &report)? {
                identical = false;
                break;
            }
        }
        if identical {
            state.reports.insert(system, report);
            return Ok((Outcome::MergedDuplicate, None));
        }
    }
    let before = match state.revision > 0 {
        true => Some(merge(entity_id, &state.reports, policy, unpack)?),
        false => None,
    };
    state.reports.insert(system, report);
    let after = merge(entity_id, &state.reports, policy, unpack)?;
    let outcome = match &before {
        None => Outcome::Published,
        Some(before) => {
            let values = before.values.same(&after.values, unpack)?;
            let content =
                values && before.conflicts == after.conflicts && before.warnings == after.warnings;
            if content && before.contributions == after.contributions {
                return Ok((Outcome::Unchanged, None));
            }
            if content && republish == Republish::OnContent {
                return Ok((Outcome::MergedDuplicate, None));
            }
            if values {
                Outcome::MergedDuplicate
            } else {
                Outcome::Published
            }
        }
    };
    state.revision += 1;
    let publication = Publication {
        merged: after,
        revision: state.revision,
        updated_at: now,
    };
    Ok((outcome, Some(publication)))
}

/// A national record before its revision and time are set.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The entity id.
    pub entity_id: String,
    /// Field values chosen by survivorship.
    pub values: Values,
    /// Every report, nearest the source first.
    pub contributions: Vec<Provenance>,
    /// Fields the reports disagree on.
    pub conflicts: Vec<Conflict>,
    /// Every report's warnings, once each.
    pub warnings: Vec<String>,
}

/// A national record to publish: the merge of its entity's reports as a revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// What the reports say together.
    pub merged: Merged,
    /// The revision it is published as.
    pub revision: i64,
    /// When it was resolved.
    pub updated_at: DateTime<Utc>,
}

impl Publication {
    /// The national record's JSON form.
    pub fn into_record(self, unpack: &dyn Unpack) -> Result<Map<String, Value>, UnpackError> {
        let Merged {
            entity_id,
            values,
            contributions,
            conflicts,
            warnings,
        } = self.merged;
        let mut record = values.into_json(unpack)?;
        record.insert("entity_id".to_owned(), Value::String(entity_id));
        record.insert("contributions".to_owned(), json(&contributions));
        record.insert("conflicts".to_owned(), json(&conflicts));
        record.insert("warnings".to_owned(), json(&warnings));
        record.insert("revision".to_owned(), Value::from(self.revision));
        record.insert(
            "updated_at".to_owned(),
            Value::String(schemas::logical::format_timestamp(self.updated_at)),
        );
        Ok(record)
    }
}

/// The JSON form of provenance, conflicts and warnings, which always have one.
fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// How near the owning unit a level is: the unit itself first, the province last.
fn nearness(level: ReportingLevel) -> u8 {
    match level {
        ReportingLevel::Unit => 0,
        ReportingLevel::County => 1,
        ReportingLevel::Prefecture => 2,
        ReportingLevel::Province => 3,
    }
}

/// The national record of the reports: a pure function of the set, whatever their order.
pub fn merge(
    entity_id: &str,
    reports: &BTreeMap<String, SourceReport>,
    policy: &DomainPolicy,
    unpack: &dyn Unpack,
) -> Result<Merged, UnpackError> {
    // Nearest the source first, then by system id: the order of contributions and the final
    // tie-break of every rule.
    let mut ordered: Vec<&SourceReport> = reports.values().collect();
    ordered.sort_by(|a, b| {
        nearness(a.provenance.reporting_level)
            .cmp(&nearness(b.provenance.reporting_level))
            .then_with(|| {
                a.provenance
                    .source_system_id
                    .cmp(&b.provenance.source_system_id)
            })
    });
    let mut warnings: Vec<String> = Vec::new();
    for warning in ordered.iter().flat_map(|r| &r.warnings) {
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    let contributions = ordered.iter().map(|r| r.provenance.clone()).collect();
    // Reports that all say the same merge to what they say, without conflicts: packed values
    // equal byte for byte need no unpacking (the usual relay, and every first report).
    if let Some((Values::Packed(first), rest)) = ordered
        .split_first()
        .map(|(first, rest)| (&first.values, rest))
        && rest
            .iter()
            .all(|r| matches!(&r.values, Values::Packed(v) if v == first))
    {
        return Ok(Merged {
            entity_id: entity_id.to_owned(),
            values: Values::Packed(first.clone()),
            contributions,
            conflicts: Vec::new(),
            warnings,
        });
    }
    let forms: Vec<Cow<'_, Map<String, Value>>> = ordered
        .iter()
        .map(|r| r.values.json(unpack))
        .collect::<Result<_, _>>()?;
    let objects: Vec<(usize, &Map<String, Value>)> =
        forms.iter().map(Cow::as_ref).enumerate().collect();
    let mut merger = Merger {
        ordered: &ordered,
        policy,
        conflicts: Vec::new(),
    };
    let values = merger.object(None, &objects);
    Ok(Merged {
        entity_id: entity_id.to_owned(),
        values: Values::Json(values),
        contributions,
        conflicts: merger.conflicts,
        warnings,
    })
}

/// One merge: the reports nearest the source first, the rules, and the conflicts found.
struct Merger<'a> {
    ordered: &'a [&'a SourceReport],
    policy: &'a DomainPolicy,
    conflicts: Vec<Conflict>,
}

/// Where an object being merged sits: the top level (`None`), or one line of a keyed array
/// (`lines[ELECTRICITY]`, whose fields follow the array's rule).
#[derive(Clone, Copy)]
struct Line<'p> {
    /// The array field (`lines`).
    array: &'p str,
    /// The conflict name of the line (`lines[ELECTRICITY]`).
    name: &'p str,
}

impl Merger<'_> {
    /// Merges `objects` (index into `ordered`, the object that report holds) field by field.
    fn object(
        &mut self,
        line: Option<Line<'_>>,
        objects: &[(usize, &Map<String, Value>)],
    ) -> Map<String, Value> {
        let fields: BTreeSet<&String> = objects.iter().flat_map(|(_, o)| o.keys()).collect();
        let mut values = Map::new();
        // The report whose value won, per field, for the fields that follow another.
        let mut winners: BTreeMap<&str, Option<usize>> = BTreeMap::new();
        let (followers, leaders): (Vec<&String>, Vec<&String>) = fields
            .into_iter()
            .partition(|f| line.is_none() && self.policy.follows.contains_key(f.as_str()));
        for field in leaders {
            let key = match line {
                None => self.policy.line_keys.get(field.as_str()),
                Some(_) => None,
            };
            let keyed = key.and_then(|key| self.lines(field, key, objects));
            let value = match keyed {
                Some(lines) => lines,
                None => {
                    let (value, winner) = self.field(line, field, objects, None);
                    winners.insert(field.as_str(), winner);
                    value
                }
            };
            values.insert(field.clone(), value);
        }
        for field in followers {
            let leader = self.policy.follows[field.as_str()].as_str();
            let winner = winners.get(leader).copied();
            let (value, _) = self.field(line, field, objects, winner);
            values.insert(field.clone(), value);
        }
        values
    }

    /// The value of one field and the report it came from. `forced`: the report whose value
    /// the field takes whatever the rule says (`Some(None)`: no report, empty), for a field
    /// that follows another.
    fn field(
        &mut self,
        line: Option<Line<'_>>,
        field: &str,
        objects: &[(usize, &Map<String, Value>)],
        forced: Option<Option<usize>>,
    ) -> (Value, Option<usize>) {
        let candidates: Vec<(usize, &Value)> = objects
            .iter()
            .filter_map(|(i, o)| o.get(field).filter(|v| !v.is_null()).map(|v| (*i, v)))
            .collect();
        let (rule_field, name) = match line {
            None => (field.to_owned(), field.to_owned()),
            Some(l) => (l.array.to_owned(), format!("{}.{field}", l.name)),
        };
        let rule = self.policy.rule_for(&rule_field);
        // How a line's value was reported or converted is not compared, as inside amounts.
        let how_reported = line.is_some() && HOW_REPORTED.contains(&field);
        let compared = !how_reported
            && !self.policy.not_compared.contains(&rule_field)
            && !self
                .policy
                .not_compared
                .contains(&format!("{rule_field}.{field}"));
        let groups = agreeing(&candidates, self.policy.float_tolerance);
        let winner = match forced {
            Some(report) => report,
            None => match groups.len() {
                0 => None,
                1 => Some(candidates[0].0),
                _ => choose(rule, self.ordered, &candidates, &groups).map(|k| candidates[k].0),
            },
        };
        let value = |i: usize| {
            objects
                .iter()
                .find(|(j, _)| *j == i)
                .and_then(|(_, o)| o.get(field))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let chosen = winner.map_or(Value::Null, value);
        if compared && groups.len() > 1 {
            let values = objects.iter().map(|(i, o)| (*i, o.get(field)));
            self.conflict(name, values, &chosen, rule);
        }
        (chosen, winner)
    }

    /// A keyed array (`lines`, keyed by `carrier`) merged line by line: which lines there are
    /// is decided by the array's rule among the reports that sent lines (a line one of them
    /// lacks is a conflict on that line), and each line's fields among the reports that have
    /// it. `None` when no report sent a line: then the array is an ordinary field.
    fn lines(
        &mut self,
        field: &str,
        key: &str,
        objects: &[(usize, &Map<String, Value>)],
    ) -> Option<Value> {
        // Per report that sent lines: its lines by key, in its order.
        let sent: Vec<(usize, Vec<Keyed<'_>>)> = objects
            .iter()
            .filter_map(|(i, o)| {
                let items = o.get(field)?.as_array().filter(|a| !a.is_empty())?;
                let lines = items.iter().filter_map(Value::as_object);
                Some((*i, keyed(lines, key)))
            })
            .collect();
        if sent.is_empty() {
            return None;
        }
        let mut keys: Vec<&str> = Vec::new();
        for (_, lines) in &sent {
            for (k, _) in lines {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
        let rule = self.policy.rule_for(field);
        let mut merged = Vec::new();
        for k in keys {
            let name = format!("{field}[{k}]");
            let holding: Vec<(usize, Option<&Map<String, Value>>)> = sent
                .iter()
                .map(|(i, lines)| (*i, lines.iter().find(|(l, _)| l == k).map(|(_, m)| *m)))
                .collect();
            let present: Vec<(usize, &Map<String, Value>)> = holding
                .iter()
                .filter_map(|(i, m)| m.map(|m| (*i, m)))
                .collect();
            let line = self.object(
                Some(Line {
                    array: field,
                    name: &name,
                }),
                &present,
            );
            if present.len() < holding.len() {
                // Some reports lack the line: the rule decides among all that sent lines.
                let flags: Vec<Value> = holding
                    .iter()
                    .map(|(_, m)| Value::Bool(m.is_some()))
                    .collect();
                let candidates: Vec<(usize, &Value)> =
                    holding.iter().map(|(i, _)| *i).zip(&flags).collect();
                let groups = agreeing(&candidates, self.policy.float_tolerance);
                let kept = choose(rule, self.ordered, &candidates, &groups)
                    .is_some_and(|c| holding[c].1.is_some());
                let chosen = if kept {
                    Value::Object(line.clone())
                } else {
                    Value::Null
                };
                let lines: Vec<(usize, Option<Value>)> = holding
                    .iter()
                    .map(|(i, m)| (*i, m.map(|m| Value::Object(m.clone()))))
                    .collect();
                let values = lines.iter().map(|(i, v)| (*i, v.as_ref()));
                self.conflict(name, values, &chosen, rule);
                if !kept {
                    continue;
                }
            }
            merged.push(Value::Object(line));
        }
        Some(Value::Array(merged))
    }

    /// Records a conflict on `name`, listing each report (index into `ordered`) with its value.
    fn conflict<'v>(
        &mut self,
        name: String,
        values: impl Iterator<Item = (usize, Option<&'v Value>)>,
        chosen: &Value,
        rule: SurvivorshipRule,
    ) {
        self.conflicts.push(Conflict {
            field: name,
            values: values
                .map(|(i, v)| ConflictValue {
                    value: v.filter(|v| !v.is_null()).map(text),
                    provenance: self.ordered[i].provenance.clone(),
                })
                .collect(),
            chosen_value: (!chosen.is_null()).then(|| text(chosen)),
            rule,
        });
    }
}

/// A line with its key's text.
type Keyed<'m> = (String, &'m Map<String, Value>);

/// A report's lines by their key's text; the *n*-th line of one key in one report is
/// `KEY#n` (n ≥ 2), so lines repeated within a report stay apart.
fn keyed<'m>(lines: impl Iterator<Item = &'m Map<String, Value>>, key: &str) -> Vec<Keyed<'m>> {
    let mut out: Vec<Keyed<'m>> = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    for line in lines {
        let base = line
            .get(key)
            .filter(|v| !v.is_null())
            .map(text)
            .unwrap_or_default();
        let seen = bases.iter().filter(|b| **b == base).count();
        bases.push(base.clone());
        let k = if seen == 0 {
            base
        } else {
            format!("{base}#{}", seen + 1)
        };
        out.push((k, line));
    }
    out
}

/// The candidate chosen by `rule` among `candidates` (index into `ordered`, non-null value),
/// as a position in `candidates`; `groups` holds each candidate's group of agreeing values.
fn choose(
    rule: SurvivorshipRule,
    ordered: &[&SourceReport],
    candidates: &[(usize, &Value)],
    groups: &Groups,
) -> Option<usize> {
    // `candidates` is in `ordered` order (nearest first), so `min_by_key`/`max_by_key` ties
    // resolve deterministically: `min` keeps the first, `max` the last (over `rev()`: the
    // first).
    let report = |i: usize| ordered[i];
    let level = |k: usize| nearness(report(candidates[k].0).provenance.reporting_level);
    let changed = |k: usize| report(candidates[k].0).changed_at();
    let all = 0..candidates.len();
    match rule {
        SurvivorshipRule::OwningLevel => {
            let owning = all.clone().map(level).min()?;
            all.rev()
                .filter(|k| level(*k) == owning)
                .max_by_key(|k| changed(*k))
        }
        SurvivorshipRule::LatestSourceTimestamp => all.rev().max_by_key(|k| changed(*k)),
        SurvivorshipRule::HighestReportingLevel => all.max_by_key(|k| level(*k)),
        SurvivorshipRule::Majority => {
            let size = |k: usize| groups.of.iter().filter(|g| **g == groups.of[k]).count();
            all.rev().max_by_key(|k| size(*k))
        }
        // Nearest the source; an operator's decision and unknown rules fall back to it too.
        SurvivorshipRule::ClosestToSource
        | SurvivorshipRule::FirstNonNull
        | SurvivorshipRule::ManualOverride
        | SurvivorshipRule::Other => all.min_by_key(|k| level(*k)),
    }
}

/// Which candidates agree: `of[k]` is candidate *k*'s group, numbered in order of appearance.
struct Groups {
    of: Vec<usize>,
    count: usize,
}

impl Groups {
    fn len(&self) -> usize {
        self.count
    }
}

/// Groups candidates whose values agree ([`agree`]) with a group's first value.
fn agreeing(candidates: &[(usize, &Value)], float_tolerance: f64) -> Groups {
    let mut firsts: Vec<&Value> = Vec::new();
    let of = candidates
        .iter()
        .map(
            |(_, v)| match firsts.iter().position(|f| agree(f, v, float_tolerance)) {
                Some(g) => g,
                None => {
                    firsts.push(v);
                    firsts.len() - 1
                }
            },
        )
        .collect();
    Groups {
        of,
        count: firsts.len(),
    }
}

/// Nested fields that say how a value was reported or converted, not what it is: never
/// compared (a report in 升 carries a coefficient source with the density, one in kg none).
const HOW_REPORTED: [&str; 3] = ["raw_value", "raw_unit", "coefficient_source"];

/// Whether two reported values say the same: equal, or equal within what the reports'
/// precision allows. An amount (an object with a decimal `value`) agrees with another in the
/// same unit when they differ by less than half a unit of the last digit each report gave; an
/// amount the hub computed (no `raw_value`) follows from compared fields and is not compared
/// itself; [`HOW_REPORTED`] fields are not compared. Floating-point numbers agree within
/// `float_tolerance`.
fn agree(a: &Value, b: &Value, float_tolerance: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= float_tolerance,
                _ => x == y,
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| agree(x, y, float_tolerance))
        }
        (Value::Object(x), Value::Object(y)) => match (Amount::of(x), Amount::of(y)) {
            (Some(p), Some(q)) => {
                x.get("unit") == y.get("unit")
                    && match (p.half_ulp, q.half_ulp) {
                        (Some(hp), Some(hq)) => {
                            p.value == q.value || (p.value - q.value).abs() < hp + hq
                        }
                        _ => true,
                    }
            }
            _ => {
                let keys = |m: &Map<String, Value>| -> BTreeSet<String> {
                    m.keys()
                        .filter(|k| !HOW_REPORTED.contains(&k.as_str()))
                        .cloned()
                        .collect()
                };
                keys(x) == keys(y) && keys(x).iter().all(|k| agree(&x[k], &y[k], float_tolerance))
            }
        },
        _ => a == b,
    }
}

/// An amount as the JSON form holds it: `{"value": "12.5", "unit": …, "raw_value": …}`.
struct Amount {
    value: Decimal,
    /// Half a unit of the reported value's last digit, in the canonical unit; `None` when the
    /// hub computed the amount.
    half_ulp: Option<Decimal>,
}

impl Amount {
    fn of(object: &Map<String, Value>) -> Option<Amount> {
        let value: Decimal = object.get("value")?.as_str()?.parse().ok()?;
        // Half a unit of the reported last digit, scaled by the factor from the reported unit
        // to the canonical one — both read off the pair; zero if the text is not a number.
        let half_ulp = object.get("raw_value").and_then(Value::as_str).map(|raw| {
            raw.trim()
                .parse::<Decimal>()
                .ok()
                .map_or(Decimal::ZERO, |reported| {
                    let factor = if reported.is_zero() {
                        Decimal::ONE
                    } else {
                        (value / reported).abs()
                    };
                    Decimal::new(1, reported.scale()) * factor / Decimal::TWO
                })
        });
        Some(Amount { value, half_ulp })
    }
}

/// A value as canonical text: strings as they are, anything else as compact JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The tests' packing: values packed as JSON text, which resolution treats as opaque bytes
    /// like any codec's.
    struct JsonText;

    impl Unpack for JsonText {
        fn unpack(&self, packed: &[u8]) -> Result<Map<String, Value>, UnpackError> {
            serde_json::from_slice(packed).map_err(|e| UnpackError(e.to_string()))
        }
    }

    /// The report with its values packed.
    fn packed(mut report: SourceReport) -> SourceReport {
        if let Values::Json(map) = &report.values {
            report.values = Values::Packed(serde_json::to_vec(map).expect("JSON"));
        }
        report
    }

    /// [`super::resolve`] with the tests' packing; the published record in its JSON form.
    fn resolve(
        state: &mut EntityState,
        entity_id: &str,
        report: SourceReport,
        policy: &DomainPolicy,
        republish: Republish,
        now: DateTime<Utc>,
    ) -> (Outcome, Option<Map<String, Value>>) {
        let (outcome, published) =
            super::resolve(state, entity_id, report, policy, republish, now, &JsonText)
                .expect("values unpack");
        let record = published.map(|p| p.into_record(&JsonText).expect("record"));
        (outcome, record)
    }

    /// Reports with the outcome each must have and what else the test checks after it.
    type Steps<T> = Vec<(SourceReport, Outcome, T)>;

    /// Each case as written (values in JSON form, as states written before the packed form
    /// hold them), and again with every report's values packed, and mixed: the outcomes and
    /// the national values must not depend on the form.
    fn in_every_form<T: Clone>(cases: Vec<(&str, Steps<T>)>) -> Vec<(String, Steps<T>)> {
        let mut all = Vec::new();
        for (name, steps) in cases {
            let pack_all: Vec<_> = steps
                .iter()
                .cloned()
                .map(|(r, o, t)| (packed(r), o, t))
                .collect();
            let pack_later: Vec<_> = steps
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, (r, o, t))| (if i == 0 { r } else { packed(r) }, o, t))
                .collect();
            all.push((format!("{name} (mixed)"), pack_later));
            all.push((format!("{name} (packed)"), pack_all));
            all.push((name.to_owned(), steps));
        }
        all
    }

    /// [`super::merge`] with the tests' packing, its values in JSON form.
    #[derive(Debug, PartialEq)]
    struct JsonMerged {
        values: Map<String, Value>,
        conflicts: Vec<Conflict>,
        merged: Merged,
    }

    fn merge(
        entity_id: &str,
        reports: &BTreeMap<String, SourceReport>,
        policy: &DomainPolicy,
    ) -> JsonMerged {
        let merged = super::merge(entity_id, reports, policy, &JsonText).expect("values unpack");
        JsonMerged {
            values: merged.values.json(&JsonText).expect("unpacks").into_owned(),
            conflicts: merged.conflicts.clone(),
            merged,
        }
    }

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2025-03-01T08:{minute:02}:00Z"))
            .expect("time")
            .with_timezone(&Utc)
    }

    fn report(system: &str, level: ReportingLevel, minute: u32, values: Value) -> SourceReport {
        SourceReport {
            provenance: Provenance {
                source_system_id: system.to_owned(),
                reporting_level: level,
                reporter_region_code: "530114".to_owned(),
                source_record_id: format!("{system}-1"),
                source_timestamp: Some(at(minute)),
                received_at: at(minute + 1),
                connector_id: "c".to_owned(),
                batch_id: None,
            },
            values: Values::Json(values.as_object().expect("object").clone()),
            warnings: Vec::new(),
        }
    }

    fn registry_policy() -> DomainPolicy {
        DomainPolicy {
            rule: SurvivorshipRule::ClosestToSource,
            fields: BTreeMap::from([(
                "status".to_owned(),
                SurvivorshipRule::LatestSourceTimestamp,
            )]),
            not_compared: BTreeSet::from(["source_datum".to_owned()]),
            float_tolerance: 1e-5,
            line_keys: BTreeMap::new(),
            follows: BTreeMap::new(),
        }
    }

    use ReportingLevel::{County, Prefecture, Province};

    /// A sequence of reports with the outcome each must have and the national values after it.
    #[test]
    fn outcomes_of_report_sequences() {
        let county = |m, v: Value| report("county", County, m, v);
        let city = |m, v: Value| report("city", Prefecture, m, v);
        let province = |m, v: Value| report("province", Province, m, v);
        type Step = (SourceReport, Outcome, Value);
        let cases: Vec<(&str, Vec<Step>)> = vec![
            (
                "first report is published",
                vec![(
                    county(0, json!({"plate": "云A12345"})),
                    Outcome::Published,
                    json!({"plate": "云A12345"}),
                )],
            ),
            (
                "same levels, same values: merged duplicates",
                vec![
                    (
                        county(0, json!({"plate": "云A12345"})),
                        Outcome::Published,
                        json!({"plate": "云A12345"}),
                    ),
                    (
                        city(5, json!({"plate": "云A12345"})),
                        Outcome::MergedDuplicate,
                        json!({"plate": "云A12345"}),
                    ),
                    (
                        province(9, json!({"plate": "云A12345"})),
                        Outcome::MergedDuplicate,
                        json!({"plate": "云A12345"}),
                    ),
                ],
            ),
            (
                "a snapshot with nothing new changes nothing",
                vec![
                    (
                        county(0, json!({"plate": "云A12345"})),
                        Outcome::Published,
                        json!({"plate": "云A12345"}),
                    ),
                    (
                        county(30, json!({"plate": "云A12345"})),
                        Outcome::Unchanged,
                        json!({"plate": "云A12345"}),
                    ),
                ],
            ),
            (
                "a stale report of the same system is ignored",
                vec![
                    (
                        county(10, json!({"seats": 5})),
                        Outcome::Published,
                        json!({"seats": 5}),
                    ),
                    (
                        county(3, json!({"seats": 7})),
                        Outcome::Unchanged,
                        json!({"seats": 5}),
                    ),
                ],
            ),
            (
                "a revision supersedes the earlier report",
                vec![
                    (
                        county(0, json!({"seats": 5})),
                        Outcome::Published,
                        json!({"seats": 5}),
                    ),
                    (
                        county(20, json!({"seats": 7})),
                        Outcome::Published,
                        json!({"seats": 7}),
                    ),
                ],
            ),
            (
                "the county owns registry data: a differing province value loses",
                vec![
                    (
                        county(0, json!({"seats": 5})),
                        Outcome::Published,
                        json!({"seats": 5}),
                    ),
                    (
                        province(30, json!({"seats": 7})),
                        Outcome::MergedDuplicate,
                        json!({"seats": 5}),
                    ),
                ],
            ),
            (
                "order does not matter: the province first, then the county wins",
                vec![
                    (
                        province(30, json!({"seats": 7})),
                        Outcome::Published,
                        json!({"seats": 7}),
                    ),
                    (
                        county(0, json!({"seats": 5})),
                        Outcome::Published,
                        json!({"seats": 5}),
                    ),
                ],
            ),
            (
                "per-field rule: the newest status wins whatever the level",
                vec![
                    (
                        county(0, json!({"status": "IN_USE"})),
                        Outcome::Published,
                        json!({"status": "IN_USE"}),
                    ),
                    (
                        province(30, json!({"status": "SCRAPPED"})),
                        Outcome::Published,
                        json!({"status": "SCRAPPED"}),
                    ),
                ],
            ),
            (
                "an empty field does not erase another report's value",
                vec![
                    (
                        county(0, json!({"seats": 5, "brand_model": null})),
                        Outcome::Published,
                        json!({"seats": 5, "brand_model": null}),
                    ),
                    (
                        city(3, json!({"seats": null, "brand_model": "比亚迪秦"})),
                        Outcome::Published,
                        json!({"seats": 5, "brand_model": "比亚迪秦"}),
                    ),
                ],
            ),
        ];
        let policy = registry_policy();
        for (name, steps) in in_every_form(cases) {
            let mut state = EntityState::default();
            let mut revision = 0;
            for (i, (report, outcome, values)) in steps.into_iter().enumerate() {
                let (got, published) = resolve(
                    &mut state,
                    "E1",
                    report,
                    &policy,
                    Republish::OnProvenance,
                    at(59),
                );
                assert_eq!(got, outcome, "{name}, step {i}");
                assert_eq!(
                    published.is_some(),
                    outcome != Outcome::Unchanged,
                    "{name}, step {i}"
                );
                if let Some(record) = published {
                    revision += 1;
                    assert_eq!(record["revision"], json!(revision), "{name}, step {i}");
                    assert_eq!(record["entity_id"], json!("E1"));
                }
                let merged = merge("E1", &state.reports, &policy);
                assert_eq!(Value::Object(merged.values), values, "{name}, step {i}");
                if name.ends_with("(packed)") && outcome == Outcome::Published && i == 0 {
                    assert!(
                        matches!(merged.merged.values, Values::Packed(_)),
                        "{name}: a single report is not unpacked"
                    );
                }
            }
        }
    }

    #[test]
    fn conflicts_list_every_report_and_the_rule() {
        let mut state = EntityState::default();
        let policy = registry_policy();
        for r in [
            report(
                "province",
                Province,
                9,
                json!({"seats": 7, "plate": "云A12345"}),
            ),
            report(
                "county",
                County,
                0,
                json!({"seats": 5, "plate": "云A12345"}),
            ),
            report(
                "city",
                Prefecture,
                5,
                json!({"seats": 5, "plate": "云A12345"}),
            ),
        ] {
            resolve(
                &mut state,
                "E1",
                r,
                &policy,
                Republish::OnProvenance,
                at(59),
            );
        }
        let merged = merge("E1", &state.reports, &policy);
        let systems: Vec<&str> = merged
            .merged
            .contributions
            .iter()
            .map(|p| p.source_system_id.as_str())
            .collect();
        assert_eq!(systems, ["county", "city", "province"], "nearest first");
        assert_eq!(merged.conflicts.len(), 1, "plates agree");
        let conflict = &merged.conflicts[0];
        assert_eq!(conflict.field, "seats");
        assert_eq!(conflict.chosen_value.as_deref(), Some("5"));
        assert_eq!(conflict.rule, SurvivorshipRule::ClosestToSource);
        let values: Vec<Option<&str>> =
            conflict.values.iter().map(|v| v.value.as_deref()).collect();
        assert_eq!(values, [Some("5"), Some("5"), Some("7")]);
    }

    #[test]
    fn the_national_record_does_not_depend_on_arrival_order() {
        let reports = [
            report(
                "province",
                Province,
                9,
                json!({"seats": 7, "status": "IN_USE"}),
            ),
            report(
                "county",
                County,
                0,
                json!({"seats": 5, "status": "SCRAPPED"}),
            ),
            report("city", Prefecture, 5, json!({"seats": 6, "status": null})),
        ];
        let policy = registry_policy();
        let mut finals = Vec::new();
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
            let mut state = EntityState::default();
            for i in order {
                resolve(
                    &mut state,
                    "E1",
                    reports[i].clone(),
                    &policy,
                    Republish::OnProvenance,
                    at(59),
                );
            }
            finals.push(merge("E1", &state.reports, &policy));
        }
        assert!(finals.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(finals[0].values["seats"], json!(5));
        assert_eq!(finals[0].values["status"], json!("IN_USE"), "newest status");
    }

    /// Streams publish a point once: a later report that only adds provenance is merged into
    /// the state unpublished; one that changes the values or adds a conflict is published, and
    /// every published record is the merge of the reports it lists.
    #[test]
    fn stream_points_are_republished_only_when_their_content_changes() {
        let fix = json!({"longitude": 102.83, "latitude": 24.88, "speed_kmh": 40.0});
        let moved = json!({"longitude": 102.90, "latitude": 24.88, "speed_kmh": 40.0});
        type Step = (SourceReport, Outcome, bool);
        let cases: Vec<(&str, Vec<Step>)> = vec![
            (
                "relays of the same fix add provenance only",
                vec![
                    (
                        report("county", County, 0, fix.clone()),
                        Outcome::Published,
                        true,
                    ),
                    (
                        report("city", Prefecture, 1, fix.clone()),
                        Outcome::MergedDuplicate,
                        false,
                    ),
                    (
                        report("province", Province, 2, fix.clone()),
                        Outcome::MergedDuplicate,
                        false,
                    ),
                ],
            ),
            (
                "a relay that disagrees is a new conflict, published",
                vec![
                    (
                        report("county", County, 0, fix.clone()),
                        Outcome::Published,
                        true,
                    ),
                    (
                        report("province", Province, 2, moved.clone()),
                        Outcome::MergedDuplicate,
                        true,
                    ),
                    (
                        report("city", Prefecture, 1, fix.clone()),
                        Outcome::MergedDuplicate,
                        true,
                    ),
                ],
            ),
            (
                "the owning level arriving last changes the values",
                vec![
                    (
                        report("province", Province, 2, moved.clone()),
                        Outcome::Published,
                        true,
                    ),
                    (
                        report("county", County, 0, fix.clone()),
                        Outcome::Published,
                        true,
                    ),
                ],
            ),
        ];
        let policy = registry_policy();
        for (name, steps) in in_every_form(cases) {
            let mut state = EntityState::default();
            for (i, (report, outcome, publishes)) in steps.into_iter().enumerate() {
                let system = report.provenance.source_system_id.clone();
                let (got, published) = resolve(
                    &mut state,
                    "P1",
                    report,
                    &policy,
                    Republish::OnContent,
                    at(59),
                );
                assert_eq!(
                    (got, published.is_some()),
                    (outcome, publishes),
                    "{name}, step {i}"
                );
                assert!(
                    state.reports.contains_key(&system),
                    "{name}, step {i}: provenance kept"
                );
                if let Some(record) = published {
                    let listed = record["contributions"]
                        .as_array()
                        .expect("contributions")
                        .len();
                    assert_eq!(listed, state.reports.len(), "{name}, step {i}");
                    let merged = Publication {
                        merged: merge("P1", &state.reports, &policy).merged,
                        revision: state.revision,
                        updated_at: at(59),
                    }
                    .into_record(&JsonText)
                    .expect("record");
                    assert_eq!(
                        record, merged,
                        "{name}, step {i}: the merge of what it lists"
                    );
                }
            }
        }
    }

    /// States are stored in the binary form and read back whole, packed and JSON values
    /// alike; states in the named and JSON forms written before it still read.
    #[test]
    fn states_round_trip_in_every_form() {
        let mut state = EntityState::default();
        let policy = registry_policy();
        for r in [
            report(
                "county",
                County,
                0,
                json!({"seats": 5, "lat": 24.881, "tags": ["a", null], "n": {"x": -3}}),
            ),
            report("province", Province, 9, json!({"seats": 7, "lat": 24.881})),
            packed(report(
                "city",
                Prefecture,
                5,
                json!({"seats": 5, "lat": 24.88}),
            )),
            packed(report(
                "city-2",
                Prefecture,
                6,
                json!({"seats": 5, "lat": 24.88}),
            )),
        ] {
            resolve(
                &mut state,
                "E1",
                r,
                &policy,
                Republish::OnProvenance,
                at(59),
            );
        }
        let mut unexpiring = state.clone();
        state.expires_at = Some(1_751_241_600_000);
        let binary = state.encode();
        let relayed = serde_json::to_vec(&json!({"seats": 5, "lat": 24.88})).expect("JSON");
        assert_eq!(
            binary
                .windows(relayed.len())
                .filter(|w| *w == relayed)
                .count(),
            1,
            "values relayed by two systems are stored once"
        );
        let mut named = vec![STATE_NAMED];
        state
            .serialize(&mut rmp_serde::Serializer::new(&mut named).with_struct_map())
            .expect("named");
        let json = serde_json::to_vec(&state).expect("JSON");
        assert!(
            binary.len() < named.len() && named.len() < json.len(),
            "{} < {} < {}",
            binary.len(),
            named.len(),
            json.len()
        );
        for (form, bytes) in [("binary", &binary), ("named", &named), ("json", &json)] {
            assert_eq!(EntityState::decode(bytes).expect(form), state, "{form}");
            assert_eq!(
                EntityState::expiry(bytes).expect(form),
                state.expires_at,
                "{form}"
            );
        }
        // No expiry reads as none.
        unexpiring.expires_at = None;
        let bytes = unexpiring.encode();
        assert_eq!(EntityState::decode(&bytes).expect("decode"), unexpiring);
        assert_eq!(EntityState::expiry(&bytes).expect("expiry"), None);
        assert!(matches!(
            EntityState::decode(b"x"),
            Err(StateError::Format(b'x'))
        ));
        assert!(EntityState::decode(&binary[..binary.len() / 2]).is_err());
    }

    #[test]
    fn rules_choose_as_documented() {
        let ordered_reports = [
            report("county", County, 0, json!({"x": "a"})),
            report("city", Prefecture, 20, json!({"x": "b"})),
            report("city2", Prefecture, 5, json!({"x": "b"})),
            report("province", Province, 10, json!({"x": "c"})),
        ];
        let ordered: Vec<&SourceReport> = ordered_reports.iter().collect();
        let candidates: Vec<(usize, &Value)> = ordered
            .iter()
            .enumerate()
            .map(|(i, r)| match &r.values {
                Values::Json(values) => (i, &values["x"]),
                Values::Packed(_) => unreachable!("built in JSON form"),
            })
            .collect();
        let cases = [
            (SurvivorshipRule::ClosestToSource, "a"),
            (SurvivorshipRule::FirstNonNull, "a"),
            (SurvivorshipRule::HighestReportingLevel, "c"),
            (SurvivorshipRule::LatestSourceTimestamp, "b"),
            (SurvivorshipRule::Majority, "b"),
            (SurvivorshipRule::OwningLevel, "a"),
        ];
        for (rule, want) in cases {
            let groups = agreeing(&candidates, 0.0);
            let chosen = choose(rule, &ordered, &candidates, &groups).map(|k| candidates[k].1);
            assert_eq!(chosen, Some(&json!(want)), "{rule:?}");
        }
    }

    #[test]
    fn values_agree_within_the_reports_precision() {
        let kwh = |value: &str, raw: Option<&str>, unit: Option<&str>| json!({"value": value, "unit": "KWH", "raw_value": raw, "raw_unit": unit});
        let cases = [
            ("same text", json!("云A12345"), json!("云A12345"), true),
            (
                "different text",
                json!("云A12345"),
                json!("云A12346"),
                false,
            ),
            ("integers", json!(5), json!(5), true),
            (
                "floats within tolerance",
                json!(25.000_001),
                json!(25.000_009),
                true,
            ),
            ("floats apart", json!(25.0), json!(25.001), false),
            (
                "万千瓦时 to 4 places and kWh to the unit",
                kwh("12345.600000", Some("1.2346"), Some("万千瓦时")),
                kwh("12345.000000", Some("12345"), Some("kWh")),
                true,
            ),
            (
                "a stale amount",
                kwh("12345.600000", Some("1.2346"), Some("万千瓦时")),
                kwh("11000.000000", Some("11000"), Some("kWh")),
                false,
            ),
            (
                "exact amounts must be equal",
                kwh("12345.000000", Some("12345"), Some("kWh")),
                kwh("12346.000000", Some("12346"), Some("kWh")),
                false,
            ),
            (
                "computed amounts follow their inputs",
                kwh("100.000000", None, None),
                kwh("101.000000", None, None),
                true,
            ),
            (
                "other units never agree",
                kwh("1.000000", Some("1"), Some("kWh")),
                json!({"value": "1.000000", "unit": "KGCE", "raw_value": "1", "raw_unit": "kgce"}),
                false,
            ),
            (
                "arrays element by element",
                json!([{"carrier": "ELECTRICITY", "amount": kwh("12345.600000", Some("1.2346"), Some("万千瓦时"))}]),
                json!([{"carrier": "ELECTRICITY", "amount": kwh("12345.000000", Some("12345"), Some("kWh"))}]),
                true,
            ),
            ("arrays of other lengths", json!([1, 2]), json!([1]), false),
        ];
        for (name, a, b, want) in cases {
            assert_eq!(agree(&a, &b, 1e-5), want, "{name}");
            assert_eq!(agree(&b, &a, 1e-5), want, "{name}, reversed");
        }
    }

    /// The shipped rules' national record of `reports`: its values and the conflicts' fields.
    fn shipped(domain: Domain, reports: Vec<SourceReport>) -> (Value, Vec<String>) {
        let policy = SurvivorshipPolicy::shipped();
        let reports: BTreeMap<String, SourceReport> = reports
            .into_iter()
            .map(|r| (r.provenance.source_system_id.clone(), r))
            .collect();
        let merged = merge("E1", &reports, policy.for_domain(domain));
        let fields = merged.conflicts.iter().map(|c| c.field.clone()).collect();
        (Value::Object(merged.values), fields)
    }

    /// Item 4: the owning level — the lowest level that reported a value — wins; the newest
    /// report decides only within that level; upper levels that differ are conflicts.
    #[test]
    fn the_owning_level_wins() {
        let county = |m, v: Value| report("county", County, m, v);
        let county2 = |m, v: Value| report("county-2", County, m, v);
        let city = |m, v: Value| report("city", Prefecture, m, v);
        let province = |m, v: Value| report("province", Province, m, v);
        let s = |v: &str| json!({"status": v});
        type Case = (
            &'static str,
            Domain,
            Vec<SourceReport>,
            Value,
            &'static [&'static str],
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("a province copy synced later with older content loses", Domain::Vehicle, vec![county(0, s("DISPOSED")), province(30, s("IN_USE"))], s("DISPOSED"), &["status"]),
            ("the city owns what no county reported", Domain::Vehicle, vec![city(0, s("IDLE")), province(30, s("IN_USE"))], s("IDLE"), &["status"]),
            ("within the owning level the newest wins", Domain::Vehicle, vec![county(5, s("IN_USE")), county2(20, s("IDLE")), province(30, s("DISPOSED"))], s("IDLE"), &["status"]),
            ("upper levels agreeing with each other still lose", Domain::Vehicle, vec![county(0, json!({"seats": 5})), city(10, json!({"seats": 7})), province(20, json!({"seats": 7}))], json!({"seats": 5}), &["seats"]),
            ("an upper level fills in what the owner left empty", Domain::Vehicle, vec![county(0, json!({"seats": null})), province(30, json!({"seats": 7}))], json!({"seats": 7}), &[]),
            ("a statistical report: the county's over a stale province revision", Domain::VehicleQuota, vec![county(0, json!({"actual": 12})), province(40, json!({"actual": 11}))], json!({"actual": 12}), &["actual"]),
            ("institutions too", Domain::Institution, vec![county(0, json!({"actual_staff": 40})), city(9, json!({"actual_staff": 38}))], json!({"actual_staff": 40}), &["actual_staff"]),
            ("GPS points keep the nearest platform", Domain::VehiclePosition, vec![county(0, json!({"speed_kmh": 40.0})), province(0, json!({"speed_kmh": 41.0}))], json!({"speed_kmh": 40.0}), &["speed_kmh"]),
        ];
        for (name, domain, reports, values, conflicts) in cases {
            assert_eq!(
                shipped(domain, reports),
                (values, conflicts.iter().map(|c| c.to_string()).collect()),
                "{name}"
            );
        }
    }

    /// Item 5: arrays keyed by their lines' natural key are merged line by line, and a
    /// disagreement is recorded on the line.
    #[test]
    fn conflicts_are_recorded_on_the_line() {
        let county = |v: Value| report("county", County, 0, v);
        let province = |v: Value| report("province", Province, 30, v);
        let kwh = |value: &str| json!({"value": format!("{value}.000000"), "unit": "KWH", "raw_value": value, "raw_unit": "kWh"});
        let line = |carrier: &str, value: &str| json!({"carrier": carrier, "amount": kwh(value)});
        let lines = |l: Vec<Value>| json!({"lines": l});
        let cost = |item: &str, reported: &str, yuan: &str| json!({"item": item, "reported_item": reported, "amount": {"value": format!("{yuan}.00"), "raw_value": yuan, "raw_unit": "元"}});
        let items = |l: Vec<Value>| json!({"items": l});
        let room = |number: &str, area: &str| json!({"room_number": number, "usable_area": {"value": format!("{area}.00"), "unit": "M2", "raw_value": area, "raw_unit": "m2"}});
        let rooms = |l: Vec<Value>| json!({"rooms": l});
        let (energy, cost_domain, building) = (
            Domain::EnergyReport,
            Domain::OperatingCost,
            Domain::OfficeBuilding,
        );
        type Case = (
            &'static str,
            Domain,
            Vec<SourceReport>,
            Value,
            &'static [&'static str],
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("lines that agree", energy, vec![county(lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")])), province(lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")]))], lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")]), &[]),
            ("one carrier differs: the conflict names its line", energy, vec![county(lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")])), province(lines(vec![line("ELECTRICITY", "96"), line("HEAT", "5")]))], lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")]), &["lines[ELECTRICITY].amount"]),
            ("lines in another order agree", energy, vec![county(lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")])), province(lines(vec![line("HEAT", "5"), line("ELECTRICITY", "100")]))], lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")]), &[]),
            ("a line the province lacks is kept, a conflict on the line", energy, vec![county(lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")])), province(lines(vec![line("ELECTRICITY", "100")]))], lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")]), &["lines[HEAT]"]),
            ("a line only the province has is left out, a conflict on the line", energy, vec![county(lines(vec![line("ELECTRICITY", "100")])), province(lines(vec![line("ELECTRICITY", "100"), line("HEAT", "5")]))], lines(vec![line("ELECTRICITY", "100")]), &["lines[HEAT]"]),
            ("a report without lines does not erase them", energy, vec![county(lines(vec![])), province(lines(vec![line("ELECTRICITY", "96")]))], lines(vec![line("ELECTRICITY", "96")]), &[]),
            ("one cost item differs", cost_domain, vec![county(items(vec![cost("TRAVEL", "差旅费", "800"), cost("TRAINING", "培训费", "200")])), province(items(vec![cost("TRAVEL", "差旅费", "800"), cost("TRAINING", "培训费", "150")]))], items(vec![cost("TRAVEL", "差旅费", "800"), cost("TRAINING", "培训费", "200")]), &["items[TRAINING].amount"]),
            ("two local items of one national item stay apart", cost_domain, vec![county(items(vec![cost("OFFICE_AND_PRINTING", "办公费", "100"), cost("OFFICE_AND_PRINTING", "印刷费", "50")])), province(items(vec![cost("OFFICE_AND_PRINTING", "办公费", "100"), cost("OFFICE_AND_PRINTING", "印刷费", "60")]))], items(vec![cost("OFFICE_AND_PRINTING", "办公费", "100"), cost("OFFICE_AND_PRINTING", "印刷费", "50")]), &["items[OFFICE_AND_PRINTING#2].amount"]),
            ("one room's area differs", building, vec![county(rooms(vec![room("301", "18"), room("302", "12")])), province(rooms(vec![room("301", "18"), room("302", "14")]))], rooms(vec![room("301", "18"), room("302", "12")]), &["rooms[302].usable_area"]),
            ("how a line was converted is not compared", energy, vec![county(lines(vec![json!({"carrier": "GASOLINE", "amount": {"value": "73.000000", "unit": "KG", "raw_value": "100", "raw_unit": "升"}, "coefficient_source": "GB/T 2589-2020 附录A；0.73 kg/L"})])), province(lines(vec![json!({"carrier": "GASOLINE", "amount": {"value": "73.000000", "unit": "KG", "raw_value": "73", "raw_unit": "kg"}, "coefficient_source": "GB/T 2589-2020 附录A"})]))], lines(vec![json!({"carrier": "GASOLINE", "amount": {"value": "73.000000", "unit": "KG", "raw_value": "100", "raw_unit": "升"}, "coefficient_source": "GB/T 2589-2020 附录A；0.73 kg/L"})]), &[]),
            ("arrays without a key are compared whole", energy, vec![county(json!({"tags": [1, 2]})), province(json!({"tags": [1, 3]}))], json!({"tags": [1, 2]}), &["tags"]),
        ];
        for (name, domain, reports, values, conflicts) in cases {
            assert_eq!(
                shipped(domain, reports),
                (values, conflicts.iter().map(|c| c.to_string()).collect()),
                "{name}"
            );
        }
    }

    /// Item 6: an unknown status label (OTHER with its text in `reported_status`) takes part
    /// in conflict detection, and its text goes with the status that won.
    #[test]
    fn unknown_labels_take_part_in_conflicts() {
        let county = |v: Value| report("county", County, 0, v);
        let province = |v: Value| report("province", Province, 30, v);
        let s = |status: &str, raw: Option<&str>| json!({"status": status, "reported_status": raw});
        type Case = (
            &'static str,
            Vec<SourceReport>,
            Value,
            &'static [&'static str],
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("a known label against an unknown one: the owner's, without the other's text", vec![county(s("IDLE", None)), province(s("OTHER", Some("停驶维修")))], s("IDLE", None), &["status"]),
            ("the owner's unknown label is kept with its text", vec![county(s("OTHER", Some("停驶维修"))), province(s("IDLE", None))], s("OTHER", Some("停驶维修")), &["status"]),
            ("two unknown labels differ: a conflict on the text", vec![county(s("OTHER", Some("停驶维修"))), province(s("OTHER", Some("调拨中")))], s("OTHER", Some("停驶维修")), &["reported_status"]),
            ("the same unknown label twice agrees", vec![county(s("OTHER", Some("停驶维修"))), province(s("OTHER", Some("停驶维修")))], s("OTHER", Some("停驶维修")), &[]),
            ("no status at the owner: the province's, with its text", vec![county(json!({"status": null, "reported_status": null})), province(s("OTHER", Some("停驶维修")))], s("OTHER", Some("停驶维修")), &[]),
        ];
        for (name, reports, values, conflicts) in cases {
            assert_eq!(
                shipped(Domain::Vehicle, reports),
                (values, conflicts.iter().map(|c| c.to_string()).collect()),
                "{name}"
            );
        }
    }

    #[test]
    fn a_field_of_the_lines_can_be_left_uncompared() {
        let line = |cost: &str| json!({"carrier": "HEAT", "cost": cost});
        let reports = BTreeMap::from([
            (
                "county".to_owned(),
                report("county", County, 0, json!({"lines": [line("5")], "x": 1})),
            ),
            (
                "city".to_owned(),
                report("city", Prefecture, 5, json!({"lines": [line("6")], "x": 2})),
            ),
        ]);
        let mut policy = SurvivorshipPolicy::shipped()
            .for_domain(Domain::EnergyReport)
            .clone();
        policy.not_compared = BTreeSet::from(["lines.cost".to_owned()]);
        let merged = merge("E1", &reports, &policy);
        let fields: Vec<&str> = merged.conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["x"]);
        assert_eq!(merged.values["lines"], json!([line("5")]));
    }

    #[test]
    fn a_line_conflict_lists_every_report_of_the_array() {
        let line = |v: &str| json!({"carrier": "HEAT", "amount": {"value": format!("{v}.000000"), "unit": "GJ", "raw_value": v, "raw_unit": "GJ"}});
        let reports = BTreeMap::from([
            (
                "county".to_owned(),
                report("county", County, 0, json!({"lines": []})),
            ),
            (
                "city".to_owned(),
                report("city", Prefecture, 5, json!({"lines": [line("5")]})),
            ),
            (
                "province".to_owned(),
                report("province", Province, 9, json!({"lines": [line("6")]})),
            ),
        ]);
        let policy = SurvivorshipPolicy::shipped();
        let merged = merge("E1", &reports, policy.for_domain(Domain::EnergyReport));
        let conflict = &merged.conflicts[0];
        assert_eq!(conflict.field, "lines[HEAT].amount");
        assert_eq!(conflict.rule, SurvivorshipRule::OwningLevel);
        let systems: Vec<&str> = conflict
            .values
            .iter()
            .map(|v| v.provenance.source_system_id.as_str())
            .collect();
        assert_eq!(
            systems,
            ["city", "province"],
            "the reports holding the line"
        );
        assert_eq!(
            conflict.chosen_value.as_deref(),
            Some(text(&line("5")["amount"]).as_str())
        );
    }

    #[test]
    fn report_fields_are_not_conflicts() {
        let mut state = EntityState::default();
        let policy = registry_policy();
        for r in [
            report(
                "county",
                County,
                0,
                json!({"latitude": 25.000_001, "source_datum": "WGS84"}),
            ),
            report(
                "city",
                Prefecture,
                5,
                json!({"latitude": 25.000_008, "source_datum": "GCJ02"}),
            ),
        ] {
            resolve(
                &mut state,
                "E1",
                r,
                &policy,
                Republish::OnProvenance,
                at(59),
            );
        }
        let merged = merge("E1", &state.reports, &policy);
        assert!(merged.conflicts.is_empty(), "{:?}", merged.conflicts);
        assert_eq!(
            merged.values["source_datum"],
            json!("WGS84"),
            "nearest the source"
        );
        assert_eq!(merged.values["latitude"], json!(25.000_001));
    }

    #[test]
    fn reports_split_from_single_report_records() {
        let values = json!({
            "entity_id": "E1",
            "seats": 5,
            "contributions": [],
            "conflicts": [],
            "warnings": [],
            "revision": 0,
            "updated_at": "2025-03-01T08:00:00.000Z",
        });
        let values = values.as_object().expect("object");
        let provenance = report("county", County, 0, json!({})).provenance;
        let warnings = vec!["PLATE_DOT: 号牌含分隔点".to_owned()];
        let split =
            SourceReport::from_parts(Values::Json(values.clone()), vec![provenance], warnings)
                .expect("one contribution");
        assert_eq!(
            split.values,
            Values::Json(json!({"seats": 5}).as_object().expect("object").clone())
        );
        assert_eq!(split.warnings, ["PLATE_DOT: 号牌含分隔点"]);
        assert_eq!(split.provenance.source_system_id, "county");
        assert!(SourceReport::from_parts(Values::Json(values.clone()), vec![], vec![]).is_none());
    }

    #[test]
    fn shipped_policy_parses() {
        let policy = SurvivorshipPolicy::shipped();
        for domain in Domain::ALL {
            let want = match domain {
                Domain::VehiclePosition => SurvivorshipRule::ClosestToSource,
                _ => SurvivorshipRule::OwningLevel,
            };
            assert_eq!(policy.for_domain(domain).rule, want, "{domain}");
            assert!(policy.for_domain(domain).fields.is_empty(), "{domain}");
        }
        let energy = policy.for_domain(Domain::EnergyReport);
        assert_eq!(energy.line_keys["lines"], "carrier");
    }
}
