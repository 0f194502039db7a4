//! Shared types of the contract (`huitong.common.*`): provenance, regions, quantities, money,
//! conflicts and the canonical code lists every domain uses.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Domain;

/// Level of an administrative division (行政区划级别), GB/T 2260 (`huitong.common.RegionLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegionLevel {
    /// Province level (省级), code `PP0000`.
    Province,
    /// Prefecture level (地级), code `PPCC00`.
    Prefecture,
    /// County level (县级), code `PPCCDD`.
    County,
}

/// An administrative division by its current GB/T 2260 code (`huitong.common.Region`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region {
    /// Current six-digit division code (行政区划代码), e.g. `530114`.
    pub code: String,
    /// Level of the division (行政区划级别).
    pub level: RegionLevel,
    /// Official name in the code table in force (行政区划名称).
    #[serde(default)]
    pub name: Option<String>,
    /// Code as reported when it differs from `code` (原报送区划代码), e.g. a superseded code.
    #[serde(default)]
    pub reported_code: Option<String>,
}

/// Level of the federation that sent a report (报送层级) (`huitong.common.ReportingLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportingLevel {
    /// Provincial platform (省级).
    Province,
    /// Prefecture or city platform (州/市/盟级).
    Prefecture,
    /// County platform (县/区/旗级).
    County,
    /// The institution itself (单位直报).
    Unit,
}

/// Where one report came from (数据来源) (`huitong.common.Provenance`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provenance {
    /// Stable identifier of the regional source system (来源系统标识).
    pub source_system_id: String,
    /// Level of the federation that sent the report (报送层级).
    pub reporting_level: ReportingLevel,
    /// GB/T 2260 code of the reporter's area (报送方行政区划代码).
    pub reporter_region_code: String,
    /// Identifier of the record in the source system (源记录标识); the raw topics' key.
    pub source_record_id: String,
    /// When the source last changed the record (源记录时间), if it says.
    #[serde(default, with = "crate::logical::timestamp_millis::option")]
    pub source_timestamp: Option<DateTime<Utc>>,
    /// When the connector received the record (接收时间).
    #[serde(with = "crate::logical::timestamp_millis")]
    pub received_at: DateTime<Utc>,
    /// Connector instance that wrote the record (连接器标识).
    pub connector_id: String,
    /// Delivery batch or snapshot id (批次标识).
    #[serde(default)]
    pub batch_id: Option<String>,
}

/// An amount exactly as reported (原始计量值) (`huitong.common.RawQuantity`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RawQuantity {
    /// Reported value as text, never reformatted (原始数值).
    pub value: String,
    /// Reported unit as text (原始计量单位).
    pub unit: String,
}

/// Canonical unit of a normalised quantity (标准计量单位) (`huitong.common.CanonicalUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CanonicalUnit {
    /// Kilowatt-hour (千瓦时).
    Kwh,
    /// Kilogram of standard coal equivalent (千克标准煤).
    Kgce,
    /// Cubic metre (立方米).
    M3,
    /// Kilogram (千克).
    Kg,
    /// Gigajoule (吉焦).
    Gj,
    /// Square metre (平方米).
    M2,
    /// Litre (升).
    L,
    /// Kilometre (千米).
    Km,
}

/// A normalised physical quantity with its reported form (标准化计量值)
/// (`huitong.common.Quantity`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quantity {
    /// Value in the canonical unit (标准值), decimal(24,6).
    #[serde(with = "crate::logical::decimal_24_6")]
    pub value: Decimal,
    /// Canonical unit of `value` (标准计量单位).
    pub unit: CanonicalUnit,
    /// Value as reported (原始数值); `None` when the hub computed the quantity.
    #[serde(default)]
    pub raw_value: Option<String>,
    /// Unit as reported (原始计量单位); `None` when the hub computed the quantity.
    #[serde(default)]
    pub raw_unit: Option<String>,
}

/// A normalised amount of money in yuan with its reported form (金额) (`huitong.common.Money`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in yuan (金额, 元), decimal(20,2).
    #[serde(with = "crate::logical::decimal_20_2")]
    pub value: Decimal,
    /// Amount as reported (原始数值); `None` when the hub computed it.
    #[serde(default)]
    pub raw_value: Option<String>,
    /// Unit as reported (原始计量单位), e.g. 万元; `None` when the hub computed it.
    #[serde(default)]
    pub raw_unit: Option<String>,
}

/// Energy carrier (能源品种) (`huitong.common.EnergyCarrier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnergyCarrier {
    /// Electricity (电力), in kWh.
    Electricity,
    /// Coal (煤炭), in kg.
    Coal,
    /// Natural gas (天然气), in m³.
    NaturalGas,
    /// Liquefied petroleum gas (液化石油气), in kg.
    Lpg,
    /// Gasoline (汽油), in kg.
    Gasoline,
    /// Diesel (柴油), in kg.
    Diesel,
    /// Kerosene (煤油), in kg.
    Kerosene,
    /// Fuel oil (燃料油), in kg.
    FuelOil,
    /// Purchased heat (热力), in GJ.
    Heat,
    /// Any other carrier (其他能源), in kgce.
    Other,
}

/// Energy type of a vehicle (车辆能源类型) (`huitong.common.VehicleEnergyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VehicleEnergyType {
    /// Gasoline (汽油).
    Gasoline,
    /// Diesel (柴油).
    Diesel,
    /// Battery electric (纯电动).
    Bev,
    /// Plug-in hybrid (插电式混合动力).
    Phev,
    /// Extended-range electric (增程式电动).
    Erev,
    /// Non-plug-in hybrid (油电混合动力).
    Hev,
    /// Fuel-cell electric (燃料电池).
    Fcev,
    /// Compressed natural gas (压缩天然气).
    Cng,
    /// Any other type (其他).
    Other,
}

impl VehicleEnergyType {
    /// Whether the type counts as a new-energy vehicle (新能源汽车): BEV, PHEV, EREV and FCEV;
    /// not HEV.
    pub const fn is_new_energy(self) -> bool {
        matches!(
            self,
            VehicleEnergyType::Bev
                | VehicleEnergyType::Phev
                | VehicleEnergyType::Erev
                | VehicleEnergyType::Fcev
        )
    }
}

/// Establishment category of an official vehicle (公务用车编制类别)
/// (`huitong.common.VehicleUsageCategory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VehicleUsageCategory {
    /// Confidential-communication vehicle (机要通信用车).
    ConfidentialCommunication,
    /// Emergency-support vehicle (应急保障用车).
    EmergencySupport,
    /// Law-enforcement and duty vehicle (执法执勤用车).
    LawEnforcement,
    /// Special professional-technical vehicle (特种专业技术用车).
    SpecialTechnical,
    /// Other official vehicle provided under the regulations (其他按照规定配备的公务用车).
    OtherAuthorised,
}

/// Ledger status of an official vehicle (车辆状态) (`huitong.common.VehicleStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VehicleStatus {
    /// In service (在用).
    InUse,
    /// Kept but not in service (闲置/封存).
    Idle,
    /// Awaiting disposal (待处置).
    PendingDisposal,
    /// Disposed of, kept for history (已处置).
    Disposed,
    /// Any other status (其他).
    Other,
}

/// Type of public institution (公共机构类型) (`huitong.common.InstitutionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstitutionType {
    /// State organ at provincial level or above (省级及以上国家机关).
    StateOrganProvincialAndAbove,
    /// State organ at city level or below (市级及以下国家机关).
    StateOrganCityAndBelow,
    /// University or college (高等院校).
    HigherEducation,
    /// Primary or secondary school (中小学).
    PrimarySecondaryEducation,
    /// Science and technology institution (科技).
    ScienceTechnology,
    /// Cultural institution or venue (文化/场馆).
    Culture,
    /// Health institution or hospital (卫生/医院).
    Health,
    /// Sports institution (体育).
    Sports,
    /// Other public institution (其他事业单位).
    OtherPublicInstitution,
    /// People's or social organisation (群团组织/社会团体).
    SocialOrganisation,
    /// Not classified (其他).
    Other,
}

/// Registration status of a public institution (机构状态) (`huitong.common.InstitutionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstitutionStatus {
    /// In existence (存续).
    Active,
    /// Abolished or deregistered (撤销/注销).
    Revoked,
    /// Merged into another institution (合并).
    Merged,
    /// Any other status (其他).
    Other,
}

/// How an asset was acquired (取得方式) (`huitong.common.AcquisitionMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AcquisitionMode {
    /// Bought (购置).
    Purchase,
    /// Allocated from another unit (调拨).
    TransferIn,
    /// Donated (捐赠).
    Donation,
    /// Built or made by the unit (自建).
    SelfBuilt,
    /// Obtained by exchange (置换).
    Exchange,
    /// Found in a stock-take (盘盈).
    InventorySurplus,
    /// Any other mode (其他).
    Other,
}

/// Use status of a state asset (资产使用状况) (`huitong.common.AssetStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssetStatus {
    /// In use by the unit (在用).
    InUse,
    /// Leased out (出租).
    LeasedOut,
    /// Lent out (出借).
    LentOut,
    /// Idle (闲置).
    Idle,
    /// Awaiting disposal (待处置).
    PendingDisposal,
    /// Disposed of, kept for history (已处置).
    Disposed,
    /// Any other status (其他).
    Other,
}

/// Edition of GB/T 14885 a category code belongs to (资产分类标准版本)
/// (`huitong.common.AssetCategoryEdition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AssetCategoryEdition {
    /// 固定资产分类与代码 GB/T 14885-2010: seven digits, e.g. 2030000 车辆.
    #[serde(rename = "GB_T_14885_2010")]
    GbT14885_2010,
    /// 固定资产等资产基础分类与代码 GB/T 14885-2022: letter-prefixed codes.
    #[serde(rename = "GB_T_14885_2022")]
    GbT14885_2022,
}

/// Rank of an office occupant (职级) (`huitong.common.OfficialRank`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfficialRank {
    /// Provincial/ministerial principal (省部级正职).
    MinisterialPrincipal,
    /// Provincial/ministerial deputy (省部级副职).
    MinisterialDeputy,
    /// Bureau principal (厅局级正职).
    BureauPrincipal,
    /// Bureau deputy (厅局级副职).
    BureauDeputy,
    /// Division or county principal (县处级正职).
    DivisionPrincipal,
    /// Division or county deputy (县处级副职).
    DivisionDeputy,
    /// Section principal (乡科级正职).
    SectionPrincipal,
    /// Section deputy (乡科级副职).
    SectionDeputy,
    /// Staff below section level (科级以下).
    BelowSection,
    /// Not a civil-service rank (其他).
    Other,
}

/// Use of office space (办公用房用途) (`huitong.common.OfficeSpaceUse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfficeSpaceUse {
    /// Offices of staff (办公室用房).
    OfficeRoom,
    /// Service rooms such as meeting rooms and archives (服务用房).
    ServiceRoom,
    /// Plant and equipment rooms (设备用房).
    EquipmentRoom,
    /// Professional and technical business rooms (业务技术用房).
    TechnicalBusiness,
    /// Ancillary rooms such as canteens and garages (附属用房).
    Ancillary,
    /// Any other use (其他).
    Other,
}

/// Coordinate reference of a GPS position (坐标系) (`huitong.common.GeodeticDatum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GeodeticDatum {
    /// WGS-84 as broadcast by GNSS (WGS-84 坐标).
    Wgs84,
    /// The offset Chinese map datum (GCJ-02 国测局坐标).
    Gcj02,
    /// Baidu's further offset datum (BD-09 百度坐标).
    Bd09,
}

/// Length of a statistical reporting period (统计周期) (`huitong.common.PeriodType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeriodType {
    /// Calendar month (月度), written `2025-03`.
    Month,
    /// Calendar quarter (季度), written `2025-Q1`.
    Quarter,
    /// Calendar year (年度), written `2025`.
    Year,
}

/// Item of a government body's operating cost (机关运行成本项目) (`huitong.common.CostItem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CostItem {
    /// Personnel expenditure (人员经费).
    Personnel,
    /// Office and printing (办公及印刷费).
    OfficeAndPrinting,
    /// Postal and telecommunication (邮电费).
    PostalAndTelecom,
    /// Domestic business travel (差旅费).
    Travel,
    /// Meetings (会议费).
    Meetings,
    /// Training (培训费).
    Training,
    /// Staff welfare (福利费).
    Welfare,
    /// Routine maintenance (日常维修费).
    RoutineMaintenance,
    /// Special materials and general equipment purchases (专用材料及一般设备购置费).
    MaterialsAndEquipment,
    /// Water and electricity of office buildings (办公用房水电费).
    Utilities,
    /// Heating of office buildings (办公用房取暖费).
    Heating,
    /// Property management of office buildings (办公用房物业管理费).
    PropertyManagement,
    /// Rent (租赁费).
    Rent,
    /// Running and maintenance of official vehicles (公务用车运行维护费).
    VehicleOperation,
    /// Purchase of official vehicles (公务用车购置费).
    VehiclePurchase,
    /// Official hospitality (公务接待费).
    OfficialReception,
    /// Official travel abroad (因公出国(境)费).
    OutboundTravel,
    /// Any other item (其他费用).
    Other,
}

/// Rule that chose a field's national value among conflicting reports (取值规则)
/// (`huitong.common.SurvivorshipRule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SurvivorshipRule {
    /// The report most recently changed at its source (最新源记录时间).
    LatestSourceTimestamp,
    /// The report from the lowest reporting level (就近层级优先).
    ClosestToSource,
    /// The report from the highest reporting level (上级审核优先).
    HighestReportingLevel,
    /// The value most reports agree on (多数一致).
    Majority,
    /// The only or first non-empty value in level order (首个非空值).
    FirstNonNull,
    /// An operator's decision (人工裁定).
    ManualOverride,
    /// Any other rule (其他).
    Other,
    /// The report of the owning level — the lowest level that reported the value — and among
    /// reports of that level the one most recently changed at its source (属地层级优先).
    OwningLevel,
}

/// One report's value of a field that reports disagree on (冲突取值)
/// (`huitong.common.ConflictValue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConflictValue {
    /// The normalised value as canonical text (规范化取值); `None` if the report left it empty.
    #[serde(default)]
    pub value: Option<String>,
    /// The report that carried this value (取值来源).
    pub provenance: Provenance,
}

/// A field on which merged reports disagree (数据冲突) (`huitong.common.Conflict`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conflict {
    /// Path of the field in the national record (字段路径), e.g. `lines.0.amount`.
    pub field: String,
    /// Every distinct value with the report that carried it (各来源取值).
    pub values: Vec<ConflictValue>,
    /// The value published (采用值), as canonical text.
    #[serde(default)]
    pub chosen_value: Option<String>,
    /// The rule that chose it (取值规则).
    pub rule: SurvivorshipRule,
}

/// Data domain of the exchange (数据领域) (`huitong.common.DataDomain`); the wire form of
/// [`Domain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataDomain {
    /// Public-institution directory (公共机构名录库).
    Institution,
    /// Official-vehicle ledger (公务用车).
    Vehicle,
    /// Vehicle GPS track points (车辆轨迹).
    VehiclePosition,
    /// Vehicle quota and actual count (公务用车编制).
    VehicleQuota,
    /// Office space (办公用房).
    OfficeBuilding,
    /// Energy and water consumption statistics (公共机构能源资源消费统计).
    EnergyReport,
    /// State-asset cards (行政事业性国有资产).
    AssetCard,
    /// Operating cost of government bodies (机关运行成本).
    OperatingCost,
}

impl From<Domain> for DataDomain {
    fn from(domain: Domain) -> Self {
        match domain {
            Domain::Institution => DataDomain::Institution,
            Domain::Vehicle => DataDomain::Vehicle,
            Domain::VehiclePosition => DataDomain::VehiclePosition,
            Domain::VehicleQuota => DataDomain::VehicleQuota,
            Domain::OfficeBuilding => DataDomain::OfficeBuilding,
            Domain::EnergyReport => DataDomain::EnergyReport,
            Domain::AssetCard => DataDomain::AssetCard,
            Domain::OperatingCost => DataDomain::OperatingCost,
        }
    }
}

impl From<DataDomain> for Domain {
    fn from(domain: DataDomain) -> Self {
        match domain {
            DataDomain::Institution => Domain::Institution,
            DataDomain::Vehicle => Domain::Vehicle,
            DataDomain::VehiclePosition => Domain::VehiclePosition,
            DataDomain::VehicleQuota => Domain::VehicleQuota,
            DataDomain::OfficeBuilding => Domain::OfficeBuilding,
            DataDomain::EnergyReport => Domain::EnergyReport,
            DataDomain::AssetCard => Domain::AssetCard,
            DataDomain::OperatingCost => Domain::OperatingCost,
        }
    }
}
