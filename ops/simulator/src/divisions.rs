//! The administrative divisions (GB/T 2260) the simulator covers: Yunnan (53), Chongqing (50)
//! and Inner Mongolia (15), every prefecture and a realistic set of counties (most of them;
//! codes as of the NBS 2023 release), with the licence-plate authority letters and a
//! bounding box per prefecture.
//!
//! Plate letters are from GA 36 assignments as commonly published (⚠ one secondary source per
//! DOMAIN.md §3: 云A 昆明 … 蒙K 鄂尔多斯; Chongqing's letters by district group). Centres are
//! the prefecture seats, rounded; boxes are deliberately smaller than the prefecture so every
//! generated point lies inside it.

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

const fn b(lat: f64, lon: f64, half: f64) -> BBox {
    BBox::around(lat, lon, half)
}

/// All provinces the simulator generates, in a fixed order.
pub static PROVINCES: [Province; 3] = [YUNNAN, CHONGQING, INNER_MONGOLIA];

const YUNNAN: Province = Province {
    code: "530000",
    name: "云南省",
    short_name: "云南省",
    plate_char: '云',
    municipality: false,
    prefectures: &[
        Prefecture {
            code: "530100",
            name: "昆明市",
            short_name: "昆明市",
            plate_letters: "A",
            bbox: b(25.04, 102.71, 0.25),
            counties: &[
                ("530102", "五华区", ""),
                ("530103", "盘龙区", ""),
                ("530111", "官渡区", ""),
                ("530112", "西山区", ""),
                ("530113", "东川区", ""),
                ("530114", "呈贡区", ""),
                ("530115", "晋宁区", ""),
                ("530124", "富民县", ""),
                ("530125", "宜良县", ""),
                ("530126", "石林彝族自治县", ""),
                ("530127", "嵩明县", ""),
                ("530128", "禄劝彝族苗族自治县", ""),
                ("530129", "寻甸回族彝族自治县", ""),
                ("530181", "安宁市", ""),
            ],
        },
        Prefecture {
            code: "530300",
            name: "曲靖市",
            short_name: "曲靖市",
            plate_letters: "D",
            bbox: b(25.49, 103.80, 0.2),
            counties: &[
                ("530302", "麒麟区", ""),
                ("530303", "沾益区", ""),
                ("530304", "马龙区", ""),
                ("530322", "陆良县", ""),
                ("530323", "师宗县", ""),
                ("530324", "罗平县", ""),
                ("530325", "富源县", ""),
                ("530326", "会泽县", ""),
                ("530381", "宣威市", ""),
            ],
        },
        Prefecture {
            code: "530400",
            name: "玉溪市",
            short_name: "玉溪市",
            plate_letters: "F",
            bbox: b(24.35, 102.54, 0.2),
            counties: &[
                ("530402", "红塔区", ""),
                ("530403", "江川区", ""),
                ("530423", "通海县", ""),
                ("530424", "华宁县", ""),
                ("530425", "易门县", ""),
                ("530426", "峨山彝族自治县", ""),
                ("530481", "澄江市", ""),
            ],
        },
        Prefecture {
            code: "530500",
            name: "保山市",
            short_name: "保山市",
            plate_letters: "M",
            bbox: b(25.11, 99.16, 0.2),
            counties: &[
                ("530502", "隆阳区", ""),
                ("530521", "施甸县", ""),
                ("530523", "龙陵县", ""),
                ("530524", "昌宁县", ""),
                ("530581", "腾冲市", ""),
            ],
        },
        Prefecture {
            code: "530600",
            name: "昭通市",
            short_name: "昭通市",
            plate_letters: "C",
            bbox: b(27.34, 103.72, 0.2),
            counties: &[
                ("530602", "昭阳区", ""),
                ("530621", "鲁甸县", ""),
                ("530622", "巧家县", ""),
                ("530623", "盐津县", ""),
                ("530627", "镇雄县", ""),
                ("530628", "彝良县", ""),
                ("530681", "水富市", ""),
            ],
        },
        Prefecture {
            code: "530700",
            name: "丽江市",
            short_name: "丽江市",
            plate_letters: "P",
            bbox: b(26.86, 100.23, 0.2),
            counties: &[
                ("530702", "古城区", ""),
                ("530721", "玉龙纳西族自治县", ""),
                ("530722", "永胜县", ""),
                ("530723", "华坪县", ""),
                ("530724", "宁蒗彝族自治县", ""),
            ],
        },
        Prefecture {
            code: "530800",
            name: "普洱市",
            short_name: "普洱市",
            plate_letters: "J",
            bbox: b(22.78, 100.97, 0.2),
            counties: &[
                ("530802", "思茅区", ""),
                ("530821", "宁洱哈尼族彝族自治县", ""),
                ("530822", "墨江哈尼族自治县", ""),
                ("530823", "景东彝族自治县", ""),
                ("530828", "澜沧拉祜族自治县", ""),
                ("530829", "西盟佤族自治县", ""),
            ],
        },
        Prefecture {
            code: "530900",
            name: "临沧市",
            short_name: "临沧市",
            plate_letters: "S",
            bbox: b(23.88, 100.09, 0.2),
            counties: &[
                ("530902", "临翔区", ""),
                ("530921", "凤庆县", ""),
                ("530922", "云县", ""),
                ("530923", "永德县", ""),
                ("530924", "镇康县", ""),
                ("530927", "沧源佤族自治县", ""),
            ],
        },
        Prefecture {
            code: "532300",
            name: "楚雄彝族自治州",
            short_name: "楚雄州",
            plate_letters: "E",
            bbox: b(25.04, 101.53, 0.2),
            counties: &[
                ("532301", "楚雄市", ""),
                ("532302", "禄丰市", ""),
                ("532322", "双柏县", ""),
                ("532323", "牟定县", ""),
                ("532324", "南华县", ""),
                ("532325", "姚安县", ""),
                ("532326", "大姚县", ""),
                ("532328", "元谋县", ""),
                ("532329", "武定县", ""),
            ],
        },
        Prefecture {
            code: "532500",
            name: "红河哈尼族彝族自治州",
            short_name: "红河州",
            plate_letters: "G",
            bbox: b(23.36, 103.38, 0.2),
            counties: &[
                ("532501", "个旧市", ""),
                ("532502", "开远市", ""),
                ("532503", "蒙自市", ""),
                ("532504", "弥勒市", ""),
                ("532524", "建水县", ""),
                ("532525", "石屏县", ""),
                ("532527", "泸西县", ""),
                ("532528", "元阳县", ""),
                ("532532", "河口瑶族自治县", ""),
            ],
        },
        Prefecture {
            code: "532600",
            name: "文山壮族苗族自治州",
            short_name: "文山州",
            plate_letters: "H",
            bbox: b(23.37, 104.24, 0.2),
            counties: &[
                ("532601", "文山市", ""),
                ("532622", "砚山县", ""),
                ("532623", "西畴县", ""),
                ("532624", "麻栗坡县", ""),
                ("532625", "马关县", ""),
                ("532626", "丘北县", ""),
                ("532627", "广南县", ""),
                ("532628", "富宁县", ""),
            ],
        },
        Prefecture {
            code: "532800",
            name: "西双版纳傣族自治州",
            short_name: "西双版纳州",
            plate_letters: "K",
            bbox: b(22.00, 100.80, 0.15),
            counties: &[
                ("532801", "景洪市", ""),
                ("532822", "勐海县", ""),
                ("532823", "勐腊县", ""),
            ],
        },
        Prefecture {
            code: "532900",
            name: "大理白族自治州",
            short_name: "大理州",
            plate_letters: "L",
            bbox: b(25.61, 100.27, 0.2),
            counties: &[
                ("532901", "大理市", ""),
                ("532922", "漾濞彝族自治县", ""),
                ("532923", "祥云县", ""),
                ("532924", "宾川县", ""),
                ("532925", "弥渡县", ""),
                ("532928", "永平县", ""),
                ("532929", "云龙县", ""),
                ("532930", "洱源县", ""),
                ("532931", "剑川县", ""),
                ("532932", "鹤庆县", ""),
            ],
        },
        Prefecture {
            code: "533100",
            name: "德宏傣族景颇族自治州",
            short_name: "德宏州",
            plate_letters: "N",
            bbox: b(24.43, 98.58, 0.15),
            counties: &[
                ("533102", "瑞丽市", ""),
                ("533103", "芒市", ""),
                ("533122", "梁河县", ""),
                ("533123", "盈江县", ""),
                ("533124", "陇川县", ""),
            ],
        },
        Prefecture {
            code: "533300",
            name: "怒江傈僳族自治州",
            short_name: "怒江州",
            plate_letters: "Q",
            bbox: b(25.82, 98.85, 0.1),
            counties: &[
                ("533301", "泸水市", ""),
                ("533323", "福贡县", ""),
                ("533324", "贡山独龙族怒族自治县", ""),
                ("533325", "兰坪白族普米族自治县", ""),
            ],
        },
        Prefecture {
            code: "533400",
            name: "迪庆藏族自治州",
            short_name: "迪庆州",
            plate_letters: "R",
            bbox: b(27.82, 99.71, 0.15),
            counties: &[
                ("533401", "香格里拉市", ""),
                ("533422", "德钦县", ""),
                ("533423", "维西傈僳族自治县", ""),
            ],
        },
    ],
};

const CHONGQING: Province = Province {
    code: "500000",
    name: "重庆市",
    short_name: "重庆市",
    plate_char: '渝',
    municipality: true,
    prefectures: &[
        // Plate letters by district group (⚠ commonly published: A/B/D 主城, C 永川片区,
        // F 万州片区, G 涪陵片区, H 黔江片区).
        Prefecture {
            code: "500100",
            name: "市辖区",
            short_name: "重庆市",
            plate_letters: "ABD",
            bbox: b(29.56, 106.55, 0.35),
            counties: &[
                ("500101", "万州区", "F"),
                ("500102", "涪陵区", "G"),
                ("500103", "渝中区", "AB"),
                ("500104", "大渡口区", "AB"),
                ("500105", "江北区", "AB"),
                ("500106", "沙坪坝区", "AB"),
                ("500107", "九龙坡区", "AB"),
                ("500108", "南岸区", "AB"),
                ("500109", "北碚区", "AB"),
                ("500110", "綦江区", "AB"),
                ("500111", "大足区", "C"),
                ("500112", "渝北区", "ABD"),
                ("500113", "巴南区", "AB"),
                ("500114", "黔江区", "H"),
                ("500115", "长寿区", "AB"),
                ("500116", "江津区", "C"),
                ("500117", "合川区", "AB"),
                ("500118", "永川区", "C"),
                ("500119", "南川区", "G"),
                ("500120", "璧山区", "AB"),
                ("500151", "铜梁区", "C"),
                ("500152", "潼南区", "C"),
                ("500153", "荣昌区", "C"),
                ("500154", "开州区", "F"),
                ("500155", "梁平区", "F"),
                ("500156", "武隆区", "G"),
            ],
        },
        Prefecture {
            code: "500200",
            name: "县",
            short_name: "重庆市",
            plate_letters: "F",
            bbox: b(30.60, 108.40, 0.3),
            counties: &[
                ("500229", "城口县", "F"),
                ("500230", "丰都县", "G"),
                ("500231", "垫江县", "G"),
                ("500233", "忠县", "F"),
                ("500235", "云阳县", "F"),
                ("500236", "奉节县", "F"),
                ("500237", "巫山县", "F"),
                ("500238", "巫溪县", "F"),
                ("500240", "石柱土家族自治县", "H"),
                ("500241", "秀山土家族苗族自治县", "H"),
                ("500242", "酉阳土家族苗族自治县", "H"),
                ("500243", "彭水苗族土家族自治县", "H"),
            ],
        },
    ],
};

const INNER_MONGOLIA: Province = Province {
    code: "150000",
    name: "内蒙古自治区",
    short_name: "内蒙古自治区",
    plate_char: '蒙',
    municipality: false,
    prefectures: &[
        Prefecture {
            code: "150100",
            name: "呼和浩特市",
            short_name: "呼和浩特市",
            plate_letters: "A",
            bbox: b(40.84, 111.75, 0.25),
            counties: &[
                ("150102", "新城区", ""),
                ("150103", "回民区", ""),
                ("150104", "玉泉区", ""),
                ("150105", "赛罕区", ""),
                ("150121", "土默特左旗", ""),
                ("150122", "托克托县", ""),
                ("150123", "和林格尔县", ""),
                ("150124", "清水河县", ""),
                ("150125", "武川县", ""),
            ],
        },
        Prefecture {
            code: "150200",
            name: "包头市",
            short_name: "包头市",
            plate_letters: "B",
            bbox: b(40.66, 109.84, 0.25),
            counties: &[
                ("150202", "东河区", ""),
                ("150203", "昆都仑区", ""),
                ("150204", "青山区", ""),
                ("150205", "石拐区", ""),
                ("150206", "白云鄂博矿区", ""),
                ("150207", "九原区", ""),
                ("150221", "土默特右旗", ""),
                ("150222", "固阳县", ""),
                ("150223", "达尔罕茂明安联合旗", ""),
            ],
        },
        Prefecture {
            code: "150300",
            name: "乌海市",
            short_name: "乌海市",
            plate_letters: "C",
            bbox: b(39.66, 106.79, 0.1),
            counties: &[
                ("150302", "海勃湾区", ""),
                ("150303", "海南区", ""),
                ("150304", "乌达区", ""),
            ],
        },
        Prefecture {
            code: "150400",
            name: "赤峰市",
            short_name: "赤峰市",
            plate_letters: "D",
            bbox: b(42.26, 118.89, 0.3),
            counties: &[
                ("150402", "红山区", ""),
                ("150403", "元宝山区", ""),
                ("150404", "松山区", ""),
                ("150421", "阿鲁科尔沁旗", ""),
                ("150422", "巴林左旗", ""),
                ("150423", "巴林右旗", ""),
                ("150424", "林西县", ""),
                ("150425", "克什克腾旗", ""),
                ("150426", "翁牛特旗", ""),
                ("150428", "喀喇沁旗", ""),
                ("150429", "宁城县", ""),
                ("150430", "敖汉旗", ""),
            ],
        },
        Prefecture {
            code: "150500",
            name: "通辽市",
            short_name: "通辽市",
            plate_letters: "G",
            bbox: b(43.65, 122.24, 0.3),
            counties: &[
                ("150502", "科尔沁区", ""),
                ("150521", "科尔沁左翼中旗", ""),
                ("150522", "科尔沁左翼后旗", ""),
                ("150523", "开鲁县", ""),
                ("150524", "库伦旗", ""),
                ("150525", "奈曼旗", ""),
                ("150526", "扎鲁特旗", ""),
                ("150581", "霍林郭勒市", ""),
            ],
        },
        Prefecture {
            code: "150600",
            name: "鄂尔多斯市",
            short_name: "鄂尔多斯市",
            plate_letters: "K",
            bbox: b(39.61, 109.78, 0.3),
            counties: &[
                ("150602", "东胜区", ""),
                ("150603", "康巴什区", ""),
                ("150621", "达拉特旗", ""),
                ("150622", "准格尔旗", ""),
                ("150623", "鄂托克前旗", ""),
                ("150624", "鄂托克旗", ""),
                ("150625", "杭锦旗", ""),
                ("150626", "乌审旗", ""),
                ("150627", "伊金霍洛旗", ""),
            ],
        },
        Prefecture {
            code: "150700",
            name: "呼伦贝尔市",
            short_name: "呼伦贝尔市",
            plate_letters: "E",
            bbox: b(49.21, 119.77, 0.3),
            counties: &[
                ("150702", "海拉尔区", ""),
                ("150703", "扎赉诺尔区", ""),
                ("150721", "阿荣旗", ""),
                ("150722", "莫力达瓦达斡尔族自治旗", ""),
                ("150723", "鄂伦春自治旗", ""),
                ("150724", "鄂温克族自治旗", ""),
                ("150725", "陈巴尔虎旗", ""),
                ("150726", "新巴尔虎左旗", ""),
                ("150727", "新巴尔虎右旗", ""),
                ("150781", "满洲里市", ""),
                ("150782", "牙克石市", ""),
                ("150783", "扎兰屯市", ""),
                ("150784", "额尔古纳市", ""),
                ("150785", "根河市", ""),
            ],
        },
        Prefecture {
            code: "150800",
            name: "巴彦淖尔市",
            short_name: "巴彦淖尔市",
            plate_letters: "L",
            bbox: b(40.74, 107.39, 0.25),
            counties: &[
                ("150802", "临河区", ""),
                ("150821", "五原县", ""),
                ("150822", "磴口县", ""),
                ("150823", "乌拉特前旗", ""),
                ("150824", "乌拉特中旗", ""),
                ("150825", "乌拉特后旗", ""),
                ("150826", "杭锦后旗", ""),
            ],
        },
        Prefecture {
            code: "150900",
            name: "乌兰察布市",
            short_name: "乌兰察布市",
            plate_letters: "J",
            bbox: b(41.03, 113.13, 0.25),
            counties: &[
                ("150902", "集宁区", ""),
                ("150921", "卓资县", ""),
                ("150922", "化德县", ""),
                ("150923", "商都县", ""),
                ("150924", "兴和县", ""),
                ("150925", "凉城县", ""),
                ("150926", "察哈尔右翼前旗", ""),
                ("150927", "察哈尔右翼中旗", ""),
                ("150928", "察哈尔右翼后旗", ""),
                ("150929", "四子王旗", ""),
                ("150981", "丰镇市", ""),
            ],
        },
        Prefecture {
            code: "152200",
            name: "兴安盟",
            short_name: "兴安盟",
            plate_letters: "F",
            bbox: b(46.08, 122.04, 0.25),
            counties: &[
                ("152201", "乌兰浩特市", ""),
                ("152202", "阿尔山市", ""),
                ("152221", "科尔沁右翼前旗", ""),
                ("152222", "科尔沁右翼中旗", ""),
                ("152223", "扎赉特旗", ""),
                ("152224", "突泉县", ""),
            ],
        },
        Prefecture {
            code: "152500",
            name: "锡林郭勒盟",
            short_name: "锡林郭勒盟",
            plate_letters: "H",
            bbox: b(43.93, 116.09, 0.3),
            counties: &[
                ("152501", "二连浩特市", ""),
                ("152502", "锡林浩特市", ""),
                ("152522", "阿巴嘎旗", ""),
                ("152523", "苏尼特左旗", ""),
                ("152524", "苏尼特右旗", ""),
                ("152525", "东乌珠穆沁旗", ""),
                ("152526", "西乌珠穆沁旗", ""),
                ("152527", "太仆寺旗", ""),
                ("152528", "镶黄旗", ""),
                ("152529", "正镶白旗", ""),
                ("152530", "正蓝旗", ""),
                ("152531", "多伦县", ""),
            ],
        },
        Prefecture {
            code: "152900",
            name: "阿拉善盟",
            short_name: "阿拉善盟",
            plate_letters: "M",
            bbox: b(38.85, 105.73, 0.25),
            counties: &[
                ("152921", "阿拉善左旗", ""),
                ("152922", "阿拉善右旗", ""),
                ("152923", "额济纳旗", ""),
            ],
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

/// Looks up a division name by code among the simulator's provinces, prefectures and counties.
pub fn name_of(code: &str) -> Option<&'static str> {
    for p in &PROVINCES {
        if p.code == code {
            return Some(p.name);
        }
        for f in p.prefectures {
            if f.code == code {
                return Some(f.name);
            }
            if let Some(c) = f.counties.iter().find(|c| c.0 == code) {
                return Some(c.1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_well_formed_unique_and_nested() {
        let mut seen = HashSet::new();
        let mut counties = 0;
        for p in &PROVINCES {
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
