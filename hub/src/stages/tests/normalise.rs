//! The normalise stage: one table of (case, the national value a raw value becomes, the value
//! expected), each case a single change to a valid record; then positions (floating point,
//! compared within a tolerance) and the contract's own energy-report fixtures.

use std::fmt::Debug;

use schemas::records::{NationalEnergyReport, Quantity, Region};

use super::*;
use crate::stages::normalise;

/// The national record of `raw` shown by `show`, or the error's code.
fn norm<R: Stage>(raw: R, show: impl FnOnce(&R::National) -> String) -> String {
    match normalise(raw, rules()) {
        Ok(n) => show(&n),
        Err(f) => format!("error {}", f.code),
    }
}

fn qty(q: Option<&Quantity>) -> String {
    q.map_or("-".into(), |q| {
        format!("{} {:?}", q.value.normalize(), q.unit)
    })
}

fn opt<T: Debug>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| format!("{v:?}"))
}

fn plate(sent: &str) -> String {
    with(
        vehicle,
        |r| r.plate = s(sent),
        |r| {
            norm(r, |n| {
                format!(
                    "{} {}",
                    n.plate.as_deref().unwrap_or("-"),
                    n.plate_corrected
                )
            })
        },
    )
}

fn line(carrier: &str, value: &str, unit: &str) -> String {
    let change = |r: &mut RawEnergyReport| {
        r.lines = vec![energy_line(carrier, value, unit)];
        r.total_energy = None;
    };
    with(energy, change, |r| {
        norm(r, |n| {
            let l = &n.lines[0];
            format!(
                "{:?} {} = {} kgce ({})",
                l.carrier,
                qty(Some(&l.amount)),
                l.standard_coal.value.normalize(),
                l.coefficient_source
            )
        })
    })
}

fn vehicle_status(sent: Option<&str>) -> String {
    let change = |r: &mut RawVehicle| r.status = sent.map(str::to_owned);
    with(vehicle, change, |r| {
        norm(r, |n| {
            format!("{} {}", opt(n.status), opt(n.reported_status.as_ref()))
        })
    })
}

fn asset_status(sent: Option<&str>) -> String {
    let change = |r: &mut RawAssetCard| r.status = sent.map(str::to_owned);
    with(asset, change, |r| {
        norm(r, |n| {
            format!("{} {}", opt(n.status), opt(n.reported_status.as_ref()))
        })
    })
}

fn water(value: &str, unit: &str) -> String {
    with(
        energy,
        |r| r.water = Some(q(value, unit)),
        |r| norm(r, |n| qty(n.water.as_ref())),
    )
}

fn floor_area(value: &str, unit: &str) -> String {
    let change = |r: &mut RawOfficeBuilding| r.land_area = Some(q(value, unit));
    with(building, change, |r| norm(r, |n| qty(n.land_area.as_ref())))
}

fn total_energy(value: &str, unit: &str) -> String {
    let change = |r: &mut RawEnergyReport| r.total_energy = Some(q(value, unit));
    with(energy, change, |r| {
        norm(r, |n| qty(n.total_energy_reported.as_ref()))
    })
}

fn price(value: &str, unit: &str) -> String {
    let change = |r: &mut RawVehicle| r.purchase_price = Some(q(value, unit));
    with(vehicle, change, |r| {
        norm(r, |n| opt(n.purchase_price.as_ref().map(|p| p.value)))
    })
}

fn displacement(value: &str, unit: &str) -> String {
    let change = |r: &mut RawVehicle| r.displacement = Some(q(value, unit));
    with(vehicle, change, |r| {
        norm(r, |n| qty(n.displacement.as_ref()))
    })
}

fn purchase_date(sent: &str) -> String {
    let change = |r: &mut RawVehicle| r.purchase_date = s(sent);
    with(vehicle, change, |r| {
        norm(r, |n| opt(n.purchase_date.map(|d| d.to_string())))
    })
}

fn period(sent: &str) -> String {
    with(
        energy,
        |r| r.period = sent.into(),
        |r| {
            norm(r, |n| {
                format!(
                    "{} {:?} {}..{}",
                    n.period, n.period_type, n.period_start, n.period_end
                )
            })
        },
    )
}

fn fix_time(sent: &str) -> String {
    with(
        position,
        |r| r.fix_time = sent.into(),
        |r| {
            norm(r, |n| {
                schemas::logical::timestamp_millis::truncate(n.fix_time).to_rfc3339()
            })
        },
    )
}

fn name(sent: &str) -> String {
    with(
        institution,
        |r| r.name = sent.into(),
        |r| norm(r, |n| n.name.clone()),
    )
}

fn address(sent: &str) -> String {
    with(
        building,
        |r| r.address = s(sent),
        |r| norm(r, |n| opt(n.normalised_address.as_ref())),
    )
}

fn region(code: Option<&str>) -> String {
    with(
        institution,
        |r| r.region_code = code.map(str::to_owned),
        |r| norm(r, |n| shown(Some(&n.region))),
    )
}

/// A national region as `code level name reported_code`, or `-`.
fn shown(g: Option<&Region>) -> String {
    g.map_or("-".into(), |g| {
        format!(
            "{} {:?} {} {}",
            g.code,
            g.level,
            opt(g.name.as_ref()),
            opt(g.reported_code.as_ref())
        )
    })
}

/// The national region of `base` with division code `code` and, for records of a unit,
/// USCC `uscc` (the base record's when `None`).
fn region_of<R: RegionFields>(base: fn() -> R, code: Option<&str>, uscc: Option<&str>) -> String {
    with(
        base,
        |r| r.set(code, uscc),
        |r| norm(r, |n| shown(R::region(n))),
    )
}

/// The division code and USCC of a raw record, and the region of its national form.
trait RegionFields: Stage {
    fn set(&mut self, code: Option<&str>, uscc: Option<&str>);
    fn region(national: &Self::National) -> Option<&Region>;
}

macro_rules! region_fields {
    ($($raw:ty => $uscc:ident),* $(,)?) => {$(
        impl RegionFields for $raw {
            fn set(&mut self, code: Option<&str>, uscc: Option<&str>) {
                self.region_code = code.map(str::to_owned);
                if let Some(u) = uscc {
                    self.$uscc = u.to_owned();
                }
            }
            fn region(national: &Self::National) -> Option<&Region> {
                national.region.as_ref()
            }
        }
    )*};
}

region_fields! {
    RawVehicle => owner_uscc,
    RawVehicleQuota => owner_uscc,
    RawOfficeBuilding => owner_uscc,
    RawEnergyReport => uscc,
    RawAssetCard => owner_uscc,
    RawOperatingCost => uscc,
}

/// A GPS point names no unit: `uscc` is not used.
impl RegionFields for RawVehiclePosition {
    fn set(&mut self, code: Option<&str>, _: Option<&str>) {
        self.region_code = code.map(str::to_owned);
    }
    fn region(national: &Self::National) -> Option<&Region> {
        national.region.as_ref()
    }
}

fn usage(sent: &str) -> String {
    let change = |r: &mut RawVehicle| r.usage_category = s(sent);
    with(vehicle, change, |r| norm(r, |n| opt(n.usage_category)))
}

fn institution_type(sent: Option<&str>) -> String {
    let change = |r: &mut RawInstitution| r.institution_type = sent.map(str::to_owned);
    with(institution, change, |r| {
        norm(r, |n| format!("{:?}", n.institution_type))
    })
}

/// A building's room count as reported, with the codes of the warnings it left.
fn room_count(sent: Option<&str>) -> String {
    let change = |r: &mut RawOfficeBuilding| r.room_count = sent.map(str::to_owned);
    with(building, change, |r| {
        norm(r, |n| {
            let codes: Vec<&str> = n
                .warnings
                .iter()
                .filter_map(|w| w.split(':').next())
                .collect();
            format!("{} {codes:?}", opt(n.room_count))
        })
    })
}

fn category_name(sent: Option<&str>) -> String {
    let change = |r: &mut RawAssetCard| r.category_name = sent.map(str::to_owned);
    with(asset, change, |r| {
        norm(r, |n| opt(n.category_name.as_ref()))
    })
}

fn cost_item(sent: &str) -> String {
    let change = |r: &mut RawOperatingCost| r.items[1].item = sent.into();
    with(cost, change, |r| {
        norm(r, |n| {
            format!("{:?} {}", n.items[1].item, n.items[1].reported_item)
        })
    })
}

#[test]
fn normalise_table() {
    #[rustfmt::skip]
    let cases: Vec<(&str, String, &str)> = vec![
        // ---- plates (GA 36) ----
        ("plate: canonical", plate("云A12345"), "云A12345 false"),
        ("plate: middle dot", plate("云A·12345"), "云A12345 false"),
        ("plate: bullet", plate("云A•12345"), "云A12345 false"),
        ("plate: full width", plate("云Ａ１２３４５"), "云A12345 false"),
        ("plate: lower case", plate("云a12345"), "云A12345 false"),
        ("plate: spaces incl. U+3000", plate("云A　123 45"), "云A12345 false"),
        ("plate: traditional province", plate("雲A12345"), "云A12345 false"),
        ("plate: O in the serial", plate("蒙K·1234O"), "蒙K12340 true"),
        ("plate: I in the serial", plate("云AI2345"), "云A12345 true"),
        ("plate: small new-energy", plate("蒙KD12345"), "蒙KD12345 false"),
        ("plate: large new-energy", plate("渝A·12345D"), "渝A12345D false"),
        ("plate: driving school", plate("云A1234學"), "云A1234学 false"),
        ("plate: malformed, left out", plate("云A1234"), "- false"),
        // ---- identifiers ----
        ("VIN: lower case and spaces", with(vehicle, |r| r.vin = s(" lsvam4187c2184847 "), |r| norm(r, |n| opt(n.vin.as_ref()))), "\"LSVAM4187C2184847\""),
        ("USCC: full width", with(institution, |r| r.uscc = "１１５３０１１４０１５１１７４０４９".into(), |r| norm(r, |n| n.uscc.clone())), "115301140151174049"),
        ("property unit number: spaces", with(building, |r| r.property_unit_number = s("530114 003002 GB00012 F00010001"), |r| norm(r, |n| opt(n.property_unit_number.as_ref()))), "\"530114003002GB00012F00010001\""),
        ("asset code: full width", with(asset, |r| r.asset_code = "ＺＣ－２０２３－００１７".into(), |r| norm(r, |n| n.asset_code.clone())), "ZC-2023-0017"),
        // ---- text (NFKC, full width → half width) ----
        ("name: full-width digits and parentheses", name("呈贡区第３中学（东校区）"), "呈贡区第3中学(东校区)"),
        ("name: U+3000 and runs of spaces", name("　呈贡区　　机关事务管理局 "), "呈贡区 机关事务管理局"),
        ("name: full-width letters", name("ＡＢＣ科技中心"), "ABC科技中心"),
        ("address: full-width digits", address("昆明市呈贡区建设路３８７号"), "\"昆明市呈贡区建设路387号\""),
        ("address: spaces dropped for matching", address("昆明市 呈贡区 建设路 387 号"), "\"昆明市呈贡区建设路387号\""),
        // ---- energy carriers → canonical unit and kgce (GB/T 2589) ----
        ("electricity: 万千瓦时", line("电力", "77.3", "万千瓦时"), "Electricity 773000 Kwh = 95001.7 kgce (GB/T 2589-2020 附录A 电力（当量值）)"),
        ("electricity: 度", line("电", "100", "度"), "Electricity 100 Kwh = 12.29 kgce (GB/T 2589-2020 附录A 电力（当量值）)"),
        ("electricity: MWh", line("ELECTRICITY", "1.2", "MWh"), "Electricity 1200 Kwh = 147.48 kgce (GB/T 2589-2020 附录A 电力（当量值）)"),
        ("electricity: thousands separator", line("电力", "1,234.5", "kWh"), "Electricity 1234.5 Kwh = 151.72005 kgce (GB/T 2589-2020 附录A 电力（当量值）)"),
        ("natural gas: 万立方米", line("天然气", "1.2", "万立方米"), "NaturalGas 12000 M3 = 14571.6 kgce (GB/T 2589-2020 附录A 天然气)"),
        ("natural gas: m³", line("天然气", "350", "m³"), "NaturalGas 350 M3 = 425.005 kgce (GB/T 2589-2020 附录A 天然气)"),
        ("gasoline: litres × 0.73", line("汽油", "5479.5", "升"), "Gasoline 4000.035 Kg = 5885.651499 kgce (GB/T 2589-2020 附录A 汽油；0.73 kg/L)"),
        ("gasoline: kg", line("汽油", "100", "kg"), "Gasoline 100 Kg = 147.14 kgce (GB/T 2589-2020 附录A 汽油)"),
        ("diesel: litres × 0.86", line("柴油", "100", "L"), "Diesel 86 Kg = 125.3106 kgce (GB/T 2589-2020 附录A 柴油；0.86 kg/L)"),
        ("LPG: 吨", line("液化石油气", "1.25", "吨"), "Lpg 1250 Kg = 2142.875 kgce (GB/T 2589-2020 附录A 液化石油气)"),
        ("coal: 吨", line("原煤", "2", "t"), "Coal 2000 Kg = 1428.6 kgce (GB/T 2589-2020 附录A 原煤)"),
        ("heat: 百万千焦", line("热力", "12.5", "百万千焦"), "Heat 12.5 Gj = 426.5 kgce (GB/T 2589-2020 附录A 热力（0.03412 kgce/MJ）)"),
        ("heat: Gcal × 4.1868", line("热力", "3", "Gcal"), "Heat 12.5604 Gj = 428.560848 kgce (GB/T 2589-2020 附录A 热力（0.03412 kgce/MJ）)"),
        ("heat: MJ", line("热力", "1000", "MJ"), "Heat 1 Gj = 34.12 kgce (GB/T 2589-2020 附录A 热力（0.03412 kgce/MJ）)"),
        ("other: already kgce", line("其他能源", "50", "千克标准煤"), "Other 50 Kgce = 50 kgce (已折标准煤)"),
        // ---- other quantities ----
        ("total energy: 吨标准煤", total_energy("115.46", "吨标准煤"), "115460 Kgce"),
        ("total energy: tce", total_energy("1.836", "tce"), "1836 Kgce"),
        ("water: 吨 = m³", water("1860", "吨"), "1860 M3"),
        ("water: 万立方米", water("1.32", "万立方米"), "13200 M3"),
        ("area: 亩 × 666.67", floor_area("1.5", "亩"), "1000.005 M2"),
        ("area: 公顷", floor_area("0.2", "公顷"), "2000 M2"),
        ("area: ㎡", floor_area("350", "㎡"), "350 M2"),
        ("displacement: L", displacement("1.498", "L"), "1.498 L"),
        ("displacement: ml", displacement("1498", "ml"), "1.498 L"),
        ("displacement: unit inside the value", displacement("1.8L", ""), "1.8 L"),
        // ---- money → 元, two decimals, half away from zero ----
        ("money: 万元", price("11.68", "万元"), "116800.00"),
        ("money: 元 with separators", price("1,543.15", "元"), "1543.15"),
        ("money: rounded half away from zero", price("1234.565", "元"), "1234.57"),
        ("money: full-width digits", price("１２.５", "万元"), "125000.00"),
        ("money: unit inside the value", price("54.11万元", ""), "541100.00"),
        // ---- dates ----
        ("date: ISO", purchase_date("2021-03-05"), "\"2021-03-05\""),
        ("date: slashes, no zeros", purchase_date("2021/3/5"), "\"2021-03-05\""),
        ("date: dots", purchase_date("2021.03.05"), "\"2021-03-05\""),
        ("date: eight digits", purchase_date("20210305"), "\"2021-03-05\""),
        ("date: Chinese", purchase_date("2021年3月5日"), "\"2021-03-05\""),
        ("date: local date-time", purchase_date("2021-03-05 14:30:00"), "\"2021-03-05\""),
        ("date: UTC instant is the next day in Beijing", purchase_date("2021-03-04T16:30:00Z"), "\"2021-03-05\""),
        ("date: month only → the 1st", purchase_date("2008年12月"), "\"2008-12-01\""),
        ("date: 2021-3 is a month", purchase_date("2021-3"), "\"2021-03-01\""),
        ("date: words, left out", purchase_date("不详"), "-"),
        // ---- periods ----
        ("period: month", period("2025-02"), "2025-02 Month 2025-02-01..2025-02-28"),
        ("period: month without zero", period("2024-2"), "2024-02 Month 2024-02-01..2024-02-29"),
        ("period: Chinese month", period("2024年12月"), "2024-12 Month 2024-12-01..2024-12-31"),
        ("period: six digits", period("202411"), "2024-11 Month 2024-11-01..2024-11-30"),
        ("period: quarter", period("2024-Q2"), "2024-Q2 Quarter 2024-04-01..2024-06-30"),
        ("period: Chinese quarter", period("2024年第四季度"), "2024-Q4 Quarter 2024-10-01..2024-12-31"),
        ("period: year", period("2024年度"), "2024 Year 2024-01-01..2024-12-31"),
        // ---- times: China Standard Time → UTC ----
        ("time: local with space", fix_time("2025-03-01 08:15:30"), "2025-03-01T00:15:30+00:00"),
        ("time: local, slashes", fix_time("2025/3/1 8:15:30"), "2025-03-01T00:15:30+00:00"),
        ("time: local with milliseconds", fix_time("2025-03-01T08:15:30.250"), "2025-03-01T00:15:30.250+00:00"),
        ("time: fourteen digits", fix_time("20250301081530"), "2025-03-01T00:15:30+00:00"),
        ("time: Chinese", fix_time("2025年3月1日8时15分30秒"), "2025-03-01T00:15:30+00:00"),
        ("time: with offset", fix_time("2025-03-01T08:15:30+08:00"), "2025-03-01T00:15:30+00:00"),
        ("time: UTC", fix_time("2025-03-01T00:15:30Z"), "2025-03-01T00:15:30+00:00"),
        ("time: epoch seconds", fix_time("1740788130"), "2025-03-01T00:15:30+00:00"),
        ("time: epoch milliseconds", fix_time("1740788130250"), "2025-03-01T00:15:30.250+00:00"),
        // ---- divisions ----
        ("region: in force", region(Some("530114")), "530114 County \"呈贡区\" -"),
        ("region: 530121 → 530114", region(Some("530121")), "530114 County \"呈贡区\" \"530121\""),
        ("region: 530522 → 530581", region(Some("530522")), "530581 County \"腾冲市\" \"530522\""),
        ("region: 532331 → 532302", region(Some("532331")), "532302 County \"禄丰市\" \"532331\""),
        ("region: prefecture", region(Some("532900")), "532900 Prefecture \"大理白族自治州\" -"),
        ("region: from the USCC", region(None), "530114 County \"呈贡区\" -"),
        ("region: vehicle owner's, from a USCC of 呈贡县", region_of(vehicle, None, Some("11530121015117404D")), "530114 County \"呈贡区\" -"),
        ("region: vehicle, as reported", region_of(vehicle, Some("530114"), None), "530114 County \"呈贡区\" -"),
        ("region: vehicle 530121 → 530114", region_of(vehicle, Some("530121"), None), "530114 County \"呈贡区\" \"530121\""),
        ("region: vehicle, the reported code beats the owner's USCC", region_of(vehicle, Some("530102"), None), "530102 County \"五华区\" -"),
        ("region: vehicle, the county within the city that registered the owner", region_of(vehicle, Some("530114"), Some(USCC_KUNMING)), "530114 County \"呈贡区\" -"),
        ("region: vehicle without a code, from a city USCC", region_of(vehicle, None, Some(USCC_KUNMING)), "530100 Prefecture \"昆明市\" -"),
        ("region: position, reported code alone", region_of(position, Some("530121"), None), "530114 County \"呈贡区\" \"530121\""),
        ("region: position without a code", region_of(position, None, None), "-"),
        ("region: quota 500234 → 500154", region_of(quota, Some("500234"), None), "500154 County \"开州区\" \"500234\""),
        ("region: quota without a code, from the USCC", region_of(quota, None, None), "530114 County \"呈贡区\" -"),
        ("region: building without a code stays without", region_of(building, None, None), "-"),
        ("region: building, owner registered elsewhere", region_of(building, Some("530114"), Some(USCC_WUHUA)), "530114 County \"呈贡区\" -"),
        ("region: energy 530122 → 530115", region_of(energy, Some("530122"), Some(USCC_KUNMING)), "530115 County \"晋宁区\" \"530122\""),
        ("region: energy without a code, from the USCC", region_of(energy, None, None), "530114 County \"呈贡区\" -"),
        ("region: asset 530121 → 530114", region_of(asset, Some("530121"), None), "530114 County \"呈贡区\" \"530121\""),
        ("region: asset, unknown code", region_of(asset, Some("530199"), None), "error region_code_unknown"),
        ("region: cost 532331 → 532302", region_of(cost, Some("532331"), None), "532302 County \"禄丰市\" \"532331\""),
        ("region: cost without a code, from a USCC of 呈贡县", region_of(cost, None, Some("11530121015117404D")), "530114 County \"呈贡区\" -"),
        // ---- enumerations ----
        ("label: 机要通信用车", usage("机要通信用车"), "ConfidentialCommunication"),
        ("label: 执法执勤", usage("执法执勤"), "LawEnforcement"),
        ("label: spaces and symbol", usage(" other_authorised "), "OtherAuthorised"),
        ("label: unknown, left out", usage("领导用车"), "-"),
        ("label: institution type, full-width parentheses", institution_type(Some("国家机关（省级及以上）")), "StateOrganProvincialAndAbove"),
        ("label: institution type, dash", institution_type(Some("事业单位-中小学")), "PrimarySecondaryEducation"),
        ("label: institution type missing", institution_type(None), "Other"),
        ("label: energy type", with(vehicle, |r| r.energy_type = s("插电式混合动力"), |r| norm(r, |n| opt(n.energy_type))), "Phev"),
        ("label: cost item", cost_item("差旅费"), "Travel 差旅费"),
        ("label: cost item unknown → OTHER", cost_item("其他商品和服务支出"), "Other 其他商品和服务支出"),
        ("label: rank 正处", with(building, |_| {}, |r| norm(r, |n| opt(n.rooms[0].occupants[0].rank))), "DivisionPrincipal"),
        ("label: asset status", with(asset, |r| r.status = s("待处置"), |r| norm(r, |n| opt(n.status))), "PendingDisposal"),
        ("label: acquisition", with(asset, |r| r.acquisition_mode = s("调拨"), |r| norm(r, |n| opt(n.acquisition_mode))), "TransferIn"),
        ("label: edition inferred", with(asset, |r| r.category_edition = None, |r| norm(r, |n| opt(n.category_edition))), "GbT14885_2010"),
        // ---- computed values ----
        ("energy: total computed", with(energy, |_| {}, |r| norm(r, |n| qty(Some(&n.total_energy)))), "1836.15 Kgce"),
        ("cost: total computed", with(cost, |_| {}, |r| norm(r, |n| n.total.value.to_string())), "3327000.50"),
        ("building: room number full width", with(building, |_| {}, |r| norm(r, |n| n.rooms[0].room_number.clone())), "301"),
        ("building: room count", room_count(Some("24")), "24 []"),
        ("building: room count with 间, full width", room_count(Some("２４ 间")), "24 []"),
        ("building: room count unreadable, left out with a warning", room_count(Some("约20间")), "- [\"VALUE_UNREADABLE\"]"),
        ("building: room count not sent", room_count(None), "- []"),
        ("building: room count beside an empty room list", with(building, |r| r.rooms.clear(), |r| norm(r, |n| format!("{} {}", n.rooms.len(), opt(n.room_count)))), "0 24"),
        ("asset: category name", category_name(Some("车辆")), "\"车辆\""),
        ("asset: category name folded", category_name(Some("　计算机设备及软件 ")), "\"计算机设备及软件\""),
        ("asset: category name not sent", category_name(None), "-"),
        ("building: areas by use", with(building, |_| {}, |r| norm(r, |n| format!("{:?} {}", n.areas[1].r#use, qty(Some(&n.areas[1].area))))), "ServiceRoom 2100.5 M2"),
        ("institution: status missing → ACTIVE", with(institution, |_| {}, |r| norm(r, |n| format!("{:?}", n.status))), "Active"),
        ("institution: status unknown → OTHER, text kept", with(institution, |r| r.status = s("筹建中"), |r| norm(r, |n| format!("{:?} {}", n.status, opt(n.reported_status.as_ref())))), "Other \"筹建中\""),
        ("institution: status known, no text kept", with(institution, |r| r.status = s("注销"), |r| norm(r, |n| format!("{:?} {}", n.status, opt(n.reported_status.as_ref())))), "Revoked -"),
        ("status: vehicle 停用", vehicle_status(Some("停用")), "Idle -"),
        ("status: vehicle 封存", vehicle_status(Some("封存")), "Idle -"),
        ("status: vehicle 报废", vehicle_status(Some("报废")), "Disposed -"),
        ("status: vehicle 待处置", vehicle_status(Some("待处置")), "PendingDisposal -"),
        ("status: vehicle unknown → OTHER, text kept (folded)", vehicle_status(Some(" 停驶维修（事故） ")), "Other \"停驶维修(事故)\""),
        ("status: vehicle not sent", vehicle_status(None), "- -"),
        ("status: asset 停用", asset_status(Some("停用")), "Idle -"),
        ("status: asset 封存", asset_status(Some("封存")), "Idle -"),
        ("status: asset 报废", asset_status(Some("报废")), "Disposed -"),
        ("status: asset 待处置", asset_status(Some("待处置")), "PendingDisposal -"),
        ("status: asset unknown → OTHER, text kept", asset_status(Some("调剂中")), "Other \"调剂中\""),
        // ---- errors stop normalisation ----
        ("error: bad USCC", with(cost, |r| r.uscc = "115301140151174048".into(), |r| norm(r, |n| n.uscc.clone())), "error uscc_check_character"),
        ("error: unknown carrier", line("沼气", "1", "立方米"), "error carrier_unknown"),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter(|(_, got, expected)| got != expected)
        .map(|(name, got, expected)| format!("{name}: got {got:?}, expected {expected:?}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 50, "{} cases", cases.len());
}

/// The envelope of a normalised record: one contribution, no key yet, revision 0.
#[test]
fn normalised_records_hold_one_report() {
    let n = with(vehicle, |_| {}, |r| normalise(r, rules())).unwrap();
    assert_eq!(n.entity_id, "");
    assert_eq!(n.contributions, vec![provenance()]);
    assert_eq!((n.revision, n.updated_at), (0, received()));
    assert!(n.conflicts.is_empty() && n.warnings.is_empty());
    let p = with(position, |_| {}, |r| normalise(r, rules())).unwrap();
    assert_eq!(
        p.vehicle_entity_id, VIN,
        "a point with a VIN names its vehicle"
    );
    let p = with(position, |r| r.vin = None, |r| normalise(r, rules())).unwrap();
    assert_eq!(p.vehicle_entity_id, "", "left to the key stage");
    let n = with(
        vehicle,
        |r| r.plate = s("蒙K·1234O"),
        |r| normalise(r, rules()),
    )
    .unwrap();
    assert_eq!(n.warnings.len(), 1);
    assert!(
        n.warnings[0].starts_with("PLATE_CORRECTED: "),
        "{:?}",
        n.warnings
    );
}

/// GCJ-02 and BD-09 positions become WGS-84; WGS-84 ones stay as sent.
#[test]
fn datum_table() {
    // (datum, sent lat, sent lon, WGS-84 lat, lon): Tiananmen, whose WGS-84 (39.915, 116.404)
    // is (39.91640428150164, 116.41024449916938) in GCJ-02 (the published reference pair of
    // the GCJ-02 formula), and its BD-09 form; a point in Kunming sent in each datum.
    let (k_lat, k_lon) = (24.889, 102.821);
    let (kg_lon, kg_lat) = coordtransform::wgs84_to_gcj02(k_lon, k_lat);
    let (kb_lon, kb_lat) = coordtransform::gcj02_to_bd09(kg_lon, kg_lat);
    let (tb_lon, tb_lat) = coordtransform::gcj02_to_bd09(116.41024449916938, 39.91640428150164);
    for (datum, lat, lon, w_lat, w_lon) in [
        (GeodeticDatum::Wgs84, 39.915, 116.404, 39.915, 116.404),
        (
            GeodeticDatum::Gcj02,
            39.91640428150164,
            116.41024449916938,
            39.915,
            116.404,
        ),
        (GeodeticDatum::Bd09, tb_lat, tb_lon, 39.915, 116.404),
        (GeodeticDatum::Gcj02, kg_lat, kg_lon, k_lat, k_lon),
        (GeodeticDatum::Bd09, kb_lat, kb_lon, k_lat, k_lon),
        // Outside the GCJ-02 rectangle the datum is WGS-84 already.
        (GeodeticDatum::Gcj02, 48.85, 2.35, 48.85, 2.35),
    ] {
        let n = with(
            position,
            |r| {
                r.datum = datum;
                r.latitude = lat;
                r.longitude = lon;
            },
            |r| normalise(r, rules()),
        )
        .unwrap();
        // 1e-7° ≈ 1 cm.
        assert!(
            (n.latitude - w_lat).abs() < 1e-7 && (n.longitude - w_lon).abs() < 1e-7,
            "{datum:?} ({lat}, {lon}) → ({}, {}), expected ({w_lat}, {w_lon})",
            n.latitude,
            n.longitude
        );
        assert_eq!(n.source_datum, datum);
    }
}

/// The contract's energy-report fixtures, rebuilt as the raw report each one's values were
/// sent as (raw value and unit of every amount), normalise to the fixture's national values.
#[test]
fn energy_fixtures_normalise_to_their_national_values() {
    for text in [
        include_str!(
            "../../../../schemas/fixtures/huitong.national.EnergyReport/valid/01-kaizhou-annual-revised.json"
        ),
        include_str!(
            "../../../../schemas/fixtures/huitong.national.EnergyReport/valid/02-chenggong-school-monthly.json"
        ),
    ] {
        let expected: NationalEnergyReport = serde_json::from_str(text).unwrap();
        let raw_of = |q: &Quantity| {
            q.raw_value
                .clone()
                .zip(q.raw_unit.clone())
                .map(|(v, u)| q_(v, u))
        };
        let raw = RawEnergyReport {
            provenance: expected.contributions[0].clone(),
            uscc: expected.uscc.clone(),
            institution_name: expected.institution_name.clone(),
            region_code: expected
                .region
                .as_ref()
                .map(|g| g.reported_code.clone().unwrap_or_else(|| g.code.clone())),
            period: expected.period.clone(),
            lines: expected
                .lines
                .iter()
                .map(|l| RawEnergyLine {
                    carrier: format!("{:?}", l.carrier).to_uppercase(),
                    amount: raw_of(&l.amount).unwrap(),
                    cost: l
                        .cost
                        .as_ref()
                        .map(|c| q_(c.raw_value.clone().unwrap(), c.raw_unit.clone().unwrap())),
                })
                .collect(),
            total_energy: expected.total_energy_reported.as_ref().and_then(raw_of),
            water: expected.water.as_ref().and_then(raw_of),
            energy_users: expected.energy_users.map(|n| n.to_string()),
            staff: expected.staff.map(|n| n.to_string()),
            building_area: expected.building_area.as_ref().and_then(raw_of),
        };
        let got = normalise(raw, rules()).unwrap();
        assert_eq!(got.lines, expected.lines, "{}", expected.entity_id);
        assert_eq!(got.total_energy, expected.total_energy);
        assert_eq!(got.total_energy_reported, expected.total_energy_reported);
        assert_eq!(got.water, expected.water);
        assert_eq!(got.building_area, expected.building_area);
        assert_eq!(
            (
                got.period,
                got.period_type,
                got.period_start,
                got.period_end
            ),
            (
                expected.period,
                expected.period_type,
                expected.period_start,
                expected.period_end
            )
        );
        assert_eq!(got.region, expected.region);
        assert_eq!(
            (got.energy_users, got.staff),
            (expected.energy_users, expected.staff)
        );
    }
}

fn q_(value: String, unit: String) -> RawQuantity {
    RawQuantity { value, unit }
}
