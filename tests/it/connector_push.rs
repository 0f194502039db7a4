//! The push endpoint over HTTPS (rustls): a county may submit only its own county's records, a
//! prefecture its counties', a province everything below; out-of-scope records are rejected per
//! record (403 when all are) and never written; a repeated batch is acknowledged, not written
//! twice; an unknown client gets nothing. With `client_ca`, clients are recognised by their
//! certificate, and one without a certificate from the platform's CA fails the TLS handshake.
//! Raw records are keyed by the partition key of their entity, however each level spells it,
//! and land in the partition Kafka's default partitioner gives that key.

use std::net::SocketAddr;
use std::path::PathBuf;

use connectors::config::Level;
use connectors::push::{CertificateFingerprint, ClientIdentity, PushClient, PushConfig};
use schemas::registry::RegistryClient;
use schemas::{TopicKind, TopicSpec};
use serde_json::{Value, json};
use tests::{
    Issued, TestCa, raw_record_ids, read_partitions, settings, source_record_id, start_registry,
    unique,
};

/// A client entry; its system id made unique, since it names the client's transactional id
/// and tests run in parallel on one broker.
fn client(identity: ClientIdentity, system: &str, region: &str, level: Level) -> PushClient {
    PushClient {
        identity,
        system_id: unique(system),
        region_code: region.to_owned(),
        level,
        domains: vec![schemas::Domain::Vehicle],
        mappings: Default::default(),
    }
}

fn token(token: &str) -> ClientIdentity {
    ClientIdentity::Token(token.to_owned())
}

/// A vehicle record of `region`, owned by a unit registered there (its USCC's region).
fn vehicle(id: &str, region: &str) -> Value {
    json!({
        "record_id": id, "region_code": region,
        "vin": id, "plate": "云A12345", "owner_uscc": format!("11{region}015162553X"),
        "owner_name": "呈贡区机关事务管理局",
    })
}

/// A push endpoint on topics of its own, and what a test needs to talk to it.
struct Endpoint {
    _registry: hub::registry::SchemaRegistry,
    addr: SocketAddr,
    raw_topic: String,
    /// The CA of the endpoint's own certificate, which clients trust.
    server_ca: TestCa,
    dir: PathBuf,
    /// The endpoint's metrics.
    metrics: prometheus::Registry,
}

impl Endpoint {
    /// Starts the endpoint for `clients` on a raw topic of `partitions`, requiring certificates
    /// from `client_ca` when given.
    async fn start(
        clients: Vec<PushClient>,
        client_ca: Option<&TestCa>,
        partitions: i32,
    ) -> Endpoint {
        let (registry, registry_url) = start_registry().await;
        let prefix = format!("{}.", unique("pushraw"));
        let raw_topic = format!("{prefix}vehicle");
        let progress = unique("progress");
        schemas::kafka::ensure_topics(
            &settings(),
            &[
                TopicSpec {
                    name: raw_topic.clone(),
                    kind: TopicKind::Raw,
                    partitions,
                },
                TopicSpec {
                    name: progress.clone(),
                    kind: TopicKind::State,
                    partitions: 1,
                },
            ],
            1,
        )
        .await
        .expect("topics");

        let dir = std::env::temp_dir().join(unique("tls"));
        std::fs::create_dir_all(&dir).expect("folder");
        let server_ca = TestCa::new("汇通测试服务端 CA");
        let server = server_ca.server(&["localhost"]);
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).expect(name);
            dir.join(name)
        };
        let config = PushConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls_cert: write("cert.pem", &server.cert_pem),
            tls_key: write("key.pem", &server.key_pem),
            client_ca: client_ca.map(|ca| write("client-ca.pem", &ca.pem)),
            topic_prefix: prefix,
            clients,
            max_connections: 64,
            handshake_timeout: std::time::Duration::from_secs(10),
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(10),
            connection_lifetime: std::time::Duration::from_secs(600),
            max_concurrent_batches: 2,
        };
        let registry_client = RegistryClient::new(&registry_url).expect("client");
        let metrics = prometheus::Registry::new();
        let (addr, _server) = connectors::push::start(
            &config,
            &connectors::limits::Limits::default(),
            &connectors::runtime::Metrics::new(&metrics).expect("metrics"),
            "push-test",
            &settings(),
            &progress,
            &registry_client,
        )
        .await
        .expect("push endpoint");
        Endpoint {
            _registry: registry,
            addr,
            raw_topic,
            server_ca,
            dir,
            metrics,
        }
    }

    /// An HTTPS client trusting the endpoint, presenting `identity` if given.
    fn http(&self, identity: Option<&Issued>) -> reqwest::Client {
        self.http_builder(identity).build().expect("client")
    }

    /// The builder of [`Endpoint::http`], for more settings.
    fn http_builder(&self, identity: Option<&Issued>) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([
                reqwest::Certificate::from_pem(self.server_ca.pem.as_bytes()).expect("root"),
            ])
            .resolve("localhost", self.addr);
        if let Some(issued) = identity {
            builder = builder.identity(
                reqwest::Identity::from_pem(issued.identity_pem().as_bytes()).expect("identity"),
            );
        }
        builder
    }

    /// Posts a vehicle batch: the status and JSON answer, or the error of a connection that
    /// never got an HTTP answer.
    async fn send(
        &self,
        http: &reqwest::Client,
        token: Option<&str>,
        body: Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let url = format!(
            "https://localhost:{}/push/v1/vehicle/batches",
            self.addr.port()
        );
        let mut request = http.post(&url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json::<Value>().await.expect("JSON answer")))
    }

    /// The value of counter `name` with exactly `labels`, 0 if it has none.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.metrics
            .gather()
            .iter()
            .filter(|family| family.name() == name)
            .flat_map(|family| family.get_metric())
            .filter(|metric| {
                let pairs: Vec<(&str, &str)> = metric
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                pairs.len() == labels.len() && labels.iter().all(|l| pairs.contains(l))
            })
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum()
    }

    /// The source record ids of the raw topic, committed records only.
    fn written(&self) -> Vec<String> {
        raw_record_ids(&self.raw_topic)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether TLS refused the connection (a rustls error inside the I/O error), as opposed to
/// an HTTP answer or any other failure.
fn refused_by_tls(error: &reqwest::Error) -> bool {
    // An `io::Error`'s `source()` skips the error it wraps: open it with `get_ref()`.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<rustls::Error>() {
            return true;
        }
        cause = match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_scoped_by_region_and_idempotent_by_batch() {
    let endpoint = Endpoint::start(
        vec![
            client(token("county-token"), "cg-county", "530114", Level::County),
            client(token("city-token"), "km-city", "530100", Level::Prefecture),
            client(
                token("province-token"),
                "yn-province",
                "530000",
                Level::Province,
            ),
        ],
        None,
        1,
    )
    .await;
    let http = endpoint.http(None);
    let send = |token: Option<&'static str>, body: Value| {
        let (endpoint, http) = (&endpoint, &http);
        async move {
            endpoint
                .send(http, token, body)
                .await
                .expect("an HTTP answer")
        }
    };

    // A county: its own record in, its neighbour's and its prefecture's out, per record.
    let batch = json!({ "batch_id": "b1", "records": [
        vehicle("V1", "530114"), vehicle("V2", "530102"), vehicle("V3", "530100")
    ]});
    let (status, body) = send(Some("county-token"), batch.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(body["results"][1]["code"], "out_of_scope");
    assert!(
        body["results"][1]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("记录所属行政区划 530102")
    );

    // The same batch again: acknowledged, nothing written twice.
    let (status, body) = send(Some("county-token"), batch).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    // All out of scope: 403.
    let (status, body) = send(
        Some("county-token"),
        json!({ "batch_id": "b2", "records": [vehicle("V4", "500154")] }),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // A prefecture may submit its counties'; a province everything in the province.
    let (status, body) = send(
        Some("city-token"),
        json!({ "batch_id": "c1", "records": [vehicle("V5", "530114"), vehicle("V6", "532901")] }),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let (status, body) = send(
        Some("province-token"),
        json!({ "batch_id": "p1", "records": [vehicle("V7", "533103"), vehicle("V8", "150121")] }),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );

    // A record that does not fit the raw schema is rejected with a code, not written.
    let (status, body) = send(
        Some("province-token"),
        json!({ "batch_id": "p2", "records": [{ "record_id": "V9", "region_code": "530114" }] }),
    )
    .await;
    assert_eq!(
        (status, body["results"][0]["code"].as_str()),
        (200, Some("raw_shape")),
        "{body}"
    );

    // No token, a wrong token: nothing.
    let (status, _) = send(
        None,
        json!({ "batch_id": "x", "records": [vehicle("V10", "530114")] }),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = send(Some("forged"), json!({ "batch_id": "x", "records": [] })).await;
    assert_eq!(status, 401);

    assert_eq!(
        endpoint.written(),
        ["V1", "V5", "V7"],
        "exactly the in-scope records, once"
    );
    // What the operator sees: requests by status, records by outcome and code.
    let push = |labels: &[(&str, &str)]| endpoint.counter("connector_push_records_total", labels);
    assert_eq!(push(&[("outcome", "accepted"), ("code", "")]), 3);
    assert_eq!(push(&[("outcome", "duplicate"), ("code", "")]), 3);
    assert_eq!(
        push(&[("outcome", "rejected"), ("code", "out_of_scope")]),
        5
    );
    assert_eq!(push(&[("outcome", "rejected"), ("code", "raw_shape")]), 1);
    let requests =
        |status| endpoint.counter("connector_push_requests_total", &[("status", status)]);
    assert_eq!(
        (requests("200"), requests("403"), requests("401")),
        (5, 1, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_clients_are_recognised_by_certificates_of_the_platform_ca() {
    // The platform's CA issues each regional system a certificate; another CA issues one with
    // the very same subject.
    let platform = TestCa::new("云南省机关事务数据交换平台 CA");
    let county = platform.client("呈贡区公务用车管理系统");
    let unregistered = platform.client("昆明市公务用车管理系统");
    let elsewhere = TestCa::new("其他机构 CA").client("呈贡区公务用车管理系统");
    let endpoint = Endpoint::start(
        vec![
            client(
                ClientIdentity::Certificate(CertificateFingerprint::of(&county.der)),
                "cg-county",
                "530114",
                Level::County,
            ),
            client(token("city-token"), "km-city", "530100", Level::Prefecture),
        ],
        Some(&platform),
        1,
    )
    .await;
    let batch = |id: &str, records: Vec<Value>| json!({ "batch_id": id, "records": records });

    // The county's certificate alone identifies it: in-scope records in, others out per record.
    let (status, body) = endpoint
        .send(
            &endpoint.http(Some(&county)),
            None,
            batch("b1", vec![vehicle("V1", "530114"), vehicle("V2", "530102")]),
        )
        .await
        .expect("an HTTP answer");
    assert_eq!(
        (status, body["accepted"].as_u64(), body["rejected"].as_u64()),
        (200, Some(1), Some(1)),
        "{body}"
    );
    assert_eq!(body["results"][1]["code"], "out_of_scope", "{body}");

    // A certificate from another CA, or none: the handshake fails, no HTTP answer at all.
    // Under TLS 1.2 the client sees the server's alert; under TLS 1.3 its handshake is done
    // before the server checks the certificate, so it only sees the connection end (hyper
    // drops the alert) — either way the request never reaches the endpoint.
    for (who, identity) in [("another CA", Some(&elsewhere)), ("no certificate", None)] {
        let tls12 = endpoint
            .http_builder(identity)
            .tls_version_max(reqwest::tls::Version::TLS_1_2)
            .build()
            .expect("client");
        let error = endpoint
            .send(&tls12, None, batch("b2", vec![vehicle("V3", "530114")]))
            .await
            .expect_err(who);
        assert!(refused_by_tls(&error), "{who}, TLS 1.2: {error:?}");
        let error = endpoint
            .send(
                &endpoint.http(identity),
                None,
                batch("b3", vec![vehicle("V4", "530114")]),
            )
            .await
            .expect_err(who);
        assert!(error.status().is_none(), "{who}, TLS 1.3: {error:?}");
    }

    // The platform's certificate of a system not registered by certificate: recognised by
    // its token, or by nothing.
    let http = endpoint.http(Some(&unregistered));
    let (status, body) = endpoint
        .send(&http, None, batch("c1", vec![vehicle("V7", "530114")]))
        .await
        .expect("an HTTP answer");
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("certificate_not_registered")),
        "{body}"
    );
    let (status, body) = endpoint
        .send(
            &http,
            Some("city-token"),
            batch("c2", vec![vehicle("V5", "530114")]),
        )
        .await
        .expect("an HTTP answer");
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );

    // A token and a certificate of different systems: neither is believed.
    let (status, body) = endpoint
        .send(
            &endpoint.http(Some(&county)),
            Some("city-token"),
            batch("c3", vec![vehicle("V6", "530114")]),
        )
        .await
        .expect("an HTTP answer");
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("identity_conflict")),
        "{body}"
    );

    assert_eq!(
        endpoint.written(),
        ["V1", "V5"],
        "only what authenticated clients may submit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_s_reports_from_two_levels_share_the_partition_of_its_key() {
    const PARTITIONS: i32 = 12;
    let endpoint = Endpoint::start(
        vec![
            client(token("county-token"), "cg-county", "530114", Level::County),
            client(token("city-token"), "km-city", "530100", Level::Prefecture),
        ],
        None,
        PARTITIONS,
    )
    .await;
    let http = endpoint.http(None);
    // A valid USCC of a unit in 呈贡区 (530114), which both levels may report.
    let record = |id: &str, vin: Option<&str>, plate: &str| {
        json!({
            "record_id": id, "region_code": "530114", "vin": vin, "plate": plate,
            "owner_uscc": "115301140151174049", "owner_name": "呈贡区机关事务管理局",
        })
    };
    // (level, record, the key it must carry): one vehicle by VIN, one by plate only, as the
    // county and the city each spell them, and one with no valid identifier.
    #[rustfmt::skip]
    let cases = [
        ("county-token", record("cg-1", Some("LSVAM4187C2184847"), "云A12345"), "LSVAM4187C2184847"),
        ("city-token", record("km-77", Some("lsvam 4187c 2184847"), "云A·12345"), "LSVAM4187C2184847"),
        ("county-token", record("cg-2", None, "云A·D12345"), "云AD12345"),
        ("city-token", record("km-78", None, "云Ａ\u{3000}Ｄ１２３４５"), "云AD12345"),
        ("county-token", record("cg-3", Some("V-1"), "云A1234"), "cg-3"),
    ];
    for (i, (token, record, _)) in cases.iter().enumerate() {
        let batch = json!({ "batch_id": format!("b{i}"), "records": [record] });
        let (status, body) = endpoint
            .send(&http, Some(token), batch)
            .await
            .expect("an HTTP answer");
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (200, Some(1)),
            "{body}"
        );
    }

    let written: std::collections::BTreeMap<String, (i32, String)> =
        read_partitions(&endpoint.raw_topic, PARTITIONS)
            .into_iter()
            .map(|(partition, (key, payload))| {
                let key = String::from_utf8(key.expect("key")).expect("UTF-8");
                let id = source_record_id(&payload.expect("payload"));
                (id, (partition, key))
            })
            .collect();
    assert_eq!(written.len(), cases.len(), "{written:?}");
    for (_, record, key) in &cases {
        let id = record["record_id"].as_str().expect("id");
        let partition = schemas::partition::partition_for(key.as_bytes(), PARTITIONS);
        assert_eq!(written[id], (partition, (*key).to_owned()), "{id}");
    }
}
