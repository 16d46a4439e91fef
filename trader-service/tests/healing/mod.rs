//! The setup both self-healing suites share: a grid whose bands last
//! minutes instead of days, stage-D repricing, and an operator credit
//! journaled straight into the ledger.

#![allow(dead_code, missing_docs)]

use healgrid_proto::ledger::v1 as pb;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use trader_service::engine::{AgeBand, BandThresholds, EngineConfig, OrderSize};
use trader_service::healing::RepriceConfig;
use trader_service::runtime::RuntimeConfig;
use trader_service::runtime::ledger::LedgerApi;

/// `slots` slots of 6 USD on the test grid, band stale from `stale_sec`
/// and stuck from `stale_sec x 1.5`, stage D repricing with a 600 s
/// cooldown, ledger reconciliation (and subsidy sync) every 5 loops.
pub fn config(bot: &str, slots: u32, stale_sec: i64) -> RuntimeConfig {
    let mut e = EngineConfig::defaults(super::grid::spec());
    e.slots = slots;
    e.order_size = OrderSize::Usd(dec!(6));
    e.profit_pct = dec!(1.0);
    e.bands.thresholds = BandThresholds {
        fresh_sec: stale_sec / 3,
        aging_sec: stale_sec * 2 / 3,
        stale_sec,
        stuck_sec: 1_000_000,
    };
    let mut c = RuntimeConfig::new(bot, e.validate().0);
    c.reconcile_every = 5;
    c.reprice = RepriceConfig {
        tighten: true,
        subsidized: true,
        auto_band: AgeBand::Stuck,
        interval_sec: 600,
        allow_loss: false,
        round_trip_fee_pct: dec!(0.5),
        market_stale_sec: 300,
        write_off_auto: false,
        release_locked_pairs: false,
    };
    c
}

/// Credits `amount` of churner profit to a position through the ledger
/// (as an operator or a churner would), keyed by `key`, at `at`.
pub async fn credit(
    ledger: &impl LedgerApi,
    position_id: u64,
    key: &str,
    amount: Decimal,
    at: i64,
) {
    ledger
        .journal_event(pb::JournalEventRequest {
            position_id,
            event_key: key.into(),
            at: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
            event_type: pb::EventType::ChurnerProfit as i32,
            details: Some(pb::EventDetails {
                kind: Some(pb::event_details::Kind::ChurnerProfit(
                    pb::ChurnerProfitDetails {
                        net_profit: amount.to_string(),
                        churner_cycle_id: key.into(),
                    },
                )),
            }),
        })
        .await
        .unwrap();
}

/// A ledger that answers UNAVAILABLE while `down` is set (an outage).
#[derive(Clone)]
pub struct Flaky<L> {
    pub inner: L,
    pub down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<L> Flaky<L> {
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            down: Default::default(),
        }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), tonic::Status> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(tonic::Status::unavailable("ledger down"))
        } else {
            Ok(())
        }
    }
}

impl<L: LedgerApi> LedgerApi for Flaky<L> {
    async fn open_position(
        &self,
        r: pb::OpenPositionRequest,
    ) -> Result<pb::OpenPositionResponse, tonic::Status> {
        self.check()?;
        self.inner.open_position(r).await
    }
    async fn close_position(
        &self,
        r: pb::ClosePositionRequest,
    ) -> Result<pb::ClosePositionResponse, tonic::Status> {
        self.check()?;
        self.inner.close_position(r).await
    }
    async fn journal_event(
        &self,
        r: pb::JournalEventRequest,
    ) -> Result<pb::JournalEventResponse, tonic::Status> {
        self.check()?;
        self.inner.journal_event(r).await
    }
    async fn reprice_position(
        &self,
        r: pb::RepricePositionRequest,
    ) -> Result<pb::RepricePositionResponse, tonic::Status> {
        self.check()?;
        self.inner.reprice_position(r).await
    }
    async fn list_open_positions(
        &self,
        r: pb::ListOpenPositionsRequest,
    ) -> Result<pb::ListOpenPositionsResponse, tonic::Status> {
        self.check()?;
        self.inner.list_open_positions(r).await
    }
    async fn get_subsidy_balance(
        &self,
        r: pb::GetSubsidyBalanceRequest,
    ) -> Result<pb::GetSubsidyBalanceResponse, tonic::Status> {
        self.check()?;
        self.inner.get_subsidy_balance(r).await
    }
    async fn append_bot_journal(
        &self,
        r: pb::AppendBotJournalRequest,
    ) -> Result<pb::AppendBotJournalResponse, tonic::Status> {
        self.check()?;
        self.inner.append_bot_journal(r).await
    }
}
