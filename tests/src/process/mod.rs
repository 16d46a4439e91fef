//! Building and starting the real service binaries: `ledger-service`,
//! `trader-service run`, `trader-service kraken-sim` and `gateway`. Every
//! test starts them through here, so each is started, awaited and reaped
//! one way.

/// Lets a process type be signalled, awaited and reaped as the
/// [`Service`] it wraps (its `service` field).
macro_rules! deref_to_service {
    ($process:ty) => {
        impl std::ops::Deref for $process {
            type Target = $crate::process::Service;
            fn deref(&self) -> &Self::Target {
                &self.service
            }
        }

        impl std::ops::DerefMut for $process {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.service
            }
        }
    };
}
use deref_to_service;

mod ledger;
mod service;
mod sim;
mod trader;

pub use ledger::LedgerProcess;
pub use service::Service;
pub use sim::{SimProcess, Stepper};
pub use trader::{RunArgs, TraderProcess, status, wait_status, wait_until};

use std::{net::TcpListener, path::PathBuf, process::Command, sync::OnceLock};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Path of the `ledger-service` binary, built once per test process with
/// the same cargo and target directory as the tests themselves.
///
/// # Panics
/// When the build fails.
pub fn ledger_binary() -> PathBuf {
    built_binary("ledger-service")
}

/// Path of the `trader-service` binary, built like [`ledger_binary`].
///
/// # Panics
/// When the build fails.
pub fn trader_binary() -> PathBuf {
    built_binary("trader-service")
}

/// Path of the `gateway` binary, built like [`ledger_binary`].
///
/// # Panics
/// When the build fails.
pub fn gateway_binary() -> PathBuf {
    built_binary("gateway")
}

/// Every service binary the tests start, built together in one cargo
/// invocation (once per test process): one feature resolution for all of
/// them, so building one never invalidates the other's dependencies.
const SERVICES: [&str; 3] = ["ledger-service", "trader-service", "gateway"];

/// Release binaries instead of debug ones for every service this process
/// starts from now on ([`use_release_binaries`]), or by
/// `HEALGRID_TEST_PROFILE=release`.
static RELEASE: OnceLock<bool> = OnceLock::new();

/// Makes every service binary this process starts a release build (built
/// on first use, like the debug ones): the fault suite's long run measures
/// the binaries an operator runs. Call it before the first start.
pub fn use_release_binaries() {
    let _ = RELEASE.set(true);
}

fn release_binaries() -> bool {
    *RELEASE.get_or_init(|| std::env::var("HEALGRID_TEST_PROFILE").is_ok_and(|v| v == "release"))
}

/// Path of the service binary `package` (debug profile, or release, see
/// [`use_release_binaries`]), building all of [`SERVICES`] on first use.
///
/// With `HEALGRID_PREBUILT=1` nothing is built: the binaries must already be
/// in the target directory. CI sets it for `cargo test --workspace`, which
/// builds every workspace binary before any test runs; building them again
/// here would resolve features for three packages alone and compile a second
/// copy of tonic, sqlx and rustls in the middle of the tests.
fn built_binary(package: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let prebuilt = std::env::var("HEALGRID_PREBUILT").is_ok_and(|v| v == "1");
    let release = release_binaries();
    BUILT.get_or_init(|| {
        if prebuilt {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build");
        if release {
            cmd.arg("--release");
        }
        for p in SERVICES {
            cmd.args(["-p", p, "--bin", p]);
        }
        let status = cmd
            .current_dir(workspace_root())
            .status()
            .expect("running cargo build for the service binaries");
        assert!(status.success(), "cargo build of {SERVICES:?} failed");
    });
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace_root().join(target)
    };
    let binary = target
        .join(if release { "release" } else { "debug" })
        .join(format!("{package}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "built binary not found at {}{}",
        binary.display(),
        if prebuilt {
            " (HEALGRID_PREBUILT=1: build the service binaries first, or unset it)"
        } else {
            ""
        }
    );
    binary
}

/// A free local port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}
