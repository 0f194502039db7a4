//! The Avro contract: which schema each topic carries, and the self-contained schema text that
//! is registered for it.
//!
//! Schema files live in `schemas/avro/`, one named type per file (`<full name>.avsc`). Shared
//! types (`avro/common/`) are written once and referenced by full name; [`compose`] inlines each
//! referenced definition at its first use, so every registered schema stands alone — readers
//! such as kcat's libserdes or fastavro need no schema references.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use apache_avro::Schema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Domain, topics};

include!(concat!(env!("OUT_DIR"), "/avro_files.rs"));

/// A top-level schema of the contract: what one topic's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaName {
    /// A domain's raw form: what a region reported, mapped to our field names.
    Raw(Domain),
    /// A domain's national form: canonical units and codes, one record per entity.
    National(Domain),
    /// A record that failed a check, with the reason.
    Quarantine,
    /// An entry of the shared data-resource catalogue (政务信息资源目录).
    CatalogueEntry,
}

impl SchemaName {
    /// Every top-level schema.
    pub fn all() -> Vec<SchemaName> {
        Domain::ALL
            .into_iter()
            .flat_map(|d| [SchemaName::Raw(d), SchemaName::National(d)])
            .chain([SchemaName::Quarantine, SchemaName::CatalogueEntry])
            .collect()
    }

    /// The Avro full name, e.g. `huitong.raw.VehiclePosition`.
    pub fn full_name(self) -> String {
        match self {
            SchemaName::Raw(d) => format!("huitong.raw.{}", type_name(d)),
            SchemaName::National(d) => format!("huitong.national.{}", type_name(d)),
            SchemaName::Quarantine => "huitong.hub.Quarantine".to_owned(),
            SchemaName::CatalogueEntry => "huitong.catalogue.CatalogueEntry".to_owned(),
        }
    }

    /// The topic whose values use this schema.
    pub fn topic(self) -> String {
        match self {
            SchemaName::Raw(d) => topics::raw(d),
            SchemaName::National(d) => topics::national(d),
            SchemaName::Quarantine => topics::QUARANTINE.to_owned(),
            SchemaName::CatalogueEntry => topics::CATALOGUE.to_owned(),
        }
    }

    /// The registry subject under Confluent's TopicNameStrategy: `<topic>-value`.
    pub fn subject(self) -> String {
        format!("{}-value", self.topic())
    }
}

/// The Avro record name of a domain's types.
const fn type_name(domain: Domain) -> &'static str {
    match domain {
        Domain::Institution => "Institution",
        Domain::Vehicle => "Vehicle",
        Domain::VehiclePosition => "VehiclePosition",
        Domain::VehicleQuota => "VehicleQuota",
        Domain::OfficeBuilding => "OfficeBuilding",
        Domain::EnergyReport => "EnergyReport",
        Domain::AssetCard => "AssetCard",
        Domain::OperatingCost => "OperatingCost",
    }
}

/// A Rust type that is one of the contract's top-level records.
pub trait Record: Serialize + DeserializeOwned {
    /// The schema the type is written with.
    const SCHEMA: SchemaName;
}

/// Errors in the schema files themselves: these are bugs in the contract, caught by tests.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A file is not JSON.
    #[error("{file}: not JSON: {source}")]
    Json {
        /// The schema file.
        file: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A file does not define a named type.
    #[error("{file}: a schema file must define one named type (record, enum or fixed)")]
    Unnamed {
        /// The schema file.
        file: String,
    },
    /// A type is referenced but defined nowhere.
    #[error("{schema}: unknown type `{name}`")]
    UnknownType {
        /// The top-level schema being composed.
        schema: String,
        /// The missing type's full name.
        name: String,
    },
    /// Two files define the same type.
    #[error("type `{name}` is defined twice")]
    Duplicate {
        /// The duplicated full name.
        name: String,
    },
    /// The composed schema is not valid Avro.
    #[error("{schema}: invalid Avro: {source}")]
    Avro {
        /// The top-level schema.
        schema: String,
        /// Avro's complaint.
        source: Box<apache_avro::Error>,
    },
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Composes every top-level schema (files outside `common/`) of a set of schema files into its
/// self-contained JSON text, keyed by full name. Pure: used for the embedded files and for
/// earlier versions read from git history.
pub fn compose<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<BTreeMap<String, String>, ContractError> {
    let mut types: HashMap<String, Value> = HashMap::new();
    let mut top_level = Vec::new();
    for (path, text) in files {
        let json: Value = serde_json::from_str(text).map_err(|source| ContractError::Json {
            file: path.to_owned(),
            source,
        })?;
        let name = defined_name(&json, None).ok_or_else(|| ContractError::Unnamed {
            file: path.to_owned(),
        })?;
        if !path.starts_with("common/") {
            top_level.push(name.clone());
        }
        if types.insert(name.clone(), json).is_some() {
            return Err(ContractError::Duplicate { name });
        }
    }
    top_level
        .into_iter()
        .map(|name| {
            let mut composer = Composer {
                schema: &name,
                types: &types,
                defined: HashSet::new(),
            };
            let composed = composer.type_at(&types[&name], None)?;
            let text = composed.to_string();
            Schema::parse_str(&text).map_err(|e| ContractError::Avro {
                schema: name.clone(),
                source: Box::new(e),
            })?;
            Ok((name, text))
        })
        .collect()
}

/// Full name of the named type a JSON schema defines, if it defines one.
fn defined_name(json: &Value, enclosing_ns: Option<&str>) -> Option<String> {
    let obj = json.as_object()?;
    match obj.get("type")?.as_str()? {
        "record" | "error" | "enum" | "fixed" => {}
        _ => return None,
    }
    let name = obj.get("name")?.as_str()?;
    let ns = obj
        .get("namespace")
        .and_then(Value::as_str)
        .or(enclosing_ns);
    Some(qualify(name, ns))
}

fn qualify(name: &str, ns: Option<&str>) -> String {
    match ns {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

fn namespace_of(full_name: &str) -> Option<&str> {
    full_name.rsplit_once('.').map(|(ns, _)| ns)
}

/// Inlines referenced named types at their first use within one top-level schema.
struct Composer<'a> {
    schema: &'a str,
    types: &'a HashMap<String, Value>,
    defined: HashSet<String>,
}

impl Composer<'_> {
    fn type_at(&mut self, json: &Value, ns: Option<&str>) -> Result<Value, ContractError> {
        match json {
            Value::String(s) if PRIMITIVES.contains(&s.as_str()) => Ok(json.clone()),
            Value::String(s) => {
                let full = qualify(s, ns);
                if self.defined.contains(&full) {
                    return Ok(Value::String(full));
                }
                let definition =
                    self.types
                        .get(&full)
                        .ok_or_else(|| ContractError::UnknownType {
                            schema: self.schema.to_owned(),
                            name: full.clone(),
                        })?;
                self.type_at(definition, namespace_of(&full))
            }
            Value::Array(branches) => Ok(Value::Array(
                branches
                    .iter()
                    .map(|b| self.type_at(b, ns))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(obj) => self.complex(obj, ns),
            other => Ok(other.clone()),
        }
    }

    fn complex(
        &mut self,
        obj: &Map<String, Value>,
        ns: Option<&str>,
    ) -> Result<Value, ContractError> {
        let mut out = obj.clone();
        match obj.get("type") {
            Some(Value::String(t)) => match t.as_str() {
                "record" | "error" => {
                    let full = defined_name(&Value::Object(obj.clone()), ns).unwrap_or_default();
                    self.defined.insert(full.clone());
                    let inner_ns = namespace_of(&full).map(str::to_owned);
                    if let Some(Value::Array(fields)) = obj.get("fields") {
                        let mut composed = Vec::with_capacity(fields.len());
                        for field in fields {
                            let mut field = field.clone();
                            if let Some(t) = field.get("type") {
                                let t = self.type_at(t, inner_ns.as_deref())?;
                                field["type"] = t;
                            }
                            composed.push(field);
                        }
                        out.insert("fields".to_owned(), Value::Array(composed));
                    }
                }
                "enum" | "fixed" => {
                    if let Some(full) = defined_name(&Value::Object(obj.clone()), ns) {
                        self.defined.insert(full);
                    }
                }
                "array" => {
                    if let Some(items) = obj.get("items") {
                        out.insert("items".to_owned(), self.type_at(items, ns)?);
                    }
                }
                "map" => {
                    if let Some(values) = obj.get("values") {
                        out.insert("values".to_owned(), self.type_at(values, ns)?);
                    }
                }
                _ => {}
            },
            Some(nested @ (Value::Object(_) | Value::Array(_))) => {
                out.insert("type".to_owned(), self.type_at(nested, ns)?);
            }
            _ => {}
        }
        Ok(Value::Object(out))
    }
}

struct Contract {
    json: HashMap<SchemaName, String>,
    parsed: HashMap<SchemaName, Schema>,
    binary: HashMap<SchemaName, serde_avro_fast::Schema>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let composed = compose(AVRO_FILES.iter().copied())
        .unwrap_or_else(|e| panic!("the embedded Avro contract is broken: {e}"));
    let mut json = HashMap::new();
    let mut parsed = HashMap::new();
    let mut binary = HashMap::new();
    for name in SchemaName::all() {
        let text = composed
            .get(&name.full_name())
            .unwrap_or_else(|| panic!("schemas/avro has no file for {}", name.full_name()))
            .clone();
        let schema = Schema::parse_str(&text).expect("composed schemas were parsed once already");
        parsed.insert(name, schema);
        binary.insert(name, binary_schema(&text));
        json.insert(name, text);
    }
    Contract {
        json,
        parsed,
        binary,
    }
});

/// `text` without its `logicalType`s, parsed by serde_avro_fast. The logical types' binary
/// encodings are those of their underlying `bytes`, `long` and `int`, which the adapters in
/// [`crate::logical`] write and read themselves, so the bytes are the same as apache-avro's.
fn binary_schema(text: &str) -> serde_avro_fast::Schema {
    fn strip(json: &mut Value) {
        match json {
            Value::Object(obj) => {
                obj.remove("logicalType");
                obj.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut json: Value = serde_json::from_str(text).expect("composed schemas are JSON");
    strip(&mut json);
    json.to_string()
        .parse()
        .unwrap_or_else(|e| panic!("serde_avro_fast cannot read the contract: {e}"))
}

/// The self-contained schema text of a top-level schema, as registered.
pub fn schema_json(name: SchemaName) -> &'static str {
    &CONTRACT.json[&name]
}

/// The parsed schema of a top-level schema (parsed once per process).
pub fn schema(name: SchemaName) -> &'static Schema {
    &CONTRACT.parsed[&name]
}

/// The schema the per-message codec runs on (serde_avro_fast's form, built once per process):
/// the same record layout as [`schema`], with logical types left to [`crate::logical`].
pub fn binary(name: SchemaName) -> &'static serde_avro_fast::Schema {
    &CONTRACT.binary[&name]
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMON: &str = r#"{"type":"record","name":"Region","namespace":"t.common","doc":"r",
        "fields":[{"name":"code","type":"string","doc":"c"},
                  {"name":"level","type":{"type":"enum","name":"Level","symbols":["A","B"]},"doc":"l"}]}"#;
    const TOP: &str = r#"{"type":"record","name":"Thing","namespace":"t.raw","doc":"t",
        "fields":[{"name":"here","type":"t.common.Region","doc":"h"},
                  {"name":"there","type":["null","t.common.Region"],"default":null,"doc":"t"},
                  {"name":"levels","type":{"type":"array","items":"t.common.Level"},"doc":"ls"}]}"#;

    #[test]
    fn inlines_first_use_and_refers_to_later_ones() {
        let composed = compose([
            ("common/t.common.Region.avsc", COMMON),
            ("raw/t.raw.Thing.avsc", TOP),
        ])
        .expect("composes");
        assert_eq!(composed.keys().collect::<Vec<_>>(), ["t.raw.Thing"]);
        let json: Value = serde_json::from_str(&composed["t.raw.Thing"]).unwrap();
        assert_eq!(json["fields"][0]["type"]["name"], "Region");
        assert_eq!(json["fields"][1]["type"][1], "t.common.Region");
        assert_eq!(json["fields"][2]["type"]["items"], "t.common.Level");
    }

    #[test]
    fn unknown_type_names_the_schema_and_type() {
        let err = compose([("raw/t.raw.Thing.avsc", TOP)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.raw.Thing: unknown type `t.common.Region`"
        );
    }

    #[test]
    fn subjects_follow_topic_name_strategy() {
        assert_eq!(
            SchemaName::Raw(Domain::VehiclePosition).subject(),
            "raw.vehicle-position-value"
        );
        assert_eq!(
            SchemaName::National(Domain::EnergyReport).full_name(),
            "huitong.national.EnergyReport"
        );
        assert_eq!(SchemaName::Quarantine.subject(), "hub.quarantine-value");
    }
}
