//! The official-vehicle ledger (公务用车): `huitong.raw.Vehicle` and `huitong.national.Vehicle`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::common::{
    Conflict, Money, Provenance, Quantity, RawQuantity, Region, VehicleEnergyType, VehicleStatus,
    VehicleUsageCategory,
};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// An official vehicle as a regional platform reported it, values not normalised
/// (`huitong.raw.Vehicle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Vehicle")]
pub struct RawVehicle {
    /// Where the report came from (数据来源).
    pub provenance: Provenance,
    /// Licence plate exactly as sent (号牌号码).
    #[serde(default)]
    pub plate: Option<String>,
    /// VIN as sent (车辆识别代号).
    #[serde(default)]
    pub vin: Option<String>,
    /// USCC of the owning unit as sent (产权单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the owning unit as sent (产权单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Division code of the owning unit as sent (所属行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// Establishment category in the source's wording (编制类别).
    #[serde(default)]
    pub usage_category: Option<String>,
    /// Energy type in the source's wording (能源类型).
    #[serde(default)]
    pub energy_type: Option<String>,
    /// Brand and model as sent (品牌型号).
    #[serde(default)]
    pub brand_model: Option<String>,
    /// Engine displacement as sent (排量).
    #[serde(default)]
    pub displacement: Option<RawQuantity>,
    /// Purchase price as sent (购置价格).
    #[serde(default)]
    pub purchase_price: Option<RawQuantity>,
    /// Purchase date as sent (购置日期).
    #[serde(default)]
    pub purchase_date: Option<String>,
    /// Date of first registration as sent (注册登记日期).
    #[serde(default)]
    pub registration_date: Option<String>,
    /// Number of seats as sent (核定载客人数).
    #[serde(default)]
    pub seats: Option<String>,
    /// Ledger status in the source's wording (车辆状态).
    #[serde(default)]
    pub status: Option<String>,
    /// Asset-card code as sent (资产编号).
    #[serde(default)]
    pub asset_code: Option<String>,
    /// On-board GPS terminal id as sent (车载终端编号).
    #[serde(default)]
    pub terminal_id: Option<String>,
}

impl Record for RawVehicle {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::Vehicle);
}

/// An official vehicle in the national ledger (`huitong.national.Vehicle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Vehicle")]
pub struct NationalVehicle {
    /// National entity id (实体标识): the VIN, else `<plate>|<owner USCC>`; the Kafka key.
    pub entity_id: String,
    /// VIN (车辆识别代号), check digit verified.
    #[serde(default)]
    pub vin: Option<String>,
    /// Normalised licence plate (号牌号码), GA 36-2018.
    #[serde(default)]
    pub plate: Option<String>,
    /// Whether normalisation corrected the plate's serial (号牌已纠正).
    #[serde(default)]
    pub plate_corrected: bool,
    /// USCC of the owning unit (产权单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the owning unit (产权单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Division of the owning unit (所属行政区划).
    #[serde(default)]
    pub region: Option<Region>,
    /// Establishment category (编制类别).
    #[serde(default)]
    pub usage_category: Option<VehicleUsageCategory>,
    /// Energy type (能源类型).
    #[serde(default)]
    pub energy_type: Option<VehicleEnergyType>,
    /// Brand and model (品牌型号).
    #[serde(default)]
    pub brand_model: Option<String>,
    /// Engine displacement in L (排量).
    #[serde(default)]
    pub displacement: Option<Quantity>,
    /// Purchase price in yuan (购置价格).
    #[serde(default)]
    pub purchase_price: Option<Money>,
    /// Purchase date (购置日期).
    #[serde(default, with = "crate::logical::date::option")]
    pub purchase_date: Option<NaiveDate>,
    /// Date of first registration (注册登记日期).
    #[serde(default, with = "crate::logical::date::option")]
    pub registration_date: Option<NaiveDate>,
    /// Number of seats (核定载客人数).
    #[serde(default)]
    pub seats: Option<i32>,
    /// Ledger status (车辆状态).
    #[serde(default)]
    pub status: Option<VehicleStatus>,
    /// The status label as the source wrote it (原始状态), when it maps to no national symbol
    /// (`status` is then `Other`).
    #[serde(default)]
    pub reported_status: Option<String>,
    /// Asset-card code (资产编号).
    #[serde(default)]
    pub asset_code: Option<String>,
    /// On-board GPS terminal id (车载终端编号).
    #[serde(default)]
    pub terminal_id: Option<String>,
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

impl Record for NationalVehicle {
    const SCHEMA: SchemaName = SchemaName::National(Domain::Vehicle);
}
