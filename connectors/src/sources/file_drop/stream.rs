//! Readers that let a dropped file be read as a stream, never held whole: its checksum and
//! first bytes as they pass ([`Hashed`]), its text decoded to UTF-8 with malformed bytes an
//! error ([`Decoded`]), and where its lines break ([`Breaks`]), so that rows keep their line
//! numbers.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

use encoding_rs::{DecoderResult, Encoding};
use sha2::{Digest, Sha256};

/// A reader that hashes (SHA-256) what passes through it and keeps the first `keep` bytes.
pub(super) struct Hashed<R> {
    inner: R,
    hash: Sha256,
    head: Vec<u8>,
    keep: usize,
    bytes: u64,
}

impl<R: Read> Hashed<R> {
    pub(super) fn new(inner: R, keep: usize) -> Self {
        Hashed {
            inner,
            hash: Sha256::new(),
            head: Vec::new(),
            keep,
            bytes: 0,
        }
    }

    /// Bytes read so far.
    pub(super) fn read_so_far(&self) -> u64 {
        self.bytes
    }

    /// The checksum (lower-case hex) and the first bytes.
    pub(super) fn finish(self) -> (String, Vec<u8>) {
        (crate::digest::hex(&self.hash.finalize()), self.head)
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        let room = self.keep.saturating_sub(self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..room]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The text of `inner`, in `encoding`, as UTF-8 bytes; a leading UTF-8 byte-order mark is
/// dropped (Excel writes one), a malformed byte sequence is an `InvalidData` error — never
/// replaced.
pub(super) struct Decoded<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    name: &'static str,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    /// Decoded text not yet handed out: `output[out_start..out_end]`.
    output: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    /// The input is exhausted.
    eof: bool,
    /// The decoder was told the input ended and has flushed.
    done: bool,
    /// Whether the start of the input was looked at for a byte-order mark.
    began: bool,
    /// A malformed sequence was met: every read fails from then on.
    malformed: bool,
}

impl<R: Read> Decoded<R> {
    pub(super) fn new(inner: R, encoding: &'static Encoding) -> Self {
        Decoded {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            name: encoding.name(),
            input: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            output: vec![0; 64 * 1024].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            eof: false,
            done: false,
            began: false,
            malformed: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        // Keep reading until there are at least 3 bytes to look for a byte-order mark in.
        let mut end = 0;
        loop {
            let n = self.inner.read(&mut self.input[end..])?;
            end += n;
            if n == 0 {
                self.eof = true;
                break;
            }
            if self.began || end >= 3 {
                break;
            }
        }
        self.start = 0;
        self.end = end;
        if !self.began {
            self.began = true;
            if self.input[..end].starts_with(b"\xEF\xBB\xBF") {
                self.start = 3;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            // The text before a malformed sequence is handed out; after it, only the error.
            if self.out_start < self.out_end {
                let n = out.len().min(self.out_end - self.out_start);
                out[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.malformed {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "文件不是有效的 {} 编码文本 (the file is not valid {} text)",
                        self.name, self.name
                    ),
                ));
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.fill()?;
            }
            let last = self.eof && self.start == self.end;
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.start..self.end],
                &mut self.output,
                last,
            );
            self.start += read;
            (self.out_start, self.out_end) = (0, written);
            self.malformed = matches!(result, DecoderResult::Malformed(..));
            if last && result == DecoderResult::InputEmpty {
                self.done = true;
            }
        }
    }
}

/// Where the line breaks of a stream are, for the rows read from it: runs of `\r`/`\n` with
/// the newlines in each, from the oldest not yet passed.
#[derive(Debug, Default)]
pub(super) struct BreakLog {
    runs: VecDeque<(u64, u64)>,
    /// The run being read (its start, its line breaks), until a byte that is not a break.
    open: Option<(u64, u64)>,
    /// The last byte of the open run was a `\r` (a line break unless `\n` follows).
    after_cr: bool,
    /// 1-based line of the first byte after the runs already passed.
    line: u64,
}

/// Runs kept before the oldest are merged: only a giant record (a quoted field of many lines)
/// gets near it, and no record starts inside one, so a merge changes no line number.
const RUNS: usize = 65_536;

impl BreakLog {
    /// The 1-based line of a record that the CSV reader places at byte `at`: a record starts
    /// after every run of breaks that begins at or before `at` (with CRLF the reader can place
    /// a record on the break before it). Positions must not go back.
    pub(super) fn line_at(&mut self, at: u64) -> u64 {
        while let Some(&(start, newlines)) = self.runs.front() {
            if start > at {
                break;
            }
            self.line += newlines;
            self.runs.pop_front();
        }
        self.line
    }
}

/// A reader noting, in a shared [`BreakLog`], where the lines of what passes through break.
pub(super) struct Breaks<R> {
    inner: R,
    log: Rc<RefCell<BreakLog>>,
    offset: u64,
}

impl<R: Read> Breaks<R> {
    pub(super) fn new(inner: R) -> (Self, Rc<RefCell<BreakLog>>) {
        let log = Rc::new(RefCell::new(BreakLog {
            line: 1,
            ..BreakLog::default()
        }));
        (
            Breaks {
                inner,
                log: log.clone(),
                offset: 0,
            },
            log,
        )
    }
}

impl<R: Read> Read for Breaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut log = self.log.borrow_mut();
        for (i, &byte) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            // CRLF, LF and a lone CR each end a line, as the CSV reader takes them.
            match byte {
                b'\n' => {
                    log.open.get_or_insert((at, 0)).1 += 1;
                    log.after_cr = false;
                }
                b'\r' => {
                    let lone = std::mem::replace(&mut log.after_cr, true);
                    log.open.get_or_insert((at, 0)).1 += u64::from(lone);
                }
                _ => {
                    if let Some((start, breaks)) = log.open.take() {
                        let lone = std::mem::take(&mut log.after_cr);
                        log.runs.push_back((start, breaks + u64::from(lone)));
                        if log.runs.len() > RUNS
                            && let (Some(first), Some(second)) =
                                (log.runs.pop_front(), log.runs.pop_front())
                        {
                            log.runs.push_front((first.0, first.1 + second.1));
                        }
                    }
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing out at most `step` bytes a call, as a slow file or pipe does.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn decode_all(bytes: &[u8], encoding: &'static Encoding, step: usize) -> io::Result<String> {
        let mut text = String::new();
        Decoded::new(Trickle(bytes, step), encoding).read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn decodes_in_any_chunks_and_refuses_malformed_bytes() {
        let (gbk, _, _) = encoding_rs::GBK.encode("单位名称,号牌\n呈贡区,云A1\n");
        for step in [1, 2, 3, 7, 4096] {
            assert_eq!(
                decode_all(&gbk, encoding_rs::GBK, step).expect("GBK"),
                "单位名称,号牌\n呈贡区,云A1\n",
                "{step}"
            );
            assert_eq!(
                decode_all("\u{feff}a,b\n".as_bytes(), encoding_rs::UTF_8, step).expect("BOM"),
                "a,b\n"
            );
            let error = decode_all(&gbk, encoding_rs::UTF_8, step).expect_err("not UTF-8");
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        }
        assert_eq!(decode_all(b"", encoding_rs::UTF_8, 1).expect("empty"), "");
        // A sequence cut off by the end of the file is malformed too.
        assert!(decode_all(&gbk[..gbk.len() - 2], encoding_rs::GBK, 5).is_ok());
        assert!(decode_all(b"ab\xe5\x8d", encoding_rs::UTF_8, 1).is_err());
    }

    #[test]
    fn hashes_what_passes_and_keeps_its_head() {
        let mut hashed = Hashed::new(Trickle(b"hello world", 3), 4);
        io::copy(&mut hashed, &mut io::sink()).expect("copy");
        assert_eq!(hashed.read_so_far(), 11);
        let (checksum, head) = hashed.finish();
        assert_eq!(head, b"hell");
        assert_eq!(
            checksum,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn breaks_place_records_on_their_lines() {
        let text = b"a,b\r\n1,2\r\n\r\n5,6\r\n\"x\ny\",4\n7,8";
        let (mut breaks, log) = Breaks::new(Trickle(text, 2));
        io::copy(&mut breaks, &mut io::sink()).expect("copy");
        let mut log = log.borrow_mut();
        // Record starts (as the CSV reader may report them: on the break before the record).
        assert_eq!(log.line_at(0), 1);
        assert_eq!(log.line_at(3), 2, "on the CRLF before `1,2`");
        assert_eq!(log.line_at(13), 4, "after the blank line");
        assert_eq!(log.line_at(18), 5);
        assert_eq!(log.line_at(26), 7, "after a quoted line break");
        drop(log);

        let (mut breaks, log) = Breaks::new(Trickle(b"a\rb\r\rc\r\nd", 1));
        io::copy(&mut breaks, &mut io::sink()).expect("copy");
        let mut log = log.borrow_mut();
        assert_eq!(
            [2, 4, 7, 9].map(|at| log.line_at(at)),
            [2, 4, 5, 5],
            "lone CRs end lines too"
        );
    }
}
