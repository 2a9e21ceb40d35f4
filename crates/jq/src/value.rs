//! jq values out as JSON: compact bytes (keys in the program's order) or `serde_json` values,
//! bounded in size and depth.
//!
//! jq has a few values JSON has not; they come out as jq prints them: NaN as `null`, the
//! infinities as the largest finite numbers, byte strings as (lossy UTF-8) strings. An object
//! key that is not a string is an error.

use jaq_json::{Num, Val};

use crate::limits;
use crate::program::JqError;

/// The bytes the outputs of one record may still take.
pub(crate) struct Budget {
    left: usize,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Budget {
        Budget { left: max, max }
    }

    fn check(&self, used: usize) -> Result<(), JqError> {
        if used > self.left {
            Err(JqError::OutputTooLarge { max: self.max })
        } else {
            Ok(())
        }
    }

    fn spend(&mut self, used: usize) -> Result<(), JqError> {
        self.check(used)?;
        self.left -= used;
        Ok(())
    }
}

/// `v` as compact JSON.
pub(crate) fn to_bytes(v: &Val, budget: &mut Budget) -> Result<Vec<u8>, JqError> {
    let mut out = Vec::new();
    write_into(v, &mut out, budget)?;
    Ok(out)
}

/// `v` as compact JSON into `out` (emptied first; its capacity is reused).
pub(crate) fn write_into(v: &Val, out: &mut Vec<u8>, budget: &mut Budget) -> Result<(), JqError> {
    out.clear();
    write(v, out, 0, budget)?;
    budget.spend(out.len())
}

fn write(v: &Val, out: &mut Vec<u8>, depth: usize, budget: &Budget) -> Result<(), JqError> {
    match v {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Num(n) => write_number(n, out)?,
        Val::TStr(s) | Val::BStr(s) => write_str(s, out)?,
        Val::Arr(items) => {
            deeper(depth)?;
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out, depth + 1, budget)?;
            }
            out.push(b']');
        }
        Val::Obj(fields) => {
            deeper(depth)?;
            out.push(b'{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match k {
                    Val::TStr(s) | Val::BStr(s) => write_str(s, out)?,
                    other => return Err(not_a_key(other)),
                }
                out.push(b':');
                write(item, out, depth + 1, budget)?;
            }
            out.push(b'}');
        }
    }
    budget.check(out.len())
}

/// `v` as a `serde_json` value (its object keys sorted, as `serde_json::Map` keeps them).
pub(crate) fn to_json(v: &Val, budget: &mut Budget) -> Result<serde_json::Value, JqError> {
    let mut used = 0;
    let json = convert(v, 0, &mut used, budget)?;
    budget.spend(used)?;
    Ok(json)
}

/// Counts into `used` about the bytes the value takes as compact JSON.
fn convert(
    v: &Val,
    depth: usize,
    used: &mut usize,
    budget: &Budget,
) -> Result<serde_json::Value, JqError> {
    use serde_json::Value;
    let json = match v {
        Val::Null => {
            *used += 4;
            Value::Null
        }
        Val::Bool(b) => {
            *used += 5;
            Value::Bool(*b)
        }
        Val::Num(n) => {
            *used += 8;
            number(n)
        }
        Val::TStr(s) | Val::BStr(s) => {
            *used += s.len() + 2;
            Value::String(String::from_utf8_lossy(s).into_owned())
        }
        Val::Arr(items) => {
            deeper(depth)?;
            *used += 2;
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                *used += 1;
                out.push(convert(item, depth + 1, used, budget)?);
            }
            Value::Array(out)
        }
        Val::Obj(fields) => {
            deeper(depth)?;
            *used += 2;
            let mut out = serde_json::Map::new();
            for (k, item) in fields.iter() {
                let k = key(k)?;
                *used += k.len() + 4;
                out.insert(k, convert(item, depth + 1, used, budget)?);
            }
            Value::Object(out)
        }
    };
    budget.check(*used)?;
    Ok(json)
}

fn deeper(depth: usize) -> Result<(), JqError> {
    if depth >= limits::OUTPUT_DEPTH_MAX {
        Err(JqError::OutputTooDeep {
            max: limits::OUTPUT_DEPTH_MAX,
        })
    } else {
        Ok(())
    }
}

fn key(k: &Val) -> Result<String, JqError> {
    match k {
        Val::TStr(s) | Val::BStr(s) => Ok(String::from_utf8_lossy(s).into_owned()),
        other => Err(not_a_key(other)),
    }
}

fn not_a_key(k: &Val) -> JqError {
    JqError::OutputNotJson(cut(format!("the object key {k} is not a string")))
}

/// A string as serde_json writes it (invalid UTF-8 replaced, as `from_utf8_lossy` does).
fn write_str(s: &[u8], out: &mut Vec<u8>) -> Result<(), JqError> {
    match std::str::from_utf8(s) {
        Ok(s) => serde_json::to_writer(&mut *out, s),
        Err(_) => serde_json::to_writer(&mut *out, &String::from_utf8_lossy(s)),
    }
    .map_err(internal)
}

/// [`number`] written as serde_json writes it, without making a `serde_json::Value` for the
/// common cases.
fn write_number(n: &Num, out: &mut Vec<u8>) -> Result<(), JqError> {
    match n {
        Num::Int(i) => match i64::try_from(*i) {
            Ok(i) => serde_json::to_writer(&mut *out, &i),
            Err(_) => serde_json::to_writer(&mut *out, &number(n)),
        },
        // serde_json writes a non-finite f64 as null, as `number` makes it.
        Num::Float(f) if !f.is_nan() => {
            serde_json::to_writer(&mut *out, &f.clamp(f64::MIN, f64::MAX))
        }
        _ => serde_json::to_writer(&mut *out, &number(n)),
    }
    .map_err(internal)
}

/// A jq number as JSON: integers as they are (big ones as the nearest float, as serde_json
/// reads them), NaN as null, the infinities as the largest finite numbers.
fn number(n: &Num) -> serde_json::Value {
    use serde_json::Value;
    fn float(f: f64) -> Value {
        if f.is_nan() {
            Value::Null
        } else {
            serde_json::Number::from_f64(f.clamp(f64::MIN, f64::MAX))
                .map_or(Value::Null, Value::Number)
        }
    }
    match n {
        Num::Int(i) => i64::try_from(*i).map_or_else(|_| float(*i as f64), Value::from),
        Num::Float(f) => float(*f),
        Num::BigInt(_) | Num::Dec(_) => {
            let text = n.to_string();
            serde_json::from_str::<serde_json::Number>(&text)
                .map(Value::Number)
                .unwrap_or_else(|_| float(text.parse().unwrap_or(f64::NAN)))
        }
    }
}

fn internal(e: serde_json::Error) -> JqError {
    JqError::Internal(e.to_string())
}

/// `s`, cut to [`limits::ERROR_CHARS_MAX`] characters.
pub(crate) fn cut(s: String) -> String {
    match s.char_indices().nth(limits::ERROR_CHARS_MAX) {
        None => s,
        Some((at, _)) => format!("{}...", &s[..at]),
    }
}
