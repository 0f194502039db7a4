//! A `file_drop` instance ingesting a GBK export with Chinese headers into a raw topic on the
//! real broker: good rows are written with correct Chinese, bad rows are quarantined naming file
//! and line, and a file dropped again is not ingested twice — also by a restarted instance.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use connectors::config::ConnectorConfig;
use connectors::instance::{Instance, PollStats};
use connectors::slot::Slot;
use schemas::codec::Decoder;
use schemas::records::{Quarantine, QuarantineStage, RawVehicle, ReportingLevel};
use schemas::registry::RegistryClient;
use tests::{ConnectorTopics, connector_topics, read_partition, start_registry, unique};

const HEADER: &str =
    "车架号,号牌号码,使用单位统一社会信用代码,使用单位名称,能源类型,购置日期,购置价格";

/// Rows of a county platform's vehicle export: four good ones, then a bad date (line 6), a
/// row with a missing column (line 7) and one without the owner's USCC (line 8).
const ROWS: [&str; 7] = [
    "LSVAU2180N2183294,云A·D12345,11530114015162553X,呈贡区机关事务管理局,纯电动,2021年3月5日,18.5",
    "LFV2A21K6L4050331,云A12345,11530114015162553X,呈贡区机关事务管理局,汽油,2019年11月20日,22.8",
    "LGBF5AE05LR312617,云AF2345,12530114MB0123456L,呈贡区人民医院,纯电动,2022年1月1日,15",
    "LZWADAGA5LB123452,云A3Q456,11530114015162553X,呈贡区机关事务管理局,混合动力,2020年6月30日,19.98",
    "LSVAU2180N2183295,云A55555,11530114015162553X,呈贡区机关事务管理局,汽油,2020-06-30,20",
    "LSVAU2180N2183296,云A66666,11530114015162553X,呈贡区机关事务管理局,汽油,2020年6月30日",
    "LSVAU2180N2183297,云A77777,,呈贡区机关事务管理局,汽油,2020年6月30日,20",
];

fn gbk(lines: &[&str]) -> Vec<u8> {
    let text = format!("{HEADER}\r\n{}\r\n", lines.join("\r\n"));
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable, "fixture text fits GBK");
    bytes.into_owned()
}

struct Setup {
    config: ConnectorConfig,
    registry: Arc<RegistryClient>,
    raw_topic: String,
    quarantine_topic: String,
    dir: PathBuf,
}

async fn setup(registry_url: &str) -> Setup {
    let ConnectorTopics {
        raw: raw_topic,
        quarantine: quarantine_topic,
        progress: progress_topic,
    } = connector_topics().await;
    let dir = std::env::temp_dir().join(unique("drop"));
    std::fs::create_dir_all(&dir).expect("drop folder");
    let text = format!(
        r#"
connector_id = "test-connector"
registry_url = "{registry_url}"
progress_topic = "{progress_topic}"
quarantine_topic = "{quarantine_topic}"
[kafka]
bootstrap = "{bootstrap}"
[[instance]]
id = "{id}"
system_id = "cg-county-vehicles"
region_code = "530114"
level = "county"
domain = "vehicle"
topic = "{raw_topic}"
batch_size = 3
[instance.source]
kind = "file_drop"
dir = "{dir}"
encoding = "gbk"
complete = {{ settled = "0s" }}
[instance.mapping]
record_id = ["车架号"]
fields = {{ vin = "车架号", plate = "号牌号码", owner_uscc = "使用单位统一社会信用代码", owner_name = "使用单位名称", energy_type = "能源类型", purchase_date = "购置日期" }}
quantities = {{ purchase_price = {{ field = "购置价格", unit = "万元" }} }}
values = {{ energy_type = {{ "纯电动" = "BEV", "汽油" = "GASOLINE", "混合动力" = "HEV" }} }}
dates = {{ purchase_date = "%Y年%m月%d日" }}
"#,
        bootstrap = tests::bootstrap(),
        id = unique("instance"),
        dir = dir.display(),
    );
    let config = ConnectorConfig::parse(Path::new("test.toml"), &text).expect("config");
    Setup {
        registry: Arc::new(RegistryClient::new(&config.registry_url).expect("client")),
        config,
        raw_topic,
        quarantine_topic,
        dir,
    }
}

/// Starts the instance as a fresh process would and polls it once.
async fn run_instance(setup: &Setup) -> PollStats {
    let instance = setup.config.instances[0].clone();
    let ids = Instance::register(&instance, &setup.registry)
        .await
        .expect("schemas");
    let config = setup.config.clone();
    tokio::task::spawn_blocking(move || {
        let mut running = Slot::single(&config, instance, ids, tokio::runtime::Handle::current())
            .expect("instance starts");
        running.poll_once().expect("poll")
    })
    .await
    .expect("instance thread")
}

async fn decode_all<T: schemas::Record>(
    registry: &Arc<RegistryClient>,
    topic: &str,
) -> Vec<(String, T)> {
    let decoder = Decoder::<T>::new(registry.clone());
    let mut out = Vec::new();
    for (key, payload) in read_partition(topic, "read_committed") {
        let key = String::from_utf8(key.expect("key")).expect("UTF-8 key");
        out.push((
            key,
            decoder
                .decode(&payload.expect("payload"))
                .await
                .expect("decodes"),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbk_export_is_ingested_once_with_bad_rows_quarantined() {
    let (_registry, url) = start_registry().await;
    let setup = setup(&url).await;
    let first = gbk(&ROWS);
    std::fs::write(setup.dir.join("vehicles-2025-03.csv"), &first).expect("drop file");

    let stats = run_instance(&setup).await;
    assert_eq!(
        stats,
        PollStats {
            read: 7,
            written: 4,
            quarantined: 3,
            skipped: 0,
            lag: stats.lag,
        }
    );
    assert!(
        setup.dir.join("done/vehicles-2025-03.csv").exists(),
        "moved to done/"
    );

    let raw = decode_all::<RawVehicle>(&setup.registry, &setup.raw_topic).await;
    let keys: Vec<&str> = raw.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "LSVAU2180N2183294",
            "LFV2A21K6L4050331",
            "LGBF5AE05LR312617",
            "LZWADAGA5LB123452"
        ]
    );
    let first_vehicle = &raw[0].1;
    assert_eq!(
        first_vehicle.owner_name.as_deref(),
        Some("呈贡区机关事务管理局")
    );
    assert_eq!(first_vehicle.plate.as_deref(), Some("云A·D12345"));
    assert_eq!(first_vehicle.energy_type.as_deref(), Some("BEV"));
    assert_eq!(first_vehicle.purchase_date.as_deref(), Some("2021-03-05"));
    let price = first_vehicle.purchase_price.as_ref().expect("price");
    assert_eq!(
        (price.value.as_str(), price.unit.as_str()),
        ("18.5", "万元")
    );
    let provenance = &first_vehicle.provenance;
    assert_eq!(provenance.source_system_id, "cg-county-vehicles");
    assert_eq!(provenance.reporting_level, ReportingLevel::County);
    assert_eq!(provenance.reporter_region_code, "530114");
    assert_eq!(provenance.source_record_id, "LSVAU2180N2183294");
    assert_eq!(provenance.connector_id, "test-connector");

    let quarantined = decode_all::<Quarantine>(&setup.registry, &setup.quarantine_topic).await;
    let found: Vec<(String, String)> = quarantined
        .iter()
        .map(|(_, q)| {
            assert_eq!(q.stage, QuarantineStage::Ingest);
            (
                q.source_location.clone().expect("location"),
                q.error_code.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "vehicles-2025-03.csv:6".to_owned(),
                "date_format".to_owned()
            ),
            (
                "vehicles-2025-03.csv:7".to_owned(),
                "row_unreadable".to_owned()
            ),
            ("vehicles-2025-03.csv:8".to_owned(), "raw_shape".to_owned()),
        ]
    );
    assert!(
        quarantined[0].1.message.contains("不符合日期格式"),
        "Chinese first"
    );

    // The same export dropped again, and a new one: a restarted instance skips the first by
    // checksum and ingests only the second.
    std::fs::write(setup.dir.join("vehicles-2025-03-again.csv"), &first).expect("drop again");
    std::fs::write(setup.dir.join("vehicles-2025-04.csv"), gbk(&[ROWS[0]])).expect("drop new");
    let stats = run_instance(&setup).await;
    assert_eq!(
        stats,
        PollStats {
            read: 1,
            written: 1,
            quarantined: 0,
            skipped: 0,
            lag: stats.lag,
        }
    );
    let raw = decode_all::<RawVehicle>(&setup.registry, &setup.raw_topic).await;
    assert_eq!(raw.len(), 5, "nothing ingested twice");
    assert!(setup.dir.join("done/vehicles-2025-03-again.csv").exists());
    std::fs::remove_dir_all(&setup.dir).expect("cleanup");
}
