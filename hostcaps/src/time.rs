//! Wall-clock times as RFC 3339 UTC text, for the results file's `created`
//! and the runtime's state and logs. Not a host capability, but the lowest
//! crate both the runtime and the bench harness depend on.

use std::time::{SystemTime, UNIX_EPOCH};

/// How much of the second to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fraction {
    /// Whole seconds: `2026-01-31T12:00:00Z`.
    Seconds,
    /// Nanoseconds, always nine digits: `2026-01-31T12:00:00.123456789Z`.
    Nanos,
}

/// `t` as RFC 3339 UTC; times before the epoch print as the epoch.
pub fn rfc3339(t: SystemTime, fraction: Fraction) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let frac = match fraction {
        Fraction::Seconds => String::new(),
        Fraction::Nanos => format!(".{:09}", d.subsec_nanos()),
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month and day of the proleptic Gregorian calendar for `days` since
/// 1970-01-01: counted in 400-year eras (146 097 days each) of years that
/// start on 1 March, so the leap day is the last day of its year.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn the_epoch_in_both_forms() {
        assert_eq!(
            rfc3339(UNIX_EPOCH, Fraction::Seconds),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH, Fraction::Nanos),
            "1970-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn leap_days_and_the_year_2000() {
        // 2000 is a leap year (divisible by 400): 29 February exists.
        assert_eq!(
            rfc3339(at(951_782_400, 0), Fraction::Seconds),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(at(951_868_800, 0), Fraction::Seconds),
            "2000-03-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(at(946_684_799, 0), Fraction::Seconds),
            "1999-12-31T23:59:59Z"
        );
        assert_eq!(
            rfc3339(at(946_684_800, 0), Fraction::Seconds),
            "2000-01-01T00:00:00Z"
        );
        // 2024's leap day, and 2100 (not a leap year: 28 February, then 1 March).
        assert_eq!(
            rfc3339(at(1_709_164_800, 0), Fraction::Seconds),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(at(4_107_542_399, 0), Fraction::Seconds),
            "2100-02-28T23:59:59Z"
        );
        assert_eq!(
            rfc3339(at(4_107_542_400, 0), Fraction::Seconds),
            "2100-03-01T00:00:00Z"
        );
    }

    #[test]
    fn nanoseconds_are_nine_digits_and_seconds_drop_them() {
        let t = at(1_700_000_000, 5);
        assert_eq!(
            rfc3339(t, Fraction::Nanos),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(rfc3339(t, Fraction::Seconds), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339(at(1_700_000_000, 999_999_999), Fraction::Nanos),
            "2023-11-14T22:13:20.999999999Z"
        );
    }

    #[test]
    fn before_the_epoch_is_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(rfc3339(t, Fraction::Seconds), "1970-01-01T00:00:00Z");
    }
}
