//! Co-partitioning (同分区): which partition a report of an entity belongs in, one rule for the
//! connectors that write raw topics and the hub that resolves them.
//!
//! Every report of one entity must meet in one partition to be resolved against one state. The
//! hub makes that so in any case (a report found in another partition goes through
//! `hub.repartition.<domain>`), but a producer that already puts it in the right partition of
//! the raw topic saves that hop, as Kafka Streams users co-partition at the producer:
//!
//! - the **partition key** of an entity is its entity id up to the first `|`: the USCC of an
//!   institution and of everything it reports, the VIN (else the plate) of a vehicle and of its
//!   positions, an office building's property unit number (else its owner's USCC) — what every
//!   report of the entity shares, and what a connector can tell from the raw record;
//! - its **partition** is Kafka's default for that key ([`partition_for`]: murmur2, as the
//!   Java client's default partitioner and librdkafka's `murmur2_random`), so a producer of any
//!   language co-partitions by setting the key alone;
//! - a **raw record's** partition key ([`Partitioned`]) is that of the entity it reports,
//!   read from its own fields and normalised exactly as the hub's normalise and key stages do
//!   (the same [`crate::ids`] functions), so the connectors key raw records by it and the
//!   county's, the city's and the province's reports of one entity land in one partition of
//!   the raw topic whichever way each spelled the identifier.
//!
//! | domain | partition key of a raw record |
//! |---|---|
//! | institution, energy report, operating cost | `uscc` |
//! | vehicle, vehicle position | `vin`, else `plate` |
//! | vehicle quota, asset card | `owner_uscc` |
//! | office building | `property_unit_number` (GB/T 37346 shape), else `owner_uscc` |
//!
//! Identifiers are taken in canonical form ([`ids::canonical_code`], [`ids::parse_plate`]) and
//! only if valid: a record whose identifier the hub refuses has no partition key. Only the
//! fields the key is made of are read; a record the hub quarantines for another reason (no
//! period, no asset code) may still have one, which costs nothing, since the hub quarantines a
//! record in whichever partition it reads it.

use crate::ids;
use crate::records::{
    RawAssetCard, RawEnergyReport, RawInstitution, RawOfficeBuilding, RawOperatingCost, RawVehicle,
    RawVehiclePosition, RawVehicleQuota,
};

/// The partition key of an entity: its entity id up to the first `|`.
pub fn partition_key(entity_id: &str) -> &str {
    entity_id.split('|').next().unwrap_or(entity_id)
}

/// The partition, of `partitions`, that Kafka's default partitioner gives `key`: murmur2 with
/// Kafka's seed, sign bit cleared (`Utils.toPositive`), modulo the count.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    const KAFKA_SEED: u32 = 0x9747_b28c;
    let Ok(n) = u32::try_from(partitions) else {
        return 0;
    };
    if n == 0 {
        return 0;
    }
    let positive = murmur2::murmur2(key, KAFKA_SEED) & 0x7fff_ffff;
    i32::try_from(positive % n).expect("below a positive i32")
}

/// A raw record whose partition key can be told from its own fields (see the module docs).
pub trait Partitioned {
    /// The partition key of the entity this raw record reports: what
    /// [`partition_key`] gives for the entity id the hub assigns it. `None` when the fields it
    /// is made of are missing or invalid (the hub quarantines such a record).
    fn partition_key(&self) -> Option<String>;
}

/// Text that is more than white space (how the hub's readers tell that a field was sent).
fn sent(text: Option<&str>) -> Option<&str> {
    text.filter(|t| !t.trim().is_empty())
}

/// A USCC in canonical form, if valid.
fn uscc(sent: &str) -> Option<String> {
    let code = ids::canonical_code(sent);
    ids::uscc_is_valid(&code).then_some(code)
}

/// A vehicle's partition key: its VIN when one was sent (canonical; none if invalid, which the
/// hub refuses), else its plate (canonical), if it is one.
fn vehicle(vin: Option<&str>, plate: Option<&str>) -> Option<String> {
    if let Some(vin) = sent(vin) {
        let vin = ids::canonical_code(vin);
        return ids::vin_is_valid(&vin).then_some(vin);
    }
    ids::parse_plate(sent(plate)?).ok().map(|p| p.text)
}

impl Partitioned for RawInstitution {
    fn partition_key(&self) -> Option<String> {
        uscc(&self.uscc)
    }
}

impl Partitioned for RawVehicle {
    fn partition_key(&self) -> Option<String> {
        vehicle(self.vin.as_deref(), self.plate.as_deref())
    }
}

impl Partitioned for RawVehiclePosition {
    fn partition_key(&self) -> Option<String> {
        vehicle(self.vin.as_deref(), self.plate.as_deref())
    }
}

impl Partitioned for RawVehicleQuota {
    fn partition_key(&self) -> Option<String> {
        uscc(&self.owner_uscc)
    }
}

impl Partitioned for RawOfficeBuilding {
    fn partition_key(&self) -> Option<String> {
        // A number of another shape is left out by the hub: the building is its owner's then.
        sent(self.property_unit_number.as_deref())
            .map(ids::canonical_code)
            .filter(|n| ids::property_unit_number_is_valid(n))
            .or_else(|| uscc(&self.owner_uscc))
    }
}

impl Partitioned for RawEnergyReport {
    fn partition_key(&self) -> Option<String> {
        uscc(&self.uscc)
    }
}

impl Partitioned for RawAssetCard {
    fn partition_key(&self) -> Option<String> {
        uscc(&self.owner_uscc)
    }
}

impl Partitioned for RawOperatingCost {
    fn partition_key(&self) -> Option<String> {
        uscc(&self.uscc)
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;

    /// A valid USCC (呈贡区机关事务管理局) and a valid VIN.
    const USCC: &str = "115301140151174049";
    const VIN: &str = "LSVAM4187C2184847";
    const UNIT: &str = "530114003002GB00012F00010001";

    /// The partition key of the raw record `T` with the required fields of `base` and
    /// `change` over them.
    fn key<T: DeserializeOwned + Partitioned>(base: Value, change: &Value) -> Option<String> {
        let mut record = json!({
            "provenance": {
                "source_system_id": "s", "reporting_level": "COUNTY",
                "reporter_region_code": "530114", "source_record_id": "r1",
                "received_at": "2025-03-01T00:00:00.000Z", "connector_id": "c"
            },
        });
        for (k, v) in base
            .as_object()
            .into_iter()
            .chain(change.as_object())
            .flatten()
        {
            record[k] = v.clone();
        }
        serde_json::from_value::<T>(record)
            .expect("a raw record")
            .partition_key()
    }

    #[test]
    fn raw_records_give_the_key_of_their_entity() {
        let vehicle = || json!({"owner_uscc": USCC});
        let position = || {
            json!({"fix_time": "2025-03-01 08:00:00", "latitude": 24.9, "longitude": 102.8,
                   "datum": "WGS84"})
        };
        let building = || json!({"owner_uscc": USCC, "address": "呈贡区建设路387号"});
        let usccs = [
            (json!({"uscc": USCC}), Some(USCC)),
            (json!({"uscc": "115301140151174049 "}), Some(USCC)),
            (
                json!({"uscc": "１１５３０１１４０１５１１７４０４９"}),
                Some(USCC),
            ),
            (json!({"uscc": "1153-0114-0151-1740-49"}), Some(USCC)),
            (json!({"uscc": "115301140151174048"}), None),
            (json!({"uscc": "11530114015117404"}), None),
            (json!({"uscc": ""}), None),
        ];
        let mut cases: Vec<(&str, Option<String>, Option<&str>)> = Vec::new();
        for (fields, want) in &usccs {
            let owner = json!({"owner_uscc": fields["uscc"]});
            let name = json!({"name": "单位"});
            cases.extend([
                ("institution", key::<RawInstitution>(name, fields), *want),
                (
                    "energy",
                    key::<RawEnergyReport>(json!({"period": "2025-03", "lines": []}), fields),
                    *want,
                ),
                (
                    "cost",
                    key::<RawOperatingCost>(json!({"year": "2024", "items": []}), fields),
                    *want,
                ),
                (
                    "quota",
                    key::<RawVehicleQuota>(
                        json!({"year": "2025", "usage_category": "机要通信用车"}),
                        &owner,
                    ),
                    *want,
                ),
                (
                    "asset",
                    key::<RawAssetCard>(json!({"asset_code": "ZC-1"}), &owner),
                    *want,
                ),
                (
                    "building",
                    key::<RawOfficeBuilding>(building(), &owner),
                    *want,
                ),
            ]);
        }
        for (fields, want) in [
            (json!({"vin": VIN, "plate": "云A12345"}), Some(VIN)),
            (json!({"vin": "lsvam4187c2184847"}), Some(VIN)),
            (
                json!({"vin": "ＬＳＶＡＭ４１８７Ｃ２１８４８４７"}),
                Some(VIN),
            ),
            (json!({"vin": " LSVAM 4187C 2184847 "}), Some(VIN)),
            // A VIN sent but invalid is refused: the plate does not stand in.
            (
                json!({"vin": "LSVAM4187C2184848", "plate": "云A12345"}),
                None,
            ),
            (json!({"vin": "  ", "plate": "云A12345"}), Some("云A12345")),
            (json!({"plate": "云A·12345"}), Some("云A12345")),
            (json!({"plate": "云Ａ１２３４５"}), Some("云A12345")),
            (json!({"plate": "雲a 12345"}), Some("云A12345")),
            (json!({"plate": "云A1234O"}), Some("云A12340")),
            (json!({"plate": "云A1234"}), None),
            (json!({}), None),
        ] {
            cases.push(("vehicle", key::<RawVehicle>(vehicle(), &fields), want));
            cases.push((
                "position",
                key::<RawVehiclePosition>(position(), &fields),
                want,
            ));
        }
        for (fields, want) in [
            (json!({"property_unit_number": UNIT}), Some(UNIT)),
            (
                json!({"property_unit_number": "530114 003002 gb00012 f0001 0001"}),
                Some(UNIT),
            ),
            // Malformed or blank: left out by the hub, so the building is its owner's.
            (
                json!({"property_unit_number": "530114003002GB0001"}),
                Some(USCC),
            ),
            (json!({"property_unit_number": " "}), Some(USCC)),
            (json!({"property_unit_number": null}), Some(USCC)),
        ] {
            cases.push((
                "building",
                key::<RawOfficeBuilding>(building(), &fields),
                want,
            ));
        }
        for (i, (domain, got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got.as_deref(), want, "case {i} ({domain})");
        }
    }

    #[test]
    fn partition_keys_are_the_first_component() {
        for (entity, key) in [
            ("LFP09AY1XMF000001|1751212800000", "LFP09AY1XMF000001"),
            ("915301007090000000|2025-03", "915301007090000000"),
            ("云A12345|915301007090000000", "云A12345"),
            ("915301007090000000", "915301007090000000"),
            ("", ""),
        ] {
            assert_eq!(partition_key(entity), key, "{entity}");
        }
    }

    #[test]
    fn partitions_are_those_of_the_java_default_partitioner() {
        // Values of org.apache.kafka.common.utils.Utils.murmur2, as Kafka's own tests give them.
        fn java(key: &str, n: i32) -> i32 {
            let hash: i32 = match key {
                "21" => -973932308,
                "foobar" => -790332482,
                "a-little-bit-long-string" => -985981536,
                "a-little-bit-longer-string" => -1486304829,
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8" => -58897971,
                _ => unreachable!(),
            };
            (hash & 0x7fff_ffff) % n
        }
        for key in [
            "21",
            "foobar",
            "a-little-bit-long-string",
            "a-little-bit-longer-string",
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        ] {
            for n in [1, 3, 12, 48, 1000] {
                assert_eq!(
                    partition_for(key.as_bytes(), n),
                    java(key, n),
                    "{key} of {n}"
                );
            }
        }
    }
}
