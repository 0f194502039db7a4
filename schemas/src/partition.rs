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
//!   language co-partitions by setting the key alone.

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

#[cfg(test)]
mod tests {
    use super::*;

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
