//! Kraken spot REST: signing, nonces, the rate-limit model, the wire format
//! and the client that ties them together.

pub mod client;
pub mod form;
pub mod limits;
pub mod nonce;
pub mod sign;
pub mod wire;

pub use client::{KrakenClient, KrakenConfig};
