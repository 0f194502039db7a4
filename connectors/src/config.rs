//! The connector's configuration file (TOML): which source instances to run and how each maps
//! its system's records to the raw form. Regional differences live here, never in code.
//!
//! ```toml
//! connector_id = "yn-connector-1"
//! registry_url = "http://127.0.0.1:9644"
//!
//! [kafka]
//! bootstrap = "127.0.0.1:9092"
//!
//! [[instance]]
//! id = "530114-vehicles"          # unique; names the progress record and transactional id
//! system_id = "cg-county-vehicles" # the source system, written into provenance
//! region_code = "530114"
//! level = "county"
//! domain = "vehicle"
//! poll_interval = "30s"
//!
//! [instance.source]
//! kind = "file_drop"
//! dir = "/srv/drop/530114"
//! encoding = "gbk"
//!
//! [instance.mapping]
//! record_id = ["车架号"]
//! fields = { vin = "车架号", plate = "号牌号码", owner_uscc = "使用单位统一社会信用代码" }
//! quantities = { purchase_price = { field = "购置价格", unit = "万元" } }
//! values = { energy_type = { "纯电动" = "BEV", "汽油" = "GASOLINE" } }
//! dates = { purchase_date = "%Y年%m月%d日" }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemas::records::ReportingLevel;
use schemas::{ClientSettings, Domain, topics};
use serde::Deserialize;

/// A whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// This connector process's id, written into every record's provenance (`connector_id`).
    pub connector_id: String,
    /// How to reach Kafka.
    pub kafka: ClientSettings,
    /// URL of the Schema Registry (Huitong's hub or any Confluent-compatible one).
    pub registry_url: String,
    /// Compacted topic holding every instance's progress (created if missing).
    #[serde(default = "default_progress_topic")]
    pub progress_topic: String,
    /// Replication factor of the progress topic when the connector creates it (3 in
    /// production; 1 on a single-node cluster).
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// Topic receiving records a connector cannot map (default `hub.quarantine`).
    #[serde(default = "default_quarantine_topic")]
    pub quarantine_topic: String,
    /// Task slots ([`crate::slot`]): threads each with one transactional producer, on which the
    /// instances run (an instance always on the same one). More slots poll more slow sources
    /// at once; each costs a Kafka producer. Stop every process of the connector before
    /// changing it.
    #[serde(default = "default_slots")]
    pub slots: usize,
    /// What one input may cost ([`crate::limits`]); every key has a default.
    #[serde(default)]
    pub limits: crate::limits::Limits,
    /// The HTTPS endpoint regional systems push to, if any.
    #[serde(default)]
    pub push: Option<crate::push::PushConfig>,
    /// The source instances to run.
    #[serde(rename = "instance", default)]
    pub instances: Vec<InstanceConfig>,
}

fn default_slots() -> usize {
    8
}

fn default_progress_topic() -> String {
    "connector.progress".to_owned()
}

fn default_replication_factor() -> i32 {
    1
}

fn default_quarantine_topic() -> String {
    topics::QUARANTINE.to_owned()
}

/// The administrative level of the system an instance reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A provincial platform (省级).
    Province,
    /// A prefecture or city platform (州/市/盟级).
    Prefecture,
    /// A county platform (县/区/旗级).
    County,
}

impl From<Level> for ReportingLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Province => ReportingLevel::Province,
            Level::Prefecture => ReportingLevel::Prefecture,
            Level::County => ReportingLevel::County,
        }
    }
}

/// One source instance: one regional system, one domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Unique id of the instance; names its progress record and its transactional id.
    pub id: String,
    /// Id of the source system, written into provenance (`source_system_id`).
    pub system_id: String,
    /// GB/T 2260 code of the region whose system this is (e.g. `530114`).
    pub region_code: String,
    /// Level of that system.
    pub level: Level,
    /// The domain of the records it serves.
    pub domain: Domain,
    /// The topic to write to; default `raw.<domain>`.
    #[serde(default)]
    pub topic: Option<String>,
    /// How long to wait between polls once the source has nothing new (e.g. `30s`, `5m`).
    #[serde(with = "humantime_serde", default = "default_poll_interval")]
    pub poll_interval: Duration,
    /// Records per Kafka transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// What a record that cannot be written does, as Kafka Connect's `errors.tolerance`.
    #[serde(default)]
    pub errors_tolerance: ErrorsTolerance,
    /// Where the records come from.
    pub source: SourceConfig,
    /// How a source record becomes a raw record.
    pub mapping: MappingConfig,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_batch_size() -> usize {
    500
}

impl InstanceConfig {
    /// The topic this instance writes its raw records to.
    pub fn topic(&self) -> String {
        self.topic
            .clone()
            .unwrap_or_else(|| topics::raw(self.domain))
    }
}

/// What a record that cannot be written does (it fails mapping or the raw schema, or is over a
/// limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorsTolerance {
    /// It goes to the quarantine topic (the dead-letter topic) with its reason code and
    /// location, is counted, and the instance goes on.
    #[default]
    All,
    /// The instance fails (`errors_tolerance_none`) at the first such record and writes
    /// nothing of its batch until the source or the mapping is fixed — for systems whose
    /// records must arrive complete or not at all.
    None,
}

/// The kind of source and its settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// CSV files dropped into a folder.
    FileDrop(FileDropConfig),
    /// A paginated JSON API (boxed: its settings are many times the others').
    HttpPoll(Box<crate::sources::http_poll::HttpPollConfig>),
    /// A PostgreSQL table read by an `(updated_at, id)` watermark.
    SqlPoll(crate::sources::sql_poll::SqlPollConfig),
}

/// Settings of a `file_drop` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDropConfig {
    /// The folder watched for files; ingested files move to `done/`, unreadable ones to
    /// `failed/` inside it.
    pub dir: PathBuf,
    /// Text encoding of the files.
    #[serde(default)]
    pub encoding: TextEncoding,
    /// Field delimiter.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// When a file counts as completely written, so one still being exported is left alone.
    /// Default: unmodified for 10 s (`complete = { settled = "10s" }`); a system that writes
    /// a marker after each file can say so instead (`complete = { marker = ".ok" }`: `a.csv`
    /// is taken once `a.csv.ok` exists).
    #[serde(default)]
    pub complete: Completion,
}

/// How a `file_drop` source tells that a file is completely written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Completion {
    /// The file has not been modified for this long (its size and contents are stable).
    Settled(#[serde(with = "humantime_serde")] Duration),
    /// A marker file named after it with this suffix exists; it is moved along with the file.
    Marker(String),
}

impl Default for Completion {
    fn default() -> Self {
        Completion::Settled(Duration::from_secs(10))
    }
}

fn default_delimiter() -> char {
    ','
}

/// Text encodings regional exports come in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    /// UTF-8 (a byte-order mark is skipped).
    #[default]
    Utf8,
    /// GBK, as Chinese Excel exports default to.
    Gbk,
    /// GB 18030, the superset of GBK.
    Gb18030,
}

/// How one source record maps to the raw form of the instance's domain. Target names are the
/// raw schema's field names; source names are the system's own (often Chinese) column names.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Source fields whose values, joined with `|`, form the source record id (each record's
    /// `provenance.source_record_id`; its Kafka key only when it has no partition key).
    pub record_id: Vec<String>,
    /// The source field holding the record's version (an updated-at time or a revision
    /// number). Unset: the version is a hash of the record's content. A record with the id and
    /// version of one committed just before (a page the server repeats) is skipped; the same id
    /// with another version (a revised report) is written.
    #[serde(default)]
    pub version_field: Option<String>,
    /// Raw field ← source field, for text copied as sent.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Raw quantity field ← a source field and its unit.
    #[serde(default)]
    pub quantities: BTreeMap<String, QuantityMapping>,
    /// Raw field → (source value → value written), applied after renaming, e.g.
    /// `energy_type = { "纯电动" = "BEV" }`.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Raw field → `chrono` format of the source's dates or times (e.g. `%Y年%m月%d日`); the
    /// value is written in ISO 8601 form. A value that does not match quarantines the record.
    #[serde(default)]
    pub dates: BTreeMap<String, String>,
    /// Raw field → a fixed value for every record (e.g. `datum = "GCJ02"`).
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    /// The source field holding when the source last changed the record, and its format.
    #[serde(default)]
    pub source_timestamp: Option<TimestampMapping>,
    /// Raw array field ← one element per source column, for systems that report one column
    /// per energy carrier (能源品种), cost item (成本项目) or use of space where the raw schema
    /// has a list (`lines`, `items`, `areas`), e.g.
    /// `lines = { label_field = "carrier", quantity_field = "amount", columns = [...] }`.
    #[serde(default)]
    pub arrays: BTreeMap<String, ArrayMapping>,
}

/// A raw array built from several source columns: each column with a value becomes one
/// element holding the column's label and its value with the unit. A blank or missing cell
/// means the system reported nothing for that column, and the array has no element for it
/// (a zero is written only when the source wrote one).
///
/// ```toml
/// [instance.mapping.arrays.lines]   # huitong.raw.EnergyReport's `lines`
/// label_field = "carrier"
/// quantity_field = "amount"
/// columns = [
///   { label = "电力", field = "电力(万千瓦时)", unit = "万千瓦时" },
///   { label = "天然气", field = "天然气", unit = "立方米" },
///   # a second quantity of the same element, e.g. what the carrier cost:
///   { label = "汽油", field = "汽油", unit = "升", quantities = { cost = { field = "油费", unit = "元" } } },
/// ]
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ArrayMapping {
    /// The element's field receiving each column's `label` (e.g. `carrier`, `item`, `use`).
    pub label_field: String,
    /// The element's quantity field receiving each column's value and unit (e.g. `amount`).
    pub quantity_field: String,
    /// The columns, in the order their elements are written.
    pub columns: Vec<ColumnMapping>,
}

/// One source column of an [`ArrayMapping`] and the element it becomes.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// Text written into the element's label field, in the wording the system's form uses
    /// (e.g. `电力`, `公务用车运行维护费`); the hub maps it to the national code.
    pub label: String,
    /// The source field with the number.
    pub field: String,
    /// The unit, when the system states it once for the whole column (e.g. `万千瓦时`); kept as
    /// stated, the hub converts to canonical units.
    #[serde(default)]
    pub unit: Option<String>,
    /// The source field holding each record's unit, when the system sends it per record.
    #[serde(default)]
    pub unit_field: Option<String>,
    /// Further quantities of the same element: element field ← a source field and its unit
    /// (e.g. `cost = { field = "电费", unit = "元" }`). Left out when blank; a record with one
    /// of these but no value in `field` is quarantined (the element's main quantity is
    /// required).
    #[serde(default)]
    pub quantities: BTreeMap<String, QuantityMapping>,
}

/// A raw quantity's source field and unit.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QuantityMapping {
    /// The source field with the number.
    pub field: String,
    /// The unit, when the system states it once for the whole column (e.g. `万千瓦时`).
    #[serde(default)]
    pub unit: Option<String>,
    /// The source field holding each record's unit, when the system sends it per record.
    #[serde(default)]
    pub unit_field: Option<String>,
}

/// Where the source's modification time of a record is.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimestampMapping {
    /// The source field.
    pub field: String,
    /// Its `chrono` format; local times are China Standard Time (UTC+8).
    pub format: String,
}

/// A configuration file that cannot be used; the message names the file, and the line and
/// field where that is known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the configuration's shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The file parses but is inconsistent.
    #[error("{path}: instance `{instance}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The instance at fault.
        instance: String,
        /// What is wrong.
        message: String,
    },
    /// A `[limits]` value is unusable.
    #[error("{path}: [limits]: {message}")]
    Limits {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The `[push]` table parses but is inconsistent.
    #[error("{path}: [push]: {message}")]
    Push {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ConnectorConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks configuration text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: ConnectorConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((0, 0));
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        self.limits.check().map_err(|message| ConfigError::Limits {
            path: path.to_owned(),
            message,
        })?;
        if let Some(push) = &self.push {
            push.check().map_err(|message| ConfigError::Push {
                path: path.to_owned(),
                message,
            })?;
        }
        let mut ids = BTreeSet::new();
        for instance in &self.instances {
            let invalid = |message: String| ConfigError::Invalid {
                path: path.to_owned(),
                instance: instance.id.clone(),
                message,
            };
            if !ids.insert(&instance.id) {
                return Err(invalid("the id is used by another instance".to_owned()));
            }
            if instance.region_code.len() != 6
                || !instance.region_code.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(format!(
                    "region_code `{}` is not a 6-digit GB/T 2260 code",
                    instance.region_code
                )));
            }
            if self.slots == 0 {
                return Err(invalid("slots must be at least 1".to_owned()));
            }
            if instance.batch_size == 0 {
                return Err(invalid("batch_size must be at least 1".to_owned()));
            }
            instance.mapping.check().map_err(invalid)?;
        }
        Ok(())
    }
}

impl MappingConfig {
    /// Checks what the types cannot: an id of at least one field, one way to each unit, and
    /// arrays that fit together.
    pub fn check(&self) -> Result<(), String> {
        if self.record_id.is_empty() {
            return Err("mapping.record_id must name at least one source field".to_owned());
        }
        for (target, q) in &self.quantities {
            if q.unit.is_some() == q.unit_field.is_some() {
                return Err(format!(
                    "mapping.quantities.{target}: give exactly one of `unit` and `unit_field`"
                ));
            }
        }
        self.check_arrays()
    }

    /// Checks the array mappings: every array has columns, each column one way to its unit,
    /// element field names do not collide, and no array field is also mapped another way.
    fn check_arrays(&self) -> Result<(), String> {
        for (target, array) in &self.arrays {
            let at = format!("mapping.arrays.{target}");
            if self.fields.contains_key(target)
                || self.quantities.contains_key(target)
                || self.constants.contains_key(target)
            {
                return Err(format!(
                    "{at}: `{target}` is also mapped in `fields`, `quantities` or `constants`"
                ));
            }
            if array.columns.is_empty() {
                return Err(format!("{at}: `columns` must list at least one column"));
            }
            if array.label_field == array.quantity_field {
                return Err(format!(
                    "{at}: `label_field` and `quantity_field` must differ"
                ));
            }
            for (i, column) in array.columns.iter().enumerate() {
                if column.unit.is_some() == column.unit_field.is_some() {
                    return Err(format!(
                        "{at}.columns[{i}] (`{}`): give exactly one of `unit` and `unit_field`",
                        column.field
                    ));
                }
                for (name, q) in &column.quantities {
                    if *name == array.label_field || *name == array.quantity_field {
                        return Err(format!(
                            "{at}.columns[{i}].quantities.{name}: the element field is \
                             `label_field` or `quantity_field` already"
                        ));
                    }
                    if q.unit.is_some() == q.unit_field.is_some() {
                        return Err(format!(
                            "{at}.columns[{i}].quantities.{name}: give exactly one of `unit` \
                             and `unit_field`"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
connector_id = "c1"
registry_url = "http://127.0.0.1:9644"
[kafka]
bootstrap = "127.0.0.1:9092"
[[instance]]
id = "i1"
system_id = "s1"
region_code = "530114"
level = "county"
domain = "vehicle"
poll_interval = "5s"
[instance.source]
kind = "file_drop"
dir = "/tmp/drop"
encoding = "gbk"
[instance.mapping]
record_id = ["车架号"]
fields = { vin = "车架号" }
quantities = { purchase_price = { field = "购置价格", unit = "万元" } }
"#;

    fn parse(text: &str) -> Result<ConnectorConfig, String> {
        ConnectorConfig::parse(Path::new("c.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let config = parse(GOOD).expect("parses");
        let instance = &config.instances[0];
        assert_eq!(instance.domain, Domain::Vehicle);
        assert_eq!(instance.poll_interval, Duration::from_secs(5));
        assert_eq!(instance.batch_size, 500);
        assert_eq!(instance.topic(), "raw.vehicle");
        assert_eq!(config.progress_topic, "connector.progress");
        let SourceConfig::FileDrop(source) = &instance.source else {
            panic!("a file_drop source");
        };
        assert_eq!(source.encoding, TextEncoding::Gbk);
    }

    const ARRAYS: &str = r#"
[instance.mapping.arrays.lines]
label_field = "carrier"
quantity_field = "amount"
columns = [
  { label = "电力", field = "电力(万千瓦时)", unit = "万千瓦时" },
  { label = "天然气", field = "天然气", unit_field = "天然气单位", quantities = { cost = { field = "燃气费", unit = "元" } } },
]
"#;

    #[test]
    fn array_mappings_parse_and_are_checked() {
        let good = format!("{GOOD}{ARRAYS}");
        let config = parse(&good).expect("parses");
        let lines = &config.instances[0].mapping.arrays["lines"];
        assert_eq!(
            (lines.label_field.as_str(), lines.quantity_field.as_str()),
            ("carrier", "amount")
        );
        let labels: Vec<&str> = lines.columns.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["电力", "天然气"]);
        assert_eq!(
            lines.columns[1].quantities["cost"].unit.as_deref(),
            Some("元")
        );

        let cases = [
            (
                good.replace("columns = [", "colums = ["),
                "c.toml:25:1: unknown field `colums`, expected one of `label_field`",
            ),
            (
                good.replace("unit = \"万千瓦时\" }", "unit = \"万千瓦时\", scale = 1 }"),
                "c.toml:26:54: unknown field `scale`",
            ),
            (
                good.replace(", unit = \"万千瓦时\"", ""),
                "c.toml: instance `i1`: mapping.arrays.lines.columns[0] (`电力(万千瓦时)`): give \
                 exactly one of `unit` and `unit_field`",
            ),
            (
                good.replace("unit = \"元\"", "unit = \"元\", unit_field = \"u\""),
                "c.toml: instance `i1`: mapping.arrays.lines.columns[1].quantities.cost: give",
            ),
            (
                good.replace("quantities = { cost", "quantities = { carrier"),
                "c.toml: instance `i1`: mapping.arrays.lines.columns[1].quantities.carrier: \
                 the element field",
            ),
            (
                good.replace(
                    "quantity_field = \"amount\"",
                    "quantity_field = \"carrier\"",
                ),
                "c.toml: instance `i1`: mapping.arrays.lines: `label_field` and",
            ),
            (
                format!(
                    "{GOOD}[instance.mapping.arrays.lines]\nlabel_field = \"a\"\nquantity_field = \"b\"\ncolumns = []\n"
                ),
                "c.toml: instance `i1`: mapping.arrays.lines: `columns` must list",
            ),
            (
                good.replace(
                    "fields = { vin = \"车架号\" }",
                    "fields = { lines = \"车架号\" }",
                ),
                "c.toml: instance `i1`: mapping.arrays.lines: `lines` is also mapped",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).expect_err(expected);
            assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                GOOD.replace("encoding = \"gbk\"", "encodng = \"gbk\""),
                "c.toml:13:1: unknown field `encodng`, expected one of `dir`, `encoding`",
            ),
            (
                GOOD.replace("domain = \"vehicle\"", "domain = \"vehicles\""),
                "c.toml:11:10: unknown domain `vehicles`",
            ),
            (
                GOOD.replace("level = \"county\"", "level = \"town\""),
                "c.toml:10:9: unknown variant `town`",
            ),
            (
                GOOD.replace("region_code = \"530114\"", "region_code = \"5301\""),
                "c.toml: instance `i1`: region_code `5301` is not a 6-digit GB/T 2260 code",
            ),
            (
                GOOD.replace(", unit = \"万元\"", ""),
                "c.toml: instance `i1`: mapping.quantities.purchase_price: give exactly one",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).expect_err(expected);
            assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
        }
    }

    const PUSH: &str = r#"
[push]
listen = "127.0.0.1:8443"
tls_cert = "/etc/huitong/push.crt"
tls_key = "/etc/huitong/push.key"
client_ca = "/etc/huitong/regional-ca.pem"
[[push.client]]
certificate_sha256 = "5d:0b:2f:9a:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:01:02:03:04:05:06:07:08:09:0a:0b:0c"
system_id = "cg-county"
region_code = "530114"
level = "county"
domains = ["vehicle"]
[[push.client]]
token = "km-secret"
system_id = "km-city"
region_code = "530100"
level = "prefecture"
domains = ["vehicle", "institution"]
"#;

    #[test]
    fn push_clients_have_exactly_one_identity() {
        let good = format!("{GOOD}{PUSH}");
        let push = parse(&good).expect("parses").push.expect("[push]");
        let identities: Vec<String> = push
            .clients
            .iter()
            .map(|c| match &c.identity {
                crate::push::ClientIdentity::Token(t) => t.clone(),
                crate::push::ClientIdentity::Certificate(f) => f.to_string(),
            })
            .collect();
        assert_eq!(
            identities,
            [
                "5D:0B:2F:9A:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:01:02:03:04:05:06:07:08:09:0A:0B:0C",
                "km-secret"
            ]
        );

        // toml places an entry's own errors at the first line of its array of tables: the
        // message names the entry by its system.
        let cases = [
            (
                good.replace("token = \"km-secret\"\n", ""),
                "c.toml:27:1: client `km-city`: give exactly one of `token` (non-empty) and \
                 `certificate_sha256`",
            ),
            (
                good.replace("token = \"km-secret\"", "token = \"km-secret\"\ncertificate_sha256 = \"00\""),
                "c.toml:27:1: client `km-city`: give exactly one",
            ),
            (
                good.replace("token = \"km-secret\"", "token = \"\""),
                "c.toml:27:1: client `km-city`: give exactly one",
            ),
            (
                good.replace(":0b:0c\"", ":0b\""),
                "c.toml:27:1: client `cg-county`: certificate_sha256 `5d:0b",
            ),
            (
                good.replace("token = \"km-secret\"", "tokn = \"km-secret\""),
                "c.toml:34:1: unknown field `tokn`, expected one of `token`, `certificate_sha256`",
            ),
            (
                good.replace("client_ca = \"/etc/huitong/regional-ca.pem\"\n", ""),
                "c.toml: [push]: client `cg-county` is identified by `certificate_sha256`, which \
                 needs `client_ca`",
            ),
            (
                good.replace("\"km-secret\"\nsystem_id = \"km-city\"\nregion_code = \"530100\"\nlevel = \"prefecture\"",
                    "\"km-secret\"\nsystem_id = \"cg-county\"\nregion_code = \"530100\"\nlevel = \"county\""),
                "c.toml: [push]: the entries of client `cg-county` disagree on region_code, level, \
                 domains or mapping",
            ),
            (
                good.replace("domains = [\"vehicle\", \"institution\"]", "domains = []"),
                "c.toml: [push]: client `km-city`: `domains` must list the domains it may push",
            ),
            (
                good.replace("domains = [\"vehicle\", \"institution\"]", "domains = [\"car\"]"),
                "c.toml:38:11: unknown domain `car`",
            ),
            (
                format!("{good}[[push.client]]\ntoken = \"km-secret\"\nsystem_id = \"x\"\nregion_code = \"530000\"\nlevel = \"province\"\ndomains = [\"vehicle\"]\n"),
                "c.toml: [push]: clients `km-city` and `x` have the same token",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).expect_err(expected);
            assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
        }
    }
}
