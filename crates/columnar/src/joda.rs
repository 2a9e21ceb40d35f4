//! Joda-Time `DateTimeFormat` patterns, as the Hive JSON SerDe's `TimestampFormats` give
//! them, compiled once and matched against values.
//!
//! Supported letters: `y`/`Y` year (`yy` is a two-digit year, pivot 2000: 00-49 → 20xx,
//! 50-99 → 19xx), `M` month (`MMM`+ by name), `d` day of month, `D` day of year, `H` 0-23,
//! `k` 1-24, `h` 1-12 and `K` 0-11 (with `a` AM/PM), `m`, `s`, `S` fraction of second (up to
//! 9 digits), `E` day name (read, not checked), `Z`/`ZZ` offset (`Z`, `+01`, `+0100`,
//! `+01:00`), `ZZZ` zone id (only `UTC`, `GMT`, `Z`, `Etc/UTC`, `Etc/GMT`; sluice has no time
//! zone database), `'text'` literals (`''` is a quote). As in Joda, literals and names match
//! case-insensitively, numbers take any count of digits unless the next field is a number too
//! (then exactly the pattern's count, as in `yyyyMMdd`), and the whole value must match.
//! Without an offset the value is UTC. Not supported (refused at compile): `G` era, `C`
//! century, `x` week year, `w` week, `e` day-of-week number, `z` zone name (Joda cannot parse
//! it either).

use crate::timestamp::civil_micros;

#[derive(Debug, Clone)]
pub(crate) struct JodaPattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    TwoDigitYear,
    Month,
    Day,
    DayOfYear,
    Hour24,
    Hour24From1,
    Hour12,
    Hour12From0,
    Minute,
    Second,
    Fraction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Number {
        field: Field,
        min: usize,
        max: usize,
    },
    MonthName,
    DayName,
    HalfDay,
    Offset,
    ZoneId,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const UTC_ZONE_IDS: [&str; 5] = ["utc", "gmt", "z", "etc/utc", "etc/gmt"];

impl JodaPattern {
    pub(crate) fn compile(source: &str) -> Result<JodaPattern, String> {
        let chars: Vec<char> = source.chars().collect();
        let mut tokens: Vec<Token> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let mut literal = String::new();
                i += 1;
                if chars.get(i) == Some(&'\'') {
                    push_literal(&mut tokens, "'");
                    i += 1;
                    continue;
                }
                loop {
                    match chars.get(i) {
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            literal.push(*ch);
                            i += 1;
                        }
                        None => return Err("unclosed quote".to_string()),
                    }
                }
                push_literal(&mut tokens, &literal);
                continue;
            }
            if !c.is_ascii_alphabetic() {
                push_literal(&mut tokens, &c.to_string());
                i += 1;
                continue;
            }
            let mut count = 1;
            while chars.get(i + count) == Some(&c) {
                count += 1;
            }
            i += count;
            let number = |field| Token::Number {
                field,
                min: count,
                max: count,
            };
            tokens.push(match c {
                'y' | 'Y' if count == 2 => number(Field::TwoDigitYear),
                'y' | 'Y' => number(Field::Year),
                'M' if count >= 3 => Token::MonthName,
                'M' => number(Field::Month),
                'd' => number(Field::Day),
                'D' => number(Field::DayOfYear),
                'H' => number(Field::Hour24),
                'k' => number(Field::Hour24From1),
                'h' => number(Field::Hour12),
                'K' => number(Field::Hour12From0),
                'm' => number(Field::Minute),
                's' => number(Field::Second),
                'S' => number(Field::Fraction),
                'E' => Token::DayName,
                'a' => Token::HalfDay,
                'Z' if count <= 2 => Token::Offset,
                'Z' => Token::ZoneId,
                'z' => {
                    return Err("zone names (`z`) cannot be parsed; use `Z` or `ZZ` for an \
                                offset"
                        .to_string());
                }
                'G' | 'C' | 'x' | 'w' | 'e' => {
                    return Err(format!("pattern letter `{c}` is not supported by sluice"));
                }
                _ => return Err(format!("`{c}` is not a Joda-Time pattern letter")),
            });
        }
        // A number followed by a number takes exactly its pattern's width (`yyyyMMdd`); any
        // other takes 1 up to as many digits as its field can hold.
        let count = tokens.len();
        for index in 0..count {
            let next_is_number = matches!(tokens.get(index + 1), Some(Token::Number { .. }));
            if let Token::Number { field, min, max } = &mut tokens[index] {
                if !next_is_number {
                    *min = 1;
                    *max = match field {
                        Field::Year | Field::TwoDigitYear | Field::Fraction => 9,
                        Field::DayOfYear => 3,
                        _ => (*max).max(2),
                    };
                }
            }
        }
        if tokens.is_empty() {
            return Err("the pattern is empty".to_string());
        }
        Ok(JodaPattern {
            source: source.to_string(),
            tokens,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Microseconds since the epoch, or `None` if `text` does not match.
    pub(crate) fn parse(&self, text: &str) -> Option<i64> {
        let bytes = text.as_bytes();
        let mut at = 0usize;
        let mut year: i64 = 1970;
        let (mut month, mut day, mut day_of_year) = (1u32, 1u32, None::<u32>);
        let (mut hour, mut hour12, mut pm) = (0u32, None::<u32>, false);
        let (mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32);
        let mut offset_seconds: i64 = 0;
        for token in &self.tokens {
            match token {
                Token::Literal(literal) => {
                    let end = at.checked_add(literal.len())?;
                    let candidate = text.get(at..end)?;
                    if !candidate.eq_ignore_ascii_case(literal) {
                        return None;
                    }
                    at = end;
                }
                Token::Number { field, min, max } => {
                    let start = at;
                    while at < bytes.len() && at - start < *max && bytes[at].is_ascii_digit() {
                        at += 1;
                    }
                    let digits = &text[start..at];
                    if digits.len() < *min {
                        return None;
                    }
                    let value: u64 = digits.parse().ok()?;
                    let small = u32::try_from(value).ok();
                    match field {
                        Field::Year => year = i64::try_from(value).ok()?,
                        Field::TwoDigitYear if digits.len() == 2 => {
                            year =
                                if value < 50 { 2000 } else { 1900 } + i64::try_from(value).ok()?
                        }
                        Field::TwoDigitYear => year = i64::try_from(value).ok()?,
                        Field::Month => month = small?,
                        Field::Day => day = small?,
                        Field::DayOfYear => day_of_year = Some(small?),
                        Field::Hour24 => hour = small?,
                        Field::Hour24From1 => hour = small? % 24,
                        Field::Hour12 | Field::Hour12From0 => {
                            let h = small?;
                            if (*field == Field::Hour12 && !(1..=12).contains(&h))
                                || (*field == Field::Hour12From0 && h > 11)
                            {
                                return None;
                            }
                            hour12 = Some(h % 12);
                        }
                        Field::Minute => minute = small?,
                        Field::Second => second = small?,
                        Field::Fraction => {
                            // Digits are tenths, hundredths...: scale to nanoseconds.
                            let shift = 9u32.checked_sub(u32::try_from(digits.len()).ok()?)?;
                            let scale = 10u32.checked_pow(shift)?;
                            nanos = small?.checked_mul(scale)?;
                        }
                    }
                }
                Token::MonthName => {
                    let (index, len) = match_name(&text[at..], &MONTHS)?;
                    month = u32::try_from(index).ok()? + 1;
                    at += len;
                }
                Token::DayName => {
                    let (_, len) = match_name(&text[at..], &DAYS)?;
                    at += len;
                }
                Token::HalfDay => {
                    let half = text.get(at..at + 2)?;
                    if half.eq_ignore_ascii_case("am") {
                        pm = false;
                    } else if half.eq_ignore_ascii_case("pm") {
                        pm = true;
                    } else {
                        return None;
                    }
                    at += 2;
                }
                Token::Offset => {
                    let (seconds, len) = parse_offset(&text[at..])?;
                    offset_seconds = seconds;
                    at += len;
                }
                Token::ZoneId => {
                    let rest = text[at..].to_ascii_lowercase();
                    let zone = UTC_ZONE_IDS
                        .iter()
                        .filter(|z| rest.starts_with(**z))
                        .max_by_key(|z| z.len())?;
                    at += zone.len();
                }
            }
        }
        if at != bytes.len() {
            return None;
        }
        if let Some(h) = hour12 {
            hour = h + if pm { 12 } else { 0 };
        }
        let year = i32::try_from(year).ok()?;
        let date = match day_of_year {
            Some(ordinal) => chrono::NaiveDate::from_yo_opt(year, ordinal)?,
            None => chrono::NaiveDate::from_ymd_opt(year, month, day)?,
        };
        civil_micros(date, hour, minute, second, nanos, offset_seconds)
    }
}

fn push_literal(tokens: &mut Vec<Token>, text: &str) {
    if let Some(Token::Literal(previous)) = tokens.last_mut() {
        previous.push_str(text);
    } else {
        tokens.push(Token::Literal(text.to_string()));
    }
}

/// The name (full, else its first three letters) at the start of `text`, case-insensitively:
/// its index and the bytes it took.
fn match_name(text: &str, names: &[&str]) -> Option<(usize, usize)> {
    for (index, name) in names.iter().enumerate() {
        if text
            .get(..name.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
        {
            return Some((index, name.len()));
        }
    }
    for (index, name) in names.iter().enumerate() {
        if text
            .get(..3)
            .is_some_and(|t| t.eq_ignore_ascii_case(&name[..3]))
        {
            return Some((index, 3));
        }
    }
    None
}

/// `Z`, `+HH`, `+HHMM` or `+HH:MM` (or `-`): seconds east of UTC and the bytes it took.
pub(crate) fn parse_offset(text: &str) -> Option<(i64, usize)> {
    let bytes = text.as_bytes();
    match bytes.first()? {
        b'Z' | b'z' => return Some((0, 1)),
        b'+' | b'-' => {}
        _ => return None,
    }
    let sign = if bytes[0] == b'-' { -1 } else { 1 };
    let two = |at: usize| -> Option<i64> {
        let digits = text.get(at..at + 2)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let hours = two(1)?;
    let mut len = 3;
    let mut minutes = 0;
    if bytes.get(3) == Some(&b':') {
        minutes = two(4)?;
        len = 6;
    } else if let Some(m) = two(3) {
        minutes = m;
        len = 5;
    }
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((sign * (hours * 3600 + minutes * 60), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(pattern: &str, text: &str) -> Option<i64> {
        JodaPattern::compile(pattern).unwrap().parse(text)
    }

    const T: i64 = 1_518_016_381_000_000; // 2018-02-07T15:13:01Z

    #[test]
    fn common_patterns() {
        assert_eq!(
            micros("yyyy-MM-dd'T'HH:mm:ss", "2018-02-07T15:13:01"),
            Some(T)
        );
        assert_eq!(
            micros("yyyy-MM-dd'T'HH:mm:ss", "2018-02-07t15:13:01"),
            Some(T)
        );
        assert_eq!(
            micros("yyyy-MM-dd HH:mm:ss.SSS", "2018-02-07 15:13:01.250"),
            Some(T + 250_000)
        );
        assert_eq!(
            micros("yyyy-MM-dd HH:mm:ss.SSS", "2018-02-07 15:13:01.5"),
            Some(T + 500_000)
        );
        assert_eq!(
            micros("yyyy-MM-dd HH:mm:ss.S", "2018-02-07 15:13:01.123456789"),
            Some(T + 123_456)
        );
        assert_eq!(micros("yyyyMMddHHmmss", "20180207151301"), Some(T));
        assert_eq!(
            micros("dd/MM/yy h:mm a", "07/02/18 3:13 PM"),
            Some(T - 1_000_000)
        );
        assert_eq!(
            micros("dd/MM/yy h:mm a", "07/02/18 12:13 am"),
            Some(T - 15 * 3_600_000_000 - 1_000_000)
        );
        assert_eq!(
            micros(
                "EEE, d MMM yyyy HH:mm:ss Z",
                "Wed, 7 Feb 2018 16:13:01 +0100"
            ),
            Some(T)
        );
        assert_eq!(
            micros(
                "EEEE d MMMM yyyy HH:mm:ssZZ",
                "Wednesday 7 february 2018 10:13:01-05:00"
            ),
            Some(T)
        );
        assert_eq!(
            micros("yyyy-MM-dd'T'HH:mm:ssZ", "2018-02-07T15:13:01Z"),
            Some(T)
        );
        assert_eq!(
            micros("yyyy-MM-dd HH:mm:ss ZZZ", "2018-02-07 15:13:01 UTC"),
            Some(T)
        );
        assert_eq!(micros("yyyy.D HH:mm:ss", "2018.38 15:13:01"), Some(T));
        assert_eq!(
            micros("yyyy-MM-dd kk:mm:ss", "2018-02-07 24:00:00"),
            Some(T - 15 * 3_600_000_000 - 13 * 60_000_000 - 1_000_000)
        );
        assert_eq!(micros("''yyyy''", "'1970'"), Some(0));
        assert_eq!(micros("yy", "69"), Some(-31_536_000_000_000));
    }

    #[test]
    fn mismatches() {
        assert_eq!(micros("yyyy-MM-dd", "2018-02-07 extra"), None);
        assert_eq!(micros("yyyy-MM-dd", "2018-02-30"), None);
        assert_eq!(micros("yyyy-MM-dd HH:mm", "2018-02-07 25:00"), None);
        assert_eq!(micros("yyyy-MM-dd", "2018/02/07"), None);
        assert_eq!(micros("h a", "13 PM"), None);
        assert_eq!(micros("yyyy ZZZ", "2018 America/New_York"), None);
        assert_eq!(micros("MMM", "Fbr"), None);
    }

    #[test]
    fn compile_errors_name_the_letter() {
        assert!(JodaPattern::compile("yyyy-ww").unwrap_err().contains("`w`"));
        assert!(JodaPattern::compile("HH z")
            .unwrap_err()
            .contains("zone names"));
        assert!(JodaPattern::compile("yyyy q")
            .unwrap_err()
            .contains("`q` is not"));
        assert!(JodaPattern::compile("'open")
            .unwrap_err()
            .contains("unclosed"));
        assert!(JodaPattern::compile("").is_err());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+01:30"), Some((5400, 6)));
        assert_eq!(parse_offset("-0130"), Some((-5400, 5)));
        assert_eq!(parse_offset("+01"), Some((3600, 3)));
        assert_eq!(parse_offset("Z"), Some((0, 1)));
        assert_eq!(parse_offset("+24:00"), None);
        assert_eq!(parse_offset("x"), None);
    }
}
