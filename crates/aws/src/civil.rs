//! Calendar dates from epoch milliseconds and back (UTC), for the dates AWS prints in messages
//! and SigV4's `X-Amz-Date`. Howard Hinnant's days-from-civil algorithms.

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    /// 0 = Thursday (1970-01-01 was a Thursday).
    pub weekday_from_thursday: i64,
}

pub fn from_ms(ms: i64) -> Civil {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: tod / 3600,
        minute: tod % 3600 / 60,
        second: tod % 60,
        weekday_from_thursday: days.rem_euclid(7),
    }
}

/// ISO 8601 in UTC with milliseconds, as AWS writes timestamps in XML and event records:
/// `2019-11-14T00:38:06.021Z`.
pub fn iso8601_ms(ms: i64) -> String {
    let c = from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        ms.rem_euclid(1000)
    )
}

pub fn to_ms(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + hour * 3600 + minute * 60 + second) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [
            0i64,
            1_421_889_722_000,
            1_709_164_800_000,
            4_102_444_799_000,
        ] {
            let c = from_ms(ms);
            assert_eq!(
                to_ms(c.year, c.month, c.day, c.hour, c.minute, c.second),
                ms
            );
        }
        let c = from_ms(1_709_164_800_000);
        assert_eq!((c.year, c.month, c.day), (2024, 2, 29));
    }
}
