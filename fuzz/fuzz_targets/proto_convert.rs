//! Wire decimals and timestamps (`healgrid_proto::convert`): any string is
//! accepted or refused without a panic, an accepted decimal survives
//! format → parse unchanged, and an accepted timestamp round-trips.
#![no_main]

use healgrid_proto::convert::{format_decimal, parse_decimal, timestamp_to_utc, utc_to_timestamp};
use libfuzzer_sys::fuzz_target;
use prost_types::Timestamp;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(d) = parse_decimal(s)
    {
        let text = format_decimal(d);
        assert_eq!(parse_decimal(&text), Ok(d), "{s:?} formatted as {text:?}");
    }
    if let (Some(secs), Some(nanos)) = (data.get(..8), data.get(8..12)) {
        let ts = Timestamp {
            seconds: i64::from_le_bytes(secs.try_into().unwrap_or_default()),
            nanos: i32::from_le_bytes(nanos.try_into().unwrap_or_default()),
        };
        if let Ok(t) = timestamp_to_utc(&ts) {
            assert_eq!(utc_to_timestamp(t), ts);
        }
    }
});
