//! `push`: an HTTPS endpoint (rustls) where regional systems POST JSON batches. A client is
//! recognised by its bearer token or by its client certificate (mTLS, when `client_ca` is set);
//! either maps to its system, region and level. Each record must lie in that region's scope
//! ([`crate::scope`]) or it is rejected — answered per record, never written. Accepted records
//! go to `raw.<domain>` in one Kafka transaction with the batch id, so a batch sent again is
//! acknowledged and not written twice.
//!
//! `POST /push/v1/{domain}/batches` with `Authorization: Bearer <token>` (or over a connection
//! with a registered client certificate) and
//! `{"batch_id": "...", "records": [{"record_id": "...", "region_code": "530114", ...raw fields}]}`.
//! Answers 200 with a result per record; 403 when every record was out of scope; 401 for an
//! unknown token or an unregistered certificate. With `client_ca` set, a client without a
//! certificate issued by that CA gets no HTTP answer at all: the TLS handshake fails. Messages
//! are Chinese first, codes stable.
//!
//! ```toml
//! [push]
//! listen = "0.0.0.0:8443"
//! tls_cert = "/etc/huitong/push.crt"
//! tls_key = "/etc/huitong/push.key"
//! client_ca = "/etc/huitong/regional-ca.pem"   # the platform's CA for regional systems
//!
//! [[push.client]]                              # by certificate
//! certificate_sha256 = "5D:0B:…:9A"            # openssl x509 -noout -fingerprint -sha256 -in client.crt
//! system_id = "cg-county-vehicles"
//! region_code = "530114"
//! level = "county"
//!
//! [[push.client]]                              # by token
//! token = "…"
//! system_id = "km-city-vehicles"
//! region_code = "530100"
//! level = "prefecture"
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::AddExtension;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use chrono::Utc;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use schemas::records::ReportingLevel;
use schemas::registry::RegistryClient;
use schemas::{ClientSettings, Domain};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tower_layer::Layer as _;

use crate::config::Level;
use crate::instance::InstanceError;
use crate::raw::RawEncoder;
use crate::transactor::{Outgoing, Transactor};

/// How many batch ids per client are remembered for idempotency.
const REMEMBERED: usize = 10_000;

/// The push endpoint's settings (`[push]` in the connector's file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Address to listen on, e.g. `0.0.0.0:8443`.
    pub listen: SocketAddr,
    /// PEM certificate chain of the endpoint.
    pub tls_cert: PathBuf,
    /// PEM private key of the endpoint.
    pub tls_key: PathBuf,
    /// PEM bundle of the CA (or CAs) that issue regional systems their client certificates.
    /// When set, every connection must present a certificate chaining to it — token clients
    /// included — or the TLS handshake fails and nothing reaches the endpoint; clients may then
    /// be recognised by `certificate_sha256`. Unset: no client certificates, tokens only.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Topic prefix for accepted records: `<prefix><domain>` (default `raw.`).
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// The systems allowed to push. Several entries may name one system (a certificate and its
    /// renewal, or a token and a certificate while it moves over): they share its producer and
    /// its remembered batch ids, and must agree on region and level.
    #[serde(rename = "client", default)]
    pub clients: Vec<PushClient>,
}

fn default_prefix() -> String {
    // The contract's raw topics are `raw.<domain>` (schemas::topics::raw).
    "raw.".to_owned()
}

impl PushConfig {
    /// Checks what a single client entry cannot: identities are unique, certificate clients
    /// have a CA to verify them against, entries of one system agree, region codes are codes.
    pub fn check(&self) -> Result<(), String> {
        let mut identities = HashMap::new();
        let mut systems: HashMap<&str, &PushClient> = HashMap::new();
        for client in &self.clients {
            let system = client.system_id.as_str();
            if client.region_code.len() != 6
                || !client.region_code.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "client `{system}`: region_code `{}` is not a 6-digit GB/T 2260 code",
                    client.region_code
                ));
            }
            if matches!(client.identity, ClientIdentity::Certificate(_)) && self.client_ca.is_none()
            {
                return Err(format!(
                    "client `{system}` is identified by `certificate_sha256`, which needs \
                     `client_ca` (the CA that issued the certificate)"
                ));
            }
            if let Some(other) = identities.insert(&client.identity, system) {
                return Err(format!(
                    "clients `{other}` and `{system}` have the same {}",
                    client.identity.kind()
                ));
            }
            if let Some(first) = systems.insert(system, client)
                && (first.region_code != client.region_code || first.level != client.level)
            {
                return Err(format!(
                    "the entries of client `{system}` disagree on region_code or level"
                ));
            }
        }
        Ok(())
    }
}

/// A regional system allowed to push, and the region it speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PushClientEntry")]
pub struct PushClient {
    /// How the endpoint recognises it: exactly one of `token` and `certificate_sha256`.
    pub identity: ClientIdentity,
    /// Its system id, written into provenance.
    pub system_id: String,
    /// GB/T 2260 code of its region.
    pub region_code: String,
    /// Its level: what it may submit follows from it.
    pub level: Level,
}

/// How the endpoint recognises a client.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ClientIdentity {
    /// `token = "…"`: a bearer token in `Authorization`.
    Token(String),
    /// `certificate_sha256 = "5D:0B:…"`: the SHA-256 fingerprint of the client certificate it
    /// presents in the TLS handshake (which must also chain to `client_ca`).
    ///
    /// The fingerprint names one certificate rather than a subject name (CN or DNS SAN),
    /// because the CA behind `client_ca` is usually a provincial or national e-government CA
    /// that certifies every department, not just reporting systems: a name-based identity
    /// would trust whatever names that CA writes, under rules the connector cannot see, while
    /// a fingerprint admits exactly the certificate the operator registered. It also makes
    /// revocation immediate without CRL or OCSP (delete the entry), and needs no parsing of
    /// subject names (Chinese CNs come as UTF8String, BMPString or GBK in the wild). The cost
    /// is that a renewed certificate needs its fingerprint added; old and new may be listed
    /// side by side for the same system during the overlap.
    Certificate(CertificateFingerprint),
}

impl fmt::Debug for ClientIdentity {
    // A configuration printed for debugging must not show the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIdentity::Token(_) => f.write_str("Token(…)"),
            ClientIdentity::Certificate(fingerprint) => {
                f.debug_tuple("Certificate").field(fingerprint).finish()
            }
        }
    }
}

impl ClientIdentity {
    fn kind(&self) -> &'static str {
        match self {
            ClientIdentity::Token(_) => "token",
            ClientIdentity::Certificate(_) => "certificate_sha256",
        }
    }
}

/// A `[[push.client]]` table as written; [`PushClient`] once checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushClientEntry {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    certificate_sha256: Option<String>,
    system_id: String,
    region_code: String,
    level: Level,
}

impl TryFrom<PushClientEntry> for PushClient {
    type Error = String;

    fn try_from(entry: PushClientEntry) -> Result<Self, String> {
        let identity = match (entry.token, entry.certificate_sha256) {
            (Some(token), None) if !token.is_empty() => ClientIdentity::Token(token),
            (None, Some(fingerprint)) => ClientIdentity::Certificate(
                fingerprint
                    .parse()
                    .map_err(|e| format!("client `{}`: {e}", entry.system_id))?,
            ),
            _ => {
                return Err(format!(
                    "client `{}`: give exactly one of `token` (non-empty) and \
                     `certificate_sha256`",
                    entry.system_id
                ));
            }
        };
        Ok(PushClient {
            identity,
            system_id: entry.system_id,
            region_code: entry.region_code,
            level: entry.level,
        })
    }
}

/// The SHA-256 digest of a certificate's DER encoding, as `openssl x509 -fingerprint -sha256`
/// prints it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateFingerprint([u8; 32]);

impl CertificateFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl FromStr for CertificateFingerprint {
    type Err = String;

    /// 64 hex digits, in either case, with or without `:` between bytes.
    fn from_str(text: &str) -> Result<Self, String> {
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        let bad =
            || format!("certificate_sha256 `{text}` is not a SHA-256 fingerprint (64 hex digits)");
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One system's transactional producer and the batch ids it committed.
struct Client {
    config: PushClient,
    state: tokio::sync::Mutex<Option<(Arc<Transactor>, VecDeque<String>)>>,
}

struct Shared {
    by_token: HashMap<String, Arc<Client>>,
    by_certificate: HashMap<CertificateFingerprint, Arc<Client>>,
    encoders: HashMap<Domain, RawEncoder>,
    settings: ClientSettings,
    progress_topic: String,
    connector_id: String,
    topic_prefix: String,
}

/// What a client posts.
#[derive(Deserialize)]
struct Batch {
    batch_id: String,
    records: Vec<Value>,
}

/// The certificate the client of a connection presented, if any (verified against
/// `client_ca` by the handshake), as every request of the connection sees it.
#[derive(Debug, Clone, Copy)]
struct PeerCertificate(Option<CertificateFingerprint>);

/// The rustls acceptor, plus handing the connection's client certificate to the handlers: a
/// request extension is the only way from the TLS session to axum.
#[derive(Clone)]
struct PeerAcceptor(RustlsAcceptor);

impl<I, S> Accept<I, S> for PeerAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = <RustlsAcceptor as Accept<I, S>>::Stream;
    type Service = AddExtension<S, PeerCertificate>;
    type Future =
        Pin<Box<dyn Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let (stream, service) = tls.accept(stream, service).await.inspect_err(|e| {
                // Without a certificate from `client_ca` this is where a client ends.
                tracing::debug!(error = %e, "push: TLS handshake failed");
            })?;
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[CertificateDer<'static>]>::first);
            let peer = PeerCertificate(leaf.map(|der| CertificateFingerprint::of(der)));
            Ok((stream, Extension(peer).layer(service)))
        })
    }
}

/// A TLS setting that cannot be used, as an instance error naming the file.
fn tls_error(what: &str, path: &FsPath, e: impl fmt::Display) -> InstanceError {
    InstanceError::Source(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("push endpoint {what} {}: {e}", path.display()),
    ))
}

/// Every certificate of a PEM file.
fn certificates(what: &str, path: &FsPath) -> Result<Vec<CertificateDer<'static>>, InstanceError> {
    let pem = std::fs::read(path).map_err(|e| tls_error(what, path, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(what, path, e))?;
    if certs.is_empty() {
        return Err(tls_error(what, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The endpoint's rustls configuration: its certificate, and with `client_ca` the verifier
/// that makes the handshake fail for clients without a certificate from that CA.
fn tls_config(config: &PushConfig) -> Result<rustls::ServerConfig, InstanceError> {
    let chain = certificates("tls_cert", &config.tls_cert)?;
    let key = std::fs::read(&config.tls_key)
        .map_err(|e| tls_error("tls_key", &config.tls_key, e))
        .and_then(|pem| {
            PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| tls_error("tls_key", &config.tls_key, e))
        })?;
    // Explicit provider: the process-wide default would depend on which rustls features
    // other crates happen to enable.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls_cert", &config.tls_cert, e))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates("client_ca", path)? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("client_ca", path, e))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| tls_error("client_ca", path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut tls = builder
        .with_single_cert(chain, key)
        .map_err(|e| tls_error("tls_key", &config.tls_key, e))?;
    // As axum-server's own PEM loading does: HTTP/2 preferred, HTTP/1.1 accepted.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// Starts the endpoint; returns the bound address and the serving task.
pub async fn start(
    config: &PushConfig,
    connector_id: &str,
    settings: &ClientSettings,
    progress_topic: &str,
    registry: &RegistryClient,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), InstanceError> {
    config.check().map_err(|e| {
        InstanceError::Source(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("[push]: {e}"),
        ))
    })?;
    let tls = RustlsConfig::from_config(Arc::new(tls_config(config)?));
    let mut encoders = HashMap::new();
    for domain in Domain::ALL {
        encoders.insert(domain, RawEncoder::register(domain, registry).await?);
    }
    // One `Client` per system, whichever entries name it.
    let mut systems: HashMap<&str, Arc<Client>> = HashMap::new();
    let (mut by_token, mut by_certificate) = (HashMap::new(), HashMap::new());
    for entry in &config.clients {
        let client = systems
            .entry(&entry.system_id)
            .or_insert_with(|| {
                Arc::new(Client {
                    config: entry.clone(),
                    state: tokio::sync::Mutex::new(None),
                })
            })
            .clone();
        match &entry.identity {
            ClientIdentity::Token(token) => by_token.insert(token.clone(), client),
            ClientIdentity::Certificate(fingerprint) => by_certificate.insert(*fingerprint, client),
        };
    }
    let shared = Arc::new(Shared {
        by_token,
        by_certificate,
        encoders,
        settings: settings.clone(),
        progress_topic: progress_topic.to_owned(),
        connector_id: connector_id.to_owned(),
        topic_prefix: config.topic_prefix.clone(),
    });
    let app = Router::new()
        .route("/push/v1/{domain}/batches", post(push))
        .with_state(shared);
    let handle = axum_server::Handle::new();
    let server = axum_server::bind(config.listen)
        .acceptor(PeerAcceptor(RustlsAcceptor::new(tls)))
        .handle(handle.clone())
        .serve(app.into_make_service());
    let task = tokio::spawn(server);
    let addr = handle.listening().await.ok_or_else(|| {
        InstanceError::SourceSystem(format!(
            "the push endpoint could not listen on {}",
            config.listen
        ))
    })?;
    tracing::info!(%addr, client_certificates = config.client_ca.is_some(), "push endpoint listening");
    Ok((addr, task))
}

fn answer(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// The client a request comes from: its registered certificate or its bearer token. When a
/// request carries both, they must name the same system. Otherwise the code and message of
/// the 401 answer.
fn identify<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
    peer: PeerCertificate,
) -> Result<&'a Arc<Client>, (&'static str, &'static str)> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let by_certificate = peer.0.and_then(|f| shared.by_certificate.get(&f));
    match (token.map(|t| shared.by_token.get(t)), by_certificate) {
        (Some(None), _) => Err(("unauthenticated", "令牌无效 (unknown bearer token)")),
        (Some(Some(by_token)), Some(by_certificate)) if !Arc::ptr_eq(by_token, by_certificate) => {
            Err((
                "identity_conflict",
                "令牌与客户端证书属于不同的系统 (the token and the client certificate name \
                 different systems)",
            ))
        }
        (Some(Some(client)), _) | (None, Some(client)) => Ok(client),
        (None, None) if peer.0.is_some() => Err((
            "certificate_not_registered",
            "客户端证书未登记 (the client certificate is not registered for pushing)",
        )),
        (None, None) => Err((
            "unauthenticated",
            "令牌无效或缺失 (missing or unknown bearer token)",
        )),
    }
}

async fn push(
    State(shared): State<Arc<Shared>>,
    Extension(peer): Extension<PeerCertificate>,
    Path(domain): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let client = match identify(&shared, &headers, peer) {
        Ok(client) => client,
        Err((code, message)) => {
            return answer(StatusCode::UNAUTHORIZED, code, message.to_owned());
        }
    };
    let Ok(domain) = domain.parse::<Domain>() else {
        return answer(
            StatusCode::NOT_FOUND,
            "unknown_domain",
            format!("未知的数据领域「{domain}」 (unknown domain)"),
        );
    };
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "batch_invalid",
                format!("批次不是有效的 JSON (the batch is not valid JSON): {e}"),
            );
        }
    };
    match accept(&shared, client, domain, batch).await {
        Ok(response) => response,
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            format!("暂时无法写入，请稍后重试 (cannot write now, retry later): {e}"),
        ),
    }
}

/// Checks every record of a batch and commits the accepted ones with the batch id.
async fn accept(
    shared: &Shared,
    client: &Client,
    domain: Domain,
    batch: Batch,
) -> Result<Response, InstanceError> {
    // One batch of a client at a time: its transactions are serial anyway.
    let mut state = client.state.lock().await;
    if state.is_none() {
        let (settings, topic, id) = (
            shared.settings.clone(),
            shared.progress_topic.clone(),
            format!("push-{}", client.config.system_id),
        );
        let loaded = tokio::task::spawn_blocking(move || {
            let transactor = Transactor::start(&settings, &id, &topic)?;
            let seen =
                crate::progress::load_all(&settings, &topic, std::time::Duration::from_secs(60))?
                    .remove(&id)
                    .and_then(|v| {
                        serde_json::from_value::<VecDeque<String>>(v["batches"].clone()).ok()
                    })
                    .unwrap_or_default();
            Ok::<_, InstanceError>((Arc::new(transactor), seen))
        })
        .await
        .map_err(|e| InstanceError::SourceSystem(e.to_string()))??;
        *state = Some(loaded);
    }
    let (transactor, seen) = state.as_mut().expect("loaded above");
    if seen.contains(&batch.batch_id) {
        return Ok((
            StatusCode::OK,
            Json(json!({
                "batch_id": batch.batch_id,
                "duplicate": true,
                "message": "该批次已接收，未重复写入 (batch already received; nothing written again)",
            })),
        )
            .into_response());
    }

    let me = &client.config;
    let encoder = &shared.encoders[&domain];
    let topic = format!("{}{}", shared.topic_prefix, domain.as_str());
    let mut out = Vec::new();
    let mut results = Vec::with_capacity(batch.records.len());
    let mut out_of_scope = 0;
    for (index, record) in batch.records.into_iter().enumerate() {
        let result = check(shared, me, encoder, &batch.batch_id, record);
        match result {
            Ok((record_id, payload)) => {
                results
                    .push(json!({ "index": index, "record_id": record_id, "status": "accepted" }));
                out.push(Outgoing {
                    topic: topic.clone(),
                    key: record_id,
                    payload,
                });
            }
            Err((record_id, code, message)) => {
                out_of_scope += usize::from(code == "out_of_scope");
                results.push(json!({
                    "index": index, "record_id": record_id, "status": "rejected",
                    "code": code, "message": message,
                }));
            }
        }
    }
    let accepted = out.len();
    let rejected = results.len() - accepted;
    let status = if accepted == 0 && out_of_scope > 0 && out_of_scope == rejected {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut remembered = seen.clone();
    remembered.push_back(batch.batch_id.clone());
    while remembered.len() > REMEMBERED {
        remembered.pop_front();
    }
    let progress = json!({ "batches": remembered });
    let committing = transactor.clone();
    let committed = tokio::task::spawn_blocking(move || committing.commit(&out, &progress)).await;
    match committed {
        Ok(Ok(())) => *seen = remembered,
        Ok(Err(e)) => {
            // A new producer next time: the progress is read back from Kafka.
            *state = None;
            return Err(e.into());
        }
        Err(e) => return Err(InstanceError::SourceSystem(e.to_string())),
    }
    Ok((
        status,
        Json(json!({
            "batch_id": batch.batch_id,
            "accepted": accepted,
            "rejected": rejected,
            "results": results,
        })),
    )
        .into_response())
}

/// Why a record was rejected: its id if it had one, a stable code, a message.
type Rejection = (Option<String>, &'static str, String);

/// One record: its id and payload, or why it is rejected.
fn check(
    shared: &Shared,
    me: &PushClient,
    encoder: &RawEncoder,
    batch_id: &str,
    record: Value,
) -> Result<(String, Vec<u8>), Rejection> {
    let Value::Object(mut fields) = record else {
        return Err((
            None,
            "record_invalid",
            "记录不是 JSON 对象 (the record is not a JSON object)".to_owned(),
        ));
    };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    let record_id = text(fields.remove("record_id"));
    let region = text(fields.remove("region_code"));
    let (Some(record_id), Some(region)) = (record_id.clone(), region) else {
        return Err((
            record_id,
            "record_invalid",
            "记录缺少 record_id 或 region_code (record_id and region_code are required)".to_owned(),
        ));
    };
    if !crate::scope::in_scope(me.level, &me.region_code, &region) {
        return Err((
            Some(record_id),
            "out_of_scope",
            format!(
                "记录所属行政区划 {region} 不在 {} 的报送范围内 (region {region} is outside what {} may submit)",
                me.region_code, me.system_id
            ),
        ));
    }
    fields.insert(
        "provenance".to_owned(),
        json!({
            "source_system_id": me.system_id,
            "reporting_level": ReportingLevel::from(me.level),
            "reporter_region_code": me.region_code,
            "source_record_id": record_id,
            "received_at": Utc::now(),
            "connector_id": shared.connector_id,
            "batch_id": batch_id,
        }),
    );
    encoder
        .encode(&mut Value::Object(fields))
        .map(|payload| (record_id.clone(), payload))
        .map_err(|e| (Some(record_id), e.code(), e.to_string()))
}
