//! Decimal literals read into `decimal(p,s)`: exact (from the number's text, never through a
//! float), rounded half up to the scale as Hive rounds; a value with more than `p - s` integer
//! digits does not fit and is an error.

use crate::limits;

/// The unscaled value of `text` at `scale`, if it fits `precision` digits.
pub(crate) fn parse_decimal(text: &str, precision: u8, scale: u8) -> Result<i128, String> {
    let text = text.trim();
    if text.len() > limits::DECIMAL_TEXT_CHARS_MAX {
        return Err(format!(
            "a decimal literal is at most {} characters",
            limits::DECIMAL_TEXT_CHARS_MAX
        ));
    }
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => {
            let exponent: i64 = rest[at + 1..]
                .parse()
                .map_err(|_| "not a decimal number".to_string())?;
            (&rest[..at], exponent)
        }
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err("not a decimal number".to_string());
    }
    // value = digits × 10^(exponent - fraction digits); unscaled = value × 10^scale.
    let digits: Vec<u8> = whole
        .bytes()
        .chain(fraction.bytes())
        .skip_while(|b| *b == b'0')
        .map(|b| b - b'0')
        .collect();
    let fraction_len = i64::try_from(fraction.len()).map_err(|_| "too long".to_string())?;
    let shift = exponent
        .saturating_sub(fraction_len)
        .saturating_add(i64::from(scale));
    let out_of_range = || format!("out of range for decimal({precision},{scale})");
    let len = i64::try_from(digits.len()).map_err(|_| out_of_range())?;
    let unscaled: i128 = if digits.is_empty() {
        0
    } else if shift >= 0 {
        if len.saturating_add(shift) > i64::from(precision) {
            return Err(out_of_range());
        }
        let mut value: i128 = 0;
        for d in &digits {
            value = value * 10 + i128::from(*d);
        }
        for _ in 0..shift {
            value *= 10;
        }
        value
    } else {
        let dropped = shift.unsigned_abs();
        if dropped > digits.len() as u64 {
            0
        } else {
            // `dropped` <= digits.len(), so this fits usize.
            let kept = digits.len() - usize::try_from(dropped).map_err(|_| out_of_range())?;
            if kept > usize::from(precision) {
                return Err(out_of_range());
            }
            let mut value: i128 = 0;
            for d in &digits[..kept] {
                value = value * 10 + i128::from(*d);
            }
            if digits[kept] >= 5 {
                value += 1;
            }
            value
        }
    };
    if unscaled >= 10i128.pow(u32::from(precision)) {
        return Err(out_of_range());
    }
    Ok(if negative { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values_and_rounding() {
        assert_eq!(parse_decimal("123.45", 5, 2), Ok(12345));
        assert_eq!(parse_decimal("-123.45", 5, 2), Ok(-12345));
        assert_eq!(parse_decimal("0.1", 3, 2), Ok(10));
        assert_eq!(parse_decimal("1.005", 5, 2), Ok(101));
        assert_eq!(parse_decimal("1.004", 5, 2), Ok(100));
        assert_eq!(parse_decimal("-1.005", 5, 2), Ok(-101));
        assert_eq!(parse_decimal("0.0049", 3, 2), Ok(0));
        assert_eq!(parse_decimal("0.005", 3, 2), Ok(1));
        assert_eq!(parse_decimal("1e3", 6, 2), Ok(100_000));
        assert_eq!(parse_decimal("1.5E-2", 4, 3), Ok(15));
        assert_eq!(parse_decimal("  7 ", 1, 0), Ok(7));
        assert_eq!(parse_decimal("000012.50", 4, 2), Ok(1250));
        assert_eq!(parse_decimal(".5", 2, 1), Ok(5));
        assert_eq!(parse_decimal("5.", 2, 1), Ok(50));
        assert_eq!(parse_decimal("0", 1, 0), Ok(0));
        assert_eq!(parse_decimal("1e-400", 10, 2), Ok(0));
    }

    #[test]
    fn precision_at_its_limit() {
        let max = "9".repeat(38);
        assert_eq!(parse_decimal(&max, 38, 0), Ok(10i128.pow(38) - 1));
        assert!(parse_decimal(&format!("{max}9"), 38, 0).is_err());
        assert_eq!(parse_decimal("999.99", 5, 2), Ok(99_999));
        assert!(parse_decimal("999.995", 5, 2)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_decimal("1000", 5, 2).is_err());
        assert!(parse_decimal("1e400", 38, 0).is_err());
        assert!(parse_decimal("1e9223372036854775807", 38, 38).is_err());
        assert_eq!(parse_decimal("1e-9223372036854775808", 38, 0), Ok(0));
    }

    #[test]
    fn not_numbers() {
        for bad in [
            "", "-", ".", "1.2.3", "abc", "1e", "1e+x", "0x10", "1_000", "--1",
        ] {
            assert!(parse_decimal(bad, 10, 2).is_err(), "{bad}");
        }
        let long = "1".repeat(limits::DECIMAL_TEXT_CHARS_MAX + 1);
        assert!(parse_decimal(&long, 38, 0).unwrap_err().contains("at most"));
    }
}
