//! The Kafka topics of the exchange: their names and how they are configured.
//!
//! Data flows one way: `raw.<domain>` (written by connectors) → hub stages →
//! `national.<domain>.v1` (the national direct-reporting feed, 全国数据统计直报) and
//! `hub.quarantine` (records that failed a check, with the reason).

use crate::Domain;

/// Topic carrying quarantined records of every domain.
pub const QUARANTINE: &str = "hub.quarantine";

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
    /// Internal state of Huitong's processes (connector progress): compacted, kept forever.
    State,
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
            TopicKind::Raw => vec![("cleanup.policy", "delete"), ("retention.ms", "604800000")],
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
            ]
        })
        .chain([
            TopicSpec {
                name: QUARANTINE.to_owned(),
                kind: TopicKind::Quarantine,
                partitions: partitions.report,
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
    fn layout_has_every_domain_twice_and_quarantine() {
        let specs = all(Partitions::default());
        assert_eq!(specs.len(), Domain::ALL.len() * 2 + 2);
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
