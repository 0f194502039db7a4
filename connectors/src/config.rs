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
    /// How many instances may hold a transactional producer (and poll) at the same time.
    /// With more instances than this, an instance gives its producer up after each poll and
    /// takes a new one (fencing nothing but itself) for the next.
    #[serde(default = "default_max_active")]
    pub max_active_instances: usize,
    /// The HTTPS endpoint regional systems push to, if any.
    #[serde(default)]
    pub push: Option<crate::push::PushConfig>,
    /// The source instances to run.
    #[serde(rename = "instance", default)]
    pub instances: Vec<InstanceConfig>,
}

fn default_max_active() -> usize {
    16
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

/// The kind of source and its settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// CSV files dropped into a folder.
    FileDrop(FileDropConfig),
    /// A paginated JSON API.
    HttpPoll(crate::sources::http_poll::HttpPollConfig),
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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Source fields whose values, joined with `|`, form the source record id (the Kafka key).
    pub record_id: Vec<String>,
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
}

/// A raw quantity's source field and unit.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
            if instance.mapping.record_id.is_empty() {
                return Err(invalid(
                    "mapping.record_id must name at least one source field".to_owned(),
                ));
            }
            if self.max_active_instances == 0 {
                return Err(invalid(
                    "max_active_instances must be at least 1".to_owned(),
                ));
            }
            if instance.batch_size == 0 {
                return Err(invalid("batch_size must be at least 1".to_owned()));
            }
            for (target, q) in &instance.mapping.quantities {
                if q.unit.is_some() == q.unit_field.is_some() {
                    return Err(invalid(format!(
                        "mapping.quantities.{target}: give exactly one of `unit` and `unit_field`"
                    )));
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
}
