//! Regional systems (区域系统): who reports what, in which shape, and the ground truth.
//!
//! Every county platform reports its own entities; its prefecture platform reports them again and
//! the provincial platform a third time, each in its own field names, units and formatting
//! ([`Difference`]). Chongqing is a municipality: its districts and counties report straight to
//! the municipal platform, so there is no prefecture level there.
//!
//! A system's records are a fixed sequence (areas in table order, entities in area order), so
//! record `i` can be produced without producing the others: that is what pagination, cursors,
//! `updated_since` and exports are built on.

use crate::divisions::{Level, PROVINCES};
use crate::rng::{label, mix};
use crate::world::{
    ACQUISITION_MODES, ASSET_CATEGORIES, AreaEntities, EnergyReport, STALE_COST_ITEM,
    USAGE_CATEGORIES, World, asset_status_symbol, coef, round2,
};
use crate::{codes, geo};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use schemas::records::RegionLevel;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

pub use schemas::Domain;

/// Position of a domain in [`Domain::ALL`].
fn domain_index(domain: Domain) -> usize {
    Domain::ALL.iter().position(|d| *d == domain).unwrap_or(0)
}

/// How many entities of `domain` an area has.
fn domain_count(domain: Domain, e: &AreaEntities) -> usize {
    match domain {
        Domain::Institution => e.institutions.len(),
        Domain::Vehicle => e.vehicles.len(),
        Domain::VehiclePosition => e.positions.len(),
        Domain::VehicleQuota => e.quotas.len(),
        Domain::OfficeBuilding => e.buildings.len(),
        Domain::EnergyReport => e.energy.len(),
        Domain::AssetCard => e.assets.len(),
        Domain::OperatingCost => e.costs.len(),
    }
}

/// The pinyin initials county and prefecture systems put in their record ids.
fn domain_abbreviation(domain: Domain) -> &'static str {
    match domain {
        Domain::Institution => "JG",
        Domain::Vehicle => "CL",
        Domain::VehiclePosition => "GJ",
        Domain::VehicleQuota => "BZ",
        Domain::OfficeBuilding => "BG",
        Domain::EnergyReport => "NY",
        Domain::AssetCard => "ZC",
        Domain::OperatingCost => "CB",
    }
}

/// How a system is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `GET /systems/{id}/records?page=&page_size=`.
    HttpPage,
    /// `GET /systems/{id}/records?cursor=&limit=`.
    HttpCursor,
    /// `GET /systems/{id}/records?updated_since=&limit=`.
    HttpUpdatedSince,
    /// CSV files (see [`Encoding`]).
    Csv,
    /// XLSX workbooks.
    Xlsx,
    /// A PostgreSQL table (written by the `postgres` module when built; served over HTTP too).
    Postgres,
}

/// Text encoding of a file-based system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 (no BOM).
    Utf8,
    /// GBK.
    Gbk,
    /// GB18030.
    Gb18030,
}

/// Geodetic datum of a position source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Datum {
    /// WGS-84.
    Wgs84,
    /// GCJ-02 (offset applied with [`geo::wgs84_to_gcj02`]).
    Gcj02,
}

/// A documented way a system's record differs from the county (reference) form of the same
/// entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Difference {
    /// Plates written `云A·12345`.
    PlateMiddleDot,
    /// Every third record's plate in full-width letters and digits (`云Ａ１２３４５`).
    PlateFullWidth,
    /// Digits and parentheses in names (and institution addresses) full-width (`第３中学`,
    /// `（第２分中心）`, `建设路３８７号`); office-building addresses stay as the county sends them.
    NameFullWidthDigits,
    /// Electricity in 万千瓦时 (÷ 10⁴, four decimals).
    Electricity10kKwh,
    /// Water in 吨 (= m³).
    WaterTonnes,
    /// Total energy in 吨标准煤 (÷ 10³, three decimals).
    TotalTonnesCe,
    /// Vehicle prices and operating-cost amounts in 万元 (÷ 10⁴; two decimals for prices, four
    /// for cost amounts).
    PriceTenThousandYuan,
    /// Gasoline and diesel in kg (L × 0.73 / 0.86).
    FuelKg,
    /// Entities flagged stale show the previous revision, though the copy is synced later
    /// than the owning level's: institutions their previous 实有人数, energy reports the
    /// previous revision (electricity, gas and water ≈ 4 % lower), operating costs the
    /// previous 培训费 (10 % lower: one line of `items`), asset cards the status before the
    /// change (在用).
    StaleRevision,
    /// Total energy recomputed with natural gas at 1.33 kgce/m³ instead of 1.2143.
    TotalRecomputed,
    /// Coordinates in GCJ-02.
    Gcj02,
}

/// One field of a system's records.
#[derive(Debug, Clone, Serialize)]
pub struct FieldSpec {
    /// Our name for the field (stable across systems; `record_id` and `updated_at` included).
    pub canonical: &'static str,
    /// The system's own name (Chinese header, pinyin or English key).
    pub name: String,
    /// Unit of the values, when the field is a quantity (`万千瓦时`, `吨`, `元`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
}

/// Everything a connector needs to know about a regional system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemProfile {
    /// Stable id, `<region code>-<level>-<domain>` (e.g. `530114-county-vehicle`).
    pub id: String,
    /// Display name (呈贡区公务用车管理平台).
    pub name: String,
    /// Level of the reporter.
    pub level: Level,
    /// Region the reporter is responsible for.
    pub region_code: &'static str,
    /// Province code.
    pub province_code: &'static str,
    /// The one domain it serves.
    pub domain: Domain,
    /// How it is meant to be read (every system is also served over HTTP by the server).
    pub protocol: Protocol,
    /// Text encoding (files; `utf8` for HTTP).
    pub encoding: Encoding,
    /// Datum of coordinates (position systems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datum: Option<Datum>,
    /// Field holding the source record id.
    pub id_field: String,
    /// Field holding the last-change time.
    pub updated_field: String,
    /// Whether numbers are sent as JSON strings over HTTP.
    pub numbers_as_strings: bool,
    /// Fields in order (CSV/XLSX column order).
    pub fields: Vec<FieldSpec>,
    /// How its records differ from the county form.
    pub differences: Vec<Difference>,
    /// Bearer token for its HTTP endpoints.
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    Chinese,
    Pinyin,
    English,
}

/// `(canonical, 中文, pinyin, English)` per domain.
fn field_names(
    domain: Domain,
) -> &'static [(&'static str, &'static str, &'static str, &'static str)] {
    match domain {
        Domain::Institution => &[
            ("uscc", "统一社会信用代码", "tyshxydm", "creditCode"),
            ("name", "单位名称", "dwmc", "unitName"),
            ("institution_type", "单位类型", "dwlx", "unitType"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            (
                "parent_uscc",
                "上级单位统一社会信用代码",
                "sjdwdm",
                "parentCreditCode",
            ),
            ("parent_name", "上级单位名称", "sjdwmc", "parentName"),
            ("authorised_staff", "编制人数", "bzrs", "authorisedStaff"),
            ("actual_staff", "实有人数", "syrs", "actualStaff"),
            ("address", "单位地址", "dwdz", "address"),
        ],
        Domain::Vehicle => &[
            ("plate", "号牌号码", "hphm", "plateNo"),
            ("vin", "车架号", "cjh", "vin"),
            (
                "owner_uscc",
                "使用单位统一社会信用代码",
                "sydwdm",
                "ownerCreditCode",
            ),
            ("owner_name", "使用单位", "sydw", "ownerName"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            ("usage_category", "编制类别", "bzlb", "usageCategory"),
            ("energy_type", "能源类型", "nylx", "energyType"),
            ("brand_model", "品牌型号", "ppxh", "brandModel"),
            ("displacement", "排气量", "pql", "displacement"),
            ("purchase_price", "购置价格", "gzjg", "purchasePrice"),
            ("purchase_date", "购置日期", "gzrq", "purchaseDate"),
            ("seats", "核定座位数", "hdzws", "seats"),
            ("asset_code", "资产编号", "zcbh", "assetCode"),
            ("terminal_id", "终端编号", "zdbh", "terminalId"),
        ],
        Domain::VehiclePosition => &[
            ("terminal_id", "终端编号", "zdbh", "terminalId"),
            ("plate", "号牌号码", "hphm", "plateNo"),
            ("vin", "车架号", "cjh", "vin"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            ("fix_time", "定位时间", "dwsj", "gpsTime"),
            ("latitude", "纬度", "wd", "lat"),
            ("longitude", "经度", "jd", "lng"),
            ("speed_kmh", "速度", "sd", "speed"),
            ("heading_deg", "方向", "fx", "direction"),
            ("odometer_km", "里程", "lc", "mileage"),
        ],
        Domain::VehicleQuota => &[
            ("owner_uscc", "单位统一社会信用代码", "dwdm", "creditCode"),
            ("owner_name", "单位名称", "dwmc", "unitName"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            ("year", "年度", "nd", "year"),
            ("usage_category", "编制类别", "bzlb", "usageCategory"),
            ("quota", "编制数", "bzs", "quota"),
            ("actual", "实有数", "sys", "actual"),
            ("approval_document", "批准文号", "pzwh", "approvalDocument"),
        ],
        Domain::OfficeBuilding => &[
            (
                "property_unit_number",
                "不动产单元号",
                "bdcdyh",
                "propertyUnitNo",
            ),
            (
                "owner_uscc",
                "权属单位统一社会信用代码",
                "qsdwdm",
                "ownerCreditCode",
            ),
            ("owner_name", "权属单位", "qsdw", "ownerName"),
            ("building_name", "建筑名称", "jzmc", "buildingName"),
            ("address", "坐落", "zl", "address"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            ("completion_year", "建成年份", "jcnf", "completionYear"),
            ("land_area", "占地面积", "zdmj", "landArea"),
            ("total_floor_area", "总建筑面积", "zjzmj", "floorArea"),
            ("office_area", "办公室用房面积", "bgsyfmj", "officeArea"),
            ("room_count", "房间数", "fjs", "roomCount"),
        ],
        Domain::EnergyReport => &[
            ("uscc", "统一社会信用代码", "tyshxydm", "creditCode"),
            ("institution_name", "单位名称", "dwmc", "unitName"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            ("period", "统计期", "tjq", "period"),
            ("electricity", "电力", "dl", "electricity"),
            ("natural_gas", "天然气", "trq", "naturalGas"),
            ("gasoline", "汽油", "qy", "gasoline"),
            ("diesel", "柴油", "cy", "diesel"),
            ("heat", "热力", "rl", "heat"),
            ("total_energy", "能源消费总量", "nyxfzl", "totalEnergy"),
            ("water", "用水量", "ysl", "water"),
            ("energy_users", "用能人数", "ynrs", "energyUsers"),
            ("building_area", "建筑面积", "jzmj", "buildingArea"),
        ],
        Domain::AssetCard => &[
            (
                "owner_uscc",
                "单位统一社会信用代码",
                "dwdm",
                "ownerCreditCode",
            ),
            ("owner_name", "单位名称", "dwmc", "ownerName"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            ("asset_code", "资产编号", "zcbh", "assetCode"),
            ("asset_name", "资产名称", "zcmc", "assetName"),
            ("category_code", "资产分类代码", "zcfldm", "categoryCode"),
            ("category_name", "资产分类名称", "zcflmc", "categoryName"),
            ("original_value", "原值", "yz", "originalValue"),
            (
                "accumulated_depreciation",
                "累计折旧",
                "ljzj",
                "accumulatedDepreciation",
            ),
            ("net_value", "净值", "jz", "netValue"),
            ("acquisition_mode", "取得方式", "qdfs", "acquisitionMode"),
            ("acquisition_date", "取得日期", "qdrq", "acquisitionDate"),
            ("status", "使用状况", "syzk", "status"),
        ],
        Domain::OperatingCost => &[
            ("uscc", "统一社会信用代码", "tyshxydm", "creditCode"),
            ("institution_name", "单位名称", "dwmc", "unitName"),
            ("region_code", "行政区划代码", "xzqhdm", "regionCode"),
            ("year", "年度", "nd", "year"),
            ("cost_personnel", "人员经费", "ryjf", "personnel"),
            ("cost_office", "办公及印刷费", "bgjysf", "officeAndPrinting"),
            ("cost_postal", "邮电费", "ydf", "postalAndTelecom"),
            ("cost_travel", "差旅费", "clf", "travel"),
            ("cost_meetings", "会议费", "hyf", "meetings"),
            ("cost_training", "培训费", "pxf", "training"),
            (
                "cost_maintenance",
                "日常维修费",
                "rcwxf",
                "routineMaintenance",
            ),
            ("cost_utilities", "办公用房水电费", "sdf", "utilities"),
            ("cost_heating", "办公用房取暖费", "qnf", "heating"),
            (
                "cost_property",
                "办公用房物业管理费",
                "wyglf",
                "propertyManagement",
            ),
            (
                "cost_vehicle",
                "公务用车运行维护费",
                "gwyclyxwhf",
                "vehicleOperation",
            ),
            ("cost_reception", "公务接待费", "gwjdf", "officialReception"),
            ("total", "合计", "hj", "total"),
            ("staff", "实有人数", "syrs", "staff"),
            ("office_area", "办公室用房面积", "bgsyfmj", "officeArea"),
        ],
    }
}

fn unit_of(canonical: &str, level: Level) -> Option<&'static str> {
    use Level::*;
    Some(match (canonical, level) {
        ("electricity", County) => "千瓦时",
        ("electricity", Prefecture) => "万千瓦时",
        ("electricity", Province) => "kWh",
        ("natural_gas", Province) => "m3",
        ("natural_gas", _) => "立方米",
        ("gasoline" | "diesel", Province) => "kg",
        ("gasoline" | "diesel", _) => "升",
        ("heat", County) => "百万千焦",
        ("heat", _) => "GJ",
        ("total_energy", Prefecture) => "吨标准煤",
        ("total_energy", County) => "千克标准煤",
        ("total_energy", Province) => "kgce",
        ("water", County) => "立方米",
        ("water", Prefecture) => "吨",
        ("water", Province) => "m3",
        ("purchase_price", Prefecture) => "万元",
        (c, Prefecture) if c.starts_with("cost_") || c == "total" => "万元",
        (c, _) if c.starts_with("cost_") || c == "total" => "元",
        ("purchase_price" | "original_value" | "accumulated_depreciation" | "net_value", _) => "元",
        ("displacement", _) => "L",
        ("speed_kmh", _) => "km/h",
        ("odometer_km", _) => "km",
        ("heading_deg", _) => "度",
        ("land_area" | "total_floor_area" | "office_area" | "building_area", _) => "平方米",
        _ => return None,
    })
}

/// One cell of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number with a fixed count of decimals when written as text.
    Num(f64, usize),
    /// Absent.
    Null,
}

impl Cell {
    /// The cell as CSV/XLSX text (`""` for null).
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(v, d) => format!("{v:.d$}"),
            Cell::Null => String::new(),
        }
    }

    /// The cell as JSON; numbers as strings when asked.
    pub fn json(&self, numbers_as_strings: bool) -> serde_json::Value {
        match self {
            Cell::Text(s) => serde_json::Value::String(s.clone()),
            Cell::Num(..) if numbers_as_strings => serde_json::Value::String(self.text()),
            Cell::Num(v, d) => {
                serde_json::from_str(&format!("{v:.d$}")).unwrap_or(serde_json::Value::Null)
            }
            Cell::Null => serde_json::Value::Null,
        }
    }
}

/// One record as a system serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Source record id (unique within the system).
    pub id: String,
    /// Last change in the source (strictly increasing along the system's sequence).
    pub updated_at: DateTime<Utc>,
    /// Natural key of the entity (schemas/README.md), in canonical form.
    pub key: String,
    /// Cells in the order of [`SystemProfile::fields`].
    pub cells: Vec<Cell>,
    /// What the national record holds where levels differ by design, if this record's level
    /// owns the entity.
    pub national: Vec<NationalValue>,
    /// The entity's division as the national record must show it.
    pub region: ExpectedRegion,
}

/// A value of the national record when the record's level owns the entity — the lowest level
/// that reported it (survivorship by ownership) — for the fields where levels differ by design
/// (stale copies, one line of an array, status labels).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NationalValue {
    /// The national field; array lines by key (`lines[ELECTRICITY].amount`).
    pub field: &'static str,
    /// The value in national form: an amount's or count's number in the canonical unit (kWh,
    /// m³, 元, persons), a symbol, or null.
    pub value: serde_json::Value,
    /// The entity's value in the revision the record shows, before rounding: reports of one
    /// entity whose `shown` values differ (both present) disagree, a conflict on `field`.
    pub shown: Option<String>,
}

impl NationalValue {
    fn number(field: &'static str, value: f64, shown: f64) -> Self {
        NationalValue {
            field,
            value: serde_json::json!(value),
            shown: Some(format!("{shown:?}")),
        }
    }

    fn text(field: &'static str, value: Option<&str>) -> Self {
        NationalValue {
            field,
            value: value.map_or(serde_json::Value::Null, serde_json::Value::from),
            shown: value.map(str::to_owned),
        }
    }
}

/// A number as the system writes it with `decimals` decimals, read back, times `factor` to
/// its canonical unit.
fn as_written(value: f64, decimals: usize, factor: f64) -> f64 {
    Cell::Num(value, decimals)
        .text()
        .parse::<f64>()
        .unwrap_or(f64::NAN)
        * factor
}

/// An entity's division as the ground truth expects it on the national record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExpectedRegion {
    /// The code in force (现行代码) of the entity's area, e.g. `150902`.
    pub code: &'static str,
    /// The withdrawn code every system sends instead (`152601` 集宁市), if any: the national
    /// record keeps it as `region.reported_code` and carries the `region_code_superseded`
    /// warning.
    pub reported_code: Option<&'static str>,
}

impl ExpectedRegion {
    /// The region of an entity of the area with code `code` at `level`: counties whose code
    /// changed still send the withdrawn one — the county platform kept the code table of before
    /// 集宁市 became 集宁区 (152601 → 150902) — and the platforms above relay their records as
    /// the county wrote them, in every domain.
    fn of(code: &'static str, level: Level) -> Self {
        static WITHDRAWN: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
            let mut by_successor = HashMap::new();
            // Withdrawn codes come by code: the lowest of several predecessors is kept.
            for d in schemas::divisions::all() {
                let county = |c: &str| {
                    schemas::divisions::lookup(c).is_some_and(|s| s.level == RegionLevel::County)
                };
                if let Some(s) = d
                    .successor
                    .filter(|s| d.level == RegionLevel::County && county(s))
                {
                    by_successor.entry(s).or_insert(d.code);
                }
            }
            by_successor
        });
        ExpectedRegion {
            code,
            reported_code: (level == Level::County)
                .then(|| WITHDRAWN.get(code).copied())
                .flatten(),
        }
    }

    /// The code the systems send.
    pub fn sent(self) -> &'static str {
        self.reported_code.unwrap_or(self.code)
    }
}

impl Record {
    /// The record as a JSON object with the system's field names.
    pub fn to_json(&self, profile: &SystemProfile) -> serde_json::Value {
        let map = profile
            .fields
            .iter()
            .zip(&self.cells)
            .map(|(f, c)| (f.name.clone(), c.json(profile.numbers_as_strings)))
            .collect();
        serde_json::Value::Object(map)
    }

    /// Replaces one numeric or date cell with text that does not parse (`N/A`, `2025-13-45`):
    /// the malformed-row fault. Returns a description of what was broken.
    pub fn make_malformed(&mut self, profile: &SystemProfile) -> String {
        let pos = profile
            .fields
            .iter()
            .zip(&self.cells)
            .position(|(f, c)| matches!(c, Cell::Num(..)) || f.canonical.ends_with("date"))
            .unwrap_or(1);
        let broken = if profile.fields[pos].canonical.ends_with("date") {
            "2025-13-45"
        } else {
            "N/A"
        };
        self.cells[pos] = Cell::Text(broken.to_string());
        format!("{} = {broken:?}", profile.fields[pos].name)
    }
}

/// `YYYY-MM-DD HH:MM:SS` in China Standard Time (UTC+8), how GPS platforms write fix times.
pub fn china_local(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(8))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// RFC 3339 with seconds and `Z`, the form every system uses for `updated_at`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Province => "province",
        Level::Prefecture => "prefecture",
        Level::County => "county",
    }
}

fn system_name(area_name: &str, domain: Domain) -> String {
    let what = match domain {
        Domain::Institution => "公共机构名录库",
        Domain::Vehicle => "公务用车管理平台",
        Domain::VehiclePosition => "公务用车北斗定位平台",
        Domain::VehicleQuota => "公务用车编制管理系统",
        Domain::OfficeBuilding => "办公用房管理系统",
        Domain::EnergyReport => "公共机构能耗统计系统",
        Domain::AssetCard => "行政事业性国有资产管理系统",
        Domain::OperatingCost => "机关运行成本统计系统",
    };
    format!("{area_name}{what}")
}

/// Which systems exist at each level: `(domain, protocol, encoding)`.
fn plan(level: Level, province_code: &str) -> Vec<(Domain, Protocol, Encoding)> {
    use Domain::*;
    use Encoding::*;
    use Protocol::*;
    match level {
        Level::Province => vec![
            (Institution, HttpPage, Utf8),
            (Vehicle, HttpCursor, Utf8),
            (VehiclePosition, HttpUpdatedSince, Utf8),
            (
                VehicleQuota,
                if province_code == "500000" {
                    Postgres
                } else {
                    HttpPage
                },
                Utf8,
            ),
            (OfficeBuilding, Xlsx, Utf8),
            (EnergyReport, HttpUpdatedSince, Utf8),
            (AssetCard, Csv, Gb18030),
            (OperatingCost, HttpPage, Utf8),
        ],
        Level::Prefecture => vec![
            (Institution, HttpCursor, Utf8),
            (Vehicle, Csv, Gbk),
            (VehiclePosition, HttpCursor, Utf8),
            (OfficeBuilding, HttpPage, Utf8),
            (EnergyReport, Xlsx, Utf8),
            (AssetCard, HttpUpdatedSince, Utf8),
            (OperatingCost, Csv, Gbk),
        ],
        Level::County => vec![
            (Institution, Csv, Utf8),
            (Vehicle, HttpPage, Utf8),
            (EnergyReport, Csv, Gbk),
        ],
    }
}

/// Differences of a level's records from the county form, for a domain.
fn differences(level: Level, domain: Domain) -> Vec<Difference> {
    use Difference::*;
    let all: &[Difference] = match level {
        Level::County => &[],
        Level::Prefecture => &[
            PlateMiddleDot,
            NameFullWidthDigits,
            Electricity10kKwh,
            WaterTonnes,
            TotalTonnesCe,
            PriceTenThousandYuan,
            Gcj02,
        ],
        Level::Province => &[PlateFullWidth, FuelKg, StaleRevision, TotalRecomputed],
    };
    all.iter()
        .copied()
        .filter(|d| match d {
            PlateMiddleDot | PlateFullWidth => {
                matches!(domain, Domain::Vehicle | Domain::VehiclePosition)
            }
            NameFullWidthDigits => !matches!(domain, Domain::VehiclePosition),
            Electricity10kKwh | WaterTonnes | TotalTonnesCe | FuelKg | TotalRecomputed => {
                domain == Domain::EnergyReport
            }
            PriceTenThousandYuan => matches!(domain, Domain::Vehicle | Domain::OperatingCost),
            StaleRevision => matches!(
                domain,
                Domain::Institution
                    | Domain::EnergyReport
                    | Domain::OperatingCost
                    | Domain::AssetCard
            ),
            Gcj02 => domain == Domain::VehiclePosition,
        })
        .collect()
}

/// The bearer token of a system: derived from the seed and the system id.
pub fn token_for(seed: u64, system_id: &str) -> String {
    let a = mix(seed ^ label(system_id));
    let b = mix(a ^ label("token"));
    format!("sim_{a:016x}{b:016x}")
}

fn profile(
    world: &World,
    level: Level,
    code: &'static str,
    area_name: &str,
    province_code: &'static str,
    d: (Domain, Protocol, Encoding),
) -> SystemProfile {
    let (domain, protocol, encoding) = d;
    let file = matches!(protocol, Protocol::Csv | Protocol::Xlsx);
    let naming = match (level, file) {
        (_, true) | (Level::County, _) => Naming::Chinese,
        (Level::Prefecture, _) => Naming::Pinyin,
        (Level::Province, _) => Naming::English,
    };
    let pick = |n: &(&'static str, &'static str, &'static str, &'static str)| -> String {
        match naming {
            Naming::Chinese => n.1,
            Naming::Pinyin => n.2,
            Naming::English => n.3,
        }
        .to_string()
    };
    let id_names = ("record_id", "记录编号", "jlbh", "recordId");
    let updated_names = ("updated_at", "更新时间", "gxsj", "updatedAt");
    let mut fields = vec![FieldSpec {
        canonical: "record_id",
        name: pick(&id_names),
        unit: None,
    }];
    for n in field_names(domain) {
        fields.push(FieldSpec {
            canonical: n.0,
            name: pick(n),
            unit: unit_of(n.0, level),
        });
    }
    fields.push(FieldSpec {
        canonical: "updated_at",
        name: pick(&updated_names),
        unit: None,
    });
    let id = format!("{code}-{}-{}", level_name(level), domain.as_str());
    let differences = differences(level, domain);
    SystemProfile {
        token: token_for(world.seed, &id),
        name: system_name(area_name, domain),
        id,
        level,
        region_code: code,
        province_code,
        domain,
        protocol,
        encoding,
        datum: (domain == Domain::VehiclePosition).then_some(
            if differences.contains(&Difference::Gcj02) {
                Datum::Gcj02
            } else {
                Datum::Wgs84
            },
        ),
        id_field: pick(&id_names),
        updated_field: pick(&updated_names),
        numbers_as_strings: naming == Naming::Pinyin,
        fields,
        differences,
    }
}

/// A world plus its systems, with per-area record counts cached for random access.
#[derive(Debug)]
pub struct Simulator {
    world: World,
    systems: Vec<SystemProfile>,
    /// Scope (area indices) of each system.
    scopes: Vec<Vec<usize>>,
    counts: OnceLock<Vec<[usize; Domain::ALL.len()]>>,
    cache: Mutex<Vec<(usize, Arc<AreaEntities>)>>,
}

const CACHE_AREAS: usize = 6;

impl Simulator {
    /// Builds the systems of a world (cheap; entities are generated on demand).
    pub fn new(world: World) -> Self {
        let mut systems = Vec::new();
        let mut scopes = Vec::new();
        for area in world.areas() {
            let p = &PROVINCES[area.province];
            for d in plan(area.level, p.code) {
                let scope = world
                    .areas()
                    .iter()
                    .filter(|a| {
                        a.province == area.province
                            && match area.level {
                                Level::Province => true,
                                Level::Prefecture => a.prefecture_code == Some(area.code),
                                Level::County => a.index == area.index,
                            }
                    })
                    .map(|a| a.index)
                    .collect();
                scopes.push(scope);
                systems.push(profile(&world, area.level, area.code, area.name, p.code, d));
            }
        }
        Simulator {
            world,
            systems,
            scopes,
            counts: OnceLock::new(),
            cache: Mutex::new(Vec::new()),
        }
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Every system, provinces first then in area order.
    pub fn systems(&self) -> &[SystemProfile] {
        &self.systems
    }

    /// A system by id.
    pub fn system(&self, id: &str) -> Option<(usize, &SystemProfile)> {
        self.systems.iter().enumerate().find(|(_, s)| s.id == id)
    }

    /// One area's entities (a small cache keeps the last few areas).
    pub fn area(&self, area: usize) -> Arc<AreaEntities> {
        if let Ok(cache) = self.cache.lock()
            && let Some((_, e)) = cache.iter().find(|(a, _)| *a == area)
        {
            return e.clone();
        }
        let e = Arc::new(self.world.area(area));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_AREAS {
                cache.remove(0);
            }
            cache.push((area, e.clone()));
        }
        e
    }

    fn counts(&self) -> &[[usize; Domain::ALL.len()]] {
        self.counts.get_or_init(|| {
            (0..self.world.areas().len())
                .map(|a| {
                    let e = self.world.area(a);
                    Domain::ALL.map(|d| domain_count(d, &e))
                })
                .collect()
        })
    }

    /// Number of records system `sys` (an index into [`Self::systems`]) serves.
    pub fn len(&self, sys: usize) -> usize {
        let d = domain_index(self.systems[sys].domain);
        let counts = self.counts();
        self.scopes[sys].iter().map(|&a| counts[a][d]).sum()
    }

    /// Whether the system serves nothing.
    pub fn is_empty(&self, sys: usize) -> bool {
        self.len(sys) == 0
    }

    /// Records `range` of system `sys`, in sequence order.
    pub fn records(&self, sys: usize, range: std::ops::Range<usize>) -> Vec<Record> {
        let profile = &self.systems[sys];
        let d = domain_index(profile.domain);
        let counts = self.counts();
        let mut out = Vec::with_capacity(range.len());
        let mut base = 0;
        for &a in &self.scopes[sys] {
            let n = counts[a][d];
            let (lo, hi) = (range.start.max(base), range.end.min(base + n));
            if lo < hi {
                let e = self.area(a);
                for pos in lo..hi {
                    out.push(self.render(sys, &e, a, pos - base, pos));
                }
            }
            base += n;
            if base >= range.end {
                break;
            }
        }
        out
    }

    /// Calls `f` with every record of system `sys`, one area at a time (for exports).
    pub fn for_each_record(&self, sys: usize, mut f: impl FnMut(Record)) {
        let d = self.systems[sys].domain;
        let mut pos = 0;
        for &a in &self.scopes[sys] {
            let e = self.world.area(a);
            for local in 0..domain_count(d, &e) {
                f(self.render(sys, &e, a, local, pos));
                pos += 1;
            }
        }
    }

    /// The position of the first record updated strictly after `t` (binary search: times
    /// increase along the sequence).
    pub fn first_updated_after(&self, sys: usize, t: DateTime<Utc>) -> usize {
        let (mut lo, mut hi) = (0, self.len(sys));
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.updated_at(sys, mid) > t {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// `updated_at` of record `pos`: 2025-07-01T00:00:00Z + pos minutes + a per-record second.
    pub fn updated_at(&self, sys: usize, pos: usize) -> DateTime<Utc> {
        let base = Utc
            .with_ymd_and_hms(2025, 7, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let jitter = mix(label(&self.systems[sys].id) ^ pos as u64) % 60;
        base + chrono::Duration::seconds(pos as i64 * 60 + jitter as i64)
    }

    fn record_id(&self, sys: usize, pos: usize) -> String {
        let p = &self.systems[sys];
        match p.level {
            Level::County => format!(
                "{}-{}-{:06}",
                p.region_code,
                domain_abbreviation(p.domain),
                pos + 1
            ),
            Level::Prefecture => format!(
                "{}{}{:08}",
                domain_abbreviation(p.domain),
                &p.region_code[..4],
                pos + 1
            ),
            Level::Province => {
                let h = mix(self.world.seed ^ label(&p.id) ^ (pos as u64).rotate_left(32));
                format!("{:08x}-{:04x}-{:012x}", h >> 32, h & 0xFFFF, pos)
            }
        }
    }

    /// Renders entity `local` of area `a` (record `pos` of the system) in the system's form.
    fn render(&self, sys: usize, e: &AreaEntities, a: usize, local: usize, pos: usize) -> Record {
        let p = &self.systems[sys];
        let has = |d: Difference| p.differences.contains(&d);
        let h = mix(label(&p.id) ^ pos as u64);
        let name = |s: &str| {
            if has(Difference::NameFullWidthDigits) {
                codes::digits_parens_full_width(s)
            } else {
                s.to_string()
            }
        };
        let plate = |s: &str| {
            if has(Difference::PlateMiddleDot) {
                codes::plate_with_dot(s)
            } else if has(Difference::PlateFullWidth) && h.is_multiple_of(3) {
                codes::to_full_width(s)
            } else {
                s.to_string()
            }
        };
        let t = |s: &str| Cell::Text(s.to_string());
        let opt = |s: &Option<String>| s.as_ref().map_or(Cell::Null, |s| Cell::Text(s.clone()));
        let num = |v: f64, d: usize| Cell::Num(v, d);
        let int = |v: u32| Cell::Num(f64::from(v), 0);
        let area = &self.world.areas()[a];
        let region = ExpectedRegion::of(area.code, area.level);
        let mut national = Vec::new();
        let (key, body): (String, Vec<Cell>) = match p.domain {
            Domain::Institution => {
                let i = &e.institutions[local];
                let stale = has(Difference::StaleRevision) && i.stale_upstream;
                let staff = if stale {
                    i.actual_staff_previous
                } else {
                    i.actual_staff
                };
                let staff = f64::from(staff);
                national.push(NationalValue::number("actual_staff", staff, staff));
                (
                    i.uscc.clone(),
                    vec![
                        t(&i.uscc),
                        Cell::Text(name(&i.name)),
                        t(i.kind_zh),
                        t(region.sent()),
                        opt(&i.parent_uscc),
                        i.parent_name
                            .as_deref()
                            .map_or(Cell::Null, |n| Cell::Text(name(n))),
                        int(i.authorised_staff),
                        int(if stale {
                            i.actual_staff_previous
                        } else {
                            i.actual_staff
                        }),
                        Cell::Text(name(&i.address)),
                    ],
                )
            }
            Domain::Vehicle => {
                let v = &e.vehicles[local];
                let price = if has(Difference::PriceTenThousandYuan) {
                    num(round2(f64::from(v.price_yuan) / 10_000.0), 2)
                } else {
                    num(f64::from(v.price_yuan), 0)
                };
                (
                    v.vin.clone(),
                    vec![
                        Cell::Text(plate(&v.plate)),
                        t(&v.vin),
                        t(&v.owner_uscc),
                        Cell::Text(name(&v.owner_name)),
                        t(region.sent()),
                        t(USAGE_CATEGORIES[v.usage].0),
                        t(v.energy.label_zh()),
                        t(v.model),
                        num(v.displacement_l, 1),
                        price,
                        t(&v.purchase_date.to_string()),
                        int(v.seats),
                        t(&v.asset_code),
                        opt(&v.terminal_id),
                    ],
                )
            }
            Domain::VehiclePosition => {
                let q = &e.positions[local];
                let (lat, lon) = if has(Difference::Gcj02) {
                    geo::wgs84_to_gcj02(q.lat, q.lon)
                } else {
                    (q.lat, q.lon)
                };
                (
                    format!("{}|{}", q.vin, q.fix_time.timestamp_millis()),
                    vec![
                        t(&q.terminal_id),
                        Cell::Text(plate(&q.plate)),
                        t(&q.vin),
                        t(region.sent()),
                        Cell::Text(china_local(q.fix_time)),
                        num(lat, 6),
                        num(lon, 6),
                        num(q.speed_kmh, 1),
                        num(q.heading_deg, 0),
                        num(q.odometer_km, 1),
                    ],
                )
            }
            Domain::VehicleQuota => {
                let q = &e.quotas[local];
                (
                    format!(
                        "{}|{}|{}",
                        q.owner_uscc, q.year, USAGE_CATEGORIES[q.usage].1
                    ),
                    vec![
                        t(&q.owner_uscc),
                        Cell::Text(name(&q.owner_name)),
                        t(region.sent()),
                        t(&q.year.to_string()),
                        t(USAGE_CATEGORIES[q.usage].0),
                        int(q.quota),
                        int(q.actual),
                        t(&q.approval_document),
                    ],
                )
            }
            Domain::OfficeBuilding => {
                let b = &e.buildings[local];
                let key = b
                    .property_unit_number
                    .clone()
                    .unwrap_or_else(|| format!("{}|{}", b.owner_uscc, b.address));
                (
                    key,
                    vec![
                        opt(&b.property_unit_number),
                        t(&b.owner_uscc),
                        Cell::Text(name(&b.owner_name)),
                        Cell::Text(name(&b.name)),
                        t(&b.address),
                        t(region.sent()),
                        t(&b.completion_year.to_string()),
                        num(b.land_area_m2, 2),
                        num(b.floor_area_m2, 2),
                        num(b.office_area_m2, 2),
                        int(b.rooms),
                    ],
                )
            }
            Domain::EnergyReport => {
                let current = &e.energy[local];
                let inst = &e.institutions[current.owner as usize];
                let stale = has(Difference::StaleRevision) && inst.stale_upstream;
                let r: EnergyReport = if stale {
                    current.previous_revision()
                } else {
                    current.clone()
                };
                let gas_coef = if has(Difference::TotalRecomputed) {
                    coef::NATURAL_GAS_HIGH
                } else {
                    coef::NATURAL_GAS
                };
                let total = r.total_kgce_with(gas_coef);
                let kwh = if has(Difference::Electricity10kKwh) {
                    as_written(r.electricity_kwh / 10_000.0, 4, 10_000.0)
                } else {
                    as_written(r.electricity_kwh, 2, 1.0)
                };
                national.extend([
                    NationalValue::number("lines[ELECTRICITY].amount", kwh, r.electricity_kwh),
                    NationalValue::number(
                        "lines[NATURAL_GAS].amount",
                        as_written(r.natural_gas_m3, 2, 1.0),
                        r.natural_gas_m3,
                    ),
                    NationalValue::number("water", as_written(r.water_m3, 2, 1.0), r.water_m3),
                ]);
                let (elec, total_cell, water) = (
                    if has(Difference::Electricity10kKwh) {
                        num(r.electricity_kwh / 10_000.0, 4)
                    } else {
                        num(r.electricity_kwh, 2)
                    },
                    if has(Difference::TotalTonnesCe) {
                        num(total / 1000.0, 3)
                    } else {
                        num(total, 2)
                    },
                    num(r.water_m3, 2),
                );
                let (gasoline, diesel) = if has(Difference::FuelKg) {
                    (
                        num(r.gasoline_l * coef::GASOLINE_KG_PER_L, 2),
                        num(r.diesel_l * coef::DIESEL_KG_PER_L, 2),
                    )
                } else {
                    (num(r.gasoline_l, 2), num(r.diesel_l, 2))
                };
                (
                    format!("{}|{}", r.uscc, r.period),
                    vec![
                        t(&r.uscc),
                        Cell::Text(name(&r.name)),
                        t(region.sent()),
                        t(&r.period),
                        elec,
                        num(r.natural_gas_m3, 2),
                        gasoline,
                        diesel,
                        num(r.heat_gj, 2),
                        total_cell,
                        water,
                        int(r.users),
                        num(r.building_area_m2, 2),
                    ],
                )
            }
            Domain::OperatingCost => {
                let current = &e.costs[local];
                let inst = &e.institutions[current.owner as usize];
                let stale = has(Difference::StaleRevision) && inst.stale_upstream;
                let c = &if stale {
                    current.previous_revision()
                } else {
                    current.clone()
                };
                let training = c.items[STALE_COST_ITEM];
                let yuan = if has(Difference::PriceTenThousandYuan) {
                    as_written(training / 10_000.0, 4, 10_000.0)
                } else {
                    as_written(training, 2, 1.0)
                };
                national.push(NationalValue::number(
                    "items[TRAINING].amount",
                    yuan,
                    training,
                ));
                let money = |v: f64| {
                    if has(Difference::PriceTenThousandYuan) {
                        num(v / 10_000.0, 4)
                    } else {
                        num(v, 2)
                    }
                };
                let mut cells = vec![
                    t(&c.uscc),
                    Cell::Text(name(&c.name)),
                    t(region.sent()),
                    t(&c.year.to_string()),
                ];
                cells.extend(c.items.iter().map(|&v| money(v)));
                cells.push(money(c.total()));
                cells.push(int(c.staff));
                cells.push(num(c.office_area_m2, 2));
                (format!("{}|{}", c.uscc, c.year), cells)
            }
            Domain::AssetCard => {
                let c = &e.assets[local];
                let inst = &e.institutions[c.owner as usize];
                // A stale copy still shows the card before its status changed.
                let stale = has(Difference::StaleRevision) && inst.stale_upstream;
                let status = if stale { "在用" } else { c.status_zh };
                let symbol = asset_status_symbol(status);
                national.extend([
                    NationalValue::text("status", Some(symbol.unwrap_or("OTHER"))),
                    NationalValue::text("reported_status", symbol.is_none().then_some(status)),
                ]);
                (
                    format!("{}|{}", c.owner_uscc, c.asset_code),
                    vec![
                        t(&c.owner_uscc),
                        Cell::Text(name(&c.owner_name)),
                        t(region.sent()),
                        t(&c.asset_code),
                        t(&c.name),
                        t(ASSET_CATEGORIES[c.category].0),
                        t(ASSET_CATEGORIES[c.category].1),
                        num(c.original_value, 2),
                        num(c.accumulated_depreciation, 2),
                        num(round2(c.original_value - c.accumulated_depreciation), 2),
                        t(ACQUISITION_MODES[c.acquisition].0),
                        t(&c.acquisition_date.to_string()),
                        t(status),
                    ],
                )
            }
        };
        let updated_at = self.updated_at(sys, pos);
        let id = self.record_id(sys, pos);
        let mut cells = Vec::with_capacity(body.len() + 2);
        cells.push(Cell::Text(id.clone()));
        cells.extend(body);
        cells.push(Cell::Text(rfc3339(updated_at)));
        Record {
            id,
            updated_at,
            key,
            cells,
            national,
            region,
        }
    }

    /// The ground truth: distinct entities per domain and, per system, the record ids it serves
    /// with the entity key of each. Holds every id in memory: fine up to `small`; at
    /// `national` it is ≈ 10⁷ ids (≈ 1 GB) — prefer [`Self::for_each_record`] there.
    pub fn ground_truth(&self) -> GroundTruth {
        let mut domains: BTreeMap<&'static str, BTreeMap<String, ExpectedRegion>> = BTreeMap::new();
        let mut systems = Vec::new();
        for (i, p) in self.systems.iter().enumerate() {
            let mut record_ids = Vec::new();
            let mut entity_keys = Vec::new();
            let mut national = Vec::new();
            let entities = domains.entry(p.domain.as_str()).or_default();
            self.for_each_record(i, |r| {
                entities.insert(r.key.clone(), r.region);
                record_ids.push(r.id);
                entity_keys.push(r.key);
                national.push(r.national);
            });
            systems.push(SystemTruth {
                id: p.id.clone(),
                domain: p.domain,
                level: p.level,
                region_code: p.region_code,
                protocol: p.protocol,
                record_count: record_ids.len(),
                record_ids,
                entity_keys,
                national,
                expected_quarantine: Vec::new(),
            });
        }
        GroundTruth {
            seed: self.world.seed,
            size: self.world.size.name(),
            domains: domains
                .into_iter()
                .map(|(d, entities)| {
                    (
                        d,
                        DomainTruth {
                            entity_count: entities.len(),
                            keys: entities.keys().cloned().collect(),
                            regions: entities,
                        },
                    )
                })
                .collect(),
            systems,
        }
    }
}

/// What the simulator holds, for tests to compare a topic against.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    /// Seed.
    pub seed: u64,
    /// Size name.
    pub size: &'static str,
    /// Per domain (kebab-case name), the distinct entities.
    pub domains: BTreeMap<&'static str, DomainTruth>,
    /// Per system, what it serves.
    pub systems: Vec<SystemTruth>,
}

/// Distinct entities of one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainTruth {
    /// How many.
    pub entity_count: usize,
    /// Natural keys (schemas/README.md), sorted.
    pub keys: Vec<String>,
    /// The division each entity's national record must show, by natural key.
    pub regions: BTreeMap<String, ExpectedRegion>,
}

/// What one system serves.
#[derive(Debug, Clone, Serialize)]
pub struct SystemTruth {
    /// System id.
    pub id: String,
    /// Domain.
    pub domain: Domain,
    /// Level.
    pub level: Level,
    /// Region.
    pub region_code: &'static str,
    /// Protocol.
    pub protocol: Protocol,
    /// Number of records that a connector should write to `raw.<domain>` (quarantined rows
    /// excluded).
    pub record_count: usize,
    /// Source record ids in sequence order (the Kafka keys of `raw.<domain>`).
    pub record_ids: Vec<String>,
    /// The entity key of each record, parallel to `record_ids`.
    pub entity_keys: Vec<String>,
    /// What the national record holds where levels differ by design if this system owns the
    /// entity (its level is the lowest that reported it), parallel to `record_ids`.
    pub national: Vec<Vec<NationalValue>>,
    /// Rows of exported files that are malformed on purpose and must go to quarantine.
    pub expected_quarantine: Vec<QuarantineExpectation>,
}

/// A malformed exported row.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineExpectation {
    /// File path relative to the export directory.
    pub file: String,
    /// 1-based line (CSV; the header is line 1) or row (XLSX; the header is row 1).
    pub line: usize,
    /// Record id in that row.
    pub record_id: String,
    /// What was broken.
    pub reason: String,
}

/// Index of a system by id within a ground truth, for tests.
pub fn index_by_id(truth: &GroundTruth) -> HashMap<&str, &SystemTruth> {
    truth.systems.iter().map(|s| (s.id.as_str(), s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Size;
    use std::collections::HashSet;

    fn sim() -> Simulator {
        Simulator::new(World::new(11, Size::Tiny))
    }

    fn cell<'a>(p: &SystemProfile, r: &'a Record, canonical: &str) -> &'a Cell {
        let i = p
            .fields
            .iter()
            .position(|f| f.canonical == canonical)
            .unwrap_or_else(|| panic!("{canonical}"));
        &r.cells[i]
    }

    fn num(c: &Cell) -> f64 {
        match c {
            Cell::Num(v, _) => *v,
            other => panic!("not a number: {other:?}"),
        }
    }

    fn all(sim: &Simulator, sys: usize) -> Vec<Record> {
        let mut v = Vec::new();
        sim.for_each_record(sys, |r| v.push(r));
        v
    }

    fn by_key(sim: &Simulator, sys: usize) -> HashMap<String, Record> {
        all(sim, sys)
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect()
    }

    fn upper(sim: &Simulator, county: &SystemProfile, level: Level) -> Option<usize> {
        let area = sim
            .world()
            .areas()
            .iter()
            .find(|a| a.code == county.region_code)?;
        let code = match level {
            Level::Prefecture => area.prefecture_code?,
            _ => PROVINCES[area.province].code,
        };
        sim.systems()
            .iter()
            .position(|s| s.region_code == code && s.level == level && s.domain == county.domain)
    }

    #[test]
    fn every_county_entity_reappears_upstream_with_the_documented_differences() {
        let sim = sim();
        let mut checked = [0usize; 3];
        let (mut stale_seen, mut full_width_seen) = (0, 0);
        for (ci, county) in sim
            .systems()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.level == Level::County)
        {
            let county_records = all(&sim, ci);
            assert!(!county_records.is_empty(), "{}", county.id);
            let province = upper(&sim, county, Level::Province).expect("province system");
            let prefecture = upper(&sim, county, Level::Prefecture);
            // Chongqing has no prefecture platforms; everyone else does.
            assert_eq!(
                prefecture.is_none(),
                county.province_code == "500000",
                "{}",
                county.id
            );
            let prov = by_key(&sim, province);
            let pref = prefecture.map(|p| by_key(&sim, p));
            let (pp, fp) = (
                &sim.systems()[province],
                prefecture.map(|p| &sim.systems()[p]),
            );
            for r in &county_records {
                let up = &prov[&r.key];
                let mid = pref.as_ref().map(|m| &m[&r.key]);
                match county.domain {
                    Domain::Vehicle => {
                        let Cell::Text(plate) = cell(county, r, "plate") else {
                            panic!()
                        };
                        assert!(codes::plate_kind(plate).is_some(), "{plate}");
                        if let (Some(m), Some(fp)) = (mid, fp) {
                            assert_eq!(
                                cell(fp, m, "plate"),
                                &Cell::Text(codes::plate_with_dot(plate))
                            );
                            let yuan = num(cell(county, r, "purchase_price"));
                            assert!(
                                (num(cell(fp, m, "purchase_price")) * 10_000.0 - yuan).abs()
                                    < 100.0
                            );
                        }
                        let Cell::Text(p3) = cell(pp, up, "plate") else {
                            panic!()
                        };
                        if p3 != plate {
                            assert_eq!(p3, &codes::to_full_width(plate));
                            full_width_seen += 1;
                        }
                        checked[0] += 1;
                    }
                    Domain::EnergyReport => {
                        let kwh = num(cell(county, r, "electricity"));
                        if let (Some(m), Some(fp)) = (mid, fp) {
                            assert!((num(cell(fp, m, "electricity")) * 1e4 - kwh).abs() < 1.0);
                            assert!(
                                (num(cell(fp, m, "total_energy")) * 1e3
                                    - num(cell(county, r, "total_energy")))
                                .abs()
                                    < 1.0
                            );
                        }
                        let kwh3 = num(cell(pp, up, "electricity"));
                        if (kwh3 - kwh).abs() > 0.01 {
                            assert!((kwh3 - kwh * 0.96).abs() < 0.02, "{kwh3} vs {kwh}");
                            stale_seen += 1;
                        }
                        // The province recomputes the total with gas at 1.33 from its own lines.
                        let gas = num(cell(pp, up, "natural_gas"));
                        let rest = kwh3 * coef::ELECTRICITY
                            + num(cell(pp, up, "gasoline")) * coef::GASOLINE
                            + num(cell(pp, up, "diesel")) * coef::DIESEL
                            + num(cell(pp, up, "heat")) * coef::HEAT;
                        assert!(
                            (num(cell(pp, up, "total_energy"))
                                - (rest + gas * coef::NATURAL_GAS_HIGH))
                                .abs()
                                < 0.5
                        );
                        checked[1] += 1;
                    }
                    Domain::Institution => {
                        let Cell::Text(name) = cell(county, r, "name") else {
                            panic!()
                        };
                        if let (Some(m), Some(fp)) = (mid, fp) {
                            assert_eq!(
                                cell(fp, m, "name"),
                                &Cell::Text(codes::digits_parens_full_width(name))
                            );
                        }
                        assert_eq!(cell(pp, up, "name"), &Cell::Text(name.clone()));
                        checked[2] += 1;
                    }
                    other => panic!("unexpected county domain {other:?}"),
                }
            }
        }
        assert!(checked.iter().all(|&n| n > 20), "{checked:?}");
        assert!(
            stale_seen > 0 && full_width_seen > 0,
            "{stale_seen} {full_width_seen}"
        );
    }

    #[test]
    fn ids_unique_times_increasing_and_random_access_agrees() {
        let sim = sim();
        for (i, p) in sim.systems().iter().enumerate() {
            let recs = all(&sim, i);
            assert_eq!(recs.len(), sim.len(i), "{}", p.id);
            let ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids.len(), recs.len(), "{}", p.id);
            assert!(
                recs.windows(2).all(|w| w[0].updated_at < w[1].updated_at),
                "{}",
                p.id
            );
            if recs.len() > 3 {
                let mid = recs.len() / 2;
                assert_eq!(
                    sim.records(i, mid - 1..mid + 2),
                    recs[mid - 1..mid + 2].to_vec(),
                    "{}",
                    p.id
                );
                assert_eq!(sim.first_updated_after(i, recs[mid].updated_at), mid + 1);
            }
            assert_eq!(
                p.fields.len(),
                recs.first().map_or(p.fields.len(), |r| r.cells.len())
            );
        }
    }

    #[test]
    fn positions_in_gcj02_systems_are_offset() {
        let sim = sim();
        let pref = sim
            .systems()
            .iter()
            .position(|s| s.domain == Domain::VehiclePosition && s.datum == Some(Datum::Gcj02))
            .unwrap();
        let p = &sim.systems()[pref];
        let prov = sim
            .systems()
            .iter()
            .position(|s| {
                s.domain == Domain::VehiclePosition
                    && s.level == Level::Province
                    && s.province_code == p.province_code
            })
            .unwrap();
        let wgs = by_key(&sim, prov);
        let mut n = 0;
        for r in all(&sim, pref) {
            let w = &wgs[&r.key];
            let pp = &sim.systems()[prov];
            let (lat, lon) =
                geo::wgs84_to_gcj02(num(cell(pp, w, "latitude")), num(cell(pp, w, "longitude")));
            assert!((num(cell(p, &r, "latitude")) - lat).abs() < 2e-6);
            assert!((num(cell(p, &r, "longitude")) - lon).abs() < 2e-6);
            n += 1;
        }
        assert!(n > 0);
    }

    #[test]
    fn operating_cost_totals_and_units() {
        let sim = sim();
        let mut n = 0;
        for (pi, pref) in sim.systems().iter().enumerate() {
            if pref.domain != Domain::OperatingCost || pref.level != Level::Prefecture {
                continue;
            }
            assert_eq!(
                pref.fields
                    .iter()
                    .find(|f| f.canonical == "total")
                    .and_then(|f| f.unit),
                Some("万元")
            );
            let prov = sim
                .systems()
                .iter()
                .position(|s| {
                    s.domain == Domain::OperatingCost
                        && s.level == Level::Province
                        && s.province_code == pref.province_code
                })
                .unwrap();
            let pp = &sim.systems()[prov];
            let yuan = by_key(&sim, prov);
            for r in all(&sim, pi) {
                let up = &yuan[&r.key];
                let items: f64 = pp
                    .fields
                    .iter()
                    .zip(&up.cells)
                    .filter(|(f, _)| f.canonical.starts_with("cost_"))
                    .map(|(_, c)| num(c))
                    .sum();
                let total = num(cell(pp, up, "total"));
                assert!((items - total).abs() < 0.05, "{items} vs {total}");
                // A stale province copy differs by its previous 培训费.
                let training = |s: &SystemProfile, r: &Record| num(cell(s, r, "cost_training"));
                let gap = (training(pref, &r) * 1e4 - training(pp, up)).abs();
                assert!((num(cell(pref, &r, "total")) * 1e4 - total).abs() < 1.0 + gap);
                // Personnel ≈ 60–90 % of the total.
                let share = num(cell(pp, up, "cost_personnel")) / total;
                assert!((0.6..0.9).contains(&share), "{share}");
                n += 1;
            }
        }
        assert!(n > 10, "{n}");
    }

    /// The scenarios of survivorship by ownership: stale upper-level copies synced later
    /// than the owner's report, one line of an array that differs, and status labels found
    /// in the wild plus one unknown.
    #[test]
    fn owning_level_scenarios_appear() {
        let sim = sim();
        let truth = sim.ground_truth();
        // entity → (level, updated_at, national values) of every report.
        type Report = (Level, DateTime<Utc>, Vec<NationalValue>);
        let mut reports: HashMap<(Domain, String), Vec<Report>> = HashMap::new();
        for (i, s) in truth.systems.iter().enumerate() {
            let mut pos = 0;
            sim.for_each_record(i, |r| {
                reports.entry((s.domain, r.key.clone())).or_default().push((
                    s.level,
                    sim.updated_at(i, pos),
                    r.national,
                ));
                pos += 1;
            });
        }
        let mut stale_synced_later: BTreeMap<(Domain, &str), usize> = BTreeMap::new();
        let mut labels: BTreeMap<String, usize> = BTreeMap::new();
        for ((domain, _), rs) in &reports {
            let owner = rs.iter().max_by_key(|r| r.0).expect("a report");
            for r in rs {
                for (mine, theirs) in r.2.iter().zip(&owner.2) {
                    if mine.shown.is_some()
                        && theirs.shown.is_some()
                        && mine.shown != theirs.shown
                        && r.1 > owner.1
                    {
                        *stale_synced_later.entry((*domain, mine.field)).or_default() += 1;
                    }
                    if mine.field == "reported_status" || mine.field == "status" {
                        *labels.entry(mine.value.to_string()).or_default() += 1;
                    }
                }
            }
        }
        for field in [
            (Domain::Institution, "actual_staff"),
            (Domain::EnergyReport, "lines[ELECTRICITY].amount"),
            (Domain::OperatingCost, "items[TRAINING].amount"),
            (Domain::AssetCard, "status"),
        ] {
            assert!(
                stale_synced_later.get(&field).is_some_and(|n| *n > 0),
                "{field:?}: {stale_synced_later:?}"
            );
        }
        for label in [
            "\"IDLE\"",
            "\"DISPOSED\"",
            "\"PENDING_DISPOSAL\"",
            "\"OTHER\"",
            "\"调剂中\"",
        ] {
            assert!(labels.contains_key(label), "{label}: {labels:?}");
        }
    }

    #[test]
    fn ground_truth_covers_every_system_and_entity() {
        let sim = sim();
        let t = sim.ground_truth();
        assert_eq!(t.systems.len(), sim.systems().len());
        for d in Domain::ALL {
            let dt = &t.domains[d.as_str()];
            assert!(dt.entity_count > 0, "{}", d.as_str());
            // Province systems report every entity of their province.
            let from_provinces: usize = t
                .systems
                .iter()
                .filter(|s| s.level == Level::Province && s.domain == d)
                .map(|s| s.entity_keys.iter().collect::<HashSet<_>>().len())
                .sum();
            assert_eq!(from_provinces, dt.entity_count, "{}", d.as_str());
        }
        let tokens: HashSet<&str> = sim.systems().iter().map(|s| s.token.as_str()).collect();
        assert_eq!(tokens.len(), sim.systems().len());
    }

    /// Counties whose code changed send the withdrawn code in every domain and the levels
    /// above relay it; the ground truth expects the code in force, the withdrawn one kept.
    #[test]
    fn withdrawn_county_codes_reach_every_domain() {
        use schemas::divisions::{Resolution, resolve};
        for (code, level, withdrawn) in [
            ("150902", Level::County, Some("152601")),
            ("530114", Level::County, Some("530121")),
            ("500154", Level::County, Some("500234")),
            ("530102", Level::County, None),
            ("530800", Level::Prefecture, None),
        ] {
            let region = ExpectedRegion::of(code, level);
            assert_eq!(region.reported_code, withdrawn, "{code}");
            assert_eq!(region.sent(), withdrawn.unwrap_or(code), "{code}");
        }
        let sim = sim();
        let truth = sim.ground_truth();
        let mut withdrawn: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in sim.systems().iter().enumerate() {
            for r in all(&sim, i) {
                assert_eq!(
                    cell(p, &r, "region_code"),
                    &Cell::Text(r.region.sent().to_owned())
                );
                assert_eq!(truth.domains[p.domain.as_str()].regions[&r.key], r.region);
                if let Some(old) = r.region.reported_code {
                    assert!(
                        matches!(resolve(old), Resolution::Superseded { current, .. }
                            if current.code == r.region.code),
                        "{old}"
                    );
                    *withdrawn.entry(p.domain.as_str()).or_default() += 1;
                }
            }
        }
        assert_eq!(withdrawn.len(), Domain::ALL.len(), "{withdrawn:?}");
    }

    /// An office building without 不动产单元号 is keyed `<owner USCC>|<normalised address>`
    /// (DOMAIN.md §2). Every level sends the address in the form the hub normalises to (no
    /// white space, half-width digits, no lower-case letters), so the ground truth's key, made
    /// from the address as sent, is that natural key.
    #[test]
    fn building_keys_carry_the_address_in_normalised_form() {
        let sim = sim();
        let mut by_address = 0;
        for (i, p) in sim.systems().iter().enumerate() {
            if p.domain != Domain::OfficeBuilding {
                continue;
            }
            for r in all(&sim, i) {
                let Some((owner, address)) = r.key.split_once('|') else {
                    assert_eq!(
                        cell(p, &r, "property_unit_number"),
                        &Cell::Text(r.key.clone())
                    );
                    continue;
                };
                assert_eq!(cell(p, &r, "owner_uscc"), &Cell::Text(owner.to_owned()));
                assert_eq!(cell(p, &r, "address"), &Cell::Text(address.to_owned()));
                assert!(
                    !address.chars().any(|c| c.is_whitespace()
                        || c.is_ascii_lowercase()
                        || ('\u{FF01}'..='\u{FF5E}').contains(&c)),
                    "{}: {address}",
                    p.id
                );
                by_address += 1;
            }
        }
        assert!(by_address > 0, "some buildings have no unit number");
    }
}
