//! The faults beyond one failed `AddOrder`: an exchange that refuses a
//! nonce on any private call, answers order queries from an older view,
//! fills orders in parts, or answers so late that a loop outlasts its poll
//! interval, and a trader whose wall clock steps back (while it runs, and
//! across a restart). Each injection says whether it took effect, so only
//! faults the trader ran into are counted.

use std::time::Duration;

use super::Rng;
use super::rig::{Rig, RigError};

/// Milliseconds a slow reply takes: longer than the rig's poll interval
/// (5 s), so the loop that waits for it outlasts its interval, and shorter
/// than the client's request timeout (10 s), so the reply arrives, late.
pub const SLOW_REPLY_MS: u64 = 6_000;

/// How long a fault may wait for the trader to run into it before it is
/// given up (and not counted).
const CONSUME_SECS: u64 = 45;

/// Bounds of the random pause before a queued fault, milliseconds: the
/// fault waits for the trader's next matching call anyway, so the pause
/// only spreads the faults over the loop's phases (one loop is 5 s).
const QUEUE_PAUSE_MS: (u64, u64) = (200, 1500);

/// A fault of the exchange beyond one `AddOrder` failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFault {
    /// `EAPI:Invalid nonce`, not processed: on `AddOrder`, or on whichever
    /// private calls come next.
    InvalidNonce,
    /// An order query answered from an older view: `QueryOrders` while
    /// polling (orders as last reported), or `OpenOrders` (the previous
    /// reply) while an ambiguous placement is being looked up: answered
    /// `EService:Busy`, it is accepted seconds later, and the lookups that
    /// should find it see the book as it was before.
    StaleStatus,
    /// The next resting execution fills only half; the rest later.
    PartialFill,
}

impl CallFault {
    /// Every kind, in report order.
    pub const ALL: [Self; 3] = [Self::InvalidNonce, Self::StaleStatus, Self::PartialFill];

    /// Its name in the report (the simulator's name for it).
    pub fn wire(self) -> &'static str {
        match self {
            Self::InvalidNonce => "invalid_nonce",
            Self::StaleStatus => "stale_status",
            Self::PartialFill => "partial_fill",
        }
    }

    /// Simulator flags the scenario needs: partial fills of the trader's
    /// $10 orders must leave both parts above the pair minimum.
    pub fn sim_args(self) -> &'static [&'static str] {
        match self {
            Self::PartialFill => &["--ordermin", "20"],
            Self::InvalidNonce | Self::StaleStatus => &[],
        }
    }
}

/// A fault of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockFault {
    /// The next private call answered [`SLOW_REPLY_MS`] late: a loop
    /// longer than the poll interval.
    SlowLoop,
    /// The trader's wall clock steps back 10 minutes to 2 hours; every
    /// other time the trader is killed first and restarted on the stepped
    /// clock.
    StepBack,
}

impl ClockFault {
    /// Every kind, in report order.
    pub const ALL: [Self; 2] = [Self::SlowLoop, Self::StepBack];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::SlowLoop => "slow-loop",
            Self::StepBack => "step-back",
        }
    }
}

/// Injects the `nth` fault of kind `fault` at a random moment; false when
/// the trader never ran into it.
///
/// # Errors
/// When the simulator does not answer.
pub async fn inject_call(
    rig: &Rig,
    fault: CallFault,
    nth: u32,
    rng: &mut Rng,
) -> Result<bool, RigError> {
    tokio::time::sleep(rng.millis(QUEUE_PAUSE_MS.0, QUEUE_PAUSE_MS.1)).await;
    match (fault, nth % 2) {
        (CallFault::InvalidNonce, 0) => rig.inject("AddOrder", "invalid_nonce", 1).await?,
        (CallFault::InvalidNonce, _) => rig.inject("*", "invalid_nonce", 3).await?,
        (CallFault::StaleStatus, 0) => rig.inject("QueryOrders", "stale_status", 1).await?,
        (CallFault::StaleStatus, _) => {
            rig.inject("AddOrder", "delayed_accept", 1).await?;
            rig.inject("OpenOrders", "stale_status", 2).await?
        }
        (CallFault::PartialFill, _) => rig.inject("fill", "partial_fill", 1).await?,
    };
    rig.wait_consumed(CONSUME_SECS).await
}

/// Injects the `nth` fault of time at a random moment; false when it did
/// not take effect.
///
/// # Errors
/// When the simulator does not answer.
///
/// # Panics
/// A step back on a rig without a fake clock, or a trader that does not
/// come back up.
pub async fn inject_clock(
    rig: &mut Rig,
    fault: ClockFault,
    nth: u32,
    rng: &mut Rng,
) -> Result<bool, RigError> {
    match fault {
        ClockFault::SlowLoop => {
            tokio::time::sleep(rng.millis(QUEUE_PAUSE_MS.0, QUEUE_PAUSE_MS.1)).await;
            let slow = format!(r#"{{"slow_reply":{{"ms":{SLOW_REPLY_MS}}}}}"#);
            rig.inject_json("*", &slow, 1).await?;
            rig.wait_consumed(CONSUME_SECS).await
        }
        ClockFault::StepBack => {
            tokio::time::sleep(rng.millis(200, 3000)).await;
            let back = i64::try_from(rng.between(600, 7200)).unwrap_or(600);
            let across_restart = nth % 2 == 1;
            if across_restart {
                rig.kill_trader();
            }
            let clock = rig
                .clock
                .as_mut()
                .expect("a step-back scenario runs the trader on a fake clock");
            clock.step_back(back);
            eprintln!(
                "clock-step-back: {back} s back{} (now {} s behind)",
                if across_restart {
                    ", across a restart"
                } else {
                    ""
                },
                clock.behind_secs()
            );
            if across_restart {
                rig.start_trader().await;
            } else {
                // The library reads the offset again within a second.
                tokio::time::sleep(Duration::from_millis(1_500)).await;
            }
            Ok(true)
        }
    }
}
