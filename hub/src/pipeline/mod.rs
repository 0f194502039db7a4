//! The hub's pipeline: the I/O around the pure stages in [`crate::stages`].
//!
//! One stage ([`resolver`]), run by `--stage-threads` threads of one consumer group, each
//! exactly once ([`exactly_once`]): it reads `raw.<domain>` and `hub.repartition.<domain>`,
//! prepares each raw record (decode → validate → normalise → key, [`preparer`]), and resolves
//! each report against its entity's state → `national.<domain>.v1`, with the state change in
//! `hub.changelog.<domain>` — at once when the thread holds the entity's partition (always, for
//! a co-partitioned producer), else after a hop through `hub.repartition.<domain>`, as Kafka
//! Streams runs a repartitioned sub-topology. Its running outcome totals go to `hub.outcomes`
//! in the same transactions ([`accounting`]). More hub processes share the partitions through
//! the consumer group.

pub mod accounting;
pub mod exactly_once;
pub mod metrics;
pub mod national;
pub mod preparer;
pub mod quarantine;
pub mod replay;
pub mod resolver;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use schemas::codec::{CodecError, Encoder};
use schemas::registry::RegistryClient;
use schemas::{ClientSettings, Domain, topics};

use crate::stages::Rules;
use crate::stages::resolve::SurvivorshipPolicy;
use exactly_once::LoopConfig;
use metrics::Metrics;
use national::{NationalCodecs, NationalError};
use quarantine::Quarantiner;
use store::StoreError;

/// Why a batch, or a stage, failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Kafka refused a transaction step or could not be reached.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The consumer has no group metadata yet (it has not joined its group).
    #[error("the consumer has not joined its group yet")]
    NoGroupMetadata,
    /// A local state store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A stored entity state is unreadable.
    #[error("entity state: {0}")]
    State(String),
    /// A record could not be encoded.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// A national record could not be encoded.
    #[error("national record: {0}")]
    National(#[from] NationalError),
    /// A stage's thread could not be started.
    #[error("starting a stage thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The stage's running outcome totals could not be read back.
    #[error("outcome totals: {0}")]
    Outcomes(String),
}

impl PipelineError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Kafka(_) => "kafka",
            PipelineError::NoGroupMetadata => "no_group_metadata",
            PipelineError::Store(_) => "state_store",
            PipelineError::State(_) => "entity_state",
            PipelineError::Codec(e) => e.code(),
            PipelineError::National(e) => e.code(),
            PipelineError::Thread(_) => "thread",
            PipelineError::Outcomes(_) => "outcome_totals",
        }
    }

    /// Whether the stage must start over with a new producer (fenced by a newer process with
    /// its transactional id, or a fatal transaction error).
    pub fn is_fatal(&self) -> bool {
        match self {
            PipelineError::Kafka(rdkafka::error::KafkaError::Transaction(e)) => e.is_fatal(),
            PipelineError::Store(_) => true,
            _ => false,
        }
    }
}

/// The names of the topics the pipeline reads and writes: the contract's names
/// ([`schemas::topics`]) behind an optional prefix, so that several hubs (or tests) can share
/// one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicNames {
    /// Put before every name, e.g. `staging.` (empty in production).
    pub prefix: String,
}

impl TopicNames {
    /// `raw.<domain>`.
    pub fn raw(&self, domain: Domain) -> String {
        format!("{}{}", self.prefix, topics::raw(domain))
    }
    /// `hub.repartition.<domain>`.
    pub fn repartition(&self, domain: Domain) -> String {
        format!("{}{}", self.prefix, topics::repartition(domain))
    }
    /// `hub.changelog.<domain>`.
    pub fn changelog(&self, domain: Domain) -> String {
        format!("{}{}", self.prefix, topics::changelog(domain))
    }
    /// `national.<domain>.v1`.
    pub fn national(&self, domain: Domain) -> String {
        format!("{}{}", self.prefix, topics::national(domain))
    }
    /// `hub.quarantine`.
    pub fn quarantine(&self) -> String {
        format!("{}{}", self.prefix, topics::QUARANTINE)
    }
    /// `hub.outcomes`.
    pub fn outcomes(&self) -> String {
        format!("{}{}", self.prefix, topics::OUTCOMES)
    }

    /// The domain of a raw topic name (per record: without allocating).
    pub fn raw_domain(&self, topic: &str) -> Option<Domain> {
        self.domain_after(topic, "raw.")
    }

    /// The domain of a repartition topic name.
    pub fn repartition_domain(&self, topic: &str) -> Option<Domain> {
        self.domain_after(topic, "hub.repartition.")
    }

    fn domain_after(&self, topic: &str, kind: &str) -> Option<Domain> {
        topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(kind)?
            .parse()
            .ok()
    }

    /// Every topic of the exchange, prefixed.
    pub fn specs(
        &self,
        partitions: topics::Partitions,
        retention: topics::Retention,
    ) -> Vec<schemas::TopicSpec> {
        let mut specs = topics::all(partitions, retention);
        for spec in &mut specs {
            spec.name.insert_str(0, &self.prefix);
        }
        specs
    }
}

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Kafka connection.
    pub settings: ClientSettings,
    /// This process's stable id (e.g. the pod name): its transactional ids derive from it, so
    /// a restarted process fences its predecessor at once.
    pub instance_id: String,
    /// The consumer group is `<group_prefix>-resolve`.
    pub group_prefix: String,
    /// Topic names.
    pub topics: TopicNames,
    /// Threads per stage (Kafka Streams' `num.stream.threads`): each is a consumer of the
    /// stage's group with its own transactional producer and state stores, so a process uses
    /// as many cores as it has partitions to give them.
    pub stage_threads: usize,
    /// Records per transaction, at most.
    pub batch_records: usize,
    /// Time per transaction, at most, from its first record.
    pub batch_interval: Duration,
    /// `transaction.timeout.ms` of the stages' producers.
    pub transaction_timeout: Duration,
    /// Folder of the local state stores.
    pub state_dir: PathBuf,
    /// Memory cache of each state store, bytes.
    pub state_cache_bytes: usize,
    /// How long the state of a GPS fix is kept after its first report: reports of the fix from
    /// other levels arriving later are published again as new.
    pub stream_state_retention: Duration,
    /// Survivorship rules.
    pub policy: SurvivorshipPolicy,
    /// Validation and normalisation rules.
    pub rules: Arc<Rules>,
}

/// The running stages of one hub process.
pub struct Pipeline {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Registers the schemas the stage writes and starts its threads.
    pub async fn start(
        config: PipelineConfig,
        registry: Arc<RegistryClient>,
        metrics: Metrics,
    ) -> Result<Self, PipelineError> {
        let codecs = NationalCodecs::register(registry.clone()).await?;
        let quarantine_id = Encoder::<schemas::records::Quarantine>::register(&registry)
            .await?
            .schema_id();
        let raw = preparer::RawCodecs::new(registry.clone(), &codecs)?;
        let runtime = tokio::runtime::Handle::current();
        let stop = Arc::new(AtomicBool::new(false));
        // Thread 0 keeps the ids of a process with one thread per stage, so that upgrading
        // fences the predecessor by id.
        let stage_config = |stage: &'static str, thread: usize, topics: Vec<String>| LoopConfig {
            stage,
            group_id: format!("{}-{stage}", config.group_prefix),
            topics,
            transactional_id: match thread {
                0 => format!("{}-{stage}-{}", config.group_prefix, config.instance_id),
                t => format!("{}-{stage}-{}-{t}", config.group_prefix, config.instance_id),
            },
            batch_records: config.batch_records,
            batch_interval: config.batch_interval,
            transaction_timeout: config.transaction_timeout,
        };
        let quarantiner = move || -> Result<Quarantiner, PipelineError> {
            Ok(Quarantiner {
                encoder: Encoder::with_schema_id(quarantine_id)?,
            })
        };
        let names = &config.topics;
        let settings = config.settings.clone();
        // Reading a stage's outcome totals back may wait for other writers' open transactions.
        let restore_timeout = config.transaction_timeout * 2 + Duration::from_secs(30);
        // Each stage thread's totals belong to its own producer: keyed by its transactional id.
        let ledger = |stage: &LoopConfig| {
            accounting::Ledger::new(
                config.settings.clone(),
                config.topics.outcomes(),
                stage.stage,
                stage.transactional_id.clone(),
                restore_timeout,
            )
        };
        let mut threads = Vec::new();
        let open_files = store::OpenFiles::default();
        let topics: Vec<String> = Domain::ALL
            .iter()
            .flat_map(|&d| [names.raw(d), names.repartition(d)])
            .collect();
        for thread in 0..config.stage_threads.max(1) {
            let resolve = stage_config("resolve", thread, topics.clone());
            let resolve_ledger = ledger(&resolve);
            threads.push(spawn_stage(
                &settings,
                resolve,
                thread,
                metrics.clone(),
                stop.clone(),
                {
                    let (config, metrics, runtime, codecs, raw, open_files) = (
                        config.clone(),
                        metrics.clone(),
                        runtime.clone(),
                        codecs.clone(),
                        raw.clone(),
                        open_files.clone(),
                    );
                    move || {
                        let repartition: Vec<String> =
                            Domain::ALL.map(|d| config.topics.repartition(d)).to_vec();
                        let counts = schemas::kafka::partition_counts(
                            &config.settings,
                            &repartition,
                            restore_timeout,
                        )?;
                        let partitions = Domain::ALL
                            .into_iter()
                            .zip(repartition)
                            .filter_map(|(d, topic)| Some((d, *counts.get(&topic)?)))
                            .collect();
                        Ok(resolver::Resolver {
                            outcomes: resolve_ledger.clone(),
                            topics: config.topics.clone(),
                            settings: config.settings.clone(),
                            policy: config.policy.clone(),
                            codecs: codecs.clone(),
                            quarantine: quarantiner()?,
                            state_dir: config.state_dir.clone(),
                            cache_bytes: config.state_cache_bytes,
                            restore_timeout,
                            metrics: metrics.clone(),
                            runtime: runtime.clone(),
                            stream_retention: config.stream_state_retention,
                            swept: std::time::Instant::now(),
                            stores: HashMap::new(),
                            open_files: open_files.clone(),
                            raw: raw.clone(),
                            rules: config.rules.clone(),
                            partitions,
                            held: Default::default(),
                        })
                    }
                },
            )?);
        }
        Ok(Pipeline { stop, threads })
    }

    /// Stops the stage threads after their current batch and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Runs a stage on a thread of its own until `stop`: after an error (a fenced producer, a lost
/// broker) the stage starts over with a new consumer, producer and empty stores, after a pause.
fn spawn_stage<S: exactly_once::Stage>(
    settings: &ClientSettings,
    config: LoopConfig,
    thread: usize,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
    mut make: impl FnMut() -> Result<S, PipelineError> + Send + 'static,
) -> Result<JoinHandle<()>, PipelineError> {
    let settings = settings.clone();
    let name = format!("stage-{}-{thread}", config.stage);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let mut pause = Duration::from_millis(500);
            while !stop.load(Ordering::Acquire) {
                let ran = std::time::Instant::now();
                let result = make().and_then(|mut stage| {
                    exactly_once::run(&settings, &config, &mut stage, &metrics, &stop)
                });
                match result {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::error!(stage = config.stage, code = e.code(), error = %e, "stage failed; starting over");
                        // A stage that ran a while before it failed starts over quickly again.
                        if ran.elapsed() > Duration::from_secs(60) {
                            pause = Duration::from_millis(500);
                        }
                        let until = std::time::Instant::now() + pause;
                        while std::time::Instant::now() < until && !stop.load(Ordering::Acquire) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        pause = (pause * 2).min(Duration::from_secs(30));
                    }
                }
            }
        })
        .map_err(PipelineError::Thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_give_their_domain_back() {
        for prefix in ["", "staging."] {
            let names = TopicNames {
                prefix: prefix.to_owned(),
            };
            for d in Domain::ALL {
                assert_eq!(names.raw_domain(&names.raw(d)), Some(d), "{prefix}{d}");
                assert_eq!(
                    names.repartition_domain(&names.repartition(d)),
                    Some(d),
                    "{prefix}{d}"
                );
                assert_eq!(names.raw_domain(&names.repartition(d)), None);
                assert_eq!(names.repartition_domain(&names.national(d)), None);
            }
            for other in ["raw.unknown", "other.raw.vehicle", "raw.vehicle.v1", ""] {
                assert_eq!(names.raw_domain(other), None, "{other}");
            }
        }
        let staged = TopicNames {
            prefix: "staging.".to_owned(),
        };
        assert_eq!(
            staged.raw_domain("raw.vehicle"),
            None,
            "another hub's topic"
        );
    }
}
