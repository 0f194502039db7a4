//! The evolution guard: every schema must read data written with each of its earlier versions
//! (BACKWARD_TRANSITIVE), so consumers and the hub can always read a topic from its start.
//!
//! Earlier versions come from two places: the git history of `schemas/avro/` (every commit that
//! touched it) and the shipped texts kept in `schemas/history/<full name>/*.avsc`.

use std::collections::BTreeMap;
use std::fmt;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;

/// One earlier version that the current schema cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The schema's full name.
    pub schema: String,
    /// Where the earlier version comes from (a commit or a history file).
    pub earlier: String,
    /// Why the current schema cannot read it; names the field.
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cannot read its version from {}: {}",
            self.schema, self.earlier, self.reason
        )
    }
}

/// A set of composed schema texts by full name, labelled with where it comes from.
pub type Snapshot = (String, BTreeMap<String, String>);

/// Checks that every current schema can read every earlier version of itself, and that no
/// shipped schema disappeared.
pub fn check(current: &BTreeMap<String, String>, earlier: &[Snapshot]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (label, schemas) in earlier {
        for (name, old_text) in schemas {
            let violation = |reason: String| Violation {
                schema: name.clone(),
                earlier: label.clone(),
                reason,
            };
            let Some(new_text) = current.get(name) else {
                violations.push(violation("the schema was removed".to_owned()));
                continue;
            };
            if let Some(reason) = incompatibility(old_text, new_text) {
                violations.push(violation(reason));
            }
        }
    }
    violations
}

/// Why a reader with `new_text` cannot read data written with `old_text`, if it cannot.
fn incompatibility(old_text: &str, new_text: &str) -> Option<String> {
    let old = match Schema::parse_str(old_text) {
        Ok(s) => s,
        Err(e) => return Some(format!("the earlier version does not parse: {e}")),
    };
    let new = match Schema::parse_str(new_text) {
        Ok(s) => s,
        Err(e) => return Some(format!("the current version does not parse: {e}")),
    };
    if old.canonical_form() == new.canonical_form() {
        return None;
    }
    if let Err(e) = SchemaCompatibility::can_read(&old, &new) {
        return Some(error_chain(&e));
    }
    lost_symbols(&old, &new)
}

/// An enum that lost symbols without a `default` to read them as. apache-avro accepts a
/// reader enum that shares only some of the writer's symbols ("partial" compatibility), but
/// such a reader fails on the data holding the others; the Avro specification asks for a
/// default then.
fn lost_symbols(old: &Schema, new: &Schema) -> Option<String> {
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    enums(old, &mut before);
    enums(new, &mut after);
    after.into_iter().find_map(|(name, reader)| {
        let writer = before.get(&name)?;
        let lost: Vec<&str> = writer
            .symbols
            .iter()
            .filter(|s| !reader.symbols.contains(s))
            .map(String::as_str)
            .collect();
        (!lost.is_empty() && reader.default.is_none()).then(|| {
            format!(
                "enum {name} lost symbols {} and has no default to read them as",
                lost.join(", ")
            )
        })
    })
}

/// Every enum defined in `schema`, by full name.
fn enums<'s>(schema: &'s Schema, out: &mut BTreeMap<String, &'s apache_avro::schema::EnumSchema>) {
    match schema {
        Schema::Enum(e) => {
            out.insert(e.name.fullname(None), e);
        }
        Schema::Record(r) => r.fields.iter().for_each(|f| enums(&f.schema, out)),
        Schema::Array(a) => enums(&a.items, out),
        Schema::Map(m) => enums(&m.types, out),
        Schema::Union(u) => u.variants().iter().for_each(|v| enums(v, out)),
        _ => {}
    }
}

/// An error with all its causes, outermost first: Avro names the field in the outer error and
/// the type problem in the inner ones.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::contract;

    fn record(fields: &str) -> String {
        format!(r#"{{"type":"record","name":"T","namespace":"t","fields":[{fields}]}}"#)
    }

    #[test]
    fn table() {
        let base = record(r#"{"name":"a","type":"string"}"#);
        let cases = [
            ("same", base.clone(), None),
            (
                "field added with default",
                record(
                    r#"{"name":"a","type":"string"},{"name":"b","type":["null","int"],"default":null}"#,
                ),
                None,
            ),
            (
                "field added without default",
                record(r#"{"name":"a","type":"string"},{"name":"b","type":"int"}"#),
                Some("Field 'b' in reader schema must have a default value"),
            ),
            (
                "field type changed",
                record(r#"{"name":"a","type":"int"}"#),
                Some("Field 'a' in reader schema does not match the type in the writer schema"),
            ),
            (
                "field removed",
                record(r#"{"name":"z","type":["null","int"],"default":null}"#),
                None,
            ),
        ];
        for (label, new, expected) in cases {
            let current = BTreeMap::from([("t.T".to_owned(), new)]);
            let earlier = [(
                "v1".to_owned(),
                BTreeMap::from([("t.T".to_owned(), base.clone())]),
            )];
            let violations = check(&current, &earlier);
            match expected {
                None => assert!(violations.is_empty(), "{label}: {violations:?}"),
                Some(fragment) => {
                    assert_eq!(violations.len(), 1, "{label}");
                    assert!(
                        violations[0].reason.contains(fragment),
                        "{label}: {}",
                        violations[0]
                    );
                }
            }
        }
        let gone = check(
            &BTreeMap::new(),
            &[(
                "v1".to_owned(),
                BTreeMap::from([("t.T".to_owned(), base.clone())]),
            )],
        );
        assert_eq!(gone[0].reason, "the schema was removed");
    }

    /// Enum evolution, as `huitong.common.SurvivorshipRule` gaining `OWNING_LEVEL`: a new
    /// symbol at the end is BACKWARD compatible (old data holds only old symbols; readers of
    /// the old schema map the new one to its `default`); a symbol dropped is not, unless the
    /// reader has a default.
    #[test]
    fn enum_symbols() {
        let rule = |symbols: &str, default: &str| {
            record(&format!(
                r#"{{"name":"rule","type":{{"type":"enum","name":"R","symbols":[{symbols}]{default}}}}}"#
            ))
        };
        let base = rule(r#""A","OTHER""#, r#","default":"OTHER""#);
        let cases = [
            (
                "symbol added at the end",
                rule(r#""A","OTHER","B""#, r#","default":"OTHER""#),
                true,
            ),
            (
                "symbol added without a default",
                rule(r#""A","OTHER","B""#, ""),
                true,
            ),
            (
                "symbol removed, reader default",
                rule(r#""OTHER""#, r#","default":"OTHER""#),
                true,
            ),
            ("symbol removed, no default", rule(r#""OTHER""#, ""), false),
        ];
        for (label, new, compatible) in cases {
            let current = BTreeMap::from([("t.T".to_owned(), new)]);
            let earlier = [(
                "v1".to_owned(),
                BTreeMap::from([("t.T".to_owned(), base.clone())]),
            )];
            assert_eq!(check(&current, &earlier).is_empty(), compatible, "{label}");
        }
    }

    fn git(repo: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .expect("running git: the evolution guard reads schema history from git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("git output is UTF-8")
    }

    /// Every commit that touched `schemas/avro/`, composed as it was then.
    fn git_snapshots(repo: &Path) -> Vec<Snapshot> {
        let commits = git(repo, &["log", "--format=%H", "--", "schemas/avro"]);
        commits
            .lines()
            .map(|commit| {
                let paths = git(
                    repo,
                    &["ls-tree", "-r", "--name-only", commit, "--", "schemas/avro"],
                );
                let files: Vec<(String, String)> = paths
                    .lines()
                    .filter(|p| p.ends_with(".avsc"))
                    .map(|p| {
                        let text = git(repo, &["show", &format!("{commit}:{p}")]);
                        (p.trim_start_matches("schemas/avro/").to_owned(), text)
                    })
                    .collect();
                let composed =
                    contract::compose(files.iter().map(|(p, t)| (p.as_str(), t.as_str())))
                        .unwrap_or_else(|e| {
                            panic!("schemas at commit {commit} do not compose: {e}")
                        });
                (format!("commit {}", &commit[..12]), composed)
            })
            .collect()
    }

    /// The shipped texts in `schemas/history/<full name>/*.avsc`.
    pub(crate) fn history_snapshots(dir: &Path) -> Vec<Snapshot> {
        let Ok(schemas) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut snapshots = Vec::new();
        for schema_dir in schemas.flatten() {
            let name = schema_dir.file_name().to_string_lossy().into_owned();
            let mut versions: Vec<PathBuf> = std::fs::read_dir(schema_dir.path())
                .expect("reading a history folder")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "avsc"))
                .collect();
            versions.sort();
            for path in versions {
                let text = std::fs::read_to_string(&path).expect("reading a history file");
                snapshots.push((
                    format!(
                        "schemas/history/{name}/{}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    BTreeMap::from([(name.clone(), text)]),
                ));
            }
        }
        snapshots
    }

    #[test]
    fn current_schemas_read_every_earlier_version() {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let current = contract::compose(contract::AVRO_FILES.iter().copied())
            .expect("the current contract composes");
        let mut earlier = git_snapshots(crate_dir.parent().expect("workspace root"));
        earlier.extend(history_snapshots(&crate_dir.join("history")));
        let violations = check(&current, &earlier);
        assert!(
            violations.is_empty(),
            "incompatible schema changes (BACKWARD_TRANSITIVE):\n{}",
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
