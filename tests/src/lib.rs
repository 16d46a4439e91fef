//! Support for healgrid's cross-service tests: throwaway PostgreSQL schemas
//! and real service processes.
//!
//! Tests that need PostgreSQL read `DATABASE_URL`. When it is unset they
//! skip with a notice, unless `CI=true` or `HEALGRID_REQUIRE_POSTGRES=1`, in
//! which case they fail: CI must never skip them silently.

pub mod audit;
pub mod fault;
pub mod hostile;
pub mod http;
pub mod pg;
pub mod process;
