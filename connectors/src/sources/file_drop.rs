//! `file_drop`: CSV files that a regional system exports into a folder. Each file is ingested
//! once (by SHA-256 checksum), in batches whose progress (file, checksum, next line) is
//! committed with the records, then moved to `done/` — or to `failed/` when it cannot be read
//! as text at all.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use csv::StringRecord;
use encoding_rs::{Encoding, GB18030, GBK, UTF_8};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{FileDropConfig, TextEncoding};
use crate::instance::{Committer, Context, InstanceError, map_in_parallel};
use crate::mapping::SourceRecord;

/// How many checksums of finished files the progress remembers (a file dropped again after
/// that many others is ingested again; files are also moved out of the folder once done).
const REMEMBERED: usize = 10_000;

/// A `file_drop` instance's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDropProgress {
    /// The file being ingested, if a previous run stopped inside it.
    #[serde(default)]
    pub current: Option<FilePosition>,
    /// Checksums of the files already ingested, oldest first.
    #[serde(default)]
    pub done: VecDeque<String>,
}

/// How far into a file ingestion got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// File name within the folder.
    pub file: String,
    /// SHA-256 of the file's bytes (hex).
    pub checksum: String,
    /// The first data line (1-based, counting the header as line 1) not yet committed.
    pub next_line: u64,
}

impl FileDropProgress {
    /// Whether the file with `checksum` was ingested already.
    pub fn is_done(&self, checksum: &str) -> bool {
        self.done.iter().any(|c| c == checksum)
    }

    /// Records that the file with `checksum` is finished.
    pub fn finish(&mut self, checksum: String) {
        self.current = None;
        if !self.is_done(&checksum) {
            self.done.push_back(checksum);
        }
        while self.done.len() > REMEMBERED {
            self.done.pop_front();
        }
    }

    /// The line to start `checksum`'s file at.
    pub fn resume_line(&self, checksum: &str) -> u64 {
        match &self.current {
            Some(p) if p.checksum == checksum => p.next_line,
            _ => 0,
        }
    }
}

/// A file's column names (trimmed), shared by all its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Column index by name; a name that heads two columns means the last of them.
    columns: BTreeMap<String, usize>,
    /// How many columns the header row has.
    width: usize,
}

impl Header {
    /// The header of columns named `names`, in order; blank names are left out when
    /// `skip_blank` (a worksheet's unused columns).
    fn new(names: Vec<String>, skip_blank: bool) -> Self {
        Header {
            width: names.len(),
            columns: names
                .into_iter()
                .enumerate()
                .filter(|(_, name)| !(skip_blank && name.is_empty()))
                .map(|(i, name)| (name, i))
                .collect(),
        }
    }

    /// The fields of a row with `cells`, by this header's names.
    pub fn fields<'a>(&'a self, cells: &'a StringRecord) -> RowFields<'a> {
        RowFields {
            header: self,
            cells,
        }
    }
}

/// A data row of a file, or why it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// The row's cells in column order (read by name through the file's [`Header`]), or what
    /// is wrong with it.
    pub cells: Result<StringRecord, String>,
}

/// A row's cells by the file's column names: the source record that is mapped. The header is
/// shared rather than copied into every row.
#[derive(Debug, Clone, Copy)]
pub struct RowFields<'a> {
    header: &'a Header,
    cells: &'a StringRecord,
}

impl SourceRecord for RowFields<'_> {
    fn field(&self, name: &str) -> Option<&str> {
        self.cells.get(*self.header.columns.get(name)?)
    }
}

impl Serialize for RowFields<'_> {
    /// A JSON object of the named cells, by name.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.header
                .columns
                .iter()
                .filter_map(|(name, &i)| Some((name, self.cells.get(i)?))),
        )
    }
}

/// The files waiting in `dir`, oldest name first: regular `.csv` and `.xlsx` files (any case).
pub fn pending_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("xlsx")
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The age of the oldest of `files` by modification time (zero for none): how long the oldest
/// drop has waited.
fn oldest_age(files: &[PathBuf]) -> std::time::Duration {
    files
        .iter()
        .filter_map(|f| f.metadata().and_then(|m| m.modified()).ok())
        .filter_map(|modified| modified.elapsed().ok())
        .max()
        .unwrap_or_default()
}

/// The committer back from a commit thread, or the commit's error.
fn join<'c, 'a>(
    handle: std::thread::ScopedJoinHandle<'_, Result<&'c mut Committer<'a>, InstanceError>>,
) -> Result<&'c mut Committer<'a>, InstanceError> {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// SHA-256 of `bytes`, as lower-case hex.
pub fn checksum(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encoding(e: TextEncoding) -> &'static Encoding {
    match e {
        TextEncoding::Utf8 => UTF_8,
        TextEncoding::Gbk => GBK,
        TextEncoding::Gb18030 => GB18030,
    }
}

/// Decodes a file's bytes; an invalid byte sequence is an error (never replaced silently).
pub fn decode(bytes: &[u8], text_encoding: TextEncoding) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    encoding(text_encoding)
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| {
            format!(
                "文件不是有效的 {} 编码文本 (the file is not valid {} text)",
                encoding(text_encoding).name(),
                encoding(text_encoding).name()
            )
        })
}

/// The header and data rows of CSV `text`, with line numbers; a row with the wrong number of
/// fields is an error row, the others go on. Rows are read as they are asked for, so a file
/// is never held as rows all at once.
pub fn rows(
    text: &str,
    delimiter: char,
) -> Result<(Header, impl Iterator<Item = Row> + '_), String> {
    let delimiter = u8::try_from(delimiter)
        .map_err(|_| format!("分隔符 `{delimiter}` 不是单字节字符 (delimiter is not one byte)"))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = Header::new(
        reader
            .headers()
            .map_err(|e| format!("无法读取表头 (cannot read the header): {e}"))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect(),
        false,
    );
    let width = header.width;
    // Line numbers from byte offsets: the csv crate's own line count is off by one with CRLF.
    let mut counted = (0usize, 1u64);
    let mut line_at = move |position: Option<&csv::Position>| {
        let byte = position.map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        let mut byte = byte.min(text.len()).max(counted.0);
        // With CRLF the reported start can sit on the line break before the record.
        while matches!(text.as_bytes().get(byte), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        counted.1 += text.as_bytes()[counted.0..byte]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        counted.0 = byte;
        counted.1
    };
    let rows = reader.into_records().map(move |record| match record {
        Ok(record) => {
            let line = line_at(record.position());
            let cells = if record.len() == width {
                Ok(record)
            } else {
                Err(format!(
                    "第 {line} 行有 {} 个字段，表头有 {width} 个 (line has {} fields, header {width})",
                    record.len(),
                    record.len(),
                ))
            };
            Row { line, cells }
        }
        Err(e) => Row {
            line: line_at(e.position()),
            cells: Err(format!("无法解析 (cannot parse): {e}")),
        },
    });
    Ok((header, rows))
}

/// The header and data rows of the first worksheet of an XLSX workbook, the first row being the
/// header. Numbers are written as Excel shows them (`22`, `18.5`), dates as ISO 8601.
pub fn xlsx_rows(bytes: &[u8]) -> Result<(Header, Vec<Row>), String> {
    use calamine::{Data, DataType as _, Reader as _, Xlsx};

    let unreadable =
        |e: &dyn std::fmt::Display| format!("无法读取 XLSX 文件 (cannot read the workbook): {e}");
    let mut workbook: Xlsx<_> =
        Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let range = match workbook.worksheet_range_at(0) {
        Some(Ok(range)) => range,
        Some(Err(e)) => return Err(unreadable(&e)),
        None => return Err("工作簿没有工作表 (the workbook has no sheet)".to_owned()),
    };
    let text = |cell: &Data| match cell {
        Data::Empty => String::new(),
        Data::DateTime(_) | Data::DateTimeIso(_) => cell
            .as_datetime()
            .map(|t| {
                if t.time() == chrono::NaiveTime::MIN {
                    t.format("%Y-%m-%d").to_string()
                } else {
                    t.format("%Y-%m-%dT%H:%M:%S").to_string()
                }
            })
            .unwrap_or_else(|| cell.to_string()),
        other => other.to_string(),
    };
    let mut rows = range.rows();
    let header = Header::new(
        rows.next()
            .map(|r| r.iter().map(|c| text(c).trim().to_owned()).collect())
            .unwrap_or_default(),
        true,
    );
    let rows = rows
        .enumerate()
        .filter(|(_, cells)| cells.iter().any(|c| !matches!(c, Data::Empty)))
        .map(|(i, cells)| Row {
            line: i as u64 + 2,
            cells: Ok(cells.iter().map(text).collect()),
        })
        .collect();
    Ok((header, rows))
}

/// Moves `file` into `dir/<sub>/`, keeping its name unless a file of that name is there already.
pub fn move_to(file: &Path, sub: &str, checksum: &str) -> std::io::Result<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new(".")).join(sub);
    std::fs::create_dir_all(&dir)?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let mut target = dir.join(&*name);
    if target.exists() {
        target = dir.join(format!("{}-{name}", &checksum[..12]));
    }
    std::fs::rename(file, &target)?;
    Ok(target)
}

/// Ingests every file waiting in the folder: each file's rows in batches, each batch committed
/// with the position after it; a finished file is remembered by checksum and moved to `done/`.
pub(crate) fn poll(
    context: &Context<'_>,
    source: &FileDropConfig,
    committer: &mut Committer<'_>,
) -> Result<(), InstanceError> {
    let instance = &context.config.id;
    let pending = pending_files(&source.dir)?;
    committer.lag(oldest_age(&pending));
    for path in pending {
        let bytes = std::fs::read(&path)?;
        let checksum = checksum(&bytes);
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let committed: FileDropProgress = committer.progress()?;
        if committed.is_done(&checksum) {
            // Committed by an earlier run that stopped before moving it.
            move_to(&path, "done", &checksum)?;
            continue;
        }
        let is_xlsx = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        let text; // the decoded CSV, which its rows borrow
        let parsed: Result<(Header, Box<dyn Iterator<Item = Row> + '_>), String> = if is_xlsx {
            xlsx_rows(&bytes).map(|(header, rows)| (header, Box::new(rows.into_iter()) as _))
        } else {
            match decode(&bytes, source.encoding) {
                Ok(decoded) => {
                    text = decoded;
                    rows(&text, source.delimiter)
                        .map(|(header, rows)| (header, Box::new(rows) as _))
                }
                Err(reason) => Err(reason),
            }
        };
        let (header, rows) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => {
                let mut progress = committed;
                progress.finish(checksum.clone());
                let record = context.quarantine_record(
                    "file_unreadable",
                    None,
                    reason,
                    None,
                    name.clone(),
                    Some(bytes),
                )?;
                committer.commit(context, vec![record], &progress)?;
                move_to(&path, "failed", &checksum)?;
                tracing::warn!(%instance, file = %name, "unreadable file moved to failed/");
                continue;
            }
        };
        let start = committed.resume_line(&checksum);
        let mut rows = rows.filter(|r| r.line >= start).peekable();
        if rows.peek().is_none() {
            let mut progress = committed.clone();
            progress.finish(checksum.clone());
            committer.commit(context, Vec::new(), &progress)?;
        }
        let map = |row: &Row| {
            let location = format!("{name}:{}", row.line);
            match &row.cells {
                Ok(cells) => context.map_row(&header.fields(cells), &checksum, location),
                Err(reason) => context.quarantine_record(
                    "row_unreadable",
                    None,
                    reason.clone(),
                    None,
                    location,
                    None,
                ),
            }
        };
        // Each batch is committed on a second thread while the next one is read and mapped: a
        // commit waits for the broker, and the file goes on meanwhile. Commits stay in order,
        // one at a time, and a failed one stops the file before the next is sent.
        std::thread::scope(|scope| -> Result<(), InstanceError> {
            let mut committing = None;
            let mut idle = Some(&mut *committer);
            let mut batch = Vec::with_capacity(context.config.batch_size);
            loop {
                batch.clear();
                batch.extend(rows.by_ref().take(context.config.batch_size));
                if batch.is_empty() {
                    break;
                }
                let out = map_in_parallel(&batch, map)?;
                let mut progress = committed.clone();
                match rows.peek() {
                    Some(next) => {
                        progress.current = Some(FilePosition {
                            file: name.clone(),
                            checksum: checksum.clone(),
                            next_line: next.line,
                        });
                    }
                    None => progress.finish(checksum.clone()),
                }
                let committer = match committing.take() {
                    Some(handle) => join(handle)?,
                    None => idle.take().expect("the committer is idle or committing"),
                };
                let read = batch.len() as u64;
                committing = Some(scope.spawn(move || {
                    committer.read(read);
                    committer
                        .commit(context, out, &progress)
                        .map(|()| committer)
                }));
            }
            if let Some(handle) = committing {
                join(handle)?;
            }
            Ok(())
        })?;
        move_to(&path, "done", &checksum)?;
        tracing::info!(%instance, file = %name, "file ingested");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_gbk_and_refuses_garbage() {
        let (gbk, _, _) = GBK.encode("单位名称,号牌号码\n呈贡区机关事务管理局,云A12345\n");
        let text = decode(&gbk, TextEncoding::Gbk).expect("GBK decodes");
        assert!(text.contains("呈贡区机关事务管理局"));
        assert!(
            decode(&gbk, TextEncoding::Utf8).is_err(),
            "GBK is not UTF-8"
        );
        assert_eq!(
            decode("\u{feff}a,b\n".as_bytes(), TextEncoding::Utf8).as_deref(),
            Ok("a,b\n")
        );
    }

    /// The text of field `name` of `row`, read through `header`.
    fn cell(header: &Header, row: &Row, name: &str) -> Option<String> {
        header
            .fields(row.cells.as_ref().ok()?)
            .field(name)
            .map(str::to_owned)
    }

    #[test]
    fn rows_keep_line_numbers_and_flag_bad_rows() {
        let text = "车架号,号牌号码\nA1,云A1\nA2\n\"A3\",\"云A3\"\n";
        let (header, rows) = rows(text, ',').expect("parses");
        let rows: Vec<Row> = rows.collect();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        let (_, crlf) = super::rows("a,b\r\n1,2\r\n\"x\ny\",4\r\n5,6\r\n", ',').expect("parses");
        let lines: Vec<u64> = crlf.map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 5], "a quoted newline spans two lines");
        assert_eq!(cell(&header, &rows[0], "号牌号码").as_deref(), Some("云A1"));
        assert!(rows[1].cells.as_ref().unwrap_err().contains("第 3 行"));
        assert_eq!(cell(&header, &rows[2], "车架号").as_deref(), Some("A3"));
        assert_eq!(cell(&header, &rows[2], "使用单位").as_deref(), None);
    }

    #[test]
    fn fields_read_by_name_and_quote_as_json() {
        let text = " 车架号 ,号牌号码,,号牌号码\nA1,云A1,x,云A2\n";
        let (header, rows) = rows(text, ',').expect("parses");
        let rows: Vec<Row> = rows.collect();
        let fields = header.fields(rows[0].cells.as_ref().expect("cells"));
        assert_eq!(fields.field("车架号"), Some("A1"), "names are trimmed");
        assert_eq!(
            fields.field("号牌号码"),
            Some("云A2"),
            "a repeated name means its last column"
        );
        assert_eq!(
            serde_json::to_value(fields).expect("serialises"),
            serde_json::json!({"": "x", "号牌号码": "云A2", "车架号": "A1"}),
            "the same object as the fields collected by name"
        );
    }

    #[test]
    fn xlsx_rows_read_text_numbers_and_dates() {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2021, 3, 5).expect("date");
        let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        for (col, header) in ["车架号", "使用单位", "购置价格", "购置日期"]
            .iter()
            .enumerate()
        {
            sheet.write_string(0, col as u16, *header).expect("header");
        }
        sheet.write_string(1, 0, "LSVAU2180N2183294").expect("cell");
        sheet
            .write_string(1, 1, "呈贡区机关事务管理局")
            .expect("cell");
        sheet.write_number(1, 2, 18.5).expect("cell");
        sheet
            .write_datetime_with_format(1, 3, &date, &format)
            .expect("cell");
        sheet.write_number(3, 2, 22.0).expect("cell");
        let bytes = workbook.save_to_buffer().expect("xlsx");

        let (header, rows) = xlsx_rows(&bytes).expect("reads");
        assert_eq!(rows.len(), 2, "the empty row 3 is skipped");
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            cell(&header, &rows[0], "使用单位").as_deref(),
            Some("呈贡区机关事务管理局")
        );
        assert_eq!(cell(&header, &rows[0], "购置价格").as_deref(), Some("18.5"));
        assert_eq!(
            cell(&header, &rows[0], "购置日期").as_deref(),
            Some("2021-03-05")
        );
        assert_eq!(
            (rows[1].line, cell(&header, &rows[1], "购置价格").as_deref()),
            (4, Some("22"))
        );
        assert!(xlsx_rows(b"not a workbook").is_err());
    }

    #[test]
    fn progress_remembers_and_resumes() {
        let mut p = FileDropProgress {
            current: Some(FilePosition {
                file: "a.csv".into(),
                checksum: "c1".into(),
                next_line: 7,
            }),
            done: VecDeque::new(),
        };
        assert_eq!(p.resume_line("c1"), 7);
        assert_eq!(p.resume_line("c2"), 0);
        p.finish("c1".into());
        assert!(p.is_done("c1") && p.current.is_none());
        p.finish("c1".into());
        assert_eq!(p.done.len(), 1);
    }
}
