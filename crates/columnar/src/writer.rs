//! Firehose's `OutputFormatConfiguration.Serializer` (`ParquetSerDe`) and the conversion of a
//! buffer of records into one Parquet file.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::GzipLevel;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::column::ColumnBuilder;
use crate::deserializer::Deserializer;
use crate::error::{ConfigError, ConvertError, RecordError, RecordErrorKind};
use crate::limits;
use crate::reader::RecordReader;
use crate::schema::Schema;

/// `ParquetSerDe.Compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    Uncompressed,
    Gzip,
    #[default]
    Snappy,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Gzip => "GZIP",
            Compression::Snappy => "SNAPPY",
        }
    }
}

impl FromStr for Compression {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "UNCOMPRESSED" => Ok(Compression::Uncompressed),
            "GZIP" => Ok(Compression::Gzip),
            "SNAPPY" => Ok(Compression::Snappy),
            _ => Err(ConfigError::NotOneOf {
                member: "ParquetSerDe.Compression",
                value: s.chars().take(64).collect(),
                allowed: "UNCOMPRESSED, GZIP, SNAPPY",
            }),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ParquetSerDe.WriterVersion`: V1 writes data pages v1, V2 data pages v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriterVersion {
    #[default]
    V1,
    V2,
}

impl WriterVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            WriterVersion::V1 => "V1",
            WriterVersion::V2 => "V2",
        }
    }
}

impl FromStr for WriterVersion {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "V1" => Ok(WriterVersion::V1),
            "V2" => Ok(WriterVersion::V2),
            _ => Err(ConfigError::NotOneOf {
                member: "ParquetSerDe.WriterVersion",
                value: s.chars().take(64).collect(),
                allowed: "V1, V2",
            }),
        }
    }
}

impl fmt::Display for WriterVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Firehose's `ParquetSerDe`, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetWriterConfig {
    /// `Compression` (default SNAPPY).
    pub compression: Compression,
    /// `BlockSizeBytes` (default 256 MiB, at least 64 MiB): the row group size; a row group
    /// is flushed once its encoded size reaches it, which bounds the writer's memory.
    pub block_size_bytes: u64,
    /// `PageSizeBytes` (default 1 MiB, at least 64 KiB): the data page size.
    pub page_size_bytes: u64,
    /// `EnableDictionaryCompression` (default false, as an unset Boolean): dictionary
    /// encoding of every column.
    pub enable_dictionary_compression: bool,
    /// `MaxPaddingBytes` (default 0): accepted and checked; the writer does not pad row
    /// groups to HDFS blocks.
    pub max_padding_bytes: u64,
    /// `WriterVersion` (default V1).
    pub writer_version: WriterVersion,
}

impl Default for ParquetWriterConfig {
    fn default() -> Self {
        ParquetWriterConfig {
            compression: Compression::Snappy,
            block_size_bytes: limits::BLOCK_SIZE_BYTES_DEFAULT,
            page_size_bytes: limits::PAGE_SIZE_BYTES_DEFAULT,
            enable_dictionary_compression: false,
            max_padding_bytes: 0,
            writer_version: WriterVersion::V1,
        }
    }
}

fn in_range(member: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            member,
            value: i64::try_from(value).unwrap_or(i64::MAX),
            min,
            max,
        })
    }
}

impl ParquetWriterConfig {
    /// Checks Firehose's ranges (a delivery stream with values out of them is refused).
    pub fn check(&self) -> Result<(), ConfigError> {
        in_range(
            "ParquetSerDe.BlockSizeBytes",
            self.block_size_bytes,
            limits::BLOCK_SIZE_BYTES_MIN,
            limits::SIZE_BYTES_MAX,
        )?;
        in_range(
            "ParquetSerDe.PageSizeBytes",
            self.page_size_bytes,
            limits::PAGE_SIZE_BYTES_MIN,
            limits::SIZE_BYTES_MAX,
        )?;
        in_range(
            "ParquetSerDe.MaxPaddingBytes",
            self.max_padding_bytes,
            0,
            limits::SIZE_BYTES_MAX,
        )
    }

    /// The arrow-rs writer properties. Sizes only need to be positive here (tests write small
    /// row groups); Firehose's minimums are `check`'s.
    fn properties(&self) -> Result<WriterProperties, ConfigError> {
        in_range(
            "ParquetSerDe.BlockSizeBytes",
            self.block_size_bytes,
            1,
            limits::SIZE_BYTES_MAX,
        )?;
        in_range(
            "ParquetSerDe.PageSizeBytes",
            self.page_size_bytes,
            1,
            limits::SIZE_BYTES_MAX,
        )?;
        // Both fit usize: at most i32::MAX, checked above.
        let block = usize::try_from(self.block_size_bytes).unwrap_or(usize::MAX);
        let page = usize::try_from(self.page_size_bytes).unwrap_or(usize::MAX);
        Ok(WriterProperties::builder()
            .set_compression(match self.compression {
                Compression::Uncompressed => parquet::basic::Compression::UNCOMPRESSED,
                Compression::Gzip => parquet::basic::Compression::GZIP(GzipLevel::default()),
                Compression::Snappy => parquet::basic::Compression::SNAPPY,
            })
            .set_writer_version(match self.writer_version {
                WriterVersion::V1 => parquet::file::properties::WriterVersion::PARQUET_1_0,
                WriterVersion::V2 => parquet::file::properties::WriterVersion::PARQUET_2_0,
            })
            .set_dictionary_enabled(self.enable_dictionary_compression)
            .set_data_page_size_limit(page)
            .set_dictionary_page_size_limit(page)
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(block))
            .build())
    }
}

/// `OutputFormatConfiguration.Serializer`: sluice writes Parquet only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    Parquet(ParquetWriterConfig),
    Orc,
}

impl OutputFormat {
    /// The Parquet settings, or `ConfigError::OrcNotSupported`.
    pub fn into_parquet(self) -> Result<ParquetWriterConfig, ConfigError> {
        match self {
            OutputFormat::Parquet(config) => Ok(config),
            OutputFormat::Orc => Err(ConfigError::OrcNotSupported),
        }
    }
}

/// What a conversion wrote: the output (untouched when no record converted), the rows in it
/// and the records that were not converted.
#[derive(Debug)]
pub struct Written<W> {
    pub out: W,
    pub rows: u64,
    pub errors: Vec<RecordError>,
}

/// A schema, a deserializer and Parquet settings, prepared once (per delivery stream) and
/// used for every buffer. `Send + Sync`; conversion is synchronous and CPU-bound: call it on
/// a blocking thread.
#[derive(Debug, Clone)]
pub struct Converter {
    schema: Schema,
    arrow_schema: SchemaRef,
    reader: RecordReader,
    properties: WriterProperties,
    /// Input bytes per batch: `limits::BATCH_INPUT_BYTES_MAX`, or an eighth of the block
    /// size if smaller. arrow-rs decides a row group is full between batches, so batches
    /// well under the block size keep row groups close to it.
    batch_bytes_max: usize,
}

impl Converter {
    pub fn new(
        schema: Schema,
        deserializer: Deserializer,
        config: &ParquetWriterConfig,
    ) -> Result<Converter, ConvertError> {
        if let Deserializer::OpenX(serde) = &deserializer {
            serde.check()?;
        }
        let properties = config.properties()?;
        let reader = RecordReader::new(&schema, &deserializer);
        let eighth = usize::try_from(config.block_size_bytes / 8).unwrap_or(usize::MAX);
        Ok(Converter {
            batch_bytes_max: eighth.clamp(1, limits::BATCH_INPUT_BYTES_MAX),
            arrow_schema: schema.arrow_schema(),
            schema,
            reader,
            properties,
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Converts `records` into one Parquet file written to `out`. The Parquet writer is
    /// created at the first converted record, so when none converts nothing is written and
    /// `rows` is 0: deliver no object then. Records are read in slices of at most
    /// `limits::BATCH_ROWS_MAX` records / `BATCH_INPUT_BYTES_MAX` input bytes, each one Arrow
    /// batch; with more than one slice and more than one CPU, up to `limits::CONVERT_THREADS_MAX`
    /// threads read slices while this one writes them in order. Memory is bounded by two
    /// batches per thread plus the row group in progress (`block_size_bytes`), whatever `out`
    /// is; the file is the same however many threads read.
    pub fn write<'a, W: Write + Send>(
        &self,
        out: W,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Written<W>, ConvertError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.write_with(out, records, threads.min(limits::CONVERT_THREADS_MAX))
    }

    /// [`Self::write`] with at most `threads` threads reading slices.
    pub(crate) fn write_with<'a, W: Write + Send>(
        &self,
        out: W,
        records: impl IntoIterator<Item = &'a [u8]>,
        threads: usize,
    ) -> Result<Written<W>, ConvertError> {
        let records: Vec<&[u8]> = records.into_iter().collect();
        let slices = self.slices(&records);
        let mut sink = Sink {
            out: Some(out),
            writer: None,
            rows: 0,
            errors: Vec::new(),
        };
        let threads = threads.clamp(1, slices.len().max(1));
        if threads == 1 {
            for (first, slice) in &slices {
                sink.take(self.read_slice(&records[slice.clone()], *first)?, self)?;
            }
        } else {
            std::thread::scope(|scope| -> Result<(), ConvertError> {
                let mut results = Vec::with_capacity(threads);
                for t in 0..threads {
                    let (tx, rx) = std::sync::mpsc::sync_channel(1);
                    results.push(rx);
                    let (records, slices) = (&records, &slices);
                    scope.spawn(move || {
                        for (first, slice) in slices.iter().skip(t).step_by(threads) {
                            let read = self.read_slice(&records[slice.clone()], *first);
                            let failed = read.is_err();
                            // A closed channel: the writer stopped (an error); so do we.
                            if tx.send(read).is_err() || failed {
                                break;
                            }
                        }
                    });
                }
                for i in 0..slices.len() {
                    let read = results[i % threads]
                        .recv()
                        .map_err(|_| ConvertError::Internal("a conversion thread stopped"))?;
                    sink.take(read?, self)?;
                }
                Ok(())
            })?;
        }
        let Sink {
            out,
            writer,
            rows,
            errors,
        } = sink;
        let out = match (writer, out) {
            (Some(writer), _) => writer.into_inner()?,
            (None, Some(out)) => out,
            // `out` moves into the writer exactly when the writer is made.
            (None, None) => return Err(ConvertError::Internal("the output was lost")),
        };
        Ok(Written { out, rows, errors })
    }

    /// The records split into slices (index of the first, range): each ends at
    /// `limits::BATCH_ROWS_MAX` records or once it holds `batch_bytes_max` input bytes.
    fn slices(&self, records: &[&[u8]]) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut slices = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, record) in records.iter().enumerate() {
            bytes += record.len();
            if i + 1 - start >= limits::BATCH_ROWS_MAX || bytes >= self.batch_bytes_max {
                slices.push((start, start..i + 1));
                (start, bytes) = (i + 1, 0);
            }
        }
        if start < records.len() {
            slices.push((start, start..records.len()));
        }
        slices
    }

    /// Reads one slice of records (the first is record `first`) into an Arrow batch.
    fn read_slice(&self, records: &[&[u8]], first: usize) -> Result<SliceRead, ConvertError> {
        let mut columns = self
            .schema
            .columns()
            .iter()
            .map(|c| ColumnBuilder::new(&c.column_type))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut rows_total, mut errors) = (0usize, Vec::new());
        for (i, record) in records.iter().enumerate() {
            let fail = |(kind, message)| RecordError {
                index: first + i,
                kind,
                message,
            };
            let parsed = match check_size(record).and_then(|()| self.reader.parse(record)) {
                Ok(parsed) => parsed,
                Err(e) => {
                    errors.push(fail(e));
                    continue;
                }
            };
            let rows = match self.reader.rows(&parsed) {
                Ok(rows) => rows,
                Err(e) => {
                    errors.push(fail(e));
                    continue;
                }
            };
            for row in &rows {
                for (column, cell) in columns.iter_mut().zip(row) {
                    column.append(cell)?;
                }
            }
            rows_total += rows.len();
        }
        let batch = if rows_total == 0 {
            None
        } else {
            let arrays = columns
                .iter_mut()
                .map(ColumnBuilder::finish)
                .collect::<Result<Vec<_>, _>>()?;
            Some(RecordBatch::try_new(self.arrow_schema.clone(), arrays)?)
        };
        Ok(SliceRead {
            batch,
            rows: rows_total as u64,
            errors,
        })
    }

    /// Converts `records` into one Parquet file in memory. `Bytes` is empty when no record
    /// converted (deliver no object then).
    pub fn write_parquet<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Bytes, Vec<RecordError>), ConvertError> {
        let written = self.write(Vec::new(), records)?;
        Ok((Bytes::from(written.out), written.errors))
    }
}

/// One slice of records read: its batch (none when no record of it converted), its rows and
/// the records that did not convert.
struct SliceRead {
    batch: Option<RecordBatch>,
    rows: u64,
    errors: Vec<RecordError>,
}

/// Where slices go, in order: the Parquet writer (made at the first batch), the counts.
struct Sink<W: Write + Send> {
    out: Option<W>,
    writer: Option<ArrowWriter<W>>,
    rows: u64,
    errors: Vec<RecordError>,
}

impl<W: Write + Send> Sink<W> {
    fn take(&mut self, read: SliceRead, c: &Converter) -> Result<(), ConvertError> {
        self.rows += read.rows;
        self.errors.extend(read.errors);
        let Some(batch) = read.batch else {
            return Ok(());
        };
        let parquet = match &mut self.writer {
            Some(parquet) => parquet,
            None => {
                let Some(out) = self.out.take() else {
                    return Err(ConvertError::Internal("the output was lost"));
                };
                self.writer.insert(ArrowWriter::try_new(
                    out,
                    c.arrow_schema.clone(),
                    Some(c.properties.clone()),
                )?)
            }
        };
        parquet.write(&batch)?;
        Ok(())
    }
}

/// A record longer than the converter takes is a `MalformedData` error.
pub(crate) fn check_size(record: &[u8]) -> Result<(), (RecordErrorKind, String)> {
    if record.len() > limits::RECORD_BYTES_MAX {
        return Err((
            RecordErrorKind::MalformedData,
            format!(
                "the record is {} bytes; at most {} are converted",
                record.len(),
                limits::RECORD_BYTES_MAX
            ),
        ));
    }
    Ok(())
}

/// Every JSON document in a record (one or several written back to back), parsed whole: the
/// reference reading (`RecordReader::parse` reads only what the columns need).
pub(crate) fn parse_record(record: &[u8]) -> Result<Vec<Value>, (RecordErrorKind, String)> {
    check_size(record)?;
    let mut values = Vec::new();
    for value in serde_json::Deserializer::from_slice(record).into_iter::<Value>() {
        match value {
            Ok(value) => values.push(value),
            Err(e) => {
                return Err((RecordErrorKind::ParseError, format!("not valid JSON: {e}")));
            }
        }
    }
    if values.is_empty() {
        return Err((
            RecordErrorKind::ParseError,
            "the record holds no JSON".to_string(),
        ));
    }
    Ok(values)
}

/// Converts `records` with a one-off [`Converter`]: the Parquet file (empty `Bytes` when no
/// record converted) and the records that were not converted.
pub fn write_parquet<'a>(
    schema: &Schema,
    deserializer: &Deserializer,
    config: &ParquetWriterConfig,
    records: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(Bytes, Vec<RecordError>), ConvertError> {
    Converter::new(schema.clone(), deserializer.clone(), config)?.write_parquet(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firehose_names_and_defaults() {
        assert_eq!("SNAPPY".parse::<Compression>(), Ok(Compression::Snappy));
        assert_eq!("GZIP".parse::<Compression>(), Ok(Compression::Gzip));
        assert_eq!(
            "UNCOMPRESSED".parse::<Compression>(),
            Ok(Compression::Uncompressed)
        );
        let e = "snappy".parse::<Compression>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "ParquetSerDe.Compression must be one of UNCOMPRESSED, GZIP, SNAPPY, got `snappy`"
        );
        assert_eq!("V2".parse::<WriterVersion>(), Ok(WriterVersion::V2));
        assert!("V3".parse::<WriterVersion>().is_err());
        let config = ParquetWriterConfig::default();
        assert_eq!(config.compression, Compression::Snappy);
        assert_eq!(config.block_size_bytes, 256 * 1024 * 1024);
        assert_eq!(config.page_size_bytes, 1024 * 1024);
        assert_eq!(config.writer_version, WriterVersion::V1);
        assert!(config.check().is_ok());
    }

    #[test]
    fn sizes_at_their_limits() {
        let with = |block: u64, page: u64, padding: u64| ParquetWriterConfig {
            block_size_bytes: block,
            page_size_bytes: page,
            max_padding_bytes: padding,
            ..ParquetWriterConfig::default()
        };
        let (block, page) = (limits::BLOCK_SIZE_BYTES_MIN, limits::PAGE_SIZE_BYTES_MIN);
        assert!(with(block, page, 0).check().is_ok());
        let e = with(block - 1, page, 0).check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "ParquetSerDe.BlockSizeBytes must be between 67108864 and 2147483647, got 67108863"
        );
        assert!(with(block, page - 1, 0).check().is_err());
        let max = limits::SIZE_BYTES_MAX;
        assert!(with(max, max, max).check().is_ok());
        assert!(with(max + 1, page, 0).check().is_err());
        assert!(with(block, max + 1, 0).check().is_err());
        assert!(with(block, page, max + 1).check().is_err());
        // The writer itself takes any positive size (small row groups in tests)...
        assert!(with(1, 1, 0).properties().is_ok());
        // ...but never zero, which arrow-rs would panic on.
        assert!(with(0, page, 0).properties().is_err());
        assert!(with(block, 0, 0).properties().is_err());
    }

    #[test]
    fn orc_is_refused_clearly() {
        let e = OutputFormat::Orc.into_parquet().unwrap_err();
        assert_eq!(e, ConfigError::OrcNotSupported);
        assert!(e
            .to_string()
            .contains("ORC output (OrcSerDe) is not supported"));
        assert!(OutputFormat::Parquet(ParquetWriterConfig::default())
            .into_parquet()
            .is_ok());
    }

    #[test]
    fn records_split_into_json_documents() {
        assert_eq!(parse_record(br#"{"a":1}{"a":2} {"a":3}"#).unwrap().len(), 3);
        assert_eq!(parse_record(b"{\"a\":1}\n").unwrap().len(), 1);
        let (kind, message) = parse_record(b"{\"a\":").unwrap_err();
        assert_eq!(kind, RecordErrorKind::ParseError);
        assert!(message.starts_with("not valid JSON"), "{message}");
        assert_eq!(
            parse_record(b"  ").unwrap_err().0,
            RecordErrorKind::ParseError
        );
        assert_eq!(
            parse_record(b"{} x").unwrap_err().0,
            RecordErrorKind::ParseError
        );
    }

    #[test]
    fn record_size_at_its_limit() {
        let body = |len: usize| {
            let mut r = b"{\"s\":\"".to_vec();
            r.resize(len - 2, b'x');
            r.extend_from_slice(b"\"}");
            r
        };
        let at = body(limits::RECORD_BYTES_MAX);
        assert_eq!(at.len(), limits::RECORD_BYTES_MAX);
        assert!(parse_record(&at).is_ok());
        let past = body(limits::RECORD_BYTES_MAX + 1);
        assert_eq!(
            parse_record(&past).unwrap_err().0,
            RecordErrorKind::MalformedData
        );
    }
}

#[cfg(test)]
mod threads {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// However many threads read the slices, the file and the errors are the same.
    #[test]
    fn threads_write_the_same_file() {
        let schema = Schema::parse([("id", "bigint"), ("page", "string"), ("n", "int")]).unwrap();
        let converter = Converter::new(
            schema,
            Deserializer::default(),
            &ParquetWriterConfig::default(),
        )
        .unwrap();
        // 30,000 records: four slices and a bit; every 997th does not convert, every 1,009th
        // holds two documents.
        let records: Vec<Vec<u8>> = (0..30_000u64)
            .map(|i| match (i % 997, i % 1009) {
                (0, _) => format!("{{\"id\":{i},\"n\":\"not a number\"}}").into_bytes(),
                (_, 0) => format!("{{\"id\":{i}}}{{\"id\":{i},\"page\":\"/again\"}}").into_bytes(),
                _ => format!("{{\"id\":{i},\"page\":\"/p/{}\",\"n\":{}}}", i % 13, i % 7)
                    .into_bytes(),
            })
            .collect();
        let one = converter
            .write_with(Vec::new(), records.iter().map(Vec::as_slice), 1)
            .unwrap();
        assert!(
            converter
                .slices(&records.iter().map(Vec::as_slice).collect::<Vec<_>>())
                .len()
                > 3
        );
        for threads in [2, 3, 4] {
            let many = converter
                .write_with(Vec::new(), records.iter().map(Vec::as_slice), threads)
                .unwrap();
            assert_eq!(many.out, one.out, "{threads} threads");
            assert_eq!(many.rows, one.rows);
            assert_eq!(many.errors, one.errors);
        }
        assert_eq!(one.rows, 30_000 - 31 + 29);
        assert_eq!(one.errors.len(), 31);
        assert_eq!(one.errors[1].index, 997);
    }
}
