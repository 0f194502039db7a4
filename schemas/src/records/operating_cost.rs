//! Operating cost of government bodies (机关运行成本): `huitong.raw.OperatingCost` and
//! `huitong.national.OperatingCost`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Conflict, CostItem, Money, Provenance, Quantity, RawQuantity, Region};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// One cost item as reported (`huitong.raw.CostLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "CostLine")]
pub struct RawCostLine {
    /// Cost item in the source's wording (成本项目).
    pub item: String,
    /// Amount as sent (金额).
    pub amount: RawQuantity,
}

/// Operating-cost statistics as sent, values not normalised (`huitong.raw.OperatingCost`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OperatingCost")]
pub struct RawOperatingCost {
    /// Where the report came from (数据来源).
    pub provenance: Provenance,
    /// USCC of the body as sent (统一社会信用代码).
    pub uscc: String,
    /// Name of the body as sent (机构名称).
    #[serde(default)]
    pub institution_name: Option<String>,
    /// Division code of the unit's seat as sent (所在地行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// Year as sent (年度).
    pub year: String,
    /// Cost by item (分项成本).
    #[serde(default)]
    pub items: Vec<RawCostLine>,
    /// Total as stated (运行成本合计).
    #[serde(default)]
    pub total: Option<RawQuantity>,
    /// Number of staff as sent (实有人数).
    #[serde(default)]
    pub staff: Option<String>,
    /// Office floor area as sent (办公用房面积).
    #[serde(default)]
    pub office_area: Option<RawQuantity>,
}

impl Record for RawOperatingCost {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::OperatingCost);
}

/// One operating-cost item (`huitong.national.CostLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "CostLine")]
pub struct NationalCostLine {
    /// Cost item (成本项目).
    pub item: CostItem,
    /// The item's name as reported (原始项目名称).
    pub reported_item: String,
    /// Amount in yuan (金额).
    pub amount: Money,
}

/// A government body's operating cost for one year (`huitong.national.OperatingCost`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OperatingCost")]
pub struct NationalOperatingCost {
    /// National entity id (实体标识): `<USCC>|<year>`; the Kafka key.
    pub entity_id: String,
    /// USCC of the body (统一社会信用代码).
    pub uscc: String,
    /// Name of the body (机构名称).
    #[serde(default)]
    pub institution_name: Option<String>,
    /// Division of the body (所属行政区划).
    #[serde(default)]
    pub region: Option<Region>,
    /// Year (年度).
    pub year: i32,
    /// Cost by item (分项成本).
    #[serde(default)]
    pub items: Vec<NationalCostLine>,
    /// Total in yuan, the sum of `items` (运行成本合计).
    pub total: Money,
    /// Total as the source stated it (上报合计).
    #[serde(default)]
    pub total_reported: Option<Money>,
    /// Number of staff (实有人数).
    #[serde(default)]
    pub staff: Option<i32>,
    /// Office floor area in m² (办公用房面积).
    #[serde(default)]
    pub office_area: Option<Quantity>,
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

impl Record for NationalOperatingCost {
    const SCHEMA: SchemaName = SchemaName::National(Domain::OperatingCost);
}
