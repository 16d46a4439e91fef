//! `trader-service run` as the tests run it: the flags they share, the
//! process, and polling its status.

use std::path::Path;
use std::time::{Duration, Instant};

use healgrid_proto::trader::v1::{self as pb, trader_service_client::TraderServiceClient};
use tonic::client::GrpcService;
use tonic::codegen::{Body, Bytes, StdError};
use tonic::transport::Channel;

use super::{Service, SimProcess, free_port, trader_binary};

/// The flags of `trader-service run` the cross-service tests share: which
/// bot, on which SQLite store, writing to which ledger(s), with how many
/// slots of 10 USD entries (unless `--order-size-usd` is among a test's
/// own flags). Each test appends its own.
#[derive(Debug, Clone, Copy)]
pub struct RunArgs<'a> {
    /// `--bot-id`.
    pub bot: &'a str,
    /// The trader's SQLite file.
    pub store: &'a Path,
    /// `--ledger-url` (one URL or a comma-separated list).
    pub ledger_url: &'a str,
    /// `--slots`.
    pub slots: u32,
}

impl RunArgs<'_> {
    /// Trading on `sim` through the real Kraken client (start it with
    /// [`SimProcess::CREDENTIALS`]), then `more`.
    pub fn kraken(&self, sim: &SimProcess, more: &[&str]) -> Vec<String> {
        let url = sim.url();
        let exchange = ["--exchange", "kraken", "--kraken-api-url", &url];
        self.with(&exchange, &["--kraken-tier", "pro"], more)
    }

    /// Paper trading on the synthetic market of `seed` at 1200 times real
    /// time, for a 0.5 % profit, then `more`.
    pub fn paper(&self, seed: u64, more: &[&str]) -> Vec<String> {
        let seed = seed.to_string();
        self.with(
            &["--exchange", "paper", "--seed", &seed],
            &["--sim-speed", "1200", "--profit-pct", "0.5"],
            more,
        )
    }

    fn with(&self, exchange: &[&str], market: &[&str], more: &[&str]) -> Vec<String> {
        let store = format!("sqlite://{}", self.store.display());
        let slots = self.slots.to_string();
        let shared = [
            "--ledger-url",
            self.ledger_url,
            "--store",
            &store,
            "--bot-id",
            self.bot,
            "--slots",
            &slots,
        ];
        // 10 USD entries unless the test sets its own size.
        let size: &[&str] = if more.contains(&"--order-size-usd") {
            &[]
        } else {
            &["--order-size-usd", "10"]
        };
        [exchange, market, &shared, size, more]
            .concat()
            .into_iter()
            .map(ToString::to_string)
            .collect()
    }
}

/// A running `trader-service run`, SIGKILLed when dropped; signals and
/// waits are those of its [`Service`].
#[derive(Debug)]
pub struct TraderProcess {
    service: Service,
    /// `http://127.0.0.1:port` of the control API.
    pub endpoint: String,
}

impl TraderProcess {
    /// Starts `trader-service run ARGS` with a clean environment plus `envs`,
    /// its control API on a free port, logging to `log`, and waits until
    /// its health service reports SERVING.
    ///
    /// # Panics
    /// When the process exits or is not healthy within 60 seconds.
    pub async fn start(args: &[String], envs: &[(&str, &str)], log: &Path) -> Self {
        let (service, endpoint) = Self::spawn(args, envs, log);
        let service = service.healthy(&endpoint, None).await;
        Self { service, endpoint }
    }

    /// [`Self::start`] for a trader that may end on purpose while it starts
    /// (armed with a crash point it can reach in its first loop): returns
    /// once it serves or has ended.
    ///
    /// # Panics
    /// When it neither serves nor ends within 60 seconds.
    pub async fn start_or_end(args: &[String], envs: &[(&str, &str)], log: &Path) -> Self {
        let (service, endpoint) = Self::spawn(args, envs, log);
        let service = service.healthy_or_ended(&endpoint).await;
        Self { service, endpoint }
    }

    fn spawn(args: &[String], envs: &[(&str, &str)], log: &Path) -> (Service, String) {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut all = vec!["run".to_owned(), "--listen".to_owned(), listen.clone()];
        all.extend_from_slice(args);
        let endpoint = format!("http://{listen}");
        let service = Service::spawn(&trader_binary(), &all, envs, log);
        (service, endpoint)
    }

    /// A client of its control API.
    ///
    /// # Panics
    /// When it cannot connect.
    pub async fn client(&self) -> TraderServiceClient<Channel> {
        TraderServiceClient::connect(self.endpoint.clone())
            .await
            .expect("connect to the trader")
    }
}

super::deref_to_service!(TraderProcess);

/// A channel a trader client can call through: plain, or with a token.
pub trait TraderChannel:
    GrpcService<
        tonic::body::Body,
        Error: Into<StdError>,
        ResponseBody: Body<Data = Bytes, Error: Into<StdError> + Send> + Send + 'static,
    >
{
}

impl<T> TraderChannel for T where
    T: GrpcService<
            tonic::body::Body,
            Error: Into<StdError>,
            ResponseBody: Body<Data = Bytes, Error: Into<StdError> + Send> + Send + 'static,
        >
{
}

/// The trader's status.
///
/// # Panics
/// When the call fails.
pub async fn status(c: &mut TraderServiceClient<impl TraderChannel>) -> pb::GetStatusResponse {
    c.get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner()
}

/// Polls the trader's status every 100 ms until `f` makes something of it
/// (at most `secs`), and returns that.
///
/// # Panics
/// When time runs out (the message shows the last status) or a call fails.
pub async fn wait_status<T>(
    what: &str,
    secs: u64,
    c: &mut TraderServiceClient<impl TraderChannel>,
    mut f: impl FnMut(&pb::GetStatusResponse) -> Option<T>,
) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(c).await;
        if let Some(t) = f(&s) {
            return t;
        }
        assert!(
            Instant::now() < end,
            "timed out after {secs}s waiting for {what}; last status: loops {} outbox {:?} \
             positions {} parked {:?}",
            s.loops,
            s.outbox,
            s.positions.len(),
            s.parked_writes
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`wait_status`] until `done` holds; the status where it did.
///
/// # Panics
/// Like [`wait_status`].
pub async fn wait_until(
    what: &str,
    secs: u64,
    c: &mut TraderServiceClient<impl TraderChannel>,
    done: impl Fn(&pb::GetStatusResponse) -> bool,
) -> pb::GetStatusResponse {
    wait_status(what, secs, c, |s| done(s).then(|| s.clone())).await
}
