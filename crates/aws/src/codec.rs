//! Decoding request bodies and encoding response trees, in JSON 1.1 and CBOR 1.1.

use base64::Engine;

use crate::error::ApiError;
use crate::value::{Format, Out, Value};

pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
pub const CBOR_CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";

/// The format a Content-Type names, ignoring parameters such as `charset`.
pub fn format_of(content_type: Option<&str>) -> Option<Format> {
    let ct = content_type?.split(';').next()?.trim();
    if ct.eq_ignore_ascii_case(JSON_CONTENT_TYPE) || ct.eq_ignore_ascii_case("application/json") {
        Some(Format::Json)
    } else if ct.eq_ignore_ascii_case(CBOR_CONTENT_TYPE)
        || ct.eq_ignore_ascii_case("application/cbor")
    {
        Some(Format::Cbor)
    } else {
        None
    }
}

pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => JSON_CONTENT_TYPE,
        Format::Cbor => CBOR_CONTENT_TYPE,
    }
}

/// Parses a request body. Anything that is not one complete document is a bare
/// SerializationException.
pub fn decode(body: &[u8], format: Format) -> Result<Value, ApiError> {
    match format {
        Format::Json => serde_json::from_slice(body).map_err(|_| ApiError::serialization_bare()),
        Format::Cbor => {
            let mut reader = body;
            let v: Value = ciborium::de::from_reader(&mut reader)
                .map_err(|_| ApiError::serialization_bare())?;
            if !reader.is_empty() {
                return Err(ApiError::serialization_bare());
            }
            Ok(v)
        }
    }
}

pub fn encode(out: &Out, format: Format) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    match format {
        Format::Json => write_json(&mut buf, out),
        Format::Cbor => write_cbor(&mut buf, out),
    }
    buf
}

fn write_json(buf: &mut Vec<u8>, out: &Out) {
    match out {
        Out::Null => buf.extend_from_slice(b"null"),
        Out::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
        Out::Int(i) => buf.extend_from_slice(i.to_string().as_bytes()),
        Out::Str(s) => json_str(buf, s),
        Out::Shared(s) => json_str(buf, s),
        Out::Inline(s) => {
            buf.push(b'"');
            buf.extend_from_slice(s.as_bytes());
            buf.push(b'"');
        }
        Out::Blob(b) => {
            buf.push(b'"');
            // A blob is at most the request body limit, so its base64 length always fits.
            let start = buf.len();
            let encoded_len = base64::encoded_len(b.len(), true).unwrap_or(0);
            buf.resize(start + encoded_len, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut buf[start..])
                .unwrap_or(0);
            buf.truncate(start + written);
            buf.push(b'"');
        }
        // Epoch seconds with millisecond precision, as AWS writes them.
        Out::Timestamp(ms) => {
            let secs = ms.div_euclid(1000);
            let frac = ms.rem_euclid(1000);
            buf.extend_from_slice(format!("{secs}.{frac:03}").as_bytes());
        }
        Out::Array(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_json(buf, item);
            }
            buf.push(b']');
        }
        Out::Map(members) => {
            buf.push(b'{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                buf.push(b'"');
                buf.extend_from_slice(k.as_bytes());
                buf.extend_from_slice(b"\":");
                write_json(buf, v);
            }
            buf.push(b'}');
        }
    }
}

/// A JSON string; the common case, printable ASCII with nothing to escape, is copied as is.
pub fn json_str(buf: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

fn cbor_head(buf: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        buf.push(m | n as u8);
    } else if n <= u8::MAX as u64 {
        buf.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u16::MAX as u64 {
        buf.push(m | 25);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        buf.push(m | 26);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        buf.push(m | 27);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

fn cbor_int(buf: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        cbor_head(buf, 0, i as u64);
    } else {
        cbor_head(buf, 1, (-1 - i) as u64);
    }
}

fn cbor_text(buf: &mut Vec<u8>, s: &str) {
    cbor_head(buf, 3, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn write_cbor(buf: &mut Vec<u8>, out: &Out) {
    match out {
        Out::Null => buf.push(0xf6),
        Out::Bool(b) => buf.push(if *b { 0xf5 } else { 0xf4 }),
        Out::Int(i) => cbor_int(buf, *i),
        Out::Str(s) => cbor_text(buf, s),
        Out::Shared(s) => cbor_text(buf, s),
        Out::Inline(s) => {
            cbor_head(buf, 3, s.as_bytes().len() as u64);
            buf.extend_from_slice(s.as_bytes());
        }
        Out::Blob(b) => {
            cbor_head(buf, 2, b.len() as u64);
            buf.extend_from_slice(b);
        }
        // Tag 1 (epoch-based date/time) holding epoch milliseconds, as the AWS SDKs expect.
        Out::Timestamp(ms) => {
            cbor_head(buf, 6, 1);
            cbor_int(buf, *ms);
        }
        Out::Array(items) => {
            cbor_head(buf, 4, items.len() as u64);
            for item in items {
                write_cbor(buf, item);
            }
        }
        Out::Map(members) => {
            cbor_head(buf, 5, members.len() as u64);
            for (k, v) in members {
                cbor_head(buf, 3, k.len() as u64);
                buf.extend_from_slice(k.as_bytes());
                write_cbor(buf, v);
            }
        }
    }
}

/// The error body: `{"__type": T, "message": M}` (or `Message`, or no message).
pub fn encode_error(e: &ApiError, format: Format) -> Vec<u8> {
    let mut m = Out::map().str("__type", e.type_name());
    if let Some(msg) = &e.message {
        m = m.str(
            if e.capital_message {
                "Message"
            } else {
                "message"
            },
            msg.clone(),
        );
    }
    encode(&m.done(), format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_round_trips_through_ciborium() {
        let out = Out::map()
            .str("S", "hello")
            .int("I", -5)
            .int("Big", 1 << 40)
            .set("B", Out::Blob(vec![0, 1, 2, 255].into()))
            .set("T", Out::Timestamp(1_700_000_000_123))
            .set("A", Out::Array(vec![Out::Bool(true), Out::Null]))
            .done();
        let bytes = encode(&out, Format::Cbor);
        let v: ciborium::Value = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        let m = v.as_map().unwrap();
        let get = |k: &str| {
            m.iter()
                .find(|(kk, _)| kk.as_text() == Some(k))
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(get("S").as_text(), Some("hello"));
        assert_eq!(i128::from(get("I").as_integer().unwrap()), -5);
        assert_eq!(i128::from(get("Big").as_integer().unwrap()), 1 << 40);
        assert_eq!(get("B").as_bytes().unwrap(), &vec![0, 1, 2, 255]);
        let (tag, inner) = get("T").as_tag().map(|(t, v)| (t, v.clone())).unwrap();
        assert_eq!(tag, 1);
        assert_eq!(i128::from(inner.as_integer().unwrap()), 1_700_000_000_123);
    }

    #[test]
    fn json_shapes() {
        let out = Out::map()
            .set("B", Out::Blob(b"Hello, World!".to_vec().into()))
            .set("T", Out::Timestamp(1_441_215_410_867))
            .str("Q", "a\"b")
            .set("E", Out::Str("tab\there é".into()))
            .done();
        let s = String::from_utf8(encode(&out, Format::Json)).unwrap();
        assert_eq!(
            s,
            r#"{"B":"SGVsbG8sIFdvcmxkIQ==","T":1441215410.867,"Q":"a\"b","E":"tab\there é"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["T"].as_f64().unwrap(), 1441215410.867);
    }

    #[test]
    fn decoding_rejects_garbage_and_trailing_bytes() {
        assert!(decode(b"{", Format::Json).is_err());
        assert!(decode(b"{} x", Format::Json).is_err());
        assert!(decode(&[0xbf], Format::Cbor).is_err());
        assert!(decode(&[0xa0, 0x00], Format::Cbor).is_err());
        assert_eq!(decode(&[0xa0], Format::Cbor).unwrap(), Value::Map(vec![]));
        // CBOR tag 1 with epoch milliseconds decodes to the bare number.
        let mut tagged = vec![0xa1, 0x61, b'T', 0xc1];
        tagged.push(0x1b);
        tagged.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        assert_eq!(
            decode(&tagged, Format::Cbor).unwrap(),
            Value::Map(vec![("T".into(), Value::Int(1_700_000_000_000))])
        );
    }
}
