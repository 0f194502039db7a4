//! National identifiers (国家标准标识符) and their check characters: the Unified Social Credit
//! Code (统一社会信用代码, GB 32100-2015), the organisation code inside it (组织机构代码,
//! GB 11714), the vehicle identification number (车辆识别代号, GB 16735) and licence plates
//! (机动车号牌, GA 36-2018), and the shape of a property unit number (不动产单元号, GB/T 37346).
//!
//! One implementation for everyone: the simulator generates these identifiers with it and the
//! hub validates and normalises them with it, so both always agree on what is valid.
//! Functions named `*_check` compute a check character; `validate_*` explain why a code is
//! invalid; [`canonical_code`] and [`parse_plate`] turn text as sent into the canonical form.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The 31 characters a USCC may contain; a character's value is its index (GB 32100-2015).
pub const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
const VIN_WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// `text` in Unicode normalisation form NFKC, borrowed when it is in that form already, as
/// almost every identifier and most text is (a quick check, not a normalisation, per call).
pub fn nfkc(text: &str) -> std::borrow::Cow<'_, str> {
    match unicode_normalization::is_nfkc_quick(text.chars()) {
        unicode_normalization::IsNormalized::Yes => std::borrow::Cow::Borrowed(text),
        _ => std::borrow::Cow::Owned(text.nfkc().collect()),
    }
}

/// Text of a code as sent → its canonical form: NFKC (full-width → half-width), upper case,
/// spaces and `-` removed. Nothing else is "fixed": an `O` stays an `O` and fails validation
/// (DOMAIN.md §3), because guessing at a key would merge entities that are not the same.
pub fn canonical_code(text: &str) -> String {
    nfkc(text)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

fn uscc_value(c: char) -> Option<u32> {
    USCC_ALPHABET.find(c).map(|i| i as u32)
}

/// The USCC check character (position 18) for the first 17 characters, or `None` when a
/// character is outside the alphabet or the length is wrong.
pub fn uscc_check(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    let v = (31 - sum % 31) % 31;
    USCC_ALPHABET.chars().nth(v as usize)
}

/// Why a USCC or VIN is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    /// Not the code's length (18 for a USCC, 17 for a VIN).
    Length {
        /// The code's length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A character outside the code's alphabet (a USCC has no I O S V Z, a VIN no I O Q).
    Character {
        /// 1-based position.
        position: usize,
        /// The character found.
        found: char,
    },
    /// The check character does not match the others.
    CheckCharacter {
        /// 1-based position of the check character (18 in a USCC, 9 in a VIN).
        position: usize,
        /// What the other characters call for.
        expected: char,
        /// What the code has.
        found: char,
    },
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::Length { expected, found } => {
                write!(f, "应为 {expected} 位，实为 {found} 位")
            }
            CodeError::Character { position, found } => {
                write!(f, "第 {position} 位「{found}」不是允许的字符")
            }
            CodeError::CheckCharacter {
                position,
                expected,
                found,
            } => write!(f, "第 {position} 位校验位为「{found}」，应为「{expected}」"),
        }
    }
}

/// Length, alphabet (`allowed`), then the check character at 1-based `check_at` as
/// `check` computes it from the whole code.
fn validate_code(
    code: &str,
    length: usize,
    allowed: fn(char) -> bool,
    check_at: usize,
    check: fn(&str) -> Option<char>,
) -> Result<(), CodeError> {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != length {
        return Err(CodeError::Length {
            expected: length,
            found: chars.len(),
        });
    }
    if let Some((i, &c)) = chars.iter().enumerate().find(|(_, c)| !allowed(**c)) {
        return Err(CodeError::Character {
            position: i + 1,
            found: c,
        });
    }
    let expected = check(code).unwrap_or('?');
    let found = chars[check_at - 1];
    if expected != found {
        return Err(CodeError::CheckCharacter {
            position: check_at,
            expected,
            found,
        });
    }
    Ok(())
}

/// Checks a canonical USCC (see [`canonical_code`]): length, alphabet, check character.
pub fn validate_uscc(code: &str) -> Result<(), CodeError> {
    let check = |code: &str| uscc_check(&code.chars().take(17).collect::<String>());
    validate_code(code, 18, |c| uscc_value(c).is_some(), 18, check)
}

/// Whether `code` is an 18-character USCC with a correct check character.
pub fn uscc_is_valid(code: &str) -> bool {
    validate_uscc(code).is_ok()
}

/// The GB 11714 organisation-code check character for its first 8 characters
/// (digits 0–9, letters A–Z → 10–35), or `None` for other characters or lengths.
pub fn org_code_check(first8: &str) -> Option<char> {
    if first8.chars().count() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first8.chars().zip(ORG_WEIGHTS) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or('0'),
    })
}

/// Whether positions 9–17 of a USCC (the GB 11714 organisation code) carry a correct check
/// character. `false` for codes too short to hold one.
pub fn uscc_org_code_is_valid(uscc: &str) -> bool {
    let org: Vec<char> = uscc.chars().skip(8).take(9).collect();
    org.len() == 9 && org_code_check(&org[..8].iter().collect::<String>()) == Some(org[8])
}

/// The six-digit division code at positions 3–8 of a USCC (登记管理机关行政区划码).
pub fn uscc_region(uscc: &str) -> Option<&str> {
    uscc.get(2..8)
        .filter(|r| r.bytes().all(|b| b.is_ascii_digit()))
}

/// The characters a VIN may contain (no I, O, Q).
pub const VIN_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

fn vin_value(c: char) -> Option<u32> {
    Some(match c {
        '0'..='9' => c as u32 - '0' as u32,
        'A' | 'J' => 1,
        'B' | 'K' | 'S' => 2,
        'C' | 'L' | 'T' => 3,
        'D' | 'M' | 'U' => 4,
        'E' | 'N' | 'V' => 5,
        'F' | 'W' => 6,
        'G' | 'P' | 'X' => 7,
        'H' | 'Y' => 8,
        'R' | 'Z' => 9,
        _ => return None,
    })
}

/// The VIN check digit (position 9) of a 17-character VIN, whatever is at position 9 now.
pub fn vin_check(vin: &str) -> Option<char> {
    if vin.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in vin.chars().zip(VIN_WEIGHTS) {
        sum += vin_value(c)? * w;
    }
    Some(match sum % 11 {
        10 => 'X',
        d => char::from_digit(d, 10).unwrap_or('0'),
    })
}

/// Checks a canonical VIN (see [`canonical_code`]): length, alphabet, check digit.
pub fn validate_vin(vin: &str) -> Result<(), CodeError> {
    validate_code(vin, 17, |c| vin_value(c).is_some(), 9, vin_check)
}

/// Whether `vin` is 17 allowed characters with a correct check digit.
pub fn vin_is_valid(vin: &str) -> bool {
    validate_vin(vin).is_ok()
}

/// Province abbreviations a plate may start with (GA 36-2018).
pub const PLATE_PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// Letters allowed in plate serials (no I, O).
pub const PLATE_LETTERS: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Characters that end special plates: police, driving school, trailer, Hong Kong, Macao,
/// embassy, consulate (警 学 挂 港 澳 使 领).
pub const PLATE_SUFFIXES: &str = "警学挂港澳使领";

/// Traditional forms of province and suffix characters as some systems still write them.
const PLATE_TRADITIONAL: [(char, char); 16] = [
    ('雲', '云'),
    ('貴', '贵'),
    ('滬', '沪'),
    ('遼', '辽'),
    ('魯', '鲁'),
    ('蘇', '苏'),
    ('贛', '赣'),
    ('晉', '晋'),
    ('陝', '陕'),
    ('閩', '闽'),
    ('粵', '粤'),
    ('寧', '宁'),
    ('瓊', '琼'),
    ('學', '学'),
    ('掛', '挂'),
    ('領', '领'),
];

/// Separators platforms put into plates (`云A·12345`, `云A-12345`, `云A 12345`).
const PLATE_SEPARATORS: &str = "·•・.-_";

/// The structural class of a canonical plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlateKind {
    /// Province + authority letter + 5 serial characters.
    Ordinary,
    /// Small new-energy: province + letter + `D`/`F` + 5 characters.
    NewEnergySmall,
    /// Large new-energy: province + letter + 5 digits + `D`/`F`.
    NewEnergyLarge,
    /// Province + letter + 4 serial characters + one of [`PLATE_SUFFIXES`].
    Special,
}

/// Classifies a canonical plate (no separators, half-width, upper case); `None` if it is not
/// one.
pub fn plate_kind(plate: &str) -> Option<PlateKind> {
    let c: Vec<char> = plate.chars().collect();
    if c.len() < 7 || !PLATE_PROVINCES.contains(c[0]) || !c[1].is_ascii_uppercase() {
        return None;
    }
    let serial_ok = |ch: &char| ch.is_ascii_digit() || PLATE_LETTERS.contains(*ch);
    let serial = &c[2..];
    if serial.len() == 5 && PLATE_SUFFIXES.contains(serial[4]) {
        return serial[..4]
            .iter()
            .all(serial_ok)
            .then_some(PlateKind::Special);
    }
    if !serial.iter().all(serial_ok) {
        return None;
    }
    match serial.len() {
        5 => Some(PlateKind::Ordinary),
        6 if matches!(serial[0], 'D' | 'F') && serial[2..].iter().all(char::is_ascii_digit) => {
            Some(PlateKind::NewEnergySmall)
        }
        6 if matches!(serial[5], 'D' | 'F') && serial[..5].iter().all(char::is_ascii_digit) => {
            Some(PlateKind::NewEnergyLarge)
        }
        _ => None,
    }
}

/// A plate in canonical form (`云A12345`), GA 36-2018.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plate {
    /// The canonical text: half-width, upper case, no separators.
    pub text: String,
    /// Its structural class.
    pub kind: PlateKind,
    /// Whether an `O` or `I` in the serial was read as `0` or `1` (号牌已纠正).
    pub corrected: bool,
}

/// Why text is not a plate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlateError {
    /// The text after normalisation, for messages.
    pub normalised: String,
}

impl fmt::Display for PlateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "「{}」不符合 GA 36 号牌格式（省份简称 + 发牌机关字母 + 5 位序号，新能源 6 位）",
            self.normalised
        )
    }
}

/// Plate text as sent → canonical [`Plate`]: NFKC (full width → half width), upper case,
/// separators and spaces (incl. U+3000) removed, traditional province and suffix characters
/// simplified, `O` → `0` and `I` → `1` in serial positions only (never in the authority
/// letter), flagged as `corrected`.
pub fn parse_plate(text: &str) -> Result<Plate, PlateError> {
    let chars: Vec<char> = text
        .nfkc()
        .filter(|c| !c.is_whitespace() && !PLATE_SEPARATORS.contains(*c))
        .map(|c| {
            PLATE_TRADITIONAL
                .iter()
                .find(|(t, _)| *t == c)
                .map_or(c, |(_, s)| *s)
        })
        .flat_map(char::to_uppercase)
        .collect();
    let mut corrected = false;
    let canonical: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            'O' if i >= 2 => {
                corrected = true;
                '0'
            }
            'I' if i >= 2 => {
                corrected = true;
                '1'
            }
            _ => c,
        })
        .collect();
    match plate_kind(&canonical) {
        Some(kind) => Ok(Plate {
            text: canonical,
            kind,
            corrected,
        }),
        None => Err(PlateError {
            normalised: chars.into_iter().collect(),
        }),
    }
}

/// Whether a canonical property unit number (不动产单元号, see [`canonical_code`]) has the
/// GB/T 37346 shape: 12 digits (division + cadastral zone), 2 letters (parcel type), 5 digits
/// (parcel), 1 letter (fixture type), 8 digits. Only such a number identifies a building: one
/// of another shape is left out and the building is known by its owner and address.
pub fn property_unit_number_is_valid(number: &str) -> bool {
    let b = number.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let letters = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_uppercase);
    b.len() == 28
        && digits(0..12)
        && letters(12..14)
        && digits(14..19)
        && letters(19..20)
        && digits(20..28)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkc_is_borrowed_only_when_the_text_is_in_nfkc_already() {
        for (text, borrowed) in [
            ("LFP09AY10MF000001", true),
            ("云A12345", true),
            ("昆明市五华区建设路387号", true),
            ("", true),
            ("ＬＦＰ０９", false),
            ("建设路３８７号", false),
            ("云A\u{3000}12345", false),
            ("m³", false),
        ] {
            let normal = nfkc(text);
            let expected: String = text.nfkc().collect();
            assert_eq!(normal, expected, "{text}");
            assert_eq!(
                matches!(normal, std::borrow::Cow::Borrowed(_)),
                borrowed,
                "{text}"
            );
        }
    }

    #[test]
    fn uscc_table() {
        // (code, result): DOMAIN.md's verified example, then single-character mutations of it.
        for (code, expected) in [
            ("91350100M000100Y43", Ok(())),
            (
                "91350100M000100Y44",
                Err(CodeError::CheckCharacter {
                    position: 18,
                    expected: '3',
                    found: '4',
                }),
            ),
            (
                "91350100M000100Y4",
                Err(CodeError::Length {
                    expected: 18,
                    found: 17,
                }),
            ),
            (
                "91350100M00O100Y43",
                Err(CodeError::Character {
                    position: 12,
                    found: 'O',
                }),
            ),
            (
                "91350100M000100Y43X",
                Err(CodeError::Length {
                    expected: 18,
                    found: 19,
                }),
            ),
            (
                "913501OOM000100Y43",
                Err(CodeError::Character {
                    position: 7,
                    found: 'O',
                }),
            ),
        ] {
            assert_eq!(validate_uscc(code), expected, "{code}");
            assert_eq!(uscc_is_valid(code), expected.is_ok(), "{code}");
        }
        assert_eq!(uscc_check("91350100M000100Y4"), Some('3'));
        assert_eq!(uscc_check("91350100M000100YI"), None);
        assert_eq!(uscc_check("91350100M000100Y"), None);
        assert!(uscc_org_code_is_valid("91350100M000100Y43"));
        assert!(!uscc_org_code_is_valid("91350100M000100Y53"));
        assert_eq!(uscc_region("91350100M000100Y43"), Some("350100"));
        assert_eq!(uscc_region("9135"), None);
    }

    #[test]
    fn canonical_code_table() {
        for (text, canonical) in [
            ("91350100M000100Y43", "91350100M000100Y43"),
            (" 9135-0100-m000100y43 ", "91350100M000100Y43"),
            ("９１３５０１００Ｍ０００１００Ｙ４３", "91350100M000100Y43"),
            ("9135\u{3000}0100M000100Y43", "91350100M000100Y43"),
            // O is kept: it fails validation instead of becoming 0.
            ("913501OOM000100Y43", "913501OOM000100Y43"),
        ] {
            assert_eq!(canonical_code(text), canonical, "{text}");
        }
    }

    #[test]
    fn org_code_check_table() {
        // Worked examples of GB 11714 (computed by hand from the weights 3,7,9,10,5,8,4,2).
        for (body, check) in [
            // 0*3+0*7+0*9+0*10+0*5+0*8+0*4+1*2 = 2 → 11-2 = 9
            ("00000001", '9'),
            // all zeros: 11-0 = 11 → '0'
            ("00000000", '0'),
            // 1*3 = 3 → 8
            ("10000000", '8'),
            // 'A'=10: 10*3 = 30 → 30 mod 11 = 8 → 3
            ("A0000000", '3'),
            // 1*10 = 10 → 11-10 = 1
            ("00010000", '1'),
            // 1*5 = 5 → 6
            ("00001000", '6'),
            // 1*7 = 7 → 4
            ("01000000", '4'),
            // 1*9+1*2 = 11 → 0 → 11 → '0'
            ("00100001", '0'),
            // 1*8+1*4 = 12 → 1 → 10 → 'X'
            ("00000110", 'X'),
        ] {
            assert_eq!(org_code_check(body), Some(check), "{body}");
        }
        assert_eq!(org_code_check("0000000"), None);
        assert_eq!(org_code_check("0000000a"), None);
    }

    #[test]
    fn vin_table() {
        for (vin, expected) in [
            // The ISO 3779 textbook example.
            ("1M8GDM9AXKP042788", Ok(())),
            (
                "1M8GDM9A1KP042788",
                Err(CodeError::CheckCharacter {
                    position: 9,
                    expected: 'X',
                    found: '1',
                }),
            ),
            ("11111111111111111", Ok(())),
            (
                "1M8GDM9AXKP04278",
                Err(CodeError::Length {
                    expected: 17,
                    found: 16,
                }),
            ),
            (
                "1M8GDM9AXKP0427O8",
                Err(CodeError::Character {
                    position: 16,
                    found: 'O',
                }),
            ),
            (
                "LSVAQ4180C2184847",
                Err(CodeError::Character {
                    position: 5,
                    found: 'Q',
                }),
            ),
        ] {
            assert_eq!(validate_vin(vin), expected, "{vin}");
            assert_eq!(vin_is_valid(vin), expected.is_ok(), "{vin}");
        }
    }

    #[test]
    fn property_unit_number_table() {
        for (text, valid) in [
            ("530114003002GB00012F00010001", true),
            ("530114 003002 gb00012 f0001 0001", true),
            (
                "５３０１１４００３００２ＧＢ０００１２Ｆ０００１０００１",
                true,
            ),
            ("530114003002GB00012F0001000", false),
            ("530114003002G100012F00010001", false),
            ("530114003002GB0001FF00010001", false),
            ("", false),
        ] {
            assert_eq!(
                property_unit_number_is_valid(&canonical_code(text)),
                valid,
                "{text}"
            );
        }
    }

    #[test]
    fn plate_table() {
        use PlateKind::*;
        // (as sent, canonical, kind, corrected); `None` = not a plate.
        for (text, expected) in [
            ("云A12345", Some(("云A12345", Ordinary, false))),
            ("渝BX7J21", Some(("渝BX7J21", Ordinary, false))),
            ("云A·12345", Some(("云A12345", Ordinary, false))),
            ("云Ａ１２３４５", Some(("云A12345", Ordinary, false))),
            ("云a12345", Some(("云A12345", Ordinary, false))),
            (" 云A 12345\u{3000}", Some(("云A12345", Ordinary, false))),
            ("云A-12345", Some(("云A12345", Ordinary, false))),
            ("雲A12345", Some(("云A12345", Ordinary, false))),
            ("云A1234O", Some(("云A12340", Ordinary, true))),
            ("云AI2345", Some(("云A12345", Ordinary, true))),
            ("蒙KD12345", Some(("蒙KD12345", NewEnergySmall, false))),
            ("云AFX3567", Some(("云AFX3567", NewEnergySmall, false))),
            ("渝A12345D", Some(("渝A12345D", NewEnergyLarge, false))),
            ("云A1234学", Some(("云A1234学", Special, false))),
            ("云A0123警", Some(("云A0123警", Special, false))),
            ("云A1234學", Some(("云A1234学", Special, false))),
            ("云AF3X567", None),
            ("云A1234", None),
            ("XA12345", None),
            ("云123456", None),
            ("云A123456", None),
            ("", None),
        ] {
            let got = parse_plate(text).ok();
            let got = got.as_ref().map(|p| (p.text.as_str(), p.kind, p.corrected));
            assert_eq!(got, expected, "{text:?}");
        }
        assert_eq!(
            parse_plate("云A·1234").unwrap_err().normalised,
            "云A1234".to_owned()
        );
    }
}
