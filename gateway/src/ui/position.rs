//! The position page: the ledger record, its exit price history as a step
//! chart and its journal as a timeline.

use maud::{Markup, html};

use super::{chart, raw, unavailable};
use crate::api::positions::PositionDetail;
use crate::error::ApiError;
use crate::view::ledger::exit_price_history;

/// Renders position `id` (or why it cannot be shown).
pub fn render(id: u64, detail: Result<PositionDetail, ApiError>) -> Markup {
    let d = match detail {
        Ok(d) => d,
        Err(e) => return html! { section.card { h2 { "Position " (id) } (unavailable(&e)) } },
    };
    let p = &d.position;
    let history = exit_price_history(&d.journal);
    let prices: Vec<String> = history.iter().map(|h| h.price.clone()).collect();
    html! {
        div.grid {
            section.card #position {
                h2 { "Position " (p.position_id) }
                dl.kv {
                    dt { "Slot" } dd { "#" (p.slot_id) " " (p.trade.to_uppercase()) " · " (p.slot_mode) " · cycle " (p.cycle) }
                    dt { "Status" } dd { (p.status) @if let Some(b) = p.band { " · band " (b.as_str()) } @if let Some(r) = &p.close_reason { " · " (r) } }
                    dt { "Entry" } dd { (p.entry_price) " × " (p.entry_volume) " = " (p.entry_cost) " (fee " (p.entry_fee) ")" }
                    dt { "Exit" } dd { (p.current_exit_price) " " small { "first " (p.original_exit_price) ", repriced " (p.times_repriced) "×" } }
                    dt { "Target" } dd { (p.target_profit_pct) " %" }
                    @if let Some(n) = &p.net_profit { dt { "Net profit" } dd { (n) } }
                }
            }
            section.card #exit-history {
                h2 { "Exit price history" }
                @if let Some(svg) = chart::steps(&prices) { (raw(svg)) }
                ol { @for h in &history { li { (h.at.as_deref().unwrap_or("?")) " — " b { (h.price) } " (" (h.reason) ")" @if let Some(s) = &h.subsidy_consumed { " subsidy " (s) } } } }
            }
            section.card.wide #journal {
                h2 { "Journal" }
                ol.timeline {
                    @for e in &d.journal {
                        li {
                            span.when { (e.at.as_deref().unwrap_or("?")) }
                            span class={"event " (e.event_type)} { (e.event_type) }
                            code { (e.details) }
                        }
                    }
                }
            }
        }
    }
}
