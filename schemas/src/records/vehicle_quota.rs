//! Official-vehicle quotas (公务用车编制): `huitong.raw.VehicleQuota` and
//! `huitong.national.VehicleQuota`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Conflict, Provenance, Region, VehicleUsageCategory};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// A unit's quota and actual count for one category and year as reported
/// (`huitong.raw.VehicleQuota`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "VehicleQuota")]
pub struct RawVehicleQuota {
    /// Where the report came from (数据来源).
    pub provenance: Provenance,
    /// USCC of the unit as sent (单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the unit as sent (单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Division code of the unit as sent (所在地行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// Year as sent (年度).
    pub year: String,
    /// Establishment category in the source's wording (编制类别).
    pub usage_category: String,
    /// Approved number of vehicles as sent (编制数).
    #[serde(default)]
    pub quota: Option<String>,
    /// Number of vehicles held as sent (实有数).
    #[serde(default)]
    pub actual: Option<String>,
    /// Approving document number as sent (批复文号).
    #[serde(default)]
    pub approval_document: Option<String>,
}

impl Record for RawVehicleQuota {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::VehicleQuota);
}

/// A unit's quota and actual count for one category and year
/// (`huitong.national.VehicleQuota`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "VehicleQuota")]
pub struct NationalVehicleQuota {
    /// National entity id (实体标识): `<owner USCC>|<year>|<category symbol>`; the Kafka key.
    pub entity_id: String,
    /// USCC of the unit (单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the unit (单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Division of the unit (所属行政区划).
    #[serde(default)]
    pub region: Option<Region>,
    /// Year (年度).
    pub year: i32,
    /// Establishment category (编制类别).
    pub usage_category: VehicleUsageCategory,
    /// Approved number of vehicles (编制数).
    #[serde(default)]
    pub quota: Option<i32>,
    /// Number of vehicles held (实有数).
    #[serde(default)]
    pub actual: Option<i32>,
    /// Approving document number (批复文号).
    #[serde(default)]
    pub approval_document: Option<String>,
    /// Every report that contributed (数据来源).
    pub contributions: Vec<Provenance>,
    /// Fields the reports disagree on (数据冲突).
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    /// Findings that did not stop publication (校验提示), `CODE: message`.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Revision of the national record (版本号), from 1.
    pub revision: i64,
    /// When the hub published this revision (更新时间).
    #[serde(with = "crate::logical::timestamp_millis")]
    pub updated_at: DateTime<Utc>,
}

impl Record for NationalVehicleQuota {
    const SCHEMA: SchemaName = SchemaName::National(Domain::VehicleQuota);
}
