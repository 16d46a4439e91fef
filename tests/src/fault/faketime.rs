//! A wall clock the suite can step back under the trader: Debian's
//! libfaketime preloaded into the trader process, reading its offset from
//! a file the scenario rewrites. Only the wall clock (`CLOCK_REALTIME`,
//! Rust's `SystemTime`) moves; the monotonic clock stays real, so tokio's
//! timers, request timeouts and the poll interval keep working as they do
//! when an operator or NTP steps a production machine's clock.

use std::path::{Path, PathBuf};

/// Where Debian's `libfaketime` package installs the thread-safe library.
const LIBRARIES: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
];

/// Whether the environment demands that the clock scenarios run: CI=true
/// or HEALGRID_REQUIRE_FAKETIME=1.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("HEALGRID_REQUIRE_FAKETIME").is_ok_and(|v| v == "1")
}

/// The preloadable library (`HEALGRID_FAKETIME_LIB`, else Debian's path),
/// or `None` with a `SKIPPED` notice for `scenario` when it is missing.
///
/// # Panics
/// When it is missing but required (see [`required`]): CI never skips a
/// clock scenario silently.
pub fn library_or_skip(scenario: &str) -> Option<PathBuf> {
    let found = std::env::var_os("HEALGRID_FAKETIME_LIB")
        .map(PathBuf::from)
        .into_iter()
        .chain(LIBRARIES.iter().map(PathBuf::from))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            !required(),
            "{scenario}: libfaketime is missing (apt-get install -y faketime) but CI=true or \
             HEALGRID_REQUIRE_FAKETIME=1"
        );
        eprintln!("SKIPPED {scenario}: libfaketime is missing (apt-get install -y faketime)");
    }
    found
}

/// The trader's wall clock: an offset in seconds, written where the
/// preloaded library reads it.
#[derive(Debug)]
pub struct FakeClock {
    library: PathBuf,
    file: PathBuf,
    offset_secs: i64,
}

impl FakeClock {
    /// A clock at the real time, its offset file in `dir`.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn new(library: PathBuf, dir: &Path) -> Self {
        let clock = Self {
            library,
            file: dir.join("faketime"),
            offset_secs: 0,
        };
        clock.write();
        clock
    }

    /// The environment that puts a process on this clock. The library
    /// reads the file again at most once a second.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("LD_PRELOAD", self.library.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_CACHE_DURATION", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Steps the clock back by `secs` more seconds.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn step_back(&mut self, secs: i64) {
        self.offset_secs -= secs;
        self.write();
    }

    /// How far behind the real time the clock is, seconds.
    pub fn behind_secs(&self) -> i64 {
        -self.offset_secs
    }

    fn write(&self) {
        // libfaketime's relative form: a signed number of seconds.
        let text = format!("{:+}\n", self.offset_secs);
        std::fs::write(&self.file, text)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.file.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_back_accumulate_in_the_offset_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut clock = FakeClock::new(PathBuf::from("/lib/faketime.so"), dir.path());
        let read = || std::fs::read_to_string(dir.path().join("faketime")).unwrap();
        assert_eq!(read(), "+0\n");
        clock.step_back(600);
        clock.step_back(7200);
        assert_eq!(read(), "-7800\n");
        assert_eq!(clock.behind_secs(), 7800);
        let env = clock.env();
        assert!(env.contains(&("LD_PRELOAD".into(), "/lib/faketime.so".into())));
        assert!(env.contains(&("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into())));
    }
}
