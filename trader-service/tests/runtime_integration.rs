//! Integration tests of the trader runtime: the real [`Runtime`] over the
//! paper exchange and the in-process ledger (through its gRPC service
//! implementation), with a file store in a temp dir.

#![allow(missing_docs)]

mod faulty;
mod grid;
#[path = "runtime_integration/migration.rs"]
mod migration;
use migration::stale_open;

use faulty::Faulty;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use healgrid_proto::ledger::v1 as pb;
use ledger_service::{EventDetails, JournalScope, Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::Status;
use trader_service::engine::EngineConfig;
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, Exchange, OrderKind, OrderRequest, SimClock};
use trader_service::pair::{Candle, Side};
use trader_service::runtime::ledger::{LedgerApi, LocalLedger};
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BOT: &str = "it-bot";

fn engine_config(slots: u32) -> EngineConfig {
    let mut c = EngineConfig::defaults(grid::spec());
    c.slots = slots;
    c.order_size = trader_service::engine::OrderSize::Usd(dec!(6));
    c.entry_pct = dec!(0.2);
    c.profit_pct = dec!(0.5);
    c.validate().0
}

type Local = LocalLedger<SqliteStore>;

async fn ledger() -> (Ledger<SqliteStore>, Local) {
    let l = Ledger::in_memory().await.unwrap();
    (l.clone(), LocalLedger::new(l))
}

fn runtime_config(slots: u32) -> RuntimeConfig {
    let mut c = RuntimeConfig::new(BOT, engine_config(slots));
    c.call_budget = 30;
    c
}

async fn file_store(dir: &tempfile::TempDir) -> TraderStore {
    TraderStore::open(&StoreLocation::File(dir.path().join("trader.db")))
        .await
        .unwrap()
}

/// Feeds candles to the paper book and runs one runtime step per candle.
async fn drive<E: Exchange, L: LedgerApi>(
    rt: &mut Runtime<E, L>,
    paper: &PaperExchange,
    cs: &[Candle],
) {
    for c in cs {
        paper.step(c);
        rt.step(paper.clock().now_ms()).await.unwrap();
    }
}

/// Checks the ledger mirrors the engine exactly: one open position per
/// engine exit, closed positions = booked cycles with the same net sum, and
/// every position's journal has exactly one `created` (+ one `filled` when
/// closed filled), no duplicates.
async fn assert_ledger_mirrors(
    ledger: &Ledger<SqliteStore>,
    open_exits: usize,
    cycles: u64,
    net: Decimal,
) {
    let open = ledger.open_positions(BOT, None).await.unwrap();
    let closed = ledger.position_history(BOT, None, 1000).await.unwrap();
    assert_eq!(
        open.len(),
        open_exits,
        "one open ledger position per engine exit"
    );
    assert_eq!(
        closed.len() as u64,
        cycles,
        "one closed position per booked cycle"
    );
    let ledger_net: Decimal = closed
        .iter()
        .map(|p| {
            p.outcome
                .as_ref()
                .and_then(|o| o.net_profit)
                .unwrap_or_default()
        })
        .sum();
    assert_eq!(ledger_net, net, "ledger net equals booked net");
    let mut keys: Vec<&str> = open
        .iter()
        .chain(&closed)
        .map(|p| p.open_key.as_str())
        .collect();
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "no duplicate open keys");
    for p in open.iter().chain(&closed) {
        let page = ledger
            .journal(&JournalScope::Position(p.position_id), 0, 1000)
            .await
            .unwrap();
        let created = page
            .entries
            .iter()
            .filter(|e| matches!(e.details, EventDetails::Created(_)))
            .count();
        let filled = page
            .entries
            .iter()
            .filter(|e| matches!(e.details, EventDetails::Filled(_)))
            .count();
        assert_eq!(created, 1, "position {} created once", p.position_id);
        assert_eq!(
            filled,
            usize::from(p.outcome.is_some()),
            "filled once iff closed"
        );
    }
}

fn open_cl_ord_ids_unique(paper: &PaperExchange) {
    let open = paper.with_book(|b| b.open_orders());
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for o in &open {
        *by.entry(o.cl_ord_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert!(
        by.values().all(|n| *n == 1),
        "duplicate open order per cl_ord_id: {by:?}"
    );
}

fn new_paper(first: &Candle) -> PaperExchange {
    PaperExchange::new(grid::paper_config(60), SimClock::new(first.time * 1000))
}

/// Proves: over a synthetic run, positions open and close in the ledger
/// exactly as the engine booked them (counts, net sum, created/filled once).
#[tokio::test]
async fn ledger_mirrors_engine_bookings() {
    let cs = grid::choppy_candles(3000, 7);
    let dir = tempfile::tempdir().unwrap();
    let paper = new_paper(&cs[0]);
    let (lib, local) = ledger().await;
    let mut rt = Runtime::new(
        runtime_config(3),
        paper.clone(),
        local,
        file_store(&dir).await,
    )
    .await
    .unwrap();
    drive(&mut rt, &paper, &cs).await;
    rt.flush(paper.clock().now_ms()).await.unwrap();
    let s = rt.stats().clone();
    assert!(s.completed_cycles > 5, "the run must book cycles: {s:?}");
    assert!(
        rt.engine().open_exits().all(|x| x.position_id.is_some()),
        "acks fed back"
    );
    assert_ledger_mirrors(
        &lib,
        rt.engine().open_exits().count(),
        s.completed_cycles,
        s.net_pnl,
    )
    .await;
    open_cl_ord_ids_unique(&paper);
    assert_exit_txids(&lib, &paper).await;
}

/// Checks every ledger position records the txid of the exit that worked
/// it: an open position, the exit still resting on the exchange (as the
/// engine knows it); a closed one, an exit the exchange saw.
async fn assert_exit_txids(ledger: &Ledger<SqliteStore>, paper: &PaperExchange) {
    let resting: BTreeMap<String, Decimal> = paper.with_book(|b| {
        b.open_orders()
            .into_iter()
            .filter_map(|o| o.limit_price.map(|p| (o.txid, p)))
            .collect()
    });
    for p in ledger.open_positions(BOT, None).await.unwrap() {
        assert_eq!(
            resting.get(&p.exit_txid),
            Some(&p.current_exit_price),
            "open position {} names its resting exit",
            p.position_id
        );
    }
    for p in ledger.position_history(BOT, None, 1000).await.unwrap() {
        assert!(
            !p.exit_txid.is_empty() && !resting.contains_key(&p.exit_txid),
            "closed position {} names its (filled) exit, got {:?}",
            p.position_id,
            p.exit_txid
        );
    }
}

/// A ledger that answers UNAVAILABLE while `down` is set.
#[derive(Clone)]
struct Flaky {
    inner: Local,
    down: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self) -> Result<(), Status> {
        if self.down.load(Ordering::SeqCst) {
            Err(Status::unavailable("ledger down"))
        } else {
            Ok(())
        }
    }
}

impl LedgerApi for Flaky {
    async fn open_position(
        &self,
        r: pb::OpenPositionRequest,
    ) -> Result<pb::OpenPositionResponse, Status> {
        self.check()?;
        self.inner.open_position(r).await
    }
    async fn close_position(
        &self,
        r: pb::ClosePositionRequest,
    ) -> Result<pb::ClosePositionResponse, Status> {
        self.check()?;
        self.inner.close_position(r).await
    }
    async fn journal_event(
        &self,
        r: pb::JournalEventRequest,
    ) -> Result<pb::JournalEventResponse, Status> {
        self.check()?;
        self.inner.journal_event(r).await
    }
    async fn reprice_position(
        &self,
        r: pb::RepricePositionRequest,
    ) -> Result<pb::RepricePositionResponse, Status> {
        self.check()?;
        self.inner.reprice_position(r).await
    }
    async fn list_open_positions(
        &self,
        r: pb::ListOpenPositionsRequest,
    ) -> Result<pb::ListOpenPositionsResponse, Status> {
        self.check()?;
        self.inner.list_open_positions(r).await
    }
    async fn get_subsidy_balance(
        &self,
        r: pb::GetSubsidyBalanceRequest,
    ) -> Result<pb::GetSubsidyBalanceResponse, Status> {
        self.check()?;
        self.inner.get_subsidy_balance(r).await
    }
    async fn append_bot_journal(
        &self,
        r: pb::AppendBotJournalRequest,
    ) -> Result<pb::AppendBotJournalResponse, Status> {
        self.check()?;
        self.inner.append_bot_journal(r).await
    }
}

/// Proves: while the ledger is down the outbox grows and trading goes on
/// (fills and bookings continue); after recovery the ledger ends with
/// exactly the expected positions and events, no duplicates.
#[tokio::test]
async fn ledger_outage_outbox_grows_then_catches_up() {
    let cs = grid::choppy_candles(3000, 11);
    let dir = tempfile::tempdir().unwrap();
    let paper = new_paper(&cs[0]);
    let (lib, local) = ledger().await;
    let down = Arc::new(AtomicBool::new(false));
    let flaky = Flaky {
        inner: local,
        down: down.clone(),
    };
    let mut rt = Runtime::new(
        runtime_config(3),
        paper.clone(),
        flaky,
        file_store(&dir).await,
    )
    .await
    .unwrap();
    let _handle = rt.handle();
    drive(&mut rt, &paper, &cs[..500]).await;
    let before = rt.stats().clone();
    down.store(true, Ordering::SeqCst);
    drive(&mut rt, &paper, &cs[500..2000]).await;
    let during = rt.stats().clone();
    let status = rt.status(paper.clock().now_ms()).await.unwrap();
    assert!(
        during.fills > before.fills,
        "trading went on during the outage"
    );
    assert!(status.outbox.depth > 0, "outbox grew during the outage");
    assert_eq!(status.outbox.parked, 0, "nothing parked for an outage");
    down.store(false, Ordering::SeqCst);
    drive(&mut rt, &paper, &cs[2000..]).await;
    rt.flush(paper.clock().now_ms()).await.unwrap();
    let s = rt.stats().clone();
    assert_eq!(
        rt.status(paper.clock().now_ms())
            .await
            .unwrap()
            .outbox
            .depth,
        0
    );
    assert_ledger_mirrors(
        &lib,
        rt.engine().open_exits().count(),
        s.completed_cycles,
        s.net_pnl,
    )
    .await;
}

/// Proves: dropping the runtime mid-run, letting the market move while it
/// is down (fills missed), and rebuilding it from the same store file
/// yields no duplicate order, position or journal event, and the missed
/// fills are replayed (the ledger still mirrors every booking).
#[tokio::test]
async fn restart_replays_missed_fills_without_duplicates() {
    let cs = grid::choppy_candles(3000, 23);
    let dir = tempfile::tempdir().unwrap();
    let paper = new_paper(&cs[0]);
    let (lib, local) = ledger().await;
    let mut rt = Runtime::new(
        runtime_config(3),
        paper.clone(),
        local.clone(),
        file_store(&dir).await,
    )
    .await
    .unwrap();
    drive(&mut rt, &paper, &cs[..1200]).await;
    let first = rt.stats().clone();
    drop(rt);
    // Down for 300 candles: the book keeps filling.
    let mut missed = 0;
    for c in &cs[1200..1500] {
        missed += paper.step(c).len();
    }
    let mut rt = Runtime::new(
        runtime_config(3),
        paper.clone(),
        local,
        file_store(&dir).await,
    )
    .await
    .unwrap();
    drive(&mut rt, &paper, &cs[1500..]).await;
    rt.flush(paper.clock().now_ms()).await.unwrap();
    let second = rt.stats().clone();
    assert!(missed > 0, "the test must miss fills while down");
    assert!(
        rt.engine().open_exits().all(|x| x.position_id.is_some()),
        "every exit knows its ledger position after restart"
    );
    open_cl_ord_ids_unique(&paper);
    assert_ledger_mirrors(
        &lib,
        rt.engine().open_exits().count(),
        first.completed_cycles + second.completed_cycles,
        first.net_pnl + second.net_pnl,
    )
    .await;
}

/// A runtime with `slots` on a [`Faulty`] paper exchange in `mode`, the
/// in-process ledger and a memory store; also the paper book and ledger.
async fn faulty_runtime(
    mode: u8,
    slots: u32,
    first: &Candle,
) -> (Runtime<Faulty, Local>, PaperExchange, Ledger<SqliteStore>) {
    let paper = new_paper(first);
    let (lib, local) = ledger().await;
    let ex = Faulty::new(paper.clone(), mode);
    let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
    let rt = Runtime::new(runtime_config(slots), ex, local, store)
        .await
        .unwrap();
    (rt, paper, lib)
}

/// Proves: a position whose exit the exchange refuses still reaches the
/// ledger (without an exit txid, logged), once, with its id fed back to
/// the engine; it is not left waiting for a txid that will never come.
#[tokio::test]
async fn refused_exit_still_reaches_the_ledger() {
    let cs = grid::choppy_candles(600, 5);
    let (mut rt, paper, lib) = faulty_runtime(3, 2, &cs[0]).await;
    let mut i = 0;
    while i < cs.len() && rt.engine().open_exits().count() < 2 {
        paper.step(&cs[i]);
        rt.step(paper.clock().now_ms()).await.unwrap();
        i += 1;
    }
    // One more loop after the last refusal so its write is delivered.
    paper.step(&cs[i.min(cs.len() - 1)]);
    rt.step(paper.clock().now_ms()).await.unwrap();
    let exits = rt.engine().open_exits().count();
    assert!(exits >= 2, "entries must fill in this market");
    assert!(rt.engine().open_exits().all(|x| x.position_id.is_some()));
    let open = lib.open_positions(BOT, None).await.unwrap();
    assert_eq!(open.len(), exits, "one ledger position per refused exit");
    assert!(open.iter().all(|p| p.exit_txid.is_empty()), "{open:?}");
}

/// Proves: an exit that fills better than its target journals exactly one
/// `over_performance` credit with `excess = |fill - target| x volume`, and
/// the credits become the slots' subsidy.
#[tokio::test]
async fn better_exit_fills_credit_over_performance() {
    let cs = grid::choppy_candles(3000, 7);
    let (mut rt, paper, lib) = faulty_runtime(4, 3, &cs[0]).await;
    drive(&mut rt, &paper, &cs).await;
    rt.flush(paper.clock().now_ms()).await.unwrap();
    let closed = lib.position_history(BOT, None, 1000).await.unwrap();
    assert!(closed.len() > 5, "the run must close positions");
    let mut credited = Decimal::ZERO;
    for p in &closed {
        let outcome = p.outcome.as_ref().unwrap();
        let fill = outcome.exit_price.unwrap();
        let expected = (fill - p.original_exit_price).abs() * p.entry.volume;
        let page = lib
            .journal(&JournalScope::Position(p.position_id), 0, 100)
            .await
            .unwrap();
        let excess: Vec<Decimal> = page
            .entries
            .iter()
            .filter_map(|e| match &e.details {
                EventDetails::OverPerformance(d) => Some(d.excess),
                _ => None,
            })
            .collect();
        assert_eq!(excess, [expected], "position {}", p.position_id);
        credited += expected;
    }
    let mut earned = Decimal::ZERO;
    for slot in 0..3 {
        earned += lib
            .subsidy_balance(BOT, slot)
            .await
            .unwrap()
            .totals
            .earned();
    }
    assert_eq!(earned, credited, "every credit is subsidy, nothing else");
}

async fn crash_during_placement(mode: u8) {
    let cs = grid::choppy_candles(2500, 31);
    let dir = tempfile::tempdir().unwrap();
    let paper = new_paper(&cs[0]);
    let (lib, local) = ledger().await;
    let flag = Arc::new(AtomicU8::new(0));
    let ex = Faulty::sharing(paper.clone(), flag.clone());
    let mut rt = Runtime::new(
        runtime_config(3),
        ex.clone(),
        local.clone(),
        file_store(&dir).await,
    )
    .await
    .unwrap();
    let mut i = 0;
    // Run until a loop hangs inside add_order after its write-ahead commit.
    flag.store(mode, Ordering::SeqCst);
    let mut crashed = false;
    while i < cs.len() && !crashed {
        paper.step(&cs[i]);
        i += 1;
        let step = rt.step(paper.clock().now_ms());
        crashed = tokio::time::timeout(Duration::from_millis(200), step)
            .await
            .is_err();
    }
    assert!(crashed, "a placement must have been attempted");
    let placed_during_crash = paper.with_book(|b| b.open_orders().len());
    drop(rt);
    flag.store(0, Ordering::SeqCst);
    let mut rt = Runtime::new(runtime_config(3), ex, local, file_store(&dir).await)
        .await
        .unwrap();
    drive(&mut rt, &paper, &cs[i..i + 1]).await;
    open_cl_ord_ids_unique(&paper);
    let held: Vec<String> = rt
        .status(paper.clock().now_ms())
        .await
        .unwrap()
        .slots
        .iter()
        .flat_map(|s| s.orders.iter().filter_map(|o| o.txid.clone()))
        .collect();
    let on_book = paper.with_book(|b| b.open_orders());
    for o in &on_book {
        assert!(
            held.contains(&o.txid),
            "every order on the book is held by the engine: {}",
            o.txid
        );
    }
    if mode == 1 {
        assert!(placed_during_crash > 0);
    }
    drive(&mut rt, &paper, &cs[i + 1..]).await;
    rt.flush(paper.clock().now_ms()).await.unwrap();
    open_cl_ord_ids_unique(&paper);
    let s = rt.stats().clone();
    // Bookings of the first runtime before the crash are in the ledger too;
    // compare the ledger with itself: open == engine exits, no duplicates.
    let open = lib.open_positions(BOT, None).await.unwrap();
    assert_eq!(open.len(), rt.engine().open_exits().count());
    let _ = s;
}

/// Proves: a crash after the exchange accepted an order but before the
/// runtime recorded it does not duplicate it: the restarted runtime finds
/// it by `cl_ord_id` and adopts it.
#[tokio::test]
async fn crash_after_exchange_accepted_does_not_duplicate() {
    crash_during_placement(1).await;
}

/// Proves: a crash after the write-ahead commit but before the exchange
/// heard of the order places it exactly once after restart.
#[tokio::test]
async fn crash_after_write_ahead_places_once() {
    crash_during_placement(2).await;
}

/// Proves: the ledger accepts every request shape the sink builds (open,
/// over-performance credit, filled close, exchange-cancelled close without
/// prices), and the over-performance excess becomes the slot's subsidy.
#[tokio::test]
async fn ledger_accepts_every_write_shape() {
    use healgrid_proto::convert::parse_decimal;
    use trader_service::runtime::sink::{close_request, open_request, over_performance_request};
    use trader_service::runtime::writes::{CloseKind, CloseWrite, OverPerformanceWrite};
    let (_lib, local) = ledger().await;
    let t = 1_700_000_000;
    let a = local
        .open_position(open_request(BOT, &stale_open("E-1", t)))
        .await
        .unwrap()
        .position
        .unwrap()
        .position_id;
    local
        .journal_event(over_performance_request(
            a,
            "overperf:E-1",
            &OverPerformanceWrite {
                open_key: "E-1".into(),
                at: t + 60,
                expected_profit: dec!(0.03),
                actual_profit: dec!(0.042),
                excess: dec!(0.012),
            },
        ))
        .await
        .unwrap();
    let filled = CloseWrite {
        open_key: "E-1".into(),
        reason: CloseKind::Filled,
        exit_price: Some(dec!(0.1007)),
        exit_cost: Some(dec!(6.042)),
        exit_fee: Some(dec!(0.0151)),
        exit_time: t + 60,
        net_profit: Some(dec!(0.0119)),
        note: "exit filled".into(),
        exit_txid: Some("OX-E-1".into()),
    };
    local
        .close_position(close_request(a, "close:E-1", &filled))
        .await
        .unwrap();
    // Same key again: replayed, not duplicated.
    let again = local
        .close_position(close_request(a, "close:E-1", &filled))
        .await
        .unwrap();
    assert!(again.replayed);
    let b = local
        .open_position(open_request(BOT, &stale_open("E-2", t)))
        .await
        .unwrap()
        .position
        .unwrap()
        .position_id;
    let cancelled = CloseWrite {
        open_key: "E-2".into(),
        reason: CloseKind::ExchangeCancelled,
        exit_price: None,
        exit_cost: None,
        exit_fee: None,
        exit_time: t + 120,
        net_profit: None,
        note: "gone".into(),
        exit_txid: None,
    };
    local
        .close_position(close_request(b, "close:E-2", &cancelled))
        .await
        .unwrap();
    let sub = local
        .get_subsidy_balance(healgrid_proto::ledger::v1::GetSubsidyBalanceRequest {
            bot_id: BOT.into(),
            slot_id: Some(0),
        })
        .await
        .unwrap()
        .subsidy
        .unwrap();
    assert_eq!(
        parse_decimal(&sub.earned_over_performance).unwrap(),
        dec!(0.012)
    );
}

/// Proves: with partial fills (each candle fills at most a fraction of the
/// candle volume), cumulative exchange figures still become exactly-once
/// fill deltas: the ledger mirrors the engine's bookings and the fees the
/// runtime counted equal the fees the exchange charged.
#[tokio::test]
async fn partial_fills_are_delivered_exactly_once() {
    let cs: Vec<Candle> = grid::choppy_candles(3000, 41)
        .into_iter()
        .map(|mut c| {
            c.volume = dec!(40);
            c
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = grid::paper_config(60);
    cfg.fill_participation = Some(dec!(0.5));
    let paper = PaperExchange::new(cfg, SimClock::new(cs[0].time * 1000));
    let (lib, local) = ledger().await;
    let mut rt = Runtime::new(
        runtime_config(2),
        paper.clone(),
        local,
        file_store(&dir).await,
    )
    .await
    .unwrap();
    drive(&mut rt, &paper, &cs).await;
    rt.flush(paper.clock().now_ms()).await.unwrap();
    let s = rt.stats().clone();
    assert!(s.completed_cycles > 0, "{s:?}");
    let charged: Decimal = paper
        .with_book(|b| b.trades_since(0))
        .iter()
        .map(|t| t.fee)
        .sum();
    let trades = paper.with_book(|b| b.trades_since(0)).len() as u64;
    assert!(
        trades > s.completed_cycles * 2,
        "partial fills happened: {trades} executions"
    );
    assert_eq!(s.fees_paid, charged, "every execution's fee counted once");
    assert_ledger_mirrors(
        &lib,
        rt.engine().open_exits().count(),
        s.completed_cycles,
        s.net_pnl,
    )
    .await;
}
