//! The public-institution directory (公共机构名录库): `huitong.raw.Institution` and
//! `huitong.national.Institution`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Conflict, InstitutionStatus, InstitutionType, Provenance, Region};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// A public institution as a regional directory reported it, values not normalised
/// (`huitong.raw.Institution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Institution")]
pub struct RawInstitution {
    /// Where the report came from (数据来源).
    pub provenance: Provenance,
    /// Unified Social Credit Code as sent (统一社会信用代码).
    pub uscc: String,
    /// Registered name as sent (机构名称).
    pub name: String,
    /// Short name as sent (机构简称).
    #[serde(default)]
    pub short_name: Option<String>,
    /// Institution type in the source's wording (机构类型).
    #[serde(default)]
    pub institution_type: Option<String>,
    /// Division code of the seat as sent (所在地行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// USCC of the supervising body as sent (主管部门统一社会信用代码).
    #[serde(default)]
    pub parent_uscc: Option<String>,
    /// Name of the supervising body as sent (主管部门名称).
    #[serde(default)]
    pub parent_name: Option<String>,
    /// Authorised headcount as sent (编制数).
    #[serde(default)]
    pub authorised_staff: Option<String>,
    /// Actual headcount as sent (实有人数).
    #[serde(default)]
    pub actual_staff: Option<String>,
    /// Office address as sent (办公地址).
    #[serde(default)]
    pub address: Option<String>,
    /// Registration status in the source's wording (机构状态).
    #[serde(default)]
    pub status: Option<String>,
}

impl Record for RawInstitution {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::Institution);
}

/// A public institution in the national directory (`huitong.national.Institution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Institution")]
pub struct NationalInstitution {
    /// National entity id (实体标识): the USCC; the Kafka key.
    pub entity_id: String,
    /// Unified Social Credit Code (统一社会信用代码), check character verified.
    pub uscc: String,
    /// Registered name (机构名称).
    pub name: String,
    /// Short name (机构简称).
    #[serde(default)]
    pub short_name: Option<String>,
    /// Type of public institution (公共机构类型).
    pub institution_type: InstitutionType,
    /// Division of the seat (所在地行政区划).
    pub region: Region,
    /// USCC of the supervising body (主管部门统一社会信用代码).
    #[serde(default)]
    pub parent_uscc: Option<String>,
    /// Name of the supervising body (主管部门名称).
    #[serde(default)]
    pub parent_name: Option<String>,
    /// Authorised headcount (编制数).
    #[serde(default)]
    pub authorised_staff: Option<i32>,
    /// Actual headcount (实有人数).
    #[serde(default)]
    pub actual_staff: Option<i32>,
    /// Office address (办公地址).
    #[serde(default)]
    pub address: Option<String>,
    /// Registration status (机构状态).
    pub status: InstitutionStatus,
    /// The status label as the source wrote it (原始状态), when it maps to no national symbol
    /// (`status` is then `Other`).
    #[serde(default)]
    pub reported_status: Option<String>,
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

impl Record for NationalInstitution {
    const SCHEMA: SchemaName = SchemaName::National(Domain::Institution);
}
