//! The runtime against a real ledger gRPC server (the production
//! `GrpcLedger` client over TCP): the ledger server is stopped mid-run
//! (outbox grows, trading goes on), restarted on the same port and file,
//! and the ledger ends with exactly the engine's positions and events.

#![allow(missing_docs)]

mod grid;

use std::net::SocketAddr;
use std::time::Duration;

use ledger_service::{EventDetails, JournalScope, Ledger};
use rust_decimal_macros::dec;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trader_service::engine::EngineConfig;
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, SimClock};
use trader_service::runtime::ledger::GrpcLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

const BOT: &str = "grpc-bot";

struct LedgerServer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn start_ledger(url: &str, addr: SocketAddr) -> LedgerServer {
    let ledger = Ledger::open_sqlite(url).await.unwrap();
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        ledger_service::serve(ledger, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    LedgerServer { stop, task }
}

async fn stop_ledger(s: LedgerServer) {
    let _ = s.stop.send(());
    s.task.await.unwrap();
}

/// Proves: over real gRPC, a ledger outage (server stopped) never stops
/// trading (fills go on, the outbox grows, nothing parked); after the
/// ledger comes back on the same port and file, the outbox drains and the
/// ledger holds exactly one open position per engine exit, one closed
/// position per booked cycle with the same net sum, and one `created`
/// (+ one `filled`) per position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_ledger_outage_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let server = start_ledger(&url, addr).await;

    let cs = grid::choppy_candles(2400, 77);
    let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(cs[0].time * 1000));
    let client =
        GrpcLedger::connect_lazy(&format!("http://{addr}"), Duration::from_secs(2)).unwrap();
    let mut engine = EngineConfig::defaults(grid::spec());
    engine.slots = 3;
    engine.order_size = trader_service::engine::OrderSize::Usd(dec!(6));
    engine.profit_pct = dec!(0.5);
    let store = TraderStore::open(&StoreLocation::File(dir.path().join("trader.db")))
        .await
        .unwrap();
    let mut rt = Runtime::new(
        RuntimeConfig::new(BOT, engine.validate().0),
        paper.clone(),
        client,
        store,
    )
    .await
    .unwrap();
    for c in &cs[..800] {
        paper.step(c);
        rt.step(paper.clock().now_ms()).await.unwrap();
    }
    stop_ledger(server).await;
    let fills_before = rt.stats().fills;
    for c in &cs[800..1600] {
        paper.step(c);
        rt.step(paper.clock().now_ms()).await.unwrap();
    }
    let st = rt.status(paper.clock().now_ms()).await.unwrap();
    assert!(
        rt.stats().fills > fills_before,
        "trading went on while the ledger was down"
    );
    assert!(st.outbox.depth > 0, "outbox grew");
    assert_eq!(st.outbox.parked, 0);

    let server = start_ledger(&url, addr).await;
    for c in &cs[1600..] {
        paper.step(c);
        rt.step(paper.clock().now_ms()).await.unwrap();
    }
    // A flush is bounded by a wall-clock timeout and honours each entry's
    // back-off (what is left stays queued for the next one), so a loaded
    // machine may need many, each a back-off cap later: keep flushing for
    // up to two minutes of wall time (a CI machine building beside this
    // test needed more than twenty).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for i in 0.. {
        if std::time::Instant::now() > deadline {
            break;
        }
        rt.flush(paper.clock().now_ms() + i * 61_000).await.unwrap();
        if rt
            .status(paper.clock().now_ms())
            .await
            .unwrap()
            .outbox
            .depth
            == 0
        {
            break;
        }
    }
    assert_eq!(
        rt.status(paper.clock().now_ms())
            .await
            .unwrap()
            .outbox
            .depth,
        0
    );
    let s = rt.stats().clone();
    let exits = rt.engine().open_exits().count();
    stop_ledger(server).await;

    let ledger = Ledger::open_sqlite(&url).await.unwrap();
    let open = ledger.open_positions(BOT, None).await.unwrap();
    let closed = ledger.position_history(BOT, None, 1000).await.unwrap();
    assert!(s.completed_cycles > 0);
    assert_eq!(open.len(), exits);
    assert_eq!(closed.len() as u64, s.completed_cycles);
    let net: rust_decimal::Decimal = closed
        .iter()
        .map(|p| {
            p.outcome
                .as_ref()
                .and_then(|o| o.net_profit)
                .unwrap_or_default()
        })
        .sum();
    assert_eq!(net, s.net_pnl);
    for p in open.iter().chain(&closed) {
        let page = ledger
            .journal(&JournalScope::Position(p.position_id), 0, 100)
            .await
            .unwrap();
        let created = page
            .entries
            .iter()
            .filter(|e| matches!(e.details, EventDetails::Created(_)))
            .count();
        assert_eq!(created, 1);
    }
}
