//! Aimed kills: the trader or the ledger is restarted with one of its
//! crash points armed (`--crash-at`, see `healgrid_proto::crash`) and
//! SIGKILLs itself at that instant: between a reprice's cancel and its new
//! exit, between a churner fill and its exit, in the middle of an operator
//! action; in a ledger batch written but not committed, or committed but
//! not answered. Only a kill that really happened at the point is counted.
//!
//! Repricing and churners need exits that age: the scenarios run the
//! trader with short age bands ([`FAST_BANDS`]), so on the stepped market
//! (one minute per step) exits go stale and stuck within a round.

use std::time::{Duration, Instant};

use healgrid_proto::trader::v1 as pb;
use std::os::unix::process::ExitStatusExt;

use super::Rng;
use super::rig::{Rig, RigError};

/// Age bands of the aimed scenarios, seconds of market time (fresh,
/// aging, stale, stuck): an exit goes stale after half an hour of the
/// stepped market (about 2.4 s of wall time) and is tightened; stuck after
/// an hour, when subsidy and the churner take over.
pub const FAST_BANDS: [&str; 8] = [
    "--age-band-fresh-sec",
    "300",
    "--age-band-aging-sec",
    "900",
    "--age-band-stale-sec",
    "1800",
    "--age-band-stuck-sec",
    "3600",
];

/// How long an armed trader may take to reach its point before the kill
/// is given up (and not counted).
const REACH_SECS: u64 = 45;

/// How long a reprice kill waits for the trader's own repricing before
/// the suite asks for one (an operator breakeven: a reprice too).
const NATURAL_REPRICE_SECS: u64 = 10;

/// Where the kills of a scenario are aimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashTarget {
    /// A slot exit's reprice: after the exchange cancelled the old exit,
    /// and after the new one is committed as intended but not sent.
    Reprice,
    /// A churner round trip: after its entry filled (in memory only), and
    /// after its exit is committed as intended but not sent.
    Churner,
    /// Every operator action in turn ([`OPERATOR_STEPS`]): carried out but
    /// its answer not committed, or committed but not answered; a close at
    /// market or a breakeven whose exit the exchange cancelled, the market
    /// order or the new exit not yet sent.
    Operator,
}

impl CrashTarget {
    /// Every target, in report order.
    pub const ALL: [Self; 3] = [Self::Reprice, Self::Churner, Self::Operator];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reprice => "reprice",
            Self::Churner => "churner",
            Self::Operator => "operator",
        }
    }

    /// Aimed kills of the short run: each point once; the first operator
    /// steps.
    pub fn short_count(self) -> u32 {
        match self {
            Self::Reprice | Self::Churner => 2,
            Self::Operator => OPERATOR_SHORT,
        }
    }

    /// Aimed kills of the long run: at least `base`, every point or step
    /// twice.
    pub fn long_count(self, base: u32) -> u32 {
        match self {
            Self::Reprice | Self::Churner => base.max(4),
            Self::Operator => base.max(2 * OPERATOR_STEPS.len() as u32),
        }
    }

    /// The `nth` kill's point, and for operator kills the action sent.
    fn step(self, nth: u32) -> (&'static str, Option<Action>) {
        let n = nth as usize;
        match self {
            Self::Reprice => (["exit-cancelled", "exit-sending"][n % 2], None),
            Self::Churner => (["churner-filled", "churner-exit-sending"][n % 2], None),
            Self::Operator => {
                let (point, action) = OPERATOR_STEPS[n % OPERATOR_STEPS.len()];
                (point, Some(action))
            }
        }
    }
}

/// The operator kills, in turn: every action killed before or after its
/// answer is committed, and the two actions that cancel an exit killed
/// between that cancel and what follows it (the market order, the new
/// exit). The short run takes the first [`OPERATOR_SHORT`]; the long run
/// every step twice. `:2` lets a first action (the hold a release needs)
/// go through.
pub const OPERATOR_STEPS: [(&str, Action); 10] = [
    ("operator-applied", Action::Breakeven),
    ("operator-committed", Action::Close),
    ("exit-cancelled", Action::Close),
    ("operator-committed", Action::Kill),
    ("operator-applied", Action::Hold),
    ("operator-committed:2", Action::Release),
    ("operator-applied", Action::Spawn),
    ("operator-applied", Action::Reserve),
    ("operator-committed", Action::Regime),
    ("exit-cancelled", Action::Breakeven),
];

/// Operator kills of the short run.
const OPERATOR_SHORT: u32 = 4;

/// An operator action the suite sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// RepriceToBreakeven on an open position.
    Breakeven,
    /// CloseAtMarket on an open position.
    Close,
    /// KeepHolding on an open position.
    Hold,
    /// ReleaseHold, after a KeepHolding of the same position.
    Release,
    /// SpawnChurner on a slot.
    Spawn,
    /// KillChurner on a slot.
    Kill,
    /// SetChurnerReserve.
    Reserve,
    /// SetRegimeOverride (ranging for an hour).
    Regime,
}

impl Action {
    /// True when it names a position (the rest name a slot or the bot).
    fn on_position(self) -> bool {
        matches!(
            self,
            Self::Breakeven | Self::Close | Self::Hold | Self::Release
        )
    }

    /// Sends it about `target` (a position id, or a slot number);
    /// `Ok(None)` when the trader refused it (a reason like "nothing to
    /// do"), `Err` when the call failed (the trader died under it).
    async fn send(
        self,
        rig: &Rig,
        target: &str,
        request_id: &str,
    ) -> Result<Option<pb::OperatorActionResponse>, tonic::Status> {
        let mut c = rig
            .client()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let reason = format!("fault suite {request_id}");
        let (position_id, request_id, operator) = (
            target.to_owned(),
            request_id.to_owned(),
            "fault-suite".to_owned(),
        );
        let slot_id = target.parse().unwrap_or_default();
        let r = match self {
            Self::Breakeven => {
                c.reprice_to_breakeven(pb::RepriceToBreakevenRequest {
                    position_id,
                    request_id,
                    reason,
                    operator,
                })
                .await
            }
            Self::Close => {
                c.close_at_market(pb::CloseAtMarketRequest {
                    position_id,
                    request_id,
                    reason,
                    operator,
                })
                .await
            }
            Self::Hold => {
                c.keep_holding(pb::KeepHoldingRequest {
                    position_id,
                    request_id,
                    hold_seconds: 600,
                    reason,
                    operator,
                })
                .await
            }
            Self::Release => {
                c.release_hold(pb::ReleaseHoldRequest {
                    position_id,
                    request_id,
                    reason,
                    operator,
                })
                .await
            }
            Self::Spawn => {
                c.spawn_churner(pb::SpawnChurnerRequest {
                    slot_id,
                    request_id,
                    reason,
                    operator,
                })
                .await
            }
            Self::Kill => {
                c.kill_churner(pb::KillChurnerRequest {
                    slot_id,
                    request_id,
                    reason,
                    operator,
                })
                .await
            }
            Self::Reserve => {
                c.set_churner_reserve(pb::SetChurnerReserveRequest {
                    reserve_usd: "50".into(),
                    request_id,
                    reason,
                    operator,
                })
                .await
            }
            Self::Regime => {
                c.set_regime_override(pb::SetRegimeOverrideRequest {
                    regime: "ranging".into(),
                    ttl_seconds: 604_800,
                    request_id,
                    reason,
                    operator,
                })
                .await
            }
        };
        match r {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::NotFound
                ) =>
            {
                Ok(None)
            }
            Err(s) => Err(s),
        }
    }
}

/// An operator request in flight when the trader died.
struct InFlight {
    action: Action,
    target: String,
    request_id: String,
}

/// The `nth` aimed kill of `target`: restarts the trader cleanly with the
/// point armed, drives it there (operator actions are sent by the suite),
/// waits for the kill, restarts it unarmed and, for an operator action,
/// retries the request with the same id. True when the trader really died
/// at the point; a point not reached in time is not counted.
///
/// # Errors
/// When a service does not answer.
///
/// # Panics
/// When the trader does not come back up.
pub async fn inject_crash(
    rig: &mut Rig,
    target: CrashTarget,
    nth: u32,
    tag: u64,
    rng: &mut Rng,
) -> Result<bool, RigError> {
    let (point, action) = target.step(nth);
    if let Some(t) = rig.trader.as_mut() {
        t.terminate(Duration::from_secs(30)).await;
    }
    rig.trader = None;
    rig.start_trader_armed(Some(point)).await;
    tokio::time::sleep(rng.millis(200, 2000)).await;
    let deadline = Instant::now() + Duration::from_secs(REACH_SECS);
    let in_flight = match action {
        Some(action) => drive_operator(rig, action, nth, tag, deadline).await?,
        None => {
            nudge(rig, target, nth, tag, deadline).await;
            None
        }
    };
    let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
    let ended = match rig.trader.as_mut() {
        Some(t) => t.ended_within(left).await,
        None => None,
    };
    let killed_at_point = ended.is_some_and(|st| st.signal() == Some(9));
    match ended {
        Some(st) if !killed_at_point => {
            return Err(RigError::Call(format!(
                "trader armed at {point} ended by itself with {st}, not at its crash point"
            )));
        }
        Some(_) => eprintln!("trader-kill-{}: killed at {point}", target.name()),
        None => {
            eprintln!(
                "trader-kill-{}: {point} not reached in {REACH_SECS} s; not counted",
                target.name()
            );
            if let Some(t) = rig.trader.as_mut() {
                t.terminate(Duration::from_secs(30)).await;
            }
        }
    }
    rig.trader = None;
    rig.start_trader().await;
    if let Some(f) = in_flight {
        retry(rig, &f, point, killed_at_point).await?;
    }
    Ok(killed_at_point)
}

/// Brings the trader to a reprice or churner point sooner than the market
/// alone would, with the operator's own means: for a churner kill, the
/// regime forced to ranging and every slot's churner spawned; for a reprice
/// kill, after [`NATURAL_REPRICE_SECS`] without one, a breakeven (a reprice
/// that needs no subsidy) on each open position in turn. Every request the
/// trader accepts is checked at the audit like any other.
async fn nudge(rig: &mut Rig, target: CrashTarget, nth: u32, tag: u64, deadline: Instant) {
    let mut sent = 0u32;
    let mut send = async |rig: &mut Rig, action: Action, on: &str| -> bool {
        sent += 1;
        let request_id = format!("nudge-{tag}-{nth}-{sent}");
        match action.send(rig, on, &request_id).await {
            Ok(Some(_)) => {
                rig.operator_requests.push(request_id);
                true
            }
            Ok(None) => true,
            Err(_) => false,
        }
    };
    match target {
        CrashTarget::Churner => {
            send(rig, Action::Regime, "").await;
            for slot in 0..super::rig::SLOTS {
                send(rig, Action::Spawn, &slot.to_string()).await;
            }
        }
        CrashTarget::Reprice => {
            let natural = Instant::now() + Duration::from_secs(NATURAL_REPRICE_SECS);
            let mut turn = 0usize;
            while Instant::now() < deadline {
                let ended = match rig.trader.as_mut() {
                    Some(t) => t.ended_within(Duration::from_secs(2)).await.is_some(),
                    None => true,
                };
                if ended {
                    return;
                }
                if Instant::now() < natural {
                    continue;
                }
                let Ok(status) = rig.status().await else {
                    return;
                };
                let ids: Vec<String> = status
                    .positions
                    .iter()
                    .filter(|p| !p.position_id.is_empty())
                    .map(|p| p.position_id.clone())
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                turn += 1;
                if !send(rig, Action::Breakeven, &ids[turn % ids.len()]).await {
                    return;
                }
            }
        }
        CrashTarget::Operator => {}
    }
}

/// Sends `action` (on each open position, or each slot, in turn) until
/// the trader accepts it or dies under it; the request that was in flight
/// or accepted, to be retried after the restart. A release is preceded by
/// the hold it releases.
async fn drive_operator(
    rig: &mut Rig,
    action: Action,
    nth: u32,
    tag: u64,
    deadline: Instant,
) -> Result<Option<InFlight>, RigError> {
    let mut attempt = 0u32;
    while Instant::now() < deadline {
        let targets: Vec<String> = if action.on_position() {
            let Ok(status) = rig.status().await else {
                return Ok(None);
            };
            status
                .positions
                .iter()
                .filter(|p| !p.position_id.is_empty())
                .map(|p| p.position_id.clone())
                .collect()
        } else {
            (0..super::rig::SLOTS).map(|s| s.to_string()).collect()
        };
        for target in targets {
            attempt += 1;
            if action == Action::Release {
                let hold = format!("op-{tag}-{nth}-{attempt}-hold");
                match Action::Hold.send(rig, &target, &hold).await {
                    Ok(Some(_)) => rig.operator_requests.push(hold),
                    Ok(None) => continue,
                    Err(_) => return Ok(None),
                }
            }
            let f = InFlight {
                action,
                target,
                request_id: format!("op-{tag}-{nth}-{attempt}"),
            };
            match action.send(rig, &f.target, &f.request_id).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    rig.operator_requests.push(f.request_id.clone());
                    return Ok(Some(f));
                }
                // Died under it: the answer may or may not be stored.
                Err(_) => return Ok(Some(f)),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(None)
}

/// The operator's retry after the restart, with the same request id: an
/// answer committed before the kill comes back replayed and nothing is
/// done again; one lost with the kill is carried out now. Either way it
/// is one action with one journal row (checked at the audit).
async fn retry(rig: &mut Rig, f: &InFlight, point: &str, killed: bool) -> Result<(), RigError> {
    let committed_before_kill = killed && !point.starts_with("operator-applied");
    let answer = f
        .action
        .send(rig, &f.target, &f.request_id)
        .await
        .map_err(|e| RigError::Call(format!("retry of {}: {e}", f.request_id)))?;
    match answer {
        Some(a) => {
            if killed && point.starts_with("operator-applied") && a.replayed {
                return Err(RigError::Call(format!(
                    "retry of {} after a kill before its answer was committed came back \
                     replayed",
                    f.request_id
                )));
            }
            if committed_before_kill && !a.replayed {
                return Err(RigError::Call(format!(
                    "retry of {} after a kill at {point} was carried out again, not replayed",
                    f.request_id
                )));
            }
            if !rig.operator_requests.contains(&f.request_id) {
                rig.operator_requests.push(f.request_id.clone());
            }
        }
        None if committed_before_kill => {
            return Err(RigError::Call(format!(
                "retry of {} after a kill at {point} was refused, not replayed",
                f.request_id
            )));
        }
        // Lost with the kill, and the position moved on meanwhile (its
        // exit filled, say): refused now, nothing was done.
        None => {}
    }
    Ok(())
}

/// The ledger's crash points, in turn: a batch written in its transaction
/// but not committed, and one committed but not yet answered.
const LEDGER_POINTS: [&str; 2] = ["batch-appended", "batch-committed"];

/// The `nth` aimed ledger kill: the ledger is killed at a random moment,
/// restarted with a batch crash point armed, dies there on the trader's
/// next write, and is restarted unarmed; the trader's outbox must then land
/// every write exactly once. True when it died at the point.
///
/// # Errors
/// When the armed ledger ends some other way.
///
/// # Panics
/// When the ledger does not come back up.
pub async fn inject_ledger_crash(rig: &mut Rig, nth: u32, rng: &mut Rng) -> Result<bool, RigError> {
    let point = LEDGER_POINTS[nth as usize % LEDGER_POINTS.len()];
    tokio::time::sleep(rng.millis(200, 2000)).await;
    rig.kill_ledger(0);
    rig.ledgers.restart_armed(0, point).await;
    let ended = rig
        .ledgers
        .ended_within(0, Duration::from_secs(REACH_SECS))
        .await;
    let killed = ended.is_some_and(|st| st.signal() == Some(9));
    match ended {
        Some(st) if !killed => {
            return Err(RigError::Call(format!(
                "ledger armed at {point} ended by itself with {st}, not at its crash point"
            )));
        }
        Some(_) => eprintln!("ledger-kill-append: killed at {point}"),
        None => eprintln!("ledger-kill-append: {point} not reached in {REACH_SECS} s; not counted"),
    }
    rig.kill_ledger(0);
    rig.start_ledger(0).await;
    Ok(killed)
}
