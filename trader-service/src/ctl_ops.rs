//! The operator-action commands of `trader-service ctl` (SPEC §8): the
//! cleanup queue, breakeven, hold and release, the regime override and the
//! churner (spawn, kill, reserve).
//! Each action sends a fresh `request_id` (or `--request-id`, to retry one
//! safely) and prints the trader's answer.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use healgrid_proto::auth::AuthChannel;
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;

use crate::ctl::CtlError;

/// Operator actions of `ctl`.
#[derive(Debug, Clone, Subcommand)]
pub enum OpsAction {
    /// List the cleanup queue: write-off positions not on hold, with age,
    /// distance, subsidy needed, opportunity cost and the actions available.
    Queue,
    /// Move a position's exit to breakeven (never crossing the market).
    Breakeven {
        /// Ledger position id.
        position_id: String,
        /// Why (journaled in the ledger).
        #[arg(long)]
        reason: String,
        /// Idempotency key; a retry with the same id does nothing again.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Close a position at market (asks for confirmation unless --yes).
    Close {
        /// Ledger position id.
        position_id: String,
        /// Why (journaled in the ledger).
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Idempotency key.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Keep holding a position: out of the queue, no automatic reprice.
    Hold {
        /// Ledger position id.
        position_id: String,
        /// How long: `90s`, `30m`, `48h`, `7d` (60 s .. 30 d; default 96h).
        #[arg(long = "for", value_parser = parse_duration)]
        hold: Option<i64>,
        /// Why (journaled in the ledger).
        #[arg(long)]
        reason: String,
        /// Idempotency key.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// End a hold early.
    Release {
        /// Ledger position id.
        position_id: String,
        /// Why (journaled in the ledger).
        #[arg(long, default_value = "operator")]
        reason: String,
        /// Idempotency key.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Force the regime label for a while (`auto` clears the override).
    Regime {
        /// ranging, bullish, bearish or auto.
        regime: String,
        /// How long the override lasts: `2h`, `30m`, ... (60 s .. 7 d).
        #[arg(long, value_parser = parse_duration, default_value = "2h")]
        ttl: i64,
        /// Why (for the log).
        #[arg(long, default_value = "operator")]
        reason: String,
        /// Idempotency key.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Set the churner reserve in force (the same as `churner reserve`).
    Reserve(ReserveArgs),
    /// The churner by hand: spawn or kill a slot's churner, set the reserve.
    #[command(subcommand)]
    Churner(ChurnerAction),
}

/// `reserve USD` (also `churner reserve USD`).
#[derive(Debug, Clone, clap::Args)]
pub struct ReserveArgs {
    /// USD, e.g. 25.50.
    usd: String,
    /// Why (for the log).
    #[arg(long)]
    reason: String,
    /// Idempotency key.
    #[arg(long)]
    request_id: Option<String>,
}

/// `ctl churner ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ChurnerAction {
    /// Run a slot's churner even when the automatic gates would not (a
    /// parent position, headroom and capital are still required).
    Spawn {
        /// Slot id.
        slot: u32,
        /// Why (for the log).
        #[arg(long)]
        reason: String,
        /// Idempotency key.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Stop a slot's churner (a filled churner entry keeps its exit).
    Kill {
        /// Slot id.
        slot: u32,
        /// Why (for the log).
        #[arg(long)]
        reason: String,
        /// Idempotency key.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Set the churner reserve in force, USD (kept across restarts).
    Reserve(ReserveArgs),
}

/// Parses `90`, `90s`, `30m`, `48h`, `2d` into seconds.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3_600),
        Some((i, 'd')) => (&t[..i], 86_400),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a duration like 90s, 30m, 48h or 2d"))
}

fn fresh_request_id(given: Option<&String>) -> String {
    given.cloned().unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("ctl-{nanos}-{}", std::process::id())
    })
}

fn answer(r: &pb::OperatorActionResponse) -> String {
    format!(
        "{} {}{}: {}",
        r.action,
        if r.position_id.is_empty() {
            String::new()
        } else {
            format!("position {}", r.position_id)
        },
        if r.replayed {
            " (already done earlier; nothing done again)"
        } else {
            ""
        },
        r.message
    )
}

/// Runs one operator action over `ch` and returns what to print.
///
/// # Errors
/// [`CtlError::Call`] with the trader's refusal.
pub async fn run(ch: AuthChannel, action: &OpsAction) -> Result<String, CtlError> {
    let mut c = TraderServiceClient::new(ch);
    let r = match action {
        OpsAction::Queue => {
            let q = c
                .list_cleanup_queue(pb::ListCleanupQueueRequest {})
                .await?
                .into_inner();
            return Ok(render_queue(&q));
        }
        OpsAction::Breakeven {
            position_id,
            reason,
            request_id,
        } => c.reprice_to_breakeven(pb::RepriceToBreakevenRequest {
            position_id: position_id.clone(),
            request_id: fresh_request_id(request_id.as_ref()),
            reason: reason.clone(),
            operator: whoami(),
        }),
        OpsAction::Close {
            position_id,
            reason,
            yes,
            request_id,
        } => {
            if !yes && !confirm(position_id)? {
                return Ok("not closed".to_owned());
            }
            let r = c
                .close_at_market(pb::CloseAtMarketRequest {
                    position_id: position_id.clone(),
                    request_id: fresh_request_id(request_id.as_ref()),
                    reason: reason.clone(),
                    operator: whoami(),
                })
                .await?;
            return Ok(answer(r.get_ref()));
        }
        OpsAction::Hold {
            position_id,
            hold,
            reason,
            request_id,
        } => {
            let r = c
                .keep_holding(pb::KeepHoldingRequest {
                    position_id: position_id.clone(),
                    request_id: fresh_request_id(request_id.as_ref()),
                    hold_seconds: hold.unwrap_or(0),
                    reason: reason.clone(),
                    operator: whoami(),
                })
                .await?;
            return Ok(answer(r.get_ref()));
        }
        OpsAction::Release {
            position_id,
            reason,
            request_id,
        } => {
            let r = c
                .release_hold(pb::ReleaseHoldRequest {
                    position_id: position_id.clone(),
                    request_id: fresh_request_id(request_id.as_ref()),
                    reason: reason.clone(),
                    operator: whoami(),
                })
                .await?;
            return Ok(answer(r.get_ref()));
        }
        OpsAction::Regime {
            regime,
            ttl,
            reason,
            request_id,
        } => {
            let r = c
                .set_regime_override(pb::SetRegimeOverrideRequest {
                    regime: regime.clone(),
                    ttl_seconds: *ttl,
                    request_id: fresh_request_id(request_id.as_ref()),
                    reason: reason.clone(),
                    operator: whoami(),
                })
                .await?;
            return Ok(answer(r.get_ref()));
        }
        OpsAction::Reserve(r) => {
            return churner(&mut c, &ChurnerAction::Reserve(r.clone())).await;
        }
        OpsAction::Churner(a) => return churner(&mut c, a).await,
    }
    .await?;
    Ok(answer(r.get_ref()))
}

async fn churner(
    c: &mut TraderServiceClient<AuthChannel>,
    action: &ChurnerAction,
) -> Result<String, CtlError> {
    let r = match action {
        ChurnerAction::Spawn {
            slot,
            reason,
            request_id,
        } => {
            c.spawn_churner(pb::SpawnChurnerRequest {
                slot_id: *slot,
                request_id: fresh_request_id(request_id.as_ref()),
                reason: reason.clone(),
                operator: whoami(),
            })
            .await?
        }
        ChurnerAction::Kill {
            slot,
            reason,
            request_id,
        } => {
            c.kill_churner(pb::KillChurnerRequest {
                slot_id: *slot,
                request_id: fresh_request_id(request_id.as_ref()),
                reason: reason.clone(),
                operator: whoami(),
            })
            .await?
        }
        ChurnerAction::Reserve(ReserveArgs {
            usd,
            reason,
            request_id,
        }) => {
            c.set_churner_reserve(pb::SetChurnerReserveRequest {
                reserve_usd: usd.clone(),
                request_id: fresh_request_id(request_id.as_ref()),
                reason: reason.clone(),
                operator: whoami(),
            })
            .await?
        }
    };
    Ok(answer(r.get_ref()))
}

/// Asks on the terminal; only `y` or `yes` confirms.
fn confirm(position_id: &str) -> Result<bool, CtlError> {
    use std::io::{BufRead, Write};
    eprint!("close position {position_id} at market, realizing its loss? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CtlError::Input(e.to_string()))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_default()
}

/// The cleanup queue as a table.
#[must_use]
pub fn render_queue(q: &pb::ListCleanupQueueResponse) -> String {
    if q.positions.is_empty() {
        return "cleanup queue is empty".to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>8} {:>4} {:>5} {:>7} {:>12} {:>12} {:>8} {:>9} {:>12} {:>12}  actions",
        "position",
        "slot",
        "trade",
        "mode",
        "entry",
        "exit",
        "age_h",
        "dist_%",
        "need_usd",
        "opp_usd"
    );
    for p in &q.positions {
        let _ = writeln!(
            out,
            "{:>8} {:>4} {:>5} {:>7} {:>12} {:>12} {:>8.1} {:>9} {:>12} {:>12}  {}",
            p.position_id,
            p.slot_id,
            p.trade,
            queue_mode(p.slot_mode),
            p.entry_price,
            p.exit_price,
            p.age_seconds as f64 / 3_600.0,
            p.distance_pct,
            p.subsidy_needed,
            p.opportunity_cost,
            p.actions.join(",")
        );
    }
    out
}

/// A queue entry's slot mode as a word (`-` when the trader did not say).
fn queue_mode(mode: i32) -> &'static str {
    match pb::PositionSlotMode::try_from(mode) {
        Ok(pb::PositionSlotMode::Sticky) => "sticky",
        Ok(pb::PositionSlotMode::Churner) => "churner",
        _ => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves: the queue table names each entry's slot mode.
    #[test]
    fn the_queue_shows_each_mode() {
        let entry = |id: &str, mode: pb::PositionSlotMode| pb::CleanupQueueEntry {
            position_id: id.into(),
            slot_mode: mode as i32,
            ..Default::default()
        };
        let q = pb::ListCleanupQueueResponse {
            positions: vec![
                entry("7", pb::PositionSlotMode::Sticky),
                entry("8", pb::PositionSlotMode::Churner),
                entry("9", pb::PositionSlotMode::Unspecified),
            ],
        };
        let text = render_queue(&q);
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].contains("mode"), "{text}");
        assert!(rows[1].contains(" sticky "), "{text}");
        assert!(rows[2].contains(" churner "), "{text}");
        assert!(rows[3].contains("       - "), "{text}");
    }

    /// Proves: durations in s/m/h/d and bare seconds parse; junk, zero and
    /// negatives are refused with the accepted forms named.
    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("48h"), Ok(172_800));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("120"), Ok(120));
        for bad in ["", "h", "0h", "-2h", "2w", "x5m"] {
            assert!(parse_duration(bad).unwrap_err().contains("48h"), "{bad}");
        }
    }
}
