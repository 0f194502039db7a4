//! Energy and water consumption of public institutions (公共机构能源资源消费统计):
//! `huitong.raw.EnergyReport` and `huitong.national.EnergyReport`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::common::{
    Conflict, EnergyCarrier, InstitutionType, Money, PeriodType, Provenance, Quantity, RawQuantity,
    Region,
};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// Consumption of one carrier as reported (`huitong.raw.EnergyLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "EnergyLine")]
pub struct RawEnergyLine {
    /// Carrier in the source's wording (能源品种).
    pub carrier: String,
    /// Physical amount as sent (实物消费量).
    pub amount: RawQuantity,
    /// Amount paid as sent (费用).
    #[serde(default)]
    pub cost: Option<RawQuantity>,
}

/// A consumption report as sent, values not normalised (`huitong.raw.EnergyReport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "EnergyReport")]
pub struct RawEnergyReport {
    /// Where the report came from (数据来源).
    pub provenance: Provenance,
    /// USCC of the institution as sent (统一社会信用代码).
    pub uscc: String,
    /// Name of the institution as sent (机构名称).
    #[serde(default)]
    pub institution_name: Option<String>,
    /// Division code of the institution's seat as sent (所在地行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// Reporting period as sent (统计期).
    pub period: String,
    /// Consumption by carrier (分品种能源消费量).
    #[serde(default)]
    pub lines: Vec<RawEnergyLine>,
    /// Total consumption as stated (能源消费总量).
    #[serde(default)]
    pub total_energy: Option<RawQuantity>,
    /// Water consumption as sent (用水量).
    #[serde(default)]
    pub water: Option<RawQuantity>,
    /// Number of energy users as sent (用能人数).
    #[serde(default)]
    pub energy_users: Option<String>,
    /// Number of staff as sent (编制/实有人数).
    #[serde(default)]
    pub staff: Option<String>,
    /// Building floor area as sent (建筑面积).
    #[serde(default)]
    pub building_area: Option<RawQuantity>,
}

impl Record for RawEnergyReport {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::EnergyReport);
}

/// Consumption of one carrier with its standard-coal equivalent
/// (`huitong.national.EnergyLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "EnergyLine")]
pub struct NationalEnergyLine {
    /// Energy carrier (能源品种).
    pub carrier: EnergyCarrier,
    /// Physical amount in the carrier's canonical unit (实物消费量).
    pub amount: Quantity,
    /// Standard-coal equivalent in kgce (折标准煤量).
    pub standard_coal: Quantity,
    /// Coefficient applied, kgce per canonical unit (折标系数), decimal(24,6).
    #[serde(with = "crate::logical::decimal_24_6")]
    pub kgce_per_unit: Decimal,
    /// Source of the coefficient (折标系数来源).
    pub coefficient_source: String,
    /// Amount paid in yuan (能源费用).
    #[serde(default)]
    pub cost: Option<Money>,
}

/// A public institution's consumption for one period (`huitong.national.EnergyReport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "EnergyReport")]
pub struct NationalEnergyReport {
    /// National entity id (实体标识): `<USCC>|<period>`; the Kafka key.
    pub entity_id: String,
    /// USCC of the institution (统一社会信用代码).
    pub uscc: String,
    /// Name of the institution (机构名称).
    #[serde(default)]
    pub institution_name: Option<String>,
    /// Type of public institution (公共机构类型).
    #[serde(default)]
    pub institution_type: Option<InstitutionType>,
    /// Division of the institution (所属行政区划).
    #[serde(default)]
    pub region: Option<Region>,
    /// Canonical period (统计期): `YYYY-MM`, `YYYY-Qn` or `YYYY`.
    pub period: String,
    /// Length of the period (统计周期).
    pub period_type: PeriodType,
    /// First day of the period (统计期起始日).
    #[serde(with = "crate::logical::date")]
    pub period_start: NaiveDate,
    /// Last day of the period, inclusive (统计期截止日).
    #[serde(with = "crate::logical::date")]
    pub period_end: NaiveDate,
    /// Consumption by carrier (分品种能源消费量).
    #[serde(default)]
    pub lines: Vec<NationalEnergyLine>,
    /// Total consumption in kgce, computed (能源消费总量).
    pub total_energy: Quantity,
    /// Total consumption as the source stated it, in kgce (上报能源消费总量).
    #[serde(default)]
    pub total_energy_reported: Option<Quantity>,
    /// Water consumption in m³ (用水量).
    #[serde(default)]
    pub water: Option<Quantity>,
    /// Number of energy users (用能人数).
    #[serde(default)]
    pub energy_users: Option<i32>,
    /// Number of staff (编制/实有人数).
    #[serde(default)]
    pub staff: Option<i32>,
    /// Building floor area in m² (建筑面积).
    #[serde(default)]
    pub building_area: Option<Quantity>,
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

impl Record for NationalEnergyReport {
    const SCHEMA: SchemaName = SchemaName::National(Domain::EnergyReport);
}
