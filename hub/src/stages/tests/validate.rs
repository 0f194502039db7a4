//! The validate stage: one table of (case, a change to a valid record, the codes it must
//! find). Codes are compared as a sorted list, errors and warnings alike (each code has one
//! severity, checked by `rule_table_matches_the_rules`).

use super::*;
use crate::stages::validate;

fn codes<R: Stage>(raw: R) -> Vec<&'static str> {
    let mut codes = validate(&raw, rules()).codes();
    codes.sort_unstable();
    codes
}

#[test]
fn validate_table() {
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<&str>, &[&str])> = vec![
        // ---- valid records of every domain ----
        ("institution: valid", with(institution, |_| {}, codes), &[]),
        ("vehicle: valid", with(vehicle, |_| {}, codes), &[]),
        ("position: valid", with(position, |_| {}, codes), &[]),
        ("quota: valid", with(quota, |_| {}, codes), &[]),
        ("building: valid", with(building, |_| {}, codes), &[]),
        ("energy: valid", with(energy, |_| {}, codes), &[]),
        ("asset: valid", with(asset, |_| {}, codes), &[]),
        ("cost: valid", with(cost, |_| {}, codes), &[]),
        // ---- USCC (GB 32100) and organisation code (GB 11714) ----
        ("USCC: DOMAIN.md's verified example", with(institution, |r| { r.uscc = "91350100M000100Y43".into(); r.region_code = s("350100"); }, codes), &[]),
        ("USCC: check character", with(institution, |r| r.uscc = "115301140151174048".into(), codes), &["uscc_check_character"]),
        ("USCC: 17 characters", with(institution, |r| r.uscc = "11530114015117404".into(), codes), &["uscc_malformed"]),
        ("USCC: O is not read as 0", with(institution, |r| r.uscc = "1153011401511740O9".into(), codes), &["uscc_malformed"]),
        ("USCC: I is outside the alphabet", with(vehicle, |r| r.owner_uscc = "11530114015117404I".into(), codes), &["uscc_malformed"]),
        ("USCC: full width, lower case and dashes are fine", with(institution, |r| r.uscc = "１１５３０１１４-０１５１１７４０４９".into(), codes), &[]),
        ("USCC: spaces are fine", with(energy, |r| r.uscc = " 11530114 01511740 49 ".into(), codes), &[]),
        ("USCC: embedded organisation code fails GB 11714", with(institution, |r| { r.uscc = "11530114015117405C".into(); }, codes), &["uscc_org_code_check"]),
        ("USCC: registered under a withdrawn code is fine", with(cost, |r| r.uscc = "11530121015117404D".into(), codes), &[]),
        ("USCC: region part unknown", with(asset, |r| r.owner_uscc = "11999999015117404R".into(), codes), &["uscc_region_unknown"]),
        ("USCC: central bodies carry 100000", with(quota, |r| r.owner_uscc = "111000000000123437".into(), codes), &[]),
        ("USCC: invalid supervising body is left out", with(institution, |r| r.parent_uscc = s("125301140151175944"), codes), &["reference_uscc_invalid"]),
        // ---- division codes (GB/T 2260) ----
        ("region: 530121 呈贡县 → 530114", with(institution, |r| r.region_code = s("530121"), codes), &["region_code_superseded"]),
        ("region: 500234 开县 → 500154", with(building, |r| { r.region_code = s("500234"); r.owner_uscc = "11500154015117404T".into(); }, codes), &["region_code_superseded"]),
        ("region: 533103 芒市 kept its code", with(institution, |r| { r.region_code = s("533103"); r.uscc = "11533103015117404G".into(); }, codes), &[]),
        ("region: unknown", with(institution, |r| r.region_code = s("530199"), codes), &["region_code_unknown"]),
        ("region: five digits", with(building, |r| r.region_code = s("53011"), codes), &["region_code_malformed"]),
        ("region: missing, taken from the USCC", with(institution, |r| r.region_code = None, codes), &["region_from_uscc"]),
        ("region: missing, USCC region unknown", with(institution, |r| { r.region_code = None; r.uscc = "11999999015117404R".into(); }, codes), &["region_missing", "uscc_region_unknown"]),
        // Every domain reports its division code: withdrawn → in force with a warning, unknown
        // → quarantine, one contradicting the USCC's region → a warning (the code wins).
        ("region: vehicle 530121 → 530114", with(vehicle, |r| r.region_code = s("530121"), codes), &["region_code_superseded"]),
        ("region: position 530121 → 530114", with(position, |r| r.region_code = s("530121"), codes), &["region_code_superseded"]),
        ("region: quota 530121 → 530114", with(quota, |r| r.region_code = s("530121"), codes), &["region_code_superseded"]),
        ("region: energy 530121 → 530114", with(energy, |r| r.region_code = s("530121"), codes), &["region_code_superseded"]),
        ("region: asset 530121 → 530114", with(asset, |r| r.region_code = s("530121"), codes), &["region_code_superseded"]),
        ("region: cost 530121 → 530114", with(cost, |r| r.region_code = s("530121"), codes), &["region_code_superseded"]),
        ("region: withdrawn code and a USCC of 呈贡县 agree", with(vehicle, |r| { r.region_code = s("530121"); r.owner_uscc = "11530121015117404D".into(); }, codes), &["region_code_superseded"]),
        ("region: vehicle, unknown code", with(vehicle, |r| r.region_code = s("530199"), codes), &["region_code_unknown"]),
        ("region: position, unknown code", with(position, |r| r.region_code = s("999999"), codes), &["region_code_unknown"]),
        ("region: quota, unknown code", with(quota, |r| r.region_code = s("530199"), codes), &["region_code_unknown"]),
        ("region: energy, unknown code", with(energy, |r| r.region_code = s("530199"), codes), &["region_code_unknown"]),
        ("region: asset, unknown code", with(asset, |r| r.region_code = s("530199"), codes), &["region_code_unknown"]),
        ("region: cost, unknown code", with(cost, |r| r.region_code = s("530199"), codes), &["region_code_unknown"]),
        ("region: energy, code of five digits", with(energy, |r| r.region_code = s("53011"), codes), &["region_code_malformed"]),
        ("region: blank code is no code", with(vehicle, |r| r.region_code = s(" "), codes), &[]),
        ("region: position without a code", with(position, |r| r.region_code = None, codes), &[]),
        ("region: vehicle in 五华区, owner registered in 呈贡区", with(vehicle, |r| r.region_code = s("530102"), codes), &["region_uscc_mismatch"]),
        ("region: institution in 五华区, registered in 呈贡区", with(institution, |r| r.region_code = s("530102"), codes), &["region_uscc_mismatch"]),
        ("region: building in 呈贡区, owner registered in 五华区", with(building, |r| r.owner_uscc = USCC_WUHUA.into(), codes), &["region_uscc_mismatch"]),
        ("region: energy of 开州区 with a USCC of 呈贡区", with(energy, |r| r.region_code = s("500234"), codes), &["region_code_superseded", "region_uscc_mismatch"]),
        ("region: cost, registered by the city, seated in the county", with(cost, |r| r.uscc = USCC_KUNMING.into(), codes), &[]),
        ("region: quota reported for the whole city", with(quota, |r| r.region_code = s("530100"), codes), &[]),
        ("region: asset of a central body", with(asset, |r| r.owner_uscc = "111000000000123437".into(), codes), &[]),
        ("institution: no name", with(institution, |r| r.name = "　".into(), codes), &["name_missing"]),
        // ---- VIN (GB 16735) and plates (GA 36) ----
        ("VIN: check digit", with(vehicle, |r| r.vin = s("LSVAM4180C2184847"), codes), &["vin_check_digit"]),
        ("VIN: 16 characters", with(vehicle, |r| r.vin = s("LSVAM4187C218484"), codes), &["vin_malformed"]),
        ("VIN: Q is not allowed", with(vehicle, |r| r.vin = s("LSVAQ4187C2184847"), codes), &["vin_malformed"]),
        ("VIN: lower case is fine", with(vehicle, |r| r.vin = s("lsvam4187c2184847"), codes), &[]),
        ("VIN: bad on a GPS point too", with(position, |r| r.vin = s("LSVAM4180C2184847"), codes), &["vin_check_digit"]),
        ("plate: middle dot", with(vehicle, |r| r.plate = s("云A·12345"), codes), &[]),
        ("plate: full width", with(vehicle, |r| r.plate = s("云Ａ１２３４５"), codes), &[]),
        ("plate: small new-energy", with(vehicle, |r| r.plate = s("蒙KD12345"), codes), &[]),
        ("plate: large new-energy", with(vehicle, |r| r.plate = s("渝A12345D"), codes), &[]),
        ("plate: O in the serial corrected", with(vehicle, |r| r.plate = s("蒙K·1234O"), codes), &["plate_corrected"]),
        ("plate: malformed, VIN identifies", with(vehicle, |r| r.plate = s("云A1234"), codes), &["plate_malformed"]),
        ("plate: malformed and no VIN", with(vehicle, |r| { r.plate = s("XA12345"); r.vin = None; }, codes), &["plate_malformed", "vehicle_unidentified"]),
        ("plate: only a plate is fine", with(vehicle, |r| r.vin = None, codes), &[]),
        ("vehicle: neither VIN nor plate", with(vehicle, |r| { r.vin = s(" "); r.plate = None; }, codes), &["vehicle_unidentified"]),
        ("position: only a terminal id is fine", with(position, |r| { r.vin = None; r.plate = None; }, codes), &[]),
        ("position: nothing identifies it", with(position, |r| { r.vin = None; r.plate = None; r.terminal_id = None; }, codes), &["vehicle_unidentified"]),
        // ---- dates, periods, times ----
        ("date: month only", with(asset, |r| r.acquisition_date = s("2023年6月"), codes), &["date_month_only"]),
        ("date: after the report was received", with(vehicle, |r| r.purchase_date = s("2025-04-02"), codes), &["date_implausible"]),
        ("date: before 1900", with(asset, |r| r.acquisition_date = s("1899-12-31"), codes), &["date_implausible"]),
        ("date: no such day", with(vehicle, |r| r.registration_date = s("2023-02-30"), codes), &["value_unreadable"]),
        ("date: words", with(asset, |r| r.accounting_date = s("去年"), codes), &["value_unreadable"]),
        ("period: 2025年第一季度", with(energy, |r| r.period = "2025年第一季度".into(), codes), &[]),
        ("period: unreadable", with(energy, |r| r.period = "2025-13".into(), codes), &["period_malformed"]),
        ("period: in the future", with(energy, |r| r.period = "2025-04".into(), codes), &["period_implausible"]),
        ("period: before 2000", with(energy, |r| r.period = "1999".into(), codes), &["period_implausible"]),
        ("year: next year's quota is fine", with(quota, |r| r.year = "2026年".into(), codes), &[]),
        ("year: a cost report for next year", with(cost, |r| r.year = "2026年度".into(), codes), &["period_implausible"]),
        ("year: unreadable", with(cost, |r| r.year = "二〇二四".into(), codes), &["period_malformed"]),
        ("fix time: unreadable", with(position, |r| r.fix_time = "09:15".into(), codes), &["fix_time_malformed"]),
        ("fix time: an hour after it was received", with(position, |r| r.fix_time = "2025-03-28 11:00:00".into(), codes), &["fix_time_implausible"]),
        ("fix time: epoch seconds in 1970", with(position, |r| r.fix_time = "0000000001".into(), codes), &["fix_time_implausible"]),
        ("completion year: in the future", with(building, |r| r.completion_year = s("2031"), codes), &["date_implausible"]),
        // ---- coordinates and readings ----
        ("coordinates: latitude 95", with(position, |r| r.latitude = 95.0, codes), &["coordinates_invalid"]),
        ("coordinates: (0, 0) before the first fix", with(position, |r| { r.latitude = 0.0; r.longitude = 0.0; }, codes), &["coordinates_invalid"]),
        ("coordinates: NaN", with(position, |r| r.longitude = f64::NAN, codes), &["coordinates_invalid"]),
        ("coordinates: Paris", with(position, |r| { r.latitude = 48.85; r.longitude = 2.35; }, codes), &["coordinates_outside_china"]),
        ("reading: speed −1 for unknown", with(position, |r| r.speed_kmh = Some(-1.0), codes), &["value_out_of_range"]),
        ("reading: heading 400°", with(position, |r| r.heading_deg = Some(400.0), codes), &["value_out_of_range"]),
        // ---- amounts and units ----
        ("amount: negative energy", with(energy, |r| r.lines[0].amount = q("-10", "千瓦时"), codes), &["amount_negative"]),
        ("amount: negative optional water", with(energy, |r| r.water = Some(q("-1", "吨")), codes), &["amount_negative"]),
        ("amount: negative count", with(institution, |r| r.actual_staff = s("-3"), codes), &["amount_negative"]),
        ("amount: energy line not a number", with(energy, |r| r.lines[1].amount = q("约五百", "立方米"), codes), &["amount_malformed"]),
        ("amount: energy line in an unknown unit", with(energy, |r| r.lines[0].amount = q("10000", "焦耳"), codes), &["unit_unknown"]),
        ("amount: electricity in m³", with(energy, |r| r.lines[0].amount = q("10000", "立方米"), codes), &["unit_unknown"]),
        ("amount: cost item in a furlong", with(cost, |r| r.items[0].amount = q("3200000", "furlong"), codes), &["unit_unknown"]),
        ("amount: optional price unreadable", with(vehicle, |r| r.purchase_price = Some(q("面议", "元")), codes), &["value_unreadable"]),
        ("amount: optional area in an unknown unit", with(building, |r| r.land_area = Some(q("3", "英亩")), codes), &["value_unreadable"]),
        ("amount: 1.8L with the unit in the value", with(vehicle, |r| r.displacement = Some(q("1.8L", "")), codes), &[]),
        ("amount: no unit at all", with(vehicle, |r| r.displacement = Some(q("1.8", "")), codes), &["value_unreadable"]),
        ("count: 12人", with(institution, |r| r.actual_staff = s("12人"), codes), &[]),
        ("count: 12.5", with(institution, |r| r.actual_staff = s("12.5"), codes), &["value_unreadable"]),
        ("count: room count 24间", with(building, |r| r.room_count = s("24间"), codes), &[]),
        ("count: room count unreadable", with(building, |r| r.room_count = s("二十四"), codes), &["value_unreadable"]),
        ("count: room count negative", with(building, |r| r.room_count = s("-1"), codes), &["amount_negative"]),
        // ---- labels ----
        ("label: unknown energy carrier", with(energy, |r| r.lines[1].carrier = "沼气".into(), codes), &["carrier_unknown"]),
        ("label: unknown quota category", with(quota, |r| r.usage_category = "公务用车".into(), codes), &["usage_category_unknown"]),
        ("label: unknown vehicle category is left out", with(vehicle, |r| r.usage_category = s("领导用车"), codes), &["enum_unmapped"]),
        ("label: unknown cost item becomes OTHER", with(cost, |r| r.items[1].item = "其他商品和服务支出".into(), codes), &["enum_unmapped"]),
        ("label: unknown vehicle status kept as sent", with(vehicle, |r| r.status = s("停驶维修"), codes), &["status_unmapped"]),
        ("label: unknown asset status kept as sent", with(asset, |r| r.status = s("调剂中"), codes), &["status_unmapped"]),
        ("label: unknown institution status kept as sent", with(institution, |r| r.status = s("筹建中"), codes), &["status_unmapped"]),
        ("label: 停用 is a vehicle status", with(vehicle, |r| r.status = s("停用"), codes), &[]),
        ("label: symbol itself", with(vehicle, |r| r.energy_type = s("phev"), codes), &[]),
        // ---- identity of buildings and assets ----
        ("building: malformed unit number, address identifies", with(building, |r| r.property_unit_number = s("530114-003"), codes), &["property_unit_number_malformed"]),
        ("building: neither unit number nor address", with(building, |r| { r.property_unit_number = None; r.address = s(" "); }, codes), &["building_unidentified"]),
        ("asset: no asset code", with(asset, |r| r.asset_code = " ".into(), codes), &["asset_code_missing"]),
        ("asset: edition inferred from 7 digits", with(asset, |r| r.category_edition = None, codes), &["category_edition_inferred"]),
        ("asset: declared 2022, code is 2010", with(asset, |r| r.category_edition = s("2022"), codes), &["category_edition_mismatch"]),
        // ---- cross-field checks (DOMAIN.md §5) ----
        ("energy: total within ±0.5 %", with(energy, |r| r.total_energy = Some(q("1.845", "吨标准煤")), codes), &[]),
        ("energy: total 1 % off", with(energy, |r| r.total_energy = Some(q("1854.5", "kgce")), codes), &["energy_total_mismatch"]),
        ("energy: total recomputed with gas at 1.33", with(energy, |r| { r.lines[0].amount = q("0", "千瓦时"); r.total_energy = Some(q("665", "kgce")); }, codes), &["energy_total_mismatch"]),
        ("energy: total not reported", with(energy, |r| r.total_energy = None, codes), &["total_not_reported"]),
        ("asset: net = original − depreciation in 万元", with(asset, |r| { r.original_value = Some(q("16.8", "万元")); r.accumulated_depreciation = Some(q("4.48", "万元")); r.net_value = Some(q("12.32", "万元")); }, codes), &[]),
        ("asset: net off by 100 元", with(asset, |r| r.net_value = Some(q("123100", "元")), codes), &["asset_net_mismatch"]),
        ("asset: depreciation above original", with(asset, |r| { r.accumulated_depreciation = Some(q("170000", "元")); r.net_value = None; }, codes), &["asset_net_negative"]),
        ("cost: total off by 10 元", with(cost, |r| r.total = Some(q("3327010.50", "元")), codes), &["cost_total_mismatch"]),
        ("cost: total in 万元 within its precision", with(cost, |r| r.total = Some(q("332.70", "万元")), codes), &[]),
        ("quota: actual above quota", with(quota, |r| r.actual = s("4"), codes), &["actual_exceeds_quota"]),
        ("vehicle: 机要通信 above 120 000 元 and 1.6 L", with(vehicle, |r| { r.usage_category = s("机要通信用车"); r.purchase_price = Some(q("12.5", "万元")); r.displacement = Some(q("1.8", "L")); }, codes), &["vehicle_standard_exceeded", "vehicle_standard_exceeded"]),
        ("vehicle: 机要通信 within the standard", with(vehicle, |r| { r.usage_category = s("机要通信用车"); r.purchase_price = Some(q("11.98", "万元")); r.displacement = Some(q("1598", "ml")); }, codes), &[]),
        ("building: areas by use above the total", with(building, |r| r.total_floor_area = Some(q("6000", "平方米")), codes), &["office_area_exceeds_total"]),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter(|(_, got, expected)| got.as_slice() != *expected)
        .map(|(name, got, expected)| format!("{name}: got {got:?}, expected {expected:?}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 50, "{} cases", cases.len());
}

/// Findings carry the field, a Chinese-first message, and the `CODE: message` warning form.
#[test]
fn findings_read_well() {
    let outcome = with(
        institution,
        |r| {
            r.uscc = "115301140151174048".into();
            r.region_code = s("530121");
        },
        |r| validate(&r, rules()),
    );
    let error = &outcome.errors[0];
    assert_eq!(error.field, "uscc");
    assert_eq!(
        error.message,
        "统一社会信用代码校验位错误 (USCC check character mismatch): \
         115301140151174048，第 18 位校验位为「8」，应为「9」"
    );
    assert_eq!(
        outcome.warnings[0].warning_text(),
        "REGION_CODE_SUPERSEDED: 行政区划代码已停用，按现行代码记录 \
         (division code withdrawn, recorded as its successor): 530121（呈贡县）→ 530114（呈贡区）"
    );
}

/// `process` quarantines on the first error's stage and publishes warnings on the record.
#[test]
fn process_routes_by_severity() {
    use crate::stages::process;
    use schemas::records::QuarantineStage;

    let rejected = with(
        energy,
        |r| r.lines[0].amount = q("10000", "焦耳"),
        |r| process(r, rules()),
    )
    .unwrap_err();
    assert_eq!(rejected.stage, QuarantineStage::Normalise);
    assert_eq!(rejected.error_code(), "unit_unknown");
    assert_eq!(rejected.field(), "lines.0.amount");

    let rejected = with(
        vehicle,
        |r| r.vin = s("LSVAM4180C2184847"),
        |r| process(r, rules()),
    )
    .unwrap_err();
    assert_eq!(rejected.stage, QuarantineStage::Validate);

    let accepted = with(energy, |r| r.total_energy = None, |r| process(r, rules())).unwrap();
    assert_eq!(accepted.warnings.len(), 1);
    assert!(
        accepted.record.warnings[0].starts_with("TOTAL_NOT_REPORTED: "),
        "{:?}",
        accepted.record.warnings
    );
}
