//! Support for Huitong's integration tests: the shared broker's address and per-test names.
//!
//! **Invariant:** the tests never skip for want of a broker. Without `KAFKA_BOOTSTRAP` they
//! fail and say how to get one (`ops/dev test` starts a broker and sets it).

use std::time::Duration;

use schemas::ClientSettings;

/// The bootstrap servers of the broker all tests share, from `KAFKA_BOOTSTRAP`.
///
/// # Panics
/// When `KAFKA_BOOTSTRAP` is not set: a missing broker is a failure, never a skip.
pub fn bootstrap() -> String {
    match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => panic!(
            "KAFKA_BOOTSTRAP is not set. Run the tests with `ops/dev test`, which starts a real \
             Kafka broker, or point KAFKA_BOOTSTRAP at a running cluster."
        ),
    }
}

/// Client settings for the shared broker.
pub fn settings() -> ClientSettings {
    ClientSettings::new(bootstrap())
}

/// A name no other test (or earlier run against the same broker) uses, e.g. for a topic,
/// consumer group or transactional id.
pub fn unique(prefix: &str) -> String {
    format!("it-{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// How long a test waits for the broker before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates topics on the shared broker (replication factor 1), failing the test on error.
pub fn create_topics(specs: &[schemas::TopicSpec]) -> Vec<(String, schemas::kafka::TopicOutcome)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a runtime for the admin client");
    runtime
        .block_on(schemas::kafka::ensure_topics(&settings(), specs, 1))
        .expect("creating topics on the shared broker")
}

/// The path of a workspace binary (`hub`, `connector`) built next to the test binary;
/// `ops/dev test` builds them before running the tests.
///
/// # Panics
/// When the binary was not built.
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target profile folder")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (ops/dev test does)",
        path.display()
    );
    path
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding an ephemeral port")
        .port()
}

/// A Kafka message's key and payload.
pub type KeyPayload = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Reads partition 0 of `topic` from its start to its end (`read_committed` or
/// `read_uncommitted`): (key, payload) pairs in offset order.
pub fn read_partition(topic: &str, isolation: &str) -> Vec<KeyPayload> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;

    let consumer: BaseConsumer = settings()
        .client_config()
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("creating consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .expect("assigning partition");
    consumer.assign(&assignment).expect("assigning partition");
    let started = std::time::Instant::now();
    let mut messages = Vec::new();
    loop {
        assert!(started.elapsed() < TIMEOUT, "timed out reading {topic}");
        match consumer.poll(TIMEOUT) {
            Some(Ok(msg)) => messages.push((
                msg.key().map(<[u8]>::to_vec),
                msg.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return messages,
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
}

/// The source record id (`provenance.source_record_id`) of a framed raw record of any domain:
/// every raw schema opens with its provenance, so no registry is needed. Raw records are keyed
/// by the partition key of their entity, which many records share; their id is here.
///
/// # Panics
/// When `payload` is not a framed raw record.
pub fn source_record_id(payload: &[u8]) -> String {
    use apache_avro::Schema;
    use apache_avro::types::Value;
    use schemas::{Domain, SchemaName};

    static PROVENANCE: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(|| {
        match schemas::contract::schema(SchemaName::Raw(Domain::Institution)) {
            Schema::Record(raw) => raw.fields[0].schema.clone(),
            other => panic!("a raw schema is a record: {other:?}"),
        }
    });
    // Past the Confluent framing: magic byte and schema id.
    let mut datum = payload.get(5..).expect("a framed record");
    let provenance = apache_avro::reader::datum::GenericDatumReader::builder(&PROVENANCE)
        .build()
        .and_then(|reader| reader.read_value(&mut datum))
        .expect("a raw record opens with its provenance");
    let Value::Record(fields) = provenance else {
        panic!("provenance is a record");
    };
    match fields
        .into_iter()
        .find(|(name, _)| name == "source_record_id")
    {
        Some((_, Value::String(id))) => id,
        other => panic!("provenance.source_record_id: {other:?}"),
    }
}

/// The source record ids of the committed raw records in partition 0 of `topic`, in offset
/// order.
pub fn raw_record_ids(topic: &str) -> Vec<String> {
    read_partition(topic, "read_committed")
        .into_iter()
        .map(|(_, payload)| source_record_id(&payload.expect("a raw record")))
        .collect()
}

/// Reads every partition of `topic` (of `partitions`) from its start to its end, committed
/// records only: (partition, key, payload) in offset order within each partition.
pub fn read_partitions(topic: &str, partitions: i32) -> Vec<(i32, KeyPayload)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;

    let consumer: BaseConsumer = settings()
        .client_config()
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("creating consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
            .expect("assigning partition");
    }
    consumer.assign(&assignment).expect("assigning partitions");
    let started = std::time::Instant::now();
    let (mut messages, mut ended) = (Vec::new(), std::collections::BTreeSet::new());
    while ended.len() < partitions as usize {
        assert!(started.elapsed() < TIMEOUT, "timed out reading {topic}");
        match consumer.poll(TIMEOUT) {
            Some(Ok(msg)) => messages.push((
                msg.partition(),
                (
                    msg.key().map(<[u8]>::to_vec),
                    msg.payload().map(<[u8]>::to_vec),
                ),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
            }
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
    messages
}

/// Starts Huitong's Schema Registry in-process on a random port, over a storage topic of its
/// own; returns it (keep it alive) and its URL.
pub async fn start_registry() -> (hub::registry::SchemaRegistry, String) {
    use hub::registry::{RegistryConfig, SchemaRegistry};

    let config = RegistryConfig {
        topic: unique("schemas"),
        transactional_id: unique("registry"),
        ..RegistryConfig::default()
    };
    let registry = SchemaRegistry::start(&settings(), config, &prometheus::Registry::new())
        .await
        .expect("starting the registry");
    registry.wait_ready(TIMEOUT).await.expect("registry ready");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(registry.clone().serve(listener, std::future::pending()));
    (registry, url)
}

/// The three topics a connector test writes to, with unique names.
pub struct ConnectorTopics {
    /// Raw records.
    pub raw: String,
    /// Quarantined records.
    pub quarantine: String,
    /// Instance progress (compacted).
    pub progress: String,
}

/// Creates a raw, a quarantine and a progress topic (one partition each) on the shared broker.
pub async fn connector_topics() -> ConnectorTopics {
    use schemas::{TopicKind, TopicSpec};

    let topics = ConnectorTopics {
        raw: unique("raw"),
        quarantine: unique("quarantine"),
        progress: unique("progress"),
    };
    let specs = [
        (&topics.raw, TopicKind::Raw),
        (&topics.quarantine, TopicKind::Quarantine),
        (&topics.progress, TopicKind::State),
    ]
    .map(|(name, kind)| TopicSpec {
        name: name.clone(),
        kind,
        partitions: 1,
    });
    schemas::kafka::ensure_topics(&settings(), &specs, 1)
        .await
        .expect("creating the connector's topics");
    let names = [&topics.raw, &topics.quarantine, &topics.progress].map(String::clone);
    tokio::task::spawn_blocking(move || wait_for_leaders(&names))
        .await
        .expect("waiting for leaders");
    topics
}

/// Waits until the broker names a leader for every partition of `topics` (each has one) and
/// it answers for the partition: in KRaft, `CreateTopics` returns once the controller has
/// committed a topic, and for a moment after, a client may be told `NotLeaderForPartition`.
fn wait_for_leaders(topics: &[String]) {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = settings()
        .client_config()
        .create()
        .expect("metadata client");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for topic in topics {
        loop {
            let led = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .is_ok_and(|metadata| {
                    metadata.topics().iter().any(|t| {
                        t.error().is_none()
                            && !t.partitions().is_empty()
                            && t.partitions()
                                .iter()
                                .all(|p| p.error().is_none() && p.leader() >= 0)
                    })
                });
            // The leader in the metadata may not answer for the partition yet: ask it.
            if led
                && consumer
                    .fetch_watermarks(topic, 0, Duration::from_secs(5))
                    .is_ok()
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no leader for {topic} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A certificate authority for TLS tests (rcgen), as the platform's CA that issues each
/// regional system its certificate. Everything comes out as PEM text, the form operators
/// configure.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA's certificate (PEM): what `client_ca` or `server_ca` point at.
    pub pem: String,
}

/// A certificate issued by a [`TestCa`] and its private key.
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM, PKCS#8).
    pub key_pem: String,
    /// The certificate (DER), e.g. for its fingerprint.
    pub der: Vec<u8>,
}

impl Issued {
    /// Certificate and key in one PEM text, as `reqwest::Identity::from_pem` and http_poll's
    /// `client_identity` take them.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

        let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn issue(
        &self,
        names: &[&str],
        common_name: &str,
        usage: rcgen::ExtendedKeyUsagePurpose,
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signing");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Issued {
        self.issue(
            names,
            names.first().copied().unwrap_or("server"),
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate with subject CN `common_name` (a regional system's name).
    pub fn client(&self, common_name: &str) -> Issued {
        self.issue(&[], common_name, rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A rustls server configuration presenting `server` and requiring a client certificate
    /// issued by `self` (mTLS).
    pub fn mtls_server_config(&self, server: &Issued) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem.as_bytes()).expect("CA PEM"))
            .expect("CA root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(server.der.clone())],
                PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("key PEM"),
            )
            .expect("server certificate");
        std::sync::Arc::new(config)
    }
}

/// A `hub` process of its own (topics behind a unique prefix, its own consumer groups and state
/// folder); stopped with SIGTERM, then SIGKILL, when dropped.
pub struct HubProcess {
    child: std::process::Child,
    /// Its HTTP endpoints, e.g. `http://127.0.0.1:41234`.
    pub url: String,
}

impl HubProcess {
    /// Starts the hub binary with `args` added to the address options; its logs are dropped
    /// unless `HUB_TEST_LOG` is set.
    pub fn start(args: &[String]) -> Self {
        Self::start_on(&bootstrap(), args)
    }

    /// [`HubProcess::start`] against the cluster at `bootstrap` instead of the shared one.
    /// With `HUB_TEST_LOG` set (a `RUST_LOG` filter, e.g. `info`), its logs go to the test's
    /// output.
    pub fn start_on(bootstrap: &str, args: &[String]) -> Self {
        let port = free_port();
        let log = std::env::var("HUB_TEST_LOG").ok();
        let child = std::process::Command::new(binary("hub"))
            .args(["--bootstrap", bootstrap])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("RUST_LOG", log.as_deref().unwrap_or("warn"))
            .stdout(match log {
                Some(_) => std::process::Stdio::inherit(),
                None => std::process::Stdio::null(),
            })
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("starting the hub");
        HubProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until `/readyz` answers 200, failing the test if the process exits first.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("hub at {} exited during start-up: {status}", self.url);
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "hub at {} not ready",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How the process ended, or `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
