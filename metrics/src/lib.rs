//! Prometheus metrics for the healgrid services, in the text exposition
//! format (version 0.0.4), written by hand: the services need only
//! counters, gauges and latency histograms, and one small implementation
//! shared by the gateway, the ledger and the trader keeps their output
//! identical in shape.
//!
//! - [`family`]: [`Counter`], [`Gauge`], [`Histogram`] families with
//!   labels, and the [`Registry`] that renders them;
//! - [`listener`]: the small HTTP listener serving `GET /metrics`;
//! - [`grpc`]: a tower layer counting a tonic server's calls by method and
//!   status code, with their latency;
//! - [`exposition`]: a parser of the text format, so tests can assert on
//!   what a running process exposes.

pub mod exposition;
pub mod family;
pub mod grpc;
pub mod listener;

pub use exposition::{ParseError, Scrape};
pub use family::{Counter, Gauge, Histogram, LATENCY_BUCKETS, Registry};
pub use grpc::{RpcMetrics, RpcMetricsLayer};
pub use listener::serve;
