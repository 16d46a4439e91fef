//! The churner's operator actions (SPEC §6, §8) and the price bars, through
//! the real gRPC server and runtime: spawn, kill and the reserve with their
//! refusals and idempotent retries (also across a restart), the `ctl
//! churner` commands as a real process, and `GetCandles`.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;
mod operator;

use healgrid_proto::trader::v1 as pb;
use ledger_service::{BotAction, CloseReason, EventDetails, PositionStatus, SlotMode};
use operator::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::Code;
use trader_service::exchange::{OrderInfo, OrderStatus};
use trader_service::pair::Candle;

/// Where the market sits while the operator grid's position is stuck.
const P: Decimal = dec!(0.0990);

/// The operator-action grid with the churner on.
fn churner_on() -> trader_service::runtime::RuntimeConfig {
    let mut c = config();
    c.market.churner.enabled = true;
    c
}

impl Run {
    async fn spawn(
        &mut self,
        slot: u32,
        id: &str,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::SpawnChurnerRequest {
            slot_id: slot,
            request_id: id.into(),
            reason: "ranging all day".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.spawn_churner(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    async fn kill(
        &mut self,
        slot: u32,
        id: &str,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::KillChurnerRequest {
            slot_id: slot,
            request_id: id.into(),
            reason: "trend coming".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.kill_churner(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    async fn churner_status(&mut self) -> pb::ChurnerStatus {
        self.status().await.healing.unwrap().churner.unwrap()
    }

    /// Slot 0 of the churner status.
    async fn slot0(&mut self) -> pb::ChurnerSlot {
        let c = self.churner_status().await;
        c.slots
            .into_iter()
            .find(|s| s.slot_id == 0)
            .expect("slot 0 listed")
    }

    /// The churner orders resting on the paper book.
    fn resting_churner_orders(&self) -> Vec<OrderInfo> {
        self.churner_orders()
            .into_iter()
            .filter(|o| o.status.is_live())
            .collect()
    }

    /// A minute whose low dips to `low` (a churner buy entry at market
    /// - 0.15 % fills) and closes back at [`P`].
    async fn dip(&mut self, low: Decimal) {
        self.candle(Candle {
            time: self.t,
            open: P,
            high: P,
            low,
            close: P,
            volume: dec!(1000),
        })
        .await;
    }

    /// A minute whose high reaches `high` (a churner exit at + 0.6 %
    /// fills) and closes back at [`P`].
    async fn bounce(&mut self, high: Decimal) {
        self.candle(Candle {
            time: self.t,
            open: P,
            high,
            low: P,
            close: P,
            volume: dec!(1000),
        })
        .await;
    }
}

/// Proves, over gRPC with the churner on: spawn is accepted and a retry
/// with the same request id returns the first answer (replayed, nothing
/// done again), also after a restart; a second spawn under a new id has
/// nothing to do (FAILED_PRECONDITION); kill stops it (the status shows
/// the slot paused `killed`); the reserve set by the operator is in force
/// in the status and survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_kill_and_reserve_are_idempotent_and_survive_restart() {
    let mut r = Run::with_config(churner_on()).await;
    r.minutes(2, dec!(0.1)).await;

    let first = r.spawn(0, "sp-1").await.unwrap();
    assert_eq!(
        (
            first.action.as_str(),
            first.position_id.as_str(),
            first.replayed
        ),
        ("spawn_churner", "", false)
    );
    assert!(first.message.contains("slot 0 spawned"), "{first:?}");
    let again = r.spawn(0, "sp-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!((again.message, again.at), (first.message.clone(), first.at));
    let twice = r.spawn(0, "sp-2").await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
    assert!(twice.message().contains("already spawned"), "{twice:?}");

    let set = r.reserve("12.50", "rs-1").await.unwrap();
    assert_eq!(set.action, "set_churner_reserve");
    assert!(set.message.contains("12.5 USD"), "{set:?}");
    r.minutes(1, dec!(0.1)).await;
    let c = r.churner_status().await;
    let lent: rust_decimal::Decimal = c.reserve_earmarked_usd.parse().unwrap();
    let available: rust_decimal::Decimal = c.reserve_available_usd.parse().unwrap();
    assert_eq!(lent + available, dec!(12.5), "{c:?}");

    r.flush().await;
    r.restart().await;
    let after = r.spawn(0, "sp-1").await.unwrap();
    assert!(after.replayed, "the answer survives a restart");
    assert!(r.reserve("12.50", "rs-1").await.unwrap().replayed);
    r.minutes(1, dec!(0.1)).await;
    let c = r.churner_status().await;
    let lent: rust_decimal::Decimal = c.reserve_earmarked_usd.parse().unwrap();
    let available: rust_decimal::Decimal = c.reserve_available_usd.parse().unwrap();
    assert_eq!(
        lent + available,
        dec!(12.5),
        "the reserve survives a restart"
    );

    let killed = r.kill(0, "kl-1").await.unwrap();
    assert!(killed.message.contains("slot 0 killed"), "{killed:?}");
    assert!(r.kill(0, "kl-1").await.unwrap().replayed);
    let dead = r.kill(0, "kl-2").await.unwrap_err();
    assert_eq!(dead.code(), Code::FailedPrecondition, "{dead:?}");
    r.minutes(1, dec!(0.1)).await;
    let c = r.churner_status().await;
    let slot0 = c
        .slots
        .iter()
        .find(|s| s.slot_id == 0)
        .expect("slot 0 listed");
    assert_eq!(slot0.paused_reason, "killed", "{c:?}");
    // Spawning again after a kill is allowed.
    r.spawn(0, "sp-3").await.unwrap();
    // Slot 0 held no open position: each accepted command is in the bot
    // journal, once, retries and the restart included.
    r.minutes(1, dec!(0.1)).await;
    r.flush().await;
    let rows: Vec<(BotAction, String, String)> = r
        .lib
        .bot_journal(BOT, 0, 100)
        .await
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| matches!(e.action, BotAction::ChurnerSpawn | BotAction::ChurnerKill))
        .map(|e| (e.action, e.event_key, e.detail))
        .collect();
    let row = |a, key: &str| (a, format!("operator:{key}"), "slot=0".to_owned());
    assert_eq!(
        rows,
        [
            row(BotAction::ChurnerSpawn, "sp-1"),
            row(BotAction::ChurnerKill, "kl-1"),
            row(BotAction::ChurnerSpawn, "sp-3"),
        ]
    );
}

/// Proves: malformed churner requests are INVALID_ARGUMENT, an unknown
/// slot NOT_FOUND and a disabled churner FAILED_PRECONDITION, each with a
/// message, and none changes anything (the churner status is the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churner_refusals_name_their_reason() {
    let mut off = Run::new().await;
    off.minutes(1, dec!(0.1)).await;
    for (res, code, words) in [
        (
            off.spawn(0, "a1").await,
            Code::FailedPrecondition,
            "disabled",
        ),
        (
            off.kill(0, "a2").await,
            Code::FailedPrecondition,
            "disabled",
        ),
        (
            off.reserve("5", "a3").await,
            Code::FailedPrecondition,
            "disabled",
        ),
        (
            off.spawn(7, "a4").await,
            Code::NotFound,
            "slot 7 does not exist",
        ),
    ] {
        let e = res.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(words), "{e:?}");
    }
    assert!(off.churner_status().await.slots.is_empty());

    let mut on = Run::with_config(churner_on()).await;
    on.minutes(1, dec!(0.1)).await;
    let before = on.churner_status().await;
    for (res, code, words) in [
        (on.kill(1, "b1").await, Code::NotFound, "slots 0 to 0"),
        (on.spawn(0, "").await, Code::InvalidArgument, "request_id"),
        (
            on.reserve("abc", "b2").await,
            Code::InvalidArgument,
            "not a decimal",
        ),
        (
            on.reserve("-1", "b3").await,
            Code::InvalidArgument,
            "out of range",
        ),
        (
            on.reserve("1000001", "b4").await,
            Code::InvalidArgument,
            "out of range",
        ),
    ] {
        let e = res.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(words), "{e:?}");
    }
    on.minutes(1, dec!(0.1)).await;
    assert_eq!(on.churner_status().await, before, "nothing changed");
}

/// Proves: `ctl churner spawn|kill SLOT --reason`, `ctl churner reserve
/// USD --reason` and its short form `ctl reserve USD` reach the trader as a real process and print its answer;
/// a refusal exits non-zero with the trader's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_churner_commands() {
    let mut r = Run::with_config(churner_on()).await;
    r.minutes(1, dec!(0.1)).await;
    let (ok, out, err) = r
        .ctl(&["churner", "spawn", "0", "--reason", "by hand"], "")
        .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("spawn_churner") && out.contains("slot 0 spawned"),
        "{out}"
    );
    let (ok, out, err) = r
        .ctl(
            &[
                "churner",
                "reserve",
                "7.5",
                "--reason",
                "room",
                "--request-id",
                "c-1",
            ],
            "",
        )
        .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("set to 7.5 USD"), "{out}");
    let (ok, out, _) = r
        .ctl(
            &[
                "churner",
                "reserve",
                "7.5",
                "--reason",
                "room",
                "--request-id",
                "c-1",
            ],
            "",
        )
        .await;
    assert!(ok && out.contains("nothing done again"), "{out}");
    // `reserve USD` is the same command, one word shorter.
    let (ok, out, err) = r.ctl(&["reserve", "9", "--reason", "more room"], "").await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("set to 9 USD"), "{out}");
    let (ok, out, err) = r
        .ctl(&["churner", "kill", "0", "--reason", "stop"], "")
        .await;
    assert!(ok && out.contains("slot 0 killed"), "{out}{err}");
    let (ok, _, err) = r
        .ctl(&["churner", "kill", "9", "--reason", "stop"], "")
        .await;
    assert!(!ok, "an unknown slot fails");
    assert!(err.contains("slot 9 does not exist"), "{err}");
}

/// Proves: `GetCandles` returns the 5-minute bars of the prices the loop
/// observed (open first, close last, high and low the extremes), filtered
/// by `since_unix`, and says their length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candles_are_the_observed_five_minute_bars() {
    let mut r = Run::new().await;
    // T0 is 1_700_000_000 = 20 s into a 5-minute bar.
    r.minutes(3, dec!(0.1)).await;
    r.minutes(4, dec!(0.0990)).await;
    let all = r
        .client
        .get_candles(pb::GetCandlesRequest { since_unix: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.bar_seconds, 300);
    assert!(all.bars.len() >= 2, "{all:?}");
    let b0 = &all.bars[0];
    assert_eq!(b0.start_unix % 300, 0);
    assert!(b0.start_unix <= T0 && T0 < b0.start_unix + 300, "{b0:?}");
    assert_eq!(b0.open, "0.1");
    assert!(
        all.bars
            .windows(2)
            .all(|w| w[0].start_unix < w[1].start_unix)
    );
    let last = all.bars.last().unwrap();
    assert_eq!(last.close, "0.099", "{all:?}");
    let mixed = all
        .bars
        .iter()
        .find(|b| b.high == "0.1" && b.low == "0.099")
        .expect("one bar holds both prices");
    assert!(mixed.samples >= 2);
    let later = r
        .client
        .get_candles(pb::GetCandlesRequest {
            since_unix: last.start_unix,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(later.bars, vec![last.clone()]);
}

/// The journal row of the tests' spawn: (action, reason, operator).
fn spawn_row() -> (String, String, String) {
    (
        "spawn_churner".into(),
        "ranging all day".into(),
        "alice".into(),
    )
}

/// The journal row of the tests' kill.
fn kill_row() -> (String, String, String) {
    ("kill_churner".into(), "trend coming".into(), "alice".into())
}

impl Run {
    /// The operator actions journaled on position `id`: (action, reason,
    /// operator) in journal order.
    async fn operator_rows(&self, id: &str) -> Vec<(String, String, String)> {
        self.journal(id)
            .await
            .into_iter()
            .filter_map(|d| match d {
                EventDetails::OperatorAction(a) => Some((a.action, a.reason, a.operator)),
                _ => None,
            })
            .collect()
    }

    /// Churner orders the paper exchange ever took (open or closed).
    fn churner_orders(&self) -> Vec<OrderInfo> {
        self.paper.with_book(|b| {
            b.open_orders()
                .into_iter()
                .chain(b.closed_orders())
                .filter(|o| o.cl_ord_id.as_deref().is_some_and(|c| c.starts_with("ch:")))
                .collect()
        })
    }
}

/// Proves, over gRPC: a spawn and a kill on a slot with a stuck position
/// name that position in their answers and are journaled on it as
/// `operator_action` with the operator's reason; the trader killed right
/// after accepting each (nothing flushed to the ledger yet) restarts, the
/// retries with the same request ids are answered from the first, and the
/// journal holds each action exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_and_kill_are_journaled_once_on_the_parent_across_kills() {
    let mut r = Run::with_config(churner_on()).await;
    let id = r.write_off_position().await;

    let spawned = r.spawn(0, "sp-j").await.unwrap();
    assert_eq!(spawned.position_id, id, "{spawned:?}");
    assert!(!spawned.replayed);
    r.restart().await;
    let again = r.spawn(0, "sp-j").await.unwrap();
    assert!(again.replayed, "{again:?}");
    assert_eq!(again.position_id, id);

    let killed = r.kill(0, "kl-j").await.unwrap();
    assert_eq!(killed.position_id, id, "{killed:?}");
    r.restart().await;
    assert!(r.kill(0, "kl-j").await.unwrap().replayed);
    assert!(r.spawn(0, "sp-j").await.unwrap().replayed);

    r.minutes(2, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.operator_rows(&id).await, [spawn_row(), kill_row()]);
    let slot0 = r.churner_status().await;
    let slot0 = slot0.slots.iter().find(|s| s.slot_id == 0).unwrap();
    assert_eq!(slot0.paused_reason, "killed", "{slot0:?}");
}

/// Proves: a trader killed in the middle of a spawn (the churner's entry
/// was sent and the exchange never answered) restarts with exactly one
/// churner entry on the book, the spawn journaled once, and the retry
/// answered from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_spawn_places_one_entry_after_restart() {
    let mut r = Run::with_config(churner_on()).await;
    let id = r.write_off_position().await;
    r.spawn(0, "sp-hang").await.unwrap();
    r.exchange.set(2);
    assert!(
        r.minutes_until_hang(3, dec!(0.0990)).await,
        "the churner's entry must have been sent"
    );
    r.exchange.set(0);
    r.restart().await;
    assert!(r.spawn(0, "sp-hang").await.unwrap().replayed);
    r.minutes(3, dec!(0.0990)).await;
    r.flush().await;
    let orders = r.churner_orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(r.operator_rows(&id).await, [spawn_row()]);
}

/// Proves: a reserve set right before the trader is killed is in force
/// after the restart, its retry is answered from the first and changes
/// nothing, and a spawn on a slot with no position is still accepted (no
/// position to name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_right_after_a_reserve_keeps_it_once() {
    let mut r = Run::with_config(churner_on()).await;
    r.minutes(1, dec!(0.1)).await;
    let set = r.reserve("9", "rs-kill").await.unwrap();
    r.restart().await;
    let again = r.reserve("9", "rs-kill").await.unwrap();
    assert!(again.replayed);
    assert_eq!((again.message, again.at), (set.message, set.at));
    r.minutes(1, dec!(0.1)).await;
    let c = r.churner_status().await;
    let lent: rust_decimal::Decimal = c.reserve_earmarked_usd.parse().unwrap();
    let available: rust_decimal::Decimal = c.reserve_available_usd.parse().unwrap();
    assert_eq!(lent + available, dec!(9), "{c:?}");
    let lone = r.spawn(0, "sp-lone").await.unwrap();
    assert_eq!(lone.position_id, "", "{lone:?}");
}

/// Proves: a kill of a slot whose churner entry rests on the exchange,
/// with the trader killed after the entry's cancel reached the exchange
/// and before its answer was seen, ends after the restart with the entry
/// cancelled exactly once (one cancel call, the order cancelled unfilled),
/// no new churner entry, the reserve's loan returned, the slot paused
/// `killed`, the kill journaled once on the parent, and a retry with the
/// same request id answered from the first answer without changing
/// anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_cancel_of_a_resting_entry_cancels_it_once() {
    let mut r = Run::with_config(churner_on()).await;
    let id = r.write_off_position().await;
    r.spawn(0, "sp-rest").await.unwrap();
    r.minutes(2, P).await;
    let resting = r.resting_churner_orders();
    assert_eq!(resting.len(), 1, "{resting:?}");
    let entry = resting[0].clone();
    assert_eq!(r.slot0().await.stage, "entry");

    let killed = r.kill(0, "kl-rest").await.unwrap();
    assert_eq!(killed.position_id, id, "{killed:?}");
    r.exchange.set(9);
    assert!(
        r.minutes_until_hang(1, P).await,
        "the entry's cancel must have been sent"
    );
    r.exchange.set(0);
    let cancels_of_entry = |r: &Run| {
        r.exchange
            .cancelled()
            .iter()
            .filter(|t| **t == entry.txid)
            .count()
    };
    assert_eq!(
        r.exchange.cancelled().last(),
        Some(&entry.txid),
        "it hung in the entry's cancel"
    );
    assert_eq!(cancels_of_entry(&r), 1);

    r.restart().await;
    let again = r.kill(0, "kl-rest").await.unwrap();
    assert!(again.replayed, "{again:?}");
    assert_eq!(
        (&again.message, again.at, &again.position_id),
        (&killed.message, killed.at, &killed.position_id)
    );
    r.minutes(3, P).await;
    r.flush().await;

    let orders = r.churner_orders();
    assert_eq!(orders.len(), 1, "no new churner entry: {orders:?}");
    assert_eq!(orders[0].txid, entry.txid);
    assert_eq!(orders[0].status, OrderStatus::Canceled);
    assert_eq!(orders[0].vol_exec, Decimal::ZERO);
    assert_eq!(cancels_of_entry(&r), 1, "cancelled once");
    let slot0 = r.slot0().await;
    assert_eq!(
        (slot0.stage.as_str(), slot0.paused_reason.as_str()),
        ("idle", "killed"),
        "{slot0:?}"
    );
    let c = r.churner_status().await;
    assert_eq!(
        c.reserve_earmarked_usd.parse::<Decimal>().unwrap(),
        Decimal::ZERO
    );
    assert_eq!(r.operator_rows(&id).await, [spawn_row(), kill_row()]);

    // The retry changes nothing.
    let before = r.churner_status().await;
    let retried = r.kill(0, "kl-rest").await.unwrap();
    assert!(retried.replayed);
    assert_eq!((retried.message, retried.at), (killed.message, killed.at));
    r.minutes(2, P).await;
    r.flush().await;
    assert_eq!(r.churner_status().await, before);
    assert_eq!(r.churner_orders().len(), 1);
    assert_eq!(cancels_of_entry(&r), 1);
    assert_eq!(r.operator_rows(&id).await.len(), 2);
}

/// Proves: a kill of a slot whose churner entry has filled keeps that
/// round trip's exit on the book (never cancelled: filled inventory always
/// has its exit), also with the trader killed right after the kill and
/// restarted; the exit still fills and closes the round trip `filled` in
/// the ledger, and the killed churner places nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_the_entry_filled_keeps_its_exit_across_a_restart() {
    let mut r = Run::with_config(churner_on()).await;
    let id = r.write_off_position().await;
    r.spawn(0, "sp-fill").await.unwrap();
    r.minutes(1, P).await;
    r.dip(dec!(0.09884)).await;
    let resting = r.resting_churner_orders();
    assert_eq!(resting.len(), 1, "{resting:?}");
    let exit = resting[0].clone();
    assert!(
        exit.cl_ord_id.as_deref().unwrap().contains(":ex:"),
        "{exit:?}"
    );
    assert_eq!(r.slot0().await.stage, "exit");

    let killed = r.kill(0, "kl-fill").await.unwrap();
    assert!(
        killed.message.contains("a filled entry keeps its exit"),
        "{killed:?}"
    );
    r.restart().await;
    assert!(r.kill(0, "kl-fill").await.unwrap().replayed);
    r.minutes(3, P).await;
    assert_eq!(
        r.resting_churner_orders(),
        std::slice::from_ref(&exit),
        "the exit rests as it was"
    );
    assert!(!r.exchange.cancelled().contains(&exit.txid));
    let slot0 = r.slot0().await;
    assert_eq!(
        (slot0.stage.as_str(), slot0.paused_reason.as_str()),
        ("exit", "killed"),
        "{slot0:?}"
    );

    r.bounce(dec!(0.0995)).await;
    r.minutes(3, P).await;
    r.flush().await;
    let orders = r.churner_orders();
    assert_eq!(orders.len(), 2, "the entry and its exit only: {orders:?}");
    assert!(
        orders
            .iter()
            .all(|o| o.status == OrderStatus::Closed && o.vol_exec == o.volume),
        "{orders:?}"
    );
    let round_trips: Vec<_> = r
        .lib
        .position_history(BOT, Some(0), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.slot_mode == SlotMode::Churner)
        .collect();
    assert_eq!(round_trips.len(), 1, "{round_trips:?}");
    assert_eq!(round_trips[0].status, PositionStatus::Closed);
    assert_eq!(
        round_trips[0].outcome.as_ref().map(|o| o.close_reason),
        Some(CloseReason::Filled)
    );
    let slot0 = r.slot0().await;
    assert_eq!(
        (slot0.stage.as_str(), slot0.paused_reason.as_str()),
        ("idle", "killed"),
        "{slot0:?}"
    );
    assert_eq!(r.churner_status().await.cycles, 1);
    assert_eq!(r.operator_rows(&id).await, [spawn_row(), kill_row()]);
}
