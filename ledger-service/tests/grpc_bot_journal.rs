//! The bot journal through a real gRPC server, on every backend: appends,
//! idempotent retries, a key reused for other content, bad input, and
//! reading back in order, page by page.

mod common;

use common::*;
use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use ledger_service::AnyLedger;
use tonic::{Code, transport::Channel};

const BOT: &str = "kraken:XDGUSD:main";

fn append(key: &str, action: pb::BotAction, detail: &str) -> pb::AppendBotJournalRequest {
    pb::AppendBotJournalRequest {
        bot_id: BOT.into(),
        event_key: key.into(),
        at: ts(T0 + 30),
        action: action as i32,
        detail: detail.into(),
        reason: "trend day".into(),
        operator: "alice".into(),
    }
}

/// Appends `append(key, action, detail)`, which must be accepted.
async fn appended(
    c: &mut LedgerServiceClient<Channel>,
    key: &str,
    action: pb::BotAction,
    detail: &str,
) -> pb::AppendBotJournalResponse {
    c.append_bot_journal(append(key, action, detail))
        .await
        .unwrap()
        .into_inner()
}

async fn read_all(c: &mut LedgerServiceClient<Channel>, bot: &str) -> Vec<pb::BotJournalEntry> {
    c.get_bot_journal(pb::GetBotJournalRequest {
        bot_id: bot.into(),
        after_bot_journal_id: 0,
        limit: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .entries
}

/// Appends each action once, retries one (same row, nothing written), and
/// reads them back in append order with every field intact.
async fn appends_and_retries(mut s: Server) {
    let c = &mut s.client;
    let first = appended(
        c,
        "operator:r1",
        pb::BotAction::RegimeOverride,
        "regime=bullish until=1700003630",
    )
    .await;
    assert!(!first.replayed);
    let entry = first.entry.unwrap();
    assert_eq!(entry.bot_id, BOT);
    assert_eq!(entry.action, pb::BotAction::RegimeOverride as i32);
    assert_eq!(entry.reason, "trend day");
    assert_eq!(entry.operator, "alice");
    assert_eq!(entry.at, ts(T0 + 30));

    let again = appended(
        c,
        "operator:r1",
        pb::BotAction::RegimeOverride,
        "regime=bullish until=1700003630",
    )
    .await;
    assert!(again.replayed);
    assert_eq!(again.entry.unwrap(), entry);

    for (key, action, detail) in [
        ("operator:r2", pb::BotAction::RegimeOverrideCleared, ""),
        (
            "operator:r3",
            pb::BotAction::ChurnerReserve,
            "reserve_usd=250",
        ),
    ] {
        let out = appended(c, key, action, detail).await;
        assert!(!out.replayed, "{key}");
    }
    let rows = read_all(c, BOT).await;
    let got: Vec<(&str, i32, &str)> = rows
        .iter()
        .map(|e| (e.event_key.as_str(), e.action, e.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "operator:r1",
                pb::BotAction::RegimeOverride as i32,
                "regime=bullish until=1700003630"
            ),
            (
                "operator:r2",
                pb::BotAction::RegimeOverrideCleared as i32,
                ""
            ),
            (
                "operator:r3",
                pb::BotAction::ChurnerReserve as i32,
                "reserve_usd=250"
            ),
        ]
    );
    assert!(
        rows.windows(2)
            .all(|w| w[0].bot_journal_id < w[1].bot_journal_id)
    );
    // Another bot's journal is its own, and may reuse the key.
    let mut other = append(
        "operator:r1",
        pb::BotAction::ChurnerReserve,
        "reserve_usd=1",
    );
    other.bot_id = "other-bot".into();
    assert!(
        !c.append_bot_journal(other)
            .await
            .unwrap()
            .into_inner()
            .replayed
    );
    assert_eq!(read_all(c, "other-bot").await.len(), 1);
    assert_eq!(read_all(c, BOT).await.len(), 3);
    s.shutdown().await;
}

/// The same key with other content is refused FAILED_PRECONDITION, naming
/// the key, and writes nothing.
async fn reused_key_is_refused(mut s: Server) {
    let c = &mut s.client;
    appended(
        c,
        "operator:k",
        pb::BotAction::ChurnerReserve,
        "reserve_usd=250",
    )
    .await;
    for edit in [
        |r: &mut pb::AppendBotJournalRequest| r.detail = "reserve_usd=300".into(),
        |r: &mut pb::AppendBotJournalRequest| r.reason = "other".into(),
        |r: &mut pb::AppendBotJournalRequest| r.action = pb::BotAction::RegimeOverride as i32,
        |r: &mut pb::AppendBotJournalRequest| r.at = ts(T0 + 31),
    ] {
        let mut r = append(
            "operator:k",
            pb::BotAction::ChurnerReserve,
            "reserve_usd=250",
        );
        edit(&mut r);
        let e = c.append_bot_journal(r).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
        assert!(e.message().contains("event_key"), "{}", e.message());
    }
    let rows = read_all(c, BOT).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].detail, "reserve_usd=250");
    s.shutdown().await;
}

/// Every malformed append and read is INVALID_ARGUMENT naming its field,
/// and nothing is written.
async fn bad_input_is_refused(mut s: Server) {
    let c = &mut s.client;
    type Edit = fn(&mut pb::AppendBotJournalRequest);
    let cases: [(&str, Edit); 8] = [
        ("bot_id", |r| r.bot_id.clear()),
        ("event_key", |r| r.event_key.clear()),
        ("action", |r| r.action = 0),
        ("action", |r| r.action = 99),
        ("at", |r| r.at = None),
        ("at", |r| r.at = ts(100)),
        ("reason", |r| r.reason = "a\u{7}b".into()),
        ("detail", |r| r.detail = "x".repeat(600)),
    ];
    for (field, edit) in cases {
        let mut r = append(
            "operator:bad",
            pb::BotAction::ChurnerReserve,
            "reserve_usd=1",
        );
        edit(&mut r);
        let e = c.append_bot_journal(r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {}", e.message());
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    for (field, req) in [
        (
            "bot_id",
            pb::GetBotJournalRequest {
                bot_id: String::new(),
                after_bot_journal_id: 0,
                limit: 0,
            },
        ),
        (
            "limit",
            pb::GetBotJournalRequest {
                bot_id: BOT.into(),
                after_bot_journal_id: 0,
                limit: 5000,
            },
        ),
    ] {
        let e = c.get_bot_journal(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {}", e.message());
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    assert!(read_all(c, BOT).await.is_empty());
    s.shutdown().await;
}

/// Pages follow the cursor: each page continues after the last, and the
/// last page says there is no more.
async fn pages_in_order(mut s: Server) {
    let c = &mut s.client;
    for i in 0..5 {
        let detail = format!("reserve_usd={i}");
        appended(
            c,
            &format!("operator:p{i}"),
            pb::BotAction::ChurnerReserve,
            &detail,
        )
        .await;
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = c
            .get_bot_journal(pb::GetBotJournalRequest {
                bot_id: BOT.into(),
                after_bot_journal_id: after,
                limit: 2,
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.entries.into_iter().map(|e| e.detail));
        if page.next_after_bot_journal_id == 0 {
            break;
        }
        after = page.next_after_bot_journal_id;
    }
    let want: Vec<String> = (0..5).map(|i| format!("reserve_usd={i}")).collect();
    assert_eq!(seen, want);
    s.shutdown().await;
}

/// The table itself refuses to change or drop a row, whoever asks (the
/// in-memory backend has no SQL and offers no such write at all).
async fn rows_cannot_be_changed(mut s: Server) {
    let c = &mut s.client;
    appended(
        c,
        "operator:x",
        pb::BotAction::ChurnerReserve,
        "reserve_usd=5",
    )
    .await;
    for sql in [
        "UPDATE bot_journal SET reason = 'edited'",
        "DELETE FROM bot_journal",
    ] {
        let refused = match s.ledger() {
            AnyLedger::Sqlite(l) => sqlx::query(sql).execute(l.store().pool()).await.is_err(),
            AnyLedger::Postgres(l) => sqlx::query(sql).execute(l.store().pool()).await.is_err(),
            AnyLedger::Memory(_) => true,
        };
        assert!(refused, "{sql}");
    }
    let rows = read_all(&mut s.client, BOT).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].reason, "trend day");
    s.shutdown().await;
}

grpc_suite!(
    rows_cannot_be_changed,
    appends_and_retries,
    reused_key_is_refused,
    bad_input_is_refused,
    pages_in_order
);
