//! The HTTP API (axum): every system's records in three pagination styles, bearer-token auth
//! per system, faults on demand, and the ground truth.
//!
//! Routes:
//! - `GET /systems` — every [`SystemProfile`] (with its token and record count);
//!   `GET /systems/{id}` — one.
//! - `GET /systems/{id}/records` with `Authorization: Bearer <token>` and one of
//!   `?page=1&page_size=100` (page/offset; `offset=` is accepted instead of `page`),
//!   `?cursor=<token>&limit=100` (no cursor = start; `next_cursor` is null at the end), or
//!   `?updated_since=<RFC 3339>&limit=100` (records updated strictly after; ascending).
//!   With only `limit=` the cursor style starts from the beginning; with nothing, page 1 of 100.
//!   Every system is served in all three styles; [`SystemProfile::protocol`] says which one its
//!   real counterpart speaks.
//! - `GET /systems/{id}/api/{dialect}` — the same records in one of the shapes regional APIs
//!   come in ([`Dialect`]): other parameter names, items at a nested path, a total of records,
//!   of pages or none but `hasMore`, offsets, `Link` headers; the token as a bearer token or
//!   in `X-Api-Key`. Its 429s say `Retry-After` as an HTTP date.
//! - `POST /systems/{id}/faults` with a [`Faults`] JSON body; `GET` shows a [`FaultStatus`]
//!   (what is pending, requests and stalls so far), `DELETE` clears.
//! - `GET /ground-truth`, `GET /healthz`.
//!
//! [`spawn`] serves plain HTTP; [`spawn_tls`] serves HTTPS, optionally requiring client
//! certificates (mTLS) as some regional systems do.
//!
//! Faults are sequenced by the system's request counter since the faults were set, never by
//! clocks or randomness, so a test sees the same failures on every run.

use crate::systems::{Record, Simulator, SystemProfile, rfc3339};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Faults injected into one system's record listings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Delay added to every listing response, milliseconds.
    pub latency_ms: u64,
    /// Share of requests answered `503` (0–1): request *n* (1-based, counted from when the faults
    /// were set) fails when ⌊n·rate⌋ > ⌊(n−1)·rate⌋ — e.g. 0.5 fails requests 2, 4, 6, ….
    pub error_5xx_rate: f64,
    /// Every n-th request gets `429 Too Many Requests` with `Retry-After: 1` (0 = never).
    pub rate_429_every: u32,
    /// The next n successful responses have their body cut in half (invalid JSON, status 200).
    pub truncate_pages: u32,
    /// The next n successful responses that have a predecessor (since the faults were set)
    /// repeat the predecessor's records before their own — the same ids again: a connector must
    /// not write them twice.
    pub repeat_pages: u32,
    /// The next n records served carry one unparsable value (`N/A` in a number, `2025-13-45` in
    /// a date); ids and keys are unchanged.
    pub malformed_rows: u32,
    /// Every n-th request (0 = never) waits [`Faults::stall_ms`] more before answering, as a
    /// system behind an overloaded gateway does: with a client timeout below it, a timeout
    /// without failing every request. A stalled request's body carries no other fault and is
    /// no predecessor for `repeat_pages`, so the sequence is the same whether the client waited
    /// or gave up.
    pub stall_every: u32,
    /// How long a stalled request waits, milliseconds (on top of `latency_ms`).
    pub stall_ms: u64,
}

#[derive(Debug, Default)]
struct FaultState {
    faults: Faults,
    requests: u64,
    stalled: u64,
    previous: Vec<Record>,
}

/// What `GET /systems/{id}/faults` shows: the faults still pending (the `next n` counters
/// count down as they strike) and what the system has seen since they were set, so a test can
/// tell that its faults happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultStatus {
    /// The faults, with what is left of the counted ones.
    #[serde(flatten)]
    pub faults: Faults,
    /// Listing requests since the faults were set.
    pub requests: u64,
    /// How many of them were stalled (`stall_every`).
    pub stalled: u64,
}

/// Shared state of the server.
#[derive(Debug)]
pub struct AppState {
    sim: Arc<Simulator>,
    faults: Mutex<HashMap<String, FaultState>>,
}

/// The router, for embedding or for [`serve`].
pub fn router(sim: Arc<Simulator>) -> Router {
    let state = Arc::new(AppState {
        sim,
        faults: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/systems", get(list_systems))
        .route("/systems/{id}", get(get_system))
        .route("/systems/{id}/records", get(list_records))
        .route("/systems/{id}/api/{dialect}", get(list_dialect))
        .route(
            "/systems/{id}/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/ground-truth", get(ground_truth))
        .with_state(state)
}

/// Serves the simulator on an already bound listener until the task is dropped or fails.
pub async fn serve(listener: tokio::net::TcpListener, sim: Arc<Simulator>) -> std::io::Result<()> {
    axum::serve(listener, router(sim)).await
}

/// Binds `addr` (port 0 for any free port) and serves in a background task; returns the bound
/// address and the task. For tests: `let (addr, task) = spawn(sim, "127.0.0.1:0".parse()?).await?`.
pub async fn spawn(
    sim: Arc<Simulator>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((bound, tokio::spawn(serve(listener, sim))))
}

/// Like [`spawn`], over HTTPS with `tls`: the simulator then stands for a regional system that
/// admits only clients with a certificate from its CA when `tls` has a client-certificate
/// verifier (rustls `WebPkiClientVerifier`) — a client without one fails the handshake and
/// never reaches the API. Bearer tokens are checked as over HTTP. `tls.alpn_protocols` decides
/// whether HTTP/2 is offered (empty: HTTP/1.1).
pub async fn spawn_tls(
    sim: Arc<Simulator>,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )?;
    Ok((
        bound,
        tokio::spawn(server.serve(router(sim).into_make_service())),
    ))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}

async fn list_systems(State(s): State<Arc<AppState>>) -> Response {
    let list: Vec<serde_json::Value> = s
        .sim
        .systems()
        .iter()
        .enumerate()
        .map(|(i, p)| system_json(&s.sim, i, p))
        .collect();
    axum::Json(list).into_response()
}

fn system_json(sim: &Simulator, i: usize, p: &SystemProfile) -> serde_json::Value {
    let mut v = serde_json::to_value(p).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("record_count".into(), sim.len(i).into());
        o.insert(
            "dialect".into(),
            dialect_of(p).map_or(serde_json::Value::Null, |d| d.path().into()),
        );
    }
    v
}

async fn get_system(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match s.sim.system(&id) {
        Some((i, p)) => axum::Json(system_json(&s.sim, i, p)).into_response(),
        None => error(StatusCode::NOT_FOUND, "UNKNOWN_SYSTEM", "系统不存在"),
    }
}

async fn ground_truth(State(s): State<Arc<AppState>>) -> Response {
    let sim = s.sim.clone();
    match tokio::task::spawn_blocking(move || sim.ground_truth()).await {
        Ok(t) => axum::Json(t).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "内部错误"),
    }
}

async fn get_faults(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    if s.sim.system(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "UNKNOWN_SYSTEM", "系统不存在");
    }
    let status = s.faults.lock().map(|m| {
        m.get(&id)
            .map(|f| FaultStatus {
                faults: f.faults.clone(),
                requests: f.requests,
                stalled: f.stalled,
            })
            .unwrap_or_default()
    });
    axum::Json(status.unwrap_or_default()).into_response()
}

async fn set_faults(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if s.sim.system(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "UNKNOWN_SYSTEM", "系统不存在");
    }
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BAD_FAULTS",
                &format!("故障设置无效: {e}"),
            );
        }
    };
    if let Ok(mut m) = s.faults.lock() {
        m.insert(
            id,
            FaultState {
                faults: faults.clone(),
                ..FaultState::default()
            },
        );
    }
    axum::Json(faults).into_response()
}

async fn clear_faults(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    if let Ok(mut m) = s.faults.lock() {
        m.remove(&id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Query parameters of a listing.
#[derive(Debug, Deserialize)]
struct ListQuery {
    page: Option<usize>,
    page_size: Option<usize>,
    offset: Option<usize>,
    cursor: Option<String>,
    limit: Option<usize>,
    updated_since: Option<String>,
}

/// The shapes of regional APIs the simulator serves every system in besides its own, at
/// `GET /systems/{id}/api/{dialect}` (see [`Dialect::path`]). Each is a listing a new user meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// `?pageNo=1&size=50` (pages from 1): `{"code": 0, "data": {"list": [..], "total": N}}`,
    /// the total counting records.
    PageNoSize,
    /// MyBatis-Plus's page: `?current=1&size=50`:
    /// `{"code": 200, "data": {"records": [..], "total": N, "pages": P, ..}}`.
    Current,
    /// `?pageNum=0&pageSize=50` (pages from 0) and no total:
    /// `{"result": {"rows": [..], "hasMore": true}}`.
    HasMore,
    /// `?start=0&rows=50` (offset and limit): `{"numFound": N, "start": 0, "docs": [..]}`.
    Offset,
    /// `?per_page=50`, then the page the `Link` header's `rel="next"` names (a relative
    /// reference); the body is a bare array.
    Link,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 5] = [
        Dialect::PageNoSize,
        Dialect::Current,
        Dialect::HasMore,
        Dialect::Offset,
        Dialect::Link,
    ];

    /// Its path segment (`/systems/{id}/api/<path>`).
    pub fn path(self) -> &'static str {
        match self {
            Dialect::PageNoSize => "page-no-size",
            Dialect::Current => "current",
            Dialect::HasMore => "has-more",
            Dialect::Offset => "offset",
            Dialect::Link => "link",
        }
    }
}

/// The dialect the real counterpart of `profile` speaks, if not the simulator's native API:
/// some county and prefecture systems paged by number or cursor, chosen by their id (the same
/// in every world of the same systems).
pub fn dialect_of(profile: &SystemProfile) -> Option<Dialect> {
    use crate::divisions::Level;
    use crate::systems::Protocol;
    let paged = matches!(profile.protocol, Protocol::HttpPage | Protocol::HttpCursor);
    let h = crate::rng::mix(crate::rng::label(&profile.id));
    (paged && profile.level != Level::Province)
        .then(|| Dialect::ALL.get((h % 8) as usize).copied())
        .flatten()
}

/// Query parameters of a dialect's listing (each dialect reads its own).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DialectQuery {
    page_no: Option<usize>,
    size: Option<usize>,
    current: Option<usize>,
    page_num: Option<usize>,
    page_size: Option<usize>,
    start: Option<usize>,
    rows: Option<usize>,
    page: Option<usize>,
    #[serde(rename = "per_page")]
    per_page: Option<usize>,
}

/// What a listing request asks for.
enum Listing {
    /// `/systems/{id}/records` in one of the three native styles.
    Native(ListQuery),
    /// `/systems/{id}/api/{dialect}`.
    Dialect(Dialect, DialectQuery),
}

/// A listing's answer before its items are read: their range, the body they go into, where in
/// it, and a `Link` header.
struct Shape {
    range: std::ops::Range<usize>,
    envelope: serde_json::Value,
    /// JSON pointer of the items in `envelope` (`""`: the body is the array).
    items_at: &'static str,
    link: Option<String>,
}

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

fn cursor_token(system_id: &str, pos: usize) -> String {
    format!(
        "c{:x}",
        pos as u64 ^ crate::rng::mix(crate::rng::label(system_id))
    )
}

fn cursor_pos(system_id: &str, token: &str) -> Option<usize> {
    let v = u64::from_str_radix(token.strip_prefix('c')?, 16).ok()?;
    usize::try_from(v ^ crate::rng::mix(crate::rng::label(system_id))).ok()
}

async fn list_records(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    serve_listing(s, id, headers, Listing::Native(q)).await
}

async fn list_dialect(
    State(s): State<Arc<AppState>>,
    Path((id, dialect)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<DialectQuery>,
) -> Response {
    match Dialect::ALL.into_iter().find(|d| d.path() == dialect) {
        Some(d) => serve_listing(s, id, headers, Listing::Dialect(d, q)).await,
        None => error(StatusCode::NOT_FOUND, "UNKNOWN_API", "接口不存在"),
    }
}

async fn serve_listing(
    s: Arc<AppState>,
    id: String,
    headers: HeaderMap,
    listing: Listing,
) -> Response {
    let Some((sys, profile)) = s.sim.system(&id) else {
        return error(StatusCode::NOT_FOUND, "UNKNOWN_SYSTEM", "系统不存在");
    };
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let bearer = text(header::AUTHORIZATION) == Some(format!("Bearer {}", profile.token).as_str());
    // Dialects take the token as an API key too.
    let key = matches!(listing, Listing::Dialect(..))
        && text(header::HeaderName::from_static("x-api-key")) == Some(profile.token.as_str());
    if !bearer && !key {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "令牌无效或缺失");
    }

    // Fault sequencing: decide everything under the lock, act after it.
    let (latency, verdict, stalled) = {
        let Ok(mut m) = s.faults.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "内部错误");
        };
        let st = m.entry(id.clone()).or_default();
        st.requests += 1;
        let n = st.requests;
        let f = &st.faults;
        let verdict = if f.rate_429_every > 0 && n.is_multiple_of(u64::from(f.rate_429_every)) {
            Some(StatusCode::TOO_MANY_REQUESTS)
        } else if f.error_5xx_rate > 0.0
            && (n as f64 * f.error_5xx_rate).floor() > ((n - 1) as f64 * f.error_5xx_rate).floor()
        {
            Some(StatusCode::SERVICE_UNAVAILABLE)
        } else {
            None
        };
        let stalled = f.stall_every > 0 && n.is_multiple_of(u64::from(f.stall_every));
        let latency = f.latency_ms + if stalled { f.stall_ms } else { 0 };
        st.stalled += u64::from(stalled);
        (latency, verdict, stalled)
    };
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    match verdict {
        Some(StatusCode::TOO_MANY_REQUESTS) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "请求过于频繁，请稍后重试",
            );
            // Native listings say delay-seconds; dialects an HTTP date (RFC 9110 §10.2.3).
            let after = match listing {
                Listing::Native(_) => HeaderValue::from_static("1"),
                Listing::Dialect(..) => HeaderValue::from_str(
                    &(Utc::now() + chrono::Duration::seconds(1))
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string(),
                )
                .unwrap_or(HeaderValue::from_static("1")),
            };
            r.headers_mut().insert(header::RETRY_AFTER, after);
            return r;
        }
        Some(status) => return error(status, "UNAVAILABLE", "服务暂不可用"),
        None => {}
    }

    let total = s.sim.len(sys);
    let sim = s.sim.clone();
    let shape = match listing {
        Listing::Native(q) => native_shape(&sim, sys, &id, &q),
        Listing::Dialect(dialect, q) => Ok(dialect_shape(&id, total, dialect, &q)),
    };
    let Shape {
        range,
        mut envelope,
        items_at,
        link,
    } = match shape {
        Ok(shape) => shape,
        Err((status, code, message)) => return error(status, code, message),
    };

    let records = match tokio::task::spawn_blocking(move || sim.records(sys, range)).await {
        Ok(r) => r,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "内部错误"),
    };

    // Faults that change a successful body.
    let (truncate, mut items) = if stalled {
        // The client may have given up: nothing may depend on whether it waited.
        (false, records)
    } else {
        let Ok(mut m) = s.faults.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "内部错误");
        };
        let st = m.entry(id.clone()).or_default();
        let mut items: Vec<Record> = Vec::new();
        if st.faults.repeat_pages > 0 && !st.previous.is_empty() {
            st.faults.repeat_pages -= 1;
            items.extend(st.previous.iter().cloned());
        }
        st.previous = records.clone();
        items.extend(records);
        for r in &mut items {
            if st.faults.malformed_rows == 0 {
                break;
            }
            st.faults.malformed_rows -= 1;
            r.make_malformed(profile);
        }
        let truncate = st.faults.truncate_pages > 0;
        if truncate {
            st.faults.truncate_pages -= 1;
        }
        (truncate, std::mem::take(&mut items))
    };
    let json_items: Vec<serde_json::Value> = items.drain(..).map(|r| r.to_json(profile)).collect();
    match envelope.pointer_mut(items_at) {
        Some(slot) => *slot = serde_json::Value::Array(json_items),
        None => {
            if let Some(o) = envelope.as_object_mut() {
                o.insert("items".into(), serde_json::Value::Array(json_items));
            }
        }
    }
    let mut body = serde_json::to_vec(&envelope).unwrap_or_default();
    if truncate {
        body.truncate(body.len() / 2);
    }
    let mut response = (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// Why a listing request is refused: its status, code and message (see [`error`]).
type Refusal = (StatusCode, &'static str, &'static str);

/// The range and envelope of a native listing.
fn native_shape(sim: &Simulator, sys: usize, id: &str, q: &ListQuery) -> Result<Shape, Refusal> {
    let total = sim.len(sys);
    let (range, envelope) = if let Some(since) = &q.updated_since {
        let Ok(t) = DateTime::parse_from_rfc3339(since) else {
            return Err((
                StatusCode::BAD_REQUEST,
                "BAD_UPDATED_SINCE",
                "updated_since 须为 RFC 3339 时间",
            ));
        };
        let t: DateTime<Utc> = t.into();
        let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let start = sim.first_updated_after(sys, t);
        let end = (start + limit).min(total);
        let next = if end > start {
            rfc3339(sim.updated_at(sys, end - 1))
        } else {
            since.clone()
        };
        (
            start..end,
            serde_json::json!({ "has_more": end < total, "next_updated_since": next }),
        )
    } else if q.cursor.is_some() || (q.limit.is_some() && q.page.is_none() && q.offset.is_none()) {
        let start = match q.cursor.as_deref() {
            None | Some("") => 0,
            Some(c) => match cursor_pos(id, c) {
                Some(p) if p <= total => p,
                _ => return Err((StatusCode::BAD_REQUEST, "BAD_CURSOR", "游标无效")),
            },
        };
        let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let end = (start + limit).min(total);
        let next = (end < total).then(|| cursor_token(id, end));
        (start..end, serde_json::json!({ "next_cursor": next }))
    } else {
        let size = q
            .page_size
            .or(q.limit)
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE);
        let start = match (q.offset, q.page) {
            (Some(o), _) => o,
            (None, Some(0)) => {
                return Err((StatusCode::BAD_REQUEST, "BAD_PAGE", "页码从 1 开始"));
            }
            (None, p) => (p.unwrap_or(1) - 1) * size,
        }
        .min(total);
        let end = (start + size).min(total);
        (
            start..end,
            serde_json::json!({
                "page": start / size + 1,
                "page_size": size,
                "total": total,
                "total_pages": total.div_ceil(size),
            }),
        )
    };
    Ok(Shape {
        range,
        envelope,
        items_at: "/items",
        link: None,
    })
}

/// The range, envelope and `Link` header of a dialect's listing of `total` records.
fn dialect_shape(id: &str, total: usize, dialect: Dialect, q: &DialectQuery) -> Shape {
    let size = |asked: Option<usize>| asked.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    // (first record, page size) of a page numbered from `first`.
    let paged = |page: Option<usize>, first: usize, asked: Option<usize>| {
        let size = size(asked);
        (
            page.unwrap_or(first)
                .saturating_sub(first)
                .saturating_mul(size)
                .min(total),
            size,
        )
    };
    let (start, size) = match dialect {
        Dialect::PageNoSize => paged(q.page_no, 1, q.size),
        Dialect::Current => paged(q.current, 1, q.size),
        Dialect::HasMore => paged(q.page_num, 0, q.page_size),
        Dialect::Offset => (q.start.unwrap_or(0).min(total), size(q.rows)),
        Dialect::Link => paged(q.page, 1, q.per_page),
    };
    let end = (start + size).min(total);
    let page = start / size;
    let (envelope, items_at) = match dialect {
        Dialect::PageNoSize => (
            serde_json::json!({ "code": 0, "msg": "成功",
                "data": { "pageNo": page + 1, "size": size, "total": total, "list": [] } }),
            "/data/list",
        ),
        Dialect::Current => (
            serde_json::json!({ "code": 200, "msg": "操作成功", "data": {
                "current": page + 1, "size": size, "total": total,
                "pages": total.div_ceil(size), "records": [] } }),
            "/data/records",
        ),
        Dialect::HasMore => (
            serde_json::json!({ "success": true,
                "result": { "pageNum": page, "hasMore": end < total, "rows": [] } }),
            "/result/rows",
        ),
        Dialect::Offset => (
            serde_json::json!({ "numFound": total, "start": start, "docs": [] }),
            "/docs",
        ),
        Dialect::Link => (serde_json::json!([]), ""),
    };
    let link = (dialect == Dialect::Link).then(|| {
        let at = |n: usize| format!("</systems/{id}/api/link?page={n}&per_page={size}>");
        let last = total.div_ceil(size).max(1);
        let mut links = vec![format!("{}; rel=\"first\"", at(1))];
        if end < total {
            links.push(format!("{}; rel=\"next\"", at(page + 2)));
        }
        links.push(format!("{}; rel=\"last\"", at(last)));
        links.join(", ")
    });
    Shape {
        range: start..end,
        envelope,
        items_at,
        link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::divisions::Level;
    use crate::{Size, World};
    use serde_json::Value;

    struct Api {
        base: String,
        http: reqwest::Client,
        sim: Arc<Simulator>,
    }

    impl Api {
        async fn start() -> Api {
            let sim = Arc::new(Simulator::new(World::new(9, Size::Tiny)));
            let (addr, _task) = spawn(sim.clone(), "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            Api {
                base: format!("http://{addr}"),
                http: reqwest::Client::new(),
                sim,
            }
        }

        fn system(&self, pred: impl Fn(&crate::SystemProfile) -> bool) -> crate::SystemProfile {
            self.sim.systems().iter().find(|p| pred(p)).unwrap().clone()
        }

        async fn get(&self, p: &crate::SystemProfile, query: &str) -> reqwest::Response {
            self.http
                .get(format!("{}/systems/{}/records?{query}", self.base, p.id))
                .bearer_auth(&p.token)
                .send()
                .await
                .unwrap()
        }

        async fn json(&self, p: &crate::SystemProfile, query: &str) -> Value {
            let r = self.get(p, query).await;
            assert_eq!(r.status(), 200, "{query}");
            r.json().await.unwrap()
        }

        async fn faults(&self, p: &crate::SystemProfile, f: Value) {
            let r = self
                .http
                .post(format!("{}/systems/{}/faults", self.base, p.id))
                .json(&f)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }

        fn expected(&self, p: &crate::SystemProfile) -> Vec<String> {
            let (i, _) = self.sim.system(&p.id).unwrap();
            let mut ids = Vec::new();
            self.sim.for_each_record(i, |r| ids.push(r.id));
            ids
        }
    }

    fn ids(page: &Value, p: &crate::SystemProfile) -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[&p.id_field].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn three_pagination_styles_serve_exactly_the_ground_truth() {
        let api = Api::start().await;
        let list: Value = api
            .http
            .get(format!("{}/systems", api.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list.as_array().unwrap().len(), api.sim.systems().len());
        assert!(list[0]["token"].as_str().unwrap().starts_with("sim_"));

        // Page/offset.
        let p = api.system(|p| p.level == Level::Province && p.domain == crate::Domain::Vehicle);
        let (mut got, mut page) = (Vec::new(), 1);
        loop {
            let v = api.json(&p, &format!("page={page}&page_size=7")).await;
            got.extend(ids(&v, &p));
            if page >= v["total_pages"].as_u64().unwrap() as usize {
                break;
            }
            page += 1;
        }
        assert_eq!(got, api.expected(&p));

        // Cursor.
        let mut got = Vec::new();
        let mut cursor = String::new();
        loop {
            let v = api.json(&p, &format!("cursor={cursor}&limit=9")).await;
            got.extend(ids(&v, &p));
            match v["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        assert_eq!(got, api.expected(&p));

        // updated_since.
        let mut got = Vec::new();
        let mut since = "2025-01-01T00:00:00Z".to_string();
        loop {
            let v = api
                .json(&p, &format!("updated_since={since}&limit=8"))
                .await;
            got.extend(ids(&v, &p));
            since = v["next_updated_since"].as_str().unwrap().to_string();
            if !v["has_more"].as_bool().unwrap() {
                break;
            }
        }
        assert_eq!(got, api.expected(&p));
        assert_eq!(
            api.json(&p, &format!("updated_since={since}")).await["items"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
    }

    /// Every dialect, walked as its documentation says, serves exactly the ground truth; the
    /// token is taken in `X-Api-Key`.
    #[tokio::test]
    async fn dialects_serve_exactly_the_ground_truth() {
        let api = Api::start().await;
        let p = api.system(|p| p.level == Level::Province && p.domain == crate::Domain::Vehicle);
        let want = api.expected(&p);
        let items = |v: &Value, at: &str| -> Vec<String> {
            v.pointer(at)
                .and_then(Value::as_array)
                .unwrap()
                .iter()
                .map(|r| r[&p.id_field].as_str().unwrap().to_string())
                .collect()
        };
        for dialect in Dialect::ALL {
            let mut got = Vec::new();
            let mut query = match dialect {
                Dialect::PageNoSize => "pageNo=1&size=7".to_owned(),
                Dialect::Current => "current=1&size=7".to_owned(),
                Dialect::HasMore => "pageNum=0&pageSize=7".to_owned(),
                Dialect::Offset => "start=0&rows=7".to_owned(),
                Dialect::Link => "per_page=7".to_owned(),
            };
            let mut path = format!("/systems/{}/api/{}", p.id, dialect.path());
            for n in 1.. {
                let r = api
                    .http
                    .get(format!("{}{path}?{query}", api.base))
                    .header("X-Api-Key", &p.token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{dialect:?} {query}");
                let link = r
                    .headers()
                    .get("link")
                    .map(|l| l.to_str().unwrap().to_owned());
                let v: Value = r.json().await.unwrap();
                let more = match dialect {
                    Dialect::PageNoSize => {
                        got.extend(items(&v, "/data/list"));
                        query = format!("pageNo={}&size=7", n + 1);
                        got.len() < v["data"]["total"].as_u64().unwrap() as usize
                    }
                    Dialect::Current => {
                        got.extend(items(&v, "/data/records"));
                        query = format!("current={}&size=7", n + 1);
                        n < v["data"]["pages"].as_u64().unwrap()
                    }
                    Dialect::HasMore => {
                        got.extend(items(&v, "/result/rows"));
                        query = format!("pageNum={n}&pageSize=7");
                        v["result"]["hasMore"].as_bool().unwrap()
                    }
                    Dialect::Offset => {
                        got.extend(items(&v, "/docs"));
                        query = format!("start={}&rows=7", got.len());
                        got.len() < v["numFound"].as_u64().unwrap() as usize
                    }
                    Dialect::Link => {
                        got.extend(items(&v, ""));
                        let link = link.expect("a Link header");
                        assert!(link.contains("rel=\"last\""), "{link}");
                        match link.split(", ").find(|l| l.ends_with("rel=\"next\"")) {
                            Some(next) => {
                                let target = &next[1..next.find('>').unwrap()];
                                let (p, q) = target.split_once('?').unwrap();
                                (path, query) = (p.to_owned(), q.to_owned());
                                true
                            }
                            None => false,
                        }
                    }
                };
                if !more {
                    break;
                }
            }
            assert_eq!(got, want, "{dialect:?}");
        }
        let native = api
            .http
            .get(format!("{}/systems/{}/records", api.base, p.id))
            .header("X-Api-Key", &p.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            native.status(),
            401,
            "native listings take bearer tokens only"
        );
        api.faults(&p, serde_json::json!({ "rate_429_every": 1 }))
            .await;
        let limited = api
            .http
            .get(format!("{}/systems/{}/api/offset", api.base, p.id))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        let after = limited.headers()["retry-after"].to_str().unwrap();
        assert!(
            DateTime::parse_from_rfc2822(&after.replace("GMT", "+0000")).is_ok(),
            "an HTTP date: {after}"
        );
    }

    #[tokio::test]
    async fn auth_and_errors() {
        let api = Api::start().await;
        let p = api.system(|p| p.level == Level::County);
        let url = format!("{}/systems/{}/records", api.base, p.id);
        assert_eq!(api.http.get(&url).send().await.unwrap().status(), 401);
        assert_eq!(
            api.http
                .get(&url)
                .bearer_auth("sim_wrong")
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        let other = api.system(|q| q.id != p.id);
        assert_eq!(
            api.http
                .get(&url)
                .bearer_auth(&other.token)
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        assert_eq!(api.get(&p, "cursor=zzz").await.status(), 400);
        assert_eq!(api.get(&p, "updated_since=yesterday").await.status(), 400);
        let r = api
            .http
            .get(format!("{}/systems/nope/records", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = api
            .http
            .post(format!("{}/systems/{}/faults", api.base, p.id))
            .body(r#"{"latency":1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "unknown fault fields are rejected");
    }

    #[tokio::test]
    async fn faults_are_deterministic() {
        let api = Api::start().await;
        let p =
            api.system(|p| p.level == Level::Province && p.domain == crate::Domain::Institution);

        api.faults(
            &p,
            serde_json::json!({ "rate_429_every": 3, "error_5xx_rate": 0.5 }),
        )
        .await;
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let r = api.get(&p, "page=1&page_size=5").await;
            if r.status() == 429 {
                assert_eq!(r.headers()["retry-after"], "1");
            }
            statuses.push(r.status().as_u16());
        }
        // n = 1..6: 429 on 3 and 6; 503 on the even ones that are not 429.
        assert_eq!(statuses, [200, 503, 429, 503, 200, 429]);

        api.faults(&p, serde_json::json!({ "truncate_pages": 1 }))
            .await;
        let body = api
            .get(&p, "page=1&page_size=5")
            .await
            .bytes()
            .await
            .unwrap();
        assert!(
            serde_json::from_slice::<Value>(&body).is_err(),
            "truncated body must not parse"
        );
        assert_eq!(
            ids(&api.json(&p, "page=1&page_size=5").await, &p),
            api.expected(&p)[..5]
        );

        api.faults(
            &p,
            serde_json::json!({ "repeat_pages": 1, "malformed_rows": 2 }),
        )
        .await;
        let first = api.json(&p, "page=1&page_size=5").await;
        let second = api.json(&p, "page=2&page_size=5").await;
        let want = api.expected(&p);
        assert_eq!(ids(&first, &p), want[..5]);
        assert_eq!(
            ids(&second, &p),
            [&want[..5], &want[5..10]].concat(),
            "page 1 repeated before page 2"
        );
        let malformed = first["items"].as_array().unwrap()[..2].iter().all(|r| {
            r.as_object()
                .unwrap()
                .values()
                .any(|v| v == "N/A" || v == "2025-13-45")
        });
        assert!(malformed);

        // Stalls: every 2nd request waits; a client with a shorter timeout gives up on it
        // (request 1 is cut in half, 2 times out, 3 is whole).
        api.faults(
            &p,
            serde_json::json!({ "stall_every": 2, "stall_ms": 400, "truncate_pages": 1 }),
        )
        .await;
        let impatient = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(200))
            .build()
            .unwrap();
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let sent = impatient
                .get(format!(
                    "{}/systems/{}/records?page=1&page_size=5",
                    api.base, p.id
                ))
                .bearer_auth(&p.token)
                .send()
                .await;
            outcomes.push(match sent {
                Ok(r) => Ok(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_ok()),
                Err(e) => Err(e.is_timeout()),
            });
        }
        assert_eq!(outcomes, [Ok(false), Err(true), Ok(true)]);
        let status: FaultStatus = api
            .http
            .get(format!("{}/systems/{}/faults", api.base, p.id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                status.requests,
                status.stalled,
                status.faults.truncate_pages
            ),
            (3, 1, 0)
        );
        api.faults(
            &p,
            serde_json::json!({ "stall_every": 1, "stall_ms": 50, "truncate_pages": 1 }),
        )
        .await;
        assert_eq!(
            ids(&api.json(&p, "page=1&page_size=5").await, &p),
            want[..5],
            "a stalled answer carries no other fault"
        );

        let r = api
            .http
            .delete(format!("{}/systems/{}/faults", api.base, p.id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let truth: Value = api
            .http
            .get(format!("{}/ground-truth", api.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sys = truth["systems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == p.id.as_str())
            .unwrap();
        assert_eq!(sys["record_ids"].as_array().unwrap().len(), want.len());
    }
}
