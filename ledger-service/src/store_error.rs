//! The error type of the storage layer, in a leaf module of its own so the
//! domain's error can carry it without the domain importing the store.

/// Failures of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("database error during {op}: {source}")]
    Database {
        /// What the store was doing.
        op: &'static str,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// A unique constraint rejected an insert: a concurrent writer used the
    /// same idempotency key first.
    #[error("unique key taken during {op}")]
    Duplicate {
        /// What the store was doing.
        op: &'static str,
    },
    /// Running the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// Table of the row.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The write batch carrying a request ended without answering it (its
    /// task was stopped, e.g. by a runtime shutting down); whether the write
    /// committed is unknown, so the caller retries with the same key.
    #[error("the write batch ended without an answer; retry with the same key")]
    BatchLost,
    /// The database URL names no supported backend (the URL as shown has
    /// its password hidden).
    #[error("unsupported database url {0:?}: expected sqlite:... or postgres://...")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// Wraps a driver error, recognising unique violations.
    pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| match &source {
            sqlx::Error::Database(e) if e.is_unique_violation() => Self::Duplicate { op },
            _ => Self::Database { op, source },
        }
    }

    /// Whether the failure is the database being out of reach (pool
    /// exhausted or closed, connection or TLS lost, a batch stopped before
    /// answering), so the same request may well succeed when retried.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database { source, .. } => matches!(
                source,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            ),
            Self::BatchLost => true,
            _ => false,
        }
    }

    /// A value that could not be decoded.
    pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            table,
            reason: reason.into(),
        }
    }
}
