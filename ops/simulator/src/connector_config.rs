//! The connector configuration that reads every simulated system over HTTP: each system's own
//! field names mapped to the raw schema's (the simulator's canonical names are the raw field
//! names; columns per energy carrier or cost item become elements of the raw arrays), so the
//! local stack and tests need no hand-written mapping.

use std::fmt::Write as _;

use apache_avro::Schema;
use schemas::contract::{self, SchemaName};

use crate::divisions::Level;
use crate::server::{Dialect, dialect_of};
use crate::systems::{Datum, Domain, Protocol, SystemProfile};

/// How a raw field takes a source field.
enum Target {
    /// Text as sent.
    Text,
    /// A `RawQuantity`: the value with the system's unit.
    Quantity,
    /// An element of a raw array, one per column (see [`element_of`]).
    Element(Element),
}

/// A raw array element made from one simulator column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    /// The raw array field.
    array: &'static str,
    /// The element's field naming what the column reports.
    label_field: &'static str,
    /// The element's quantity field.
    quantity_field: &'static str,
    /// What the element's label field says: the wording of the national forms, whatever the
    /// system calls its column (`电力`, not `dl` or `electricity`).
    label: &'static str,
}

/// Simulator columns that the raw schema holds as array elements: one column per energy
/// carrier (能源品种) in `lines`, per cost item (成本项目) in `items`, per use of space (用房类型)
/// in `areas`.
fn element_of(domain: Domain, canonical: &str) -> Option<Element> {
    let (array, label_field, quantity_field) = match domain {
        Domain::EnergyReport => ("lines", "carrier", "amount"),
        Domain::OperatingCost => ("items", "item", "amount"),
        Domain::OfficeBuilding => ("areas", "use", "area"),
        _ => return None,
    };
    let label = match (domain, canonical) {
        (Domain::EnergyReport, "electricity") => "电力",
        (Domain::EnergyReport, "natural_gas") => "天然气",
        (Domain::EnergyReport, "gasoline") => "汽油",
        (Domain::EnergyReport, "diesel") => "柴油",
        (Domain::EnergyReport, "heat") => "热力",
        (Domain::OperatingCost, "cost_personnel") => "人员经费",
        (Domain::OperatingCost, "cost_office") => "办公及印刷费",
        (Domain::OperatingCost, "cost_postal") => "邮电费",
        (Domain::OperatingCost, "cost_travel") => "差旅费",
        (Domain::OperatingCost, "cost_meetings") => "会议费",
        (Domain::OperatingCost, "cost_training") => "培训费",
        (Domain::OperatingCost, "cost_maintenance") => "日常维修费",
        (Domain::OperatingCost, "cost_utilities") => "办公用房水电费",
        (Domain::OperatingCost, "cost_heating") => "办公用房取暖费",
        (Domain::OperatingCost, "cost_property") => "办公用房物业管理费",
        (Domain::OperatingCost, "cost_vehicle") => "公务用车运行维护费",
        (Domain::OperatingCost, "cost_reception") => "公务接待费",
        (Domain::OfficeBuilding, "office_area") => "办公室用房",
        _ => return None,
    };
    Some(Element {
        array,
        label_field,
        quantity_field,
        label,
    })
}

/// What the raw schema of `profile`'s domain does with field `name`, if it has it.
fn target(profile: &SystemProfile, name: &str) -> Option<Target> {
    if let Some(element) = element_of(profile.domain, name) {
        return Some(Target::Element(element));
    }
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

/// The fields of `profile` that land nowhere in the raw schema (besides the record id and
/// update time, which go to the key and provenance).
pub fn unmapped_fields(profile: &SystemProfile) -> Vec<&'static str> {
    profile
        .fields
        .iter()
        .filter(|f| !matches!(f.canonical, "record_id" | "updated_at"))
        .filter(|f| target(profile, f.canonical).is_none())
        .map(|f| f.canonical)
        .collect()
}

/// Whether every field the system sends lands in a raw field: a system with a field the raw
/// schema cannot hold is left out — a record that silently lost a field would be worse than
/// none (see [`unmapped_fields`]).
fn mappable(profile: &SystemProfile) -> bool {
    unmapped_fields(profile).is_empty()
}

/// The `[instance.source]` body reading `profile` at `base_url` in `dialect` ([`Dialect`]),
/// `page_size` records per page, sending `key` (a TOML value: a quoted token,
/// `{ env = "NAME" }` or `{ file = "PATH" }`) as the dialect's API key — in `X-Api-Key` for
/// the numbered dialects, as the bearer token for the others.
pub fn dialect_source(
    profile: &SystemProfile,
    base_url: &str,
    dialect: Dialect,
    page_size: usize,
    key: &str,
) -> String {
    let (pagination, items) = match dialect {
        Dialect::PageNoSize => (
            format!(
                "{{ style = \"page\", page_size = {page_size}, page_param = \"pageNo\", \
                 size_param = \"size\", end = {{ total_records = \"/data/total\" }} }}"
            ),
            "/data/list",
        ),
        Dialect::Current => (
            format!(
                "{{ style = \"page\", page_size = {page_size}, page_param = \"current\", \
                 size_param = \"size\", end = {{ total_pages = \"/data/pages\" }} }}"
            ),
            "/data/records",
        ),
        Dialect::HasMore => (
            format!(
                "{{ style = \"page\", page_size = {page_size}, page_param = \"pageNum\", \
                 size_param = \"pageSize\", first_page = 0, \
                 end = {{ has_more = \"/result/hasMore\" }} }}"
            ),
            "/result/rows",
        ),
        Dialect::Offset => (
            format!(
                "{{ style = \"offset\", limit = {page_size}, offset_param = \"start\", \
                 limit_param = \"rows\", end = {{ total_records = \"numFound\" }} }}"
            ),
            "docs",
        ),
        Dialect::Link => (
            format!("{{ style = \"link\", limit = {page_size}, limit_param = \"per_page\" }}"),
            "",
        ),
    };
    let auth = match dialect {
        Dialect::PageNoSize | Dialect::HasMore => format!("headers = {{ \"X-Api-Key\" = {key} }}"),
        Dialect::Current | Dialect::Offset | Dialect::Link => format!("bearer_token = {key}"),
    };
    format!(
        "kind = \"http_poll\"\nurl = \"{base_url}/systems/{}/api/{}\"\n{auth}\n\
         items_field = {items:?}\npagination = {pagination}",
        profile.id,
        dialect.path()
    )
}

/// The `[[instance]]` tables for every system that can be mapped, reading over HTTP with the
/// pagination and the dialect ([`dialect_of`]) its real counterpart uses (file and database
/// systems by cursor).
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
    /// Pagination table of the native API (default: the system's own dialect and style, 200
    /// per page).
    pub pagination: Option<String>,
    /// The whole `[instance.source]` body instead of reading the system over HTTP, with the
    /// field holding the record id (e.g. a `sql_poll` of the PostgreSQL-backed system).
    pub source: Option<(String, String)>,
}

/// The `[[instance]]` table of one system, if every field it sends can be mapped.
pub fn instance_toml(
    profile: &SystemProfile,
    base_url: &str,
    overrides: &Overrides,
) -> Option<String> {
    if !mappable(profile) {
        return None;
    }
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
    let source = overrides.source.as_ref().map_or_else(
        || match dialect_of(profile).filter(|_| overrides.pagination.is_none()) {
            Some(dialect) => dialect_source(
                profile,
                base_url,
                dialect,
                200,
                &format!("{:?}", profile.token),
            ),
            None => format!(
                "kind = \"http_poll\"\nurl = \"{base_url}/systems/{}/records\"\n\
                 bearer_token = \"{}\"\npagination = {pagination}",
                profile.id, profile.token
            ),
        },
        |(source, _)| source.clone(),
    );
    let id_field = overrides
        .source
        .as_ref()
        .map_or(profile.id_field.as_str(), |(_, id_field)| id_field.as_str());
    Some(format!(
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
{mapping}"#,
        instance = overrides.instance_id.as_deref().unwrap_or(&profile.id),
        id = profile.id,
        region = profile.region_code,
        level = level(profile),
        domain = profile.domain.as_str(),
        mapping = mapping_toml(profile, id_field, "instance.mapping"),
    ))
}

/// The `[[push.client]]` table of one system that pushes its own records (field names as it
/// serves them over HTTP) with its bearer token, if every field it sends can be mapped. Its
/// mapping is the one [`instance_toml`] gives a pull instance of it.
pub fn push_client_toml(profile: &SystemProfile) -> Option<String> {
    if !mappable(profile) {
        return None;
    }
    let domain = profile.domain.as_str();
    Some(format!(
        r#"
[[push.client]]
token = "{token}"
system_id = "{id}"
region_code = "{region}"
level = "{level}"
domains = ["{domain}"]
{mapping}"#,
        token = profile.token,
        id = profile.id,
        region = profile.region_code,
        level = level(profile),
        mapping = mapping_toml(
            profile,
            &profile.id_field,
            &format!("push.client.mapping.{domain}")
        ),
    ))
}

/// The configuration's name of a system's level.
fn level(profile: &SystemProfile) -> &'static str {
    match profile.level {
        Level::County => "county",
        Level::Prefecture => "prefecture",
        Level::Province => "province",
    }
}

/// The mapping of a system's fields as the TOML table `table` (and its array sub-tables).
fn mapping_toml(profile: &SystemProfile, id_field: &str, table: &str) -> String {
    let mut fields = Vec::new();
    let mut quantities = Vec::new();
    // Per array: its element fields and its columns, in the system's column order.
    let mut arrays: Vec<(Element, Vec<String>)> = Vec::new();
    for f in &profile.fields {
        match (target(profile, f.canonical), f.unit) {
            (Some(Target::Element(element)), unit) => {
                let column = format!(
                    "  {{ label = {:?}, field = {:?}, unit = {:?} }},\n",
                    element.label,
                    f.name,
                    unit.unwrap_or_default()
                );
                match arrays.iter_mut().find(|(e, _)| e.array == element.array) {
                    Some((_, columns)) => columns.push(column),
                    None => arrays.push((element, vec![column])),
                }
            }
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
    let mut out = format!(
        "[{table}]\nrecord_id = [{id_field:?}]\nfields = {{ {} }}\nquantities = {{ {} }}\n\
         constants = {{ {constants} }}\n",
        fields.join(", "),
        quantities.join(", "),
    );
    for (e, columns) in &arrays {
        let _ = write!(
            out,
            "[{table}.arrays.{}]\nlabel_field = {:?}\nquantity_field = {:?}\ncolumns = [\n{}]\n",
            e.array,
            e.label_field,
            e.quantity_field,
            columns.concat()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use connectors::config::ConnectorConfig;
    use connectors::raw::RawEncoder;
    use serde_json::json;

    use super::*;
    use crate::{Simulator, Size, World};

    fn sim() -> Simulator {
        Simulator::new(World::new(7, Size::Tiny))
    }

    /// What `simulator connector-config` prints (the header of `main.rs`), parsed as the
    /// connector does at start-up (`ops/dev up`).
    fn parsed(sim: &Simulator) -> ConnectorConfig {
        let text = format!(
            "connector_id = \"simulator-connector\"\nregistry_url = \"http://127.0.0.1:9644\"\n\
             [kafka]\nbootstrap = \"127.0.0.1:9092\"\n{}",
            instances_toml(sim.systems(), "http://127.0.0.1:1")
        );
        ConnectorConfig::parse(Path::new("connectors.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn generated_config_parses_with_lines_and_items() {
        let sim = sim();
        let config = parsed(&sim);
        let mappable: Vec<&str> = sim
            .systems()
            .iter()
            .filter(|p| mappable(p))
            .map(|p| p.id.as_str())
            .collect();
        let ids: Vec<&str> = config.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, mappable);
        for domain in [Domain::EnergyReport, Domain::OperatingCost] {
            let systems = sim.systems().iter().filter(|p| p.domain == domain).count();
            let instances: Vec<_> = config
                .instances
                .iter()
                .filter(|i| i.domain == domain)
                .collect();
            assert_eq!(instances.len(), systems, "every {domain:?} system");
            for instance in instances {
                let (array, columns) = match domain {
                    Domain::EnergyReport => ("lines", 5),
                    _ => ("items", 12),
                };
                assert_eq!(
                    instance.mapping.arrays[array].columns.len(),
                    columns,
                    "{}",
                    instance.id
                );
            }
        }
        let prefecture = config
            .instances
            .iter()
            .find(|i| i.domain == Domain::EnergyReport && i.id.contains("-prefecture-"))
            .expect("a prefecture energy report");
        let electricity = &prefecture.mapping.arrays["lines"].columns[0];
        assert_eq!(
            (electricity.label.as_str(), electricity.unit.as_deref()),
            ("电力", Some("万千瓦时"))
        );
    }

    #[test]
    fn records_of_every_generated_instance_map_and_encode() {
        let sim = sim();
        let config = parsed(&sim);
        for instance in &config.instances {
            let (sys, profile) = sim.system(&instance.system_id).expect("system");
            let encoder = RawEncoder::with_schema_id(profile.domain, 1).expect("encoder");
            for record in sim.records(sys, 0..3) {
                // As http_poll and file_drop hand them over: text by the system's field names.
                let source: BTreeMap<String, String> = profile
                    .fields
                    .iter()
                    .zip(&record.cells)
                    .map(|(f, c)| (f.name.clone(), c.text()))
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                let mapped = connectors::mapping::map(&instance.mapping, &source)
                    .unwrap_or_else(|e| panic!("{}: {e}", instance.id));
                assert_eq!(mapped.record_id, record.id);
                let mut raw = serde_json::Value::Object(mapped.fields);
                raw["provenance"] = json!({
                    "source_system_id": profile.id, "reporting_level": "COUNTY",
                    "reporter_region_code": profile.region_code,
                    "source_record_id": record.id,
                    "received_at": "2025-07-01T00:00:00.000Z", "connector_id": "c"
                });
                if profile.domain == Domain::EnergyReport {
                    let lines = raw["lines"].as_array().expect("lines");
                    assert_eq!(lines.len(), 5, "{}: {lines:?}", instance.id);
                    let unit = profile.fields.iter().find(|f| f.canonical == "electricity");
                    assert_eq!(lines[0]["carrier"], "电力");
                    assert_eq!(
                        lines[0]["amount"]["unit"],
                        unit.and_then(|f| f.unit).unwrap()
                    );
                }
                let encoded = encoder
                    .encode(&mut raw)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{raw:#}", instance.id));
                // Keyed as the hub keys the entity, whatever the level's spelling.
                assert_eq!(
                    encoded.partition_key.as_deref(),
                    Some(schemas::partition::partition_key(&record.key)),
                    "{}: {}",
                    instance.id,
                    record.id
                );
            }
        }
    }

    /// Some county and prefecture systems are read in their own dialects: other parameter
    /// names, nested items, totals of records or pages or `hasMore`, offsets, `Link` headers,
    /// an API key header.
    #[test]
    fn some_systems_are_read_in_their_own_dialects() {
        use connectors::config::SourceConfig;
        let sim = sim();
        let config = parsed(&sim);
        let mut dialects = std::collections::BTreeSet::new();
        for instance in &config.instances {
            let profile = sim.system(&instance.system_id).expect("system").1;
            let SourceConfig::HttpPoll(source) = &instance.source else {
                continue;
            };
            match dialect_of(profile) {
                Some(dialect) => {
                    assert!(
                        source.url.ends_with(&format!("/api/{}", dialect.path())),
                        "{}",
                        source.url
                    );
                    let keyed = source.headers.iter().any(|(name, _)| name == "x-api-key");
                    assert_eq!(keyed, source.bearer_token.is_none(), "{}", instance.id);
                    dialects.insert(dialect.path());
                }
                None => assert!(source.url.ends_with("/records"), "{}", source.url),
            }
        }
        assert!(
            dialects.len() >= 3,
            "several dialects are wired: {dialects:?}"
        );
    }

    /// Every field every system sends has a raw field, so no system is left out: asset cards'
    /// category name (资产分类名称) goes to `category_name`, office buildings' room count (房间数)
    /// to `room_count`, every system's division code (行政区划代码, `xzqhdm`, `regionCode`) to
    /// `region_code` in every domain. A system whose field the raw schema cannot hold shows up
    /// here with it.
    #[test]
    fn no_system_is_left_out_for_want_of_a_raw_field() {
        let sim = sim();
        let left_out: BTreeMap<&str, Vec<&str>> = sim
            .systems()
            .iter()
            .filter(|p| instance_toml(p, "", &Overrides::default()).is_none())
            .map(|p| (p.id.as_str(), unmapped_fields(p)))
            .collect();
        assert_eq!(left_out, BTreeMap::new());
        let config = parsed(&sim);
        let region_codes = Domain::ALL.map(|d| (d, "region_code"));
        for (domain, field) in [
            (Domain::AssetCard, "category_name"),
            (Domain::OfficeBuilding, "room_count"),
        ]
        .into_iter()
        .chain(region_codes)
        {
            let systems: Vec<&SystemProfile> = sim
                .systems()
                .iter()
                .filter(|p| p.domain == domain)
                .collect();
            assert!(!systems.is_empty(), "{domain:?}");
            for profile in systems {
                let instance = config
                    .instances
                    .iter()
                    .find(|i| i.id == profile.id)
                    .unwrap_or_else(|| panic!("{} is configured", profile.id));
                let sent = profile
                    .fields
                    .iter()
                    .find(|f| f.canonical == field)
                    .expect("the system sends the field");
                assert_eq!(
                    instance.mapping.fields.get(field),
                    Some(&sent.name),
                    "{}: {field} ← the system's {:?}",
                    instance.id,
                    sent.name
                );
            }
        }
    }
}
