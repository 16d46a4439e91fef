//! `trader-service ctl`: a small operator client for the control API, for
//! machines without `grpcurl`: health of any healgrid service, the trader's
//! status as a readable summary, pause and resume, and the operator actions
//! of [`crate::ctl_ops`].

use std::fmt::Write as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use healgrid_proto::trader::v1 as pb;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use std::path::PathBuf;
use thiserror::Error;

use healgrid_proto::auth::{AuthChannel, ClientAuth, ServiceToken, token_parser};
use healgrid_proto::tls::{ClientTls, error_chain};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// `ctl` options.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// gRPC URL of the service to talk to (`https://` for TLS).
    #[arg(long, env = "TRADER_URL", default_value = "http://127.0.0.1:50052")]
    pub url: String,
    /// The trader's token (its `TRADER_TOKEN`), sent with every call.
    #[arg(long, env = "TRADER_TOKEN", hide_env_values = true, value_parser = token_parser("TRADER_TOKEN"))]
    pub token: Option<ServiceToken>,
    /// PEM CA that signed the service's certificate, for an `https://`
    /// URL (the system's roots without it).
    #[arg(long, env = "TRADER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub action: CtlAction,
}

/// What `ctl` does.
#[derive(Debug, Clone, Subcommand)]
pub enum CtlAction {
    /// Exit 0 when the service at --url answers grpc.health.v1 SERVING
    /// (works for the ledger too).
    Health,
    /// Print the trader's status: mode, market, slots, positions, outbox.
    Status,
    /// Pause trading (fills are still processed; resting orders stay).
    Pause {
        /// Why, for the trader's log.
        #[arg(long, default_value = "operator")]
        reason: String,
    },
    /// Resume trading.
    Resume {
        /// Why, for the trader's log.
        #[arg(long, default_value = "operator")]
        reason: String,
    },
    /// Send every parked ledger write again (after fixing why the ledger
    /// refused it; `status` lists them with the reason).
    RetryParked {
        /// Why, for the trader's log.
        #[arg(long, default_value = "operator")]
        reason: String,
    },
    /// Operator actions: queue, breakeven, hold, release, regime, churner.
    #[command(flatten)]
    Ops(crate::ctl_ops::OpsAction),
}

/// Why a `ctl` command failed.
#[derive(Debug, Error)]
pub enum CtlError {
    /// The URL is unusable or nothing answers there.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The call failed.
    #[error("call failed: {0}")]
    Call(#[from] tonic::Status),
    /// The terminal could not be read (a confirmation).
    #[error("cannot read the confirmation: {0}")]
    Input(String),
    /// The service answered but is not serving.
    #[error("service is not serving (status {0})")]
    NotServing(i32),
}

/// A connected channel to `args.url` (over TLS for `https://`) whose calls
/// carry the token.
async fn channel(args: &CtlArgs) -> Result<AuthChannel, CtlError> {
    let url = &args.url;
    let err = |message: String| CtlError::Connect {
        url: url.to_owned(),
        message,
    };
    let transport = |e: tonic::transport::Error| err(error_chain(&e));
    let tls = ClientTls::new("--tls-ca", args.tls_ca.as_deref()).map_err(|e| err(e.to_string()))?;
    tls.check_url(url).map_err(|e| err(e.to_string()))?;
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(transport)?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5));
    let channel = tls
        .apply(endpoint, None)
        .map_err(transport)?
        .connect()
        .await
        .map_err(transport)?;
    Ok(InterceptedService::new(
        channel,
        ClientAuth::new(args.token.as_ref()),
    ))
}

/// Runs one `ctl` command and returns what to print.
///
/// # Errors
/// [`CtlError`] when the service cannot be reached or refuses.
pub async fn run(args: &CtlArgs) -> Result<String, CtlError> {
    let ch = channel(args).await?;
    match &args.action {
        CtlAction::Health => {
            let r = HealthClient::new(ch)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?
                .into_inner();
            if r.status == ServingStatus::Serving as i32 {
                Ok(format!("{}: SERVING", args.url))
            } else {
                Err(CtlError::NotServing(r.status))
            }
        }
        CtlAction::Status => {
            let s = TraderServiceClient::new(ch)
                .get_status(pb::GetStatusRequest {})
                .await?
                .into_inner();
            Ok(render_status(&s))
        }
        CtlAction::Pause { reason } => {
            let r = TraderServiceClient::new(ch)
                .pause(pb::PauseRequest {
                    reason: reason.clone(),
                })
                .await?
                .into_inner();
            Ok(format!("pause queued (mode was {})", mode_name(r.mode)))
        }
        CtlAction::Resume { reason } => {
            let r = TraderServiceClient::new(ch)
                .resume(pb::ResumeRequest {
                    reason: reason.clone(),
                })
                .await?
                .into_inner();
            Ok(format!("resume queued (mode was {})", mode_name(r.mode)))
        }
        CtlAction::RetryParked { reason } => {
            let r = TraderServiceClient::new(ch)
                .retry_parked_writes(pb::RetryParkedWritesRequest {
                    reason: reason.clone(),
                })
                .await?
                .into_inner();
            Ok(format!("retry of {} parked write(s) queued", r.parked))
        }
        CtlAction::Ops(a) => crate::ctl_ops::run(ch, a).await,
    }
}

fn mode_name(m: i32) -> &'static str {
    match pb::Mode::try_from(m) {
        Ok(pb::Mode::Running) => "running",
        Ok(pb::Mode::Paused) => "paused",
        Ok(pb::Mode::Halted) => "halted",
        _ => "unknown",
    }
}

fn enum_name<E: TryFrom<i32>>(v: i32, f: impl Fn(E) -> &'static str) -> &'static str {
    E::try_from(v).map_or("?", f)
}

/// A compact human summary of a status response.
#[must_use]
pub fn render_status(s: &pb::GetStatusResponse) -> String {
    let mut out = String::new();
    let outbox = s.outbox.unwrap_or_default();
    let budget = s.budget.unwrap_or_default();
    let _ = writeln!(
        out,
        "bot {}  pair {}  mode {}{}",
        s.bot_id,
        s.pair,
        mode_name(s.mode),
        if s.mode_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.mode_reason)
        }
    );
    let _ = writeln!(
        out,
        "market {} (age {}s)  loops {}  outbox {} (+{} parked)  budget {}/{} deferred {}",
        if s.market_price.is_empty() {
            "-"
        } else {
            &s.market_price
        },
        s.market_price_age_seconds
            .map_or_else(|| "-".into(), |a| a.to_string()),
        s.loops,
        outbox.depth,
        outbox.parked,
        budget.used,
        budget.limit,
        budget.deferred
    );
    if let Some(h) = &s.healing {
        render_healing(&mut out, h);
    }
    for p in &s.parked_writes {
        let _ = writeln!(
            out,
            "PARKED ledger write #{} {} {}: {} (fix the cause, then `ctl retry-parked`)",
            p.seq, p.kind, p.key, p.reason
        );
    }
    for slot in &s.slots {
        let phase = enum_name(slot.phase, |p: pb::Phase| p.as_str_name());
        let _ = write!(
            out,
            "slot {} {}",
            slot.slot_id,
            phase.trim_start_matches("PHASE_")
        );
        if !slot.halted_reason.is_empty() {
            let _ = write!(out, " HALTED {}", slot.halted_reason);
        }
        out.push('\n');
        for idle in &slot.idle {
            let t = enum_name(idle.trade, |t: pb::Trade| t.as_str_name());
            let _ = writeln!(
                out,
                "  {} idle: {}",
                t.trim_start_matches("TRADE_"),
                idle.reason
            );
        }
        for o in &slot.orders {
            let role = enum_name(o.role, |r: pb::OrderRole| r.as_str_name());
            let side = enum_name(o.side, |r: pb::Side| r.as_str_name());
            let _ = writeln!(
                out,
                "  {:<16} {:<5} {:<4} {} x {}  {}",
                o.order_id,
                role.trim_start_matches("ORDER_ROLE_").to_lowercase(),
                side.trim_start_matches("SIDE_").to_lowercase(),
                o.price,
                o.volume,
                if o.txid.is_empty() {
                    "(placing)"
                } else {
                    &o.txid
                }
            );
        }
    }
    let _ = writeln!(out, "open positions: {}", s.positions.len());
    for p in &s.positions {
        let band = enum_name(p.band, |b: pb::AgeBand| b.as_str_name());
        let mode = if p.slot_mode == pb::PositionSlotMode::Churner as i32 {
            " churner"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  slot {}{mode} cycle {} entry {} exit {} vol {}  {} age {}s dist {}% eff {}s  opportunity cost {}  ledger #{}",
            p.slot_id,
            p.cycle,
            p.entry_price,
            p.exit_price,
            p.volume,
            band.trim_start_matches("AGE_BAND_").to_lowercase(),
            p.age_seconds,
            p.distance_pct,
            p.effective_age_seconds,
            p.opportunity_cost,
            if p.position_id.is_empty() {
                "pending"
            } else {
                &p.position_id
            }
        );
    }
    out
}

/// The self-healing section: stage, regime, target, subsidy per slot and the
/// repricing counters.
fn render_healing(out: &mut String, h: &pb::Healing) {
    let regime = h.regime.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "healing stage {}  regime {} ({:.2}{}{})  profit target {} %  entries held {}",
        h.stage,
        regime.state,
        regime.confidence,
        if regime.ready { "" } else { ", not ready" },
        regime.override_until.map_or_else(String::new, |t| format!(
            ", operator override until {}",
            t.seconds
        )),
        h.profit_target_pct,
        if h.entry_hold.is_empty() {
            "none"
        } else {
            &h.entry_hold
        }
    );
    let mut earned: Vec<String> = h
        .earned_by_source
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    earned.sort();
    let _ = writeln!(
        out,
        "subsidy earned [{}] spent {}",
        earned.join(", "),
        h.spent
    );
    let _ = writeln!(
        out,
        "pending need {} USD  churner net last 24 h {} USD  ETA {}",
        h.pending_need_total,
        h.churner_net_24h_usd,
        h.eta_seconds.map_or_else(
            || "unknown (no churner profit in the last 24 h)".to_owned(),
            |s| format!("{s}s"),
        )
    );
    for s in &h.subsidy {
        let _ = writeln!(
            out,
            "  slot {} subsidy {} pending need {}{}",
            s.slot_id,
            s.balance,
            s.pending_need,
            if s.halted {
                "  HALTED: ledger refused a debit"
            } else {
                ""
            }
        );
    }
    if let Some(r) = &h.reprices {
        let mut skipped: Vec<String> = r.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
        skipped.sort();
        let _ = writeln!(
            out,
            "reprices checked {} tighten {} subsidized {} full / {} partial, loss-funded {}; skipped [{}]",
            r.checked,
            r.tighten,
            r.subsidized_full,
            r.subsidized_partial,
            r.loss_funded,
            skipped.join(", ")
        );
    }
    if let Some(c) = &h.churner {
        render_churner(out, c);
    }
}

/// The churner: totals, the reserve, then one line per slot.
fn render_churner(out: &mut String, c: &pb::ChurnerStatus) {
    let _ = writeln!(
        out,
        "churner {}  active {}  today {} cycles {} USD  lifetime {} cycles ({} losing) net {} USD, \
         handed over {}  reserve earmarked {} available {} peak {}",
        if c.enabled { "on" } else { "off" },
        c.active,
        c.cycles_today,
        c.profit_today_usd,
        c.cycles,
        c.losing_cycles,
        c.net_usd,
        c.handed_over,
        c.reserve_earmarked_usd,
        c.reserve_available_usd,
        c.reserve_peak_usd
    );
    for s in &c.slots {
        let _ = writeln!(
            out,
            "  slot {} churner {} cycle {}{}{}{}{}{}",
            s.slot_id,
            s.stage,
            s.cycle,
            opt_field(" parent", &s.parent_open_key),
            opt_field(" side", &s.side),
            opt_field(" order", &s.order_id),
            opt_field(" paused", &s.paused_reason),
            opt_field(" error", &s.last_error),
        );
    }
}

fn opt_field(name: &str, v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("{name} {v}")
    }
}
