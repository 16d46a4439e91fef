//! gRPC contracts of healgrid.
//!
//! One crate owns the generated code so every service and test speaks exactly
//! the same wire types, and one module ([`convert`]) owns the translation of
//! decimal strings and timestamps, so parsing rules cannot drift between
//! callers.

pub mod auth;
pub mod codec;
pub mod convert;
pub mod crash;
pub mod reflection;
pub mod tls;

/// Encoded `FileDescriptorSet` of the ledger contract, for gRPC reflection.
pub const LEDGER_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ledger_descriptor.bin"));

/// Encoded `FileDescriptorSet` of the trader control contract, for gRPC
/// reflection.
pub const TRADER_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/trader_descriptor.bin"));

/// `healgrid.ledger.v1`: the position ledger and subsidy journal.
pub mod ledger {
    /// Version 1 of the ledger contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, clippy::pedantic)]
        tonic::include_proto!("healgrid.ledger.v1");
    }
}

/// `healgrid.trader.v1`: the trader's control API (status, pause, resume).
pub mod trader {
    /// Version 1 of the trader control contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, clippy::pedantic)]
        tonic::include_proto!("healgrid.trader.v1");
    }
}
