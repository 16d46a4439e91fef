//! Command-line and environment configuration (flags win over environment).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use healgrid_proto::auth::{RequireToken, ServiceToken, token_parser};
use healgrid_proto::tls::{ServerSecurity, TlsError};

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

    /// Microseconds a batch runner may wait, after answering several
    /// writes, for as many to arrive before its next batch (0 to 100000;
    /// 0 never waits). A lone writer is never delayed.
    #[arg(long, env = "LEDGER_BATCH_LINGER_US", default_value_t = default_linger_us(),
          value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub batch_linger_us: u64,

    /// Log format; verbosity comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "LEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds the server goes on answering after SIGTERM while its health
    /// reports NOT_SERVING, so clients move to another replica first
    /// (0 to 300; keep it below the orchestrator's stop timeout).
    #[arg(long, env = "LEDGER_DRAIN_GRACE_SEC", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=300))]
    pub drain_grace_sec: u64,

    /// Address of the Prometheus listener (`GET /metrics`); none when
    /// unset.
    #[arg(long, env = "LEDGER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Shared token every call must carry (`authorization: Bearer ...`),
    /// except health and (unless `--reflection-needs-token`) reflection.
    /// Give the same value to the trader and the gateway. Never logged.
    #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true, value_parser = token_parser("LEDGER_TOKEN"))]
    pub token: Option<ServiceToken>,

    /// With `--token`, refuse reflection without the token too.
    #[arg(long, env = "LEDGER_REFLECTION_NEEDS_TOKEN")]
    pub reflection_needs_token: bool,

    /// PEM certificate chain to serve gRPC over TLS with (needs `--tls-key`).
    #[arg(long, env = "LEDGER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "LEDGER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA that `--check-health` trusts when the ledger serves TLS
    /// (the system's roots without it).
    #[arg(long, env = "LEDGER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Fault tests only: SIGKILL the ledger the NTH time it reaches POINT
    /// (`POINT[:NTH]`, see `crash_point`). Never set with real money.
    #[arg(long, env = "HEALGRID_CRASH_AT", hide = true, value_parser = crate::crash_point::parse)]
    pub crash_at: Option<crate::crash_point::CrashAt>,

    /// Do not serve: ask the ledger listening on `--listen` (on loopback
    /// when it listens on every address) for its `grpc.health.v1` status
    /// and exit 0 when SERVING, 1 otherwise. The container healthcheck.
    #[arg(long)]
    pub check_health: bool,
}

impl Config {
    /// Where a health check on this host reaches the server: `--listen`,
    /// with an unspecified address (`0.0.0.0`, `::`) replaced by loopback;
    /// over TLS (`https://localhost:PORT`, the name certificates carry)
    /// when the ledger serves TLS.
    #[must_use]
    pub fn local_endpoint(&self) -> String {
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            if self.tls_cert.is_some() {
                return format!("https://localhost:{}", addr.port());
            }
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }
}

/// `url` with its password hidden (`user:***@`, and a `password=` query
/// parameter), for logs and errors: a database URL may carry the only
/// secret of the deployment.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    if let Some((base, query)) = out.split_once('?') {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{base}?{}", params.join("&"));
    }
    out
}

impl Config {
    /// The token check and TLS of the gRPC listener (files read now).
    ///
    /// # Errors
    /// [`TlsError`] when the certificate or key cannot be used.
    pub fn security(&self) -> Result<ServerSecurity, TlsError> {
        let auth = RequireToken::new(self.token.clone(), self.reflection_needs_token);
        let files = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        ServerSecurity::new(auth, files)
    }

    /// How the ledger groups writes.
    pub fn batching(&self) -> crate::ledger::Batching {
        crate::ledger::Batching {
            max_in_flight: self.batch_in_flight,
            max_batch: self.batch_max,
            linger: std::time::Duration::from_micros(self.batch_linger_us),
        }
    }
}

fn default_linger_us() -> u64 {
    u64::try_from(crate::ledger::Batching::default().linger.as_micros()).unwrap_or(u64::MAX)
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
        assert_eq!(c.drain_grace_sec, 2);
        assert!(!c.check_health);
        assert_eq!(c.metrics_listen, None);
    }

    #[test]
    fn health_checks_reach_an_unspecified_listen_address_on_loopback() {
        let c = Config::try_parse_from(["ledger-service", "--listen", "0.0.0.0:50051"]).unwrap();
        assert_eq!(c.local_endpoint(), "http://127.0.0.1:50051");
        let c = Config::try_parse_from(["ledger-service", "--listen", "[::]:7"]).unwrap();
        assert_eq!(c.local_endpoint(), "http://[::1]:7");
        let c = Config::try_parse_from(["ledger-service", "--listen", "10.0.0.5:9"]).unwrap();
        assert_eq!(c.local_endpoint(), "http://10.0.0.5:9");
        let tls = ["--tls-cert", "c.pem", "--tls-key", "k.pem"];
        let c = Config::try_parse_from(
            ["ledger-service", "--listen", "0.0.0.0:7"]
                .into_iter()
                .chain(tls),
        )
        .unwrap();
        assert_eq!(c.local_endpoint(), "https://localhost:7");
    }

    #[test]
    fn the_batch_linger_defaults_to_a_millisecond_and_is_bounded() {
        let c = Config::try_parse_from(["ledger-service"]).unwrap();
        assert_eq!(c.batching().linger, std::time::Duration::from_millis(1));
        let c = Config::try_parse_from(["ledger-service", "--batch-linger-us", "0"]).unwrap();
        assert!(c.batching().linger.is_zero());
        for bad in ["100001", "-1", "soon"] {
            let e =
                Config::try_parse_from(["ledger-service", "--batch-linger-us", bad]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn a_drain_grace_beyond_five_minutes_is_refused() {
        let e = Config::try_parse_from(["ledger-service", "--drain-grace-sec", "301"]).unwrap_err();
        assert!(e.to_string().contains("301"), "{e}");
    }

    #[test]
    fn token_and_tls_flags_come_in_pairs_and_hide_the_token() {
        let e = Config::try_parse_from(["ledger-service", "--tls-cert", "c.pem"]).unwrap_err();
        assert!(e.to_string().contains("--tls-key"), "{e}");
        let e = Config::try_parse_from(["ledger-service", "--token", " "]).unwrap_err();
        assert!(
            e.to_string().contains("LEDGER_TOKEN is set but empty"),
            "{e}"
        );
        let c = Config::try_parse_from(["ledger-service", "--token", "s3cret"]).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(c.security().unwrap().auth.is_enabled());
    }

    #[test]
    fn database_passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite://ledger.db"), "sqlite://ledger.db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
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
