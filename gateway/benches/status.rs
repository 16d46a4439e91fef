//! Benchmark: what the gateway adds on top of the trader's gRPC
//! `GetStatus`. A stand-in trader serves a fixed status of 100 slots and
//! 1,000 open positions; the same run then measures, at 32 concurrent
//! clients, direct gRPC `GetStatus` and `GET /api/v1/status` through an
//! in-process gateway, alternating rounds, and prints p50/p99 latency and
//! requests/s side by side. Run it with `cargo bench -p gateway --bench
//! status` (optimised; `-- --quick` for a one-second smoke pass).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::AppState;
use gateway::auth::ActionPolicy;
use gateway::clients::Backends;
use hdrhistogram::Histogram;
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use healgrid_proto::trader::v1::trader_service_server::{TraderService, TraderServiceServer};
use tonic::{Request, Response, Status};

const CLIENTS: usize = 32;
const SLOTS: u32 = 100;
const POSITIONS: u32 = 1000;

struct FixedTrader(Arc<pb::GetStatusResponse>);

#[tonic::async_trait]
impl TraderService for FixedTrader {
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        Ok(Response::new(self.0.as_ref().clone()))
    }
    async fn pause(
        &self,
        _: Request<pb::PauseRequest>,
    ) -> Result<Response<pb::PauseResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn resume(
        &self,
        _: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::ResumeResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn retry_parked_writes(
        &self,
        _: Request<pb::RetryParkedWritesRequest>,
    ) -> Result<Response<pb::RetryParkedWritesResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn list_cleanup_queue(
        &self,
        _: Request<pb::ListCleanupQueueRequest>,
    ) -> Result<Response<pb::ListCleanupQueueResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn reprice_to_breakeven(
        &self,
        _: Request<pb::RepriceToBreakevenRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn close_at_market(
        &self,
        _: Request<pb::CloseAtMarketRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn keep_holding(
        &self,
        _: Request<pb::KeepHoldingRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn release_hold(
        &self,
        _: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn set_regime_override(
        &self,
        _: Request<pb::SetRegimeOverrideRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn spawn_churner(
        &self,
        _: Request<pb::SpawnChurnerRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn kill_churner(
        &self,
        _: Request<pb::KillChurnerRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn set_churner_reserve(
        &self,
        _: Request<pb::SetChurnerReserveRequest>,
    ) -> Result<Response<pb::OperatorActionResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
    async fn get_candles(
        &self,
        _: Request<pb::GetCandlesRequest>,
    ) -> Result<Response<pb::GetCandlesResponse>, Status> {
        Err(Status::unimplemented("bench"))
    }
}

fn status() -> pb::GetStatusResponse {
    let order = |slot: u32, n: u32| pb::Order {
        order_id: format!("{slot}:B:1:ex:{n}"),
        role: pb::OrderRole::Exit as i32,
        side: pb::Side::Sell as i32,
        price: "0.1012345".into(),
        volume: "98.7654321".into(),
        txid: format!("OTX{slot}-{n}"),
    };
    pb::GetStatusResponse {
        bot_id: "bench:XDGUSD:main".into(),
        pair: "XDGUSD".into(),
        market_price: "0.1000001".into(),
        market_price_age_seconds: Some(1),
        mode: pb::Mode::Running as i32,
        mode_reason: String::new(),
        slots: (0..SLOTS)
            .map(|s| pb::Slot {
                slot_id: s,
                phase: pb::Phase::S2 as i32,
                halted_reason: String::new(),
                orders: vec![order(s, 0), order(s, 1)],
                idle: Vec::new(),
            })
            .collect(),
        positions: (0..POSITIONS)
            .map(|i| pb::Position {
                slot_id: i % SLOTS,
                trade: pb::Trade::B as i32,
                cycle: u64::from(i),
                exit_order_id: format!("{}:B:{i}:ex:0", i % SLOTS),
                position_id: (i + 1).to_string(),
                entry_price: "0.0998765".into(),
                exit_price: "0.1012345".into(),
                volume: "98.7654321".into(),
                band: (i % 5 + 1) as i32,
                age_seconds: i64::from(i) * 60,
                distance_pct: "1.2345".into(),
                effective_age_seconds: "12345.678".into(),
            })
            .collect(),
        outbox: Some(pb::Outbox {
            depth: 0,
            parked: 0,
        }),
        last_loop_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        loops: 42,
        budget: Some(pb::CallBudget {
            used: 5,
            limit: 30,
            deferred: 0,
        }),
        parked_writes: Vec::new(),
        healing: None,
    }
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

async fn run<F, Fut>(secs: u64, make: F) -> Round
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
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
    let svc = TraderServiceServer::new(FixedTrader(Arc::new(status())));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(trader)),
    );
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
        "status: {SLOTS} slots, {POSITIONS} open positions; JSON answer {} bytes; {CLIENTS} clients, {secs} s per round",
        body.len()
    );
    for round in 1..=(if quick { 1 } else { 3 }) {
        let g = grpc.clone();
        let direct = run(secs, move || {
            let mut g = g.clone();
            async move {
                g.get_status(pb::GetStatusRequest {})
                    .await
                    .expect("GetStatus");
            }
        })
        .await;
        let (c, u) = (client.clone(), url.clone());
        let via = run(secs, move || {
            let (c, u) = (c.clone(), u.clone());
            async move {
                let r = c.get(&u).send().await.expect("GET");
                assert!(r.status().is_success());
                r.bytes().await.expect("body");
            }
        })
        .await;
        println!("round {round}");
        println!("  {}", direct.line("gRPC GetStatus direct"));
        println!("  {}", via.line("GET /api/v1/status"));
        println!(
            "  gateway adds {:.2} ms at p99, keeps {:.0} % of the direct rate",
            (via.hist.value_at_quantile(0.99) as f64 - direct.hist.value_at_quantile(0.99) as f64)
                / 1000.0,
            100.0 * (via.requests as f64 / via.elapsed.as_secs_f64())
                / (direct.requests as f64 / direct.elapsed.as_secs_f64()),
        );
    }
    Ok(())
}
