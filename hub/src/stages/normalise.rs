//! The normalise stage (标准化), domain by domain: a raw record → its national form. Text is
//! NFKC-folded (full width → half width), identifiers take their canonical form, amounts
//! their canonical unit with the reported value and unit kept beside them, local times become
//! UTC, GCJ-02 and BD-09 positions WGS-84, and category labels the national symbols.
//!
//! Each function reads every field through the [`Checker`], which reports what fails; it
//! returns `None` once an error was reported. What comes out is described in the
//! [module docs of `stages`](super).
//!
//! **Where to add a normalisation:** a new unit, coefficient or label is configuration
//! (`hub/config/units.toml`, `labels.toml`); a new way of writing dates, numbers or periods
//! goes in [`super::text`]; a new field is a line in its domain's function below, read with
//! the [`Checker`] reader of its kind.

use rust_decimal::Decimal;
use schemas::ids;
use schemas::logical::DecimalShape;
use schemas::records::{
    AssetCategoryEdition, AssetStatus, CanonicalUnit, CostItem, GeodeticDatum, InstitutionStatus,
    InstitutionType, Money, NationalAssetCard, NationalCostLine, NationalEnergyLine,
    NationalEnergyReport, NationalInstitution, NationalOfficeArea, NationalOfficeBuilding,
    NationalOfficeOccupant, NationalOfficeRoom, NationalOperatingCost, NationalVehicle,
    NationalVehiclePosition, NationalVehicleQuota, OfficeSpaceUse, Quantity, RawAssetCard,
    RawEnergyLine, RawEnergyReport, RawInstitution, RawOfficeBuilding, RawOfficeRoom,
    RawOperatingCost, RawQuantity, RawVehicle, RawVehiclePosition, RawVehicleQuota, Region,
    VehicleStatus,
};

use super::rules::{Canonical, Substance};
use super::text::{compact, fold};
use super::units;
use super::validate::{self as v, Checker, Need};

/// A national record literal with the envelope of a single report filled in: no entity id
/// yet (the key stage's), this report as the only contribution, no conflicts or warnings,
/// revision 0 (resolve's) and `updated_at` = received (the publisher's).
macro_rules! national {
    ($ty:ident, $raw:expr, { $($field:ident $(: $value:expr)?),* $(,)? }) => {
        $ty {
            $($field $(: $value)?,)*
            entity_id: String::new(),
            contributions: vec![$raw.provenance.clone()],
            conflicts: Vec::new(),
            warnings: Vec::new(),
            revision: 0,
            updated_at: $raw.provenance.received_at,
        }
    };
}

fn text(sent: Option<&String>) -> Option<String> {
    sent.and_then(|s| fold(s))
}

fn sent(value: Option<&String>) -> bool {
    value.is_some_and(|s| !s.trim().is_empty())
}

/// An optional floor area in m².
fn area(
    c: &mut Checker<'_>,
    field: &str,
    sent: Option<&RawQuantity>,
    need: Need,
) -> Option<Quantity> {
    c.quantity(field, sent, CanonicalUnit::M2, Substance::Any, need)
        .map(|(q, _)| q)
}

/// The region of a record of a unit (its vehicles, quotas, reports, assets): the division
/// code it reports, checked against the unit's USCC ([`Checker::reported_region`] says why
/// the reported code wins), else the region of the USCC.
fn owned_region(c: &mut Checker<'_>, sent: Option<&str>, uscc: Option<&str>) -> Option<Region> {
    let reported = c.reported_region("region_code", sent, uscc);
    reported.or_else(|| uscc.and_then(|u| c.uscc_region(u)))
}

/// The public-institution directory.
pub fn institution(raw: &RawInstitution, c: &mut Checker<'_>) -> Option<NationalInstitution> {
    let rules = c.rules;
    let labels = &rules.labels;
    let uscc = c.uscc("uscc", &raw.uscc);
    let name = fold(&raw.name);
    if name.is_none() {
        c.report(&v::NAME_MISSING, "name", "");
    }
    let region = match raw.region_code.as_deref().filter(|r| !r.trim().is_empty()) {
        Some(code) => c.reported_region("region_code", Some(code), uscc.as_deref()),
        None => uscc.as_deref().and_then(|u| {
            let region = c.uscc_region(u);
            match &region {
                Some(r) => c.report(&v::REGION_FROM_USCC, "region_code", &r.code),
                None => c.report(&v::REGION_MISSING, "region_code", u),
            }
            region
        }),
    };
    let institution_type = c
        .label(
            "institution_type",
            raw.institution_type.as_deref(),
            &labels.institution_type,
        )
        .unwrap_or(InstitutionType::Other);
    // A directory entry without a status is taken to exist; a status nobody can read is 其他
    // with its text kept.
    let (status, reported_status) = c.status(
        "status",
        raw.status.as_deref(),
        &labels.institution_status,
        InstitutionStatus::Other,
    );
    let status = status.unwrap_or(InstitutionStatus::Active);
    let parent_uscc = c.reference_uscc("parent_uscc", raw.parent_uscc.as_deref());
    let authorised_staff = c.count("authorised_staff", raw.authorised_staff.as_deref());
    let actual_staff = c.count("actual_staff", raw.actual_staff.as_deref());
    if c.has_errors() {
        return None;
    }
    Some(national!(NationalInstitution, raw, {
        uscc: uscc?,
        name: name?,
        short_name: text(raw.short_name.as_ref()),
        institution_type,
        region: region?,
        parent_uscc,
        parent_name: text(raw.parent_name.as_ref()),
        authorised_staff,
        actual_staff,
        address: text(raw.address.as_ref()),
        status,
        reported_status,
    }))
}

/// The official-vehicle ledger.
pub fn vehicle(raw: &RawVehicle, c: &mut Checker<'_>) -> Option<NationalVehicle> {
    let rules = c.rules;
    let labels = &rules.labels;
    let owner_uscc = c.uscc("owner_uscc", &raw.owner_uscc);
    let vin = c.vin("vin", raw.vin.as_deref());
    let plate = c.plate("plate", raw.plate.as_deref());
    if !sent(raw.vin.as_ref()) && plate.is_none() {
        c.report(
            &v::VEHICLE_UNIDENTIFIED,
            "vin",
            "未报送车辆识别代号，号牌缺失或无效",
        );
    }
    let region = owned_region(c, raw.region_code.as_deref(), owner_uscc.as_deref());
    let usage_category = c.label(
        "usage_category",
        raw.usage_category.as_deref(),
        &labels.vehicle_usage_category,
    );
    let energy_type = c.label(
        "energy_type",
        raw.energy_type.as_deref(),
        &labels.vehicle_energy_type,
    );
    let displacement = c.optional_quantity(
        "displacement",
        raw.displacement.as_ref(),
        CanonicalUnit::L,
        Substance::Any,
    );
    let purchase_price = c.money(
        "purchase_price",
        raw.purchase_price.as_ref(),
        Need::Optional,
    );
    let purchase_date = c.date("purchase_date", raw.purchase_date.as_deref());
    let registration_date = c.date("registration_date", raw.registration_date.as_deref());
    let seats = c.count("seats", raw.seats.as_deref());
    let (status, reported_status) = c.status(
        "status",
        raw.status.as_deref(),
        &labels.vehicle_status,
        VehicleStatus::Other,
    );
    if c.has_errors() {
        return None;
    }
    Some(national!(NationalVehicle, raw, {
        vin,
        plate_corrected: plate.as_ref().is_some_and(|p| p.corrected),
        plate: plate.map(|p| p.text),
        owner_uscc: owner_uscc?,
        owner_name: text(raw.owner_name.as_ref()),
        region,
        usage_category,
        energy_type,
        brand_model: text(raw.brand_model.as_ref()),
        displacement,
        purchase_price,
        purchase_date,
        registration_date,
        seats,
        status,
        reported_status,
        asset_code: text(raw.asset_code.as_ref()),
        terminal_id: text(raw.terminal_id.as_ref()),
    }))
}

/// Whether a GCJ-02 position lies in the rectangle the published transform offsets (the
/// classic `out_of_china` test of the GCJ-02 reference code, which the simulator's forward
/// transform uses too); outside it GCJ-02 equals WGS-84.
fn in_gcj02_rectangle(latitude: f64, longitude: f64) -> bool {
    (72.004..=137.8347).contains(&longitude) && (0.8293..=55.8271).contains(&latitude)
}

/// A position in the datum its source declared → WGS-84 `(lat, lon)`. GCJ-02 has no closed
/// inverse; coordtransform refines the inverse numerically to well below a millimetre.
pub fn to_wgs84(latitude: f64, longitude: f64, datum: GeodeticDatum) -> (f64, f64) {
    let (lon, lat) = match datum {
        GeodeticDatum::Wgs84 => return (latitude, longitude),
        GeodeticDatum::Gcj02 => (longitude, latitude),
        GeodeticDatum::Bd09 => coordtransform::bd09_to_gcj02(longitude, latitude),
    };
    if !in_gcj02_rectangle(lat, lon) {
        return (lat, lon);
    }
    let (lon, lat) = coordtransform::gcj02_to_wgs84_in_mainland(lon, lat);
    (lat, lon)
}

/// GPS track points. `vehicle_entity_id` is the VIN when the point carries one; otherwise the
/// key stage finds the vehicle by plate or terminal.
pub fn vehicle_position(
    raw: &RawVehiclePosition,
    c: &mut Checker<'_>,
) -> Option<NationalVehiclePosition> {
    let vin = c.vin("vin", raw.vin.as_deref());
    let plate = c.plate("plate", raw.plate.as_deref());
    if !sent(raw.vin.as_ref()) && plate.is_none() && !sent(raw.terminal_id.as_ref()) {
        c.report(
            &v::VEHICLE_UNIDENTIFIED,
            "vin",
            "定位点无车辆识别代号、有效号牌或终端编号",
        );
    }
    let fix_time = c.fix_time("fix_time", &raw.fix_time);
    let position = c.coordinates(raw.latitude, raw.longitude).map(|()| {
        let (lat, lon) = to_wgs84(raw.latitude, raw.longitude, raw.datum);
        c.within_china(lat, lon);
        (lat, lon)
    });
    let max_speed = c.rules.checks.max_speed_kmh;
    let speed_kmh = c.reading("speed_kmh", raw.speed_kmh, (0.0, max_speed));
    let heading_deg = c.reading("heading_deg", raw.heading_deg, (0.0, 360.0));
    let odometer_km = c.reading("odometer_km", raw.odometer_km, (0.0, f64::MAX));
    // A point names no unit: the platform's division code is its only region.
    let region = c.reported_region("region_code", raw.region_code.as_deref(), None);
    if c.has_errors() {
        return None;
    }
    let (latitude, longitude) = position?;
    Some(NationalVehiclePosition {
        entity_id: String::new(),
        vehicle_entity_id: vin.unwrap_or_default(),
        plate: plate.map(|p| p.text),
        region,
        fix_time: fix_time?,
        latitude,
        longitude,
        source_datum: raw.datum,
        speed_kmh,
        heading_deg,
        odometer_km,
        contributions: vec![raw.provenance.clone()],
        conflicts: Vec::new(),
        warnings: Vec::new(),
    })
}

/// Vehicle quotas.
pub fn vehicle_quota(raw: &RawVehicleQuota, c: &mut Checker<'_>) -> Option<NationalVehicleQuota> {
    let rules = c.rules;
    let labels = &rules.labels;
    let owner_uscc = c.uscc("owner_uscc", &raw.owner_uscc);
    // Quotas are approved ahead: next year's may arrive this year.
    let year = c.year("year", &raw.year, 1);
    let usage_category = c.required_label(
        "usage_category",
        &raw.usage_category,
        &labels.vehicle_usage_category,
        &v::USAGE_CATEGORY_UNKNOWN,
    );
    let quota = c.count("quota", raw.quota.as_deref());
    let actual = c.count("actual", raw.actual.as_deref());
    let region = owned_region(c, raw.region_code.as_deref(), owner_uscc.as_deref());
    if c.has_errors() {
        return None;
    }
    Some(national!(NationalVehicleQuota, raw, {
        owner_uscc: owner_uscc?,
        owner_name: text(raw.owner_name.as_ref()),
        region,
        year: year?,
        usage_category: usage_category?,
        quota,
        actual,
        approval_document: text(raw.approval_document.as_ref()),
    }))
}

fn room(i: usize, r: &RawOfficeRoom, c: &mut Checker<'_>) -> NationalOfficeRoom {
    let rules = c.rules;
    let labels = &rules.labels;
    let field = format!("rooms.{i}");
    NationalOfficeRoom {
        room_number: fold(&r.room_number).unwrap_or_default(),
        floor: text(r.floor.as_ref()),
        r#use: c.label(
            &format!("{field}.use"),
            r.r#use.as_deref(),
            &labels.office_space_use,
        ),
        usable_area: area(
            c,
            &format!("{field}.usable_area"),
            r.usable_area.as_ref(),
            Need::Optional,
        ),
        occupants: r
            .occupants
            .iter()
            .enumerate()
            .map(|(j, o)| NationalOfficeOccupant {
                person_ref: text(o.person_ref.as_ref()),
                rank: c.label(
                    &format!("{field}.occupants.{j}.rank"),
                    o.rank.as_deref(),
                    &labels.official_rank,
                ),
                post: text(o.post.as_ref()),
            })
            .collect(),
    }
}

/// Office buildings with their areas, rooms and occupants.
pub fn office_building(
    raw: &RawOfficeBuilding,
    c: &mut Checker<'_>,
) -> Option<NationalOfficeBuilding> {
    let rules = c.rules;
    let labels = &rules.labels;
    let property_unit_number = raw
        .property_unit_number
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .and_then(|sent| {
            let n = ids::canonical_code(sent);
            if ids::property_unit_number_is_valid(&n) {
                return Some(n);
            }
            let detail = format!(
                "「{sent}」应为 28 位（12 位数字 + 2 位字母 + 5 位数字 + 1 位字母 + 8 位数字）"
            );
            c.report(
                &v::PROPERTY_UNIT_NUMBER_MALFORMED,
                "property_unit_number",
                detail,
            );
            None
        });
    let owner_uscc = c.uscc("owner_uscc", &raw.owner_uscc);
    let normalised_address = raw.address.as_deref().and_then(compact);
    if property_unit_number.is_none() && normalised_address.is_none() {
        c.report(&v::BUILDING_UNIDENTIFIED, "address", "");
    }
    // The site's own division: the owner's USCC is checked against it but never stands in,
    // since a building need not lie where its owner was registered.
    let region = c.reported_region(
        "region_code",
        raw.region_code.as_deref(),
        owner_uscc.as_deref(),
    );
    let completion_year = c.completion_year("completion_year", raw.completion_year.as_deref());
    let land_area = area(c, "land_area", raw.land_area.as_ref(), Need::Optional);
    let total_floor_area = area(
        c,
        "total_floor_area",
        raw.total_floor_area.as_ref(),
        Need::Optional,
    );
    let areas: Vec<Option<NationalOfficeArea>> = raw
        .areas
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let field = format!("areas.{i}");
            let space_use = c
                .label(
                    &format!("{field}.use"),
                    Some(&a.r#use),
                    &labels.office_space_use,
                )
                .unwrap_or(OfficeSpaceUse::Other);
            let amount = area(c, &format!("{field}.area"), Some(&a.area), Need::Required)?;
            Some(NationalOfficeArea {
                r#use: space_use,
                area: amount,
            })
        })
        .collect();
    let rooms = raw
        .rooms
        .iter()
        .enumerate()
        .map(|(i, r)| room(i, r, c))
        .collect();
    // As reported: a source that sends only a count leaves `rooms` empty.
    let room_count = c.count("room_count", raw.room_count.as_deref());
    if c.has_errors() {
        return None;
    }
    Some(national!(NationalOfficeBuilding, raw, {
        property_unit_number,
        owner_uscc: owner_uscc?,
        owner_name: text(raw.owner_name.as_ref()),
        building_name: text(raw.building_name.as_ref()),
        address: text(raw.address.as_ref()),
        normalised_address,
        region,
        completion_year,
        land_area,
        total_floor_area,
        areas: areas.into_iter().collect::<Option<_>>()?,
        rooms,
        room_count,
    }))
}

fn kgce(value: Decimal) -> Quantity {
    Quantity {
        value,
        unit: CanonicalUnit::Kgce,
        raw_value: None,
        raw_unit: None,
    }
}

fn energy_line(i: usize, l: &RawEnergyLine, c: &mut Checker<'_>) -> Option<NationalEnergyLine> {
    let rules = c.rules;
    let field = format!("lines.{i}");
    let carrier = c.required_label(
        &format!("{field}.carrier"),
        &l.carrier,
        &rules.labels.energy_carrier,
        &v::CARRIER_UNKNOWN,
    )?;
    let Some(rule) = rules.carrier(carrier) else {
        c.report(
            &v::UNIT_UNKNOWN,
            &format!("{field}.carrier"),
            format!("{carrier:?} 无折标系数"),
        );
        return None;
    };
    let (amount, converted) = c.quantity(
        &format!("{field}.amount"),
        Some(&l.amount),
        rule.unit,
        Substance::Carrier(carrier),
        Need::Required,
    )?;
    let Ok(standard) = DecimalShape::QUANTITY.round(amount.value * rule.kgce_per_unit) else {
        c.report(
            &v::AMOUNT_MALFORMED,
            &format!("{field}.amount"),
            "折标准煤量超出范围",
        );
        return None;
    };
    // The national record names every factor applied: the coefficient and, for litres of
    // fuel, the density (`GB/T 2589-2020 附录A 汽油；0.73 kg/L`).
    let coefficient_source = match converted.via {
        Some(conv) => format!(
            "{}；{} {}/{}",
            rule.source,
            conv.factor.normalize(),
            units::symbol(Canonical::Unit(conv.to)),
            units::symbol(Canonical::Unit(conv.from)),
        ),
        None => rule.source.clone(),
    };
    let cost = c.money(&format!("{field}.cost"), l.cost.as_ref(), Need::Optional);
    Some(NationalEnergyLine {
        carrier,
        amount,
        standard_coal: kgce(standard),
        kgce_per_unit: rule.kgce_per_unit,
        coefficient_source,
        cost,
    })
}

/// Energy and water consumption, with each carrier's standard-coal equivalent and the total
/// computed from them.
pub fn energy_report(raw: &RawEnergyReport, c: &mut Checker<'_>) -> Option<NationalEnergyReport> {
    let uscc = c.uscc("uscc", &raw.uscc);
    let period = c.period("period", &raw.period);
    let lines: Vec<Option<NationalEnergyLine>> = raw
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| energy_line(i, l, c))
        .collect();
    let total_energy_reported = c.optional_quantity(
        "total_energy",
        raw.total_energy.as_ref(),
        CanonicalUnit::Kgce,
        Substance::Any,
    );
    if raw.total_energy.is_none() {
        c.report(&v::TOTAL_NOT_REPORTED, "total_energy", "");
    }
    let water = c.optional_quantity(
        "water",
        raw.water.as_ref(),
        CanonicalUnit::M3,
        Substance::Water,
    );
    let energy_users = c.count("energy_users", raw.energy_users.as_deref());
    let staff = c.count("staff", raw.staff.as_deref());
    let building_area = area(
        c,
        "building_area",
        raw.building_area.as_ref(),
        Need::Optional,
    );
    let region = owned_region(c, raw.region_code.as_deref(), uscc.as_deref());
    if c.has_errors() {
        return None;
    }
    let lines: Vec<NationalEnergyLine> = lines.into_iter().collect::<Option<_>>()?;
    let period = period?;
    Some(national!(NationalEnergyReport, raw, {
        uscc: uscc?,
        institution_name: text(raw.institution_name.as_ref()),
        institution_type: None,
        region,
        period: period.label,
        period_type: period.kind,
        period_start: period.start,
        period_end: period.end,
        total_energy: kgce(lines.iter().map(|l| l.standard_coal.value).sum()),
        lines,
        total_energy_reported,
        water,
        energy_users,
        staff,
        building_area,
    }))
}

/// The GB/T 14885 edition a category code's shape shows: seven digits are the 2010 edition
/// (2030000 车辆), a letter and digits the 2022 one.
fn edition_of(code: &str) -> Option<AssetCategoryEdition> {
    let b = code.as_bytes();
    if b.len() == 7 && b.iter().all(u8::is_ascii_digit) {
        Some(AssetCategoryEdition::GbT14885_2010)
    } else if b.len() > 1 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit) {
        Some(AssetCategoryEdition::GbT14885_2022)
    } else {
        None
    }
}

fn edition_name(edition: AssetCategoryEdition) -> &'static str {
    match edition {
        AssetCategoryEdition::GbT14885_2010 => "GB/T 14885-2010",
        AssetCategoryEdition::GbT14885_2022 => "GB/T 14885-2022",
    }
}

/// State-asset cards.
pub fn asset_card(raw: &RawAssetCard, c: &mut Checker<'_>) -> Option<NationalAssetCard> {
    let rules = c.rules;
    let labels = &rules.labels;
    let owner_uscc = c.uscc("owner_uscc", &raw.owner_uscc);
    let asset_code = compact(&raw.asset_code);
    if asset_code.is_none() {
        c.report(&v::ASSET_CODE_MISSING, "asset_code", "");
    }
    let category_code = raw.category_code.as_deref().and_then(compact);
    let declared = c.label(
        "category_edition",
        raw.category_edition.as_deref(),
        &labels.asset_category_edition,
    );
    let shape = category_code.as_deref().and_then(edition_of);
    let category_edition = match (declared, shape) {
        (Some(d), Some(s)) if d != s => {
            let code = category_code.as_deref().unwrap_or_default();
            let detail = format!(
                "声明 {}，代码 {code} 属 {}",
                edition_name(d),
                edition_name(s)
            );
            c.report(&v::CATEGORY_EDITION_MISMATCH, "category_edition", detail);
            Some(s)
        }
        (Some(d), _) => Some(d),
        (None, Some(s)) => {
            let code = category_code.as_deref().unwrap_or_default();
            let detail = format!("{code} → {}", edition_name(s));
            c.report(&v::CATEGORY_EDITION_INFERRED, "category_edition", detail);
            Some(s)
        }
        (None, None) => None,
    };
    let original_value = c.money(
        "original_value",
        raw.original_value.as_ref(),
        Need::Optional,
    );
    let accumulated_depreciation = c.money(
        "accumulated_depreciation",
        raw.accumulated_depreciation.as_ref(),
        Need::Optional,
    );
    let net_value = c.money("net_value", raw.net_value.as_ref(), Need::Optional);
    let acquisition_mode = c.label(
        "acquisition_mode",
        raw.acquisition_mode.as_deref(),
        &labels.acquisition_mode,
    );
    let acquisition_date = c.date("acquisition_date", raw.acquisition_date.as_deref());
    let accounting_date = c.date("accounting_date", raw.accounting_date.as_deref());
    let (status, reported_status) = c.status(
        "status",
        raw.status.as_deref(),
        &labels.asset_status,
        AssetStatus::Other,
    );
    let region = owned_region(c, raw.region_code.as_deref(), owner_uscc.as_deref());
    if c.has_errors() {
        return None;
    }
    Some(national!(NationalAssetCard, raw, {
        owner_uscc: owner_uscc?,
        owner_name: text(raw.owner_name.as_ref()),
        region,
        asset_code: asset_code?,
        asset_name: text(raw.asset_name.as_ref()),
        category_code,
        category_name: text(raw.category_name.as_ref()),
        category_edition,
        original_value,
        accumulated_depreciation,
        net_value,
        acquisition_mode,
        acquisition_date,
        accounting_date,
        status,
        reported_status,
    }))
}

/// Operating cost: items in yuan, the total computed from them.
pub fn operating_cost(
    raw: &RawOperatingCost,
    c: &mut Checker<'_>,
) -> Option<NationalOperatingCost> {
    let rules = c.rules;
    let labels = &rules.labels;
    let uscc = c.uscc("uscc", &raw.uscc);
    let year = c.year("year", &raw.year, 0);
    let items: Vec<Option<NationalCostLine>> = raw
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let field = format!("items.{i}");
            let item = c
                .label(&format!("{field}.item"), Some(&it.item), &labels.cost_item)
                .unwrap_or(CostItem::Other);
            let amount = c.money(&format!("{field}.amount"), Some(&it.amount), Need::Required)?;
            Some(NationalCostLine {
                item,
                reported_item: fold(&it.item).unwrap_or_default(),
                amount,
            })
        })
        .collect();
    let total_reported = c.money("total", raw.total.as_ref(), Need::Optional);
    if raw.total.is_none() {
        c.report(&v::TOTAL_NOT_REPORTED, "total", "");
    }
    let staff = c.count("staff", raw.staff.as_deref());
    let office_area = area(c, "office_area", raw.office_area.as_ref(), Need::Optional);
    let region = owned_region(c, raw.region_code.as_deref(), uscc.as_deref());
    if c.has_errors() {
        return None;
    }
    let items: Vec<NationalCostLine> = items.into_iter().collect::<Option<_>>()?;
    Some(national!(NationalOperatingCost, raw, {
        uscc: uscc?,
        institution_name: text(raw.institution_name.as_ref()),
        region,
        year: year?,
        total: Money {
            value: items.iter().map(|i| i.amount.value).sum(),
            raw_value: None,
            raw_unit: None,
        },
        items,
        total_reported,
        staff,
        office_area,
    }))
}
