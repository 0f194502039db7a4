//! The validate stage (校验): which checks the hub makes, how severe each failure is, and the
//! cross-field checks.
//!
//! **Errors** concern what a record *is*: its key (USCC, VIN, the identity of a vehicle or
//! building), its period or time, its coordinates, and the amounts that make up a statistic.
//! A record with one cannot be published correctly, so it goes to quarantine, where it can be
//! replayed once the source is fixed. **Warnings** concern everything else: an optional value
//! that cannot be read or is implausible is left out of the national record (the warning
//! keeps the value as sent), a superseded division code is mapped to its successor, one that
//! the USCC's region contradicts is kept as reported, and a
//! cross-field inconsistency is recorded while the values stay as reported (the national
//! records carry both the computed and the reported totals). Compliance findings (more
//! vehicles than the quota, a 机要通信 car above the price cap) are warnings: the data is
//! probably right, and hiding it in quarantine would hide the finding.
//!
//! | code | severity | stage | when |
//! |---|---|---|---|
//! | `uscc_malformed` | error | validate | the record's USCC is not 18 characters of the GB 32100 alphabet (no I O S V Z; `O` is never read as `0`) |
//! | `uscc_check_character` | error | validate | the record's USCC has a wrong check character (position 18) |
//! | `uscc_org_code_check` | warning | validate | positions 9–17 of a valid USCC fail the GB 11714 check |
//! | `uscc_region_unknown` | warning | validate | positions 3–8 of a valid USCC are no GB/T 2260 code, current or withdrawn |
//! | `reference_uscc_invalid` | warning | validate | a referenced USCC (the supervising body's) is invalid; left out |
//! | `region_code_malformed` | error | validate | a reported division code is not six digits |
//! | `region_code_unknown` | error | validate | a reported division code is in no GB/T 2260 revision the hub knows |
//! | `region_code_superseded` | warning | validate | a withdrawn division code; recorded as its successor, the code as sent kept in `reported_code` |
//! | `region_uscc_mismatch` | warning | validate | a reported division code (in force) and the record's USCC's region (positions 3–8) of which neither lies within the other; the reported code is recorded |
//! | `region_from_uscc` | warning | normalise | an institution without a division code; taken from its USCC (positions 3–8) |
//! | `region_missing` | error | validate | an institution without a division code whose USCC's region is unknown too |
//! | `name_missing` | error | validate | an institution without a name |
//! | `vin_malformed` | error | validate | a VIN that is not 17 characters without I O Q |
//! | `vin_check_digit` | error | validate | a VIN whose check digit (position 9) is wrong |
//! | `plate_malformed` | warning | validate | a plate that is no GA 36 plate after normalisation; left out |
//! | `plate_corrected` | warning | normalise | `O`/`I` in a plate's serial read as `0`/`1` (`plate_corrected` set) |
//! | `vehicle_unidentified` | error | validate | a vehicle (or GPS point) with neither a VIN nor a valid plate (nor a terminal id) |
//! | `property_unit_number_malformed` | warning | validate | a 不动产单元号 not in the 28-character GB/T 37346 form; left out |
//! | `building_unidentified` | error | validate | a building with neither a 不动产单元号 nor an address |
//! | `asset_code_missing` | error | validate | an asset card without an asset code |
//! | `period_malformed` | error | validate | a period or year that cannot be read |
//! | `period_implausible` | error | validate | a period before the earliest year or starting after the report was received (quotas: one year ahead) |
//! | `fix_time_malformed` | error | validate | a GPS fix time that cannot be read |
//! | `fix_time_implausible` | error | validate | a GPS fix before the earliest fix time or after the report was received (plus slack) |
//! | `coordinates_invalid` | error | validate | latitude or longitude not a number, out of range, or exactly (0, 0) |
//! | `coordinates_outside_china` | warning | validate | a WGS-84 position outside China's bounding box |
//! | `amount_malformed` | error | normalise | an amount a statistic is made of (energy line, cost item, floor area by use) that is not a number |
//! | `unit_unknown` | error | normalise | such an amount in a unit `units.toml` does not know or cannot convert |
//! | `amount_negative` | error | validate | any reported amount or count below zero |
//! | `carrier_unknown` | error | normalise | an energy line whose carrier is not in `labels.toml` |
//! | `usage_category_unknown` | error | normalise | a quota line whose 编制类别 is not in `labels.toml` (it is part of the key) |
//! | `value_unreadable` | warning | normalise | an optional number, count, amount or unit that cannot be read; left out |
//! | `value_out_of_range` | warning | validate | a GPS speed, heading or odometer outside its range (e.g. −1 for unknown); left out |
//! | `date_month_only` | warning | normalise | a date given as a month only; the first of the month is recorded |
//! | `date_implausible` | warning | validate | a date (or completion year) before the earliest plausible one or after the report was received; left out |
//! | `enum_unmapped` | warning | normalise | a category label not in `labels.toml`; left out, or 其他 where the national record requires one |
//! | `status_unmapped` | warning | normalise | a status label not in `labels.toml`; recorded as OTHER with the label as sent in `reported_status`, so it still takes part in conflict detection |
//! | `category_edition_inferred` | warning | normalise | an asset category without its GB/T 14885 edition; inferred from the code's shape |
//! | `category_edition_mismatch` | warning | validate | the declared edition contradicts the code's shape; the shape wins |
//! | `total_not_reported` | warning | normalise | no stated total; the computed one is published |
//! | `energy_total_mismatch` | warning | validate | 能源消费总量 ≠ Σ carriers in kgce beyond `energy_total_tolerance` (±0.5 %) |
//! | `cost_total_mismatch` | warning | validate | 运行成本合计 ≠ Σ items beyond the reported precision |
//! | `asset_net_negative` | error | validate | accumulated depreciation above the original value (net < 0) |
//! | `asset_net_mismatch` | warning | validate | net ≠ original − depreciation beyond the reported precision |
//! | `actual_exceeds_quota` | warning | validate | vehicles held (实有数) above the quota (编制数) |
//! | `vehicle_standard_exceeded` | warning | validate | a 机要通信用车 above the price or displacement cap |
//! | `office_area_exceeds_total` | warning | validate | Σ floor areas by use above the total floor area |
//! | `internal` | error | normalise | a reader failed without saying why (a bug; never expected) |
//!
//! **Where to add a rule:** a `Rule` constant below, a row in this table (a test keeps the
//! two in step), and the check in a reader of [`Checker`] (one field) or in the domain's
//! cross-field function at the end of this file (several fields, on the national form).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use schemas::divisions::{self, Resolution};
use schemas::ids::{self, CodeError, Plate};
use schemas::records::{
    CanonicalUnit, Money, NationalAssetCard, NationalEnergyReport, NationalInstitution,
    NationalOfficeBuilding, NationalOperatingCost, NationalVehicle, NationalVehiclePosition,
    NationalVehicleQuota, Provenance, Quantity, QuarantineStage, RawQuantity, Region,
    VehicleUsageCategory,
};

use super::rules::{Canonical, Labels, Rules, Substance};
use super::text::{self, DatePrecision, Period};
use super::units::{self, Converted, UnitError};
use super::{Finding, Outcome, Rule, Severity};

macro_rules! rules {
    ($($name:ident = $code:literal, $sev:ident, $stage:ident, $zh:literal, $en:literal;)*) => {
        $(
            #[doc = concat!("`", $code, "`: ", $zh, " (", $en, ").")]
            pub static $name: Rule = Rule {
                code: $code,
                severity: Severity::$sev,
                stage: QuarantineStage::$stage,
                zh: $zh,
                en: $en,
            };
        )*
        /// Every rule, in the order of the table above.
        pub static RULES: &[&Rule] = &[$(&$name),*];
    };
}

rules! {
    USCC_MALFORMED = "uscc_malformed", Error, Validate,
        "统一社会信用代码格式错误", "USCC malformed";
    USCC_CHECK_CHARACTER = "uscc_check_character", Error, Validate,
        "统一社会信用代码校验位错误", "USCC check character mismatch";
    USCC_ORG_CODE_CHECK = "uscc_org_code_check", Warning, Validate,
        "统一社会信用代码中的组织机构代码校验位错误", "organisation code inside the USCC fails its check";
    USCC_REGION_UNKNOWN = "uscc_region_unknown", Warning, Validate,
        "统一社会信用代码中的登记管理机关行政区划码不存在", "region part of the USCC is no division code";
    REFERENCE_USCC_INVALID = "reference_uscc_invalid", Warning, Validate,
        "关联单位统一社会信用代码无效，未采用", "referenced USCC invalid, left out";
    REGION_CODE_MALFORMED = "region_code_malformed", Error, Validate,
        "行政区划代码格式错误", "division code malformed";
    REGION_CODE_UNKNOWN = "region_code_unknown", Error, Validate,
        "行政区划代码不存在", "unknown division code";
    REGION_CODE_SUPERSEDED = "region_code_superseded", Warning, Validate,
        "行政区划代码已停用，按现行代码记录", "division code withdrawn, recorded as its successor";
    REGION_USCC_MISMATCH = "region_uscc_mismatch", Warning, Validate,
        "行政区划代码与统一社会信用代码登记地不符，按报送代码记录", "division code disagrees with the USCC's region, the reported code is recorded";
    REGION_FROM_USCC = "region_from_uscc", Warning, Normalise,
        "未报送行政区划代码，按统一社会信用代码第 3–8 位记录", "no division code, taken from the USCC";
    REGION_MISSING = "region_missing", Error, Validate,
        "缺少所在地行政区划", "no division";
    NAME_MISSING = "name_missing", Error, Validate,
        "缺少机构名称", "no name";
    VIN_MALFORMED = "vin_malformed", Error, Validate,
        "车辆识别代号格式错误", "VIN malformed";
    VIN_CHECK_DIGIT = "vin_check_digit", Error, Validate,
        "车辆识别代号校验位错误", "VIN check digit mismatch";
    PLATE_MALFORMED = "plate_malformed", Warning, Validate,
        "号牌号码格式错误，未采用", "plate malformed, left out";
    PLATE_CORRECTED = "plate_corrected", Warning, Normalise,
        "号牌序号中的字母 O/I 已按数字 0/1 纠正", "O/I in the plate serial read as 0/1";
    VEHICLE_UNIDENTIFIED = "vehicle_unidentified", Error, Validate,
        "车辆既无车辆识别代号也无有效号牌", "vehicle has neither a VIN nor a valid plate";
    PROPERTY_UNIT_NUMBER_MALFORMED = "property_unit_number_malformed", Warning, Validate,
        "不动产单元号格式错误，未采用", "property unit number malformed, left out";
    BUILDING_UNIDENTIFIED = "building_unidentified", Error, Validate,
        "办公用房既无不动产单元号也无坐落地址", "building has neither a property unit number nor an address";
    ASSET_CODE_MISSING = "asset_code_missing", Error, Validate,
        "缺少资产编号", "no asset code";
    PERIOD_MALFORMED = "period_malformed", Error, Validate,
        "统计期无法识别", "period cannot be read";
    PERIOD_IMPLAUSIBLE = "period_implausible", Error, Validate,
        "统计期不合理", "implausible period";
    FIX_TIME_MALFORMED = "fix_time_malformed", Error, Validate,
        "定位时间无法识别", "fix time cannot be read";
    FIX_TIME_IMPLAUSIBLE = "fix_time_implausible", Error, Validate,
        "定位时间不合理", "implausible fix time";
    COORDINATES_INVALID = "coordinates_invalid", Error, Validate,
        "经纬度无效", "invalid coordinates";
    COORDINATES_OUTSIDE_CHINA = "coordinates_outside_china", Warning, Validate,
        "定位点位于中国境外", "position outside China";
    AMOUNT_MALFORMED = "amount_malformed", Error, Normalise,
        "数值无法识别", "amount is not a number";
    UNIT_UNKNOWN = "unit_unknown", Error, Normalise,
        "计量单位无法换算", "unit unknown or not convertible";
    AMOUNT_NEGATIVE = "amount_negative", Error, Validate,
        "数量为负数", "negative amount";
    CARRIER_UNKNOWN = "carrier_unknown", Error, Normalise,
        "能源品种无法识别", "unknown energy carrier";
    USAGE_CATEGORY_UNKNOWN = "usage_category_unknown", Error, Normalise,
        "编制类别无法识别", "unknown vehicle category";
    VALUE_UNREADABLE = "value_unreadable", Warning, Normalise,
        "数值或单位无法识别，未采用", "value or unit cannot be read, left out";
    VALUE_OUT_OF_RANGE = "value_out_of_range", Warning, Validate,
        "数值超出合理范围，未采用", "value out of range, left out";
    DATE_MONTH_ONLY = "date_month_only", Warning, Normalise,
        "日期仅报送到月，按当月 1 日记录", "month only, recorded as the 1st";
    DATE_IMPLAUSIBLE = "date_implausible", Warning, Validate,
        "日期不合理，未采用", "implausible date, left out";
    ENUM_UNMAPPED = "enum_unmapped", Warning, Normalise,
        "分类取值无法识别", "unknown category label";
    STATUS_UNMAPPED = "status_unmapped", Warning, Normalise,
        "状态取值无法识别，记为其他并保留原文", "unknown status label, recorded as OTHER with the label as sent";
    CATEGORY_EDITION_INFERRED = "category_edition_inferred", Warning, Normalise,
        "未声明资产分类标准版本，按代码形式判定", "asset category edition inferred from the code";
    CATEGORY_EDITION_MISMATCH = "category_edition_mismatch", Warning, Validate,
        "声明的资产分类标准版本与代码形式不符，按代码形式判定", "declared edition contradicts the code";
    TOTAL_NOT_REPORTED = "total_not_reported", Warning, Normalise,
        "未报送合计，按分项合计记录", "no total reported, computed from the items";
    ENERGY_TOTAL_MISMATCH = "energy_total_mismatch", Warning, Validate,
        "能源消费总量与分品种折标量合计不符", "energy total differs from the sum of carriers";
    COST_TOTAL_MISMATCH = "cost_total_mismatch", Warning, Validate,
        "运行成本合计与分项合计不符", "cost total differs from the sum of items";
    ASSET_NET_NEGATIVE = "asset_net_negative", Error, Validate,
        "累计折旧大于原值", "depreciation exceeds the original value";
    ASSET_NET_MISMATCH = "asset_net_mismatch", Warning, Validate,
        "净值不等于原值减累计折旧", "net value is not original minus depreciation";
    QUOTA_EXCEEDED = "actual_exceeds_quota", Warning, Validate,
        "实有车辆数超过编制数", "more vehicles than the quota";
    VEHICLE_STANDARD_EXCEEDED = "vehicle_standard_exceeded", Warning, Validate,
        "机要通信用车超过配备标准", "confidential-communication vehicle above the standard";
    OFFICE_AREA_EXCEEDS_TOTAL = "office_area_exceeds_total", Warning, Validate,
        "分类面积合计大于总建筑面积", "floor areas by use exceed the total";
    INTERNAL = "internal", Error, Normalise,
        "内部错误", "internal error";
}

/// Reads fields of one raw record into national form and reports what fails. One per record;
/// the normalise stage's domain functions call its readers, the cross-field checks below
/// report through it.
#[derive(Debug)]
pub struct Checker<'r> {
    /// The configuration.
    pub rules: &'r Rules,
    /// When the connector received the record: the latest plausible date.
    received: DateTime<Utc>,
    outcome: Outcome,
}

/// The kind of reported amount: required ones make up a statistic and fail the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Left out with a warning when unreadable.
    Optional,
    /// An error when unreadable.
    Required,
}

impl<'r> Checker<'r> {
    /// A checker for a record with this provenance.
    pub fn new(rules: &'r Rules, provenance: &Provenance) -> Self {
        Checker {
            rules,
            received: provenance.received_at,
            outcome: Outcome::default(),
        }
    }

    /// Everything reported so far.
    pub fn into_outcome(self) -> Outcome {
        self.outcome
    }

    /// Whether an error was reported: the record will not be published.
    pub fn has_errors(&self) -> bool {
        !self.outcome.errors.is_empty()
    }

    /// Reports a finding of `rule` on `field`.
    pub fn report(&mut self, rule: &'static Rule, field: &str, detail: impl std::fmt::Display) {
        self.outcome.push(Finding::new(rule, field, detail));
    }

    /// The day the record was received, in China Standard Time.
    fn received_day(&self) -> NaiveDate {
        self.received
            .with_timezone(&text::china_standard_time())
            .date_naive()
    }

    /// The record's own USCC (its key): canonical and valid, else an error.
    pub fn uscc(&mut self, field: &str, sent: &str) -> Option<String> {
        let code = ids::canonical_code(sent);
        match ids::validate_uscc(&code) {
            Ok(()) => {}
            Err(e @ CodeError::CheckCharacter { .. }) => {
                self.report(&USCC_CHECK_CHARACTER, field, format!("{code}，{e}"));
                return None;
            }
            Err(e) => {
                self.report(&USCC_MALFORMED, field, format!("「{sent}」{e}"));
                return None;
            }
        }
        if !ids::uscc_org_code_is_valid(&code) {
            self.report(&USCC_ORG_CODE_CHECK, field, &code);
        }
        let region = ids::uscc_region(&code).unwrap_or_default();
        // 100000: bodies registered by central authorities carry the national code.
        if region != "100000" && divisions::lookup(region).is_none() {
            self.report(&USCC_REGION_UNKNOWN, field, format!("{code}（{region}）"));
        }
        Some(code)
    }

    /// A USCC the record refers to: left out with a warning when invalid.
    pub fn reference_uscc(&mut self, field: &str, sent: Option<&str>) -> Option<String> {
        let sent = sent.filter(|s| !s.trim().is_empty())?;
        let code = ids::canonical_code(sent);
        match ids::validate_uscc(&code) {
            Ok(()) => Some(code),
            Err(e) => {
                self.report(&REFERENCE_USCC_INVALID, field, format!("「{sent}」{e}"));
                None
            }
        }
    }

    /// A reported division code → the division in force; withdrawn codes map to their
    /// successor with a warning, unknown ones are errors.
    pub fn region(&mut self, field: &str, sent: &str) -> Option<Region> {
        let code = ids::canonical_code(sent);
        match divisions::resolve(&code) {
            Resolution::Current(d) => Some(region_of(d, None)),
            Resolution::Superseded { reported, current } => {
                self.report(
                    &REGION_CODE_SUPERSEDED,
                    field,
                    format!(
                        "{}（{}）→ {}（{}）",
                        reported.code, reported.name, current.code, current.name
                    ),
                );
                Some(region_of(current, Some(code)))
            }
            Resolution::Unknown => {
                self.report(&REGION_CODE_UNKNOWN, field, &code);
                None
            }
            Resolution::Malformed => {
                self.report(&REGION_CODE_MALFORMED, field, format!("「{sent}」"));
                None
            }
        }
    }

    /// The region of a record that reports a division code (`sent`) and, where it names a unit,
    /// that unit's USCC: the reported code resolved by [`Checker::region`] (withdrawn → the
    /// code in force with a warning, unknown or malformed → an error), with a warning when it
    /// and the USCC's region lie neither one within the other. `None` when no code was sent
    /// (the caller decides whether the USCC's region stands in) or it was refused.
    ///
    /// The reported code wins over the USCC's region: positions 3–8 of a USCC name the
    /// division of the authority that registered the unit when the code was issued, and a USCC
    /// is for life — a unit registered by its prefecture's authority, one that moved, or one in
    /// a county since merged or renamed keeps it. The division code is what the system states
    /// about the record now, and the more specific of the two.
    pub fn reported_region(
        &mut self,
        field: &str,
        sent: Option<&str>,
        uscc: Option<&str>,
    ) -> Option<Region> {
        let sent = sent.filter(|s| !s.trim().is_empty())?;
        let reported = self.region(field, sent)?;
        if let Some(registered) = uscc.and_then(|u| self.uscc_region(u))
            && !divisions::nested(&reported.code, &registered.code)
        {
            let name = |r: &Region| r.name.clone().unwrap_or_default();
            let detail = format!(
                "报送 {}（{}），统一社会信用代码登记地 {}（{}）",
                reported.code,
                name(&reported),
                registered.code,
                name(&registered)
            );
            self.report(&REGION_USCC_MISMATCH, field, detail);
        }
        Some(reported)
    }

    /// The division a valid USCC was registered in (positions 3–8), as it is today; no
    /// finding, since a code issued before a division changed stays valid for good.
    pub fn uscc_region(&self, uscc: &str) -> Option<Region> {
        match divisions::resolve(ids::uscc_region(uscc)?) {
            Resolution::Current(d) | Resolution::Superseded { current: d, .. } => {
                Some(region_of(d, None))
            }
            _ => None,
        }
    }

    /// A VIN, when one was sent: canonical and valid, else an error.
    pub fn vin(&mut self, field: &str, sent: Option<&str>) -> Option<String> {
        let sent = sent.filter(|s| !s.trim().is_empty())?;
        let vin = ids::canonical_code(sent);
        match ids::validate_vin(&vin) {
            Ok(()) => Some(vin),
            Err(e @ CodeError::CheckCharacter { .. }) => {
                self.report(&VIN_CHECK_DIGIT, field, format!("{vin}，{e}"));
                None
            }
            Err(e) => {
                self.report(&VIN_MALFORMED, field, format!("「{sent}」{e}"));
                None
            }
        }
    }

    /// A plate, when one was sent: canonical, or left out with a warning.
    pub fn plate(&mut self, field: &str, sent: Option<&str>) -> Option<Plate> {
        let sent = sent.filter(|s| !s.trim().is_empty())?;
        match ids::parse_plate(sent) {
            Ok(p) => {
                if p.corrected {
                    self.report(&PLATE_CORRECTED, field, format!("「{sent}」→ {}", p.text));
                }
                Some(p)
            }
            Err(e) => {
                self.report(&PLATE_MALFORMED, field, e);
                None
            }
        }
    }

    /// An optional date: left out with a warning when unreadable or implausible.
    pub fn date(&mut self, field: &str, sent: Option<&str>) -> Option<NaiveDate> {
        let sent = sent.filter(|s| !s.trim().is_empty())?;
        let Some((date, precision)) = text::date(sent) else {
            self.report(&VALUE_UNREADABLE, field, format!("「{sent}」不是日期"));
            return None;
        };
        let latest = self.received_day().succ_opt().unwrap_or(NaiveDate::MAX);
        if date < self.rules.checks.earliest_date || date > latest {
            self.report(
                &DATE_IMPLAUSIBLE,
                field,
                format!(
                    "「{sent}」不在 {} 至接收日 {} 之间",
                    self.rules.checks.earliest_date,
                    self.received_day()
                ),
            );
            return None;
        }
        if precision == DatePrecision::Month {
            self.report(&DATE_MONTH_ONLY, field, format!("「{sent}」→ {date}"));
        }
        Some(date)
    }

    /// An optional count (人数, 座位数, 编制数): left out with a warning when unreadable, an
    /// error when negative.
    pub fn count(&mut self, field: &str, sent: Option<&str>) -> Option<i32> {
        let sent = sent.filter(|s| !s.trim().is_empty())?;
        let Some(n) = text::count(sent).and_then(|n| i32::try_from(n).ok()) else {
            self.report(&VALUE_UNREADABLE, field, format!("「{sent}」不是整数"));
            return None;
        };
        if n < 0 {
            self.report(&AMOUNT_NEGATIVE, field, format!("「{sent}」"));
            return None;
        }
        Some(n)
    }

    /// A year of completion: a count between the earliest plausible year and the year
    /// received.
    pub fn completion_year(&mut self, field: &str, sent: Option<&str>) -> Option<i32> {
        let year = self.count(field, sent)?;
        let earliest = self.rules.checks.earliest_completion_year;
        if year < earliest || year > self.received_day().year() {
            self.report(&DATE_IMPLAUSIBLE, field, format!("{year} 年"));
            return None;
        }
        Some(year)
    }

    fn amount(
        &mut self,
        field: &str,
        raw: &RawQuantity,
        target: Canonical,
        substance: Substance,
        need: Need,
    ) -> Option<Converted<'r>> {
        let sent = format!("「{}」{}", raw.value, raw.unit);
        let (rule, detail) = match units::convert(raw, target, substance, self.rules) {
            Ok(c) => return Some(c),
            Err(UnitError::Negative(_)) => (&AMOUNT_NEGATIVE, sent),
            Err(UnitError::Malformed | UnitError::OutOfRange) => match need {
                Need::Required => (&AMOUNT_MALFORMED, sent),
                Need::Optional => (&VALUE_UNREADABLE, sent),
            },
            Err(UnitError::UnknownUnit(_) | UnitError::Incompatible { .. }) => {
                let detail = format!("{sent}，应为 {}", units::symbol(target));
                match need {
                    Need::Required => (&UNIT_UNKNOWN, detail),
                    Need::Optional => (&VALUE_UNREADABLE, detail),
                }
            }
        };
        self.report(rule, field, detail);
        None
    }

    /// A reported amount as a national [`Quantity`] in `unit`.
    pub fn quantity(
        &mut self,
        field: &str,
        raw: Option<&RawQuantity>,
        unit: CanonicalUnit,
        substance: Substance,
        need: Need,
    ) -> Option<(Quantity, Converted<'r>)> {
        let raw = raw?;
        let c = self.amount(field, raw, Canonical::Unit(unit), substance, need)?;
        let q = Quantity {
            value: c.value,
            unit,
            raw_value: Some(raw.value.clone()),
            raw_unit: Some(raw.unit.clone()),
        };
        Some((q, c))
    }

    /// An optional reported amount as a national [`Quantity`] in `unit`.
    pub fn optional_quantity(
        &mut self,
        field: &str,
        raw: Option<&RawQuantity>,
        unit: CanonicalUnit,
        substance: Substance,
    ) -> Option<Quantity> {
        self.quantity(field, raw, unit, substance, Need::Optional)
            .map(|(q, _)| q)
    }

    /// A reported amount of money as national [`Money`] in yuan.
    pub fn money(&mut self, field: &str, raw: Option<&RawQuantity>, need: Need) -> Option<Money> {
        let raw = raw?;
        let c = self.amount(field, raw, Canonical::Yuan, Substance::Any, need)?;
        Some(Money {
            value: c.value,
            raw_value: Some(raw.value.clone()),
            raw_unit: Some(raw.unit.clone()),
        })
    }

    /// A category label → its symbol; an unknown label is left out with a warning.
    pub fn label<E: Copy>(
        &mut self,
        field: &str,
        sent: Option<&str>,
        labels: &Labels<E>,
    ) -> Option<E> {
        let sent = sent.filter(|s| !s.trim().is_empty())?;
        let value = labels.get(sent);
        if value.is_none() {
            self.report(&ENUM_UNMAPPED, field, format!("「{sent}」"));
        }
        value
    }

    /// A status label → its symbol and, when no symbol matches, the label as sent: an
    /// unknown status is `other` with its text kept (`reported_status`) and a warning, so
    /// that it still takes part in conflict detection. `(None, None)` if nothing was sent.
    pub fn status<E: Copy>(
        &mut self,
        field: &str,
        sent: Option<&str>,
        labels: &Labels<E>,
        other: E,
    ) -> (Option<E>, Option<String>) {
        let Some(sent) = sent.and_then(text::fold) else {
            return (None, None);
        };
        match labels.get(&sent) {
            Some(symbol) => (Some(symbol), None),
            None => {
                self.report(&STATUS_UNMAPPED, field, format!("「{sent}」"));
                (Some(other), Some(sent))
            }
        }
    }

    /// A category label the record cannot do without: an unknown one is the error `rule`.
    pub fn required_label<E: Copy>(
        &mut self,
        field: &str,
        sent: &str,
        labels: &Labels<E>,
        rule: &'static Rule,
    ) -> Option<E> {
        let value = labels.get(sent);
        if value.is_none() {
            self.report(rule, field, format!("「{sent}」"));
        }
        value
    }

    /// A statistical period, which must not start after the report was received.
    pub fn period(&mut self, field: &str, sent: &str) -> Option<Period> {
        let Some(period) = text::period(sent) else {
            self.report(&PERIOD_MALFORMED, field, format!("「{sent}」"));
            return None;
        };
        if period.year() < self.rules.checks.earliest_year || period.start > self.received_day() {
            self.report(
                &PERIOD_IMPLAUSIBLE,
                field,
                format!("{}，接收日 {}", period.label, self.received_day()),
            );
            return None;
        }
        Some(period)
    }

    /// A year (年度), at most `ahead` years after the year received (quotas are approved
    /// for the coming year).
    pub fn year(&mut self, field: &str, sent: &str, ahead: i32) -> Option<i32> {
        let Some(year) = text::year(sent) else {
            self.report(&PERIOD_MALFORMED, field, format!("「{sent}」"));
            return None;
        };
        let latest = self.received_day().year() + ahead;
        if year < self.rules.checks.earliest_year || year > latest {
            self.report(
                &PERIOD_IMPLAUSIBLE,
                field,
                format!("{year} 年，至迟 {latest} 年"),
            );
            return None;
        }
        Some(year)
    }

    /// A GPS fix time as UTC (local times are China Standard Time), truncated to ms.
    pub fn fix_time(&mut self, field: &str, sent: &str) -> Option<DateTime<Utc>> {
        let Some(t) = text::instant(sent) else {
            self.report(&FIX_TIME_MALFORMED, field, format!("「{sent}」"));
            return None;
        };
        let checks = &self.rules.checks;
        let latest =
            self.received + chrono::Duration::seconds(checks.fix_time_future_slack_seconds);
        if t < checks.earliest_fix_time || t > latest {
            let detail = format!("{}，接收于 {}", t.to_rfc3339(), self.received.to_rfc3339());
            self.report(&FIX_TIME_IMPLAUSIBLE, field, detail);
            return None;
        }
        Some(schemas::logical::timestamp_millis::truncate(t))
    }

    /// Coordinates as sent: finite, within ±90° / ±180°, and not exactly (0, 0), the value
    /// receivers report before their first fix.
    pub fn coordinates(&mut self, latitude: f64, longitude: f64) -> Option<()> {
        let valid = latitude.is_finite()
            && longitude.is_finite()
            && latitude.abs() <= 90.0
            && longitude.abs() <= 180.0
            && (latitude, longitude) != (0.0, 0.0);
        if !valid {
            self.report(
                &COORDINATES_INVALID,
                "latitude",
                format!("({latitude}, {longitude})"),
            );
        }
        valid.then_some(())
    }

    /// A WGS-84 position within China's bounding box (3.5–54° N, 73–135.5° E), else a
    /// warning: official vehicles rarely leave the country, a fix outside is usually a glitch.
    pub fn within_china(&mut self, latitude: f64, longitude: f64) {
        if !((3.5..=54.0).contains(&latitude) && (73.0..=135.5).contains(&longitude)) {
            let detail = format!("WGS-84 ({latitude:.6}, {longitude:.6})");
            self.report(&COORDINATES_OUTSIDE_CHINA, "latitude", detail);
        }
    }

    /// An optional GPS reading (speed, heading, odometer) within `range`, else left out.
    pub fn reading(&mut self, field: &str, value: Option<f64>, range: (f64, f64)) -> Option<f64> {
        let v = value?;
        if v.is_finite() && (range.0..=range.1).contains(&v) {
            Some(v)
        } else {
            self.report(
                &VALUE_OUT_OF_RANGE,
                field,
                format!("{v}，应在 {}–{} 之间", range.0, range.1),
            );
            None
        }
    }
}

fn region_of(d: &divisions::Division, reported: Option<String>) -> Region {
    Region {
        code: d.code.to_owned(),
        level: d.level,
        name: Some(d.name.to_owned()),
        reported_code: reported,
    }
}

// ---- cross-field checks, one function per domain, on the national form ----------------------

/// Institutions: every check is on single fields.
pub fn institution(_: &NationalInstitution, _: &mut Checker<'_>) {}

/// GPS points: every check is on single fields.
pub fn vehicle_position(_: &NationalVehiclePosition, _: &mut Checker<'_>) {}

/// 机要通信用车 within the price and displacement caps (DOMAIN.md §5).
pub fn vehicle(v: &NationalVehicle, c: &mut Checker<'_>) {
    if v.usage_category != Some(VehicleUsageCategory::ConfidentialCommunication) {
        return;
    }
    let checks = &c.rules.checks;
    let (price_cap, displacement_cap) = (
        checks.confidential_vehicle_max_price_yuan,
        checks.confidential_vehicle_max_displacement_l,
    );
    if let Some(p) = v.purchase_price.as_ref().filter(|p| p.value > price_cap) {
        let detail = format!("购置价格 {} 元，上限 {price_cap} 元", p.value);
        c.report(&VEHICLE_STANDARD_EXCEEDED, "purchase_price", detail);
    }
    if let Some(d) = v
        .displacement
        .as_ref()
        .filter(|d| d.value > displacement_cap)
    {
        let detail = format!("排量 {} L，上限 {displacement_cap} L", d.value.normalize());
        c.report(&VEHICLE_STANDARD_EXCEEDED, "displacement", detail);
    }
}

/// Vehicles held within the quota.
pub fn vehicle_quota(q: &NationalVehicleQuota, c: &mut Checker<'_>) {
    if let (Some(quota), Some(actual)) = (q.quota, q.actual)
        && actual > quota
    {
        c.report(
            &QUOTA_EXCEEDED,
            "actual",
            format!("实有 {actual} 辆，编制 {quota} 辆"),
        );
    }
}

/// Floor areas by use within the total floor area.
pub fn office_building(b: &NationalOfficeBuilding, c: &mut Checker<'_>) {
    let Some(total) = &b.total_floor_area else {
        return;
    };
    let sum: Decimal = b.areas.iter().map(|a| a.area.value).sum();
    let slack: Decimal = std::iter::once(quantity_half_ulp(total, c.rules))
        .chain(b.areas.iter().map(|a| quantity_half_ulp(&a.area, c.rules)))
        .sum();
    if sum > total.value + slack {
        let detail = format!(
            "分类面积合计 {} m²，总建筑面积 {} m²",
            sum.normalize(),
            total.value.normalize()
        );
        c.report(&OFFICE_AREA_EXCEEDS_TOTAL, "areas", detail);
    }
}

/// 能源消费总量 = Σ 分品种折标量 within the configured relative tolerance (±0.5 %).
pub fn energy_report(r: &NationalEnergyReport, c: &mut Checker<'_>) {
    let Some(reported) = &r.total_energy_reported else {
        return;
    };
    let computed = r.total_energy.value;
    let allowed = computed.abs() * c.rules.checks.energy_total_tolerance
        + quantity_half_ulp(reported, c.rules);
    if (reported.value - computed).abs() > allowed {
        let detail = format!(
            "上报 {} kgce，分品种合计 {} kgce，允差 ±{}",
            reported.value.normalize(),
            computed.normalize(),
            percent(c.rules.checks.energy_total_tolerance)
        );
        c.report(&ENERGY_TOTAL_MISMATCH, "total_energy", detail);
    }
}

/// 运行成本合计 = Σ 分项 within the precision the amounts were reported at.
pub fn operating_cost(r: &NationalOperatingCost, c: &mut Checker<'_>) {
    let Some(reported) = &r.total_reported else {
        return;
    };
    let slack: Decimal = std::iter::once(reported)
        .chain(r.items.iter().map(|i| &i.amount))
        .map(|m| money_half_ulp(m, c.rules))
        .sum();
    if (reported.value - r.total.value).abs() > slack {
        let detail = format!("上报 {} 元，分项合计 {} 元", reported.value, r.total.value);
        c.report(&COST_TOTAL_MISMATCH, "total", detail);
    }
}

/// Depreciation within the original value; net = original − depreciation within the
/// precision the values were reported at.
pub fn asset_card(a: &NationalAssetCard, c: &mut Checker<'_>) {
    let (Some(original), Some(depreciation)) = (&a.original_value, &a.accumulated_depreciation)
    else {
        return;
    };
    if depreciation.value > original.value {
        let detail = format!(
            "原值 {} 元，累计折旧 {} 元",
            original.value, depreciation.value
        );
        c.report(&ASSET_NET_NEGATIVE, "accumulated_depreciation", detail);
        return;
    }
    let Some(net) = &a.net_value else {
        return;
    };
    let expected = original.value - depreciation.value;
    let slack: Decimal = [original, depreciation, net]
        .into_iter()
        .map(|m| money_half_ulp(m, c.rules))
        .sum();
    if (net.value - expected).abs() > slack {
        let detail = format!("净值 {} 元，原值减累计折旧 {expected} 元", net.value);
        c.report(&ASSET_NET_MISMATCH, "net_value", detail);
    }
}

fn quantity_half_ulp(q: &Quantity, rules: &Rules) -> Decimal {
    units::reported_half_ulp(q.raw_value.as_deref(), q.raw_unit.as_deref(), rules)
}

fn money_half_ulp(m: &Money, rules: &Rules) -> Decimal {
    units::reported_half_ulp(m.raw_value.as_deref(), m.raw_unit.as_deref(), rules)
}

fn percent(fraction: Decimal) -> String {
    format!("{}%", (fraction * Decimal::ONE_HUNDRED).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in this module's documentation lists every rule with its severity and
    /// stage, and nothing else.
    #[test]
    fn rule_table_matches_the_rules() {
        let source = include_str!("validate.rs");
        let rows: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("//! | `"))
            .collect();
        assert_eq!(rows.len(), RULES.len(), "rows in the doc table");
        for (row, rule) in rows.iter().zip(RULES) {
            let stage = rule.stage.as_str();
            let expected = format!("{}` | {} | {stage} |", rule.code, rule.severity.as_str());
            assert!(row.starts_with(&expected), "{row}\nexpected: {expected}");
        }
        let mut codes: Vec<_> = RULES.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RULES.len(), "codes are unique");
    }
}
