//! `connector validate`: what a configuration means against the contract, before anything
//! runs — as `vector validate` and Kafka Connect's config validation do. Parsing
//! ([`ConnectorConfig::parse`]) already refuses unknown keys and wrong types; this checks what
//! parsing cannot:
//!
//! - every mapping target is a field of the domain's raw schema, of the right kind (a
//!   quantity for `quantities`, an array of records for `arrays`, whose element has the
//!   `label_field`, `quantity_field` and further quantities named);
//! - every required raw field is mapped (by `fields`, `quantities`, `constants` or `arrays`);
//! - `values` and `constants` of an enum field are its symbols; `values` and `dates` apply to
//!   a field `fields` maps;
//! - date and time formats are valid `chrono` formats;
//! - a source's URL is an `http(s)` URL, its files and directories exist, its secrets resolve;
//! - the push endpoint's certificate files exist.
//!
//! Each finding names the file, the line of the key at fault and the key's path. Pure but for
//! reading the files a configuration names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use schemas::Domain;
use schemas::contract::{SchemaName, schema_json};
use serde_json::Value;

use crate::config::{ConnectorConfig, MappingConfig, SourceConfig};

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line of the key at fault (of the nearest enclosing key found).
    pub line: usize,
    /// The key's path, e.g. `instance[2].mapping.fields.vin`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Findings of one file, printed one per line as `file:line: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The file checked.
    pub path: std::path::PathBuf,
    /// What is wrong with it, in file order.
    pub findings: Vec<Finding>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(
                f,
                "{}:{}: {}: {}",
                self.path.display(),
                finding.line,
                finding.field,
                finding.message
            )?;
        }
        Ok(())
    }
}

/// Checks a parsed configuration whose text is `text`.
pub fn validate(path: &Path, text: &str, config: &ConnectorConfig) -> Report {
    let locate = Locator::new(text);
    let mut findings = Vec::new();
    let mut add = |key: Vec<Key>, message: String| {
        findings.push(Finding {
            line: locate.line(&key),
            field: render(&key),
            message,
        });
    };
    for (i, instance) in config.instances.iter().enumerate() {
        let at = |rest: &[Key]| {
            let mut key = vec![Key::from("instance"), Key::Index(i)];
            key.extend_from_slice(rest);
            key
        };
        for (rest, message) in check_mapping(instance.domain, &instance.mapping) {
            add(
                at(&[&[Key::from("mapping")], rest.as_slice()].concat()),
                message,
            );
        }
        for (rest, message) in check_source(&instance.source) {
            add(
                at(&[&[Key::from("source")], rest.as_slice()].concat()),
                message,
            );
        }
    }
    if let Some(push) = &config.push {
        for (name, file) in [
            ("tls_cert", Some(&push.tls_cert)),
            ("tls_key", Some(&push.tls_key)),
        ]
        .into_iter()
        .chain([("client_ca", push.client_ca.as_ref())])
        {
            if let Some(message) = file.and_then(|f| missing_file(f)) {
                add(vec![Key::from("push"), Key::from(name)], message);
            }
        }
        for (j, client) in push.clients.iter().enumerate() {
            for (domain, mapping) in &client.mappings {
                for (rest, message) in check_mapping(*domain, mapping) {
                    let mut key = vec![
                        Key::from("push"),
                        Key::from("client"),
                        Key::Index(j),
                        Key::from("mapping"),
                        Key::Name(domain.as_str().to_owned()),
                    ];
                    key.extend(rest);
                    add(key, message);
                }
            }
        }
    }
    findings.sort_by_key(|f| f.line);
    Report {
        path: path.to_owned(),
        findings,
    }
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Name(String),
    Index(usize),
}

impl From<&str> for Key {
    fn from(name: &str) -> Self {
        Key::Name(name.to_owned())
    }
}

fn render(key: &[Key]) -> String {
    let mut out = String::new();
    for step in key {
        match step {
            Key::Name(name) if out.is_empty() => out.push_str(name),
            Key::Name(name) => {
                out.push('.');
                out.push_str(name);
            }
            Key::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Finds the line of a key path in the file's text (its spans, from `toml_edit`).
struct Locator<'a> {
    text: &'a str,
    document: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Locator {
            text,
            document: toml_edit::Document::parse(text).ok(),
        }
    }

    /// The line of the deepest step of `key` the file has (a defaulted key has no line of
    /// its own: its table's is given).
    fn line(&self, key: &[Key]) -> usize {
        let Some(document) = &self.document else {
            return 0;
        };
        let mut span = None;
        let mut node = Node::Table(document.as_table());
        for step in key {
            let next = match (step, node) {
                (Key::Name(name), node) => node.table_like().and_then(|t| {
                    let (key, item) = t.get_key_value(name)?;
                    span = key.span().map(|s| s.start).or(span);
                    Some(Node::Item(item))
                }),
                (Key::Index(i), Node::Item(toml_edit::Item::ArrayOfTables(tables))) => {
                    tables.get(*i).map(|table| {
                        span = table.span().map(|s| s.start).or(span);
                        Node::Table(table)
                    })
                }
                (Key::Index(i), Node::Item(toml_edit::Item::Value(toml_edit::Value::Array(a))))
                | (Key::Index(i), Node::Value(toml_edit::Value::Array(a))) => {
                    a.get(*i).map(|value| {
                        span = value.span().map(|s| s.start).or(span);
                        Node::Value(value)
                    })
                }
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        span.map_or(0, |start| self.text[..start].matches('\n').count() + 1)
    }
}

/// Where [`Locator::line`] is in the document.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d toml_edit::Item),
    Table(&'d toml_edit::Table),
    Value(&'d toml_edit::Value),
}

impl<'d> Node<'d> {
    fn table_like(self) -> Option<&'d dyn toml_edit::TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Table(table) => Some(table),
            Node::Value(value) => value
                .as_inline_table()
                .map(|t| t as &dyn toml_edit::TableLike),
        }
    }
}

/// What is wrong with a mapping of `domain`: the key path below `mapping` and the message.
fn check_mapping(domain: Domain, mapping: &MappingConfig) -> Vec<(Vec<Key>, String)> {
    let shape = RecordShape::raw(domain);
    let schema = SchemaName::Raw(domain).full_name();
    let mut out = Vec::new();
    let mut bad = |path: &[&str], message: String| {
        out.push((path.iter().map(|&p| Key::from(p)).collect(), message));
    };
    let unknown =
        |target: &str| format!("{schema} 没有字段「{target}」 ({schema} has no field `{target}`)");
    for target in mapping.fields.keys() {
        match shape.kind(target) {
            None => bad(&["fields", target], unknown(target)),
            Some(Shape::Quantity | Shape::Array(_) | Shape::Other) => bad(
                &["fields", target],
                format!(
                    "「{target}」不是文本字段 (`{target}` is not a text field: use quantities or arrays)"
                ),
            ),
            Some(_) => {}
        }
    }
    for target in mapping.quantities.keys() {
        match shape.kind(target) {
            None => bad(&["quantities", target], unknown(target)),
            Some(Shape::Quantity) => {}
            Some(_) => bad(
                &["quantities", target],
                format!("「{target}」不是计量字段 (`{target}` is not a quantity)"),
            ),
        }
    }
    for (target, constant) in &mapping.constants {
        match shape.kind(target) {
            None => bad(&["constants", target], unknown(target)),
            Some(Shape::Enum(symbols)) if !symbols.contains(constant) => bad(
                &["constants", target],
                not_a_symbol(target, constant, symbols),
            ),
            Some(_) => {}
        }
    }
    for (target, values) in &mapping.values {
        if !mapping.fields.contains_key(target) {
            bad(
                &["values", target],
                format!("「{target}」未在 fields 中映射 (`{target}` is not mapped in `fields`)"),
            );
        } else if let Some(Shape::Enum(symbols)) = shape.kind(target) {
            for written in values.values() {
                if !symbols.contains(written) {
                    bad(&["values", target], not_a_symbol(target, written, symbols));
                }
            }
        }
    }
    for (target, format) in &mapping.dates {
        if !mapping.fields.contains_key(target) {
            bad(
                &["dates", target],
                format!("「{target}」未在 fields 中映射 (`{target}` is not mapped in `fields`)"),
            );
        }
        if let Some(message) = bad_format(format) {
            bad(&["dates", target], message);
        }
    }
    if let Some(timestamp) = &mapping.source_timestamp
        && let Some(message) = bad_format(&timestamp.format)
    {
        bad(&["source_timestamp", "format"], message);
    }
    for (target, array) in &mapping.arrays {
        let Some(shape) = shape.kind(target) else {
            bad(&["arrays", target], unknown(target));
            continue;
        };
        let Shape::Array(element) = shape else {
            bad(
                &["arrays", target],
                format!("「{target}」不是记录数组 (`{target}` is not an array of records)"),
            );
            continue;
        };
        let element_has =
            |name: &str, want: fn(&Shape) -> bool| element.kind(name).is_some_and(want);
        if !element_has(&array.label_field, |s| {
            matches!(s, Shape::Text | Shape::Enum(_))
        }) {
            bad(
                &["arrays", target, "label_field"],
                format!(
                    "「{target}」的元素没有文本字段「{0}」 (the elements of `{target}` have no text field `{0}`)",
                    array.label_field
                ),
            );
        }
        let quantities = std::iter::once(&array.quantity_field)
            .chain(array.columns.iter().flat_map(|c| c.quantities.keys()));
        for name in quantities {
            if !element_has(name, |s| matches!(s, Shape::Quantity)) {
                bad(
                    &["arrays", target, "columns"],
                    format!(
                        "「{target}」的元素没有计量字段「{name}」 (the elements of `{target}` have no quantity `{name}`)"
                    ),
                );
            }
        }
    }
    for (name, field) in &shape.fields {
        let mapped = mapping.fields.contains_key(name)
            || mapping.quantities.contains_key(name)
            || mapping.constants.contains_key(name)
            || mapping.arrays.contains_key(name);
        if field.required() && !mapped && name != "provenance" {
            bad(
                &[],
                format!(
                    "必填字段「{name}」未映射 (required field `{name}` of {schema} is not mapped)"
                ),
            );
        }
    }
    out
}

fn not_a_symbol(target: &str, value: &str, symbols: &[String]) -> String {
    format!(
        "「{value}」不是「{target}」的取值 (`{value}` is not a symbol of `{target}`: one of {})",
        symbols.join(", ")
    )
}

/// Why a `chrono` format string is not one, if it is not.
fn bad_format(format: &str) -> Option<String> {
    use chrono::format::{Item, StrftimeItems};
    StrftimeItems::new(format)
        .any(|item| matches!(item, Item::Error))
        .then(|| {
            format!("「{format}」不是有效的日期格式 (`{format}` is not a valid chrono format)")
        })
}

/// What is wrong with a source: the key path below `source` and the message.
fn check_source(source: &SourceConfig) -> Vec<(Vec<Key>, String)> {
    let mut out = Vec::new();
    match source {
        SourceConfig::FileDrop(drop) => {
            if !drop.dir.is_dir() {
                out.push((
                    vec![Key::from("dir")],
                    format!(
                        "目录 {} 不存在 (directory {} does not exist)",
                        drop.dir.display(),
                        drop.dir.display()
                    ),
                ));
            }
        }
        SourceConfig::HttpPoll(http) => {
            match reqwest::Url::parse(&http.url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {}
                Ok(_) | Err(_) => out.push((
                    vec![Key::from("url")],
                    format!(
                        "「{}」不是 http(s) 地址 (`{}` is not an http or https URL)",
                        http.url, http.url
                    ),
                )),
            }
            for (name, file) in [
                ("client_identity", &http.client_identity),
                ("server_ca", &http.server_ca),
            ] {
                if let Some(message) = file.as_deref().and_then(missing_file) {
                    out.push((vec![Key::from(name)], message));
                }
            }
        }
        SourceConfig::SqlPoll(sql) => {
            if let Err(e) = sql.connection.parse::<tokio_postgres::Config>() {
                out.push((
                    vec![Key::from("connection")],
                    format!("连接串无效 (the connection string is not valid): {e}"),
                ));
            }
        }
    }
    out
}

fn missing_file(path: &Path) -> Option<String> {
    (!path.is_file()).then(|| {
        format!(
            "文件 {} 不存在 (file {} does not exist)",
            path.display(),
            path.display()
        )
    })
}

/// The kind of one field of a raw schema, as a mapping may target it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// A string (or a number or date written from text).
    Text,
    /// An enum, with its symbols.
    Enum(Vec<String>),
    /// A `huitong.common.RawQuantity`.
    Quantity,
    /// An array of records.
    Array(RecordShape),
    /// Anything else (provenance, nested records).
    Other,
}

/// A field's shape and whether it may be left out (nullable, or with a default).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldShape {
    shape: Shape,
    nullable: bool,
}

impl FieldShape {
    fn required(&self) -> bool {
        !self.nullable
    }
}

/// The fields of a record schema.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct RecordShape {
    fields: BTreeMap<String, FieldShape>,
}

impl RecordShape {
    /// The shape of field `name`, if the record has it.
    fn kind(&self, name: &str) -> Option<&Shape> {
        self.fields.get(name).map(|f| &f.shape)
    }

    /// The raw schema of `domain`, as the contract registers it.
    fn raw(domain: Domain) -> Self {
        let schema: Value =
            serde_json::from_str(schema_json(SchemaName::Raw(domain))).expect("the contract");
        let mut named = BTreeMap::new();
        collect_named(&schema, "", &mut named);
        Self::of(&schema, &named)
    }

    fn of(record: &Value, named: &BTreeMap<String, Value>) -> Self {
        let fields = record["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let name = f["name"].as_str()?.to_owned();
                let (ty, nullable) = match &f["type"] {
                    Value::Array(branches) => (
                        branches
                            .iter()
                            .find(|b| b.as_str() != Some("null"))
                            .cloned()
                            .unwrap_or(Value::Null),
                        branches.iter().any(|b| b.as_str() == Some("null")),
                    ),
                    other => (other.clone(), false),
                };
                // A field with a default may be left out as well as a nullable one.
                let nullable = nullable || f.get("default").is_some();
                Some((
                    name,
                    FieldShape {
                        shape: shape(&ty, named),
                        nullable,
                    },
                ))
            })
            .collect();
        RecordShape { fields }
    }
}

/// The shape of an Avro type.
fn shape(ty: &Value, named: &BTreeMap<String, Value>) -> Shape {
    let resolved = match ty.as_str() {
        Some("string" | "int" | "long" | "double" | "float" | "boolean") => return Shape::Text,
        Some(name) => match named.get(name) {
            Some(definition) => definition,
            None => return Shape::Other,
        },
        None => ty,
    };
    match resolved["type"].as_str() {
        Some("enum") => Shape::Enum(
            resolved["symbols"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        ),
        Some("record") if full_name(resolved, "") == "huitong.common.RawQuantity" => {
            Shape::Quantity
        }
        Some("array") => match shape_record(&resolved["items"], named) {
            Some(element) => Shape::Array(element),
            None => Shape::Other,
        },
        Some("string" | "int" | "long" | "double" | "float") => Shape::Text,
        _ => Shape::Other,
    }
}

fn shape_record(ty: &Value, named: &BTreeMap<String, Value>) -> Option<RecordShape> {
    let definition = match ty.as_str() {
        Some(name) => named.get(name)?,
        None => ty,
    };
    (definition["type"] == "record").then(|| RecordShape::of(definition, named))
}

/// A named type's full name.
fn full_name(definition: &Value, namespace: &str) -> String {
    let name = definition["name"].as_str().unwrap_or_default();
    if name.contains('.') {
        return name.to_owned();
    }
    match definition["namespace"].as_str().unwrap_or(namespace) {
        "" => name.to_owned(),
        ns => format!("{ns}.{name}"),
    }
}

/// Every named type defined in `schema`, by full name (the contract inlines a type where it is
/// first used and names it after).
fn collect_named(schema: &Value, namespace: &str, named: &mut BTreeMap<String, Value>) {
    match schema {
        Value::Array(branches) => {
            for branch in branches {
                collect_named(branch, namespace, named);
            }
        }
        Value::Object(object) => {
            let mut inner = namespace.to_owned();
            if matches!(
                object.get("type").and_then(Value::as_str),
                Some("record" | "enum" | "fixed")
            ) {
                let full = full_name(schema, namespace);
                inner = full
                    .rsplit_once('.')
                    .map_or(String::new(), |(ns, _)| ns.to_owned());
                named.insert(full, schema.clone());
            }
            for field in object
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                collect_named(&field["type"], &inner, named);
            }
            if let Some(items) = object.get("items") {
                collect_named(items, &inner, named);
            }
            if let Some(ty) = object.get("type").filter(|t| !t.is_string()) {
                collect_named(ty, &inner, named);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"connector_id = "c1"
registry_url = "http://127.0.0.1:9644"
[kafka]
bootstrap = "127.0.0.1:9092"

[[instance]]
id = "km-vehicles"
system_id = "km-city-vehicles"
region_code = "530100"
level = "prefecture"
domain = "vehicle"
[instance.source]
kind = "http_poll"
url = "https://km.example.cn/api/vehicles"
pagination = { style = "page", page_size = 100 }
[instance.mapping]
record_id = ["车架号"]
fields = { vin = "车架号", plate = "号牌", owner_uscc = "单位代码", status = "状态", purchase_date = "购置日期" }
quantities = { purchase_price = { field = "购置价", unit = "万元" } }
values = { status = { "在用" = "在用" } }
dates = { purchase_date = "%Y年%m月%d日" }

[[instance]]
id = "km-energy"
system_id = "km-city-energy"
region_code = "530100"
level = "prefecture"
domain = "energy-report"
[instance.source]
kind = "http_poll"
url = "https://km.example.cn/api/energy"
pagination = { style = "page", page_size = 100 }
[instance.mapping]
record_id = ["单位代码", "期间"]
fields = { uscc = "单位代码", period = "期间" }
[instance.mapping.arrays.lines]
label_field = "carrier"
quantity_field = "amount"
columns = [{ label = "电力", field = "电力", unit = "万千瓦时" }]

[[instance]]
id = "km-positions"
system_id = "km-city-gps"
region_code = "530100"
level = "prefecture"
domain = "vehicle-position"
[instance.source]
kind = "http_poll"
url = "https://km.example.cn/api/gps"
pagination = { style = "page", page_size = 100 }
[instance.mapping]
record_id = ["终端号", "时间"]
fields = { terminal_id = "终端号", fix_time = "时间", latitude = "纬度", longitude = "经度" }
constants = { datum = "GCJ02" }
"#;

    /// The findings for `text`, as `line field: message-start`.
    fn findings(text: &str) -> Vec<String> {
        let path = Path::new("c.toml");
        let config = ConnectorConfig::parse(path, text).unwrap_or_else(|e| panic!("{e}"));
        validate(path, text, &config)
            .findings
            .into_iter()
            .map(|f| format!("{} {}: {}", f.line, f.field, f.message))
            .collect()
    }

    #[test]
    fn good_files_have_no_findings() {
        assert_eq!(findings(GOOD), Vec::<String>::new());
    }

    #[test]
    fn every_finding_names_line_and_field() {
        let cases: [(&str, &str, &str); 11] = [
            (
                "vin = \"车架号\"",
                "vin = \"车架号\", colour = \"颜色\"",
                "18 instance[0].mapping.fields.colour: huitong.raw.Vehicle 没有字段「colour」",
            ),
            (
                "owner_uscc = \"单位代码\", status",
                "status",
                "16 instance[0].mapping: 必填字段「owner_uscc」未映射",
            ),
            (
                "purchase_price = { field",
                "brand_model = { field",
                "19 instance[0].mapping.quantities.brand_model: 「brand_model」不是计量字段",
            ),
            (
                "plate = \"号牌\"",
                "plate = \"号牌\", purchase_price = \"购置价\"",
                "18 instance[0].mapping.fields.purchase_price: 「purchase_price」不是文本字段",
            ),
            (
                "\"%Y年%m月%d日\"",
                "\"%Y年%m月%Q日\"",
                "21 instance[0].mapping.dates.purchase_date: 「%Y年%m月%Q日」不是有效的日期格式",
            ),
            (
                "dates = { purchase_date",
                "dates = { registration_date",
                "21 instance[0].mapping.dates.registration_date: 「registration_date」未在 fields 中映射",
            ),
            (
                "constants = { datum = \"GCJ02\" }",
                "constants = { datum = \"CGCS2000\" }",
                "54 instance[2].mapping.constants.datum: 「CGCS2000」不是「datum」的取值",
            ),
            (
                "quantity_field = \"amount\"",
                "quantity_field = \"quantity\"",
                "39 instance[1].mapping.arrays.lines.columns: 「lines」的元素没有计量字段「quantity」",
            ),
            (
                "label_field = \"carrier\"",
                "label_field = \"kind\"",
                "37 instance[1].mapping.arrays.lines.label_field: 「lines」的元素没有文本字段「kind」",
            ),
            (
                "url = \"https://km.example.cn/api/gps\"",
                "url = \"ftp://km.example.cn/api/gps\"",
                "49 instance[2].source.url: 「ftp://km.example.cn/api/gps」不是 http(s) 地址",
            ),
            (
                "kind = \"http_poll\"\nurl = \"https://km.example.cn/api/energy\"\npagination = { style = \"page\", page_size = 100 }",
                "kind = \"file_drop\"\ndir = \"/nonexistent/huitong-drop\"",
                "31 instance[1].source.dir: 目录 /nonexistent/huitong-drop 不存在",
            ),
        ];
        for (from, to, expected) in cases {
            assert!(GOOD.contains(from), "{from}");
            let got = findings(&GOOD.replacen(from, to, 1));
            assert!(
                got.len() == 1 && got[0].starts_with(expected),
                "{to}:\n  got {got:#?}\n  expected {expected}"
            );
        }
    }
}
