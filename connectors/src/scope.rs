//! Row-level authorisation by region (按行政区划的数据范围): a county may submit only records of
//! its own county; a prefecture its own and its counties'; a province its own and everything
//! below. A record's region is what the record itself says — its division code and the region
//! of its USCC (positions 3–8) — never only what its sender claims beside it: all of them must
//! agree (one lies within the other, after withdrawn codes are resolved to the codes in force,
//! 530121 → 530114), and the most specific must lie in the sender's scope. Pure: GB/T 2260
//! codes only.

use schemas::Domain;
use schemas::divisions::{self, Resolution};

use crate::config::Level;

/// Whether a reporter at `level` for region `reporter` may submit a record of region `record`.
/// Codes are 6-digit GB/T 2260 codes (`PPCCDD`); anything else is out of scope.
pub fn in_scope(level: Level, reporter: &str, record: &str) -> bool {
    if !is_code(reporter) || !is_code(record) {
        return false;
    }
    match level {
        Level::County => record == reporter,
        Level::Prefecture => record[..4] == reporter[..4],
        Level::Province => record[..2] == reporter[..2],
    }
}

fn is_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The raw fields of `domain` that say where a record belongs: its division codes and its
/// USCCs (whose positions 3–8 are the registering region).
pub fn region_fields(domain: Domain) -> (&'static [&'static str], &'static [&'static str]) {
    match domain {
        Domain::Institution | Domain::EnergyReport | Domain::OperatingCost => {
            (&["region_code"], &["uscc"])
        }
        Domain::Vehicle | Domain::VehicleQuota | Domain::OfficeBuilding | Domain::AssetCard => {
            (&["region_code"], &["owner_uscc"])
        }
        // A GPS point names no unit: its division code is its only region.
        Domain::VehiclePosition => (&["region_code"], &[]),
    }
}

/// A record refused by region: a stable code and a message, Chinese first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `out_of_scope`, `region_mismatch` or `region_invalid`.
    pub code: &'static str,
    /// What is wrong, naming the field and the codes.
    pub message: String,
}

/// One region a record states: the field it is in and the code it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stated<'a> {
    /// A GB/T 2260 division code of the record, in field `.0`.
    Division(&'a str, &'a str),
    /// A USCC of the record, in field `.0`: its region is positions 3–8.
    Uscc(&'a str, &'a str),
    /// A division code the sender states for a record that states none of its own (a
    /// system's own record without a division code or USCC): it decides only then, and must
    /// agree with any region the record does state.
    Claimed(&'a str, &'a str),
}

/// The code in force for a reported division code (a withdrawn one resolved; an unknown one
/// as it is, for the hub to judge), or `None` when it is not six digits.
fn in_force(code: &str) -> Option<String> {
    match divisions::resolve(code) {
        Resolution::Current(d) => Some(d.code.to_owned()),
        Resolution::Superseded { current, .. } => Some(current.code.to_owned()),
        Resolution::Unknown => Some(code.to_owned()),
        Resolution::Malformed => None,
    }
}

/// How specific a code is: 2 for a county, 1 for a prefecture, 0 for a province.
fn depth(code: &str) -> usize {
    match (&code[2..4], &code[4..6]) {
        ("00", "00") => 0,
        (_, "00") => 1,
        _ => 2,
    }
}

/// Decides whether a reporter at `level` for `reporter` may submit a record stating
/// `regions`: the region the record belongs to (the most specific of its own regions, in
/// force; a claimed one only when it has none), or why it is refused.
pub fn decide(level: Level, reporter: &str, regions: &[Stated<'_>]) -> Result<String, Refused> {
    // (field, code in force, whether the record itself states it)
    let mut codes: Vec<(&str, String, bool)> = Vec::with_capacity(regions.len());
    for stated in regions {
        let (field, code, own) = match *stated {
            Stated::Division(field, code) => (field, Some(code.trim().to_owned()), true),
            Stated::Claimed(field, code) => (field, Some(code.trim().to_owned()), false),
            Stated::Uscc(field, uscc) => (
                field,
                schemas::ids::uscc_region(&schemas::ids::canonical_code(uscc)).map(str::to_owned),
                true,
            ),
        };
        let Some(code) = code.as_deref().and_then(in_force) else {
            return Err(Refused {
                code: "region_invalid",
                message: format!(
                    "字段「{field}」中没有有效的行政区划代码 (field `{field}` holds no valid GB/T \
                     2260 code)"
                ),
            });
        };
        if let Some((other_field, other, _)) =
            codes.iter().find(|(_, c, _)| !divisions::nested(c, &code))
        {
            return Err(Refused {
                code: "region_mismatch",
                message: format!(
                    "记录的行政区划互相矛盾：「{other_field}」为 {other}，「{field}」为 {code} \
                     (the record's regions disagree: `{other_field}` says {other}, `{field}` \
                     says {code})"
                ),
            });
        }
        codes.push((field, code, own));
    }
    let has_own = codes.iter().any(|(_, _, own)| *own);
    let Some((_, region, _)) = codes
        .into_iter()
        .filter(|(_, _, own)| *own || !has_own)
        .max_by_key(|(_, c, _)| depth(c))
    else {
        return Err(Refused {
            code: "region_invalid",
            message: "记录没有行政区划 (the record states no region)".to_owned(),
        });
    };
    if !in_scope(level, reporter, &region) {
        return Err(Refused {
            code: "out_of_scope",
            message: format!(
                "记录所属行政区划 {region} 不在 {reporter} 的报送范围内 (region {region} is outside \
                 what {reporter} may submit)"
            ),
        });
    }
    Ok(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use Level::{County, Prefecture, Province};
        let cases = [
            (County, "530114", "530114", true),
            (County, "530114", "530102", false),
            (County, "530114", "530100", false),
            (County, "530114", "530000", false),
            (Prefecture, "530100", "530100", true),
            (Prefecture, "530100", "530114", true),
            (Prefecture, "530100", "532901", false),
            (Prefecture, "530100", "530000", false),
            (Province, "530000", "533103", true),
            (Province, "530000", "530000", true),
            (Province, "530000", "500154", false),
            // Municipalities: counties under the dummy prefectures 5001 and 5002.
            (Province, "500000", "500154", true),
            (Province, "500000", "500229", true),
            (Prefecture, "150100", "150121", true),
            (County, "152502", "152502", true),
            (County, "530114", "53011", false),
            (County, "530114", "53011X", false),
            (Province, "530000", "", false),
        ];
        for (level, reporter, record, expected) in cases {
            assert_eq!(
                in_scope(level, reporter, record),
                expected,
                "{level:?} {reporter} submitting {record}"
            );
        }
    }

    #[test]
    fn the_record_itself_decides() {
        use Level::{County, Prefecture, Province};
        use Stated::{Claimed, Division, Uscc};
        let chenggong = "11530114015162553X";
        let kunming = "11530100015162553X";
        let kaizhou = "11500154015162553X";
        let old_chenggong = "11530121015162553X";
        /// Reporter level and region, the record's stated regions, the region or refusal code.
        type Case<'a> = (Level, &'a str, &'a [Stated<'a>], Result<&'a str, &'a str>);
        let cases: [Case<'_>; 19] = [
            (
                County,
                "530114",
                &[Division("region_code", "530114"), Uscc("uscc", chenggong)],
                Ok("530114"),
            ),
            (
                County,
                "530114",
                &[Uscc("owner_uscc", chenggong)],
                Ok("530114"),
            ),
            // A USCC of Chongqing pushed by a Yunnan county: the forged region of issue 10.
            (
                County,
                "530114",
                &[Division("region_code", "530114"), Uscc("uscc", kaizhou)],
                Err("region_mismatch"),
            ),
            (
                County,
                "530114",
                &[Uscc("owner_uscc", kaizhou)],
                Err("out_of_scope"),
            ),
            // Registered by the city, located in the county: nested, the county decides.
            (
                County,
                "530114",
                &[Division("region_code", "530114"), Uscc("uscc", kunming)],
                Ok("530114"),
            ),
            (
                County,
                "530114",
                &[Uscc("uscc", kunming)],
                Err("out_of_scope"),
            ),
            (Prefecture, "530100", &[Uscc("uscc", kunming)], Ok("530100")),
            // A claim beside a record with only a USCC cannot narrow it into the county.
            (
                County,
                "530114",
                &[
                    Claimed("region_code", "530114"),
                    Uscc("owner_uscc", kunming),
                ],
                Err("out_of_scope"),
            ),
            (
                County,
                "530114",
                &[
                    Claimed("region_code", "530114"),
                    Uscc("owner_uscc", chenggong),
                ],
                Ok("530114"),
            ),
            // A record with no region of its own (a GPS point): the claim decides.
            (
                County,
                "530114",
                &[Claimed("region_code", "530114")],
                Ok("530114"),
            ),
            // A vehicle of a unit registered by the city, its own division code in the county:
            // the more specific, so the county decides.
            (
                County,
                "530114",
                &[
                    Division("region_code", "530114"),
                    Uscc("owner_uscc", kunming),
                ],
                Ok("530114"),
            ),
            // A GPS point with its division code: that is its region.
            (
                County,
                "530114",
                &[Division("region_code", "530102")],
                Err("out_of_scope"),
            ),
            // A USCC issued under a withdrawn code (呈贡县 530121 → 呈贡区 530114).
            (
                County,
                "530114",
                &[
                    Division("region_code", "530114"),
                    Uscc("uscc", old_chenggong),
                ],
                Ok("530114"),
            ),
            (
                County,
                "530114",
                &[Division("region_code", "530121")],
                Ok("530114"),
            ),
            (
                Province,
                "530000",
                &[Division("region_code", "530102"), Uscc("uscc", chenggong)],
                Err("region_mismatch"),
            ),
            (
                Province,
                "530000",
                &[Division("region_code", "5301")],
                Err("region_invalid"),
            ),
            (
                Province,
                "530000",
                &[Uscc("uscc", "11")],
                Err("region_invalid"),
            ),
            (Province, "530000", &[], Err("region_invalid")),
            // Full-width and spaced USCCs are read as the hub reads them.
            (
                County,
                "530114",
                &[Uscc("uscc", "１１５３０１１４ 015162553X")],
                Ok("530114"),
            ),
        ];
        for (level, reporter, regions, expected) in cases {
            let got = decide(level, reporter, regions);
            let got = got.as_deref().map_err(|e| e.code);
            assert_eq!(got, expected, "{level:?} {reporter} submitting {regions:?}");
        }
    }
}
