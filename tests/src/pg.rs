//! A uniquely named PostgreSQL schema per test, dropped afterwards, so tests
//! can run in parallel against one database without seeing each other.

use sqlx::{Connection, PgConnection};

/// Whether the environment demands that PostgreSQL tests run.
pub fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("HEALGRID_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The admin URL of the test database, or `None` (with a printed notice)
/// when PostgreSQL tests are to be skipped.
///
/// # Panics
/// When `DATABASE_URL` is unset but [`postgres_required`] is true.
pub fn database_url(test: &str) -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if postgres_required() => {
            panic!("{test}: DATABASE_URL is unset but CI=true or HEALGRID_REQUIRE_POSTGRES=1")
        }
        _ => {
            eprintln!("SKIPPED {test}: set DATABASE_URL to run the PostgreSQL tests");
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
}

impl TestSchema {
    /// Creates a schema named after `test`, or returns `None` when
    /// PostgreSQL tests are skipped (see [`database_url`]).
    pub async fn create(test: &str) -> Option<Self> {
        let admin_url = database_url(test)?;
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
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot connect to DATABASE_URL: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot create schema {name}: {e}"));
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options[search_path]={name}");
        Some(Self {
            url,
            name,
            admin_url,
        })
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
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
