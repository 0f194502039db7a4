//! Row-level authorisation by region (按行政区划的数据范围): a county may submit only records of
//! its own county; a prefecture its own and its counties'; a province its own and everything
//! below. Pure: GB/T 2260 codes only.

use crate::config::Level;

/// Whether a reporter at `level` for region `reporter` may submit a record of region `record`.
/// Codes are 6-digit GB/T 2260 codes (`PPCCDD`); anything else is out of scope.
pub fn in_scope(level: Level, reporter: &str, record: &str) -> bool {
    let valid = |c: &str| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit());
    if !valid(reporter) || !valid(record) {
        return false;
    }
    match level {
        Level::County => record == reporter,
        Level::Prefecture => record[..4] == reporter[..4],
        Level::Province => record[..2] == reporter[..2],
    }
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
}
