//! Close at market (SPEC §8) through the real gRPC server and the real
//! runtime on the faulty paper exchange: the booked fill, a refused and an
//! ambiguous market order, a kill mid-order, and the stage E write-off
//! policy. The same over the Kraken client and simulator is in
//! `operator_close_kraken.rs`.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;
mod operator;

use ledger_service::EventDetails;
use operator::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::Code;
use trader_service::pair::Candle;
use trader_service::runtime::Runtime;
use trader_service::runtime::store::{StoreLocation, TraderStore};

/// Proves: CloseAtMarket cancels the exit, sends exactly one market order,
/// and the ledger closes the position `written_off` at the price, cost and
/// fee the exchange reported for that order (the taker fee, not an
/// estimate), with the realized loss and the operator's reason; the
/// journal reads created, operator_action, written_off; a retry with the
/// same request id (also after a restart) sends nothing again; the status
/// counts the operator write-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_at_market_books_the_exchanges_fill() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    assert!(
        r.queue().await[0]
            .actions
            .contains(&"close_at_market".to_string())
    );
    let a = r.close(&id, "close-1").await.unwrap();
    assert_eq!(a.action, "close_at_market");
    r.minutes(3, dec!(0.0990)).await;
    r.flush().await;
    let fills = r.market_fills();
    assert_eq!(fills.len(), 1, "exactly one market order: {fills:?}");
    let m = &fills[0];
    assert_eq!(m.vol_exec, m.volume);
    let again = r.close(&id, "close-1").await.unwrap();
    assert!(again.replayed);
    r.restart().await;
    let after = r.close(&id, "close-1").await.unwrap();
    assert!(after.replayed, "the answer survives a restart");
    r.minutes(2, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.market_fills().len(), 1, "no second market order");

    let p = r.lib.position(id.parse().unwrap()).await.unwrap();
    let outcome = p.outcome.expect("closed");
    assert_eq!(format!("{:?}", outcome.close_reason), "WrittenOff");
    assert_eq!(outcome.exit_price, m.avg_price);
    assert_eq!(outcome.exit_fee, Some(m.fee));
    assert_eq!(outcome.exit_cost, Some(m.cost));
    assert_eq!((m.fee / m.cost).round_dp(9), dec!(0.004), "the taker fee");
    let net = (m.avg_price.unwrap() - p.entry.price) * p.entry.volume - p.entry.fee - m.fee;
    assert_eq!(outcome.net_profit, Some(net));
    assert!(net < Decimal::ZERO);
    assert_eq!(
        p.exit_txid, m.txid,
        "the market order's fill is the position's"
    );
    assert_eq!(
        r.kinds(&id).await,
        ["created", "operator_action", "written_off"],
        "created, the operator's close, written_off"
    );
    match r.journal(&id).await.last().unwrap() {
        EventDetails::WrittenOff(w) => {
            assert_eq!(w.realized_loss, -net);
            assert_eq!(w.close_price, m.avg_price.unwrap());
            assert!(w.reason.contains("cut the loss"), "{w:?}");
        }
        other => panic!("{other:?}"),
    }
    let h = r.status().await.healing.unwrap();
    assert_eq!(h.operator_write_offs, 1);
    assert_eq!(
        h.operator_write_off_loss_usd.parse::<Decimal>().unwrap(),
        -net
    );
    assert_eq!(h.auto_write_offs, 0);
    assert!(r.queue().await.is_empty());
    let trips =
        r.rt.throughput()
            .samples(trader_service::healing::throughput::Bucket::Aggregate);
    assert_eq!(
        trips.len(),
        1,
        "the written-off trip feeds the sticky statistics"
    );
    assert_eq!(trips[0].net, net);
    let refused = r.close(&id, "close-2").await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "closed: {refused:?}");
}

/// Proves: a market order the exchange refuses restores the exit at its
/// limit price (one exit on the book again), journals the failure, and
/// leaves the position open; a later close succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_market_order_restores_the_exit() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.exchange.set(6);
    r.close(&id, "close-1").await.unwrap();
    r.minutes(3, dec!(0.0990)).await;
    r.flush().await;
    assert!(r.market_fills().is_empty());
    let exits: Vec<_> = r
        .paper
        .with_book(|b| b.open_orders())
        .into_iter()
        .filter(|o| faulty::is_exit(o.cl_ord_id.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(exits.len(), 1, "the exit is back: {exits:?}");
    assert_eq!(exits[0].limit_price, Some(dec!(0.100798)));
    assert_eq!(r.lib.open_positions(BOT, Some(0)).await.unwrap().len(), 1);
    assert_eq!(
        r.kinds(&id).await,
        ["created", "operator_action", "operator_action"]
    );
    match r.journal(&id).await.last().unwrap() {
        EventDetails::OperatorAction(a) => assert_eq!(a.action, "close_at_market_failed"),
        other => panic!("{other:?}"),
    }
    r.exchange.set(0);
    r.close(&id, "close-2").await.unwrap();
    r.minutes(3, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.market_fills().len(), 1);
    assert!(r.lib.open_positions(BOT, Some(0)).await.unwrap().is_empty());
}

/// Proves: a market order whose answer is lost (it was placed) is found by
/// its client order id and its fill booked; it is never sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_market_order_is_reconciled_not_repeated() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.exchange.set(7);
    r.close(&id, "close-1").await.unwrap();
    r.minutes(3, dec!(0.0990)).await;
    r.exchange.set(0);
    r.minutes(10, dec!(0.0990)).await;
    r.flush().await;
    let fills = r.market_fills();
    assert_eq!(fills.len(), 1, "one market order: {fills:?}");
    let p = r.lib.position(id.parse().unwrap()).await.unwrap();
    let outcome = p.outcome.expect("closed");
    assert_eq!(outcome.exit_price, fills[0].avg_price);
    assert_eq!(outcome.exit_fee, Some(fills[0].fee));
}

/// Proves (stage E, `SUBSIDY_WRITE_OFF_AUTO`): after profitable round
/// trips give the sticky grid a profit rate, a position stuck in band
/// write_off whose opportunity cost exceeds twice its subsidy need is closed
/// at market by the trader itself: journaled `operator_action` by `policy`
/// with both figures, closed `written_off` at the exchange's fill, and
/// counted in the status as an auto write-off with its loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_off_policy_closes_when_waiting_costs_more() {
    let mut r = Run::new().await;
    let mut cfg = config();
    cfg.reprice.write_off_auto = true;
    let store = TraderStore::open(&StoreLocation::File(r.dir.path().join("stage-e.db")))
        .await
        .unwrap();
    r.rt = Runtime::new(cfg, r.exchange.clone(), r.ledger.clone(), store)
        .await
        .unwrap();
    // A ranging market: both legs complete round trips every few minutes.
    r.minutes(2, dec!(0.1)).await;
    for _ in 0..12 {
        r.candle(Candle {
            time: r.t,
            open: dec!(0.1),
            high: dec!(0.1012),
            low: dec!(0.0988),
            close: dec!(0.1),
            volume: dec!(1000),
        })
        .await;
        r.minutes(1, dec!(0.1)).await;
    }
    let done = r.rt.stats().completed_cycles;
    assert!(done >= 4, "profitable trips first: {done}");
    assert!(r.rt.stats().net_pnl > Decimal::ZERO);
    // Then the market falls away from the B exit and stays there.
    r.candle(Candle {
        time: r.t,
        open: dec!(0.1),
        high: dec!(0.1),
        low: dec!(0.0990),
        close: dec!(0.0990),
        volume: dec!(1000),
    })
    .await;
    r.minutes(60, dec!(0.0990)).await;
    r.rt.flush(r.now_ms()).await.unwrap();
    let w = r.rt.write_offs().clone();
    assert_eq!(w.auto, 1, "{w:?}");
    assert!(w.auto_loss_usd > Decimal::ZERO);
    let closed: Vec<_> = r
        .lib
        .position_history(BOT, Some(0), 200)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| {
            p.outcome
                .as_ref()
                .is_some_and(|o| format!("{:?}", o.close_reason) == "WrittenOff")
        })
        .collect();
    assert_eq!(closed.len(), 1, "{closed:?}");
    let id = closed[0].position_id.to_string();
    let journal = r.journal(&id).await;
    let policy = journal
        .iter()
        .find_map(|d| match d {
            EventDetails::OperatorAction(a) => Some(a.clone()),
            _ => None,
        })
        .expect("journaled as policy");
    assert_eq!(
        (policy.action.as_str(), policy.operator.as_str()),
        ("close_at_market", "policy")
    );
    // "... opportunity cost X > 2 x subsidy need Y": the rule held.
    let figures: Vec<Decimal> = policy
        .reason
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(figures.len(), 3, "{policy:?}");
    assert!(figures[0] > dec!(2) * figures[2], "{policy:?}");
    let fills = r.market_fills();
    assert_eq!(fills.len(), 1);
    let o = closed[0].outcome.as_ref().unwrap();
    assert_eq!(o.exit_price, fills[0].avg_price);
    r.minutes(1, dec!(0.0990)).await;
    let h = r.rt.status(r.now_ms()).await.unwrap().healing;
    assert_eq!(h.write_offs.auto, 1);
}

/// Proves: a trader killed while its market order is in flight (the
/// exchange took it, the answer never came) restarts, finds the order by
/// its client id, books its fill and closes the position once: one market
/// order, one `written_off` close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_market_order_closes_once_after_restart() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.close(&id, "close-1").await.unwrap();
    r.exchange.set(1);
    assert!(
        r.minutes_until_hang(5, dec!(0.0990)).await,
        "the market order must have been sent"
    );
    r.exchange.set(0);
    r.restart().await;
    r.minutes(10, dec!(0.0990)).await;
    r.flush().await;
    let fills = r.market_fills();
    assert_eq!(fills.len(), 1, "one market order: {fills:?}");
    let p = r.lib.position(id.parse().unwrap()).await.unwrap();
    let o = p.outcome.expect("closed");
    assert_eq!(format!("{:?}", o.close_reason), "WrittenOff");
    assert_eq!(o.exit_price, fills[0].avg_price);
    assert_eq!(
        r.kinds(&id).await,
        ["created", "operator_action", "written_off"],
        "one close journaled"
    );
    let again = r.close(&id, "close-1").await.unwrap();
    assert!(again.replayed);
}

/// Proves, through the real `trader-service ctl` process: `queue` lists the
/// write-off position with its actions; `hold --for 2h` holds it (and
/// `queue` is then empty); `release` releases it; `regime bearish --ttl 2h`,
/// `regime auto` and `breakeven` answer; `close` without `--yes` asks and, answered
/// `n`, closes nothing; `close --yes` closes it at market; a refusal exits
/// non-zero with the trader's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_drives_the_operator_actions() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    let (ok, out, err) = r.ctl(&["queue"], "").await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&id) && out.contains("close_at_market") && out.contains(" sticky "),
        "{out}"
    );
    let (ok, out, err) = r
        .ctl(&["hold", &id, "--for", "2h", "--reason", "rebound"], "")
        .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("keep_holding") && out.contains("on hold until"),
        "{out}"
    );
    r.minutes(1, dec!(0.0990)).await;
    let (_, out, _) = r.ctl(&["queue"], "").await;
    assert!(out.contains("cleanup queue is empty"), "{out}");
    let (ok, out, err) = r.ctl(&["release", &id], "").await;
    assert!(ok, "{err}");
    assert!(out.contains("hold released"), "{out}");
    let (ok, out, err) = r.ctl(&["regime", "bearish", "--ttl", "2h"], "").await;
    assert!(ok && out.contains("regime forced to bearish"), "{out}{err}");
    let (ok, out, err) = r.ctl(&["regime", "auto"], "").await;
    assert!(ok && out.contains("cleared"), "{out}{err}");
    let (ok, out, err) = r
        .ctl(&["breakeven", &id, "--reason", "take the fees back"], "")
        .await;
    assert!(ok, "{err}");
    assert!(out.contains("reprice_to_breakeven"), "{out}");
    r.minutes(1, dec!(0.0990)).await;
    let (ok, out, err) = r
        .ctl(&["hold", &id, "--for", "5s", "--reason", "x"], "")
        .await;
    assert!(!ok, "{out}");
    assert!(err.contains("out of range"), "{err}");

    let (ok, out, err) = r.ctl(&["close", &id, "--reason", "cut"], "n\n").await;
    assert!(ok, "{err}");
    assert!(
        out.contains("not closed") && err.contains("[y/N]"),
        "{out}{err}"
    );
    r.minutes(2, dec!(0.0990)).await;
    assert!(r.market_fills().is_empty(), "nothing sent without a yes");
    let (ok, out, err) = r.ctl(&["close", &id, "--reason", "cut", "--yes"], "").await;
    assert!(ok, "{err}");
    assert!(out.contains("closing at market"), "{out}");
    r.minutes(3, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.market_fills().len(), 1);
    assert!(r.lib.open_positions(BOT, Some(0)).await.unwrap().is_empty());
}
