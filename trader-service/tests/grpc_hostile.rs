//! Hostile input, generated: random and malformed requests to every
//! TraderService RPC through the real gRPC server of a runtime on the paper
//! exchange that holds a position in band write_off. Position ids that are
//! no ids (text, zero, negative, overflowing, unknown), request ids that are
//! empty, overlong or carry control characters, overlong reasons and
//! operators, hold and override windows out of range, unknown regimes,
//! reserve texts that are no amount (NaN, inf, negative, 1e30), 1 MB
//! strings, and one 10 MB message per write RPC. Every write request carries at least one such field on top of
//! random values elsewhere, so it must be refused with a clear status (never
//! INTERNAL or UNKNOWN); reads may answer OK. The trader's status (mode,
//! slots, positions, orders, healing, churner) and the ledger's journal are
//! identical before and after. So are they after writes whose protobuf
//! cannot be decoded, which are refused as INVALID_ARGUMENT.

#![allow(missing_docs)]

mod faulty;
mod grid;
mod healing;
mod operator;

use std::cell::RefCell;

use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use healgrid_tests::hostile::{
    Clipped, JUNK_DECIMALS, Undecodable, judge, judge_undecodable, send_raw,
};
use ledger_service::JournalScope;
use operator::{BOT, Run};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tonic::transport::Channel;

/// Generated cases per RPC.
const CASES: u32 = 64;

fn huge() -> String {
    "h".repeat(1 << 20)
}

/// Any text an operator tool might send: plausible words, odd but printable
/// unicode, control characters, padding, long and 1 MB strings.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9 -]{0,24}",
        2 => "\\PC{1,40}",
        1 => Just("\u{200B}\u{202E}rtl\u{FEFF}".to_owned()),
        1 => Just("nul\u{0}\u{1b}[31m".to_owned()),
        1 => (90usize..700).prop_map(|n| "é".repeat(n)),
        1 => Just(huge()),
    ]
}

/// A position id that is no ledger position of this trader.
fn bad_position() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "-1",
            "-0",
            "abc",
            "NaN",
            "1e3",
            "1.0",
            "0x1",
            "1 2",
            "١",
            "18446744073709551616",
            "99999999999999999999999",
        ])
        .prop_map(str::to_owned),
        (1_000_000u64..).prop_map(|n| n.to_string()),
        "[a-z]{1,10}",
        Just(huge()),
    ]
}

/// Any position id: the real one, padded, or junk.
fn any_position(real: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(real.clone()),
        Just(format!(" {real} ")),
        Just(format!("+{real}")),
        bad_position(),
    ]
}

/// A request id the trader must refuse.
fn bad_request_id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        (129usize..400).prop_map(|n| "r".repeat(n)),
        (65usize..100).prop_map(|n| "é".repeat(n)),
        Just("tab\tid".to_owned()),
        Just("nul\u{0}".to_owned()),
    ]
}

/// What makes an operator request invalid whatever its other fields say.
#[derive(Debug, Clone)]
enum Poison {
    RequestId(String),
    /// A reason over 500 bytes.
    Reason(String),
    /// An operator name over 100 bytes.
    Operator(String),
    /// The action's own field (position id, window, regime, reserve).
    Own,
    Huge,
}

fn poison() -> impl Strategy<Value = Poison> {
    prop_oneof![
        1 => bad_request_id().prop_map(Poison::RequestId),
        1 => prop_oneof![
            (501usize..3000).prop_map(|n| "x".repeat(n)),
            (251usize..400).prop_map(|n| "é".repeat(n)),
        ]
        .prop_map(Poison::Reason),
        1 => (101usize..500).prop_map(|n| Poison::Operator("o".repeat(n))),
        2 => Just(Poison::Own),
        1 => Just(Poison::Huge),
    ]
}

/// The fields every operator action carries.
#[derive(Debug, Clone)]
struct Common {
    request_id: String,
    reason: String,
    operator: String,
}

fn common() -> impl Strategy<Value = Common> {
    (text(), text(), text()).prop_map(|(request_id, reason, operator)| Common {
        request_id,
        reason,
        operator,
    })
}

impl Common {
    /// Applies a poison that is not the action's own; returns whether it
    /// was one.
    fn poison(&mut self, p: &Poison) -> bool {
        match p {
            Poison::RequestId(v) => self.request_id.clone_from(v),
            Poison::Reason(v) => self.reason.clone_from(v),
            Poison::Operator(v) => self.operator.clone_from(v),
            Poison::Huge => self.reason = huge(),
            Poison::Own => return false,
        }
        true
    }
}

/// One request to one RPC.
#[derive(Debug, Clone)]
enum Call {
    Status,
    Queue,
    Candles(pb::GetCandlesRequest),
    Pause(pb::PauseRequest),
    Resume(pb::ResumeRequest),
    RetryParked(pb::RetryParkedWritesRequest),
    Breakeven(pb::RepriceToBreakevenRequest),
    Close(pb::CloseAtMarketRequest),
    Hold(pb::KeepHoldingRequest),
    Release(pb::ReleaseHoldRequest),
    Regime(pb::SetRegimeOverrideRequest),
    Spawn(pb::SpawnChurnerRequest),
    Kill(pb::KillChurnerRequest),
    Reserve(pb::SetChurnerReserveRequest),
}

impl Call {
    fn is_read(&self) -> bool {
        matches!(self, Self::Status | Self::Queue | Self::Candles(_))
    }

    async fn send(self, mut c: TraderServiceClient<Channel>) -> Result<(), tonic::Status> {
        match self {
            Self::Status => c.get_status(pb::GetStatusRequest {}).await.map(drop),
            Self::Queue => c
                .list_cleanup_queue(pb::ListCleanupQueueRequest {})
                .await
                .map(drop),
            Self::Candles(r) => c.get_candles(r).await.map(drop),
            Self::Pause(r) => c.pause(r).await.map(drop),
            Self::Resume(r) => c.resume(r).await.map(drop),
            Self::RetryParked(r) => c.retry_parked_writes(r).await.map(drop),
            Self::Breakeven(r) => c.reprice_to_breakeven(r).await.map(drop),
            Self::Close(r) => c.close_at_market(r).await.map(drop),
            Self::Hold(r) => c.keep_holding(r).await.map(drop),
            Self::Release(r) => c.release_hold(r).await.map(drop),
            Self::Regime(r) => c.set_regime_override(r).await.map(drop),
            Self::Spawn(r) => c.spawn_churner(r).await.map(drop),
            Self::Kill(r) => c.kill_churner(r).await.map(drop),
            Self::Reserve(r) => c.set_churner_reserve(r).await.map(drop),
        }
    }
}

/// A reason the control commands (pause, resume, retry) refuse: over 500
/// bytes, or 1 MB.
fn bad_reason() -> impl Strategy<Value = String> {
    prop_oneof![
        (501usize..5000).prop_map(|n| "x".repeat(n)),
        (251usize..400).prop_map(|n| "漢".repeat(n / 2 + 84)),
        Just(huge()),
    ]
}

/// The position actions: the position id is their own field.
fn position_calls(real: &str) -> Vec<(&'static str, BoxedStrategy<Call>)> {
    let id = || {
        (
            any_position(real.to_owned()),
            bad_position(),
            common(),
            poison(),
        )
    };
    let pick = |(id, bad, mut c, p): (String, String, Common, Poison)| {
        let id = if c.poison(&p) { id } else { bad };
        (id, c)
    };
    // The actions whose only own field is the position id.
    macro_rules! on_position {
        ($rpc:literal, $variant:ident, $request:ident) => {
            (
                $rpc,
                id().prop_map(pick)
                    .prop_map(|(position_id, c)| {
                        Call::$variant(pb::$request {
                            position_id,
                            request_id: c.request_id,
                            reason: c.reason,
                            operator: c.operator,
                        })
                    })
                    .boxed(),
            )
        };
    }
    vec![
        on_position!("RepriceToBreakeven", Breakeven, RepriceToBreakevenRequest),
        on_position!("CloseAtMarket", Close, CloseAtMarketRequest),
        on_position!("ReleaseHold", Release, ReleaseHoldRequest),
        (
            "KeepHolding",
            (
                any_position(real.to_owned()),
                common(),
                poison(),
                any::<i64>(),
                bad_hold(),
            )
                .prop_map(|(position_id, mut c, p, secs, bad)| {
                    // Its own poison here is the window; an unknown id is
                    // covered by the actions above.
                    let hold_seconds = if c.poison(&p) { secs } else { bad };
                    Call::Hold(pb::KeepHoldingRequest {
                        position_id,
                        request_id: c.request_id,
                        hold_seconds,
                        reason: c.reason,
                        operator: c.operator,
                    })
                })
                .boxed(),
        ),
    ]
}

/// A hold window out of 60 s .. 30 days (0 is the default, so valid).
fn bad_hold() -> impl Strategy<Value = i64> {
    prop_oneof![i64::MIN..0, 1..60i64, 30 * 86_400 + 1..=i64::MAX,]
}

/// A regime override that is refused by its own fields: an unknown regime,
/// or a known one with a lifetime out of 60 s .. 7 days.
fn bad_regime() -> impl Strategy<Value = (String, i64)> {
    prop_oneof![
        (
            prop::sample::select(vec![
                "",
                "unknown",
                "UNKNOWN",
                "sideways",
                "bull",
                "42",
                "auto-",
                "🦀",
                "ranging\u{0}"
            ]),
            any::<i64>()
        )
            .prop_map(|(r, t)| (r.to_owned(), t)),
        (
            prop::sample::select(vec!["ranging", "Bullish", " bearish "]),
            prop_oneof![i64::MIN..60, 7 * 86_400 + 1..=i64::MAX]
        )
            .prop_map(|(r, t)| (r.to_owned(), t)),
    ]
}

/// A reserve text that is no amount from 0 to 1 000 000 USD.
fn bad_reserve() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            JUNK_DECIMALS
                .into_iter()
                .chain([
                    "",
                    "-1",
                    "-0.01",
                    "1000000.01",
                    "1000001",
                    "0,5",
                    "$25",
                    "25 USD",
                    "١",
                    "79228162514264337593543950336"
                ])
                .collect::<Vec<_>>(),
        )
        .prop_map(str::to_owned),
        "-[1-9][0-9]{0,20}(\\.[0-9]{1,5})?",
        "[a-zA-Z,_]{1,12}",
        Just(huge()),
    ]
}

/// Any reserve text: valid amounts among junk.
fn any_reserve() -> impl Strategy<Value = String> {
    prop_oneof![
        bad_reserve(),
        "[0-9]{1,7}(\\.[0-9]{1,3})?",
        Just(" 25 ".to_owned())
    ]
}

fn other_calls() -> Vec<(&'static str, BoxedStrategy<Call>)> {
    vec![
        ("GetStatus", Just(Call::Status).boxed()),
        ("ListCleanupQueue", Just(Call::Queue).boxed()),
        (
            "GetCandles",
            any::<i64>()
                .prop_map(|since_unix| Call::Candles(pb::GetCandlesRequest { since_unix }))
                .boxed(),
        ),
        (
            "Pause",
            bad_reason()
                .prop_map(|reason| Call::Pause(pb::PauseRequest { reason }))
                .boxed(),
        ),
        (
            "Resume",
            bad_reason()
                .prop_map(|reason| Call::Resume(pb::ResumeRequest { reason }))
                .boxed(),
        ),
        (
            "RetryParkedWrites",
            bad_reason()
                .prop_map(|reason| Call::RetryParked(pb::RetryParkedWritesRequest { reason }))
                .boxed(),
        ),
        (
            "SetRegimeOverride",
            (text(), any::<i64>(), common(), poison(), bad_regime())
                .prop_map(|(regime, ttl_seconds, mut c, p, bad)| {
                    let (regime, ttl_seconds) = if c.poison(&p) {
                        (regime, ttl_seconds)
                    } else {
                        bad
                    };
                    Call::Regime(pb::SetRegimeOverrideRequest {
                        regime,
                        ttl_seconds,
                        request_id: c.request_id,
                        reason: c.reason,
                        operator: c.operator,
                    })
                })
                .boxed(),
        ),
        (
            "SpawnChurner",
            (any::<u32>(), common(), poison())
                .prop_map(|(slot_id, mut c, p)| {
                    if !c.poison(&p) {
                        c.request_id = String::new();
                    }
                    Call::Spawn(pb::SpawnChurnerRequest {
                        slot_id,
                        request_id: c.request_id,
                        reason: c.reason,
                        operator: c.operator,
                    })
                })
                .boxed(),
        ),
        (
            "KillChurner",
            (any::<u32>(), common(), poison())
                .prop_map(|(slot_id, mut c, p)| {
                    if !c.poison(&p) {
                        c.operator = "o".repeat(101);
                    }
                    Call::Kill(pb::KillChurnerRequest {
                        slot_id,
                        request_id: c.request_id,
                        reason: c.reason,
                        operator: c.operator,
                    })
                })
                .boxed(),
        ),
        (
            "SetChurnerReserve",
            (any_reserve(), common(), poison(), bad_reserve())
                .prop_map(|(reserve, mut c, p, bad)| {
                    let reserve_usd = if c.poison(&p) { reserve } else { bad };
                    Call::Reserve(pb::SetChurnerReserveRequest {
                        reserve_usd,
                        request_id: c.request_id,
                        reason: c.reason,
                        operator: c.operator,
                    })
                })
                .boxed(),
        ),
    ]
}

/// The trader's state as an operator sees it (status without what moves
/// with the wall clock, cleanup queue), plus the ledger's journal of the
/// position and open positions of the bot.
#[derive(Debug, PartialEq)]
struct Snapshot {
    status: pb::GetStatusResponse,
    queue: Vec<pb::CleanupQueueEntry>,
    ledger: String,
}

async fn snapshot(r: &mut Run, id: &str) -> Snapshot {
    let mut status = r.status().await;
    status.last_loop_at = None;
    status.market_price_age_seconds = None;
    let journal = r
        .lib
        .journal(&JournalScope::Position(id.parse().unwrap()), 0, 1000)
        .await
        .unwrap();
    let open = r.lib.open_positions(BOT, None).await.unwrap();
    let queue = r.queue().await;
    Snapshot {
        status,
        queue,
        ledger: format!("{journal:?}\n{open:?}"),
    }
}

/// Proves, for every TraderService RPC with `CASES` generated requests
/// each (1 for the argument-less reads): a clear answer, and no change to
/// the trader or its ledger.
#[test]
fn hostile_requests_change_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = RefCell::new(rt.block_on(Run::new()));
    let id = rt.block_on(run.borrow_mut().write_off_position());
    let before = rt.block_on(snapshot(&mut run.borrow_mut(), &id));
    assert_eq!(before.queue.len(), 1, "{before:?}");

    let mut rpcs = position_calls(&id);
    rpcs.extend(other_calls());
    for (rpc, strategy) in rpcs {
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            // A case that did write leaves the state changed for every
            // shrunk case after it, so report the first failure as it was.
            max_shrink_iters: 0,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy.prop_map(Clipped), |Clipped(call)| {
            let mut r = run.borrow_mut();
            let answer = rt.block_on(r.call({
                let call = call.clone();
                move |c| Box::pin(call.send(c))
            }));
            judge(call.is_read(), &answer).map_err(TestCaseError::fail)?;
            let after = rt.block_on(snapshot(&mut r, &id));
            prop_assert!(after == before, "the trader's state changed");
            Ok(())
        });
        if let Err(e) = result {
            panic!("{rpc}: {e}");
        }
    }
    // One 10 MB message per write RPC, otherwise a request the trader
    // would carry out: refused for its size, nothing changed.
    let ten_mb = "m".repeat(10 << 20);
    let (request_id, operator) = ("ten-mb".to_owned(), "ops".to_owned());
    let big = [
        Call::Pause(pb::PauseRequest {
            reason: ten_mb.clone(),
        }),
        Call::Resume(pb::ResumeRequest {
            reason: ten_mb.clone(),
        }),
        Call::RetryParked(pb::RetryParkedWritesRequest {
            reason: ten_mb.clone(),
        }),
        Call::Breakeven(pb::RepriceToBreakevenRequest {
            position_id: id.clone(),
            request_id: request_id.clone(),
            reason: ten_mb.clone(),
            operator: operator.clone(),
        }),
        Call::Close(pb::CloseAtMarketRequest {
            position_id: id.clone(),
            request_id: request_id.clone(),
            reason: ten_mb.clone(),
            operator: operator.clone(),
        }),
        Call::Hold(pb::KeepHoldingRequest {
            position_id: id.clone(),
            request_id: request_id.clone(),
            hold_seconds: 3600,
            reason: ten_mb.clone(),
            operator: operator.clone(),
        }),
        Call::Release(pb::ReleaseHoldRequest {
            position_id: id.clone(),
            request_id: request_id.clone(),
            reason: ten_mb.clone(),
            operator: operator.clone(),
        }),
        Call::Regime(pb::SetRegimeOverrideRequest {
            regime: "ranging".into(),
            ttl_seconds: 3600,
            request_id: request_id.clone(),
            reason: ten_mb.clone(),
            operator: operator.clone(),
        }),
        Call::Spawn(pb::SpawnChurnerRequest {
            slot_id: 0,
            request_id: request_id.clone(),
            reason: ten_mb.clone(),
            operator: operator.clone(),
        }),
        Call::Kill(pb::KillChurnerRequest {
            slot_id: 0,
            request_id: request_id.clone(),
            reason: ten_mb.clone(),
            operator: operator.clone(),
        }),
        Call::Reserve(pb::SetChurnerReserveRequest {
            reserve_usd: "25".into(),
            request_id,
            reason: ten_mb,
            operator,
        }),
    ];
    for call in big {
        let answer = rt.block_on(run.borrow_mut().call({
            let call = call.clone();
            move |c| Box::pin(call.send(c))
        }));
        let code = answer.as_ref().err().map(tonic::Status::code);
        assert!(
            matches!(
                code,
                Some(
                    tonic::Code::ResourceExhausted
                        | tonic::Code::OutOfRange
                        | tonic::Code::InvalidArgument
                )
            ),
            "10 MB {:?}: {answer:?}",
            Clipped(&call)
        );
    }
    assert_eq!(rt.block_on(snapshot(&mut run.borrow_mut(), &id)), before);

    // Still answering, and the position still acts normally.
    let q = rt.block_on(run.borrow_mut().queue());
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].position_id, id);
}

/// Proves: an operator write whose protobuf cannot be decoded (a string
/// field that is not UTF-8, cut short, or of the wrong wire type), appended
/// to a request the trader would carry out, is refused as INVALID_ARGUMENT
/// saying so (not INTERNAL), and the trader and its ledger are unchanged.
#[test]
fn undecodable_requests_change_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut run = rt.block_on(Run::new());
    let id = rt.block_on(run.write_off_position());
    let before = rt.block_on(snapshot(&mut run, &id));
    let channel = rt
        .block_on(Channel::from_shared(run.url.clone()).unwrap().connect())
        .unwrap();
    let writes = [
        (
            "Pause",
            Undecodable::every(
                &pb::PauseRequest {
                    reason: "maintenance".into(),
                },
                1,
            ),
        ),
        (
            "CloseAtMarket",
            Undecodable::every(
                &pb::CloseAtMarketRequest {
                    position_id: id.clone(),
                    request_id: "undecodable-close".into(),
                    reason: "stuck".into(),
                    operator: "ops".into(),
                },
                3,
            ),
        ),
        (
            "SetChurnerReserve",
            Undecodable::every(
                &pb::SetChurnerReserveRequest {
                    reserve_usd: "25".into(),
                    request_id: "undecodable-reserve".into(),
                    reason: "more".into(),
                    operator: "ops".into(),
                },
                1,
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (method, bodies) in writes {
        let path = format!("/healgrid.trader.v1.TraderService/{method}");
        for (defect, body) in bodies {
            let (channel, path) = (channel.clone(), path.clone());
            let answer = rt.block_on(
                run.call(move |_| Box::pin(async move { send_raw(channel, &path, body).await })),
            );
            if let Err(why) = judge_undecodable(&answer) {
                failures.push(format!("{method} {defect:?}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(rt.block_on(snapshot(&mut run, &id)), before);
}
