//! Encoding and decoding of contract records in Confluent's wire format.
//!
//! Writers and readers are built once per schema id and cached — a schema is never parsed or
//! resolved per message. Records written with the current schema are written and read by
//! serde_avro_fast's schema-aware serde straight to and from the Rust type: apache-avro's serde
//! path costs 3–5 times as much per record (a hashed field lookup per field written, a hashed
//! named-type lookup per nested record), which `ops/bench/codec` measures. A message written
//! with an older version goes through apache-avro's schema resolution (writer → reader) first;
//! apache-avro also owns parsing, canonical forms and compatibility.

use std::collections::HashMap;
use std::io::BufRead;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::{self, Record};
use crate::logical;
use crate::registry::{RegistryClient, RegistryError};
use crate::wire::{self, WireError};

/// Why a record could not be encoded or decoded; each variant has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not Confluent-framed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The Avro data does not match the schema (or the value does not fit it).
    #[error("avro: {0}")]
    Avro(#[from] Box<apache_avro::Error>),
    /// The value does not fit the schema.
    #[error("avro: {0}")]
    Encode(#[from] serde_avro_fast::ser::SerError),
    /// The datum does not match the schema.
    #[error("avro: {0}")]
    Decode(#[from] serde_avro_fast::de::DeError),
    /// The datum decoded, but bytes were left over: the writer used another schema.
    #[error("{0} bytes left after the datum: written with a different schema?")]
    TrailingBytes(usize),
    /// The schema id is unknown to the registry, or the registry could not be asked.
    #[error("schema id {id}: {source}")]
    Registry {
        /// The id from the message header.
        id: u32,
        /// What the registry said.
        source: RegistryError,
    },
    /// Registering the writer's schema failed.
    #[error("registering {subject}: {source}")]
    Register {
        /// The subject.
        subject: String,
        /// What the registry said.
        source: RegistryError,
    },
    /// The writer's schema cannot be read as the expected record (not a compatible version).
    #[error("schema id {id} cannot be read as {expected}: {reason}")]
    Incompatible {
        /// The id from the message header.
        id: u32,
        /// The reader's full schema name.
        expected: String,
        /// Why not.
        reason: String,
    },
}

impl CodecError {
    /// A stable, bounded code for metric labels and quarantine records.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::Wire(WireError::TooShort(_)) => "wire_too_short",
            CodecError::Wire(WireError::BadMagic(_)) => "wire_bad_magic",
            CodecError::Avro(_) | CodecError::Encode(_) | CodecError::Decode(_) => "avro_invalid",
            CodecError::TrailingBytes(_) => "avro_trailing_bytes",
            CodecError::Registry { .. } => "schema_unavailable",
            CodecError::Register { .. } => "schema_register_failed",
            CodecError::Incompatible { .. } => "schema_incompatible",
        }
    }
}

impl From<apache_avro::Error> for CodecError {
    fn from(e: apache_avro::Error) -> Self {
        CodecError::Avro(Box::new(e))
    }
}

/// Encodes one value as a plain Avro binary datum (no framing). Builds a writer per call: for
/// streams use [`Encoder`].
pub fn encode_datum<T: Serialize>(schema: &Schema, value: &T) -> Result<Vec<u8>, CodecError> {
    let writer = GenericDatumWriter::builder(schema)
        .human_readable(false)
        .build()?;
    Ok(writer.write_ser_to_vec(value)?)
}

/// Decodes one plain Avro binary datum written with `schema`. Builds a reader per call: for
/// streams use [`Decoder`].
pub fn decode_datum<T: DeserializeOwned>(schema: &Schema, bytes: &[u8]) -> Result<T, CodecError> {
    let reader = GenericDatumReader::builder(schema)
        .human_readable(false)
        .build()?;
    read_exact(&reader, bytes)
}

fn read_exact<T: DeserializeOwned>(
    reader: &GenericDatumReader<'_>,
    mut bytes: &[u8],
) -> Result<T, CodecError> {
    let value = reader.read_deser(&mut bytes)?;
    match bytes.len() {
        0 => Ok(value),
        n => Err(CodecError::TrailingBytes(n)),
    }
}

/// Writes records of type `T` in Confluent's wire format under one registered schema id.
pub struct Encoder<T: Record> {
    schema_id: u32,
    schema: &'static serde_avro_fast::Schema,
    record: PhantomData<fn(&T)>,
}

impl<T: Record> Encoder<T> {
    /// Registers `T`'s schema under its subject (`<topic>-value`) and returns an encoder for the
    /// id the registry gave it.
    pub async fn register(registry: &RegistryClient) -> Result<Self, CodecError> {
        let subject = T::SCHEMA.subject();
        let id = registry
            .register(&subject, contract::schema_json(T::SCHEMA))
            .await
            .map_err(|source| CodecError::Register { subject, source })?;
        Self::with_schema_id(id)
    }

    /// An encoder that labels records with `schema_id`, which must be the registry's id of
    /// `T`'s schema.
    pub fn with_schema_id(schema_id: u32) -> Result<Self, CodecError> {
        Ok(Encoder {
            schema_id,
            schema: contract::binary(T::SCHEMA),
            record: PhantomData,
        })
    }

    /// The schema id written in each message's header.
    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    /// Appends one framed record to `out` (which may be a reused buffer).
    pub fn encode_into(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        wire::write_header(out, self.schema_id);
        // Each field is checked against the schema as it is written.
        let mut config = serde_avro_fast::ser::SerializerConfig::new(self.schema);
        let written =
            logical::avro_binary(|| serde_avro_fast::to_datum(value, &mut *out, &mut config));
        if let Err(e) = written {
            out.truncate(start);
            return Err(e.into());
        }
        Ok(())
    }

    /// One framed record.
    pub fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(value, &mut out)?;
        Ok(out)
    }
}

self_cell::self_cell!(
    /// A reader for data written with an older schema version: owns the writer's schema and the
    /// datum reader that borrows it.
    struct WriterReader {
        owner: Schema,
        #[not_covariant]
        dependent: GenericDatumReader,
    }
);

/// How messages with one schema id are read.
enum Reader {
    /// Written with the reader's own schema: schema-aware serde straight into `T`.
    Current(&'static serde_avro_fast::Schema),
    /// Written with an older version that [`build_reader`] found the reader can read: decode
    /// with the writer's schema, resolve to the reader's (Avro's rules: defaults for new fields,
    /// promotions such as `string` → `["null","string"]`), then convert into `T`.
    Older {
        /// The writer's schema and its datum reader.
        writer: WriterReader,
        /// The reader's schema.
        reader: &'static Schema,
        /// The named types of the reader's schema, resolved once.
        names: ResolvedSchema<'static>,
    },
}

impl Reader {
    fn read<T: DeserializeOwned>(&self, datum: &[u8]) -> Result<T, CodecError> {
        match self {
            Reader::Current(schema) => logical::avro_binary(|| {
                let mut state = serde_avro_fast::de::DeserializerState::from_slice(datum, schema);
                let value = T::deserialize(state.deserializer())?;
                match state.into_reader().fill_buf().map_or(0, <[u8]>::len) {
                    0 => Ok(value),
                    n => Err(CodecError::TrailingBytes(n)),
                }
            }),
            Reader::Older {
                writer,
                reader,
                names,
            } => {
                let mut value = writer.with_dependent(|_, r| {
                    let mut bytes = datum;
                    let value = r.read_value(&mut bytes)?;
                    match bytes.len() {
                        0 => Ok(value),
                        n => Err(CodecError::TrailingBytes(n)),
                    }
                })?;
                widen_decimals(&mut value);
                let value = value.resolve_with_names(reader, names.get_names())?;
                Ok(apache_avro::from_value(&value)?)
            }
        }
    }
}

/// Sign-extends every decimal to 16 bytes. The number is unchanged, but apache-avro 0.22's
/// resolution otherwise rejects a bytes-backed decimal shorter than its declared precision could
/// need — nearly every real amount.
fn widen_decimals(value: &mut Value) {
    match value {
        Value::Decimal(d) => {
            if let Ok(bytes) = Vec::<u8>::try_from(&*d)
                && bytes.len() < 16
            {
                let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    0xFF
                } else {
                    0
                };
                let mut wide = vec![fill; 16 - bytes.len()];
                wide.extend_from_slice(&bytes);
                *d = apache_avro::Decimal::from(wide);
            }
        }
        Value::Union(_, inner) => widen_decimals(inner),
        Value::Array(items) => items.iter_mut().for_each(widen_decimals),
        Value::Map(entries) => entries.values_mut().for_each(widen_decimals),
        Value::Record(fields) => fields.iter_mut().for_each(|(_, v)| widen_decimals(v)),
        _ => {}
    }
}

/// Reads Confluent-framed records of type `T`, whatever version of `T`'s schema wrote them.
pub struct Decoder<T: Record> {
    registry: Arc<RegistryClient>,
    readers: RwLock<HashMap<u32, Arc<Reader>>>,
    record: PhantomData<fn() -> T>,
}

impl<T: Record> Decoder<T> {
    /// A decoder that asks `registry` for schema ids it has not seen.
    pub fn new(registry: Arc<RegistryClient>) -> Self {
        Decoder {
            registry,
            readers: RwLock::new(HashMap::new()),
            record: PhantomData,
        }
    }

    /// Decodes one framed record, fetching the writer's schema on the first message with a
    /// new schema id.
    pub async fn decode(&self, message: &[u8]) -> Result<T, CodecError> {
        let (id, datum) = wire::split(message)?;
        let reader = match self.cached(id) {
            Some(reader) => reader,
            None => self.prepare(id).await?,
        };
        reader.read(datum)
    }

    /// Decodes one framed record if its schema id was seen before; `Ok(None)` otherwise (then
    /// call [`Decoder::decode`]). Never waits.
    pub fn try_decode_cached(&self, message: &[u8]) -> Result<Option<T>, CodecError> {
        let (id, datum) = wire::split(message)?;
        self.cached(id).map(|reader| reader.read(datum)).transpose()
    }

    /// Builds the reader for schema id `id` from its known text, without asking the registry —
    /// for a process that registered the schema itself and so knows its id.
    pub fn preload(&self, id: u32, writer_schema: &str) -> Result<(), CodecError> {
        let reader = Arc::new(build_reader(id, T::SCHEMA, writer_schema)?);
        self.readers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, reader);
        Ok(())
    }

    fn cached(&self, id: u32) -> Option<Arc<Reader>> {
        self.readers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Builds the reader for schema id `id` and caches it.
    async fn prepare(&self, id: u32) -> Result<Arc<Reader>, CodecError> {
        let text = self
            .registry
            .schema_by_id(id)
            .await
            .map_err(|source| CodecError::Registry { id, source })?;
        self.preload(id, &text)?;
        Ok(self
            .cached(id)
            .expect("preload inserted the reader for this id"))
    }
}

fn build_reader(
    id: u32,
    name: contract::SchemaName,
    writer_text: &str,
) -> Result<Reader, CodecError> {
    let reader_schema: &'static Schema = contract::schema(name);
    let writer = Schema::parse_str(writer_text)?;
    if writer.canonical_form() == reader_schema.canonical_form() {
        return Ok(Reader::Current(contract::binary(name)));
    }
    if let Err(e) =
        apache_avro::schema_compatibility::SchemaCompatibility::can_read(&writer, reader_schema)
    {
        return Err(CodecError::Incompatible {
            id,
            expected: name.full_name(),
            reason: e.to_string(),
        });
    }
    let writer = WriterReader::try_new(writer, |writer| {
        GenericDatumReader::builder(writer)
            .human_readable(false)
            .build()
    })?;
    Ok(Reader::Older {
        writer,
        reader: reader_schema,
        names: ResolvedSchema::try_from(reader_schema)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use apache_avro::schema::{Name, ResolvedSchema};
    use apache_avro::types::Value;
    use serde_json::Value as Json;

    use super::*;
    use crate::contract::SchemaName;

    /// A value of every field of `schema`, taking the non-null branch of unions, so that reading
    /// it exercises every field.
    pub(crate) fn sample(schema: &Schema) -> Value {
        let resolved = ResolvedSchema::try_from(schema).expect("schema resolves");
        sample_at(schema, resolved.get_names())
    }

    fn sample_at(schema: &Schema, names: &HashMap<Name, &Schema>) -> Value {
        match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => Value::Boolean(true),
            Schema::Int => Value::Int(7),
            Schema::Long => Value::Long(7),
            Schema::Float => Value::Float(1.5),
            Schema::Double => Value::Double(24.88),
            Schema::Bytes => Value::Bytes(vec![1, 2, 3]),
            Schema::String => Value::String("示例".to_owned()),
            Schema::Array(a) => Value::Array(vec![sample_at(&a.items, names)]),
            Schema::Map(m) => Value::Map(HashMap::from([(
                "k".to_owned(),
                sample_at(&m.types, names),
            )])),
            Schema::Union(u) => {
                let (index, branch) = u
                    .variants()
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !matches!(v, Schema::Null))
                    .unwrap_or((0, &Schema::Null));
                Value::Union(index as u32, Box::new(sample_at(branch, names)))
            }
            Schema::Record(r) => Value::Record(
                r.fields
                    .iter()
                    .map(|f| (f.name.clone(), sample_at(&f.schema, names)))
                    .collect(),
            ),
            Schema::Enum(e) => Value::Enum(0, e.symbols[0].clone()),
            Schema::Fixed(f) => Value::Fixed(f.size, vec![0; f.size]),
            Schema::Decimal(_) => {
                Value::Decimal(apache_avro::Decimal::from(vec![0x01, 0xE2, 0x40]))
            }
            Schema::Date => Value::Date(20_000),
            Schema::TimestampMillis => Value::TimestampMillis(1_740_787_200_000),
            Schema::TimestampMicros => Value::TimestampMicros(1_740_787_200_000_000),
            Schema::Ref { name } => sample_at(names[name], names),
            other => panic!("no sample for {other:?}"),
        }
    }

    /// The schema as an older writer might have had it: every field with a default removed,
    /// except fields that define a named type (later fields may refer to it).
    pub(crate) fn without_defaulted_fields(text: &str) -> String {
        fn defines_named_type(json: &Json) -> bool {
            match json {
                Json::Object(obj) => {
                    obj.contains_key("name")
                        && obj.contains_key("type")
                        && matches!(obj["type"].as_str(), Some("record" | "enum" | "fixed"))
                        || obj.values().any(defines_named_type)
                }
                Json::Array(items) => items.iter().any(defines_named_type),
                _ => false,
            }
        }
        fn strip(json: &mut Json) {
            match json {
                Json::Object(obj) => {
                    if let Some(Json::Array(fields)) = obj.get_mut("fields") {
                        fields.retain(|f| {
                            f.get("default").is_none()
                                || f.get("type").is_some_and(defines_named_type)
                        });
                    }
                    obj.values_mut().for_each(strip);
                }
                Json::Array(items) => items.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut json: Json = serde_json::from_str(text).expect("schema JSON");
        strip(&mut json);
        json.to_string()
    }

    /// Reads a datum written with `T`'s current schema the way the decoder does.
    pub(crate) fn read_current<T: Record>(datum: &[u8]) -> Result<T, CodecError> {
        build_reader(1, T::SCHEMA, contract::schema_json(T::SCHEMA))?.read(datum)
    }

    /// Writes a sample with `writer_text` and reads it as `T` through the reader the decoder
    /// would build for it.
    pub(crate) fn read_through_decoder<T: Record>(writer_text: &str) -> Result<T, CodecError> {
        let writer = Schema::parse_str(writer_text)?;
        let datum = GenericDatumWriter::builder(&writer)
            .build()?
            .write_value_to_vec(sample(&writer))?;
        build_reader(1, T::SCHEMA, writer_text)?.read(&datum)
    }

    #[test]
    fn frames_carry_the_schema_id_and_reject_garbage() {
        let reader = build_reader(
            3,
            SchemaName::Quarantine,
            crate::contract::schema_json(SchemaName::Quarantine),
        )
        .expect("reader for the current schema");
        assert!(matches!(reader, Reader::Current(_)));
        let garbage: &[&[u8]] = &[&[], &[0xFF], &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80]];
        for bytes in garbage {
            let result: Result<crate::records::quarantine::Quarantine, _> = reader.read(bytes);
            assert!(result.is_err(), "{bytes:?} must not decode");
        }
    }
}
