//! A pushed body: the batch within the limits, then every record admitted as the endpoint
//! admits it — in the system's own fields through a mapping (energy reports) or raw (every
//! other domain) — and an admitted record's region always in the sender's scope.
#![no_main]

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use connectors::config::Level;
use connectors::push::{Admission, ClientIdentity, PushClient, parse_batch};
use connectors::raw::RawEncoder;
use libfuzzer_sys::fuzz_target;
use schemas::Domain;

/// A county, a prefecture and a province client, each with the fuzz mapping for energy
/// reports.
fn clients() -> &'static [PushClient] {
    static CLIENTS: OnceLock<Vec<PushClient>> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        [
            (Level::County, "530114"),
            (Level::Prefecture, "530100"),
            (Level::Province, "530000"),
        ]
        .into_iter()
        .map(|(level, region)| PushClient {
            identity: ClientIdentity::Token(region.to_owned()),
            system_id: format!("fuzz-{region}"),
            region_code: region.to_owned(),
            level,
            domains: Domain::ALL.to_vec(),
            mappings: BTreeMap::from([(Domain::EnergyReport, common::mapping())]),
        })
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let limits = common::limits();
    let Ok(batch) = parse_batch(data, &limits) else {
        return;
    };
    assert!(batch.records.len() <= limits.max_items);
    for (i, record) in batch.records.into_iter().enumerate() {
        let domain = Domain::ALL[i % Domain::ALL.len()];
        let encoder = RawEncoder::with_schema_id(domain, 1).expect("encoder");
        for client in clients() {
            let admission = Admission {
                client,
                domain,
                encoder: &encoder,
                limits: &limits,
                connector_id: "fuzz",
                batch_id: &batch.batch_id,
            };
            if let Ok(admitted) = admission.admit(record.clone()) {
                assert!(!admitted.key.is_empty());
                let (key, payload) = (admitted.key.len(), admitted.payload.len());
                assert!(limits.record_fits(key, payload).is_ok());
            }
        }
    }
});
