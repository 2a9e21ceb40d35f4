//! Delimited records as Redshift's COPY reads them: CSV (quoted fields with the quote doubled
//! inside, line breaks and delimiters allowed inside quotes, white space between a closing
//! quote and the delimiter ignored) and the default text format (fields split at every
//! delimiter; with `ESCAPE` a backslash makes the next character, a delimiter or a line break
//! included, literal; with `REMOVEQUOTES` surrounding double quotes are removed and what they
//! enclose kept whole). Records end at a line break (`\n`, or `\r\n`) outside quotes and
//! escapes. Each record is bounded by [`crate::limits::RECORD_BYTES_MAX`].

use std::io::{BufRead, Read};
use std::ops::Range;

use crate::limits;
use crate::options::{CopyOptions, Format};

/// Why reading stopped (every one fails the object: the input cannot be resynchronised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The input could not be read (a damaged GZIP stream, too much decompressed data).
    Io(String),
    TooLarge {
        line: u64,
    },
    Unterminated {
        line: u64,
    },
    AfterQuote {
        line: u64,
        byte: u8,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "reading the object: {e}"),
            ReadError::TooLarge { line } => write!(
                f,
                "the record at line {line} is longer than {} bytes",
                limits::RECORD_BYTES_MAX
            ),
            ReadError::Unterminated { line } => {
                write!(
                    f,
                    "the record at line {line} has a quoted field that is not closed"
                )
            }
            ReadError::AfterQuote { line, byte } => write!(
                f,
                "the record at line {line} has `{}` after a closing quote",
                char::from(*byte).escape_default()
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    FieldStart,
    Unquoted,
    Quoted,
    AfterQuote,
}

/// One field of the current record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawField {
    /// The field's bytes with quotes and escapes removed, in `data`.
    data: Range<usize>,
    /// The field as written, in `record` (for `NULL AS`, which matches the text as written).
    raw: Range<usize>,
    quoted: bool,
}

/// Reads records one at a time from a buffered reader.
pub(crate) struct DelimitedReader<R> {
    reader: R,
    csv_quote: Option<u8>,
    delimiter: u8,
    escape: bool,
    remove_quotes: bool,
    ignore_blank_lines: bool,
    /// Physical lines consumed.
    line: u64,
    record: Vec<u8>,
    data: Vec<u8>,
    fields: Vec<RawField>,
}

/// One field, borrowed from the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldRef<'a> {
    pub data: &'a [u8],
    pub raw: &'a [u8],
    pub quoted: bool,
}

impl<R: BufRead> DelimitedReader<R> {
    pub(crate) fn new(reader: R, options: &CopyOptions) -> DelimitedReader<R> {
        DelimitedReader {
            reader,
            csv_quote: match options.format {
                Format::Csv { quote } => Some(quote),
                _ => None,
            },
            delimiter: options.delimiter,
            escape: options.escape,
            remove_quotes: options.remove_quotes,
            ignore_blank_lines: options.ignore_blank_lines,
            line: 0,
            record: Vec::new(),
            data: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Reads one physical line into `record` (appending); returns its length, 0 at the end.
    fn read_line(&mut self) -> Result<usize, ReadError> {
        let room = limits::RECORD_BYTES_MAX.saturating_sub(self.record.len());
        let n = (&mut self.reader)
            .take(room as u64 + 1)
            .read_until(b'\n', &mut self.record)
            .map_err(|e| ReadError::Io(e.to_string()))?;
        if n > 0 {
            self.line += 1;
        }
        if self.record.len() > limits::RECORD_BYTES_MAX {
            return Err(ReadError::TooLarge { line: self.line });
        }
        Ok(n)
    }

    /// Skips `count` physical lines (`IGNOREHEADER`).
    pub(crate) fn skip_lines(&mut self, count: u64) -> Result<(), ReadError> {
        for _ in 0..count {
            self.record.clear();
            if self.read_line()? == 0 {
                break;
            }
        }
        self.record.clear();
        Ok(())
    }

    /// Reads the next record; returns the line it starts on, or `None` at the end.
    pub(crate) fn next_record(&mut self) -> Result<Option<u64>, ReadError> {
        loop {
            self.record.clear();
            self.data.clear();
            self.fields.clear();
            let start_line = self.line + 1;
            if self.read_line()? == 0 {
                return Ok(None);
            }
            let mut scan = Scan {
                pos: 0,
                phase: Phase::FieldStart,
                field_data_start: 0,
                field_raw_start: 0,
                quoted: false,
            };
            loop {
                if self.scan(&mut scan, start_line)? {
                    break;
                }
                if self.read_line()? == 0 {
                    // The end of the input ends the record.
                    if scan.phase == Phase::Quoted {
                        return Err(ReadError::Unterminated { line: start_line });
                    }
                    let end = self.record.len();
                    if scan.phase == Phase::FieldStart {
                        // The input ends right after a delimiter: one more, empty, field.
                        scan.field_data_start = self.data.len();
                        scan.field_raw_start = end;
                        scan.quoted = false;
                    }
                    self.end_field(&scan, end);
                    break;
                }
            }
            let blank = self.record.iter().all(|b| *b == b'\n' || *b == b'\r');
            if blank && self.ignore_blank_lines {
                continue;
            }
            return Ok(Some(start_line));
        }
    }

    fn end_field(&mut self, scan: &Scan, raw_end: usize) {
        self.fields.push(RawField {
            data: scan.field_data_start..self.data.len(),
            raw: scan.field_raw_start..raw_end.max(scan.field_raw_start),
            quoted: scan.quoted,
        });
    }

    /// Scans `record` from `scan.pos`; true once the record's line break was reached.
    fn scan(&mut self, scan: &mut Scan, line: u64) -> Result<bool, ReadError> {
        let len = self.record.len();
        let quote = self
            .csv_quote
            .or(if self.remove_quotes { Some(b'"') } else { None });
        while scan.pos < len {
            let b = self.record[scan.pos];
            match scan.phase {
                Phase::FieldStart => {
                    scan.field_raw_start = scan.pos;
                    scan.field_data_start = self.data.len();
                    scan.quoted = false;
                    scan.phase = Phase::Unquoted;
                    if let Some(q) = quote {
                        let mut k = scan.pos;
                        if self.csv_quote.is_some() {
                            // CSV: white space before an opening quote is ignored.
                            while k < len && self.record[k] == b' ' {
                                k += 1;
                            }
                        }
                        if k < len && self.record[k] == q {
                            scan.pos = k + 1;
                            scan.phase = Phase::Quoted;
                            scan.quoted = true;
                        }
                    }
                }
                Phase::Unquoted => {
                    if b == self.delimiter {
                        self.end_field(scan, scan.pos);
                        scan.pos += 1;
                        scan.phase = Phase::FieldStart;
                    } else if b == b'\n' {
                        let mut raw_end = scan.pos;
                        if raw_end > scan.field_raw_start && self.record[raw_end - 1] == b'\r' {
                            raw_end -= 1;
                            self.data.pop();
                        }
                        self.end_field(scan, raw_end);
                        scan.pos += 1;
                        return Ok(true);
                    } else if self.escape && b == b'\\' {
                        match self.record.get(scan.pos + 1) {
                            Some(&next) => {
                                self.data.push(next);
                                scan.pos += 2;
                            }
                            None => {
                                // A backslash as the very last byte of the input.
                                self.data.push(b);
                                scan.pos += 1;
                            }
                        }
                    } else {
                        self.data.push(b);
                        scan.pos += 1;
                    }
                }
                Phase::Quoted => {
                    let q = quote.unwrap_or(b'"');
                    if b == q {
                        if self.csv_quote.is_some() && self.record.get(scan.pos + 1) == Some(&q) {
                            self.data.push(q);
                            scan.pos += 2;
                        } else {
                            scan.phase = Phase::AfterQuote;
                            scan.pos += 1;
                        }
                    } else {
                        self.data.push(b);
                        scan.pos += 1;
                    }
                }
                Phase::AfterQuote => {
                    if b == self.delimiter {
                        self.end_field(scan, scan.pos);
                        scan.pos += 1;
                        scan.phase = Phase::FieldStart;
                    } else if b == b'\n' {
                        let mut raw_end = scan.pos;
                        if self.record[raw_end - 1] == b'\r' {
                            raw_end -= 1;
                        }
                        self.end_field(scan, raw_end);
                        scan.pos += 1;
                        return Ok(true);
                    } else if b == b' ' || b == b'\r' {
                        scan.pos += 1;
                    } else if self.csv_quote.is_some() {
                        return Err(ReadError::AfterQuote { line, byte: b });
                    } else {
                        // REMOVEQUOTES: text after the quotes is part of the field.
                        scan.phase = Phase::Unquoted;
                    }
                }
            }
        }
        Ok(false)
    }

    /// The fields of the record last read.
    pub(crate) fn fields(&self) -> impl ExactSizeIterator<Item = FieldRef<'_>> + '_ {
        self.fields.iter().map(|f| FieldRef {
            data: &self.data[f.data.clone()],
            raw: &self.record[f.raw.clone()],
            quoted: f.quoted,
        })
    }

    pub(crate) fn field_count(&self) -> usize {
        self.fields.len()
    }
}

struct Scan {
    pos: usize,
    phase: Phase,
    field_data_start: usize,
    field_raw_start: usize,
    quoted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &str, options: &str) -> Result<Vec<(u64, Vec<String>)>, ReadError> {
        let options = CopyOptions::parse(options).unwrap();
        let mut reader = DelimitedReader::new(input.as_bytes(), &options);
        reader.skip_lines(options.ignore_header)?;
        let mut out = Vec::new();
        while let Some(line) = reader.next_record()? {
            let fields = reader
                .fields()
                .map(|f| String::from_utf8(f.data.to_vec()).unwrap())
                .collect();
            out.push((line, fields));
        }
        Ok(out)
    }

    fn v(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn csv() {
        let got = records(
            "id,name\n1,plain\n2,\"with, comma\"\r\n3, \"spaced\" ,x\n4,\"multi\nline \"\"q\"\"\"\n5,",
            "csv ignoreheader 1",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                (2, v(&["1", "plain"])),
                (3, v(&["2", "with, comma"])),
                (4, v(&["3", "spaced", "x"])),
                (5, v(&["4", "multi\nline \"q\""])),
                (7, v(&["5", ""])),
            ]
        );
    }

    #[test]
    fn csv_errors() {
        assert_eq!(
            records("1,\"open\n2,x\n", "csv"),
            Err(ReadError::Unterminated { line: 1 })
        );
        assert_eq!(
            records("1,\"a\"b\n", "csv"),
            Err(ReadError::AfterQuote {
                line: 1,
                byte: b'b'
            })
        );
    }

    #[test]
    fn text_format() {
        let got = records("a|b|c\nd\\|e|\\\nf|g\n\nx", "delimiter '|' escape").unwrap();
        assert_eq!(
            got,
            [
                (1, v(&["a", "b", "c"])),
                (2, v(&["d|e", "\nf", "g"])),
                (4, v(&[""])),
                (5, v(&["x"])),
            ]
        );
        let got = records(
            "a\t\"b\tc\"\n\n",
            "delimiter '\\t' removequotes ignoreblanklines",
        )
        .unwrap();
        assert_eq!(got, [(1, v(&["a", "b\tc"]))]);
        // Without ESCAPE a backslash is data; `\N` stays visible as written for NULL AS.
        let options = CopyOptions::parse("").unwrap();
        let mut r = DelimitedReader::new(&b"\\N|x\r\n"[..], &options);
        assert_eq!(r.next_record().unwrap(), Some(1));
        let f: Vec<_> = r.fields().collect();
        assert_eq!(f[0].raw, b"\\N");
        assert_eq!(f[1].data, b"x");
        assert_eq!(r.next_record().unwrap(), None);
    }

    #[test]
    fn record_size_at_the_limit() {
        let max = limits::RECORD_BYTES_MAX;
        let at = format!("{}\n", "x".repeat(max - 1));
        let got = records(&at, "").unwrap();
        assert_eq!(got[0].1[0].len(), max - 1);
        let past = format!("{}\n", "x".repeat(max));
        assert_eq!(records(&past, ""), Err(ReadError::TooLarge { line: 1 }));
        let past_no_newline = "x".repeat(max + 1);
        assert_eq!(
            records(&past_no_newline, ""),
            Err(ReadError::TooLarge { line: 1 })
        );
        let at_no_newline = "x".repeat(max);
        assert_eq!(records(&at_no_newline, "").unwrap()[0].1[0].len(), max);
    }
}
