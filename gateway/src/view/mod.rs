//! Pure conversions from the backends' wire messages to the JSON views of
//! the API, plus the aggregates computed from them (bands, heat map,
//! cleanup queue). The REST handlers and the dashboard both use these, so
//! a rule (what counts as the cleanup queue, how capital is summed) lives
//! in one place. No I/O here.

pub mod ledger;
pub mod operator;
pub mod status;

use healgrid_proto::convert::{parse_decimal, timestamp_to_utc};
use rust_decimal::Decimal;

/// RFC 3339 form of a wire timestamp; `None` when absent or out of range.
#[must_use]
pub fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.and_then(|t| timestamp_to_utc(t).ok())
        .map(|t| t.to_rfc3339())
}

/// An empty wire string means "absent".
#[must_use]
pub fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A wire decimal string as a number, `None` when empty or malformed.
#[must_use]
pub fn decimal(s: &str) -> Option<Decimal> {
    parse_decimal(s).ok()
}
