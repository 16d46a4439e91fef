//! Hostile input, generated: random and malformed requests to every
//! LedgerService RPC over a real gRPC server (huge, empty and odd unicode
//! strings, NaN / inf / exponent / overflowing decimal texts, unknown and
//! negative enum numbers, missing sub-messages, impossible timestamps,
//! unknown position ids, 10 MB messages). Each write request carries at least
//! one field that must be refused, on top of random values everywhere else,
//! so every write answer must be a clear refusal; reads may also answer OK.
//! No answer is INTERNAL, UNKNOWN or a dropped call, and a dump of the store
//! (every position, every journal row, every subsidy total, read through the
//! in-process `Ledger` API) is identical before and after.

mod common;

use std::fmt::Debug;

use common::*;
use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use healgrid_tests::hostile::{Clipped, JUNK_DECIMALS, judge};
use pb::event_details::Kind;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prost_types::Timestamp;
use tonic::{Code, transport::Channel};

type Client = LedgerServiceClient<Channel>;

/// Generated cases per RPC.
const CASES: u32 = 64;
/// Bots the seed writes to (and the dump reads).
const BOTS: [&str; 2] = ["bot-ok", "bot-two"];

fn huge(bytes: usize) -> String {
    "h".repeat(bytes)
}

/// Any text a client might send: valid ids, odd but printable unicode,
/// control characters, padding, overlong and 1 MB strings.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9-]{1,16}",
        2 => "\\PC{1,40}",
        1 => Just(String::new()),
        1 => Just("\u{200B}\u{202E}rtl\u{FEFF}".to_owned()),
        1 => Just("ß漢字🦀\u{10FFFF}".to_owned()),
        1 => Just(" padded ".to_owned()),
        1 => Just("nul\u{0}byte\u{7f}".to_owned()),
        1 => (129usize..700).prop_map(|n| "x".repeat(n)),
        1 => Just(huge(1 << 20)),
    ]
}

/// An id that must be refused wherever a required id is expected.
fn bad_id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        (129usize..400).prop_map(|n| "k".repeat(n)),
        Just("nul\u{0}".to_owned()),
        Just("tab\tkey".to_owned()),
        Just(" padded ".to_owned()),
        Just(huge(1 << 20)),
    ]
}

/// A decimal text that is not a decimal string at all.
fn bad_decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            JUNK_DECIMALS
                .into_iter()
                .chain(["1e-5", "1E5", "+1", " 1", "1 ", ".5", "5.", "1_000"])
                .collect::<Vec<_>>(),
        )
        .prop_map(str::to_owned),
        "[a-zA-Z ,+eE_]{1,12}",
        (41usize..200).prop_map(|n| "9".repeat(n)),
    ]
}

/// Any decimal text: malformed, negative, zero, huge, or plausible.
fn decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => bad_decimal(),
        2 => "-?[0-9]{1,30}(\\.[0-9]{1,30})?",
        1 => prop::sample::select(vec!["", "0", "-1", "-0", "0.0001", "1000000000000"])
            .prop_map(str::to_owned),
    ]
}

/// Any enum number: valid, unspecified, unknown or negative.
fn any_enum() -> impl Strategy<Value = i32> {
    prop_oneof![0..6i32, any::<i32>()]
}

/// An enum number no field of the ledger knows.
fn bad_enum() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), 100..=i32::MAX, i32::MIN..0]
}

fn any_time() -> impl Strategy<Value = Option<Timestamp>> {
    prop_oneof![
        3 => (T0 - 100..T0 + 10_000).prop_map(ts),
        1 => Just(None),
        1 => (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Some(Timestamp { seconds, nanos })),
    ]
}

/// A timestamp every write refuses: missing, malformed, before 2009 or far
/// in the future.
fn bad_time() -> impl Strategy<Value = Option<Timestamp>> {
    prop_oneof![
        Just(None),
        Just(Some(Timestamp {
            seconds: T0,
            nanos: -5
        })),
        Just(Some(Timestamp {
            seconds: T0,
            nanos: 1_000_000_000
        })),
        Just(ts(i64::MAX)),
        Just(ts(i64::MIN)),
        (0..1_230_000_000i64).prop_map(ts),
        (4_000_000_000..300_000_000_000i64).prop_map(ts),
    ]
}

/// Position ids: the seeded ones, zero, unknown and extreme.
fn any_position(ids: Vec<u64>) -> impl Strategy<Value = u64> {
    prop_oneof![prop::sample::select(ids), Just(0u64), any::<u64>()]
}

/// The one field of a write request that makes it invalid.
#[derive(Debug, Clone)]
enum Poison {
    Id(usize, String),
    Decimal(usize, String),
    Enum(usize, i32),
    Time(Option<Timestamp>),
    Missing(usize),
    Position(u64),
    Huge,
}

fn poison() -> impl Strategy<Value = Poison> {
    let slot = 0usize..16;
    prop_oneof![
        (slot.clone(), bad_id()).prop_map(|(i, v)| Poison::Id(i, v)),
        (slot.clone(), bad_decimal()).prop_map(|(i, v)| Poison::Decimal(i, v)),
        (slot.clone(), bad_enum()).prop_map(|(i, v)| Poison::Enum(i, v)),
        bad_time().prop_map(Poison::Time),
        slot.prop_map(Poison::Missing),
        prop_oneof![Just(0u64), 1_000_000..=u64::MAX].prop_map(Poison::Position),
        Just(Poison::Huge),
    ]
}

/// One request to one RPC.
#[derive(Debug, Clone)]
enum Call {
    Open(pb::OpenPositionRequest),
    Event(pb::JournalEventRequest),
    Close(pb::ClosePositionRequest),
    Reprice(pb::RepricePositionRequest),
    Compact(pb::CompactRequest),
    BotAppend(pb::AppendBotJournalRequest),
    BotJournal(pb::GetBotJournalRequest),
    GetPosition(pb::GetPositionRequest),
    ListOpen(pb::ListOpenPositionsRequest),
    History(pb::GetPositionHistoryRequest),
    Journal(pb::GetJournalRequest),
    Balance(pb::GetSubsidyBalanceRequest),
    Summary(pb::GetSubsidySummaryRequest),
}

impl Call {
    fn is_read(&self) -> bool {
        !matches!(
            self,
            Self::Open(_)
                | Self::Event(_)
                | Self::Close(_)
                | Self::Reprice(_)
                | Self::Compact(_)
                | Self::BotAppend(_)
        )
    }

    async fn send(self, mut c: Client) -> Result<(), tonic::Status> {
        match self {
            Self::Open(r) => c.open_position(r).await.map(drop),
            Self::Event(r) => c.journal_event(r).await.map(drop),
            Self::Close(r) => c.close_position(r).await.map(drop),
            Self::Reprice(r) => c.reprice_position(r).await.map(drop),
            Self::Compact(r) => c.compact(r).await.map(drop),
            Self::BotAppend(r) => c.append_bot_journal(r).await.map(drop),
            Self::BotJournal(r) => c.get_bot_journal(r).await.map(drop),
            Self::GetPosition(r) => c.get_position(r).await.map(drop),
            Self::ListOpen(r) => c.list_open_positions(r).await.map(drop),
            Self::History(r) => c.get_position_history(r).await.map(drop),
            Self::Journal(r) => c.get_journal(r).await.map(drop),
            Self::Balance(r) => c.get_subsidy_balance(r).await.map(drop),
            Self::Summary(r) => c.get_subsidy_summary(r).await.map(drop),
        }
    }
}

/// Mostly the valid value, sometimes a hostile one: a request's defect is
/// then often its poison alone, so the checks behind the first field are
/// reached too.
fn noise<T: Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.12, s)
}

fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        field.clone_from(v);
    }
}

/// The decimal fields of an open.
fn open_decimals(r: &mut pb::OpenPositionRequest) -> [&mut String; 7] {
    [
        &mut r.entry_price,
        &mut r.entry_cost,
        &mut r.entry_fee,
        &mut r.entry_volume,
        &mut r.entry_volatility,
        &mut r.original_exit_price,
        &mut r.target_profit_pct,
    ]
}

fn open_call() -> impl Strategy<Value = Call> {
    let strings = prop::collection::vec(noise(text()), 3);
    let decimals = prop::collection::vec(noise(decimal()), 7);
    let enums = prop::collection::vec(noise(any_enum()), 3);
    let misc = (
        noise(any::<Option<u32>>()),
        any::<u64>(),
        noise(any_time()),
        any::<bool>(),
        "[a-z]{1,12}",
    );
    (strings, decimals, enums, misc, poison()).prop_map(|(s, d, e, m, p)| {
        let mut r = open_request("bot-ok", 1, &m.4);
        r.cycle = m.1;
        r.migration = m.3;
        set(&mut r.slot_id, &m.0);
        set(&mut r.entry_time, &m.2);
        for (f, v) in [&mut r.bot_id, &mut r.open_key, &mut r.exit_txid]
            .into_iter()
            .zip(&s)
        {
            set(f, v);
        }
        for (f, v) in [&mut r.trade_id, &mut r.slot_mode, &mut r.entry_regime]
            .into_iter()
            .zip(&e)
        {
            set(f, v);
        }
        for (f, v) in open_decimals(&mut r).into_iter().zip(&d) {
            set(f, v);
        }
        match p {
            Poison::Id(i, v) => *[&mut r.bot_id, &mut r.open_key][i % 2] = v,
            Poison::Decimal(i, v) => {
                *open_decimals(&mut r).into_iter().nth(i % 7).unwrap() = v;
            }
            Poison::Enum(i, v) => match i % 3 {
                0 => r.trade_id = v,
                1 => r.slot_mode = v,
                _ => r.entry_regime = v,
            },
            Poison::Time(t) => r.entry_time = t,
            Poison::Missing(i) if i % 2 == 0 => r.slot_id = None,
            Poison::Missing(_) => r.entry_time = None,
            Poison::Position(_) | Poison::Huge => r.exit_txid = huge(1 << 20),
        }
        Call::Open(r)
    })
}

fn details(kind: u8, s: &[String], d: &[String], t: Option<Timestamp>) -> Option<Kind> {
    let (a, b, c) = (s[0].clone(), s[1].clone(), s[2].clone());
    Some(match kind % 11 {
        0 => return None,
        1 => Kind::ChurnerProfit(pb::ChurnerProfitDetails {
            net_profit: d[0].clone(),
            churner_cycle_id: a,
        }),
        2 => Kind::OverPerformance(pb::OverPerformanceDetails {
            expected_profit: d[0].clone(),
            actual_profit: d[1].clone(),
            excess: d[2].clone(),
        }),
        3 => Kind::OperatorAction(pb::OperatorActionDetails {
            action: a,
            reason: b,
            operator: c,
        }),
        4 => Kind::KeepHolding(pb::KeepHoldingDetails {
            hold_until: t,
            reason: a,
        }),
        5 => Kind::HandedOver(pb::HandedOverDetails {
            reason: a,
            age_seconds: -1,
        }),
        6 => Kind::Filled(pb::FilledDetails {
            fill_price: d[0].clone(),
            fill_cost: d[1].clone(),
            fill_fee: d[2].clone(),
            net_profit: d[0].clone(),
        }),
        7 => Kind::Cancelled(pb::CancelledDetails {
            reason: a,
            age_seconds: i64::MIN,
        }),
        8 => Kind::WrittenOff(pb::WrittenOffDetails {
            close_price: d[0].clone(),
            realized_loss: d[1].clone(),
            reason: a,
        }),
        9 => Kind::Created(pb::CreatedDetails {
            entry_price: d[0].clone(),
            exit_price: d[1].clone(),
            regime: 77,
            slot_mode: -3,
            migration: true,
        }),
        _ => Kind::Repriced(pb::RepricedDetails {
            old_price: d[0].clone(),
            new_price: d[1].clone(),
            old_txid: a,
            new_txid: b,
            reason: 9,
            subsidy_consumed: d[2].clone(),
        }),
    })
}

fn event_call(ids: Vec<u64>) -> impl Strategy<Value = Call> {
    let strings = prop::collection::vec(text(), 4);
    let decimals = prop::collection::vec(decimal(), 3);
    let misc = (
        any_position(ids),
        noise(any_enum()),
        noise(any::<u8>()),
        noise(any_time()),
        any_time(),
        noise(text()),
    );
    (strings, decimals, misc, poison()).prop_map(|(s, d, m, p)| {
        let mut r = credit_request(m.0, "event", "0.1");
        set(&mut r.event_type, &m.1);
        set(&mut r.at, &m.3);
        set(&mut r.event_key, &m.5);
        if let Some(kind) = m.2 {
            r.details = details(kind, &s, &d, m.4).map(|k| pb::EventDetails { kind: Some(k) });
        }
        match p {
            Poison::Id(_, v) => r.event_key = v,
            Poison::Decimal(_, v) => {
                r.event_type = pb::EventType::ChurnerProfit as i32;
                r.details = Some(pb::EventDetails {
                    kind: Some(Kind::ChurnerProfit(pb::ChurnerProfitDetails {
                        net_profit: v,
                        churner_cycle_id: s[0].clone(),
                    })),
                });
            }
            Poison::Enum(_, v) => r.event_type = v,
            Poison::Time(t) => r.at = t,
            Poison::Missing(i) if i % 2 == 0 => r.details = None,
            Poison::Missing(_) => r.details = Some(pb::EventDetails { kind: None }),
            Poison::Position(id) => r.position_id = id,
            Poison::Huge => r.event_key = huge(1 << 20),
        }
        Call::Event(r)
    })
}

fn close_call(ids: Vec<u64>) -> impl Strategy<Value = Call> {
    let strings = prop::collection::vec(noise(text()), 2);
    let decimals = prop::collection::vec(noise(decimal()), 4);
    let misc = (
        any_position(ids),
        noise(any_enum()),
        noise(any_enum()),
        noise(any_time()),
    );
    (strings, decimals, misc, poison()).prop_map(|(s, d, m, p)| {
        let mut r = close_request(m.0, "close-again", T0 + 200);
        set(&mut r.event_key, &s[0]);
        set(&mut r.reason, &s[1]);
        set(&mut r.close_reason, &m.1);
        set(&mut r.exit_regime, &m.2);
        set(&mut r.exit_time, &m.3);
        for (f, v) in [
            &mut r.exit_price,
            &mut r.exit_cost,
            &mut r.exit_fee,
            &mut r.net_profit,
        ]
        .into_iter()
        .zip(&d)
        {
            set(f, v);
        }
        match p {
            Poison::Id(_, v) => r.event_key = v,
            Poison::Decimal(i, v) => {
                let f = [
                    &mut r.exit_price,
                    &mut r.exit_cost,
                    &mut r.exit_fee,
                    &mut r.net_profit,
                ];
                *f.into_iter().nth(i % 4).unwrap() = v;
            }
            Poison::Enum(i, v) if i % 2 == 0 => r.close_reason = v,
            Poison::Enum(_, v) => r.exit_regime = v,
            Poison::Time(t) => r.exit_time = t,
            Poison::Missing(_) => r.exit_time = None,
            Poison::Position(id) => r.position_id = id,
            Poison::Huge => r.reason = huge(1 << 20),
        }
        Call::Close(r)
    })
}

fn reprice_call(ids: Vec<u64>) -> impl Strategy<Value = Call> {
    let strings = prop::collection::vec(noise(text()), 2);
    let decimals = prop::collection::vec(noise(decimal()), 2);
    let misc = (any_position(ids), noise(any_enum()), noise(any_time()));
    (strings, decimals, misc, poison()).prop_map(|(s, d, m, p)| {
        let mut r = reprice_request(
            m.0,
            "reprice-2",
            "0.0932",
            pb::RepriceReason::Subsidy,
            "0.1",
        );
        set(&mut r.event_key, &s[0]);
        set(&mut r.new_txid, &s[1]);
        set(&mut r.new_price, &d[0]);
        set(&mut r.subsidy_consumed, &d[1]);
        set(&mut r.reason, &m.1);
        set(&mut r.at, &m.2);
        match p {
            Poison::Id(_, v) => r.event_key = v,
            Poison::Decimal(i, v) if i % 2 == 0 => r.new_price = v,
            Poison::Decimal(_, v) => r.subsidy_consumed = v,
            Poison::Enum(_, v) => r.reason = v,
            Poison::Time(t) => r.at = t,
            Poison::Missing(_) => r.at = None,
            Poison::Position(id) => r.position_id = id,
            Poison::Huge => r.new_txid = huge(1 << 20),
        }
        Call::Reprice(r)
    })
}

fn compact_call() -> impl Strategy<Value = Call> {
    (text(), any_time(), poison()).prop_map(|(bot_id, cutoff, p)| {
        let mut r = pb::CompactRequest { bot_id, cutoff };
        match p {
            Poison::Id(_, v) => r.bot_id = v,
            Poison::Time(t) => r.cutoff = t,
            Poison::Missing(_) => r.cutoff = None,
            _ => r.bot_id = huge(1 << 20),
        }
        Call::Compact(r)
    })
}

/// A valid bot-journal row of `bot-ok`.
fn bot_row(key: &str) -> pb::AppendBotJournalRequest {
    pb::AppendBotJournalRequest {
        bot_id: "bot-ok".into(),
        event_key: key.into(),
        at: ts(T0 + 30),
        action: pb::BotAction::ChurnerReserve as i32,
        detail: "reserve_usd=25".into(),
        reason: "hostile".into(),
        operator: "tester".into(),
    }
}

fn bot_append_call() -> impl Strategy<Value = Call> {
    let strings = prop::collection::vec(noise(text()), 5);
    (strings, noise(any_enum()), noise(any_time()), poison()).prop_map(|(s, action, at, p)| {
        let mut r = bot_row("bot-append");
        set(&mut r.bot_id, &s[0]);
        set(&mut r.event_key, &s[1]);
        set(&mut r.detail, &s[2]);
        set(&mut r.reason, &s[3]);
        set(&mut r.operator, &s[4]);
        set(&mut r.action, &action);
        set(&mut r.at, &at);
        match p {
            Poison::Id(i, v) if i % 2 == 0 => r.bot_id = v,
            Poison::Id(_, v) => r.event_key = v,
            Poison::Enum(_, v) => r.action = v,
            Poison::Time(t) => r.at = t,
            Poison::Missing(i) if i % 2 == 0 => r.at = None,
            Poison::Missing(_) => r.action = pb::BotAction::Unspecified as i32,
            Poison::Decimal(..) | Poison::Position(_) | Poison::Huge => r.detail = huge(1 << 20),
        }
        Call::BotAppend(r)
    })
}

fn read_calls(ids: Vec<u64>) -> Vec<(&'static str, BoxedStrategy<Call>)> {
    let slot = any::<Option<u32>>();
    let scope = prop_oneof![
        Just(None),
        any_position(ids.clone())
            .prop_map(|id| Some(pb::get_journal_request::Scope::PositionId(id))),
        (text(), any::<u32>()).prop_map(|(bot_id, slot_id)| Some(
            pb::get_journal_request::Scope::Slot(pb::SlotRef { bot_id, slot_id })
        )),
    ];
    vec![
        (
            "GetPosition",
            any_position(ids.clone())
                .prop_map(|position_id| Call::GetPosition(pb::GetPositionRequest { position_id }))
                .boxed(),
        ),
        (
            "ListOpenPositions",
            (text(), slot.clone())
                .prop_map(|(bot_id, slot_id)| {
                    Call::ListOpen(pb::ListOpenPositionsRequest { bot_id, slot_id })
                })
                .boxed(),
        ),
        (
            "GetPositionHistory",
            (
                text(),
                slot.clone(),
                any::<u32>(),
                prop::option::of(any_position(ids.clone())),
            )
                .prop_map(|(bot_id, slot_id, limit, position_id)| {
                    Call::History(pb::GetPositionHistoryRequest {
                        bot_id,
                        slot_id,
                        limit,
                        position_id,
                    })
                })
                .boxed(),
        ),
        (
            "GetJournal",
            (scope, any::<u64>(), any::<u32>())
                .prop_map(|(scope, after_journal_id, limit)| {
                    Call::Journal(pb::GetJournalRequest {
                        scope,
                        after_journal_id,
                        limit,
                    })
                })
                .boxed(),
        ),
        (
            "GetSubsidyBalance",
            (text(), slot)
                .prop_map(|(bot_id, slot_id)| {
                    Call::Balance(pb::GetSubsidyBalanceRequest { bot_id, slot_id })
                })
                .boxed(),
        ),
        (
            "GetBotJournal",
            (text(), any::<u64>(), any::<u32>())
                .prop_map(|(bot_id, after_bot_journal_id, limit)| {
                    Call::BotJournal(pb::GetBotJournalRequest {
                        bot_id,
                        after_bot_journal_id,
                        limit,
                    })
                })
                .boxed(),
        ),
        (
            "GetSubsidySummary",
            text()
                .prop_map(|bot_id| Call::Summary(pb::GetSubsidySummaryRequest { bot_id }))
                .boxed(),
        ),
    ]
}

/// Every RPC of the service with its request strategy.
fn every_rpc(ids: &[u64]) -> Vec<(&'static str, BoxedStrategy<Call>)> {
    let mut all = vec![
        ("OpenPosition", open_call().boxed()),
        ("JournalEvent", event_call(ids.to_vec()).boxed()),
        ("ClosePosition", close_call(ids.to_vec()).boxed()),
        ("RepricePosition", reprice_call(ids.to_vec()).boxed()),
        ("Compact", compact_call().boxed()),
        ("AppendBotJournal", bot_append_call().boxed()),
    ];
    all.extend(read_calls(ids.to_vec()));
    all
}

/// Open, credited, repriced and closed positions on two bots; returns their
/// ids.
async fn seed(c: &mut Client) -> Vec<u64> {
    let mut ids = Vec::new();
    for (bot, slot, key) in [
        ("bot-ok", 1, "k1"),
        ("bot-ok", 1, "k2"),
        ("bot-two", 0, "k3"),
    ] {
        let opened = c.open_position(open_request(bot, slot, key)).await.unwrap();
        ids.push(opened.into_inner().position.unwrap().position_id);
    }
    c.journal_event(credit_request(ids[0], "credit", "0.5"))
        .await
        .unwrap();
    c.reprice_position(reprice_request(
        ids[0],
        "reprice",
        "0.0935",
        pb::RepriceReason::Subsidy,
        "0.1",
    ))
    .await
    .unwrap();
    c.close_position(close_request(ids[1], "close", T0 + 100))
        .await
        .unwrap();
    c.append_bot_journal(bot_row("operator:seed"))
        .await
        .unwrap();
    ids
}

/// Sends `CASES` generated requests to every RPC, then one 10 MB message
/// per write RPC, and compares the store before and after each write.
fn hostile<F>(make: impl FnOnce() -> F)
where
    F: std::future::Future<Output = Option<Fixture>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(fixture) = rt.block_on(make()) else {
        return; // backend not available here
    };
    let ledger = fixture.ledger.clone();
    let server = rt.block_on(Server::start(fixture));
    let client = server.client.clone();
    let ids = rt.block_on(seed(&mut client.clone()));
    let last_id = *ids.iter().max().unwrap();
    let before = rt.block_on(dump(&ledger, last_id, &BOTS));

    for (rpc, strategy) in every_rpc(&ids) {
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            // A case that did write leaves the state changed for every
            // shrunk case after it, so report the first failure as it was.
            max_shrink_iters: 0,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy.prop_map(Clipped), |Clipped(call)| {
            let write = !call.is_read();
            let answer = rt.block_on(call.clone().send(client.clone()));
            judge(call.is_read(), &answer).map_err(TestCaseError::fail)?;
            if write {
                let after = rt.block_on(dump(&ledger, last_id, &BOTS));
                prop_assert!(after == before, "the store changed");
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{rpc}: {e}");
        }
    }

    let ten_mb = huge(10 << 20);
    let big = [
        Call::Open(pb::OpenPositionRequest {
            open_key: ten_mb.clone(),
            ..open_request("bot-ok", 1, "x")
        }),
        Call::Event(pb::JournalEventRequest {
            event_key: ten_mb.clone(),
            ..credit_request(ids[0], "x", "0.1")
        }),
        Call::Close(pb::ClosePositionRequest {
            reason: ten_mb.clone(),
            ..close_request(ids[0], "x", T0 + 200)
        }),
        Call::Reprice(pb::RepricePositionRequest {
            new_txid: ten_mb.clone(),
            ..reprice_request(ids[0], "x", "0.094", pb::RepriceReason::Tighten, "")
        }),
        Call::Compact(pb::CompactRequest {
            bot_id: ten_mb.clone(),
            cutoff: ts(T0 + 10_000),
        }),
        Call::BotAppend(pb::AppendBotJournalRequest {
            detail: ten_mb,
            ..bot_row("x")
        }),
    ];
    for call in big {
        let answer = rt.block_on(call.clone().send(client.clone()));
        let code = answer.as_ref().err().map(tonic::Status::code);
        assert!(
            matches!(
                code,
                Some(Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument)
            ),
            "10 MB {:?}: {answer:?}",
            Clipped(&call)
        );
    }
    assert_eq!(rt.block_on(dump(&ledger, last_id, &BOTS)), before);
    // The server still answers after all of it.
    rt.block_on(client.clone().get_position(pb::GetPositionRequest {
        position_id: ids[0],
    }))
    .unwrap();
    rt.block_on(server.shutdown());
}

#[test]
fn hostile_requests_on_memory() {
    hostile(|| async { Some(memory()) });
}

#[test]
fn hostile_requests_on_sqlite() {
    hostile(|| async { Some(sqlite().await) });
}

#[test]
fn hostile_requests_on_postgres() {
    hostile(|| postgres("grpc_hostile_postgres"));
}
