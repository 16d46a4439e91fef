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
    /// exhausted or closed, connection or TLS lost, the server shutting
    /// down or starting up, a batch stopped before answering), so the same
    /// request may well succeed when retried, here or on another replica.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database {
                source: sqlx::Error::Database(e),
                ..
            } => e.code().as_deref().is_some_and(server_unavailable),
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

/// PostgreSQL SQLSTATEs of a server that cannot serve right now: class 08
/// (connection exception) and class 57P (the server shutting down, crashed
/// or still starting: `57P01` admin_shutdown, `57P02` crash_shutdown,
/// `57P03` cannot_connect_now). A query cut off by a restart fails with
/// one of these, not with an I/O error, and must read as the database out
/// of reach (UNAVAILABLE: the caller retries, or fails over to another
/// replica) rather than as an internal error.
fn server_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || sqlstate.starts_with("57P")
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// Proves: connection-exception and shutdown SQLSTATEs are transient,
    /// constraint and syntax errors are not.
    #[test]
    fn server_states_that_pass_are_transient() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03"] {
            assert!(server_unavailable(code), "{code}");
        }
        for code in ["23505", "42601", "40001", "57014"] {
            assert!(!server_unavailable(code), "{code}");
        }
    }

    /// Proves, on a real PostgreSQL server: a session the server
    /// terminates (what a restart does to every open connection) fails
    /// with an error the store reads as transient.
    #[tokio::test]
    async fn a_terminated_postgres_session_is_transient() {
        let Some(url) =
            healgrid_tests::pg::database_url("a_terminated_postgres_session_is_transient")
        else {
            return;
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let err = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")
            .execute(&mut conn)
            .await
            .expect_err("the server ends the session");
        let err = StoreError::db("terminate")(err);
        assert!(
            matches!(&err, StoreError::Database { source: sqlx::Error::Database(e), .. }
                if e.code().as_deref() == Some("57P01")),
            "the server says why: {err:?}"
        );
        assert!(err.is_transient(), "{err:?}");
    }
}
