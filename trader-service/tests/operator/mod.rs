//! The harness of the operator-action suites: a runtime on the (faulty)
//! paper exchange with the in-process ledger and a trader store file, its
//! real gRPC control server, and helpers that send an RPC from its own task
//! and let the runtime answer it between two steps
//! ([`Runtime::serve_control`]), exactly where `run_forever` answers it.

#![allow(dead_code, missing_docs)]

use std::future::Future;
use std::time::Duration;

use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use ledger_service::{EventDetails, JournalScope, Ledger, SqliteStore};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tonic::transport::Channel;
use trader_service::exchange::paper::PaperExchange;
use trader_service::exchange::{Clock, SimClock};
use trader_service::pair::Candle;
use trader_service::runtime::ledger::LocalLedger;
use trader_service::runtime::store::{StoreLocation, TraderStore};
use trader_service::runtime::{Runtime, RuntimeConfig};

use super::faulty::Faulty;
use super::{grid, healing};

pub const BOT: &str = "ops-bot";
pub const T0: i64 = 1_700_000_000;

/// The in-process ledger, behind a switch that takes it down (an outage).
pub type OpsLedger = healing::Flaky<LocalLedger<SqliteStore>>;

pub type Rt = Runtime<Faulty, OpsLedger>;

pub fn flat(t: i64, p: Decimal) -> Candle {
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
pub fn config() -> RuntimeConfig {
    let mut c = healing::config(BOT, 1, 1_800);
    c.engine.bands.thresholds.stuck_sec = 2_400;
    c
}

pub struct Run {
    pub rt: Rt,
    pub client: TraderServiceClient<Channel>,
    /// The control server's URL (for `trader-service ctl`).
    pub url: String,
    pub stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    pub exchange: Faulty,
    pub paper: PaperExchange,
    pub lib: Ledger<SqliteStore>,
    /// What the runtime calls the ledger through; `set_down` for an outage.
    pub ledger: OpsLedger,
    pub dir: tempfile::TempDir,
    pub t: i64,
    /// The runtime's configuration (kept for restarts).
    pub cfg: RuntimeConfig,
}

impl Run {
    pub async fn new() -> Self {
        Self::with_config(config()).await
    }

    /// A run whose runtime uses `cfg` (e.g. with the churner on).
    pub async fn with_config(cfg: RuntimeConfig) -> Self {
        let paper = PaperExchange::new(grid::paper_config(60), SimClock::new(T0 * 1000));
        let exchange = Faulty::new(paper.clone(), 0);
        let lib = Ledger::in_memory().await.unwrap();
        let ledger = healing::Flaky::new(LocalLedger::new(lib.clone()));
        let dir = tempfile::tempdir().unwrap();
        let (rt, client, stop, url) = Self::start(&cfg, &exchange, &ledger, &dir).await;
        Self {
            rt,
            client,
            url,
            stop_server: Some(stop),
            exchange,
            paper,
            lib,
            ledger,
            dir,
            t: T0,
            cfg,
        }
    }

    /// A runtime on the store file and a gRPC server on its handle.
    pub async fn start(
        cfg: &RuntimeConfig,
        exchange: &Faulty,
        ledger: &OpsLedger,
        dir: &tempfile::TempDir,
    ) -> (
        Rt,
        TraderServiceClient<Channel>,
        tokio::sync::oneshot::Sender<()>,
        String,
    ) {
        let store = TraderStore::open(&StoreLocation::File(dir.path().join("trader.db")))
            .await
            .unwrap();
        let mut rt = Runtime::new(cfg.clone(), exchange.clone(), ledger.clone(), store)
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
        (rt, TraderServiceClient::new(channel), stop, url)
    }

    /// The trader process dies and starts again on the same store file
    /// (with a new control server).
    pub async fn restart(&mut self) {
        if let Some(s) = self.stop_server.take() {
            let _ = s.send(());
        }
        let (rt, client, stop, url) =
            Self::start(&self.cfg, &self.exchange, &self.ledger, &self.dir).await;
        self.rt = rt;
        self.client = client;
        self.url = url;
        self.stop_server = Some(stop);
    }

    pub fn now_ms(&self) -> i64 {
        self.paper.clock().now_ms()
    }

    /// Sends an RPC from its own task and lets the runtime answer it
    /// between steps, as the loop does.
    pub async fn call<T: Send + 'static>(
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

    /// Runs `trader-service ctl --url <this trader> args...` as a real
    /// process with `stdin` as its input, answering its RPCs between steps.
    /// Returns (success, stdout, stderr).
    pub async fn ctl(&mut self, args: &[&str], stdin: &str) -> (bool, String, String) {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let url = self.url.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let input = stdin.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_trader-service"))
                .args(["ctl", "--url", &url])
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(mut i) = child.stdin.take() {
                let _ = i.write_all(input.as_bytes());
            }
            let out = child.wait_with_output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        });
        loop {
            self.rt.serve_control(self.now_ms()).await.unwrap();
            if task.is_finished() {
                return task.await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub async fn hold(
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

    pub async fn release(
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

    pub async fn breakeven(
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

    pub async fn close(
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
    pub fn market_fills(&self) -> Vec<trader_service::exchange::OrderInfo> {
        self.paper.with_book(|b| {
            b.closed_orders()
                .into_iter()
                .chain(b.open_orders())
                .filter(|o| o.order_type == trader_service::exchange::OrderType::Market)
                .collect()
        })
    }

    pub async fn regime(
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

    pub async fn reserve(
        &mut self,
        usd: &str,
        id: &str,
    ) -> Result<pb::OperatorActionResponse, tonic::Status> {
        let req = pb::SetChurnerReserveRequest {
            reserve_usd: usd.into(),
            request_id: id.into(),
            reason: "more room".into(),
            operator: "alice".into(),
        };
        self.call(move |mut c| {
            Box::pin(async move { c.set_churner_reserve(req).await.map(|r| r.into_inner()) })
        })
        .await
    }

    pub async fn queue(&mut self) -> Vec<pb::CleanupQueueEntry> {
        self.client
            .list_cleanup_queue(pb::ListCleanupQueueRequest {})
            .await
            .unwrap()
            .into_inner()
            .positions
    }

    pub async fn status(&mut self) -> pb::GetStatusResponse {
        self.client
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    /// Runs loops until one hangs (the faulty exchange never answers), then
    /// drops it there: the process is killed mid-step. Returns whether it
    /// hung.
    pub async fn minutes_until_hang(&mut self, n: usize, p: Decimal) -> bool {
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

    pub async fn minutes(&mut self, n: usize, p: Decimal) {
        for _ in 0..n {
            self.candle(flat(self.t, p)).await;
        }
    }

    pub async fn candle(&mut self, c: Candle) {
        self.paper.step(&c);
        self.rt.step(self.now_ms()).await.unwrap();
        self.t = c.time + 60;
    }

    /// Entry 0.0998 filled (B: a sell exit at 0.100798), then the market
    /// sits at 0.0990 (1.8 % away) until the position is in band
    /// write_off. Returns its ledger id.
    pub async fn write_off_position(&mut self) -> String {
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

    pub async fn journal(&self, id: &str) -> Vec<EventDetails> {
        self.lib
            .journal(&JournalScope::Position(id.parse().unwrap()), 0, 100)
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.details)
            .collect()
    }

    pub async fn kinds(&self, id: &str) -> Vec<&'static str> {
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
                EventDetails::WrittenOff(_) => "written_off",
                _ => "other",
            })
            .collect()
    }

    pub fn exit_price(&self) -> Decimal {
        self.rt.engine().open_exits().next().unwrap().price
    }

    pub async fn flush(&mut self) {
        self.rt.flush(self.now_ms()).await.unwrap();
    }

    pub async fn credit(&self, id: &str, key: &str, amount: Decimal) {
        let ledger = LocalLedger::new(self.lib.clone());
        healing::credit(&ledger, id.parse().unwrap(), key, amount, self.t).await;
    }
}
