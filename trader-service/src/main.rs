//! `trader-service` binary: subcommands for the trader's processes: the
//! trading service itself (`run`), the Kraken-compatible simulator
//! (`kraken-sim`) and the backtest (`backtest`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use rust_decimal::Decimal;
use tracing::info;
use tracing_subscriber::EnvFilter;

use trader_service::exchange::kraken::limits::RateTier;
use trader_service::exchange::kraken::sign::decode_secret;
use trader_service::exchange::market::{
    CsvReplay, MarketSource, SyntheticConfig, SyntheticMarket, write_csv,
};
use trader_service::exchange::paper::PaperConfig;
use trader_service::exchange::sim_server::{self, SimConfig};
use trader_service::exchange::{Clock, PairInfo, SystemClock};
use trader_service::pair::{FeeSchedule, PairSpec};

#[derive(Debug, Parser)]
#[command(name = "trader-service", version, about = "healgrid trader service")]
struct Cli {
    /// Log as JSON lines instead of text (filter with RUST_LOG).
    #[arg(long, env = "LOG_JSON", global = true, default_value_t = false)]
    log_json: bool,
    /// Log format: `text` or `json` (same as --log-json when `json`).
    #[arg(long, env = "LOG_FORMAT", global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the trader: the trading loop on the paper exchange or Kraken, the
    /// ledger outbox, and the gRPC control API (status, pause, resume).
    Run(Box<trader_service::service::RunArgs>),
    /// Talk to a running trader's control API: health, status, pause, resume.
    Ctl(trader_service::ctl::CtlArgs),
    /// Serve the paper exchange behind Kraken's REST API, for demos and for
    /// testing any Kraken client without internet.
    KrakenSim(Box<SimArgs>),
    /// Replay candles through the trader runtime on the paper exchange
    /// (simulated time, in-process ledger) and write a JSON report.
    #[cfg(feature = "local-ledger")]
    Backtest(Box<trader_service::backtest::BacktestArgs>),
    /// Write a seeded synthetic market (ranging stretches and trends) as a
    /// candle CSV for `backtest --candles` or `kraken-sim --market csv:`.
    Synth(SynthArgs),
    /// Print what a trader's store holds (orders, subsidy view, outbox,
    /// unresolved placements) as JSON, read only: what a stopped trader
    /// will resume with, or a running one last committed.
    StoreAudit(StoreAuditArgs),
}

#[derive(Debug, Args)]
struct StoreAuditArgs {
    /// The trader's store, as `run --store` takes it (`sqlite://FILE` or a
    /// path).
    #[arg(
        long,
        env = "TRADER_DATABASE_URL",
        default_value = "sqlite://healgrid-trader.db"
    )]
    store: String,
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// Where to write the CSV.
    #[arg(long)]
    out: PathBuf,
    /// Number of 1-minute candles (350000 is about 8 months).
    #[arg(long, default_value_t = 350_000)]
    candles: usize,
    /// RNG seed: same seed, same path.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Opening price.
    #[arg(long, default_value = "0.1")]
    start_price: Decimal,
    /// Open time of the first candle, unix seconds.
    #[arg(long, default_value_t = 1_700_000_040)]
    start_time: i64,
}

/// Where the simulator's prices come from.
#[derive(Debug, Clone)]
enum MarketArg {
    Synthetic,
    Csv(PathBuf),
}

fn parse_market(s: &str) -> Result<MarketArg, String> {
    match s.split_once(':') {
        None if s == "synthetic" => Ok(MarketArg::Synthetic),
        Some(("csv", path)) if !path.is_empty() => Ok(MarketArg::Csv(PathBuf::from(path))),
        _ => Err(format!("expected `synthetic` or `csv:PATH`, got `{s}`")),
    }
}

#[derive(Debug, Args)]
struct SimArgs {
    /// Address to listen on; keep it on loopback (control endpoints are
    /// unauthenticated).
    #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// The API key clients must send.
    #[arg(long, env = "SIM_API_KEY")]
    api_key: String,
    /// The API secret, base64 as Kraken issues it.
    #[arg(long, env = "SIM_API_SECRET", hide_env_values = true)]
    api_secret: String,
    /// Pair symbol served.
    #[arg(long, env = "PAIR", default_value = "XDGUSD")]
    pair: String,
    /// Base asset id reported in balances.
    #[arg(long, default_value = "XXDG")]
    base_asset: String,
    /// Quote asset id reported in balances.
    #[arg(long, default_value = "ZUSD")]
    quote_asset: String,
    /// Price decimals of the pair.
    #[arg(long, default_value_t = 7)]
    price_decimals: u32,
    /// Volume decimals of the pair.
    #[arg(long, default_value_t = 8)]
    lot_decimals: u32,
    /// Minimum order volume (base).
    #[arg(long, default_value = "50")]
    ordermin: Decimal,
    /// Minimum order cost (quote).
    #[arg(long, default_value = "0.5")]
    costmin: Decimal,
    /// Maker fee, percent.
    #[arg(long, default_value = "0.25")]
    maker_fee: Decimal,
    /// Taker fee, percent.
    #[arg(long, default_value = "0.40")]
    taker_fee: Decimal,
    /// Initial base balance.
    #[arg(long, default_value = "10000")]
    base_balance: Decimal,
    /// Initial quote balance.
    #[arg(long, default_value = "1000")]
    quote_balance: Decimal,
    /// Market source: `synthetic` or `csv:PATH` (time,open,high,low,close,volume).
    #[arg(long, default_value = "synthetic", value_parser = parse_market)]
    market: MarketArg,
    /// With `--market csv:`: candles skipped at the start of the file.
    #[arg(long, default_value_t = 0)]
    replay_skip: usize,
    /// With `--market csv:`: hours of history played from the first
    /// candle kept (1..=8760); the market freezes after them. Default: the
    /// rest of the file.
    #[arg(long)]
    replay_hours: Option<u32>,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Opening price of the synthetic market.
    #[arg(long, default_value = "0.1")]
    start_price: Decimal,
    /// Simulated seconds per real second (0: only `POST /sim/step` moves the
    /// market and the clock). The clock starts at the wall clock; a CSV
    /// replay is shifted so its first candle opens then.
    #[arg(long, default_value_t = 60)]
    speed: u32,
    /// Rate-limit tier enforced: starter, intermediate or pro.
    #[arg(long, default_value = "starter")]
    tier: String,
    /// Open-order limit per pair.
    #[arg(long, default_value_t = 60)]
    max_open_orders: usize,
}

fn init_logging(json: bool, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn sim_config(a: &SimArgs) -> Result<(SimConfig, Box<dyn MarketSource>)> {
    let secret = decode_secret(&a.api_secret).context("--api-secret")?;
    if a.api_key.trim().is_empty() {
        bail!("--api-key must not be empty");
    }
    let tier = RateTier::parse(&a.tier)
        .with_context(|| format!("--tier {}: expected starter, intermediate or pro", a.tier))?;
    if a.price_decimals > 12 || a.lot_decimals > 12 {
        bail!("--price-decimals and --lot-decimals must be at most 12");
    }
    for (name, fee) in [("--maker-fee", a.maker_fee), ("--taker-fee", a.taker_fee)] {
        if fee < Decimal::ZERO || fee > Decimal::from(10) {
            bail!("{name} {fee} must be a percentage between 0 and 10");
        }
    }
    if a.ordermin < Decimal::ZERO || a.costmin < Decimal::ZERO {
        bail!("--ordermin and --costmin must not be negative");
    }
    if a.base_balance < Decimal::ZERO || a.quote_balance < Decimal::ZERO {
        bail!("balances must not be negative");
    }
    if a.start_price <= Decimal::ZERO {
        bail!("--start-price must be positive");
    }
    if let Some(h) = a.replay_hours
        && !(1..=8760).contains(&h)
    {
        bail!("--replay-hours {h} must be between 1 and 8760");
    }
    let (market, interval_secs): (Box<dyn MarketSource>, i64) = match &a.market {
        MarketArg::Synthetic if a.replay_skip > 0 || a.replay_hours.is_some() => {
            bail!("--replay-skip and --replay-hours need --market csv:PATH");
        }
        MarketArg::Synthetic => {
            let now_s = SystemClock.now_ms() / 1000;
            let market = Box::new(SyntheticMarket::new(SyntheticConfig {
                seed: a.seed,
                start_time: now_s - now_s.rem_euclid(60),
                start_price: a.start_price,
                price_decimals: a.price_decimals,
                ..SyntheticConfig::default()
            }));
            (market, 60)
        }
        MarketArg::Csv(path) => {
            let replay = CsvReplay::from_path(path).context("--market csv")?;
            if replay.is_empty() {
                bail!("{} holds no candles", path.display());
            }
            let span = a.replay_hours.map(|h| i64::from(h) * 3600);
            let replay = replay
                .window(a.replay_skip, span)
                .with_context(|| format!("--replay-skip / --replay-hours on {}", path.display()))?;
            let interval = replay.interval_secs().unwrap_or(60);
            (Box::new(replay), interval)
        }
    };
    let paper = PaperConfig {
        pair: PairInfo {
            spec: PairSpec {
                symbol: a.pair.clone(),
                price_decimals: a.price_decimals,
                lot_decimals: a.lot_decimals,
                ordermin: a.ordermin,
                costmin: a.costmin,
            },
            base: a.base_asset.clone(),
            quote: a.quote_asset.clone(),
        },
        fees: FeeSchedule {
            maker_pct: a.maker_fee,
            taker_pct: a.taker_fee,
        },
        initial_base: a.base_balance,
        initial_quote: a.quote_balance,
        max_open_orders: a.max_open_orders,
        fill_participation: None,
    };
    let cfg = SimConfig {
        listen: a.listen,
        api_key: a.api_key.clone(),
        api_secret: secret,
        paper,
        tier,
        speed: Some(a.speed).filter(|s| *s > 0),
        interval_secs,
        hang: Duration::from_secs(30),
        delayed_accept: Duration::from_secs(5),
    };
    Ok((cfg, market))
}

/// `synth`: the seeded synthetic market written as CSV.
fn run_synth(a: &SynthArgs) -> Result<()> {
    if a.start_price <= Decimal::ZERO {
        bail!("--start-price must be positive");
    }
    if a.candles == 0 {
        bail!("--candles must be at least 1");
    }
    let mut market = SyntheticMarket::new(SyntheticConfig {
        seed: a.seed,
        start_time: a.start_time,
        start_price: a.start_price,
        ..SyntheticConfig::default()
    });
    let file =
        std::fs::File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let name = a.out.display().to_string();
    let n = write_csv(&mut market, a.candles, std::io::BufWriter::new(file), &name)?;
    eprintln!("wrote {n} candles to {name}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn run_sim(args: SimArgs) -> Result<()> {
    let (cfg, market) = sim_config(&args)?;
    let handle = sim_server::start(cfg, Some(market), SystemClock.now_ms())
        .await
        .with_context(|| format!("starting the simulator on {}", args.listen))?;
    info!(
        url = handle.url(),
        pair = args.pair,
        "kraken-sim ready; Ctrl-C to stop"
    );
    shutdown_signal().await;
    info!("shutting down");
    handle.shutdown();
    Ok(())
}

/// `backtest`: loads the candles, runs the runtime over them (under each
/// stage of `--compare`, or once) and writes the report.
#[cfg(feature = "local-ledger")]
async fn run_backtest_cmd(args: &trader_service::backtest::BacktestArgs) -> Result<()> {
    let mut source = CsvReplay::from_path(&args.candles)
        .with_context(|| format!("reading {}", args.candles.display()))?;
    let mut candles = Vec::with_capacity(source.len());
    while let Some(c) = source.next_candle()? {
        candles.push(c);
    }
    let stages: Vec<Option<_>> = match &args.compare {
        Some(list) => list.iter().copied().map(Some).collect(),
        None => vec![args.stage],
    };
    let mut reports = Vec::new();
    for stage in stages {
        let (cfg, warnings) = args.resolve_stage(stage).context("backtest settings")?;
        for w in warnings {
            tracing::warn!(setting = %w, "setting clamped");
        }
        eprintln!("self-healing profile: {}", cfg.profile.join(", "));
        eprintln!("repricing in force: {:?}", cfg.reprice);
        eprintln!("churner in force: {:?}", cfg.market.churner);
        if let Some(short) = candles
            .first()
            .and_then(|c| trader_service::engine::pricing::size_shortfall(&cfg.engine, c.close))
        {
            tracing::warn!("at the first candle: {short}");
        }
        let report = trader_service::backtest::run_backtest(&candles, &cfg)
            .await
            .context("backtest")?;
        if report.placements == 0 {
            eprintln!(
                "warning: the backtest placed no order: {} entries waited for the pair minimum \
                 (order size {}); see `trader-service backtest --help` for ORDER_SIZE_USD",
                report.entries_below_minimum, cfg.engine.order_size
            );
        }
        eprintln!(
            "stage {:?}: {} candles, {} fills, {} cycles, net {} USD (realized {}) in {:.2}s",
            report.stage,
            report.candles,
            report.fills,
            report.completed_cycles,
            report.net_pnl_usd,
            report.realized_pnl_usd,
            report.wall_seconds
        );
        reports.push(report);
    }
    let json = if args.compare.is_some() {
        eprint!("{}", trader_service::backtest::compare_table(&reports));
        let by_stage: serde_json::Map<String, serde_json::Value> = reports
            .iter()
            .map(|r| Ok((format!("{:?}", r.stage), serde_json::to_value(r)?)))
            .collect::<Result<_, serde_json::Error>>()?;
        serde_json::to_string_pretty(&by_stage)?
    } else {
        serde_json::to_string_pretty(&reports[0])?
    };
    match &args.out {
        Some(path) => std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}

/// `run`: the trader service. A configuration mistake is one line on stderr
/// naming the setting and exit code 2 (never a panic or a backtrace); other
/// failures exit 1.
async fn run_service(args: trader_service::service::RunArgs) -> Result<()> {
    match trader_service::service::run(args, shutdown_signal()).await {
        Ok(()) => {
            info!("trader stopped cleanly");
            Ok(())
        }
        Err(e) => {
            if !e.is_config() {
                tracing::error!(error = %e, "trader stopped with an error");
            }
            eprintln!("trader-service: {e}");
            std::process::exit(if e.is_config() { 2 } else { 1 });
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // A backtest logs every simulated decision: warnings only by default.
    let level = match cli.command {
        #[cfg(feature = "local-ledger")]
        Command::Backtest(_) => "warn",
        Command::Ctl(_) | Command::Synth(_) | Command::StoreAudit(_) => "warn",
        Command::KrakenSim(_) | Command::Run(_) => "info",
    };
    init_logging(cli.log_json || cli.log_format == "json", level);
    match cli.command {
        Command::Run(args) => run_service(*args).await,
        Command::Ctl(args) => match trader_service::ctl::run(&args).await {
            Ok(text) => {
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
                Ok(())
            }
            Err(e) => {
                eprintln!("trader-service ctl: {e}");
                std::process::exit(1);
            }
        },
        Command::KrakenSim(args) => run_sim(*args).await,
        #[cfg(feature = "local-ledger")]
        Command::Backtest(args) => run_backtest_cmd(&args).await,
        Command::Synth(args) => run_synth(&args),
        Command::StoreAudit(args) => {
            use trader_service::runtime::store::StoreLocation;
            let StoreLocation::File(path) = StoreLocation::parse(&args.store) else {
                eprintln!("trader-service store-audit: a memory store is gone with its trader");
                std::process::exit(2);
            };
            match trader_service::runtime::audit::audit_file(&path).await {
                Ok(audit) => {
                    println!("{}", serde_json::to_string_pretty(&audit)?);
                    Ok(())
                }
                Err(e) => {
                    eprintln!("trader-service store-audit: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_argument_parses() {
        assert!(matches!(
            parse_market("synthetic"),
            Ok(MarketArg::Synthetic)
        ));
        assert!(matches!(
            parse_market("csv:/tmp/x.csv"),
            Ok(MarketArg::Csv(_))
        ));
        assert!(parse_market("csv:").is_err());
        assert!(parse_market("random").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
