//! File exports of the file-based systems (CSV in UTF-8, GBK or GB18030 with Chinese headers;
//! XLSX) and `ground-truth.json`.
//!
//! Layout: `<out>/<system id>/<system id>.csv|.xlsx` and `<out>/ground-truth.json`. CSV lines
//! end in CRLF (as the Windows tools regions use write them) and fields are quoted only when
//! they contain a comma, quote or line break. Output is byte-identical for the same seed, size
//! and options (XLSX creation time is pinned). CSV is streamed one area at a time; an XLSX
//! workbook is built in memory (≈ 200 bytes per cell) before it is written.

use crate::systems::{
    Cell, Encoding, GroundTruth, Protocol, QuarantineExpectation, Record, Simulator, SystemProfile,
};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What can go wrong writing an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Creating or writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The XLSX writer failed.
    #[error("writing {path}: {message}")]
    Xlsx {
        /// The file.
        path: PathBuf,
        /// The writer's message.
        message: String,
    },
    /// Text that the target encoding cannot represent (never expected: all generated text is
    /// in GBK's repertoire).
    #[error("{path}: text not representable in {encoding}")]
    Unencodable {
        /// The file.
        path: PathBuf,
        /// The encoding.
        encoding: &'static str,
    },
}

impl ExportError {
    /// Stable code for metrics and exit statuses.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Io { .. } => "EXPORT_IO",
            ExportError::Xlsx { .. } => "EXPORT_XLSX",
            ExportError::Unencodable { .. } => "EXPORT_ENCODING",
        }
    }
}

/// Export options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// When non-zero, every n-th data row of every exported file is malformed (one number or
    /// date made unparsable) and listed in the ground truth as expected quarantine, not as a
    /// record.
    pub malformed_every: usize,
}

/// The relative path of a system's export file, or `None` if it is not file-based.
pub fn file_name(profile: &SystemProfile) -> Option<String> {
    let ext = match profile.protocol {
        Protocol::Csv => "csv",
        Protocol::Xlsx => "xlsx",
        _ => return None,
    };
    Some(format!("{0}/{0}.{ext}", profile.id))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes every file-based system's file and `ground-truth.json` under `out`, and returns the
/// ground truth (with malformed rows moved to `expected_quarantine`).
pub fn export(
    sim: &Simulator,
    out: &Path,
    opts: &ExportOptions,
) -> Result<GroundTruth, ExportError> {
    let mut truth = sim.ground_truth();
    for (i, profile) in sim.systems().iter().enumerate() {
        let Some(rel) = file_name(profile) else {
            continue;
        };
        let path = out.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let quarantined = match profile.protocol {
            Protocol::Csv => write_csv(sim, i, &path, opts)?,
            _ => write_xlsx(sim, i, &path, opts)?,
        };
        if !quarantined.is_empty() {
            let bad: HashSet<&str> = quarantined.iter().map(|q| q.1.as_str()).collect();
            let st = &mut truth.systems[i];
            let (ids, keys): (Vec<String>, Vec<String>) = st
                .record_ids
                .drain(..)
                .zip(st.entity_keys.drain(..))
                .filter(|(id, _)| !bad.contains(id.as_str()))
                .unzip();
            st.record_ids = ids;
            st.entity_keys = keys;
            st.record_count = st.record_ids.len();
            st.expected_quarantine = quarantined
                .into_iter()
                .map(|(line, record_id, reason)| QuarantineExpectation {
                    file: rel.clone(),
                    line,
                    record_id,
                    reason,
                })
                .collect();
        }
    }
    let path = out.join("ground-truth.json");
    std::fs::create_dir_all(out).map_err(io(out))?;
    let file = std::fs::File::create(&path).map_err(io(&path))?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, &truth).map_err(|e| ExportError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    w.flush().map_err(io(&path))?;
    Ok(truth)
}

fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_field(f, &mut line);
    }
    line.push_str("\r\n");
    line
}

fn encode(text: &str, encoding: Encoding, path: &Path) -> Result<Vec<u8>, ExportError> {
    let enc = match encoding {
        Encoding::Utf8 => return Ok(text.as_bytes().to_vec()),
        Encoding::Gbk => encoding_rs::GBK,
        Encoding::Gb18030 => encoding_rs::GB18030,
    };
    let (bytes, _, unmappable) = enc.encode(text);
    if unmappable {
        return Err(ExportError::Unencodable {
            path: path.to_path_buf(),
            encoding: enc.name(),
        });
    }
    Ok(bytes.into_owned())
}

/// Malformed rows: `(line, record id, reason)`.
type Quarantined = Vec<(usize, String, String)>;

fn maybe_break(
    record: &mut Record,
    profile: &SystemProfile,
    row: usize,
    opts: &ExportOptions,
    q: &mut Quarantined,
) {
    if opts.malformed_every > 0 && row.is_multiple_of(opts.malformed_every) {
        let reason = record.make_malformed(profile);
        // Data row `row` (1-based) is on line row + 1 (the header is line 1).
        q.push((row + 1, record.id.clone(), reason));
    }
}

fn write_csv(
    sim: &Simulator,
    sys: usize,
    path: &Path,
    opts: &ExportOptions,
) -> Result<Quarantined, ExportError> {
    let profile = &sim.systems()[sys];
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut w = std::io::BufWriter::new(file);
    let header = csv_line(profile.fields.iter().map(|f| f.name.as_str()));
    w.write_all(&encode(&header, profile.encoding, path)?)
        .map_err(io(path))?;
    let mut quarantined = Vec::new();
    let mut row = 0;
    let mut result = Ok(());
    sim.for_each_record(sys, |mut r| {
        if result.is_err() {
            return;
        }
        row += 1;
        maybe_break(&mut r, profile, row, opts, &mut quarantined);
        let texts: Vec<String> = r.cells.iter().map(Cell::text).collect();
        let line = csv_line(texts.iter().map(String::as_str));
        result =
            encode(&line, profile.encoding, path).and_then(|b| w.write_all(&b).map_err(io(path)));
    });
    result?;
    w.flush().map_err(io(path))?;
    Ok(quarantined)
}

fn write_xlsx(
    sim: &Simulator,
    sys: usize,
    path: &Path,
    opts: &ExportOptions,
) -> Result<Quarantined, ExportError> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};
    let profile = &sim.systems()[sys];
    let x = |e: rust_xlsxwriter::XlsxError| ExportError::Xlsx {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut wb = Workbook::new();
    // Pinned creation time: same bytes on every run.
    let created = ExcelDateTime::from_ymd(2025, 7, 1).map_err(x)?;
    wb.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&created)
            .set_author("huitong simulator"),
    );
    let ws = wb.add_worksheet();
    ws.set_name("数据").map_err(x)?;
    for (c, f) in profile.fields.iter().enumerate() {
        ws.write_string(0, c as u16, &f.name).map_err(x)?;
    }
    let mut quarantined = Vec::new();
    let mut row = 0usize;
    let mut result = Ok(());
    sim.for_each_record(sys, |mut r| {
        if result.is_err() {
            return;
        }
        row += 1;
        maybe_break(&mut r, profile, row, opts, &mut quarantined);
        for (c, cell) in r.cells.iter().enumerate() {
            let res = match cell {
                // The number the system shows (rounded to its decimals), as CSV and JSON
                // state it.
                Cell::Num(v, _) => ws
                    .write_number(row as u32, c as u16, cell.text().parse().unwrap_or(*v))
                    .map(|_| ()),
                Cell::Text(s) => ws.write_string(row as u32, c as u16, s).map(|_| ()),
                Cell::Null => Ok(()),
            };
            if let Err(e) = res {
                result = Err(x(e));
                return;
            }
        }
    });
    result?;
    wb.save(path).map_err(x)?;
    Ok(quarantined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Size, World};
    use std::collections::BTreeMap;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("huitong-sim-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn read_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(
                        p.strip_prefix(dir).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap(),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let opts = ExportOptions { malformed_every: 5 };
        let (a, b, c) = (temp_dir("a"), temp_dir("b"), temp_dir("c"));
        export(&Simulator::new(World::new(3, Size::Tiny)), &a, &opts).unwrap();
        export(&Simulator::new(World::new(3, Size::Tiny)), &b, &opts).unwrap();
        export(&Simulator::new(World::new(4, Size::Tiny)), &c, &opts).unwrap();
        let (ta, tb, tc) = (read_tree(&a), read_tree(&b), read_tree(&c));
        assert!(ta.len() > 50, "{}", ta.len());
        assert!(
            ta.keys()
                .any(|p| p.extension().is_some_and(|e| e == "xlsx"))
        );
        assert_eq!(ta, tb);
        assert_ne!(
            ta.get(Path::new("ground-truth.json")),
            tc.get(Path::new("ground-truth.json"))
        );
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn csv_encodings_headers_and_expected_quarantine() {
        let dir = temp_dir("csv");
        let sim = Simulator::new(World::new(5, Size::Tiny));
        let truth = export(&sim, &dir, &ExportOptions { malformed_every: 4 }).unwrap();
        let mut seen = [false; 3];
        for (i, p) in sim.systems().iter().enumerate() {
            if p.protocol != Protocol::Csv {
                continue;
            }
            let bytes = std::fs::read(dir.join(file_name(p).unwrap())).unwrap();
            let (text, enc) = match p.encoding {
                Encoding::Utf8 => (String::from_utf8(bytes.clone()).unwrap(), 0),
                Encoding::Gbk => (
                    encoding_rs::GBK
                        .decode_without_bom_handling(&bytes)
                        .0
                        .into_owned(),
                    1,
                ),
                Encoding::Gb18030 => (
                    encoding_rs::GB18030
                        .decode_without_bom_handling(&bytes)
                        .0
                        .into_owned(),
                    2,
                ),
            };
            seen[enc] = true;
            if enc > 0 {
                assert!(
                    std::str::from_utf8(&bytes).is_err(),
                    "{} should not be UTF-8",
                    p.id
                );
            }
            let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
            assert!(lines[0].starts_with("记录编号,"), "{}", lines[0]);
            let st = &truth.systems[i];
            assert_eq!(
                lines.len() - 1,
                st.record_count + st.expected_quarantine.len(),
                "{}",
                p.id
            );
            for q in &st.expected_quarantine {
                let line = lines[q.line - 1];
                assert!(line.starts_with(&format!("{},", q.record_id)), "{line}");
                assert!(
                    line.contains("N/A") || line.contains("2025-13-45"),
                    "{line}"
                );
                assert!(!st.record_ids.contains(&q.record_id));
            }
            // Good rows are exactly the ground truth's ids, in order.
            let ids: Vec<&str> = lines[1..]
                .iter()
                .map(|l| l.split(',').next().unwrap())
                .filter(|id| !st.expected_quarantine.iter().any(|q| q.record_id == *id))
                .collect();
            assert_eq!(
                ids,
                st.record_ids.iter().map(String::as_str).collect::<Vec<_>>()
            );
        }
        assert_eq!(seen, [true; 3]);
        let gbk = sim
            .systems()
            .iter()
            .find(|p| p.encoding == Encoding::Gbk && p.domain == crate::Domain::Vehicle)
            .unwrap();
        let bytes = std::fs::read(dir.join(file_name(gbk).unwrap())).unwrap();
        let text = encoding_rs::GBK.decode_without_bom_handling(&bytes).0;
        assert!(text.contains("号牌号码") && text.contains("公务用车") && text.contains('·'));
        let _ = std::fs::remove_dir_all(dir);
    }
}
