//! Command-line and environment configuration (flags win over environment).

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// healgrid ledger-service: the position ledger and subsidy journal over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "ledger-service", version, about)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "LEDGER_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Database: `sqlite://file.db` (created if missing) or
    /// `postgres://user@host/db` (add `?sslmode=require` for Supabase).
    #[arg(
        long,
        env = "LEDGER_DATABASE_URL",
        default_value = "sqlite://healgrid-ledger.db"
    )]
    pub database_url: String,

    /// Largest number of pooled PostgreSQL connections (about 2-4 per core
    /// of the database server is where PostgreSQL does best).
    #[arg(long, env = "LEDGER_DB_MAX_CONNECTIONS", default_value_t = crate::store::DEFAULT_MAX_CONNECTIONS)]
    pub db_max_connections: u32,

    /// Write batches (transactions) one process runs at once; concurrent
    /// writes arriving meanwhile wait and share the next batch.
    #[arg(long, env = "LEDGER_BATCH_IN_FLIGHT", default_value_t = crate::ledger::Batching::default().max_in_flight)]
    pub batch_in_flight: usize,

    /// Most writes in one batch.
    #[arg(long, env = "LEDGER_BATCH_MAX", default_value_t = crate::ledger::Batching::default().max_batch)]
    pub batch_max: usize,

    /// Log format; verbosity comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "LEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// How the ledger groups writes.
    pub fn batching(&self) -> crate::ledger::Batching {
        crate::ledger::Batching {
            max_in_flight: self.batch_in_flight,
            max_batch: self.batch_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::try_parse_from(["ledger-service"]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(c.database_url, "sqlite://healgrid-ledger.db");
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_override() {
        let c = Config::try_parse_from([
            "ledger-service",
            "--listen",
            "0.0.0.0:6000",
            "--database-url",
            "postgres://x@y/z",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.log_format, LogFormat::Json);
    }
}
