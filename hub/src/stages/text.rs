//! Reading text as regional systems send it: names and addresses (NFKC, full width → half
//! width), labels, decimal numbers, counts, dates, statistical periods and local times.
//! Pure functions that say what a text means or that it means nothing; what that implies for
//! the record (a warning, an error) is the validate stage's decision.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rust_decimal::Decimal;
use schemas::ids::nfkc;
use schemas::records::PeriodType;

/// Free text (names, addresses, models) in canonical form: NFKC (full-width letters, digits
/// and punctuation → half width, U+3000 → space), trimmed, inner runs of white space → one
/// space. `None` if nothing is left.
pub fn fold(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in nfkc(text).chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Text for matching: NFKC, without any white space, ASCII upper case. For addresses
/// (规范化地址: `建设路３８７号`, `建设路 387 号` and `建设路387号` compare equal) and codes that
/// are no national identifier (asset codes, category codes), whose dashes stay.
pub fn compact(text: &str) -> Option<String> {
    let out: String = nfkc(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (!out.is_empty()).then_some(out)
}

/// The key a label (or unit) is matched by: NFKC, upper case, letters and digits only, so
/// `国家机关（省级及以上）` and `国家机关-省级及以上` are the same label. Superscripts fold to
/// digits under NFKC (`m³` → `M3`).
pub fn label_key(text: &str) -> String {
    nfkc(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// A decimal number as sent: NFKC, surrounding space, thousands separators (`1,234.5`) and a
/// leading `+` are accepted; exponents (`1.2E3`) too. Returns the value and the number of
/// decimals written, which is the precision the source reported at.
pub fn decimal(text: &str) -> Option<(Decimal, u32)> {
    let t: String = nfkc(text)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',')
        .collect();
    let t = t.strip_prefix('+').unwrap_or(&t);
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E'))
    {
        return None;
    }
    let value = if t.contains(['e', 'E']) {
        Decimal::from_scientific(t).ok()?
    } else {
        t.parse::<Decimal>().ok()?
    };
    let scale = t
        .split(['e', 'E'])
        .next()
        .and_then(|m| m.split_once('.'))
        .map_or(0, |(_, f)| f.len() as u32);
    Some((value, scale))
}

/// A value with its unit written after it (`1.8L`, `54.11万元`, `12 人`): the number and the
/// rest, trimmed. `None` if the text does not start with a number.
pub fn split_number_unit(text: &str) -> Option<(String, String)> {
    let t: String = nfkc(text).chars().collect();
    let t = t.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || matches!(c, '.' | ',' | '+')
                || (c == '-' && i == 0)
                || c.is_whitespace())
        })
        .map_or(t.len(), |(i, _)| i);
    let (number, unit) = t.split_at(end);
    decimal(number)?;
    Some((number.trim().to_owned(), unit.trim().to_owned()))
}

/// Counting words that may follow a count (`12人`, `5辆`).
const COUNTERS: [&str; 8] = ["人", "名", "辆", "台", "个", "座", "位", "间"];

/// A whole number as sent (`12`, `12.0`, `1,200`, `１２人`). Fractions are not counts.
pub fn count(text: &str) -> Option<i64> {
    let (number, rest) = split_number_unit(text)?;
    if !rest.is_empty() && !COUNTERS.contains(&rest.as_str()) {
        return None;
    }
    let (value, _) = decimal(&number)?;
    if !value.fract().is_zero() {
        return None;
    }
    i64::try_from(value.trunc()).ok()
}

/// How much of a date a text gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrecision {
    /// Year, month and day.
    Day,
    /// Year and month only; the date is the first of the month.
    Month,
}

/// China Standard Time (UTC+8). Asia/Shanghai has kept this offset without daylight saving
/// since 1991, before any record the hub carries, so a fixed offset is exact here and needs
/// no time-zone database.
pub fn china_standard_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The digit groups of a date or time text, if it holds only digits and the separators dates
/// are written with (`2021-03-05`, `2021/3/5`, `2021.03.05`, `2021年3月5日`, `08:15:30`).
fn digit_groups(text: &str) -> Option<Vec<&str>> {
    let ok = |c: char| c.is_ascii_digit() || c.is_whitespace() || "-/.:T年月日时分秒号".contains(c);
    if !text.chars().all(ok) {
        return None;
    }
    Some(
        text.split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .collect(),
    )
}

fn num(group: &str) -> Option<u32> {
    group.parse().ok()
}

fn ymd(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    if y.len() != 4 || m.len() > 2 || d.len() > 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, num(m)?, num(d)?)
}

/// A calendar date as sent: `2021-03-05`, `2021/3/5`, `2021.03.05`, `20210305`,
/// `2021年3月5日`, a local date-time (`2021-03-05 08:00:00`, its date), an instant with an
/// offset (its date in China Standard Time), or a month alone (`2008-12`, `2008年12月`,
/// `200812`: the first of the month, [`DatePrecision::Month`]).
pub fn date(text: &str) -> Option<(NaiveDate, DatePrecision)> {
    let t: String = nfkc(text).chars().collect();
    let t = t.trim();
    if let Some(instant) = zoned_instant(t) {
        return Some((
            instant.with_timezone(&china_standard_time()).date_naive(),
            DatePrecision::Day,
        ));
    }
    let groups = digit_groups(t)?;
    let first_of = |y: &str, m: &str| ymd(y, m, "1").map(|d| (d, DatePrecision::Month));
    match groups.as_slice() {
        [g] if g.len() == 8 => ymd(&g[..4], &g[4..6], &g[6..]).map(|d| (d, DatePrecision::Day)),
        [g] if g.len() == 6 => first_of(&g[..4], &g[4..]),
        [y, m] => first_of(y, m),
        [y, m, d] | [y, m, d, _, _] | [y, m, d, _, _, _] | [y, m, d, _, _, _, _] => {
            ymd(y, m, d).map(|d| (d, DatePrecision::Day))
        }
        _ => None,
    }
}

/// An instant written with its offset: RFC 3339 (`2025-03-01T08:15:30+08:00`, `…Z`) or with a
/// space instead of `T`.
fn zoned_instant(t: &str) -> Option<DateTime<Utc>> {
    let offset = t
        .len()
        .checked_sub(6)
        .and_then(|i| t.get(i..))
        .is_some_and(|tail| tail.starts_with(['+', '-']) && tail.as_bytes()[3] == b':');
    let has_zone = t.ends_with(['Z', 'z']) || offset;
    if !has_zone {
        return None;
    }
    DateTime::parse_from_rfc3339(&t.replacen(' ', "T", 1))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A point in time as sent, as UTC: an instant with its offset (RFC 3339), epoch seconds (10
/// digits) or milliseconds (13 digits), or a local time in China Standard Time
/// (`2025-03-01 08:15:30`, `2025/3/1 8:15:30.250`, `20250301081530`, `2025年3月1日8时15分30秒`).
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    let t: String = nfkc(text).chars().collect();
    let t = t.trim();
    if let Some(i) = zoned_instant(t) {
        return Some(i);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.len() {
            10 => Utc.timestamp_opt(t.parse().ok()?, 0).single(),
            13 => Utc.timestamp_millis_opt(t.parse().ok()?).single(),
            14 => local(
                ymd(&t[..4], &t[4..6], &t[6..8])?,
                &t[8..10],
                &t[10..12],
                &t[12..],
                "",
            ),
            _ => None,
        };
    }
    let groups = digit_groups(t)?;
    match groups.as_slice() {
        [y, mo, d, h, mi] => local(ymd(y, mo, d)?, h, mi, "0", ""),
        [y, mo, d, h, mi, s] => local(ymd(y, mo, d)?, h, mi, s, ""),
        [y, mo, d, h, mi, s, frac] if t.contains('.') => local(ymd(y, mo, d)?, h, mi, s, frac),
        _ => None,
    }
}

fn local(date: NaiveDate, h: &str, mi: &str, s: &str, frac: &str) -> Option<DateTime<Utc>> {
    if h.len() > 2 || mi.len() > 2 || s.len() > 2 || frac.len() > 9 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        num(frac)? * 10u32.pow(9 - frac.len() as u32)
    };
    let time = NaiveTime::from_hms_nano_opt(num(h)?, num(mi)?, num(s)?, nanos)?;
    china_standard_time()
        .from_local_datetime(&NaiveDateTime::new(date, time))
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A statistical period (统计期) in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `2025-03`, `2025-Q1` or `2025`.
    pub label: String,
    /// Month, quarter or year.
    pub kind: PeriodType,
    /// First day.
    pub start: NaiveDate,
    /// Last day, inclusive.
    pub end: NaiveDate,
}

impl Period {
    /// The calendar year the period lies in.
    pub fn year(&self) -> i32 {
        self.start.year()
    }
}

/// The period of `months` months from `first_month` of `year`.
fn span(year: i32, first_month: u32, months: u32, kind: PeriodType) -> Option<Period> {
    let start = NaiveDate::from_ymd_opt(year, first_month, 1)?;
    let end = start
        .checked_add_months(chrono::Months::new(months))?
        .pred_opt()?;
    let label = match kind {
        PeriodType::Month => format!("{year:04}-{first_month:02}"),
        PeriodType::Quarter => format!("{year:04}-Q{}", first_month.div_ceil(3)),
        PeriodType::Year => format!("{year:04}"),
    };
    Some(Period {
        label,
        kind,
        start,
        end,
    })
}

fn quarter_period(year: i32, quarter: u32) -> Option<Period> {
    (1..=4)
        .contains(&quarter)
        .then(|| span(year, quarter * 3 - 2, 3, PeriodType::Quarter))
        .flatten()
}

/// A year as sent: `2024`, `2024年`, `2024年度`, `2024 年`.
pub fn year(text: &str) -> Option<i32> {
    let t: String = nfkc(text).chars().filter(|c| !c.is_whitespace()).collect();
    let digits = t
        .strip_suffix("年度")
        .or_else(|| t.strip_suffix('年'))
        .unwrap_or(&t);
    (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A reporting period as sent → [`Period`]: months (`2025-03`, `2025-3`, `2025/03`,
/// `2025.03`, `202503`, `2025年3月`), quarters (`2025-Q1`, `2025Q1`, `2025年第一季度`,
/// `2025年1季度`) and years (`2025`, `2025年`, `2025年度`).
pub fn period(text: &str) -> Option<Period> {
    let t: String = nfkc(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    if let Some(y) = year(&t) {
        return span(y, 1, 12, PeriodType::Year);
    }
    let y: i32 = t
        .get(..4)
        .filter(|y| y.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    let rest = &t[4..];
    let rest = rest.trim_start_matches(['-', '/', '.', '年']);
    if let Some(q) = rest.strip_prefix('Q') {
        return quarter_period(y, num(q)?);
    }
    if let Some(q) = rest.strip_prefix('第').unwrap_or(rest).strip_suffix("季度") {
        let quarter = match q {
            "一" => 1,
            "二" => 2,
            "三" => 3,
            "四" => 4,
            other => num(other)?,
        };
        return quarter_period(y, quarter);
    }
    let month = rest.strip_suffix('月').unwrap_or(rest);
    if month.is_empty() || month.len() > 2 {
        return None;
    }
    span(y, num(month)?, 1, PeriodType::Month)
}
