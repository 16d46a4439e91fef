//! The bot journal over the network: a real `trader-service` process (paper
//! exchange) writing through its gRPC ledger client to a real
//! `ledger-service` process.
//!
//! Proves: a regime override, its clear and a churner reserve change sent to
//! the trader's gRPC API each land in the ledger's bot journal exactly once,
//! with the operator's reason, also when the operator retries each with the
//! same request id.

use std::time::{Duration, Instant};

use healgrid_proto::ledger::v1::{
    self as lpb, BotAction, ledger_service_client::LedgerServiceClient,
};
use healgrid_proto::trader::v1 as pb;
use healgrid_tests::process::{LedgerProcess, RunArgs, TraderProcess, free_port};

const BOT: &str = "bot-journal";

async fn rows(
    ledger: &mut LedgerServiceClient<tonic::transport::Channel>,
) -> Vec<lpb::BotJournalEntry> {
    ledger
        .get_bot_journal(lpb::GetBotJournalRequest {
            bot_id: BOT.into(),
            after_bot_journal_id: 0,
            limit: 100,
        })
        .await
        .expect("GetBotJournal")
        .into_inner()
        .entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_bot_actions_reach_the_ledger_once_over_grpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let ledger = LedgerProcess::start_on(free_port(), &db).await;
    let store = dir.path().join("trader.db");
    let log = dir.path().join("trader.log");
    let run = RunArgs {
        bot: BOT,
        store: &store,
        ledger_url: &ledger.endpoint,
        slots: 1,
    };
    let trader = TraderProcess::start(
        &run.paper(3, &["--market", "synthetic", "--churner-enabled", "true"]),
        &[],
        &log,
    )
    .await;
    let mut c = trader.client().await;

    // Each action twice with the same request id: the retry answers the
    // first answer and journals nothing more.
    for _ in 0..2 {
        c.set_regime_override(pb::SetRegimeOverrideRequest {
            regime: "ranging".into(),
            ttl_seconds: 3_600,
            request_id: "override-1".into(),
            reason: "desk says ranging".into(),
            operator: "alice".into(),
        })
        .await
        .expect("SetRegimeOverride");
        c.set_churner_reserve(pb::SetChurnerReserveRequest {
            reserve_usd: "7.5".into(),
            request_id: "reserve-1".into(),
            reason: "more room for churners".into(),
            operator: "alice".into(),
        })
        .await
        .expect("SetChurnerReserve");
        c.set_regime_override(pb::SetRegimeOverrideRequest {
            regime: "auto".into(),
            ttl_seconds: 0,
            request_id: "override-clear-1".into(),
            reason: "back to the detector".into(),
            operator: "alice".into(),
        })
        .await
        .expect("clear the override");
    }

    let mut l = LedgerServiceClient::connect(ledger.endpoint.clone())
        .await
        .expect("ledger client");
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = rows(&mut l).await;
        if got.len() >= 3 {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "bot journal rows not delivered: {got:?}; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Give a stray duplicate time to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = if rows(&mut l).await.len() == got.len() {
        got
    } else {
        rows(&mut l).await
    };
    let seen: Vec<(BotAction, &str, &str, &str)> = got
        .iter()
        .map(|r| {
            (
                r.action(),
                r.reason.as_str(),
                r.operator.as_str(),
                r.event_key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                BotAction::RegimeOverride,
                "desk says ranging",
                "alice",
                "operator:override-1"
            ),
            (
                BotAction::ChurnerReserve,
                "more room for churners",
                "alice",
                "operator:reserve-1"
            ),
            (
                BotAction::RegimeOverrideCleared,
                "back to the detector",
                "alice",
                "operator:override-clear-1"
            ),
        ],
        "one row per action, in order, none for the retries"
    );
    assert!(
        got[1].detail.contains("7.5"),
        "reserve detail: {}",
        got[1].detail
    );
}
