//! Wire conversions: decimal strings and protobuf timestamps.
//!
//! Money, prices and volumes travel as decimal strings so no value ever
//! passes through binary floating point. Parsing is strict: plain decimal
//! notation only (no exponent, NaN, infinity or surrounding whitespace), at
//! most 28 significant digits, so what a client sends is exactly what the
//! ledger stores.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use rust_decimal::Decimal;

/// Longest decimal string accepted; longer input is rejected before parsing.
pub const MAX_DECIMAL_LEN: usize = 64;

/// Most significant digits a decimal may carry (the precision of `Decimal`).
pub const MAX_SIGNIFICANT_DIGITS: usize = 28;

/// Why a wire value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The string was empty.
    #[error("is empty")]
    Empty,
    /// The string exceeded [`MAX_DECIMAL_LEN`].
    #[error("is longer than {MAX_DECIMAL_LEN} characters")]
    TooLong,
    /// The string is not plain decimal notation.
    #[error("is not a plain decimal number, got {0:?}")]
    Malformed(String),
    /// The number has more than [`MAX_SIGNIFICANT_DIGITS`] significant digits.
    #[error("has more than {MAX_SIGNIFICANT_DIGITS} significant digits, got {0:?}")]
    TooPrecise(String),
    /// The timestamp is outside what the ledger can represent.
    #[error("is not a valid timestamp (seconds {seconds}, nanos {nanos})")]
    BadTimestamp {
        /// Seconds since the Unix epoch as sent.
        seconds: i64,
        /// Nanoseconds as sent.
        nanos: i32,
    },
}

/// Parses a decimal string strictly: optional leading `-`, digits, optional
/// `.` followed by digits. Rejects exponents, `NaN`, `inf`, `+`, whitespace
/// and anything longer than [`MAX_DECIMAL_LEN`] or more precise than
/// [`MAX_SIGNIFICANT_DIGITS`].
pub fn parse_decimal(s: &str) -> Result<Decimal, ConvertError> {
    if s.is_empty() {
        return Err(ConvertError::Empty);
    }
    if s.len() > MAX_DECIMAL_LEN {
        return Err(ConvertError::TooLong);
    }
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int_part) || frac_part.is_some_and(|f| !digits_ok(f)) {
        return Err(ConvertError::Malformed(s.to_owned()));
    }
    let all_digits = int_part.bytes().chain(frac_part.unwrap_or("").bytes());
    let significant = all_digits.skip_while(|b| *b == b'0').count();
    if significant > MAX_SIGNIFICANT_DIGITS {
        return Err(ConvertError::TooPrecise(s.to_owned()));
    }
    Decimal::from_str_exact(s).map_err(|_| ConvertError::TooPrecise(s.to_owned()))
}

/// Formats a decimal for the wire, dropping trailing fractional zeros so a
/// value reads the same however it was computed.
pub fn format_decimal(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Formats an optional decimal; `None` becomes the empty string.
pub fn format_opt_decimal(d: Option<Decimal>) -> String {
    d.map(format_decimal).unwrap_or_default()
}

/// Converts a protobuf timestamp to UTC time.
pub fn timestamp_to_utc(ts: &Timestamp) -> Result<DateTime<Utc>, ConvertError> {
    let bad = || ConvertError::BadTimestamp {
        seconds: ts.seconds,
        nanos: ts.nanos,
    };
    let nanos = u32::try_from(ts.nanos).map_err(|_| bad())?;
    if nanos >= 1_000_000_000 {
        return Err(bad());
    }
    DateTime::from_timestamp(ts.seconds, nanos).ok_or_else(bad)
}

/// Converts UTC time to a protobuf timestamp.
pub fn utc_to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        // subsec_nanos is always below 10^9, so it fits an i32.
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_decimals() {
        for s in ["0", "-1", "1.5", "0.000001", "123456789.123456789", "-0.5"] {
            let d = parse_decimal(s).unwrap();
            assert_eq!(d, Decimal::from_str_exact(s).unwrap(), "{s}");
        }
    }

    #[test]
    fn rejects_junk() {
        for s in [
            "", " 1", "1 ", "+1", "1e5", "1E5", "NaN", "inf", "-inf", "1.", ".5", "--1", "0x10",
            "1,5", "1.2.3", "-",
        ] {
            assert!(parse_decimal(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn rejects_too_many_digits() {
        assert!(parse_decimal("1234567890123456789012345678").is_ok());
        assert!(matches!(
            parse_decimal("12345678901234567890123456789"),
            Err(ConvertError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_decimal(&"1".repeat(70)),
            Err(ConvertError::TooLong)
        ));
    }

    #[test]
    fn formats_without_trailing_zeros() {
        assert_eq!(
            format_decimal(Decimal::from_str_exact("1.2300").unwrap()),
            "1.23"
        );
        assert_eq!(format_opt_decimal(None), "");
    }

    #[test]
    fn timestamps_round_trip() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap();
        assert_eq!(timestamp_to_utc(&utc_to_timestamp(t)).unwrap(), t);
        assert!(
            timestamp_to_utc(&Timestamp {
                seconds: 0,
                nanos: -1
            })
            .is_err()
        );
        assert!(
            timestamp_to_utc(&Timestamp {
                seconds: i64::MAX,
                nanos: 0
            })
            .is_err()
        );
    }
}
