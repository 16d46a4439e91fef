//! The ledger's replicas behind one client.
//!
//! `LEDGER_URL` names one ledger or several, comma-separated
//! (`http://a:50051,http://b:50051`), and each host name may resolve to
//! several addresses (a compose service scaled with `--scale ledger=2`
//! resolves to one address per container). Every resolved address is a
//! replica with its own lazily connected channel.
//!
//! - **Balance:** each call starts at the next replica in turn (round
//!   robin over the replicas that are up).
//! - **Fail over:** a call that cannot reach its replica (`UNAVAILABLE`) is
//!   tried at once on the next one. That is safe because every ledger write
//!   carries an idempotency key: a write that did land before the
//!   connection broke is answered with its first result by whichever
//!   replica sees it again.
//! - **Back off:** a replica the transport cannot reach (or that lets a
//!   call run into its deadline) is left alone for
//!   [`Backoff`]'s delay (doubling per consecutive failure), then tried
//!   again by the next call; one success clears it.
//! - **Re-resolve:** names are looked up again every
//!   [`ReplicaPolicy::refresh`], and at once when no replica is up, so
//!   replicas that appear (scale up, a restarted container's new address)
//!   are used and vanished ones dropped. A failed lookup keeps the
//!   addresses known so far: a restarting ledger must not empty the pool.
//!
//! When no replica is up the call fails `UNAVAILABLE` without waiting; the
//! outbox keeps the write and retries it with its own back-off, so nothing
//! is lost however long every replica is gone.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use healgrid_proto::auth::{AuthChannel, ClientAuth};
use healgrid_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use healgrid_proto::tls::ClientTls;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};

use crate::runtime::outbox::Backoff;

/// One entry of `LEDGER_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTarget {
    /// The entry as given (the `:authority` of every call to it).
    url: Uri,
    /// `http` or `https`.
    scheme: String,
    /// Host name or address, without IPv6 brackets.
    host: String,
    /// Port (the scheme's default when the URL names none).
    port: u16,
}

impl LedgerTarget {
    /// The URL as given.
    #[must_use]
    pub fn url(&self) -> String {
        self.url.to_string()
    }
}

/// Why `LEDGER_URL` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerUrlError {
    /// Nothing but separators.
    #[error("names no ledger (expected http://host:port, or several separated by commas)")]
    Empty,
    /// One entry is not an `http(s)://host[:port]` URL.
    #[error("`{entry}` is not a ledger URL: {reason}")]
    Invalid {
        /// The entry.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same entry twice would weigh that ledger double.
    #[error("`{0}` is listed twice")]
    Duplicate(String),
}

/// Parses `LEDGER_URL`: one or more `http(s)://host[:port]` URLs separated
/// by commas (blanks around entries are ignored).
///
/// # Errors
/// [`LedgerUrlError`] naming the first unusable entry.
pub fn parse_ledger_urls(value: &str) -> Result<Vec<LedgerTarget>, LedgerUrlError> {
    let mut targets: Vec<LedgerTarget> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let invalid = |reason| LedgerUrlError::Invalid {
            entry: entry.to_owned(),
            reason,
        };
        let url: Uri = entry.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = match url.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            Some(_) => return Err(invalid("the scheme must be http or https")),
            None => return Err(invalid("no scheme (write http://host:port)")),
        };
        let host = url
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?
            .to_owned();
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(invalid("a ledger URL has no path or query"));
        }
        let port = url
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        if targets.iter().any(|t| t.host == host && t.port == port) {
            return Err(LedgerUrlError::Duplicate(entry.to_owned()));
        }
        targets.push(LedgerTarget {
            url,
            scheme,
            host,
            port,
        });
    }
    if targets.is_empty() {
        return Err(LedgerUrlError::Empty);
    }
    Ok(targets)
}

/// Looks a host name up: its addresses on `port`.
pub type Resolver = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver (`getaddrinfo`: `/etc/hosts`, then DNS, such as
/// Docker's embedded server).
#[must_use]
pub fn system_resolver() -> Resolver {
    Arc::new(|host, port| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    })
}

/// How often names are looked up again and how unreachable replicas are
/// backed off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPolicy {
    /// Interval between lookups while some replica is up.
    pub refresh: Duration,
    /// Back-off of an unreachable replica.
    pub backoff: Backoff,
}

impl Default for ReplicaPolicy {
    /// Look up every 5 s; back off 500 ms doubling to 15 s (a restarted
    /// ledger is used again within 15 s of coming back).
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(5),
            backoff: Backoff {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(15),
            },
        }
    }
}

/// A replica: one resolved address of one target.
type ReplicaKey = (usize, SocketAddr);

#[derive(Debug)]
struct Replica {
    channel: Channel,
    /// Consecutive transport failures.
    failures: u32,
    /// Not tried before this instant (back-off); `None` when up.
    retry_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Pool {
    replicas: BTreeMap<ReplicaKey, Replica>,
    /// Round-robin position.
    cursor: usize,
    /// Last lookup, successful or not.
    looked_up_at: Option<Instant>,
}

/// The replicas of `LEDGER_URL` as one ledger client (see the module
/// docs).
#[derive(Clone)]
pub struct LedgerReplicas {
    inner: Arc<Inner>,
}

struct Inner {
    targets: Vec<LedgerTarget>,
    resolve: Resolver,
    /// TLS of `https://` targets.
    tls: ClientTls,
    /// The token every call carries, if any.
    auth: ClientAuth,
    connect_timeout: Duration,
    policy: ReplicaPolicy,
    pool: Mutex<Pool>,
    /// Held while looking up, so concurrent calls do not look up twice.
    lookup: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LedgerReplicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.inner.targets.iter().map(LedgerTarget::url).collect();
        f.debug_struct("LedgerReplicas")
            .field("targets", &urls)
            .field("replicas", &self.replicas().len())
            .finish_non_exhaustive()
    }
}

impl LedgerReplicas {
    /// Replicas of `targets`, found by `resolve`; nothing is looked up or
    /// connected before the first call.
    #[must_use]
    pub fn new(
        targets: Vec<LedgerTarget>,
        resolve: Resolver,
        connect_timeout: Duration,
        policy: ReplicaPolicy,
    ) -> Self {
        Self::secured(
            targets,
            resolve,
            connect_timeout,
            policy,
            (ClientTls::default(), ClientAuth::default()),
        )
    }

    /// [`Self::new`] with TLS for `https://` targets and a token sent with
    /// every call.
    #[must_use]
    pub fn secured(
        targets: Vec<LedgerTarget>,
        resolve: Resolver,
        connect_timeout: Duration,
        policy: ReplicaPolicy,
        (tls, auth): (ClientTls, ClientAuth),
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                targets,
                resolve,
                tls,
                auth,
                connect_timeout,
                policy,
                pool: Mutex::new(Pool::default()),
                lookup: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The replicas known now and whether each is up (not backing off).
    #[must_use]
    pub fn replicas(&self) -> Vec<(SocketAddr, bool)> {
        let now = Instant::now();
        self.pool()
            .replicas
            .iter()
            .map(|(&(_, addr), r)| (addr, r.retry_at.is_none_or(|t| t <= now)))
            .collect()
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the lock leaves plain data behind; go on.
        self.inner
            .pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `call` on one replica, failing over to the others while it
    /// answers `UNAVAILABLE` (see the module docs).
    ///
    /// # Errors
    /// The last replica's status, or `UNAVAILABLE` when no replica is up.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(LedgerServiceClient<AuthChannel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.look_up(false).await;
        let mut order = self.up_in_turn();
        if order.is_empty() {
            // Every known address is failing (or none was found): the
            // replicas may have moved.
            self.look_up(true).await;
            order = self.up_in_turn();
        }
        let mut last = None;
        for (key, channel) in order {
            let client = LedgerServiceClient::with_interceptor(channel, self.inner.auth.clone());
            match call(client).await {
                Ok(v) => {
                    self.succeeded(key);
                    return Ok(v);
                }
                Err(status) if status.code() == Code::Unavailable => {
                    if is_transport_failure(&status) {
                        self.failed(key, &status);
                    }
                    last = Some(status);
                }
                Err(status) => {
                    // A replica that does not answer in time (a dead host
                    // that sends no reset) is backed off like an
                    // unreachable one, but the call is not repeated at
                    // once: a slow database would slow every replica.
                    if status.code() == Code::DeadlineExceeded {
                        self.failed(key, &status);
                    }
                    return Err(status);
                }
            }
        }
        Err(last.unwrap_or_else(|| self.none_up()))
    }

    /// The replicas that are up, starting at the next one in turn.
    fn up_in_turn(&self) -> Vec<(ReplicaKey, Channel)> {
        let now = Instant::now();
        let mut pool = self.pool();
        let up: Vec<(ReplicaKey, Channel)> = pool
            .replicas
            .iter()
            .filter(|(_, r)| r.retry_at.is_none_or(|t| t <= now))
            .map(|(k, r)| (*k, r.channel.clone()))
            .collect();
        if up.is_empty() {
            return up;
        }
        let start = pool.cursor % up.len();
        pool.cursor = pool.cursor.wrapping_add(1);
        let mut order = up;
        order.rotate_left(start);
        order
    }

    fn none_up(&self) -> Status {
        let pool = self.pool();
        let now = Instant::now();
        let next = pool
            .replicas
            .values()
            .filter_map(|r| r.retry_at)
            .min()
            .map(|t| t.saturating_duration_since(now));
        let urls: Vec<String> = self.inner.targets.iter().map(LedgerTarget::url).collect();
        Status::unavailable(match next {
            Some(next) => format!(
                "no ledger replica is up ({} known from {}); next retry in {} ms",
                pool.replicas.len(),
                urls.join(","),
                next.as_millis()
            ),
            None => format!("no ledger replica found from {}", urls.join(",")),
        })
    }

    fn succeeded(&self, key: ReplicaKey) {
        let mut pool = self.pool();
        if let Some(r) = pool.replicas.get_mut(&key)
            && r.failures > 0
        {
            tracing::info!(replica = %key.1, after_failures = r.failures, "ledger replica is back");
            r.failures = 0;
            r.retry_at = None;
        }
    }

    fn failed(&self, key: ReplicaKey, status: &Status) {
        let backoff = self.inner.policy.backoff;
        let mut pool = self.pool();
        if let Some(r) = pool.replicas.get_mut(&key) {
            r.failures = r.failures.saturating_add(1);
            let delay = backoff.delay(r.failures);
            r.retry_at = Some(Instant::now() + delay);
            tracing::warn!(
                replica = %key.1,
                failures = r.failures,
                retry_in_ms = delay.as_millis(),
                error = %status.message(),
                "ledger replica unreachable; failing over to the others"
            );
        }
    }

    /// Looks every target up again when the refresh interval has passed
    /// (or, with `urgent`, when the last lookup is over a second old), and
    /// makes the pool match: new addresses added, vanished ones dropped,
    /// known ones kept with their back-off state.
    async fn look_up(&self, urgent: bool) {
        let due = |pool: &Pool| {
            let min_age = if urgent {
                Duration::from_secs(1)
            } else {
                self.inner.policy.refresh
            };
            pool.looked_up_at.is_none_or(|t| t.elapsed() >= min_age)
        };
        if !due(&self.pool()) {
            return;
        }
        let _guard = self.inner.lookup.lock().await;
        if !due(&self.pool()) {
            return; // another call just did it
        }
        let mut found: Vec<(usize, Option<Vec<SocketAddr>>)> = Vec::new();
        for (i, target) in self.inner.targets.iter().enumerate() {
            let lookup = (self.inner.resolve)(target.host.clone(), target.port);
            let addrs = match tokio::time::timeout(self.inner.connect_timeout, lookup).await {
                Ok(Ok(addrs)) if !addrs.is_empty() => Some(addrs),
                Ok(Ok(_)) => {
                    tracing::warn!(ledger = %target.url, "ledger name resolves to no address; keeping the known ones");
                    None
                }
                Ok(Err(e)) => {
                    tracing::warn!(ledger = %target.url, error = %e, "ledger name lookup failed; keeping the known addresses");
                    None
                }
                Err(_) => {
                    tracing::warn!(ledger = %target.url, "ledger name lookup timed out; keeping the known addresses");
                    None
                }
            };
            found.push((i, addrs));
        }
        let mut pool = self.pool();
        pool.looked_up_at = Some(Instant::now());
        for (i, addrs) in found {
            let Some(mut addrs) = addrs else { continue };
            addrs.sort_unstable();
            addrs.dedup();
            let before = pool.replicas.len();
            pool.replicas
                .retain(|&(t, addr), _| t != i || addrs.contains(&addr));
            let dropped = before - pool.replicas.len();
            let mut added = Vec::new();
            for addr in addrs {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    pool.replicas.entry((i, addr))
                {
                    let channel = self.channel(&self.inner.targets[i], addr);
                    slot.insert(Replica {
                        channel,
                        failures: 0,
                        retry_at: None,
                    });
                    added.push(addr.to_string());
                }
            }
            if dropped > 0 || !added.is_empty() {
                tracing::info!(
                    ledger = %self.inner.targets[i].url,
                    added = %added.join(","),
                    dropped,
                    replicas = pool.replicas.len(),
                    "ledger replicas changed"
                );
            }
        }
    }

    /// A lazily connected channel to `addr`, sending `target`'s authority
    /// (so a TLS or virtual-host front sees the name, not the address) and,
    /// for `https://`, checking the certificate against the target's host.
    fn channel(&self, target: &LedgerTarget, addr: SocketAddr) -> Channel {
        let uri = format!("{}://{addr}", target.scheme);
        let endpoint = match Endpoint::from_shared(uri) {
            // HTTP/2 pings notice a connection to a vanished host (killed
            // container: no reset ever comes) and drop it.
            Ok(e) => e
                .origin(target.url.clone())
                .connect_timeout(self.inner.connect_timeout)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(self.inner.connect_timeout)
                .keep_alive_while_idle(true),
            // A socket address always makes a valid URI; fall back to the
            // target's own URL rather than panic.
            Err(_) => {
                Endpoint::from(target.url.clone()).connect_timeout(self.inner.connect_timeout)
            }
        };
        match self.inner.tls.apply(endpoint.clone(), Some(&target.host)) {
            Ok(secured) => secured.connect_lazy(),
            Err(e) => {
                // Checked at start-up (`GrpcLedger::secured`); should it
                // still fail, calls fail (no TLS for https) and say so.
                tracing::error!(ledger = %target.url, error = %healgrid_proto::tls::error_chain(&e),
                    "cannot set up TLS to the ledger");
                endpoint.connect_lazy()
            }
        }
    }
}

/// True when the status comes from this side's transport (no connection,
/// connection lost) rather than from a ledger that answered `UNAVAILABLE`
/// itself (its database is down: another replica is no better, and this
/// one is not to blame).
///
/// Statuses made from a transport error carry it as their source; statuses
/// a server sent are decoded from its trailers and carry none.
fn is_transport_failure(status: &Status) -> bool {
    status.code() == Code::Unavailable && std::error::Error::source(status).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_several_urls_and_blanks() {
        let t = parse_ledger_urls("http://ledger:50051").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].host.as_str(), t[0].port), ("ledger", 50051));
        let t = parse_ledger_urls(" http://a:1 , https://b ,http://[::1]:3,").unwrap();
        let hosts: Vec<(&str, u16, &str)> = t
            .iter()
            .map(|t| (t.host.as_str(), t.port, t.scheme.as_str()))
            .collect();
        assert_eq!(
            hosts,
            [("a", 1, "http"), ("b", 443, "https"), ("::1", 3, "http")]
        );
    }

    #[test]
    fn bad_urls_are_refused_with_the_entry_named() {
        for (value, expect) in [
            ("", "names no ledger"),
            (" , ", "names no ledger"),
            ("ledger:50051", "`ledger:50051`"),
            ("ftp://a:1", "http or https"),
            ("http://a:1,http://a:1", "listed twice"),
            ("http://a:1/x", "no path"),
            ("http://a:1,http:///", "`http:///`"),
        ] {
            let e = parse_ledger_urls(value).unwrap_err().to_string();
            assert!(e.contains(expect), "{value:?}: {e}");
        }
    }

    fn fixed(addrs: Vec<SocketAddr>) -> Resolver {
        Arc::new(move |_, _| {
            let addrs = addrs.clone();
            Box::pin(async move { Ok(addrs) })
        })
    }

    #[tokio::test]
    async fn a_name_with_several_addresses_is_several_replicas_and_lookups_keep_state() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:1".parse().unwrap();
        let replicas = LedgerReplicas::new(
            parse_ledger_urls("http://ledger:1").unwrap(),
            fixed(vec![b, a, a]),
            Duration::from_secs(1),
            ReplicaPolicy::default(),
        );
        replicas.look_up(true).await;
        assert_eq!(replicas.replicas(), vec![(a, true), (b, true)]);
        let first = replicas.up_in_turn();
        let second = replicas.up_in_turn();
        assert_eq!(first.len(), 2);
        assert_ne!(
            first[0].0, second[0].0,
            "calls start at the next replica in turn"
        );
        replicas.failed((0, a), &Status::unavailable("down"));
        assert_eq!(replicas.replicas(), vec![(a, false), (b, true)]);
        let order: Vec<ReplicaKey> = replicas.up_in_turn().into_iter().map(|(k, _)| k).collect();
        assert_eq!(order, vec![(0, b)], "a replica backing off is skipped");
        replicas.succeeded((0, a));
        assert_eq!(replicas.replicas(), vec![(a, true), (b, true)]);
    }

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_known_replicas() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = calls.clone();
        let resolve: Resolver = Arc::new(move |_, _| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    Ok(vec![a])
                } else {
                    Err(io::Error::other("no such host"))
                }
            })
        });
        let policy = ReplicaPolicy {
            refresh: Duration::ZERO,
            ..ReplicaPolicy::default()
        };
        let replicas = LedgerReplicas::new(
            parse_ledger_urls("http://ledger:1").unwrap(),
            resolve,
            Duration::from_secs(1),
            policy,
        );
        replicas.look_up(false).await;
        replicas.look_up(false).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(replicas.replicas(), vec![(a, true)]);
    }

    #[tokio::test]
    async fn with_nothing_up_a_call_fails_unavailable_at_once() {
        let replicas = LedgerReplicas::new(
            parse_ledger_urls("http://ledger:1").unwrap(),
            fixed(vec![]),
            Duration::from_secs(1),
            ReplicaPolicy::default(),
        );
        let r: Result<(), Status> = replicas.call(|_| async { Ok(()) }).await;
        let e = r.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
        assert!(e.message().contains("no ledger replica found"), "{e:?}");
    }
}
