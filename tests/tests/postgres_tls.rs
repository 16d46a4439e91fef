//! The ledger over TLS to PostgreSQL, the way Supabase is reached: a
//! throwaway PostgreSQL cluster (Debian's `initdb`/`postgres`) with TLS on,
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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use healgrid_proto::ledger::v1 as pb;
use healgrid_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use healgrid_tests::pg::postgres_required;
use healgrid_tests::process::{LedgerProcess, free_port, ledger_binary};

/// The directory of Debian's PostgreSQL server programs, newest version.
fn pg_bindir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `cmd` run as the `postgres` user when this test runs as root
/// (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

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

/// A PostgreSQL cluster with TLS on, stopped when dropped.
struct TlsPostgres {
    child: Child,
    port: u16,
    bindir: PathBuf,
    data: PathBuf,
}

impl TlsPostgres {
    fn start(bindir: &Path, dir: &Path) -> Self {
        let data = dir.join("data");
        if is_root() {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir),
                "chown of the cluster directory",
            );
        }
        run(
            as_postgres(&bindir.join("initdb"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
                .arg(&data),
            "initdb",
        );
        // Only TLS connections from loopback; anything else is refused.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 0.0.0.0/0 reject\n",
        )
        .expect("writing pg_hba.conf");
        if is_root() {
            run(
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(data.join("pg_hba.conf")),
                "chown pg_hba.conf",
            );
        }
        run(
            Command::new("chmod").arg("600").arg(dir.join("server.key")),
            "chmod of the key",
        );
        let port = free_port();
        let child = as_postgres(&bindir.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "ssl=on"])
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                dir.join("server.crt").display()
            ))
            .arg("-c")
            .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting postgres");
        let mut pg = Self {
            child,
            port,
            bindir: bindir.to_path_buf(),
            data: data.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = pg.child.try_wait() {
                panic!("postgres exited at start: {status}");
            }
            let ready = Command::new(bindir.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return pg;
            }
            assert!(Instant::now() < deadline, "postgres not ready in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?{params}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // Stop the server itself: when the child is `runuser`, a signal to
        // it is not passed on to postgres, and waiting would never end.
        let _ = as_postgres(&self.bindir.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let tools = pg_bindir().filter(|_| Command::new("openssl").arg("version").output().is_ok());
    let Some(bindir) = tools else {
        assert!(
            !postgres_required(),
            "PostgreSQL's server programs (/usr/lib/postgresql/*/bin) or openssl are missing"
        );
        eprintln!("SKIPPED postgres_tls: no PostgreSQL server programs or openssl");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let pg = TlsPostgres::start(&bindir, dir.path());
    let ca = dir.path().join("ca.crt");

    ledger_answers(&pg.url("sslmode=require")).await;
    ledger_answers(&pg.url(&format!("sslmode=verify-full&sslrootcert={}", ca.display()))).await;

    let unverified = ledger_refuses(&pg.url("sslmode=verify-full"));
    assert!(
        unverified.to_lowercase().contains("certificate")
            || unverified.to_lowercase().contains("tls"),
        "verify-full without the CA fails on the certificate: {unverified}"
    );
    let plain = ledger_refuses(&pg.url("sslmode=disable"));
    assert!(
        plain.contains("pg_hba.conf") || plain.contains("no encryption"),
        "a connection without TLS is refused by the server: {plain}"
    );
}
