//! The shared data-resource catalogue (政务信息资源目录): `huitong.catalogue.CatalogueEntry`,
//! with the core fields of the national compilation guide and the freshness Huitong observes.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::common::DataDomain;
use crate::contract::{Record, SchemaName};

/// Position of a resource in the catalogue's classification (信息资源分类)
/// (`huitong.catalogue.ResourceClassification`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceClassification {
    /// Class (类).
    pub category: String,
    /// Item (项).
    #[serde(default)]
    pub item: Option<String>,
    /// Heading (目).
    #[serde(default)]
    pub heading: Option<String>,
    /// Sub-heading (细目).
    #[serde(default)]
    pub sub_heading: Option<String>,
}

/// Format class of a resource (信息资源格式分类) (`huitong.catalogue.ResourceFormatCategory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceFormatCategory {
    /// Database tables (数据库类).
    Database,
    /// Electronic documents (电子文件类).
    ElectronicFile,
    /// Spreadsheets (电子表格类).
    Spreadsheet,
    /// Graphics and images (图形图像类).
    Image,
    /// Audio and video (流媒体类).
    StreamingMedia,
    /// Self-describing formats such as XML, JSON or Avro (自描述格式类).
    SelfDescribing,
    /// Service interfaces (接口类).
    Interface,
    /// Any other (其他).
    Other,
}

/// One data item of a resource (信息项) (`huitong.catalogue.DataItem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataItem {
    /// Data-item name (信息项名称).
    pub name: String,
    /// Data type in the guide's notation (数据类型), e.g. 字符型C.
    pub r#type: String,
    /// Path of the field in the resource's Avro schema (对应字段).
    #[serde(default)]
    pub field_path: Option<String>,
}

/// Sharing type (共享类型) (`huitong.catalogue.ShareType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShareType {
    /// Shared without conditions (无条件共享).
    Unconditional,
    /// Shared on conditions, after approval (有条件共享).
    Conditional,
    /// Not shared (不予共享).
    NotShared,
}

/// Declared update cycle (更新周期) (`huitong.catalogue.UpdateCycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateCycle {
    /// Real time (实时).
    RealTime,
    /// Daily (每日).
    Daily,
    /// Weekly (每周).
    Weekly,
    /// Monthly (每月).
    Monthly,
    /// Quarterly (每季度).
    Quarterly,
    /// Half-yearly (每半年).
    SemiAnnual,
    /// Yearly (每年).
    Annual,
    /// Irregular (不定期).
    Irregular,
    /// Any other (其他).
    Other,
}

/// Observed freshness against the declared cycle (更新及时性) (`huitong.catalogue.Freshness`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Freshness {
    /// Updated within the cycle (按时更新).
    OnTime,
    /// No update within the cycle plus its grace period (逾期未更新).
    Overdue,
    /// Nothing observed yet (暂无数据).
    #[default]
    NoData,
    /// The cycle is irregular or other (不适用).
    NotApplicable,
}

/// One catalogue entry (政务信息资源目录条目) (`huitong.catalogue.CatalogueEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// Information-resource code (信息资源代码); the Kafka key.
    pub resource_code: String,
    /// Information-resource name (信息资源名称).
    pub name: String,
    /// Classification (信息资源分类).
    pub classification: ResourceClassification,
    /// Providing body (信息资源提供方).
    pub provider: String,
    /// Code of the providing body, its USCC (提供方代码).
    pub provider_code: String,
    /// Summary (信息资源摘要).
    pub summary: String,
    /// Format class (信息资源格式分类).
    pub format_category: ResourceFormatCategory,
    /// Concrete format (信息资源格式).
    pub format: String,
    /// Data items (信息项).
    pub data_items: Vec<DataItem>,
    /// Sharing type (共享类型).
    pub share_type: ShareType,
    /// Conditions of sharing (共享条件).
    #[serde(default)]
    pub share_condition: Option<String>,
    /// How the resource is shared (共享方式).
    #[serde(default)]
    pub share_method: Option<String>,
    /// Working days to answer a conditional-sharing request (有条件共享申请答复时限).
    #[serde(default)]
    pub request_time_limit_days: Option<i32>,
    /// Open attribute: open to the public or not (开放属性).
    pub open_to_public: bool,
    /// Conditions of opening (开放条件).
    #[serde(default)]
    pub open_condition: Option<String>,
    /// Declared update cycle (更新周期).
    pub update_cycle: UpdateCycle,
    /// Publication date (发布日期).
    #[serde(with = "crate::logical::date")]
    pub published_on: NaiveDate,
    /// Codes of related resources (关联资源代码).
    #[serde(default)]
    pub related_resource_codes: Vec<String>,
    /// Huitong data domain (数据领域).
    #[serde(default)]
    pub domain: Option<DataDomain>,
    /// Kafka topic carrying the resource (数据主题).
    #[serde(default)]
    pub topic: Option<String>,
    /// Schema Registry subject (模式主题).
    #[serde(default)]
    pub schema_subject: Option<String>,
    /// Whether the resource flows back to lower levels (数据回流).
    #[serde(default)]
    pub return_flow: bool,
    /// Observed freshness (更新及时性).
    #[serde(default)]
    pub freshness: Freshness,
    /// When the newest record was published (最近更新时间).
    #[serde(default, with = "crate::logical::timestamp_millis::option")]
    pub last_record_at: Option<DateTime<Utc>>,
    /// Records published during the last declared cycle (最近周期记录数).
    #[serde(default)]
    pub records_last_cycle: Option<i64>,
    /// When the freshness fields were computed (观测时间).
    #[serde(default, with = "crate::logical::timestamp_millis::option")]
    pub observed_at: Option<DateTime<Utc>>,
    /// When the entry last changed (条目更新时间).
    #[serde(with = "crate::logical::timestamp_millis")]
    pub updated_at: DateTime<Utc>,
}

impl Record for CatalogueEntry {
    const SCHEMA: SchemaName = SchemaName::CatalogueEntry;
}
