//! Office space (办公用房): `huitong.raw.OfficeBuilding` and `huitong.national.OfficeBuilding`,
//! each with its nested areas, rooms and occupants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{
    Conflict, OfficeSpaceUse, OfficialRank, Provenance, Quantity, RawQuantity, Region,
};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// Floor area of one use as reported (`huitong.raw.OfficeArea`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeArea")]
pub struct RawOfficeArea {
    /// Use in the source's wording (用房类型).
    pub r#use: String,
    /// Gross floor area as sent (建筑面积).
    pub area: RawQuantity,
}

/// A person assigned to a room as reported (`huitong.raw.OfficeOccupant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeOccupant")]
pub struct RawOfficeOccupant {
    /// Pseudonymous reference to the person (人员标识), never a name.
    #[serde(default)]
    pub person_ref: Option<String>,
    /// Rank in the source's wording (职级).
    #[serde(default)]
    pub rank: Option<String>,
    /// Post held as sent (职务).
    #[serde(default)]
    pub post: Option<String>,
}

/// A room as reported (`huitong.raw.OfficeRoom`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeRoom")]
pub struct RawOfficeRoom {
    /// Room number as sent (房间号).
    pub room_number: String,
    /// Floor as sent (楼层).
    #[serde(default)]
    pub floor: Option<String>,
    /// Use in the source's wording (房间用途).
    #[serde(default)]
    pub r#use: Option<String>,
    /// Usable area as sent (使用面积).
    #[serde(default)]
    pub usable_area: Option<RawQuantity>,
    /// People assigned to the room (使用人).
    #[serde(default)]
    pub occupants: Vec<RawOfficeOccupant>,
}

/// An office building as reported, values not normalised (`huitong.raw.OfficeBuilding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeBuilding")]
pub struct RawOfficeBuilding {
    /// Where the report came from (数据来源).
    pub provenance: Provenance,
    /// Real-estate unit number as sent (不动产单元号).
    #[serde(default)]
    pub property_unit_number: Option<String>,
    /// USCC of the holding unit as sent (权属单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the holding unit as sent (权属单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Building name as sent (楼宇名称).
    #[serde(default)]
    pub building_name: Option<String>,
    /// Street address as sent (坐落地址).
    #[serde(default)]
    pub address: Option<String>,
    /// Division code of the site as sent (所在地行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// Year of completion as sent (建成年份).
    #[serde(default)]
    pub completion_year: Option<String>,
    /// Land area as sent (占地面积).
    #[serde(default)]
    pub land_area: Option<RawQuantity>,
    /// Total gross floor area as sent (总建筑面积).
    #[serde(default)]
    pub total_floor_area: Option<RawQuantity>,
    /// Floor areas by use (分类面积).
    #[serde(default)]
    pub areas: Vec<RawOfficeArea>,
    /// Rooms (房间).
    #[serde(default)]
    pub rooms: Vec<RawOfficeRoom>,
    /// Number of rooms as sent (房间数), for sources that report a count.
    #[serde(default)]
    pub room_count: Option<String>,
}

impl Record for RawOfficeBuilding {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::OfficeBuilding);
}

/// Gross floor area of one use (`huitong.national.OfficeArea`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeArea")]
pub struct NationalOfficeArea {
    /// Use of the space (用房类型).
    pub r#use: OfficeSpaceUse,
    /// Gross floor area in m² (建筑面积).
    pub area: Quantity,
}

/// A person assigned to a room (`huitong.national.OfficeOccupant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeOccupant")]
pub struct NationalOfficeOccupant {
    /// Pseudonymous reference to the person (人员标识), never a name.
    #[serde(default)]
    pub person_ref: Option<String>,
    /// Rank (职级).
    #[serde(default)]
    pub rank: Option<OfficialRank>,
    /// Post held (职务).
    #[serde(default)]
    pub post: Option<String>,
}

/// A room (`huitong.national.OfficeRoom`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeRoom")]
pub struct NationalOfficeRoom {
    /// Room number (房间号).
    pub room_number: String,
    /// Floor label (楼层).
    #[serde(default)]
    pub floor: Option<String>,
    /// Use of the room (房间用途).
    #[serde(default)]
    pub r#use: Option<OfficeSpaceUse>,
    /// Usable area in m² (使用面积).
    #[serde(default)]
    pub usable_area: Option<Quantity>,
    /// People assigned to the room (使用人).
    #[serde(default)]
    pub occupants: Vec<NationalOfficeOccupant>,
}

/// An office building (`huitong.national.OfficeBuilding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OfficeBuilding")]
pub struct NationalOfficeBuilding {
    /// National entity id (实体标识): the real-estate unit number, else
    /// `<owner USCC>|<normalised address>`; the Kafka key.
    pub entity_id: String,
    /// Real-estate unit number (不动产单元号), GB/T 37346-2019.
    #[serde(default)]
    pub property_unit_number: Option<String>,
    /// USCC of the holding unit (权属单位统一社会信用代码).
    pub owner_uscc: String,
    /// Name of the holding unit (权属单位名称).
    #[serde(default)]
    pub owner_name: Option<String>,
    /// Building name (楼宇名称).
    #[serde(default)]
    pub building_name: Option<String>,
    /// Street address (坐落地址).
    #[serde(default)]
    pub address: Option<String>,
    /// Address normalised for matching (规范化地址).
    #[serde(default)]
    pub normalised_address: Option<String>,
    /// Division of the site (所在地行政区划).
    #[serde(default)]
    pub region: Option<Region>,
    /// Year of completion (建成年份).
    #[serde(default)]
    pub completion_year: Option<i32>,
    /// Land area in m² (占地面积).
    #[serde(default)]
    pub land_area: Option<Quantity>,
    /// Total gross floor area in m² (总建筑面积).
    #[serde(default)]
    pub total_floor_area: Option<Quantity>,
    /// Gross floor areas by use (分类面积).
    #[serde(default)]
    pub areas: Vec<NationalOfficeArea>,
    /// Rooms (房间).
    #[serde(default)]
    pub rooms: Vec<NationalOfficeRoom>,
    /// Number of rooms as reported (房间数); need not equal the rooms listed.
    #[serde(default)]
    pub room_count: Option<i32>,
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

impl Record for NationalOfficeBuilding {
    const SCHEMA: SchemaName = SchemaName::National(Domain::OfficeBuilding);
}
