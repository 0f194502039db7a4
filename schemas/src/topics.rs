//! The Kafka topics of the exchange: their names and how they are configured.
//!
//! Data flows one way: `raw.<domain>` (written by connectors) → hub stages →
//! `national.<domain>.v1` (the national direct-reporting feed, 全国数据统计直报) and
//! `hub.quarantine` (records that failed a check, with the reason).

use crate::Domain;

/// Topic carrying quarantined records of every domain.
pub const QUARANTINE: &str = "hub.quarantine";

/// Topic carrying the hub's per-batch outcome counts (in, published, merged duplicate,
/// unchanged, quarantined), read by the reconciliation (对账). Every batch has its own key, so
/// compaction keeps them all.
pub const OUTCOMES: &str = "hub.outcomes";

/// Topic carrying the shared data-resource catalogue (政务信息资源目录), one entry per resource.
pub const CATALOGUE: &str = "catalogue.entries";

/// What a topic is for; decides its cleanup policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// Reports as regions sent them: kept for a retention period, then deleted.
    Raw,
    /// One record per entity (key = entity id): compacted, kept forever.
    National,
    /// Records that failed a check: kept long enough for operators to fix and replay them.
    Quarantine,
    /// Catalogue entries (key = resource code): compacted, kept forever.
    Catalogue,
    /// Internal state of Huitong's processes (connector progress, resolution state):
    /// compacted, kept forever.
    State,
    /// Internal records between two hub stages (repartitioned by entity id): kept for the raw
    /// retention period.
    Internal,
}

/// The name and configuration of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// What the topic is for.
    pub kind: TopicKind,
    /// Number of partitions: the unit of parallelism for hub and connector processes.
    pub partitions: i32,
}

impl TopicSpec {
    /// Topic-level configuration entries (`cleanup.policy`, `retention.ms`, …).
    pub fn configs(&self) -> Vec<(&'static str, &'static str)> {
        match self.kind {
            // 7 days: time to re-process after a hub fix.
            TopicKind::Raw | TopicKind::Internal => {
                vec![("cleanup.policy", "delete"), ("retention.ms", "604800000")]
            }
            TopicKind::National | TopicKind::Catalogue | TopicKind::State => {
                vec![("cleanup.policy", "compact")]
            }
            // 90 days: a quarantined record waits for its cause to be fixed, then is replayed.
            TopicKind::Quarantine => {
                vec![("cleanup.policy", "delete"), ("retention.ms", "7776000000")]
            }
        }
    }
}

/// Name of the raw topic of a domain, e.g. `raw.vehicle-position`.
pub fn raw(domain: Domain) -> String {
    format!("raw.{domain}")
}

/// Name of the national topic of a domain, e.g. `national.vehicle.v1`. The version suffix
/// changes only with an incompatible contract change.
pub fn national(domain: Domain) -> String {
    format!("national.{domain}.v1")
}

/// Name of the hub's internal topic carrying a domain's reports keyed by entity id, e.g.
/// `hub.repartition.vehicle`: every report of one entity lands in one partition, whichever
/// raw partition it came from (as a Kafka Streams repartition topic).
pub fn repartition(domain: Domain) -> String {
    format!("hub.repartition.{domain}")
}

/// Name of the compacted changelog of a domain's resolution state, e.g. `hub.changelog.vehicle`;
/// partition *p* holds the state of the entities in partition *p* of the repartition topic.
pub fn changelog(domain: Domain) -> String {
    format!("hub.changelog.{domain}")
}

/// Partition counts for the exchange's topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions {
    /// Partitions of stream topics (vehicle positions).
    pub stream: i32,
    /// Partitions of report and registry topics.
    pub report: i32,
}

impl Default for Partitions {
    fn default() -> Self {
        Partitions {
            stream: 12,
            report: 6,
        }
    }
}

/// Every topic the exchange needs, with the given partition counts.
pub fn all(partitions: Partitions) -> Vec<TopicSpec> {
    let per_domain = |d: Domain| {
        if d.is_stream() {
            partitions.stream
        } else {
            partitions.report
        }
    };
    Domain::ALL
        .into_iter()
        .flat_map(|d| {
            [
                TopicSpec {
                    name: raw(d),
                    kind: TopicKind::Raw,
                    partitions: per_domain(d),
                },
                TopicSpec {
                    name: national(d),
                    kind: TopicKind::National,
                    partitions: per_domain(d),
                },
                TopicSpec {
                    name: repartition(d),
                    kind: TopicKind::Internal,
                    partitions: per_domain(d),
                },
                TopicSpec {
                    name: changelog(d),
                    kind: TopicKind::State,
                    partitions: per_domain(d),
                },
            ]
        })
        .chain([
            TopicSpec {
                name: QUARANTINE.to_owned(),
                kind: TopicKind::Quarantine,
                partitions: partitions.report,
            },
            TopicSpec {
                name: OUTCOMES.to_owned(),
                kind: TopicKind::State,
                partitions: 1,
            },
            TopicSpec {
                name: CATALOGUE.to_owned(),
                kind: TopicKind::Catalogue,
                partitions: 1,
            },
        ])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases = [
            (
                Domain::Institution,
                "raw.institution",
                "national.institution.v1",
            ),
            (
                Domain::VehiclePosition,
                "raw.vehicle-position",
                "national.vehicle-position.v1",
            ),
            (
                Domain::EnergyReport,
                "raw.energy-report",
                "national.energy-report.v1",
            ),
        ];
        for (d, r, n) in cases {
            assert_eq!(raw(d), r);
            assert_eq!(national(d), n);
        }
    }

    #[test]
    fn layout_has_four_topics_per_domain_and_the_shared_ones() {
        let specs = all(Partitions::default());
        assert_eq!(specs.len(), Domain::ALL.len() * 4 + 3);
        let positions = specs
            .iter()
            .find(|s| s.name == "raw.vehicle-position")
            .unwrap();
        assert_eq!(positions.partitions, 12);
        let national = specs
            .iter()
            .find(|s| s.name == "national.vehicle.v1")
            .unwrap();
        assert!(national.configs().contains(&("cleanup.policy", "compact")));
    }
}
