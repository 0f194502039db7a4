//! A dropped CSV file: decoding (UTF-8 or GBK, by the first byte), rows within the limits,
//! and every row's mapping.
#![no_main]

mod common;

use connectors::config::TextEncoding;
use connectors::mapping::map;
use connectors::sources::file_drop::{rows, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let encoding = if selector & 1 == 0 {
        TextEncoding::Utf8
    } else {
        TextEncoding::Gbk
    };
    let delimiter = if selector & 2 == 0 { ',' } else { '\t' };
    let limits = common::limits();
    let mapping = common::mapping();
    // Decoded as it is read, as the connector reads a file: a malformed byte ends the rows.
    let Ok((header, rows)) = rows(text(bytes, encoding), delimiter, &limits) else {
        return;
    };
    let mut count = 0u64;
    for row in rows {
        count += 1;
        assert!(count <= limits.max_rows + 1, "rows past the limit");
        if let Ok(cells) = &row.cells {
            let _ = map(&mapping, &header.fields(cells));
        }
    }
});
