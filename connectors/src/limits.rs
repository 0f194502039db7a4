//! What one input may cost (输入限额): every source kind and the push endpoint check these
//! before they allocate for an input, so no file, page, body or record — however large or
//! malformed — can take the process down or lock a source out. Set in `[limits]` of the
//! connector's file; every key is optional.
//!
//! | key | default | over the limit |
//! |---|---|---|
//! | `max_record_bytes` | 524,288 | the record is quarantined (`record_too_large`) with its location; the rest go on |
//! | `max_file_bytes` | 268,435,456 | the file is quarantined whole (`file_too_large`) and moved to `failed/` |
//! | `max_rows` | 1,000,000 | rows past it are not read: one quarantine record (`file_too_many_rows`) names the first line left out |
//! | `max_columns` | 1,024 | the file is quarantined (`file_too_wide`) |
//! | `max_cells` | 20,000,000 | an XLSX sheet whose declared size exceeds it is quarantined (`file_too_many_cells`) before anything is allocated |
//! | `max_xlsx_part_bytes` | 268,435,456 | an XLSX whose sheet or shared strings unpack larger is quarantined (`xlsx_part_too_large`) |
//! | `max_line_bytes` | 1,048,576 | the CSV row is quarantined (`row_too_long`) |
//! | `max_body_bytes` | 16,777,216 | an HTTP page fails the poll (`page_too_large`); a push body is answered 413 (`body_too_large`) |
//! | `max_items` | 100,000 | an HTTP page with more items fails the poll (`page_too_many_items`); a push batch is answered 413 (`batch_too_large`) |
//! | `max_batch_id_bytes` | 128 | the push batch is answered 400 (`batch_id_invalid`) |
//! | `max_retry_wait` | 5 min | a `Retry-After` or backoff longer than it waits this long (logged) |
//!
//! A page that fails the poll leaves the instance FAILED with the code: its records cannot be
//! told apart from the next page's, so nothing after it is read until the system is fixed.
//! JSON nesting is bounded by serde_json's recursion limit (128 levels), an error, not a crash.
//! A body is parsed whole, and parsed JSON takes several times its text in memory: with the
//! push endpoint's `max_concurrent_batches` and the instances polling at once
//! (`max_active_instances`), `max_body_bytes` is what bounds the connector's memory — raise it
//! with that in mind.

use std::time::Duration;

use serde::Deserialize;

/// The limits of one connector process (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Bytes of one record once encoded. Below Kafka's default `max.message.bytes` (1 MiB),
    /// so a record the connector accepts is one the broker accepts.
    pub max_record_bytes: usize,
    /// Bytes of one dropped file.
    pub max_file_bytes: u64,
    /// Data rows of one file (or its first sheet).
    pub max_rows: u64,
    /// Columns of one file.
    pub max_columns: usize,
    /// Cells of an XLSX sheet, as its declared dimension says (checked before reading it).
    pub max_cells: u64,
    /// Uncompressed bytes of one part of an XLSX workbook (a sheet, the shared strings).
    pub max_xlsx_part_bytes: u64,
    /// Bytes of one CSV row.
    pub max_line_bytes: usize,
    /// Bytes of one HTTP response body or push request body.
    pub max_body_bytes: usize,
    /// Items of one HTTP page or push batch.
    pub max_items: usize,
    /// Bytes of a push batch id.
    pub max_batch_id_bytes: usize,
    /// The longest wait a source system can ask for (`Retry-After`) or a backoff can reach.
    #[serde(with = "humantime_serde")]
    pub max_retry_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 512 * 1024,
            max_file_bytes: 256 * 1024 * 1024,
            max_rows: 1_000_000,
            max_columns: 1024,
            max_cells: 20_000_000,
            max_xlsx_part_bytes: 256 * 1024 * 1024,
            max_line_bytes: 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_items: 100_000,
            max_batch_id_bytes: 128,
            max_retry_wait: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// The size limits by key, as numbers.
    fn sizes(&self) -> [(&'static str, u64); 10] {
        [
            ("max_record_bytes", self.max_record_bytes as u64),
            ("max_file_bytes", self.max_file_bytes),
            ("max_rows", self.max_rows),
            ("max_columns", self.max_columns as u64),
            ("max_cells", self.max_cells),
            ("max_xlsx_part_bytes", self.max_xlsx_part_bytes),
            ("max_line_bytes", self.max_line_bytes as u64),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_items", self.max_items as u64),
            ("max_batch_id_bytes", self.max_batch_id_bytes as u64),
        ]
    }

    /// Whether a record with a key of `key` bytes and a payload of `payload` bytes fits in
    /// `max_record_bytes` (the key counts: both go into the Kafka message); else the message
    /// its `record_too_large` refusal carries.
    pub fn record_fits(&self, key: usize, payload: usize) -> Result<(), String> {
        let (size, max) = (key + payload, self.max_record_bytes);
        if size <= max {
            return Ok(());
        }
        Err(format!(
            "记录编码后 {size} 字节，超过上限 {max} 字节 (the record is {size} bytes encoded, over \
             max_record_bytes = {max})"
        ))
    }

    /// Checks that every limit admits at least something.
    pub fn check(&self) -> Result<(), String> {
        match self.sizes().into_iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("limits.{name} must be at least 1")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_limit_with_its_default() {
        let doc = include_str!("limits.rs");
        let limits = Limits::default();
        for (name, value) in limits.sizes() {
            let digits = value.to_string();
            let shown = digits
                .as_bytes()
                .rchunks(3)
                .rev()
                .map(|c| std::str::from_utf8(c).expect("digits"))
                .collect::<Vec<_>>()
                .join(",");
            assert!(
                doc.contains(&format!("| `{name}` | {shown} |")),
                "the table lacks `{name}` = {shown}"
            );
        }
        assert!(doc.contains("| `max_retry_wait` | 5 min |"));
        assert_eq!(limits.max_retry_wait, Duration::from_secs(300));
        assert!(limits.check().is_ok());
        assert!(limits.record_fits(24, 524_264).is_ok());
        let over = limits.record_fits(25, 524_264).expect_err("one byte over");
        assert!(over.starts_with("记录编码后 524289 字节"), "{over}");
        let none = Limits {
            max_items: 0,
            ..Limits::default()
        };
        assert_eq!(
            none.check().unwrap_err(),
            "limits.max_items must be at least 1"
        );
    }
}
