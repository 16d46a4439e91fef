//! Operator actions on the bot as a whole (SPEC §8: the regime override and
//! its clearing, the churner reserve), through the real gRPC server and
//! runtime: each accepted action leaves exactly one row in the ledger's bot
//! journal with the operator's reason, however often the request is retried
//! (also across a restart), and a ledger outage only delays it.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;
mod operator;

use ledger_service::{BotAction, BotJournalEntry};
use operator::*;
use rust_decimal_macros::dec;

/// The operator-action grid with the churner on (the reserve needs it).
fn churner_on() -> trader_service::runtime::RuntimeConfig {
    let mut c = config();
    c.market.churner.enabled = true;
    c
}

/// The bot journal as the ledger holds it.
async fn bot_rows(r: &Run) -> Vec<BotJournalEntry> {
    r.lib.bot_journal(BOT, 0, 100).await.unwrap().entries
}

/// (action, key) of each row, in journal order; asserts every row carries
/// the harness operator's name and `reason`.
fn summary<'a>(rows: &'a [BotJournalEntry], reasons: &[&str]) -> Vec<(BotAction, &'a str)> {
    let got: Vec<&str> = rows.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(got, reasons, "{rows:?}");
    assert!(rows.iter().all(|e| e.operator == "alice"), "{rows:?}");
    rows.iter()
        .map(|e| (e.action, e.event_key.as_str()))
        .collect()
}

/// Proves, over gRPC: SetRegimeOverride, its clearing and SetChurnerReserve
/// each journal one bot-journal row keyed `operator:<request_id>`, with the
/// operator's reason and name, what was set, and the time the trader
/// answered; retries with the same request ids, before and after a
/// restart, add no row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_actions_are_journaled_once_with_their_reason() {
    let mut r = Run::with_config(churner_on()).await;
    r.minutes(2, dec!(0.1)).await;

    let set = r.regime("bullish", 3_600, "rg-1").await.unwrap();
    assert!(r.regime("bullish", 3_600, "rg-1").await.unwrap().replayed);
    let reserve = r.reserve("12.50", "rs-1").await.unwrap();
    assert!(r.reserve("12.50", "rs-1").await.unwrap().replayed);
    r.regime("auto", 0, "rg-2").await.unwrap();
    assert!(r.regime("auto", 0, "rg-2").await.unwrap().replayed);
    r.minutes(1, dec!(0.1)).await;
    r.flush().await;

    let rows = bot_rows(&r).await;
    assert_eq!(
        summary(&rows, &["news day", "more room", "news day"]),
        [
            (BotAction::RegimeOverride, "operator:rg-1"),
            (BotAction::ChurnerReserve, "operator:rs-1"),
            (BotAction::RegimeOverrideCleared, "operator:rg-2"),
        ]
    );
    let set_at = set.at.unwrap().seconds;
    assert_eq!(rows[0].at.timestamp(), set_at);
    assert_eq!(
        rows[0].detail,
        format!("regime=bullish until={} ttl_sec=3600", set_at + 3_600)
    );
    assert_eq!(rows[1].at.timestamp(), reserve.at.unwrap().seconds);
    assert_eq!(rows[1].detail, "reserve_usd=12.5");
    assert!(rows[2].detail.starts_with("regime=bullish"), "{rows:?}");

    r.restart().await;
    assert!(r.regime("bullish", 3_600, "rg-1").await.unwrap().replayed);
    assert!(r.reserve("12.50", "rs-1").await.unwrap().replayed);
    r.minutes(1, dec!(0.1)).await;
    r.flush().await;
    assert_eq!(
        bot_rows(&r).await,
        rows,
        "a retry after a restart adds nothing"
    );
}

/// Proves: while the ledger is down the actions are accepted and take
/// effect, their bot-journal rows wait in the outbox (retries included,
/// nothing parked), and once the ledger is back each lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_outage_delays_the_bot_journal_and_loses_nothing() {
    let mut r = Run::with_config(churner_on()).await;
    r.minutes(2, dec!(0.1)).await;
    r.flush().await;

    r.ledger.set_down(true);
    r.regime("bearish", 7_200, "out-1").await.unwrap();
    r.reserve("20", "out-2").await.unwrap();
    r.minutes(2, dec!(0.1)).await;
    assert!(r.regime("bearish", 7_200, "out-1").await.unwrap().replayed);
    r.flush().await;
    assert!(bot_rows(&r).await.is_empty(), "the ledger is down");
    let status = r.status().await;
    assert!(
        status.outbox.unwrap().depth >= 2,
        "both rows wait in the outbox"
    );
    let regime = status.healing.unwrap().regime.unwrap();
    assert_eq!(
        regime.state, "bearish",
        "the override is in force meanwhile"
    );

    r.ledger.set_down(false);
    r.minutes(1, dec!(0.1)).await;
    r.flush().await;
    let rows = bot_rows(&r).await;
    assert_eq!(
        summary(&rows, &["news day", "more room"]),
        [
            (BotAction::RegimeOverride, "operator:out-1"),
            (BotAction::ChurnerReserve, "operator:out-2"),
        ]
    );
    assert_eq!(rows[1].detail, "reserve_usd=20");
    let status = r.status().await;
    assert!(
        status.parked_writes.is_empty(),
        "{:?}",
        status.parked_writes
    );
}
