//! `http_poll`: a paginated JSON API of a regional system (page/offset, cursor token or
//! `updated_since`). Each page is committed with the position after it. A record is known by
//! its id and version ([`crate::mapping::identity`]): one the page before already held (a page
//! the server repeats) or the page holds twice is skipped and counted; the same id with
//! another version (a revised report) is written. 5xx answers, timeouts and unreadable bodies
//! are retried with exponential backoff and jitter; `429` and `503` wait as `Retry-After` says
//! (seconds or an HTTP date), never longer than `limits.max_retry_wait`; requests are spaced
//! to a per-instance rate.
//!
//! What a server cannot make the connector do: follow a position it led to before in the
//! same pass through the listing (a cursor cycle fails the poll with `cursor_cycle`, nothing of
//! that page written — the trail of positions is committed, so a restart finds the cycle
//! too); follow a redirect to another origin (`redirect_refused`, unless
//! `allow_cross_origin_redirects`); send a body over `limits.max_body_bytes` (read in chunks
//! and abandoned at the limit: `page_too_large`) or more than `limits.max_items` items
//! (`page_too_many_items`); pass off a page whose items field is not a list as empty
//! (`page_invalid`). A TLS failure (a refused client certificate, an untrusted server) fails
//! the poll at once. Systems that want mTLS get `client_identity`, and `server_ca` trusts
//! their own CA.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::instance::{Batch, Committer, Context, InstanceError};
use crate::limits::Limits;
use crate::mapping::SourceFields;

/// Settings of an `http_poll` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPollConfig {
    /// The listing endpoint, e.g. `https://ywpt.example.gov.cn/api/vehicles`.
    pub url: String,
    /// Bearer token sent in `Authorization`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// PEM file with the client certificate (and its chain) and its private key, for systems
    /// that want mTLS.
    #[serde(default)]
    pub client_identity: Option<std::path::PathBuf>,
    /// PEM bundle of the CA(s) the system's server certificate must chain to, e.g. a provincial
    /// e-government CA. When set, only these are trusted (not the public web's roots).
    #[serde(default)]
    pub server_ca: Option<std::path::PathBuf>,
    /// How the API pages.
    pub pagination: Pagination,
    /// The field of a page holding the array of records.
    #[serde(default = "default_items_field")]
    pub items_field: String,
    /// Timeout of one request.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Attempts per page before the poll fails (the instance then restarts with backoff).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Requests per second at most.
    #[serde(default = "default_rate")]
    pub requests_per_second: f64,
    /// Follow redirects to another origin (scheme, host, port). Off: such a redirect fails the
    /// poll, so a compromised or misconfigured system cannot send the connector, with its
    /// token, elsewhere.
    #[serde(default)]
    pub allow_cross_origin_redirects: bool,
}

fn default_items_field() -> String {
    "items".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_attempts() -> u32 {
    8
}

fn default_rate() -> f64 {
    20.0
}

/// Pagination styles.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// `?page=N&page_size=M`, pages counted from 1, the page says how many there are.
    Page {
        /// Records per page.
        page_size: usize,
        /// Field of the response with the number of pages.
        #[serde(default = "default_total_pages")]
        total_pages_field: String,
    },
    /// `?cursor=T&limit=M`; the response gives the next cursor, null at the end.
    Cursor {
        /// Records per page.
        limit: usize,
        /// Field of the response with the next cursor.
        #[serde(default = "default_next_cursor")]
        next_field: String,
    },
    /// `?updated_since=T&limit=M`: records changed strictly after `T`, oldest first.
    UpdatedSince {
        /// Records per page.
        limit: usize,
        /// Field of the response with the next watermark.
        #[serde(default = "default_next_since")]
        next_field: String,
        /// Field of the response telling whether more records follow.
        #[serde(default = "default_has_more")]
        has_more_field: String,
        /// The watermark of the very first poll (RFC 3339).
        #[serde(default = "default_since")]
        initial: String,
    },
}

fn default_total_pages() -> String {
    "total_pages".to_owned()
}
fn default_next_cursor() -> String {
    "next_cursor".to_owned()
}
fn default_next_since() -> String {
    "next_updated_since".to_owned()
}
fn default_has_more() -> String {
    "has_more".to_owned()
}
fn default_since() -> String {
    "1970-01-01T00:00:00Z".to_owned()
}

/// An `http_poll` instance's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPollProgress {
    /// The page to ask for next: a page number, a cursor, or a watermark; none at the start.
    #[serde(default)]
    pub position: Option<String>,
    /// Records of that page already committed (a last page that may still grow).
    #[serde(default)]
    pub consumed: usize,
    /// Identities of the records of the last committed page (its last [`LAST_PAGE`]): a
    /// server repeating it is recognised.
    #[serde(default, with = "hashes")]
    pub last_page: Vec<u64>,
    /// Hashes of the positions read since the listing last reached its end: a page leading
    /// back to one of them is a cycle. The newest [`TRAIL`] are kept.
    #[serde(default, with = "hashes")]
    pub trail: Vec<u64>,
}

/// How many positions of one pass through a listing the progress remembers.
const TRAIL: usize = 10_000;

/// The longest position (cursor, watermark) a server may hand out: it is committed in the
/// progress and written into every record's provenance.
const MAX_POSITION: usize = 4096;

/// Pages one poll reads at most; the next poll goes on from there. A server whose listing never
/// ends cannot keep an instance from being paused, stopped or restarted.
const MAX_PAGES: usize = 10_000;

/// How many record identities of the last page the progress remembers: with [`TRAIL`], the
/// progress record stays under 300 KiB, far below Kafka's 1 MiB message size. A repeated page
/// longer than this is partly written again — duplicates the hub counts as unchanged, never a
/// loss.
const LAST_PAGE: usize = 16_384;

/// A list of 64-bit hashes stored compactly, as base64 of their little-endian bytes: a
/// progress record must stay far below Kafka's message size however large the page.
mod hashes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(hashes: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.to_le_bytes()).collect();
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// The 64-bit hash of a position.
fn position_hash(position: &str) -> u64 {
    use sha2::{Digest as _, Sha256};
    crate::digest::short(&Sha256::digest(position.as_bytes()))
}

/// Where a page leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    /// The position to commit with the page: the next page's, or this one's at the end.
    pub progress_position: Option<String>,
    /// Whether this page ends the listing for now.
    pub at_end: bool,
}

/// A page's items and where it leads: the page as the poll reads it, after the checks no
/// server can talk its way past (a list of items, at most `limits.max_items`). Pure.
pub fn page_items<'p>(
    page: &'p Value,
    source: &HttpPollConfig,
    position: Option<&str>,
    limits: &Limits,
) -> Result<(&'p [Value], Next), InstanceError> {
    let items = items(page, &source.items_field, limits.max_items)?;
    let next = next(&source.pagination, position, page, items.len())
        .map_err(InstanceError::SourceSystem)?;
    if let Some(position) = &next.progress_position
        && position.len() > MAX_POSITION
    {
        return Err(InstanceError::Refused {
            code: "cursor_too_long",
            message: format!(
                "分页位置长 {} 字节，超过上限 {MAX_POSITION} (the next position is {} bytes long, \
                 over {MAX_POSITION})",
                position.len(),
                position.len()
            ),
        });
    }
    Ok((items, next))
}

/// The query of the page at `position`.
fn query(pagination: &Pagination, position: Option<&str>) -> Vec<(String, String)> {
    match pagination {
        Pagination::Page { page_size, .. } => vec![
            ("page".into(), position.unwrap_or("1").to_owned()),
            ("page_size".into(), page_size.to_string()),
        ],
        Pagination::Cursor { limit, .. } => {
            let mut q = vec![("limit".into(), limit.to_string())];
            if let Some(cursor) = position {
                q.push(("cursor".into(), cursor.to_owned()));
            }
            q
        }
        Pagination::UpdatedSince { limit, initial, .. } => vec![
            (
                "updated_since".into(),
                position.unwrap_or(initial).to_owned(),
            ),
            ("limit".into(), limit.to_string()),
        ],
    }
}

/// Where the page read at `position`, holding `items` items, leads, from the response body.
/// A numbered page that is empty ends the listing whatever its total says, so a server
/// claiming a vast number of pages cannot keep the connector asking.
fn next(
    pagination: &Pagination,
    position: Option<&str>,
    body: &Value,
    items: usize,
) -> Result<Next, String> {
    match pagination {
        Pagination::Page {
            total_pages_field, ..
        } => {
            let page: u64 = position
                .unwrap_or("1")
                .parse()
                .map_err(|_| "bad page".to_owned())?;
            let total = body[total_pages_field]
                .as_u64()
                .ok_or_else(|| format!("no `{total_pages_field}` in the page"))?;
            Ok(if page < total && items > 0 {
                Next {
                    progress_position: Some((page + 1).to_string()),
                    at_end: false,
                }
            } else {
                Next {
                    progress_position: Some(page.to_string()),
                    at_end: true,
                }
            })
        }
        Pagination::Cursor { next_field, .. } => Ok(match body[next_field].as_str() {
            Some(cursor) => Next {
                progress_position: Some(cursor.to_owned()),
                at_end: false,
            },
            None => Next {
                progress_position: position.map(str::to_owned),
                at_end: true,
            },
        }),
        Pagination::UpdatedSince {
            next_field,
            has_more_field,
            ..
        } => Ok(Next {
            progress_position: body[next_field]
                .as_str()
                .map(str::to_owned)
                .or_else(|| position.map(str::to_owned)),
            at_end: !body[has_more_field].as_bool().unwrap_or(false),
        }),
    }
}

/// A record of the API as source fields: top-level values as text (numbers and booleans
/// written as JSON writes them; nulls left out).
pub fn fields(item: &Value) -> Option<SourceFields> {
    Some(
        item.as_object()?
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Null => None,
                Value::String(s) => Some((k.clone(), s.clone())),
                other => Some((k.clone(), other.to_string())),
            })
            .collect(),
    )
}

/// The HTTP client of one poll, with its retry and rate-limit state.
struct Client<'a> {
    http: reqwest::Client,
    config: &'a HttpPollConfig,
    limits: &'a Limits,
    runtime: &'a tokio::runtime::Handle,
    last_request: Option<Instant>,
    stop: &'a AtomicBool,
}

/// Sleeps `duration` in short steps; false if `stop` was set meanwhile.
fn pause(stop: &AtomicBool, duration: Duration) -> bool {
    let until = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The wait a `Retry-After` header asks for at `now`: delay-seconds or an HTTP date
/// (RFC 9110 §10.2.3); `None` when absent or unreadable.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// A response body, read no further than the limit.
enum Body {
    /// The whole body.
    Read(Vec<u8>),
    /// The body was larger than the limit (its length, if the server declared it).
    TooLarge(Option<u64>),
}

/// The start of a response body, for an error message.
fn excerpt(body: &[u8]) -> String {
    crate::instance::cut(String::from_utf8_lossy(body).into_owned(), 300)
}

impl Client<'_> {
    /// Fetches and parses one page, retrying what is worth retrying.
    fn page(&mut self, query: &[(String, String)]) -> Result<Value, InstanceError> {
        let max_wait = self.limits.max_retry_wait;
        let max_body = self.limits.max_body_bytes;
        let mut backoff = Duration::from_millis(200).min(max_wait);
        let mut last_error = String::new();
        for attempt in 1..=self.config.max_attempts {
            if let Some(last) = self.last_request {
                let spacing =
                    Duration::from_secs_f64(1.0 / self.config.requests_per_second.max(0.001));
                std::thread::sleep(spacing.saturating_sub(last.elapsed()).min(max_wait));
            }
            self.last_request = Some(Instant::now());
            let mut request = self.http.get(&self.config.url).query(query);
            if let Some(token) = &self.config.bearer_token {
                request = request.bearer_auth(token);
            }
            let outcome = self.runtime.block_on(async {
                let mut response = request.send().await?;
                let status = response.status();
                let wait = retry_after(response.headers(), SystemTime::now());
                if let Some(length) = response.content_length()
                    && length > max_body as u64
                {
                    return Ok((status, wait, Body::TooLarge(Some(length))));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > max_body {
                        return Ok((status, wait, Body::TooLarge(None)));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok::<_, reqwest::Error>((status, wait, Body::Read(body)))
            });
            let wait = match outcome {
                Ok((status, _, Body::TooLarge(length))) if status.is_success() => {
                    return Err(InstanceError::Refused {
                        code: "page_too_large",
                        message: format!(
                            "页面超过 {max_body} 字节上限 (the page is larger than \
                             limits.max_body_bytes = {max_body}{})",
                            length.map_or(String::new(), |l| format!("; it declares {l}"))
                        ),
                    });
                }
                Ok((status, _, Body::Read(body))) if status.is_success() => {
                    match serde_json::from_slice::<Value>(&body) {
                        Ok(page) => return Ok(page),
                        Err(e) => {
                            last_error = format!("unreadable page (HTTP 200): {e}");
                            backoff
                        }
                    }
                }
                Ok((
                    status @ (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE),
                    asked,
                    _,
                )) => {
                    last_error = format!("HTTP {status}");
                    match asked {
                        Some(asked) if asked > max_wait => {
                            tracing::warn!(url = %self.config.url, asked_seconds = asked.as_secs(),
                                waiting_seconds = max_wait.as_secs(),
                                "Retry-After is longer than limits.max_retry_wait; waiting that long");
                            max_wait
                        }
                        Some(asked) => asked,
                        None => backoff,
                    }
                }
                Ok((status, _, body)) if status.is_server_error() => {
                    last_error = match body {
                        Body::Read(body) => format!("HTTP {status}: {}", excerpt(&body)),
                        Body::TooLarge(_) => format!("HTTP {status}"),
                    };
                    backoff
                }
                Ok((status, _, body)) => {
                    let text = match body {
                        Body::Read(body) => excerpt(&body),
                        Body::TooLarge(_) => String::new(),
                    };
                    return Err(InstanceError::SourceSystem(format!(
                        "HTTP {status}: {text}"
                    )));
                }
                Err(e) if e.is_redirect() => {
                    return Err(InstanceError::Refused {
                        code: "redirect_refused",
                        message: format!("拒绝跟随重定向 (redirect not followed): {}", chain(&e)),
                    });
                }
                Err(e) => {
                    if let Some(tls) = tls_failure(&e) {
                        // A refused or unverifiable certificate stays so on the next attempt:
                        // fail now, and the runtime's restart backoff paces further tries.
                        return Err(InstanceError::SourceSystem(format!(
                            "TLS with {} failed (not retried): {tls}{}",
                            self.config.url,
                            tls_hint(tls)
                        )));
                    }
                    last_error = chain(&e);
                    backoff
                }
            };
            tracing::warn!(url = %self.config.url, attempt, error = %last_error, "page failed; retrying");
            let jitter = rand::rng().random_range(0..=wait.as_millis().min(60_000) as u64 / 2);
            let wait = wait
                .saturating_add(Duration::from_millis(jitter))
                .min(max_wait);
            if !pause(self.stop, wait) {
                return Err(InstanceError::SourceSystem(
                    "stopping: the page was not fetched".to_owned(),
                ));
            }
            backoff = backoff
                .saturating_mul(2)
                .min(Duration::from_secs(30))
                .min(max_wait);
        }
        Err(InstanceError::SourceSystem(format!(
            "{} attempts failed, last: {last_error}",
            self.config.max_attempts
        )))
    }
}

/// An error and its causes, outermost first. An `io::Error`'s `source()` skips the error it
/// wraps (where rustls puts its own), so that one is opened with `get_ref()`.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| {
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        }
    })
}

/// An error and its causes, `: `-separated (reqwest's own message leaves the causes out, and
/// they are what an operator needs: refused, timed out, which TLS alert).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut texts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string();
        // An `io::Error` shows the text of the error it wraps.
        if texts.last() != Some(&text) {
            texts.push(text);
        }
    }
    texts.join(": ")
}

/// The rustls error behind a failed request, if TLS is what failed.
fn tls_failure<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    causes(error).find_map(|e| e.downcast_ref::<rustls::Error>())
}

/// What an operator most likely has to change for a TLS failure.
fn tls_hint(error: &rustls::Error) -> &'static str {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::AlertReceived(
            Alert::CertificateRequired | Alert::BadCertificate | Alert::UnknownCA,
        )
        | rustls::Error::NoCertificatesPresented => {
            " (the system wants a client certificate it trusts: check client_identity)"
        }
        rustls::Error::InvalidCertificate(_) => {
            " (the system's certificate is not trusted: check server_ca)"
        }
        _ => "",
    }
}

/// The redirect policy: same origin only, unless the configuration allows others.
fn redirects(source: &HttpPollConfig) -> Result<reqwest::redirect::Policy, InstanceError> {
    let url = reqwest::Url::parse(&source.url)
        .map_err(|e| InstanceError::SourceSystem(format!("url `{}`: {e}", source.url)))?;
    let origin = url.origin();
    let anywhere = source.allow_cross_origin_redirects;
    Ok(reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            attempt.error("more than 10 redirects")
        } else if anywhere || attempt.url().origin() == origin {
            attempt.follow()
        } else {
            let to = attempt.url().origin().ascii_serialization();
            attempt.error(format!(
                "to another origin ({to}); set allow_cross_origin_redirects to follow it"
            ))
        }
    }))
}

/// Reads every page the API has past the committed position, committing each page with the
/// position after it.
pub(crate) fn poll(
    context: &Context<'_>,
    source: &HttpPollConfig,
    runtime: &tokio::runtime::Handle,
    committer: &mut Committer<'_, '_>,
) -> Result<(), InstanceError> {
    let mut builder = reqwest::Client::builder()
        .timeout(source.timeout)
        .redirect(redirects(source)?);
    let unusable = |what: &str, path: &std::path::Path, e: reqwest::Error| {
        InstanceError::SourceSystem(format!("{what} {}: {}", path.display(), chain(&e)))
    };
    if let Some(path) = &source.client_identity {
        let pem = std::fs::read(path)?;
        let identity =
            reqwest::Identity::from_pem(&pem).map_err(|e| unusable("client_identity", path, e))?;
        builder = builder.identity(identity);
    }
    if let Some(path) = &source.server_ca {
        let pem = std::fs::read(path)?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| unusable("server_ca", path, e))?;
        builder = builder.tls_certs_only(roots);
    }
    let mut client = Client {
        http: builder
            .build()
            .map_err(|e| InstanceError::SourceSystem(format!("HTTP client: {e}")))?,
        config: source,
        limits: context.limits,
        runtime,
        last_request: None,
        stop: context.stop,
    };
    for _ in 0..MAX_PAGES {
        if context.stop.load(Ordering::Acquire) {
            // Every page so far is committed: the next start goes on from there.
            return Ok(());
        }
        let committed: HttpPollProgress = committer.progress()?;
        // A numbered listing starts at page 1: naming it so makes a one-page listing's
        // end (page 1 again) the position it started from, so it is not read again whole.
        let position = committed.position.as_deref().or(match source.pagination {
            Pagination::Page { .. } => Some("1"),
            _ => None,
        });
        let page = client.page(&query(&source.pagination, position))?;
        let (items, next) = page_items(&page, source, position, context.limits)?;
        let trail = trail(&committed, position, &next)?;

        let last_page: HashSet<u64> = committed.last_page.iter().copied().collect();
        let mut seen = HashSet::with_capacity(items.len());
        let mut identities = Vec::with_capacity(items.len());
        let mut batch = Batch::of(Vec::with_capacity(items.len()));
        for (index, item) in items.iter().enumerate().skip(committed.consumed) {
            batch.read += 1;
            let location = format!("{}#{}", position.unwrap_or("start"), index + 1);
            let Some(fields) = fields(item) else {
                batch.out.push(context.quarantine_record(
                    "item_not_object",
                    None,
                    "记录不是 JSON 对象 (the item is not a JSON object)".to_owned(),
                    None,
                    location,
                    serde_json::to_vec(item).ok(),
                )?);
                continue;
            };
            if let Some(identity) = crate::mapping::identity(&context.config.mapping, &fields) {
                if last_page.contains(&identity) || !seen.insert(identity) {
                    // This very report was committed with the page before, or just above.
                    batch.skipped += 1;
                    continue;
                }
                identities.push(identity);
            }
            batch
                .out
                .push(context.map_row(&fields, position.unwrap_or("start"), location)?);
        }
        let progress = HttpPollProgress {
            consumed: if next.at_end && next.progress_position.as_deref() == position {
                items.len()
            } else {
                0
            },
            position: next.progress_position,
            last_page: if identities.is_empty() {
                committed.last_page.clone()
            } else {
                identities.split_off(identities.len().saturating_sub(LAST_PAGE))
            },
            trail,
        };
        if batch.read == 0 && progress == committed {
            return Ok(());
        }
        committer.commit(context, batch, &progress)?;
        if next.at_end {
            return Ok(());
        }
    }
    tracing::info!(instance = %context.config.id, pages = MAX_PAGES, "page limit of one poll reached; the next poll goes on");
    Ok(())
}

/// The items of a page: the list in `field`, of at most `max` items.
fn items<'p>(page: &'p Value, field: &str, max: usize) -> Result<&'p [Value], InstanceError> {
    let kind = match page.get(field) {
        Some(Value::Array(items)) if items.len() > max => {
            return Err(InstanceError::Refused {
                code: "page_too_many_items",
                message: format!(
                    "页面有 {} 条记录，超过上限 {max} (the page has {} items, over \
                     limits.max_items = {max})",
                    items.len(),
                    items.len()
                ),
            });
        }
        Some(Value::Array(items)) => return Ok(items),
        Some(Value::Null) => "null",
        Some(Value::Object(_)) => "an object",
        Some(Value::String(_)) => "a string",
        Some(Value::Number(_)) => "a number",
        Some(Value::Bool(_)) => "a boolean",
        None => "missing",
    };
    Err(InstanceError::Refused {
        code: "page_invalid",
        message: format!(
            "页面的「{field}」字段不是列表 (the page's `{field}` is {kind}, not a list of items)"
        ),
    })
}

/// The trail of positions after the page read at `position`: empty once the listing ends;
/// an error if the page leads back to a position of this pass.
fn trail(
    committed: &HttpPollProgress,
    position: Option<&str>,
    next: &Next,
) -> Result<Vec<u64>, InstanceError> {
    if next.at_end {
        return Ok(Vec::new());
    }
    let mut trail = committed.trail.clone();
    trail.push(position_hash(position.unwrap_or("")));
    if trail.len() > TRAIL {
        trail.drain(..trail.len() - TRAIL);
    }
    let to = next.progress_position.as_deref().unwrap_or("");
    if trail.contains(&position_hash(to)) {
        return Err(InstanceError::Refused {
            code: "cursor_cycle",
            message: format!(
                "分页位置「{}」之后又回到了已读过的位置「{}」 (the page at `{}` leads back to \
                 `{}`, read before in this pass: the server's paging cycles)",
                position.unwrap_or("start"),
                to,
                position.unwrap_or("start"),
                to
            ),
        });
    }
    Ok(trail)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pages_lead_on_and_end() {
        let page = Pagination::Page {
            page_size: 2,
            total_pages_field: "total_pages".into(),
        };
        let cursor = Pagination::Cursor {
            limit: 2,
            next_field: "next_cursor".into(),
        };
        let since = Pagination::UpdatedSince {
            limit: 2,
            next_field: "next_updated_since".into(),
            has_more_field: "has_more".into(),
            initial: "1970-01-01T00:00:00Z".into(),
        };
        let cases = [
            (&page, None, json!({"total_pages": 3}), Some("2"), false),
            (&page, Some("3"), json!({"total_pages": 3}), Some("3"), true),
            (
                &cursor,
                None,
                json!({"next_cursor": "c2"}),
                Some("c2"),
                false,
            ),
            (
                &cursor,
                Some("c2"),
                json!({"next_cursor": null}),
                Some("c2"),
                true,
            ),
            (
                &since,
                None,
                json!({"next_updated_since": "2025-03-01T00:00:00Z", "has_more": true}),
                Some("2025-03-01T00:00:00Z"),
                false,
            ),
            (
                &since,
                Some("2025-03-01T00:00:00Z"),
                json!({"next_updated_since": "2025-03-01T00:00:00Z", "has_more": false}),
                Some("2025-03-01T00:00:00Z"),
                true,
            ),
        ];
        let lying = next(
            &page,
            Some("2"),
            &json!({"total_pages": 1_000_000_000_000u64}),
            0,
        );
        assert!(
            lying.expect("next").at_end,
            "an empty numbered page ends the listing"
        );
        for (pagination, position, body, expected, at_end) in cases {
            let got = next(pagination, position, &body, 2).expect("next");
            assert_eq!(got.progress_position.as_deref(), expected, "{body}");
            assert_eq!(got.at_end, at_end, "{body}");
        }
        assert_eq!(
            query(&since, None),
            [
                (
                    "updated_since".to_owned(),
                    "1970-01-01T00:00:00Z".to_owned()
                ),
                ("limit".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn items_become_text_fields() {
        let item = json!({"id": 7, "name": "呈贡区", "area": 12.5, "gone": null, "ok": true});
        let f = fields(&item).expect("object");
        assert_eq!(f["id"], "7");
        assert_eq!(f["area"], "12.5");
        assert_eq!(f["ok"], "true");
        assert!(!f.contains_key("gone"));
        assert!(fields(&json!([1])).is_none());
    }
}
