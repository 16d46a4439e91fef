//! `trader-service run`: the production trader process. It reads its
//! configuration (flags win over environment), connects the exchange (paper
//! or Kraken), the ledger (gRPC, lazily: the trader trades through a ledger
//! outage) and its own store, serves the control API and runs the trading
//! loop until SIGTERM/ctrl-c, then finishes the loop, flushes the outbox
//! (bounded) and returns without touching resting orders.
//!
//! Bad configuration is refused before anything is traded with a one-line
//! [`RunError`] naming the setting; tunables outside their safe range are
//! clamped and logged instead (see [`crate::config`]).

pub mod paper;
pub mod security;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use rust_decimal::Decimal;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::config::{
    ConfigError, HealingArgs, HealingSettings, TradingArgs, TradingSettings, check_http_url,
};
use crate::exchange::kraken::limits::RateTier;
use crate::exchange::kraken::{KrakenClient, KrakenConfig};
use crate::exchange::market::{CsvReplay, MarketSource, SyntheticConfig, SyntheticMarket};
use crate::exchange::metered::Metered;
use crate::exchange::paper::{PaperConfig, PaperExchange};
use crate::exchange::{Clock, Exchange, SimClock, SystemClock};
use crate::metrics::TraderMetrics;
use crate::pair::FeeSchedule;
use crate::runtime::intents::StalePolicy;
use crate::runtime::ledger::{DEFAULT_CALL_TIMEOUT, GrpcLedger};
use crate::runtime::ledger_replicas::ReplicaPolicy;
use crate::runtime::store::{StoreLocation, TraderStore};
use crate::runtime::{Runtime, RuntimeConfig};

/// Which exchange the trader trades on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExchangeKind {
    /// The in-process paper exchange over a synthetic or replayed market.
    Paper,
    /// Kraken's REST API (or the Kraken-compatible simulator).
    Kraken,
}

impl ExchangeKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Kraken => "kraken",
        }
    }
}

/// Where the paper exchange's prices come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketArg {
    /// The seeded synthetic generator (ranging and trending stretches).
    Synthetic,
    /// Candles replayed from a CSV file `time,open,high,low,close,volume`.
    Csv(PathBuf),
}

/// Parses `synthetic` or `csv:PATH`.
///
/// # Errors
/// A message for clap when the value is neither.
pub fn parse_market(s: &str) -> Result<MarketArg, String> {
    match s.split_once(':') {
        None if s == "synthetic" => Ok(MarketArg::Synthetic),
        Some(("csv", path)) if !path.is_empty() => Ok(MarketArg::Csv(PathBuf::from(path))),
        _ => Err(format!("expected `synthetic` or `csv:PATH`, got `{s}`")),
    }
}

/// Every setting of `trader-service run`, each with its environment
/// variable and default (shown by `--help`).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Address of the gRPC control API (status, pause, resume, health).
    #[arg(long, env = "TRADER_LISTEN", default_value = crate::server::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Address of the Prometheus listener (`GET /metrics`); none when unset.
    #[arg(long, env = "TRADER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Exchange to trade on.
    #[arg(long, env = "EXCHANGE", value_enum, default_value_t = ExchangeKind::Paper)]
    pub exchange: ExchangeKind,
    /// Kraken REST base URL (point it at `trader-service kraken-sim` for tests).
    #[arg(long, env = "KRAKEN_API_URL", default_value = crate::exchange::kraken::client::DEFAULT_API_URL)]
    pub kraken_api_url: String,
    /// Kraken API key (required with --exchange kraken).
    #[arg(long, env = "KRAKEN_API_KEY", hide_env_values = true)]
    pub kraken_api_key: Option<String>,
    /// Kraken API secret, base64 as Kraken issues it (required with --exchange kraken).
    #[arg(long, env = "KRAKEN_API_SECRET", hide_env_values = true)]
    pub kraken_api_secret: Option<String>,
    /// Kraken verification tier for the client-side rate counters: starter, intermediate or pro.
    #[arg(long, env = "KRAKEN_TIER", default_value = "starter")]
    pub kraken_tier: String,
    /// Ledger service gRPC URL; several replicas comma-separated
    /// (`http://a:50051,http://b:50051`), and a name resolving to several
    /// addresses is balanced over all of them.
    #[arg(long, env = "LEDGER_URL", default_value = "http://127.0.0.1:50051")]
    pub ledger_url: String,
    /// The ledger's bot id [default: {exchange}:{PAIR}:main].
    #[arg(long, env = "BOT_ID")]
    pub bot_id: Option<String>,
    /// The trader's own store (engine state, outbox): `sqlite://FILE`, or
    /// `sqlite::memory:` to keep it in memory (lost on exit: demos only).
    #[arg(
        long = "store",
        env = "TRADER_DATABASE_URL",
        default_value = "sqlite://healgrid-trader.db"
    )]
    pub store: String,
    /// Private exchange calls per loop (placements, cancels, lookups).
    #[arg(long, env = "PRIVATE_CALL_BUDGET", default_value_t = 30)]
    pub call_budget: u32,
    /// Seconds an ambiguous placement (timeout, lost response, 5xx,
    /// EService:Busy) may still appear on the exchange: until then it is
    /// only looked up by client order id (open and closed orders), once a
    /// loop, never placed again. The window must also hold as many empty
    /// lookups as polls fit in it, so an exchange clock running ahead of
    /// real time never shortens it.
    #[arg(long, env = "PLACEMENT_STALE_SEC", default_value_t = 60)]
    pub placement_stale_sec: u64,
    /// Place limit orders post-only (maker fee guaranteed).
    #[arg(long, env = "POST_ONLY", default_value_t = false, action = clap::ArgAction::Set)]
    pub post_only: bool,
    /// Longest the outbox flush may take on shutdown, seconds.
    #[arg(long, env = "SHUTDOWN_FLUSH_SEC", default_value_t = 10)]
    pub shutdown_flush_sec: u64,
    /// Paper only: market source, `synthetic` or `csv:PATH` (time,open,high,low,close,volume).
    #[arg(long, env = "PAPER_MARKET", default_value = "synthetic", value_parser = parse_market)]
    pub market: MarketArg,
    /// Paper only: seed of the synthetic market.
    #[arg(long, env = "PAPER_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Paper only: simulated seconds per real second (600 = ten minutes a second, for demos).
    /// The loop's POLL_INTERVAL_SEC runs in simulated time.
    #[arg(long, env = "SIM_SPEED", default_value_t = 1)]
    pub sim_speed: u32,
    /// Paper only: opening price of the synthetic market [default: per pair, 0.1 for XDGUSD].
    #[arg(long, env = "PAPER_START_PRICE")]
    pub start_price: Option<Decimal>,
    /// Paper only: initial base balance.
    #[arg(long, env = "PAPER_BASE_BALANCE", default_value = "10000")]
    pub paper_base_balance: Decimal,
    /// Paper only: initial quote (USD) balance.
    #[arg(long, env = "PAPER_QUOTE_BALANCE", default_value = "1000")]
    pub paper_quote_balance: Decimal,
    /// Paper only: maker fee, percent.
    #[arg(long, env = "PAPER_MAKER_FEE", default_value = "0.25")]
    pub paper_maker_fee: Decimal,
    /// Paper only: taker fee, percent.
    #[arg(long, env = "PAPER_TAKER_FEE", default_value = "0.40")]
    pub paper_taker_fee: Decimal,
    /// Grid settings.
    #[command(flatten)]
    pub trading: TradingArgs,
    /// Self-healing settings.
    #[command(flatten)]
    pub healing: HealingArgs,
    /// Token and TLS of the control API and towards the ledger.
    #[command(flatten)]
    pub security: security::SecurityArgs,
    /// Fault tests only: SIGKILL the trader the NTH time it reaches POINT
    /// (`POINT[:NTH]`, see `crash_point`). Never set with real money.
    #[arg(long, env = "HEALGRID_CRASH_AT", hide = true, value_parser = crate::crash_point::parse)]
    pub crash_at: Option<crate::crash_point::CrashAt>,
}

/// Why `run` stopped with an error.
#[derive(Debug, Error)]
pub enum RunError {
    /// A setting is unusable (from the shared validation).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting is unusable (checked here: credentials, exchange facts).
    #[error("{name}: {message}")]
    Setting {
        /// Environment variable name of the setting.
        name: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The exchange could not be asked for the pair's facts.
    #[error("exchange {exchange} unusable at start-up: {message}")]
    Exchange {
        /// `paper` or `kraken`.
        exchange: &'static str,
        /// The exchange's error.
        message: String,
    },
    /// The trader's store could not be opened or read.
    #[error("TRADER_DATABASE_URL: {0}")]
    Store(#[from] crate::runtime::store::StoreError),
    /// The runtime could not start or its store failed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// The control API address could not be bound.
    #[error("TRADER_LISTEN: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics address could not be bound.
    #[error("TRADER_METRICS_LISTEN: cannot listen on {addr}: {source}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The control API failed.
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
}

impl RunError {
    /// Whether this is a configuration mistake (the operator must change a
    /// setting) rather than a failure at run time.
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::Config(_)
                | Self::Setting { .. }
                | Self::Bind { .. }
                | Self::MetricsBind { .. }
                | Self::Store(_)
        )
    }
}

/// A TLS file setting that cannot be used (the message names the flag).
fn tls_setting(e: healgrid_proto::tls::TlsError) -> RunError {
    setting("TLS", e.to_string())
}

fn setting(name: &'static str, message: impl Into<String>) -> RunError {
    RunError::Setting {
        name,
        message: message.into(),
    }
}

/// Settings validated before anything is started.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Grid settings in force.
    pub trading: TradingSettings,
    /// Self-healing settings in force.
    pub healing: HealingSettings,
    /// Clamp warnings to log.
    pub warnings: Vec<String>,
    /// The ledger's bot id.
    pub bot_id: String,
}

impl RunArgs {
    /// Validates everything that can be checked without I/O.
    ///
    /// # Errors
    /// [`RunError`] naming the first unusable setting.
    pub fn plan(&self) -> Result<RunPlan, RunError> {
        let (trading, w1) = self.trading.resolve()?;
        let (healing, w2) = self.healing.resolve(&trading)?;
        crate::runtime::ledger_replicas::parse_ledger_urls(&self.ledger_url)
            .map_err(|e| setting("LEDGER_URL", e.to_string()))?;
        if self.call_budget == 0 {
            return Err(setting("PRIVATE_CALL_BUDGET", "must be at least 1 (got 0)"));
        }
        if !(1..=86_400).contains(&self.placement_stale_sec) {
            return Err(setting(
                "PLACEMENT_STALE_SEC",
                format!(
                    "must be between 1 and 86400 seconds (got {})",
                    self.placement_stale_sec
                ),
            ));
        }
        match self.exchange {
            ExchangeKind::Kraken => {
                check_http_url("KRAKEN_API_URL", &self.kraken_api_url)?;
                self.kraken_config()?;
            }
            ExchangeKind::Paper => self.check_paper()?,
        }
        let bot_id = match &self.bot_id {
            Some(b) if b.trim().is_empty() => return Err(setting("BOT_ID", "must not be empty")),
            Some(b) => b.trim().to_owned(),
            None => format!("{}:{}:main", self.exchange.as_str(), trading.pair),
        };
        let mut warnings: Vec<String> = w1.iter().map(ToString::to_string).collect();
        warnings.extend(w2.iter().map(ToString::to_string));
        Ok(RunPlan {
            trading,
            healing,
            warnings,
            bot_id,
        })
    }

    fn check_paper(&self) -> Result<(), RunError> {
        if self.sim_speed == 0 {
            return Err(setting("SIM_SPEED", "must be at least 1 (got 0)"));
        }
        for (name, v) in [
            ("PAPER_BASE_BALANCE", self.paper_base_balance),
            ("PAPER_QUOTE_BALANCE", self.paper_quote_balance),
        ] {
            if v < Decimal::ZERO {
                return Err(setting(name, format!("must not be negative (got {v})")));
            }
        }
        for (name, v) in [
            ("PAPER_MAKER_FEE", self.paper_maker_fee),
            ("PAPER_TAKER_FEE", self.paper_taker_fee),
        ] {
            if v < Decimal::ZERO || v > Decimal::from(10) {
                return Err(setting(
                    name,
                    format!("must be a percentage 0..10 (got {v})"),
                ));
            }
        }
        if let Some(p) = self.start_price
            && p <= Decimal::ZERO
        {
            return Err(setting(
                "PAPER_START_PRICE",
                format!("must be positive (got {p})"),
            ));
        }
        Ok(())
    }

    fn kraken_config(&self) -> Result<KrakenConfig, RunError> {
        let present = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let key = present(&self.kraken_api_key)
            .ok_or_else(|| setting("KRAKEN_API_KEY", "required with EXCHANGE=kraken"))?;
        let secret = present(&self.kraken_api_secret)
            .ok_or_else(|| setting("KRAKEN_API_SECRET", "required with EXCHANGE=kraken"))?;
        let mut cfg = KrakenConfig::new(&self.kraken_api_url, &key, &secret)
            .map_err(|e| setting("KRAKEN_API_SECRET", e.to_string()))?;
        cfg.tier = RateTier::parse(&self.kraken_tier).ok_or_else(|| {
            setting(
                "KRAKEN_TIER",
                format!(
                    "expected starter, intermediate or pro (got {})",
                    self.kraken_tier
                ),
            )
        })?;
        Ok(cfg)
    }

    /// One line per effective setting for the start-up log (credentials
    /// never printed).
    fn effective(&self, plan: &RunPlan) -> Vec<String> {
        let t = &plan.trading;
        let mut v = vec![
            format!("EXCHANGE={}", self.exchange.as_str()),
            format!("BOT_ID={}", plan.bot_id),
            format!("PAIR={}", t.pair),
            format!("SLOTS={}", t.slots),
            format!("ORDER_SIZE_USD={}", t.order_size),
            format!("GRID_SPACING_PCT={}", t.grid_spacing_pct),
            format!("ENTRY_PCT={}", t.entry_pct),
            format!("PROFIT_PCT={}", t.profit_pct),
            format!("REFRESH_PCT={}", t.refresh_pct),
            format!("POLL_INTERVAL_SEC={}", t.poll_interval_sec),
            format!("LEDGER_URL={}", self.ledger_url),
            format!("TRADER_DATABASE_URL={}", self.store),
            format!("TRADER_LISTEN={}", self.listen),
            format!(
                "TRADER_METRICS_LISTEN={}",
                self.metrics_listen
                    .map_or_else(|| "off".to_owned(), |a| a.to_string())
            ),
            format!("PRIVATE_CALL_BUDGET={}", self.call_budget),
            format!("PLACEMENT_STALE_SEC={}", self.placement_stale_sec),
            format!("POST_ONLY={}", self.post_only),
            format!("SHUTDOWN_FLUSH_SEC={}", self.shutdown_flush_sec),
        ];
        match self.exchange {
            ExchangeKind::Kraken => {
                v.push(format!("KRAKEN_API_URL={}", self.kraken_api_url));
                v.push(format!("KRAKEN_TIER={}", self.kraken_tier));
            }
            ExchangeKind::Paper => {
                v.push(format!("PAPER_MARKET={:?}", self.market));
                v.push(format!("PAPER_SEED={}", self.seed));
                v.push(format!("SIM_SPEED={}", self.sim_speed));
                v.push(format!(
                    "PAPER_BASE_BALANCE/PAPER_QUOTE_BALANCE={}/{}",
                    self.paper_base_balance, self.paper_quote_balance
                ));
            }
        }
        v
    }
}

/// Runs the trader until `shutdown` resolves (see the module docs).
///
/// # Errors
/// [`RunError`]: configuration mistakes before anything starts, or a failure
/// of the store or the control API.
pub async fn run(args: RunArgs, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let plan = args.plan()?;
    if let Some(at) = args.crash_at {
        healgrid_proto::crash::arm(at);
    }
    for line in args.effective(&plan) {
        tracing::info!(setting = %line, "effective configuration");
    }
    for w in &plan.warnings {
        tracing::warn!(setting = %w, "setting clamped");
    }
    for line in plan.healing.profile() {
        tracing::info!(profile = %line, "self-healing profile");
    }
    let server_security = args.security.server().map_err(tls_setting)?;
    if let Some(warning) = healgrid_proto::auth::exposure_warning(
        "THE TRADER",
        args.listen,
        &server_security.auth,
        "TRADER_TOKEN",
    ) {
        tracing::warn!("{warning}");
    }
    let ledger_tls = args.security.ledger_tls().map_err(tls_setting)?;
    let ledger = GrpcLedger::secured(
        &args.ledger_url,
        DEFAULT_CALL_TIMEOUT,
        ReplicaPolicy::default(),
        ledger_tls,
        args.security.ledger_token.as_ref(),
    )
    .map_err(|e| setting("LEDGER_URL", e.to_string()))?;
    let wiring = Wiring {
        ledger,
        control: server_security,
    };
    match args.exchange {
        ExchangeKind::Kraken => {
            let client =
                KrakenClient::new(args.kraken_config()?).map_err(|e| RunError::Exchange {
                    exchange: "kraken",
                    message: e.to_string(),
                })?;
            let poll = Duration::from_secs(plan.trading.poll_interval_sec);
            trade(&args, &plan, client, wiring, &SystemClock, poll, shutdown).await
        }
        ExchangeKind::Paper => {
            let pp = paper::find_pair(&plan.trading.pair).ok_or_else(|| {
                let listed: Vec<String> = paper::paper_pairs()
                    .into_iter()
                    .map(|p| p.info.spec.symbol)
                    .collect();
                setting(
                    "PAIR",
                    format!(
                        "the paper exchange does not list {} (it lists {})",
                        plan.trading.pair,
                        listed.join(", ")
                    ),
                )
            })?;
            let start_price = args.start_price.unwrap_or(pp.start_price);
            let mut market = paper_market(&args, &pp, start_price)?;
            let first = market
                .next_candle()
                .map_err(|e| setting("PAPER_MARKET", e.to_string()))?
                .ok_or_else(|| setting("PAPER_MARKET", "the market source holds no candles"))?;
            let clock = SimClock::new(first.time.saturating_mul(1000));
            let exchange = PaperExchange::new(
                PaperConfig {
                    pair: pp.info.clone(),
                    fees: FeeSchedule {
                        maker_pct: args.paper_maker_fee,
                        taker_pct: args.paper_taker_fee,
                    },
                    initial_base: args.paper_base_balance,
                    initial_quote: args.paper_quote_balance,
                    max_open_orders: 225,
                    fill_participation: None,
                },
                clock.clone(),
            );
            // A restarted paper trader must not reuse the previous run's
            // order ids against the same ledger.
            let run_salt = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            exchange.with_book(|b| b.set_txid_salt(run_salt));
            exchange.step(&first);
            let driver = paper::spawn_driver(exchange.clone(), market, first, args.sim_speed);
            // POLL_INTERVAL_SEC is simulated time: divide by the speed.
            let poll_ms = plan.trading.poll_interval_sec * 1000 / u64::from(args.sim_speed);
            let poll = Duration::from_millis(poll_ms.max(10));
            tracing::info!(
                sim_speed = args.sim_speed,
                loop_every_ms = poll.as_millis() as u64,
                "paper exchange: simulated time runs {}x real time",
                args.sim_speed
            );
            let result = trade(&args, &plan, exchange, wiring, &clock, poll, shutdown).await;
            driver.abort();
            result
        }
    }
}

/// How far in the past a fast synthetic paper run starts: 30 days.
pub const FAST_RUN_HISTORY_SEC: i64 = 30 * 86_400;

fn paper_market(
    args: &RunArgs,
    pp: &paper::PaperPair,
    start_price: Decimal,
) -> Result<Box<dyn MarketSource>, RunError> {
    Ok(match &args.market {
        MarketArg::Synthetic => {
            // A fast run replays the recent past so simulated time stays
            // behind the wall clock (the ledger refuses future times): at
            // --sim-speed S it catches up with the present after 30 days / S
            // of real time and then goes on in real time.
            let now_s = SystemClock.now_ms() / 1000;
            let history = if args.sim_speed > 1 {
                FAST_RUN_HISTORY_SEC
            } else {
                0
            };
            let start = now_s - history;
            Box::new(SyntheticMarket::new(SyntheticConfig {
                seed: args.seed,
                start_time: start - start.rem_euclid(60),
                start_price,
                price_decimals: pp.info.spec.price_decimals,
                ..SyntheticConfig::default()
            }))
        }
        MarketArg::Csv(path) => Box::new(
            CsvReplay::from_path(path).map_err(|e| setting("PAPER_MARKET", e.to_string()))?,
        ),
    })
}

/// What `run` sets up before trading: the ledger client and the control
/// API's token check and TLS.
struct Wiring {
    ledger: GrpcLedger,
    control: healgrid_proto::tls::ServerSecurity,
}

/// Asks the exchange for the pair, builds the runtime, serves the control
/// API and runs the loop until `shutdown`.
async fn trade<E: Exchange, C: Clock>(
    args: &RunArgs,
    plan: &RunPlan,
    exchange: E,
    wiring: Wiring,
    clock: &C,
    poll: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let name = args.exchange.as_str();
    let pair = &plan.trading.pair;
    // Before the first private call: nonces resume above the lease of the
    // process before (see `runtime::nonce_lease`).
    let store = TraderStore::open(&StoreLocation::parse(&args.store)).await?;
    crate::runtime::nonce_lease::resume(&store, &exchange).await?;
    let info = exchange.pair_info(pair).await.map_err(|e| {
        if e.to_string().contains("Unknown asset pair") {
            setting(
                "PAIR",
                format!("the {name} exchange does not know {pair} ({e})"),
            )
        } else {
            RunError::Exchange {
                exchange: name,
                message: format!("reading pair {pair}: {e}"),
            }
        }
    })?;
    let fees = exchange.fees(pair).await.map_err(|e| RunError::Exchange {
        exchange: name,
        message: format!("reading the fee tier: {e}"),
    })?;
    tracing::info!(pair = %info.spec.symbol, price_decimals = info.spec.price_decimals,
        lot_decimals = info.spec.lot_decimals, ordermin = %info.spec.ordermin,
        costmin = %info.spec.costmin, maker_fee_pct = %fees.maker_pct,
        taker_fee_pct = %fees.taker_pct, "pair facts from the exchange");
    let (engine, w) = plan.trading.engine_config(&plan.healing, info.spec.clone());
    for w in w {
        tracing::warn!(setting = w.field, given = %w.given, used = %w.used, rule = w.rule,
            "setting clamped by the engine");
    }
    match exchange.ticker(pair).await {
        Ok(t) => match crate::engine::pricing::size_shortfall(&engine, t.last) {
            Some(short) => tracing::error!(order_size_usd = %short.order_size_usd,
                price = %short.price, min_volume = %short.min_volume,
                min_size_usd = %short.min_size_usd,
                "NOTHING WILL TRADE: {short}"),
            None => tracing::info!(order_size = %engine.order_size, price = %t.last,
                "order size meets the pair minimum at the current price"),
        },
        Err(e) => tracing::warn!(error = %e, "no ticker at start-up: order size not checked yet"),
    }
    if args.exchange == ExchangeKind::Paper && store.load_state().await?.is_some() {
        tracing::warn!(store = %args.store,
            "paper exchange starts empty on every run, but this store holds state from an \
             earlier run: its orders no longer exist; use a fresh TRADER_DATABASE_URL for paper runs");
    }
    let mut rcfg = RuntimeConfig::new(&plan.bot_id, engine);
    rcfg.call_budget = args.call_budget;
    rcfg.placement_stale = StalePolicy::for_loop(
        i64::try_from(args.placement_stale_sec.saturating_mul(1000)).unwrap_or(i64::MAX),
        i64::try_from(plan.trading.poll_interval_sec.saturating_mul(1000)).unwrap_or(i64::MAX),
    );
    rcfg.post_only = args.post_only;
    rcfg.shutdown_flush = Duration::from_secs(args.shutdown_flush_sec);
    rcfg.stage = plan.healing.stage();
    rcfg.market = plan.healing.market.clone();
    rcfg.market.churner = plan.healing.churner_config(fees.round_trip_pct());
    rcfg.reprice = plan
        .healing
        .reprice_config(fees.round_trip_pct(), plan.trading.poll_interval_sec);
    tracing::info!(reprice = ?rcfg.reprice, "repricing in force");
    let metrics = TraderMetrics::new();
    if let Some(addr) = args.metrics_listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::MetricsBind { addr, source })?;
        tokio::spawn(healgrid_metrics::serve(
            listener,
            metrics.registry(),
            std::future::pending(),
        ));
    }
    let exchange = Metered::new(exchange, metrics.clone());
    let mut rt = Runtime::new(rcfg, exchange, wiring.ledger, store).await?;
    rt.observe_into(metrics);
    let handle = rt.handle();
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: args.listen,
            source,
        })?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let security = wiring.control;
    let server = tokio::spawn(async move {
        crate::server::serve_secured(
            handle,
            listener,
            async {
                let _ = stop_rx.await;
            },
            &security,
        )
        .await
    });
    tracing::info!(listen = %args.listen, bot_id = %plan.bot_id, "trader running; SIGTERM or Ctrl-C to stop");
    let result = rt.run_forever(clock, poll, shutdown).await;
    tracing::info!("trading loop stopped; resting orders left on the exchange");
    let _ = stop_tx.send(());
    match server.await {
        Ok(r) => r?,
        Err(e) => tracing::warn!(error = %e, "control API task ended abnormally"),
    }
    result?;
    Ok(())
}
