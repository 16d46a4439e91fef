//! Field-level validation shared by every entry point.
//!
//! Each check names the field it guards so a caller can fix its request
//! without guessing; all limits are constants here so they are documented
//! in one place.

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use healgrid_proto::convert::{self, ConvertError};
use prost_types::Timestamp;
use rust_decimal::Decimal;

use super::LedgerError;

/// Longest id or idempotency key (`bot_id`, `open_key`, `event_key`, txids).
pub const MAX_ID_LEN: usize = 128;
/// Longest free-text field (reasons, actions, operator names).
pub const MAX_TEXT_LEN: usize = 512;
/// How far in the future a timestamp may lie, to absorb clock skew only.
pub const MAX_FUTURE_SKEW: Duration = Duration::hours(24);
/// Most rows a single page may return.
pub const MAX_PAGE: u32 = 1000;

/// Times before this (2009-01-01, older than any crypto market) are junk.
pub fn earliest_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2009, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A required identifier: non-empty, at most [`MAX_ID_LEN`] characters, no
/// control characters or surrounding whitespace.
pub fn id(field: &'static str, value: &str) -> Result<(), LedgerError> {
    if value.is_empty() {
        return Err(LedgerError::invalid(field, "is required"));
    }
    if value.chars().count() > MAX_ID_LEN {
        return Err(LedgerError::invalid(
            field,
            format!("is longer than {MAX_ID_LEN} characters"),
        ));
    }
    if value.trim() != value {
        return Err(LedgerError::invalid(field, "has surrounding whitespace"));
    }
    no_control_chars(field, value)
}

/// An optional identifier (e.g. `exit_txid`): empty, or a valid [`id`].
pub fn opt_id(field: &'static str, value: &str) -> Result<(), LedgerError> {
    if value.is_empty() {
        Ok(())
    } else {
        id(field, value)
    }
}

/// Free text: at most [`MAX_TEXT_LEN`] characters, no control characters.
pub fn text(field: &'static str, value: &str) -> Result<(), LedgerError> {
    if value.chars().count() > MAX_TEXT_LEN {
        return Err(LedgerError::invalid(
            field,
            format!("is longer than {MAX_TEXT_LEN} characters"),
        ));
    }
    no_control_chars(field, value)
}

fn no_control_chars(field: &'static str, value: &str) -> Result<(), LedgerError> {
    if value.chars().any(char::is_control) {
        return Err(LedgerError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Parses a required decimal string.
pub fn decimal(field: &'static str, value: &str) -> Result<Decimal, LedgerError> {
    convert::parse_decimal(value).map_err(|e| match e {
        ConvertError::Empty => LedgerError::invalid(field, "is required (a decimal string)"),
        other => LedgerError::invalid(field, format!("must be a decimal string: {other}")),
    })
}

/// Parses an optional decimal string; empty means absent.
pub fn opt_decimal(field: &'static str, value: &str) -> Result<Option<Decimal>, LedgerError> {
    if value.is_empty() {
        Ok(None)
    } else {
        decimal(field, value).map(Some)
    }
}

/// Requires `value >= 0`.
pub fn non_negative(field: &'static str, value: Decimal) -> Result<(), LedgerError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(LedgerError::invalid(
            field,
            format!("must be a non-negative decimal, got \"{value}\""),
        ));
    }
    Ok(())
}

/// Requires `value > 0`.
pub fn positive(field: &'static str, value: Decimal) -> Result<(), LedgerError> {
    if value <= Decimal::ZERO {
        return Err(LedgerError::invalid(
            field,
            format!("must be a positive decimal, got \"{value}\""),
        ));
    }
    Ok(())
}

/// Converts a required wire timestamp.
pub fn timestamp(
    field: &'static str,
    value: Option<&Timestamp>,
) -> Result<DateTime<Utc>, LedgerError> {
    let ts = value.ok_or_else(|| LedgerError::invalid(field, "is required"))?;
    convert::timestamp_to_utc(ts).map_err(|e| LedgerError::invalid(field, e.to_string()))
}

/// Checks a time is plausible (not before 2009, at most [`MAX_FUTURE_SKEW`]
/// ahead of `now`) and truncates it to microseconds, the precision both
/// storage backends keep, so a stored value reads back exactly.
pub fn time(
    field: &'static str,
    value: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, LedgerError> {
    if value < earliest_time() {
        return Err(LedgerError::invalid(
            field,
            format!("is before 2009, got {value}"),
        ));
    }
    if value > now + MAX_FUTURE_SKEW {
        return Err(LedgerError::invalid(
            field,
            format!("is more than 24 hours in the future, got {value}"),
        ));
    }
    value
        .duration_trunc(Duration::microseconds(1))
        .map_err(|e| LedgerError::invalid(field, e.to_string()))
}

/// Checks a time that may lie far ahead (e.g. a hold deadline) but not
/// before 2009, and truncates it to microseconds.
pub fn time_any(field: &'static str, value: DateTime<Utc>) -> Result<DateTime<Utc>, LedgerError> {
    if value < earliest_time() {
        return Err(LedgerError::invalid(
            field,
            format!("is before 2009, got {value}"),
        ));
    }
    value
        .duration_trunc(Duration::microseconds(1))
        .map_err(|e| LedgerError::invalid(field, e.to_string()))
}

/// A page size: 0 means `default`, more than [`MAX_PAGE`] is refused.
pub fn page_limit(field: &'static str, value: u32, default: u32) -> Result<u32, LedgerError> {
    match value {
        0 => Ok(default),
        v if v > MAX_PAGE => Err(LedgerError::invalid(
            field,
            format!("must be at most {MAX_PAGE}, got {v}"),
        )),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn field_of(e: LedgerError) -> &'static str {
        match e {
            LedgerError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_bounded_and_clean() {
        assert!(id("bot_id", "kraken:XDGUSD:main").is_ok());
        assert_eq!(field_of(id("bot_id", "").unwrap_err()), "bot_id");
        assert!(id("bot_id", &"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(id("bot_id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(id("bot_id", "a\nb").is_err());
        assert!(id("bot_id", " a").is_err());
        assert!(opt_id("exit_txid", "").is_ok());
    }

    #[test]
    fn text_is_bounded() {
        assert!(text("reason", "").is_ok());
        assert!(text("reason", &"r".repeat(MAX_TEXT_LEN + 1)).is_err());
        assert!(text("reason", "bell\u{7}").is_err());
    }

    #[test]
    fn decimal_messages_name_the_field() {
        let e = decimal("entry_price", "NaN").unwrap_err();
        assert!(e.to_string().starts_with("entry_price: "), "{e}");
        let e = non_negative("entry_price", dec!(-1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "entry_price: must be a non-negative decimal, got \"-1\""
        );
        assert!(non_negative("x", dec!(0)).is_ok());
        assert!(positive("x", dec!(0)).is_err());
        assert_eq!(opt_decimal("x", "").unwrap(), None);
    }

    #[test]
    fn times_are_bounded_and_truncated() {
        let now = Utc::now();
        assert!(time("at", now + Duration::hours(25), now).is_err());
        assert!(time("at", earliest_time() - Duration::seconds(1), now).is_err());
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(
            time("at", t, now).unwrap().timestamp_subsec_nanos(),
            123_456_000
        );
        assert!(timestamp("at", None).is_err());
    }

    #[test]
    fn page_limits() {
        assert_eq!(page_limit("limit", 0, 50).unwrap(), 50);
        assert_eq!(page_limit("limit", 7, 50).unwrap(), 7);
        assert!(page_limit("limit", MAX_PAGE + 1, 50).is_err());
    }
}
