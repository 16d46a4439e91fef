//! Shared-token authentication between healgrid's services.
//!
//! A gRPC server started with a token ([`RequireToken`], a tower layer in
//! front of every service) answers `UNAUTHENTICATED` to any call that does
//! not carry `authorization: Bearer <token>`, except the health service
//! (orchestrators and load balancers probe it without credentials) and,
//! unless configured otherwise, reflection (it only describes the public
//! contract). Clients add the header with [`ClientAuth`].
//!
//! The token is compared in constant time, and it is never printed: its
//! `Debug` is redacted and no error or log line carries it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use subtle::ConstantTimeEq;
use tonic::codegen::http;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::{Request, Status};

/// Path prefix of `grpc.health.v1`: always reachable without a token.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";
/// Path prefixes of server reflection (v1 and v1alpha).
const REFLECTION_PREFIXES: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Why a token setting cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Empty (or only blanks): a forgotten value must not disable auth
    /// silently nor make every call fail.
    #[error("{name} is set but empty")]
    Empty {
        /// The setting's environment variable.
        name: &'static str,
    },
    /// Not printable ASCII, so it cannot travel in a gRPC header.
    #[error("{name} must be printable ASCII without spaces (it travels in a header)")]
    NotAscii {
        /// The setting's environment variable.
        name: &'static str,
    },
}

/// A shared secret between a service and its clients. Its `Debug` never
/// shows the value.
#[derive(Clone)]
pub struct ServiceToken {
    /// The setting it came from (`LEDGER_TOKEN`), for messages.
    name: &'static str,
    secret: Arc<str>,
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceToken({}: <redacted>)", self.name)
    }
}

impl ServiceToken {
    /// The token of setting `name` (its environment variable).
    ///
    /// # Errors
    /// [`TokenError`] when the value is empty or cannot be sent in a header.
    pub fn new(name: &'static str, value: &str) -> Result<Self, TokenError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(TokenError::Empty { name });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotAscii { name });
        }
        Ok(Self {
            name,
            secret: value.into(),
        })
    }

    /// The setting the token came from.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether `presented` is this token, in time independent of where
    /// they differ (a length difference alone is not secret).
    fn matches(&self, presented: &[u8]) -> bool {
        self.secret.as_bytes().ct_eq(presented).into()
    }

    fn header_value(&self) -> AsciiMetadataValue {
        // `new` admits printable ASCII only, which always parses.
        MetadataValue::try_from(format!("Bearer {}", self.secret))
            .unwrap_or_else(|_| MetadataValue::from_static(""))
    }
}

/// A clap value parser for the token setting `name` (its environment
/// variable), so an empty or non-ASCII token is refused at parse time.
pub fn token_parser(
    name: &'static str,
) -> impl Fn(&str) -> Result<ServiceToken, TokenError> + Clone + Send + Sync + 'static {
    move |value| ServiceToken::new(name, value)
}

/// What a server started with a token lets through (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct RequireToken {
    token: Option<ServiceToken>,
    reflection_needs_token: bool,
}

impl RequireToken {
    /// Checks `token` when given; without one every call passes. Health is
    /// always open; reflection is too unless `reflection_needs_token`.
    #[must_use]
    pub fn new(token: Option<ServiceToken>, reflection_needs_token: bool) -> Self {
        Self {
            token,
            reflection_needs_token,
        }
    }

    /// Whether a token is required at all.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// The decision for one call: the gRPC `path` and the `authorization`
    /// header it carried.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` naming what is missing or wrong (never the token).
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        if path.starts_with(HEALTH_PREFIX)
            || (!self.reflection_needs_token
                && REFLECTION_PREFIXES.iter().any(|p| path.starts_with(p)))
        {
            return Ok(());
        }
        let Some(header) = authorization else {
            return Err(Status::unauthenticated(format!(
                "this service requires a token: send `authorization: Bearer <{}>`",
                token.name
            )));
        };
        match header.strip_prefix(b"Bearer ") {
            Some(presented) if token.matches(presented) => Ok(()),
            Some(_) => Err(Status::unauthenticated(format!(
                "the bearer token does not match {}",
                token.name
            ))),
            None => Err(Status::unauthenticated(
                "the authorization header must be `Bearer <token>`",
            )),
        }
    }
}

impl<S> tower::Layer<S> for RequireToken {
    type Service = RequireTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireTokenService {
            inner,
            policy: self.clone(),
        }
    }
}

/// The service [`RequireToken`] wraps around a gRPC server's routes.
#[derive(Debug, Clone)]
pub struct RequireTokenService<S> {
    inner: S,
    policy: RequireToken,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for RequireTokenService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(http::HeaderValue::as_bytes);
        match self.policy.check(request.uri().path(), authorization) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(status) => {
                tracing::warn!(
                    path = request.uri().path(),
                    reason = status.message(),
                    "call refused: UNAUTHENTICATED"
                );
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// A client's side: adds `authorization: Bearer <token>` to every call when
/// a token is configured (use with `ServiceClient::with_interceptor`).
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    header: Option<AsciiMetadataValue>,
}

impl ClientAuth {
    /// Sends `token` when given, nothing otherwise.
    #[must_use]
    pub fn new(token: Option<&ServiceToken>) -> Self {
        Self {
            header: token.map(ServiceToken::header_value),
        }
    }
}

impl tonic::service::Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry [`ClientAuth`]'s header.
pub type AuthChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClientAuth>;

/// The loud warning a server must log when it listens beyond loopback
/// without a token (anyone who reaches the port may call it), or `None`.
#[must_use]
pub fn exposure_warning(
    service: &str,
    listen: SocketAddr,
    auth: &RequireToken,
    token_setting: &str,
) -> Option<String> {
    if listen.ip().is_loopback() || auth.is_enabled() {
        return None;
    }
    Some(format!(
        "!!! {service} LISTENS ON {listen} (NOT LOOPBACK) WITHOUT A TOKEN: anyone who can \
         reach this address can call it; set {token_setting} (and TLS) or bind 127.0.0.1 !!!"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(v: &str) -> ServiceToken {
        ServiceToken::new("LEDGER_TOKEN", v).unwrap()
    }

    #[test]
    fn empty_or_unprintable_tokens_are_refused() {
        assert_eq!(
            ServiceToken::new("T", "  ").unwrap_err(),
            TokenError::Empty { name: "T" }
        );
        assert_eq!(
            ServiceToken::new("T", "a b").unwrap_err(),
            TokenError::NotAscii { name: "T" }
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let shown = format!("{:?}", RequireToken::new(Some(token("s3cret")), false));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn calls_need_the_right_bearer_token_but_health_and_reflection_pass() {
        let auth = RequireToken::new(Some(token("s3cret")), false);
        let call = "/healgrid.ledger.v1.LedgerService/OpenPosition";
        assert!(auth.check(call, Some(b"Bearer s3cret")).is_ok());
        for bad in [None, Some(&b"Bearer s3cre"[..]), Some(b"s3cret")] {
            let e = auth.check(call, bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
            assert!(!e.message().contains("s3cret"), "{}", e.message());
        }
        assert!(auth.check("/grpc.health.v1.Health/Check", None).is_ok());
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert!(auth.check(reflection, None).is_ok());
        let closed = RequireToken::new(Some(token("s3cret")), true);
        assert!(closed.check(reflection, None).is_err());
        assert!(RequireToken::default().check(call, None).is_ok());
    }

    #[test]
    fn only_an_exposed_bind_without_a_token_warns() {
        let open = RequireToken::default();
        let locked = RequireToken::new(Some(token("x")), false);
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(exposure_warning("ledger", lo, &open, "LEDGER_TOKEN").is_none());
        assert!(exposure_warning("ledger", any, &locked, "LEDGER_TOKEN").is_none());
        let w = exposure_warning("ledger", any, &open, "LEDGER_TOKEN").unwrap();
        assert!(
            w.contains("NOT LOOPBACK") && w.contains("LEDGER_TOKEN"),
            "{w}"
        );
    }
}
