//! A page of an HTTP API: the JSON, its items and where it leads (in every pagination style),
//! each item's fields and their mapping.
#![no_main]

mod common;

use connectors::mapping::map;
use connectors::sources::http_poll::{HttpPollConfig, Response, fields, page_items};
use libfuzzer_sys::fuzz_target;

fn source(pagination: &str) -> HttpPollConfig {
    toml::from_str(&format!(
        "url = \"http://127.0.0.1:1/api\"\nitems_field = \"items\"\npagination = {pagination}"
    ))
    .expect("the fuzz source parses")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let pagination = match selector % 6 {
        0 => r#"{ style = "page", page_size = 10 }"#,
        1 => r#"{ style = "cursor", limit = 10 }"#,
        2 => r#"{ style = "page", page_size = 10, end = { total_records = "/data/total" } }"#,
        3 => r#"{ style = "offset", limit = 10, end = { has_more = "/hasMore" } }"#,
        4 => r#"{ style = "link", limit = 10, next_url_field = "/links/next" }"#,
        _ => r#"{ style = "updated_since", limit = 10 }"#,
    };
    let source = source(pagination);
    let limits = common::limits();
    let mapping = common::mapping();
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let page = Response {
        body,
        url: "http://127.0.0.1:1/api".to_owned(),
        next_link: None,
    };
    let position = if selector & 8 == 0 { None } else { Some("2") };
    let Ok((items, _next)) = page_items(&page, &source, position, &limits) else {
        return;
    };
    assert!(items.len() <= limits.max_items);
    for item in items {
        if let Some(fields) = fields(item) {
            let _ = map(&mapping, &fields);
        }
    }
});
