//! `file_drop`: CSV and XLSX files that a regional system exports into a folder. Each file is
//! ingested once (by SHA-256 checksum), in batches whose progress (file, checksum, next line)
//! is committed with the records, then moved to `done/` — or to `failed/`, with one quarantine
//! record saying why, when it cannot be read at all.
//!
//! A file is taken only once it is complete ([`Completion`]: unmodified for a while, or a
//! marker file), and only if it is a regular file in the folder itself: a symlink, device or
//! FIFO is refused without being opened (`file_refused`), and a file that changes while it is
//! read is left for the next poll. Limits ([`Limits`]) are checked before allocating: a file's
//! size before reading it, an XLSX part's unpacked size before unpacking it, rows, columns and
//! cells as they are read.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use csv::StringRecord;
use encoding_rs::{Encoding, GB18030, GBK, UTF_8};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Completion, FileDropConfig, TextEncoding};
use crate::instance::{Batch, Committer, Context, InstanceError, map_in_parallel};
use crate::limits::Limits;
use crate::mapping::SourceRecord;

mod stream;

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
        self.remember(checksum);
    }

    /// Records that the file with `key` needs no more work, leaving any file in progress as
    /// it is.
    pub fn remember(&mut self, key: String) {
        if !self.is_done(&key) {
            self.done.push_back(key);
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

/// Why a file or a row is not ingested: a stable code and a message, Chinese first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code, the quarantine record's `error_code`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: String) -> Self {
        Refusal { code, message }
    }
}

/// A data row of a file, or why it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file (the header is line 1; in a workbook, the sheet's row
    /// number).
    pub line: u64,
    /// The row's cells in column order (read by name through the file's [`Header`]), or what
    /// is wrong with it.
    pub cells: Result<StringRecord, Refusal>,
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

/// A file in the drop folder that the next poll takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A complete regular file, to be read.
    Ready(PathBuf),
    /// Not a regular file (a symlink, a device, a FIFO): refused without being opened.
    Refused(PathBuf, Refusal),
}

impl Pending {
    fn path(&self) -> &Path {
        match self {
            Pending::Ready(path) | Pending::Refused(path, _) => path,
        }
    }
}

/// Whether `path` has a `.csv` or `.xlsx` extension (any case).
fn is_drop(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("xlsx"))
}

/// The marker of `path` under `suffix`: `a.csv` → `a.csv.ok`.
fn marker(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

/// The `.csv` and `.xlsx` files waiting in `dir`, by name: complete regular files, and the
/// symlinks and special files among them (refused). Hidden files (a name starting with `.`,
/// as copy tools name their partial files) and files still being written are left alone.
pub fn pending_files(dir: &Path, complete: &Completion) -> std::io::Result<Vec<Pending>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || !is_drop(&path) {
            continue;
        }
        // The entry itself, never what a symlink points to.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            let what = if kind.is_symlink() {
                "符号链接 (a symbolic link)"
            } else {
                "特殊文件 (a device, FIFO or socket)"
            };
            files.push(Pending::Refused(
                path,
                Refusal::new(
                    "file_refused",
                    format!("拒绝读取：不是普通文件，而是{what}；未打开 (refused: not a regular file; not opened)"),
                ),
            ));
            continue;
        }
        let ready = match complete {
            Completion::Settled(quiet) => meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age >= *quiet),
            Completion::Marker(suffix) => std::fs::symlink_metadata(marker(&path, suffix))
                .is_ok_and(|m| m.file_type().is_file()),
        };
        if ready {
            files.push(Pending::Ready(path));
        }
    }
    files.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(files)
}

/// The age of the oldest of `files` by modification time (zero for none): how long the oldest
/// drop has waited.
fn oldest_age(files: &[Pending]) -> std::time::Duration {
    files
        .iter()
        .filter_map(|f| {
            std::fs::symlink_metadata(f.path())
                .and_then(|m| m.modified())
                .ok()
        })
        .filter_map(|modified| modified.elapsed().ok())
        .max()
        .unwrap_or_default()
}

/// What a first read of a listed file found.
enum Contents {
    /// The file, unchanged while read: its checksum, its first bytes (what a quarantine
    /// record quotes), whether its text decodes (CSV), and who it is (to open it again).
    Surveyed {
        checksum: String,
        head: Vec<u8>,
        decodes: Result<(), Refusal>,
        identity: FileIdentity,
    },
    /// It changed (or was replaced) while read: taken at a later poll.
    Changed,
    /// Not read: why.
    Refused(Refusal),
}

/// A file as the folder lists it: device, inode, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    modified: std::time::SystemTime,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        Ok(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified()?,
        })
    }
}

/// Opens `path` if it is still the regular file `identity` says (same device and inode, so
/// a swap for a symlink is noticed; same size and time).
fn open_same(path: &Path, identity: &FileIdentity) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    // Never through a symlink, and never blocking on a FIFO swapped in since the listing.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let now = FileIdentity::of(&file.metadata()?)?;
    Ok((now == *identity).then_some(file))
}

/// Reads the regular file `path` once, at most `max` bytes, without holding it: its
/// checksum, and for a CSV in `encoding` whether all of it decodes. The file opened must be
/// the one listed and must not change while read.
fn survey(path: &Path, max: u64, encoding: Option<TextEncoding>) -> std::io::Result<Contents> {
    use std::io::Read as _;
    let listed = std::fs::symlink_metadata(path)?;
    if !listed.file_type().is_file() {
        return Ok(Contents::Changed);
    }
    let too_large = |size: u64| {
        Contents::Refused(Refusal::new(
            "file_too_large",
            format!(
                "文件 {size} 字节，超过上限 {max} 字节 (the file is {size} bytes, over \
                 limits.max_file_bytes = {max})"
            ),
        ))
    };
    if listed.len() > max {
        return Ok(too_large(listed.len()));
    }
    let identity = FileIdentity::of(&listed)?;
    let Some(file) = open_same(path, &identity)? else {
        return Ok(Contents::Changed);
    };
    let mut hashed = stream::Hashed::new(
        std::io::BufReader::new(file.take(max + 1)),
        crate::instance::QUOTED_BYTES,
    );
    let decodes = match encoding {
        Some(e) => {
            match std::io::copy(
                &mut stream::Decoded::new(&mut hashed, self::encoding(e)),
                &mut std::io::sink(),
            ) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    Err(Refusal::new("file_unreadable", e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        None => Ok(()),
    };
    // The rest after a decoding error, for the checksum.
    std::io::copy(&mut hashed, &mut std::io::sink())?;
    if hashed.read_so_far() > max {
        return Ok(too_large(hashed.read_so_far()));
    }
    let after = FileIdentity::of(&std::fs::symlink_metadata(path)?)?;
    if after != identity || hashed.read_so_far() != identity.len {
        return Ok(Contents::Changed);
    }
    let (checksum, head) = hashed.finish();
    Ok(Contents::Surveyed {
        checksum,
        head,
        decodes,
        identity,
    })
}

/// The committer back from a commit thread, or the commit's error.
fn join<'c, 's, 'a>(
    handle: std::thread::ScopedJoinHandle<'_, Result<&'c mut Committer<'s, 'a>, InstanceError>>,
) -> Result<&'c mut Committer<'s, 'a>, InstanceError> {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// SHA-256 of `bytes`, as lower-case hex.
pub fn checksum(bytes: &[u8]) -> String {
    crate::digest::hex(&Sha256::digest(bytes))
}

fn encoding(e: TextEncoding) -> &'static Encoding {
    match e {
        TextEncoding::Utf8 => UTF_8,
        TextEncoding::Gbk => GBK,
        TextEncoding::Gb18030 => GB18030,
    }
}

/// The text of a file in `encoding`, as a stream of UTF-8 (a leading byte-order mark
/// dropped); reading a malformed byte sequence is an `InvalidData` error, never replaced.
pub fn text<R: std::io::Read>(file: R, text_encoding: TextEncoding) -> impl std::io::Read {
    stream::Decoded::new(file, encoding(text_encoding))
}

/// The header and data rows of a CSV stream (UTF-8), with line numbers; a row with the wrong
/// number of fields or over `limits.max_line_bytes` is an error row, the others go on; past
/// `limits.max_rows` one error row names the first line left out, and reading stops. Rows
/// are read as they are asked for, so a file is never held, as text or as rows.
pub fn rows<'r>(
    text: impl std::io::Read + 'r,
    delimiter: char,
    limits: &Limits,
) -> Result<(Header, impl Iterator<Item = Row> + 'r), Refusal> {
    let delimiter = u8::try_from(delimiter).map_err(|_| {
        Refusal::new(
            "file_unreadable",
            format!("分隔符 `{delimiter}` 不是单字节字符 (delimiter is not one byte)"),
        )
    })?;
    let (text, breaks) = stream::Breaks::new(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text);
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| {
            Refusal::new(
                "file_unreadable",
                format!("无法读取表头 (cannot read the header): {e}"),
            )
        })?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if names.len() > limits.max_columns {
        return Err(too_wide(names.len(), limits.max_columns));
    }
    let header = Header::new(names, false);
    let (width, max_line, max_rows) = (header.width, limits.max_line_bytes, limits.max_rows);
    // Line numbers from where the lines break: the csv crate's own count is off with CRLF.
    let line_at = move |position: Option<&csv::Position>| {
        breaks
            .borrow_mut()
            .line_at(position.map_or(0, csv::Position::byte))
    };
    let rows = reader.into_records().map(move |record| match record {
        Ok(record) => {
            let line = line_at(record.position());
            let cells = if record.as_slice().len() > max_line {
                Err(Refusal::new(
                    "row_too_long",
                    format!(
                        "第 {line} 行超过 {max_line} 字节上限 (line {line} is over \
                         limits.max_line_bytes = {max_line})"
                    ),
                ))
            } else if record.len() == width {
                Ok(record)
            } else {
                Err(Refusal::new(
                    "row_unreadable",
                    format!(
                        "第 {line} 行有 {} 个字段，表头有 {width} 个 (line has {} fields, header {width})",
                        record.len(),
                        record.len(),
                    ),
                ))
            };
            Row { line, cells }
        }
        Err(e) => Row {
            line: line_at(e.position()),
            cells: Err(if e.is_io_error() {
                Refusal::new(READ_FAILED, format!("读取文件失败 (reading the file failed): {e}"))
            } else {
                Refusal::new("row_unreadable", format!("无法解析 (cannot parse): {e}"))
            }),
        },
    });
    Ok((header, at_most(rows, max_rows)))
}

/// The code of a row the file could not be read at (an I/O error): it fails the poll rather
/// than quarantining anything.
const READ_FAILED: &str = "file_read_failed";

/// A file whose header has `columns` columns, over `max`.
fn too_wide(columns: usize, max: usize) -> Refusal {
    Refusal::new(
        "file_too_wide",
        format!(
            "表头有 {columns} 列，超过上限 {max} 列 (the header has {columns} columns, over \
             limits.max_columns = {max})"
        ),
    )
}

/// What the first row past `limits.max_rows` (at `line`) becomes.
fn too_many_rows(max: u64, line: u64) -> Refusal {
    Refusal::new(
        "file_too_many_rows",
        format!(
            "文件超过 {max} 行上限，自第 {line} 行起未读取 (the file has more than \
             limits.max_rows = {max} rows; lines from {line} on were not read)"
        ),
    )
}

/// `rows` up to `max` of them; then one error row for the first row left out, and the end.
fn at_most(rows: impl Iterator<Item = Row>, max: u64) -> impl Iterator<Item = Row> {
    let mut taken = 0u64;
    rows.map_while(move |row| {
        if taken > max {
            return None;
        }
        taken += 1;
        Some(if taken <= max {
            row
        } else {
            Row {
                line: row.line,
                cells: Err(too_many_rows(max, row.line)),
            }
        })
    })
}

/// Checks the unpacked size of every part of an XLSX workbook (what its zip directory
/// declares, which the zip reader then holds each part to) before any is unpacked.
fn check_parts<R: std::io::Read + std::io::Seek>(workbook: R, max: u64) -> Result<(), Refusal> {
    let mut zip = zip::ZipArchive::new(workbook).map_err(|e| unreadable(&e))?;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(|e| unreadable(&e))?;
        if part.size() > max {
            let name = String::from_utf8_lossy(part.name_raw()).into_owned();
            return Err(Refusal::new(
                "xlsx_part_too_large",
                format!(
                    "工作簿的部件 {} 解压后 {} 字节，超过上限 {max} 字节 (part `{}` unpacks to {} \
                     bytes, over limits.max_xlsx_part_bytes = {max})",
                    name,
                    part.size(),
                    name,
                    part.size()
                ),
            ));
        }
    }
    Ok(())
}

fn unreadable(e: &dyn std::fmt::Display) -> Refusal {
    Refusal::new(
        "file_unreadable",
        format!("无法读取 XLSX 文件 (cannot read the workbook): {e}"),
    )
}

/// A cell as text: numbers as Excel shows them (`22`, `18.5`), dates as ISO 8601.
fn cell_text(cell: &calamine::Data) -> String {
    use calamine::{Data, DataType as _};
    match cell {
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
    }
}

/// The header and data rows of the first worksheet of an XLSX workbook, the first row being the
/// header; a row's line is its row number in the sheet. Cells are streamed as the sheet holds
/// them — never a grid of the size the sheet declares — and counted against `limits`.
pub fn xlsx_rows<R: std::io::Read + std::io::Seek>(
    mut workbook: R,
    limits: &Limits,
) -> Result<(Header, Vec<Row>), Refusal> {
    use calamine::{Data, Reader as _, Xlsx};

    check_parts(&mut workbook, limits.max_xlsx_part_bytes)?;
    workbook
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| unreadable(&e))?;
    let mut workbook: Xlsx<_> = Xlsx::new(workbook).map_err(|e| unreadable(&e))?;
    let Some(sheet) = workbook.sheet_names().first().cloned() else {
        return Err(Refusal::new(
            "file_unreadable",
            "工作簿没有工作表 (the workbook has no sheet)".to_owned(),
        ));
    };
    let mut cells = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(|e| unreadable(&e))?;
    // The row being read: its sheet row, its cells so far, their bytes.
    let mut current: Option<(u32, Vec<String>, usize)> = None;
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let (mut count, mut held, mut last_row) = (0u64, 0u64, None);
    loop {
        let cell = cells.next_cell().map_err(|e| unreadable(&e))?;
        let row_of_cell = cell.as_ref().map(|c| c.get_position().0);
        if let Some((row, texts, bytes)) = current.take_if(|(r, _, _)| Some(*r) != row_of_cell) {
            last_row = Some(row);
            let line = u64::from(row) + 1;
            if bytes > limits.max_line_bytes {
                rows.push(Row {
                    line,
                    cells: Err(Refusal::new(
                        "row_too_long",
                        format!(
                            "第 {line} 行超过 {} 字节上限 (row {line} is over \
                             limits.max_line_bytes = {})",
                            limits.max_line_bytes, limits.max_line_bytes
                        ),
                    )),
                });
            } else if texts.iter().all(String::is_empty) {
                // A row of blank cells (formatting only): no row.
            } else if header.is_none() {
                header = Some(texts.into_iter().map(|t| t.trim().to_owned()).collect());
            } else if rows.len() as u64 == limits.max_rows {
                rows.push(Row {
                    line,
                    cells: Err(too_many_rows(limits.max_rows, line)),
                });
                break;
            } else {
                rows.push(Row {
                    line,
                    cells: Ok(texts.into_iter().collect()),
                });
            }
        }
        let Some(cell) = cell else { break };
        let (row, column) = cell.get_position();
        // Rows come in order, each once: a line number then names one row, as resuming needs.
        if last_row.is_some_and(|last| row <= last) {
            return Err(Refusal::new(
                "file_unreadable",
                format!(
                    "工作表的第 {} 行出现在后面的行之后 (row {} of the sheet comes after a later \
                     row)",
                    row + 1,
                    row + 1
                ),
            ));
        }
        count += 1;
        if count > limits.max_cells {
            return Err(Refusal::new(
                "file_too_many_cells",
                format!(
                    "工作表超过 {} 个单元格上限 (the sheet has more than limits.max_cells = {} \
                     cells)",
                    limits.max_cells, limits.max_cells
                ),
            ));
        }
        let column = column as usize;
        let width = match &header {
            Some(h) => h.len(),
            None if column >= limits.max_columns => {
                return Err(too_wide(column + 1, limits.max_columns));
            }
            None => column + 1,
        };
        if column >= width {
            // A cell right of the header's last column has no name to be read by.
            continue;
        }
        let (_, texts, bytes) = current.get_or_insert_with(|| (row, Vec::new(), 0));
        let text = cell_text(&Data::from(cell.get_value().clone()));
        *bytes += text.len();
        if *bytes > limits.max_line_bytes {
            // The row is refused: keep none of its text.
            texts.clear();
            continue;
        }
        // One shared string may stand in many cells: what the rows hold is bounded as a
        // file's size is.
        held += text.len() as u64;
        if held > limits.max_file_bytes {
            return Err(Refusal::new(
                "file_too_large",
                format!(
                    "工作表的文本超过 {} 字节上限 (the sheet's text is over \
                     limits.max_file_bytes = {})",
                    limits.max_file_bytes, limits.max_file_bytes
                ),
            ));
        }
        if texts.len() <= column {
            texts.resize(column + 1, String::new());
        }
        texts[column] = text;
    }
    let header = header.unwrap_or_default();
    let width = header.len();
    for row in &mut rows {
        if let Ok(cells) = &mut row.cells {
            // Every data row as wide as the header, blank where the sheet has no cell.
            let mut texts: Vec<String> = cells.iter().map(str::to_owned).collect();
            texts.resize(width, String::new());
            *cells = texts.into_iter().collect();
        }
    }
    Ok((Header::new(header, true), rows))
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

/// Moves a finished `file`, and its marker if the folder uses them, into `sub/`.
fn move_out(file: &Path, sub: &str, tag: &str, complete: &Completion) -> std::io::Result<()> {
    move_to(file, sub, tag)?;
    if let Completion::Marker(suffix) = complete {
        let marker = marker(file, suffix);
        if std::fs::symlink_metadata(&marker).is_ok() {
            move_to(&marker, sub, tag)?;
        }
    }
    Ok(())
}

/// What a file refused unread is remembered by: not a checksum of its bytes, which are never
/// read, but the folder entry's identity, size and time.
fn refusal_key(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::symlink_metadata(path)?;
    let entry = format!(
        "{}|{}|{}|{}|{}.{}",
        path.display(),
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec()
    );
    Ok(format!("refused:{}", checksum(entry.as_bytes())))
}

/// Quarantines a whole file with `refusal` (one record, quoting at most the start of
/// `original`), remembers it by `key` and moves it to `failed/`.
#[allow(clippy::too_many_arguments)] // one call per way a file fails, all alike
fn refuse(
    context: &Context<'_>,
    committer: &mut Committer<'_, '_>,
    source: &FileDropConfig,
    path: &Path,
    name: &str,
    key: String,
    refusal: Refusal,
    original: Option<&[u8]>,
) -> Result<(), InstanceError> {
    let mut progress: FileDropProgress = committer.progress()?;
    if !progress.is_done(&key) {
        progress.remember(key.clone());
        let original = original.map(|b| b[..b.len().min(crate::instance::QUOTED_BYTES)].to_vec());
        let record = context.quarantine_record(
            refusal.code,
            None,
            refusal.message,
            None,
            name.to_owned(),
            original,
        )?;
        committer.commit(context, Batch::of(vec![record]), &progress)?;
    }
    // The tag names the file if `failed/` has one of its name: the key's hash part.
    let tag = key.rsplit(':').next().unwrap_or(&key);
    // Moved only once its quarantine record and the key remembered are committed.
    committer.durable()?;
    move_out(path, "failed", tag, &source.complete)?;
    tracing::warn!(instance = %context.config.id, file = %name, code = refusal.code, "file refused; moved to failed/");
    Ok(())
}

/// Ingests every file waiting in the folder: each file's rows in batches, each batch committed
/// with the position after it; a finished file is remembered by checksum and moved to `done/`.
/// A file a previous run stopped inside goes first, so its position is not lost.
pub(crate) fn poll(
    context: &Context<'_>,
    source: &FileDropConfig,
    committer: &mut Committer<'_, '_>,
) -> Result<(), InstanceError> {
    let instance = &context.config.id;
    let mut pending = pending_files(&source.dir, &source.complete)?;
    committer.lag(oldest_age(&pending));
    // While a file is part-way ingested no other is started: the progress holds one position.
    // It goes first; if it is still in the folder but not ready, the poll waits for it.
    let started: FileDropProgress = committer.progress()?;
    let mut resuming = None;
    if let Some(current) = &started.current
        && std::fs::symlink_metadata(source.dir.join(&current.file)).is_ok()
    {
        let Some(i) = pending
            .iter()
            .position(|f| f.path().file_name() == Some(current.file.as_ref()))
        else {
            return Ok(());
        };
        let first = pending.remove(i);
        resuming = Some(first.path().to_owned());
        pending.insert(0, first);
    }
    for file in pending {
        let waiting_for = |path: &Path| resuming.as_deref() == Some(path);
        let path = file.path().to_owned();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let is_xlsx = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        let read = match file {
            Pending::Refused(_, refusal) => Contents::Refused(refusal),
            Pending::Ready(_) => survey(
                &path,
                context.limits.max_file_bytes,
                (!is_xlsx).then_some(source.encoding),
            )?,
        };
        let (checksum, head, decodes, identity) = match read {
            Contents::Surveyed {
                checksum,
                head,
                decodes,
                identity,
            } => (checksum, head, decodes, identity),
            Contents::Changed => {
                tracing::info!(%instance, file = %name, "the file changed while being read; it is taken at a later poll");
                if waiting_for(&path) {
                    return Ok(());
                }
                continue;
            }
            Contents::Refused(refusal) => {
                let key = refusal_key(&path)?;
                refuse(context, committer, source, &path, &name, key, refusal, None)?;
                continue;
            }
        };
        let committed: FileDropProgress = committer.progress()?;
        if committed.is_done(&checksum) {
            tracing::info!(%instance, file = %name, %checksum, "ingested before (same checksum): moved to done/ unread");
            committer.durable()?;
            move_out(&path, "done", &checksum, &source.complete)?;
            continue;
        }
        // Read again, as a stream: the file must still be the one surveyed.
        let Some(file) = open_same(&path, &identity)? else {
            tracing::info!(%instance, file = %name, "the file changed after it was surveyed; it is taken at a later poll");
            if waiting_for(&path) {
                return Ok(());
            }
            continue;
        };
        let file = std::io::BufReader::new(file);
        let parsed: Result<(Header, Box<dyn Iterator<Item = Row>>), Refusal> =
            decodes.and_then(|()| {
                if is_xlsx {
                    xlsx_rows(file, context.limits)
                        .map(|(header, rows)| (header, Box::new(rows.into_iter()) as _))
                } else {
                    rows(
                        text(file, source.encoding),
                        source.delimiter,
                        context.limits,
                    )
                    .map(|(header, rows)| (header, Box::new(rows) as _))
                }
            });
        let (header, rows) = match parsed {
            Ok(parsed) => parsed,
            Err(refusal) => {
                // Not remembered as done: dropped again (a limit raised, a fix made), it is
                // read again.
                let key = format!("failed:{checksum}");
                refuse(
                    context,
                    committer,
                    source,
                    &path,
                    &name,
                    key,
                    refusal,
                    Some(&head),
                )?;
                continue;
            }
        };
        let start = committed.resume_line(&checksum);
        let mut rows = rows.filter(|r| r.line >= start).peekable();
        if rows.peek().is_none() {
            let mut progress = committed.clone();
            progress.finish(checksum.clone());
            committer.commit(context, Batch::of(Vec::new()), &progress)?;
        }
        let map = |row: &Row| {
            let location = format!("{name}:{}", row.line);
            match &row.cells {
                Ok(cells) => context.map_row(&header.fields(cells), &checksum, location),
                // Not the file's fault: the poll fails, nothing of the batch is committed,
                // and the next poll goes on from the last committed line.
                Err(refusal) if refusal.code == READ_FAILED => Err(InstanceError::Source(
                    std::io::Error::other(format!("{location}: {}", refusal.message)),
                )),
                Err(refusal) => context.quarantine_record(
                    refusal.code,
                    None,
                    refusal.message.clone(),
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
                    let batch = Batch {
                        read,
                        out,
                        skipped: 0,
                    };
                    committer
                        .commit(context, batch, &progress)
                        .map(|()| committer)
                }));
            }
            if let Some(handle) = committing {
                join(handle)?.durable()?;
            } else if let Some(committer) = idle {
                committer.durable()?;
            }
            Ok(())
        })?;
        move_out(&path, "done", &checksum, &source.complete)?;
        tracing::info!(%instance, file = %name, "file ingested");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (header, rows) = rows(text.as_bytes(), ',', &Limits::default()).expect("parses");
        let rows: Vec<Row> = rows.collect();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        let (_, crlf) = super::rows(
            "a,b\r\n1,2\r\n\"x\ny\",4\r\n5,6\r\n".as_bytes(),
            ',',
            &Limits::default(),
        )
        .expect("parses");
        let lines: Vec<u64> = crlf.map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 5], "a quoted newline spans two lines");
        assert_eq!(cell(&header, &rows[0], "号牌号码").as_deref(), Some("云A1"));
        assert!(
            rows[1]
                .cells
                .as_ref()
                .unwrap_err()
                .message
                .contains("第 3 行")
        );
        assert_eq!(cell(&header, &rows[2], "车架号").as_deref(), Some("A3"));
        assert_eq!(cell(&header, &rows[2], "使用单位").as_deref(), None);
    }

    #[test]
    fn fields_read_by_name_and_quote_as_json() {
        let text = " 车架号 ,号牌号码,,号牌号码\nA1,云A1,x,云A2\n";
        let (header, rows) = rows(text.as_bytes(), ',', &Limits::default()).expect("parses");
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

        let (header, rows) =
            xlsx_rows(std::io::Cursor::new(&bytes), &Limits::default()).expect("reads");
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
        assert!(xlsx_rows(std::io::Cursor::new(b"not a workbook"), &Limits::default()).is_err());
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
