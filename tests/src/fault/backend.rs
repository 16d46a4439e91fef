//! Where a scenario's ledger keeps its journal: a SQLite file of the round,
//! a fresh schema of the shared PostgreSQL (`DATABASE_URL`), or a fresh
//! schema of a private cluster the scenario restarts under load (never the
//! shared one: other tests are using it).

use std::path::Path;

use crate::pg::cluster::{ClusterError, PgCluster};
use crate::pg::{self, TestSchema};

/// The database server of one scenario, for all its rounds.
#[derive(Debug)]
pub enum Backend {
    /// A SQLite file in each round's directory.
    Sqlite,
    /// The shared PostgreSQL; its admin URL.
    SharedPostgres(String),
    /// A private cluster, started for this scenario.
    PrivateCluster(PgCluster),
}

/// Which kind of [`Backend`] a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// [`Backend::Sqlite`].
    Sqlite,
    /// [`Backend::SharedPostgres`].
    SharedPostgres,
    /// [`Backend::PrivateCluster`].
    PrivateCluster,
}

impl Backend {
    /// Sets up a backend of `kind` for the scenario `test`; `None` (with a
    /// printed `SKIPPED` notice) when PostgreSQL is missing here, see
    /// [`pg::skip`].
    ///
    /// # Panics
    /// When PostgreSQL is missing but required, or the private cluster
    /// does not come up.
    pub async fn prepare(kind: BackendKind, test: &str) -> Option<Self> {
        match kind {
            BackendKind::Sqlite => Some(Self::Sqlite),
            BackendKind::SharedPostgres => pg::database_url(test).map(Self::SharedPostgres),
            BackendKind::PrivateCluster => match PgCluster::init().await {
                Ok(mut cluster) => {
                    cluster
                        .start()
                        .await
                        .unwrap_or_else(|e| panic!("{test}: starting a private cluster: {e}"));
                    Some(Self::PrivateCluster(cluster))
                }
                Err(ClusterError::NoServerPrograms) => {
                    pg::skip(
                        test,
                        "PostgreSQL's server programs (/usr/lib/postgresql/*/bin)",
                    );
                    None
                }
                Err(e) => panic!("{test}: setting up a private cluster: {e}"),
            },
        }
    }

    /// A fresh database for one round of `test`, whose files live in `dir`.
    ///
    /// # Panics
    /// When the PostgreSQL server refuses a new schema.
    pub async fn round_database(&self, dir: &Path, test: &str) -> RoundDatabase {
        let schema = match self {
            Self::Sqlite => {
                let url = format!("sqlite://{}", dir.join("ledger.db").display());
                return RoundDatabase { url, schema: None };
            }
            Self::SharedPostgres(admin_url) => TestSchema::create_in(admin_url, test).await,
            Self::PrivateCluster(cluster) => TestSchema::create_in(&cluster.url(), test).await,
        };
        RoundDatabase {
            url: schema.url.clone(),
            schema: Some(schema),
        }
    }

    /// The private cluster, when this backend is one.
    pub fn cluster(&mut self) -> Option<&mut PgCluster> {
        match self {
            Self::PrivateCluster(cluster) => Some(cluster),
            _ => None,
        }
    }

    /// Keeps what a failing run leaves for a look: the private cluster's
    /// directory (data and server log). Prints where it is.
    pub fn keep(&mut self, test: &str) {
        if let Self::PrivateCluster(cluster) = self {
            eprintln!(
                "{test}: PostgreSQL cluster kept in {}",
                cluster.keep().display()
            );
        }
    }
}

/// The database of one round: its URL, and the schema to drop afterwards
/// (PostgreSQL).
#[derive(Debug)]
pub struct RoundDatabase {
    /// The ledger's `LEDGER_DATABASE_URL`.
    pub url: String,
    schema: Option<TestSchema>,
}

impl RoundDatabase {
    /// Leaves the round's schema in place (a failing round's journal);
    /// prints its name.
    pub fn keep(mut self, test: &str) {
        if let Some(schema) = self.schema.take() {
            eprintln!("{test}: ledger schema kept: {}", schema.keep());
        }
    }
}
