//! The request and response trees both wire formats share.
//!
//! Requests are deserialized (by serde_json or ciborium) straight into [`Value`]; each operation
//! then reads its members with the typed getters of [`Input`], which produce AWS's
//! SerializationException for a member of the wrong type. Responses are built as [`Out`] trees
//! and written by `codec` as JSON or CBOR: blobs become base64 or byte strings, timestamps epoch
//! seconds or CBOR tag 1 with epoch milliseconds.

use std::fmt;

use base64::Engine;
use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;

/// Which wire format a request came in, and so which its response goes out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Cbor,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v as i128))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v as i128))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Int(v.min(i128::MAX as u128) as i128))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    /// ciborium presents a CBOR tag as an enum whose variant is the tag number; the value is
    /// the tagged item (tag 1, a timestamp, is read as its number).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use serde::de::VariantAccess;
        struct Tagged;
        impl<'de> Visitor<'de> for Tagged {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tag and its item")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let _tag: u64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("missing tag"))?;
                seq.next_element()?
                    .ok_or_else(|| de::Error::custom("missing tagged item"))
            }
        }
        let (_, variant): (de::IgnoredAny, _) = data.variant()?;
        variant.tuple_variant(2, Tagged)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(k) = map.next_key::<Key>()? {
            let val: Value = map.next_value()?;
            v.push((k.0, val));
        }
        Ok(Value::Map(v))
    }
}

/// Map keys: strings (JSON) or, in CBOR, anything; a non-string key can match no member.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        match Value::deserialize(d)? {
            Value::Str(s) => Ok(Key(s)),
            _ => Err(de::Error::custom("map key is not a string")),
        }
    }
}

/// How a value is described in SerializationException messages.
fn java_class(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "java.lang.Boolean",
        Value::Int(_) | Value::Float(_) => {
            "com.amazon.coral.value.json.numbers.TruncatingBigNumber"
        }
        Value::Str(_) => "java.lang.String",
        Value::Bytes(_) => "java.nio.HeapByteBuffer",
        Value::Null | Value::Array(_) | Value::Map(_) => "java.lang.Object",
    }
}

fn wrong_type(v: &Value, target: &str) -> ApiError {
    match v {
        Value::Array(_) => ApiError::serialization("Start of list found where not expected"),
        Value::Map(_) => {
            ApiError::serialization("Start of structure or map found where not expected.")
        }
        _ => ApiError::serialization(format!(
            "class {} can not be converted to {target}",
            java_class(v)
        )),
    }
}

/// One structure of a request, with the format it came in.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub members: &'a [(String, Value)],
    pub format: Format,
}

impl<'a> Input<'a> {
    pub fn root(v: &'a Value, format: Format) -> Result<Input<'a>, ApiError> {
        match v {
            Value::Map(m) => Ok(Input { members: m, format }),
            // A request is a structure: a list where it belongs is refused as a list in any
            // structure's place is (Coral's message); a scalar or null is a body that does not
            // parse as a request at all.
            Value::Array(_) => Err(ApiError::serialization(
                "Start of list found where not expected",
            )),
            _ => Err(ApiError::serialization_bare()),
        }
    }

    fn raw(&self, name: &str) -> Option<&'a Value> {
        // The last occurrence wins, as in JSON parsers that build objects.
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Value::Null))
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    pub fn str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(v) => Err(wrong_type(v, "an String")),
        }
    }

    fn number(&self, name: &str, target: &str) -> Result<Option<i128>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(Value::Float(f)) => Ok(Some(f.floor() as i128)),
            Some(v) => Err(wrong_type(v, target)),
        }
    }

    /// An Integer member: floored and clamped to the Java int range, as AWS does.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        Ok(self
            .number(name, "an Integer")?
            .map(|i| i.clamp(i32::MIN as i128, i32::MAX as i128) as i64))
    }

    pub fn long(&self, name: &str) -> Result<Option<i64>, ApiError> {
        Ok(self
            .number(name, "an Long")?
            .map(|i| i.clamp(i64::MIN as i128, i64::MAX as i128) as i64))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(Value::Str(s)) => Err(ApiError::serialization(format!(
                "'{}' can not be converted to an Boolean",
                s.to_uppercase()
            ))),
            Some(v) => Err(wrong_type(v, "an Boolean")),
        }
    }

    /// A blob: base64 text in JSON; a byte string (or base64 text) in CBOR.
    pub fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bytes(b)) => Ok(Some(b.clone())),
            Some(Value::Str(s)) => decode_base64(s).map(Some),
            Some(v) => Err(wrong_type(v, "a Blob")),
        }
    }

    /// A timestamp in epoch milliseconds: JSON sends epoch seconds (fractions are milliseconds),
    /// CBOR sends epoch milliseconds (tag 1, which the decoder passes through).
    pub fn timestamp_ms(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let scale = match self.format {
            Format::Json => 1000.0,
            Format::Cbor => 1.0,
        };
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some((*i as f64 * scale).round() as i64)),
            Some(Value::Float(f)) => Ok(Some((f * scale).round() as i64)),
            Some(Value::Str(_)) => Err(ApiError::serialization(
                "class java.lang.String can not be converted to milliseconds since epoch",
            )),
            Some(Value::Bool(_)) => Err(ApiError::serialization(
                "class java.lang.Boolean can not be converted to milliseconds since epoch",
            )),
            Some(v) => Err(wrong_type(v, "milliseconds since epoch")),
        }
    }

    pub fn list(&self, name: &str) -> Result<Option<&'a [Value]>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(Value::Map(_)) => Err(ApiError::serialization(
                "Start of structure or map found where not expected.",
            )),
            Some(_) => Err(ApiError::serialization("Expected list or null")),
        }
    }

    pub fn structure(&self, name: &str) -> Result<Option<Input<'a>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Map(m)) => Ok(Some(Input {
                members: m,
                format: self.format,
            })),
            Some(Value::Array(_)) => Err(ApiError::serialization(
                "Start of list found where not expected",
            )),
            Some(_) => Err(ApiError::serialization("Expected null")),
        }
    }

    /// A map of string to string.
    pub fn string_map(&self, name: &str) -> Result<Option<Vec<(String, String)>>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Map(m)) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, v) in m {
                    match v {
                        Value::Str(s) => out.push((k.clone(), s.clone())),
                        Value::Null => {}
                        other => return Err(wrong_type(other, "an String")),
                    }
                }
                Ok(Some(out))
            }
            Some(Value::Array(_)) => Err(ApiError::serialization(
                "Start of list found where not expected",
            )),
            Some(_) => Err(ApiError::serialization("Expected map or null")),
        }
    }

    /// Elements of a list member that are structures.
    pub fn element(v: &'a Value, format: Format) -> Result<Input<'a>, ApiError> {
        match v {
            Value::Map(m) => Ok(Input { members: m, format }),
            Value::Null => Ok(Input {
                members: &[],
                format,
            }),
            Value::Array(_) => Err(ApiError::serialization(
                "Start of list found where not expected",
            )),
            _ => Err(ApiError::serialization("Expected null")),
        }
    }

    /// Elements of a list member that are strings.
    pub fn string_element(v: &'a Value) -> Result<&'a str, ApiError> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(wrong_type(other, "an String")),
        }
    }
}

/// Strict base64 (standard alphabet, padding required), with AWS's messages.
pub fn decode_base64(s: &str) -> Result<Vec<u8>, ApiError> {
    if !s.len().is_multiple_of(4) {
        return Err(ApiError::serialization(format!(
            "'{s}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| {
            let detail = match e {
                base64::DecodeError::InvalidByte(_, c) => {
                    format!("Invalid Base64 character: '{}'", c as char)
                }
                base64::DecodeError::InvalidLastSymbol(_, _) => {
                    "Invalid last non-pad Base64 character dectected".to_string()
                }
                _ => "Invalid Base64 encoding".to_string(),
            };
            ApiError::serialization(format!("'{s}' can not be converted to a Blob: {detail}"))
        })
}

/// [`decode_base64`] into the end of `buf`, for decoders that keep many blobs in one buffer:
/// it accepts exactly what [`decode_base64`] accepts and returns `true`; anything else leaves
/// `buf` as it was and returns `false` (for callers that then leave the request to the generic
/// path, which words the error).
pub fn decode_base64_into(s: &str, buf: &mut bytes::BytesMut) -> bool {
    if !s.len().is_multiple_of(4) {
        return false;
    }
    let start = buf.len();
    buf.resize(start + s.len() / 4 * 3, 0);
    match base64::engine::general_purpose::STANDARD.decode_slice(s, &mut buf[start..]) {
        Ok(n) => {
            buf.truncate(start + n);
            true
        }
        Err(_) => {
            buf.truncate(start);
            false
        }
    }
}

/// A response tree.
#[derive(Debug, Clone)]
pub enum Out {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// A string shared by many members of one response (a shard id in PutRecords).
    Shared(std::sync::Arc<str>),
    /// A short ASCII string kept inline (a sequence number's digits), without an allocation.
    Inline(InlineStr),
    Blob(Bytes),
    /// Epoch milliseconds.
    Timestamp(i64),
    Array(Vec<Out>),
    Map(Vec<(&'static str, Out)>),
}

impl Out {
    pub fn map() -> OutMap {
        OutMap(Vec::new())
    }
}

/// Builder for response structures; `opt` leaves a member out when it is `None`, as AWS does.
#[derive(Debug, Default)]
pub struct OutMap(Vec<(&'static str, Out)>);

impl OutMap {
    pub fn set(mut self, k: &'static str, v: Out) -> OutMap {
        self.0.push((k, v));
        self
    }
    pub fn str(self, k: &'static str, v: impl Into<String>) -> OutMap {
        self.set(k, Out::Str(v.into()))
    }
    pub fn int(self, k: &'static str, v: i64) -> OutMap {
        self.set(k, Out::Int(v))
    }
    pub fn bool(self, k: &'static str, v: bool) -> OutMap {
        self.set(k, Out::Bool(v))
    }
    pub fn opt(self, k: &'static str, v: Option<Out>) -> OutMap {
        match v {
            Some(v) => self.set(k, v),
            None => self,
        }
    }
    pub fn done(self) -> Out {
        Out::Map(self.0)
    }
}

/// A short ASCII string stored inline: sequence numbers are written in every PutRecords answer,
/// one per record, and this keeps them off the heap.
#[derive(Clone, Copy)]
pub struct InlineStr {
    len: u8,
    bytes: [u8; InlineStr::CAPACITY],
}

impl InlineStr {
    pub const CAPACITY: usize = 56;

    /// `None` when `s` is longer than [`InlineStr::CAPACITY`] or not printable ASCII (which
    /// would need escaping in JSON).
    pub fn new(s: &[u8]) -> Option<InlineStr> {
        if s.len() > Self::CAPACITY
            || !s
                .iter()
                .all(|b| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\')
        {
            return None;
        }
        let mut bytes = [0u8; Self::CAPACITY];
        bytes[..s.len()].copy_from_slice(s);
        Some(InlineStr {
            len: s.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// A structure read only from a JSON object. serde's derived structs also read a JSON array
/// (fields in order), which the generic path refuses with a SerializationException; the fast
/// path must refuse it too (by leaving the request to the generic path). Used by the services'
/// fast decoders (Kinesis PutRecords, Firehose PutRecordBatch).
pub struct Object<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapOnly<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for MapOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(MapOnly(std::marker::PhantomData))
            .map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_structure() {
        let map = Value::Map(vec![("A".into(), Value::Int(1))]);
        assert_eq!(Input::root(&map, Format::Json).unwrap().members.len(), 1);
        let e = Input::root(&Value::Array(vec![]), Format::Json).unwrap_err();
        assert_eq!(e.error_type, crate::ErrorType::Serialization);
        assert_eq!(
            e.message.as_deref(),
            Some("Start of list found where not expected")
        );
        for v in [
            Value::Null,
            Value::Bool(true),
            Value::Int(1),
            Value::Str("x".into()),
        ] {
            let e = Input::root(&v, Format::Cbor).unwrap_err();
            assert_eq!(e.error_type, crate::ErrorType::Serialization, "{v:?}");
            assert_eq!(e.message, None, "{v:?}");
        }
    }
}
