//! Who may call actions: the bearer-token check (constant time) and the
//! policy when no token is configured. Reads never come here.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The configured bearer token. Its `Debug` never shows the value, so it
/// cannot leak into logs by accident.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token value.
    #[must_use]
    pub fn new(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// Constant-time comparison with what a client sent.
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Who may call actions (`POST`).
#[derive(Debug, Clone)]
pub enum ActionPolicy {
    /// Bearers of this token.
    Token(Token),
    /// Anyone: no token, but the gateway listens on loopback only.
    OpenOnLoopback,
    /// Nobody: no token and a non-loopback listener.
    Refused,
}

impl ActionPolicy {
    /// What the start-up log says about actions.
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Token(_) => "actions require the bearer token",
            Self::OpenOnLoopback => "no token configured: actions open on loopback",
            Self::Refused => "no token configured on a non-loopback address: actions refused (403)",
        }
    }

    /// Checks the `Authorization` header of an action.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] for a missing or wrong bearer token,
    /// [`ApiError::Forbidden`] when actions are refused altogether.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self {
            Self::OpenOnLoopback => Ok(()),
            Self::Refused => Err(ApiError::Forbidden(
                "actions are disabled: set GATEWAY_TOKEN (or GATEWAY_TOKEN_FILE) or listen on loopback"
                    .into(),
            )),
            Self::Token(token) => {
                let presented = headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .ok_or(ApiError::Unauthorized)?;
                if token.matches(presented) {
                    Ok(())
                } else {
                    Err(ApiError::Unauthorized)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    /// Proves: only the exact bearer token passes; the token's debug form
    /// hides it.
    #[test]
    fn bearer_token_checked() {
        let p = ActionPolicy::Token(Token::new("abc"));
        assert!(p.authorize(&headers(Some("Bearer abc"))).is_ok());
        for bad in [
            None,
            Some("Bearer abd"),
            Some("abc"),
            Some("Bearer abcd"),
            Some("Basic abc"),
        ] {
            assert!(
                matches!(p.authorize(&headers(bad)), Err(ApiError::Unauthorized)),
                "{bad:?}"
            );
        }
        assert!(!format!("{p:?}").contains("abc"));
        assert!(matches!(
            ActionPolicy::Refused.authorize(&headers(Some("Bearer abc"))),
            Err(ApiError::Forbidden(_))
        ));
        assert!(
            ActionPolicy::OpenOnLoopback
                .authorize(&headers(None))
                .is_ok()
        );
    }
}
