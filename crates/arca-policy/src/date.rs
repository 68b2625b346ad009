//! Dates for the `Date...` operators, without a date library.
//!
//! Accepted forms:
//! - unix epoch seconds: `1767322800` (up to 12 digits);
//! - a date: `2026-01-02` (midnight UTC);
//! - a date and time with a zone (the W3C profile of ISO 8601 / RFC 3339):
//!   `2026-01-02T03:04:05Z`, `2026-01-02T03:04Z`, `2026-01-02T03:04:05.123+02:00`.
//!
//! A time without a zone is rejected rather than guessed. Years are 0000..=9999; leap
//! seconds (`:60`) are rejected.

const SECS_PER_DAY: i64 = 86_400;
/// Most fraction digits read (nanoseconds).
const MAX_FRACTION_DIGITS: usize = 9;
/// Most digits of an epoch-seconds value (year 9999 needs 12).
const MAX_EPOCH_DIGITS: usize = 12;

/// An instant: seconds since 1970-01-01T00:00:00Z and nanoseconds within that second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// Parses one of the accepted forms; `None` for anything else.
    pub(crate) fn parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if !b.is_empty() && b.len() <= MAX_EPOCH_DIGITS && b.iter().all(u8::is_ascii_digit) {
            let secs = s.parse().ok()?;
            return Some(Timestamp { secs, nanos: 0 });
        }
        let days = date(b)?;
        let rest = b.get(10..)?;
        if rest.is_empty() {
            return Some(Timestamp {
                secs: days * SECS_PER_DAY,
                nanos: 0,
            });
        }
        if !matches!(rest.first(), Some(b'T' | b't')) {
            return None;
        }
        let (secs_of_day, nanos, rest) = time(rest.get(1..)?)?;
        let offset = zone(rest)?;
        Some(Timestamp {
            secs: days * SECS_PER_DAY + secs_of_day - offset,
            nanos,
        })
    }
}

/// `YYYY-MM-DD` at the start of `b`, as days since 1970-01-01.
fn date(b: &[u8]) -> Option<i64> {
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `hh:mm[:ss[.fraction]]`: seconds of the day, nanoseconds, and the unread rest.
fn time(b: &[u8]) -> Option<(i64, u32, &[u8])> {
    if b.get(2) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (digits(b, 0, 2)?, digits(b, 3, 2)?);
    let mut rest = b.get(5..)?;
    let mut second = 0;
    let mut nanos = 0;
    if rest.first() == Some(&b':') {
        second = digits(rest, 1, 2)?;
        rest = rest.get(3..)?;
        if rest.first() == Some(&b'.') {
            let n = rest
                .iter()
                .skip(1)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 || n > MAX_FRACTION_DIGITS {
                return None;
            }
            let frac = digits(rest, 1, n)?;
            nanos = u32::try_from(frac * 10i64.pow((MAX_FRACTION_DIGITS - n) as u32)).ok()?;
            rest = rest.get(1 + n..)?;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some((hour * 3600 + minute * 60 + second, nanos, rest))
}

/// `Z` or `±hh:mm` as seconds east of UTC; it must be all of `b`.
fn zone(b: &[u8]) -> Option<i64> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(b, 1, 2)?, digits(b, 4, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -offset } else { offset })
        }
        _ => None,
    }
}

/// Reads `len` ASCII digits starting at `start`.
fn digits(b: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = b.get(start..start.checked_add(len)?)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<i64> {
        Timestamp::parse(s).map(|t| t.secs)
    }

    #[test]
    fn epoch_and_dates() {
        assert_eq!(secs("0"), Some(0));
        assert_eq!(secs("1767322800"), Some(1_767_322_800));
        assert_eq!(secs("1970-01-01"), Some(0));
        assert_eq!(secs("2026-01-02"), Some(1_767_312_000));
        assert_eq!(secs("2000-02-29"), Some(951_782_400));
        assert_eq!(secs("2026-01-02T03:04:05Z"), Some(1_767_323_045));
        assert_eq!(secs("2026-01-02t03:04:05z"), Some(1_767_323_045));
        assert_eq!(secs("2026-01-02T03:04Z"), Some(1_767_323_040));
    }

    #[test]
    fn offsets_and_fractions() {
        let utc = Timestamp::parse("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(Timestamp::parse("2026-01-02T05:04:05+02:00"), Some(utc));
        assert_eq!(Timestamp::parse("2026-01-01T21:34:05-05:30"), Some(utc));
        let t = Timestamp::parse("2026-01-02T03:04:05.5Z").unwrap();
        assert_eq!(t.nanos, 500_000_000);
        assert!(t > utc);
        let t = Timestamp::parse("2026-01-02T03:04:05.000000001Z").unwrap();
        assert_eq!(t.nanos, 1);
        // An epoch value and the same instant as a date compare equal.
        assert_eq!(Timestamp::parse("1767323045"), Some(utc));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-01",
            "2026-1-02",
            "2026-13-01",
            "2026-02-29",
            "2026-04-31",
            "2026-01-00",
            "2026-01-02T",
            "2026-01-02T03:04:05",
            "2026-01-02T24:00:00Z",
            "2026-01-02T03:60:00Z",
            "2026-01-02T03:04:60Z",
            "2026-01-02T03:04:05.Z",
            "2026-01-02T03:04:05.1234567890Z",
            "2026-01-02T03:04:05+2:00",
            "2026-01-02T03:04:05+24:00",
            "2026-01-02T03:04:05+02:00x",
            "2026-01-02 03:04:05Z",
            "2026-01-02T03:04:05ZZ",
            "-1",
            "1234567890123",
            "now",
            "２０２６-01-02",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?}");
        }
    }
}
