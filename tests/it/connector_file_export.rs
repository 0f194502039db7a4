//! `file_drop` instances read the simulator's own CSV exports — in each system's encoding
//! (UTF-8, GBK, GB18030), with Chinese headers — and the raw topic then holds exactly the
//! records the ground truth says each file-based system serves. (The simulator's XLSX systems
//! are of domains whose raw form needs lines; XLSX reading is tested in `file_drop`'s units.)

use std::collections::BTreeSet;
use std::path::Path;

use connectors::config::ConnectorConfig;
use connectors::instance::Instance;
use schemas::registry::RegistryClient;
use simulator::connector_config::{Overrides, instance_toml};
use simulator::export::ExportOptions;
use simulator::systems::{Encoding, Protocol};
use simulator::{Simulator, Size, World};
use tests::{connector_topics, read_partition, start_registry, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_exports_are_ingested_exactly() {
    let sim = Simulator::new(World::new(20_251_123, Size::Tiny));
    let out = std::env::temp_dir().join(unique("export"));
    let truth = simulator::export::export(&sim, &out, &ExportOptions { malformed_every: 0 })
        .expect("export");
    let (_registry, registry_url) = start_registry().await;
    let registry = RegistryClient::new(&registry_url).expect("client");

    let mut checked = BTreeSet::new();
    let systems = sim.systems().iter().filter(|p| {
        p.protocol == Protocol::Csv && instance_toml(p, "", &Overrides::default()).is_some()
    });
    for profile in systems {
        let encoding = match profile.encoding {
            Encoding::Utf8 => "utf8",
            Encoding::Gbk => "gbk",
            Encoding::Gb18030 => "gb18030",
        };
        if !checked.insert(encoding) {
            continue;
        }
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
                        "kind = \"file_drop\"\ndir = \"{}\"\nencoding = \"{encoding}\"",
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
        let ids = Instance::register(&instance, &registry)
            .await
            .expect("schemas");
        let handle = tokio::runtime::Handle::current();
        let stats = tokio::task::spawn_blocking(move || {
            Instance::start(&config, instance, ids, handle)
                .expect("instance starts")
                .poll()
                .expect("poll")
        })
        .await
        .expect("instance thread");

        let expected = truth
            .systems
            .iter()
            .find(|s| s.id == profile.id)
            .expect("system in the ground truth");
        let keys: Vec<String> = read_partition(&topics.raw, "read_committed")
            .into_iter()
            .map(|(k, _)| String::from_utf8(k.expect("key")).expect("UTF-8"))
            .collect();
        assert_eq!(stats.quarantined, 0, "{}: {stats:?}", profile.id);
        assert_eq!(keys, expected.record_ids, "{} ({encoding})", profile.id);
        assert!(dir.join("done").is_dir(), "the export moved to done/");
    }
    assert!(!checked.is_empty(), "at least one mappable CSV system");
    std::fs::remove_dir_all(&out).expect("cleanup");
}
