//! The national feed is readable by clients nobody here wrote: records Huitong encodes, with
//! their schemas in Huitong's registry, are read by confluent-kafka's `AvroDeserializer` with
//! its `SchemaRegistryClient`, and by Debian's kcat with fastavro decoding the bytes against the
//! schema fetched from the registry's REST API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use schemas::codec::Encoder;
use schemas::contract::{self, Record};
use schemas::kafka::ensure_topics;
use schemas::records::{NationalEnergyReport, NationalVehicle, NationalVehiclePosition};
use schemas::registry::RegistryClient;
use schemas::{TopicKind, TopicSpec};
use serde_json::{Value as Json, json};
use tests::{settings, start_registry, unique};

/// The valid fixtures of `T`'s schema: realistic records.
fn fixtures<T: Record>() -> Vec<T> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/fixtures")
        .join(T::SCHEMA.full_name())
        .join("valid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            serde_json::from_str(&std::fs::read_to_string(f).expect("fixture"))
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        })
        .collect()
}

/// A record in the canonical JSON the Python reader prints: timestamps as epoch milliseconds,
/// dates ISO, decimals as strings at the schema's scale, bytes as hex. Built from the Avro datum
/// as apache-avro decodes it, so every value carries its Avro type.
fn canonical<T: Record>(record: &T) -> Json {
    let schema = contract::schema(T::SCHEMA);
    let datum = schemas::codec::encode_datum(schema, record).expect("record fits its schema");
    let value = GenericDatumReader::builder(schema)
        .build()
        .and_then(|reader| reader.read_value(&mut datum.as_slice()))
        .expect("datum decodes");
    let resolved = ResolvedSchema::try_from(schema).expect("schema resolves");
    canonical_at(&value, schema, resolved.get_names())
}

fn canonical_at(value: &Value, schema: &Schema, names: &HashMap<Name, &Schema>) -> Json {
    let schema = match schema {
        Schema::Ref { name } => names[name],
        other => other,
    };
    match (value, schema) {
        (Value::Null, _) => Json::Null,
        (Value::Boolean(b), _) => json!(b),
        (Value::Int(i), _) => json!(i),
        (Value::Long(l), _) => json!(l),
        (Value::Float(f), _) => json!(f),
        (Value::Double(d), _) => json!(d),
        (Value::String(s), _) | (Value::Enum(_, s), _) => json!(s),
        (Value::Bytes(b), _) | (Value::Fixed(_, b), _) => {
            json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
        (Value::Date(days), _) => json!(
            (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                + chrono::Days::new(u64::try_from(*days).expect("date after 1970")))
            .to_string()
        ),
        (Value::TimestampMillis(ms), _) => json!(ms),
        (Value::Decimal(d), Schema::Decimal(s)) => {
            let bytes = Vec::<u8>::try_from(d).expect("decimal bytes");
            let mut unscaled: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                -1
            } else {
                0
            };
            for b in bytes {
                unscaled = (unscaled << 8) | i128::from(b);
            }
            let scale = u32::try_from(s.scale).expect("scale");
            json!(rust_decimal::Decimal::from_i128_with_scale(unscaled, scale).to_string())
        }
        (Value::Union(i, inner), Schema::Union(u)) => {
            canonical_at(inner, &u.variants()[*i as usize], names)
        }
        (Value::Array(items), Schema::Array(a)) => Json::Array(
            items
                .iter()
                .map(|v| canonical_at(v, &a.items, names))
                .collect(),
        ),
        (Value::Record(fields), Schema::Record(r)) => Json::Object(
            fields
                .iter()
                .zip(&r.fields)
                .map(|((name, v), f)| (name.clone(), canonical_at(v, &f.schema, names)))
                .collect(),
        ),
        (value, schema) => panic!("no canonical form for {value:?} as {schema:?}"),
    }
}

/// Produces `T`'s fixtures to a fresh one-partition topic; returns the topic, the schema id and
/// the expected lines.
async fn publish<T: Record>(
    registry_url: &str,
    entity_id: fn(&T) -> String,
) -> (String, u32, Vec<Json>) {
    let client = RegistryClient::new(registry_url).expect("registry client");
    let encoder = Encoder::<T>::register(&client)
        .await
        .expect("registering the schema");
    let topic = unique("national");
    ensure_topics(
        &settings(),
        &[TopicSpec {
            name: topic.clone(),
            kind: TopicKind::National,
            partitions: 1,
        }],
        1,
    )
    .await
    .expect("creating the topic");
    let producer: FutureProducer = settings()
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut expected = Vec::new();
    for record in fixtures::<T>() {
        let key = entity_id(&record);
        let payload = encoder.encode(&record).expect("encoding");
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("producing");
        expected.push(json!({
            "key": key,
            "schema_id": encoder.schema_id(),
            "value": canonical(&record),
        }));
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    (topic, encoder.schema_id(), expected)
}

/// Runs `tests/python/avro_read.py` in `mode` and returns its lines.
fn read_with_python(mode: &str, topic: &str, registry_url: &str, count: usize) -> Vec<Json> {
    let python = std::env::var("HUITONG_PYTHON").unwrap_or_else(|_| {
        panic!(
            "HUITONG_PYTHON is not set: run the tests with `ops/dev test`, which creates the \
             Python environment with confluent-kafka and fastavro"
        )
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/avro_read.py");
    let output = Command::new(python)
        .arg(script)
        .arg(mode)
        .args(["--bootstrap", &tests::bootstrap()])
        .args(["--registry", registry_url])
        .args(["--topic", topic])
        .args(["--count", &count.to_string()])
        .output()
        .expect("running avro_read.py");
    assert!(
        output.status.success(),
        "avro_read.py {mode} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

async fn check<T: Record>(entity_id: fn(&T) -> String) {
    let (_registry, url) = start_registry().await;
    let (topic, id, expected) = publish::<T>(&url, entity_id).await;
    assert!(
        !expected.is_empty(),
        "{} has fixtures",
        T::SCHEMA.full_name()
    );
    for mode in ["confluent", "kcat"] {
        let (topic, url) = (topic.clone(), url.clone());
        let count = expected.len();
        let got = tokio::task::spawn_blocking(move || read_with_python(mode, &topic, &url, count))
            .await
            .expect("reader thread");
        assert_eq!(
            got,
            expected,
            "{mode} reading {} (schema id {id})",
            T::SCHEMA.full_name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_energy_reports_read_by_confluent_kafka_and_kcat() {
    check::<NationalEnergyReport>(|r| r.entity_id.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_vehicles_read_by_confluent_kafka_and_kcat() {
    check::<NationalVehicle>(|r| r.entity_id.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_vehicle_positions_read_by_confluent_kafka_and_kcat() {
    check::<NationalVehiclePosition>(|r| r.entity_id.clone()).await;
}
