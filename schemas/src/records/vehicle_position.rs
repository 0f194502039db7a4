//! GPS track points of official vehicles (车辆轨迹): `huitong.raw.VehiclePosition` and
//! `huitong.national.VehiclePosition`. The high-volume stream, so both records are lean.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Conflict, GeodeticDatum, Provenance, Region};
use crate::Domain;
use crate::contract::{Record, SchemaName};

/// A GPS point as a platform sent it (`huitong.raw.VehiclePosition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "VehiclePosition")]
pub struct RawVehiclePosition {
    /// Where the point came from (数据来源).
    pub provenance: Provenance,
    /// Terminal or source vehicle id as sent (车载终端编号).
    #[serde(default)]
    pub terminal_id: Option<String>,
    /// Licence plate exactly as sent (号牌号码).
    #[serde(default)]
    pub plate: Option<String>,
    /// VIN as sent (车辆识别代号).
    #[serde(default)]
    pub vin: Option<String>,
    /// Division code the platform files the vehicle under, as sent (所属行政区划代码).
    #[serde(default)]
    pub region_code: Option<String>,
    /// Time of the fix exactly as sent (定位时间).
    pub fix_time: String,
    /// Latitude in decimal degrees, in `datum` (纬度).
    pub latitude: f64,
    /// Longitude in decimal degrees, in `datum` (经度).
    pub longitude: f64,
    /// Datum the source declared (坐标系).
    pub datum: GeodeticDatum,
    /// Ground speed in km/h (速度).
    #[serde(default)]
    pub speed_kmh: Option<f64>,
    /// Heading in degrees clockwise from north (方向角).
    #[serde(default)]
    pub heading_deg: Option<f64>,
    /// Odometer in km (累计里程).
    #[serde(default)]
    pub odometer_km: Option<f64>,
}

impl Record for RawVehiclePosition {
    const SCHEMA: SchemaName = SchemaName::Raw(Domain::VehiclePosition);
}

/// A de-duplicated GPS point in WGS-84 (`huitong.national.VehiclePosition`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "VehiclePosition")]
pub struct NationalVehiclePosition {
    /// National entity id (实体标识): `<vehicle_entity_id>|<fix_time epoch ms>`; the Kafka key.
    pub entity_id: String,
    /// Entity id of the vehicle (车辆实体标识).
    pub vehicle_entity_id: String,
    /// Normalised licence plate (号牌号码).
    #[serde(default)]
    pub plate: Option<String>,
    /// Division the platform files the vehicle under (所属行政区划), from the reported code.
    #[serde(default)]
    pub region: Option<Region>,
    /// Time of the fix (定位时间).
    #[serde(with = "crate::logical::timestamp_millis")]
    pub fix_time: DateTime<Utc>,
    /// Latitude in decimal degrees, WGS-84 (纬度).
    pub latitude: f64,
    /// Longitude in decimal degrees, WGS-84 (经度).
    pub longitude: f64,
    /// Datum the source reported in (原始坐标系).
    pub source_datum: GeodeticDatum,
    /// Ground speed in km/h (速度).
    #[serde(default)]
    pub speed_kmh: Option<f64>,
    /// Heading in degrees clockwise from north (方向角).
    #[serde(default)]
    pub heading_deg: Option<f64>,
    /// Odometer in km (累计里程).
    #[serde(default)]
    pub odometer_km: Option<f64>,
    /// Every report of this point (数据来源).
    pub contributions: Vec<Provenance>,
    /// Fields the reports disagree on (数据冲突).
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    /// Findings that did not stop publication (校验提示), `CODE: message`.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Record for NationalVehiclePosition {
    const SCHEMA: SchemaName = SchemaName::National(Domain::VehiclePosition);
}
