//! One error type for every exchange, classified by what the caller should do
//! next, so no caller ever string-matches an exchange message.

use std::time::Duration;

use thiserror::Error;

/// What went wrong, phrased as the action the caller should take.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExchangeError {
    /// A transient failure where the request certainly had no effect
    /// (or is idempotent): retry later.
    #[error("retryable: {message}")]
    Retryable {
        /// Exchange or transport message.
        message: String,
    },
    /// Too many requests: wait at least `retry_after` before the next call.
    #[error("rate limited (retry after {retry_after:?}): {message}")]
    RateLimited {
        /// Minimum wait before retrying.
        retry_after: Duration,
        /// Exchange message.
        message: String,
    },
    /// The account lacks the funds for this order: do not retry as is.
    #[error("insufficient funds: {message}")]
    InsufficientFunds {
        /// Exchange message.
        message: String,
    },
    /// The order is unknown or no longer open (filled, cancelled, expired):
    /// query it to learn its final state.
    #[error("unknown order: {message}")]
    UnknownOrder {
        /// Exchange message.
        message: String,
    },
    /// A post-only order would have taken liquidity and was rejected: reprice
    /// it further from the market.
    #[error("post-only order would cross: {message}")]
    PostOnlyWouldCross {
        /// Exchange message.
        message: String,
    },
    /// The pair's open-order limit is reached: cancel something first.
    #[error("open orders limit exceeded: {message}")]
    OrdersLimitExceeded {
        /// Exchange message.
        message: String,
    },
    /// An open order already carries this client order id: the order the
    /// caller is trying to place already exists, look it up.
    #[error("duplicate client order id: {message}")]
    DuplicateOrder {
        /// Exchange message.
        message: String,
    },
    /// Authentication failed (bad key, signature, nonce or permission):
    /// fix the configuration; retrying will not help.
    #[error("authentication failed: {message}")]
    Auth {
        /// Exchange message.
        message: String,
    },
    /// The request is malformed or violates the pair's rules (precision,
    /// minimums, unknown pair): fix the request, do not retry.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// Exchange message.
        message: String,
    },
    /// The order may or may not exist (timeout, 5xx, lost response) and the
    /// exchange could not be asked: reconcile before placing anything else.
    #[error("ambiguous outcome, the order may exist: {message}")]
    Ambiguous {
        /// What happened.
        message: String,
    },
}

/// The variant of an [`ExchangeError`] without its payload, for matching,
/// metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`ExchangeError::Retryable`].
    Retryable,
    /// See [`ExchangeError::RateLimited`].
    RateLimited,
    /// See [`ExchangeError::InsufficientFunds`].
    InsufficientFunds,
    /// See [`ExchangeError::UnknownOrder`].
    UnknownOrder,
    /// See [`ExchangeError::PostOnlyWouldCross`].
    PostOnlyWouldCross,
    /// See [`ExchangeError::OrdersLimitExceeded`].
    OrdersLimitExceeded,
    /// See [`ExchangeError::DuplicateOrder`].
    DuplicateOrder,
    /// See [`ExchangeError::Auth`].
    Auth,
    /// See [`ExchangeError::InvalidRequest`].
    InvalidRequest,
    /// See [`ExchangeError::Ambiguous`].
    Ambiguous,
}

impl ExchangeError {
    /// The payload-free kind.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Retryable { .. } => ErrorKind::Retryable,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::InsufficientFunds { .. } => ErrorKind::InsufficientFunds,
            Self::UnknownOrder { .. } => ErrorKind::UnknownOrder,
            Self::PostOnlyWouldCross { .. } => ErrorKind::PostOnlyWouldCross,
            Self::OrdersLimitExceeded { .. } => ErrorKind::OrdersLimitExceeded,
            Self::DuplicateOrder { .. } => ErrorKind::DuplicateOrder,
            Self::Auth { .. } => ErrorKind::Auth,
            Self::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Self::Ambiguous { .. } => ErrorKind::Ambiguous,
        }
    }

    /// True when an order may have been placed although the call failed.
    #[must_use]
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Ambiguous { .. })
    }

    /// True when the same call may simply be repeated later (after
    /// [`Self::retry_after`] if that is set).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. } | Self::RateLimited { .. })
    }

    /// How long to wait before retrying, when the exchange said so.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The human-readable message carried by every variant.
    #[must_use]
    pub fn message(&self) -> &str {
        match self {
            Self::Retryable { message }
            | Self::RateLimited { message, .. }
            | Self::InsufficientFunds { message }
            | Self::UnknownOrder { message }
            | Self::PostOnlyWouldCross { message }
            | Self::OrdersLimitExceeded { message }
            | Self::DuplicateOrder { message }
            | Self::Auth { message }
            | Self::InvalidRequest { message }
            | Self::Ambiguous { message } => message,
        }
    }

    /// Convenience constructor for [`Self::InvalidRequest`].
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_tell_the_caller_what_to_do() {
        let rl = ExchangeError::RateLimited {
            retry_after: Duration::from_secs(3),
            message: "EAPI:Rate limit exceeded".into(),
        };
        assert!(rl.is_retryable());
        assert_eq!(rl.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(rl.kind(), ErrorKind::RateLimited);
        let amb = ExchangeError::Ambiguous {
            message: "timeout".into(),
        };
        assert!(amb.is_ambiguous() && !amb.is_retryable());
        assert_eq!(amb.message(), "timeout");
        assert!(!ExchangeError::invalid("x").is_retryable());
    }
}
