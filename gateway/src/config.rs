//! Command-line and environment configuration (flags win over environment),
//! and the action policy it implies (token, loopback or refused).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use healgrid_proto::auth::{ServiceToken, token_parser};

use crate::auth::{ActionPolicy, Token};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// healgrid gateway: REST API and operator dashboard over the trader and
/// ledger gRPC APIs.
#[derive(Clone, Parser)]
#[command(name = "gateway", version, about)]
pub struct Config {
    /// Address to serve HTTP on (dashboard, `/api/v1`, `/healthz`, `/metrics`).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The trader's gRPC control API.
    #[arg(long, env = "TRADER_URL", default_value = "http://127.0.0.1:50052")]
    pub trader_url: String,

    /// The ledger's gRPC API.
    #[arg(long, env = "LEDGER_URL", default_value = "http://127.0.0.1:50051")]
    pub ledger_url: String,

    /// The ledger's bot id; by default the one the trader reports (needed to
    /// read the ledger while the trader is down).
    #[arg(long, env = "BOT_ID")]
    pub bot_id: Option<String>,

    /// Deadline of every gRPC call, milliseconds.
    #[arg(long, env = "GATEWAY_RPC_DEADLINE_MS", default_value_t = 2000)]
    pub rpc_deadline_ms: u64,

    /// Largest request body accepted, bytes (1 KiB .. 16 MiB); larger ones
    /// are refused with 413.
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = crate::limits::RequestLimits::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Longest a client may take to send its request headers, and then its
    /// body, milliseconds (100 .. 600000): slower headers close the
    /// connection, a slower body is refused with 408.
    #[arg(long, env = "GATEWAY_CLIENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub client_timeout_ms: u64,

    /// Bearer token that actions (POST) require. Never logged.
    #[arg(long = "token", env = "GATEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// File holding the bearer token (trailing newline ignored); exclusive
    /// with `GATEWAY_TOKEN`.
    #[arg(long, env = "GATEWAY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Log format; verbosity comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Tokens and CAs towards the trader and the ledger.
    #[command(flatten)]
    pub backend_security: BackendSecurityArgs,

    /// Do not serve: GET `/healthz` of the gateway listening on `--listen`
    /// (on loopback when it listens on every address) and exit 0 on
    /// `200 OK`, 1 otherwise. The container healthcheck.
    #[arg(long)]
    pub check_health: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("trader_url", &self.trader_url)
            .field("ledger_url", &self.ledger_url)
            .field("bot_id", &self.bot_id)
            .field("rpc_deadline_ms", &self.rpc_deadline_ms)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("client_timeout_ms", &self.client_timeout_ms)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("log_format", &self.log_format)
            .field("check_health", &self.check_health)
            .field("backend_security", &self.backend_security)
            .finish()
    }
}

/// How the gateway reaches its backends: the token each requires and the
/// CA that signed each one's certificate (for `https://` URLs). The tokens'
/// `Debug` is redacted.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackendSecurityArgs {
    /// The trader's token (its `TRADER_TOKEN`), sent with every trader call.
    #[arg(long, env = "TRADER_TOKEN", hide_env_values = true,
          value_parser = token_parser("TRADER_TOKEN"))]
    pub trader_token: Option<ServiceToken>,
    /// The ledger's token (its `LEDGER_TOKEN`), sent with every ledger call.
    #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true,
          value_parser = token_parser("LEDGER_TOKEN"))]
    pub ledger_token: Option<ServiceToken>,
    /// PEM CA of the trader's certificate, for an `https://` TRADER_URL.
    #[arg(long, env = "TRADER_TLS_CA")]
    pub trader_tls_ca: Option<PathBuf>,
    /// PEM CA of the ledger's certificate, for an `https://` LEDGER_URL.
    #[arg(long, env = "LEDGER_TLS_CA")]
    pub ledger_tls_ca: Option<PathBuf>,
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Both token sources were given.
    #[error("set GATEWAY_TOKEN or GATEWAY_TOKEN_FILE, not both")]
    TwoTokens,
    /// The token file could not be read.
    #[error("reading the token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty (after trimming the file's trailing newline).
    #[error("the gateway token is empty")]
    EmptyToken,
    /// The deadline is zero.
    #[error("--rpc-deadline-ms must be at least 1")]
    ZeroDeadline,
    /// A request limit outside its range.
    #[error("{setting} must be between {min} and {max}, got {got}")]
    LimitOutOfRange {
        /// The setting's environment variable.
        setting: &'static str,
        /// Lowest allowed.
        min: u64,
        /// Highest allowed.
        max: u64,
        /// What was given.
        got: u64,
    },
}

impl Config {
    /// Deadline of every gRPC call.
    ///
    /// # Errors
    /// [`ConfigError::ZeroDeadline`].
    pub fn rpc_deadline(&self) -> Result<Duration, ConfigError> {
        if self.rpc_deadline_ms == 0 {
            return Err(ConfigError::ZeroDeadline);
        }
        Ok(Duration::from_millis(self.rpc_deadline_ms))
    }

    /// Body size and arrival limits of every request.
    ///
    /// # Errors
    /// [`ConfigError::LimitOutOfRange`].
    pub fn request_limits(&self) -> Result<crate::limits::RequestLimits, ConfigError> {
        let within = |setting, got: u64, min: u64, max: u64| {
            if (min..=max).contains(&got) {
                Ok(got)
            } else {
                Err(ConfigError::LimitOutOfRange {
                    setting,
                    min,
                    max,
                    got,
                })
            }
        };
        let bytes = within(
            "GATEWAY_MAX_BODY_BYTES",
            self.max_body_bytes as u64,
            1024,
            16 << 20,
        )?;
        let ms = within(
            "GATEWAY_CLIENT_TIMEOUT_MS",
            self.client_timeout_ms,
            100,
            600_000,
        )?;
        Ok(crate::limits::RequestLimits {
            max_body_bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
            client_timeout: Duration::from_millis(ms),
        })
    }

    /// Who may act: with a token, its bearers; without one, anyone when the
    /// gateway listens on loopback, nobody otherwise.
    ///
    /// # Errors
    /// Two token sources, an unreadable file or an empty token.
    pub fn action_policy(&self) -> Result<ActionPolicy, ConfigError> {
        let token =
            match (&self.token, &self.token_file) {
                (Some(_), Some(_)) => return Err(ConfigError::TwoTokens),
                (Some(t), None) => Some(t.clone()),
                (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|source| {
                    ConfigError::TokenFile {
                        path: path.clone(),
                        source,
                    }
                })?),
                (None, None) => None,
            };
        match token {
            Some(t) => {
                let t = t.trim_end_matches(['\r', '\n']);
                if t.is_empty() {
                    return Err(ConfigError::EmptyToken);
                }
                Ok(ActionPolicy::Token(Token::new(t)))
            }
            None if self.listen.ip().is_loopback() => Ok(ActionPolicy::OpenOnLoopback),
            None => Ok(ActionPolicy::Refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["gateway"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap()
    }

    /// Proves: the request limits default to 64 KiB and 10 s, and a limit
    /// outside its range is refused naming the setting.
    #[test]
    fn request_limits_default_and_bounds() {
        let l = parse(&[]).request_limits().unwrap();
        assert_eq!(l, crate::limits::RequestLimits::default());
        assert_eq!(l.max_body_bytes, 65_536);
        assert_eq!(l.client_timeout, Duration::from_secs(10));
        for (flag, value, setting) in [
            ("--max-body-bytes", "0", "GATEWAY_MAX_BODY_BYTES"),
            ("--max-body-bytes", "1023", "GATEWAY_MAX_BODY_BYTES"),
            ("--max-body-bytes", "16777217", "GATEWAY_MAX_BODY_BYTES"),
            ("--client-timeout-ms", "99", "GATEWAY_CLIENT_TIMEOUT_MS"),
            ("--client-timeout-ms", "600001", "GATEWAY_CLIENT_TIMEOUT_MS"),
        ] {
            let e = parse(&[flag, value])
                .request_limits()
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(setting) && e.contains(value), "{e}");
        }
        let l = parse(&["--max-body-bytes", "1024", "--client-timeout-ms", "100"])
            .request_limits()
            .unwrap();
        assert_eq!(l.max_body_bytes, 1024);
        assert_eq!(l.client_timeout, Duration::from_millis(100));
    }

    /// Proves: defaults match SPEC §14 and a loopback gateway without a
    /// token lets actions through, a public one refuses them.
    #[test]
    fn defaults_and_policy() {
        let c = parse(&[]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.trader_url, "http://127.0.0.1:50052");
        assert_eq!(c.ledger_url, "http://127.0.0.1:50051");
        assert!(matches!(
            c.action_policy().unwrap(),
            ActionPolicy::OpenOnLoopback
        ));
        let c = parse(&["--listen", "0.0.0.0:8080"]);
        assert!(matches!(c.action_policy().unwrap(), ActionPolicy::Refused));
        let c = parse(&["--listen", "0.0.0.0:8080", "--token", "s3cret"]);
        assert!(matches!(c.action_policy().unwrap(), ActionPolicy::Token(_)));
    }

    /// Proves: a bad token setting is refused with a clear error, and the
    /// token never shows in the config's debug output.
    #[test]
    fn bad_tokens_are_refused_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "\n").unwrap();
        let f = file.to_str().unwrap();
        assert!(matches!(
            parse(&["--token-file", f]).action_policy(),
            Err(ConfigError::EmptyToken)
        ));
        assert!(matches!(
            parse(&["--token", "a", "--token-file", f]).action_policy(),
            Err(ConfigError::TwoTokens)
        ));
        assert!(matches!(
            parse(&["--token-file", "/nonexistent/token"]).action_policy(),
            Err(ConfigError::TokenFile { .. })
        ));
        std::fs::write(&file, "from-file\n").unwrap();
        assert!(matches!(
            parse(&["--token-file", f]).action_policy(),
            Ok(ActionPolicy::Token(_))
        ));
        let c = parse(&["--token", "very-secret-token"]);
        assert!(!format!("{c:?}").contains("very-secret-token"));
        assert!(matches!(
            parse(&["--rpc-deadline-ms", "0"]).rpc_deadline(),
            Err(ConfigError::ZeroDeadline)
        ));
    }
}
