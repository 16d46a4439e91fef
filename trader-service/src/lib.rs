//! healgrid trader: the exchange loop, the pure pair engine and the
//! self-healing machinery (repricing, churner), calling the ledger service.

#[cfg(feature = "local-ledger")]
pub mod backtest;
pub mod config;
pub mod crash_point;
pub mod ctl;
pub mod ctl_ops;
pub mod engine;
pub mod exchange;
pub mod grpc;
pub mod healing;
pub mod metrics;
pub mod operator_api;
pub mod pair;
pub mod runtime;
pub mod server;
pub mod service;
