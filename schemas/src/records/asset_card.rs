//! State-asset cards of administrative and public institutions (行政事业性国有资产):
//! `huitong.raw.AssetCard` and `huitong.national.AssetCard`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::common::{
    AcquisitionMode, AssetCategoryEdition, AssetStatus, Conflict, Money, Provenance, RawQuantity,
    Region,
};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// An asset card as sent, values not normalised (`huitong.raw.AssetCard`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "AssetCard")]
pub struct RawAssetCard {
    /// Where the report came from (数据来源).
    pub provenance: Provenance,
    /// USCC of the holding unit as sent (占有使用单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the holding unit as sent (单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Division code of the owning unit's seat as sent (所在地行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// Asset code as sent (资产编号).
    pub asset_code: String,
    /// Asset name as sent (资产名称).
    #[serde(default)]
    pub asset_name: Option<String>,
    /// Category code as sent (资产分类代码).
    #[serde(default)]
    pub category_code: Option<String>,
    /// Category name as sent (资产分类名称).
    #[serde(default)]
    pub category_name: Option<String>,
    /// Classification edition the source declared (分类标准版本).
    #[serde(default)]
    pub category_edition: Option<String>,
    /// Original value as sent (原值).
    #[serde(default)]
    pub original_value: Option<RawQuantity>,
    /// Accumulated depreciation as sent (累计折旧/摊销).
    #[serde(default)]
    pub accumulated_depreciation: Option<RawQuantity>,
    /// Net value as sent (净值).
    #[serde(default)]
    pub net_value: Option<RawQuantity>,
    /// Acquisition mode in the source's wording (取得方式).
    #[serde(default)]
    pub acquisition_mode: Option<String>,
    /// Acquisition date as sent (取得日期).
    #[serde(default)]
    pub acquisition_date: Option<String>,
    /// Accounting date as sent (入账日期).
    #[serde(default)]
    pub accounting_date: Option<String>,
    /// Use status in the source's wording (使用状况).
    #[serde(default)]
    pub status: Option<String>,
}

impl Record for RawAssetCard {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::AssetCard);
}

/// A state-asset card (`huitong.national.AssetCard`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "AssetCard")]
pub struct NationalAssetCard {
    /// National entity id (实体标识): `<owner USCC>|<asset code>`; the Kafka key.
    pub entity_id: String,
    /// USCC of the holding unit (占有使用单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the holding unit (单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Division of the holding unit (所属行政区划).
    #[serde(default)]
    pub region: Option<Region>,
    /// Asset code (资产编号).
    pub asset_code: String,
    /// Asset name (资产名称).
    #[serde(default)]
    pub asset_name: Option<String>,
    /// Category code in `category_edition` (资产分类代码).
    #[serde(default)]
    pub category_code: Option<String>,
    /// Category name as the source worded it (资产分类名称); the code identifies the category.
    #[serde(default)]
    pub category_name: Option<String>,
    /// Edition of GB/T 14885 of the category code (分类标准版本).
    #[serde(default)]
    pub category_edition: Option<AssetCategoryEdition>,
    /// Original value in yuan (原值).
    #[serde(default)]
    pub original_value: Option<Money>,
    /// Accumulated depreciation in yuan (累计折旧/摊销).
    #[serde(default)]
    pub accumulated_depreciation: Option<Money>,
    /// Net value in yuan (净值).
    #[serde(default)]
    pub net_value: Option<Money>,
    /// Acquisition mode (取得方式).
    #[serde(default)]
    pub acquisition_mode: Option<AcquisitionMode>,
    /// Acquisition date (取得日期).
    #[serde(default, with = "crate::logical::date::option")]
    pub acquisition_date: Option<NaiveDate>,
    /// Accounting date (入账日期).
    #[serde(default, with = "crate::logical::date::option")]
    pub accounting_date: Option<NaiveDate>,
    /// Use status (使用状况).
    #[serde(default)]
    pub status: Option<AssetStatus>,
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

impl Record for NationalAssetCard {
    const SCHEMA: SchemaName = SchemaName::National(Domain::AssetCard);
}
