//! Turning a mapped record (JSON form) into the domain's typed raw record, encoded in
//! Confluent wire format under the schema registered for `raw.<domain>`.

use apache_avro::Schema;
use schemas::Domain;
use schemas::codec::{CodecError, Encoder};
use schemas::contract::{self, Record};
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
        /// The raw field.
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

/// Sources send everything as text; where the raw schema has a number (coordinates, speed),
/// the text is read as one. Top-level fields only: nested records are not mapped from flat
/// sources.
fn coerce_numbers(record: &mut Value, schema: &Schema) -> Result<(), RawError> {
    let (Value::Object(fields), Schema::Record(record_schema)) = (record, schema) else {
        return Ok(());
    };
    for field in &record_schema.fields {
        let Some(value) = fields.get_mut(&field.name) else {
            continue;
        };
        let Value::String(text) = value else {
            continue;
        };
        let kinds: Vec<&Schema> = match &field.schema {
            Schema::Union(union) => union.variants().iter().collect(),
            other => vec![other],
        };
        let number = if kinds
            .iter()
            .any(|k| matches!(k, Schema::Double | Schema::Float))
        {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
        } else if kinds
            .iter()
            .any(|k| matches!(k, Schema::Int | Schema::Long))
        {
            text.trim()
                .parse::<i64>()
                .ok()
                .map(serde_json::Number::from)
        } else {
            continue;
        };
        match number {
            Some(n) => *value = Value::Number(n),
            None => {
                return Err(RawError::NotANumber {
                    field: field.name.clone(),
                    value: text.clone(),
                });
            }
        }
    }
    Ok(())
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

            /// Encodes the JSON form of a raw record (with provenance) as a framed message.
            /// Numbers sent as text are converted in place; the record is left for a
            /// quarantine record to quote if encoding fails.
            pub fn encode(&self, record: &mut Value) -> Result<Vec<u8>, RawError> {
                match self {
                    $(RawEncoder::$domain(encoder) => {
                        coerce_numbers(record, contract::schema(<$record as Record>::SCHEMA))?;
                        let record = <$record as serde::Deserialize>::deserialize(&*record)?;
                        Ok(encoder.encode(&record)?)
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
    fn text_becomes_numbers_where_the_schema_says() {
        let encoder = RawEncoder::with_schema_id(Domain::VehiclePosition, 1).expect("encoder");
        assert!(encoder.encode(&mut position("24.88")).is_ok());
        for bad in ["N/A", "", "NaN"] {
            let err = encoder.encode(&mut position(bad)).expect_err(bad);
            assert_eq!(err.code(), "not_a_number", "{bad}: {err}");
        }
    }
}
