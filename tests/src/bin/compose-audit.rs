//! `compose-audit`: the compose test's view into a running deployment
//! (tests/compose/run.sh), over the ledger's gRPC API and a copy of the
//! trader's store.
//!
//! ```text
//! compose-audit journal-count  LEDGER_URL BOT SLOTS   # journal rows of BOT
//! compose-audit open-positions LEDGER_URL BOT SLOTS   # open position ids, one a line
//! compose-audit audit STORE_DB LEDGER_URL BOT SLOTS   # outbox vs ledger; exit 1 on any difference
//! ```

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use healgrid_proto::ledger::v1 as pb;
use healgrid_tests::audit::{LedgerView, ledger_view, trader_outbox};

fn usage() -> ExitCode {
    eprintln!(
        "usage: compose-audit journal-count LEDGER_URL BOT SLOTS\n       \
         compose-audit open-positions LEDGER_URL BOT SLOTS\n       \
         compose-audit audit STORE_DB LEDGER_URL BOT SLOTS"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let slots = |s: &str| s.parse::<u32>().ok();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["journal-count", url, bot, n] => {
            let Some(n) = slots(n) else { return usage() };
            println!("{}", ledger_view(url, bot, n).await.journal.len());
            ExitCode::SUCCESS
        }
        ["open-positions", url, bot, n] => {
            let Some(n) = slots(n) else { return usage() };
            let view = ledger_view(url, bot, n).await;
            let ids: BTreeSet<u64> = view
                .open_positions()
                .iter()
                .map(|p| p.position_id)
                .collect();
            for id in ids {
                println!("{id}");
            }
            ExitCode::SUCCESS
        }
        ["audit", store, url, bot, n] => {
            let Some(n) = slots(n) else { return usage() };
            audit(Path::new(store), url, bot, n).await
        }
        _ => usage(),
    }
}

/// Compares what the trader's outbox says it delivered with what the
/// ledger holds; prints one line per check and a verdict.
async fn audit(store: &Path, url: &str, bot: &str, slots: u32) -> ExitCode {
    let outbox = trader_outbox(store).await;
    let view: LedgerView = ledger_view(url, bot, slots).await;
    let state = |s: &str| outbox.keys_by_state.get(s).map_or(0, BTreeSet::len);
    let mut failures = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        println!("  {} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failures.push(what.to_owned());
        }
    };

    check(
        "outbox delivered everything",
        state("pending") == 0 && state("parked") == 0,
        format!(
            "{} delivered, {} pending, {} parked",
            state("delivered"),
            state("pending"),
            state("parked")
        ),
    );
    let open_keys = view.open_keys();
    let unique_open: BTreeSet<String> = open_keys.iter().cloned().collect();
    check(
        "no position twice in the ledger",
        unique_open.len() == open_keys.len(),
        format!(
            "{} positions, {} distinct open keys",
            open_keys.len(),
            unique_open.len()
        ),
    );
    let lost: Vec<&String> = outbox.opened.difference(&unique_open).collect();
    let extra: Vec<&String> = unique_open.difference(&outbox.opened).collect();
    check(
        "positions: ledger = outbox",
        lost.is_empty() && extra.is_empty(),
        format!(
            "{} opened by the trader, {} in the ledger, lost {lost:?}, unknown {extra:?}",
            outbox.opened.len(),
            unique_open.len()
        ),
    );
    let closed = view.closed_keys();
    check(
        "closes: ledger = outbox",
        closed == outbox.closed,
        format!(
            "{} closed by the trader, {} in the ledger",
            outbox.closed.len(),
            closed.len()
        ),
    );
    let event_keys = view.event_keys();
    let unique_events: BTreeSet<&String> = event_keys.iter().collect();
    check(
        "no journal event twice",
        unique_events.len() == event_keys.len(),
        format!(
            "{} events, {} distinct keys",
            event_keys.len(),
            unique_events.len()
        ),
    );
    let missing: Vec<&String> = outbox
        .event_keys
        .iter()
        .filter(|k| !unique_events.contains(k))
        .collect();
    check(
        "every delivered event is in the journal",
        missing.is_empty(),
        format!(
            "{} delivered events, missing {missing:?}",
            outbox.event_keys.len()
        ),
    );
    check(
        "created/filled counts match",
        view.count(pb::EventType::Created) == outbox.opened.len()
            && view.count(pb::EventType::Filled) == outbox.closed.len(),
        format!(
            "created {} / {}, filled {} / {}",
            view.count(pb::EventType::Created),
            outbox.opened.len(),
            view.count(pb::EventType::Filled),
            outbox.closed.len()
        ),
    );
    if failures.is_empty() {
        println!(
            "audit: ok ({} writes delivered, {} journal rows, nothing lost, nothing duplicated)",
            state("delivered"),
            view.journal.len()
        );
        ExitCode::SUCCESS
    } else {
        println!("audit: FAILED: {}", failures.join("; "));
        ExitCode::FAILURE
    }
}
