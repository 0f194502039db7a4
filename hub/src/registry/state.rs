//! The registry's in-memory state: a pure function of the storage topic's latest record per
//! key, built by applying records in log order. Reads are answered from it; writes are decided
//! on it (see `writer.rs`).
//!
//! **Invariant:** two replicas that applied the same log prefix hold equal states, and a
//! replica reading a compacted log holds the same state as one that saw every record before
//! compaction. Hence nothing here depends on superseded records except `max_id`, which the
//! `MAX_ID` record keeps (see `record.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::RegistryError;
use super::avro::{self, ParsedSchema};
use super::compat::{self, CompatibilityLevel, Earlier};
use super::record::{self, DecodeError, Key, LogRecord};

/// Highest id and version the API can express (Confluent uses Java `int`).
pub(crate) const MAX_NUMBER: u32 = i32::MAX as u32;

/// One version of a subject.
#[derive(Debug, Clone)]
struct VersionEntry {
    id: u32,
    text: Arc<str>,
    deleted: bool,
    /// Offset of the record that last wrote this key; picks which text an id answers with.
    offset: i64,
}

/// One schema id, shared by every subject version registered with an equal schema.
#[derive(Debug)]
struct IdEntry {
    form: String,
    schema: Arc<ParsedSchema>,
    /// The subject versions with this id (live or soft-deleted).
    refs: BTreeSet<(String, u32)>,
}

/// A version as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaVersion {
    /// The subject.
    pub subject: String,
    /// The version within the subject.
    pub version: u32,
    /// The global schema id.
    pub id: u32,
    /// The schema text as registered.
    pub schema: String,
    /// Whether the version is soft-deleted.
    pub deleted: bool,
}

/// Which version of a subject a request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    /// The highest version (`latest` or `-1`).
    Latest,
    /// A version number.
    Number(u32),
}

impl VersionSelector {
    /// Parses a path segment: `latest`, `-1` or a number in `[1, 2^31-1]`.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let invalid = || RegistryError::InvalidVersion {
            version: text.to_owned(),
        };
        if text.eq_ignore_ascii_case("latest") || text == "-1" {
            return Ok(VersionSelector::Latest);
        }
        match text.parse::<u32>() {
            Ok(n) if (1..=MAX_NUMBER).contains(&n) => Ok(VersionSelector::Number(n)),
            _ => Err(invalid()),
        }
    }

    fn describe(self) -> String {
        match self {
            VersionSelector::Latest => "latest".to_owned(),
            VersionSelector::Number(n) => n.to_string(),
        }
    }
}

/// A copy of what the registry holds, for comparing replicas (tests, diagnostics).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrySnapshot {
    /// Every subject with its versions (soft-deleted included), in version order.
    pub subjects: BTreeMap<String, Vec<SnapshotVersion>>,
    /// The global compatibility level, when set.
    pub global_level: Option<CompatibilityLevel>,
    /// Subject-level compatibility levels.
    pub subject_levels: BTreeMap<String, CompatibilityLevel>,
    /// The highest id ever assigned.
    pub max_id: u32,
}

/// One version in a [`RegistrySnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotVersion {
    /// The version number.
    pub version: u32,
    /// The schema id.
    pub id: u32,
    /// Whether it is soft-deleted.
    pub deleted: bool,
}

/// What applying one record did, for metrics and logs.
#[derive(Debug)]
pub(crate) enum RecordOutcome {
    /// The record changed (or confirmed) the state.
    Applied,
    /// A key type the registry does not use.
    Ignored,
    /// The record is malformed; the state is unchanged.
    Skipped(String),
}

/// A write the registry can perform.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Register {
        subject: String,
        schema: Arc<ParsedSchema>,
    },
    SetLevel {
        subject: Option<String>,
        level: CompatibilityLevel,
    },
    ClearLevel {
        subject: Option<String>,
    },
    DeleteVersion {
        subject: String,
        version: VersionSelector,
        permanent: bool,
    },
    DeleteSubject {
        subject: String,
        permanent: bool,
    },
}

impl Op {
    /// A bounded name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Register { .. } => "register",
            Op::SetLevel { .. } => "set_level",
            Op::ClearLevel { .. } => "clear_level",
            Op::DeleteVersion { .. } => "delete_version",
            Op::DeleteSubject { .. } => "delete_subject",
        }
    }
}

/// The result of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The schema's id in the subject (new or existing) and its version.
    Registered { id: u32, version: u32 },
    /// The level now set.
    Level(CompatibilityLevel),
    /// The level that was cleared (the effective level before).
    LevelCleared(CompatibilityLevel),
    /// The deleted version.
    VersionDeleted(u32),
    /// The deleted versions.
    SubjectDeleted(Vec<u32>),
}

/// What a write needs, decided on the current state.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Nothing to write: the state already says this.
    Done(Outcome),
    /// Write these records in one transaction; then the outcome holds.
    Write(Vec<LogRecord>, Outcome),
}

/// The registry's state.
#[derive(Debug, Default)]
pub(crate) struct State {
    subjects: BTreeMap<String, BTreeMap<u32, VersionEntry>>,
    ids: BTreeMap<u32, IdEntry>,
    /// Normalized form → ids with that form (one, unless the log was written inconsistently).
    by_form: BTreeMap<String, BTreeSet<u32>>,
    max_id: u32,
    global_level: Option<CompatibilityLevel>,
    subject_levels: BTreeMap<String, CompatibilityLevel>,
}

impl State {
    // ---- applying records ----

    /// Applies the record at `offset`; `value` `None` is a tombstone.
    pub fn apply(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) -> RecordOutcome {
        match self.try_apply(offset, key, value) {
            Ok(true) => RecordOutcome::Applied,
            Ok(false) => RecordOutcome::Ignored,
            Err(e) => RecordOutcome::Skipped(e.to_string()),
        }
    }

    fn try_apply(
        &mut self,
        offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<bool, DecodeError> {
        let Some(key) = Key::decode(key)? else {
            return Ok(false);
        };
        match (key, value) {
            (Key::Schema { subject, version }, Some(bytes)) => {
                let value = record::decode_schema_value(&subject, version, bytes)?;
                self.put_version(offset, value)?;
            }
            (Key::Schema { subject, version }, None) => self.remove_version(&subject, version),
            (Key::Config { subject }, Some(bytes)) => {
                let level = record::decode_config_value(bytes)?;
                match subject {
                    Some(subject) => {
                        self.subject_levels.insert(subject, level);
                    }
                    None => self.global_level = Some(level),
                }
            }
            (Key::Config { subject }, None) => match subject {
                Some(subject) => {
                    self.subject_levels.remove(&subject);
                }
                None => self.global_level = None,
            },
            (Key::MaxId, Some(bytes)) => {
                let max_id = record::decode_max_id_value(bytes)?;
                self.max_id = self.max_id.max(max_id);
            }
            (Key::MaxId, None) => {}
        }
        Ok(true)
    }

    fn put_version(&mut self, offset: i64, value: record::SchemaValue) -> Result<(), DecodeError> {
        if value.id == 0 || value.id > MAX_NUMBER || value.version == 0 {
            return Err(DecodeError::Value(format!(
                "id {} or version {} out of range",
                value.id, value.version
            )));
        }
        // Parse only schemas with an id not seen yet: an id's schema never changes. Parse
        // before changing anything, so a bad record leaves the state as it was.
        let new_id = if self.ids.contains_key(&value.id) {
            None
        } else {
            let parsed = avro::parse(&value.schema, value.schema_type.as_deref())
                .map_err(DecodeError::Value)?;
            Some(IdEntry {
                form: parsed.form.clone(),
                schema: Arc::new(parsed),
                refs: BTreeSet::new(),
            })
        };
        let entry = VersionEntry {
            id: value.id,
            text: Arc::from(value.schema.as_str()),
            deleted: value.deleted,
            offset,
        };
        let previous = self
            .subjects
            .entry(value.subject.clone())
            .or_default()
            .insert(value.version, entry);
        if let Some(previous) = previous
            && previous.id != value.id
        {
            self.unref(previous.id, &value.subject, value.version);
        }
        if let Some(new_id) = new_id {
            self.ids.insert(value.id, new_id);
        }
        let Some(id_entry) = self.ids.get_mut(&value.id) else {
            return Ok(());
        };
        id_entry.refs.insert((value.subject, value.version));
        let form = id_entry.form.clone();
        self.by_form.entry(form).or_default().insert(value.id);
        self.max_id = self.max_id.max(value.id);
        Ok(())
    }

    fn remove_version(&mut self, subject: &str, version: u32) {
        let Some(versions) = self.subjects.get_mut(subject) else {
            return;
        };
        let Some(removed) = versions.remove(&version) else {
            return;
        };
        if versions.is_empty() {
            self.subjects.remove(subject);
        }
        self.unref(removed.id, subject, version);
    }

    fn unref(&mut self, id: u32, subject: &str, version: u32) {
        let Some(entry) = self.ids.get_mut(&id) else {
            return;
        };
        entry.refs.remove(&(subject.to_owned(), version));
        if entry.refs.is_empty()
            && let Some(entry) = self.ids.remove(&id)
            && let Some(ids) = self.by_form.get_mut(&entry.form)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_form.remove(&entry.form);
            }
        }
    }

    // ---- reads ----

    /// Number of schema ids in use.
    pub fn schema_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of subjects with a live version.
    pub fn live_subject_count(&self) -> usize {
        self.subjects
            .values()
            .filter(|versions| versions.values().any(|v| !v.deleted))
            .count()
    }

    /// Subjects with a live version (or any version with `deleted`), sorted.
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, versions)| deleted || versions.values().any(|v| !v.deleted))
            .map(|(subject, _)| subject.clone())
            .collect()
    }

    fn versions_of(
        &self,
        subject: &str,
        deleted: bool,
    ) -> Result<impl DoubleEndedIterator<Item = (u32, &VersionEntry)>, RegistryError> {
        let not_found = || RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        };
        let versions = self.subjects.get(subject).ok_or_else(not_found)?;
        if !deleted && versions.values().all(|v| v.deleted) {
            return Err(not_found());
        }
        Ok(versions
            .iter()
            .filter(move |(_, v)| deleted || !v.deleted)
            .map(|(n, v)| (*n, v)))
    }

    /// The subject's version numbers, ascending.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<u32>, RegistryError> {
        Ok(self
            .versions_of(subject, deleted)?
            .map(|(n, _)| n)
            .collect())
    }

    /// One version of a subject.
    pub fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        deleted: bool,
    ) -> Result<SchemaVersion, RegistryError> {
        let mut versions = self.versions_of(subject, deleted)?;
        let found = match selector {
            VersionSelector::Latest => versions.next_back(),
            VersionSelector::Number(n) => versions.find(|(v, _)| *v == n),
        };
        let (version, entry) = found.ok_or_else(|| RegistryError::VersionNotFound {
            version: selector.describe(),
        })?;
        Ok(SchemaVersion {
            subject: subject.to_owned(),
            version,
            id: entry.id,
            schema: entry.text.to_string(),
            deleted: entry.deleted,
        })
    }

    /// The text of schema `id`: the text of its subject version written earliest in the log
    /// (a choice that survives compaction: it depends on the latest record per key only).
    pub fn schema_by_id(&self, id: u32) -> Option<String> {
        let entry = self.ids.get(&id)?;
        entry
            .refs
            .iter()
            .filter_map(|(subject, version)| self.subjects.get(subject)?.get(version))
            .min_by_key(|v| v.offset)
            .map(|v| v.text.to_string())
    }

    /// The subject versions using schema `id`.
    pub fn id_versions(&self, id: u32, deleted: bool) -> Option<Vec<(String, u32)>> {
        let entry = self.ids.get(&id)?;
        Some(
            entry
                .refs
                .iter()
                .filter(|(subject, version)| {
                    deleted
                        || self
                            .subjects
                            .get(subject)
                            .and_then(|versions| versions.get(version))
                            .is_some_and(|v| !v.deleted)
                })
                .cloned()
                .collect(),
        )
    }

    /// The version of `subject` whose schema equals `schema` (the highest such version).
    pub fn lookup(
        &self,
        subject: &str,
        schema: &ParsedSchema,
        deleted: bool,
    ) -> Result<SchemaVersion, RegistryError> {
        let mut versions = self.versions_of(subject, deleted)?;
        let found = versions.rfind(|(_, entry)| {
            self.ids
                .get(&entry.id)
                .is_some_and(|id| id.form == schema.form)
        });
        let (version, entry) = found.ok_or(RegistryError::SchemaNotFound { id: None })?;
        Ok(SchemaVersion {
            subject: subject.to_owned(),
            version,
            id: entry.id,
            schema: entry.text.to_string(),
            deleted: entry.deleted,
        })
    }

    /// The global level as configured (default when unset).
    pub fn global_level(&self, default: CompatibilityLevel) -> CompatibilityLevel {
        self.global_level.unwrap_or(default)
    }

    /// The subject's own level, if it has one.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subject_levels.get(subject).copied()
    }

    /// The level that applies to `subject`.
    pub fn effective_level(
        &self,
        subject: &str,
        default: CompatibilityLevel,
    ) -> CompatibilityLevel {
        self.subject_level(subject)
            .unwrap_or_else(|| self.global_level(default))
    }

    /// Compatibility of `candidate` with `subject`: against one version (`Number`), or, for
    /// `None`/`Latest`, against what registering would check. Missing subject or version
    /// behave like Confluent: `Number` → 40402; otherwise nothing to check against.
    pub fn check_compatibility(
        &self,
        subject: &str,
        selector: Option<VersionSelector>,
        candidate: &ParsedSchema,
        default: CompatibilityLevel,
    ) -> Result<Vec<String>, RegistryError> {
        let level = self.effective_level(subject, default);
        let earlier = match selector {
            Some(VersionSelector::Number(n)) => {
                let version = self
                    .version(subject, VersionSelector::Number(n), false)
                    .map_err(|_| RegistryError::VersionNotFound {
                        version: n.to_string(),
                    })?;
                vec![(version.version, version.id)]
            }
            Some(VersionSelector::Latest) => self
                .live_versions(subject)
                .last()
                .copied()
                .into_iter()
                .collect(),
            None => self.live_versions(subject),
        };
        Ok(self.check_against(level, candidate, &earlier))
    }

    /// `(version, id)` of the subject's live versions, ascending.
    fn live_versions(&self, subject: &str) -> Vec<(u32, u32)> {
        self.subjects
            .get(subject)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|(_, v)| !v.deleted)
                    .map(|(n, v)| (*n, v.id))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn check_against(
        &self,
        level: CompatibilityLevel,
        candidate: &ParsedSchema,
        earlier: &[(u32, u32)],
    ) -> Vec<String> {
        if level == CompatibilityLevel::None {
            return Vec::new();
        }
        let earlier: Vec<Earlier<'_>> = earlier
            .iter()
            .filter_map(|(version, id)| {
                Some(Earlier {
                    version: *version,
                    schema: &self.ids.get(id)?.schema.resolved,
                })
            })
            .collect();
        compat::check(level, &candidate.resolved, &earlier)
    }

    /// A copy for comparisons.
    pub fn snapshot(&self) -> RegistrySnapshot {
        RegistrySnapshot {
            subjects: self
                .subjects
                .iter()
                .map(|(subject, versions)| {
                    let versions = versions
                        .iter()
                        .map(|(n, v)| SnapshotVersion {
                            version: *n,
                            id: v.id,
                            deleted: v.deleted,
                        })
                        .collect();
                    (subject.clone(), versions)
                })
                .collect(),
            global_level: self.global_level,
            subject_levels: self.subject_levels.clone(),
            max_id: self.max_id,
        }
    }

    // ---- deciding writes ----

    /// What `op` needs on this state. `retry` is set when an earlier attempt of the same
    /// operation may have committed: an effect already present then counts as done.
    pub fn decide(
        &self,
        op: &Op,
        default: CompatibilityLevel,
        retry: bool,
    ) -> Result<Decision, RegistryError> {
        match op {
            Op::Register { subject, schema } => self.decide_register(subject, schema, default),
            Op::SetLevel { subject, level } => {
                let current = match subject {
                    Some(subject) => self.subject_level(subject),
                    None => self.global_level,
                };
                if current == Some(*level) {
                    return Ok(Decision::Done(Outcome::Level(*level)));
                }
                Ok(Decision::Write(
                    vec![record::config_record(subject.as_deref(), Some(*level))],
                    Outcome::Level(*level),
                ))
            }
            Op::ClearLevel { subject } => {
                let current = match subject {
                    Some(subject) => self.subject_level(subject),
                    None => self.global_level,
                };
                match (current, subject) {
                    (Some(level), _) => Ok(Decision::Write(
                        vec![record::config_record(subject.as_deref(), None)],
                        Outcome::LevelCleared(level),
                    )),
                    (None, None) => Ok(Decision::Done(Outcome::LevelCleared(default))),
                    (None, Some(subject)) => {
                        Err(RegistryError::SubjectCompatibilityNotConfigured {
                            subject: subject.clone(),
                        })
                    }
                }
            }
            Op::DeleteVersion {
                subject,
                version,
                permanent,
            } => self.decide_delete_version(subject, *version, *permanent, retry),
            Op::DeleteSubject { subject, permanent } => {
                self.decide_delete_subject(subject, *permanent, retry)
            }
        }
    }

    fn decide_register(
        &self,
        subject: &str,
        schema: &Arc<ParsedSchema>,
        default: CompatibilityLevel,
    ) -> Result<Decision, RegistryError> {
        let versions = self.subjects.get(subject);
        // Already a live version of this subject: its id, no write.
        if let Some(versions) = versions
            && let Some((version, entry)) = versions.iter().rev().find(|(_, v)| {
                !v.deleted && self.ids.get(&v.id).is_some_and(|id| id.form == schema.form)
            })
        {
            return Ok(Decision::Done(Outcome::Registered {
                id: entry.id,
                version: *version,
            }));
        }

        let level = self.effective_level(subject, default);
        let messages = self.check_against(level, schema, &self.live_versions(subject));
        if !messages.is_empty() {
            return Err(RegistryError::IncompatibleSchema {
                subject: subject.to_owned(),
                messages,
            });
        }

        // An equal schema elsewhere keeps its id; otherwise the next id ever.
        let existing = self
            .by_form
            .get(&schema.form)
            .and_then(|ids| ids.first().copied());
        let id = match existing {
            Some(id) => id,
            None if self.max_id < MAX_NUMBER => self.max_id + 1,
            None => {
                return Err(RegistryError::Store {
                    reason: "schema ids are exhausted".to_owned(),
                });
            }
        };
        let latest = versions
            .and_then(|versions| versions.keys().next_back().copied())
            .unwrap_or(0);
        if latest >= MAX_NUMBER {
            return Err(RegistryError::Store {
                reason: format!("subject '{subject}' has no version numbers left"),
            });
        }
        let version = latest + 1;
        Ok(Decision::Write(
            vec![record::schema_record(
                subject,
                version,
                id,
                &schema.text,
                false,
            )],
            Outcome::Registered { id, version },
        ))
    }

    fn decide_delete_version(
        &self,
        subject: &str,
        selector: VersionSelector,
        permanent: bool,
        retry: bool,
    ) -> Result<Decision, RegistryError> {
        let versions =
            self.subjects
                .get(subject)
                .ok_or_else(|| RegistryError::SubjectNotFound {
                    subject: subject.to_owned(),
                })?;
        let found = match selector {
            // Soft delete means the latest live version; a permanent delete may name a
            // soft-deleted one.
            VersionSelector::Latest if permanent => versions.iter().next_back(),
            VersionSelector::Latest => versions.iter().rev().find(|(_, v)| !v.deleted),
            VersionSelector::Number(n) => versions.get_key_value(&n),
        };
        let Some((&version, entry)) = found else {
            if retry
                && permanent
                && let VersionSelector::Number(n) = selector
            {
                return Ok(Decision::Done(Outcome::VersionDeleted(n)));
            }
            return Err(RegistryError::VersionNotFound {
                version: selector.describe(),
            });
        };
        match (permanent, entry.deleted) {
            (false, false) => Ok(Decision::Write(
                vec![record::schema_record(
                    subject,
                    version,
                    entry.id,
                    &entry.text,
                    true,
                )],
                Outcome::VersionDeleted(version),
            )),
            (false, true) if retry => Ok(Decision::Done(Outcome::VersionDeleted(version))),
            (false, true) => Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_owned(),
                version,
            }),
            (true, false) => Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_owned(),
                version,
            }),
            (true, true) => Ok(Decision::Write(
                vec![
                    record::schema_tombstone(subject, version),
                    record::max_id_record(self.max_id),
                ],
                Outcome::VersionDeleted(version),
            )),
        }
    }

    fn decide_delete_subject(
        &self,
        subject: &str,
        permanent: bool,
        retry: bool,
    ) -> Result<Decision, RegistryError> {
        let not_found = || RegistryError::SubjectNotFound {
            subject: subject.to_owned(),
        };
        let Some(versions) = self.subjects.get(subject) else {
            if retry && permanent {
                return Ok(Decision::Done(Outcome::SubjectDeleted(Vec::new())));
            }
            return Err(not_found());
        };
        let live: Vec<(u32, &VersionEntry)> = versions
            .iter()
            .filter(|(_, v)| !v.deleted)
            .map(|(n, v)| (*n, v))
            .collect();
        if permanent {
            if !live.is_empty() {
                return Err(RegistryError::SubjectNotSoftDeleted {
                    subject: subject.to_owned(),
                });
            }
            let mut records: Vec<LogRecord> = versions
                .keys()
                .map(|version| record::schema_tombstone(subject, *version))
                .collect();
            if self.subject_levels.contains_key(subject) {
                records.push(record::config_record(Some(subject), None));
            }
            records.push(record::max_id_record(self.max_id));
            return Ok(Decision::Write(
                records,
                Outcome::SubjectDeleted(versions.keys().copied().collect()),
            ));
        }
        if live.is_empty() {
            if retry {
                return Ok(Decision::Done(Outcome::SubjectDeleted(
                    versions.keys().copied().collect(),
                )));
            }
            return Err(RegistryError::SubjectSoftDeleted {
                subject: subject.to_owned(),
            });
        }
        let records = live
            .iter()
            .map(|(version, v)| record::schema_record(subject, *version, v.id, &v.text, true))
            .collect();
        Ok(Decision::Write(
            records,
            Outcome::SubjectDeleted(live.iter().map(|(n, _)| *n).collect()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}"#;
    const V3_BAD: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;

    fn parsed(text: &str) -> Arc<ParsedSchema> {
        Arc::new(avro::parse(text, None).unwrap())
    }

    /// Applies decisions as the reader would after a commit; returns the outcome.
    struct Log {
        state: State,
        offset: i64,
    }

    impl Log {
        fn new() -> Self {
            Log {
                state: State::default(),
                offset: 0,
            }
        }

        /// Runs `op`; errors become their Confluent code.
        fn run(&mut self, op: Op) -> Result<Outcome, u32> {
            let decision = self
                .state
                .decide(&op, CompatibilityLevel::default(), false)
                .map_err(|e| e.error_code())?;
            match decision {
                Decision::Done(outcome) => Ok(outcome),
                Decision::Write(records, outcome) => {
                    for r in records {
                        let applied = self.state.apply(self.offset, &r.key, r.value.as_deref());
                        assert!(matches!(applied, RecordOutcome::Applied), "{applied:?}");
                        self.offset += 1;
                    }
                    Ok(outcome)
                }
            }
        }

        fn register(&mut self, subject: &str, text: &str) -> Result<Outcome, u32> {
            self.run(Op::Register {
                subject: subject.to_owned(),
                schema: parsed(text),
            })
        }
    }

    #[test]
    fn ids_versions_and_reuse() {
        let mut log = Log::new();
        let r = |id, version| Ok(Outcome::Registered { id, version });
        assert_eq!(log.register("a", V1), r(1, 1));
        assert_eq!(log.register("a", V1), r(1, 1));
        assert_eq!(log.register("b", V1), r(1, 1));
        assert_eq!(log.register("a", V2), r(2, 2));
        assert_eq!(log.register("a", V3_BAD), Err(409));
        assert_eq!(log.state.versions("a", false).unwrap(), vec![1, 2]);
        assert_eq!(
            log.state.id_versions(1, false).unwrap(),
            vec![("a".to_owned(), 1), ("b".to_owned(), 1)]
        );
        assert_eq!(log.state.schema_by_id(2).as_deref(), Some(V2));
    }

    #[test]
    fn deletes_keep_ids_and_survive_compaction() {
        let mut log = Log::new();
        log.register("a", V1).unwrap();
        log.register("a", V2).unwrap();
        let delete = |version, permanent| Op::DeleteVersion {
            subject: "a".into(),
            version: VersionSelector::Number(version),
            permanent,
        };
        assert_eq!(log.run(delete(2, true)), Err(40407));
        assert_eq!(log.run(delete(2, false)), Ok(Outcome::VersionDeleted(2)));
        assert_eq!(log.run(delete(2, false)), Err(40406));
        // Soft-deleted: still readable by id, gone from the listing.
        assert_eq!(log.state.versions("a", false).unwrap(), vec![1]);
        assert!(log.state.schema_by_id(2).is_some());
        assert_eq!(log.run(delete(2, true)), Ok(Outcome::VersionDeleted(2)));
        assert!(log.state.schema_by_id(2).is_none());
        assert_eq!(log.state.versions("a", true).unwrap(), vec![1]);

        // A new schema never gets the hard-deleted id 2, even on a fresh state that only
        // sees the MAX_ID record (what compaction leaves).
        let mut fresh = State::default();
        fresh.apply(
            0,
            &record::max_id_record(2).key,
            record::max_id_record(2).value.as_deref(),
        );
        assert_eq!(fresh.max_id, 2);
        let third = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"c","type":"int","default":0}]}"#;
        assert_eq!(
            log.register("a", third),
            Ok(Outcome::Registered { id: 3, version: 2 })
        );

        let subject = |permanent| Op::DeleteSubject {
            subject: "a".into(),
            permanent,
        };
        assert_eq!(log.run(subject(true)), Err(40405));
        assert_eq!(
            log.run(subject(false)),
            Ok(Outcome::SubjectDeleted(vec![1, 2]))
        );
        assert_eq!(log.run(subject(false)), Err(40404));
        assert_eq!(log.state.subjects(false), Vec::<String>::new());
        assert_eq!(log.state.subjects(true), vec!["a".to_owned()]);
        assert_eq!(
            log.run(subject(true)),
            Ok(Outcome::SubjectDeleted(vec![1, 2]))
        );
        assert_eq!(log.run(subject(false)), Err(40401));
    }

    #[test]
    fn levels_and_none_lets_anything_in() {
        let mut log = Log::new();
        log.register("a", V1).unwrap();
        assert_eq!(
            log.run(Op::SetLevel {
                subject: Some("a".into()),
                level: CompatibilityLevel::None,
            }),
            Ok(Outcome::Level(CompatibilityLevel::None))
        );
        assert!(log.register("a", V3_BAD).is_ok());
        assert_eq!(
            log.run(Op::ClearLevel {
                subject: Some("a".into())
            }),
            Ok(Outcome::LevelCleared(CompatibilityLevel::None))
        );
        assert_eq!(
            log.run(Op::ClearLevel {
                subject: Some("a".into())
            }),
            Err(40408)
        );
        assert_eq!(
            log.state
                .effective_level("a", CompatibilityLevel::default()),
            CompatibilityLevel::BackwardTransitive
        );
    }

    #[test]
    fn malformed_records_are_skipped_without_changing_state() {
        let mut state = State::default();
        let cases: [(&[u8], Option<&[u8]>); 4] = [
            (b"garbage", Some(b"{}")),
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
                Some(br#"{"subject":"s","version":1,"id":1,"schema":"{nope"}"#),
            ),
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
                Some(br#"{"subject":"s","version":1,"id":0,"schema":"\"int\""}"#),
            ),
            (
                br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
                Some(b"[]"),
            ),
        ];
        for (key, value) in cases {
            assert!(matches!(
                state.apply(0, key, value),
                RecordOutcome::Skipped(_)
            ));
        }
        assert_eq!(state.snapshot(), RegistrySnapshot::default());
        assert!(matches!(
            state.apply(0, br#"{"keytype":"NOOP","magic":0}"#, None),
            RecordOutcome::Ignored
        ));
    }

    #[test]
    fn version_selectors() {
        assert_eq!(
            VersionSelector::parse("latest").unwrap(),
            VersionSelector::Latest
        );
        assert_eq!(
            VersionSelector::parse("-1").unwrap(),
            VersionSelector::Latest
        );
        assert_eq!(
            VersionSelector::parse("7").unwrap(),
            VersionSelector::Number(7)
        );
        for bad in ["0", "-2", "x", "2147483648", ""] {
            assert_eq!(
                VersionSelector::parse(bad).unwrap_err().error_code(),
                42202,
                "{bad}"
            );
        }
    }
}
