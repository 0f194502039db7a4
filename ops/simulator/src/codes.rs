//! Identifiers with check characters and the textual variants regions send them in:
//! USCC (GB 32100-2015), organisation code (GB 11714), VIN (GB 16735), licence plates
//! (GA 36-2018), and full-width rendering.

/// The 31 characters a USCC may contain; a character's value is its index (GB 32100-2015).
pub const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
const VIN_WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

fn uscc_value(c: char) -> Option<u32> {
    USCC_ALPHABET.find(c).map(|i| i as u32)
}

/// The USCC check character (position 18) for the first 17 characters, or `None` when a
/// character is outside the alphabet or the length is wrong.
pub fn uscc_check(first17: &str) -> Option<char> {
    let mut sum = 0;
    let mut n = 0;
    for (c, w) in first17.chars().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
        n += 1;
    }
    if n != 17 || first17.chars().count() != 17 {
        return None;
    }
    let v = (31 - sum % 31) % 31;
    USCC_ALPHABET.chars().nth(v as usize)
}

/// Whether `code` is an 18-character USCC with a correct check character.
pub fn uscc_is_valid(code: &str) -> bool {
    code.chars().count() == 18
        && code.is_ascii()
        && uscc_check(&code[..17]) == code[17..].chars().next()
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

/// Builds a USCC from registration authority + category (`"11"` 机关, `"12"` 事业单位), a
/// six-digit region code and an eight-character organisation-code body (its GB 11714 check is
/// appended, then the GB 32100 check). `None` if a part is malformed.
pub fn make_uscc(prefix: &str, region: &str, org_body: &str) -> Option<String> {
    let org = format!("{org_body}{}", org_code_check(org_body)?);
    let first17 = format!("{prefix}{region}{org}");
    Some(format!("{first17}{}", uscc_check(&first17)?))
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

/// Whether `vin` is 17 allowed characters with a correct check digit.
pub fn vin_is_valid(vin: &str) -> bool {
    vin.chars().count() == 17 && vin_check(vin) == vin.chars().nth(8)
}

/// Sets position 9 of a 17-character VIN to its check digit.
pub fn with_vin_check(vin_without_check: &str) -> Option<String> {
    let check = vin_check(vin_without_check)?;
    let mut s: Vec<char> = vin_without_check.chars().collect();
    s[8] = check;
    Some(s.into_iter().collect())
}

/// Model-year character at VIN position 10 for 2010–2030 (I, O, Q, U, Z and 0 are skipped).
pub fn vin_year_char(year: i32) -> char {
    const YEARS: &str = "ABCDEFGHJKLMNPRSTVWXY";
    // 2010 = A, 2011 = B, … 2030 = Y.
    let i = (year - 2010).clamp(0, 20) as usize;
    YEARS.chars().nth(i).unwrap_or('A')
}

/// Province abbreviations a plate may start with (GA 36-2018).
pub const PLATE_PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// Letters allowed in plate serials (no I, O).
pub const PLATE_LETTERS: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ";

/// The structural class of a plate string, after stripping separators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateKind {
    /// Province + authority letter + 5 serial characters.
    Ordinary,
    /// Small new-energy: province + letter + `D`/`F` + 5 characters.
    NewEnergySmall,
    /// Large new-energy: province + letter + 5 digits + `D`/`F`.
    NewEnergyLarge,
}

/// Classifies a canonical plate (no separators, half-width); `None` if it is not one.
pub fn plate_kind(plate: &str) -> Option<PlateKind> {
    let c: Vec<char> = plate.chars().collect();
    if c.len() < 7 || !PLATE_PROVINCES.contains(c[0]) || !c[1].is_ascii_uppercase() {
        return None;
    }
    let serial = &c[2..];
    let ok = |ch: &char| ch.is_ascii_digit() || PLATE_LETTERS.contains(*ch);
    if !serial.iter().all(ok) {
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

/// `云A12345` → `云A·12345` (the middle-dot form many platforms display).
pub fn plate_with_dot(plate: &str) -> String {
    let mut out = String::new();
    for (i, c) in plate.chars().enumerate() {
        if i == 2 {
            out.push('·');
        }
        out.push(c);
    }
    out
}

/// ASCII letters, digits and punctuation to their full-width forms (U+FF01–U+FF5E);
/// space becomes U+3000. Other characters are kept.
pub fn to_full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' => '\u{3000}',
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Only the digits and parentheses of `s` to full width (`第3中学(东校区)` → `第３中学（东校区）`),
/// the way names typed with a Chinese input method often look.
pub fn digits_parens_full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' | '(' | ')' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_check_table() {
        // (code, valid?): DOMAIN.md's verified example, then single-character mutations of it.
        for (code, ok) in [
            ("91350100M000100Y43", true),
            ("91350100M000100Y44", false),
            ("91350100M000100Y4", false),
            ("91350100M00O100Y43", false), // O is not in the alphabet
            ("91350100M000100Y43X", false),
            ("913501OOM000100Y43", false),
        ] {
            assert_eq!(uscc_is_valid(code), ok, "{code}");
        }
        assert_eq!(uscc_check("91350100M000100Y4"), Some('3'));
        assert_eq!(uscc_check("91350100M000100YI"), None);
        assert_eq!(uscc_check("91350100M000100Y"), None);
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
            // 1*5 = 5 → 6; 2*5 = 10 → 1; 2*2 = 4 → 7; 1*9 = 9 → 2; 1*4 = 4 → 7
            ("00001000", '6'),
            // 1*7 = 7 → 4
            ("01000000", '4'),
            // 1*9+1*2 = 11 → 0 → 11 → '0'
            ("00100001", '0'),
            // 1*8 = 8 → 3; 1*8+1*4 = 12 → 1 → 10 → 'X'
            ("00000110", 'X'),
        ] {
            assert_eq!(org_code_check(body), Some(check), "{body}");
        }
        assert_eq!(org_code_check("0000000"), None);
        assert_eq!(org_code_check("0000000a"), None);
    }

    #[test]
    fn made_usccs_are_valid_and_structured() {
        let u = make_uscc("11", "530114", "01511740").unwrap();
        assert!(uscc_is_valid(&u), "{u}");
        assert_eq!(&u[..2], "11");
        assert_eq!(&u[2..8], "530114");
        assert_eq!(org_code_check(&u[8..16]), u[16..17].chars().next());
        assert_eq!(make_uscc("11", "530114", "0151174"), None);
    }

    #[test]
    fn vin_check_table() {
        for (vin, ok) in [
            // The ISO 3779 textbook example.
            ("1M8GDM9AXKP042788", true),
            ("1M8GDM9A1KP042788", false),
            ("11111111111111111", true),
            ("1M8GDM9AXKP04278", false),
            ("1M8GDM9AXKP0427O8", false),
        ] {
            assert_eq!(vin_is_valid(vin), ok, "{vin}");
        }
        let fixed = with_vin_check("LSVAM4180C2184847").unwrap();
        assert!(vin_is_valid(&fixed), "{fixed}");
        assert_eq!(vin_year_char(2010), 'A');
        assert_eq!(vin_year_char(2019), 'K');
        assert_eq!(vin_year_char(2025), 'S');
    }

    #[test]
    fn plate_kinds_and_variants() {
        for (plate, kind) in [
            ("云A12345", Some(PlateKind::Ordinary)),
            ("渝BX7J21", Some(PlateKind::Ordinary)),
            ("蒙KD12345", Some(PlateKind::NewEnergySmall)),
            ("云AFX3567", Some(PlateKind::NewEnergySmall)),
            ("云AF3X567", None),
            ("渝A12345D", Some(PlateKind::NewEnergyLarge)),
            ("云A1234", None),
            ("XA12345", None),
            ("云a12345", None),
            ("云A1234O", None),
        ] {
            assert_eq!(plate_kind(plate), kind, "{plate}");
        }
        assert_eq!(plate_with_dot("云A12345"), "云A·12345");
        assert_eq!(to_full_width("云A12345"), "云Ａ１２３４５");
        assert_eq!(
            digits_parens_full_width("第3中学(东校区)"),
            "第３中学（东校区）"
        );
    }
}
