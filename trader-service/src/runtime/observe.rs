//! Feeding the trader's metrics from the runtime: after each loop, its
//! duration, the runtime's totals and the snapshot it just published.

use std::sync::Arc;
use std::time::Duration;

use super::Runtime;
use super::ledger::LedgerApi;
use crate::exchange::Exchange;
use crate::metrics::TraderMetrics;

impl<E: Exchange, L: LedgerApi> Runtime<E, L> {
    /// Records every loop of [`Self::run_forever`] into `metrics`.
    pub fn observe_into(&mut self, metrics: Arc<TraderMetrics>) {
        self.metrics = Some(metrics);
    }

    /// Records a loop that took `duration`.
    pub(crate) fn observe_loop(&self, duration: Duration) {
        let Some(m) = &self.metrics else { return };
        m.record_loop(duration, &self.stats);
        if let Some(h) = &self.handle {
            m.record_status(&h.status.borrow());
        }
    }
}
