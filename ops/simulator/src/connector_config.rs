//! The connector configuration that reads every simulated system over HTTP: each system's own
//! field names mapped to the raw schema's (the simulator's canonical names are the raw field
//! names), so the local stack and tests need no hand-written mapping.

use std::fmt::Write as _;

use apache_avro::Schema;
use schemas::contract::{self, SchemaName};

use crate::divisions::Level;
use crate::systems::{Datum, Protocol, SystemProfile};

/// How a raw field takes a source field.
enum Target {
    /// Text as sent.
    Text,
    /// A `RawQuantity`: the value with the system's unit.
    Quantity,
}

/// What the raw schema of `profile`'s domain does with field `name`, if it has it.
fn target(profile: &SystemProfile, name: &str) -> Option<Target> {
    let Schema::Record(record) = contract::schema(SchemaName::Raw(profile.domain)) else {
        return None;
    };
    let field = record.fields.iter().find(|f| f.name == name)?;
    let is_quantity = |s: &Schema| match s {
        Schema::Record(r) => r.name.name() == "RawQuantity",
        Schema::Ref { name } => name.name() == "RawQuantity",
        _ => false,
    };
    let quantity = match &field.schema {
        Schema::Union(u) => u.variants().iter().any(is_quantity),
        other => is_quantity(other),
    };
    let array = match &field.schema {
        Schema::Union(u) => u.variants().iter().any(|v| matches!(v, Schema::Array(_))),
        other => matches!(other, Schema::Array(_)),
    };
    if array || name == "provenance" {
        None
    } else if quantity {
        Some(Target::Quantity)
    } else {
        Some(Target::Text)
    }
}

/// Whether every field the system sends lands in a raw field: domains whose raw form nests
/// fields into lines (energy carriers, cost items) are left out until the mapping can build
/// lines from columns — a record that silently lost its carriers would be worse than none.
fn mappable(profile: &SystemProfile) -> bool {
    profile
        .fields
        .iter()
        .filter(|f| !matches!(f.canonical, "record_id" | "updated_at"))
        .all(|f| target(profile, f.canonical).is_some())
}

/// The `[[instance]]` tables for every system that can be mapped, reading over HTTP with the
/// pagination its real counterpart uses (file and database systems by cursor).
pub fn instances_toml(systems: &[SystemProfile], base_url: &str) -> String {
    systems
        .iter()
        .filter_map(|p| instance_toml(p, base_url, &Overrides::default()))
        .collect()
}

/// Settings a test may set instead of the defaults.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Instance id (default: the system id).
    pub instance_id: Option<String>,
    /// Topic (default: `raw.<domain>`).
    pub topic: Option<String>,
    /// Pagination table (default: the system's own style, 200 per page).
    pub pagination: Option<String>,
    /// The whole `[instance.source]` body instead of reading the system over HTTP, with the
    /// field holding the record id (e.g. a `sql_poll` of the PostgreSQL-backed system).
    pub source: Option<(String, String)>,
}

/// The `[[instance]]` table of one system, if its domain can be mapped from flat fields.
pub fn instance_toml(
    profile: &SystemProfile,
    base_url: &str,
    overrides: &Overrides,
) -> Option<String> {
    if !mappable(profile) {
        return None;
    }
    let mut out = String::new();
    {
        let mut fields = Vec::new();
        let mut quantities = Vec::new();
        for f in &profile.fields {
            match (target(profile, f.canonical), f.unit) {
                (Some(Target::Quantity), Some(unit)) => quantities.push(format!(
                    "{} = {{ field = {:?}, unit = {unit:?} }}",
                    f.canonical, f.name
                )),
                (Some(Target::Quantity), None) => quantities.push(format!(
                    "{} = {{ field = {:?}, unit = \"\" }}",
                    f.canonical, f.name
                )),
                (Some(Target::Text), _) => fields.push(format!("{} = {:?}", f.canonical, f.name)),
                (None, _) => {}
            }
        }
        let constants = match profile.datum {
            Some(Datum::Gcj02) => "datum = \"GCJ02\"",
            Some(Datum::Wgs84) => "datum = \"WGS84\"",
            None => "",
        };
        let pagination = overrides.pagination.clone().unwrap_or_else(|| {
            match profile.protocol {
                Protocol::HttpPage => "{ style = \"page\", page_size = 200 }",
                Protocol::HttpUpdatedSince => "{ style = \"updated_since\", limit = 200 }",
                _ => "{ style = \"cursor\", limit = 200 }",
            }
            .to_owned()
        });
        let topic = overrides
            .topic
            .as_ref()
            .map(|t| format!("topic = {t:?}\n"))
            .unwrap_or_default();
        let level = match profile.level {
            Level::County => "county",
            Level::Prefecture => "prefecture",
            Level::Province => "province",
        };
        let _ = write!(
            out,
            r#"
[[instance]]
id = "{instance}"
system_id = "{id}"
region_code = "{region}"
level = "{level}"
domain = "{domain}"
poll_interval = "10s"
{topic}[instance.source]
{source}
[instance.mapping]
record_id = [{id_field:?}]
fields = {{ {fields} }}
quantities = {{ {quantities} }}
constants = {{ {constants} }}
"#,
            instance = overrides.instance_id.as_deref().unwrap_or(&profile.id),
            id = profile.id,
            region = profile.region_code,
            domain = profile.domain.as_str(),
            source = overrides.source.as_ref().map_or_else(
                || {
                    format!(
                        "kind = \"http_poll\"\nurl = \"{base_url}/systems/{}/records\"\n\
                         bearer_token = \"{}\"\npagination = {pagination}",
                        profile.id, profile.token
                    )
                },
                |(source, _)| source.clone(),
            ),
            id_field = overrides
                .source
                .as_ref()
                .map_or(profile.id_field.as_str(), |(_, id_field)| id_field.as_str()),
            fields = fields.join(", "),
            quantities = quantities.join(", "),
        );
    }
    Some(out)
}
