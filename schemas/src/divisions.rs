//! Administrative division codes (行政区划代码, GB/T 2260) with their history: which codes are
//! in force, which were withdrawn, and which code in force took over a withdrawn one (530121
//! 呈贡县 → 530114 呈贡区).
//!
//! The table is data, `schemas/data/gb2260.csv` (its header names the sources), embedded
//! with `include_str!` and parsed once at first use; every string handed out borrows from
//! the embedded text, so lookups allocate nothing.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::records::RegionLevel;

const TABLE: &str = include_str!("../data/gb2260.csv");

/// One row of the code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Division {
    /// Six-digit code (行政区划代码).
    pub code: &'static str,
    /// Name (行政区划名称): the current one, or the last one a withdrawn code had.
    pub name: &'static str,
    /// Level, from the code's shape as issued.
    pub level: RegionLevel,
    /// The enclosing division as the code was issued; `None` for provinces.
    pub parent: Option<&'static str>,
    /// `None` while in force; else the last revision (`YYYYMM`) of the sources that lists it.
    pub last_listed: Option<&'static str>,
    /// For a withdrawn code: the code in force that took over its area, if one is known.
    pub successor: Option<&'static str>,
}

impl Division {
    /// Whether the code is in force (现行).
    pub fn in_force(&self) -> bool {
        self.last_listed.is_none()
    }
}

/// What a reported code stands for today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The code is in force.
    Current(&'static Division),
    /// The code was withdrawn; `current` is the division in force that now covers its area —
    /// its successor, or, when none is known, the nearest enclosing division in force.
    Superseded {
        /// The withdrawn code's row.
        reported: &'static Division,
        /// The division in force it maps to.
        current: &'static Division,
    },
    /// Six digits, but not a code in any revision the table holds.
    Unknown,
    /// Not six ASCII digits.
    Malformed,
}

struct Table {
    rows: Vec<Division>,
    by_code: HashMap<&'static str, usize>,
}

static DIVISIONS: LazyLock<Table> = LazyLock::new(|| parse(TABLE));

fn level(text: &str) -> RegionLevel {
    match text {
        "PROVINCE" => RegionLevel::Province,
        "PREFECTURE" => RegionLevel::Prefecture,
        "COUNTY" => RegionLevel::County,
        // The table is ours and tested; a typo shows up in `table_is_consistent`.
        other => panic!("gb2260.csv: unknown level {other:?}"),
    }
}

fn parse(text: &'static str) -> Table {
    let non_empty = |s: &'static str| (!s.is_empty()).then_some(s);
    let rows: Vec<Division> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("code,") && !l.is_empty())
        .map(|line| {
            let f: Vec<&'static str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "gb2260.csv: {line}");
            Division {
                code: f[0],
                name: f[1],
                level: level(f[2]),
                parent: non_empty(f[3]),
                last_listed: non_empty(f[4]),
                successor: non_empty(f[5]),
            }
        })
        .collect();
    let by_code = rows.iter().enumerate().map(|(i, d)| (d.code, i)).collect();
    Table { rows, by_code }
}

/// Every row: codes in force first (by code), then withdrawn codes (by code).
pub fn all() -> &'static [Division] {
    &DIVISIONS.rows
}

/// The row of `code`, in force or withdrawn.
pub fn lookup(code: &str) -> Option<&'static Division> {
    let t = &*DIVISIONS;
    t.by_code.get(code).map(|&i| &t.rows[i])
}

/// The divisions in force directly under `code`, in code order.
pub fn children(code: &str) -> impl Iterator<Item = &'static Division> {
    let code = code.to_owned();
    all()
        .iter()
        .filter(move |d| d.in_force() && d.parent == Some(code.as_str()))
}

/// What a reported six-digit code stands for today (see [`Resolution`]).
pub fn resolve(code: &str) -> Resolution {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Resolution::Malformed;
    }
    let Some(reported) = lookup(code) else {
        return Resolution::Unknown;
    };
    if reported.in_force() {
        return Resolution::Current(reported);
    }
    // Successors and parents lead to a code in force within a few steps (a county's parent
    // prefecture, then its province); the bound only guards against a cycle in the data.
    let mut at = reported;
    for _ in 0..8 {
        let next = at.successor.or(at.parent).and_then(lookup);
        match next {
            Some(d) if d.in_force() => {
                return Resolution::Superseded {
                    reported,
                    current: d,
                };
            }
            Some(d) => at = d,
            None => break,
        }
    }
    Resolution::Unknown
}

/// How deep a six-digit code's shape is: 0 for a province (`PP0000`), 1 for a prefecture
/// (`PPCC00`), 2 for a county.
fn depth(code: &str) -> usize {
    match (code.get(2..4), code.get(4..6)) {
        (Some("00"), Some("00")) => 0,
        (_, Some("00")) => 1,
        _ => 2,
    }
}

/// Whether one of two six-digit codes lies within the other, or they are equal, by their
/// shape (`PPCCDD`): 530114 lies within 530100 and 530000, not within 530102 or 500000. Codes
/// should be in force (see [`resolve`]): a withdrawn code's area is its successor's.
pub fn nested(a: &str, b: &str) -> bool {
    let (outer, inner) = if depth(a) <= depth(b) { (a, b) } else { (b, a) };
    let shared = match depth(outer) {
        0 => 2,
        1 => 4,
        _ => 6,
    };
    outer.len() == 6 && inner.len() == 6 && outer.get(..shared) == inner.get(..shared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_consistent() {
        let mut seen = HashSet::new();
        let mut in_force = [0; 3];
        for d in all() {
            assert!(seen.insert(d.code), "duplicate {}", d.code);
            assert!(
                matches!(
                    resolve(d.code),
                    Resolution::Current(_) | Resolution::Superseded { .. }
                ),
                "{}",
                d.code
            );
            if let Some(p) = d.parent {
                assert!(lookup(p).is_some(), "{}: parent {p} missing", d.code);
                assert_eq!(&p[..2], &d.code[..2], "{}", d.code);
            }
            if let Some(s) = d.successor {
                let s = lookup(s).unwrap_or_else(|| panic!("{}: successor missing", d.code));
                assert!(s.in_force(), "{}", d.code);
            }
            if d.in_force() {
                in_force[d.level as usize] += 1;
            }
        }
        // NBS 2023: 31 provinces (+ 台湾, 香港, 澳门), 342 prefectures, 2,978 counties less the
        // 124 statistical functional zones and 东莞/中山/儋州 listed as their own county.
        assert_eq!(in_force[RegionLevel::Province as usize], 34);
        assert_eq!(in_force[RegionLevel::Prefecture as usize], 342);
        assert!(
            in_force[RegionLevel::County as usize] > 2800,
            "{in_force:?}"
        );
    }

    #[test]
    fn resolution_table() {
        // (reported, expected current code, its name); DOMAIN.md §3's examples first.
        for (code, current, name) in [
            ("530102", Some("530102"), "五华区"),
            ("530114", Some("530114"), "呈贡区"),
            ("530121", Some("530114"), "呈贡区"),
            ("530122", Some("530115"), "晋宁区"),
            ("530522", Some("530581"), "腾冲市"),
            ("532331", Some("532302"), "禄丰市"),
            ("500234", Some("500154"), "开州区"),
            ("500228", Some("500155"), "梁平区"),
            ("533103", Some("533103"), "芒市"),
            ("530100", Some("530100"), "昆明市"),
            ("532900", Some("532900"), "大理白族自治州"),
            ("530581", Some("530581"), "腾冲市"),
            ("500101", Some("500101"), "万州区"),
            ("500103", Some("500103"), "渝中区"),
            ("500112", Some("500112"), "渝北区"),
            ("500229", Some("500229"), "城口县"),
            ("150100", Some("150100"), "呼和浩特市"),
            ("150121", Some("150121"), "土默特左旗"),
            ("150600", Some("150600"), "鄂尔多斯市"),
            ("152500", Some("152500"), "锡林郭勒盟"),
            ("152502", Some("152502"), "锡林浩特市"),
            ("441900", Some("441900"), "东莞市"),
            ("710000", Some("710000"), "台湾省"),
            // Whole prefectures renamed: 思茅地区 → 普洱市, 乌兰察布盟 → 乌兰察布市.
            ("532700", Some("530800"), "普洱市"),
            ("152601", Some("150902"), "集宁区"),
            // A withdrawn 市辖区 placeholder maps to its prefecture.
            ("530101", Some("530100"), "昆明市"),
            ("530199", None, ""),
        ] {
            let got = match resolve(code) {
                Resolution::Current(d) => Some((d.code, d.name)),
                Resolution::Superseded { current, .. } => Some((current.code, current.name)),
                _ => None,
            };
            assert_eq!(got, current.map(|c| (c, name)), "{code}");
        }
        assert_eq!(resolve("53012"), Resolution::Malformed);
        assert_eq!(resolve("53O121"), Resolution::Malformed);
        assert_eq!(children("530100").count(), 14);
        assert_eq!(children("500000").count(), 2);
    }

    #[test]
    fn nesting_table() {
        for (a, b, expected) in [
            ("530114", "530114", true),
            ("530114", "530100", true),
            ("530100", "530114", true),
            ("530114", "530000", true),
            ("530000", "533103", true),
            ("530114", "530102", false),
            ("530100", "532900", false),
            ("530114", "500154", false),
            ("530000", "500000", false),
            // Municipalities: counties under the dummy prefectures 5001 and 5002.
            ("500154", "500000", true),
            ("500154", "500100", true),
            ("500229", "500100", false),
            ("53011", "530100", false),
        ] {
            assert_eq!(nested(a, b), expected, "{a} {b}");
        }
    }
}
