//! Quarantined records (隔离记录): `huitong.hub.Quarantine`, what the hub writes to
//! `hub.quarantine` for a record it could not publish.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{DataDomain, Provenance};
use crate::contract::{Record, SchemaName};

/// Pipeline stage that rejected a record (处理阶段) (`huitong.hub.QuarantineStage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuarantineStage {
    /// Reading the Avro payload (解码).
    Decode,
    /// Field checks such as check characters (校验).
    Validate,
    /// Unit, code and format normalisation (标准化).
    Normalise,
    /// Computing the entity id (主键生成).
    Key,
    /// Merging with other reports of the entity (实体归并).
    Resolve,
    /// Writing the national record (发布).
    Publish,
    /// A connector mapping the source system's record to the raw form (接入).
    Ingest,
}

impl QuarantineStage {
    /// The stage's name as a metric label: lower case, e.g. `validate`.
    pub const fn as_str(self) -> &'static str {
        match self {
            QuarantineStage::Decode => "decode",
            QuarantineStage::Validate => "validate",
            QuarantineStage::Normalise => "normalise",
            QuarantineStage::Key => "key",
            QuarantineStage::Resolve => "resolve",
            QuarantineStage::Publish => "publish",
            QuarantineStage::Ingest => "ingest",
        }
    }
}

/// A record the hub could not publish, byte for byte, with the reason (`huitong.hub.Quarantine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// Stage that rejected the record (处理阶段).
    pub stage: QuarantineStage,
    /// Stable error code (错误码), lower snake case.
    pub error_code: String,
    /// Explanation, Chinese first (错误说明).
    pub message: String,
    /// Path of the offending field (问题字段), if one.
    #[serde(default)]
    pub field: Option<String>,
    /// Data domain of the source topic (数据领域).
    #[serde(default)]
    pub domain: Option<DataDomain>,
    /// Provenance of the raw record, if it decoded (数据来源).
    #[serde(default)]
    pub provenance: Option<Provenance>,
    /// Source topic (来源主题); none when a connector rejected the record (stage `Ingest`).
    #[serde(default)]
    pub source_topic: Option<String>,
    /// Source partition (来源分区).
    #[serde(default)]
    pub source_partition: Option<i32>,
    /// Source offset (来源偏移量).
    #[serde(default)]
    pub source_offset: Option<i64>,
    /// Where a connector read the record in the source system (来源位置), e.g. `a.csv:17`.
    #[serde(default)]
    pub source_location: Option<String>,
    /// The source record's key, byte for byte (原始键).
    #[serde(default, with = "crate::logical::bytes::option")]
    pub original_key: Option<Vec<u8>>,
    /// The source record's value, byte for byte (原始值).
    #[serde(default, with = "crate::logical::bytes::option")]
    pub original_value: Option<Vec<u8>>,
    /// When the record was quarantined (隔离时间).
    #[serde(with = "crate::logical::timestamp_millis")]
    pub quarantined_at: DateTime<Utc>,
}

impl Record for Quarantine {
    const SCHEMA: SchemaName = SchemaName::Quarantine;
}
