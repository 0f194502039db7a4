//! Identifiers as the simulator generates them and the textual variants regions send them in.
//! The check-character algorithms and plate classes are the shared ones of
//! [`schemas::ids`] (USCC GB 32100-2015, organisation code GB 11714, VIN GB 16735, plates
//! GA 36-2018), so generated codes are valid by the hub's own rules; this module only adds
//! builders and the variant renderers (middle dot, full width).

pub use schemas::ids::{
    PLATE_LETTERS, PlateKind, VIN_ALPHABET, plate_kind, uscc_is_valid, vin_is_valid,
};
use schemas::ids::{org_code_check, uscc_check, vin_check};

/// Builds a USCC from registration authority + category (`"11"` 机关, `"12"` 事业单位), a
/// six-digit region code and an eight-character organisation-code body (its GB 11714 check is
/// appended, then the GB 32100 check). `None` if a part is malformed.
pub fn make_uscc(prefix: &str, region: &str, org_body: &str) -> Option<String> {
    let org = format!("{org_body}{}", org_code_check(org_body)?);
    let first17 = format!("{prefix}{region}{org}");
    Some(format!("{first17}{}", uscc_check(&first17)?))
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
    use schemas::ids::{canonical_code, parse_plate, uscc_org_code_is_valid};

    #[test]
    fn made_usccs_are_valid_and_structured() {
        let u = make_uscc("11", "530114", "01511740").unwrap();
        assert!(uscc_is_valid(&u), "{u}");
        assert!(uscc_org_code_is_valid(&u), "{u}");
        assert_eq!(&u[..2], "11");
        assert_eq!(&u[2..8], "530114");
        assert_eq!(make_uscc("11", "530114", "0151174"), None);
        // What a prefecture platform sends (full width) reads back as the same code.
        assert_eq!(canonical_code(&to_full_width(&u)), u);
    }

    #[test]
    fn vins_get_their_check_digit() {
        let fixed = with_vin_check("LSVAM4180C2184847").unwrap();
        assert!(vin_is_valid(&fixed), "{fixed}");
        assert_eq!(with_vin_check("LSVAM4180C218484"), None);
        assert_eq!(vin_year_char(2010), 'A');
        assert_eq!(vin_year_char(2019), 'K');
        assert_eq!(vin_year_char(2025), 'S');
    }

    #[test]
    fn plate_variants_read_back_as_the_plate() {
        // Every rendering the simulator sends is one the shared parser maps back.
        for plate in ["云A12345", "蒙KD12345", "渝A12345D", "渝BX7J21"] {
            for variant in [
                plate.to_owned(),
                plate_with_dot(plate),
                to_full_width(plate),
            ] {
                let parsed = parse_plate(&variant).unwrap();
                assert_eq!(parsed.text, plate, "{variant}");
                assert!(!parsed.corrected, "{variant}");
            }
        }
        assert_eq!(plate_with_dot("云A12345"), "云A·12345");
        assert_eq!(to_full_width("云A12345"), "云Ａ１２３４５");
        assert_eq!(
            digits_parens_full_width("第3中学(东校区)"),
            "第３中学（东校区）"
        );
    }
}
