//! Declarative mapping: one source record (field name → text, in the system's own names) becomes
//! the JSON form of the domain's raw record, as [`MappingConfig`] says: renamed text, value
//! maps, dates, quantities with their units, constants, and arrays built from one column per
//! element (energy carriers, cost items). Values stay as sent; the hub normalises them. Pure:
//! no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::config::{ArrayMapping, MappingConfig};

/// A source record as `http_poll` and `sql_poll` hand it over: its fields by the system's names,
/// values as text.
pub type SourceFields = BTreeMap<String, String>;

/// A source record: the text of its fields by the system's own names. It serialises as a JSON
/// object of those fields, which a quarantine record quotes.
pub trait SourceRecord: serde::Serialize {
    /// The text of field `name`, if the record has that field.
    fn field(&self, name: &str) -> Option<&str>;
}

impl SourceRecord for SourceFields {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// A JSON object's fields as source fields: top-level values as text (numbers and booleans
/// written as JSON writes them, nested values as their JSON text; nulls left out). How
/// `http_poll` and `push` hand a system's JSON records to [`map`], so both map one payload
/// alike.
pub fn from_json(object: &Map<String, Value>) -> SourceFields {
    object
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) => Some((k.clone(), s.clone())),
            other => Some((k.clone(), other.to_string())),
        })
        .collect()
}

/// A source record mapped to the raw form, before provenance is added.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The source record id (`provenance.source_record_id`; the Kafka key of a record without
    /// a partition key, see [`crate::raw`]).
    pub record_id: String,
    /// When the source last changed the record, if it says.
    pub source_timestamp: Option<DateTime<Utc>>,
    /// The raw record's fields (JSON form), without `provenance`.
    pub fields: Map<String, Value>,
}

/// Why a source record cannot be mapped; it goes to quarantine with this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MappingError {
    /// Stable code for programs and metrics.
    pub code: &'static str,
    /// The source field at fault.
    pub field: String,
    /// Chinese first, for the people who fix the source system.
    pub message: String,
}

impl MappingError {
    fn new(code: &'static str, field: &str, message: String) -> Self {
        MappingError {
            code,
            field: field.to_owned(),
            message,
        }
    }
}

/// China Standard Time: local times of Chinese sources (UTC+8, no daylight saving).
fn china_standard_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// Text of a source field, trimmed; `None` when absent or blank.
fn value<'a>(fields: &'a impl SourceRecord, name: &str) -> Option<&'a str> {
    fields.field(name).map(str::trim).filter(|v| !v.is_empty())
}

/// The source record id of `source` (its id fields joined with `|`), if every one has a value.
pub fn record_id(config: &MappingConfig, source: &impl SourceRecord) -> Option<String> {
    config
        .record_id
        .iter()
        .map(|name| value(source, name))
        .collect::<Option<Vec<_>>>()
        .map(|parts| parts.join("|"))
}

/// The identity of a source record: a 64-bit hash of its record id and its version (the
/// configured `version_field`, else the record's whole content). Two records with equal
/// identities are the same report sent twice; `None` when the record has no id.
pub fn identity(config: &MappingConfig, source: &impl SourceRecord) -> Option<u64> {
    use sha2::{Digest as _, Sha256};
    let id = record_id(config, source)?;
    let mut hash = Sha256::new();
    hash.update(id.as_bytes());
    hash.update([0]);
    match config
        .version_field
        .as_deref()
        .and_then(|name| value(source, name))
    {
        Some(version) => hash.update(version.as_bytes()),
        None => {
            hash.update([1]);
            hash.update(serde_json::to_vec(source).unwrap_or_default());
        }
    }
    Some(crate::digest::short(&hash.finalize()))
}

/// Maps one source record.
pub fn map(config: &MappingConfig, source: &impl SourceRecord) -> Result<Mapped, MappingError> {
    let mut id_parts = Vec::with_capacity(config.record_id.len());
    for name in &config.record_id {
        let part = value(source, name).ok_or_else(|| {
            MappingError::new(
                "record_id_missing",
                name,
                format!("记录标识字段「{name}」为空或缺失 (record id field `{name}` is empty)"),
            )
        })?;
        id_parts.push(part);
    }

    let mut fields = Map::new();
    for (target, constant) in &config.constants {
        fields.insert(target.clone(), json!(constant));
    }
    for (target, name) in &config.fields {
        if let Some(text) = value(source, name) {
            let text = config
                .values
                .get(target)
                .and_then(|map| map.get(text))
                .map_or(text, String::as_str);
            let text = match config.dates.get(target) {
                Some(format) => iso_date(text, format).ok_or_else(|| {
                    MappingError::new(
                        "date_format",
                        name,
                        format!(
                            "字段「{name}」的值「{text}」不符合日期格式 {format} \
                             (`{text}` does not match the date format `{format}`)"
                        ),
                    )
                })?,
                None => text.to_owned(),
            };
            fields.insert(target.clone(), json!(text));
        }
    }
    for (target, q) in &config.quantities {
        if let Some(quantity) =
            quantity(source, &q.field, q.unit.as_deref(), q.unit_field.as_deref())?
        {
            fields.insert(target.clone(), quantity);
        }
    }
    for (target, array) in &config.arrays {
        fields.insert(target.clone(), Value::Array(elements(array, source)?));
    }

    let source_timestamp = match &config.source_timestamp {
        Some(ts) => match value(source, &ts.field) {
            Some(text) => Some(parse_local_time(text, &ts.format).ok_or_else(|| {
                MappingError::new(
                    "timestamp_format",
                    &ts.field,
                    format!(
                        "字段「{}」的值「{text}」不符合时间格式 {} (`{text}` does not match `{}`)",
                        ts.field, ts.format, ts.format
                    ),
                )
            })?),
            None => None,
        },
        None => None,
    };

    Ok(Mapped {
        record_id: id_parts.join("|"),
        source_timestamp,
        fields,
    })
}

/// The raw quantity (`{"value", "unit"}`, the value as sent) of source field `field`, or
/// `None` when it is blank; the unit is `unit`, else the text of `unit_field`.
fn quantity(
    source: &impl SourceRecord,
    field: &str,
    unit: Option<&str>,
    unit_field: Option<&str>,
) -> Result<Option<Value>, MappingError> {
    let Some(number) = value(source, field) else {
        return Ok(None);
    };
    if !is_decimal(number) {
        return Err(MappingError::new(
            "quantity_not_numeric",
            field,
            format!("字段「{field}」的值「{number}」不是数字 (`{number}` is not a number)"),
        ));
    }
    let unit = match (unit, unit_field) {
        (Some(unit), _) => unit,
        (None, Some(unit_field)) => value(source, unit_field).ok_or_else(|| {
            MappingError::new(
                "unit_missing",
                unit_field,
                format!("计量单位字段「{unit_field}」为空 (unit field `{unit_field}` is empty)"),
            )
        })?,
        (None, None) => "",
    };
    Ok(Some(json!({ "value": number, "unit": unit })))
}

/// The elements of a raw array: one per column with a value, in column order, each holding
/// the column's label, its quantity and any further quantities of the element.
fn elements(array: &ArrayMapping, source: &impl SourceRecord) -> Result<Vec<Value>, MappingError> {
    let mut elements = Vec::with_capacity(array.columns.len());
    for column in &array.columns {
        let main = quantity(
            source,
            &column.field,
            column.unit.as_deref(),
            column.unit_field.as_deref(),
        )?;
        let mut element = Map::new();
        for (name, q) in &column.quantities {
            if let Some(extra) =
                quantity(source, &q.field, q.unit.as_deref(), q.unit_field.as_deref())?
            {
                element.insert(name.clone(), extra);
            }
        }
        let Some(main) = main else {
            // Nothing reported for this column: no element — unless a further quantity (a
            // cost without the amount it paid for) would be lost with it.
            if let Some(name) = column.quantities.keys().find(|n| element.contains_key(*n)) {
                let (field, label) = (&column.field, &column.label);
                return Err(MappingError::new(
                    "element_quantity_missing",
                    field,
                    format!(
                        "「{label}」有{name}而字段「{field}」为空 (`{label}` has `{name}` but \
                         `{field}`, its required quantity, is empty)"
                    ),
                ));
            }
            continue;
        };
        element.insert(array.label_field.clone(), json!(column.label));
        element.insert(array.quantity_field.clone(), main);
        elements.push(Value::Object(element));
    }
    Ok(elements)
}

/// A date or date-time in `format` rewritten as ISO 8601 (`2025-03-01`, `2025-03-01T08:15:30`).
fn iso_date(text: &str, format: &str) -> Option<String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, format) {
        return Some(date.format("%Y-%m-%d").to_string());
    }
    NaiveDateTime::parse_from_str(text, format)
        .ok()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// A local (China Standard Time) or zoned time in `format`, as UTC.
fn parse_local_time(text: &str, format: &str) -> Option<DateTime<Utc>> {
    if let Ok(zoned) = DateTime::parse_from_str(text, format) {
        return Some(zoned.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, format).ok()?;
    china_standard_time()
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether `text` is a plain decimal number (sign, digits, one point; full-width digits count,
/// the hub folds them). Thousands separators and exponents are refused rather than guessed at.
fn is_decimal(text: &str) -> bool {
    let digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let digits = text.strip_prefix(['-', '+', '－']).unwrap_or(text);
    let (whole, fraction) = match digits.split_once(['.', '．']) {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| s.chars().all(digit);
    match fraction {
        None => !whole.is_empty() && all_digits(whole),
        Some(f) => (!whole.is_empty() || !f.is_empty()) && all_digits(whole) && all_digits(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ColumnMapping, QuantityMapping, TimestampMapping};

    fn config() -> MappingConfig {
        MappingConfig {
            record_id: vec!["车架号".into()],
            version_field: None,
            fields: BTreeMap::from([
                ("vin".into(), "车架号".into()),
                ("plate".into(), "号牌号码".into()),
                ("energy_type".into(), "能源类型".into()),
                ("purchase_date".into(), "购置日期".into()),
            ]),
            quantities: BTreeMap::from([(
                "purchase_price".into(),
                QuantityMapping {
                    field: "购置价格".into(),
                    unit: Some("万元".into()),
                    unit_field: None,
                },
            )]),
            values: BTreeMap::from([(
                "energy_type".into(),
                BTreeMap::from([("纯电动".into(), "BEV".into())]),
            )]),
            dates: BTreeMap::from([("purchase_date".into(), "%Y年%m月%d日".into())]),
            constants: BTreeMap::from([("status".into(), "在用".into())]),
            source_timestamp: Some(TimestampMapping {
                field: "更新时间".into(),
                format: "%Y-%m-%d %H:%M:%S".into(),
            }),
            arrays: BTreeMap::new(),
        }
    }

    fn column(label: &str, field: &str, unit: &str) -> ColumnMapping {
        ColumnMapping {
            label: label.into(),
            field: field.into(),
            unit: Some(unit.into()),
            unit_field: None,
            quantities: BTreeMap::new(),
        }
    }

    /// An energy report with one column per carrier: electricity with the unit in the header,
    /// gas with a unit column, gasoline with what it cost.
    fn energy_config() -> MappingConfig {
        let gas = ColumnMapping {
            unit: None,
            unit_field: Some("天然气单位".into()),
            ..column("天然气", "天然气", "")
        };
        let gasoline = ColumnMapping {
            quantities: BTreeMap::from([(
                "cost".into(),
                QuantityMapping {
                    field: "油费".into(),
                    unit: Some("元".into()),
                    unit_field: None,
                },
            )]),
            ..column("汽油", "汽油(升)", "升")
        };
        MappingConfig {
            record_id: vec!["统一社会信用代码".into(), "统计期".into()],
            fields: BTreeMap::from([("uscc".into(), "统一社会信用代码".into())]),
            arrays: BTreeMap::from([(
                "lines".into(),
                ArrayMapping {
                    label_field: "carrier".into(),
                    quantity_field: "amount".into(),
                    columns: vec![column("电力", "电力(万千瓦时)", "万千瓦时"), gas, gasoline],
                },
            )]),
            ..MappingConfig::default()
        }
    }

    #[test]
    fn arrays_from_columns() {
        let id = [
            ("统一社会信用代码", "11530100MB0000000X"),
            ("统计期", "2025-03"),
        ];
        let with = |cells: &[(&str, &str)]| {
            let mut r = row(&id);
            r.extend(row(cells));
            r
        };
        let line = |carrier: &str, value: &str, unit: &str| json!({"carrier": carrier, "amount": {"value": value, "unit": unit}});
        let ok = [
            (
                "every column",
                with(&[
                    ("电力(万千瓦时)", "12.3457"),
                    ("天然气", "830.5"),
                    ("天然气单位", "立方米"),
                    ("汽油(升)", "120"),
                    ("油费", "1032.00"),
                ]),
                json!([
                    line("电力", "12.3457", "万千瓦时"),
                    line("天然气", "830.5", "立方米"),
                    {"carrier": "汽油", "amount": {"value": "120", "unit": "升"},
                     "cost": {"value": "1032.00", "unit": "元"}},
                ]),
            ),
            (
                "blank and missing cells make no line",
                with(&[("电力(万千瓦时)", "3"), ("天然气", "  ")]),
                json!([line("电力", "3", "万千瓦时")]),
            ),
            ("nothing reported", with(&[]), json!([])),
            (
                "a reported zero is a line",
                with(&[("汽油(升)", "0")]),
                json!([line("汽油", "0", "升")]),
            ),
            (
                "values as sent, trimmed",
                with(&[("电力(万千瓦时)", " １２．５ ")]),
                json!([line("电力", "１２．５", "万千瓦时")]),
            ),
        ];
        for (case, input, lines) in ok {
            let mapped = map(&energy_config(), &input).expect(case);
            assert_eq!(mapped.record_id, "11530100MB0000000X|2025-03", "{case}");
            assert_eq!(mapped.fields["lines"], lines, "{case}");
        }

        let failures = [
            (
                with(&[("电力(万千瓦时)", "十二")]),
                "quantity_not_numeric",
                "电力(万千瓦时)",
            ),
            (with(&[("天然气", "830.5")]), "unit_missing", "天然气单位"),
            (
                with(&[("油费", "1032")]),
                "element_quantity_missing",
                "汽油(升)",
            ),
            (
                with(&[("汽油(升)", "120"), ("油费", "N/A")]),
                "quantity_not_numeric",
                "油费",
            ),
        ];
        for (input, code, field) in failures {
            let err = map(&energy_config(), &input).expect_err(code);
            assert_eq!((err.code, err.field.as_str()), (code, field), "{err}");
        }
    }

    fn row(pairs: &[(&str, &str)]) -> SourceFields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn table() {
        let full = [
            ("车架号", "LSVAU2180N2183294"),
            ("号牌号码", "云A·D12345"),
            ("能源类型", "纯电动"),
            ("购置日期", "2021年3月5日"),
            ("购置价格", "18.5"),
            ("更新时间", "2025-03-01 08:00:00"),
        ];
        let ok = map(&config(), &row(&full)).expect("maps");
        assert_eq!(ok.record_id, "LSVAU2180N2183294");
        assert_eq!(
            Value::Object(ok.fields),
            json!({
                "vin": "LSVAU2180N2183294",
                "plate": "云A·D12345",
                "energy_type": "BEV",
                "purchase_date": "2021-03-05",
                "purchase_price": {"value": "18.5", "unit": "万元"},
                "status": "在用",
            })
        );
        assert_eq!(
            ok.source_timestamp.map(|t| t.to_rfc3339()),
            Some("2025-03-01T00:00:00+00:00".to_owned()),
            "local time is China Standard Time"
        );

        let with = |field: &str, v: &str| {
            let mut r = row(&full);
            r.insert(field.to_owned(), v.to_owned());
            r
        };
        let failures = [
            (with("车架号", "  "), "record_id_missing", "车架号"),
            (with("购置日期", "2021-03-05"), "date_format", "购置日期"),
            (
                with("购置价格", "十八万"),
                "quantity_not_numeric",
                "购置价格",
            ),
            (
                with("购置价格", "1,800"),
                "quantity_not_numeric",
                "购置价格",
            ),
            (with("更新时间", "昨天"), "timestamp_format", "更新时间"),
        ];
        for (input, code, field) in failures {
            let err = map(&config(), &input).expect_err(code);
            assert_eq!((err.code, err.field.as_str()), (code, field), "{err}");
        }

        let sparse =
            map(&config(), &row(&[("车架号", "X")])).expect("optional fields may be absent");
        assert_eq!(
            Value::Object(sparse.fields),
            json!({"vin": "X", "status": "在用"})
        );
    }

    #[test]
    fn decimals() {
        for (text, ok) in [
            ("12", true),
            ("-0.5", true),
            ("3.", true),
            (".5", true),
            ("", false),
            (".", false),
            ("1e3", false),
            ("1,000", false),
            ("１２．５", true),
            ("1.2.3", false),
        ] {
            assert_eq!(is_decimal(text), ok, "{text:?}");
        }
    }

    #[test]
    fn identity_is_the_record_id_and_its_version() {
        let config = config();
        let a = row(&[("车架号", "V1"), ("号牌号码", "云A1")]);
        let same = row(&[("车架号", "V1"), ("号牌号码", "云A1")]);
        let revised = row(&[("车架号", "V1"), ("号牌号码", "云A2")]);
        let other = row(&[("车架号", "V2"), ("号牌号码", "云A1")]);
        let id = |r: &SourceFields| identity(&config, r).expect("has an id");
        assert_eq!(id(&a), id(&same), "the same report twice");
        assert_ne!(
            id(&a),
            id(&revised),
            "same id, other content: a new version"
        );
        assert_ne!(id(&a), id(&other));
        assert_eq!(identity(&config, &row(&[("号牌号码", "云A1")])), None);

        let versioned = MappingConfig {
            version_field: Some("更新时间".into()),
            ..config.clone()
        };
        let at = |t: &str, plate: &str| {
            identity(
                &versioned,
                &row(&[("车架号", "V1"), ("号牌号码", plate), ("更新时间", t)]),
            )
        };
        assert_eq!(
            at("2025-03-01", "云A1"),
            at("2025-03-01", "云A2"),
            "the version field decides"
        );
        assert_ne!(at("2025-03-01", "云A1"), at("2025-03-02", "云A1"));
    }
}
