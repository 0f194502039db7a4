//! `http_poll`: a paginated JSON API of a regional system (page/offset, cursor token or
//! `updated_since`). Each page is committed with the position after it; a page the server
//! repeats is recognised by the record ids of the page before it, so nothing is written twice.
//! 5xx answers, timeouts and unreadable bodies are retried with exponential backoff and
//! jitter; `429` waits as `Retry-After` says; requests are spaced to a per-instance rate.
//! A TLS failure (a refused client certificate, an untrusted server) fails the poll at once.
//! Systems that want mTLS get `client_identity`, and `server_ca` trusts their own CA.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng as _;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::instance::{Committer, Context, InstanceError};
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
    /// Record ids of the last committed page: a server repeating it is recognised.
    #[serde(default)]
    pub last_ids: Vec<String>,
}

/// Where a page leads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Next {
    progress_position: Option<String>,
    /// Whether this page ends the listing for now.
    at_end: bool,
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

/// Where the page read at `position` leads, from the response body.
fn next(pagination: &Pagination, position: Option<&str>, body: &Value) -> Result<Next, String> {
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
            Ok(if page < total {
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
pub(crate) fn fields(item: &Value) -> Option<SourceFields> {
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
    runtime: &'a tokio::runtime::Handle,
    last_request: Option<Instant>,
    stop: &'a AtomicBool,
}

/// Sleeps `duration` in short steps; false if `stop` was set meanwhile.
fn pause(stop: &AtomicBool, duration: Duration) -> bool {
    let until = Instant::now() + duration;
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

impl Client<'_> {
    /// Fetches and parses one page, retrying what is worth retrying.
    fn page(&mut self, query: &[(String, String)]) -> Result<Value, InstanceError> {
        let mut backoff = Duration::from_millis(200);
        let mut last_error = String::new();
        for attempt in 1..=self.config.max_attempts {
            if let Some(last) = self.last_request {
                let spacing =
                    Duration::from_secs_f64(1.0 / self.config.requests_per_second.max(0.001));
                std::thread::sleep(spacing.saturating_sub(last.elapsed()));
            }
            self.last_request = Some(Instant::now());
            let mut request = self.http.get(&self.config.url).query(query);
            if let Some(token) = &self.config.bearer_token {
                request = request.bearer_auth(token);
            }
            let outcome = self.runtime.block_on(async {
                let response = request.send().await?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, retry_after, body))
            });
            let wait = match outcome {
                Ok((status, _, body)) if status.is_success() => {
                    match serde_json::from_slice::<Value>(&body) {
                        Ok(page) => return Ok(page),
                        Err(e) => {
                            last_error = format!("unreadable page (HTTP 200): {e}");
                            backoff
                        }
                    }
                }
                Ok((StatusCode::TOO_MANY_REQUESTS, retry_after, _)) => {
                    last_error = "HTTP 429".to_owned();
                    retry_after.map_or(backoff, Duration::from_secs)
                }
                Ok((status, _, body)) if status.is_server_error() => {
                    last_error = format!("HTTP {status}: {}", String::from_utf8_lossy(&body));
                    backoff
                }
                Ok((status, _, body)) => {
                    return Err(InstanceError::SourceSystem(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    )));
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
            let jitter = rand::rng().random_range(0..=wait.as_millis() as u64 / 2);
            if !pause(self.stop, wait + Duration::from_millis(jitter)) {
                return Err(InstanceError::SourceSystem(
                    "stopping: the page was not fetched".to_owned(),
                ));
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
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

/// Reads every page the API has past the committed position, committing each page with the
/// position after it.
pub(crate) fn poll(
    context: &Context<'_>,
    source: &HttpPollConfig,
    runtime: &tokio::runtime::Handle,
    committer: &mut Committer<'_>,
) -> Result<(), InstanceError> {
    let mut builder = reqwest::Client::builder().timeout(source.timeout);
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
        runtime,
        last_request: None,
        stop: context.stop,
    };
    loop {
        let committed: HttpPollProgress = committer.progress()?;
        let position = committed.position.as_deref();
        let page = client.page(&query(&source.pagination, position))?;
        let items = page[&source.items_field]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let next =
            next(&source.pagination, position, &page).map_err(InstanceError::SourceSystem)?;
        committer.read(items.len() as u64);

        let mut out = Vec::with_capacity(items.len());
        let mut ids = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate().skip(committed.consumed) {
            let location = format!("{}#{}", position.unwrap_or("start"), index + 1);
            let Some(fields) = fields(item) else {
                out.push(context.quarantine_record(
                    "item_not_object",
                    None,
                    "记录不是 JSON 对象 (the item is not a JSON object)".to_owned(),
                    None,
                    location,
                    serde_json::to_vec(item).ok(),
                )?);
                continue;
            };
            let id = crate::mapping::record_id(&context.config.mapping, &fields);
            if let Some(id) = &id {
                // A repeated page: these records were committed with the page before.
                if committed.last_ids.contains(id) || ids.contains(id) {
                    continue;
                }
                ids.push(id.clone());
            }
            out.push(context.map_row(&fields, position.unwrap_or("start"), location)?);
        }
        let progress = HttpPollProgress {
            consumed: if next.at_end && next.progress_position.as_deref() == position {
                items.len()
            } else {
                0
            },
            position: next.progress_position,
            last_ids: if ids.is_empty() {
                committed.last_ids.clone()
            } else {
                ids
            },
        };
        if out.is_empty() && progress == committed {
            return Ok(());
        }
        committer.commit(context, out, &progress)?;
        if next.at_end {
            return Ok(());
        }
    }
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
        for (pagination, position, body, expected, at_end) in cases {
            let got = next(pagination, position, &body).expect("next");
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
