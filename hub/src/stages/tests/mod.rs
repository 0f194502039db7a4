//! Table-driven tests of the validate and normalise stages: one valid raw record per domain,
//! and tables of single changes to it with the findings or national values they must give.

mod normalise;
mod partition;
mod validate;

use chrono::{DateTime, Utc};
use schemas::records::{
    GeodeticDatum, Provenance, RawAssetCard, RawCostLine, RawEnergyLine, RawEnergyReport,
    RawInstitution, RawOfficeArea, RawOfficeBuilding, RawOfficeOccupant, RawOfficeRoom,
    RawOperatingCost, RawQuantity, RawVehicle, RawVehiclePosition, RawVehicleQuota, ReportingLevel,
};

use super::{Rules, Stage};

/// A valid USCC of a 机关 in 呈贡区 (11 530114 01511740 4 9).
const USCC: &str = "115301140151174049";
/// A valid USCC of a 事业单位 in 呈贡区.
const USCC_2: &str = "125301140151175945";
/// A valid USCC of a 机关 registered in 昆明市 (530100), which 呈贡区 lies within.
const USCC_KUNMING: &str = "115301000151174040";
/// A valid USCC of a 机关 registered in 五华区 (530102), a neighbour of 呈贡区.
const USCC_WUHUA: &str = "11530102015117404W";
/// A valid VIN.
const VIN: &str = "LSVAM4187C2184847";

fn received() -> DateTime<Utc> {
    "2025-03-28T02:00:00Z".parse().unwrap()
}

fn provenance() -> Provenance {
    Provenance {
        source_system_id: "530114-county-vehicle".into(),
        reporting_level: ReportingLevel::County,
        reporter_region_code: "530114".into(),
        source_record_id: "530114-VEH-000001".into(),
        source_timestamp: None,
        received_at: received(),
        connector_id: "530114-county-vehicle".into(),
        batch_id: None,
    }
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn q(value: &str, unit: &str) -> RawQuantity {
    RawQuantity {
        value: value.into(),
        unit: unit.into(),
    }
}

pub(crate) fn institution() -> RawInstitution {
    RawInstitution {
        provenance: provenance(),
        uscc: USCC.into(),
        name: "昆明市呈贡区机关事务管理局".into(),
        short_name: None,
        institution_type: s("国家机关(市级及以下)"),
        region_code: s("530114"),
        parent_uscc: s(USCC_2),
        parent_name: s("昆明市呈贡区人民政府办公室"),
        authorised_staff: s("42"),
        actual_staff: s("40"),
        address: s("昆明市呈贡区建设路387号"),
        status: None,
    }
}

pub(crate) fn vehicle() -> RawVehicle {
    RawVehicle {
        provenance: provenance(),
        plate: s("云A12345"),
        vin: s(VIN),
        owner_uscc: USCC.into(),
        owner_name: s("昆明市呈贡区机关事务管理局"),
        region_code: s("530114"),
        usage_category: s("执法执勤用车"),
        energy_type: s("纯电动"),
        brand_model: s("比亚迪 秦PLUS"),
        displacement: None,
        purchase_price: Some(q("168000", "元")),
        purchase_date: s("2023-06-15"),
        registration_date: s("2023-06-28"),
        seats: s("5"),
        status: s("在用"),
        asset_code: s("ZC-2023-0017"),
        terminal_id: s("T530114000017"),
    }
}

pub(crate) fn position() -> RawVehiclePosition {
    RawVehiclePosition {
        provenance: provenance(),
        terminal_id: s("T530114000017"),
        plate: s("云A12345"),
        vin: s(VIN),
        region_code: s("530114"),
        fix_time: "2025-03-28 09:15:30".into(),
        latitude: 24.889,
        longitude: 102.821,
        datum: GeodeticDatum::Wgs84,
        speed_kmh: Some(42.5),
        heading_deg: Some(270.0),
        odometer_km: Some(15234.7),
    }
}

pub(crate) fn quota() -> RawVehicleQuota {
    RawVehicleQuota {
        provenance: provenance(),
        owner_uscc: USCC.into(),
        owner_name: s("昆明市呈贡区机关事务管理局"),
        region_code: s("530114"),
        year: "2025".into(),
        usage_category: "机要通信用车".into(),
        quota: s("3"),
        actual: s("2"),
        approval_document: s("呈编发〔2024〕12号"),
    }
}

pub(crate) fn building() -> RawOfficeBuilding {
    RawOfficeBuilding {
        provenance: provenance(),
        property_unit_number: s("530114003002GB00012F00010001"),
        owner_uscc: USCC.into(),
        owner_name: s("昆明市呈贡区机关事务管理局"),
        building_name: s("呈贡区行政中心1号楼"),
        address: s("昆明市呈贡区建设路387号"),
        region_code: s("530114"),
        completion_year: s("2012"),
        land_area: Some(q("3.2", "亩")),
        total_floor_area: Some(q("12800", "平方米")),
        areas: vec![
            RawOfficeArea {
                r#use: "办公室用房".into(),
                area: q("4200", "平方米"),
            },
            RawOfficeArea {
                r#use: "服务用房".into(),
                area: q("2100.5", "m2"),
            },
        ],
        rooms: vec![RawOfficeRoom {
            room_number: "３０１".into(),
            floor: s("3"),
            r#use: s("办公室"),
            usable_area: Some(q("18", "平方米")),
            occupants: vec![RawOfficeOccupant {
                person_ref: s("P-0001"),
                rank: s("正处"),
                post: s("局长"),
            }],
        }],
        room_count: s("24"),
    }
}

fn energy_line(carrier: &str, value: &str, unit: &str) -> RawEnergyLine {
    RawEnergyLine {
        carrier: carrier.into(),
        amount: q(value, unit),
        cost: None,
    }
}

pub(crate) fn energy() -> RawEnergyReport {
    RawEnergyReport {
        provenance: provenance(),
        uscc: USCC.into(),
        institution_name: s("昆明市呈贡区机关事务管理局"),
        region_code: s("530114"),
        period: "2025-02".into(),
        // 10 000 kWh × 0.1229 + 500 m³ × 1.2143 = 1229 + 607.15 = 1836.15 kgce.
        lines: vec![
            energy_line("电力", "10000", "千瓦时"),
            energy_line("天然气", "500", "立方米"),
        ],
        total_energy: Some(q("1836.15", "千克标准煤")),
        water: Some(q("320", "立方米")),
        energy_users: s("45"),
        staff: s("40"),
        building_area: Some(q("12800", "平方米")),
    }
}

pub(crate) fn asset() -> RawAssetCard {
    RawAssetCard {
        provenance: provenance(),
        owner_uscc: USCC.into(),
        owner_name: s("昆明市呈贡区机关事务管理局"),
        region_code: s("530114"),
        asset_code: "ZC-2023-0017".into(),
        asset_name: s("比亚迪 秦PLUS"),
        category_code: s("2030000"),
        category_name: s("车辆"),
        category_edition: s("GB/T 14885-2010"),
        original_value: Some(q("168000", "元")),
        accumulated_depreciation: Some(q("44800", "元")),
        net_value: Some(q("123200", "元")),
        acquisition_mode: s("购置"),
        acquisition_date: s("2023-06-15"),
        accounting_date: s("2023-06-30"),
        status: s("在用"),
    }
}

fn cost_line(item: &str, value: &str) -> RawCostLine {
    RawCostLine {
        item: item.into(),
        amount: q(value, "元"),
    }
}

pub(crate) fn cost() -> RawOperatingCost {
    RawOperatingCost {
        provenance: provenance(),
        uscc: USCC.into(),
        institution_name: s("昆明市呈贡区机关事务管理局"),
        region_code: s("530114"),
        year: "2024".into(),
        items: vec![
            cost_line("人员经费", "3200000"),
            cost_line("差旅费", "86000.50"),
            cost_line("公务用车运行维护费", "41000"),
        ],
        total: Some(q("3327000.50", "元")),
        staff: s("40"),
        office_area: Some(q("1200", "平方米")),
    }
}

/// `base` changed by `change`, then `stage` applied to it.
fn with<R: Stage, T>(
    base: fn() -> R,
    change: impl FnOnce(&mut R),
    stage: impl FnOnce(R) -> T,
) -> T {
    let mut raw = base();
    change(&mut raw);
    stage(raw)
}

pub(crate) fn rules() -> &'static Rules {
    Rules::embedded()
}
