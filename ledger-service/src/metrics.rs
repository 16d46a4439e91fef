//! The ledger's Prometheus metrics (served on `--metrics-listen`): gRPC
//! calls by method and code with their latency, journal rows appended by
//! this process, and subsidy debits refused for want of balance.

use std::sync::Arc;

use healgrid_metrics::{Counter, Registry, RpcMetrics, RpcMetricsLayer};

/// Every metric of one ledger process.
#[derive(Debug)]
pub struct LedgerMetrics {
    registry: Arc<Registry>,
    rpc: Arc<RpcMetrics>,
    journal_rows: Arc<Counter>,
    subsidy_refused: Arc<Counter>,
}

impl LedgerMetrics {
    /// Fresh metrics on their own registry.
    #[must_use]
    pub fn new() -> Arc<Self> {
        let registry = Arc::new(Registry::default());
        let rpc = RpcMetrics::register(&registry, "ledger");
        let journal_rows = registry.register(Counter::new(
            "ledger_journal_rows_appended_total",
            "Journal rows this process appended, by write (replayed writes append nothing).",
            &["write"],
        ));
        let subsidy_refused = registry.register(Counter::new(
            "ledger_subsidy_debits_refused_total",
            "Subsidy debits refused because the slot's balance was too low.",
            &[],
        ));
        Arc::new(Self {
            registry,
            rpc,
            journal_rows,
            subsidy_refused,
        })
    }

    /// The registry to serve.
    #[must_use]
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The layer recording the server's gRPC calls.
    #[must_use]
    pub fn rpc_layer(&self) -> RpcMetricsLayer {
        RpcMetricsLayer::new(self.rpc.clone())
    }

    /// A write (`open`, `event`, `close`, `reprice`, `bot_journal`) appended a journal row.
    pub fn journal_row_appended(&self, write: &str) {
        self.journal_rows.inc(&[write]);
    }

    /// A subsidy debit was refused.
    pub fn subsidy_debit_refused(&self) {
        self.subsidy_refused.inc(&[]);
    }
}
