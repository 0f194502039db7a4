//! `push`: an HTTPS endpoint (rustls) where regional systems POST JSON batches. A client's
//! bearer token maps to its system, region and level; each record must lie in that region's
//! scope ([`crate::scope`]) or it is rejected — answered per record, never written. Accepted
//! records go to `raw.<domain>` in one Kafka transaction with the batch id, so a batch sent
//! again is acknowledged and not written twice.
//!
//! `POST /push/v1/{domain}/batches` with `Authorization: Bearer <token>` and
//! `{"batch_id": "...", "records": [{"record_id": "...", "region_code": "530114", ...raw fields}]}`.
//! Answers 200 with a result per record; 403 when every record was out of scope; 401 for an
//! unknown token. Messages are Chinese first, codes stable.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use schemas::records::ReportingLevel;
use schemas::registry::RegistryClient;
use schemas::{ClientSettings, Domain};
use serde::Deserialize;
use serde_json::{Value, json};

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
    /// Topic prefix for accepted records: `<prefix><domain>` (default `raw.`).
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// The systems allowed to push.
    #[serde(rename = "client", default)]
    pub clients: Vec<PushClient>,
}

fn default_prefix() -> String {
    // The contract's raw topics are `raw.<domain>` (schemas::topics::raw).
    "raw.".to_owned()
}

/// A regional system allowed to push, and the region it speaks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushClient {
    /// Its bearer token.
    pub token: String,
    /// Its system id, written into provenance.
    pub system_id: String,
    /// GB/T 2260 code of its region.
    pub region_code: String,
    /// Its level: what it may submit follows from it.
    pub level: Level,
}

/// One client's transactional producer and the batch ids it committed.
struct Client {
    config: PushClient,
    state: tokio::sync::Mutex<Option<(Arc<Transactor>, VecDeque<String>)>>,
}

struct Shared {
    clients: HashMap<String, Arc<Client>>,
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

/// Starts the endpoint; returns the bound address and the serving task.
pub async fn start(
    config: &PushConfig,
    connector_id: &str,
    settings: &ClientSettings,
    progress_topic: &str,
    registry: &RegistryClient,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), InstanceError> {
    let mut encoders = HashMap::new();
    for domain in Domain::ALL {
        encoders.insert(domain, RawEncoder::register(domain, registry).await?);
    }
    let shared = Arc::new(Shared {
        clients: config
            .clients
            .iter()
            .map(|c| {
                (
                    c.token.clone(),
                    Arc::new(Client {
                        config: c.clone(),
                        state: tokio::sync::Mutex::new(None),
                    }),
                )
            })
            .collect(),
        encoders,
        settings: settings.clone(),
        progress_topic: progress_topic.to_owned(),
        connector_id: connector_id.to_owned(),
        topic_prefix: config.topic_prefix.clone(),
    });
    let tls =
        axum_server::tls_rustls::RustlsConfig::from_pem_file(&config.tls_cert, &config.tls_key)
            .await?;
    let app = Router::new()
        .route("/push/v1/{domain}/batches", post(push))
        .with_state(shared);
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(config.listen, tls)
        .handle(handle.clone())
        .serve(app.into_make_service());
    let task = tokio::spawn(server);
    let addr = handle.listening().await.ok_or_else(|| {
        InstanceError::SourceSystem(format!(
            "the push endpoint could not listen on {}",
            config.listen
        ))
    })?;
    tracing::info!(%addr, "push endpoint listening");
    Ok((addr, task))
}

fn answer(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

async fn push(
    State(shared): State<Arc<Shared>>,
    Path(domain): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(client) = token.and_then(|t| shared.clients.get(t)) else {
        return answer(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "令牌无效或缺失 (missing or unknown bearer token)".to_owned(),
        );
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
