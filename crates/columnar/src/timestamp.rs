//! Dates and timestamps as each deserializer reads them. Timestamps become microseconds since
//! the epoch (UTC), dates days since the epoch.

use chrono::NaiveDate;
use serde_json::Value;

use crate::deserializer::{HiveJsonSerDe, TimestampFormat};
use crate::joda::parse_offset;
use crate::limits;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Microseconds since the epoch of a civil date and time at `offset_seconds` east of UTC.
pub(crate) fn civil_micros(
    date: NaiveDate,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset_seconds: i64,
) -> Option<i64> {
    let local = date
        .and_hms_nano_opt(hour, minute, second, nanos)?
        .and_utc()
        .timestamp_micros();
    local.checked_sub(offset_seconds.checked_mul(MICROS_PER_SECOND)?)
}

/// OpenX: epoch seconds or milliseconds (integers, as numbers or strings), floating-point
/// epoch seconds, ISO 8601 with `T` and `Z` (or an offset), or `yyyy-[M]M-[d]d HH:mm:ss[.S]`.
pub(crate) fn openx_timestamp(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => epoch_text(&n.to_string()),
        Value::String(s) => epoch_text(s).or_else(|| date_time_text(s, true)),
        _ => None,
    }
}

/// Hive: each `TimestampFormats` entry in order, then `java.sql.Timestamp.valueOf`.
pub(crate) fn hive_timestamp(serde: &HiveJsonSerDe, value: &Value) -> Option<i64> {
    let number;
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Number(n) => {
            number = n.to_string();
            number.as_str()
        }
        _ => return None,
    };
    for format in serde.formats() {
        let parsed = match format {
            TimestampFormat::Millis => integer(text)
                .and_then(|millis| millis.checked_mul(1000))
                .filter(|micros| in_range(*micros)),
            TimestampFormat::Joda(pattern) => pattern.parse(text).filter(|m| in_range(*m)),
        };
        if parsed.is_some() {
            return parsed;
        }
    }
    date_time_text(text, false)
}

/// A `date` column: `yyyy-[m]m-[d]d` (`java.sql.Date.valueOf`; both deserializers); the Hive
/// SerDe also reads a value its `TimestampFormats` read, taking its UTC date.
pub(crate) fn date(value: &Value, hive: Option<&HiveJsonSerDe>) -> Option<i32> {
    let Value::String(text) = value else {
        return None;
    };
    let parsed = split_date(text).and_then(|(date, rest)| rest.is_empty().then_some(date));
    let parsed = parsed.or_else(|| {
        let serde = hive.filter(|s| !s.formats().is_empty())?;
        let micros = hive_timestamp(serde, value)?;
        chrono::DateTime::from_timestamp_micros(micros).map(|t| t.date_naive())
    })?;
    let days = parsed
        .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?)
        .num_days();
    i32::try_from(days).ok()
}

/// Timestamps sluice writes stay within what every reader takes: years 0001 to 9999.
fn in_range(micros: i64) -> bool {
    const MIN: i64 = -62_135_596_800 * MICROS_PER_SECOND; // 0001-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_800 * MICROS_PER_SECOND; // 10000-01-01T00:00:00Z
    (MIN..MAX).contains(&micros)
}

fn integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An epoch number as text: an integer is seconds below 10^11 and milliseconds from there
/// (OpenX reads both), a decimal is seconds with a fraction.
fn epoch_text(text: &str) -> Option<i64> {
    if let Some(n) = integer(text) {
        let micros = if n.unsigned_abs() >= limits::EPOCH_MILLIS_FROM.unsigned_abs() {
            n.checked_mul(1000)?
        } else {
            n.checked_mul(MICROS_PER_SECOND)?
        };
        return in_range(micros).then_some(micros);
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if unsigned.starts_with(['-', '+']) {
        return None;
    }
    let micros = if unsigned.contains(['e', 'E']) {
        // `1.5e9` (how a JSON number may print): through f64, to the microsecond.
        let seconds: f64 = unsigned.parse().ok()?;
        let micros = (seconds * 1e6).round();
        if !micros.is_finite() || micros.abs() >= 9.2e18 {
            return None;
        }
        micros as i64
    } else if let Some((whole, fraction)) = unsigned.split_once('.') {
        let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || fraction.is_empty() || !plain(whole) || !plain(fraction) {
            return None;
        }
        let seconds: i64 = whole.parse().ok()?;
        let mut sub = 0i64;
        for (i, b) in fraction.bytes().take(6).enumerate() {
            sub += i64::from(b - b'0') * 10i64.pow(5 - u32::try_from(i).ok()?);
        }
        seconds.checked_mul(MICROS_PER_SECOND)?.checked_add(sub)?
    } else {
        return None;
    };
    let micros = if negative { -micros } else { micros };
    in_range(micros).then_some(micros)
}

/// `yyyy-[m]m-[d]d` at the start of `text`: the date and what follows.
fn split_date(text: &str) -> Option<(NaiveDate, &str)> {
    let (year, rest) = digits(text, 4, 4)?;
    let rest = rest.strip_prefix('-')?;
    let (month, rest) = digits(rest, 1, 2)?;
    let rest = rest.strip_prefix('-')?;
    let (day, rest) = digits(rest, 1, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((date, rest))
}

/// `count_min..=count_max` ASCII digits at the start of `text`.
fn digits(text: &str, count_min: usize, count_max: usize) -> Option<(u32, &str)> {
    let len = text
        .bytes()
        .take(count_max)
        .take_while(u8::is_ascii_digit)
        .count();
    if len < count_min {
        return None;
    }
    Some((text[..len].parse().ok()?, &text[len..]))
}

/// `yyyy-[m]m-[d]d hh:mm:ss[.f{1,9}]` (`java.sql.Timestamp.valueOf`, UTC). With `iso`, also
/// `T` as the separator and a trailing `Z` or offset (the OpenX forms).
fn date_time_text(text: &str, iso: bool) -> Option<i64> {
    let (date, rest) = split_date(text)?;
    let rest = match rest.as_bytes().first()? {
        b' ' => &rest[1..],
        b'T' | b't' if iso => &rest[1..],
        _ => return None,
    };
    let (hour, rest) = digits(rest, 2, 2)?;
    let rest = rest.strip_prefix(':')?;
    let (minute, rest) = digits(rest, 2, 2)?;
    let rest = rest.strip_prefix(':')?;
    let (second, mut rest) = digits(rest, 2, 2)?;
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        let value: u32 = fraction[..len].parse().ok()?;
        nanos = value * 10u32.pow(9 - u32::try_from(len).ok()?);
        rest = &fraction[len..];
    }
    let mut offset_seconds = 0;
    if !rest.is_empty() {
        if !iso {
            return None;
        }
        let (offset, len) = parse_offset(rest)?;
        if len != rest.len() {
            return None;
        }
        offset_seconds = offset;
    }
    civil_micros(date, hour, minute, second, nanos, offset_seconds).filter(|m| in_range(*m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: i64 = 1_518_016_381_000_000; // 2018-02-07T15:13:01Z

    #[test]
    fn openx_forms_from_the_firehose_guide() {
        assert_eq!(
            openx_timestamp(&json!("2018-02-07T15:13:01.39256Z")),
            Some(T + 392_560)
        );
        assert_eq!(
            openx_timestamp(&json!("2018-02-07T15:13:01.123456789Z")),
            Some(T + 123_456)
        );
        assert_eq!(
            openx_timestamp(&json!("2018-2-7 15:13:01.14")),
            Some(T + 140_000)
        );
        assert_eq!(
            openx_timestamp(&json!("2018-02-07T16:13:01+01:00")),
            Some(T)
        );
        assert_eq!(openx_timestamp(&json!("2018-02-07T15:13:01")), Some(T));
        assert_eq!(openx_timestamp(&json!(1_518_016_381)), Some(T));
        assert_eq!(
            openx_timestamp(&json!(1_518_016_381_123i64)),
            Some(T + 123_000)
        );
        assert_eq!(openx_timestamp(&json!("1518016381123")), Some(T + 123_000));
        assert_eq!(
            openx_timestamp(&json!(1_518_016_381.123)),
            Some(T + 123_000)
        );
        assert_eq!(openx_timestamp(&json!("1518016381.5")), Some(T + 500_000));
        assert_eq!(openx_timestamp(&json!(-1.5)), Some(-1_500_000));
        assert_eq!(openx_timestamp(&json!(0)), Some(0));
        assert_eq!(openx_timestamp(&json!(1.5e9)), Some(1_500_000_000_000_000));
        assert_eq!(
            openx_timestamp(&json!("1.5e9")),
            Some(1_500_000_000_000_000)
        );
    }

    #[test]
    fn years_1_to_9999_only() {
        assert_eq!(
            openx_timestamp(&json!("0001-01-01 00:00:00")),
            Some(-62_135_596_800_000_000)
        );
        assert!(openx_timestamp(&json!("9999-12-31T23:59:59.999999Z")).is_some());
        assert_eq!(openx_timestamp(&json!("0000-12-31 23:59:59")), None);
        assert_eq!(openx_timestamp(&json!(253_402_300_800_000i64)), None);
    }

    #[test]
    fn epoch_seconds_and_millis_split_at_the_limit() {
        let below = limits::EPOCH_MILLIS_FROM - 1;
        assert_eq!(openx_timestamp(&json!(below)), Some(below * 1_000_000));
        let at = limits::EPOCH_MILLIS_FROM;
        assert_eq!(openx_timestamp(&json!(at)), Some(at * 1000));
    }

    #[test]
    fn openx_rejects() {
        for bad in [
            json!("2018-02-07"),
            json!("2018-02-07T25:13:01Z"),
            json!("2018-02-30 10:00:00"),
            json!("yesterday"),
            json!("2018-02-07 15:13:01.1234567890"),
            json!("2018-02-07 15:13:01 +01:00 x"),
            json!(true),
            json!({"a": 1}),
            json!(1e300),
            json!(i64::MAX),
            json!("--1e5"),
            json!("-+1.5"),
            json!("0001-01-01 00:00:00x"),
        ] {
            assert_eq!(openx_timestamp(&bad), None, "{bad}");
        }
    }

    #[test]
    fn hive_formats_then_value_of() {
        let none = HiveJsonSerDe::default();
        assert_eq!(
            hive_timestamp(&none, &json!("2018-02-07 15:13:01.5")),
            Some(T + 500_000)
        );
        assert_eq!(hive_timestamp(&none, &json!("2018-02-07T15:13:01Z")), None);
        assert_eq!(hive_timestamp(&none, &json!(1_518_016_381_000i64)), None);
        let serde = HiveJsonSerDe::new(&["millis".into(), "dd/MM/yyyy HH:mm".into()]).unwrap();
        assert_eq!(
            hive_timestamp(&serde, &json!(1_518_016_381_000i64)),
            Some(T)
        );
        assert_eq!(hive_timestamp(&serde, &json!("1518016381000")), Some(T));
        assert_eq!(
            hive_timestamp(&serde, &json!("07/02/2018 15:13")),
            Some(T - 1_000_000)
        );
        assert_eq!(
            hive_timestamp(&serde, &json!("2018-02-07 15:13:01")),
            Some(T)
        );
        assert_eq!(hive_timestamp(&serde, &json!("07-02-2018")), None);
    }

    #[test]
    fn dates() {
        assert_eq!(date(&json!("1970-01-02"), None), Some(1));
        assert_eq!(date(&json!("2018-2-7"), None), Some(17_569));
        assert_eq!(date(&json!("1969-12-31"), None), Some(-1));
        assert_eq!(date(&json!("2018-02-30"), None), None);
        assert_eq!(date(&json!("2018-02-07 10:00:00"), None), None);
        assert_eq!(date(&json!(17_569), None), None);
        let serde = HiveJsonSerDe::new(&["dd.MM.yyyy".into()]).unwrap();
        assert_eq!(date(&json!("07.02.2018"), Some(&serde)), Some(17_569));
    }
}
