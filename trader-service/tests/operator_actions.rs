//! Operator actions (SPEC §8) through the real gRPC server and the real
//! runtime: the paper exchange, the in-process ledger and a trader store
//! file (so the trader can be restarted). The test drives the loop itself:
//! each RPC is sent from its own task and answered by the runtime between
//! two steps ([`Runtime::serve_control`]), exactly where `run_forever`
//! answers it.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;

use std::future::Future;
use std::time::Duration;

use faulty::Faulty;
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use ledger_service::Ledger;
use ledger_service::domain::{EventDetails, RepriceReason};
use ledger_service::ledger::JournalScope;
use ledger_service::store::SqliteStore;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::Code;
use tonic::transport::Channel;
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, SimClock};
use trader_service::pair::Candle;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BOT: &str = "ops-bot";
const T0: i64 = 1_700_000_000;

type Rt = Runtime<Faulty, LocalLedger<SqliteStore>>;

fn flat(t: i64, p: Decimal) -> Candle {
    Candle {
        time: t,
        open: p,
        high: p,
        low: p,
        close: p,
        volume: dec!(1000),
    }
}

/// The healing test grid with band write_off from 2400 s of effective age.
fn config() -> RuntimeConfig {
    let mut c = healing::config(BOT, 1, 1_800);
    c.engine.bands.thresholds.stuck_sec = 2_400;
    c
}

struct Run {
    rt: Rt,
    client: TraderServiceClient<Channel>,
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    exchange: Faulty,
    paper: PaperExchange,
    lib: Ledger<SqliteStore>,
    dir: tempfile::TempDir,
    t: i64,
}

impl Run {
    async fn new() -> Self {
        let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(T0 * 1000));
        let exchange = Faulty::new(paper.clone(), 0);
        let lib = Ledger::in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (rt, client, stop) = Self::start(&exchange, &lib, &dir).await;
        Self {
            rt,
            client,
            stop_server: Some(stop),
            exchange,
            paper,
            lib,
            dir,
            t: T0,
        }
    }

    /// A runtime on the store file and a gRPC server on its handle.
    async fn start(
        exchange: &Faulty,
        lib: &Ledger<SqliteStore>,
        dir: &tempfile::TempDir,
    ) -> (
        Rt,
        TraderServiceClient<Channel>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let store = TraderStore::open(&StoreLocation::File(dir.path().join("trader.db")))
            .await
            .unwrap();
        let mut rt = Runtime::new(
            config(),
            exchange.clone(),
            LocalLedger::new(lib.clone()),
            store,
        )
        .await
        .unwrap();
        let handle = rt.handle();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(trader_service::server::serve(handle, listener, async {
            let _ = stopped.await;
        }));
        let mut tries = 0;
        let channel = loop {
            match tonic::transport::Endpoint::from_shared(url.clone())
                .unwrap()
                .connect()
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    tries += 1;
                    assert!(tries < 500, "server never came up: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        (rt, TraderServiceClient::new(channel), stop)
    }

    /// The trader process dies and starts again on the same store file
    /// (with a new control server).
    async fn restart(&mut self) {
        if let Some(s) = self.stop_server.take() {
            let _ = s.send(());
        }
        let (rt, client, stop) = Self::start(&self.exchange, &self.lib, &self.dir).await;
        self.rt = rt;
        self.client = client;
        self.stop_server = Some(stop);
    }

    fn now_ms(&self) -> i64 {
        self.paper.clock().now_ms()
    }

    /// Sends an RPC from its own task and lets the runtime answer it
    /// between steps, as the loop does.
    async fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(
            TraderServiceClient<Channel>,
        ) -> std::pin::Pin<Box<dyn Future<Output = T> + Send>>,
    ) -> T {
        let task = tokio::spawn(f(self.client.clone()));
        loop {
            self.rt.serve_control(self.now_ms()).await.unwrap();
            if task.is_finished() {
                return task.await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn hold(
        &mut self,
        id: &str,
        request_id: &str,
        secs: i64,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::KeepHoldingRequest {
            position_id: id.into(),
            request_id: request_id.into(),
            hold_seconds: secs,
            reason: "waiting for the rebound".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.keep_holding(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    async fn release(
        &mut self,
        id: &str,
        request_id: &str,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::ReleaseHoldRequest {
            position_id: id.into(),
            request_id: request_id.into(),
            reason: "rebound is not coming".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.release_hold(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    async fn breakeven(
        &mut self,
        id: &str,
        request_id: &str,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::RepriceToBreakevenRequest {
            position_id: id.into(),
            request_id: request_id.into(),
            reason: "free the capital".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.reprice_to_breakeven(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    async fn close(
        &mut self,
        id: &str,
        request_id: &str,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::CloseAtMarketRequest {
            position_id: id.into(),
            request_id: request_id.into(),
            reason: "cut the loss".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.close_at_market(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    /// Market orders the paper exchange filled, by client id.
    fn market_fills(&self) -> Vec<trader_service::exchange::OrderInfo> {
        self.paper.with_book(|b| {
            b.closed_orders()
                .into_iter()
                .chain(b.open_orders())
                .filter(|o| o.order_type == trader_service::exchange::OrderType::Market)
                .collect()
        })
    }

    async fn regime(
        &mut self,
        regime: &str,
        ttl: i64,
        request_id: &str,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::SetRegimeOverrideRequest {
            regime: regime.into(),
            ttl_seconds: ttl,
            request_id: request_id.into(),
            reason: "news day".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.set_regime_override(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    async fn queue(&mut self) -> Vec<pb::CleanupQueueEntry> {
        self.client
            .list_cleanup_queue(pb::ListCleanupQueueRequest {})
            .await
            .unwrap()
            .into_inner()
            .positions
    }

    async fn status(&mut self) -> pb::GetStatusResponse {
        self.client
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    /// Runs loops until one hangs (the faulty exchange never answers), then
    /// drops it there: the process is killed mid-step. Returns whether it
    /// hung.
    async fn minutes_until_hang(&mut self, n: usize, p: Decimal) -> bool {
        for _ in 0..n {
            let c = flat(self.t, p);
            self.paper.step(&c);
            self.t = c.time + 60;
            let step = self.rt.step(self.now_ms());
            if tokio::time::timeout(Duration::from_millis(500), step)
                .await
                .is_err()
            {
                return true;
            }
        }
        false
    }

    async fn minutes(&mut self, n: usize, p: Decimal) {
        for _ in 0..n {
            self.candle(flat(self.t, p)).await;
        }
    }

    async fn candle(&mut self, c: Candle) {
        self.paper.step(&c);
        self.rt.step(self.now_ms()).await.unwrap();
        self.t = c.time + 60;
    }

    /// Entry 0.0998 filled (B: a sell exit at 0.100798), then the market
    /// sits at 0.0990 (1.8 % away) until the position is in band
    /// write_off. Returns its ledger id.
    async fn write_off_position(&mut self) -> String {
        self.minutes(3, dec!(0.1)).await;
        self.candle(Candle {
            time: self.t,
            open: dec!(0.1),
            high: dec!(0.1),
            low: dec!(0.0990),
            close: dec!(0.0990),
            volume: dec!(1000),
        })
        .await;
        self.minutes(32, dec!(0.0990)).await;
        let pos = self.lib.open_positions(BOT, Some(0)).await.unwrap();
        assert_eq!(pos.len(), 1);
        pos[0].position_id.to_string()
    }

    async fn journal(&self, id: &str) -> Vec<EventDetails> {
        self.lib
            .journal(&JournalScope::Position(id.parse().unwrap()), 0, 100)
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.details)
            .collect()
    }

    async fn kinds(&self, id: &str) -> Vec<&'static str> {
        self.journal(id)
            .await
            .iter()
            .map(|d| match d {
                EventDetails::Created(_) => "created",
                EventDetails::ChurnerProfit(_) => "churner_profit",
                EventDetails::Repriced(_) => "repriced",
                EventDetails::Filled(_) => "filled",
                EventDetails::OperatorAction(_) => "operator_action",
                EventDetails::KeepHolding(_) => "keep_holding",
                _ => "other",
            })
            .collect()
    }

    fn exit_price(&self) -> Decimal {
        self.rt.engine().open_exits().next().unwrap().price
    }

    async fn flush(&mut self) {
        self.rt.flush(self.now_ms()).await.unwrap();
    }

    async fn credit(&self, id: &str, key: &str, amount: Decimal) {
        let ledger = LocalLedger::new(self.lib.clone());
        healing::credit(&ledger, id.parse().unwrap(), key, amount, self.t).await;
    }
}

/// Proves, over gRPC: a write-off position is in the cleanup queue with
/// its facts and actions; KeepHolding hides it (the status shows the hold),
/// journals one `keep_holding` row with the reason, and a retry with the
/// same request id returns the first answer without a second row, also
/// after a trader restart; the same id for another request is refused;
/// ReleaseHold brings it back (and is refused when nothing is held);
/// RepriceToBreakeven moves the exit to entry x 1.005 (no subsidy: reduced
/// profit), journals `operator_action` and `repriced` (reason operator,
/// nothing consumed); a second breakeven has nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_release_and_breakeven_leave_their_history() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    let q = r.queue().await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].position_id, id);
    assert_eq!(q[0].exit_price, "0.100798");
    assert!(q[0].age_seconds > 1_700, "{:?}", q[0]);
    assert_eq!(
        q[0].actions,
        ["reprice_to_breakeven", "close_at_market", "keep_holding"]
    );
    // Need: (0.100798 - 0.100299) x volume.
    let volume = r.rt.engine().open_exits().next().unwrap().volume;
    assert_eq!(
        q[0].subsidy_needed.parse::<Decimal>().unwrap(),
        dec!(0.000499) * volume
    );

    let first = r.hold(&id, "hold-1", 3_600).await.unwrap();
    assert!(!first.replayed);
    assert_eq!(first.action, "keep_holding");
    assert_eq!(first.position_id, id);
    r.minutes(1, dec!(0.0990)).await;
    assert!(r.queue().await.is_empty(), "held: out of the queue");
    let s = r.status().await;
    assert_eq!(s.positions.len(), 1);
    let again = r.hold(&id, "hold-1", 3_600).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.message, first.message);
    let other = r.hold(&id, "hold-1", 7_200).await.unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert!(other.message().contains("different request"), "{other:?}");

    r.flush().await;
    r.restart().await;
    let after = r.hold(&id, "hold-1", 3_600).await.unwrap();
    assert!(after.replayed, "the answer survives a restart");
    r.minutes(1, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.kinds(&id).await, ["created", "keep_holding"]);
    match &r.journal(&id).await[1] {
        EventDetails::KeepHolding(k) => {
            assert_eq!(k.reason, "waiting for the rebound");
            assert_eq!(k.hold_until.timestamp(), first.at.unwrap().seconds + 3_600);
        }
        other => panic!("{other:?}"),
    }

    // On hold: breakeven is refused with the reason.
    let held = r.breakeven(&id, "be-0").await.unwrap_err();
    assert_eq!(held.code(), Code::FailedPrecondition);
    assert!(held.message().contains("on hold"), "{held:?}");

    r.release(&id, "rel-1").await.unwrap();
    let not_held = r.release(&id, "rel-2").await.unwrap_err();
    assert_eq!(not_held.code(), Code::FailedPrecondition);
    assert!(not_held.message().contains("not on hold"), "{not_held:?}");
    r.minutes(1, dec!(0.0990)).await;
    assert_eq!(r.queue().await.len(), 1, "released: back in the queue");

    let be = r.breakeven(&id, "be-1").await.unwrap();
    assert!(be.message.contains("0.100299"), "{be:?}");
    r.minutes(2, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100299), "entry 0.0998 x 1.005");
    let nothing = r.breakeven(&id, "be-2").await.unwrap_err();
    assert_eq!(nothing.code(), Code::FailedPrecondition);
    assert!(nothing.message().contains("nothing to do"), "{nothing:?}");
    let replay = r.breakeven(&id, "be-1").await.unwrap();
    assert!(replay.replayed);
    r.minutes(1, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(
        r.kinds(&id).await,
        [
            "created",
            "keep_holding",
            "operator_action",
            "operator_action",
            "repriced"
        ]
    );
    let journal = r.journal(&id).await;
    match (&journal[2], &journal[3], &journal[4]) {
        (
            EventDetails::OperatorAction(a),
            EventDetails::OperatorAction(b),
            EventDetails::Repriced(p),
        ) => {
            assert_eq!(
                (a.action.as_str(), a.operator.as_str()),
                ("release_hold", "alice")
            );
            assert_eq!(b.action, "reprice_to_breakeven");
            assert_eq!(b.reason, "free the capital");
            assert_eq!(p.reason, RepriceReason::Operator);
            assert_eq!(p.new_price, dec!(0.100299));
            assert_eq!(p.subsidy_consumed, Decimal::ZERO);
        }
        other => panic!("{other:?}"),
    }
    // One exit on the book, at the new price.
    let exits: Vec<_> = r
        .paper
        .with_book(|b| b.open_orders())
        .into_iter()
        .filter(|o| faulty::is_exit(o.cl_ord_id.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].limit_price, Some(dec!(0.100299)));
}

/// Proves: malformed requests are INVALID_ARGUMENT and an unknown position
/// NOT_FOUND, each with a message, and none of them changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_their_reason_and_change_nothing() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    for (res, code, words) in [
        (
            r.hold("abc", "x1", 3_600).await,
            Code::InvalidArgument,
            "positive integer",
        ),
        (
            r.hold(&id, "x2", 30).await,
            Code::InvalidArgument,
            "out of range",
        ),
        (
            r.hold(&id, "x3", 31 * 86_400).await,
            Code::InvalidArgument,
            "out of range",
        ),
        (
            r.hold(&id, "", 3_600).await,
            Code::InvalidArgument,
            "request_id",
        ),
        (
            r.hold("999", "x4", 3_600).await,
            Code::NotFound,
            "no open position 999",
        ),
        (
            r.breakeven("999", "x5").await,
            Code::NotFound,
            "no open position",
        ),
        (
            r.release(&id, "x6").await,
            Code::FailedPrecondition,
            "not on hold",
        ),
        (
            r.regime("sideways", 3_600, "x7").await,
            Code::InvalidArgument,
            "ranging",
        ),
        (
            r.regime("unknown", 3_600, "x8").await,
            Code::InvalidArgument,
            "ranging",
        ),
        (
            r.regime("ranging", 10, "x9").await,
            Code::InvalidArgument,
            "ttl_seconds",
        ),
    ] {
        let e = res.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(words), "{e:?}");
    }
    r.minutes(1, dec!(0.0990)).await;
    r.flush().await;
    assert_eq!(r.kinds(&id).await, ["created"], "nothing journaled");
    assert_eq!(r.queue().await.len(), 1);
}

/// Proves: an operator breakeven that arrives while the loop's own
/// subsidized reprice of the same exit is in flight is refused (nothing
/// doubled); after it, a breakeven spends only what the slot has (capped
/// debit, journaled `operator` with that consumption) and the ledger's
/// balance and the trader's view end equal at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakeven_races_the_loops_reprice_and_spends_only_the_balance() {
    let mut r = Run::new().await;
    let id = r.write_off_position().await;
    r.credit(&id, "credit-1", dec!(0.01)).await;
    // Cancels fail for now, so the loop's own reprice stays in flight
    // (cancel wanted, not confirmed) across loops.
    r.exchange.set(8);
    let mut raced = false;
    for _ in 0..20 {
        r.minutes(1, dec!(0.0990)).await;
        if r.rt.engine().open_exits().next().unwrap().reprice.is_some() {
            let e = r.breakeven(&id, "be-race").await.unwrap_err();
            assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
            assert!(e.message().contains("in progress"), "{e:?}");
            raced = true;
            break;
        }
    }
    assert!(raced, "the loop's reprice must have started");
    r.exchange.set(0);
    r.minutes(2, dec!(0.0990)).await;
    let partial = r.exit_price();
    assert!(
        partial < dec!(0.100798) && partial > dec!(0.100299),
        "{partial}"
    );

    // More credit; within the loop's 600 s cooldown the operator moves it.
    r.credit(&id, "credit-2", dec!(0.005)).await;
    r.minutes(6, dec!(0.0990)).await; // the reconciliation syncs the view
    // 0.005 plus what the partial move left of the first 0.01 (it rounds
    // so it never spends more than the balance).
    let bal = r.rt.subsidy().balance(0);
    assert!(bal >= dec!(0.005) && bal < dec!(0.0051), "{bal}");
    let be = r.breakeven(&id, "be-1").await.unwrap();
    assert!(
        be.message.contains(&format!("subsidy pays {bal} of")),
        "{be:?}"
    );
    r.minutes(2, dec!(0.0990)).await;
    assert_eq!(r.exit_price(), dec!(0.100299));
    r.flush().await;
    let consumed: Vec<(RepriceReason, Decimal)> = r
        .journal(&id)
        .await
        .iter()
        .filter_map(|d| match d {
            EventDetails::Repriced(p) => Some((p.reason, p.subsidy_consumed)),
            _ => None,
        })
        .collect();
    assert_eq!(consumed.len(), 2, "{consumed:?}");
    assert_eq!(consumed[0].0, RepriceReason::Subsidy);
    assert!(
        consumed[0].1 > Decimal::ZERO && consumed[0].1 <= dec!(0.01),
        "{consumed:?}"
    );
    assert_eq!(consumed[1], (RepriceReason::Operator, bal));
    let ledger = r
        .lib
        .subsidy_balance(BOT, 0)
        .await
        .unwrap()
        .totals
        .balance();
    assert_eq!(ledger, dec!(0.015) - consumed[0].1 - consumed[1].1);
    assert_eq!(
        ledger,
        Decimal::ZERO,
        "the operator spent what the slot had"
    );
    assert_eq!(r.rt.subsidy().balance(0), ledger);
}

/// Proves: a regime override is shown in the status with its expiry,
/// survives a restart, and `auto` clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regime_override_is_shown_survives_restart_and_clears() {
    let mut r = Run::new().await;
    r.minutes(2, dec!(0.1)).await;
    let set = r.regime("bearish", 7_200, "rg-1").await.unwrap();
    assert_eq!(set.action, "set_regime_override");
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(regime.state, "bearish");
    let until = regime.override_until.unwrap().seconds;
    assert_eq!(until, set.at.unwrap().seconds + 7_200);
    r.flush().await;
    r.restart().await;
    r.minutes(1, dec!(0.1)).await;
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(
        (
            regime.state.as_str(),
            regime.override_until.map(|t| t.seconds)
        ),
        ("bearish", Some(until))
    );
    r.regime("auto", 0, "rg-2").await.unwrap();
    let regime = r.status().await.healing.unwrap().regime.unwrap();
    assert_eq!(regime.override_until, None);
    assert_ne!(regime.state, "bearish");
}

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
        r.kinds(&id).await,
        ["created", "operator_action", "other"],
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
    r.rt = Runtime::new(
        cfg,
        r.exchange.clone(),
        LocalLedger::new(r.lib.clone()),
        store,
    )
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
        ["created", "operator_action", "other"],
        "one close journaled"
    );
    let again = r.close(&id, "close-1").await.unwrap();
    assert!(again.replayed);
}
