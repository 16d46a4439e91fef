//! Migration and reconciliation at start: pre-ledger exits imported once,
//! orphan ledger positions closed, parked positions left to the operator.

use super::*;

/// Proves: a foreign resting order on our pair (an exit of a pre-ledger
/// run) becomes exactly one `legacy` position with `migration: true`;
/// re-running (same store, and even a lost store) never duplicates it; its
/// fill closes the position.
#[tokio::test]
async fn legacy_exit_is_imported_once_and_closed_by_its_fill() {
    let cs = grid::choppy_candles(400, 5);
    let dir = tempfile::tempdir().unwrap();
    let paper = new_paper(&cs[0]);
    paper.step(&cs[0]);
    let price = cs[0].close;
    let foreign_price = (price * dec!(1.004)).round_dp(7);
    let foreign = paper.with_book(|b| {
        b.add_order(&OrderRequest {
            pair: "XDGUSD".into(),
            side: Side::Sell,
            kind: OrderKind::Limit {
                price: foreign_price,
                post_only: false,
            },
            volume: dec!(100),
            userref: 0,
            client_order_id: "old-bot-exit-1".into(),
        })
        .unwrap()
    });
    let (lib, local) = ledger().await;
    let mut rt = Runtime::new(
        runtime_config(1),
        paper.clone(),
        local.clone(),
        file_store(&dir).await,
    )
    .await
    .unwrap();
    rt.step(paper.clock().now_ms()).await.unwrap();
    rt.flush(paper.clock().now_ms()).await.unwrap();
    drop(rt);
    // Re-run on the same store, then on a lost (fresh) store.
    let mut rt = Runtime::new(
        runtime_config(1),
        paper.clone(),
        local.clone(),
        file_store(&dir).await,
    )
    .await
    .unwrap();
    rt.step(paper.clock().now_ms()).await.unwrap();
    rt.flush(paper.clock().now_ms()).await.unwrap();
    drop(rt);
    let other = tempfile::tempdir().unwrap();
    let fresh_store = TraderStore::open(&StoreLocation::File(other.path().join("t.db")))
        .await
        .unwrap();
    let mut rt2 = Runtime::new(runtime_config(1), paper.clone(), local.clone(), fresh_store)
        .await
        .unwrap();
    rt2.step(paper.clock().now_ms()).await.unwrap();
    rt2.flush(paper.clock().now_ms()).await.unwrap();
    drop(rt2);

    let legacy: Vec<_> = lib
        .open_positions(BOT, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.open_key == format!("legacy:{foreign}"))
        .collect();
    assert_eq!(legacy.len(), 1, "exactly one legacy position");
    let p = &legacy[0];
    assert_eq!(p.exit_txid, foreign);
    let page = lib
        .journal(&JournalScope::Position(p.position_id), 0, 100)
        .await
        .unwrap();
    let migrations: Vec<bool> = page
        .entries
        .iter()
        .filter_map(|e| match &e.details {
            EventDetails::Created(c) => Some(c.migration),
            _ => None,
        })
        .collect();
    assert_eq!(migrations, vec![true], "one created event, migration: true");

    // Same store again: the fill of the foreign order closes the position.
    let mut rt = Runtime::new(
        runtime_config(1),
        paper.clone(),
        local,
        file_store(&dir).await,
    )
    .await
    .unwrap();
    let spike = Candle {
        time: cs[1].time,
        open: price,
        high: foreign_price * dec!(1.01),
        low: price,
        close: price,
        volume: dec!(100000),
    };
    paper.step(&spike);
    rt.step(paper.clock().now_ms()).await.unwrap();
    rt.flush(paper.clock().now_ms()).await.unwrap();
    let closed = lib.position(p.position_id).await.unwrap();
    assert!(closed.outcome.is_some(), "legacy fill closed the position");
}

pub(super) fn stale_open(open_key: &str, time: i64) -> trader_service::runtime::writes::OpenWrite {
    use trader_service::engine::TradeId;
    use trader_service::runtime::writes::{OpenWrite, SlotModeKind};
    OpenWrite {
        open_key: open_key.into(),
        exit_order_id: None,
        slot: 0,
        trade: TradeId::B,
        cycle: 1,
        slot_mode: SlotModeKind::Sticky,
        entry_price: dec!(0.1),
        entry_cost: dec!(6),
        entry_fee: dec!(0.015),
        entry_volume: dec!(60),
        entry_time: time,
        exit_price: dec!(0.1005),
        target_profit_pct: dec!(0.5),
        exit_txid: Some("GONE-1".into()),
        migration: false,
    }
}

/// Proves: a ledger open position whose exit no longer exists anywhere
/// (no engine exit, no legacy order) is closed `exchange_cancelled` by the
/// start-up reconciliation, once; re-running does not close it twice.
#[tokio::test]
async fn orphan_ledger_position_is_closed_exchange_cancelled() {
    use ledger_service::CloseReason;
    use trader_service::runtime::sink::open_request;
    let cs = grid::choppy_candles(5, 3);
    let paper = new_paper(&cs[0]);
    paper.step(&cs[0]);
    let (lib, local) = ledger().await;
    let id = local
        .open_position(open_request(
            BOT,
            &stale_open("OLD-ENTRY-1", cs[0].time - 3600),
        ))
        .await
        .unwrap()
        .position
        .unwrap()
        .position_id;
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let mut rt = Runtime::new(
            runtime_config(1),
            paper.clone(),
            local.clone(),
            file_store(&dir).await,
        )
        .await
        .unwrap();
        rt.step(paper.clock().now_ms()).await.unwrap();
        rt.flush(paper.clock().now_ms()).await.unwrap();
    }
    let p = lib.position(id).await.unwrap();
    let outcome = p.outcome.expect("closed");
    assert_eq!(outcome.close_reason, CloseReason::ExchangeCancelled);
    let page = lib
        .journal(&JournalScope::Position(id), 0, 100)
        .await
        .unwrap();
    assert_eq!(
        page.entries.len(),
        2,
        "created + one close event: {:?}",
        page.entries
    );
}

/// Proves: a ledger position whose write the ledger refused (parked) is
/// left to the operator by every later reconciliation: no second close
/// under the parked write's key, and trading goes on.
#[tokio::test]
async fn parked_position_is_left_to_the_operator() {
    use trader_service::runtime::sink::open_request;
    let cs = grid::choppy_candles(5, 3);
    let paper = new_paper(&cs[0]);
    paper.step(&cs[0]);
    let (lib, local) = ledger().await;
    // Entered (by the ledger's clock) after the trader's now: the coverage
    // close the trader sends is refused (exit before entry) and parked.
    let id = local
        .open_position(open_request(
            BOT,
            &stale_open("SKEWED-1", cs[0].time + 7200),
        ))
        .await
        .unwrap()
        .position
        .unwrap()
        .position_id;
    let mut cfg = runtime_config(1);
    cfg.reconcile_every = 1;
    let store = TraderStore::open(&StoreLocation::Memory).await.unwrap();
    let mut rt = Runtime::new(cfg, paper.clone(), local, store)
        .await
        .unwrap();
    for c in &cs[1..] {
        paper.step(c);
        rt.step(paper.clock().now_ms())
            .await
            .expect("reconciliation must not trip over the parked write");
    }
    let status = rt.status(paper.clock().now_ms()).await.unwrap();
    assert_eq!(status.outbox.parked, 1, "{:?}", status.outbox);
    assert!(
        lib.position(id).await.unwrap().outcome.is_none(),
        "still open"
    );
}
