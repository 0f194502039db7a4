//! The world model: areas (province seats, prefecture seats, counties) and the entities each one
//! holds — institutions, vehicles, office buildings, monthly energy reports, asset cards,
//! vehicle quotas and GPS positions — all pure functions of `(seed, size)`.
//!
//! Entities are generated per area on demand ([`World::area`]); nothing holds the whole world.
//! At [`Size::National`] (≈ 1.0 × 10⁶ vehicles) one county's entities are a few megabytes
//! (≈ 400 institutions, 3,600 vehicles, 4,800 energy reports, 8,000 asset cards, 22,000 GPS
//! points), and exports and the HTTP server work one area at a time.

use crate::codes::{self, make_uscc, vin_year_char, with_vin_check};
use crate::divisions::{Level, PROVINCES, Prefecture, Province};
use crate::geo::{BBox, M_PER_DEG_LAT};
use crate::rng::{Rng, mix};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

/// How much to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// For tests: one county per prefecture, a few institutions each (≈ 100 institutions, a few
    /// hundred vehicles, reports, cards and ≈ 1,000 GPS points in all).
    Tiny,
    /// For the local stack: three counties per prefecture, ≈ 1,000 institutions.
    Small,
    /// National order of magnitude: every county of the table, ≈ 10⁵ institutions and
    /// ≈ 10⁶ vehicles. Generated lazily, one area at a time.
    National,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tiny" => Ok(Size::Tiny),
            "small" => Ok(Size::Small),
            "national" => Ok(Size::National),
            _ => Err(format!(
                "unknown size {s:?}: expected tiny, small or national"
            )),
        }
    }
}

impl Size {
    /// The lowercase name (`tiny`, `small`, `national`).
    pub fn name(self) -> &'static str {
        match self {
            Size::Tiny => "tiny",
            Size::Small => "small",
            Size::National => "national",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Params {
    counties_per_prefecture: usize,
    institutions_per_area: (u64, u64),
    vehicles_per_institution: (u64, u64),
    other_assets_per_institution: (u64, u64),
    months: u32,
    terminal_share: f64,
    points_per_track: u32,
}

impl Size {
    fn params(self) -> Params {
        match self {
            Size::Tiny => Params {
                counties_per_prefecture: 1,
                institutions_per_area: (2, 4),
                vehicles_per_institution: (0, 3),
                other_assets_per_institution: (1, 2),
                months: 2,
                terminal_share: 0.5,
                points_per_track: 8,
            },
            Size::Small => Params {
                counties_per_prefecture: 3,
                institutions_per_area: (8, 16),
                vehicles_per_institution: (0, 6),
                other_assets_per_institution: (2, 5),
                months: 6,
                terminal_share: 0.4,
                points_per_track: 30,
            },
            Size::National => Params {
                counties_per_prefecture: usize::MAX,
                institutions_per_area: (300, 500),
                vehicles_per_institution: (0, 18),
                other_assets_per_institution: (5, 15),
                months: 12,
                terminal_share: 0.3,
                points_per_track: 20,
            },
        }
    }
}

/// A place that holds entities: a province seat, a prefecture seat or a county.
#[derive(Debug, Clone)]
pub struct Area {
    /// Position in [`World::areas`].
    pub index: usize,
    /// GB/T 2260 code of the area (`530000`, `530100`, `530114`).
    pub code: &'static str,
    /// Name used in institution names (云南省, 昆明市, 呈贡区).
    pub name: &'static str,
    /// Level of the area.
    pub level: Level,
    /// Index into [`PROVINCES`].
    pub province: usize,
    /// Code of the prefecture it lies in (its own code for a prefecture seat); `None` for a
    /// province seat and for counties of a municipality (Chongqing has no prefecture platform).
    pub prefecture_code: Option<&'static str>,
    /// Plate authority letters used here.
    pub plate_letters: &'static str,
    /// Box for tracks.
    pub bbox: BBox,
    /// Full address prefix (province + prefecture + county names).
    pub address_prefix: String,
}

/// Institution categories the simulator generates, with their GB energy intensity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstitutionKind {
    /// 国家机关 (state organ).
    StateOrgan,
    /// 中小学.
    School,
    /// 医院 / 疾控.
    Health,
    /// 文化/场馆.
    Culture,
    /// 体育.
    Sports,
    /// 科技.
    Science,
    /// 其他事业单位.
    OtherPublic,
}

impl InstitutionKind {
    /// Chinese category label (as regional systems write it).
    pub fn label_zh(self, level: Level) -> &'static str {
        match self {
            InstitutionKind::StateOrgan if level == Level::Province => "国家机关(省级及以上)",
            InstitutionKind::StateOrgan => "国家机关(市级及以下)",
            InstitutionKind::School => "事业单位-中小学",
            InstitutionKind::Health => "事业单位-卫生",
            InstitutionKind::Culture => "事业单位-文化",
            InstitutionKind::Sports => "事业单位-体育",
            InstitutionKind::Science => "事业单位-科技",
            InstitutionKind::OtherPublic => "事业单位-其他",
        }
    }

    /// Annual energy intensity, kgce/m² (DOMAIN.md §5 ⚠ Guangdong 2021: organs 11–12.5,
    /// schools 3.3, hospitals 15.9; the rest are our assumption).
    fn kgce_per_m2_year(self) -> f64 {
        match self {
            InstitutionKind::StateOrgan => 11.8,
            InstitutionKind::School => 3.3,
            InstitutionKind::Health => 15.9,
            InstitutionKind::Culture => 8.0,
            InstitutionKind::Sports => 9.0,
            InstitutionKind::Science => 10.0,
            InstitutionKind::OtherPublic => 7.0,
        }
    }
}

/// `(county/prefecture suffix, province suffix, kind)`; index 0 is every area's government
/// office, the parent of the others.
const UNITS: &[(&str, &str, InstitutionKind)] = &[
    (
        "人民政府办公室",
        "人民政府办公厅",
        InstitutionKind::StateOrgan,
    ),
    (
        "机关事务管理局",
        "机关事务管理局",
        InstitutionKind::StateOrgan,
    ),
    ("财政局", "财政厅", InstitutionKind::StateOrgan),
    (
        "发展和改革委员会",
        "发展和改革委员会",
        InstitutionKind::StateOrgan,
    ),
    ("公安局", "公安厅", InstitutionKind::StateOrgan),
    ("人民医院", "第一人民医院", InstitutionKind::Health),
    ("教育体育局", "教育厅", InstitutionKind::StateOrgan),
    ("第一中学", "实验中学", InstitutionKind::School),
    ("自然资源局", "自然资源厅", InstitutionKind::StateOrgan),
    ("卫生健康局", "卫生健康委员会", InstitutionKind::StateOrgan),
    (
        "疾病预防控制中心",
        "疾病预防控制中心",
        InstitutionKind::Health,
    ),
    (
        "市场监督管理局",
        "市场监督管理局",
        InstitutionKind::StateOrgan,
    ),
    ("图书馆", "图书馆", InstitutionKind::Culture),
    ("生态环境局", "生态环境厅", InstitutionKind::StateOrgan),
    ("档案馆", "档案馆", InstitutionKind::OtherPublic),
    ("体育中心", "体育中心", InstitutionKind::Sports),
    ("农业科学研究所", "农业科学院", InstitutionKind::Science),
    ("交通运输局", "交通运输厅", InstitutionKind::StateOrgan),
];

/// A public institution (公共机构).
#[derive(Debug, Clone, PartialEq)]
pub struct Institution {
    /// Index within its area.
    pub index: u32,
    /// Area index.
    pub area: usize,
    /// Unified social credit code (valid check characters).
    pub uscc: String,
    /// Full name, e.g. 呈贡区机关事务管理局.
    pub name: String,
    /// Category.
    pub kind: InstitutionKind,
    /// Category label in Chinese.
    pub kind_zh: &'static str,
    /// USCC of the area's government office (none for the office itself).
    pub parent_uscc: Option<String>,
    /// Name of the parent.
    pub parent_name: Option<String>,
    /// 编制数.
    pub authorised_staff: u32,
    /// 实有人数 (current revision).
    pub actual_staff: u32,
    /// 实有人数 of the previous revision (what a stale upper level still shows).
    pub actual_staff_previous: u32,
    /// Office address.
    pub address: String,
    /// Building floor area, m².
    pub building_area_m2: f64,
    /// Whether upper levels show a stale revision of this entity's records.
    pub stale_upstream: bool,
}

/// Vehicle energy types (DOMAIN.md §6) with the Chinese labels systems use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergyType {
    /// 汽油.
    Gasoline,
    /// 柴油.
    Diesel,
    /// 纯电动.
    Bev,
    /// 插电式混合动力.
    Phev,
    /// 油电混合动力.
    Hev,
}

impl EnergyType {
    /// Canonical symbol (huitong.common.VehicleEnergyType).
    pub fn symbol(self) -> &'static str {
        match self {
            EnergyType::Gasoline => "GASOLINE",
            EnergyType::Diesel => "DIESEL",
            EnergyType::Bev => "BEV",
            EnergyType::Phev => "PHEV",
            EnergyType::Hev => "HEV",
        }
    }

    /// Label as regional systems write it.
    pub fn label_zh(self) -> &'static str {
        match self {
            EnergyType::Gasoline => "汽油",
            EnergyType::Diesel => "柴油",
            EnergyType::Bev => "纯电动",
            EnergyType::Phev => "插电式混合动力",
            EnergyType::Hev => "油电混合动力",
        }
    }

    fn new_energy(self) -> bool {
        matches!(self, EnergyType::Bev | EnergyType::Phev)
    }
}

/// 公务用车编制类别 labels (DOMAIN.md §6) and symbols, in that order.
pub const USAGE_CATEGORIES: [(&str, &str); 5] = [
    ("机要通信用车", "CONFIDENTIAL_COMMUNICATION"),
    ("应急保障用车", "EMERGENCY_SUPPORT"),
    ("执法执勤用车", "LAW_ENFORCEMENT"),
    ("特种专业技术用车", "SPECIAL_TECHNICAL"),
    ("其他按照规定配备的公务用车", "OTHER_AUTHORISED"),
];

/// `(brand/model, WMI, energy type, displacement L, price 元, seats)`. WMIs are the makers'
/// assigned codes as commonly published (⚠).
const MODELS: &[(&str, &str, EnergyType, f64, u32, u32)] = &[
    (
        "大众帕萨特 1.4T",
        "LSV",
        EnergyType::Gasoline,
        1.4,
        180_000,
        5,
    ),
    (
        "大众朗逸 1.5L",
        "LSV",
        EnergyType::Gasoline,
        1.5,
        110_000,
        5,
    ),
    (
        "丰田凯美瑞 2.0L",
        "LVG",
        EnergyType::Gasoline,
        2.0,
        179_000,
        5,
    ),
    ("红旗H5 1.5T", "LFP", EnergyType::Gasoline, 1.5, 159_000, 5),
    ("别克GL8 2.0T", "LSG", EnergyType::Gasoline, 2.0, 239_000, 7),
    (
        "丰田考斯特 4.0L",
        "LVG",
        EnergyType::Diesel,
        4.0,
        560_000,
        20,
    ),
    (
        "长城哈弗H6 1.5T",
        "LGW",
        EnergyType::Gasoline,
        1.5,
        115_000,
        5,
    ),
    ("江铃全顺 2.2T", "LJX", EnergyType::Diesel, 2.2, 170_000, 9),
    ("比亚迪秦PLUS EV", "LGX", EnergyType::Bev, 0.0, 139_800, 5),
    ("比亚迪汉EV", "LGX", EnergyType::Bev, 0.0, 209_800, 5),
    ("红旗E-QM5", "LFP", EnergyType::Bev, 0.0, 159_800, 5),
    (
        "比亚迪宋PLUS DM-i",
        "LGX",
        EnergyType::Phev,
        1.5,
        155_800,
        5,
    ),
    (
        "丰田卡罗拉双擎 1.8L",
        "LFM",
        EnergyType::Hev,
        1.8,
        135_000,
        5,
    ),
];

/// An official vehicle (公务用车).
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    /// Area index.
    pub area: usize,
    /// Owner institution index within the area.
    pub owner: u32,
    /// Index within the owner.
    pub index: u32,
    /// VIN (valid check digit).
    pub vin: String,
    /// Canonical plate, e.g. `云A12345` or `云AD12345`.
    pub plate: String,
    /// Owner USCC.
    pub owner_uscc: String,
    /// Owner name.
    pub owner_name: String,
    /// Index into [`USAGE_CATEGORIES`].
    pub usage: usize,
    /// Energy type.
    pub energy: EnergyType,
    /// Brand and model.
    pub model: &'static str,
    /// Displacement in litres (0 for BEV).
    pub displacement_l: f64,
    /// Purchase price, 元.
    pub price_yuan: u32,
    /// Purchase date.
    pub purchase_date: NaiveDate,
    /// Seats.
    pub seats: u32,
    /// Asset code of its asset card.
    pub asset_code: String,
    /// GPS terminal id, if fitted.
    pub terminal_id: Option<String>,
}

/// An office building (办公用房).
#[derive(Debug, Clone, PartialEq)]
pub struct Building {
    /// Area index.
    pub area: usize,
    /// Owner institution index.
    pub owner: u32,
    /// 不动产单元号 (28 characters) when registered.
    pub property_unit_number: Option<String>,
    /// Owner USCC.
    pub owner_uscc: String,
    /// Owner name.
    pub owner_name: String,
    /// Building name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Region code.
    pub region_code: &'static str,
    /// Year completed.
    pub completion_year: i32,
    /// Land area, m².
    pub land_area_m2: f64,
    /// Total floor area, m².
    pub floor_area_m2: f64,
    /// Office-room area (办公室用房), m².
    pub office_area_m2: f64,
    /// Number of office rooms.
    pub rooms: u32,
}

/// Standard-coal coefficients (GB/T 2589-2020 via DOMAIN.md §4; electricity 当量值 ⚠).
pub mod coef {
    /// kgce per kWh.
    pub const ELECTRICITY: f64 = 0.1229;
    /// kgce per m³ natural gas, the low end used by county systems (⚠ varies 1.2143–1.3300).
    pub const NATURAL_GAS: f64 = 1.2143;
    /// kgce per m³ natural gas, the high end a provincial platform recomputes with (⚠).
    pub const NATURAL_GAS_HIGH: f64 = 1.33;
    /// kgce per kg gasoline.
    pub const GASOLINE: f64 = 1.4714;
    /// kgce per kg diesel.
    pub const DIESEL: f64 = 1.4571;
    /// kgce per GJ heat.
    pub const HEAT: f64 = 34.12;
    /// kg per litre gasoline (convention ⚠).
    pub const GASOLINE_KG_PER_L: f64 = 0.73;
    /// kg per litre diesel (convention ⚠).
    pub const DIESEL_KG_PER_L: f64 = 0.86;
}

/// A monthly energy and water report (公共机构能源资源消费统计).
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyReport {
    /// Area index.
    pub area: usize,
    /// Institution index.
    pub owner: u32,
    /// Institution USCC.
    pub uscc: String,
    /// Institution name.
    pub name: String,
    /// Period, `YYYY-MM`.
    pub period: String,
    /// Electricity, kWh.
    pub electricity_kwh: f64,
    /// Natural gas, m³.
    pub natural_gas_m3: f64,
    /// Gasoline, litres.
    pub gasoline_l: f64,
    /// Diesel, litres.
    pub diesel_l: f64,
    /// Purchased heat, GJ (heating months in Inner Mongolia).
    pub heat_gj: f64,
    /// Water, m³.
    pub water_m3: f64,
    /// Energy users (用能人数).
    pub users: u32,
    /// Building area, m².
    pub building_area_m2: f64,
    /// Revision: 2 current, 1 the previous (what a stale level shows).
    pub revision: u32,
}

impl EnergyReport {
    /// Total in kgce with a given natural-gas coefficient (Σ carriers × GB/T 2589 coefficients).
    pub fn total_kgce_with(&self, gas_coef: f64) -> f64 {
        self.electricity_kwh * coef::ELECTRICITY
            + self.natural_gas_m3 * gas_coef
            + self.gasoline_l * coef::GASOLINE_KG_PER_L * coef::GASOLINE
            + self.diesel_l * coef::DIESEL_KG_PER_L * coef::DIESEL
            + self.heat_gj * coef::HEAT
    }

    /// Total in kgce with the default coefficients.
    pub fn total_kgce(&self) -> f64 {
        self.total_kgce_with(coef::NATURAL_GAS)
    }

    /// The previous revision of this report (values a few percent lower, revision 1).
    pub fn previous_revision(&self) -> EnergyReport {
        let f = 0.96;
        EnergyReport {
            electricity_kwh: round2(self.electricity_kwh * f),
            natural_gas_m3: round2(self.natural_gas_m3 * f),
            water_m3: round2(self.water_m3 * f),
            revision: 1,
            ..self.clone()
        }
    }
}

/// GB/T 14885-2010 categories used (7-digit codes ⚠ as commonly published: 1020000 房屋,
/// 2010000 计算机设备及软件, 2020000 办公设备, 2030000 车辆, 6010000 家具用具).
pub const ASSET_CATEGORIES: [(&str, &str); 5] = [
    ("2030000", "车辆"),
    ("2010000", "计算机设备及软件"),
    ("2020000", "办公设备"),
    ("6010000", "家具用具"),
    ("1020000", "房屋"),
];

/// Acquisition modes: `(label, symbol)`.
pub const ACQUISITION_MODES: [(&str, &str); 4] = [
    ("购置", "PURCHASE"),
    ("调拨", "TRANSFER_IN"),
    ("捐赠", "DONATION"),
    ("自建", "SELF_BUILT"),
];

/// Asset status labels, weighted towards 在用 (in use): the labels found in the wild (停用,
/// 封存, 报废, 待处置) and one that `hub/config/labels.toml` does not know (调剂中), which the
/// national record keeps as sent.
const ASSET_STATUSES: [&str; 10] = [
    "在用",
    "在用",
    "在用",
    "在用",
    "闲置",
    "待处置",
    "停用",
    "封存",
    "报废",
    "调剂中",
];

/// An asset status label → its national symbol (huitong.common.AssetStatus) as
/// `hub/config/labels.toml` maps it; `None` for a label it does not know (then OTHER, with
/// the label kept).
pub fn asset_status_symbol(label: &str) -> Option<&'static str> {
    Some(match label {
        "在用" => "IN_USE",
        "闲置" | "停用" | "封存" => "IDLE",
        "待处置" => "PENDING_DISPOSAL",
        "报废" => "DISPOSED",
        _ => return None,
    })
}

/// A fixed-asset card (资产卡片).
#[derive(Debug, Clone, PartialEq)]
pub struct AssetCard {
    /// Area index.
    pub area: usize,
    /// Owner institution index.
    pub owner: u32,
    /// Owner USCC.
    pub owner_uscc: String,
    /// Owner name.
    pub owner_name: String,
    /// The owner's asset number (资产编号), unique per owner.
    pub asset_code: String,
    /// Asset name.
    pub name: String,
    /// Index into [`ASSET_CATEGORIES`].
    pub category: usize,
    /// Original value, 元.
    pub original_value: f64,
    /// Accumulated depreciation, 元 (≤ original).
    pub accumulated_depreciation: f64,
    /// Index into [`ACQUISITION_MODES`].
    pub acquisition: usize,
    /// Acquisition date.
    pub acquisition_date: NaiveDate,
    /// Status label (one of [`ASSET_STATUSES`]; 在用 for vehicles' cards).
    pub status_zh: &'static str,
}

/// A vehicle quota line (公务用车编制): per institution, year and usage category.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    /// Area index.
    pub area: usize,
    /// Owner institution index.
    pub owner: u32,
    /// Owner USCC.
    pub owner_uscc: String,
    /// Owner name.
    pub owner_name: String,
    /// Year.
    pub year: i32,
    /// Index into [`USAGE_CATEGORIES`].
    pub usage: usize,
    /// 编制数.
    pub quota: u32,
    /// 实有数 (≤ quota).
    pub actual: u32,
    /// Approval document number.
    pub approval_document: String,
}

/// Operating-cost items reported (机关运行成本项目): `(label, symbol of huitong.common.CostItem)`.
pub const COST_ITEMS: [(&str, &str); 12] = [
    ("人员经费", "PERSONNEL"),
    ("办公及印刷费", "OFFICE_AND_PRINTING"),
    ("邮电费", "POSTAL_AND_TELECOM"),
    ("差旅费", "TRAVEL"),
    ("会议费", "MEETINGS"),
    ("培训费", "TRAINING"),
    ("日常维修费", "ROUTINE_MAINTENANCE"),
    ("办公用房水电费", "UTILITIES"),
    ("办公用房取暖费", "HEATING"),
    ("办公用房物业管理费", "PROPERTY_MANAGEMENT"),
    ("公务用车运行维护费", "VEHICLE_OPERATION"),
    ("公务接待费", "OFFICIAL_RECEPTION"),
];

/// A state organ's annual operating cost (机关运行成本), for the year before [`LAST_PERIOD`].
#[derive(Debug, Clone, PartialEq)]
pub struct OperatingCost {
    /// Area index.
    pub area: usize,
    /// Institution index.
    pub owner: u32,
    /// Institution USCC.
    pub uscc: String,
    /// Institution name.
    pub name: String,
    /// Year.
    pub year: i32,
    /// Amount per item of [`COST_ITEMS`], 元 (same order).
    pub items: [f64; 12],
    /// Staff (实有人数).
    pub staff: u32,
    /// Office-room area, m².
    pub office_area_m2: f64,
}

/// The item a stale revision of an operating cost differs in: 培训费 (training).
pub const STALE_COST_ITEM: usize = 5;

impl OperatingCost {
    /// Σ items, 元.
    pub fn total(&self) -> f64 {
        round2(self.items.iter().sum())
    }

    /// The previous revision (what a stale level shows): one item, 培训费, 10 % lower.
    pub fn previous_revision(&self) -> OperatingCost {
        let mut items = self.items;
        items[STALE_COST_ITEM] = round2(items[STALE_COST_ITEM] * 0.9);
        OperatingCost {
            items,
            ..self.clone()
        }
    }
}

/// One GPS fix (WGS-84).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// Area index.
    pub area: usize,
    /// Index of the vehicle in the area's vehicle list.
    pub vehicle: usize,
    /// Terminal id.
    pub terminal_id: String,
    /// Plate.
    pub plate: String,
    /// VIN.
    pub vin: String,
    /// Fix time.
    pub fix_time: DateTime<Utc>,
    /// WGS-84 latitude.
    pub lat: f64,
    /// WGS-84 longitude.
    pub lon: f64,
    /// km/h.
    pub speed_kmh: f64,
    /// Degrees clockwise from north.
    pub heading_deg: f64,
    /// Odometer, km.
    pub odometer_km: f64,
}

/// Everything one area holds.
#[derive(Debug, Clone, Default)]
pub struct AreaEntities {
    /// Institutions.
    pub institutions: Vec<Institution>,
    /// Vehicles, by owner then index.
    pub vehicles: Vec<Vehicle>,
    /// One office building per institution.
    pub buildings: Vec<Building>,
    /// Monthly energy reports, by owner then period.
    pub energy: Vec<EnergyReport>,
    /// Asset cards: each vehicle's, then other assets.
    pub assets: Vec<AssetCard>,
    /// Quota lines.
    pub quotas: Vec<Quota>,
    /// Annual operating costs of the state organs.
    pub costs: Vec<OperatingCost>,
    /// GPS points of the vehicles with a terminal, by vehicle then time.
    pub positions: Vec<Position>,
}

/// The simulated world.
#[derive(Debug, Clone)]
pub struct World {
    /// The seed everything derives from.
    pub seed: u64,
    /// Size knob.
    pub size: Size,
    params: Params,
    areas: Vec<Area>,
}

/// The last month reported (periods run up to and including it).
pub const LAST_PERIOD: (i32, u32) = (2025, 6);

/// The day the GPS tracks are recorded (local time 08:00 onward).
fn track_day_start() -> DateTime<Utc> {
    // 2025-06-30 08:00 CST = 00:00 UTC.
    Utc.with_ymd_and_hms(2025, 6, 30, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl World {
    /// Builds the area table for `seed` and `size`; entities come later, per area.
    pub fn new(seed: u64, size: Size) -> Self {
        let params = size.params();
        let mut areas = Vec::new();
        for (pi, p) in PROVINCES.iter().enumerate() {
            push_area(&mut areas, pi, p, None, None);
            for f in p.prefectures {
                if !p.municipality {
                    push_area(&mut areas, pi, p, Some(f), None);
                }
                for c in f.counties.iter().take(params.counties_per_prefecture) {
                    push_area(&mut areas, pi, p, Some(f), Some(c));
                }
            }
        }
        World {
            seed,
            size,
            params,
            areas,
        }
    }

    /// All areas, province seats and prefecture seats included.
    pub fn areas(&self) -> &[Area] {
        &self.areas
    }

    /// Periods reported, oldest first (`2025-05`, `2025-06` for tiny).
    pub fn periods(&self) -> Vec<String> {
        let (y, m) = LAST_PERIOD;
        let last = y * 12 + m as i32 - 1;
        (0..self.params.months as i32)
            .rev()
            .map(|back| {
                let t = last - back;
                format!("{:04}-{:02}", t / 12, t % 12 + 1)
            })
            .collect()
    }

    fn institution_count(&self, area: usize) -> u64 {
        let (lo, hi) = self.params.institutions_per_area;
        Rng::at(self.seed, "institutions", area as u64, 0).range(lo, hi)
    }

    fn vehicle_count(&self, area: usize, inst: u32) -> u64 {
        let (lo, hi) = self.params.vehicles_per_institution;
        let mut r = Rng::at(self.seed, "vehicle-count", area as u64, u64::from(inst));
        // The government office and the police always have cars; province seats more.
        let base = r.range(lo, hi);
        match (inst, self.areas[area].level) {
            (0 | 4, Level::Province) => base + hi,
            (0 | 4, _) => base.max(1),
            _ => base,
        }
    }

    /// Generates everything one area holds. Pure: same inputs, same output.
    pub fn area(&self, area_index: usize) -> AreaEntities {
        let area = &self.areas[area_index];
        let seed = self.seed;
        let ai = area_index as u64;
        let n = self.institution_count(area_index);
        let mut out = AreaEntities::default();
        // Permutation offsets so organisation codes look scattered, yet stay unique per area.
        let mut ar = Rng::at(seed, "area", ai, 0);
        let org_offset = ar.below(10_000_000);
        for i in 0..n as u32 {
            out.institutions
                .push(self.institution(area, i, org_offset, &out.institutions));
        }
        let institutions = std::mem::take(&mut out.institutions);
        for inst in &institutions {
            self.institution_entities(area, inst, &mut out);
        }
        out.institutions = institutions;
        self.tracks(area, &mut out);
        out
    }

    fn institution(
        &self,
        area: &Area,
        i: u32,
        org_offset: u64,
        earlier: &[Institution],
    ) -> Institution {
        let mut r = Rng::at(self.seed, "institution", area.index as u64, u64::from(i));
        let (name, kind) = unit_name(area, i);
        let organ = kind == InstitutionKind::StateOrgan;
        let perm = (u64::from(i) * 7919 + org_offset) % 10_000_000;
        let (prefix, body) = if organ {
            ("11", format!("0{perm:07}"))
        } else {
            ("12", format!("MB{:06}", perm % 1_000_000))
        };
        let uscc = make_uscc(prefix, area.code, &body).unwrap_or_default();
        let staff_range = match (area.level, kind) {
            (_, InstitutionKind::Health) => (120, 900),
            (_, InstitutionKind::School) => (60, 260),
            (Level::Province, _) => (60, 400),
            (Level::Prefecture, _) => (30, 200),
            (Level::County, _) => (15, 120),
        };
        let authorised = r.range(staff_range.0, staff_range.1) as u32;
        let actual = authorised - r.below(u64::from(authorised / 8 + 1)) as u32;
        let previous = actual.saturating_sub(r.range(1, 4) as u32).max(1);
        let per_person = match kind {
            InstitutionKind::School => r.float(18.0, 30.0),
            InstitutionKind::Health => r.float(40.0, 70.0),
            _ => r.float(25.0, 45.0),
        };
        let building_area = round2(f64::from(actual) * per_person);
        let (parent_uscc, parent_name) = match earlier.first() {
            Some(p) if i > 0 => (Some(p.uscc.clone()), Some(p.name.clone())),
            _ => (None, None),
        };
        let address = format!(
            "{}{}{}号",
            area.address_prefix,
            r.pick(&[
                "人民路",
                "环城路",
                "建设路",
                "文化路",
                "新华路",
                "解放路",
                "政府路",
                "行政中心大道",
                "迎宾路",
                "团结路"
            ]),
            r.range(1, 388)
        );
        Institution {
            index: i,
            area: area.index,
            uscc,
            name,
            kind,
            kind_zh: kind.label_zh(area.level),
            parent_uscc,
            parent_name,
            authorised_staff: authorised,
            actual_staff: actual,
            actual_staff_previous: previous,
            address,
            building_area_m2: building_area,
            stale_upstream: r.chance(0.2),
        }
    }

    fn institution_entities(&self, area: &Area, inst: &Institution, out: &mut AreaEntities) {
        let seed = self.seed;
        let ai = area.index as u64;
        let ii = u64::from(inst.index);
        let mut r = Rng::at(seed, "inst-entities", ai, ii);
        let province = &PROVINCES[area.province];
        // Inner Mongolia heats its buildings half the year.
        let cold = province.code == "150000";

        // Vehicles and their asset cards.
        let nv = self.vehicle_count(area.index, inst.index);
        let mut vehicle_fuel = (0.0, 0.0); // (gasoline vehicles, diesel vehicles)
        let mut usage_counts = [0u32; 5];
        for v in 0..nv as u32 {
            let mut vr = Rng::at(seed, "vehicle", ai, (ii << 20) | u64::from(v));
            // New-energy share of the fleet ≈ 30–40 % (purchases ≥ 30 %, DOMAIN.md §5).
            let model = if vr.chance(0.35) {
                *vr.pick(&MODELS[8..12])
            } else {
                *vr.pick(&MODELS[..8])
            };
            let (model_name, wmi, energy, displacement, price, seats) = model;
            match energy {
                EnergyType::Gasoline | EnergyType::Hev | EnergyType::Phev => vehicle_fuel.0 += 1.0,
                EnergyType::Diesel => vehicle_fuel.1 += 1.0,
                EnergyType::Bev => {}
            }
            let usage = if inst.index == 4 {
                2
            } else if inst.kind == InstitutionKind::Health {
                if vr.chance(0.5) { 1 } else { 3 }
            } else if vr.chance(0.1) {
                0
            } else {
                *vr.pick(&[1, 2, 4, 4, 4])
            };
            usage_counts[usage] += 1;
            let year = vr.range(2016, 2025) as i32;
            let purchase_date =
                NaiveDate::from_ymd_opt(year, vr.range(1, 12) as u32, vr.range(1, 28) as u32)
                    .unwrap_or_default();
            let vin = make_vin(wmi, year, ai, ii, u64::from(v), &mut vr);
            let letters: Vec<char> = area.plate_letters.chars().collect();
            let letter = *vr.pick(&letters);
            let plate = make_plate(
                province.plate_char,
                letter,
                energy.new_energy(),
                energy == EnergyType::Bev,
                &mut vr,
            );
            let asset_code = format!("ZC{year}{:05}", v + 1);
            let terminal_id = vr.chance(self.params.terminal_share).then(|| {
                format!(
                    "T{}{:07}",
                    &area.code[..4],
                    mix(ai << 40 | ii << 20 | u64::from(v)) % 10_000_000
                )
            });
            let price_yuan = (f64::from(price) * vr.float(0.95, 1.05)).round() as u32 / 100 * 100;
            out.assets.push(AssetCard {
                area: area.index,
                owner: inst.index,
                owner_uscc: inst.uscc.clone(),
                owner_name: inst.name.clone(),
                asset_code: asset_code.clone(),
                name: model_name.to_string(),
                category: 0,
                original_value: f64::from(price_yuan),
                accumulated_depreciation: depreciation(f64::from(price_yuan), year, 8),
                acquisition: 0,
                acquisition_date: purchase_date,
                status_zh: "在用",
            });
            out.vehicles.push(Vehicle {
                area: area.index,
                owner: inst.index,
                index: v,
                vin,
                plate,
                owner_uscc: inst.uscc.clone(),
                owner_name: inst.name.clone(),
                usage,
                energy,
                model: model_name,
                displacement_l: displacement,
                price_yuan,
                purchase_date,
                seats,
                asset_code,
                terminal_id,
            });
        }

        // Other asset cards.
        let (lo, hi) = self.params.other_assets_per_institution;
        for k in 0..r.range(lo, hi) as u32 {
            let mut cr = Rng::at(seed, "asset", ai, (ii << 20) | u64::from(k));
            let category = cr.range(1, 4) as usize;
            let (name, value_range, life) = match category {
                1 => (
                    *cr.pick(&["台式计算机", "便携式计算机", "服务器", "交换机"]),
                    (4_000.0, 60_000.0),
                    6,
                ),
                2 => (
                    *cr.pick(&["多功能一体机", "投影仪", "碎纸机", "复印机"]),
                    (1_500.0, 30_000.0),
                    6,
                ),
                3 => (
                    *cr.pick(&["办公桌", "会议桌", "文件柜", "办公椅"]),
                    (600.0, 12_000.0),
                    15,
                ),
                _ => ("办公楼", (3_000_000.0, 30_000_000.0), 50),
            };
            let year = cr.range(2012, 2025) as i32;
            let original = round2(cr.float(value_range.0, value_range.1));
            out.assets.push(AssetCard {
                area: area.index,
                owner: inst.index,
                owner_uscc: inst.uscc.clone(),
                owner_name: inst.name.clone(),
                asset_code: format!("ZC{year}{:05}", 50_000 + k),
                name: name.to_string(),
                category,
                original_value: original,
                accumulated_depreciation: depreciation(original, year, life),
                acquisition: *cr.pick(&[0, 0, 0, 1, 2, 3]),
                acquisition_date: NaiveDate::from_ymd_opt(
                    year,
                    cr.range(1, 12) as u32,
                    cr.range(1, 28) as u32,
                )
                .unwrap_or_default(),
                status_zh: ASSET_STATUSES[cr.below(ASSET_STATUSES.len() as u64) as usize],
            });
        }

        // Quotas: one line per usage category the unit has vehicles in.
        for (usage, &actual) in usage_counts.iter().enumerate() {
            if actual == 0 {
                continue;
            }
            let mut qr = Rng::at(seed, "quota", ai, (ii << 4) | usage as u64);
            out.quotas.push(Quota {
                area: area.index,
                owner: inst.index,
                owner_uscc: inst.uscc.clone(),
                owner_name: inst.name.clone(),
                year: LAST_PERIOD.0,
                usage,
                quota: actual + qr.below(3) as u32,
                actual,
                approval_document: format!(
                    "{}编办〔{}〕{}号",
                    area.name,
                    LAST_PERIOD.0 - 1,
                    qr.range(3, 120)
                ),
            });
        }

        // Operating cost (state organs only): magnitudes per person and per vehicle are our
        // assumption, personnel ≈ 75–85 % of the total as in published 机关运行成本 statistics.
        if inst.kind == InstitutionKind::StateOrgan {
            let mut cr = Rng::at(seed, "cost", ai, ii);
            let staff = f64::from(inst.actual_staff);
            let per = |r: &mut Rng, lo: f64, hi: f64| round2(staff * r.float(lo, hi));
            let items = [
                per(&mut cr, 90_000.0, 140_000.0),
                per(&mut cr, 3_000.0, 8_000.0),
                per(&mut cr, 1_000.0, 2_000.0),
                per(&mut cr, 4_000.0, 10_000.0),
                per(&mut cr, 1_000.0, 3_000.0),
                per(&mut cr, 1_000.0, 3_000.0),
                per(&mut cr, 2_000.0, 5_000.0),
                round2(inst.building_area_m2 * cr.float(40.0, 70.0)),
                if cold {
                    round2(inst.building_area_m2 * cr.float(20.0, 35.0))
                } else {
                    0.0
                },
                round2(inst.building_area_m2 * cr.float(30.0, 80.0)),
                round2(nv as f64 * cr.float(15_000.0, 25_000.0)),
                per(&mut cr, 100.0, 800.0),
            ];
            out.costs.push(OperatingCost {
                area: area.index,
                owner: inst.index,
                uscc: inst.uscc.clone(),
                name: inst.name.clone(),
                year: LAST_PERIOD.0 - 1,
                items,
                staff: inst.actual_staff,
                office_area_m2: 0.0,
            });
        }

        // Office building.
        let registered = r.chance(0.7);
        let floor = inst.building_area_m2;
        out.buildings.push(Building {
            area: area.index,
            owner: inst.index,
            property_unit_number: registered.then(|| {
                format!(
                    "{}{:03}{:03}GB{:05}F{:04}{:04}",
                    area.code,
                    r.range(1, 12),
                    r.range(1, 30),
                    r.range(1, 9999),
                    r.range(1, 20),
                    1
                )
            }),
            owner_uscc: inst.uscc.clone(),
            owner_name: inst.name.clone(),
            name: format!("{}办公楼", inst.name),
            address: inst.address.clone(),
            region_code: area.code,
            completion_year: r.range(1985, 2020) as i32,
            land_area_m2: round2(floor * r.float(0.4, 1.2)),
            floor_area_m2: floor,
            office_area_m2: round2(f64::from(inst.actual_staff) * r.float(9.0, 16.0)),
            rooms: (inst.actual_staff / 2).max(4) + r.below(10) as u32,
        });
        if let (Some(c), Some(b)) = (out.costs.last_mut(), out.buildings.last())
            && c.owner == inst.index
        {
            c.office_area_m2 = b.office_area_m2;
        }

        // Monthly energy reports (DOMAIN.md §5 magnitudes: organs ≈ 11.8 kgce/m²·a).
        for (k, period) in self.periods().iter().enumerate() {
            let month: u32 = period[5..].parse().unwrap_or(1);
            let mut er = Rng::at(seed, "energy", ai, (ii << 8) | k as u64);
            let season = match month {
                12 | 1 | 2 => 1.25,
                6..=8 => 1.15,
                _ => 0.9,
            };
            let target = inst.building_area_m2 * inst.kind.kgce_per_m2_year() / 12.0
                * season
                * er.float(0.9, 1.1);
            let electricity = target * 0.72 / coef::ELECTRICITY;
            let gas = target * 0.16 / coef::NATURAL_GAS;
            let heating = cold && matches!(month, 10..=12 | 1..=4);
            let heat = if heating {
                inst.building_area_m2 * er.float(0.035, 0.05)
            } else {
                0.0
            };
            let water_per_person_year = match inst.kind {
                InstitutionKind::Health => er.float(90.0, 140.0),
                InstitutionKind::School => er.float(25.0, 40.0),
                _ => er.float(38.0, 70.0),
            };
            out.energy.push(EnergyReport {
                area: area.index,
                owner: inst.index,
                uscc: inst.uscc.clone(),
                name: inst.name.clone(),
                period: period.clone(),
                electricity_kwh: round2(electricity),
                natural_gas_m3: round2(gas),
                gasoline_l: round2(vehicle_fuel.0 * er.float(80.0, 180.0)),
                diesel_l: round2(vehicle_fuel.1 * er.float(100.0, 220.0)),
                heat_gj: round2(heat),
                water_m3: round2(f64::from(inst.actual_staff) * water_per_person_year / 12.0),
                users: inst.actual_staff,
                building_area_m2: inst.building_area_m2,
                revision: 2,
            });
        }
    }

    /// GPS tracks: points every 10–30 s, moving along a street grid (north–south and east–west
    /// segments with occasional turns) inside the area's box.
    fn tracks(&self, area: &Area, out: &mut AreaEntities) {
        let start = track_day_start();
        for (vi, v) in out.vehicles.iter().enumerate() {
            let Some(terminal) = &v.terminal_id else {
                continue;
            };
            let mut r = Rng::at(self.seed, "track", area.index as u64, vi as u64);
            let bb = area.bbox;
            let mut lat = r.float(bb.min_lat + 0.02, bb.max_lat - 0.02);
            let mut lon = r.float(bb.min_lon + 0.02, bb.max_lon - 0.02);
            let mut heading = (r.below(4) * 90) as f64;
            let mut t = start + Duration::seconds(r.range(0, 36_000) as i64);
            let mut odometer = round2(r.float(5_000.0, 180_000.0));
            for _ in 0..self.params.points_per_track {
                let speed = if r.chance(0.1) {
                    0.0
                } else {
                    r.float(15.0, 70.0)
                };
                out.positions.push(Position {
                    area: area.index,
                    vehicle: vi,
                    terminal_id: terminal.clone(),
                    plate: v.plate.clone(),
                    vin: v.vin.clone(),
                    fix_time: t,
                    lat: (lat * 1e6).round() / 1e6,
                    lon: (lon * 1e6).round() / 1e6,
                    speed_kmh: (speed * 10.0).round() / 10.0,
                    heading_deg: heading,
                    odometer_km: (odometer * 10.0).round() / 10.0,
                });
                let dt = r.range(10, 30) as i64;
                let metres = speed / 3.6 * dt as f64;
                let rad = heading.to_radians();
                lat += metres * rad.cos() / M_PER_DEG_LAT;
                lon += metres * rad.sin() / (M_PER_DEG_LAT * lat.to_radians().cos());
                if !bb.contains(lat, lon) {
                    lat = lat.clamp(bb.min_lat, bb.max_lat);
                    lon = lon.clamp(bb.min_lon, bb.max_lon);
                    heading = (heading + 180.0) % 360.0;
                } else if r.chance(0.12) {
                    heading = (heading + if r.chance(0.5) { 90.0 } else { 270.0 }) % 360.0;
                }
                odometer += metres / 1000.0;
                t += Duration::seconds(dt);
            }
        }
    }
}

fn push_area(
    areas: &mut Vec<Area>,
    pi: usize,
    p: &'static Province,
    f: Option<&'static Prefecture>,
    c: Option<&'static (&'static str, &'static str, &'static str)>,
) {
    let index = areas.len();
    let (code, name, level, letters, bbox) = match (f, c) {
        (None, _) => {
            let f0 = &p.prefectures[0];
            (
                p.code,
                p.short_name,
                Level::Province,
                &f0.plate_letters[..1],
                f0.bbox,
            )
        }
        (Some(f), None) => (
            f.code,
            f.short_name,
            Level::Prefecture,
            f.plate_letters,
            f.bbox,
        ),
        (Some(f), Some(c)) => {
            let letters = if c.2.is_empty() { f.plate_letters } else { c.2 };
            (c.0, c.1, Level::County, letters, f.bbox)
        }
    };
    let prefecture_code = match f {
        Some(f) if !p.municipality => Some(f.code),
        _ => None,
    };
    let mut address_prefix = p.name.to_string();
    if let Some(f) = f
        && !p.municipality
    {
        address_prefix.push_str(f.name);
    }
    if let Some(c) = c {
        address_prefix.push_str(c.1);
    }
    areas.push(Area {
        index,
        code,
        name,
        level,
        province: pi,
        prefecture_code,
        plate_letters: letters,
        bbox,
        address_prefix,
    });
}

fn unit_name(area: &Area, i: u32) -> (String, InstitutionKind) {
    if let Some((local, prov, kind)) = UNITS.get(i as usize) {
        let suffix = if area.level == Level::Province {
            prov
        } else {
            local
        };
        return (format!("{}{}", area.name, suffix), *kind);
    }
    // Beyond the fixed list: numbered schools, health centres and offices, the bulk of a
    // county's public institutions.
    let n = i as usize - UNITS.len() + 2;
    match i % 4 {
        0 => (format!("{}第{}中学", area.name, n), InstitutionKind::School),
        1 => (format!("{}第{}小学", area.name, n), InstitutionKind::School),
        2 => (
            format!("{}第{}社区卫生服务中心", area.name, n),
            InstitutionKind::Health,
        ),
        _ => (
            format!("{}政务服务中心(第{}分中心)", area.name, n),
            InstitutionKind::OtherPublic,
        ),
    }
}

/// A VIN unique per (area, institution, vehicle): the serial (positions 12–17) and the last
/// two VDS characters carry a bijective scramble of those indices.
fn make_vin(wmi: &str, year: i32, ai: u64, ii: u64, vi: u64, r: &mut Rng) -> String {
    let alphabet: Vec<char> = codes::VIN_ALPHABET.chars().collect();
    let key = (ai << 21) | (ii << 8) | vi.min(255); // < 2^30 for ≤ 511 areas, 8192 institutions
    let scrambled = scramble30(key);
    let serial = scrambled % 1_000_000;
    let high = scrambled / 1_000_000; // < 1074 ≤ 33²
    let mut s = String::from(wmi);
    for _ in 0..3 {
        s.push(alphabet[r.below(alphabet.len() as u64) as usize]);
    }
    s.push(alphabet[(high / 33 % 33) as usize]);
    s.push(alphabet[(high % 33) as usize]);
    s.push('0');
    s.push(vin_year_char(year));
    s.push(*r.pick(&['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K']));
    s.push_str(&format!("{serial:06}"));
    with_vin_check(&s).unwrap_or(s)
}

/// A bijection on 30-bit integers (odd multiply and xorshift, both invertible mod 2³⁰).
fn scramble30(x: u64) -> u64 {
    const MASK: u64 = (1 << 30) - 1;
    let mut x = x & MASK;
    x = x.wrapping_mul(0x2545_F491) & MASK;
    x ^= x >> 15;
    x = x.wrapping_mul(0x1B87_3593) & MASK;
    x ^= x >> 13;
    x
}

fn make_plate(province: char, letter: char, new_energy: bool, bev: bool, r: &mut Rng) -> String {
    let letters: Vec<char> = codes::PLATE_LETTERS.chars().collect();
    let mut s = String::new();
    s.push(province);
    s.push(letter);
    if new_energy {
        // Small new-energy plate: D (BEV) / F (other new energy), then a letter or digit,
        // then four digits (GA 36-2018).
        s.push(if bev { 'D' } else { 'F' });
        if r.chance(0.5) {
            s.push(*r.pick(&letters));
        } else {
            s.push(char::from(b'0' + r.below(10) as u8));
        }
        for _ in 0..4 {
            s.push(char::from(b'0' + r.below(10) as u8));
        }
    } else {
        // Ordinary plate: five characters, at most one letter among them.
        let letter_pos = if r.chance(0.4) {
            Some(r.below(5))
        } else {
            None
        };
        for i in 0..5 {
            if Some(i) == letter_pos {
                s.push(*r.pick(&letters));
            } else {
                s.push(char::from(b'0' + r.below(10) as u8));
            }
        }
    }
    s
}

/// Straight-line depreciation to 2025-06-30, never below zero.
fn depreciation(original: f64, year: i32, life_years: i32) -> f64 {
    let age = (LAST_PERIOD.0 - year).max(0) as f64 + 0.5;
    round2((original * age / f64::from(life_years)).min(original))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{PlateKind, plate_kind, uscc_is_valid, vin_is_valid};
    use std::collections::HashSet;

    #[test]
    fn entities_are_valid_and_unique() {
        let w = World::new(42, Size::Tiny);
        let mut usccs = HashSet::new();
        let mut vins = HashSet::new();
        let (mut vehicles, mut bev, mut institutions) = (0, 0, 0);
        for a in w.areas() {
            let e = w.area(a.index);
            for i in &e.institutions {
                institutions += 1;
                assert!(uscc_is_valid(&i.uscc), "{}", i.uscc);
                assert_eq!(&i.uscc[2..8], a.code);
                assert!(i.uscc.starts_with("11") || i.uscc.starts_with("12"));
                assert!(usccs.insert(i.uscc.clone()), "duplicate {}", i.uscc);
                assert!(i.name.starts_with(a.name), "{}", i.name);
            }
            for v in &e.vehicles {
                vehicles += 1;
                assert!(vin_is_valid(&v.vin), "{}", v.vin);
                assert!(vins.insert(v.vin.clone()), "duplicate {}", v.vin);
                let kind = plate_kind(&v.plate).unwrap_or_else(|| panic!("{}", v.plate));
                let province = PROVINCES[a.province].plate_char;
                assert!(v.plate.starts_with(province));
                assert!(a.plate_letters.contains(v.plate.chars().nth(1).unwrap()));
                if v.energy == EnergyType::Bev {
                    bev += 1;
                    assert_eq!(kind, PlateKind::NewEnergySmall);
                }
            }
            for r in &e.energy {
                let inst = &e.institutions[r.owner as usize];
                let per_m2_month = r.total_kgce() / inst.building_area_m2;
                assert!(
                    (0.15..2.5).contains(&per_m2_month),
                    "{per_m2_month} kgce/m² in {}",
                    r.period
                );
            }
            for c in &e.assets {
                assert!(c.accumulated_depreciation <= c.original_value);
            }
            for q in &e.quotas {
                assert!(q.actual <= q.quota);
            }
            for p in &e.positions {
                assert!(a.bbox.contains(p.lat, p.lon));
            }
            for b in &e.buildings {
                if let Some(n) = &b.property_unit_number {
                    assert_eq!(n.chars().count(), 28, "{n}");
                }
            }
        }
        assert!((50..400).contains(&institutions), "{institutions}");
        assert!(vehicles > 50, "{vehicles}");
        let share = f64::from(bev) / f64::from(vehicles);
        assert!((0.1..0.5).contains(&share), "BEV share {share}");
    }

    #[test]
    fn national_scale_is_a_million_vehicles() {
        let w = World::new(1, Size::National);
        let vehicles: u64 = (0..w.areas().len())
            .map(|a| {
                (0..w.institution_count(a) as u32)
                    .map(|i| w.vehicle_count(a, i))
                    .sum::<u64>()
            })
            .sum();
        assert!((800_000..1_400_000).contains(&vehicles), "{vehicles}");
    }

    #[test]
    fn scramble_is_injective_on_a_sample() {
        let s: HashSet<u64> = (0..200_000u64).map(|k| scramble30(k * 5 + 3)).collect();
        assert_eq!(s.len(), 200_000);
    }
}
