//! The pipeline mode's records: one JSON object per record,
//! `{"id":7,"ts_us":1764300000000000,"run":3735928559,"kind":"click","pad":"xx…"}`, padded to the
//! record size. `id` is the record's number in the run, `ts_us` its send time (microseconds
//! since the Unix epoch), `run` tells this run's records from any other's on the same streams.
//! A processor may reshape the object (add, drop or reorder members) as long as `id` and `ts_us`
//! survive; a record without `run` is taken as this run's.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Deserialize;

/// The members of an output record the pipeline mode matches on; any others are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) struct Stamp {
    pub id: u64,
    pub ts_us: u64,
    #[serde(default)]
    pub run: Option<u32>,
}

/// Appends one record's JSON to `out`: exactly `record_bytes` bytes, or the unpadded object
/// (about 85 bytes) when that is longer.
pub(crate) fn encode(id: u64, ts_us: u64, run: u32, record_bytes: usize, out: &mut String) {
    const TAIL: &str = "\"}";
    let start = out.len();
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#"{{"id":{id},"ts_us":{ts_us},"run":{run},"kind":"click","pad":""#
    );
    let pad = record_bytes.saturating_sub(out.len() - start + TAIL.len());
    out.extend(std::iter::repeat_n('x', pad));
    out.push_str(TAIL);
}

/// The stamp of an output record's data (already base64-decoded), if it is a JSON object with
/// an integer `id` and `ts_us`.
pub(crate) fn decode(data: &[u8]) -> Option<Stamp> {
    serde_json::from_slice(data).ok()
}

/// A PutRecords body of the records `first..first + count`, all sent at `ts_us`, each keyed by
/// its id (so they spread over the shards). `stream_json` is the stream name as a JSON string.
pub(crate) fn put_records_body(
    stream_json: &str,
    first: u64,
    count: u64,
    ts_us: u64,
    run: u32,
    record_bytes: usize,
) -> Vec<u8> {
    let o = Body {
        name_member: "StreamName",
        name_json: stream_json,
        keyed: true,
        newline: false,
    };
    o.write(first, count, ts_us, run, record_bytes)
}

/// A PutRecordBatch body of the records `first..first + count`, all sent at `ts_us`, each one
/// JSON document followed by a newline (what producers into a delivery stream usually send).
/// `delivery_json` is the delivery stream's name as a JSON string.
pub(crate) fn put_record_batch_body(
    delivery_json: &str,
    first: u64,
    count: u64,
    ts_us: u64,
    run: u32,
    record_bytes: usize,
) -> Vec<u8> {
    let o = Body {
        name_member: "DeliveryStreamName",
        name_json: delivery_json,
        keyed: false,
        newline: true,
    };
    o.write(first, count, ts_us, run, record_bytes)
}

/// The shape of a batch body: the name's member, whether records carry a PartitionKey (their
/// id), whether each record ends with a newline (counted in its size).
struct Body<'a> {
    name_member: &'a str,
    name_json: &'a str,
    keyed: bool,
    newline: bool,
}

impl Body<'_> {
    fn write(&self, first: u64, count: u64, ts_us: u64, run: u32, record_bytes: usize) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut body =
            String::with_capacity(64 + count as usize * (record_bytes.max(100) * 4 / 3 + 48));
        let mut record = String::with_capacity(record_bytes.max(100));
        let _ = write!(
            body,
            r#"{{"{}":{},"Records":["#,
            self.name_member, self.name_json
        );
        for id in first..first + count {
            if id != first {
                body.push(',');
            }
            record.clear();
            if self.newline {
                encode(id, ts_us, run, record_bytes.saturating_sub(1), &mut record);
                record.push('\n');
            } else {
                encode(id, ts_us, run, record_bytes, &mut record);
            }
            body.push_str(r#"{"Data":""#);
            b64.encode_string(record.as_bytes(), &mut body);
            if self.keyed {
                let _ = write!(body, r#"","PartitionKey":"{id}"}}"#);
            } else {
                body.push_str(r#""}"#);
            }
        }
        body.push_str("]}");
        body.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_padded_to_the_size() {
        for size in [100, 101, 256, 1000] {
            let mut s = String::new();
            encode(12345, 1_764_300_000_123_456, 7, size, &mut s);
            assert_eq!(s.len(), size, "{s}");
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["kind"], "click");
        }
        // Too small a size: the unpadded object.
        let mut s = String::new();
        encode(1, 2, 3, 10, &mut s);
        assert_eq!(s, r#"{"id":1,"ts_us":2,"run":3,"kind":"click","pad":""}"#);
    }

    #[test]
    fn stamps_survive_reshaping() {
        let mut s = String::new();
        encode(42, 1_000_000, 9, 100, &mut s);
        let want = Stamp {
            id: 42,
            ts_us: 1_000_000,
            run: Some(9),
        };
        assert_eq!(decode(s.as_bytes()), Some(want));
        // What `select(.kind == "click") | .processed_at = now` writes, members reordered.
        let reshaped =
            br#"{"kind":"click","processed_at":1764300000.5,"ts_us":1000000,"id":42,"run":9}"#;
        assert_eq!(decode(reshaped), Some(want));
        // A transform that dropped `run`.
        assert_eq!(
            decode(br#"{"id":42,"ts_us":1000000}"#),
            Some(Stamp { run: None, ..want })
        );
        assert_eq!(decode(br#"{"id":"42","ts_us":1000000}"#), None);
        assert_eq!(decode(br#"{"ts_us":1000000}"#), None);
        assert_eq!(decode(b"not json"), None);
    }

    #[test]
    fn put_record_batch_bodies_hold_every_record() {
        let body = put_record_batch_body(r#""fh""#, 5, 2, 777, 4, 100);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["DeliveryStreamName"], "fh");
        let records = v["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.as_object().unwrap().len(), 1, "only Data: {r}");
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap();
            assert_eq!(data.len(), 100);
            assert_eq!(data.last(), Some(&b'\n'));
            assert_eq!(
                decode(&data),
                Some(Stamp {
                    id: 5 + i as u64,
                    ts_us: 777,
                    run: Some(4)
                })
            );
        }
    }

    #[test]
    fn put_records_bodies_hold_every_record() {
        let body = put_records_body(r#""src""#, 10, 3, 555, 1, 100);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["StreamName"], "src");
        let records = v["Records"].as_array().unwrap();
        assert_eq!(records.len(), 3);
        for (i, r) in records.iter().enumerate() {
            let id = 10 + i as u64;
            assert_eq!(r["PartitionKey"], id.to_string());
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().unwrap())
                .unwrap();
            assert_eq!(data.len(), 100);
            assert_eq!(
                decode(&data),
                Some(Stamp {
                    id,
                    ts_us: 555,
                    run: Some(1)
                })
            );
        }
    }
}
