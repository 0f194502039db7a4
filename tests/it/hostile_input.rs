//! The hostile-input corpus (恶意输入语料): inputs written for this project as a hostile client
//! and careless regional systems would send them — push bodies, dropped files and HTTP APIs
//! that lie, loop, stall and overflow — against one real `connector` process. Every case
//! states its exact outcome: which records were written once, which were quarantined with
//! which code, what the client was told, how an instance ended. At the end the process is
//! still alive, its peak RSS stayed under 512 MiB, the raw and quarantine topics hold exactly
//! the expected records, and the connector's reconciliation balances.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use schemas::codec::Decoder;
use schemas::records::{Quarantine, RawInstitution, RawVehicle};
use schemas::registry::RegistryClient;
use schemas::{TopicKind, TopicSpec};
use serde_json::{Value, json};
use tests::{
    TestCa, binary, free_port, raw_record_ids, read_partition, source_record_id, start_registry,
    unique,
};
use tokio::io::AsyncWriteExt as _;

/// Hostile strings, each sent as a name by every source kind and written exactly as sent
/// (mapped sources trim surrounding whitespace, as they do for every value).
fn injections() -> Vec<String> {
    let mut list: Vec<String> = [
        "'; DROP TABLE vehicles; --",
        "\" OR \"1\"=\"1",
        "' UNION SELECT * FROM pg_shadow --",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "${jndi:ldap://127.0.0.1/a}",
        "{{7*7}}",
        "#{7*7}",
        "%s%s%s%n",
        "../../../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "=cmd|' /C calc'!A0",
        "+SUM(1+1)*cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "-2+3",
        "\u{0}nul",
        "line\r\nSet-Cookie: a=b",
        "tab\tseparated",
        "\u{202e}gnp.exe",
        "\u{200b}zero\u{200b}width",
        "🚗🚓🚑",
        "ｆｕｌｌ－ｗｉｄｔｈ　Ａ１２３",
        "雲A12345",
        "null",
        "NaN",
        "true",
        "-0",
        "1e309",
        "０００",
        " leading and trailing ",
        "\\u0000",
        "%00",
        "%0d%0a",
        "\u{feff}bom",
        "\u{1f}unit separator",
        "; rm -rf / ;",
        "$(reboot)",
        "`reboot`",
        "<!--",
        "]]>",
        "\"},{\"record_id\":\"forged\"",
        "\u{fffd}",
    ]
    .map(str::to_owned)
    .to_vec();
    list.push("a".repeat(10_000));
    list.push("中".repeat(3_000));
    list.push("😀".repeat(100));
    list
}

/// What the corpus expects, filled in case by case.
#[derive(Default)]
struct Expected {
    /// Raw topic → record keys, each written exactly as often as listed.
    written: BTreeMap<String, Vec<String>>,
    /// Quarantine key (`instance/location`) → error code.
    quarantined: BTreeMap<String, String>,
    /// Raw topic → record key → the name it must carry.
    names: BTreeMap<String, BTreeMap<String, String>>,
    /// Cases per area.
    cases: BTreeMap<&'static str, usize>,
}

impl Expected {
    fn case(&mut self, area: &'static str) {
        *self.cases.entry(area).or_default() += 1;
    }

    fn written(&mut self, topic: &str, key: &str) {
        self.written
            .entry(topic.to_owned())
            .or_default()
            .push(key.to_owned());
    }

    fn named(&mut self, topic: &str, key: &str, name: &str) {
        self.names
            .entry(topic.to_owned())
            .or_default()
            .insert(key.to_owned(), name.to_owned());
    }

    fn quarantined(&mut self, key: &str, code: &str) {
        let previous = self.quarantined.insert(key.to_owned(), code.to_owned());
        assert!(previous.is_none(), "quarantine key {key} expected twice");
    }
}

// --- the hostile HTTP server -----------------------------------------------------------------

/// Requests per scenario, for servers that answer differently the second time.
#[derive(Clone, Default)]
struct Hits(Arc<std::sync::Mutex<BTreeMap<String, usize>>>);

impl Hits {
    fn next(&self, scenario: &str) -> usize {
        let mut hits = self.0.lock().expect("hits");
        let n = hits.entry(scenario.to_owned()).or_default();
        *n += 1;
        *n
    }
}

#[derive(Clone)]
struct Hostile {
    hits: Hits,
    /// The other origin a redirect points to.
    elsewhere: String,
}

fn page(items: Value, next: Option<&str>) -> Response {
    axum::Json(json!({ "items": items, "next_cursor": next })).into_response()
}

fn item(id: &str) -> Value {
    json!({ "id": id, "name": format!("单位 {id}") })
}

async fn scenario(
    State(server): State<Hostile>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let hit = server.hits.next(&name);
    let cursor = query.get("cursor").map(String::as_str);
    match name.as_str() {
        "cycle" => match cursor {
            None => page(json!([item("cy1")]), Some("B")),
            Some("B") => page(json!([item("cy2")]), Some("A")),
            _ => page(json!([item("cy3")]), Some("B")),
        },
        "stuck" => axum::Json(json!({
            "items": [item("st1")],
            "next_updated_since": "1970-01-01T00:00:00Z",
            "has_more": true,
        }))
        .into_response(),
        "retry-huge" | "retry-date" | "retry-garbage" if hit == 1 => {
            let (status, value) = match name.as_str() {
                "retry-huge" => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "18446744073709551615".to_owned(),
                ),
                "retry-date" => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86_400)),
                ),
                _ => (StatusCode::TOO_MANY_REQUESTS, "soon".to_owned()),
            };
            (status, [(header::RETRY_AFTER, value)], "slow down").into_response()
        }
        "retry-huge" => page(json!([item("rh1")]), None),
        "retry-date" => page(json!([item("rd1")]), None),
        "retry-garbage" => page(json!([item("rg1")]), None),
        "redirect-away" => (
            StatusCode::FOUND,
            [(header::LOCATION, format!("{}/s/stolen", server.elsewhere))],
        )
            .into_response(),
        "redirect-home" => (StatusCode::FOUND, [(header::LOCATION, "/s/home")]).into_response(),
        "home" => page(json!([item("rdh1")]), None),
        "items-object" => axum::Json(json!({ "items": { "id": "x" } })).into_response(),
        "items-missing" => axum::Json(json!({ "data": [item("x")] })).into_response(),
        "items-null" => axum::Json(json!({ "items": null })).into_response(),
        "items-string" => axum::Json(json!({ "items": "[]" })).into_response(),
        "items-number" => axum::Json(json!({ "items": 0 })).into_response(),
        "huge-declared" => {
            let mut body = b"{\"items\":[".to_vec();
            body.resize(17 * 1024 * 1024, b' ');
            body.extend_from_slice(b"]}");
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        "endless" => {
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            let start =
                futures_util::stream::once(async { Ok(axum::body::Bytes::from("{\"items\":[")) });
            let rest =
                futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            axum::body::Body::from_stream(futures_util::StreamExt::chain(start, rest))
                .into_response()
        }
        "too-many" => {
            let items: Vec<Value> = (0..150_001).map(|i| json!({ "id": i })).collect();
            page(Value::Array(items), None)
        }
        "revised" => page(
            json!([
                { "id": "rv1", "name": "初报" },
                { "id": "rv1", "name": "更正" },
                { "id": "rv2", "name": "同一份" },
                { "id": "rv2", "name": "同一份" },
            ]),
            None,
        ),
        "repeated" => match cursor {
            None => page(json!([item("rp1"), item("rp2")]), Some("2")),
            _ => page(json!([item("rp1"), item("rp2")]), None),
        },
        "html" => (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>系统维护中</body></html>",
        )
            .into_response(),
        "deep" => {
            let body = format!("{{\"items\":[{}]}}", "[".repeat(100_000));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        "not-objects" => page(json!([1, "x", null, [], true]), None),
        "big-item" => page(json!([{ "id": "bi1", "name": "x".repeat(600_000) }]), None),
        "injection" => page(
            Value::Array(
                injections()
                    .iter()
                    .enumerate()
                    .map(|(i, s)| json!({ "id": format!("inj-h-{i}"), "name": s }))
                    .collect(),
            ),
            None,
        ),
        "lying-total" => {
            let page_no = query.get("page").map_or("1", String::as_str);
            let items = if page_no == "1" {
                json!([item("lt1")])
            } else {
                json!([])
            };
            axum::Json(json!({ "items": items, "total_pages": 1_000_000_000_000u64 }))
                .into_response()
        }
        "big-page" => page(
            Value::Array(
                (0..100_000)
                    .map(|i| json!({ "id": format!("bp{i}") }))
                    .collect(),
            ),
            None,
        ),
        "error-5xx" => (StatusCode::INTERNAL_SERVER_ERROR, "内部错误").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// One `http_poll` instance of the corpus and how it must end.
struct HttpCase {
    scenario: &'static str,
    pagination: &'static str,
    /// Keys written, in order of appearance.
    written: &'static [&'static str],
    /// Quarantined: location and code.
    quarantined: &'static [(&'static str, &'static str)],
    /// `None`: running; else the code it failed with.
    fails: Option<&'static str>,
}

/// What the raw vehicle schema needs beside what the hostile API sends.
const HTTP_CONSTANTS: &str =
    r#"constants = { plate = "云A12345", owner_uscc = "11530114015162553X" }"#;

const CURSOR: &str = r#"{ style = "cursor", limit = 100 }"#;

fn http_cases() -> Vec<HttpCase> {
    let case = |scenario, written, quarantined, fails| HttpCase {
        scenario,
        pagination: CURSOR,
        written,
        quarantined,
        fails,
    };
    vec![
        // A cursor cycling A→B→A wrote each record 4,128 times in 3 minutes.
        case("cycle", &["cy1", "cy2"], &[], Some("cursor_cycle")),
        HttpCase {
            pagination: r#"{ style = "updated_since", limit = 100 }"#,
            ..case("stuck", &["st1"], &[], Some("cursor_cycle"))
        },
        // `Retry-After: 18446744073709551615` panicked the instance; 86400 slept a day.
        case("retry-huge", &["rh1"], &[], None),
        case("retry-date", &["rd1"], &[], None),
        case("retry-garbage", &["rg1"], &[], None),
        // Redirects to another origin were followed.
        case("redirect-away", &[], &[], Some("redirect_refused")),
        case("redirect-home", &["rdh1"], &[], None),
        // A page whose items field is not a list counted as empty.
        case("items-object", &[], &[], Some("page_invalid")),
        case("items-missing", &[], &[], Some("page_invalid")),
        case("items-null", &[], &[], Some("page_invalid")),
        case("items-string", &[], &[], Some("page_invalid")),
        case("items-number", &[], &[], Some("page_invalid")),
        // Whole bodies were buffered (200 MB per attempt from a never-ending one).
        case("huge-declared", &[], &[], Some("page_too_large")),
        case("endless", &[], &[], Some("page_too_large")),
        case("too-many", &[], &[], Some("page_too_many_items")),
        // A revised report with the same record id was skipped as a "repeated page".
        case("revised", &["rv1", "rv1", "rv2"], &[], None),
        case("repeated", &["rp1", "rp2"], &[], None),
        case("html", &[], &[], Some("source_system")),
        case("deep", &[], &[], Some("source_system")),
        case(
            "not-objects",
            &[],
            &[
                ("start#1", "item_not_object"),
                ("start#2", "item_not_object"),
                ("start#3", "item_not_object"),
                ("start#4", "item_not_object"),
                ("start#5", "item_not_object"),
            ],
            None,
        ),
        // A record over the producer's message size failed its instance forever.
        case("big-item", &[], &[("start#1", "record_too_large")], None),
        HttpCase {
            pagination: r#"{ style = "page", page_size = 100 }"#,
            ..case("lying-total", &["lt1"], &[], None)
        },
        case("error-5xx", &[], &[], Some("source_system")),
    ]
}

// --- files -----------------------------------------------------------------------------------

const HEADER: &str = "车架号,号牌号码,单位代码,单位名称";

fn csv_of(rows: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER.split(',')).expect("header");
    for (id, name) in rows {
        writer
            .write_record([*id, "云A12345", "11530114015162553X", *name])
            .expect("row");
    }
    writer.into_inner().expect("csv")
}

fn xlsx_of(cells: &[(u32, u16, &str)]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for &(row, col, text) in cells {
        sheet.write_string(row, col, text).expect("cell");
    }
    workbook.save_to_buffer().expect("xlsx")
}

fn header_cells() -> Vec<(u32, u16, &'static str)> {
    HEADER
        .split(',')
        .enumerate()
        .map(|(i, h)| (0, i as u16, h))
        .collect()
}

/// A zip whose one part unpacks to `size` bytes of spaces (a few KiB packed).
fn zip_bomb(size: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file::<_, ()>(
        "xl/worksheets/sheet1.xml",
        zip::write::FileOptions::default(),
    )
    .expect("part");
    let block = vec![b' '; 1024 * 1024];
    for _ in 0..size / block.len() {
        zip.write_all(&block).expect("write");
    }
    zip.finish().expect("zip").into_inner()
}

/// Writes the drop folder's files and records what must become of each.
fn drop_files(dir: &Path, outside: &Path, expected: &mut Expected, raw: &str) {
    let q = |name: &str| format!("files/{name}");
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect(name);
    let area = |expected: &mut Expected| expected.case("file_drop");

    write(
        "good.csv",
        &csv_of(&[("g1", "甲"), ("g2", "乙"), ("g3", "丙")]),
    );
    for k in ["g1", "g2", "g3"] {
        expected.written(raw, k);
    }
    area(expected);
    // The same file under another name: recognised by checksum, moved to done/ unread.
    write(
        "good-again.csv",
        &csv_of(&[("g1", "甲"), ("g2", "乙"), ("g3", "丙")]),
    );
    area(expected);

    let text = format!("{HEADER}\ngb1,云A1,x,呈贡区\n");
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    write("gbk.csv", &gbk);
    expected.quarantined(&q("gbk.csv"), "file_unreadable");
    area(expected);
    let garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    write("garbage.csv", &garbage);
    expected.quarantined(&q("garbage.csv"), "file_unreadable");
    area(expected);
    for (name, bytes) in [
        ("empty.csv", b"".as_slice()),
        ("bom.csv", b"\xEF\xBB\xBF".as_slice()),
        ("header-only.csv", HEADER.as_bytes()),
    ] {
        write(name, bytes);
        area(expected);
    }
    let wide: Vec<String> = (0..2000).map(|i| format!("列{i}")).collect();
    write("wide.csv", wide.join(",").as_bytes());
    expected.quarantined(&q("wide.csv"), "file_too_wide");
    area(expected);

    let long = "长".repeat(30_000);
    write(
        "long-row.csv",
        &csv_of(&[("lr1", "正常"), ("lr2", &long), ("lr3", "正常")]),
    );
    expected.written(raw, "lr1");
    expected.written(raw, "lr3");
    expected.quarantined(&q("long-row.csv:3"), "row_too_long");
    area(expected);

    let many: Vec<(String, &str)> = (0..600).map(|i| (format!("mr{i}"), "x")).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    write("many-rows.csv", &csv_of(&many));
    for (id, _) in &many[..500] {
        expected.written(raw, id);
    }
    expected.quarantined(&q("many-rows.csv:502"), "file_too_many_rows");
    area(expected);

    let big = std::fs::File::create(dir.join("too-big.csv")).expect("file");
    big.set_len(5 * 1024 * 1024).expect("size");
    expected.quarantined(&q("too-big.csv"), "file_too_large");
    area(expected);

    // Files outside the folder, reached by symlink: never read (they ended up in quarantine).
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "SECRET-TOKEN").expect("secret");
    for (name, target) in [
        ("passwd.csv", PathBuf::from("/etc/passwd")),
        ("secrets.csv", secret.clone()),
        ("folder.csv", outside.to_owned()),
    ] {
        std::os::unix::fs::symlink(&target, dir.join(name)).expect("symlink");
        expected.quarantined(&q(name), "file_refused");
        area(expected);
    }
    let fifo = Command::new("mkfifo")
        .arg(dir.join("fifo.csv"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    expected.quarantined(&q("fifo.csv"), "file_refused");
    area(expected);

    // Left alone: a copy tool's partial file, and what is not an export.
    write(".partial.csv", &csv_of(&[("hidden1", "x")]));
    write("notes.txt", b"not an export");
    area(expected);
    area(expected);

    write(
        "fields.csv",
        format!("{HEADER}\nfc1,云A1,11530114015162553X,甲\nfc2,云A2\n").as_bytes(),
    );
    expected.written(raw, "fc1");
    expected.quarantined(&q("fields.csv:3"), "row_unreadable");
    area(expected);
    write(
        "quote.csv",
        format!("{HEADER}\nqu1,云A1,11530114015162553X,甲\n\"qu2,云A2,x,y\n").as_bytes(),
    );
    expected.written(raw, "qu1");
    expected.quarantined(&q("quote.csv:3"), "row_unreadable");
    area(expected);
    write(
        "crlf.csv",
        format!("{HEADER}\r\ncr1,云A1,11530114015162553X,\"两行\r\n名称\"\r\ncr2,云A2,x,乙\r\n")
            .as_bytes(),
    );
    expected.written(raw, "cr1");
    expected.written(raw, "cr2");
    expected.named(raw, "cr1", "两行\r\n名称");
    area(expected);

    let hostile = injections();
    let rows: Vec<(String, &str)> = hostile
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("inj-f-{i}"), s.as_str()))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    write("injection.csv", &csv_of(&rows));
    for (id, name) in &rows {
        expected.written(raw, id);
        expected.named(raw, id, name.trim());
        area(expected);
    }

    // Workbooks.
    let row = |r: u32, id: &'static str| -> [(u32, u16, &'static str); 4] {
        [
            (r, 0, id),
            (r, 1, "云A12345"),
            (r, 2, "11530114015162553X"),
            (r, 3, "单位"),
        ]
    };
    let mut cells = header_cells();
    cells.extend(row(1, "x1"));
    cells.extend(row(2, "x2"));
    let good = xlsx_of(&cells);
    write("good.xlsx", &good);
    expected.written(raw, "x1");
    expected.written(raw, "x2");
    area(expected);
    // A sheet declaring XFD1048576 made the connector try to allocate 512 GiB, on every
    // restart.
    let mut cells = header_cells();
    cells.extend(row(1, "xf1"));
    cells.push((1_048_575, 16_383, "远处"));
    write("far-cell.xlsx", &xlsx_of(&cells));
    expected.written(raw, "xf1");
    area(expected);
    let mut cells = header_cells();
    cells.extend(row(1_048_575, "xr-far"));
    write("far-row.xlsx", &xlsx_of(&cells));
    expected.written(raw, "xr-far");
    area(expected);
    // Shared strings of 3 MiB (limit 2 MiB here; a 300 MB one took RSS to 1.4 GB).
    let mut cells = header_cells();
    let texts: Vec<String> = (0..300)
        .map(|i| format!("{i:05}{}", "字".repeat(3_400)))
        .collect();
    for (i, text) in texts.iter().enumerate() {
        cells.push((i as u32 + 1, 3, text));
    }
    write("shared-strings.xlsx", &xlsx_of(&cells));
    expected.quarantined(&q("shared-strings.xlsx"), "xlsx_part_too_large");
    area(expected);
    write("zip-bomb.xlsx", &zip_bomb(100 * 1024 * 1024));
    expected.quarantined(&q("zip-bomb.xlsx"), "xlsx_part_too_large");
    area(expected);
    write("truncated.xlsx", &good[..500]);
    expected.quarantined(&q("truncated.xlsx"), "file_unreadable");
    area(expected);
    write("renamed.xlsx", &csv_of(&[("rn1", "x")]));
    expected.quarantined(&q("renamed.xlsx"), "file_unreadable");
    area(expected);
    write("empty-sheet.xlsx", &xlsx_of(&[]));
    area(expected);
}

// --- push --------------------------------------------------------------------------------------

/// The push endpoint's HTTPS client and what it needs.
struct Pusher {
    http: reqwest::Client,
    base: String,
}

impl Pusher {
    async fn post(
        &self,
        token: Option<&str>,
        domain: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/push/v1/{domain}/batches", self.base))
            .body(body);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a JSON answer ({status}), not {text:?}: {e}"));
        (status, body)
    }

    async fn json(&self, token: &str, domain: &str, body: &Value) -> (u16, Value) {
        self.post(
            Some(token),
            domain,
            Some("application/json"),
            serde_json::to_vec(body).expect("JSON"),
        )
        .await
    }
}

/// A vehicle record of `region`, owned by a unit registered there.
fn vehicle(id: &str, region: &str) -> Value {
    json!({
        "record_id": id, "region_code": region, "vin": id, "plate": "云A12345",
        "owner_uscc": format!("11{region}015162553X"), "owner_name": "呈贡区机关事务管理局",
    })
}

fn batch(id: &str, records: Vec<Value>) -> Value {
    json!({ "batch_id": id, "records": records })
}

/// The per-record codes of an answer (`accepted` for accepted records).
fn codes(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results in {body}"))
        .iter()
        .map(|r| {
            r["code"]
                .as_str()
                .or(r["status"].as_str())
                .expect("code")
                .to_owned()
        })
        .collect()
}

async fn push_cases(pusher: &Pusher, expected: &mut Expected, prefix: &str) {
    let vehicles = format!("{prefix}vehicle");
    let institutions = format!("{prefix}institution");
    let county = "county-token";

    // Bodies that are not batches: 400, nothing written.
    let mut deep = "[".repeat(10_000);
    deep.insert_str(0, "{\"batch_id\":\"d\",\"records\":");
    let not_batches: Vec<Vec<u8>> = [
        "",
        "{",
        "}",
        "null",
        "[]",
        "42",
        "\"text\"",
        "{\"batch_id\":1,\"records\":[]}",
        "{\"records\":[]}",
        "{\"batch_id\":\"x\"}",
        "{\"batch_id\":\"x\",\"records\":{}}",
        "{\"batch_id\":\"x\",\"records\":\"a\"}",
        "{\"batch_id\":\"x\",\"records\":[NaN]}",
        "{\"batch_id\":\"x\",\"records\":[]} trailing",
        "{\"batch_id\":\"x\",/* comment */\"records\":[]}",
        "{'batch_id':'x','records':[]}",
        "{\"batch_id\":\"x\",\"records\":[{\"record_id\":\"a\"",
        "{\"batch_id\":\"x\",\"records\":[1e999999]}",
        "{\"batch_id\":\"x\u{1}\",\"records\":[]}",
        "{\"batch_id\":\"\\ud800\",\"records\":[]}",
        "{\"batch_id\":\"x\",\"batch_id\":\"y\",\"records\":[]}",
        "\u{feff}{\"batch_id\":\"x\",\"records\":[]}",
        &deep,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([
        b"\xff\xfe{\x00}\x00".to_vec(),
        encoding_rs::GBK
            .encode("{\"batch_id\":\"批次\",\"records\":[]}")
            .0
            .into_owned(),
    ])
    .collect();
    for body in not_batches {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (status, answer) = pusher
            .post(Some(county), "vehicle", Some("application/json"), body)
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("batch_invalid")),
            "{shown:?}: {answer}"
        );
        expected.case("push");
    }

    // Not JSON by its Content-Type: 415.
    let one = serde_json::to_vec(&batch("ct", vec![vehicle("ct1", "530114")])).expect("JSON");
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
    ] {
        let (status, answer) = pusher
            .post(Some(county), "vehicle", content_type, one.clone())
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (415, Some("content_type")),
            "{content_type:?}"
        );
        expected.case("push");
    }
    let (status, answer) = pusher
        .post(
            Some(county),
            "vehicle",
            Some("Application/JSON; charset=utf-8"),
            one,
        )
        .await;
    assert_eq!((status, codes(&answer)), (200, vec!["accepted".to_owned()]));
    expected.written(&vehicles, "ct1");
    expected.case("push");

    // Over the limits: 413 in the house error shape.
    let mut huge = serde_json::to_vec(&batch("huge", vec![])).expect("JSON");
    huge.splice(1..1, vec![b' '; 17 * 1024 * 1024]);
    let (status, answer) = pusher
        .post(Some(county), "vehicle", Some("application/json"), huge)
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("body_too_large"))
    );
    expected.case("push");
    let many: Vec<Value> = (0..150_001).map(|_| json!(1)).collect();
    let (status, answer) = pusher.json(county, "vehicle", &batch("many", many)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("batch_too_large"))
    );
    expected.case("push");

    // Batch ids the endpoint does not take.
    for id in [
        String::new(),
        "   ".to_owned(),
        "b".repeat(129),
        "b".repeat(10_000),
        "line\nbreak".to_owned(),
        "tab\tid".to_owned(),
        "nul\u{0}".to_owned(),
        "esc\u{1b}[31m".to_owned(),
    ] {
        let (status, answer) = pusher
            .json(
                county,
                "vehicle",
                &batch(&id, vec![vehicle("never", "530114")]),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("batch_id_invalid")),
            "{id:?}"
        );
        expected.case("push");
    }
    // ...and ones it takes as opaque text.
    for (i, id) in [
        "b".repeat(128),
        "批次-2025年3月".to_owned(),
        "'; DROP TABLE batches; --".to_owned(),
        "../../etc/passwd".to_owned(),
        "<script>".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let key = format!("bid{i}");
        let (status, answer) = pusher
            .json(county, "vehicle", &batch(id, vec![vehicle(&key, "530114")]))
            .await;
        assert_eq!((status, codes(&answer)), (200, vec!["accepted".to_owned()]));
        expected.written(&vehicles, &key);
        expected.case("push");
    }

    // Who may push what.
    let body = serde_json::to_vec(&batch("auth", vec![vehicle("auth1", "530114")])).expect("JSON");
    for (token, domain, status, code) in [
        (None, "vehicle", 401, "unauthenticated"),
        (Some("forged"), "vehicle", 401, "unauthenticated"),
        (Some(""), "vehicle", 401, "unauthenticated"),
        // A token bound to one system pushed any domain.
        (Some(county), "energy-report", 403, "domain_not_allowed"),
        (Some(county), "vehicle-position", 403, "domain_not_allowed"),
        (Some(county), "cars", 404, "unknown_domain"),
        (Some(county), &"x".repeat(5_000), 404, "unknown_domain"),
    ] {
        let (got, answer) = pusher
            .post(token, domain, Some("application/json"), body.clone())
            .await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{token:?} → {}",
            &domain[..domain.len().min(20)]
        );
        expected.case("push");
    }

    // Records, each answered on its own.
    let mut records: Vec<(Value, &str)> = vec![
        (json!(1), "record_invalid"),
        (json!("x"), "record_invalid"),
        (json!(null), "record_invalid"),
        (json!([]), "record_invalid"),
        (json!(true), "record_invalid"),
        (
            json!({ "region_code": "530114", "vin": "a" }),
            "record_invalid",
        ),
        (
            json!({ "record_id": "", "region_code": "530114" }),
            "record_invalid",
        ),
        (
            json!({ "record_id": "   ", "region_code": "530114" }),
            "record_invalid",
        ),
        (
            json!({ "record_id": 123, "region_code": "530114" }),
            "record_invalid",
        ),
        (
            json!({ "record_id": null, "region_code": "530114" }),
            "record_invalid",
        ),
        (
            json!({ "record_id": ["a"], "region_code": "530114" }),
            "record_invalid",
        ),
        (json!({ "record_id": "rc1" }), "record_invalid"),
        (
            json!({ "record_id": "rc2", "region_code": 530114 }),
            "record_invalid",
        ),
        (
            json!({ "record_id": "rc3", "region_code": null }),
            "record_invalid",
        ),
        (
            json!({ "record_id": "rc4", "region_code": "530114", "owner_uscc": 11 }),
            "record_invalid",
        ),
    ];
    // Out of the county's scope, each with a unit registered there.
    for region in [
        "530102", "530100", "530000", "500154", "150121", "110101", "532901",
    ] {
        records.push((vehicle(&format!("oos-{region}"), region), "out_of_scope"));
    }
    // Forged regions: the envelope says the county, the record says elsewhere.
    for uscc_region in ["500154", "530102", "110101", "150121", "532901", "530181"] {
        let mut record = vehicle(&format!("forged-{uscc_region}"), "530114");
        record["owner_uscc"] = json!(format!("11{uscc_region}015162553X"));
        records.push((record, "region_mismatch"));
    }
    // A unit registered by the province, its vehicle in the county: the record's own division
    // code lies within the USCC's region and is the more specific, so the county decides.
    let mut nested = vehicle("nested-530000", "530114");
    nested["owner_uscc"] = json!("11530000015162553X");
    records.push((nested, "accepted"));
    for (region, uscc) in [
        ("5301", "11530114015162553X"),
        ("53011X", "11530114015162553X"),
        ("", "11530114015162553X"),
        ("５３０１１４", "11530114015162553X"),
        ("530114", "11"),
        ("530114", "11ABCDEF015162553X"),
    ] {
        let mut record = vehicle(&format!("bad-{}", records.len()), region);
        record["owner_uscc"] = json!(uscc);
        records.push((record, "region_invalid"));
    }
    // Withdrawn codes stand for the codes in force: 530121 呈贡县 is 530114 呈贡区.
    let mut withdrawn = vehicle("wd1", "530121");
    withdrawn["owner_uscc"] = json!("11530121015162553X");
    records.push((withdrawn, "accepted"));
    let mut withdrawn_uscc = vehicle("wd2", "530114");
    withdrawn_uscc["owner_uscc"] = json!("11530121015162553X");
    records.push((withdrawn_uscc, "accepted"));
    // A record over the producer's message size gave 503 forever.
    let mut big = vehicle("big1", "530114");
    big["owner_name"] = json!("大".repeat(200_000));
    records.push((big, "record_too_large"));
    // Shapes the raw schema refuses.
    let mut shape = vehicle("shape1", "530114");
    shape["plate"] = json!({ "nested": true });
    records.push((shape, "raw_shape"));
    let mut shape = vehicle("shape2", "530114");
    shape["purchase_price"] = json!("18.5");
    records.push((shape, "raw_shape"));
    // Hostile text is data: written as sent.
    let hostile = injections();
    for (i, name) in hostile.iter().enumerate() {
        let mut record = vehicle(&format!("inj-p-{i}"), "530114");
        record["owner_name"] = json!(name);
        records.push((record, "accepted"));
    }
    for id in ["id/with/slashes", "id\nwith\nbreaks", "标识-中文"] {
        records.push((vehicle(id, "530114"), "accepted"));
    }
    let (status, answer) = pusher
        .json(
            county,
            "vehicle",
            &batch("records", records.iter().map(|(r, _)| r.clone()).collect()),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let want: Vec<&str> = records.iter().map(|(_, c)| *c).collect();
    assert_eq!(codes(&answer), want);
    for (record, code) in &records {
        if *code == "accepted" {
            let key = record["record_id"].as_str().expect("id");
            expected.written(&vehicles, key);
            if key.starts_with("inj-p-") {
                expected.named(&vehicles, key, record["owner_name"].as_str().expect("name"));
            }
        }
        expected.case("push");
    }

    // The forged-region case of the issue: a county's institution with a Chongqing USCC was
    // published under 500154.
    let institution = |id: &str, region: &str, uscc: &str| json!({ "record_id": id, "region_code": region, "uscc": uscc, "name": "机关" });
    let (status, answer) = pusher
        .json(
            county,
            "institution",
            &batch(
                "inst",
                vec![
                    institution("i-ok", "530114", "11530114015162553X"),
                    institution("i-forged", "530114", "11500154015162553X"),
                    institution("i-away", "500154", "11500154015162553X"),
                    institution("i-city-registered", "530114", "11530100015162553X"),
                ],
            ),
        )
        .await;
    assert_eq!(
        (status, codes(&answer)),
        (
            200,
            ["accepted", "region_mismatch", "out_of_scope", "accepted"]
                .map(str::to_owned)
                .to_vec()
        )
    );
    expected.written(&institutions, "i-ok");
    expected.written(&institutions, "i-city-registered");
    for _ in 0..4 {
        expected.case("push");
    }

    // Batch ids: remembered per (system, domain), only with what they committed.
    let first = batch(
        "b-1",
        vec![vehicle("bb1", "530114"), vehicle("bb2", "530114")],
    );
    let (status, answer) = pusher.json(county, "vehicle", &first).await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(2)));
    expected.written(&vehicles, "bb1");
    expected.written(&vehicles, "bb2");
    let (status, answer) = pusher.json(county, "vehicle", &first).await;
    assert_eq!(
        (
            status,
            answer["duplicate"].as_bool(),
            answer["accepted"].as_u64()
        ),
        (200, Some(true), Some(2)),
        "the same batch again: acknowledged, not written"
    );
    let spaced = serde_json::to_string_pretty(&first).expect("JSON");
    let (status, answer) = pusher
        .post(
            Some(county),
            "vehicle",
            Some("application/json"),
            spaced.into_bytes(),
        )
        .await;
    assert_eq!((status, answer["duplicate"].as_bool()), (200, Some(true)));
    let changed = batch("b-1", vec![vehicle("bb3", "530114")]);
    let (status, answer) = pusher.json(county, "vehicle", &changed).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("batch_id_reused")),
        "the same id with other records is refused, not acknowledged"
    );
    // The same id in another domain is another batch.
    let (status, answer) = pusher
        .json(
            county,
            "institution",
            &batch(
                "b-1",
                vec![institution("i-b1", "530114", "11530114015162553X")],
            ),
        )
        .await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(1)));
    expected.written(&institutions, "i-b1");
    // A batch with every record rejected is not remembered: corrected, it is written.
    let (status, _) = pusher
        .json(
            county,
            "vehicle",
            &batch("b-2", vec![vehicle("bc1", "500154")]),
        )
        .await;
    assert_eq!(status, 403);
    let (status, answer) = pusher
        .json(
            county,
            "vehicle",
            &batch("b-2", vec![vehicle("bc1", "530114")]),
        )
        .await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(1)));
    expected.written(&vehicles, "bc1");
    let (status, answer) = pusher
        .json(
            county,
            "vehicle",
            &batch("b-3", vec![json!({ "record_id": "bd1" })]),
        )
        .await;
    assert_eq!(
        (status, codes(&answer)),
        (200, vec!["record_invalid".to_owned()])
    );
    let (status, answer) = pusher
        .json(
            county,
            "vehicle",
            &batch("b-3", vec![vehicle("bd1", "530114")]),
        )
        .await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(1)));
    expected.written(&vehicles, "bd1");
    for _ in 0..9 {
        expected.case("push");
    }
    // 100 long batch ids made every later push of that system fail with 503, across
    // restarts: the remembered ids are fixed-size hashes.
    let city = "city-token";
    for i in 0..100 {
        let id = format!("{i:03}{}", "L".repeat(125));
        let key = format!("long-{i}");
        let (status, answer) = pusher
            .json(city, "vehicle", &batch(&id, vec![vehicle(&key, "530114")]))
            .await;
        assert_eq!(status, 200, "long batch id {i}: {answer}");
        expected.written(&vehicles, &key);
    }
    let (status, answer) = pusher
        .json(
            city,
            "vehicle",
            &batch("after-long", vec![vehicle("after-long", "530114")]),
        )
        .await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(1)));
    expected.written(&vehicles, "after-long");
    expected.case("push");
    expected.case("push");
}

/// A TLS connection to the push endpoint over a blocking socket, for clients that misbehave
/// below HTTP.
fn tls_connection(
    push: std::net::SocketAddr,
    ca_pem: &str,
) -> (rustls::ClientConnection, std::net::TcpStream) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connection =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().expect("name"))
            .expect("TLS client");
    let socket = std::net::TcpStream::connect(push).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    (connection, socket)
}

/// What a slow client gets: the start of the answer (or nothing) and how long it took.
fn slow_request(
    push: std::net::SocketAddr,
    ca_pem: &str,
    parts: &[&[u8]],
    pause: Duration,
) -> (String, Duration) {
    use std::io::{Read as _, Write as _};
    let (mut connection, mut socket) = tls_connection(push, ca_pem);
    let mut tls = rustls::Stream::new(&mut connection, &mut socket);
    let started = Instant::now();
    for part in parts {
        if tls.write_all(part).and_then(|()| tls.flush()).is_err() {
            break;
        }
        std::thread::sleep(pause);
    }
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// Clients that open connections and send nothing, a header a line at a time, or a body that
/// never comes: each connection is closed within the timeouts, and the endpoint still
/// answers. Slow clients held connections open indefinitely.
async fn slow_clients(
    push: std::net::SocketAddr,
    ca: &TestCa,
    pusher: &Pusher,
    expected: &mut Expected,
    vehicles: &str,
) {
    use tokio::io::AsyncReadExt as _;
    // Far more idle connections than `max_connections`, none of them finishing a handshake.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(push).await.expect("connect"));
    }
    let started = Instant::now();
    for mut stream in idle {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "an idle connection is closed"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed within the handshake timeout"
    );
    expected.case("push_server");

    let ca_pem = ca.pem.clone();
    let (header_answer, header_took, body_answer, body_took) =
        tokio::task::spawn_blocking(move || {
            // Headers a line every second: the header timeout (2 s) ends it.
            let (header_answer, header_took) = slow_request(
                push,
                &ca_pem,
                &[
                    b"POST /push/v1/vehicle/batches HTTP/1.1\r\n",
                    b"Host: localhost\r\n",
                    b"X-Slow-1: a\r\n",
                    b"X-Slow-2: b\r\n",
                    b"X-Slow-3: c\r\n",
                    b"X-Slow-4: d\r\n",
                    b"X-Slow-5: e\r\n",
                ],
                Duration::from_secs(1),
            );
            // A complete header, then a body that stops: 408 after the body timeout (2 s).
            let (body_answer, body_took) = slow_request(
                push,
                &ca_pem,
                &[
                    b"POST /push/v1/vehicle/batches HTTP/1.1\r\nHost: localhost\r\n\
                    Authorization: Bearer county-token\r\nContent-Type: application/json\r\n\
                    Content-Length: 100\r\n\r\n{\"batch_id\"",
                ],
                Duration::from_secs(5),
            );
            (header_answer, header_took, body_answer, body_took)
        })
        .await
        .expect("slow clients");
    assert!(
        header_took < Duration::from_secs(6) && !header_answer.starts_with("HTTP/1.1 2"),
        "a header dribbled in is cut off: {header_answer:?} after {header_took:?}"
    );
    expected.case("push_server");
    assert!(
        body_answer.starts_with("HTTP/1.1 408") && body_answer.contains("body_timeout"),
        "{body_answer:?}"
    );
    assert!(body_took < Duration::from_secs(7), "{body_took:?}");
    expected.case("push_server");

    let (status, _) = pusher
        .json(
            "county-token",
            "vehicle",
            &batch("after-slow", vec![vehicle("after-slow", "530114")]),
        )
        .await;
    assert_eq!(status, 200, "the endpoint answers after the flood");
    expected.written(vehicles, "after-slow");
    expected.case("push_server");
}

// --- the run -----------------------------------------------------------------------------------

/// Peak resident memory of process `pid`, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_quarantined_or_refused_and_nothing_dies() {
    let (_registry, registry_url) = start_registry().await;
    let registry = Arc::new(RegistryClient::new(&registry_url).expect("client"));
    let raw_files = unique("raw-files");
    let raw_http = unique("raw-http");
    let prefix = format!("{}.", unique("push"));
    let quarantine = unique("quarantine");
    let progress = unique("progress");
    let mut specs: Vec<TopicSpec> = [&raw_files, &raw_http]
        .into_iter()
        .map(|name| TopicSpec {
            name: name.clone(),
            kind: TopicKind::Raw,
            partitions: 1,
        })
        .collect();
    for domain in ["vehicle", "institution"] {
        specs.push(TopicSpec {
            name: format!("{prefix}{domain}"),
            kind: TopicKind::Raw,
            partitions: 1,
        });
    }
    specs.push(TopicSpec {
        name: quarantine.clone(),
        kind: TopicKind::Quarantine,
        partitions: 1,
    });
    specs.push(TopicSpec {
        name: progress.clone(),
        kind: TopicKind::State,
        partitions: 1,
    });
    schemas::kafka::ensure_topics(&tests::settings(), &specs, 1)
        .await
        .expect("topics");

    let work = std::env::temp_dir().join(unique("hostile"));
    let (files, settle, marker, strict, outside) = (
        work.join("drop"),
        work.join("settle"),
        work.join("marker"),
        work.join("strict"),
        work.join("outside"),
    );
    for dir in [&files, &settle, &marker, &strict, &outside] {
        std::fs::create_dir_all(dir).expect("folder");
    }
    let mut expected = Expected::default();
    drop_files(&files, &outside, &mut expected, &raw_files);

    // A file still being written when the connector finds it: 7 rows at first, 194 more
    // appended over two seconds (7 of 201 rows were read, the rest never).
    let growing = settle.join("growing.csv");
    let rows: Vec<(String, &str)> = (0..201).map(|i| (format!("gr{i}"), "x")).collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let whole = csv_of(&rows);
    let cut = whole
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(7)
        .map(|(i, _)| i + 1)
        .expect("eight lines");
    for (id, _) in &rows {
        expected.written(&raw_files, id);
    }
    expected.case("file_drop");
    // Marker files: taken only once the system wrote `<name>.ok`.
    std::fs::write(marker.join("m1.csv"), csv_of(&[("m1a", "x")])).expect("m1");
    std::fs::write(marker.join("m1.csv.ok"), b"").expect("marker");
    std::fs::write(marker.join("m2.csv"), csv_of(&[("m2a", "x")])).expect("m2");
    expected.written(&raw_files, "m1a");
    expected.case("file_drop");
    expected.case("file_drop");

    let hits = Hits::default();
    let elsewhere_hits = Arc::new(AtomicUsize::new(0));
    let counted = elsewhere_hits.clone();
    let elsewhere = serve(Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "stolen" }
    }))
    .await;
    let base = serve(
        Router::new()
            .route("/s/{scenario}", get(scenario))
            .with_state(Hostile {
                hits: hits.clone(),
                elsewhere,
            }),
    )
    .await;

    let ca = TestCa::new("汇通测试 CA");
    let server = ca.server(&["localhost"]);
    std::fs::write(work.join("cert.pem"), &server.cert_pem).expect("cert");
    std::fs::write(work.join("key.pem"), &server.key_pem).expect("key");
    let push_port = free_port();
    let http_port = free_port();

    let mapping = r#"[instance.mapping]
record_id = ["车架号"]
fields = { vin = "车架号", plate = "号牌号码", owner_uscc = "单位代码", owner_name = "单位名称" }
"#;
    let file_instance = |id: &str, dir: &Path, complete: &str| {
        format!(
            "[[instance]]\nid = \"{id}\"\nsystem_id = \"{id}\"\nregion_code = \"530114\"\n\
             level = \"county\"\ndomain = \"vehicle\"\ntopic = \"{raw_files}\"\n\
             poll_interval = \"300ms\"\nbatch_size = 100\n[instance.source]\nkind = \"file_drop\"\n\
             dir = \"{}\"\ncomplete = {complete}\n{mapping}",
            dir.display()
        )
    };
    let mut config = format!(
        r#"connector_id = "hostile"
registry_url = "{registry_url}"
progress_topic = "{progress}"
quarantine_topic = "{quarantine}"
slots = 8
[kafka]
bootstrap = "{bootstrap}"
[limits]
max_file_bytes = 4194304
max_rows = 500
max_xlsx_part_bytes = 2097152
max_line_bytes = 65536
max_body_bytes = 16777216
max_items = 150000
max_retry_wait = "1s"
[push]
listen = "127.0.0.1:{push_port}"
tls_cert = "{cert}"
tls_key = "{key}"
topic_prefix = "{prefix}"
max_connections = 16
handshake_timeout = "2s"
header_timeout = "2s"
body_timeout = "2s"
[[push.client]]
token = "county-token"
system_id = "{county}"
region_code = "530114"
level = "county"
domains = ["vehicle", "institution"]
[[push.client]]
token = "city-token"
system_id = "{city}"
region_code = "530100"
level = "prefecture"
domains = ["vehicle"]
"#,
        bootstrap = tests::bootstrap(),
        cert = work.join("cert.pem").display(),
        key = work.join("key.pem").display(),
        county = unique("county"),
        city = unique("city"),
    );
    config.push_str(&file_instance("files", &files, r#"{ settled = "0s" }"#));
    config.push_str(&file_instance("settle", &settle, r#"{ settled = "2s" }"#));
    config.push_str(&file_instance("marker", &marker, r#"{ marker = ".ok" }"#));
    // errors_tolerance = "none": the first record that cannot be written fails the instance.
    config.push_str(
        &file_instance("strict", &strict, r#"{ settled = "0s" }"#).replace(
            "[instance.source]",
            "errors_tolerance = \"none\"\n[instance.source]",
        ),
    );
    std::fs::write(
        strict.join("mixed.csv"),
        format!("{HEADER}\nsx1,云A1,11530114015162553X,甲\nsx2,云A2\n"),
    )
    .expect("mixed");
    expected.case("file_drop");
    let cases = http_cases();
    for case in &cases {
        config.push_str(&format!(
            "[[instance]]\nid = \"http-{name}\"\nsystem_id = \"http-{name}\"\n\
             region_code = \"530114\"\nlevel = \"county\"\ndomain = \"vehicle\"\n\
             topic = \"{raw_http}\"\npoll_interval = \"500ms\"\n[instance.source]\n\
             kind = \"http_poll\"\nurl = \"{base}/s/{name}\"\ntimeout = \"5s\"\n\
             max_attempts = 2\nrequests_per_second = 1000\npagination = {pagination}\n\
             [instance.mapping]\nrecord_id = [\"id\"]\nfields = {{ vin = \"id\", owner_name = \"name\" }}\n{HTTP_CONSTANTS}\n",
            name = case.scenario,
            pagination = case.pagination,
        ));
        for key in case.written {
            expected.written(&raw_http, key);
        }
        for (location, code) in case.quarantined {
            expected.quarantined(&format!("http-{}/{location}", case.scenario), code);
        }
        expected.case("http_poll");
    }
    for (i, name) in injections().iter().enumerate() {
        let key = format!("inj-h-{i}");
        expected.written(&raw_http, &key);
        expected.named(&raw_http, &key, name.trim());
        expected.case("http_poll");
    }
    config.push_str(&format!(
        "[[instance]]\nid = \"http-injection\"\nsystem_id = \"http-injection\"\n\
         region_code = \"530114\"\nlevel = \"county\"\ndomain = \"vehicle\"\n\
         topic = \"{raw_http}\"\npoll_interval = \"500ms\"\n[instance.source]\n\
         kind = \"http_poll\"\nurl = \"{base}/s/injection\"\npagination = {CURSOR}\n\
         [instance.mapping]\nrecord_id = [\"id\"]\nfields = {{ vin = \"id\", owner_name = \"name\" }}\n{HTTP_CONSTANTS}\n\
         [[instance]]\nid = \"http-big-page\"\nsystem_id = \"http-big-page\"\n\
         region_code = \"530114\"\nlevel = \"county\"\ndomain = \"vehicle\"\n\
         topic = \"{raw_http}\"\npoll_interval = \"1h\"\nbatch_size = 100000\n\
         [instance.source]\nkind = \"http_poll\"\nurl = \"{base}/s/big-page\"\n\
         pagination = {{ style = \"cursor\", limit = 100000 }}\n\
         [instance.mapping]\nrecord_id = [\"id\"]\nfields = {{ vin = \"id\" }}\n{HTTP_CONSTANTS}\n",
    ));
    // A page of 10⁵ items took 56 s of CPU (a quadratic duplicate check).
    for i in 0..100_000 {
        expected.written(&raw_http, &format!("bp{i}"));
    }
    expected.case("http_poll");
    let config_path = work.join("connector.toml");
    std::fs::write(&config_path, &config).expect("config");

    let spawn = || {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(work.join("connector.log"))
            .expect("log");
        Command::new(binary("connector"))
            .args(["run", "--config"])
            .arg(&config_path)
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting the connector")
    };
    let api = format!("http://127.0.0.1:{http_port}");
    let plain = reqwest::Client::new();
    let wait_ready = |child: &mut Child| {
        let (plain, api, work) = (&plain, &api, &work);
        let exited = child.try_wait().expect("wait").is_some();
        async move {
            let started = Instant::now();
            while !plain
                .get(format!("{api}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                assert!(
                    !exited,
                    "the connector exited at start-up: {}",
                    std::fs::read_to_string(work.join("connector.log")).unwrap_or_default()
                );
                assert!(started.elapsed() < Duration::from_secs(120), "not ready");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let mut child = Killed(spawn());
    let pid = child.0.id();
    wait_ready(&mut child.0).await;

    // The growing file appears while the connector polls, and grows for two seconds.
    std::fs::write(&growing, &whole[..cut]).expect("first part");
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&growing)
        .await
        .expect("append");
    for part in whole[cut..].chunks(whole[cut..].len() / 10 + 1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        file.write_all(part).await.expect("append");
        file.flush().await.expect("flush");
    }
    drop(file);

    let pusher = Pusher {
        http: reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).expect("root")])
            .resolve(
                "localhost",
                format!("127.0.0.1:{push_port}").parse().expect("addr"),
            )
            .build()
            .expect("client"),
        base: format!("https://localhost:{push_port}"),
    };
    push_cases(&pusher, &mut expected, &prefix).await;
    slow_clients(
        format!("127.0.0.1:{push_port}").parse().expect("addr"),
        &ca,
        &pusher,
        &mut expected,
        &format!("{prefix}vehicle"),
    )
    .await;

    // Wait until every instance is where it must end and the counts stop moving.
    let status_of = |id: String| {
        let (plain, api) = (&plain, &api);
        async move {
            let status: Value = plain
                .get(format!("{api}/connectors/{id}/status"))
                .send()
                .await
                .expect("status")
                .json()
                .await
                .expect("JSON");
            (
                status["connector"]["state"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                status["connector"]["error_code"]
                    .as_str()
                    .map(str::to_owned),
            )
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = Value::Null;
    loop {
        let reconciliation: Value = plain
            .get(format!("{api}/reconciliation"))
            .send()
            .await
            .expect("reconciliation")
            .json()
            .await
            .expect("JSON");
        let mut settled = reconciliation == last;
        for case in &cases {
            let (state, code) = status_of(format!("http-{}", case.scenario)).await;
            settled &= match case.fails {
                Some(want) => state == "FAILED" && code.as_deref() == Some(want),
                None => state == "RUNNING",
            };
        }
        let (state, code) = status_of("strict".to_owned()).await;
        settled &= state == "FAILED" && code.as_deref() == Some("errors_tolerance_none");
        let growing_done = settle.join("done/growing.csv").exists();
        let big_page_done = reconciliation["instances"]["http-big-page"]["written"] == 100_000;
        if settled && growing_done && big_page_done {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(work.join("connector.log")).unwrap_or_default();
            let tail: String = log
                .chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let big = status_of("http-big-page".to_owned()).await;
            panic!("instances did not settle: {reconciliation}\nbig page: {big:?}\n{tail}");
        }
        last = reconciliation;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "no request reached the other origin"
    );

    // Nothing died; memory stayed bounded.
    assert!(
        child.0.try_wait().expect("wait").is_none(),
        "the connector is alive"
    );
    let peak = peak_rss(pid);
    eprintln!(
        "hostile-input corpus: connector peak RSS {} MiB",
        peak / 1024 / 1024
    );
    assert!(
        peak < 512 * 1024 * 1024,
        "peak RSS {} MiB",
        peak / 1024 / 1024
    );

    // Killed and started again: every instance's outcome totals come back from its progress
    // record, and nothing is read or written twice.
    let before = last.clone();
    drop(child);
    let mut child = Killed(spawn());
    wait_ready(&mut child.0).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now: Value = plain
            .get(format!("{api}/reconciliation"))
            .send()
            .await
            .expect("reconciliation")
            .json()
            .await
            .expect("JSON");
        let pulled = |r: &Value| -> BTreeMap<String, Value> {
            r["instances"]
                .as_object()
                .expect("instances")
                .iter()
                .filter(|(id, _)| !id.starts_with("push:"))
                .map(|(id, counts)| (id.clone(), counts.clone()))
                .collect()
        };
        if pulled(&now) == pulled(&before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after a restart: {now}\nbefore: {before}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        strict.join("mixed.csv").exists(),
        "the strict instance's file stays"
    );
    expected.case("restart");

    // Exactly the expected records, each as often as expected.
    for (topic, keys) in &expected.written {
        let mut want = keys.clone();
        want.sort();
        let mut got: Vec<String> = raw_record_ids(topic);
        got.sort();
        if got != want {
            let missing: Vec<_> = want.iter().filter(|k| !got.contains(k)).take(20).collect();
            let extra: Vec<_> = got.iter().filter(|k| !want.contains(k)).take(20).collect();
            panic!(
                "{topic}: {} written, {} expected; missing {missing:?}, unexpected {extra:?}",
                got.len(),
                want.len()
            );
        }
    }
    let vehicles = Decoder::<RawVehicle>::new(registry.clone());
    for (topic, names) in &expected.names {
        for (_, payload) in read_partition(topic, "read_committed") {
            let payload = payload.expect("payload");
            let key = source_record_id(&payload);
            if let Some(name) = names.get(&key) {
                let record = vehicles.decode(&payload).await.expect("decodes");
                assert_eq!(
                    record.owner_name.as_deref(),
                    Some(name.as_str()),
                    "{key} keeps its text"
                );
            }
        }
    }
    let institutions = Decoder::<RawInstitution>::new(registry.clone());
    for (_, payload) in read_partition(&format!("{prefix}institution"), "read_committed") {
        let record = institutions
            .decode(&payload.expect("payload"))
            .await
            .expect("decodes");
        assert_eq!(
            record.region_code.as_deref(),
            Some("530114"),
            "the record's own region is kept"
        );
    }
    let quarantined = Decoder::<Quarantine>::new(registry.clone());
    let mut got = BTreeMap::new();
    for (key, payload) in read_partition(&quarantine, "read_committed") {
        let key = String::from_utf8(key.expect("key")).expect("UTF-8");
        let record = quarantined
            .decode(&payload.expect("payload"))
            .await
            .expect("decodes");
        if key.contains("passwd") || key.contains("secrets") {
            assert!(record.original_value.is_none(), "{key}: nothing was read");
        }
        assert!(
            !record
                .original_value
                .as_deref()
                .is_some_and(|v| String::from_utf8_lossy(v).contains("SECRET-TOKEN")),
            "{key}: a file outside the folder was read"
        );
        let previous = got.insert(key.clone(), record.error_code);
        assert!(previous.is_none(), "{key} quarantined twice");
    }
    assert_eq!(got, expected.quarantined);

    // Files that must stay: not complete, hidden, not exports.
    assert!(marker.join("m2.csv").exists() && !marker.join("done/m2.csv").exists());
    assert!(
        marker.join("done/m1.csv.ok").exists(),
        "the marker goes along"
    );
    assert!(files.join(".partial.csv").exists() && files.join("notes.txt").exists());
    assert!(files.join("failed/passwd.csv").is_symlink());
    assert!(files.join("done/good-again.csv").exists());

    // The reconciliation (of the first process, which saw every push) balances, and its
    // written counts are what the topics hold.
    let reconciliation = before;
    assert_eq!(reconciliation["balanced"], true, "{reconciliation}");
    let in_topics: usize = expected.written.values().map(Vec::len).sum();
    assert_eq!(
        reconciliation["total"]["written"].as_u64(),
        Some(in_topics as u64),
        "{reconciliation}"
    );
    let instances = &reconciliation["instances"];
    assert_eq!(instances["http-revised"]["skipped"], 1, "{reconciliation}");
    assert_eq!(instances["http-repeated"]["skipped"], 2, "{reconciliation}");

    let total: usize = expected.cases.values().sum();
    eprintln!("hostile-input corpus: {total} cases {:?}", expected.cases);
    assert!(total >= 300, "{total} cases");
    drop(child);
    let _ = std::fs::remove_dir_all(&work);
}
