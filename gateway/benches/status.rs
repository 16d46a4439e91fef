//! Benchmark: what the gateway adds on top of the trader's gRPC
//! `GetStatus`. The real trader control server (`trader_service::server`,
//! with its snapshot-to-wire conversion on every call) serves a status of
//! 100 slots and 1,000 open positions; the same run then measures, at 32
//! concurrent clients, direct gRPC `GetStatus` and `GET /api/v1/status`
//! through an in-process gateway (its real router, metrics middleware
//! included), alternating rounds, and prints p50/p99 latency and
//! requests/s side by side with the goal (the gateway adds at most 2 ms at
//! p99 and keeps at least half the direct rate). Run it with `cargo bench
//! -p gateway --bench status` (optimised; `-- --quick` for a one-second
//! smoke pass).
//!
//! A one-client pair of rounds comes first: there each request makes its
//! own `GetStatus` call and JSON encoding, so it shows what the gateway
//! costs per request. At 32 clients, requests that arrive while a call runs
//! share its answer (`gateway::single_flight`).
//!
//! The status is built, not traded into: the engine holds at most one
//! position per trade, two per slot, so 100 real slots never hold 1,000
//! positions. What the gateway and the trader server do per request is the
//! same either way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::AppState;
use gateway::auth::ActionPolicy;
use gateway::clients::Backends;
use hdrhistogram::Histogram;
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use rust_decimal::Decimal;
use trader_service::engine::{AgeBand, OrderRole, Phase, TradeId};
use trader_service::pair::Side;
use trader_service::runtime::status::{
    BudgetStatusView, OrderStatusView, PositionStatusView, SlotStatusView,
};
use trader_service::runtime::{RuntimeHandle, StatusSnapshot};

const CLIENTS: usize = 32;
const SLOTS: u32 = 100;
const POSITIONS: u32 = 1000;

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

/// A snapshot as a busy trader publishes it: every slot in S2 with both
/// exits resting, and 1,000 open positions spread over the slots and bands.
fn snapshot() -> StatusSnapshot {
    const BANDS: [AgeBand; 5] = [
        AgeBand::Fresh,
        AgeBand::Aging,
        AgeBand::Stale,
        AgeBand::Stuck,
        AgeBand::WriteOff,
    ];
    let order = |slot: u32, n: u32| OrderStatusView {
        order_id: format!("{slot}:B:1:ex:{n}"),
        role: OrderRole::Exit,
        side: Side::Sell,
        price: dec("0.1012345"),
        volume: dec("98.7654321"),
        txid: Some(format!("OTX{slot}-{n}")),
    };
    let mut s = StatusSnapshot::starting("bench:XDGUSD:main", "XDGUSD");
    s.market_price = Some(dec("0.1000001"));
    s.market_price_age_sec = Some(1);
    s.last_loop_at_ms = 1_700_000_000_000;
    s.loops = 42;
    s.budget = BudgetStatusView {
        used: 5,
        limit: 30,
        deferred: 0,
    };
    s.slots = (0..SLOTS)
        .map(|slot| SlotStatusView {
            slot_id: slot,
            phase: Phase::S2,
            halted: None,
            orders: vec![order(slot, 0), order(slot, 1)],
            idle: Vec::new(),
        })
        .collect();
    s.positions = (0..POSITIONS)
        .map(|i| PositionStatusView {
            slot_id: i % SLOTS,
            trade: if i % 2 == 0 { TradeId::A } else { TradeId::B },
            cycle: u64::from(i),
            exit_order_id: format!("{}:B:{i}:ex:0", i % SLOTS),
            position_id: Some((i + 1).to_string()),
            slot_mode: trader_service::runtime::writes::SlotModeKind::Sticky,
            entry_price: dec("0.0998765"),
            exit_price: dec("0.1012345"),
            volume: dec("98.7654321"),
            band: BANDS[(i % 5) as usize],
            age_sec: i64::from(i) * 60,
            distance_pct: dec("1.2345"),
            effective_age_sec: dec("12345.678"),
            hold_until: None,
            opportunity_cost: dec("0.0123"),
        })
        .collect();
    s
}

struct Round {
    hist: Histogram<u64>,
    requests: u64,
    elapsed: Duration,
}

impl Round {
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<22} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.hist.value_at_quantile(0.5) as f64 / 1000.0,
            self.hist.value_at_quantile(0.99) as f64 / 1000.0,
        )
    }
}

async fn run<F, Fut>(secs: u64, clients: usize, make: F) -> Round
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let make = make.clone();
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                while Instant::now() < end {
                    let t = Instant::now();
                    make().await;
                    let _ = h.record(t.elapsed().as_micros() as u64);
                }
                h
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        hist.add(t.await.expect("client task")).expect("merge");
    }
    Round {
        requests: hist.len(),
        hist,
        elapsed: start.elapsed(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs = if quick { 1 } else { 5 };
    let _ = rustls::crypto::ring::default_provider().install_default();

    let trader = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trader_addr: SocketAddr = trader.local_addr()?;
    // The runtime's side stays alive for the whole run: the server answers
    // from the snapshot it last published.
    let (handle, _runtime_side) = RuntimeHandle::channel(snapshot());
    tokio::spawn(trader_service::server::serve(
        handle,
        trader,
        std::future::pending(),
    ));
    let trader_url = format!("http://{trader_addr}");
    let backends = Backends::new(&trader_url, "http://127.0.0.1:9", Duration::from_secs(5))?;
    let state = Arc::new(AppState::new(backends, ActionPolicy::Refused, None));
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api/v1/status", http.local_addr()?);
    tokio::spawn(gateway::serve(http, state, std::future::pending()));

    let grpc = TraderServiceClient::connect(trader_url).await?;
    let client = reqwest::Client::new();
    let body = client.get(&url).send().await?.bytes().await?;
    println!(
        "status: {SLOTS} slots, {POSITIONS} open positions; JSON answer {} bytes; 1 and {CLIENTS} clients, {secs} s per round",
        body.len()
    );
    let g = grpc.clone();
    let direct_call = move || {
        let mut g = g.clone();
        async move {
            g.get_status(pb::GetStatusRequest {})
                .await
                .expect("GetStatus");
        }
    };
    let (c, u) = (client.clone(), url.clone());
    let gateway_call = move || {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let r = c.get(&u).send().await.expect("GET");
            assert!(r.status().is_success());
            r.bytes().await.expect("body");
        }
    };
    for round in 1..=(if quick { 1 } else { 3 }) {
        // One client first: every request makes its own call and encoding,
        // so this is what the gateway costs per request. At 32 clients,
        // requests arriving during a running `GetStatus` share its answer.
        let direct_one = run(secs, 1, direct_call.clone()).await;
        let via_one = run(secs, 1, gateway_call.clone()).await;
        let direct = run(secs, CLIENTS, direct_call.clone()).await;
        let via = run(secs, CLIENTS, gateway_call.clone()).await;
        println!("round {round}");
        println!("  1 client:   {}", direct_one.line("gRPC GetStatus direct"));
        println!("  1 client:   {}", via_one.line("GET /api/v1/status"));
        println!(
            "  1 client:   the gateway adds {:.2} ms at p50 per request (no sharing with one client)",
            (via_one.hist.value_at_quantile(0.5) as f64
                - direct_one.hist.value_at_quantile(0.5) as f64)
                / 1000.0
        );
        println!(
            "  {CLIENTS} clients: {}",
            direct.line("gRPC GetStatus direct")
        );
        println!("  {CLIENTS} clients: {}", via.line("GET /api/v1/status"));
        let added_ms = (via.hist.value_at_quantile(0.99) as f64
            - direct.hist.value_at_quantile(0.99) as f64)
            / 1000.0;
        let kept_pct = 100.0 * (via.requests as f64 / via.elapsed.as_secs_f64())
            / (direct.requests as f64 / direct.elapsed.as_secs_f64());
        let verdict = if added_ms <= 2.0 && kept_pct >= 50.0 {
            "goal met"
        } else {
            "goal NOT met"
        };
        println!(
            "  gateway adds {added_ms:.2} ms at p99, keeps {kept_pct:.0} % of the direct rate \
             (goal: <= 2 ms, >= 50 %: {verdict})"
        );
    }
    Ok(())
}
