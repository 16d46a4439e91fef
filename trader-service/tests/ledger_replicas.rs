//! `GrpcLedger` over two real ledger gRPC servers on loopback, named by a
//! comma-separated `LEDGER_URL`.
//!
//! Proves: writes are balanced over both replicas (each server records
//! some); with one replica stopped every later write still succeeds, on
//! the other, and the stopped one is reported down (backing off); once it
//! serves again on its address, writes reach it again.

use std::net::SocketAddr;
use std::time::Duration;

use healgrid_proto::ledger::v1 as pb;
use ledger_service::AnyLedger;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trader_service::runtime::ledger::{GrpcLedger, LedgerApi};
use trader_service::runtime::ledger_replicas::ReplicaPolicy;
use trader_service::runtime::outbox::Backoff;

const BOT: &str = "replicas";

struct Replica {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn serve(ledger: AnyLedger, listener: TcpListener) -> Replica {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        ledger
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("ledger server");
    });
    Replica { stop, task }
}

impl Replica {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task");
    }
}

fn open(i: u32) -> pb::OpenPositionRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    pb::OpenPositionRequest {
        bot_id: BOT.into(),
        slot_id: Some(i % 3),
        trade_id: pb::TradeId::B as i32,
        slot_mode: pb::SlotMode::Sticky as i32,
        cycle: u64::from(i),
        open_key: format!("open-{i}"),
        entry_price: "0.0931".into(),
        entry_cost: "9.31".into(),
        entry_fee: "0.0242".into(),
        entry_volume: "100".into(),
        entry_time: Some(prost_types::Timestamp {
            seconds: i64::try_from(now).expect("time") - 60,
            nanos: 0,
        }),
        entry_regime: pb::Regime::Ranging as i32,
        entry_volatility: "0.8".into(),
        original_exit_price: "0.0940".into(),
        target_profit_pct: "1.0".into(),
        exit_txid: format!("OEXIT-{i}"),
        migration: false,
    }
}

/// Open positions a ledger holds (asked directly, not through the client
/// under test).
async fn positions(addr: SocketAddr) -> usize {
    let mut c = pb::ledger_service_client::LedgerServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    c.list_open_positions(pb::ListOpenPositionsRequest {
        bot_id: BOT.into(),
        slot_id: None,
    })
    .await
    .expect("list")
    .into_inner()
    .positions
    .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_balanced_and_fail_over_between_replicas() {
    let (la, lb) = (
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
    );
    let (addr_a, addr_b) = (la.local_addr().expect("a"), lb.local_addr().expect("b"));
    // Two independent in-memory ledgers: where a write lands shows which
    // replica took it.
    let (ledger_a, ledger_b) = (AnyLedger::memory(), AnyLedger::memory());
    let a = serve(ledger_a.clone(), la).await;
    let b = serve(ledger_b.clone(), lb).await;
    let policy = ReplicaPolicy {
        refresh: Duration::from_secs(60),
        backoff: Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_millis(400),
        },
    };
    let client = GrpcLedger::with_replicas(
        &format!("http://{addr_a}, http://{addr_b}"),
        Duration::from_secs(5),
        policy,
    )
    .expect("two URLs");

    for i in 0..10 {
        client.open_position(open(i)).await.expect("write");
    }
    let (on_a, on_b) = (positions(addr_a).await, positions(addr_b).await);
    assert_eq!(on_a + on_b, 10);
    assert!(on_a >= 3 && on_b >= 3, "balanced: {on_a} on A, {on_b} on B");

    a.shutdown().await;
    for i in 10..20 {
        client
            .open_position(open(i))
            .await
            .expect("a write with one replica down fails over");
    }
    assert_eq!(positions(addr_b).await, on_b + 10, "all on B");
    let state = client.replicas();
    assert!(
        state.contains(&(addr_a, false)) && state.contains(&(addr_b, true)),
        "A is backing off, B is up: {state:?}"
    );

    // A serves again on its address: after its back-off it is used again.
    let la = TcpListener::bind(addr_a).await.expect("rebind A");
    let a = serve(ledger_a.clone(), la).await;
    let mut i = 20;
    while positions(addr_a).await == on_a {
        assert!(i < 2000, "A never used again");
        client.open_position(open(i)).await.expect("write");
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}
