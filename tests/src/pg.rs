//! A uniquely named PostgreSQL schema per test, dropped afterwards, so tests
//! can run in parallel against one database without seeing each other; and
//! private clusters for tests that take the server itself down.

pub mod cluster;

use sqlx::{Connection, PgConnection};

/// Whether the environment demands that PostgreSQL tests run.
pub fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("HEALGRID_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// What a PostgreSQL test does when `what` is missing: prints a `SKIPPED`
/// notice (the caller then returns), or fails when [`postgres_required`]
/// is true, so CI never skips one silently.
///
/// # Panics
/// When [`postgres_required`] is true.
pub fn skip(test: &str, what: &str) {
    assert!(
        !postgres_required(),
        "{test}: {what} is missing but CI=true or HEALGRID_REQUIRE_POSTGRES=1"
    );
    eprintln!("SKIPPED {test}: {what} is missing; the PostgreSQL tests need it");
}

/// The admin URL of the test database, or `None` (with a printed notice)
/// when PostgreSQL tests are to be skipped.
///
/// # Panics
/// When `DATABASE_URL` is unset but [`postgres_required`] is true.
pub fn database_url(test: &str) -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip(test, "DATABASE_URL");
            None
        }
    }
}

/// A fresh schema; `url` connects with `search_path` set to it.
#[derive(Debug)]
pub struct TestSchema {
    /// Connection URL whose sessions use only this schema.
    pub url: String,
    /// The schema's name.
    pub name: String,
    admin_url: String,
    /// Not dropped when true.
    keep: bool,
}

impl TestSchema {
    /// Creates a schema named after `test`, or returns `None` when
    /// PostgreSQL tests are skipped (see [`database_url`]).
    ///
    /// # Panics
    /// When the database cannot be reached or refuses the schema.
    pub async fn create(test: &str) -> Option<Self> {
        Some(Self::create_in(&database_url(test)?, test).await)
    }

    /// Creates a schema named after `test` in the database at `admin_url`.
    ///
    /// # Panics
    /// When the database cannot be reached or refuses the schema.
    pub async fn create_in(admin_url: &str, test: &str) -> Self {
        let tag: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let name = format!("hg_{tag}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot connect to DATABASE_URL: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot create schema {name}: {e}"));
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options[search_path]={name}");
        Self {
            url,
            name,
            admin_url: admin_url.to_owned(),
            keep: false,
        }
    }

    /// Leaves the schema in place when dropped (a failing run's data, to
    /// be looked at); its name.
    pub fn keep(mut self) -> String {
        self.keep = true;
        self.name.clone()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Drop runs outside any async context guarantee, so clean up on a
        // private runtime in a helper thread.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        });
        let _ = cleanup.join();
    }
}
