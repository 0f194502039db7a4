//! `http_poll`: a paginated JSON API of a regional system, as such APIs are in the wild: by page
//! number (`?page=N&page_size=M`, or `?pageNo=N&size=M`), by offset (`?offset=N&limit=M`), by a
//! cursor token, by the `next` link of the page or of its RFC 8288 `Link` header, or by an
//! `updated_since` watermark. Every query parameter's name is configurable (today's names are
//! the defaults); the items, the total (of pages or of records), the next cursor or link and a
//! `has_more` flag are read at a top-level field or at a JSON pointer (`/data/list`). Request
//! headers take literal values or secrets read from an environment variable or a file when the
//! configuration loads (a missing one fails the start-up, naming it); their values are never
//! logged.
//!
//! Each page is committed with the position after it. A record is known by its id and version
//! ([`crate::mapping::identity`]): one the page before already held (a page the server repeats)
//! or the page holds twice is skipped and counted; the same id with another version (a revised
//! report) is written. 5xx answers, timeouts and unreadable bodies are retried with exponential
//! backoff and jitter; `429` and `503` wait as `Retry-After` says (seconds or an HTTP date),
//! never longer than `limits.max_retry_wait`; requests are spaced to a per-instance rate.
//!
//! A county system whose page parameter is `pageNo`, whose size parameter is `size`, whose
//! records sit at `data.list` and whose `data.total` counts records, behind an API key:
//!
//! ```toml
//! [instance.source]
//! kind = "http_poll"
//! url = "https://zwfw.example.gov.cn/api/vehicle/list"
//! headers = { "X-Api-Key" = { file = "/run/secrets/cq-api-key" } }
//! items_field = "/data/list"
//! pagination = { style = "page", page_size = 100, page_param = "pageNo", size_param = "size",
//!                end = { total_records = "/data/total" } }
//! ```
//!
//! Other styles: `{ style = "offset", limit = 100, offset_param = "start", limit_param = "rows",
//! end = { total_records = "numFound" } }`; `{ style = "link", limit = 100, limit_param =
//! "per_page" }` (the `Link` header's next page; `next_url_field = "/links/next"` for one in
//! the body); `{ style = "cursor", limit = 100, next_field = "/meta/next" }`;
//! `{ style = "updated_since", limit = 100, since_param = "modifiedAfter" }`.
//!
//! How a listing's end is told (`end` of the `page` and `offset` styles):
//!
//! | `end` | the listing goes on while |
//! |---|---|
//! | `{ total_pages = FIELD }` (page default) | pages read < the total |
//! | `{ total_records = FIELD }` (offset default) | records before this page and on it < the total |
//! | `{ has_more = FIELD }` | the field is `true` |
//! | `"short_page"` | the page is full (as many items as asked for) |
//!
//! An empty page ends every listing, whatever its total says. A page API whose total counts
//! records but whose pages are shorter than `page_size` before the end (a server capping its
//! page size) would have the connector skip records: it fails with `page_size_mismatch`.
//!
//! What a server cannot make the connector do: follow a position it led to before in the
//! same pass through the listing (a cursor cycle fails the poll with `cursor_cycle`, nothing of
//! that page written — the trail of positions is committed, so a restart finds the cycle
//! too); follow a redirect or a next link to another origin (`redirect_refused`,
//! `next_link_refused`, unless `allow_cross_origin_redirects`); send a body over
//! `limits.max_body_bytes` (read in chunks and abandoned at the limit: `page_too_large`) or more
//! than `limits.max_items` items (`page_too_many_items`); pass off a page whose items field is
//! not a list as empty (`page_invalid`). A TLS failure (a refused client certificate, an
//! untrusted server) fails the poll at once. Systems that want mTLS get `client_identity`, and
//! `server_ca` trusts their own CA.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::instance::{Batch, Committer, Context, InstanceError};
use crate::limits::Limits;
use crate::mapping::SourceFields;

/// Settings of an `http_poll` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPollConfig {
    /// The listing endpoint, e.g. `https://ywpt.example.gov.cn/api/vehicles`. A query it
    /// carries (`?status=all`) is sent with every request but those following a next link.
    pub url: String,
    /// Bearer token sent in `Authorization`: literal text, `{ env = "NAME" }` or
    /// `{ file = "/run/secrets/token" }` (see [`HeaderText`]).
    #[serde(default, deserialize_with = "bearer")]
    pub bearer_token: Option<HeaderText>,
    /// Further request headers, e.g. `headers = { "X-Api-Key" = { env = "CQ_API_KEY" } }`;
    /// each value is literal text, `{ env = "NAME" }` or `{ file = "PATH" }` (see
    /// [`HeaderText`]).
    #[serde(default)]
    pub headers: Headers,
    /// PEM file with the client certificate (and its chain) and its private key, for systems
    /// that want mTLS.
    #[serde(default)]
    pub client_identity: Option<PathBuf>,
    /// PEM bundle of the CA(s) the system's server certificate must chain to, e.g. a provincial
    /// e-government CA. When set, only these are trusted (not the public web's roots).
    #[serde(default)]
    pub server_ca: Option<PathBuf>,
    /// How the API pages.
    pub pagination: Pagination,
    /// Where a page holds the array of records: a top-level field's name (`items`) or a JSON
    /// pointer (RFC 6901) such as `/data/list`; `""` is the whole body (a page that is a bare
    /// array).
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
    /// Follow redirects and next links to another origin (scheme, host, port). Off: such a
    /// redirect or link fails the poll, so a compromised or misconfigured system cannot send
    /// the connector, with its token and headers, elsewhere.
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

/// Pagination styles. Every field naming where a page holds something (`next_field`, `end`'s
/// fields…) takes a top-level field's name or a JSON pointer (`/data/total`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// `?page=N&page_size=M`, pages counted from `first_page`.
    Page {
        /// Records per page.
        page_size: usize,
        /// The query parameter with the page number, e.g. `pageNo`, `current`.
        #[serde(default = "default_page_param")]
        page_param: String,
        /// The query parameter with the page size, e.g. `size`, `pageSize`, `rows`.
        #[serde(default = "default_page_size_param")]
        size_param: String,
        /// The number of the first page (some APIs count from 0).
        #[serde(default = "default_first_page")]
        first_page: u64,
        /// How the listing's end is told (see the module doc).
        #[serde(default = "default_page_end")]
        end: End,
    },
    /// `?offset=N&limit=M`: records from the `N`-th (from 0) on.
    Offset {
        /// Records per page.
        limit: usize,
        /// The query parameter with the offset, e.g. `start`, `skip`.
        #[serde(default = "default_offset_param")]
        offset_param: String,
        /// The query parameter with the page size, e.g. `rows`, `take`.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// How the listing's end is told (see the module doc; `total_pages` counts pages of
        /// `limit` records).
        #[serde(default = "default_offset_end")]
        end: End,
    },
    /// `?cursor=T&limit=M`; the response gives the next cursor, null, empty or missing at the end.
    Cursor {
        /// Records per page.
        limit: usize,
        /// The query parameter with the cursor.
        #[serde(default = "default_cursor_param")]
        cursor_param: String,
        /// The query parameter with the page size.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Where the response holds the next cursor (text or a number).
        #[serde(default = "default_next_cursor")]
        next_field: String,
        /// Where the response tells whether more records follow, for APIs that hand out a
        /// cursor on their last page too. Unset: the cursor alone tells.
        #[serde(default)]
        has_more_field: Option<String>,
    },
    /// `?limit=M` first, then the URL the page links to as its next: the `Link` header's
    /// `rel="next"` (RFC 8288), or a field of the body. The link must stay on the origin of
    /// `url` unless `allow_cross_origin_redirects`.
    Link {
        /// Records per page, asked for in the first request (the links carry it on).
        limit: usize,
        /// The query parameter with the page size, e.g. `per_page`.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Where the body holds the next page's URL (absolute or relative to the page's).
        /// Unset: the `Link` header's `rel="next"`.
        #[serde(default)]
        next_url_field: Option<String>,
    },
    /// `?updated_since=T&limit=M`: records changed strictly after `T`, oldest first.
    UpdatedSince {
        /// Records per page.
        limit: usize,
        /// The query parameter with the watermark, e.g. `modifiedAfter`.
        #[serde(default = "default_since_param")]
        since_param: String,
        /// The query parameter with the page size.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Where the response holds the next watermark.
        #[serde(default = "default_next_since")]
        next_field: String,
        /// Where the response tells whether more records follow (absent: no more).
        #[serde(default = "default_has_more")]
        has_more_field: String,
        /// The watermark of the very first poll (RFC 3339).
        #[serde(default = "default_since")]
        initial: String,
    },
}

/// How a page or offset listing tells its end; each field a top-level name or a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum End {
    /// `{ total_pages = "/data/pages" }`: the field holds the number of pages.
    TotalPages(String),
    /// `{ total_records = "/data/total" }`: the field holds the number of records.
    TotalRecords(String),
    /// `{ has_more = "/data/hasNext" }`: the field is `true` while more pages follow.
    HasMore(String),
    /// `"short_page"`: a page with fewer items than asked for is the last. Only for APIs
    /// that never send fewer than asked for before the end (`page_size` at most the server's
    /// largest page).
    ShortPage,
}

fn default_page_param() -> String {
    "page".to_owned()
}
fn default_page_size_param() -> String {
    "page_size".to_owned()
}
fn default_first_page() -> u64 {
    1
}
fn default_page_end() -> End {
    End::TotalPages("total_pages".to_owned())
}
fn default_offset_param() -> String {
    "offset".to_owned()
}
fn default_limit_param() -> String {
    "limit".to_owned()
}
fn default_offset_end() -> End {
    End::TotalRecords("total".to_owned())
}
fn default_cursor_param() -> String {
    "cursor".to_owned()
}
fn default_since_param() -> String {
    "updated_since".to_owned()
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

/// The text of a request header (or the bearer token), as the configuration gives it: literal
/// (`"abc"`), from an environment variable (`{ env = "CQ_API_KEY" }`) or from a file
/// (`{ file = "/run/secrets/k" }`, trailing whitespace and newlines dropped). Secrets are read
/// once, when the configuration loads: one missing, empty or unusable in a header fails the
/// start-up with a message naming the variable or file; a changed secret takes effect at the
/// next start. Its `Debug` shows where the text comes from, never the text.
#[derive(Clone)]
pub struct HeaderText {
    origin: Origin,
    value: HeaderValue,
}

/// Where a [`HeaderText`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Literal,
    Env(String),
    File(PathBuf),
}

/// The largest secret file read (a token or key, not a document).
const MAX_SECRET_FILE: u64 = 64 * 1024;

impl HeaderText {
    /// The text from `origin`, checked to be a usable header value; the error is what a user
    /// reads, Chinese first.
    fn resolve(origin: Origin, literal: Option<String>) -> Result<HeaderText, String> {
        let text = match &origin {
            Origin::Literal => literal.unwrap_or_default(),
            Origin::Env(name) => std::env::var(name).map_err(|e| match e {
                std::env::VarError::NotPresent => {
                    format!("环境变量 {name} 未设置 (environment variable `{name}` is not set)")
                }
                std::env::VarError::NotUnicode(_) => format!(
                    "环境变量 {name} 不是有效文本 (environment variable `{name}` is not UTF-8)"
                ),
            })?,
            Origin::File(path) => read_secret_file(path)?,
        };
        let text = text.trim_end();
        let named = match &origin {
            Origin::Literal => "the literal value".to_owned(),
            Origin::Env(name) => format!("environment variable `{name}`"),
            Origin::File(path) => format!("file {}", path.display()),
        };
        if text.is_empty() {
            return Err(format!("值为空 ({named} is empty)"));
        }
        let mut value = HeaderValue::from_str(text).map_err(|_| {
            format!("值含有不能放进请求头的字符 ({named} holds characters a header cannot carry)")
        })?;
        value.set_sensitive(true);
        Ok(HeaderText { origin, value })
    }

    /// The value to send (marked sensitive, so the HTTP stack does not print it either).
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }
}

fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| {
        format!(
            "无法读取密钥文件 {0} (cannot read file {0}: {e})",
            path.display()
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(format!(
            "密钥文件 {0} 过大 (file {0} is over {MAX_SECRET_FILE} bytes: not a secret)",
            path.display()
        ));
    }
    Ok(text)
}

impl std::fmt::Debug for HeaderText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Origin::Literal => write!(f, "HeaderText(literal, {} bytes)", self.value.len()),
            Origin::Env(name) => write!(f, "HeaderText(env {name})"),
            Origin::File(path) => write!(f, "HeaderText(file {})", path.display()),
        }
    }
}

/// A [`HeaderText`] as the configuration writes it, before its secret is read.
struct Spec {
    origin: Origin,
    literal: Option<String>,
}

impl Spec {
    /// The text, or what is wrong with it, naming `what` (`bearer_token`, `headers.X-Api-Key`).
    fn resolve(self, what: &str) -> Result<HeaderText, String> {
        HeaderText::resolve(self.origin, self.literal).map_err(|e| format!("{what}: {e}"))
    }
}

impl<'de> Deserialize<'de> for Spec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Spec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("text, `{ env = \"NAME\" }` or `{ file = \"PATH\" }`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Spec, E> {
                Ok(Spec {
                    origin: Origin::Literal,
                    literal: Some(text.to_owned()),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Spec, A::Error> {
                use serde::de::Error as _;
                let origin = match map.next_key::<String>()?.as_deref() {
                    Some("env") => Origin::Env(map.next_value()?),
                    Some("file") => Origin::File(map.next_value()?),
                    Some(other) => {
                        return Err(A::Error::custom(format!(
                            "unknown field `{other}`, expected `env` or `file`"
                        )));
                    }
                    None => return Err(A::Error::custom("give `env` or `file`")),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom("give exactly one of `env` and `file`"));
                }
                Ok(Spec {
                    origin,
                    literal: None,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `bearer_token`, its secret read.
fn bearer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HeaderText>, D::Error> {
    Option::<Spec>::deserialize(d)?
        .map(|spec| spec.resolve("bearer_token"))
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// Request headers by name, each name checked when the configuration loads.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(HeaderName, HeaderText)>);

impl Headers {
    /// The headers, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &(HeaderName, HeaderText)> {
        self.0.iter()
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = BTreeMap::<String, Spec>::deserialize(d)?;
        map.into_iter()
            .map(|(name, spec)| {
                let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    D::Error::custom(format!(
                        "请求头名称「{name}」无效 (`{name}` is not a header name)"
                    ))
                })?;
                if matches!(
                    header,
                    reqwest::header::HOST
                        | reqwest::header::CONTENT_LENGTH
                        | reqwest::header::TRANSFER_ENCODING
                        | reqwest::header::CONNECTION
                ) {
                    return Err(D::Error::custom(format!(
                        "请求头「{name}」由连接器设置 (`{name}` is set by the connector itself)"
                    )));
                }
                let text = spec
                    .resolve(&format!("headers.{name}"))
                    .map_err(D::Error::custom)?;
                Ok((header, text))
            })
            .collect::<Result<_, _>>()
            .map(Headers)
    }
}

/// An `http_poll` instance's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPollProgress {
    /// The page to ask for next: a page number, an offset, a cursor, a URL or a watermark;
    /// none at the start.
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

/// A page as the server sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The parsed body.
    pub body: Value,
    /// The URL the page came from, after redirects: relative next links resolve against it.
    pub url: String,
    /// The target of the page's `Link: <…>; rel="next"` header as sent (resolved against
    /// `url` when followed; read only for the `link` style without `next_url_field`).
    pub next_link: Option<String>,
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
/// server can talk its way past (a list of items, at most `limits.max_items`; a next link on
/// the same origin; a position of bounded length). Pure.
pub fn page_items<'p>(
    page: &'p Response,
    source: &HttpPollConfig,
    position: Option<&str>,
    limits: &Limits,
) -> Result<(&'p [Value], Next), InstanceError> {
    let items = items(&page.body, &source.items_field, limits.max_items)?;
    let next = next(source, position, page, items.len())?;
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

/// The position a listing starts at when nothing is committed: numbered pages at
/// `first_page`, offsets at 0 (naming it makes a one-page listing's end the position it
/// started from, so that page is not read again whole); the other styles at none.
fn start(pagination: &Pagination) -> Option<String> {
    match pagination {
        Pagination::Page { first_page, .. } => Some(first_page.to_string()),
        Pagination::Offset { .. } => Some("0".to_owned()),
        Pagination::Cursor { .. } | Pagination::Link { .. } | Pagination::UpdatedSince { .. } => {
            None
        }
    }
}

/// The URL and the query of the page at `position`. A next link is asked for as it is: it
/// carries its own query.
fn request(source: &HttpPollConfig, position: Option<&str>) -> (String, Vec<(String, String)>) {
    let pair = |name: &str, value: String| (name.to_owned(), value);
    let query = match &source.pagination {
        Pagination::Page {
            page_size,
            page_param,
            size_param,
            first_page,
            ..
        } => vec![
            pair(
                page_param,
                position.map_or_else(|| first_page.to_string(), str::to_owned),
            ),
            pair(size_param, page_size.to_string()),
        ],
        Pagination::Offset {
            limit,
            offset_param,
            limit_param,
            ..
        } => vec![
            pair(offset_param, position.unwrap_or("0").to_owned()),
            pair(limit_param, limit.to_string()),
        ],
        Pagination::Cursor {
            limit,
            cursor_param,
            limit_param,
            ..
        } => {
            let mut q = vec![pair(limit_param, limit.to_string())];
            if let Some(cursor) = position {
                q.push(pair(cursor_param, cursor.to_owned()));
            }
            q
        }
        Pagination::Link {
            limit, limit_param, ..
        } => match position {
            Some(link) => return (link.to_owned(), Vec::new()),
            None => vec![pair(limit_param, limit.to_string())],
        },
        Pagination::UpdatedSince {
            limit,
            since_param,
            limit_param,
            initial,
            ..
        } => vec![
            pair(since_param, position.unwrap_or(initial).to_owned()),
            pair(limit_param, limit.to_string()),
        ],
    };
    (source.url.clone(), query)
}

/// The value of a page at `field`: a top-level field's name, or a JSON pointer (RFC 6901)
/// when it is empty or starts with `/`.
fn at<'p>(body: &'p Value, field: &str) -> Option<&'p Value> {
    if field.is_empty() || field.starts_with('/') {
        body.pointer(field)
    } else {
        body.get(field)
    }
}

/// A count at `field`: a non-negative integer, or one written as text (`"250"`), as APIs
/// serialising 64-bit integers as strings send it.
fn count(body: &Value, field: &str) -> Result<u64, InstanceError> {
    match at(body, field) {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().unwrap_or_default()),
        _ => Err(InstanceError::SourceSystem(format!(
            "no count at `{field}` in the page"
        ))),
    }
}

/// A flag at `field`: `true`/`false`, or written as text.
fn flag(body: &Value, field: &str) -> Result<bool, InstanceError> {
    match at(body, field) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        _ => Err(InstanceError::SourceSystem(format!(
            "no true or false at `{field}` in the page"
        ))),
    }
}

/// A cursor or link at `field`: non-empty text, or a number written as JSON writes it; none
/// when missing, null or empty (the end).
fn token(body: &Value, field: &str) -> Option<String> {
    match at(body, field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `link` resolved against `base`, if it may be followed: http(s), and on the origin of the
/// configured URL unless `allow_cross_origin_redirects`.
fn follow(source: &HttpPollConfig, base: &str, link: &str) -> Result<String, InstanceError> {
    let refused = |why: String| InstanceError::Refused {
        code: "next_link_refused",
        message: format!("拒绝跟随下一页链接 (next link `{link}` not followed: {why})"),
    };
    let base = reqwest::Url::parse(base).map_err(|e| refused(format!("page URL: {e}")))?;
    let url = base.join(link).map_err(|e| refused(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(format!("scheme `{}`", url.scheme())));
    }
    let home = reqwest::Url::parse(&source.url).map_err(|e| refused(format!("url: {e}")))?;
    if !source.allow_cross_origin_redirects && url.origin() != home.origin() {
        return Err(refused(format!(
            "to another origin ({}); set allow_cross_origin_redirects to follow it",
            url.origin().ascii_serialization()
        )));
    }
    Ok(url.into())
}

/// Where the page read at `position`, holding `items` items, leads. An empty numbered or
/// offset page ends the listing whatever its total says, so a server claiming a vast number
/// of pages cannot keep the connector asking.
fn next(
    source: &HttpPollConfig,
    position: Option<&str>,
    page: &Response,
    items: usize,
) -> Result<Next, InstanceError> {
    let body = &page.body;
    let end_at = |position: Option<&str>| Next {
        progress_position: position.map(str::to_owned),
        at_end: true,
    };
    let on_to = |position: String| Next {
        progress_position: Some(position),
        at_end: false,
    };
    let bad_position = |p: &str| InstanceError::SourceSystem(format!("bad position `{p}`"));
    match &source.pagination {
        Pagination::Page {
            page_size,
            first_page,
            end,
            ..
        } => {
            let first = first_page.to_string();
            let current = position.unwrap_or(&first);
            let number: u64 = current
                .parse()
                .ok()
                .filter(|n| n >= first_page)
                .ok_or_else(|| bad_position(current))?;
            let index = number - first_page;
            let size = *page_size as u64;
            let more = items > 0
                && match end {
                    End::TotalPages(field) => index.saturating_add(1) < count(body, field)?,
                    End::TotalRecords(field) => {
                        let total = count(body, field)?;
                        // A page with more items than asked for (one repeating records) counts
                        // as full: overcounting would end the listing early.
                        let through = index
                            .saturating_mul(size)
                            .saturating_add(size.min(items as u64));
                        if through >= total {
                            false
                        } else if items < *page_size {
                            return Err(InstanceError::Refused {
                                code: "page_size_mismatch",
                                message: format!(
                                    "第 {number} 页只有 {items} 条，但共 {total} 条尚未读完：\
                                     服务器每页条数少于 page_size (page {number} holds {items} \
                                     of the {page_size} asked for while {total} records are \
                                     not all read: the server pages by fewer; set page_size to \
                                     at most {items}, or check size_param)"
                                ),
                            });
                        } else {
                            true
                        }
                    }
                    End::HasMore(field) => flag(body, field)?,
                    End::ShortPage => items >= *page_size,
                };
            Ok(if more {
                on_to(number.saturating_add(1).to_string())
            } else {
                end_at(Some(current))
            })
        }
        Pagination::Offset { limit, end, .. } => {
            let current = position.unwrap_or("0");
            let offset: u64 = current.parse().map_err(|_| bad_position(current))?;
            // Records of a page longer than asked for (one repeating records before its own)
            // are read again from the next offset and skipped: never passed over.
            let after = offset.saturating_add(items.min(*limit) as u64);
            let more = items > 0
                && match end {
                    End::TotalPages(field) => {
                        offset / (*limit).max(1) as u64 + 1 < count(body, field)?
                    }
                    End::TotalRecords(field) => after < count(body, field)?,
                    End::HasMore(field) => flag(body, field)?,
                    End::ShortPage => items >= *limit,
                };
            Ok(Next {
                progress_position: Some(after.to_string()),
                at_end: !more,
            })
        }
        Pagination::Cursor {
            next_field,
            has_more_field,
            ..
        } => {
            let more = match has_more_field {
                Some(field) => flag(body, field)?,
                None => true,
            };
            Ok(match token(body, next_field) {
                Some(cursor) if more => on_to(cursor),
                _ => end_at(position),
            })
        }
        Pagination::Link { next_url_field, .. } => {
            let link = match next_url_field {
                Some(field) => token(body, field),
                None => page.next_link.clone(),
            };
            Ok(match link {
                Some(link) => on_to(follow(source, &page.url, &link)?),
                None => end_at(position),
            })
        }
        Pagination::UpdatedSince {
            next_field,
            has_more_field,
            ..
        } => Ok(Next {
            progress_position: token(body, next_field).or_else(|| position.map(str::to_owned)),
            at_end: !matches!(at(body, has_more_field), Some(Value::Bool(true))),
        }),
    }
}

/// The target of the first link whose relation types include `rel` (case-insensitive) in
/// `Link` header values (RFC 8288 §3): `<target>` followed by `; name=token` or
/// `; name="quoted \" string"` parameters, links separated by commas, `rel` listing relation
/// types separated by spaces (only its first occurrence counts). `Err` for a value that is not
/// a list of links. Pure.
pub fn link_target<'h>(
    values: impl IntoIterator<Item = &'h str>,
    rel: &str,
) -> Result<Option<String>, String> {
    for value in values {
        if let Some(target) = link_in(value, rel)? {
            return Ok(Some(target));
        }
    }
    Ok(None)
}

/// [`link_target`] in one header value.
fn link_in(value: &str, wanted: &str) -> Result<Option<String>, String> {
    let malformed = || {
        format!(
            "`Link: {}` is not a list of links",
            crate::instance::cut(value.to_owned(), 200)
        )
    };
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return Ok(None);
        }
        let after = rest.strip_prefix('<').ok_or_else(malformed)?;
        let close = after.find('>').ok_or_else(malformed)?;
        let target = &after[..close];
        rest = &after[close + 1..];
        let mut rel: Option<String> = None;
        while let Some(param) = rest.trim_start().strip_prefix(';') {
            rest = param.trim_start();
            let name_end = rest
                .find(|c: char| matches!(c, '=' | ';' | ',') || c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            let name = &rest[..name_end];
            rest = rest[name_end..].trim_start();
            let mut text = String::new();
            if let Some(value) = rest.strip_prefix('=') {
                rest = value.trim_start();
                if let Some(quoted) = rest.strip_prefix('"') {
                    let mut chars = quoted.char_indices();
                    let mut end = None;
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => text.extend(chars.next().map(|(_, c)| c)),
                            '"' => {
                                end = Some(i + 1);
                                break;
                            }
                            c => text.push(c),
                        }
                    }
                    rest = &quoted[end.ok_or_else(malformed)?..];
                } else {
                    let end = rest
                        .find(|c: char| matches!(c, ';' | ',') || c.is_ascii_whitespace())
                        .unwrap_or(rest.len());
                    text.push_str(&rest[..end]);
                    rest = &rest[end..];
                }
            }
            if name.eq_ignore_ascii_case("rel") && rel.is_none() {
                rel = Some(text);
            }
        }
        if rel.is_some_and(|r| {
            r.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case(wanted))
        }) {
            return Ok(Some(target.to_owned()));
        }
        rest = rest.trim_start();
        if !rest.is_empty() && !rest.starts_with(',') {
            return Err(malformed());
        }
    }
}

/// A record of the API as source fields ([`crate::mapping::from_json`], as push reads its
/// records); `None` if it is not an object.
pub fn fields(item: &Value) -> Option<SourceFields> {
    item.as_object().map(crate::mapping::from_json)
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
    /// Fetches and parses the page at `url` with `query`, retrying what is worth retrying.
    fn page(&mut self, url: &str, query: &[(String, String)]) -> Result<Response, InstanceError> {
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
            let mut request = self.http.get(url).query(query);
            if let Some(token) = &self.config.bearer_token {
                let mut value = HeaderValue::try_from(format!(
                    "Bearer {}",
                    token.value().to_str().unwrap_or_default()
                ))
                .unwrap_or_else(|_| token.value().clone());
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            for (name, text) in self.config.headers.iter() {
                request = request.header(name, text.value().clone());
            }
            // Where the body came from and its `Link` headers, for the next page.
            let mut head: Option<(reqwest::Url, Vec<String>)> = None;
            let outcome = self.runtime.block_on(async {
                let mut response = request.send().await?;
                let status = response.status();
                head = Some((
                    response.url().clone(),
                    response
                        .headers()
                        .get_all(reqwest::header::LINK)
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect(),
                ));
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
                        Ok(body) => return self.response(body, head),
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

    /// A page read whole: with its URL and, for the `link` style without a body field, the
    /// target of its `Link` header's `rel="next"`.
    fn response(
        &self,
        body: Value,
        head: Option<(reqwest::Url, Vec<String>)>,
    ) -> Result<Response, InstanceError> {
        let (url, links) = head.ok_or_else(|| {
            InstanceError::SourceSystem("a page body without its response".to_owned())
        })?;
        let next_link = match &self.config.pagination {
            Pagination::Link {
                next_url_field: None,
                ..
            } => link_target(links.iter().map(String::as_str), "next").map_err(|message| {
                InstanceError::Refused {
                    code: "page_invalid",
                    message: format!("「Link」响应头无法解析 ({message})"),
                }
            })?,
            _ => None,
        };
        Ok(Response {
            body,
            url: url.into(),
            next_link,
        })
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
/// Redirects within the origin of the request that started the chain (the configured URL's,
/// or a next link's, which must share it), unless `anywhere`.
fn redirects(anywhere: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let origin = attempt.previous().first().map(reqwest::Url::origin);
        if attempt.previous().len() >= 10 {
            attempt.error("more than 10 redirects")
        } else if anywhere || origin.is_none_or(|o| attempt.url().origin() == o) {
            attempt.follow()
        } else {
            let to = attempt.url().origin().ascii_serialization();
            attempt.error(format!(
                "to another origin ({to}); set allow_cross_origin_redirects to follow it"
            ))
        }
    })
}

/// What an HTTP client is built from: instances with the same settings share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    timeout: Duration,
    anywhere: bool,
    /// A file and when it last changed: a renewed certificate makes a new client.
    identity: Option<(std::path::PathBuf, Option<std::time::SystemTime>)>,
    server_ca: Option<(std::path::PathBuf, Option<std::time::SystemTime>)>,
}

/// The process's HTTP clients by the settings they are built from. Building one reads and
/// parses the platform's root certificates — milliseconds, which tens of thousands of
/// instances would pay at every poll — and a shared client keeps its connections alive
/// between polls, as reqwest intends clients to be shared.
static CLIENTS: LazyLock<Mutex<HashMap<ClientKey, reqwest::Client>>> =
    LazyLock::new(Default::default);

/// The HTTP client of `source`'s settings, built on first use.
fn http_client(source: &HttpPollConfig) -> Result<reqwest::Client, InstanceError> {
    let changed = |path: &std::path::PathBuf| {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        (path.clone(), modified)
    };
    let key = ClientKey {
        timeout: source.timeout,
        anywhere: source.allow_cross_origin_redirects,
        identity: source.client_identity.as_ref().map(changed),
        server_ca: source.server_ca.as_ref().map(changed),
    };
    if let Some(client) = CLIENTS.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(client.clone());
    }
    let mut builder = reqwest::Client::builder()
        .timeout(source.timeout)
        .redirect(redirects(source.allow_cross_origin_redirects));
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
    let client = builder
        .build()
        .map_err(|e| InstanceError::SourceSystem(format!("HTTP client: {e}")))?;
    CLIENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, client.clone());
    Ok(client)
}

/// Reads every page the API has past the committed position, committing each page with the
/// position after it.
pub(crate) fn poll(
    context: &Context<'_>,
    source: &HttpPollConfig,
    runtime: &tokio::runtime::Handle,
    committer: &mut Committer<'_, '_>,
) -> Result<(), InstanceError> {
    let mut client = Client {
        http: http_client(source)?,
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
        let position = committed
            .position
            .clone()
            .or_else(|| start(&source.pagination));
        let position = position.as_deref();
        let (url, query) = request(source, position);
        let page = client.page(&url, &query)?;
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

/// The items of a page: the list at `field` (a name or a JSON pointer), of at most `max`
/// items.
fn items<'p>(page: &'p Value, field: &str, max: usize) -> Result<&'p [Value], InstanceError> {
    let kind = match at(page, field) {
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

    const URL: &str = "https://api.example.gov.cn/v1/list";

    fn parse(extra: &str) -> Result<HttpPollConfig, String> {
        toml::from_str(&format!("url = \"{URL}\"\n{extra}")).map_err(|e| e.to_string())
    }

    fn source(pagination: &str) -> HttpPollConfig {
        parse(&format!("pagination = {pagination}")).expect("source parses")
    }

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn requests_name_their_parameters_as_configured() {
        /// (pagination, position, the URL asked for, its query)
        type Case<'a> = (&'a str, Option<&'a str>, &'a str, &'a [(&'a str, &'a str)]);
        let cases: [Case<'_>; 11] = [
            (
                r#"{ style = "page", page_size = 50 }"#,
                None,
                URL,
                &[("page", "1"), ("page_size", "50")],
            ),
            (
                r#"{ style = "page", page_size = 50, page_param = "pageNo", size_param = "size", first_page = 0 }"#,
                None,
                URL,
                &[("pageNo", "0"), ("size", "50")],
            ),
            (
                r#"{ style = "page", page_size = 50, page_param = "current", size_param = "size" }"#,
                Some("3"),
                URL,
                &[("current", "3"), ("size", "50")],
            ),
            (
                r#"{ style = "offset", limit = 20 }"#,
                None,
                URL,
                &[("offset", "0"), ("limit", "20")],
            ),
            (
                r#"{ style = "offset", limit = 20, offset_param = "start", limit_param = "rows" }"#,
                Some("40"),
                URL,
                &[("start", "40"), ("rows", "20")],
            ),
            (
                r#"{ style = "cursor", limit = 7 }"#,
                None,
                URL,
                &[("limit", "7")],
            ),
            (
                r#"{ style = "cursor", limit = 7, cursor_param = "scrollId", limit_param = "count" }"#,
                Some("c9"),
                URL,
                &[("count", "7"), ("scrollId", "c9")],
            ),
            (
                r#"{ style = "link", limit = 30, limit_param = "per_page" }"#,
                None,
                URL,
                &[("per_page", "30")],
            ),
            (
                r#"{ style = "link", limit = 30 }"#,
                Some("https://api.example.gov.cn/v1/list?page=2&per_page=30"),
                "https://api.example.gov.cn/v1/list?page=2&per_page=30",
                &[],
            ),
            (
                r#"{ style = "updated_since", limit = 8 }"#,
                None,
                URL,
                &[("updated_since", "1970-01-01T00:00:00Z"), ("limit", "8")],
            ),
            (
                r#"{ style = "updated_since", limit = 8, since_param = "modifiedAfter", limit_param = "size" }"#,
                Some("2025-03-01T00:00:00Z"),
                URL,
                &[("modifiedAfter", "2025-03-01T00:00:00Z"), ("size", "8")],
            ),
        ];
        for (pagination, position, url, query) in cases {
            let got = request(&source(pagination), position);
            assert_eq!(
                got,
                (url.to_owned(), pairs(query)),
                "{pagination} at {position:?}"
            );
        }
        // Where a listing starts: numbered pages at their first, offsets at 0.
        assert_eq!(
            start(&source(r#"{ style = "page", page_size = 5, first_page = 0 }"#).pagination)
                .as_deref(),
            Some("0")
        );
        assert_eq!(
            start(&source(r#"{ style = "offset", limit = 5 }"#).pagination).as_deref(),
            Some("0")
        );
        assert_eq!(
            start(&source(r#"{ style = "cursor", limit = 5 }"#).pagination),
            None
        );
    }

    /// Where a page leads: (pagination, position, body, items, `Link` next, then the next
    /// position and whether the listing ends, or the error's code).
    #[test]
    fn pages_lead_on_and_end() {
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Value,
            usize,
            Option<&'a str>,
            Result<(Option<&'a str>, bool), &'a str>,
        );
        let page = r#"{ style = "page", page_size = 2 }"#;
        let zero = r#"{ style = "page", page_size = 2, page_param = "pageNo", first_page = 0, end = { total_pages = "/data/pages" } }"#;
        let records = r#"{ style = "page", page_size = 2, size_param = "size", end = { total_records = "/data/total" } }"#;
        let more = r#"{ style = "page", page_size = 2, end = { has_more = "/result/hasMore" } }"#;
        let short = r#"{ style = "page", page_size = 2, end = "short_page" }"#;
        let offset = r#"{ style = "offset", limit = 2 }"#;
        let offset_short = r#"{ style = "offset", limit = 2, end = "short_page" }"#;
        let offset_pages = r#"{ style = "offset", limit = 2, end = { total_pages = "pages" } }"#;
        let cursor = r#"{ style = "cursor", limit = 2 }"#;
        let cursor_more = r#"{ style = "cursor", limit = 2, next_field = "/meta/next", has_more_field = "/meta/more" }"#;
        let link = r#"{ style = "link", limit = 2 }"#;
        let link_body = r#"{ style = "link", limit = 2, next_url_field = "/links/next" }"#;
        let since = r#"{ style = "updated_since", limit = 2 }"#;
        let p2 = "https://api.example.gov.cn/v1/list?page=2";
        let cases: Vec<Case<'_>> = vec![
            (
                page,
                Some("1"),
                json!({"total_pages": 3}),
                2,
                None,
                Ok((Some("2"), false)),
            ),
            (
                page,
                Some("3"),
                json!({"total_pages": 3}),
                2,
                None,
                Ok((Some("3"), true)),
            ),
            (
                page,
                Some("2"),
                json!({"total_pages": 1_000_000_000_000u64}),
                0,
                None,
                Ok((Some("2"), true)),
            ),
            (
                page,
                Some("1"),
                json!({"pages": 3}),
                2,
                None,
                Err("source_system"),
            ),
            (
                page,
                Some("x"),
                json!({"total_pages": 3}),
                2,
                None,
                Err("source_system"),
            ),
            (
                zero,
                None,
                json!({"data": {"pages": 2}}),
                2,
                None,
                Ok((Some("1"), false)),
            ),
            (
                zero,
                Some("1"),
                json!({"data": {"pages": 2}}),
                2,
                None,
                Ok((Some("1"), true)),
            ),
            (
                records,
                Some("1"),
                json!({"data": {"total": 5}}),
                2,
                None,
                Ok((Some("2"), false)),
            ),
            (
                records,
                Some("3"),
                json!({"data": {"total": 5}}),
                1,
                None,
                Ok((Some("3"), true)),
            ),
            (
                records,
                Some("2"),
                json!({"data": {"total": "4"}}),
                2,
                None,
                Ok((Some("2"), true)),
            ),
            // A repeating page (4 items where 2 were asked for) counts as full, not as 4.
            (
                records,
                Some("1"),
                json!({"data": {"total": 5}}),
                4,
                None,
                Ok((Some("2"), false)),
            ),
            // Fewer than asked for before the end: the server caps its pages.
            (
                records,
                Some("1"),
                json!({"data": {"total": 5}}),
                1,
                None,
                Err("page_size_mismatch"),
            ),
            (
                more,
                Some("1"),
                json!({"result": {"hasMore": true}}),
                2,
                None,
                Ok((Some("2"), false)),
            ),
            (
                more,
                Some("2"),
                json!({"result": {"hasMore": "false"}}),
                2,
                None,
                Ok((Some("2"), true)),
            ),
            (
                more,
                Some("2"),
                json!({"result": {}}),
                2,
                None,
                Err("source_system"),
            ),
            (short, Some("1"), json!({}), 2, None, Ok((Some("2"), false))),
            (short, Some("2"), json!({}), 1, None, Ok((Some("2"), true))),
            (
                offset,
                None,
                json!({"total": 5}),
                2,
                None,
                Ok((Some("2"), false)),
            ),
            (
                offset,
                Some("4"),
                json!({"total": 5}),
                1,
                None,
                Ok((Some("5"), true)),
            ),
            (
                offset,
                Some("2"),
                json!({"total": 5}),
                0,
                None,
                Ok((Some("2"), true)),
            ),
            (
                offset,
                Some("2"),
                json!({"total": 9}),
                4,
                None,
                Ok((Some("4"), false)),
            ),
            (
                offset_short,
                Some("0"),
                json!({}),
                2,
                None,
                Ok((Some("2"), false)),
            ),
            (
                offset_short,
                Some("2"),
                json!({}),
                1,
                None,
                Ok((Some("3"), true)),
            ),
            (
                offset_pages,
                Some("2"),
                json!({"pages": 3}),
                2,
                None,
                Ok((Some("4"), false)),
            ),
            (
                offset_pages,
                Some("4"),
                json!({"pages": 3}),
                1,
                None,
                Ok((Some("5"), true)),
            ),
            (
                cursor,
                None,
                json!({"next_cursor": "c2"}),
                2,
                None,
                Ok((Some("c2"), false)),
            ),
            (
                cursor,
                Some("c2"),
                json!({"next_cursor": null}),
                2,
                None,
                Ok((Some("c2"), true)),
            ),
            (
                cursor,
                Some("c2"),
                json!({"next_cursor": ""}),
                2,
                None,
                Ok((Some("c2"), true)),
            ),
            (
                cursor,
                None,
                json!({"next_cursor": 42}),
                2,
                None,
                Ok((Some("42"), false)),
            ),
            (
                cursor_more,
                None,
                json!({"meta": {"next": "c2", "more": true}}),
                2,
                None,
                Ok((Some("c2"), false)),
            ),
            (
                cursor_more,
                Some("c2"),
                json!({"meta": {"next": "c3", "more": false}}),
                2,
                None,
                Ok((Some("c2"), true)),
            ),
            (
                link,
                None,
                json!([]),
                2,
                Some("/v1/list?page=2"),
                Ok((Some(p2), false)),
            ),
            (
                link,
                None,
                json!([]),
                2,
                Some("?page=2"),
                Ok((Some(p2), false)),
            ),
            (link, Some(p2), json!([]), 2, None, Ok((Some(p2), true))),
            (
                link,
                None,
                json!([]),
                2,
                Some("https://elsewhere.example.com/steal"),
                Err("next_link_refused"),
            ),
            (
                link,
                None,
                json!([]),
                2,
                Some("file:///etc/passwd"),
                Err("next_link_refused"),
            ),
            (
                link_body,
                None,
                json!({"links": {"next": p2}}),
                2,
                Some("/ignored"),
                Ok((Some(p2), false)),
            ),
            (
                link_body,
                Some(p2),
                json!({"links": {"next": null}}),
                2,
                None,
                Ok((Some(p2), true)),
            ),
            (
                since,
                None,
                json!({"next_updated_since": "2025-03-01T00:00:00Z", "has_more": true}),
                2,
                None,
                Ok((Some("2025-03-01T00:00:00Z"), false)),
            ),
            (
                since,
                Some("2025-03-01T00:00:00Z"),
                json!({"next_updated_since": "2025-03-01T00:00:00Z", "has_more": false}),
                2,
                None,
                Ok((Some("2025-03-01T00:00:00Z"), true)),
            ),
        ];
        for (pagination, position, body, items, link, expected) in cases {
            let response = Response {
                body: body.clone(),
                url: URL.to_owned(),
                next_link: link.map(str::to_owned),
            };
            let got = next(&source(pagination), position, &response, items)
                .map(|n| (n.progress_position, n.at_end))
                .map_err(|e| e.code());
            let expected = expected.map(|(p, end)| (p.map(str::to_owned), end));
            assert_eq!(
                got, expected,
                "{pagination} at {position:?}: {body} ({items} items)"
            );
        }
        let allowed = parse(&format!(
            "pagination = {link}\nallow_cross_origin_redirects = true"
        ))
        .expect("source");
        let elsewhere = Response {
            body: json!([]),
            url: URL.to_owned(),
            next_link: Some("https://elsewhere.example.com/p2".to_owned()),
        };
        assert_eq!(
            next(&allowed, None, &elsewhere, 1)
                .expect("allowed")
                .progress_position
                .as_deref(),
            Some("https://elsewhere.example.com/p2")
        );
    }

    #[test]
    fn link_headers_name_the_next_page() {
        /// (`Link` header values, the `rel="next"` target or `Err` for a malformed one)
        type Case<'a> = (&'a [&'a str], Result<Option<&'a str>, ()>);
        let cases: [Case<'_>; 11] = [
            (
                &[r#"<https://a.example/p?page=2>; rel="next""#],
                Ok(Some("https://a.example/p?page=2")),
            ),
            (
                &[
                    r#"<https://a.example/p?page=1>; rel="prev", <https://a.example/p?page=3>; rel="next", <https://a.example/p?page=9>; rel="last""#,
                ],
                Ok(Some("https://a.example/p?page=3")),
            ),
            (
                &[
                    r#"<https://a.example/p?page=9>; rel="last""#,
                    r#"</p?page=2>;rel=next"#,
                ],
                Ok(Some("/p?page=2")),
            ),
            (
                &[r#"<https://a.example/p?a=1,2>; title="x, y; z"; rel="NEXT""#],
                Ok(Some("https://a.example/p?a=1,2")),
            ),
            (
                &[r#"<https://a.example/p2>; rel="next last""#],
                Ok(Some("https://a.example/p2")),
            ),
            (&[r#"<https://a.example/p2>; rel="nextpage""#], Ok(None)),
            // Only the first `rel` counts (RFC 8288 §3.3).
            (
                &[r#"<https://a.example/p2>; rel="prev"; rel="next""#],
                Ok(None),
            ),
            (
                &[r#"<https://a.example/p2>; title="say \"next\""; rel=next"#],
                Ok(Some("https://a.example/p2")),
            ),
            (&[], Ok(None)),
            (&[r#"https://a.example/p2; rel="next""#], Err(())),
            (&[r#"<https://a.example/p2>; rel="next"#], Err(())),
        ];
        for (values, expected) in cases {
            let got = link_target(values.iter().copied(), "next").map_err(|_| ());
            assert_eq!(got, expected.map(|t| t.map(str::to_owned)), "{values:?}");
        }
    }

    #[test]
    fn items_are_read_at_names_and_pointers() {
        let cases: [(&str, Value, Result<usize, &str>); 8] = [
            ("items", json!({"items": [1, 2]}), Ok(2)),
            (
                "/data/list",
                json!({"code": 0, "data": {"list": [1, 2, 3]}}),
                Ok(3),
            ),
            ("/data/0/rows", json!({"data": [{"rows": [1]}]}), Ok(1)),
            ("", json!([1, 2, 3, 4]), Ok(4)),
            ("/a~1b", json!({"a/b": [1]}), Ok(1)),
            (
                "/data/list",
                json!({"data": {"list": null}}),
                Err("page_invalid"),
            ),
            ("/data/list", json!({"data": []}), Err("page_invalid")),
            (
                "items",
                json!({"items": [1, 2, 3, 4, 5, 6]}),
                Err("page_too_many_items"),
            ),
        ];
        for (field, body, expected) in cases {
            let got = items(&body, field, 5)
                .map(<[Value]>::len)
                .map_err(|e| e.code());
            assert_eq!(got, expected, "{field} in {body}");
        }
    }

    #[test]
    fn header_texts_come_from_the_config_the_environment_or_a_file() {
        let dir = std::env::temp_dir().join(format!("http-poll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = dir.join("key");
        std::fs::write(&key, "k3y-from-file\n").expect("key");
        std::fs::write(dir.join("empty"), "\n").expect("empty");
        let path = std::env::var("PATH").expect("PATH is set");
        let pagination = r#"pagination = { style = "cursor", limit = 1 }"#;
        let config = parse(&format!(
            "{pagination}\nbearer_token = {{ file = {key:?} }}\n\
             headers = {{ \"X-Api-Key\" = {{ env = \"PATH\" }}, \"X-Region\" = \"530114\" }}"
        ))
        .expect("headers resolve");
        assert_eq!(
            config.bearer_token.as_ref().map(|t| t.value().as_bytes()),
            Some(&b"k3y-from-file"[..])
        );
        let headers: Vec<(&str, &[u8])> = config
            .headers
            .iter()
            .map(|(n, t)| (n.as_str(), t.value().as_bytes()))
            .collect();
        assert_eq!(
            headers,
            [("x-api-key", path.as_bytes()), ("x-region", &b"530114"[..])]
        );
        assert!(config.headers.iter().all(|(_, t)| t.value().is_sensitive()));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("k3y-from-file")
                && !shown.contains("530114")
                && shown.contains("env PATH"),
            "Debug shows where secrets come from, never them: {shown}"
        );

        // (headers, what the error must say)
        let missing = "HUITONG_TEST_SURELY_UNSET_VARIABLE";
        let cases = [
            (
                format!("{{ \"X-Api-Key\" = {{ env = \"{missing}\" }} }}"),
                format!("`{missing}` is not set"),
            ),
            (
                format!("{{ \"X-Api-Key\" = {{ file = {:?} }} }}", dir.join("nope")),
                "cannot read file".to_owned(),
            ),
            (
                format!("{{ \"X-Api-Key\" = {{ file = {:?} }} }}", dir.join("empty")),
                "is empty".to_owned(),
            ),
            (
                "{ \"X-Api-Key\" = { vault = \"k\" } }".to_owned(),
                "expected `env` or `file`".to_owned(),
            ),
            (
                "{ \"X-Api-Key\" = { env = \"PATH\", file = \"/k\" } }".to_owned(),
                "exactly one of".to_owned(),
            ),
            (
                "{ \"X-Api-Key\" = \"a\\nb\" }".to_owned(),
                "characters a header cannot carry".to_owned(),
            ),
            (
                "{ \"X Api Key\" = \"k\" }".to_owned(),
                "is not a header name".to_owned(),
            ),
            (
                "{ \"Host\" = \"evil.example\" }".to_owned(),
                "set by the connector".to_owned(),
            ),
        ];
        for (headers, wanted) in cases {
            let error = parse(&format!("{pagination}\nheaders = {headers}")).expect_err(&headers);
            assert!(error.contains(&wanted), "{headers}: {error}");
            assert!(
                error.contains("line 3"),
                "the error names its line: {error}"
            );
        }
        let error = parse(&format!(
            "{pagination}\nbearer_token = {{ env = \"{missing}\" }}"
        ))
        .expect_err("unset");
        assert!(
            error.contains(&format!("bearer_token: 环境变量 {missing} 未设置")),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A secret that does not resolve fails the start-up, naming the file, where in it, and
    /// the variable.
    #[test]
    fn a_missing_secret_is_a_configuration_error() {
        let text = "connector_id = \"c1\"\nregistry_url = \"http://127.0.0.1:9644\"\n\
                    [kafka]\nbootstrap = \"127.0.0.1:9092\"\n[[instance]]\nid = \"i1\"\n\
                    system_id = \"s1\"\nregion_code = \"500101\"\nlevel = \"county\"\n\
                    domain = \"vehicle\"\n[instance.source]\nkind = \"http_poll\"\n\
                    url = \"https://api.example.gov.cn/v1/list\"\n\
                    headers = { \"X-Api-Key\" = { env = \"HUITONG_TEST_UNSET_CQ_API_KEY\" } }\n\
                    pagination = { style = \"page\", page_size = 50, size_param = \"size\" }\n\
                    [instance.mapping]\nrecord_id = [\"id\"]\n";
        let error = crate::config::ConnectorConfig::parse(std::path::Path::new("c.toml"), text)
            .expect_err("the variable is not set")
            .to_string();
        assert!(
            error.starts_with("c.toml:")
                && error.contains("headers.X-Api-Key: 环境变量 HUITONG_TEST_UNSET_CQ_API_KEY")
                && error.contains("未设置"),
            "{error}"
        );
    }

    #[test]
    fn retry_after_is_read_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let date = |offset: i64| {
            httpdate::fmt_http_date(
                now.checked_add(Duration::from_secs(offset.max(0) as u64))
                    .and_then(|t| t.checked_sub(Duration::from_secs((-offset).max(0) as u64)))
                    .expect("time"),
            )
        };
        let cases: [(Option<String>, Option<Duration>); 7] = [
            (Some("120".to_owned()), Some(Duration::from_secs(120))),
            (Some(" 0 ".to_owned()), Some(Duration::ZERO)),
            (
                Some("18446744073709551616".to_owned()),
                Some(Duration::from_secs(u64::MAX)),
            ),
            (Some(date(30)), Some(Duration::from_secs(30))),
            (Some(date(-30)), Some(Duration::ZERO)),
            (Some("soon".to_owned()), None),
            (None, None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = &value {
                headers.insert(reqwest::header::RETRY_AFTER, value.parse().expect("header"));
            }
            assert_eq!(retry_after(&headers, now), expected, "{value:?}");
        }
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
