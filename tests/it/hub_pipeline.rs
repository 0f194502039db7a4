//! End to end against the real broker: the simulator's three provinces, every mappable system
//! read by connectors over HTTP — one county system per domain pushing its own records to the
//! push endpoint instead — through the hub's pipeline — in-process, and as `hub`
//! processes killed with SIGKILL again and again, two at once for part of the run. Afterwards
//! every national topic holds exactly one record per ground-truth entity, listing every report
//! that reached it, in the ground truth's division (withdrawn codes resolved, with their one
//! warning), each revision published once; where levels differ by design (stale upper copies
//! synced later, one line of an array, status labels) it holds the owning level's values and
//! exactly the conflicts the ground truth implies, on the line; and the reconciliation
//! balances.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::config::ConnectorConfig;
use connectors::runtime::{Metrics as ConnectorMetrics, Runtime};
use hub::pipeline::accounting::Reconciliation;
use hub::pipeline::metrics::Metrics;
use hub::pipeline::national::NationalCodecs;
use hub::pipeline::{Pipeline, PipelineConfig, TopicNames};
use hub::stages::Rules;
use hub::stages::resolve::SurvivorshipPolicy;
use schemas::Domain;
use schemas::registry::RegistryClient;
use schemas::topics::{Partitions, Retention};
use serde_json::{Map, Value};
use simulator::connector_config::{Overrides, instance_toml, push_client_toml};
use simulator::divisions::Level;
use simulator::systems::NationalValue;
use simulator::{Simulator, Size, World};
use tests::{HubProcess, start_registry, unique};

const SEED: u64 = 20_251_123;

/// The simulated provinces served over HTTP, a registry, the hub's topics, and connectors
/// reading every mappable system into them.
struct Stack {
    truth: simulator::systems::GroundTruth,
    names: TopicNames,
    registry_url: String,
    /// The systems the connectors read or that pushed.
    ingested: BTreeSet<String>,
    _push: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    connector: Runtime,
    _registry: hub::registry::SchemaRegistry,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Stack {
    async fn start() -> Self {
        let sim = Arc::new(Simulator::new(World::new(SEED, Size::Tiny)));
        let (addr, server) =
            simulator::server::spawn(sim.clone(), "127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("simulator");
        let (registry, registry_url) = start_registry().await;
        let names = hub_topics(
            "e2e",
            Partitions {
                stream: 3,
                report: 2,
            },
        )
        .await;
        let base = format!("http://{addr}");
        let mut instances = String::new();
        let mut ingested = BTreeSet::new();
        // One county system per domain pushes instead of being polled: the same records, in
        // its own field names, mapped by its push client's mapping.
        let mut pushing: BTreeMap<Domain, String> = BTreeMap::new();
        let mut clients = String::new();
        for profile in sim.systems() {
            if profile.level == simulator::divisions::Level::County
                && !pushing.contains_key(&profile.domain)
                && let Some(toml) = push_client_toml(profile)
            {
                clients.push_str(&toml);
                pushing.insert(profile.domain, profile.id.clone());
                ingested.insert(profile.id.clone());
                continue;
            }
            let overrides = Overrides {
                topic: Some(names.raw(profile.domain)),
                ..Overrides::default()
            };
            if let Some(toml) = instance_toml(profile, &base, &overrides) {
                instances.push_str(&toml);
                ingested.insert(profile.id.clone());
            }
        }
        let tls = std::env::temp_dir().join(unique("e2e-push-tls"));
        std::fs::create_dir_all(&tls).expect("folder");
        let server_ca = tests::TestCa::new("汇通测试服务端 CA");
        let certificate = server_ca.server(&["localhost"]);
        std::fs::write(tls.join("cert.pem"), &certificate.cert_pem).expect("cert");
        std::fs::write(tls.join("key.pem"), &certificate.key_pem).expect("key");
        let push_section = format!(
            "[push]\nlisten = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\ntopic_prefix = \"{}raw.\"\n{clients}",
            tls.join("cert.pem"),
            tls.join("key.pem"),
            names.prefix,
        );
        let header = format!(
            "connector_id = \"{}\"\nregistry_url = \"{registry_url}\"\nprogress_topic = \"{}\"\nquarantine_topic = \"{}\"\n[kafka]\nbootstrap = \"{}\"\n",
            // Slot transactional ids derive from it: two tests sharing one would fence each other.
            unique("e2e"),
            unique("progress"),
            names.quarantine(),
            tests::bootstrap(),
        );
        let config = ConnectorConfig::parse(
            std::path::Path::new("e2e.toml"),
            &(header + &push_section + &instances),
        )
        .expect("generated configuration");
        let metrics = ConnectorMetrics::new(&prometheus::Registry::new()).expect("metrics");
        let (push, kafka, progress) = (
            config.push.clone().expect("a [push] section"),
            config.kafka.clone(),
            config.progress_topic.clone(),
        );
        let connector = Runtime::start(config, metrics.clone())
            .await
            .expect("connectors start");
        let (addr, push_task) = connectors::push::start(
            &push,
            &connectors::limits::Limits::default(),
            &metrics,
            "e2e",
            &kafka,
            &progress,
            &RegistryClient::new(&registry_url).expect("client"),
        )
        .await
        .expect("push endpoint");
        let http = reqwest::Client::builder()
            .tls_certs_only([
                reqwest::Certificate::from_pem(server_ca.pem.as_bytes()).expect("root")
            ])
            .resolve("localhost", addr)
            .build()
            .expect("client");
        let endpoint = format!("https://localhost:{}", addr.port());
        for system in pushing.values() {
            let pushed = simulator::push::push_system(&sim, system, &http, &endpoint, 100, 20)
                .await
                .unwrap_or_else(|e| panic!("pushing {system}: {e}"));
            eprintln!("{system} pushed {pushed:?}");
        }
        let _ = std::fs::remove_dir_all(&tls);
        Stack {
            truth: sim.ground_truth(),
            names,
            registry_url,
            ingested,
            _push: Some(push_task),
            connector,
            _registry: registry,
            _server: server,
        }
    }

    /// Stops the connectors.
    async fn stop(self) {
        let connector = self.connector;
        tokio::task::spawn_blocking(move || connector.stop())
            .await
            .expect("stopping the connectors");
    }

    /// How many raw records the connectors write.
    fn expected_in(&self) -> usize {
        self.truth
            .systems
            .iter()
            .filter(|s| self.ingested.contains(&s.id))
            .map(|s| s.record_count)
            .sum()
    }

    /// Waits until every raw record has its outcome, and returns the reconciliation.
    async fn reconciled(&self, within: Duration) -> Reconciliation {
        balanced(&self.names, self.expected_in() as u64, within).await
    }

    /// Checks the national topics against the ground truth: one record per entity, listing
    /// every report of it (a stream point: the reports known when it was published, and its
    /// state every report), and each key's revisions published once each, in order. Returns the
    /// conflicts recorded, by domain and field.
    async fn check_national(&self) -> BTreeMap<String, usize> {
        let registry = Arc::new(RegistryClient::new(&self.registry_url).expect("client"));
        let codecs = NationalCodecs::register(registry).await.expect("codecs");
        let mut conflicts = BTreeMap::new();
        let mut wrong: Vec<String> = Vec::new();
        for domain in Domain::ALL {
            let systems: Vec<_> = self
                .truth
                .systems
                .iter()
                .filter(|s| s.domain == domain && self.ingested.contains(&s.id))
                .collect();
            if systems.is_empty() {
                continue;
            }
            // entity key → the (system, record) pairs that reported it, and the level and
            // ground-truth national values of each report.
            let mut want: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
            let mut reported: BTreeMap<&str, Vec<(Level, &[NationalValue])>> = BTreeMap::new();
            for s in &systems {
                for ((record, key), national) in
                    s.record_ids.iter().zip(&s.entity_keys).zip(&s.national)
                {
                    want.entry(key)
                        .or_default()
                        .insert((s.id.clone(), record.clone()));
                    reported.entry(key).or_default().push((s.level, national));
                }
            }
            let (topic, codecs) = (self.names.national(domain), codecs.clone());
            let runtime = tokio::runtime::Handle::current();
            let records =
                tokio::task::spawn_blocking(move || published(&topic, domain, &codecs, &runtime))
                    .await
                    .expect("reading the national topic");
            // Streams publish a point once; every relay's provenance is in its state.
            let lineage = match domain.is_stream() {
                true => {
                    let topic = self.names.changelog(domain);
                    tokio::task::spawn_blocking(move || recorded_reports(&topic))
                        .await
                        .expect("reading the changelog")
                }
                false => BTreeMap::new(),
            };
            let mut latest: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
            let publications = records.len();
            for (key, record) in records {
                let before = latest.get(&key);
                match record.get("revision").and_then(Value::as_i64) {
                    Some(revision) => assert_eq!(
                        revision,
                        before.map_or(0, |r| r["revision"].as_i64().unwrap_or(0)) + 1,
                        "{domain} {key}: revisions are published once each, in order"
                    ),
                    // Stream records carry no revision: a repeated publication would repeat
                    // the record itself.
                    None => assert_ne!(before, Some(&record), "{domain} {key}: published twice"),
                }
                latest.insert(key, record);
            }
            let got: BTreeSet<&str> = latest.keys().map(String::as_str).collect();
            let expected: BTreeSet<&str> = want.keys().copied().collect();
            assert_eq!(
                got.difference(&expected).collect::<Vec<_>>(),
                Vec::<&&str>::new(),
                "{domain}: national records of no ground-truth entity"
            );
            assert_eq!(
                expected.difference(&got).collect::<Vec<_>>(),
                Vec::<&&str>::new(),
                "{domain}: ground-truth entities without a national record"
            );
            let regions = &self.truth.domains[domain.as_str()].regions;
            let mut superseded = 0;
            for (key, record) in &latest {
                // The division as the ground truth has it: the code in force, the withdrawn
                // code a county still sends kept beside it with exactly one region warning.
                let expected = &regions[key.as_str()];
                let region = &record["region"];
                assert_eq!(
                    (region["code"].as_str(), region["reported_code"].as_str()),
                    (Some(expected.code), expected.reported_code),
                    "{domain} {key}: region"
                );
                let region_warnings: Vec<&str> = record["warnings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|w| Some(w.as_str()?.split_once(':')?.0))
                    .filter(|code| code.starts_with("REGION_"))
                    .collect();
                let warned: &[&str] = match expected.reported_code {
                    Some(_) => &["REGION_CODE_SUPERSEDED"],
                    None => &[],
                };
                assert_eq!(region_warnings, warned, "{domain} {key}: region warnings");
                superseded += usize::from(expected.reported_code.is_some());
                let contributions: BTreeSet<(String, String)> = record["contributions"]
                    .as_array()
                    .expect("contributions")
                    .iter()
                    .map(|p| {
                        (
                            p["source_system_id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            p["source_record_id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        )
                    })
                    .collect();
                if domain.is_stream() {
                    assert!(
                        !contributions.is_empty() && contributions.is_subset(&want[key.as_str()]),
                        "{domain} {key}: contributions {contributions:?} of {:?}",
                        want[key.as_str()]
                    );
                    assert_eq!(
                        lineage.get(key.as_str()),
                        Some(&want[key.as_str()]),
                        "{domain} {key}: every report's provenance in the state"
                    );
                } else {
                    assert_eq!(&contributions, &want[key.as_str()], "{domain} {key}");
                }
                owning_level_checks(domain, key, record, &reported[key.as_str()], &mut wrong);
                for conflict in record["conflicts"].as_array().into_iter().flatten() {
                    let field = conflict["field"].as_str().unwrap_or_default();
                    *conflicts.entry(format!("{domain}.{field}")).or_default() += 1;
                }
            }
            assert!(
                superseded > 0,
                "{domain}: some county still sends a withdrawn division code"
            );
            eprintln!(
                "{domain}: {} national records ({publications} publications) from {} systems, \
                 {superseded} under a withdrawn division code",
                latest.len(),
                systems.len()
            );
        }
        assert!(
            wrong.is_empty(),
            "{} national values or conflicts differ from the ground truth, e.g. {:#?}",
            wrong.len(),
            &wrong[..wrong.len().min(20)]
        );
        conflicts
    }
}

/// Survivorship by ownership against the ground truth, for one national record: each watched
/// field holds the owning level's value (the lowest level that reported the entity), and is a
/// conflict exactly when the reports show different values (stale copies); arrays with a
/// natural key never have a conflict on the whole array. Differences go to `wrong`.
fn owning_level_checks(
    domain: Domain,
    key: &str,
    record: &Map<String, Value>,
    reports: &[(Level, &[NationalValue])],
    wrong: &mut Vec<String>,
) {
    let conflicts: BTreeSet<&str> = record["conflicts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["field"].as_str())
        .collect();
    for whole in ["lines", "items", "areas", "rooms"] {
        if conflicts.contains(whole) {
            wrong.push(format!(
                "{domain} {key}: a conflict on the whole of `{whole}`"
            ));
        }
    }
    // How a value was reported (litres or kg, the coefficient's source) is no disagreement.
    for field in &conflicts {
        if field.ends_with(".coefficient_source") || field.ends_with(".kgce_per_unit") {
            wrong.push(format!(
                "{domain} {key}: a conflict on how it was reported, {field}"
            ));
        }
    }
    let Some((_, owner)) = reports.iter().max_by_key(|(level, _)| *level) else {
        return;
    };
    for (k, expected) in owner.iter().enumerate() {
        let field = expected.field;
        let got = national_value(record, field);
        let same = match (&expected.value, &got) {
            (Value::Number(want), Some(got)) => {
                let (want, got) = (
                    want.as_f64().unwrap_or(f64::NAN),
                    got.as_f64().unwrap_or(f64::NAN),
                );
                (want - got).abs() <= 1e-6 * want.abs().max(1.0)
            }
            (Value::Null, None) => true,
            (want, got) => Some(want) == got.as_ref(),
        };
        if !same {
            wrong.push(format!(
                "{domain} {key}: {field} = {got:?}, the owning level's is {}",
                expected.value
            ));
        }
        let shown: BTreeSet<&str> = reports
            .iter()
            .filter_map(|(_, values)| values.get(k)?.shown.as_deref())
            .collect();
        let conflict = shown.len() > 1;
        if conflicts.contains(field) != conflict {
            wrong.push(format!(
                "{domain} {key}: conflict on {field} {}, the reports show {shown:?}",
                if conflict { "missing" } else { "unexpected" }
            ));
        }
    }
}

/// A national record's value at a ground-truth field (`actual_staff`, `water`,
/// `lines[ELECTRICITY].amount`, `status`): an amount's canonical value as a number, a count or
/// symbol as it is; `None` if empty or absent.
fn national_value(record: &Map<String, Value>, field: &str) -> Option<Value> {
    let value = match field.split_once('[') {
        None => record.get(field)?,
        Some((array, rest)) => {
            let (line, inner) = rest.split_once("].")?;
            let key = match array {
                "lines" => "carrier",
                "items" => "item",
                _ => return None,
            };
            record
                .get(array)?
                .as_array()?
                .iter()
                .find(|l| l[key] == line)?
                .get(inner)?
        }
    };
    match value {
        Value::Null => None,
        Value::Object(amount) => {
            let number: f64 = amount.get("value")?.as_str()?.parse().ok()?;
            Some(Value::from(number))
        }
        other => Some(other.clone()),
    }
}

/// Every committed record of a national topic, decoded, in offset order per partition.
fn published(
    topic: &str,
    domain: Domain,
    codecs: &NationalCodecs,
    runtime: &tokio::runtime::Handle,
) -> Vec<(String, Map<String, Value>)> {
    let mut records = Vec::new();
    schemas::kafka::read_to_end(
        &tests::settings(),
        topic,
        None,
        Duration::from_secs(60),
        |_, key, value| {
            let value = value.expect("national records are never deleted");
            let record = codecs.decode(domain, value, runtime).expect("decodes");
            records.push((String::from_utf8_lossy(key).into_owned(), record));
        },
    )
    .expect("reading a national topic");
    records
}

/// The (system, record) pairs of every report in the latest state of each entity of a
/// changelog topic.
fn recorded_reports(topic: &str) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut states = BTreeMap::new();
    schemas::kafka::read_to_end(
        &tests::settings(),
        topic,
        None,
        Duration::from_secs(60),
        |_, key, value| {
            let key = String::from_utf8_lossy(key).into_owned();
            match value {
                Some(bytes) => {
                    let state = hub::stages::resolve::EntityState::decode(bytes).expect("state");
                    let reports = state
                        .reports
                        .values()
                        .map(|r| {
                            (
                                r.provenance.source_system_id.clone(),
                                r.provenance.source_record_id.clone(),
                            )
                        })
                        .collect();
                    states.insert(key, reports);
                }
                None => {
                    states.remove(&key);
                }
            }
        },
    )
    .expect("reading a changelog");
    states
}

/// Every committed record of `topic`, counted.
fn count(topic: &str) -> usize {
    let mut n = 0;
    schemas::kafka::read_to_end(
        &tests::settings(),
        topic,
        None,
        Duration::from_secs(60),
        |_, _, _| n += 1,
    )
    .expect("reading a topic");
    n
}

/// The checks every run ends with: each raw record counted once and balanced, the quarantine
/// topic as counted, the national topics as the ground truth says, and disagreeing levels
/// recorded as conflicts.
async fn check(stack: &Stack, reconciliation: &Reconciliation) {
    assert_eq!(
        reconciliation.total.received as usize,
        stack.expected_in(),
        "every raw record reached the hub once"
    );
    assert_eq!(
        reconciliation.total.quarantined as usize,
        count(&stack.names.quarantine()),
        "the reconciliation counts what the quarantine topic holds"
    );
    let conflicts = stack.check_national().await;
    eprintln!("{:?}; conflicts: {conflicts:?}", reconciliation.total);
    assert!(
        conflicts.contains_key("institution.actual_staff")
            && conflicts.contains_key("energy-report.total_energy_reported"),
        "the simulator's stale revisions and recomputed totals are conflicts: {conflicts:?}"
    );
    for on_the_line in [
        "energy-report.lines[ELECTRICITY].amount",
        "operating-cost.items[TRAINING].amount",
        "asset-card.status",
    ] {
        assert!(
            conflicts.contains_key(on_the_line),
            "stale copies disagree on {on_the_line}: {conflicts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_provinces_resolve_to_one_national_record_per_entity() {
    let stack = Stack::start().await;
    let registry = Arc::new(RegistryClient::new(&stack.registry_url).expect("client"));
    let state_dir = std::env::temp_dir().join(unique("hub-state"));
    let running = pipeline(
        &stack.names,
        &registry,
        &unique("hub"),
        &state_dir,
        Rules::embedded().clone(),
        Duration::from_secs(3600),
        &prometheus::Registry::new(),
    )
    .await;
    let reconciliation = stack.reconciled(Duration::from_secs(600)).await;
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .expect("stopping");
    check(&stack, &reconciliation).await;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_hubs_neither_lose_nor_repeat_a_publication() {
    let stack = Stack::start().await;
    let group = unique("hub");
    let state_dir = std::env::temp_dir().join(unique("hub-state"));
    let hub = |instance: &str| {
        HubProcess::start(&[
            "--registry-url".to_owned(),
            stack.registry_url.clone(),
            "--topic-prefix".to_owned(),
            stack.names.prefix.clone(),
            "--group-prefix".to_owned(),
            group.clone(),
            "--instance-id".to_owned(),
            instance.to_owned(),
            "--state-dir".to_owned(),
            state_dir.display().to_string(),
            "--transaction-timeout".to_owned(),
            "10s".to_owned(),
            "--batch-records".to_owned(),
            "200".to_owned(),
        ])
    };
    // Kill delays spread before, during and between batches; the second hub runs from the
    // second round to the fourth, so partitions move between live processes too.
    let seed = uuid::Uuid::new_v4().as_u128();
    let mut second: Option<HubProcess> = None;
    for round in 0..5u32 {
        let first = hub("kill-a");
        if round == 1 {
            second = Some(hub("kill-b"));
        }
        let delay = 1500 + ((seed >> (round * 16)) as u64 % 4000);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        first.kill();
        if round == 3
            && let Some(b) = second.take()
        {
            b.kill();
        }
    }
    // A last hub finishes the work.
    let mut last = hub("kill-a");
    last.wait_ready(&reqwest::Client::new()).await;
    let reconciliation = stack.reconciled(Duration::from_secs(600)).await;
    drop(last);
    check(&stack, &reconciliation).await;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(state_dir);
}

/// A county's energy report with its electricity in 千度 (thousands of kWh), a unit the
/// shipped rules do not know.
fn energy_in_thousands_of_kwh() -> schemas::records::RawEnergyReport {
    use schemas::records::{
        Provenance, RawEnergyLine, RawEnergyReport, RawQuantity, ReportingLevel,
    };
    RawEnergyReport {
        provenance: Provenance {
            source_system_id: "replay-test".to_owned(),
            reporting_level: ReportingLevel::County,
            reporter_region_code: "150102".to_owned(),
            source_record_id: "NY-1".to_owned(),
            source_timestamp: None,
            received_at: chrono::Utc::now(),
            connector_id: "replay-test".to_owned(),
            batch_id: None,
        },
        uscc: "111500000212144709".to_owned(),
        institution_name: Some("内蒙古自治区机关事务管理局".to_owned()),
        region_code: Some("150000".to_owned()),
        period: "2025-03".to_owned(),
        lines: vec![RawEnergyLine {
            carrier: "电力".to_owned(),
            amount: RawQuantity {
                value: "12.5".to_owned(),
                unit: "千度".to_owned(),
            },
            cost: None,
        }],
        total_energy: None,
        water: None,
        energy_users: None,
        staff: None,
        building_area: None,
    }
}

/// The pipeline of one test, in-process, with `rules`, its metrics in `metrics`.
async fn pipeline(
    names: &TopicNames,
    registry: &Arc<RegistryClient>,
    group: &str,
    state_dir: &std::path::Path,
    rules: Rules,
    stream_state_retention: Duration,
    metrics: &prometheus::Registry,
) -> Pipeline {
    Pipeline::start(
        PipelineConfig {
            settings: tests::settings(),
            instance_id: format!("{group}-0"),
            group_prefix: group.to_owned(),
            topics: names.clone(),
            stage_threads: 2,
            batch_records: 100,
            batch_interval: Duration::from_millis(50),
            transaction_timeout: Duration::from_secs(10),
            state_dir: state_dir.to_owned(),
            state_cache_bytes: 1 << 20,
            stream_state_retention,
            policy: SurvivorshipPolicy::shipped(),
            rules: Arc::new(rules),
        },
        registry.clone(),
        Metrics::new(metrics).expect("metrics"),
    )
    .await
    .expect("pipeline starts")
}

/// Waits (at most `within`) until the reconciliation has `received` records, all with an
/// outcome.
async fn balanced(names: &TopicNames, received: u64, within: Duration) -> Reconciliation {
    let deadline = Instant::now() + within;
    loop {
        let topic = names.outcomes();
        let r = tokio::task::spawn_blocking(move || {
            Reconciliation::read(&tests::settings(), &topic, Duration::from_secs(60))
        })
        .await
        .expect("thread")
        .expect("reconciliation");
        if r.total.received >= received && r.balanced {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "the hub did not catch up: {:?} of {received}",
            r.total
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The hub's topics behind a prefix of their own, created on the shared broker.
async fn hub_topics(label: &str, partitions: Partitions) -> TopicNames {
    let names = TopicNames {
        prefix: format!("{}.", unique(label)),
    };
    schemas::kafka::ensure_topics(
        &tests::settings(),
        &names.specs(partitions, Retention::default()),
        1,
    )
    .await
    .expect("creating the hub's topics");
    names
}

/// Writes one record to `topic`, as a connector would, and waits until Kafka has it.
fn produce(topic: &str, key: &str, payload: &[u8]) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let producer: ThreadedProducer<DefaultProducerContext> = tests::settings()
        .client_config()
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::to(topic).key(key).payload(payload))
        .map_err(|(e, _)| e)
        .expect("sending");
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantined_records_are_replayed_once_their_cause_is_fixed() {
    use schemas::codec::Encoder;

    let (_registry, registry_url) = start_registry().await;
    let registry = Arc::new(RegistryClient::new(&registry_url).expect("client"));
    let names = hub_topics(
        "replay",
        Partitions {
            stream: 1,
            report: 1,
        },
    )
    .await;
    let raw = Encoder::register(&registry)
        .await
        .expect("raw schema")
        .encode(&energy_in_thousands_of_kwh())
        .expect("encodes");
    produce(&names.raw(Domain::EnergyReport), "NY-1", &raw);

    let (group, state_dir) = (unique("hub"), std::env::temp_dir().join(unique("replay")));
    let running = pipeline(
        &names,
        &registry,
        &group,
        &state_dir,
        Rules::embedded().clone(),
        Duration::from_secs(3600),
        &prometheus::Registry::new(),
    )
    .await;
    let first = balanced(&names, 1, Duration::from_secs(120)).await;
    assert_eq!(first.total.quarantined, 1, "千度 is not a known unit");
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .expect("stopping");

    // The operator adds the unit to units.toml, restarts the hub with it, and replays.
    let rules_dir = state_dir.join("rules");
    std::fs::create_dir_all(&rules_dir).expect("rules folder");
    let units = include_str!("../../hub/config/units.toml").to_owned()
        + "\n[[unit]]\nnames = [\"千度\"]\ncanonical = \"KWH\"\nfactor = \"1000\"\nsource = \"1 千度 = 10³ kWh\"\n";
    std::fs::write(rules_dir.join("units.toml"), units).expect("units.toml");
    let rules = Rules::load(&rules_dir).expect("rules with 千度");
    let running = pipeline(
        &names,
        &registry,
        &group,
        &state_dir,
        rules,
        Duration::from_secs(3600),
        &prometheus::Registry::new(),
    )
    .await;
    let summary = {
        let (names, registry) = (names.clone(), registry.clone());
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            hub::pipeline::replay::replay(
                &tests::settings(),
                &names,
                registry,
                &runtime,
                &unique("replay"),
                &hub::pipeline::replay::ReplayFilter {
                    error_code: Some("unit_unknown".to_owned()),
                    ..Default::default()
                },
            )
        })
        .await
        .expect("thread")
        .expect("replay")
    };
    assert_eq!((summary.examined, summary.replayed), (1, 1));
    let second = balanced(&names, 2, Duration::from_secs(120)).await;
    assert_eq!(
        (second.total.quarantined, second.total.published),
        (1, 1),
        "the replayed record is published; the first attempt stays counted"
    );
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .expect("stopping");
    let codecs = NationalCodecs::register(registry).await.expect("codecs");
    let runtime = tokio::runtime::Handle::current();
    let topic = names.national(Domain::EnergyReport);
    let records = tokio::task::spawn_blocking(move || {
        published(&topic, Domain::EnergyReport, &codecs, &runtime)
    })
    .await
    .expect("reading");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, "111500000212144709|2025-03");
    let kwh: rust_decimal::Decimal = records[0].1["lines"][0]["amount"]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("an amount");
    assert_eq!(
        kwh,
        rust_decimal::Decimal::from(12_500),
        "12.5 千度 = 12 500 kWh"
    );
    let _ = std::fs::remove_dir_all(state_dir);
}

/// A GPS fix of one vehicle as `system` relayed it.
fn fix(
    system: &str,
    level: schemas::records::ReportingLevel,
) -> schemas::records::RawVehiclePosition {
    use schemas::records::{GeodeticDatum, Provenance, RawVehiclePosition};
    RawVehiclePosition {
        provenance: Provenance {
            source_system_id: system.to_owned(),
            reporting_level: level,
            reporter_region_code: "150102".to_owned(),
            source_record_id: format!("{system}-1"),
            source_timestamp: None,
            received_at: chrono::Utc::now(),
            connector_id: "retention-test".to_owned(),
            batch_id: None,
        },
        terminal_id: None,
        plate: Some("蒙A12345".to_owned()),
        vin: Some("LFP0918YXMF886479".to_owned()),
        region_code: Some("150102".to_owned()),
        fix_time: "2025-06-30T08:00:00+08:00".to_owned(),
        latitude: 40.81,
        longitude: 111.65,
        datum: GeodeticDatum::Wgs84,
        speed_kmh: Some(42.0),
        heading_deg: None,
        odometer_km: None,
    }
}

/// A registry, one-partition hub topics, and GPS fixes sent to them.
struct Fixes {
    registry: Arc<RegistryClient>,
    names: TopicNames,
    encoder: schemas::codec::Encoder<schemas::records::RawVehiclePosition>,
    _registry: hub::registry::SchemaRegistry,
}

impl Fixes {
    async fn start(label: &str) -> Self {
        Self::start_with(label, 1).await
    }

    /// With topics of `partitions` partitions each.
    async fn start_with(label: &str, partitions: i32) -> Self {
        let (served, registry_url) = start_registry().await;
        let registry = Arc::new(RegistryClient::new(&registry_url).expect("client"));
        let names = hub_topics(
            label,
            Partitions {
                stream: partitions,
                report: partitions,
            },
        )
        .await;
        let encoder = schemas::codec::Encoder::register(&registry)
            .await
            .expect("raw schema");
        Fixes {
            registry,
            names,
            encoder,
            _registry: served,
        }
    }

    /// Sends the same fix as `system` reporting at `level`.
    fn send(&self, system: &str, level: schemas::records::ReportingLevel) {
        let raw = self.encoder.encode(&fix(system, level)).expect("encodes");
        produce(&self.names.raw(Domain::VehiclePosition), system, &raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_relays_of_a_stream_point_leave_its_national_record_unchanged() {
    use schemas::records::ReportingLevel;

    let fixes = Fixes::start("relays").await;
    let (registry, names) = (&fixes.registry, &fixes.names);
    let state_dir = std::env::temp_dir().join(unique("relays"));
    let running = pipeline(
        names,
        registry,
        &unique("hub"),
        &state_dir,
        Rules::embedded().clone(),
        Duration::from_secs(3600),
        &prometheus::Registry::new(),
    )
    .await;
    let levels = [
        ("county-gps", ReportingLevel::County),
        ("prefecture-gps", ReportingLevel::Prefecture),
        ("province-gps", ReportingLevel::Province),
    ];
    for (system, level) in levels {
        fixes.send(system, level);
    }
    let done = balanced(names, 3, Duration::from_secs(120)).await;
    assert_eq!(
        (done.total.published, done.total.merged_duplicate),
        (1, 2),
        "one publication, two merged relays"
    );
    assert_eq!(
        count(&names.national(Domain::VehiclePosition)),
        1,
        "one national record per point"
    );
    // Every relay's provenance is in the point's state, changelogged.
    let key = "LFP0918YXMF886479|1751241600000";
    let mut latest = None;
    schemas::kafka::read_to_end(
        &tests::settings(),
        &names.changelog(Domain::VehiclePosition),
        None,
        Duration::from_secs(30),
        |_, k, v| {
            if k == key.as_bytes() {
                latest = v.map(<[u8]>::to_vec);
            }
        },
    )
    .expect("reading the changelog");
    let state = hub::stages::resolve::EntityState::decode(&latest.expect("a state"))
        .expect("the state decodes");
    let systems: Vec<&str> = state.reports.keys().map(String::as_str).collect();
    assert_eq!(systems, ["county-gps", "prefecture-gps", "province-gps"]);
    assert_eq!(state.revision, 1);
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .expect("stopping");
    let _ = std::fs::remove_dir_all(state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_states_are_forgotten_after_their_retention() {
    use schemas::records::ReportingLevel;

    let fixes = Fixes::start("retention").await;
    let (registry, names) = (&fixes.registry, &fixes.names);
    let send = |system: &str, level| fixes.send(system, level);
    let state_dir = std::env::temp_dir().join(unique("retention"));
    let running = pipeline(
        names,
        registry,
        &unique("hub"),
        &state_dir,
        Rules::embedded().clone(),
        Duration::from_secs(1),
        &prometheus::Registry::new(),
    )
    .await;

    // The county and the province relay the fix at once: one publication, one merge.
    send("county-gps", ReportingLevel::County);
    send("province-gps", ReportingLevel::Province);
    let first = balanced(names, 2, Duration::from_secs(120)).await;
    assert_eq!(
        (first.total.published, first.total.merged_duplicate),
        (1, 1)
    );

    // Past its retention the fix's state goes (a tombstone in the changelog); a copy arriving
    // after that is new again.
    let key = "LFP0918YXMF886479|1751241600000";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut states = BTreeMap::new();
        schemas::kafka::read_to_end(
            &tests::settings(),
            &names.changelog(Domain::VehiclePosition),
            None,
            Duration::from_secs(30),
            |_, k, v| {
                states.insert(String::from_utf8_lossy(k).into_owned(), v.is_some());
            },
        )
        .expect("reading the changelog");
        if states.get(key) == Some(&false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no tombstone for {key}: {states:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    send("prefecture-gps", ReportingLevel::Prefecture);
    let second = balanced(names, 3, Duration::from_secs(120)).await;
    assert_eq!(
        second.total.published, 2,
        "after its retention the fix is new"
    );
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .expect("stopping");
    let _ = std::fs::remove_dir_all(state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanly_stopped_hub_restores_its_stores_from_their_checkpoints() {
    use schemas::records::ReportingLevel;

    let fixes = Fixes::start("checkpoint").await;
    let (group, state_dir) = (
        unique("hub"),
        std::env::temp_dir().join(unique("checkpoint")),
    );
    // One life of the same hub instance: started, sent one level's copy of the fix, waited
    // for until `received` records have their outcome, stopped cleanly. Returns the totals and
    // the life's restores.
    let life = |system: &'static str, level: ReportingLevel, received: u64| {
        let (fixes, group, state_dir) = (&fixes, group.clone(), state_dir.clone());
        async move {
            let metrics = prometheus::Registry::new();
            let running = pipeline(
                &fixes.names,
                &fixes.registry,
                &group,
                &state_dir,
                Rules::embedded().clone(),
                Duration::from_secs(3600),
                &metrics,
            )
            .await;
            fixes.send(system, level);
            let reconciliation = balanced(&fixes.names, received, Duration::from_secs(120)).await;
            tokio::task::spawn_blocking(move || running.stop())
                .await
                .expect("stopping");
            (
                reconciliation.total,
                restore_records(&metrics, Domain::VehiclePosition),
            )
        }
    };

    let (published, _) = life("county-gps", ReportingLevel::County, 1).await;
    assert_eq!(published.published, 1);

    // The same instance again: its store comes back from the checkpoint, reading nothing, and
    // still knows the fix — the province's copy is a duplicate.
    let (merged, restored) = life("province-gps", ReportingLevel::Province, 2).await;
    assert_eq!((merged.published, merged.merged_duplicate), (1, 1));
    assert_eq!(restored, BTreeMap::from([("checkpoint".to_owned(), 0)]));

    // Without its checkpoint (opening a store takes it out, so a process killed after that
    // leaves none; closing it without one, as here, leaves no file) the store is rebuilt from
    // the whole changelog: the fix's two states so far (published, then merged).
    for file in std::fs::read_dir(&state_dir).expect("state dir").flatten() {
        let (store, checkpoint) =
            hub::pipeline::store::Store::open(&file.path(), 1 << 20).expect("store");
        assert!(
            checkpoint.is_some(),
            "{}: kept with a checkpoint",
            file.path().display()
        );
        drop(store);
    }
    let (again, restored) = life("city-gps", ReportingLevel::Prefecture, 3).await;
    assert_eq!((again.published, again.merged_duplicate), (1, 2));
    assert_eq!(restored, BTreeMap::from([("beginning".to_owned(), 2)]));
    let _ = std::fs::remove_dir_all(state_dir);
}

/// `hub_state_restore_records_total` of `domain`, by where the restores started.
fn restore_records(metrics: &prometheus::Registry, domain: Domain) -> BTreeMap<String, u64> {
    metrics
        .gather()
        .iter()
        .filter(|family| family.name() == "hub_state_restore_records_total")
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "domain" && l.value() == domain.as_str())
        })
        .filter_map(|m| {
            let from = m.get_label().iter().find(|l| l.name() == "from")?;
            Some((from.value().to_owned(), m.get_counter().get_value() as u64))
        })
        .collect()
}

/// Sends `points` distinct GPS fixes from number `first` on, each relayed by the county, the
/// prefecture and the province, and one record that does not decode; through one producer.
fn send_points(fixes: &Fixes, first: u32, points: u32) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use schemas::records::ReportingLevel;

    let producer: ThreadedProducer<DefaultProducerContext> = tests::settings()
        .client_config()
        .create()
        .expect("producer");
    let topic = fixes.names.raw(Domain::VehiclePosition);
    let mut records = vec![("junk".to_owned(), b"not avro".to_vec())];
    for i in first..first + points {
        for (system, level) in [
            ("county-gps", ReportingLevel::County),
            ("city-gps", ReportingLevel::Prefecture),
            ("province-gps", ReportingLevel::Province),
        ] {
            let mut report = fix(system, level);
            report.fix_time = format!(
                "2025-06-30T{:02}:{:02}:{:02}+08:00",
                8 + i / 3600,
                i / 60 % 60,
                i % 60
            );
            report.provenance.source_record_id = format!("{system}-{i}");
            let payload = fixes.encoder.encode(&report).expect("encodes");
            records.push((format!("{system}-{i}"), payload));
        }
    }
    for (key, payload) in &records {
        producer
            .send(BaseRecord::to(&topic).key(key).payload(payload))
            .map_err(|(e, _)| e)
            .expect("sending");
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

/// `hub.outcomes` as it is: how many records, and per key the sum of its latest value's
/// counts.
fn outcome_records(names: &TopicNames) -> (usize, BTreeMap<Vec<u8>, u64>) {
    use hub::pipeline::accounting::Regions;

    let (mut records, mut latest) = (0, BTreeMap::new());
    schemas::kafka::read_to_end(
        &tests::settings(),
        &names.outcomes(),
        None,
        Duration::from_secs(30),
        |_, key, value| {
            records += 1;
            let regions: Regions =
                serde_json::from_slice(value.expect("no tombstones")).expect("a running total");
            let sum = regions
                .values()
                .map(|c| {
                    c.received + c.published + c.merged_duplicate + c.unchanged + c.quarantined
                })
                .sum();
            latest.insert(key.to_vec(), sum);
        },
    )
    .expect("reading the outcomes");
    (records, latest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_stays_exact_across_a_restart_with_one_total_per_writer() {
    let fixes = Fixes::start("totals").await;
    let (group, state_dir) = (unique("hub"), std::env::temp_dir().join(unique("totals")));
    // Two lives of the same hub instance (so the same stage producers), sent 100 and then 50
    // new points from three levels and one record that does not decode, in batches of 100.
    let mut before: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let (mut points, mut received) = (0, 0);
    for (life, sent) in [(1u32, 100u32), (2, 50)] {
        let running = pipeline(
            &fixes.names,
            &fixes.registry,
            &group,
            &state_dir,
            Rules::embedded().clone(),
            Duration::from_secs(3600),
            &prometheus::Registry::new(),
        )
        .await;
        tokio::task::block_in_place(|| send_points(&fixes, life * 1000, sent));
        (points, received) = (points + u64::from(sent), received + 3 * u64::from(sent) + 1);
        let r = balanced(&fixes.names, received, Duration::from_secs(180)).await;
        let balance = &r.by_domain[&Domain::VehiclePosition]["150102"];
        assert_eq!(
            (r.total.received, r.total.quarantined, balance.published),
            (received, u64::from(life), points),
            "life {life}: {:?}",
            r.total
        );
        assert_eq!(
            balance.published + balance.merged_duplicate + balance.unchanged,
            3 * points
        );
        tokio::task::spawn_blocking(move || running.stop())
            .await
            .expect("stopping");
        // Per stage producer (two threads; whichever got the partition counted): the totals
        // of province 15 and of `unknown`, however many batches. A producer of the second life went on from its first life's totals
        // (50 points counted from zero would be less than the 100 before).
        let (records, latest) = outcome_records(&fixes.names);
        assert!(
            (2..=4).contains(&latest.len()),
            "life {life}: {} keys, at most one per stage producer and province",
            latest.len()
        );
        assert!(
            records > latest.len(),
            "life {life}: {records} records, several batches each"
        );
        for (key, total) in &before {
            assert!(
                latest[key] >= *total,
                "{}: a total went back from {total} to {}",
                String::from_utf8_lossy(key),
                latest[key]
            );
        }
        before = latest;
    }
    let _ = std::fs::remove_dir_all(state_dir);
}

/// Reports of 12 vehicles' fixes from three levels, into a raw topic of 4 partitions: first as a
/// co-partitioning connector writes them (keyed by VIN, in `partition_for` of it), then as a
/// producer that does not (keyed by source record, partitions in turn). Both are resolved into
/// one national record per fix; only the second go through the repartition topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_partitioned_reports_are_resolved_where_they_are_read() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use schemas::partition::partition_for;
    use schemas::records::ReportingLevel;

    let fixes = Fixes::start_with("copartition", 4).await;
    let (registry, names) = (&fixes.registry, &fixes.names);
    let state_dir = std::env::temp_dir().join(unique("copartition"));
    let metrics = prometheus::Registry::new();
    let group = unique("hub");
    let running = pipeline(
        names,
        registry,
        &group,
        &state_dir,
        Rules::embedded().clone(),
        Duration::from_secs(3600),
        &metrics,
    )
    .await;
    let producer: ThreadedProducer<DefaultProducerContext> = tests::settings()
        .client_config()
        .create()
        .expect("producer");
    let topic = names.raw(Domain::VehiclePosition);
    let levels = [
        ("county-gps", ReportingLevel::County),
        ("prefecture-gps", ReportingLevel::Prefecture),
        ("province-gps", ReportingLevel::Province),
    ];
    let send = |minute: u32, copartitioned: bool| {
        for v in 0..12u32 {
            let mut vin = format!("LFP09{}Y10MF{v:06}", ["A", "B", "C"][v as usize % 3]);
            let check = schemas::ids::vin_check(&vin).expect("a VIN");
            vin.replace_range(8..9, &check.to_string());
            for (n, (system, level)) in levels.iter().enumerate() {
                let mut report = fix(system, *level);
                report.vin = Some(vin.clone());
                report.plate = None;
                report.fix_time = format!("2025-06-30T08:{minute:02}:00+08:00");
                let raw = fixes.encoder.encode(&report).expect("encodes");
                let record = BaseRecord::to(&topic).payload(&raw);
                let (key, partition) = if copartitioned {
                    (vin.clone(), partition_for(vin.as_bytes(), 4))
                } else {
                    let turn = i32::try_from(v as usize * 3 + n).expect("small") % 4;
                    (format!("{system}-{v}-{minute}"), turn)
                };
                producer
                    .send(record.key(&key).partition(partition))
                    .map_err(|(e, _)| e)
                    .expect("sending");
            }
        }
        producer.flush(Duration::from_secs(30)).expect("flushed");
    };
    let repartitioned = || {
        let mut n = 0;
        schemas::kafka::read_to_end(
            &tests::settings(),
            &names.repartition(Domain::VehiclePosition),
            None,
            Duration::from_secs(30),
            |_, _, _| n += 1,
        )
        .expect("reading the repartition topic");
        n
    };

    send(1, true);
    let done = balanced(names, 36, Duration::from_secs(120)).await;
    assert_eq!(
        (done.total.published, done.total.merged_duplicate),
        (12, 24)
    );
    assert_eq!(repartitioned(), 0, "co-partitioned reports take no hop");

    // Both stage threads hold partitions (the first to join held all of them).
    let deadline = Instant::now() + Duration::from_secs(60);
    let group_id = format!("{group}-resolve");
    loop {
        let groups = tokio::task::block_in_place(|| {
            producer
                .client()
                .fetch_group_list(Some(&group_id), Duration::from_secs(10))
        })
        .expect("the group");
        let shared = groups.groups().first().is_some_and(|g| {
            g.state() == "Stable"
                && g.members().len() == 2
                // An assignment of no partitions encodes in a few bytes.
                && g.members()
                    .iter()
                    .all(|m| m.assignment().is_some_and(|a| a.len() > 16))
        });
        if shared {
            break;
        }
        assert!(Instant::now() < deadline, "the second thread never joined");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    send(2, false);
    let done = balanced(names, 72, Duration::from_secs(120)).await;
    assert_eq!(
        (done.total.published, done.total.merged_duplicate),
        (24, 48),
        "one national record per fix, whichever partition its reports came in"
    );
    let hopped = repartitioned();
    assert!(
        hopped > 0 && hopped <= 36,
        "{hopped} of 36 reports read in another partition than their entity's went through the repartition topic"
    );
    let counted = metrics
        .gather()
        .into_iter()
        .find(|f| f.name() == "hub_records_repartitioned_total")
        .map_or(0.0, |f| {
            f.get_metric()
                .iter()
                .map(|m| m.get_counter().get_value())
                .sum()
        });
    assert_eq!(counted as usize, hopped, "counted once each");
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .expect("stopping");
    let _ = std::fs::remove_dir_all(state_dir);
}
