//! Dates and timestamps as COPY reads them: ISO 8601 text (`2024-05-01`, `2024-05-01 10:20:30`,
//! `2024-05-01T10:20:30.123456Z`, `... +02:00`) and epoch numbers, into PostgreSQL's binary
//! forms (days and microseconds since 2000-01-01). Calendar arithmetic is the proleptic
//! Gregorian calendar of both Redshift and PostgreSQL.

/// Seconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_UNIX_SECONDS: i64 = 946_684_800;
const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Days from 1970-01-01 to the given date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (`civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A timestamp as written: its wall-clock time (microseconds since 2000-01-01 as if UTC)
/// and the UTC offset it named, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp {
    pub wall_micros: i64,
    pub offset_seconds: Option<i64>,
}

impl Timestamp {
    /// The instant, for `timestamptz`: a timestamp without an offset is UTC (as in Redshift).
    pub fn utc_micros(self) -> i64 {
        self.wall_micros - self.offset_seconds.unwrap_or(0) * MICROS_PER_SECOND
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(slice.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0')))
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

fn not_a(what: &str, text: &str) -> String {
    format!("{} is not {what}", crate::error::quote_value(text))
}

/// `YYYY-MM-DD` at the cursor, as days since 1970-01-01.
fn date_part(c: &mut Cursor<'_>) -> Option<i64> {
    let year = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let month = u32::try_from(c.digits(2)?).ok()?;
    if !c.eat(b'-') {
        return None;
    }
    let day = u32::try_from(c.digits(2)?).ok()?;
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Parses an ISO 8601 date, with or without a time (a time is ignored for a date).
pub(crate) fn parse_date(text: &str) -> Result<i32, String> {
    let trimmed = text.trim();
    let mut c = Cursor {
        bytes: trimmed.as_bytes(),
        at: 0,
    };
    let days = date_part(&mut c).ok_or_else(|| not_a("a date (YYYY-MM-DD)", text))?;
    if !c.done() {
        // A timestamp's date part, as Redshift's DATEFORMAT 'auto' takes it.
        parse_timestamp(trimmed).map_err(|_| not_a("a date (YYYY-MM-DD)", text))?;
    }
    i32::try_from(days - PG_EPOCH_UNIX_SECONDS / SECONDS_PER_DAY)
        .map_err(|_| not_a("a date in range", text))
}

/// Parses an ISO 8601 timestamp: a date, then `T` or spaces and `HH:MM[:SS[.fraction]]`, then
/// optionally `Z`, `UTC` or an offset `±HH[:MM]` / `±HHMM`. A fraction finer than a
/// microsecond is rounded, as PostgreSQL rounds it.
pub(crate) fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    let err = || not_a("a timestamp (YYYY-MM-DD HH:MI:SS)", text);
    let trimmed = text.trim();
    let mut c = Cursor {
        bytes: trimmed.as_bytes(),
        at: 0,
    };
    let days = date_part(&mut c).ok_or_else(err)?;
    let mut micros_of_day = 0i64;
    if !c.done() {
        if !(c.eat(b'T') || c.eat(b't')) {
            if c.peek() != Some(b' ') {
                return Err(err());
            }
            c.skip_spaces();
        }
        let hour = c.digits(2).ok_or_else(err)?;
        if !c.eat(b':') {
            return Err(err());
        }
        let minute = c.digits(2).ok_or_else(err)?;
        let mut second = 0;
        let mut fraction_micros = 0;
        if c.eat(b':') {
            second = c.digits(2).ok_or_else(err)?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.at;
                while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                    c.at += 1;
                }
                let digits = &trimmed[start..c.at];
                if digits.is_empty() {
                    return Err(err());
                }
                fraction_micros = fraction_to_micros(digits);
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(err());
        }
        micros_of_day = ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + fraction_micros;
    }
    c.skip_spaces();
    let offset_seconds = if c.done() {
        None
    } else if c.eat(b'Z') || c.eat(b'z') {
        Some(0)
    } else if trimmed[c.at..].eq_ignore_ascii_case("utc")
        || trimmed[c.at..].eq_ignore_ascii_case("gmt")
    {
        c.at = trimmed.len();
        Some(0)
    } else {
        let sign = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return Err(err());
        };
        let hours = c.digits(2).ok_or_else(err)?;
        let minutes = if c.done() {
            0
        } else {
            c.eat(b':');
            c.digits(2).ok_or_else(err)?
        };
        if hours > 15 || minutes > 59 {
            return Err(err());
        }
        Some(sign * (hours * 3600 + minutes * 60))
    };
    if !c.done() {
        return Err(err());
    }
    let wall_micros =
        (days * SECONDS_PER_DAY - PG_EPOCH_UNIX_SECONDS) * MICROS_PER_SECOND + micros_of_day;
    Ok(Timestamp {
        wall_micros,
        offset_seconds,
    })
}

/// `.123456789` digits to microseconds, rounded half up.
fn fraction_to_micros(digits: &str) -> i64 {
    let mut micros = 0i64;
    for (i, d) in digits.bytes().take(6).enumerate() {
        micros += i64::from(d - b'0') * 10i64.pow(5 - i as u32);
    }
    if digits.as_bytes().get(6).is_some_and(|d| *d >= b'5') {
        micros += 1;
    }
    micros
}

/// Parses an epoch number (`epochsecs` or `epochmillisecs`) into microseconds since
/// 2000-01-01 UTC. Accepts an optional sign, a fraction and an exponent (JSON numbers).
pub(crate) fn parse_epoch(text: &str, millis: bool) -> Result<i64, String> {
    let what = if millis {
        "milliseconds since 1970 (TIMEFORMAT 'epochmillisecs')"
    } else {
        "seconds since 1970 (TIMEFORMAT 'epochsecs')"
    };
    let err = || not_a(what, text);
    let trimmed = text.trim();
    let numeric = crate::numeric::Decimal::parse(trimmed).map_err(|_| err())?;
    // Scale to microseconds: 6 decimal places for seconds, 3 for milliseconds.
    let micros = numeric
        .shifted_to_integer(if millis { 3 } else { 6 })
        .ok_or_else(err)?;
    let pg = micros
        .checked_sub(PG_EPOCH_UNIX_SECONDS * MICROS_PER_SECOND)
        .ok_or_else(err)?;
    // Years 1 to 9999, as for text timestamps.
    let min =
        (days_from_civil(1, 1, 1) * SECONDS_PER_DAY - PG_EPOCH_UNIX_SECONDS) * MICROS_PER_SECOND;
    let max = (days_from_civil(10_000, 1, 1) * SECONDS_PER_DAY - PG_EPOCH_UNIX_SECONDS)
        * MICROS_PER_SECOND;
    if pg < min || pg >= max {
        return Err(err());
    }
    Ok(pg)
}

/// `YYYY`, `MM`, `dd`, `HH`, `mm`, `ss` of a Unix time in milliseconds (UTC).
pub(crate) fn utc_parts(unix_ms: i64) -> (i64, u32, u32, u32, u32, u32) {
    let seconds = unix_ms.div_euclid(1000);
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let rem = seconds.rem_euclid(SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000;

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2000-01-01"), Ok(0));
        assert_eq!(parse_date("2000-03-01"), Ok(60));
        assert_eq!(parse_date(" 1999-12-31 "), Ok(-1));
        assert_eq!(parse_date("2024-02-29T10:00:00Z"), Ok(8825));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "20240101",
            "x",
            "2024-01-01 junk",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        let t = parse_timestamp("2000-01-02 00:00:01").unwrap();
        assert_eq!(t.wall_micros, DAY + 1_000_000);
        assert_eq!(t.offset_seconds, None);
        let t = parse_timestamp("2000-01-01T00:00:00.5Z").unwrap();
        assert_eq!((t.wall_micros, t.offset_seconds), (500_000, Some(0)));
        let t = parse_timestamp("2000-01-01T02:00:00+02:00").unwrap();
        assert_eq!(t.utc_micros(), 0);
        assert_eq!(t.wall_micros, 2 * 3600 * 1_000_000);
        let t = parse_timestamp("2000-01-01 00:00:00-0130").unwrap();
        assert_eq!(t.utc_micros(), 90 * 60 * 1_000_000);
        assert_eq!(
            parse_timestamp("2000-01-01 00:00 UTC")
                .unwrap()
                .utc_micros(),
            0
        );
        assert_eq!(parse_timestamp("2000-01-01").unwrap().wall_micros, 0);
        // Rounded to the microsecond, half up.
        assert_eq!(
            parse_timestamp("2000-01-01 00:00:00.0000005")
                .unwrap()
                .wall_micros,
            1
        );
        assert_eq!(
            parse_timestamp("2000-01-01 00:00:00.123456789")
                .unwrap()
                .wall_micros,
            123_457
        );
        for bad in [
            "2000-01-01 24:00:00",
            "2000-01-01 10:60",
            "2000-01-01T",
            "2000-01-01 10",
            "2000-01-01 10:00:00.",
            "2000-01-01 10:00:00 +25",
            "2000-01-01 10:00:00 junk",
            "1700000000",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn epochs() {
        let pg_epoch = 946_684_800i64;
        assert_eq!(parse_epoch(&pg_epoch.to_string(), false), Ok(0));
        assert_eq!(parse_epoch("946684800.25", false), Ok(250_000));
        assert_eq!(parse_epoch("946684800123", true), Ok(123_000));
        assert_eq!(parse_epoch("9.466848e8", false), Ok(0));
        assert_eq!(parse_epoch("0", false), Ok(-pg_epoch * 1_000_000));
        assert!(parse_epoch("abc", false).is_err());
        assert!(parse_epoch("1e30", false).is_err());
        assert!(parse_epoch("-1e13", false).is_err());
    }

    #[test]
    fn parts() {
        // 2024-05-01T10:20:30.999Z
        assert_eq!(utc_parts(1_714_558_830_999), (2024, 5, 1, 10, 20, 30));
    }
}
