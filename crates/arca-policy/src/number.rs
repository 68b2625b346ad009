//! Exact decimal numbers for the `Numeric...` operators.
//!
//! Values are `-?digits(.digits)?`; no exponent, no `+`, no leading or trailing `.`.
//! Comparison is exact (no floating point), so `9007199254740993` and `9007199254740992`
//! differ and `1.50` equals `1.5`.

use std::cmp::Ordering;

/// Most digits in a number, integer and fraction together.
const MAX_DIGITS: usize = 40;

/// A normalised decimal: no leading zeros in `int`, no trailing zeros in `frac`, and zero
/// is never negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    int: String,
    frac: String,
}

impl Decimal {
    /// Parses a decimal; `None` for anything else.
    pub(crate) fn parse(s: &str) -> Option<Decimal> {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let all_digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
        if int.is_empty()
            || !all_digits(int)
            || !all_digits(frac)
            || (body.contains('.') && frac.is_empty())
            || int.len() + frac.len() > MAX_DIGITS
        {
            return None;
        }
        let int = int.trim_start_matches('0').to_owned();
        let frac = frac.trim_end_matches('0').to_owned();
        let negative = negative && !(int.is_empty() && frac.is_empty());
        Some(Decimal {
            negative,
            int,
            frac,
        })
    }

    /// Compares magnitudes, ignoring sign.
    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(&other.int))
            .then_with(|| self.frac.cmp(&other.frac))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap_or_else(|| panic!("{s:?} should parse"))
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(d("007"), d("7"));
        assert_eq!(d("1.50"), d("1.5"));
        assert_eq!(d("-0"), d("0"));
        assert_eq!(d("-0.000"), d("0"));
        assert_eq!(d("0.0"), d("0"));
        for bad in [
            "", "-", ".5", "5.", "1e5", "+1", "1.2.3", "0x10", " 1", "1 ", "١",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad:?}");
        }
        assert!(Decimal::parse(&"9".repeat(MAX_DIGITS)).is_some());
        assert!(Decimal::parse(&"9".repeat(MAX_DIGITS + 1)).is_none());
    }

    #[test]
    fn orders_exactly() {
        let ascending = [
            "-100", "-10.5", "-10.25", "-10", "-1", "-0.5", "0", "0.25", "0.5", "1", "2", "10",
            "10.01", "10.1", "100",
        ];
        for pair in ascending.windows(2) {
            assert!(d(pair[0]) < d(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(d(pair[1]) > d(pair[0]), "{} > {}", pair[1], pair[0]);
        }
        assert!(d("9007199254740993") > d("9007199254740992"));
    }
}
