//! Table-driven checks of the typed records against the composed schemas and the fixtures in
//! `schemas/fixtures/<full name>/{valid,invalid}/*.json`.
//!
//! - Every valid fixture is the canonical JSON form of its record: it deserialises, serialises
//!   back to the same JSON (so a misspelt field cannot hide), survives an Avro round trip through
//!   [`encode_datum`]/[`decode_datum`] and apache-avro's generic `from_value` path, and the
//!   per-message [`Encoder`] (serde_avro_fast) writes the very same bytes, which its reader
//!   reads back.
//! - Every invalid fixture carries `_why` (what is wrong) and `_expect` (a fragment of the error)
//!   and fails either JSON deserialisation or Avro encoding with that error; the [`Encoder`]
//!   refuses it too.
//! - Every field of every schema maps to its Rust type: a datum with every optional field set
//!   decodes and re-encodes to the same Avro value, through both libraries.
//! - Every named type and field in every composed schema has an English doc with the Chinese
//!   term beside it.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as AvroValue;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Schema, from_value};
use serde_json::Value;

use super::*;
use crate::codec::tests::read_current;
use crate::codec::{Encoder, decode_datum, encode_datum};
use crate::contract::{self, Record, SchemaName};

/// Checks one schema's fixtures and returns the failures, one line each.
type Check = fn() -> Vec<String>;

fn case<T: Record + PartialEq + Debug>() -> (SchemaName, Check, Check, Check) {
    (
        T::SCHEMA,
        check_fixtures::<T>,
        check_every_field::<T>,
        check_older_versions::<T>,
    )
}

/// Every top-level record type, with its checks.
fn cases() -> Vec<(SchemaName, Check, Check, Check)> {
    vec![
        case::<RawInstitution>(),
        case::<NationalInstitution>(),
        case::<RawVehicle>(),
        case::<NationalVehicle>(),
        case::<RawVehiclePosition>(),
        case::<NationalVehiclePosition>(),
        case::<RawVehicleQuota>(),
        case::<NationalVehicleQuota>(),
        case::<RawOfficeBuilding>(),
        case::<NationalOfficeBuilding>(),
        case::<RawEnergyReport>(),
        case::<NationalEnergyReport>(),
        case::<RawAssetCard>(),
        case::<NationalAssetCard>(),
        case::<RawOperatingCost>(),
        case::<NationalOperatingCost>(),
        case::<Quarantine>(),
        case::<CatalogueEntry>(),
    ]
}

#[test]
fn every_schema_has_one_record_type() {
    let mut covered: Vec<SchemaName> = cases().into_iter().map(|(name, _, _, _)| name).collect();
    covered.sort();
    let mut all = SchemaName::all();
    all.sort();
    assert_eq!(covered, all);
}

#[test]
fn fixtures_round_trip_and_invalid_fixtures_fail() {
    let failures: Vec<String> = cases()
        .into_iter()
        .flat_map(|(_, fixtures, _, _)| fixtures())
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn older_versions_decode_with_the_newest_reader() {
    let failures: Vec<String> = cases()
        .into_iter()
        .flat_map(|(_, _, _, older)| older())
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Reads data written with every shipped version of `T`'s schema (`schemas/history/`) and with
/// a reduced version lacking every field that has a default (what an older writer had), through
/// the reader [`crate::codec::Decoder`] builds for a writer schema id.
fn check_older_versions<T: Record + PartialEq + Debug>() -> Vec<String> {
    let name = T::SCHEMA.full_name();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("history")
        .join(&name);
    let mut writers: Vec<(String, String)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "avsc"))
                .map(|p| {
                    let text = std::fs::read_to_string(&p).expect("history file");
                    (p.display().to_string(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut failures = Vec::new();
    if writers.is_empty() {
        failures.push(format!("{name}: no shipped version in {}", dir.display()));
    }
    writers.push((
        format!("{name} without defaulted fields"),
        crate::codec::tests::without_defaulted_fields(contract::schema_json(T::SCHEMA)),
    ));
    for (label, text) in writers {
        if let Err(e) = crate::codec::tests::read_through_decoder::<T>(&text) {
            failures.push(format!("{label}: {e}"));
        }
    }
    failures
}

#[test]
fn every_schema_field_maps_to_the_record_type() {
    let failures: Vec<String> = cases()
        .into_iter()
        .flat_map(|(_, _, every_field, _)| every_field())
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn fixture_files(name: SchemaName, kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name.full_name())
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn check_fixtures<T: Record + PartialEq + Debug>() -> Vec<String> {
    let schema = contract::schema(T::SCHEMA);
    let mut failures = Vec::new();
    let valid = fixture_files(T::SCHEMA, "valid");
    let invalid = fixture_files(T::SCHEMA, "invalid");
    if valid.len() < 2 || invalid.len() < 2 {
        failures.push(format!(
            "{}: needs at least 2 valid and 2 invalid fixtures, has {} and {}",
            T::SCHEMA.full_name(),
            valid.len(),
            invalid.len()
        ));
    }
    for path in valid {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        let result = (|| -> Result<(), String> {
            let fixture: Value =
                serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
            let record: T =
                serde_json::from_str(&text).map_err(|e| format!("JSON → record: {e}"))?;
            let canonical =
                serde_json::to_value(&record).map_err(|e| format!("record → JSON: {e}"))?;
            covers(&canonical, &fixture, "$")?;
            let datum = encode_datum(schema, &record).map_err(|e| format!("encode: {e}"))?;
            let back: T = decode_datum(schema, &datum).map_err(|e| format!("decode: {e}"))?;
            if back != record {
                return Err(format!("decoded differs:\n{back:#?}\n!=\n{record:#?}"));
            }
            let value = read_value(schema, &datum).map_err(|e| format!("generic decode: {e}"))?;
            let generic: T = from_value(&value).map_err(|e| format!("from_value: {e}"))?;
            if generic != record {
                return Err(format!(
                    "from_value differs:\n{generic:#?}\n!=\n{record:#?}"
                ));
            }
            same_through_codec(&record, &datum)
        })();
        if let Err(e) = result {
            failures.push(format!("{label}: {}", shorten(&e)));
        }
    }
    for path in invalid {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        let fixture: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{label}: invalid fixtures must still be JSON: {e}"));
                continue;
            }
        };
        let note = |key: &str| {
            fixture
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (why, expect) = (note("_why"), note("_expect"));
        if why.is_empty() || expect.is_empty() {
            failures.push(format!(
                "{label}: needs non-empty `_why` and `_expect` strings"
            ));
            continue;
        }
        let error = match serde_json::from_value::<T>(fixture) {
            Err(e) => e.to_string(),
            Ok(record) => match encode_datum(schema, &record) {
                Err(e) if encoder::<T>().encode(&record).is_ok() => {
                    failures.push(format!(
                        "{label}: the encoder accepts what apache-avro refuses ({e})"
                    ));
                    continue;
                }
                Err(e) => e.to_string(),
                Ok(_) => {
                    failures.push(format!("{label}: accepted, but {why}"));
                    continue;
                }
            },
        };
        if !error.contains(&expect) {
            failures.push(format!(
                "{label}: expected an error containing `{expect}`, got `{error}`"
            ));
        }
    }
    failures
}

/// Whether every member the fixture writes is in the canonical form with the same value; members
/// the fixture leaves out must be null or empty arrays (their Avro defaults).
fn covers(canonical: &Value, fixture: &Value, path: &str) -> Result<(), String> {
    match (canonical, fixture) {
        (Value::Object(c), Value::Object(f)) => {
            if let Some(unknown) = f.keys().find(|k| !c.contains_key(*k)) {
                return Err(format!("{path}.{unknown}: no such field"));
            }
            for (key, value) in c {
                let here = format!("{path}.{key}");
                match f.get(key) {
                    Some(fv) => covers(value, fv, &here)?,
                    None if value.is_null() || value.as_array().is_some_and(Vec::is_empty) => {}
                    None => return Err(format!("{here}: left out but not defaulted ({value})")),
                }
            }
            Ok(())
        }
        (Value::Array(c), Value::Array(f)) if c.len() == f.len() => c
            .iter()
            .zip(f)
            .enumerate()
            .try_for_each(|(i, (cv, fv))| covers(cv, fv, &format!("{path}[{i}]"))),
        _ if canonical == fixture => Ok(()),
        _ => Err(format!(
            "{path}: fixture has {fixture}, canonical form is {canonical}"
        )),
    }
}

fn check_every_field<T: Record + PartialEq + Debug>() -> Vec<String> {
    let schema = contract::schema(T::SCHEMA);
    let name = T::SCHEMA.full_name();
    let result = (|| -> Result<(), String> {
        let full = crate::codec::tests::sample(schema);
        let datum = GenericDatumWriter::builder(schema)
            .build()
            .and_then(|w| w.write_value_to_vec(full))
            .map_err(|e| format!("sample: {e}"))?;
        let record: T = decode_datum(schema, &datum).map_err(|e| format!("decode: {e}"))?;
        let again = encode_datum(schema, &record).map_err(|e| format!("re-encode: {e}"))?;
        let original = read_value(schema, &datum)?;
        let rewritten = read_value(schema, &again)?;
        if original != rewritten {
            return Err(format!(
                "re-encoded value differs:\n{rewritten:?}\n!=\n{original:?}"
            ));
        }
        same_through_codec(&record, &again)
    })();
    result
        .err()
        .map(|e| format!("{name}: {}", shorten(&e)))
        .into_iter()
        .collect()
}

fn encoder<T: Record>() -> Encoder<T> {
    Encoder::with_schema_id(1).expect("encoder for the contract schema")
}

/// Whether the per-message codec writes exactly `datum` (apache-avro's bytes) for `record` and
/// reads `datum` back as `record`.
fn same_through_codec<T: Record + PartialEq + Debug>(
    record: &T,
    datum: &[u8],
) -> Result<(), String> {
    let framed = encoder::<T>()
        .encode(record)
        .map_err(|e| format!("encoder: {e}"))?;
    if framed[5..] != *datum {
        return Err(format!(
            "the encoder's bytes differ from apache-avro's:\n{:?}\n!=\n{datum:?}",
            &framed[5..]
        ));
    }
    let read: T = read_current(datum).map_err(|e| format!("reader: {e}"))?;
    if read != *record {
        return Err(format!("the reader differs:\n{read:#?}\n!=\n{record:#?}"));
    }
    Ok(())
}

/// Reads a datum as a generic Avro value, the path the codec takes for older writer schemas.
fn read_value(schema: &Schema, mut datum: &[u8]) -> Result<AvroValue, String> {
    GenericDatumReader::builder(schema)
        .human_readable(false)
        .build()
        .and_then(|r| r.read_value(&mut datum))
        .map_err(|e| e.to_string())
}

#[test]
fn every_named_type_and_field_has_a_bilingual_doc() {
    let mut failures = Vec::new();
    for name in SchemaName::all() {
        let json: Value = serde_json::from_str(contract::schema_json(name)).expect("schema JSON");
        walk_docs(&json, &name.full_name(), &mut failures);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn walk_docs(json: &Value, path: &str, failures: &mut Vec<String>) {
    match json {
        Value::Object(obj) => {
            let named = matches!(
                obj.get("type").and_then(Value::as_str),
                Some("record" | "enum" | "fixed")
            );
            let is_field = obj.contains_key("name") && !named && obj.contains_key("type");
            let here = match obj.get("name").and_then(Value::as_str) {
                Some(n) => format!("{path}/{n}"),
                None => path.to_owned(),
            };
            if named || is_field {
                let doc = obj.get("doc").and_then(Value::as_str).unwrap_or("");
                let has_chinese = doc.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c));
                let has_english = doc.chars().filter(char::is_ascii_alphabetic).count() >= 3;
                if !(has_chinese && has_english) {
                    failures.push(format!(
                        "{here}: doc must be English with the Chinese term: `{doc}`"
                    ));
                }
            }
            for (key, value) in obj {
                if key != "default" {
                    walk_docs(value, &here, failures);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk_docs(v, path, failures)),
        _ => {}
    }
}

#[test]
fn domain_conversions_are_inverse() {
    for domain in crate::Domain::ALL {
        assert_eq!(crate::Domain::from(DataDomain::from(domain)), domain);
    }
}

/// Avro errors embed the whole schema; keep failure lists readable.
fn shorten(error: &str) -> String {
    const LIMIT: usize = 2000;
    match error.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}… ({} chars)", &error[..cut], error.chars().count()),
        None => error.to_owned(),
    }
}
