//! Encode and decode cost per record in Confluent wire format, for the stream that dominates
//! volume (vehicle positions) and a nested statistical report (energy).
//!
//! Run with `ops/bench/codec` (or `cargo bench -p schemas --bench codec`); target: encode +
//! decode ≤ 1.5 µs per record on the 2-core reference machine.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use schemas::codec::{Decoder, Encoder};
use schemas::contract::{self, Record};
use schemas::records::energy_report::{NationalEnergyReport, RawEnergyReport};
use schemas::records::vehicle_position::{NationalVehiclePosition, RawVehiclePosition};
use schemas::registry::RegistryClient;

/// The first valid fixture of `T`'s schema: a realistic record.
fn fixture<T: Record>() -> T {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(T::SCHEMA.full_name())
        .join("valid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let text = std::fs::read_to_string(&files[0]).expect("fixture");
    serde_json::from_str(&text).expect("valid fixture")
}

fn bench<T: Record>(c: &mut Criterion, label: &str) {
    let value: T = fixture();
    let encoder = Encoder::<T>::with_schema_id(1).expect("encoder");
    // Never contacted: the reader is preloaded, as a process that registered the schema does.
    let registry = Arc::new(RegistryClient::new("http://127.0.0.1:9").expect("client"));
    let decoder = Decoder::<T>::new(registry);
    decoder
        .preload(1, contract::schema_json(T::SCHEMA))
        .expect("preload");
    let message = encoder.encode(&value).expect("encode");
    #[allow(clippy::print_stdout, reason = "a benchmark reports its figures")]
    {
        println!("{label}: {} bytes per framed record", message.len());
    }

    let mut group = c.benchmark_group(label);
    let mut buffer = Vec::with_capacity(1024);
    group.bench_function("encode", |b| {
        b.iter(|| {
            buffer.clear();
            encoder
                .encode_into(black_box(&value), &mut buffer)
                .expect("encode");
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            decoder
                .try_decode_cached(black_box(&message))
                .expect("decode")
                .expect("preloaded")
        })
    });
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            buffer.clear();
            encoder
                .encode_into(black_box(&value), &mut buffer)
                .expect("encode");
            decoder
                .try_decode_cached(&buffer)
                .expect("decode")
                .expect("preloaded")
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench::<RawVehiclePosition>(c, "raw_vehicle_position");
    bench::<NationalVehiclePosition>(c, "national_vehicle_position");
    bench::<RawEnergyReport>(c, "raw_energy_report");
    bench::<NationalEnergyReport>(c, "national_energy_report");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = codec
}
criterion_main!(benches);
