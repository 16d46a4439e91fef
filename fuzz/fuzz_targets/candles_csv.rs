//! The candle CSV reader of backtests and the paper market's replay: any
//! file is loaded or refused with a line number, never a panic, and what
//! loads replays in strictly increasing time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trader_service::exchange::market::{CsvReplay, MarketSource};

fuzz_target!(|data: &[u8]| {
    let Ok(mut replay) = CsvReplay::from_reader(data, "fuzz") else {
        return;
    };
    let _ = replay.interval_secs();
    let loaded = replay.len();
    let mut last = None;
    let mut replayed = 0;
    while let Ok(Some(c)) = replay.next_candle() {
        assert!(last.is_none_or(|t| c.time > t));
        assert!(c.low > rust_decimal::Decimal::ZERO && c.low <= c.high);
        last = Some(c.time);
        replayed += 1;
    }
    assert_eq!(replayed, loaded);
});
