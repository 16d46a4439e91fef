//! The trader's security settings: the token and TLS of its own control
//! API, and the token and CA it uses towards the ledger.

use std::path::PathBuf;

use clap::Args;
use healgrid_proto::auth::{RequireToken, ServiceToken, token_parser};
use healgrid_proto::tls::{ClientTls, ServerSecurity, TlsError};

/// Token and TLS settings of `trader-service run`.
#[derive(Debug, Clone, Default, Args)]
pub struct SecurityArgs {
    /// Shared token every control API call must carry (`authorization:
    /// Bearer ...`), except health and (unless
    /// `--reflection-needs-token`) reflection. Never logged.
    #[arg(long = "token", env = "TRADER_TOKEN", hide_env_values = true, value_parser = token_parser("TRADER_TOKEN"))]
    pub token: Option<ServiceToken>,
    /// With `--token`, refuse reflection without the token too.
    #[arg(long, env = "TRADER_REFLECTION_NEEDS_TOKEN")]
    pub reflection_needs_token: bool,
    /// PEM certificate chain to serve the control API over TLS with (needs
    /// `--tls-key`).
    #[arg(long, env = "TRADER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "TRADER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The ledger's token (its `LEDGER_TOKEN`), sent with every ledger call.
    #[arg(long, env = "LEDGER_TOKEN", hide_env_values = true, value_parser = token_parser("LEDGER_TOKEN"))]
    pub ledger_token: Option<ServiceToken>,
    /// PEM CA that signed the ledger's certificate, for `https://` ledger
    /// URLs (the system's roots without it).
    #[arg(long, env = "LEDGER_TLS_CA")]
    pub ledger_tls_ca: Option<PathBuf>,
}

impl SecurityArgs {
    /// The control API's token check and TLS (files read now).
    ///
    /// # Errors
    /// [`TlsError`] when the certificate or key cannot be used.
    pub fn server(&self) -> Result<ServerSecurity, TlsError> {
        let auth = RequireToken::new(self.token.clone(), self.reflection_needs_token);
        let files = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        ServerSecurity::new(auth, files)
    }

    /// TLS towards the ledger (the CA file read now).
    ///
    /// # Errors
    /// [`TlsError`] when the CA file cannot be used.
    pub fn ledger_tls(&self) -> Result<ClientTls, TlsError> {
        ClientTls::new("--ledger-tls-ca", self.ledger_tls_ca.as_deref())
    }
}
