//! A dropped XLSX workbook: the part sizes, the streamed cells of the first sheet, the rows.
#![no_main]

mod common;

use connectors::sources::file_drop::xlsx_rows;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = common::limits();
    if let Ok((_, rows)) = xlsx_rows(std::io::Cursor::new(data), &limits) {
        assert!(rows.len() as u64 <= limits.max_rows + 1, "rows past the limit");
    }
});
