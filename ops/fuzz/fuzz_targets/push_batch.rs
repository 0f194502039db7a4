//! A pushed body: the batch within the limits, and the region decision on every record's own
//! fields.
#![no_main]

mod common;

use connectors::config::Level;
use connectors::push::parse_batch;
use connectors::scope::{Stated, decide, region_fields};
use libfuzzer_sys::fuzz_target;
use schemas::Domain;

fuzz_target!(|data: &[u8]| {
    let limits = common::limits();
    let Ok(batch) = parse_batch(data, &limits) else {
        return;
    };
    assert!(batch.records.len() <= limits.max_items);
    for (i, record) in batch.records.iter().enumerate() {
        let domain = Domain::ALL[i % Domain::ALL.len()];
        let (divisions, usccs) = region_fields(domain);
        let mut stated = Vec::new();
        if let Some(code) = record["region_code"].as_str() {
            stated.push(if divisions.contains(&"region_code") {
                Stated::Division("region_code", code)
            } else {
                Stated::Claimed("region_code", code)
            });
        }
        for name in divisions.iter().chain(usccs).filter(|n| **n != "region_code") {
            if let Some(text) = record[*name].as_str() {
                stated.push(if divisions.contains(name) {
                    Stated::Division(name, text)
                } else {
                    Stated::Uscc(name, text)
                });
            }
        }
        for (level, reporter) in [
            (Level::County, "530114"),
            (Level::Prefecture, "530100"),
            (Level::Province, "530000"),
        ] {
            if let Ok(region) = decide(level, reporter, &stated) {
                assert!(connectors::scope::in_scope(level, reporter, &region));
            }
        }
    }
});
