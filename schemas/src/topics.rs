//! The Kafka topics of the exchange: their names and how they are configured.
//!
//! Data flows one way: `raw.<domain>` (written by connectors) → hub stages →
//! `national.<domain>.v1` (the national direct-reporting feed, 全国数据统计直报) and
//! `hub.quarantine` (records that failed a check, with the reason).
//!
//! **Bounded at national scale.** No topic grows with time alone: report, registry and
//! catalogue topics are compacted by entity (10⁷ keys, not 10⁷ a day); raw, repartition and
//! quarantine topics delete after a retention period; the stream domain's national feed
//! (≈10⁹ GPS points a day) deletes after [`Retention::stream`], and its changelog is compacted
//! *and* deleted after twice [`Retention::stream_state`]; `hub.outcomes` holds one running total
//! per writer, domain and province ([`TopicKind::Totals`]). Partition counts follow the sizing
//! rule on [`Partitions`].
//!
//! Topics that exist already keep their configuration: [`crate::kafka::ensure_topics`] creates
//! what is missing and never alters a topic (ARCHITECTURE.md, "Topics at national scale", says
//! how an operator moves an existing cluster to these settings with `kafka-configs --alter`).

use std::time::Duration;

use crate::Domain;

/// Topic carrying quarantined records of every domain.
pub const QUARANTINE: &str = "hub.quarantine";

/// Topic carrying the hub's outcome counts (in, published, merged duplicate, unchanged,
/// quarantined) as running totals, read by the reconciliation (对账): one key per stage
/// producer, domain and province, whose latest value is everything that producer counted there,
/// so compaction keeps its size bounded by writers × domains × regions.
pub const OUTCOMES: &str = "hub.outcomes";

/// Topic carrying the shared data-resource catalogue (政务信息资源目录), one entry per resource.
pub const CATALOGUE: &str = "catalogue.entries";

/// What a topic is for; decides its cleanup policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// A stream domain's national feed (one record per GPS point, keys that hardly repeat):
    /// deleted after `retention`, not compacted.
    Stream {
        /// How long a record is kept.
        retention: Duration,
    },
    /// A stream domain's resolution state (a point's state is rewritten within minutes, then
    /// tombstoned when it expires): compacted, and deleted after `retention`, which must exceed
    /// the state retention so that no live state is deleted.
    StreamState {
        /// How long a record is kept.
        retention: Duration,
    },
    /// Running totals, one key per writer (`hub.outcomes`): compacted, with segments small
    /// and short enough that compaction keeps the topic near its live size.
    Totals,
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
    pub fn configs(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            // 7 days: time to re-process after a hub fix.
            TopicKind::Raw | TopicKind::Internal => {
                vec![
                    ("cleanup.policy", "delete".into()),
                    ("retention.ms", ms(WEEK)),
                ]
            }
            TopicKind::National | TopicKind::Catalogue | TopicKind::State => {
                vec![("cleanup.policy", "compact".into())]
            }
            // 90 days: a quarantined record waits for its cause to be fixed, then is replayed.
            TopicKind::Quarantine => {
                vec![
                    ("cleanup.policy", "delete".into()),
                    ("retention.ms", ms(90 * DAY)),
                ]
            }
            // Segments of at most a day, so that what expires goes within a day of expiring.
            TopicKind::Stream { retention } => vec![
                ("cleanup.policy", "delete".into()),
                ("retention.ms", ms(retention)),
                ("segment.ms", ms(retention.min(DAY))),
            ],
            // Segments of at most half the retention: a segment is deleted whole once its newest
            // record is older than the retention, so the log holds at most 1.5 × the retention.
            TopicKind::StreamState { retention } => vec![
                ("cleanup.policy", "compact,delete".into()),
                ("retention.ms", ms(retention)),
                ("segment.ms", ms((retention / 2).min(DAY))),
            ],
            // Compaction never cleans the active segment: 64 MiB or an hour, whichever is first.
            TopicKind::Totals => vec![
                ("cleanup.policy", "compact".into()),
                ("segment.bytes", (64u64 << 20).to_string()),
                ("segment.ms", ms(HOUR)),
            ],
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// A duration in Kafka's milliseconds, at least 1.
fn ms(d: Duration) -> String {
    d.as_millis().max(1).to_string()
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
///
/// **Sizing rule.** A partition is read by one stage thread of one process at a time, so a
/// domain's partitions bound how many stage threads can work on it: partitions ≥ processes ×
/// stage threads that must be busy = peak reports/s ÷ reports/s one stage thread sustains, with
/// room for growth. A partition count is chosen once: adding partitions later moves entities to
/// other partitions, away from their state in the changelog. Pick counts with many divisors
/// (12, 24, 48) so that any number of processes shares them evenly.
///
/// The national position stream peaks at ≈300,000 reports/s (100,000 points/s, each relayed
/// by up to three levels). At the best rate measured so far (≈11,700 reports/s per process, issue
/// 12) that keeps 26 stage threads busy; 48 partitions leave room to almost double the load and
/// divide evenly among 2, 3, 4, 6, 8, 12, 16, 24 or 48 threads. Report and registry domains
/// carry far less (a registry snapshot of 10⁶ institutions at a time): 12 partitions each.
/// Re-measure with `ops/bench/hub` and size by the rule before a deployment. Tests and
/// benchmarks pass their own, smaller counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitions {
    /// Partitions of stream topics (vehicle positions).
    pub stream: i32,
    /// Partitions of report and registry topics, and of `hub.outcomes` and `hub.quarantine`.
    pub report: i32,
}

impl Default for Partitions {
    fn default() -> Self {
        Partitions {
            stream: 48,
            report: 12,
        }
    }
}

/// How long the topics of stream domains keep their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long the national stream feed (`national.vehicle-position.v1`) keeps a GPS point.
    pub stream: Duration,
    /// How long the hub keeps a stream entity's state (`--stream-state-retention`); the
    /// domain's changelog keeps records for twice that, so that no live state is deleted.
    pub stream_state: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            stream: default_stream_retention(),
            stream_state: default_stream_state_retention(),
        }
    }
}

/// 30 days of GPS points in the national feed.
pub const fn default_stream_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

/// An hour of state per GPS point: every level's copy of a point arrives within minutes.
pub const fn default_stream_state_retention() -> Duration {
    HOUR
}

/// Every topic the exchange needs, with the given partition counts and stream retention.
pub fn all(partitions: Partitions, retention: Retention) -> Vec<TopicSpec> {
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
            let (feed, state) = if d.is_stream() {
                (
                    TopicKind::Stream {
                        retention: retention.stream,
                    },
                    TopicKind::StreamState {
                        retention: retention.stream_state * 2,
                    },
                )
            } else {
                (TopicKind::National, TopicKind::State)
            };
            [
                TopicSpec {
                    name: raw(d),
                    kind: TopicKind::Raw,
                    partitions: per_domain(d),
                },
                TopicSpec {
                    name: national(d),
                    kind: feed,
                    partitions: per_domain(d),
                },
                TopicSpec {
                    name: repartition(d),
                    kind: TopicKind::Internal,
                    partitions: per_domain(d),
                },
                TopicSpec {
                    name: changelog(d),
                    kind: state,
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
                kind: TopicKind::Totals,
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
    fn layout_has_four_topics_per_domain_and_the_shared_ones() {
        let specs = all(Partitions::default(), Retention::default());
        assert_eq!(specs.len(), Domain::ALL.len() * 4 + 3);
        let positions = specs
            .iter()
            .find(|s| s.name == "raw.vehicle-position")
            .unwrap();
        assert_eq!(positions.partitions, 48);
    }

    /// topic → its configuration, as `ensure_topics` creates it.
    #[test]
    fn no_topic_grows_with_time_alone() {
        let retention = Retention {
            stream: Duration::from_secs(30 * 24 * 3600),
            stream_state: Duration::from_secs(3600),
        };
        let cases: [(&str, &[(&str, &str)]); 10] = [
            (
                "national.vehicle-position.v1",
                &[
                    ("cleanup.policy", "delete"),
                    ("retention.ms", "2592000000"),
                    ("segment.ms", "86400000"),
                ],
            ),
            (
                "hub.changelog.vehicle-position",
                &[
                    ("cleanup.policy", "compact,delete"),
                    ("retention.ms", "7200000"),
                    ("segment.ms", "3600000"),
                ],
            ),
            (
                "raw.vehicle-position",
                &[("cleanup.policy", "delete"), ("retention.ms", "604800000")],
            ),
            (
                "hub.repartition.vehicle-position",
                &[("cleanup.policy", "delete"), ("retention.ms", "604800000")],
            ),
            ("national.vehicle.v1", &[("cleanup.policy", "compact")]),
            (
                "hub.changelog.institution",
                &[("cleanup.policy", "compact")],
            ),
            (
                "raw.energy-report",
                &[("cleanup.policy", "delete"), ("retention.ms", "604800000")],
            ),
            (
                "hub.outcomes",
                &[
                    ("cleanup.policy", "compact"),
                    ("segment.bytes", "67108864"),
                    ("segment.ms", "3600000"),
                ],
            ),
            (
                "hub.quarantine",
                &[("cleanup.policy", "delete"), ("retention.ms", "7776000000")],
            ),
            ("catalogue.entries", &[("cleanup.policy", "compact")]),
        ];
        let specs = all(Partitions::default(), retention);
        for (topic, want) in cases {
            let spec = specs.iter().find(|s| s.name == topic).expect(topic);
            let want: Vec<(&str, String)> = want.iter().map(|(k, v)| (*k, v.to_string())).collect();
            assert_eq!(spec.configs(), want, "{topic}");
        }
    }

    #[test]
    fn short_retentions_keep_whole_milliseconds() {
        let spec = TopicSpec {
            name: "t".to_owned(),
            kind: TopicKind::StreamState {
                retention: Duration::from_millis(1),
            },
            partitions: 1,
        };
        assert_eq!(
            spec.configs(),
            [
                ("cleanup.policy", "compact,delete".to_owned()),
                ("retention.ms", "1".to_owned()),
                ("segment.ms", "1".to_owned()),
            ]
        );
    }
}
