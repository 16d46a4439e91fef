//! Optional TLS on healgrid's gRPC listeners and clients (rustls).
//!
//! A server given a certificate and key ([`ServerSecurity`]) serves only
//! TLS; a client uses TLS for `https://` URLs, trusting the CA file it is
//! given ([`ClientTls`]) or the system's roots without one. Files are read
//! and checked at start-up, so a wrong path or a file that is not PEM is a
//! one-line configuration error, not a failure at the first call.

use std::path::{Path, PathBuf};

use tonic::transport::server::Server;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tower::layer::util::{Identity as NoLayer, Stack};

use crate::auth::RequireToken;

/// A server builder with `L` outermost, then the token check, then the
/// routes.
pub type SecuredServer<L> = Server<Stack<RequireToken, Stack<L, NoLayer>>>;

/// Why a TLS setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{setting} {path}: {source}")]
    Read {
        /// The flag naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no PEM certificate, or the certificate and key do not
    /// make a usable identity.
    #[error("{setting} {path}: {message}")]
    Invalid {
        /// The flag naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A CA is given for a URL that is not `https://`: the connection would
    /// silently go unencrypted.
    #[error("{setting} is set but {url} is not https://; use an https:// URL")]
    PlainUrl {
        /// The CA flag.
        setting: &'static str,
        /// The URL.
        url: String,
    },
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: path.to_owned(),
        source,
    })
}

fn require_certificate(setting: &'static str, path: &Path, pem: &[u8]) -> Result<(), TlsError> {
    if String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
        Ok(())
    } else {
        Err(TlsError::Invalid {
            setting,
            path: path.to_owned(),
            message: "holds no PEM certificate".into(),
        })
    }
}

/// How a gRPC server is protected: the token check (see
/// [`crate::auth`]) and TLS.
#[derive(Debug, Clone, Default)]
pub struct ServerSecurity {
    /// Which calls need a token.
    pub auth: RequireToken,
    /// The certificate and key served, when TLS is on.
    pub tls: Option<ServerTlsConfig>,
}

impl ServerSecurity {
    /// `auth`, plus TLS when `cert_and_key` names the PEM certificate chain
    /// and private key files (read and checked now).
    ///
    /// # Errors
    /// [`TlsError`] when a file cannot be read or they make no identity.
    pub fn new(auth: RequireToken, cert_and_key: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let Some((cert_path, key_path)) = cert_and_key else {
            return Ok(Self { auth, tls: None });
        };
        let cert = read("--tls-cert", cert_path)?;
        require_certificate("--tls-cert", cert_path, &cert)?;
        let key = read("--tls-key", key_path)?;
        let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        // Building the acceptor parses both files: do it now, not at serve.
        Server::builder()
            .tls_config(tls.clone())
            .map_err(|e| TlsError::Invalid {
                setting: "--tls-key",
                path: key_path.to_owned(),
                message: format!(
                    "does not match a usable key for {}: {}",
                    cert_path.display(),
                    error_chain(&e)
                ),
            })?;
        Ok(Self {
            auth,
            tls: Some(tls),
        })
    }

    /// A server builder with TLS (when on) and the token layer in front of
    /// every route.
    ///
    /// # Errors
    /// The transport's error when the TLS identity is unusable (already
    /// checked by [`Self::new`]).
    pub fn server(&self) -> Result<SecuredServer<NoLayer>, tonic::transport::Error> {
        self.server_with(NoLayer::new())
    }

    /// Like [`Self::server`], with `outer` around the token layer, so it
    /// sees every call, refused ones included (a metrics layer counts an
    /// `UNAUTHENTICATED` like any other code).
    ///
    /// # Errors
    /// As [`Self::server`].
    pub fn server_with<L>(&self, outer: L) -> Result<SecuredServer<L>, tonic::transport::Error> {
        let mut builder = Server::builder();
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(tls.clone())?;
        }
        Ok(builder.layer(outer).layer(self.auth.clone()))
    }

    /// `"tls"` or `"plaintext"`, for the start-up log.
    #[must_use]
    pub fn transport(&self) -> &'static str {
        if self.tls.is_some() {
            "tls"
        } else {
            "plaintext"
        }
    }
}

/// A client's TLS settings: the CA to trust for `https://` URLs (the
/// system's roots when none is given).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    ca: Option<Certificate>,
    setting: &'static str,
}

impl ClientTls {
    /// Trusts the PEM CA file `ca` (flag `setting`) when given.
    ///
    /// # Errors
    /// [`TlsError`] when the file cannot be read or holds no certificate.
    pub fn new(setting: &'static str, ca: Option<&Path>) -> Result<Self, TlsError> {
        let ca = match ca {
            Some(path) => {
                let pem = read(setting, path)?;
                require_certificate(setting, path, &pem)?;
                Some(Certificate::from_pem(pem))
            }
            None => None,
        };
        Ok(Self { ca, setting })
    }

    /// Refuses a CA given for a plaintext URL (see [`TlsError::PlainUrl`]).
    ///
    /// # Errors
    /// [`TlsError::PlainUrl`].
    pub fn check_url(&self, url: &str) -> Result<(), TlsError> {
        if self.ca.is_some() && !url.trim_start().starts_with("https://") {
            return Err(TlsError::PlainUrl {
                setting: self.setting,
                url: url.to_owned(),
            });
        }
        Ok(())
    }

    /// `endpoint` with TLS when its URL is `https://`, verifying the
    /// server's certificate for `domain` (by default the URL's host).
    ///
    /// # Errors
    /// The transport's error when TLS cannot be configured (no CA given
    /// and the system has no roots).
    pub fn apply(
        &self,
        endpoint: Endpoint,
        domain: Option<&str>,
    ) -> Result<Endpoint, tonic::transport::Error> {
        if endpoint.uri().scheme_str() != Some("https") {
            return Ok(endpoint);
        }
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(ca) => config.ca_certificate(ca.clone()),
            None => config.with_native_roots(),
        };
        if let Some(domain) = domain {
            config = config.domain_name(domain);
        }
        endpoint.tls_config(config)
    }
}

/// An error and its sources on one line (tonic's transport error says
/// only "transport error" at the top).
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_pem_files_are_named() {
        let e = ClientTls::new("--tls-ca", Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(
            e.to_string().starts_with("--tls-ca /nonexistent/ca.pem"),
            "{e}"
        );
        let file = std::env::temp_dir().join(format!("healgrid-not-pem-{}", std::process::id()));
        std::fs::write(&file, "hello").unwrap();
        let e = ClientTls::new("--tls-ca", Some(&file)).unwrap_err();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let e = ServerSecurity::new(RequireToken::default(), Some((&file, &file))).unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn plaintext_urls_pass_through_and_a_ca_for_one_is_refused() {
        let none = ClientTls::default();
        assert!(none.check_url("http://a:1").is_ok());
        let ep = Endpoint::from_static("http://127.0.0.1:1");
        assert!(none.apply(ep, None).is_ok());
        let with_ca = ClientTls {
            ca: Some(Certificate::from_pem("x")),
            setting: "--tls-ca",
        };
        let e = with_ca.check_url("http://a:1").unwrap_err();
        assert!(e.to_string().contains("not https://"), "{e}");
        assert!(with_ca.check_url("https://a:1").is_ok());
    }
}
