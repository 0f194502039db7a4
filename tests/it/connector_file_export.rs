//! `file_drop` instances read the simulator's own exports — CSV in each system's encoding
//! (UTF-8, GBK, GB18030) and XLSX, with Chinese headers — and the raw topic then holds exactly
//! the records the ground truth says each file-based system serves. An energy report's
//! columns per carrier arrive as `lines` with the value and unit the system stated.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use connectors::config::ConnectorConfig;
use connectors::instance::Instance;
use connectors::slot::Slot;
use schemas::codec::Decoder;
use schemas::records::RawEnergyReport;
use schemas::registry::RegistryClient;
use simulator::connector_config::{Overrides, instance_toml};
use simulator::export::ExportOptions;
use simulator::systems::{Domain, Encoding, GroundTruth, Protocol, SystemProfile};
use simulator::{Simulator, Size, World};
use tests::{
    KeyPayload, connector_topics, read_partition, source_record_id, start_registry, unique,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_exports_are_ingested_exactly() {
    let sim = Simulator::new(World::new(20_251_123, Size::Tiny));
    let out = std::env::temp_dir().join(unique("export"));
    let truth = simulator::export::export(&sim, &out, &ExportOptions { malformed_every: 0 })
        .expect("export");
    let (_registry, registry_url) = start_registry().await;
    let registry = Arc::new(RegistryClient::new(&registry_url).expect("client"));

    // One mappable system per file format, encoding and domain.
    let mut kinds = BTreeSet::new();
    let systems: Vec<&SystemProfile> = sim
        .systems()
        .iter()
        .filter(|p| {
            matches!(p.protocol, Protocol::Csv | Protocol::Xlsx)
                && instance_toml(p, "", &Overrides::default()).is_some()
                && kinds.insert(format!(
                    "{:?} {:?} {}",
                    p.protocol,
                    p.encoding,
                    p.domain.as_str()
                ))
        })
        .collect();
    for profile in systems {
        let records = ingest(profile, &out, &registry_url, &registry, &truth).await;
        if profile.domain == Domain::EnergyReport {
            check_lines(&sim, profile, &records, &registry).await;
        }
    }
    for kind in [
        "Csv Utf8 institution",
        "Csv Gbk vehicle",
        "Csv Gbk energy-report",
        "Csv Gbk operating-cost",
        "Xlsx Utf8 energy-report",
    ] {
        assert!(kinds.contains(kind), "{kind} not in {kinds:?}");
    }
    std::fs::remove_dir_all(&out).expect("cleanup");
}

/// Ingests `profile`'s export through a `file_drop` instance and checks the raw topic holds
/// exactly the ground truth's record ids, nothing quarantined; returns the raw messages.
async fn ingest(
    profile: &SystemProfile,
    out: &Path,
    registry_url: &str,
    registry: &RegistryClient,
    truth: &GroundTruth,
) -> Vec<KeyPayload> {
    let encoding = match profile.encoding {
        Encoding::Utf8 => "utf8",
        Encoding::Gbk => "gbk",
        Encoding::Gb18030 => "gb18030",
    };
    let topics = connector_topics().await;
    let dir = out.join(&profile.id);
    let instance = instance_toml(
        profile,
        "",
        &Overrides {
            instance_id: Some(unique("file")),
            topic: Some(topics.raw.clone()),
            pagination: None,
            source: Some((
                format!(
                    "kind = \"file_drop\"\ndir = \"{}\"\nencoding = \"{encoding}\"\n\
                     complete = {{ settled = \"0s\" }}",
                    dir.display()
                ),
                profile.id_field.clone(),
            )),
        },
    )
    .expect("mappable");
    let text = format!(
        "connector_id = \"file-test\"\nregistry_url = \"{registry_url}\"\nquarantine_topic = \"{}\"\nprogress_topic = \"{}\"\n[kafka]\nbootstrap = \"{}\"\n{instance}",
        topics.quarantine,
        topics.progress,
        tests::bootstrap(),
    );
    let config = ConnectorConfig::parse(Path::new("file.toml"), &text).expect("config");
    let instance = config.instances[0].clone();
    let ids = Instance::register(&instance, registry)
        .await
        .expect("schemas");
    let handle = tokio::runtime::Handle::current();
    let stats = tokio::task::spawn_blocking(move || {
        Slot::single(&config, instance, ids, handle)
            .expect("instance starts")
            .poll_once()
            .expect("poll")
    })
    .await
    .expect("instance thread");

    let expected = truth
        .systems
        .iter()
        .find(|s| s.id == profile.id)
        .expect("system in the ground truth");
    let records = read_partition(&topics.raw, "read_committed");
    let ids: Vec<String> = records
        .iter()
        .map(|(_, payload)| source_record_id(payload.as_deref().expect("payload")))
        .collect();
    assert_eq!(stats.quarantined, 0, "{}: {stats:?}", profile.id);
    assert_eq!(ids, expected.record_ids, "{} ({encoding})", profile.id);
    assert!(dir.join("done").is_dir(), "the export moved to done/");
    records
}

/// The first record's lines: one per carrier column, in column order, each with the value the
/// file holds and the unit the system states (a prefecture's 万千瓦时 stays 万千瓦时).
async fn check_lines(
    sim: &Simulator,
    profile: &SystemProfile,
    records: &[KeyPayload],
    registry: &Arc<RegistryClient>,
) {
    let decoder = Decoder::<RawEnergyReport>::new(registry.clone());
    let payload = records[0].1.as_deref().expect("payload");
    let report = decoder.decode(payload).await.expect("decodes");
    let (sys, _) = sim.system(&profile.id).expect("system");
    let source = &sim.records(sys, 0..1)[0];
    let carriers: Vec<&str> = report.lines.iter().map(|l| l.carrier.as_str()).collect();
    assert_eq!(carriers, ["电力", "天然气", "汽油", "柴油", "热力"]);
    let column = profile
        .fields
        .iter()
        .position(|f| f.canonical == "electricity")
        .expect("electricity column");
    let electricity = &report.lines[0].amount;
    assert_eq!(Some(electricity.unit.as_str()), profile.fields[column].unit);
    if profile.protocol == Protocol::Xlsx {
        assert_eq!(electricity.unit, "万千瓦时", "the prefecture's unit");
    }
    let sent: f64 = source.cells[column].text().parse().expect("a number");
    assert_eq!(
        electricity.value.parse::<f64>(),
        Ok(sent),
        "{electricity:?}"
    );
    assert_eq!(report.uscc, source.cells[1].text());
}
