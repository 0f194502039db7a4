//! Turning a mapped record (JSON form) into the domain's typed raw record, encoded in
//! Confluent wire format under the schema registered for `raw.<domain>`, and its Kafka key.
//!
//! **Raw records are keyed by partition key** (同分区键): the identifier of the entity they
//! report, normalised as the hub normalises it — the USCC of an institution and of what it
//! reports, the VIN (else the plate) of a vehicle and of its positions, an office building's
//! property unit number (else its owner's USCC); [`schemas::partition`] has the table. The
//! connector's producers (slots and push) partition by Kafka's default (murmur2) on that key
//! ([`crate::transactor`]), so the county's, the city's and the province's reports of one
//! entity land in the partition the hub resolves it in, whichever way each level spelled the
//! identifier, and the hub resolves them where it reads them instead of sending each through
//! its repartition topic. A record without one (no valid identifier: the hub will quarantine
//! it) is keyed by its source record id, as every raw record was before; the source record
//! id is in every record's provenance either way.

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::schema::{NamesRef, ResolvedSchema};
use schemas::Domain;
use schemas::codec::{CodecError, Encoder};
use schemas::contract::{self, Record};
use schemas::partition::Partitioned;
use schemas::records::{
    RawAssetCard, RawEnergyReport, RawInstitution, RawOfficeBuilding, RawOperatingCost, RawVehicle,
    RawVehiclePosition, RawVehicleQuota,
};
use schemas::registry::RegistryClient;
use serde_json::Value;

/// Why a mapped record does not make a raw record.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// The JSON form lacks a required field or has one of the wrong shape.
    #[error("缺少必填字段或字段格式不符 (the record does not fit the raw schema): {0}")]
    Shape(#[from] serde_json::Error),
    /// A field that the raw schema has as a number holds text that is not one.
    #[error("字段 {field} 的值「{value}」不是数字 (`{value}` in `{field}` is not a number)")]
    NotANumber {
        /// The raw field, with its path inside arrays and records (`lines[2].amount`).
        field: String,
        /// The text.
        value: String,
    },
    /// The record could not be encoded.
    #[error("编码失败 (encoding failed): {0}")]
    Encode(#[from] CodecError),
}

impl RawError {
    /// A stable code for quarantine records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RawError::Shape(_) => "raw_shape",
            RawError::NotANumber { .. } => "not_a_number",
            RawError::Encode(e) => e.code(),
        }
    }
}

/// Where a raw schema has numbers (coordinates, speed), at any depth: sources send
/// everything as text, and text there is read as a number before the record is typed.
/// Computed once per schema, so a record whose schema has no numbers costs nothing.
#[derive(Debug, Default)]
struct Numbers(Vec<(String, Slot)>);

/// What a field holds that has numbers in it.
#[derive(Debug)]
enum Slot {
    /// A `double` or `float`, alone or in a union (preferred over an integer in one).
    Float,
    /// An `int` or `long`, alone or in a union.
    Integer,
    /// A record (alone or in a union) with numbers among its fields.
    Record(Numbers),
    /// An array or map whose items hold numbers.
    Items(Box<Slot>),
}

impl Numbers {
    /// The numbers of record schema `schema` (nothing for another kind of schema).
    fn of(schema: &Schema) -> Numbers {
        let names = ResolvedSchema::new(schema)
            .map(|resolved| resolved.get_names().clone())
            .unwrap_or_default();
        Numbers::of_record(schema, &names, &mut Vec::new())
    }

    fn of_record<'s>(
        schema: &'s Schema,
        names: &NamesRef<'s>,
        visiting: &mut Vec<&'s Schema>,
    ) -> Numbers {
        let Schema::Record(record) = schema else {
            return Numbers::default();
        };
        // A recursive type's inner occurrences are not followed (none of the raw schemas is
        // recursive).
        if visiting.iter().any(|s| std::ptr::eq(*s, schema)) {
            return Numbers::default();
        }
        visiting.push(schema);
        let fields = record
            .fields
            .iter()
            .filter_map(|f| Some((f.name.clone(), Slot::of(&f.schema, names, visiting)?)))
            .collect();
        visiting.pop();
        Numbers(fields)
    }

    /// Reads text as numbers where the schema has them, in place.
    fn coerce(&self, record: &mut Value) -> Result<(), RawError> {
        let Value::Object(fields) = record else {
            return Ok(());
        };
        for (name, slot) in &self.0 {
            if let Some(value) = fields.get_mut(name) {
                slot.coerce(value).map_err(|e| e.within(name))?;
            }
        }
        Ok(())
    }
}

impl Slot {
    /// The slot of a field of type `schema`, if numbers are in it.
    fn of<'s>(
        schema: &'s Schema,
        names: &NamesRef<'s>,
        visiting: &mut Vec<&'s Schema>,
    ) -> Option<Slot> {
        match schema {
            Schema::Double | Schema::Float => Some(Slot::Float),
            Schema::Int | Schema::Long => Some(Slot::Integer),
            Schema::Record(_) => {
                let numbers = Numbers::of_record(schema, names, visiting);
                (!numbers.0.is_empty()).then_some(Slot::Record(numbers))
            }
            Schema::Ref { name } => Slot::of(names.get(name)?, names, visiting),
            Schema::Array(array) => Some(Slot::Items(Box::new(Slot::of(
                &array.items,
                names,
                visiting,
            )?))),
            Schema::Map(map) => Some(Slot::Items(Box::new(Slot::of(
                &map.types, names, visiting,
            )?))),
            Schema::Union(union) => {
                let slots: Vec<Slot> = union
                    .variants()
                    .iter()
                    .filter_map(|v| Slot::of(v, names, visiting))
                    .collect();
                let rank = |s: &Slot| match s {
                    Slot::Float => 0,
                    Slot::Integer => 1,
                    _ => 2,
                };
                slots.into_iter().min_by_key(rank)
            }
            _ => None,
        }
    }

    fn coerce(&self, value: &mut Value) -> Result<(), RawError> {
        match self {
            Slot::Float | Slot::Integer => {
                let Value::String(text) = value else {
                    return Ok(());
                };
                let text = text.trim();
                let number = if matches!(self, Slot::Float) {
                    text.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .and_then(serde_json::Number::from_f64)
                } else {
                    text.parse::<i64>().ok().map(serde_json::Number::from)
                };
                let Some(number) = number else {
                    return Err(RawError::NotANumber {
                        field: String::new(),
                        value: text.to_owned(),
                    });
                };
                *value = Value::Number(number);
            }
            Slot::Record(numbers) => numbers.coerce(value)?,
            Slot::Items(slot) => match value {
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        slot.coerce(item).map_err(|e| e.within(&format!("[{i}]")))?;
                    }
                }
                Value::Object(entries) => {
                    for (key, item) in entries {
                        slot.coerce(item)
                            .map_err(|e| e.within(&format!("[{key:?}]")))?;
                    }
                }
                // Anything else is left for the typed record to accept or refuse.
                _ => {}
            },
        }
        Ok(())
    }
}

impl RawError {
    /// The error of a value inside `step` (a field name or `[index]`): its path grows outward
    /// (`lines[2].amount`) only when there is an error.
    fn within(mut self, step: &str) -> Self {
        if let RawError::NotANumber { field, .. } = &mut self {
            let joiner = if field.is_empty() || field.starts_with('[') {
                ""
            } else {
                "."
            };
            *field = format!("{step}{joiner}{field}");
        }
        self
    }
}

/// A raw record ready to write: its framed payload and the partition key of the entity it
/// reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The record in Confluent wire format.
    pub payload: Vec<u8>,
    /// [`Partitioned::partition_key`]: `None` when the record has no valid identifier.
    pub partition_key: Option<String>,
}

impl Encoded {
    /// The Kafka key — the partition key, else `record_id` (the source record id) — and the
    /// payload.
    pub fn keyed(self, record_id: String) -> (String, Vec<u8>) {
        (self.partition_key.unwrap_or(record_id), self.payload)
    }
}

macro_rules! raw_encoder {
    ($($domain:ident => $record:ty),* $(,)?) => {
        /// The encoder of one domain's raw record.
        pub enum RawEncoder {
            $(
                #[doc = concat!("`", stringify!($record), "`.")]
                $domain(Encoder<$record>),
            )*
        }

        impl RawEncoder {
            /// Registers the raw schema of `domain` and returns its encoder.
            pub async fn register(
                domain: Domain,
                registry: &RegistryClient,
            ) -> Result<Self, CodecError> {
                Ok(match domain {
                    $(Domain::$domain => RawEncoder::$domain(Encoder::register(registry).await?),)*
                })
            }

            /// The encoder of `domain`'s raw record under an already registered schema id.
            pub fn with_schema_id(domain: Domain, id: u32) -> Result<Self, CodecError> {
                Ok(match domain {
                    $(Domain::$domain => RawEncoder::$domain(Encoder::with_schema_id(id)?),)*
                })
            }

            /// The schema id written in each message.
            pub fn schema_id(&self) -> u32 {
                match self {
                    $(RawEncoder::$domain(encoder) => encoder.schema_id(),)*
                }
            }

            /// Encodes the JSON form of a raw record (with provenance) as a framed message,
            /// with its partition key. Numbers sent as text are converted in place; the record
            /// is left for a quarantine record to quote if encoding fails.
            pub fn encode(&self, record: &mut Value) -> Result<Encoded, RawError> {
                match self {
                    $(RawEncoder::$domain(encoder) => {
                        static NUMBERS: LazyLock<Numbers> = LazyLock::new(|| {
                            Numbers::of(contract::schema(<$record as Record>::SCHEMA))
                        });
                        NUMBERS.coerce(record)?;
                        let record = <$record as serde::Deserialize>::deserialize(&*record)?;
                        Ok(Encoded {
                            payload: encoder.encode(&record)?,
                            partition_key: record.partition_key(),
                        })
                    })*
                }
            }
        }
    };
}

raw_encoder! {
    Institution => RawInstitution,
    Vehicle => RawVehicle,
    VehiclePosition => RawVehiclePosition,
    VehicleQuota => RawVehicleQuota,
    OfficeBuilding => RawOfficeBuilding,
    EnergyReport => RawEnergyReport,
    AssetCard => RawAssetCard,
    OperatingCost => RawOperatingCost,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn position(latitude: &str) -> Value {
        json!({
            "provenance": {
                "source_system_id": "s", "reporting_level": "COUNTY",
                "reporter_region_code": "530114", "source_record_id": "r1",
                "received_at": "2025-03-01T00:00:00.000Z", "connector_id": "c"
            },
            "plate": "云A12345", "fix_time": "2025-03-01 08:00:00",
            "latitude": latitude, "longitude": "102.82", "datum": "WGS84", "speed_kmh": "42"
        })
    }

    #[test]
    fn numbers_are_found_and_read_at_any_depth() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "T", "fields": [
                {"name": "n", "type": ["null", "long"]},
                {"name": "lines", "type": {"type": "array", "items": {"type": "record",
                    "name": "L", "fields": [{"name": "q", "type": "double"},
                                            {"name": "s", "type": "string"}]}}},
                {"name": "one", "type": ["null", "L"]},
                {"name": "m", "type": {"type": "map", "values": "int"}},
                {"name": "text", "type": "string"}
            ]}"#,
        )
        .expect("schema");
        let numbers = Numbers::of(&schema);
        let record = |q1: &str| {
            json!({
                "n": "3", "lines": [{"q": "1.5", "s": "7"}, {"q": q1, "s": "y"}],
                "one": {"q": " 4 ", "s": "z"}, "m": {"a": "7"}, "text": "12"
            })
        };
        let mut ok = record("2");
        numbers.coerce(&mut ok).expect("coerces");
        assert_eq!(
            ok,
            json!({
                "n": 3, "lines": [{"q": 1.5, "s": "7"}, {"q": 2.0, "s": "y"}],
                "one": {"q": 4.0, "s": "z"}, "m": {"a": 7}, "text": "12"
            })
        );
        let mut absent = json!({"lines": [], "one": null});
        numbers
            .coerce(&mut absent)
            .expect("absent and null fields are left alone");

        let err = numbers
            .coerce(&mut record("N/A"))
            .expect_err("not a number");
        assert_eq!(err.code(), "not_a_number");
        assert!(
            matches!(&err, RawError::NotANumber { field, value }
                if field == "lines[1].q" && value == "N/A"),
            "{err}"
        );

        // Raw forms keep quantities as text: energy reports have no numbers to read at all.
        let energy = contract::schema(schemas::contract::SchemaName::Raw(Domain::EnergyReport));
        assert!(Numbers::of(energy).0.is_empty());
    }

    #[test]
    fn energy_reports_encode_with_their_lines() {
        let encoder = RawEncoder::with_schema_id(Domain::EnergyReport, 1).expect("encoder");
        let mut report = json!({
            "provenance": position("0")["provenance"].clone(),
            "uscc": "11530100MB0000000X", "period": "2025-03",
            "lines": [{"carrier": "电力", "amount": {"value": "12.3457", "unit": "万千瓦时"}}],
        });
        assert!(encoder.encode(&mut report).is_ok());
        report["lines"][0]["amount"] = json!("12.3457");
        assert_eq!(
            encoder.encode(&mut report).expect_err("shape").code(),
            "raw_shape"
        );
    }

    #[test]
    fn records_are_keyed_by_their_partition_key_else_their_record_id() {
        let encoder = RawEncoder::with_schema_id(Domain::VehiclePosition, 1).expect("encoder");
        for (vin, plate, key) in [
            (None, Some("云Ａ·１２３４５"), "云A12345"),
            (
                Some("lsvam4187c2184847"),
                Some("云A12345"),
                "LSVAM4187C2184847",
            ),
            (Some("LSVAM4187C2184848"), Some("云A12345"), "r1"),
            (None, None, "r1"),
        ] {
            let mut record = position("24.88");
            record["vin"] = json!(vin);
            record["plate"] = json!(plate);
            let encoded = encoder.encode(&mut record).expect("encodes");
            assert_eq!(encoded.keyed("r1".to_owned()).0, key, "{vin:?} {plate:?}");
        }
    }

    #[test]
    fn text_becomes_numbers_where_the_schema_says() {
        let encoder = RawEncoder::with_schema_id(Domain::VehiclePosition, 1).expect("encoder");
        assert!(encoder.encode(&mut position("24.88")).is_ok());
        for bad in ["N/A", "", "NaN"] {
            let err = encoder.encode(&mut position(bad)).expect_err(bad);
            assert_eq!(err.code(), "not_a_number", "{bad}: {err}");
        }
    }
}
