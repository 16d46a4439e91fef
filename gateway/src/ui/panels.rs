//! The dashboard panels, rendered from one [`Snapshot`]: overview, slots,
//! age heat map, subsidy, churners, cleanup queue (with each position's
//! slot mode) and price chart (history and exit levels). Each panel
//! renders on its own from what it has; a missing backend or field blanks
//! only what depends on it.

use std::collections::BTreeSet;

use healgrid_proto::convert::format_decimal;
use maud::{Markup, html};

use super::{Snapshot, chart, raw, unavailable};
use crate::error::ApiError;
use crate::view::operator::{Candles, CleanupEntry};
use crate::view::status::{self as sv, BANDS, Mode, SlotMode};

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

/// Every panel.
pub fn all(s: &Snapshot) -> Markup {
    html! {
        div.grid {
            section.card #overview { h2 { "Overview" } (overview(s)) }
            section.card #subsidy { h2 { "Subsidy health" } (subsidy(s)) }
            section.card.wide #chart { h2 { "Price and open exits" } (price_chart(s)) }
            section.card.wide #heatmap { h2 { "Age heat map (open positions by band × slot)" } (heatmap(s)) }
            section.card.wide #slots { h2 { "Slots" } (slots(s)) }
            section.card.wide #cleanup { h2 { "Cleanup queue" } (cleanup(s)) }
            section.card #churners { h2 { "Churner activity" } (churners(s)) }
        }
    }
}

fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Running => "running",
        Mode::Paused => "paused",
        Mode::Halted => "halted",
        Mode::Unknown => "unknown",
    }
}

fn overview(snap: &Snapshot) -> Markup {
    let st = match &snap.status {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    html! {
        dl.kv {
            dt { "Bot" } dd { (st.bot_id) " · " (st.pair) }
            dt { "Mode" } dd { span class={"mode " (mode_word(st.mode))} { (mode_word(st.mode)) } @if let Some(r) = &st.mode_reason { " — " (r) } }
            dt { "Market" } dd { (opt(st.market.price.as_ref())) " " small { "(" (opt(st.market.age_seconds)) " s old)" } }
            dt { "Loops" } dd { (st.loops) " " small { "last " (opt(st.last_loop_at.as_ref())) } }
            dt { "Outbox" } dd { (st.outbox.depth) " pending · " span class=(if st.outbox.parked > 0 { "warn" } else { "" }) { (st.outbox.parked) " parked" } }
            dt { "Call budget" } dd { (st.budget.used) " / " (st.budget.limit) " used · " (st.budget.deferred) " deferred" }
            dt { "Open positions" } dd { (st.positions.len()) }
            @match &st.healing {
                Some(h) => {
                    dt { "Healing" } dd { "stage " (h.stage) " · reprices " (h.reprices[0]) " tighten / " (h.reprices[1]) " subsidized / " (h.reprices[2]) " loss-funded" }
                    dt { "Regime" } dd { (h.regime) " " small { "(" (format!("{:.2}", h.regime_confidence)) @if !h.regime_ready { ", not ready" } ")" } }
                    dt { "Profit target" } dd { (h.profit_target_pct) " %" }
                    dt { "Entries held" } dd { @if h.entry_hold == "none" { "none" } @else { span.warn { (h.entry_hold) " (steady move)" } } }
                }
                None => { dt { "Regime, target" } dd.muted { "not reported by the trader" } }
            }
        }
        div.actions {
            button data-action="/api/v1/pause" data-title="Pause trading" { "Pause" }
            button data-action="/api/v1/resume" data-title="Resume trading" { "Resume" }
        }
    }
}

fn slots(snap: &Snapshot) -> Markup {
    let st = match &snap.status {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    if st.slots.is_empty() {
        return html! { p.muted { "no slots yet (the trader has not run a loop)" } };
    }
    html! {
        div.slots {
            @for sl in &st.slots {
                div class={"slot " @if sl.halted_reason.is_some() { "halted" }} {
                    div.slot-id { "#" (sl.slot_id) }
                    div.phase { (sl.phase.to_uppercase()) }
                    div.orders { (sl.orders.len()) " orders" }
                    @if let Some(r) = &sl.halted_reason { div.reason title=(r) { "halted: " (r) } }
                }
            }
        }
    }
}

fn heatmap(snap: &Snapshot) -> Markup {
    let st = match &snap.status {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let cells = sv::heatmap(&st.positions);
    let slot_ids: BTreeSet<u32> = st
        .slots
        .iter()
        .map(|s| s.slot_id)
        .chain(st.positions.iter().map(|p| p.slot_id))
        .collect();
    let max = cells.values().map(|c| c.count).max().unwrap_or(0).max(1);
    html! {
        div.scroll {
            table.heat {
                thead { tr { th { "slot" } @for b in BANDS { th { (b.as_str()) } } } }
                tbody {
                    @for slot in &slot_ids {
                        tr {
                            th { "#" (slot) }
                            @for b in BANDS {
                                @match cells.get(&(*slot, b)) {
                                    Some(c) => {
                                        td class={"cell " (b.as_str())} style={"--heat:" (format!("{:.2}", c.count as f64 / max as f64))}
                                            title={(c.count) " open, capital " (format_decimal(c.capital))} {
                                            b { (c.count) } br; small { "$" (format_decimal(c.capital.round_dp(2))) }
                                        }
                                    }
                                    None => { td.cell.empty { "·" } }
                                }
                            }
                        }
                    }
                }
                tfoot {
                    tr { th { "all" } @for bc in &st.bands { td { b { (bc.count) } br; small { "$" (money(&bc.capital)) } } } }
                }
            }
        }
    }
}

fn subsidy(snap: &Snapshot) -> Markup {
    let sub = match &snap.subsidy {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    html! {
        @if let Some(t) = &sub.total {
            p.big { "balance " b { (t.balance) } " · earned " (t.earned) " · spent " (t.consumed) }
        }
        @if sub.slots.is_empty() {
            p.muted { "no subsidy earned or spent yet" }
        } @else {
            div.scroll {
                table {
                    thead { tr { th { "slot" } th { "balance" } th { "churner" } th { "over-perf." } th { "spent" } } }
                    tbody {
                        @for s in &sub.slots {
                            tr { td { "#" (s.slot_id) } td { (s.balance) } td { (s.earned_churner_profit) } td { (s.earned_over_performance) } td { (s.consumed) } }
                        }
                    }
                }
            }
        }
        (pending(snap))
    }
}

/// The trader's pending need and the ETA to earn it (SPEC §7).
fn pending(snap: &Snapshot) -> Markup {
    match snap.status.as_ref().ok().and_then(|s| s.healing.as_ref()) {
        None => html! { p.muted { "pending need and ETA: the trader did not report them" } },
        Some(h) => html! {
            p #pending-need {
                "pending need $" (h.pending_need_total)
                " · churner net last 24 h $" (h.churner_net_24h_usd)
                " · ETA " (eta(h.eta_seconds))
            }
        },
    }
}

/// An ETA in words: `unknown` without a churner profit rate.
fn eta(seconds: Option<i64>) -> String {
    match seconds {
        None => "unknown (no churner profit in the last 24 h)".to_owned(),
        Some(0) => "nothing needed".to_owned(),
        Some(s) if s < 3_600 => format!("{} min", (s + 59) / 60),
        Some(s) if s < 172_800 => format!("{:.1} h", s as f64 / 3_600.0),
        Some(s) => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

fn churners(snap: &Snapshot) -> Markup {
    let c = match (&snap.status, &snap.churners) {
        (Err(e), _) => return unavailable(e),
        (Ok(_), None) => return html! { p.muted { "not reported by this trader" } },
        (Ok(_), Some(c)) => c,
    };
    html! {
        dl.kv {
            dt { "Churner" } dd { @if c.enabled { "on" } @else { "off" } " · " (c.active) " active" }
            dt { "Today" } dd { (c.cycles_today) " cycles · $" (money(&c.profit_today_usd)) }
            dt { "Lifetime" } dd { (c.cycles) " cycles (" (c.losing_cycles) " losing) · net $" (money(&c.net_usd)) " · " (c.handed_over) " handed over" }
            dt { "Reserve" } dd { "$" (money(&c.reserve_earmarked_usd)) " lent · $" (money(&c.reserve_available_usd)) " available" }
        }
        @if !c.slots.is_empty() {
            div.scroll {
                table {
                    thead { tr { th { "slot" } th { "stage" } th { "cycle" } th { "paused" } } }
                    tbody {
                        @for s in &c.slots {
                            tr { td { "#" (s.slot_id) } td { (s.stage) } td { (s.cycle) } td { (opt(s.paused_reason.as_ref())) } }
                        }
                    }
                }
            }
        }
    }
}

/// The button of one queue action, when the trader offers it.
fn action_button(p: &CleanupEntry, action: &str) -> Markup {
    let id = &p.position_id;
    let (path, title, label) = match action {
        "reprice_to_breakeven" => (
            "reprice-breakeven",
            "Reprice position {} to breakeven",
            "Breakeven",
        ),
        "close_at_market" => (
            "close-at-market",
            "Close position {} at market (realizes the loss)",
            "Close",
        ),
        "keep_holding" => ("keep-holding", "Keep holding position {} for 96 h", "Hold"),
        _ => return html! {},
    };
    html! {
        button data-action={"/api/v1/positions/" (id) "/" (path)} data-title=(title.replace("{}", id))
            data-hold=[(action == "keep_holding").then_some("345600")] { (label) }
    }
}

/// The slot mode of a queue row as the trader's queue reports it: sticky
/// (a slot's trade cycle) or churner (a handed-over churner round trip); a
/// dash when the trader does not say.
fn slot_mode(mode: SlotMode) -> Markup {
    match mode {
        SlotMode::Unknown => {
            html! { td.slot-mode title="the trader does not report the slot mode" { "—" } }
        }
        m => html! { td class={"slot-mode " (m.as_str())} { (m.as_str()) } },
    }
}

fn cleanup(snap: &Snapshot) -> Markup {
    let queue = match &snap.queue {
        Ok(q) => q,
        Err(e) => return unavailable(e),
    };
    if queue.is_empty() {
        return html! { p.muted { "empty: no open position in band write_off that is not on hold" } };
    }
    html! {
        div.scroll {
            table.queue {
                thead { tr { th { "position" } th { "slot" } th { "mode" } th { "entry" } th { "exit" } th { "distance %" } th { "age" } th { "need $" } th { "opp. cost $" } th { "actions" } } }
                tbody {
                    @for p in queue {
                        tr data-position=(p.position_id) {
                            td { a href={"/ui/positions/" (p.position_id)} { (p.position_id) } }
                            td { "#" (p.slot_id) " " (p.trade.to_uppercase()) }
                            (slot_mode(p.slot_mode))
                            td { (p.entry_price) } td { (p.exit_price) } td { (p.distance_pct) }
                            td { (age(p.age_seconds)) }
                            td { (money(&p.subsidy_needed)) } td { (money(&p.opportunity_cost)) }
                            td.actions { @for a in &p.actions { (action_button(p, a)) } }
                        }
                    }
                }
            }
        }
    }
}

fn price_chart(snap: &Snapshot) -> Markup {
    let st = match &snap.status {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let candles = snap.candles.as_ref().map_or(&[][..], |c| &c.candles[..]);
    let Some(drawn) = chart::price(st.market.price.as_deref(), &st.positions, candles) else {
        return html! { p.muted { "no market price yet" } };
    };
    html! {
        (raw(drawn.svg))
        p.legend { span.l-market { "market" } @for b in BANDS { span class={"l-" (b.as_str())} { (b.as_str()) } } }
        @if !drawn.history { (history_missing(&snap.candles)) }
    }
}

/// Why the chart shows the levels only: a short note, never an error
/// panel, since the levels still tell the operator where the exits are.
fn history_missing(candles: &Result<Candles, ApiError>) -> Markup {
    match candles {
        Err(e) => {
            html! { p.muted #chart-note title=(e.message()) { "levels only: the price history is unavailable" } }
        }
        Ok(c) if c.candles.is_empty() => {
            html! { p.muted #chart-note { "levels only: no price history yet (the trader keeps the last day in memory)" } }
        }
        Ok(_) => {
            html! { p.muted #chart-note { "levels only: the price history has no readable price" } }
        }
    }
}

/// A decimal string rounded to cents for display (as given when it is not
/// a number).
fn money(s: &str) -> String {
    crate::view::decimal(s).map_or_else(|| s.to_owned(), |d| format_decimal(d.round_dp(2)))
}

/// Seconds as a short human age.
#[must_use]
pub fn age(secs: i64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiError, Backend};

    /// Proves: with both backends down every panel renders and names the
    /// unreachable backend; nothing panics on an empty status.
    #[test]
    fn renders_with_backends_down_or_empty() {
        let down = |b| ApiError::Backend {
            backend: b,
            rpc: "X",
            code: tonic::Code::Unavailable,
            message: "connection refused".into(),
        };
        let html = all(&Snapshot {
            status: Err(down(Backend::Trader)),
            subsidy: Err(down(Backend::Ledger)),
            queue: Err(down(Backend::Trader)),
            candles: Err(down(Backend::Trader)),
            churners: None,
        })
        .into_string();
        assert!(html.contains("trader unavailable") && html.contains("ledger unavailable"));
        let empty = sv::status(&Default::default());
        let html = all(&Snapshot {
            status: Ok(empty),
            subsidy: Err(down(Backend::Ledger)),
            queue: Ok(Vec::new()),
            candles: Ok(Candles {
                bar_seconds: 300,
                candles: Vec::new(),
            }),
            churners: None,
        })
        .into_string();
        assert!(html.contains("no slots yet") && html.contains("no market price yet"));
        assert_eq!(age(90_000), "1d 1h");
    }

    /// Proves: when only the price history fails, the chart still draws
    /// the levels with a short note (no error panel), and a cleanup-queue
    /// row shows the slot mode the queue reports for it (not the status',
    /// which says nothing here), a dash when the trader does not say.
    #[test]
    fn chart_falls_back_and_queue_shows_mode() {
        use healgrid_proto::trader::v1 as pb;
        let status = sv::status(&pb::GetStatusResponse {
            market_price: "0.09".into(),
            positions: vec![pb::Position {
                position_id: "42".into(),
                exit_price: "0.1".into(),
                band: pb::AgeBand::WriteOff as i32,
                ..Default::default()
            }],
            ..Default::default()
        });
        let entry = |id: &str, slot_mode: SlotMode| CleanupEntry {
            position_id: id.into(),
            slot_id: 0,
            trade: "b".into(),
            entry_price: "0.099".into(),
            exit_price: "0.1".into(),
            volume: "1".into(),
            age_seconds: 600,
            distance_pct: "11".into(),
            effective_age_seconds: "600".into(),
            subsidy_needed: "0.01".into(),
            opportunity_cost: "0".into(),
            actions: vec!["keep_holding".into()],
            slot_mode,
        };
        let snap = Snapshot {
            status: Ok(status),
            subsidy: Err(ApiError::NotFound("no ledger".into())),
            queue: Ok(vec![
                entry("42", SlotMode::Churner),
                entry("43", SlotMode::Sticky),
                entry("44", SlotMode::Unknown),
            ]),
            candles: Err(ApiError::Deadline {
                backend: Backend::Trader,
                rpc: "GetCandles",
                deadline_ms: 300,
            }),
            churners: None,
        };
        let chart = price_chart(&snap).into_string();
        assert!(chart.contains(r#"<line class="market""#), "{chart}");
        assert!(chart.contains("levels only") && !chart.contains(r#"class="down""#));
        let queue = cleanup(&snap).into_string();
        assert!(
            queue.contains(r#"<td class="slot-mode churner">churner</td>"#),
            "{queue}"
        );
        assert!(
            queue.contains(r#"<td class="slot-mode sticky">sticky</td>"#),
            "{queue}"
        );
        assert!(queue.contains("does not report the slot mode"), "{queue}");
        assert_eq!(money("39.99999999672534"), "40");
    }
}
