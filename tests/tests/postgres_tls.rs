//! The ledger over TLS to PostgreSQL, the way Supabase is reached: a
//! private throwaway PostgreSQL cluster ([`PgCluster`]) with TLS on,
//! a CA and a server certificate for `localhost` made by this test with
//! `openssl`, and `pg_hba.conf` refusing every connection without TLS.
//!
//! Proves, through the real `ledger-service` binary and gRPC:
//! - `sslmode=require` connects, migrates and serves (TLS without
//!   verification, as Supabase's docs give it);
//! - `sslmode=verify-full&sslrootcert=CA` connects and serves (the server
//!   certificate checked against the given CA and the host name);
//! - `verify-full` without the CA refuses to start (the certificate really
//!   is checked), and so does `sslmode=disable` (the server demands TLS).
//!
//! Skipped (with a notice) when PostgreSQL's server programs or `openssl`
//! are missing, unless CI=true or HEALGRID_REQUIRE_POSTGRES=1.

use std::path::Path;
use std::process::Command;

use healgrid_proto::ledger::v1 as pb;
use healgrid_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use healgrid_tests::pg::{self, cluster::PgCluster};
use healgrid_tests::process::{LedgerProcess, free_port, ledger_binary};

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for `localhost` / 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str], what: &str| {
        run(Command::new("openssl").args(args).current_dir(dir), what);
    };
    openssl(
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=healgrid test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        "making the CA",
    );
    openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        "making the server key",
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("writing server.ext");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
        "signing the server certificate",
    );
}

/// A private cluster with TLS on (the certificates of `certs`), refusing
/// every connection without TLS.
async fn tls_postgres(certs: &Path) -> PgCluster {
    let mut pg = PgCluster::init().await.expect("a private cluster");
    let mut installed = Vec::new();
    for name in ["server.crt", "server.key"] {
        let pem = std::fs::read(certs.join(name)).expect("a certificate file");
        let path = pg.write_file(name, &pem).await.expect("installing it");
        installed.push(path.display().to_string());
    }
    // Only TLS connections from loopback; anything else is refused.
    pg.write_file(
        "data/pg_hba.conf",
        b"local all all trust\n\
          hostssl all all 127.0.0.1/32 trust\n\
          hostnossl all all 0.0.0.0/0 reject\n",
    )
    .await
    .expect("pg_hba.conf");
    pg.configure(&[
        ("ssl", "on"),
        ("ssl_cert_file", &installed[0]),
        ("ssl_key_file", &installed[1]),
    ])
    .expect("TLS settings");
    pg.start().await.expect("postgres with TLS");
    pg
}

/// The URL of `pg`'s `postgres` database by host name (`verify-full`
/// checks the certificate against it), with `params`.
fn url(pg: &PgCluster, params: &str) -> String {
    format!(
        "postgres://postgres@localhost:{}/postgres?{params}",
        pg.port()
    )
}

/// Serves one ledger call through a ledger process on `url`.
async fn ledger_answers(url: &str) {
    let ledger = LedgerProcess::start(url).await;
    let mut c = LedgerServiceClient::connect(ledger.endpoint.clone())
        .await
        .expect("connect to the ledger");
    let summary = c
        .get_subsidy_summary(pb::GetSubsidySummaryRequest {
            bot_id: "tls".into(),
        })
        .await
        .expect("a ledger call over a TLS database connection");
    assert!(summary.into_inner().slots.is_empty());
}

/// Starts the ledger binary on `url` expecting it to refuse: its stderr.
fn ledger_refuses(url: &str) -> String {
    let out = Command::new(ledger_binary())
        .env("LEDGER_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LEDGER_DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running ledger-service");
    assert!(!out.status.success(), "the ledger started on {url}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_reaches_postgres_over_tls_with_require_and_verify_full() {
    let openssl = Command::new("openssl").arg("version").output().is_ok();
    if PgCluster::server_programs().is_none() || !openssl {
        pg::skip(
            "postgres_tls",
            "PostgreSQL's server programs (/usr/lib/postgresql/*/bin) or openssl",
        );
        return;
    }
    let certs = tempfile::tempdir().expect("tempdir");
    make_certificates(certs.path());
    let pg = tls_postgres(certs.path()).await;
    let ca = certs.path().join("ca.crt");

    ledger_answers(&url(&pg, "sslmode=require")).await;
    ledger_answers(&url(
        &pg,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ))
    .await;

    let unverified = ledger_refuses(&url(&pg, "sslmode=verify-full"));
    assert!(
        unverified.to_lowercase().contains("certificate")
            || unverified.to_lowercase().contains("tls"),
        "verify-full without the CA fails on the certificate: {unverified}"
    );
    let plain = ledger_refuses(&url(&pg, "sslmode=disable"));
    assert!(
        plain.contains("pg_hba.conf") || plain.contains("no encryption"),
        "a connection without TLS is refused by the server: {plain}"
    );
}
