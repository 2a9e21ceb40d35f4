//! Exact decimals: a number's text (a JSON number, a CSV field) read without a trip through
//! binary floating point, and written in PostgreSQL's binary `numeric` form (base-10000
//! digits, weight, sign, display scale). The server rounds the value to the column's scale.

use bytes::{BufMut, BytesMut};

/// `numeric`'s sign words.
const SIGN_POSITIVE: u16 = 0x0000;
const SIGN_NEGATIVE: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PLUS_INFINITY: u16 = 0xD000;
const SIGN_MINUS_INFINITY: u16 = 0xF000;

/// Largest exponent (`1e1000`) accepted in a number's text.
const EXPONENT_MAX: i64 = 1000;

/// A decimal number as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decimal {
    Finite {
        negative: bool,
        /// Digits before the point, without leading zeros (empty for zero).
        int: String,
        /// Digits after the point, as many as the text had (after the exponent).
        frac: String,
    },
    NaN,
    Infinity {
        negative: bool,
    },
}

impl Decimal {
    /// Parses `[+-]digits[.digits][e[+-]digits]`, `NaN` and `[+-]Infinity` (any case).
    pub fn parse(text: &str) -> Result<Decimal, String> {
        let text = text.trim();
        if text.len() > crate::limits::NUMERIC_TEXT_CHARS_MAX {
            return Err(format!(
                "a number of more than {} characters",
                crate::limits::NUMERIC_TEXT_CHARS_MAX
            ));
        }
        let bad = || format!("{} is not a number", crate::error::quote_value(text));
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case("nan") {
            return if body.len() == text.len() {
                Ok(Decimal::NaN)
            } else {
                Err(bad())
            };
        }
        if body.eq_ignore_ascii_case("infinity") || body.eq_ignore_ascii_case("inf") {
            return Ok(Decimal::Infinity { negative });
        }
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => {
                let exp: i64 = body[i + 1..].parse().map_err(|_| bad())?;
                if exp.abs() > EXPONENT_MAX {
                    return Err(format!(
                        "{} is out of range",
                        crate::error::quote_value(text)
                    ));
                }
                (&body[..i], exp)
            }
            None => (body, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let mut int = int.to_string();
        let mut frac = frac.to_string();
        if exponent > 0 {
            let shift = exponent as usize;
            let moved = shift.min(frac.len());
            int.push_str(&frac[..moved]);
            frac.drain(..moved);
            int.extend(std::iter::repeat_n('0', shift - moved));
        } else if exponent < 0 {
            let shift = (-exponent) as usize;
            let moved = shift.min(int.len());
            let tail = int.split_off(int.len() - moved);
            let zeros: String = std::iter::repeat_n('0', shift - moved).collect();
            frac = format!("{zeros}{tail}{frac}");
        }
        let int = int.trim_start_matches('0').to_string();
        Ok(Decimal::Finite {
            negative,
            int,
            frac,
        })
    }

    /// Whether the value has no fractional part (trailing zeros after the point allowed).
    pub fn is_integer(&self) -> bool {
        matches!(self, Decimal::Finite { frac, .. } if frac.bytes().all(|b| b == b'0'))
    }

    /// The value times 10^`places`, truncated toward zero, if it is finite and fits an `i64`.
    pub fn shifted_to_integer(&self, places: usize) -> Option<i64> {
        let Decimal::Finite {
            negative,
            int,
            frac,
        } = self
        else {
            return None;
        };
        let mut digits = int.clone();
        for i in 0..places {
            digits.push(frac.as_bytes().get(i).map_or('0', |b| char::from(*b)));
        }
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            return Some(0);
        }
        if digits.len() > 19 {
            return None;
        }
        let magnitude: i128 = digits.parse().ok()?;
        let value = if *negative { -magnitude } else { magnitude };
        i64::try_from(value).ok()
    }

    /// Writes the binary `numeric` form.
    pub fn encode(&self, out: &mut BytesMut) {
        let (negative, int, frac) = match self {
            Decimal::NaN => return put_header(out, 0, 0, SIGN_NAN, 0),
            Decimal::Infinity { negative: false } => {
                return put_header(out, 0, 0, SIGN_PLUS_INFINITY, 0)
            }
            Decimal::Infinity { negative: true } => {
                return put_header(out, 0, 0, SIGN_MINUS_INFINITY, 0)
            }
            Decimal::Finite {
                negative,
                int,
                frac,
            } => (*negative, int, frac),
        };
        // The parse bounds the text, so these fit numeric's 16-bit fields.
        let dscale = u16::try_from(frac.len()).unwrap_or(u16::MAX);
        let int_pad = (4 - int.len() % 4) % 4;
        let frac_pad = (4 - frac.len() % 4) % 4;
        let mut all = Vec::with_capacity(int_pad + int.len() + frac.len() + frac_pad);
        all.extend(std::iter::repeat_n(0u8, int_pad));
        all.extend(int.bytes().map(|b| b - b'0'));
        all.extend(frac.bytes().map(|b| b - b'0'));
        all.extend(std::iter::repeat_n(0u8, frac_pad));
        let mut digits: Vec<i16> = all
            .chunks(4)
            .map(|c| c.iter().fold(0i16, |v, d| v * 10 + i16::from(*d)))
            .collect();
        let mut weight = ((int_pad + int.len()) / 4) as i32 - 1;
        let leading = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading);
        weight -= leading as i32;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let (sign, weight) = if digits.is_empty() {
            (SIGN_POSITIVE, 0)
        } else if negative {
            (SIGN_NEGATIVE, weight)
        } else {
            (SIGN_POSITIVE, weight)
        };
        put_header(out, digits.len() as i16, weight as i16, sign, dscale);
        for d in digits {
            out.put_i16(d);
        }
    }
}

fn put_header(out: &mut BytesMut, ndigits: i16, weight: i16, sign: u16, dscale: u16) {
    out.put_i16(ndigits);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(dscale);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> (i16, i16, u16, u16, Vec<i16>) {
        let mut out = BytesMut::new();
        Decimal::parse(text).unwrap().encode(&mut out);
        let words: Vec<i16> = out
            .chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect();
        (
            words[0],
            words[1],
            words[2] as u16,
            words[3] as u16,
            words[4..].to_vec(),
        )
    }

    #[test]
    fn binary_forms() {
        assert_eq!(encoded("123.45"), (2, 0, 0, 2, vec![123, 4500]));
        assert_eq!(encoded("-123.45"), (2, 0, 0x4000, 2, vec![123, 4500]));
        assert_eq!(encoded("0"), (0, 0, 0, 0, vec![]));
        assert_eq!(encoded("-0.00"), (0, 0, 0, 2, vec![]));
        assert_eq!(encoded("0.00001234"), (1, -2, 0, 8, vec![1234]));
        assert_eq!(encoded("10000"), (1, 1, 0, 0, vec![1]));
        assert_eq!(encoded("1.5e3"), (1, 0, 0, 0, vec![1500]));
        assert_eq!(encoded("15e-1"), (2, 0, 0, 1, vec![1, 5000]));
        assert_eq!(encoded(".5"), (1, -1, 0, 1, vec![5000]));
        assert_eq!(encoded("NaN"), (0, 0, 0xC000, 0, vec![]));
        assert_eq!(encoded("-Infinity"), (0, 0, 0xF000, 0, vec![]));
    }

    #[test]
    fn big_integer_digits() {
        assert_eq!(
            encoded("12345678901234567890"),
            (5, 4, 0, 0, vec![1234, 5678, 9012, 3456, 7890])
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "", "-", ".", "1..2", "1e", "abc", "1,5", "--1", "1e1001", "+nan",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
        let max = crate::limits::NUMERIC_TEXT_CHARS_MAX;
        assert!(Decimal::parse(&"9".repeat(max)).is_ok());
        assert!(Decimal::parse(&"9".repeat(max + 1)).is_err());
    }

    #[test]
    fn integers_and_shifts() {
        assert!(Decimal::parse("12.000").unwrap().is_integer());
        assert!(!Decimal::parse("12.5").unwrap().is_integer());
        assert!(Decimal::parse("1e2").unwrap().is_integer());
        assert_eq!(
            Decimal::parse("-1.5").unwrap().shifted_to_integer(3),
            Some(-1500)
        );
        assert_eq!(
            Decimal::parse("1.23456789").unwrap().shifted_to_integer(6),
            Some(1_234_567)
        );
        assert_eq!(
            Decimal::parse("9223372036854775807")
                .unwrap()
                .shifted_to_integer(0),
            Some(i64::MAX)
        );
        assert_eq!(
            Decimal::parse("9223372036854775808")
                .unwrap()
                .shifted_to_integer(0),
            None
        );
        assert_eq!(
            Decimal::parse("-9223372036854775808")
                .unwrap()
                .shifted_to_integer(0),
            Some(i64::MIN)
        );
    }
}
