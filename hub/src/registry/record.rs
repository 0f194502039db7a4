//! The storage topic's records, in the shape of Confluent's `_schemas` topic:
//!
//! | key | value |
//! |---|---|
//! | `{"keytype":"SCHEMA","subject":s,"version":v,"magic":1}` | `{"subject","version","id","schema","deleted"}`, `null` = permanently deleted |
//! | `{"keytype":"CONFIG","subject":s or null,"magic":0}` | `{"compatibilityLevel":L}`, `null` = back to the default |
//! | `{"keytype":"MAX_ID","magic":0}` | `{"maxId":N}` — ours, not Confluent's, see below |
//!
//! Keys are written with a fixed field order, so equal keys are equal bytes and compaction
//! keeps only the latest value of each. Unknown key types (Confluent's `NOOP`, `MODE`, …) are
//! skipped by the reader.
//!
//! Why `MAX_ID`: ids are never reused, but a permanent delete writes a tombstone that
//! compaction eventually removes together with the record it deletes. A permanent delete
//! therefore also writes the highest id ever assigned under `MAX_ID`, so a reader starting
//! from a compacted log still knows it.

use serde::{Deserialize, Serialize};

use super::avro::AVRO;
use super::compat::CompatibilityLevel;

/// A record to produce: key and value bytes (`None` = tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRecord {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// One version of a subject.
    Schema { subject: String, version: u32 },
    /// The global (`None`) or a subject's compatibility level.
    Config { subject: Option<String> },
    /// The highest id ever assigned.
    MaxId,
}

/// A decoded SCHEMA value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct SchemaValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, rename = "schemaType")]
    pub schema_type: Option<String>,
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("key is not a registry key: {0}")]
    Key(String),
    #[error("value does not match its key: {0}")]
    Value(String),
}

#[derive(Serialize)]
struct SchemaKeyOut<'a> {
    keytype: &'static str,
    subject: &'a str,
    version: u32,
    magic: u8,
}

#[derive(Serialize)]
struct ConfigKeyOut<'a> {
    keytype: &'static str,
    subject: Option<&'a str>,
    magic: u8,
}

#[derive(Serialize)]
struct MaxIdKeyOut {
    keytype: &'static str,
    magic: u8,
}

#[derive(Serialize)]
struct SchemaValueOut<'a> {
    subject: &'a str,
    version: u32,
    id: u32,
    schema: &'a str,
    deleted: bool,
}

#[derive(Serialize, Deserialize)]
struct ConfigValue {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: String,
}

#[derive(Serialize, Deserialize)]
struct MaxIdValue {
    #[serde(rename = "maxId")]
    max_id: u32,
}

#[derive(Deserialize)]
struct RawKey {
    keytype: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    version: Option<u32>,
}

fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs of strings and integers to a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

impl Key {
    /// The key's bytes; equal keys always give equal bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Key::Schema { subject, version } => to_vec(&SchemaKeyOut {
                keytype: "SCHEMA",
                subject,
                version: *version,
                magic: 1,
            }),
            Key::Config { subject } => to_vec(&ConfigKeyOut {
                keytype: "CONFIG",
                subject: subject.as_deref(),
                magic: 0,
            }),
            Key::MaxId => to_vec(&MaxIdKeyOut {
                keytype: "MAX_ID",
                magic: 0,
            }),
        }
    }

    /// Decodes a key; `Ok(None)` for key types the registry does not use.
    pub fn decode(bytes: &[u8]) -> Result<Option<Key>, DecodeError> {
        let raw: RawKey =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Key(e.to_string()))?;
        match raw.keytype.as_str() {
            "SCHEMA" => match (raw.subject, raw.version) {
                (Some(subject), Some(version)) => Ok(Some(Key::Schema { subject, version })),
                _ => Err(DecodeError::Key(
                    "SCHEMA key without subject or version".to_owned(),
                )),
            },
            "CONFIG" => Ok(Some(Key::Config {
                subject: raw.subject,
            })),
            "MAX_ID" => Ok(Some(Key::MaxId)),
            _ => Ok(None),
        }
    }
}

/// The record registering (or soft-deleting) `subject` version `version`.
pub(crate) fn schema_record(
    subject: &str,
    version: u32,
    id: u32,
    schema: &str,
    deleted: bool,
) -> LogRecord {
    LogRecord {
        key: Key::Schema {
            subject: subject.to_owned(),
            version,
        }
        .encode(),
        value: Some(to_vec(&SchemaValueOut {
            subject,
            version,
            id,
            schema,
            deleted,
        })),
    }
}

/// The tombstone permanently deleting `subject` version `version`.
pub(crate) fn schema_tombstone(subject: &str, version: u32) -> LogRecord {
    LogRecord {
        key: Key::Schema {
            subject: subject.to_owned(),
            version,
        }
        .encode(),
        value: None,
    }
}

/// The record setting (`Some`) or clearing (`None`) a compatibility level.
pub(crate) fn config_record(subject: Option<&str>, level: Option<CompatibilityLevel>) -> LogRecord {
    LogRecord {
        key: Key::Config {
            subject: subject.map(str::to_owned),
        }
        .encode(),
        value: level.map(|level| {
            to_vec(&ConfigValue {
                compatibility_level: level.as_str().to_owned(),
            })
        }),
    }
}

/// The record keeping the highest id ever assigned.
pub(crate) fn max_id_record(max_id: u32) -> LogRecord {
    LogRecord {
        key: Key::MaxId.encode(),
        value: Some(to_vec(&MaxIdValue { max_id })),
    }
}

/// Decodes a SCHEMA value and checks it against its key and the supported schema types.
pub(crate) fn decode_schema_value(
    subject: &str,
    version: u32,
    bytes: &[u8],
) -> Result<SchemaValue, DecodeError> {
    let value: SchemaValue =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Value(e.to_string()))?;
    if value.subject != subject || value.version != version {
        return Err(DecodeError::Value(format!(
            "value is for subject '{}' version {}",
            value.subject, value.version
        )));
    }
    if let Some(t) = &value.schema_type
        && !t.eq_ignore_ascii_case(AVRO)
    {
        return Err(DecodeError::Value(format!("unsupported schemaType '{t}'")));
    }
    Ok(value)
}

/// Decodes a CONFIG value.
pub(crate) fn decode_config_value(bytes: &[u8]) -> Result<CompatibilityLevel, DecodeError> {
    let value: ConfigValue =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Value(e.to_string()))?;
    value
        .compatibility_level
        .parse()
        .map_err(|e: super::compat::UnknownLevel| DecodeError::Value(e.to_string()))
}

/// Decodes a MAX_ID value.
pub(crate) fn decode_max_id_value(bytes: &[u8]) -> Result<u32, DecodeError> {
    let value: MaxIdValue =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Value(e.to_string()))?;
    Ok(value.max_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_confluent_shape_and_round_trip() {
        let cases = [
            (
                Key::Schema {
                    subject: "raw.vehicle-value".into(),
                    version: 3,
                },
                r#"{"keytype":"SCHEMA","subject":"raw.vehicle-value","version":3,"magic":1}"#,
            ),
            (
                Key::Config { subject: None },
                r#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
            ),
            (
                Key::Config {
                    subject: Some("s".into()),
                },
                r#"{"keytype":"CONFIG","subject":"s","magic":0}"#,
            ),
            (Key::MaxId, r#"{"keytype":"MAX_ID","magic":0}"#),
        ];
        for (key, json) in cases {
            assert_eq!(String::from_utf8(key.encode()).unwrap(), json);
            assert_eq!(Key::decode(json.as_bytes()).unwrap(), Some(key));
        }
        assert_eq!(
            Key::decode(br#"{"keytype":"NOOP","magic":0}"#).unwrap(),
            None
        );
        assert!(Key::decode(b"not json").is_err());
        assert!(Key::decode(br#"{"keytype":"SCHEMA","magic":1}"#).is_err());
    }

    #[test]
    fn values_round_trip_and_are_checked_against_keys() {
        let record = schema_record("s", 2, 7, r#""string""#, true);
        let value = decode_schema_value("s", 2, record.value.as_deref().unwrap()).unwrap();
        assert_eq!((value.id, value.deleted), (7, true));
        assert!(decode_schema_value("t", 2, record.value.as_deref().unwrap()).is_err());
        let protobuf =
            br#"{"subject":"s","version":1,"id":1,"schema":"x","schemaType":"PROTOBUF"}"#;
        assert!(decode_schema_value("s", 1, protobuf).is_err());

        let config = config_record(None, Some(CompatibilityLevel::Full));
        assert_eq!(
            decode_config_value(config.value.as_deref().unwrap()).unwrap(),
            CompatibilityLevel::Full
        );
        assert!(decode_config_value(br#"{"compatibilityLevel":"SIDEWAYS"}"#).is_err());
        assert_eq!(config_record(Some("s"), None).value, None);

        let max = max_id_record(41);
        assert_eq!(
            decode_max_id_value(max.value.as_deref().unwrap()).unwrap(),
            41
        );
    }
}
