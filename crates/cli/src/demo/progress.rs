//! The pipeline's progress, from the server's `/metrics` (what the processor and the delivery
//! stream have done) and the lake's directory (the files written), rendered as one line.

use std::path::Path;

use super::pipeline::{DELIVERY_STREAM, PROCESSOR, RAW_STREAM};

/// The counters the demo follows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metrics {
    /// Records the raw stream took (Kinesis's IncomingRecords).
    pub stream_in: u64,
    /// The processor's records in, out, filtered out (no output) and failed (dead letter).
    pub processed: u64,
    pub kept: u64,
    pub filtered: u64,
    pub dead: u64,
    /// The delivery stream's records read from the processed stream, written to the lake,
    /// sent to the error output, and still waiting.
    pub delivery_in: u64,
    pub delivered: u64,
    pub delivery_errors: u64,
    pub backlog: u64,
}

impl Metrics {
    /// From Prometheus text.
    pub fn parse(text: &str) -> Metrics {
        let proc = ("processor", PROCESSOR);
        let ds = ("delivery_stream", DELIVERY_STREAM);
        Metrics {
            stream_in: sum(
                text,
                "sluice_kinesis_incoming_records_total",
                ("stream", RAW_STREAM),
            ),
            processed: sum(text, "sluice_processor_input_records_total", proc),
            kept: sum(text, "sluice_processor_output_records_total", proc),
            filtered: sum(text, "sluice_processor_dropped_records_total", proc),
            dead: sum(text, "sluice_processor_failed_records_total", proc),
            delivery_in: sum(text, "sluice_firehose_incoming_records_total", ds),
            delivered: sum(text, "sluice_firehose_delivery_to_s3_records_total", ds),
            delivery_errors: sum(text, "sluice_firehose_error_output_records_total", ds),
            backlog: sum(text, "sluice_firehose_backlog_records", ds),
        }
    }

    /// Records put and not yet through the pipeline (processed, then delivered or filtered).
    pub fn lag(&self, put: u64) -> u64 {
        let processing = put.saturating_sub(self.processed);
        let delivering = self
            .kept
            .saturating_sub(self.delivered + self.delivery_errors);
        processing + delivering
    }

    /// Whether everything `put` has gone through: processed, and every kept record read by the
    /// delivery stream and written (to the lake or its error output).
    pub fn drained(&self, put: u64) -> bool {
        self.processed >= put
            && self.processed >= self.kept + self.filtered + self.dead
            && self.delivery_in >= self.kept
            && self.delivered + self.delivery_errors >= self.delivery_in
            && self.backlog == 0
    }
}

/// The sum of a series' samples whose labels include `label="value"`.
fn sum(text: &str, name: &str, (label, value): (&str, &str)) -> u64 {
    let want = format!("{label}=\"{value}\"");
    let mut total = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(labels) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, sample)) = labels.split_once('}') else {
            continue;
        };
        if !labels.split(',').any(|l| l.trim() == want) {
            continue;
        }
        if let Some(v) = sample
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            total += v;
        }
    }
    total.max(0.0) as u64
}

/// Files with `extension` under `dir` (recursively) and their bytes.
pub fn scan_files(dir: &Path, extension: &str) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() && e.file_name().to_string_lossy().ends_with(extension) {
                files += 1;
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    (files, bytes)
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `812 B`, `14.2 KB`, `3.1 MB` (powers of 1024).
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KB", n / 1024.0)
    } else {
        format!("{:.1} MB", n / (1024.0 * 1024.0))
    }
}

/// One progress line.
pub struct Line<'a> {
    pub elapsed_s: f64,
    pub put: u64,
    pub put_rate: f64,
    pub m: &'a Metrics,
    pub files: u64,
    pub file_bytes: u64,
}

impl std::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.m;
        write!(
            f,
            "{:>6.1}s  put {} ({}/s)  processed {}  lake {} rows in {} files ({})  lag {}  filtered {}  dead-letter {}",
            self.elapsed_s,
            thousands(self.put),
            thousands(self.put_rate.round() as u64),
            thousands(m.processed),
            thousands(m.delivered),
            thousands(self.files),
            bytes(self.file_bytes),
            thousands(m.lag(self.put)),
            thousands(m.filtered),
            thousands(m.dead),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_series() {
        let text = "# TYPE sluice_processor_input_records_total counter\n\
            sluice_processor_input_records_total{processor=\"clicks-enrich\"} 120\n\
            sluice_processor_input_records_total{processor=\"other\"} 5\n\
            sluice_processor_output_records_total{processor=\"clicks-enrich\"} 100\n\
            sluice_processor_dropped_records_total{processor=\"clicks-enrich\"} 19\n\
            sluice_processor_failed_records_total{processor=\"clicks-enrich\"} 1\n\
            sluice_kinesis_incoming_records_total{stream=\"clicks\"} 130\n\
            sluice_kinesis_incoming_records_total{stream=\"clicks-processed\"} 100\n\
            sluice_firehose_incoming_records_total{delivery_stream=\"clicks-to-lake\"} 100\n\
            sluice_firehose_delivery_to_s3_records_total{delivery_stream=\"clicks-to-lake\"} 60\n\
            sluice_firehose_backlog_records{delivery_stream=\"clicks-to-lake\"} 40\n";
        let m = Metrics::parse(text);
        assert_eq!(m.stream_in, 130);
        assert_eq!((m.processed, m.kept, m.filtered, m.dead), (120, 100, 19, 1));
        assert_eq!((m.delivery_in, m.delivered, m.backlog), (100, 60, 40));
        assert_eq!(m.lag(130), 10 + 40);
        assert!(!m.drained(130));
        let done = Metrics {
            processed: 130,
            filtered: 29,
            delivered: 100,
            backlog: 0,
            ..m
        };
        assert!(done.drained(130));
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KB");
        assert_eq!(bytes(3 << 20), "3.0 MB");
    }
}
