//! `push`: an HTTPS endpoint (rustls) where regional systems POST JSON batches. A client is
//! recognised by its bearer token or by its client certificate (mTLS, when `client_ca` is set);
//! either maps to its system, region, level and the domains it may push. Each record's region
//! is decided on the record itself ([`crate::scope::decide`]: its division code `region_code`
//! and its USCC's region must agree with each other and lie in the client's scope) or it is
//! rejected — answered per record, never written. Accepted records go to `raw.<domain>` in one
//! Kafka transaction with the batch id.
//!
//! `POST /push/v1/{domain}/batches` with `Authorization: Bearer <token>` (or over a connection
//! with a registered client certificate), `Content-Type: application/json` and
//! `{"batch_id": "...", "records": [...]}`. A client with a `mapping` for the domain sends its
//! system's own records (`{"车架号": "...", "号牌号码": "...", ...}`), mapped exactly as a pull
//! instance with that mapping maps them; without one, records in raw form
//! (`{"record_id": "...", "region_code": "530114", ...raw fields}`). See [`records`].
//!
//! | status | code | when |
//! |---|---|---|
//! | 200 | — | a result per record (`accepted`, or `rejected` with its code: `record_invalid`, `out_of_scope`, `region_mismatch`, `region_invalid`, `record_too_large`, a schema code) |
//! | 200 | — | `"duplicate": true`: the same batch id with the same records was committed before; nothing written again |
//! | 400 | `batch_invalid`, `batch_id_invalid` | not a batch; a batch id empty, over `limits.max_batch_id_bytes` or with control characters |
//! | 401 | `unauthenticated`, `certificate_not_registered`, `identity_conflict` | unknown client |
//! | 403 | `domain_not_allowed` | the client is not bound to this domain |
//! | 403 | `out_of_scope` | every record was out of scope (results as for 200) |
//! | 404 | `unknown_domain` | |
//! | 408 | `body_timeout` | the body did not arrive within `body_timeout` |
//! | 409 | `batch_id_reused` | the batch id was committed before with other records |
//! | 413 | `body_too_large`, `batch_too_large` | over `limits.max_body_bytes` or `limits.max_items` records |
//! | 415 | `content_type` | not `application/json` |
//! | 503 | the Kafka error's code | nothing written; send again |
//!
//! Idempotency: a batch id is remembered per (client system, domain) only once the records it
//! carried were committed — a batch whose records were all rejected is not, so corrected
//! records may be sent under the same id. The newest [`REMEMBERED`] ids of a system are kept,
//! for at most [`REMEMBERED_FOR`]; an id resent after that is a new batch, written again (the
//! hub recognises the repeated reports as merged duplicates, so the national feed does not
//! change). Messages are Chinese first, codes stable. With `client_ca` set, a client without
//! a certificate issued by that CA gets no HTTP answer at all: the TLS handshake fails.
//!
//! Metrics: `connector_push_requests_total{status}`, `connector_push_records_total{outcome,code}`
//! (counted once committed) and `connector_push_request_duration_seconds`; a batch refused or
//! with rejected records gets a log line (at most one a minute per system and code).
//!
//! The server sheds abuse: at most `max_connections` connections, a TLS handshake within
//! `handshake_timeout`, request headers within `header_timeout`, the body within
//! `body_timeout`.
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
//! domains = ["vehicle", "vehicle-position"]
//!
//! [push.client.mapping.vehicle]                # its own field names, as a pull instance's mapping
//! record_id = ["车架号"]
//! fields = { vin = "车架号", plate = "号牌号码", owner_uscc = "使用单位代码" }
//! dates = { purchase_date = "%Y年%m月%d日" }
//!
//! [[push.client]]                              # by token
//! token = "…"
//! system_id = "km-city-vehicles"
//! region_code = "530100"
//! level = "prefecture"
//! domains = ["vehicle"]
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::AddExtension;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use chrono::Utc;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use schemas::registry::RegistryClient;
use schemas::{ClientSettings, Domain};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_layer::Layer as _;

use crate::config::{Level, MappingConfig};
use crate::instance::InstanceError;
use crate::limits::Limits;
use crate::outcomes::{Counts, Outcomes};
use crate::raw::RawEncoder;
use crate::transactor::{Outgoing, Transactor};

mod metrics;
pub mod records;

pub use metrics::PushMetrics;
pub use records::{Admission, Batch, BatchError, Rejection, parse_batch};

/// How many batch ids per client system are remembered for idempotency: the newest. Each takes
/// about 110 bytes of the system's progress record, which stays far below Kafka's 1 MiB.
pub const REMEMBERED: usize = 4_000;

/// How long a batch id is remembered at most (the raw topics' retention).
pub const REMEMBERED_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

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
    /// its remembered batch ids, and must agree on region, level and domains.
    #[serde(rename = "client", default)]
    pub clients: Vec<PushClient>,
    /// Connections served at once; more are closed as they arrive.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time for a client to complete the TLS handshake.
    #[serde(with = "humantime_serde", default = "default_handshake_timeout")]
    pub handshake_timeout: Duration,
    /// Time for a request's headers to arrive (also how long an idle connection stays open).
    #[serde(with = "humantime_serde", default = "default_header_timeout")]
    pub header_timeout: Duration,
    /// Time for a request's body to arrive.
    #[serde(with = "humantime_serde", default = "default_body_timeout")]
    pub body_timeout: Duration,
    /// How long one connection may stay open, however busy; the client then reconnects. Ends
    /// connections whose client never reads its answers.
    #[serde(with = "humantime_serde", default = "default_connection_lifetime")]
    pub connection_lifetime: Duration,
    /// Batches read and checked at once (the others wait, up to `body_timeout`, then get 503):
    /// a parsed batch takes several times its body's size in memory, so this times
    /// `limits.max_body_bytes` bounds what pushes can cost.
    #[serde(default = "default_concurrent_batches")]
    pub max_concurrent_batches: usize,
}

fn default_connection_lifetime() -> Duration {
    Duration::from_secs(600)
}

fn default_concurrent_batches() -> usize {
    2
}

fn default_max_connections() -> usize {
    1024
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(60)
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
            if client.domains.is_empty() {
                return Err(format!(
                    "client `{system}`: `domains` must list the domains it may push"
                ));
            }
            for (domain, mapping) in &client.mappings {
                if !client.domains.contains(domain) {
                    return Err(format!(
                        "client `{system}`: mapping.{domain} is for a domain not in `domains`"
                    ));
                }
                mapping
                    .check()
                    .map_err(|e| format!("client `{system}`: mapping.{domain}: {e}"))?;
            }
            if let Some(first) = systems.insert(system, client)
                && (first.region_code != client.region_code
                    || first.level != client.level
                    || first.domains != client.domains
                    || first.mappings != client.mappings)
            {
                return Err(format!(
                    "the entries of client `{system}` disagree on region_code, level, domains \
                     or mapping"
                ));
            }
        }
        if self.max_connections == 0 || self.max_concurrent_batches == 0 {
            return Err("max_connections and max_concurrent_batches must be at least 1".to_owned());
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
    /// The domains it may push; a batch of another domain is refused (403).
    pub domains: Vec<Domain>,
    /// Per domain, how the system's own records map to the raw form — the same table as a
    /// pull instance's `mapping`, so a system moves between pull and push without changing
    /// its payload. A domain without one takes records already in raw form, with `record_id`
    /// and `region_code` beside the raw fields.
    pub mappings: BTreeMap<Domain, MappingConfig>,
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
    domains: Vec<Domain>,
    #[serde(default)]
    mapping: BTreeMap<Domain, MappingConfig>,
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
            domains: entry.domains,
            mappings: entry.mapping,
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

/// A batch a client system committed: under which domain and id, with which records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    /// [`batch_key`] of the domain and batch id.
    key: String,
    /// [`content_hash`] of the records.
    content: String,
    /// When it was committed (Unix seconds).
    at: i64,
    /// Records accepted then.
    accepted: usize,
    /// Records rejected then.
    rejected: usize,
}

/// The progress record of a push client system.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PushProgress {
    /// Its committed batches, oldest first.
    #[serde(default)]
    seen: VecDeque<Seen>,
    /// What became of every record it pushed: committed with its batches (the counts of
    /// batches that wrote nothing ride along with the next one that does).
    #[serde(default)]
    outcomes: Counts,
}

/// What a (domain, batch id) is remembered by: fixed-size, whatever the id's length.
fn batch_key(domain: Domain, batch_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(domain.as_str())
        .chain_update([0])
        .chain_update(batch_id)
        .finalize();
    crate::digest::hex(&digest[..16])
}

/// What a batch's records are recognised by (their JSON, as parsed).
fn content_hash(records: &[Value]) -> String {
    let bytes = serde_json::to_vec(records).unwrap_or_default();
    crate::digest::hex(&Sha256::digest(bytes)[..16])
}

/// One system's transactional producer and the batches it committed.
struct Client {
    config: PushClient,
    state: tokio::sync::Mutex<Option<(Arc<Transactor>, PushProgress)>>,
}

struct Shared {
    by_token: HashMap<String, Arc<Client>>,
    by_certificate: HashMap<CertificateFingerprint, Arc<Client>>,
    encoders: HashMap<Domain, RawEncoder>,
    settings: ClientSettings,
    progress_topic: String,
    connector_id: String,
    topic_prefix: String,
    limits: Limits,
    body_timeout: Duration,
    /// Places for batches being read and checked.
    batches: Semaphore,
    outcomes: Outcomes,
    metrics: PushMetrics,
}

/// The certificate the client of a connection presented, if any (verified against
/// `client_ca` by the handshake), as every request of the connection sees it.
#[derive(Debug, Clone, Copy)]
struct PeerCertificate(Option<CertificateFingerprint>);

/// The rustls acceptor, plus handing the connection's client certificate to the handlers (a
/// request extension is the only way from the TLS session to axum), a bound on connections
/// and on the time a handshake may take.
#[derive(Clone)]
struct PeerAcceptor {
    tls: RustlsAcceptor,
    connections: Arc<Semaphore>,
    handshake_timeout: Duration,
    lifetime: Duration,
}

/// A connection holding its place among `max_connections` until it closes, and failing
/// every read and write once its lifetime is over.
struct Counted<S> {
    stream: S,
    _place: OwnedSemaphorePermit,
    ends: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Counted<S> {
    /// An error once the connection's lifetime is over (the sleep wakes the task then).
    fn over(&mut self, cx: &mut TaskContext<'_>) -> Option<std::io::Error> {
        self.ends
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| std::io::Error::from(std::io::ErrorKind::TimedOut))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.over(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.over(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.over(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl<I, S> Accept<I, S> for PeerAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = Counted<<RustlsAcceptor as Accept<I, S>>::Stream>;
    type Service = AddExtension<S, PeerCertificate>;
    type Future =
        Pin<Box<dyn Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let (tls, connections, timeout, lifetime) = (
            self.tls.clone(),
            self.connections.clone(),
            self.handshake_timeout,
            self.lifetime,
        );
        Box::pin(async move {
            let Ok(place) = connections.try_acquire_owned() else {
                tracing::debug!("push: connection limit reached; connection closed");
                return Err(std::io::Error::other("connection limit reached"));
            };
            let (stream, service) = tokio::time::timeout(timeout, tls.accept(stream, service))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
                .and_then(|accepted| accepted)
                .inspect_err(|e| {
                    // Without a certificate from `client_ca` this is where a client ends.
                    tracing::debug!(error = %e, "push: TLS handshake failed");
                })?;
            let leaf = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(<[CertificateDer<'static>]>::first);
            let peer = PeerCertificate(leaf.map(|der| CertificateFingerprint::of(der)));
            let stream = Counted {
                stream,
                _place: place,
                ends: Box::pin(tokio::time::sleep(lifetime)),
            };
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
    // HTTP/1.1 only (see `start`).
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// Starts the endpoint; returns the bound address and the serving task. What it decides
/// about every record is counted in the outcomes of `metrics`, under the instance
/// `push:<system_id>`, and in its push metrics.
pub async fn start(
    config: &PushConfig,
    limits: &Limits,
    metrics: &crate::runtime::Metrics,
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
        limits: limits.clone(),
        body_timeout: config.body_timeout,
        batches: Semaphore::new(config.max_concurrent_batches),
        outcomes: metrics.outcomes().clone(),
        metrics: metrics.push().clone(),
    });
    let app = Router::new()
        .route("/push/v1/{domain}/batches", post(push))
        .with_state(shared);
    let handle = axum_server::Handle::new();
    // HTTP/1.1 only: its header timeout also ends idle kept-alive connections, which HTTP/2's
    // pings would keep open.
    let mut server = axum_server::bind(config.listen)
        .acceptor(PeerAcceptor {
            tls: RustlsAcceptor::new(tls),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            handshake_timeout: config.handshake_timeout,
            lifetime: config.connection_lifetime,
        })
        .http1_only();
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let server = server.handle(handle.clone()).serve(app.into_make_service());
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

/// The stable code of an answer that refused a batch, for its metrics and log line.
#[derive(Debug, Clone, Copy)]
struct Refused(&'static str);

fn answer(status: StatusCode, code: &'static str, message: String) -> Response {
    let mut response = (status, Json(json!({ "code": code, "message": message }))).into_response();
    response.extensions_mut().insert(Refused(code));
    response
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

/// Whether a request says its body is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The request body, read within the limit and the time allowed.
async fn read_body(shared: &Shared, body: axum::body::Body) -> Result<axum::body::Bytes, Response> {
    use http_body_util::BodyExt as _;
    let max = shared.limits.max_body_bytes;
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(shared.body_timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("请求体超过 {max} 字节上限 (the body is over limits.max_body_bytes = {max})"),
        )),
        Ok(Err(e)) => Err(answer(
            StatusCode::BAD_REQUEST,
            "batch_invalid",
            format!("无法读取请求体 (the body could not be read): {e}"),
        )),
        Err(_) => Err(answer(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "请求体未在 {} 秒内送达 (the body did not arrive within {} s)",
                shared.body_timeout.as_secs(),
                shared.body_timeout.as_secs()
            ),
        )),
    }
}

/// A push request: answered, counted and — when refused or partly rejected — logged.
async fn push(
    State(shared): State<Arc<Shared>>,
    Extension(peer): Extension<PeerCertificate>,
    Path(domain): Path<String>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    let (response, system) = match identify(&shared, request.headers(), peer) {
        Ok(client) => {
            let client = client.clone();
            let system = client.config.system_id.clone();
            (receive(&shared, client, &domain, request).await, system)
        }
        Err((code, message)) => (
            answer(StatusCode::UNAUTHORIZED, code, message.to_owned()),
            String::new(),
        ),
    };
    let status = response.status().as_u16();
    shared.metrics.answered(status, started);
    if let Some(Refused(code)) = response.extensions().get::<Refused>()
        && (400..500).contains(&status)
    {
        let domain = crate::instance::cut(domain, 64);
        shared
            .metrics
            .log_rejected(&system, &domain, status, code, 0);
    }
    response
}

/// A batch from `client`, from its domain's name to the answer.
async fn receive(
    shared: &Arc<Shared>,
    client: Arc<Client>,
    domain: &str,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(domain) = domain.parse::<Domain>() else {
        return answer(
            StatusCode::NOT_FOUND,
            "unknown_domain",
            format!(
                "未知的数据领域「{}」 (unknown domain)",
                crate::instance::cut(domain.to_owned(), 64)
            ),
        );
    };
    if !client.config.domains.contains(&domain) {
        return answer(
            StatusCode::FORBIDDEN,
            "domain_not_allowed",
            format!(
                "{} 未获准报送「{}」数据 ({} may not push {})",
                client.config.system_id,
                domain.as_str(),
                client.config.system_id,
                domain.as_str()
            ),
        );
    }
    if !is_json(&parts.headers) {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "请求体须为 JSON (Content-Type must be application/json)".to_owned(),
        );
    }
    let Ok(Ok(_place)) = tokio::time::timeout(shared.body_timeout, shared.batches.acquire()).await
    else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "服务繁忙，请稍后重试 (too many batches at once; retry later)".to_owned(),
        );
    };
    let body = match read_body(shared, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let batch = match parse_batch(&body, &shared.limits) {
        Ok(batch) => batch,
        Err(e) => return answer(e.status, e.code, e.message),
    };
    drop(body);
    let system = client.config.system_id.clone();
    let accepted = tokio::spawn(accept(shared.clone(), client.clone(), domain, batch))
        .await
        .unwrap_or_else(|e| Err(InstanceError::Panicked(e.to_string())));
    match accepted {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(%system, code = e.code(), error = %e, "push batch not written");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                format!("暂时无法写入，请稍后重试 (cannot write now, retry later): {e}"),
            )
        }
    }
}

/// The producer and committed batches of `client`, started and read back on first use.
async fn load(
    shared: &Shared,
    client: &Client,
) -> Result<(Arc<Transactor>, PushProgress), InstanceError> {
    let (settings, topic, id) = (
        shared.settings.clone(),
        shared.progress_topic.clone(),
        format!("push-{}", client.config.system_id),
    );
    // Scoped by the connector, as slots are: two deployments sharing a cluster (or a client
    // system) must not fence each other.
    let transactional_id = format!("huitong-connector-{}-{id}", shared.connector_id);
    tokio::task::spawn_blocking(move || {
        let transactor = Transactor::start(&settings, &transactional_id, &topic)?;
        let progress =
            crate::progress::load_all(&settings, &topic, std::time::Duration::from_secs(60))?
                .remove(&id)
                .and_then(|v| serde_json::from_value::<PushProgress>(v).ok())
                .unwrap_or_default();
        Ok::<_, InstanceError>((Arc::new(transactor), progress))
    })
    .await
    .map_err(|e| InstanceError::SourceSystem(e.to_string()))?
}

/// Checks every record of a batch and commits the accepted ones with the batch id and the
/// client's outcome totals — one transaction per batch, also for a batch that writes nothing
/// (a duplicate, or every record rejected), so every count is committed before it is shown.
/// Runs as a task of its own: a request dropped half-way (a client gone) cannot leave the
/// client's state behind what Kafka committed.
async fn accept(
    shared: Arc<Shared>,
    client: Arc<Client>,
    domain: Domain,
    batch: Batch,
) -> Result<Response, InstanceError> {
    let me = &client.config;
    let instance = format!("push:{}", me.system_id);
    let read = batch.records.len() as u64;
    // One batch of a client at a time: its transactions are serial anyway.
    let mut state = client.state.lock().await;
    if state.is_none() {
        let loaded = load(&shared, &client).await?;
        shared.outcomes.restore(&instance, &loaded.1.outcomes);
        *state = Some(loaded);
    }
    let (transactor, progress) = state.as_mut().expect("loaded above");
    let now = Utc::now().timestamp();
    let oldest = now - REMEMBERED_FOR.as_secs() as i64;
    let mut next = progress.clone();
    next.seen.retain(|s| s.at >= oldest);
    let key = batch_key(domain, &batch.batch_id);
    let content = content_hash(&batch.records);
    let (out, counts, codes, response) = if let Some(seen) = next.seen.iter().find(|s| s.key == key)
    {
        if seen.content != content {
            return Ok(answer(
                StatusCode::CONFLICT,
                "batch_id_reused",
                format!(
                    "批次号「{}」已用于另一批记录，请使用新的批次号 (batch id already used for other \
                     records: send them under a new batch id)",
                    crate::instance::cut(batch.batch_id, 64)
                ),
            ));
        }
        let response = (
            StatusCode::OK,
            Json(json!({
                "batch_id": batch.batch_id,
                "duplicate": true,
                "accepted": seen.accepted,
                "rejected": seen.rejected,
                "message": "该批次已接收，未重复写入 (batch already received; nothing written again)",
            })),
        )
            .into_response();
        let counts = Counts {
            read,
            skipped: read,
            ..Counts::default()
        };
        (Vec::new(), counts, BTreeMap::new(), response)
    } else {
        let encoder = &shared.encoders[&domain];
        let topic = format!("{}{}", shared.topic_prefix, domain.as_str());
        let mut out = Vec::new();
        let mut results = Vec::with_capacity(batch.records.len());
        let mut out_of_scope = 0;
        let mut codes: BTreeMap<&'static str, u64> = BTreeMap::new();
        let admission = Admission {
            client: me,
            domain,
            encoder,
            limits: &shared.limits,
            connector_id: &shared.connector_id,
            batch_id: &batch.batch_id,
        };
        for (index, record) in batch.records.into_iter().enumerate() {
            match admission.admit(record) {
                Ok(admitted) => {
                    results.push(json!({
                        "index": index, "record_id": admitted.record_id, "status": "accepted",
                    }));
                    out.push(Outgoing {
                        topic: topic.clone(),
                        key: admitted.key,
                        payload: admitted.payload,
                    });
                }
                Err((record_id, code, message)) => {
                    out_of_scope += usize::from(code == "out_of_scope");
                    *codes.entry(code).or_default() += 1;
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
        if accepted > 0 {
            // Remembered only with the records it committed: a batch with nothing written may
            // be sent again, corrected, under the same id.
            next.seen.push_back(Seen {
                key,
                content,
                at: now,
                accepted,
                rejected,
            });
            while next.seen.len() > REMEMBERED {
                next.seen.pop_front();
            }
        }
        let response = (
            status,
            Json(json!({
                "batch_id": batch.batch_id,
                "accepted": accepted,
                "rejected": rejected,
                "results": results,
            })),
        )
            .into_response();
        let counts = Counts {
            read,
            written: accepted as u64,
            rejected: rejected as u64,
            ..Counts::default()
        };
        (out, counts, codes, response)
    };
    next.outcomes.add(&counts);
    let value = serde_json::to_vec(&next).map_err(InstanceError::Progress)?;
    let record = vec![(format!("push-{}", me.system_id), Some(value))];
    let committing = transactor.clone();
    match tokio::task::spawn_blocking(move || committing.commit(&out, &record)).await {
        Ok(Ok(())) => *progress = next,
        Ok(Err(e)) => {
            // A new producer next time: the progress is read back from Kafka.
            *state = None;
            return Err(e.into());
        }
        Err(e) => {
            *state = None;
            return Err(InstanceError::SourceSystem(e.to_string()));
        }
    }
    shared.outcomes.committed(&instance, &counts);
    shared.metrics.committed(
        counts.written,
        counts.skipped,
        codes.iter().map(|(c, n)| (*c, *n)),
    );
    if counts.rejected > 0 {
        let status = response.status().as_u16();
        let code = if codes.len() == 1 {
            codes.keys().next().copied().unwrap_or_default()
        } else {
            "records_rejected"
        };
        shared.metrics.log_rejected(
            &me.system_id,
            domain.as_str(),
            status,
            code,
            counts.rejected,
        );
    }
    Ok(response)
}
