//! A private, throwaway PostgreSQL cluster: `initdb` into a temporary
//! directory, one server on a free loopback port, restarted and stopped at
//! the test's will. For tests that take the server itself down, or need a
//! server set up their own way (TLS only), which must never touch the
//! shared cluster behind `DATABASE_URL`.
//!
//! The programs are Debian's (`/usr/lib/postgresql/<version>/bin`, the
//! newest version). PostgreSQL refuses to run as root: when the tests run
//! as root, every server program runs as the `postgres` user (`runuser`)
//! and the cluster's directory and files are handed to it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;
use tokio::process::Command;

use crate::process::free_port;

/// Where Debian installs the server programs, one directory per version.
const INSTALL_ROOT: &str = "/usr/lib/postgresql";
/// The account the server runs as when the tests run as root.
const SERVER_USER: &str = "postgres";
/// Seconds `pg_ctl` waits for a start or stop to complete.
const PG_CTL_WAIT_SECS: &str = "60";

/// Why a cluster could not be set up or driven.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server programs installed.
    #[error("no PostgreSQL server programs under {INSTALL_ROOT}/*/bin")]
    NoServerPrograms,
    /// A file of the cluster could not be written or handed over.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be run, or failed.
    #[error("{command} failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed (or why it could not run).
        output: String,
    },
}

/// How `pg_ctl` stops the server (`-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Open transactions roll back, clients are told and disconnected, a
    /// shutdown checkpoint is written.
    Fast,
    /// Every server process is killed at once; the next start replays the
    /// WAL (crash recovery).
    Immediate,
}

impl StopMode {
    fn flag(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Immediate => "immediate",
        }
    }
}

/// A private cluster; its server is stopped (`-m immediate`) and its
/// directory removed when dropped, unless [`PgCluster::keep`] was called.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    /// The cluster's directory: `data/`, `server.log`, the Unix socket.
    dir: PathBuf,
    /// Removes `dir` when dropped; `None` once kept.
    tmp: Option<TempDir>,
    port: u16,
    running: bool,
}

impl PgCluster {
    /// The newest installed version's program directory, if any.
    pub fn server_programs() -> Option<PathBuf> {
        let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(INSTALL_ROOT)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version = e
                    .file_name()
                    .to_string_lossy()
                    .split('.')
                    .map(str::parse)
                    .collect::<Result<Vec<u32>, _>>()
                    .ok()?;
                let bin = e.path().join("bin");
                let complete = ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|p| bin.join(p).exists());
                complete.then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin)
    }

    /// Creates a cluster (not started) in a new temporary directory: a
    /// `postgres` superuser trusted on loopback and the cluster's own
    /// socket directory, the server listening on 127.0.0.1 only, on a free
    /// port. Durability is off (`fsync`): the server may be killed, the
    /// machine is not, so its page cache keeps every write and a restart
    /// still replays the WAL.
    ///
    /// # Errors
    /// [`ClusterError`] when the programs are missing or `initdb` fails.
    pub async fn init() -> Result<Self, ClusterError> {
        let bin = Self::server_programs().ok_or(ClusterError::NoServerPrograms)?;
        let tmp = tempfile::Builder::new()
            .prefix("healgrid-pg-")
            .tempdir()
            .map_err(|source| ClusterError::File {
                path: std::env::temp_dir(),
                source,
            })?;
        let dir = tmp.path().to_owned();
        hand_over(&dir).await?;
        let cluster = Self {
            bin,
            dir,
            tmp: Some(tmp),
            port: free_port(),
            running: false,
        };
        let data = cluster.data();
        cluster
            .run_server_program(
                "initdb",
                &[
                    "--no-sync",
                    "-U",
                    SERVER_USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-D",
                    &data,
                ],
            )
            .await?;
        let port = cluster.port.to_string();
        let sockets = cluster.dir.display().to_string();
        cluster.configure(&[
            ("port", &port),
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", &sockets),
            ("fsync", "off"),
        ])?;
        Ok(cluster)
    }

    /// The cluster's directory (the data directory is `data/` in it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://{SERVER_USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// Writes `contents` to `relative` in the cluster's directory (e.g.
    /// `data/pg_hba.conf`, a TLS key), readable by the server alone.
    ///
    /// # Errors
    /// When the file cannot be written or handed over.
    pub async fn write_file(
        &self,
        relative: &str,
        contents: &[u8],
    ) -> Result<PathBuf, ClusterError> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.join(relative);
        let file_error = |source| ClusterError::File {
            path: path.clone(),
            source,
        };
        std::fs::write(&path, contents).map_err(file_error)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(file_error)?;
        hand_over(&path).await?;
        Ok(path)
    }

    /// Appends server settings to `postgresql.conf` (the last one of a
    /// name wins); they take effect at the next (re)start.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn configure(&self, settings: &[(&str, &str)]) -> Result<(), ClusterError> {
        let path = self.dir.join("data").join("postgresql.conf");
        let mut lines = String::new();
        for (name, value) in settings {
            let _ = writeln!(lines, "{name} = '{}'", value.replace('\'', "''"));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .map_err(|source| ClusterError::File { path, source })
    }

    /// Starts the server and waits until it accepts connections.
    ///
    /// # Errors
    /// When it does not come up (the error holds its log).
    pub async fn start(&mut self) -> Result<(), ClusterError> {
        self.pg_ctl(&["start"]).await?;
        self.running = true;
        Ok(())
    }

    /// Stops the server the `mode` way, starts it again, and waits until
    /// it accepts connections: every client connection is cut.
    ///
    /// # Errors
    /// When it does not come back (the error holds its log).
    pub async fn restart(&mut self, mode: StopMode) -> Result<(), ClusterError> {
        self.pg_ctl(&["restart", "-m", mode.flag()]).await?;
        self.running = true;
        Ok(())
    }

    /// Stops the server the `mode` way and waits until it is down;
    /// [`PgCluster::start`] brings it back.
    ///
    /// # Errors
    /// When it does not stop (the error holds its log).
    pub async fn stop(&mut self, mode: StopMode) -> Result<(), ClusterError> {
        self.pg_ctl(&["stop", "-m", mode.flag()]).await?;
        self.running = false;
        Ok(())
    }

    /// Leaves the directory (data and server log) in place when dropped;
    /// where it is.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(tmp) = self.tmp.take() {
            let _ = tmp.keep();
        }
        self.dir.clone()
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `pg_ctl ACTION -D data -l server.log -w`, as the server's user.
    async fn pg_ctl(&self, action: &[&str]) -> Result<(), ClusterError> {
        let (data, log) = (self.data(), self.log().display().to_string());
        let mut args = action.to_vec();
        args.extend(["-D", &data, "-l", &log, "-w", "-t", PG_CTL_WAIT_SECS]);
        self.run_server_program("pg_ctl", &args)
            .await
            .map_err(|e| match e {
                ClusterError::Command { command, output } => ClusterError::Command {
                    command,
                    output: format!("{output}\nserver log:\n{}", self.log_tail()),
                },
                other => other,
            })
    }

    /// Runs one of the server programs as the server's user.
    async fn run_server_program(&self, program: &str, args: &[&str]) -> Result<(), ClusterError> {
        let path = self.bin.join(program);
        let mut cmd = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", SERVER_USER, "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args).current_dir(&self.dir);
        checked(cmd, &format!("{program} {}", args.join(" "))).await
    }

    /// The end of the server's log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        // A blocking stop: drop may run outside any runtime, and the
        // directory must not be removed under a live server.
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = if running_as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", SERVER_USER, "--"]).arg(pg_ctl);
            c
        } else {
            std::process::Command::new(pg_ctl)
        };
        let _ = cmd
            .args(["stop", "-m", "immediate", "-w", "-D", &self.data()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the tests run as root (then the server runs as [`SERVER_USER`]).
fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    })
}

/// Gives `path` to the server's user when the tests run as root.
async fn hand_over(path: &Path) -> Result<(), ClusterError> {
    if !running_as_root() {
        return Ok(());
    }
    let mut cmd = Command::new("chown");
    cmd.arg(format!("{SERVER_USER}:{SERVER_USER}")).arg(path);
    checked(cmd, &format!("chown {SERVER_USER} {}", path.display())).await
}

/// Runs `cmd` (stdin closed, output captured) and fails unless it succeeds.
async fn checked(mut cmd: Command, command: &str) -> Result<(), ClusterError> {
    let failed = |output: String| ClusterError::Command {
        command: command.to_owned(),
        output,
    };
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "{status}: {}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )))
    }
}
