//! A record's data in as a jq value: serde_json's strict reader (the same errors, nesting
//! bounded at 128) into jaq values, with less work per record than through jaq-json's own
//! `Deserialize`:
//!
//! - strings without escapes (object keys included) share the record's buffer (a reference
//!   count, not a copy);
//! - arrays and objects are gathered on a stack kept from one record to the next, then built
//!   at their final size (no regrowth, no rehash).
//!
//! The values are those `serde_json::from_slice::<jaq_json::Val>` makes: keys in input order (a
//! repeated key keeps its first place and its last value), integers of `i64`/`u64` as
//! integers, every other number as serde_json reads it (the nearest `f64`).

use std::fmt;

use bytes::Bytes;
use jaq_json::{Num, Val};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::program::JqError;
use crate::value::cut;

/// What parsing keeps between records (so it does not allocate it again).
#[derive(Default)]
pub(crate) struct Reader {
    items: Vec<Val>,
    fields: Vec<(Val, Val)>,
}

impl Reader {
    /// One JSON text (strict; nesting bounded by serde_json) as a jq value, keys in order.
    pub(crate) fn parse(&mut self, data: &Bytes) -> Result<Val, JqError> {
        self.items.clear();
        self.fields.clear();
        let mut de = serde_json::Deserializer::from_slice(data);
        let seed = Seed {
            reader: self,
            input: data,
        };
        seed.deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| JqError::InputNotJson(cut(e.to_string())))
    }
}

/// [`Reader::parse`] on bytes that are not in a [`Bytes`] yet.
pub(crate) fn parse_slice(data: &[u8]) -> Result<Val, JqError> {
    Reader::default().parse(&Bytes::copy_from_slice(data))
}

struct Seed<'r> {
    reader: &'r mut Reader,
    /// The record's data: what borrowed strings are slices of.
    input: &'r Bytes,
}

impl Seed<'_> {
    fn again(&mut self) -> Seed<'_> {
        Seed {
            reader: self.reader,
            input: self.input,
        }
    }

    /// `s` as a shared slice of the input when it is one, else a copy.
    fn string(&self, s: &str) -> Val {
        let base = self.input.as_ptr() as usize;
        let at = (s.as_ptr() as usize).wrapping_sub(base);
        if at <= self.input.len() && s.len() <= self.input.len() - at {
            Val::utf8_str(self.input.slice(at..at + s.len()))
        } else {
            Val::utf8_str(Bytes::copy_from_slice(s.as_bytes()))
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Val;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Val, E> {
        Ok(Val::Num(Num::from_integral(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
        Ok(Val::Num(Num::Float(v)))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val, E> {
        Ok(self.string(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Val, E> {
        Ok(self.string(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Val, E> {
        Ok(Val::utf8_str(v.into_bytes()))
    }

    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Val, A::Error> {
        let start = self.reader.items.len();
        while let Some(v) = seq.next_element_seed(self.again())? {
            self.reader.items.push(v);
        }
        let items: Vec<Val> = self.reader.items.drain(start..).collect();
        Ok(Val::Arr(items.into()))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Val, A::Error> {
        let start = self.reader.fields.len();
        while let Some(k) = map.next_key_seed(self.again())? {
            let v = map.next_value_seed(self.again())?;
            self.reader.fields.push((k, v));
        }
        let mut m = jaq_json::Map::with_capacity_and_hasher(
            self.reader.fields.len() - start,
            Default::default(),
        );
        m.extend(self.reader.fields.drain(start..));
        Ok(Val::obj(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What jaq-json's own `Deserialize` makes, compared as compact JSON and structurally.
    fn same(text: &str) {
        let want = serde_json::from_slice::<Val>(text.as_bytes());
        let got = parse_slice(text.as_bytes());
        match (want, got) {
            (Ok(w), Ok(g)) => {
                assert_eq!(w, g, "{text}");
                assert_eq!(w.to_string(), g.to_string(), "{text}");
            }
            (Err(w), Err(g)) => assert_eq!(JqError::InputNotJson(cut(w.to_string())), g, "{text}"),
            (w, g) => panic!("{text}: {w:?} against {g:?}"),
        }
    }

    #[test]
    fn reads_as_jaq_json_does() {
        for text in [
            "null",
            " true ",
            "false",
            "0",
            "-0",
            "-12",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "100000000000000000000000",
            "1.5",
            "1.50",
            "1e3",
            "-0.0",
            "1e400",
            r#""""#,
            r#""plain""#,
            r#""esc\"aped\\ \n \t \u00e9 \ud83d\ude00""#,
            "\"é ü 中文 😀\"",
            "[]",
            "{}",
            "[1, [2, [3, {}]], {\"a\": [4]}]",
            r#"{"b": 1, "a": 2, "c": {"z": [], "y": {"x": null}}}"#,
            r#"{"a": 1, "b": 2, "a": 3}"#,
            r#"{"k\u00e9y": "v", "kéy2": "w"}"#,
            r#"{"id":7,"ts_us":1764300000000000,"run":3735928559,"kind":"click","pad":"xxxx"}"#,
            "",
            "   ",
            "nul",
            "NaN",
            "Infinity",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1: 2}",
            "[1] [2]",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"\u{1}\"",
            "// comment\n1",
            "# comment\n1",
            "b\"bytes\"",
            "01",
            "1.",
            "-",
            "[[[[[[[[[[]]]]]]]]]]",
        ] {
            same(text);
        }
        // Invalid UTF-8, in and out of strings.
        for bytes in [&b"\"\xff\""[..], b"\xff", b"[\"a\xc3\"]"] {
            assert!(matches!(parse_slice(bytes), Err(JqError::InputNotJson(_))));
            assert!(serde_json::from_slice::<Val>(bytes).is_err());
        }
        // Nesting: serde_json's limit of 128.
        for depth in [127, 128, 129, 200] {
            same(&("[".repeat(depth) + &"]".repeat(depth)));
            same(&("{\"a\":".repeat(depth) + "1" + &"}".repeat(depth)));
        }
    }

    #[test]
    fn one_reader_reads_many_records() {
        let mut r = Reader::default();
        let a = Bytes::from_static(br#"{"a": [1, {"b": [2, 3]}], "c": "d"}"#);
        let bad = Bytes::from_static(br#"{"a": [1, {"b": [2, "#);
        for _ in 0..3 {
            assert!(r.parse(&bad).is_err());
            let v = r.parse(&a).unwrap();
            assert_eq!(v.to_string(), r#"{"a":[1,{"b":[2,3]}],"c":"d"}"#);
        }
    }

    #[test]
    fn strings_share_the_input_or_copy_it() {
        let input = Bytes::from(br#"{"key":"value","esc":"a\nb"}"#.to_vec());
        let v = Reader::default().parse(&input).unwrap();
        let Val::Obj(m) = &v else { panic!("{v}") };
        let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
        for (k, val) in m.iter() {
            for s in [k, val] {
                let Val::TStr(b) = s else { panic!("{s}") };
                let inside = range.contains(&(b.as_ptr() as usize));
                // Escaped strings are decoded into a buffer of their own.
                assert_eq!(inside, !b.contains(&b'\n'), "{s}");
            }
        }
        drop(input);
        assert_eq!(v.to_string(), r#"{"key":"value","esc":"a\nb"}"#);
    }
}
