//! The administrative divisions (GB/T 2260) the simulator covers: Yunnan (53), Chongqing (50)
//! and Inner Mongolia (15), every prefecture and a realistic set of counties (most of them).
//! Codes and official names come from the shared code table ([`schemas::divisions`], NBS
//! 2023); this module holds only what is the simulator's own: which counties it generates, the
//! short names institutions are named after, the licence-plate authority letters and a bounding
//! box per prefecture.
//!
//! Plate letters are from GA 36 assignments as commonly published (⚠ one secondary source per
//! DOMAIN.md §3: 云A 昆明 … 蒙K 鄂尔多斯; Chongqing's letters by district group). Centres are
//! the prefecture seats, rounded; boxes are deliberately smaller than the prefecture so every
//! generated point lies inside it.

use std::sync::LazyLock;

use crate::geo::BBox;

/// A province-level division.
#[derive(Debug)]
pub struct Province {
    /// Six-digit code, `PP0000`.
    pub code: &'static str,
    /// Official name (云南省, 重庆市, 内蒙古自治区).
    pub name: &'static str,
    /// Name used in institution names (云南省, 重庆市, 内蒙古自治区).
    pub short_name: &'static str,
    /// The plate's province character (云, 渝, 蒙).
    pub plate_char: char,
    /// Whether this is a municipality (直辖市) whose prefectures are dummies (`PP01`, `PP02`).
    pub municipality: bool,
    /// Its prefectures.
    pub prefectures: &'static [Prefecture],
}

/// A prefecture-level division (市/州/盟), or a municipality's dummy prefecture.
#[derive(Debug)]
pub struct Prefecture {
    /// Six-digit code, `PPCC00`.
    pub code: &'static str,
    /// Official name.
    pub name: &'static str,
    /// Name used in institution names (e.g. 大理州 for 大理白族自治州).
    pub short_name: &'static str,
    /// Plate authority letters issued here (the first is the most common).
    pub plate_letters: &'static str,
    /// Bounding box for tracks and building locations.
    pub bbox: BBox,
    /// Its counties: `(code, name, plate letters override or "")`.
    pub counties: &'static [(&'static str, &'static str, &'static str)],
}

/// What the simulator adds to a province of the code table.
struct ProvinceSpec {
    code: &'static str,
    short_name: &'static str,
    plate_char: char,
    municipality: bool,
    prefectures: &'static [PrefectureSpec],
}

/// What the simulator adds to a prefecture: its counties are `(code, plate letters override
/// or "")`.
struct PrefectureSpec {
    code: &'static str,
    short_name: &'static str,
    plate_letters: &'static str,
    bbox: BBox,
    counties: &'static [(&'static str, &'static str)],
}

const fn b(lat: f64, lon: f64, half: f64) -> BBox {
    BBox::around(lat, lon, half)
}

/// All provinces the simulator generates, in a fixed order, named from the code table.
pub static PROVINCES: LazyLock<[Province; 3]> =
    LazyLock::new(|| [YUNNAN, CHONGQING, INNER_MONGOLIA].map(|p| p.build()));

/// The official name of a code in force. The simulator's codes are all in the table (tested),
/// so a miss is a bug in the specs below.
fn official_name(code: &str) -> &'static str {
    match schemas::divisions::lookup(code) {
        Some(d) if d.in_force() => d.name,
        _ => panic!("division {code} is not in force in schemas/data/gb2260.csv"),
    }
}

impl ProvinceSpec {
    fn build(self) -> Province {
        let prefectures: Vec<Prefecture> = self
            .prefectures
            .iter()
            .map(|f| Prefecture {
                code: f.code,
                name: official_name(f.code),
                short_name: f.short_name,
                plate_letters: f.plate_letters,
                bbox: f.bbox,
                counties: Vec::leak(
                    f.counties
                        .iter()
                        .map(|&(code, letters)| (code, official_name(code), letters))
                        .collect(),
                ),
            })
            .collect();
        Province {
            code: self.code,
            name: official_name(self.code),
            short_name: self.short_name,
            plate_char: self.plate_char,
            municipality: self.municipality,
            // Built once for the process's lifetime (a LazyLock), so leaking is the point.
            prefectures: Vec::leak(prefectures),
        }
    }
}

const YUNNAN: ProvinceSpec = ProvinceSpec {
    code: "530000",
    short_name: "云南省",
    plate_char: '云',
    municipality: false,
    prefectures: &[
        PrefectureSpec {
            code: "530100",
            short_name: "昆明市",
            plate_letters: "A",
            bbox: b(25.04, 102.71, 0.25),
            counties: &[
                ("530102", ""),
                ("530103", ""),
                ("530111", ""),
                ("530112", ""),
                ("530113", ""),
                ("530114", ""),
                ("530115", ""),
                ("530124", ""),
                ("530125", ""),
                ("530126", ""),
                ("530127", ""),
                ("530128", ""),
                ("530129", ""),
                ("530181", ""),
            ],
        },
        PrefectureSpec {
            code: "530300",
            short_name: "曲靖市",
            plate_letters: "D",
            bbox: b(25.49, 103.80, 0.2),
            counties: &[
                ("530302", ""),
                ("530303", ""),
                ("530304", ""),
                ("530322", ""),
                ("530323", ""),
                ("530324", ""),
                ("530325", ""),
                ("530326", ""),
                ("530381", ""),
            ],
        },
        PrefectureSpec {
            code: "530400",
            short_name: "玉溪市",
            plate_letters: "F",
            bbox: b(24.35, 102.54, 0.2),
            counties: &[
                ("530402", ""),
                ("530403", ""),
                ("530423", ""),
                ("530424", ""),
                ("530425", ""),
                ("530426", ""),
                ("530481", ""),
            ],
        },
        PrefectureSpec {
            code: "530500",
            short_name: "保山市",
            plate_letters: "M",
            bbox: b(25.11, 99.16, 0.2),
            counties: &[
                ("530502", ""),
                ("530521", ""),
                ("530523", ""),
                ("530524", ""),
                ("530581", ""),
            ],
        },
        PrefectureSpec {
            code: "530600",
            short_name: "昭通市",
            plate_letters: "C",
            bbox: b(27.34, 103.72, 0.2),
            counties: &[
                ("530602", ""),
                ("530621", ""),
                ("530622", ""),
                ("530623", ""),
                ("530627", ""),
                ("530628", ""),
                ("530681", ""),
            ],
        },
        PrefectureSpec {
            code: "530700",
            short_name: "丽江市",
            plate_letters: "P",
            bbox: b(26.86, 100.23, 0.2),
            counties: &[
                ("530702", ""),
                ("530721", ""),
                ("530722", ""),
                ("530723", ""),
                ("530724", ""),
            ],
        },
        PrefectureSpec {
            code: "530800",
            short_name: "普洱市",
            plate_letters: "J",
            bbox: b(22.78, 100.97, 0.2),
            counties: &[
                ("530802", ""),
                ("530821", ""),
                ("530822", ""),
                ("530823", ""),
                ("530828", ""),
                ("530829", ""),
            ],
        },
        PrefectureSpec {
            code: "530900",
            short_name: "临沧市",
            plate_letters: "S",
            bbox: b(23.88, 100.09, 0.2),
            counties: &[
                ("530902", ""),
                ("530921", ""),
                ("530922", ""),
                ("530923", ""),
                ("530924", ""),
                ("530927", ""),
            ],
        },
        PrefectureSpec {
            code: "532300",
            short_name: "楚雄州",
            plate_letters: "E",
            bbox: b(25.04, 101.53, 0.2),
            counties: &[
                ("532301", ""),
                ("532302", ""),
                ("532322", ""),
                ("532323", ""),
                ("532324", ""),
                ("532325", ""),
                ("532326", ""),
                ("532328", ""),
                ("532329", ""),
            ],
        },
        PrefectureSpec {
            code: "532500",
            short_name: "红河州",
            plate_letters: "G",
            bbox: b(23.36, 103.38, 0.2),
            counties: &[
                ("532501", ""),
                ("532502", ""),
                ("532503", ""),
                ("532504", ""),
                ("532524", ""),
                ("532525", ""),
                ("532527", ""),
                ("532528", ""),
                ("532532", ""),
            ],
        },
        PrefectureSpec {
            code: "532600",
            short_name: "文山州",
            plate_letters: "H",
            bbox: b(23.37, 104.24, 0.2),
            counties: &[
                ("532601", ""),
                ("532622", ""),
                ("532623", ""),
                ("532624", ""),
                ("532625", ""),
                ("532626", ""),
                ("532627", ""),
                ("532628", ""),
            ],
        },
        PrefectureSpec {
            code: "532800",
            short_name: "西双版纳州",
            plate_letters: "K",
            bbox: b(22.00, 100.80, 0.15),
            counties: &[("532801", ""), ("532822", ""), ("532823", "")],
        },
        PrefectureSpec {
            code: "532900",
            short_name: "大理州",
            plate_letters: "L",
            bbox: b(25.61, 100.27, 0.2),
            counties: &[
                ("532901", ""),
                ("532922", ""),
                ("532923", ""),
                ("532924", ""),
                ("532925", ""),
                ("532928", ""),
                ("532929", ""),
                ("532930", ""),
                ("532931", ""),
                ("532932", ""),
            ],
        },
        PrefectureSpec {
            code: "533100",
            short_name: "德宏州",
            plate_letters: "N",
            bbox: b(24.43, 98.58, 0.15),
            counties: &[
                ("533102", ""),
                ("533103", ""),
                ("533122", ""),
                ("533123", ""),
                ("533124", ""),
            ],
        },
        PrefectureSpec {
            code: "533300",
            short_name: "怒江州",
            plate_letters: "Q",
            bbox: b(25.82, 98.85, 0.1),
            counties: &[
                ("533301", ""),
                ("533323", ""),
                ("533324", ""),
                ("533325", ""),
            ],
        },
        PrefectureSpec {
            code: "533400",
            short_name: "迪庆州",
            plate_letters: "R",
            bbox: b(27.82, 99.71, 0.15),
            counties: &[("533401", ""), ("533422", ""), ("533423", "")],
        },
    ],
};

const CHONGQING: ProvinceSpec = ProvinceSpec {
    code: "500000",
    short_name: "重庆市",
    plate_char: '渝',
    municipality: true,
    prefectures: &[
        // Plate letters by district group (⚠ commonly published: A/B/D 主城, C 永川片区,
        // F 万州片区, G 涪陵片区, H 黔江片区).
        PrefectureSpec {
            code: "500100",
            short_name: "重庆市",
            plate_letters: "ABD",
            bbox: b(29.56, 106.55, 0.35),
            counties: &[
                ("500101", "F"),
                ("500102", "G"),
                ("500103", "AB"),
                ("500104", "AB"),
                ("500105", "AB"),
                ("500106", "AB"),
                ("500107", "AB"),
                ("500108", "AB"),
                ("500109", "AB"),
                ("500110", "AB"),
                ("500111", "C"),
                ("500112", "ABD"),
                ("500113", "AB"),
                ("500114", "H"),
                ("500115", "AB"),
                ("500116", "C"),
                ("500117", "AB"),
                ("500118", "C"),
                ("500119", "G"),
                ("500120", "AB"),
                ("500151", "C"),
                ("500152", "C"),
                ("500153", "C"),
                ("500154", "F"),
                ("500155", "F"),
                ("500156", "G"),
            ],
        },
        PrefectureSpec {
            code: "500200",
            short_name: "重庆市",
            plate_letters: "F",
            bbox: b(30.60, 108.40, 0.3),
            counties: &[
                ("500229", "F"),
                ("500230", "G"),
                ("500231", "G"),
                ("500233", "F"),
                ("500235", "F"),
                ("500236", "F"),
                ("500237", "F"),
                ("500238", "F"),
                ("500240", "H"),
                ("500241", "H"),
                ("500242", "H"),
                ("500243", "H"),
            ],
        },
    ],
};

const INNER_MONGOLIA: ProvinceSpec = ProvinceSpec {
    code: "150000",
    short_name: "内蒙古自治区",
    plate_char: '蒙',
    municipality: false,
    prefectures: &[
        PrefectureSpec {
            code: "150100",
            short_name: "呼和浩特市",
            plate_letters: "A",
            bbox: b(40.84, 111.75, 0.25),
            counties: &[
                ("150102", ""),
                ("150103", ""),
                ("150104", ""),
                ("150105", ""),
                ("150121", ""),
                ("150122", ""),
                ("150123", ""),
                ("150124", ""),
                ("150125", ""),
            ],
        },
        PrefectureSpec {
            code: "150200",
            short_name: "包头市",
            plate_letters: "B",
            bbox: b(40.66, 109.84, 0.25),
            counties: &[
                ("150202", ""),
                ("150203", ""),
                ("150204", ""),
                ("150205", ""),
                ("150206", ""),
                ("150207", ""),
                ("150221", ""),
                ("150222", ""),
                ("150223", ""),
            ],
        },
        PrefectureSpec {
            code: "150300",
            short_name: "乌海市",
            plate_letters: "C",
            bbox: b(39.66, 106.79, 0.1),
            counties: &[("150302", ""), ("150303", ""), ("150304", "")],
        },
        PrefectureSpec {
            code: "150400",
            short_name: "赤峰市",
            plate_letters: "D",
            bbox: b(42.26, 118.89, 0.3),
            counties: &[
                ("150402", ""),
                ("150403", ""),
                ("150404", ""),
                ("150421", ""),
                ("150422", ""),
                ("150423", ""),
                ("150424", ""),
                ("150425", ""),
                ("150426", ""),
                ("150428", ""),
                ("150429", ""),
                ("150430", ""),
            ],
        },
        PrefectureSpec {
            code: "150500",
            short_name: "通辽市",
            plate_letters: "G",
            bbox: b(43.65, 122.24, 0.3),
            counties: &[
                ("150502", ""),
                ("150521", ""),
                ("150522", ""),
                ("150523", ""),
                ("150524", ""),
                ("150525", ""),
                ("150526", ""),
                ("150581", ""),
            ],
        },
        PrefectureSpec {
            code: "150600",
            short_name: "鄂尔多斯市",
            plate_letters: "K",
            bbox: b(39.61, 109.78, 0.3),
            counties: &[
                ("150602", ""),
                ("150603", ""),
                ("150621", ""),
                ("150622", ""),
                ("150623", ""),
                ("150624", ""),
                ("150625", ""),
                ("150626", ""),
                ("150627", ""),
            ],
        },
        PrefectureSpec {
            code: "150700",
            short_name: "呼伦贝尔市",
            plate_letters: "E",
            bbox: b(49.21, 119.77, 0.3),
            counties: &[
                ("150702", ""),
                ("150703", ""),
                ("150721", ""),
                ("150722", ""),
                ("150723", ""),
                ("150724", ""),
                ("150725", ""),
                ("150726", ""),
                ("150727", ""),
                ("150781", ""),
                ("150782", ""),
                ("150783", ""),
                ("150784", ""),
                ("150785", ""),
            ],
        },
        PrefectureSpec {
            code: "150800",
            short_name: "巴彦淖尔市",
            plate_letters: "L",
            bbox: b(40.74, 107.39, 0.25),
            counties: &[
                ("150802", ""),
                ("150821", ""),
                ("150822", ""),
                ("150823", ""),
                ("150824", ""),
                ("150825", ""),
                ("150826", ""),
            ],
        },
        PrefectureSpec {
            code: "150900",
            short_name: "乌兰察布市",
            plate_letters: "J",
            bbox: b(41.03, 113.13, 0.25),
            counties: &[
                ("150902", ""),
                ("150921", ""),
                ("150922", ""),
                ("150923", ""),
                ("150924", ""),
                ("150925", ""),
                ("150926", ""),
                ("150927", ""),
                ("150928", ""),
                ("150929", ""),
                ("150981", ""),
            ],
        },
        PrefectureSpec {
            code: "152200",
            short_name: "兴安盟",
            plate_letters: "F",
            bbox: b(46.08, 122.04, 0.25),
            counties: &[
                ("152201", ""),
                ("152202", ""),
                ("152221", ""),
                ("152222", ""),
                ("152223", ""),
                ("152224", ""),
            ],
        },
        PrefectureSpec {
            code: "152500",
            short_name: "锡林郭勒盟",
            plate_letters: "H",
            bbox: b(43.93, 116.09, 0.3),
            counties: &[
                ("152501", ""),
                ("152502", ""),
                ("152522", ""),
                ("152523", ""),
                ("152524", ""),
                ("152525", ""),
                ("152526", ""),
                ("152527", ""),
                ("152528", ""),
                ("152529", ""),
                ("152530", ""),
                ("152531", ""),
            ],
        },
        PrefectureSpec {
            code: "152900",
            short_name: "阿拉善盟",
            plate_letters: "M",
            bbox: b(38.85, 105.73, 0.25),
            counties: &[("152921", ""), ("152922", ""), ("152923", "")],
        },
    ],
};

/// The level of a division or of the system that reports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// 省/自治区/直辖市.
    Province,
    /// 市/州/盟.
    Prefecture,
    /// 县/区/旗/县级市.
    County,
}

/// Looks up the official name of a code in force (the shared GB/T 2260 table).
pub fn name_of(code: &str) -> Option<&'static str> {
    schemas::divisions::lookup(code)
        .filter(|d| d.in_force())
        .map(|d| d.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_well_formed_unique_and_nested() {
        let mut seen = HashSet::new();
        let mut counties = 0;
        for p in PROVINCES.iter() {
            assert!(p.code.ends_with("0000"));
            assert!(seen.insert(p.code));
            for f in p.prefectures {
                assert_eq!(&f.code[..2], &p.code[..2], "{}", f.code);
                assert!(f.code.ends_with("00") && !f.code.ends_with("0000"));
                assert!(seen.insert(f.code));
                assert!(!f.plate_letters.is_empty());
                for (c, name, letters) in f.counties {
                    assert_eq!(&c[..4], &f.code[..4], "{c}");
                    assert_eq!(c.len(), 6);
                    assert!(!c.ends_with("00") && !name.is_empty());
                    assert!(letters.chars().all(|l| l.is_ascii_uppercase()));
                    assert!(seen.insert(c), "duplicate {c}");
                    let row = schemas::divisions::lookup(c).unwrap();
                    assert_eq!(row.parent, Some(f.code), "{c} lies in another prefecture");
                    counties += 1;
                }
            }
        }
        assert!(counties > 250, "{counties}");
        for (code, name) in [
            ("530102", "五华区"),
            ("530114", "呈贡区"),
            ("530115", "晋宁区"),
            ("530581", "腾冲市"),
            ("532302", "禄丰市"),
            ("533103", "芒市"),
            ("500101", "万州区"),
            ("500103", "渝中区"),
            ("500112", "渝北区"),
            ("500154", "开州区"),
            ("500155", "梁平区"),
            ("500229", "城口县"),
            ("150102", "新城区"),
            ("150121", "土默特左旗"),
            ("150602", "东胜区"),
            ("152502", "锡林浩特市"),
            ("532900", "大理白族自治州"),
            ("152500", "锡林郭勒盟"),
        ] {
            assert_eq!(name_of(code), Some(name), "{code}");
        }
    }
}
