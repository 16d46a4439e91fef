//! The checker's rules on hand-made views.

use super::*;

/// An order of 100 that executed `vol_exec`.
fn order(txid: &str, cl: &str, status: &str, vol_exec: i64) -> SimOrder {
    SimOrder {
        txid: txid.into(),
        cl_ord_id: cl.into(),
        status: status.into(),
        volume: Decimal::ONE_HUNDRED,
        vol_exec: Decimal::from(vol_exec),
    }
}

/// A position of entry volume 100.
fn position(id: u64, open_key: &str, exit_txid: &str, open: bool) -> lpb::Position {
    let status = if open {
        lpb::PositionStatus::Open
    } else {
        lpb::PositionStatus::Closed
    };
    lpb::Position {
        position_id: id,
        open_key: open_key.into(),
        exit_txid: exit_txid.into(),
        status: status as i32,
        entry_volume: "100".into(),
        ..Default::default()
    }
}

/// A trader still trading whose store agrees with the exchange and the
/// ledger: it holds every open order of `sim` and the ledger's subsidy,
/// so each test sees only the rule it is about.
fn trading(sim: &[SimOrder], subsidy: &[lpb::SubsidyBalance]) -> TraderEnd {
    TraderEnd {
        trading: true,
        mode_reason: String::new(),
        store: consistent_store(sim, subsidy),
        negative_subsidy: Vec::new(),
    }
}

fn consistent_store(sim: &[SimOrder], subsidy: &[lpb::SubsidyBalance]) -> StoreEnd {
    StoreEnd {
        orders: sim
            .iter()
            .filter(|o| o.status == "open")
            .map(|o| store_order(&o.txid))
            .collect(),
        subsidy: subsidy
            .iter()
            .map(|b| (b.slot_id, b.balance.parse().unwrap_or_default()))
            .collect(),
        ..StoreEnd::EMPTY
    }
}

fn store_order(txid: &str) -> StoreOrder {
    StoreOrder {
        txid: Some(txid.into()),
        owner: "grid".into(),
        role: "Exit".into(),
        slot: 0,
    }
}

#[test]
fn a_consistent_book_is_clean() {
    let sim = [
        order("E1", "0:A:1:en:1", "closed", 100),
        order("X1", "0:A:1:ex:1", "closed", 100),
        order("E2", "0:B:1:en:1", "closed", 100),
        order("X2", "0:B:1:ex:1", "open", 0),
        order("E3", "1:A:1:en:1", "canceled", 0),
        order("E4", "1:A:1:en:2", "open", 0),
    ];
    let positions = [
        position(1, "E1", "X1", false),
        position(2, "E2", "X2", true),
    ];
    let c = check(&sim, &positions, &[], &[], &trading(&sim, &[]));
    assert!(c.clean(), "{:?}", c.details);
}

#[test]
fn every_violation_is_counted() {
    let sim = [
        order("E1", "0:A:1:en:1", "closed", 100),
        order("E2", "0:A:1:en:1", "open", 0),
        order("E3", "0:B:1:en:1", "closed", 100),
        order("E4", "0:B:1:en:2", "closed", 100),
    ];
    let positions = [
        position(1, "E1", "gone", true),
        position(2, "E1", "gone", true),
        position(3, "E3", "", true),
    ];
    let subsidy = [lpb::SubsidyBalance {
        balance: "-0.01".into(),
        ..Default::default()
    }];
    let halted = TraderEnd {
        trading: false,
        mode_reason: "halted".into(),
        negative_subsidy: vec!["slot 1: -0.02".into()],
        ..trading(&sim, &subsidy)
    };
    let c = check(&sim, &positions, &[], &subsidy, &halted);
    assert_eq!(c.lost, 1, "E4 is nowhere in the ledger");
    assert_eq!(c.duplicated, 1, "E1 journaled twice");
    // One reused client order id, whose two orders (one filled, one
    // live) also share an intent, and two filled orders of intent
    // 0:B:1:en.
    assert_eq!(c.duplicate_orders, 3);
    assert_eq!(c.naked, 3);
    // Besides: the negative balance, which its journal (empty) does not
    // add up to, the store's negative view (it mirrors the ledger here),
    // the trader's negative view in its status, the halt.
    assert_eq!(c.details.len(), 1 + 1 + 3 + 3 + 1 + 1 + 1 + 1 + 1);
}

/// Partial executions: an exit re-placed for what remained after part
/// of it executed is no duplicate; every part booked once is clean; a
/// part booked twice, a part never booked, or an intent executed beyond
/// its volume is counted.
#[test]
fn partial_executions_are_booked_exactly_once() {
    let mut half_entry = order("E2", "1:A:1:en:1", "canceled", 50);
    half_entry.volume = Decimal::ONE_HUNDRED;
    let mut rest = order("X1b", "0:A:1:ex:2", "closed", 60);
    rest.volume = Decimal::from(60);
    let sim = vec![
        order("E1", "0:A:1:en:1", "closed", 100),
        order("X1a", "0:A:1:ex:1", "canceled", 40),
        rest,
        half_entry.clone(),
        order("X2", "1:A:1:ex:1", "open", 20),
    ];
    let mut second = position(2, "E2", "X2", true);
    second.entry_volume = "50".into();
    let positions = vec![position(1, "E1", "X1b", false), second.clone()];
    // The exit X1a, part executed, was repriced into X1b.
    let repriced = lpb::RepricedDetails {
        old_txid: "X1a".into(),
        new_txid: "X1b".into(),
        ..Default::default()
    };
    let journal = [lpb::JournalEntry {
        event_key: "reprice:1".into(),
        details: Some(lpb::EventDetails {
            kind: Some(lpb::event_details::Kind::Repriced(repriced)),
        }),
        ..Default::default()
    }];
    // The trader holds every open order but E5 (which it forgot).
    let check = |sim: &[SimOrder], positions: &[lpb::Position]| {
        let mut holding = trading(sim, &[]);
        holding
            .store
            .orders
            .retain(|o| o.txid.as_deref() != Some("E5"));
        check(sim, positions, &journal, &[], &holding)
    };
    let c = check(&sim, &positions);
    assert!(c.clean(), "{:?}", c.details);

    let mut twice = second.clone();
    twice.entry_volume = "100".into();
    let c = check(&sim, &[positions[0].clone(), twice]);
    assert_eq!((c.duplicated, c.lost), (1, 0), "{:?}", c.details);

    let mut short = positions[0].clone();
    short.entry_volume = "60".into();
    let c = check(&sim, &[short, second.clone()]);
    assert_eq!(c.lost, 1, "only 60 booked of 100 entered");
    assert_eq!(c.duplicated, 1, "100 exited of the 60 booked");

    let mut resting = sim.clone();
    resting.push(order("E3", "2:B:1:en:1", "open", 30));
    let c = check(&resting, &positions);
    assert!(c.clean(), "{:?}", c.details);
    assert_eq!(c.entries_in_flight, 1);
    resting.push(order("E4", "2:A:1:en:1", "canceled", 30));
    resting.push(order("E5", "2:A:2:en:1", "open", 30));
    let c = check(&resting, &positions);
    assert_eq!(c.lost, 2, "E4 left the book unbooked, E5 the trader forgot");

    let mut over = sim.clone();
    over.push(order("X1c", "0:A:1:ex:3", "canceled", 10));
    let c = check(&over, &positions);
    assert_eq!(c.duplicate_orders, 1, "the exit executed 110 of 100");
    assert_eq!(c.duplicated, 1, "and more than the position booked");
    assert_eq!(c.lost, 1, "X1c is nowhere in the ledger");
}

/// Proves: a churner round trip is clean when its exits took all it
/// entered or an exit rests; inventory with no exit is naked, unless
/// its entry still rests part executed.
#[test]
fn churner_inventory_needs_an_exit() {
    let sim = [
        order("C1", "ch:0:1:en:1", "closed", 100),
        order("C2", "ch:0:1:ex:2", "canceled", 40),
        order("C3", "ch:0:1:ex:3", "closed", 60),
        order("C4", "ch:1:1:en:1", "closed", 100),
        order("C5", "ch:1:1:ex:2", "open", 0),
        order("C6", "ch:2:4:en:1", "open", 30),
    ];
    let journal_of = |txids: &[&str]| -> Vec<lpb::JournalEntry> {
        txids
            .iter()
            .map(|t| lpb::JournalEntry {
                event_key: format!("churn:{t}"),
                details: Some(lpb::EventDetails {
                    kind: Some(lpb::event_details::Kind::ChurnerProfit(
                        lpb::ChurnerProfitDetails {
                            churner_cycle_id: (*t).into(),
                            ..Default::default()
                        },
                    )),
                }),
                ..Default::default()
            })
            .collect()
    };
    let journal = journal_of(&["C1", "C2", "C3", "C4", "C6"]);
    let c = check(&sim, &[], &journal, &[], &trading(&sim, &[]));
    assert!(c.clean(), "{:?}", c.details);

    let mut gone = sim.to_vec();
    gone[4] = order("C5", "ch:1:1:ex:2", "canceled", 0);
    gone.push(order("C7", "ch:2:5:en:1", "canceled", 30));
    let journal = journal_of(&["C1", "C2", "C3", "C4", "C6", "C7"]);
    let c = check(&gone, &[], &journal, &[], &trading(&gone, &[]));
    assert_eq!(c.naked, 2, "{:?}", c.details);
}

/// Proves: an open position whose ledger exit txid is not yet the
/// repriced exit's is covered by a live exit of its own intent; a
/// churner round trip (open key `churn:<entry txid>`) finds its entry's
/// fill and its live exit the same way; without a live exit both are
/// naked.
#[test]
fn open_positions_are_covered_by_a_live_exit_of_their_intent() {
    let sim = [
        order("E1", "0:A:1:en:1", "closed", 100),
        order("X1", "0:A:1:ex:2", "canceled", 0),
        order("X1b", "0:A:1:ex:5", "open", 0),
        order("C1", "ch:1:1:en:1", "closed", 100),
        order("C2", "ch:1:1:ex:2", "open", 0),
    ];
    let repriced = position(1, "E1", "", true);
    let churn = position(2, "churn:C1", "", true);
    let positions = [repriced.clone(), churn.clone()];
    let c = check(&sim, &positions, &[], &[], &trading(&sim, &[]));
    assert!(c.clean(), "{:?}", c.details);

    let gone: Vec<SimOrder> = sim
        .iter()
        .map(|o| {
            if o.status == "open" {
                order(&o.txid, &o.cl_ord_id, "canceled", 0)
            } else {
                o.clone()
            }
        })
        .collect();
    let c = check(&gone, &positions, &[], &[], &trading(&gone, &[]));
    assert_eq!(c.naked, 2, "{:?}", c.details);
    assert_eq!(c.lost, 0, "both entries are the ledger's: {:?}", c.details);
}

/// Proves: the ledger's subsidy must equal what its journal adds up
/// to, slot by slot.
#[test]
fn subsidy_must_add_up_to_its_journal() {
    let row = |slot: u32, kind: lpb::event_details::Kind| lpb::JournalEntry {
        slot_id: slot,
        event_key: format!("{kind:?}"),
        details: Some(lpb::EventDetails { kind: Some(kind) }),
        ..Default::default()
    };
    use lpb::event_details::Kind;
    let journal = [
        row(
            0,
            Kind::ChurnerProfit(lpb::ChurnerProfitDetails {
                net_profit: "0.30".into(),
                ..Default::default()
            }),
        ),
        row(
            0,
            Kind::OverPerformance(lpb::OverPerformanceDetails {
                excess: "0.05".into(),
                ..Default::default()
            }),
        ),
        row(
            0,
            Kind::Repriced(lpb::RepricedDetails {
                reason: lpb::RepriceReason::Subsidy as i32,
                subsidy_consumed: "0.10".into(),
                ..Default::default()
            }),
        ),
        row(
            0,
            Kind::Repriced(lpb::RepricedDetails {
                reason: lpb::RepriceReason::Tighten as i32,
                subsidy_consumed: "9".into(),
                ..Default::default()
            }),
        ),
    ];
    let balance = |earned: &str, consumed: &str, balance: &str| lpb::SubsidyBalance {
        slot_id: 0,
        earned: earned.into(),
        consumed: consumed.into(),
        balance: balance.into(),
        ..Default::default()
    };
    let sums = |b: &[lpb::SubsidyBalance]| check(&[], &[], &journal, b, &trading(&[], b));
    let c = sums(&[balance("0.35", "0.10", "0.25")]);
    assert!(c.clean(), "{:?}", c.details);
    let c = sums(&[balance("0.35", "0.10", "0.35")]);
    assert_eq!(c.details.len(), 1, "{:?}", c.details);
    let c = sums(&[]);
    assert_eq!(c.details.len(), 1, "no balance for slot 0: {:?}", c.details);
}

#[test]
fn sim_orders_parse_from_both_sections() {
    let body = r#"{"open":{"O1":{"cl_ord_id":"0:A:1:ex:1","status":"open","vol":"50",
        "vol_exec":"0"}},
        "closed":{"O2":{"status":"closed","vol":"120.5","vol_exec":"120.5"}}}"#;
    let mut orders = parse_sim_orders(body).unwrap();
    orders.sort_by(|a, b| a.txid.cmp(&b.txid));
    assert_eq!(orders[0].intent(), Some("0:A:1:ex"));
    assert!(!orders[0].filled());
    assert!(orders[1].filled());
    assert_eq!(orders[1].intent(), None);
}

/// The store against the exchange and the ledger: an undelivered write,
/// a placement left unresolved, churner inventory the store says is naked, a subsidy view that is
/// negative or differs from the ledger's, a working order the exchange no
/// longer has, and an open order of ours the store forgot are each
/// counted.
#[test]
fn the_store_must_agree_with_the_exchange_and_the_ledger() {
    let sim = [
        order("E1", "0:A:1:en:1", "closed", 100),
        order("X1", "0:A:1:ex:1", "open", 0),
    ];
    let positions = [position(1, "E1", "X1", true)];
    let subsidy = [lpb::SubsidyBalance {
        slot_id: 0,
        earned: "0.5".into(),
        balance: "0.5".into(),
        consumed: "0".into(),
        ..Default::default()
    }];
    let journal = [lpb::JournalEntry {
        event_key: "churn:1".into(),
        slot_id: 0,
        details: Some(lpb::EventDetails {
            kind: Some(lpb::event_details::Kind::ChurnerProfit(
                lpb::ChurnerProfitDetails {
                    net_profit: "0.5".into(),
                    ..Default::default()
                },
            )),
        }),
        ..Default::default()
    }];
    let with = |store: StoreEnd| {
        let trader = TraderEnd {
            store,
            ..trading(&sim, &subsidy)
        };
        check(&sim, &positions, &journal, &subsidy, &trader)
    };
    let good = consistent_store(&sim, &subsidy);
    let c = with(good.clone());
    assert!(c.clean(), "{:?}", c.details);

    let c = with(StoreEnd {
        outbox_pending: 2,
        outbox_parked: 1,
        ..good.clone()
    });
    assert_eq!((c.lost, c.details.len()), (3, 1), "{:?}", c.details);

    let c = with(StoreEnd {
        naked_churner_inventory: Decimal::TEN,
        ..good.clone()
    });
    assert_eq!((c.naked, c.details.len()), (1, 1), "{:?}", c.details);

    let c = with(StoreEnd {
        unresolved_placements: 2,
        ..good.clone()
    });
    assert!(
        c.details[0].contains("2 placements of unknown outcome"),
        "{:?}",
        c.details
    );

    let mut view = good.clone();
    view.subsidy.insert(0, Decimal::from(-1));
    let c = with(view);
    // Negative, and not the ledger's 0.5.
    assert_eq!(c.details.len(), 2, "{:?}", c.details);
    let mut view = good.clone();
    view.subsidy.clear();
    let c = with(view);
    assert!(
        c.details[0].contains("store says 0, the ledger 0.5"),
        "{:?}",
        c.details
    );

    // The store still works E1 (filled) and an order the exchange never
    // saw, and forgot X1 (open).
    let c = with(StoreEnd {
        orders: vec![store_order("E1"), store_order("Z9")],
        ..good
    });
    assert_eq!(c.details.len(), 3, "{:?}", c.details);
    assert!(c.details.iter().any(|d| d.contains("exchange says closed")));
    assert!(
        c.details
            .iter()
            .any(|d| d.contains("exchange says unknown"))
    );
    assert!(c.details.iter().any(|d| d.starts_with("orphan: order X1")));
}

#[test]
fn store_audit_json_parses() {
    let json = r#"{"step": 12, "committed_at_ms": 1, "paused": true,
        "orders": [
          {"owner": "grid", "slot": 1, "role": "Exit", "side": "sell",
           "price": "0.1", "volume": "50", "txid": "X1"},
          {"owner": "churner", "slot": 2, "role": "Entry", "side": "buy",
           "price": "0.09", "volume": "60", "txid": null}],
        "adopted_exits": [{"txid": "SX1", "open_key": "legacy:S1", "side": "Sell",
           "exit_price": "0.11", "executed": "0"}],
        "open_positions": 1, "subsidy": {"1": "0.25"}, "subsidy_halted": [],
        "naked_churner_inventory": "0", "unresolved_placements": 0,
        "outbox_pending": 0, "outbox_parked": 0}"#;
    let s = StoreEnd::parse(json).unwrap();
    assert!(s.holds("X1") && !s.holds("X2"));
    assert!(s.holds("SX1"), "an adopted exit is held too");
    assert_eq!(s.orders[1].owner, "churner");
    assert_eq!(s.subsidy[&1], Decimal::new(25, 2));
    assert!(StoreEnd::parse("{}").is_err());
    let bad = json.replace(r#""0.25""#, "0.25");
    assert!(StoreEnd::parse(&bad).unwrap_err().contains("subsidy"));
}
