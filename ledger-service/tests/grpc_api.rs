//! The ledger through a real gRPC server, on SQLite and on PostgreSQL.

mod common;

use common::*;
use healgrid_proto::ledger::v1 as pb;
use pb::RepriceReason::{Operator, Subsidy, Tighten};
use tonic::Code;

fn code_of<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Status {
    r.expect_err("expected an error status")
}

/// Opens, credits, reprices (with and without subsidy), overdraws, closes,
/// retries everything, and reads it all back.
async fn lifecycle(mut s: Server) {
    let c = &mut s.client;
    let bot = "kraken:XDGUSD:main";

    // Open, then retry: same ids, no second row.
    let opened = c
        .open_position(open_request(bot, 2, "fill-1"))
        .await
        .unwrap()
        .into_inner();
    let position = opened.position.clone().unwrap();
    assert!(!opened.replayed);
    assert_eq!(position.status, pb::PositionStatus::Open as i32);
    assert_eq!(position.current_exit_price, "0.094");
    assert_eq!(position.original_exit_price, "0.094");
    let id = position.position_id;
    let again = c
        .open_position(open_request(bot, 2, "fill-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.position.unwrap().position_id, id);
    assert_eq!(again.journal_id, opened.journal_id);
    // Same key, different content.
    let mut other = open_request(bot, 2, "fill-1");
    other.entry_price = "0.0932".into();
    let e = code_of(c.open_position(other).await);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("open_key"), "{}", e.message());

    // Credit 1.0 on the slot.
    let credit = c
        .journal_event(credit_request(id, "churn-1", "1.0"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(credit.subsidy.as_ref().unwrap().balance, "1");
    let credit_again = c
        .journal_event(credit_request(id, "churn-1", "1.00"))
        .await
        .unwrap()
        .into_inner();
    assert!(credit_again.replayed, "1.00 is the same content as 1.0");
    assert_eq!(
        credit_again.entry.unwrap().journal_id,
        credit.entry.unwrap().journal_id
    );

    // Reprice spending 0.4.
    let r = c
        .reprice_position(reprice_request(id, "rp-1", "0.0936", Subsidy, "0.4"))
        .await
        .unwrap()
        .into_inner();
    let p = r.position.unwrap();
    assert_eq!(p.current_exit_price, "0.0936");
    assert_eq!(
        p.original_exit_price, "0.094",
        "original exit price is write-once"
    );
    assert_eq!(p.exit_txid, "TX-rp-1");
    assert_eq!(p.times_repriced, 1);
    assert_eq!(r.subsidy.as_ref().unwrap().balance, "0.6");
    let entry = r.entry.unwrap();
    match entry.details.clone().unwrap().kind.unwrap() {
        pb::event_details::Kind::Repriced(d) => {
            assert_eq!(d.old_price, "0.094");
            assert_eq!(d.new_price, "0.0936");
            assert_eq!(d.old_txid, "OEXIT-1");
            assert_eq!(d.subsidy_consumed, "0.4");
        }
        other => panic!("unexpected details {other:?}"),
    }
    // Retry: same row, no second debit.
    let retry = c
        .reprice_position(reprice_request(id, "rp-1", "0.0936", Subsidy, "0.4"))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    // The replay reads the stored row back: it matches what was returned.
    assert_eq!(retry.entry.unwrap(), entry);
    assert_eq!(retry.subsidy.unwrap().balance, "0.6");
    let e = code_of(
        c.reprice_position(reprice_request(id, "rp-1", "0.0937", Subsidy, "0.4"))
            .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("event_key"), "{}", e.message());

    // Overdraft: refused, nothing changes.
    let e = code_of(
        c.reprice_position(reprice_request(id, "rp-2", "0.0935", Subsidy, "0.7"))
            .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("balance 0.6"), "{}", e.message());
    let p = c
        .get_position(pb::GetPositionRequest { position_id: id })
        .await
        .unwrap()
        .into_inner()
        .position
        .unwrap();
    assert_eq!(p.current_exit_price, "0.0936");
    assert_eq!(p.times_repriced, 1);

    // Operator debit and a free tighten.
    c.reprice_position(reprice_request(id, "rp-3", "0.0935", Operator, "0.1"))
        .await
        .unwrap();
    c.reprice_position(reprice_request(id, "rp-4", "0.0934", Tighten, ""))
        .await
        .unwrap();
    let b = c
        .get_subsidy_balance(balance_request(bot, 2))
        .await
        .unwrap()
        .into_inner()
        .subsidy
        .unwrap();
    assert_eq!(
        (b.balance.as_str(), b.earned.as_str(), b.consumed.as_str()),
        ("0.5", "1", "0.5")
    );
    assert_eq!(b.consumed_subsidy, "0.4");
    assert_eq!(b.consumed_operator, "0.1");
    assert_eq!(b.earned_churner_profit, "1");

    // Close, retry, close again with another key, reprice after close.
    let closed = c
        .close_position(close_request(id, "close-1", T0 + 600))
        .await
        .unwrap()
        .into_inner();
    let cp = closed.position.unwrap();
    assert_eq!(cp.status, pb::PositionStatus::Closed as i32);
    assert_eq!(cp.close_reason, pb::CloseReason::Filled as i32);
    assert_eq!(cp.net_profit, "-0.0085");
    assert_eq!(
        closed.entry.as_ref().unwrap().event_type,
        pb::EventType::Filled as i32
    );
    let retry = c
        .close_position(close_request(id, "close-1", T0 + 600))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(retry.entry, closed.entry);
    assert_eq!(retry.position.unwrap(), cp);
    let e = code_of(
        c.close_position(close_request(id, "close-2", T0 + 700))
            .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = code_of(
        c.reprice_position(reprice_request(id, "rp-5", "0.0933", Tighten, ""))
            .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Over-performance is credited after the close.
    let over = pb::JournalEventRequest {
        position_id: id,
        event_key: "over-1".into(),
        at: ts(T0 + 601),
        event_type: pb::EventType::OverPerformance as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::OverPerformance(
                pb::OverPerformanceDetails {
                    expected_profit: "0.09".into(),
                    actual_profit: "0.12".into(),
                    excess: "0.03".into(),
                },
            )),
        }),
    };
    let r = c.journal_event(over).await.unwrap().into_inner();
    assert_eq!(r.subsidy.unwrap().balance, "0.53");

    // Reads.
    let open = c
        .list_open_positions(pb::ListOpenPositionsRequest {
            bot_id: bot.into(),
            slot_id: Some(2),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(open.positions.is_empty());
    let history = c
        .get_position_history(pb::GetPositionHistoryRequest {
            bot_id: bot.into(),
            slot_id: None,
            limit: 0,
            position_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.positions.len(), 1);
    // created, credit, 3 reprices, filled, over-performance: 7 rows, no duplicates.
    let page1 = c
        .get_journal(pb::GetJournalRequest {
            scope: Some(pb::get_journal_request::Scope::PositionId(id)),
            after_journal_id: 0,
            limit: 4,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.entries.len(), 4);
    assert_ne!(page1.next_after_journal_id, 0);
    let page2 = c
        .get_journal(pb::GetJournalRequest {
            scope: Some(pb::get_journal_request::Scope::Slot(pb::SlotRef {
                bot_id: bot.into(),
                slot_id: 2,
            })),
            after_journal_id: page1.next_after_journal_id,
            limit: 100,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.entries.len(), 3);
    assert_eq!(page2.next_after_journal_id, 0);
    let types: Vec<i32> = page1
        .entries
        .iter()
        .chain(&page2.entries)
        .map(|e| e.event_type)
        .collect();
    use pb::EventType as E;
    assert_eq!(
        types,
        [
            E::Created,
            E::ChurnerProfit,
            E::Repriced,
            E::Repriced,
            E::Repriced,
            E::Filled,
            E::OverPerformance
        ]
        .map(|t| t as i32)
    );
    let summary = c
        .get_subsidy_summary(pb::GetSubsidySummaryRequest { bot_id: bot.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.slots.len(), 1);
    assert_eq!(summary.total.unwrap().balance, "0.53");
    s.shutdown().await;
}

/// The refusals a journal write meets under the slot lock carry the same
/// status and message on every backend, whichever layer checks them.
async fn journal_refusals(mut s: Server) {
    let c = &mut s.client;
    let bot = "bot-r";
    let id = open_id(c, bot, 0, "r-open").await;
    c.journal_event(credit_request(id, "r-credit", "1.0"))
        .await
        .unwrap();

    let e = code_of(c.journal_event(credit_request(id, "r-credit", "2.0")).await);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        r#"event_key "r-credit" was already used with different content"#
    );

    let e = code_of(
        c.reprice_position(reprice_request(id, "r-debit", "0.0935", Subsidy, "1.5"))
            .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        "insufficient subsidy for bot bot-r slot 0: balance 1.0, requested 1.5"
    );

    c.close_position(close_request(id, "r-close", T0 + 600))
        .await
        .unwrap();
    let hold = pb::JournalEventRequest {
        position_id: id,
        event_key: "r-hold".into(),
        at: ts(T0 + 700),
        event_type: pb::EventType::KeepHolding as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::KeepHolding(
                pb::KeepHoldingDetails {
                    hold_until: ts(T0 + 7200),
                    reason: "waiting".into(),
                },
            )),
        }),
    };
    let e = code_of(c.journal_event(hold).await);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        format!("position {id} is closed; keep_holding is not allowed")
    );
    // A credit still lands on the closed position.
    let late = c
        .journal_event(credit_request(id, "r-late", "0.5"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(late.subsidy.unwrap().balance, "1.5");
    s.shutdown().await;
}

/// Compaction through gRPC: balances identical, folded rows gone, late
/// retries of folded keys refused rather than re-applied.
async fn compaction(mut s: Server) {
    let c = &mut s.client;
    let bot = "bot-c";
    let a = open_id(c, bot, 0, "a").await;
    let b = open_id(c, bot, 0, "b").await;
    c.journal_event(credit_request(a, "ca", "2")).await.unwrap();
    c.reprice_position(reprice_request(a, "ra", "0.0935", Subsidy, "0.5"))
        .await
        .unwrap();
    c.journal_event(credit_request(b, "cb", "0.25"))
        .await
        .unwrap();
    c.close_position(close_request(a, "xa", T0 + 1000))
        .await
        .unwrap();
    let before = c
        .get_subsidy_balance(balance_request(bot, 0))
        .await
        .unwrap()
        .into_inner()
        .subsidy
        .unwrap();
    let report = c
        .compact(pb::CompactRequest {
            bot_id: bot.into(),
            cutoff: ts(T0 + 2000),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.positions_compacted, 1);
    assert_eq!(report.rows_folded, 4);
    assert_eq!(report.slots_touched, 1);
    let after = c
        .get_subsidy_balance(balance_request(bot, 0))
        .await
        .unwrap()
        .into_inner()
        .subsidy
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(after.balance, "1.75");
    // Still spendable exactly down to zero after compaction.
    c.reprice_position(reprice_request(b, "rb", "0.0935", Subsidy, "1.75"))
        .await
        .unwrap();
    let e = code_of(
        c.reprice_position(reprice_request(b, "rb2", "0.0934", Subsidy, "0.01"))
            .await,
    );
    assert_eq!(e.code(), Code::FailedPrecondition);
    // A retry of a folded key is recognised, not re-applied.
    let e = code_of(c.journal_event(credit_request(a, "ca", "2")).await);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("compacted"), "{}", e.message());
    let journal = c
        .get_journal(pb::GetJournalRequest {
            scope: Some(pb::get_journal_request::Scope::PositionId(a)),
            after_journal_id: 0,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(journal.entries.is_empty());
    s.shutdown().await;
}

/// A close that names the order whose fill closed the position records it
/// as the position's exit txid (a repriced exit's new id reaches the ledger
/// this way); a retry with another txid is refused, one without any keeps
/// the txid the position had, and a malformed one is INVALID_ARGUMENT.
async fn close_records_the_filling_order(mut s: Server) {
    let c = &mut s.client;
    let bot = "kraken:XDGUSD:main";
    let open = |key: &str| open_request(bot, 1, key);
    let id = |r: pb::OpenPositionResponse| r.position.unwrap().position_id;
    let first = id(c.open_position(open("fill-a")).await.unwrap().into_inner());
    let second = id(c.open_position(open("fill-b")).await.unwrap().into_inner());
    c.reprice_position(pb::RepricePositionRequest {
        new_txid: String::new(),
        ..reprice_request(first, "rp-a", "0.0936", Tighten, "")
    })
    .await
    .unwrap();

    let named = pb::ClosePositionRequest {
        exit_txid: "OFILL-A".into(),
        ..close_request(first, "close-a", T0 + 100)
    };
    let closed = c.close_position(named.clone()).await.unwrap().into_inner();
    assert_eq!(closed.position.unwrap().exit_txid, "OFILL-A");
    let read = c
        .get_position(pb::GetPositionRequest { position_id: first })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.position.unwrap().exit_txid, "OFILL-A");
    assert!(c.close_position(named).await.unwrap().into_inner().replayed);
    let other = pb::ClosePositionRequest {
        exit_txid: "OFILL-X".into(),
        ..close_request(first, "close-a", T0 + 100)
    };
    let e = code_of(c.close_position(other).await);
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    let bad = pb::ClosePositionRequest {
        exit_txid: "bad txid\n".into(),
        ..close_request(second, "close-b", T0 + 100)
    };
    let e = code_of(c.close_position(bad).await);
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("exit_txid"), "{e:?}");
    let kept = c
        .close_position(close_request(second, "close-b", T0 + 100))
        .await
        .unwrap()
        .into_inner();
    let p = kept.position.unwrap();
    assert_eq!(p.status, pb::PositionStatus::Closed as i32);
    assert_eq!(p.exit_txid, open("fill-b").exit_txid, "no txid given: kept");
}

/// `GetPositionHistory` with a position id answers that one position,
/// open or closed, with its journal: the operator's action and its reason
/// among the rows, from the action on (not only once it closes). Another
/// bot's or an unknown position is NOT_FOUND.
async fn one_positions_history_shows_operator_actions(mut s: Server) {
    let c = &mut s.client;
    let bot = "kraken:XDGUSD:main";
    let id = c
        .open_position(open_request(bot, 3, "fill-h"))
        .await
        .unwrap()
        .into_inner()
        .position
        .unwrap()
        .position_id;
    c.journal_event(pb::JournalEventRequest {
        position_id: id,
        event_key: "operator:hold-1".into(),
        at: ts(T0 + 50),
        event_type: pb::EventType::OperatorAction as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::OperatorAction(
                pb::OperatorActionDetails {
                    action: "reprice_to_breakeven".into(),
                    reason: "free the capital".into(),
                    operator: "alice".into(),
                },
            )),
        }),
    })
    .await
    .unwrap();
    c.reprice_position(reprice_request(id, "rp-h", "0.0936", Operator, ""))
        .await
        .unwrap();
    let history = |position_id, bot: &str| pb::GetPositionHistoryRequest {
        bot_id: bot.into(),
        slot_id: None,
        limit: 0,
        position_id: Some(position_id),
    };
    let open = c
        .get_position_history(history(id, bot))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.positions.len(), 1);
    assert_eq!(open.positions[0].position_id, id);
    assert_eq!(open.positions[0].status, pb::PositionStatus::Open as i32);
    let types: Vec<i32> = open.journal.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            pb::EventType::Created as i32,
            pb::EventType::OperatorAction as i32,
            pb::EventType::Repriced as i32
        ]
    );
    let Some(pb::event_details::Kind::OperatorAction(a)) = open.journal[1]
        .details
        .as_ref()
        .and_then(|d| d.kind.clone())
    else {
        panic!("{:?}", open.journal[1]);
    };
    assert_eq!(
        (a.reason.as_str(), a.operator.as_str()),
        ("free the capital", "alice")
    );

    c.close_position(close_request(id, "close-h", T0 + 100))
        .await
        .unwrap();
    let closed = c
        .get_position_history(history(id, bot))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        closed.positions[0].status,
        pb::PositionStatus::Closed as i32
    );
    assert_eq!(closed.journal.len(), 4);

    for (position_id, who) in [(id, "kraken:XDGUSD:other"), (id + 1000, bot)] {
        let e = code_of(c.get_position_history(history(position_id, who)).await);
        assert_eq!(e.code(), Code::NotFound, "{e:?}");
    }
}

grpc_suite!(
    one_positions_history_shows_operator_actions,
    lifecycle,
    journal_refusals,
    compaction,
    close_records_the_filling_order
);
