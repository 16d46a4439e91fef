//! Every kind of bad input, through gRPC, on every backend: each is refused
//! with the right status, a message naming the field, and no write.

mod common;

use common::*;
use futures::future::BoxFuture;
use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use healgrid_tests::hostile::{Undecodable, judge_undecodable, send_raw};
use pb::RepriceReason::{Subsidy, Tighten};
use tonic::{Code, transport::Channel};

type Client = LedgerServiceClient<Channel>;
type Call = Box<dyn FnOnce(Client) -> BoxFuture<'static, Result<(), tonic::Status>>>;

/// One bad request: label, expected code, text the message must start with.
struct Case {
    label: &'static str,
    code: Code,
    field: &'static str,
    call: Call,
}

fn far_future() -> Option<prost_types::Timestamp> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ts(i64::try_from(now).unwrap() + 3 * 86_400)
}

fn open_case(
    label: &'static str,
    code: Code,
    field: &'static str,
    edit: impl FnOnce(&mut pb::OpenPositionRequest) + Send + 'static,
) -> Case {
    let mut r = open_request("bot-bad", 1, "bad-open");
    edit(&mut r);
    Case {
        label,
        code,
        field,
        call: Box::new(move |mut c: Client| {
            Box::pin(async move { c.open_position(r).await.map(drop) })
        }),
    }
}

fn event_case(
    label: &'static str,
    code: Code,
    field: &'static str,
    position_id: u64,
    edit: impl FnOnce(&mut pb::JournalEventRequest) + Send + 'static,
) -> Case {
    let mut r = credit_request(position_id, "bad-event", "0.5");
    edit(&mut r);
    Case {
        label,
        code,
        field,
        call: Box::new(move |mut c: Client| {
            Box::pin(async move { c.journal_event(r).await.map(drop) })
        }),
    }
}

fn reprice_case(
    label: &'static str,
    code: Code,
    field: &'static str,
    position_id: u64,
    edit: impl FnOnce(&mut pb::RepricePositionRequest) + Send + 'static,
) -> Case {
    let mut r = reprice_request(position_id, "bad-reprice", "0.0935", Subsidy, "0.1");
    edit(&mut r);
    Case {
        label,
        code,
        field,
        call: Box::new(move |mut c: Client| {
            Box::pin(async move { c.reprice_position(r).await.map(drop) })
        }),
    }
}

fn close_case(
    label: &'static str,
    code: Code,
    field: &'static str,
    position_id: u64,
    edit: impl FnOnce(&mut pb::ClosePositionRequest) + Send + 'static,
) -> Case {
    let mut r = close_request(position_id, "bad-close", T0 + 100);
    edit(&mut r);
    Case {
        label,
        code,
        field,
        call: Box::new(move |mut c: Client| {
            Box::pin(async move { c.close_position(r).await.map(drop) })
        }),
    }
}

fn read_case<F>(label: &'static str, code: Code, field: &'static str, f: F) -> Case
where
    F: FnOnce(Client) -> BoxFuture<'static, Result<(), tonic::Status>> + 'static,
{
    Case {
        label,
        code,
        field,
        call: Box::new(f),
    }
}

fn details(kind: pb::event_details::Kind) -> Option<pb::EventDetails> {
    Some(pb::EventDetails { kind: Some(kind) })
}

fn cases(id: u64) -> Vec<Case> {
    use Code::{FailedPrecondition as Pre, InvalidArgument as Inv, NotFound};
    vec![
        // OpenPosition
        open_case("missing bot_id", Inv, "bot_id", |r| r.bot_id.clear()),
        open_case("long bot_id", Inv, "bot_id", |r| r.bot_id = "b".repeat(129)),
        open_case("control char bot_id", Inv, "bot_id", |r| {
            r.bot_id = "bot\u{0}x".into()
        }),
        open_case("missing slot_id", Inv, "slot_id", |r| r.slot_id = None),
        open_case("missing trade_id", Inv, "trade_id", |r| r.trade_id = 0),
        open_case("unknown trade_id", Inv, "trade_id", |r| r.trade_id = 9),
        open_case("unknown slot_mode", Inv, "slot_mode", |r| r.slot_mode = 7),
        open_case("missing open_key", Inv, "open_key", |r| r.open_key.clear()),
        open_case("NaN entry_price", Inv, "entry_price", |r| {
            r.entry_price = "NaN".into()
        }),
        open_case("inf entry_price", Inv, "entry_price", |r| {
            r.entry_price = "inf".into()
        }),
        open_case("exponent entry_price", Inv, "entry_price", |r| {
            r.entry_price = "1e5".into()
        }),
        open_case("empty entry_price", Inv, "entry_price", |r| {
            r.entry_price.clear()
        }),
        open_case("negative entry_price", Inv, "entry_price", |r| {
            r.entry_price = "-1".into()
        }),
        open_case("too precise entry_cost", Inv, "entry_cost", |r| {
            r.entry_cost = "1.2345678901234567890123456789".into();
        }),
        open_case("zero entry_volume", Inv, "entry_volume", |r| {
            r.entry_volume = "0".into()
        }),
        open_case("negative entry_fee", Inv, "entry_fee", |r| {
            r.entry_fee = "-0.1".into()
        }),
        open_case("malformed volatility", Inv, "entry_volatility", |r| {
            r.entry_volatility = "0,8".into()
        }),
        open_case("missing entry_time", Inv, "entry_time", |r| {
            r.entry_time = None
        }),
        open_case("future entry_time", Inv, "entry_time", |r| {
            r.entry_time = far_future()
        }),
        open_case("ancient entry_time", Inv, "entry_time", |r| {
            r.entry_time = ts(978_307_200)
        }),
        open_case("bad nanos entry_time", Inv, "entry_time", |r| {
            r.entry_time = Some(prost_types::Timestamp {
                seconds: T0,
                nanos: -5,
            });
        }),
        open_case("missing entry_regime", Inv, "entry_regime", |r| {
            r.entry_regime = 0
        }),
        open_case("negative target", Inv, "target_profit_pct", |r| {
            r.target_profit_pct = "-1".into()
        }),
        open_case("zero exit price", Inv, "original_exit_price", |r| {
            r.original_exit_price = "0".into()
        }),
        open_case("long exit_txid", Inv, "exit_txid", |r| {
            r.exit_txid = "t".repeat(200)
        }),
        // JournalEvent
        event_case("missing position_id", Inv, "position_id", 0, |_| {}),
        event_case(
            "unknown position",
            NotFound,
            "position 999999",
            999_999,
            |_| {},
        ),
        event_case("missing event_key", Inv, "event_key", id, |r| {
            r.event_key.clear()
        }),
        event_case("missing event_type", Inv, "event_type", id, |r| {
            r.event_type = 0
        }),
        event_case("unknown event_type", Inv, "event_type", id, |r| {
            r.event_type = 99
        }),
        event_case("missing details", Inv, "details", id, |r| r.details = None),
        event_case("mismatched details", Inv, "details", id, |r| {
            r.event_type = pb::EventType::OverPerformance as i32;
        }),
        event_case(
            "close event journaled directly",
            Inv,
            "event_type",
            id,
            |r| {
                r.event_type = pb::EventType::Filled as i32;
            },
        ),
        event_case(
            "zero credit",
            Inv,
            "details.churner_profit.net_profit",
            id,
            |r| {
                r.details = details(pb::event_details::Kind::ChurnerProfit(
                    pb::ChurnerProfitDetails {
                        net_profit: "0".into(),
                        churner_cycle_id: "c".into(),
                    },
                ));
            },
        ),
        event_case(
            "negative excess",
            Inv,
            "details.over_performance.excess",
            id,
            |r| {
                r.event_type = pb::EventType::OverPerformance as i32;
                r.details = details(pb::event_details::Kind::OverPerformance(
                    pb::OverPerformanceDetails {
                        expected_profit: "1".into(),
                        actual_profit: "0.5".into(),
                        excess: "-0.5".into(),
                    },
                ));
            },
        ),
        event_case(
            "long operator reason",
            Inv,
            "details.operator_action.reason",
            id,
            |r| {
                r.event_type = pb::EventType::OperatorAction as i32;
                r.details = details(pb::event_details::Kind::OperatorAction(
                    pb::OperatorActionDetails {
                        action: "hold".into(),
                        reason: "r".repeat(513),
                        operator: "ops".into(),
                    },
                ));
            },
        ),
        event_case("missing at", Inv, "at", id, |r| r.at = None),
        event_case("future at", Inv, "at", id, |r| r.at = far_future()),
        // RepricePosition
        reprice_case("malformed new_price", Inv, "new_price", id, |r| {
            r.new_price = "abc".into()
        }),
        reprice_case("missing reason", Inv, "reason", id, |r| r.reason = 0),
        reprice_case("unknown reason", Inv, "reason", id, |r| r.reason = 42),
        reprice_case("tighten spending", Inv, "subsidy_consumed", id, |r| {
            r.reason = Tighten as i32
        }),
        reprice_case("negative subsidy", Inv, "subsidy_consumed", id, |r| {
            r.subsidy_consumed = "-1".into()
        }),
        reprice_case("long event_key", Inv, "event_key", id, |r| {
            r.event_key = "k".repeat(129)
        }),
        reprice_case(
            "insufficient subsidy",
            Pre,
            "insufficient subsidy",
            id,
            |r| {
                r.subsidy_consumed = "1000".into();
            },
        ),
        reprice_case(
            "unknown position",
            NotFound,
            "position 424242",
            424_242,
            |_| {},
        ),
        // ClosePosition
        close_case("missing close_reason", Inv, "close_reason", id, |r| {
            r.close_reason = 0
        }),
        close_case("filled without price", Inv, "exit_price", id, |r| {
            r.exit_price.clear()
        }),
        close_case("exit before entry", Inv, "exit_time", id, |r| {
            r.exit_time = ts(T0 - 10)
        }),
        close_case("missing exit_regime", Inv, "exit_regime", id, |r| {
            r.exit_regime = 0
        }),
        close_case("malformed net_profit", Inv, "net_profit", id, |r| {
            r.net_profit = "1.2.3".into()
        }),
        close_case("long reason", Inv, "reason", id, |r| {
            r.reason = "x".repeat(600)
        }),
        // Reads and Compact
        read_case("get_position without id", Inv, "position_id", |mut c| {
            Box::pin(async move {
                c.get_position(pb::GetPositionRequest { position_id: 0 })
                    .await
                    .map(drop)
            })
        }),
        read_case("get_position unknown", NotFound, "position 77", |mut c| {
            Box::pin(async move {
                c.get_position(pb::GetPositionRequest { position_id: 77 })
                    .await
                    .map(drop)
            })
        }),
        read_case("list_open without bot", Inv, "bot_id", |mut c| {
            Box::pin(async move {
                c.list_open_positions(pb::ListOpenPositionsRequest {
                    bot_id: String::new(),
                    slot_id: None,
                })
                .await
                .map(drop)
            })
        }),
        read_case("history limit too big", Inv, "limit", |mut c| {
            Box::pin(async move {
                c.get_position_history(pb::GetPositionHistoryRequest {
                    bot_id: "b".into(),
                    slot_id: None,
                    limit: 5000,
                    position_id: None,
                })
                .await
                .map(drop)
            })
        }),
        read_case("journal without scope", Inv, "scope", |mut c| {
            Box::pin(async move {
                c.get_journal(pb::GetJournalRequest {
                    scope: None,
                    after_journal_id: 0,
                    limit: 0,
                })
                .await
                .map(drop)
            })
        }),
        read_case("balance without slot", Inv, "slot_id", |mut c| {
            Box::pin(async move {
                c.get_subsidy_balance(pb::GetSubsidyBalanceRequest {
                    bot_id: "b".into(),
                    slot_id: None,
                })
                .await
                .map(drop)
            })
        }),
        read_case("summary without bot", Inv, "bot_id", |mut c| {
            Box::pin(async move {
                c.get_subsidy_summary(pb::GetSubsidySummaryRequest {
                    bot_id: String::new(),
                })
                .await
                .map(drop)
            })
        }),
        read_case("compact without cutoff", Inv, "cutoff", |mut c| {
            Box::pin(async move {
                c.compact(pb::CompactRequest {
                    bot_id: "b".into(),
                    cutoff: None,
                })
                .await
                .map(drop)
            })
        }),
        read_case("compact without bot", Inv, "bot_id", |mut c| {
            Box::pin(async move {
                c.compact(pb::CompactRequest {
                    bot_id: String::new(),
                    cutoff: ts(T0),
                })
                .await
                .map(drop)
            })
        }),
    ]
}

async fn journal_len(c: &mut Client, bot: &str, slot: u32) -> usize {
    c.get_journal(pb::GetJournalRequest {
        scope: Some(pb::get_journal_request::Scope::Slot(pb::SlotRef {
            bot_id: bot.into(),
            slot_id: slot,
        })),
        after_journal_id: 0,
        limit: 1000,
    })
    .await
    .unwrap()
    .into_inner()
    .entries
    .len()
}

async fn bad_input(mut s: Server) {
    let c = &mut s.client;
    let id = open_id(c, "bot-ok", 1, "good-open").await;
    c.journal_event(credit_request(id, "good-credit", "0.5"))
        .await
        .unwrap();
    let rows_before = journal_len(c, "bot-ok", 1).await;
    let position_before = c
        .get_position(pb::GetPositionRequest { position_id: id })
        .await
        .unwrap()
        .into_inner();

    let mut failures = Vec::new();
    for case in cases(id) {
        match (case.call)(c.clone()).await {
            Ok(()) => failures.push(format!("{}: accepted", case.label)),
            Err(status) => {
                if status.code() != case.code || !status.message().starts_with(case.field) {
                    failures.push(format!(
                        "{}: expected {:?} starting with {:?}, got {:?} {:?}",
                        case.label,
                        case.code,
                        case.field,
                        status.code(),
                        status.message()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "bad input not handled:\n{}",
        failures.join("\n")
    );

    // Nothing was written by any refused request.
    assert_eq!(journal_len(c, "bot-ok", 1).await, rows_before);
    assert_eq!(
        c.get_position(pb::GetPositionRequest { position_id: id })
            .await
            .unwrap()
            .into_inner(),
        position_before
    );
    let bad_bot = c
        .list_open_positions(pb::ListOpenPositionsRequest {
            bot_id: "bot-bad".into(),
            slot_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(bad_bot.positions.is_empty());
    let balance = c
        .get_subsidy_balance(balance_request("bot-ok", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.subsidy.unwrap().balance, "0.5");

    // Absurdly large messages are refused before decoding.
    let mut huge = open_request("bot-bad", 1, "huge");
    huge.open_key = "k".repeat(200_000);
    let status = c
        .open_position(huge)
        .await
        .expect_err("huge message accepted");
    assert!(
        matches!(
            status.code(),
            Code::OutOfRange | Code::InvalidArgument | Code::ResourceExhausted
        ),
        "{status:?}"
    );
    s.shutdown().await;
}

/// Proves: credits whose lifetime totals would leave `Decimal`'s range are
/// refused with FAILED_PRECONDITION (not a panic inside the write), and the
/// refused credit writes nothing.
async fn subsidy_totals_never_overflow(mut s: Server) {
    let c = &mut s.client;
    let id = open_id(c, "bot-big", 2, "big-open").await;
    let big = "9".repeat(28);
    for i in 0..7 {
        c.journal_event(credit_request(id, &format!("big-{i}"), &big))
            .await
            .unwrap();
    }
    let rows = journal_len(c, "bot-big", 2).await;
    let status = c
        .journal_event(credit_request(id, "big-7", &big))
        .await
        .expect_err("an overflowing credit was accepted");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("subsidy totals of bot bot-big slot 2"),
        "{status:?}"
    );
    assert_eq!(journal_len(c, "bot-big", 2).await, rows);
    let balance = c
        .get_subsidy_balance(balance_request("bot-big", 2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        balance.subsidy.unwrap().balance,
        "69999999999999999999999999993"
    );
    s.shutdown().await;
}

/// Proves: a write whose protobuf cannot be decoded (a string field that is
/// not UTF-8, cut short, or of the wrong wire type), appended to a request
/// that would otherwise be written, is refused as INVALID_ARGUMENT saying so
/// (not INTERNAL), on every write RPC, and the store is unchanged.
async fn undecodable_requests(s: Server) {
    let c = &mut s.client.clone();
    let id = open_id(c, "bot-ok", 1, "good-open").await;
    c.journal_event(credit_request(id, "good-credit", "0.5"))
        .await
        .unwrap();
    let before = dump(s.ledger(), id, &["bot-ok"]).await;
    // Requests the ledger would write, each with a string field made
    // undecodable.
    let writes = [
        (
            "OpenPosition",
            Undecodable::every(&open_request("bot-ok", 1, "undecodable"), 1),
        ),
        (
            "JournalEvent",
            Undecodable::every(&credit_request(id, "undecodable", "0.5"), 2),
        ),
        (
            "ClosePosition",
            Undecodable::every(&close_request(id, "undecodable", T0 + 100), 2),
        ),
        (
            "RepricePosition",
            Undecodable::every(
                &reprice_request(id, "undecodable", "0.0935", Subsidy, "0.1"),
                3,
            ),
        ),
        (
            "Compact",
            Undecodable::every(
                &pb::CompactRequest {
                    bot_id: "bot-ok".into(),
                    cutoff: ts(T0 + 10_000),
                },
                1,
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (method, bodies) in writes {
        let path = format!("/healgrid.ledger.v1.LedgerService/{method}");
        for (defect, body) in bodies {
            let answer = send_raw(s.channel.clone(), &path, body).await;
            if let Err(why) = judge_undecodable(&answer) {
                failures.push(format!("{method} {defect:?}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(dump(s.ledger(), id, &["bot-ok"]).await, before);
    s.shutdown().await;
}

grpc_suite!(
    bad_input,
    subsidy_totals_never_overflow,
    undecodable_requests
);
