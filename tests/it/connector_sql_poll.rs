//! A `sql_poll` instance reads the simulator's PostgreSQL-backed system from a real PostgreSQL
//! server (`ops/dev test` starts Debian's and sets `HUITONG_PG_URL`): the raw topic holds exactly
//! the system's records, and rows changed later are read on the next poll without repeats.

use std::collections::BTreeMap;
use std::path::Path;

use connectors::config::ConnectorConfig;
use connectors::instance::Instance;
use connectors::slot::Slot;
use schemas::registry::RegistryClient;
use simulator::connector_config::{Overrides, instance_toml};
use simulator::systems::Protocol;
use simulator::{Simulator, Size, World};
use tests::{connector_topics, raw_record_ids, start_registry, unique};

fn pg_url() -> String {
    std::env::var("HUITONG_PG_URL").unwrap_or_else(|_| {
        panic!(
            "HUITONG_PG_URL is not set: run the tests with `ops/dev test`, which starts PostgreSQL"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_system_is_ingested_exactly_and_incrementally() {
    let url = pg_url();
    let sim = Simulator::new(World::new(20_251_123, Size::Tiny));
    let profile = sim
        .systems()
        .iter()
        .find(|p| p.protocol == Protocol::Postgres)
        .expect("the PostgreSQL-backed system");
    let table = unique("sql").replace('-', "_");
    let loaded = simulator::postgres::load(&sim, &profile.id, &url, &table)
        .await
        .expect("loading the table");
    assert!(loaded > 0);

    let (_registry, registry_url) = start_registry().await;
    let topics = connector_topics().await;
    let instance = instance_toml(
        profile,
        "",
        &Overrides {
            instance_id: Some(unique("sql")),
            topic: Some(topics.raw.clone()),
            pagination: None,
            source: Some((
                format!("kind = \"sql_poll\"\nconnection = \"{url}\"\ntable = \"{table}\""),
                "record_id".to_owned(),
            )),
        },
    )
    .expect("the system maps from flat fields");
    let text = format!(
        "connector_id = \"sql-test\"\nregistry_url = \"{registry_url}\"\nquarantine_topic = \"{}\"\nprogress_topic = \"{}\"\n[kafka]\nbootstrap = \"{}\"\n{}",
        topics.quarantine,
        topics.progress,
        tests::bootstrap(),
        instance.replace(
            "poll_interval = \"10s\"",
            "poll_interval = \"10s\"\nbatch_size = 4"
        )
    );
    let config = ConnectorConfig::parse(Path::new("sql.toml"), &text).expect("config");
    let registry = RegistryClient::new(&registry_url).expect("client");
    let instance = config.instances[0].clone();
    let ids = Instance::register(&instance, &registry)
        .await
        .expect("schemas");
    let handle = tokio::runtime::Handle::current();
    let (changed_table, changed_url) = (table.clone(), url.clone());
    let (first, second, third) = tokio::task::spawn_blocking(move || {
        let mut running =
            Slot::single(&config, instance, ids, handle.clone()).expect("instance starts");
        let first = running.poll_once().expect("first poll");
        let second = running.poll_once().expect("second poll");
        // The source system changes one row: the next poll reads exactly that row.
        handle
            .block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&changed_url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .execute(
                        &format!(
                            "UPDATE \"{changed_table}\" SET updated_at = now() + interval '1 day' \
                             WHERE id = (SELECT min(id) FROM \"{changed_table}\")"
                        ),
                        &[],
                    )
                    .await
            })
            .expect("updating a row");
        let third = running.poll_once().expect("third poll");
        (first, second, third)
    })
    .await
    .expect("instance thread");
    assert_eq!(first.written, loaded, "every row");
    assert_eq!((second.read, second.written), (0, 0), "nothing new");
    assert_eq!(second.lag, Some(std::time::Duration::ZERO), "caught up");
    assert!(first.lag.is_some(), "a table can tell its lag");
    assert_eq!((third.read, third.written), (1, 1), "only the changed row");

    let truth = sim.ground_truth();
    let expected = truth
        .systems
        .iter()
        .find(|s| s.id == profile.id)
        .expect("system in the ground truth");
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    for id in raw_record_ids(&topics.raw) {
        *keys.entry(id).or_default() += 1;
    }
    let mut want = expected.record_ids.clone();
    want.sort();
    assert_eq!(keys.keys().cloned().collect::<Vec<_>>(), want);
    assert_eq!(
        keys.values().filter(|n| **n == 2).count(),
        1,
        "the changed row, twice"
    );
}
