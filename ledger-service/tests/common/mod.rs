//! Shared fixtures of the ledger-service integration tests: a ledger on
//! any backend, a real gRPC server on an ephemeral port, and request
//! builders.

#![allow(dead_code, missing_docs, unused_macros, unused_imports)]

pub mod commands;

use std::future::Future;

use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use healgrid_tests::pg::TestSchema;
use ledger_service::{AnyLedger, JournalScope, Ledger, Store};
use prost_types::Timestamp;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

/// Entry time used by the fixtures (2023-11-14).
pub const T0: i64 = 1_700_000_000;

pub fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// A ledger plus whatever keeps its database alive.
pub struct Fixture {
    pub ledger: AnyLedger,
    _schema: Option<TestSchema>,
}

/// An in-memory SQLite ledger.
pub async fn sqlite() -> Fixture {
    Fixture {
        ledger: AnyLedger::Sqlite(Ledger::in_memory().await.expect("in-memory sqlite")),
        _schema: None,
    }
}

/// A ledger on the in-memory backend.
pub fn memory() -> Fixture {
    Fixture {
        ledger: AnyLedger::memory(),
        _schema: None,
    }
}

/// A PostgreSQL ledger in a fresh schema, or `None` when skipped.
pub async fn postgres(test: &str) -> Option<Fixture> {
    let schema = TestSchema::create(test).await?;
    let ledger = AnyLedger::open(&schema.url, 8)
        .await
        .expect("open postgres ledger");
    Some(Fixture {
        ledger,
        _schema: Some(schema),
    })
}

/// A gRPC server running a fixture's ledger, stopped when dropped.
pub struct Server {
    pub client: LedgerServiceClient<Channel>,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    fixture: Fixture,
}

impl Server {
    pub async fn start(fixture: Fixture) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let ledger = fixture.ledger.clone();
        let task = tokio::spawn(async move {
            ledger
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("server failed");
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect to test server");
        Self {
            client: LedgerServiceClient::new(channel.clone()),
            channel,
            stop: Some(stop),
            task: Some(task),
            fixture,
        }
    }

    /// The ledger the server runs, for reading its store in-process.
    pub fn ledger(&self) -> &AnyLedger {
        &self.fixture.ledger
    }

    /// Stops gracefully and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task panicked");
        }
    }
}

/// Runs `scenario` against a gRPC server on SQLite.
pub async fn on_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(Server::start(sqlite().await).await).await;
}

/// Runs `scenario` against a gRPC server on the in-memory backend.
pub async fn on_memory<F, Fut>(scenario: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(Server::start(memory()).await).await;
}

/// Runs `scenario` against a gRPC server on PostgreSQL (or skips).
pub async fn on_postgres<F, Fut>(test: &str, scenario: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(fixture) = postgres(test).await {
        scenario(Server::start(fixture).await).await;
    }
}

pub fn open_request(bot: &str, slot: u32, key: &str) -> pb::OpenPositionRequest {
    pb::OpenPositionRequest {
        bot_id: bot.into(),
        slot_id: Some(slot),
        trade_id: pb::TradeId::B as i32,
        slot_mode: pb::SlotMode::Sticky as i32,
        cycle: 3,
        open_key: key.into(),
        entry_price: "0.0931".into(),
        entry_cost: "9.31".into(),
        entry_fee: "0.0242".into(),
        entry_volume: "100".into(),
        entry_time: ts(T0),
        entry_regime: pb::Regime::Ranging as i32,
        entry_volatility: "0.8".into(),
        original_exit_price: "0.0940".into(),
        target_profit_pct: "1.0".into(),
        exit_txid: "OEXIT-1".into(),
        migration: false,
    }
}

/// Opens `open_request(bot, slot, key)` and returns the new position's id.
///
/// # Panics
/// When the ledger refuses the open.
pub async fn open_id(c: &mut LedgerServiceClient<Channel>, bot: &str, slot: u32, key: &str) -> u64 {
    c.open_position(open_request(bot, slot, key))
        .await
        .unwrap()
        .into_inner()
        .position
        .unwrap()
        .position_id
}

pub fn credit_request(position_id: u64, key: &str, amount: &str) -> pb::JournalEventRequest {
    pb::JournalEventRequest {
        position_id,
        event_key: key.into(),
        at: ts(T0 + 60),
        event_type: pb::EventType::ChurnerProfit as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::ChurnerProfit(
                pb::ChurnerProfitDetails {
                    net_profit: amount.into(),
                    churner_cycle_id: format!("churn-{key}"),
                },
            )),
        }),
    }
}

pub fn reprice_request(
    position_id: u64,
    key: &str,
    price: &str,
    reason: pb::RepriceReason,
    consumed: &str,
) -> pb::RepricePositionRequest {
    pb::RepricePositionRequest {
        position_id,
        event_key: key.into(),
        new_price: price.into(),
        new_txid: format!("TX-{key}"),
        reason: reason as i32,
        subsidy_consumed: consumed.into(),
        at: ts(T0 + 120),
    }
}

pub fn close_request(position_id: u64, key: &str, at: i64) -> pb::ClosePositionRequest {
    pb::ClosePositionRequest {
        position_id,
        event_key: key.into(),
        close_reason: pb::CloseReason::Filled as i32,
        exit_price: "0.0935".into(),
        exit_cost: "9.35".into(),
        exit_fee: "0.0243".into(),
        exit_time: ts(at),
        exit_regime: pb::Regime::Bullish as i32,
        net_profit: "-0.0085".into(),
        reason: String::new(),
        exit_txid: String::new(),
    }
}

pub fn balance_request(bot: &str, slot: u32) -> pb::GetSubsidyBalanceRequest {
    pb::GetSubsidyBalanceRequest {
        bot_id: bot.into(),
        slot_id: Some(slot),
    }
}

/// Everything the store holds, read through the in-process API: positions
/// by id (a few ids past the last, so a stray insert shows), their journal
/// rows, and the subsidy, open positions and history of `bots`.
async fn dump_of<S: Store>(l: &Ledger<S>, last_id: u64, bots: &[&str]) -> String {
    let mut out = String::new();
    for id in 1..=last_id + 3 {
        let position = l.position(id).await;
        out.push_str(&format!("{position:?}\n"));
        if position.is_ok() {
            let rows = l.journal(&JournalScope::Position(id), 0, 1000).await;
            out.push_str(&format!("{rows:?}\n"));
        }
    }
    for &bot in bots {
        out.push_str(&format!("{:?}\n", l.subsidy_summary(bot).await));
        out.push_str(&format!("{:?}\n", l.open_positions(bot, None).await));
        out.push_str(&format!(
            "{:?}\n",
            l.position_history(bot, None, 1000).await
        ));
        out.push_str(&format!("{:?}\n", l.bot_journal(bot, 0, 1000).await));
    }
    out
}

/// [`dump_of`] on any backend.
pub async fn dump(l: &AnyLedger, last_id: u64, bots: &[&str]) -> String {
    match l {
        AnyLedger::Sqlite(l) => dump_of(l, last_id, bots).await,
        AnyLedger::Postgres(l) => dump_of(l, last_id, bots).await,
        AnyLedger::Memory(l) => dump_of(l, last_id, bots).await,
    }
}

/// Stamps gRPC scenarios (each an `async fn(Server)`) onto every backend:
/// `memory::name`, `sqlite::name` and `postgres::name`. A new backend gets
/// the whole suite by one more arm here. Call it once per test file.
macro_rules! grpc_suite {
    ($($scenario:ident),+ $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $scenario() {
                $crate::common::on_memory(super::$scenario).await;
            })+
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $scenario() {
                $crate::common::on_sqlite(super::$scenario).await;
            })+
        }
        mod postgres {
            $(#[tokio::test]
            async fn $scenario() {
                $crate::common::on_postgres(
                    concat!(stringify!($scenario), "_postgres"),
                    super::$scenario,
                )
                .await;
            })+
        }
    };
}
pub(crate) use grpc_suite;

/// Stamps in-process scenarios (each an `async fn<S: Store>(Ledger<S>)`)
/// onto every backend: the in-memory store on one and on two threads, an
/// SQLite file (so writers really use several connections) and
/// PostgreSQL. Call it once per test file.
macro_rules! ledger_suite {
    ($($scenario:ident),+ $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(::ledger_service::Ledger::memory()).await;
            })+
        }
        mod memory_multi_thread {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                super::$scenario(::ledger_service::Ledger::memory()).await;
            })+
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $scenario() {
                let dir = ::tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
                let ledger = ::ledger_service::Ledger::open_sqlite(&url).await.unwrap();
                super::$scenario(ledger).await;
            })+
        }
        mod postgres {
            $(#[tokio::test]
            async fn $scenario() {
                let test = concat!(stringify!($scenario), "_postgres");
                if let Some(schema) = ::healgrid_tests::pg::TestSchema::create(test).await {
                    let ledger = ::ledger_service::Ledger::open_postgres(&schema.url, 16)
                        .await
                        .unwrap();
                    super::$scenario(ledger).await;
                }
            })+
        }
    };
}
pub(crate) use ledger_suite;
