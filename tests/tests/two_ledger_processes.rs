//! Two real `ledger-service` processes on one PostgreSQL schema, 24 clients
//! racing subsidy debits (and credits) on one slot, with retries of the same
//! event key sent to both processes at once.
//!
//! Proves: the final balance equals credits minus accepted debits, no
//! observed balance is ever negative, and no retried key produced a second
//! journal row.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use healgrid_tests::{pg::TestSchema, process::LedgerProcess};
use prost_types::Timestamp;
use rust_decimal::Decimal;
use tonic::{Code, transport::Channel};

const BOT: &str = "kraken:XDGUSD:race";
const SLOT: u32 = 7;
const CLIENTS: usize = 24;
const DEBITS_PER_CLIENT: usize = 12;
const T0: i64 = 1_700_000_000;

type Client = LedgerServiceClient<Channel>;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal from the ledger")
}

async fn client(endpoint: &str) -> Client {
    LedgerServiceClient::connect(endpoint.to_owned())
        .await
        .expect("connect to ledger-service")
}

fn credit(position_id: u64, key: String, amount: Decimal) -> pb::JournalEventRequest {
    pb::JournalEventRequest {
        position_id,
        event_key: key.clone(),
        at: ts(T0 + 10),
        event_type: pb::EventType::ChurnerProfit as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::ChurnerProfit(
                pb::ChurnerProfitDetails {
                    net_profit: amount.to_string(),
                    churner_cycle_id: key,
                },
            )),
        }),
    }
}

fn debit(position_id: u64, key: String, amount: Decimal) -> pb::RepricePositionRequest {
    pb::RepricePositionRequest {
        position_id,
        new_txid: format!("TX-{key}"),
        event_key: key,
        new_price: "0.0935".into(),
        reason: pb::RepriceReason::Subsidy as i32,
        subsidy_consumed: amount.to_string(),
        at: ts(T0 + 20),
    }
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    credits: Decimal,
    debits: BTreeMap<String, (Decimal, u64)>,
    min_balance: Option<Decimal>,
}

impl Tally {
    fn observe(&mut self, balance: &str) {
        let b = dec(balance);
        assert!(b >= Decimal::ZERO, "observed negative balance {b}");
        self.min_balance = Some(self.min_balance.map_or(b, |m| m.min(b)));
    }
}

async fn race(id: usize, position_id: u64, endpoints: [String; 2]) -> Tally {
    let mut clients = [client(&endpoints[0]).await, client(&endpoints[1]).await];
    let mut tally = Tally::default();
    for n in 0..DEBITS_PER_CLIENT {
        let seed = (id * 31 + n * 17) % 40;
        let amount = Decimal::new(5 + i64::try_from(seed).unwrap(), 2); // 0.05 ..= 0.44
        let key = format!("debit-{id}-{n}");
        let own = (id + n) % 2;
        if n % 4 == 3 {
            // Some clients earn while others spend.
            let c = credit(position_id, format!("credit-{id}-{n}"), Decimal::new(30, 2));
            let r = clients[own]
                .journal_event(c)
                .await
                .expect("credit")
                .into_inner();
            tally.credits += Decimal::new(30, 2);
            tally.observe(&r.subsidy.unwrap().balance);
        }
        let request = debit(position_id, key.clone(), amount);
        let retry = n % 3 == 0;
        let results = if retry {
            // The same key to both processes at once.
            let (mut a, mut b) = (clients[0].clone(), clients[1].clone());
            let (ra, rb) = tokio::join!(
                a.reprice_position(request.clone()),
                b.reprice_position(request.clone())
            );
            vec![ra, rb]
        } else {
            vec![clients[own].reprice_position(request).await]
        };
        let mut journal_ids = Vec::new();
        let mut fresh = 0;
        for r in results {
            match r {
                Ok(r) => {
                    let r = r.into_inner();
                    tally.observe(&r.subsidy.unwrap().balance);
                    journal_ids.push(r.entry.unwrap().journal_id);
                    if !r.replayed {
                        fresh += 1;
                    }
                }
                Err(s) if s.code() == Code::FailedPrecondition => {
                    assert!(
                        s.message().starts_with("insufficient subsidy"),
                        "{}",
                        s.message()
                    );
                }
                Err(s) => panic!("unexpected status {s:?}"),
            }
        }
        assert!(fresh <= 1, "{key} applied twice");
        if let Some(first) = journal_ids.first() {
            assert!(
                journal_ids.iter().all(|j| j == first),
                "{key}: {journal_ids:?}"
            );
            assert_eq!(fresh, 1, "{key}: accepted but never freshly applied");
            tally.debits.insert(key, (amount, *first));
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_never_overdraw_one_slot() {
    let Some(schema) = TestSchema::create("two_ledger_processes").await else {
        return;
    };
    // Both start (and migrate) at once.
    let (a, b) = tokio::join!(
        LedgerProcess::start(&schema.url),
        LedgerProcess::start(&schema.url)
    );
    let endpoints = [a.endpoint.clone(), b.endpoint.clone()];

    let mut setup = client(&endpoints[0]).await;
    let mut open = pb::OpenPositionRequest {
        bot_id: BOT.into(),
        slot_id: Some(SLOT),
        trade_id: pb::TradeId::A as i32,
        slot_mode: pb::SlotMode::Sticky as i32,
        cycle: 1,
        open_key: "race-open".into(),
        entry_price: "0.095".into(),
        entry_cost: "9.5".into(),
        entry_fee: "0.02".into(),
        entry_volume: "100".into(),
        entry_time: ts(T0),
        entry_regime: pb::Regime::Ranging as i32,
        entry_volatility: "0.7".into(),
        original_exit_price: "0.094".into(),
        target_profit_pct: "1".into(),
        exit_txid: "OX".into(),
        migration: false,
    };
    let position_id = setup
        .open_position(open.clone())
        .await
        .unwrap()
        .into_inner()
        .position
        .unwrap()
        .position_id;
    // The same open through the other process is a replay.
    open.exit_txid = "OX".into();
    let mut other = client(&endpoints[1]).await;
    let replay = other.open_position(open).await.unwrap().into_inner();
    assert!(replay.replayed);
    assert_eq!(replay.position.unwrap().position_id, position_id);
    let initial = Decimal::new(1500, 2); // 15.00, less than the ~60 requested
    setup
        .journal_event(credit(position_id, "seed".into(), initial))
        .await
        .unwrap();

    // A watcher polls both processes for the whole race.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let mut clients = [client(&endpoints[0]).await, client(&endpoints[1]).await];
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for c in &mut clients {
                    let r = c
                        .get_subsidy_balance(pb::GetSubsidyBalanceRequest {
                            bot_id: BOT.into(),
                            slot_id: Some(SLOT),
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    let b = dec(&r.subsidy.unwrap().balance);
                    assert!(b >= Decimal::ZERO, "watcher saw negative balance {b}");
                    reads += 1;
                }
            }
            reads
        })
    };

    let racers = (0..CLIENTS).map(|id| tokio::spawn(race(id, position_id, endpoints.clone())));
    let tallies: Vec<Tally> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|r| r.expect("racer panicked"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let reads = watcher.await.expect("watcher panicked");
    assert!(reads > 0);

    let credits = initial + tallies.iter().map(|t| t.credits).sum::<Decimal>();
    let accepted: BTreeMap<&String, &(Decimal, u64)> =
        tallies.iter().flat_map(|t| &t.debits).collect();
    let debited: Decimal = accepted.values().map(|(a, _)| *a).sum();
    let requested = CLIENTS * DEBITS_PER_CLIENT;
    assert!(
        accepted.len() < requested,
        "the race should exhaust the subsidy"
    );
    assert!(!accepted.is_empty());

    let balance = setup
        .get_subsidy_balance(pb::GetSubsidyBalanceRequest {
            bot_id: BOT.into(),
            slot_id: Some(SLOT),
        })
        .await
        .unwrap()
        .into_inner()
        .subsidy
        .unwrap();
    assert_eq!(dec(&balance.earned), credits);
    assert_eq!(dec(&balance.consumed), debited);
    assert_eq!(dec(&balance.balance), credits - debited);
    assert!(dec(&balance.balance) >= Decimal::ZERO);

    // No duplicate rows: one created row, one per credit, one per accepted debit.
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = setup
            .get_journal(pb::GetJournalRequest {
                scope: Some(pb::get_journal_request::Scope::PositionId(position_id)),
                after_journal_id: after,
                limit: 1000,
            })
            .await
            .unwrap()
            .into_inner();
        rows.extend(page.entries);
        if page.next_after_journal_id == 0 {
            break;
        }
        after = page.next_after_journal_id;
    }
    let credit_rows = rows
        .iter()
        .filter(|r| r.event_type == pb::EventType::ChurnerProfit as i32)
        .count();
    let debit_rows: Vec<_> = rows
        .iter()
        .filter(|r| r.event_type == pb::EventType::Repriced as i32)
        .collect();
    let expected_credits = 1 + CLIENTS * (DEBITS_PER_CLIENT / 4);
    assert_eq!(credit_rows, expected_credits);
    assert_eq!(debit_rows.len(), accepted.len());
    let mut keys: Vec<&str> = rows.iter().map(|r| r.event_key.as_str()).collect();
    keys.sort_unstable();
    let total = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), total, "duplicate event keys in the journal");
    for r in &debit_rows {
        let (_, journal_id) = accepted[&r.event_key];
        assert_eq!(*journal_id, r.journal_id);
    }
    let position = setup
        .get_position(pb::GetPositionRequest { position_id })
        .await
        .unwrap()
        .into_inner()
        .position
        .unwrap();
    assert_eq!(position.times_repriced as usize, accepted.len());
    eprintln!(
        "two processes: {} of {requested} debits accepted, {} credits, final balance {}, {reads} watcher reads",
        accepted.len(),
        expected_credits,
        balance.balance
    );
}
