//! A staged object read into rows for the target's columns: GZIP decompressed on the fly
//! (bounded by [`limits::DECOMPRESSED_BYTES_MAX`]), records read by format (`json.rs`,
//! `delimited.rs`), each value converted for its column (`value.rs`), `MAXERROR` applied.
//! Synchronous: the loader runs it on the blocking pool and takes the rows in bounded
//! batches, so an object is never held twice.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;
use serde_json::value::RawValue;

use crate::delimited::{DelimitedReader, ReadError};
use crate::error::{LoadError, RecordError, RecordPosition};
use crate::json::{self, JsonPlan};
use crate::limits;
use crate::options::{CopyOptions, Format};
use crate::table::Target;
use crate::value::{self, Cell, Field, ValueRules};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How an object's records become rows of a target.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub target: Target,
    json: Option<JsonPlan>,
    rules: ValueRules,
    options: CopyOptions,
}

impl Plan {
    pub(crate) fn new(target: Target, options: &CopyOptions) -> Result<Plan, LoadError> {
        let json = match options.format {
            Format::Json { ignore_case } => {
                Some(JsonPlan::new(&target.table, &target.columns, ignore_case)?)
            }
            _ => None,
        };
        Ok(Plan {
            target,
            json,
            rules: ValueRules::new(options),
            options: options.clone(),
        })
    }
}

/// What reading an object found besides its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Records read (rows handed on plus records skipped).
    pub records: u64,
    /// Records that did not convert and were skipped under `MAXERROR`.
    pub skipped_count: u64,
    /// The first [`limits::SKIPPED_RECORDS_KEPT_MAX`] of them.
    pub skipped: Vec<RecordError>,
}

/// Decompressed bytes, failing (not truncating) past a bound.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "the object decompresses to more than {} bytes",
                limits::DECOMPRESSED_BYTES_MAX
            ))
        })?;
        Ok(n)
    }
}

struct Reading<'a, 'e> {
    object_key: &'a str,
    plan: &'a Plan,
    emit: &'e mut dyn FnMut(Vec<Cell>) -> bool,
    summary: Summary,
    stopped: bool,
}

impl Reading<'_, '_> {
    /// Counts a record that did not convert: skipped while `MAXERROR` allows, else the load
    /// fails with it.
    fn record_error(&mut self, error: RecordError) -> Result<(), LoadError> {
        self.summary.skipped_count += 1;
        if self.summary.skipped_count > self.plan.options.max_errors {
            return Err(LoadError::Record {
                object_key: self.object_key.to_string(),
                source: error,
            });
        }
        if self.summary.skipped.len() < limits::SKIPPED_RECORDS_KEPT_MAX {
            self.summary.skipped.push(error);
        }
        Ok(())
    }

    fn body_error(&self, reason: impl Into<String>) -> LoadError {
        LoadError::Body {
            object_key: self.object_key.to_string(),
            reason: reason.into(),
        }
    }

    fn emit(&mut self, row: Vec<Cell>) {
        if !(self.emit)(row) {
            self.stopped = true;
        }
    }

    /// Converts one record's fields; a failed value is a record error naming its column.
    fn convert_row<'f>(
        &mut self,
        position: RecordPosition,
        fields: impl Iterator<Item = Option<Field<'f>>>,
    ) -> Result<(), LoadError> {
        let plan = self.plan;
        let columns = &plan.target.columns;
        let mut row = Vec::with_capacity(columns.len());
        for (column, field) in columns.iter().zip(fields) {
            match value::convert(field, column, &plan.rules) {
                Ok(cell) => row.push(cell),
                Err(message) => {
                    return self.record_error(RecordError {
                        position,
                        column: Some(column.name.clone()),
                        type_name: Some(column.type_name.clone()),
                        message,
                    })
                }
            }
        }
        self.emit(row);
        Ok(())
    }

    fn json<'de, R: serde_json::de::Read<'de>>(
        &mut self,
        stream: serde_json::StreamDeserializer<'de, R, Box<RawValue>>,
        plan: &JsonPlan,
    ) -> Result<(), LoadError> {
        let columns = self.plan.target.columns.len();
        for raw in stream {
            let raw = raw.map_err(|e| {
                self.body_error(format!(
                    "JSON that does not parse after record {}: {e}",
                    self.summary.records
                ))
            })?;
            self.summary.records += 1;
            let position = RecordPosition {
                record: self.summary.records,
                line: None,
            };
            let text = raw.get();
            if text.len() > limits::RECORD_BYTES_MAX {
                self.record_error(RecordError {
                    position,
                    column: None,
                    type_name: None,
                    message: format!(
                        "the record is {} bytes; at most {} are loaded",
                        text.len(),
                        limits::RECORD_BYTES_MAX
                    ),
                })?;
                continue;
            }
            let mut slots: Vec<Option<&RawValue>> = vec![None; columns];
            if let Err(message) = json::read_record(text, plan, &mut slots) {
                self.record_error(RecordError {
                    position,
                    column: None,
                    type_name: None,
                    message,
                })?;
                continue;
            }
            let fields: Vec<Option<Field<'_>>> = slots.iter().map(|s| s.map(Field::Json)).collect();
            self.convert_row(position, fields.into_iter())?;
            if self.stopped {
                break;
            }
        }
        Ok(())
    }

    fn delimited<R: BufRead>(&mut self, input: R) -> Result<(), LoadError> {
        let plan = self.plan;
        let options = &plan.options;
        let mut reader = DelimitedReader::new(input, options);
        let object_key = self.object_key;
        let read_error = |e: ReadError| LoadError::Body {
            object_key: object_key.to_string(),
            reason: e.to_string(),
        };
        reader
            .skip_lines(options.ignore_header)
            .map_err(read_error)?;
        let columns = plan.target.columns.len();
        let null_as = options.null_as.as_bytes();
        let csv = matches!(options.format, Format::Csv { .. });
        let accept_inv_chars = options.accept_inv_chars;
        let fill_record = options.fill_record;
        let mut texts: Vec<Option<String>> = Vec::with_capacity(columns);
        while let Some(line) = reader.next_record().map_err(read_error)? {
            self.summary.records += 1;
            let position = RecordPosition {
                record: self.summary.records,
                line: Some(line),
            };
            let count = reader.field_count();
            if count > columns || (count < columns && !fill_record) {
                self.record_error(RecordError {
                    position,
                    column: None,
                    type_name: None,
                    message: format!(
                        "the record has {count} field{}; the COPY loads {columns} column{}{}",
                        if count == 1 { "" } else { "s" },
                        if columns == 1 { "" } else { "s" },
                        if count < columns {
                            " (FILLRECORD loads NULL into the missing ones)"
                        } else {
                            ""
                        }
                    ),
                })?;
                continue;
            }
            texts.clear();
            let mut bad_utf8 = None;
            for (i, field) in reader.fields().enumerate() {
                // NULL AS matches the field as written (a quoted CSV field is never NULL).
                if (!csv || !field.quoted) && field.raw == null_as {
                    texts.push(None);
                    continue;
                }
                match std::str::from_utf8(field.data) {
                    Ok(s) => texts.push(Some(s.to_string())),
                    Err(_) => match accept_inv_chars {
                        Some(c) => texts.push(Some(replace_invalid(field.data, c))),
                        None => {
                            bad_utf8 = Some(i);
                            break;
                        }
                    },
                }
            }
            if let Some(i) = bad_utf8 {
                let column = &plan.target.columns[i];
                self.record_error(RecordError {
                    position,
                    column: Some(column.name.clone()),
                    type_name: Some(column.type_name.clone()),
                    message: "the field is not valid UTF-8 (ACCEPTINVCHARS replaces invalid \
                              characters)"
                        .to_string(),
                })?;
                continue;
            }
            let taken = std::mem::take(&mut texts);
            let fields = taken
                .iter()
                .map(|t| t.as_deref().map(Field::Text))
                .chain(std::iter::repeat(None));
            self.convert_row(position, fields)?;
            texts = taken;
            if self.stopped {
                break;
            }
        }
        Ok(())
    }
}

/// Invalid UTF-8 sequences replaced by `replacement` (`ACCEPTINVCHARS`).
fn replace_invalid(bytes: &[u8], replacement: char) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(replacement);
        }
    }
    out
}

/// Reads `body` into rows for `plan`, handing each to `emit` in order; stops early (with
/// what was read so far) when `emit` returns false.
pub(crate) fn read_rows(
    object_key: &str,
    body: &[u8],
    plan: &Plan,
    emit: &mut dyn FnMut(Vec<Cell>) -> bool,
) -> Result<Summary, LoadError> {
    let mut reading = Reading {
        object_key,
        plan,
        emit,
        summary: Summary::default(),
        stopped: false,
    };
    let gzipped = body.starts_with(&GZIP_MAGIC);
    if plan.options.gzip {
        if !gzipped {
            return Err(
                reading.body_error("CopyOptions has GZIP but the object is not GZIP-compressed")
            );
        }
        let bounded = Bounded {
            inner: MultiGzDecoder::new(body),
            left: limits::DECOMPRESSED_BYTES_MAX,
        };
        let input = BufReader::with_capacity(64 * 1024, bounded);
        match &plan.json {
            Some(json) => reading.json(
                serde_json::Deserializer::from_reader(input).into_iter(),
                json,
            )?,
            None => reading.delimited(input)?,
        }
    } else {
        if gzipped {
            return Err(
                reading.body_error("the object is GZIP-compressed; add GZIP to CopyOptions")
            );
        }
        let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
        match &plan.json {
            Some(json) => {
                reading.json(serde_json::Deserializer::from_slice(body).into_iter(), json)?
            }
            None => reading.delimited(body)?,
        }
    }
    Ok(reading.summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::CopyCommand;
    use crate::table::{Kind, TargetColumn};
    use std::io::Write;
    use tokio_postgres::types::Type;

    fn target() -> Target {
        let col = |name: &str, kind, ty: Type, not_null| TargetColumn {
            name: name.to_string(),
            kind,
            pg_type: ty.clone(),
            not_null,
            chars_max: None,
            type_name: ty.name().to_string(),
        };
        Target {
            table: "t".into(),
            columns: vec![
                col("id", Kind::Int4, Type::INT4, true),
                col("name", Kind::Text, Type::TEXT, false),
            ],
        }
    }

    fn read(body: &[u8], options: &str) -> Result<(Vec<Vec<Cell>>, Summary), LoadError> {
        let copy = CopyCommand::new("t", None, Some(options)).unwrap();
        let plan = Plan::new(target(), copy.options()).unwrap();
        let mut rows = Vec::new();
        let summary = read_rows("k", body, &plan, &mut |row| {
            rows.push(row);
            true
        })?;
        Ok((rows, summary))
    }

    fn row(id: i32, name: Option<&str>) -> Vec<Cell> {
        vec![
            Cell::I32(id),
            name.map_or(Cell::Null, |n| Cell::Text(n.to_string())),
        ]
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn concatenated_json_with_and_without_separators() {
        let body = br#"{"id":1,"name":"a"}{"id":2}
{"id":3,"name":"c","extra":true}  {"name":null,"id":"4"}"#;
        let (rows, summary) = read(body, "json 'auto'").unwrap();
        assert_eq!(
            rows,
            [
                row(1, Some("a")),
                row(2, None),
                row(3, Some("c")),
                row(4, None)
            ]
        );
        assert_eq!(summary.records, 4);
        let (rows, _) = read(&gzip(body), "json 'auto' gzip").unwrap();
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn bad_records_fail_the_object_naming_record_and_column() {
        let body = br#"{"id":1}{"id":"x"}{"id":3}"#;
        let err = read(body, "json 'auto'").unwrap_err();
        assert_eq!(
            err.to_string(),
            "object k: record 2, column \"id\" (int4): `x` is not an integer"
        );
        let err = read(br#"{"name":"no id"}"#, "json 'auto'").unwrap_err();
        assert!(err.to_string().contains("NOT NULL"), "{err}");
        let err = read(br#"{"id":1} {"id": tru}"#, "json 'auto'").unwrap_err();
        assert!(err.to_string().contains("after record 1"), "{err}");
    }

    #[test]
    fn maxerror_skips_up_to_n_records() {
        let body = br#"{"id":1}{"id":"x"}[1]{"id":4}"#;
        let (rows, summary) = read(body, "json 'auto' maxerror 2").unwrap();
        assert_eq!(rows, [row(1, None), row(4, None)]);
        assert_eq!(summary.skipped_count, 2);
        assert_eq!(summary.skipped[1].position.record, 3);
        assert!(read(body, "json 'auto' maxerror 1").is_err());
    }

    #[test]
    fn skipped_records_kept_at_the_limit() {
        let max = limits::SKIPPED_RECORDS_KEPT_MAX;
        let body: String = (0..max + 1).map(|_| r#"{"id":"x"}"#).collect();
        let (rows, summary) = read(body.as_bytes(), "json 'auto' maxerror 1000").unwrap();
        assert!(rows.is_empty());
        assert_eq!(summary.skipped_count, max as u64 + 1);
        assert_eq!(summary.skipped.len(), max);
    }

    #[test]
    fn delimited_rows() {
        let (rows, _) = read(b"1|a\n2|\\N\n3|\n", "").unwrap();
        assert_eq!(rows, [row(1, Some("a")), row(2, None), row(3, Some(""))]);
        let (rows, _) = read(
            b"id,name\n1,\"x,y\"\n2,NULL\n",
            "csv ignoreheader 1 null as 'NULL'",
        )
        .unwrap();
        assert_eq!(rows, [row(1, Some("x,y")), row(2, None)]);
        let (rows, _) = read(&gzip(b"5\n"), "csv gzip fillrecord").unwrap();
        assert_eq!(rows, [row(5, None)]);
        let err = read(b"1,a,b\n", "csv").unwrap_err();
        assert!(
            err.to_string()
                .contains("record 1 (line 1): the record has 3 fields"),
            "{err}"
        );
        let err = read(b"1\n", "csv").unwrap_err();
        assert!(err.to_string().contains("FILLRECORD"), "{err}");
        let (rows, _) = read(b"1,a\xffb\n", "csv acceptinvchars").unwrap();
        assert_eq!(rows, [row(1, Some("a?b"))]);
        let err = read(b"1,a\xffb\n", "csv").unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }

    #[test]
    fn compression_mismatches_are_reported() {
        let err = read(&gzip(b"{}"), "json 'auto'").unwrap_err();
        assert!(err.to_string().contains("add GZIP"), "{err}");
        let err = read(b"{}", "json 'auto' gzip").unwrap_err();
        assert!(err.to_string().contains("not GZIP-compressed"), "{err}");
        let mut damaged = gzip(br#"{"id":1}"#);
        let n = damaged.len();
        damaged.truncate(n - 6);
        assert!(read(&damaged, "json 'auto' gzip").is_err());
    }

    #[test]
    fn emit_can_stop_the_reading() {
        let copy = CopyCommand::new("t", None, Some("json 'auto'")).unwrap();
        let plan = Plan::new(target(), copy.options()).unwrap();
        let mut seen = 0;
        let summary = read_rows("k", br#"{"id":1}{"id":2}{"id":3}"#, &plan, &mut |_| {
            seen += 1;
            false
        })
        .unwrap();
        assert_eq!((seen, summary.records), (1, 1));
    }

    #[test]
    fn decompressed_size_is_bounded() {
        let mut b = Bounded {
            inner: &[0u8; 10][..],
            left: 10,
        };
        let mut out = Vec::new();
        assert_eq!(b.read_to_end(&mut out).unwrap(), 10);
        let mut b = Bounded {
            inner: &[0u8; 11][..],
            left: 10,
        };
        assert!(b.read_to_end(&mut Vec::new()).is_err());
    }
}
