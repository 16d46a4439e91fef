//! `ledger-bench`: JournalEvent throughput and latency over gRPC on
//! PostgreSQL next to a raw sqlx insert of the same rows, two ledger
//! processes on one database next to one, and GetSubsidyBalance latency as
//! one slot's journal grows.
//!
//! The ledgers are real `ledger-service` processes on loopback ports, each
//! build in its own schema of `DATABASE_URL` (dropped afterwards), so the
//! gRPC stack, the ledger rules and the database are all on the measured
//! path. `--baseline-bin` names a second build (e.g. of the commit before a
//! change); its rounds alternate with the measured build's and the raw
//! inserts in the same run, so a shared machine's noise hits all sides.
//!
//! The last line is for scripts:
//! `ledger-bench: ratio32=<x> p99_32_ms=<y> p99_256_ms=<z> errors256=<n>
//! replicas_gain64=<g> subsidy_flat=<f>` (all of the measured build):
//! throughput over the raw insert at 32 clients, p99 latencies at 32 and
//! 256 clients, failed calls at 256, throughput of two processes over one
//! at 64 clients, and GetSubsidyBalance p50 at the largest journal over the
//! smallest.
//!
//! ```text
//! cargo build --release -p ledger-service
//! target/release/ledger-bench --baseline-bin /tmp/before/ledger-service
//! target/release/ledger-bench --quick   # CI smoke pass
//! ```

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use prost_types::Timestamp;
use sqlx::{Connection, PgConnection, PgPool, postgres::PgPoolOptions};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const T0: i64 = 1_700_000_000;

/// Pool size of the raw baseline and of each ledger process, unless set:
/// the ledger's own default.
const DEFAULT_POOL: u32 = 8;

/// Benchmark settings.
#[derive(Debug, Parser)]
#[command(name = "ledger-bench", about)]
struct Args {
    /// PostgreSQL to benchmark against; fresh schemas are created in it.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Tiny sizes for a CI smoke pass.
    #[arg(long)]
    quick: bool,
    /// The `ledger-service` build to measure; by default the one next to
    /// this program.
    #[arg(long)]
    ledger_bin: Option<PathBuf>,
    /// A second build to measure side by side (the "before").
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// Concurrent clients per JournalEvent round.
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    concurrency: Vec<usize>,
    /// Total JournalEvent calls per round (a single client makes a quarter).
    #[arg(long, default_value_t = 4000)]
    ops: usize,
    /// Clients of the one-process versus two-process round.
    #[arg(long, default_value_t = 64)]
    replica_clients: usize,
    /// Journal sizes (rows of one slot) for the GetSubsidyBalance latency.
    #[arg(long, value_delimiter = ',', default_value = "1000,1000000")]
    subsidy_rows: Vec<u64>,
    /// GetSubsidyBalance calls per size.
    #[arg(long, default_value_t = 2000)]
    subsidy_samples: usize,
    /// Pooled connections of each ledger process and of the raw baseline.
    #[arg(long, default_value_t = DEFAULT_POOL)]
    pool: u32,
    /// Rounds per side and level, alternated; the table shows the median of
    /// each side, since one round on a shared machine can be off by a third
    /// either way (autovacuum, checkpoints).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

type Client = LedgerServiceClient<Channel>;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// One measured round.
struct Round {
    ops: usize,
    errors: usize,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Round {
    fn throughput(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The round with the median throughput.
fn median(mut rounds: Vec<Round>) -> anyhow::Result<Round> {
    rounds.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    let mid = rounds.len() / 2;
    rounds.into_iter().nth(mid).context("no rounds")
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")
}

fn open_request(bot: &str, slot: u32) -> pb::OpenPositionRequest {
    pb::OpenPositionRequest {
        bot_id: bot.into(),
        slot_id: Some(slot),
        trade_id: pb::TradeId::B as i32,
        slot_mode: pb::SlotMode::Sticky as i32,
        cycle: 1,
        open_key: format!("{bot}-{slot}"),
        entry_price: "0.0931".into(),
        entry_cost: "9.31".into(),
        entry_fee: "0.0242".into(),
        entry_volume: "100".into(),
        entry_time: ts(T0),
        entry_regime: pb::Regime::Ranging as i32,
        entry_volatility: "0.8".into(),
        original_exit_price: "0.094".into(),
        target_profit_pct: "1".into(),
        exit_txid: "OX".into(),
        migration: false,
    }
}

fn credit(position_id: u64, key: String) -> pb::JournalEventRequest {
    pb::JournalEventRequest {
        position_id,
        event_key: key.clone(),
        at: ts(T0 + 60),
        event_type: pb::EventType::ChurnerProfit as i32,
        details: Some(pb::EventDetails {
            kind: Some(pb::event_details::Kind::ChurnerProfit(
                pb::ChurnerProfitDetails {
                    net_profit: "0.01".into(),
                    churner_cycle_id: key,
                },
            )),
        }),
    }
}

/// A running `ledger-service` process.
struct Ledger {
    child: Child,
    endpoint: String,
}

impl Ledger {
    /// Starts `bin` on a free loopback port over `url` and waits until it
    /// answers.
    async fn start(bin: &Path, url: &str, pool: u32) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .env("LEDGER_LISTEN", format!("127.0.0.1:{port}"))
            .env("LEDGER_DATABASE_URL", url)
            .env("LEDGER_DB_MAX_CONNECTIONS", pool.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut c) = LedgerServiceClient::connect(endpoint.clone()).await
                && c.get_subsidy_balance(pb::GetSubsidyBalanceRequest {
                    bot_id: "probe".into(),
                    slot_id: Some(0),
                })
                .await
                .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} did not start on port {port}", bin.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self { child, endpoint })
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// JournalEvent over gRPC: `clients` tasks, each on its own slot, spread
/// over `endpoints` in turn. Failed calls are counted, not fatal.
async fn grpc_round(
    endpoints: &[String],
    bot: &str,
    clients: usize,
    ops: usize,
) -> anyhow::Result<Round> {
    let mut positions = Vec::new();
    for slot in 0..clients {
        let endpoint = endpoints[slot % endpoints.len()].clone();
        let mut setup = LedgerServiceClient::connect(endpoint).await?;
        let p = setup
            .open_position(open_request(bot, u32::try_from(slot)?))
            .await?
            .into_inner();
        positions.push(p.position.context("position")?.position_id);
    }
    let per_client = (ops / clients).max(1);
    let mut connected = Vec::new();
    for (c, position_id) in positions.into_iter().enumerate() {
        let endpoint = endpoints[c % endpoints.len()].clone();
        let client: Client = LedgerServiceClient::connect(endpoint).await?;
        connected.push((c, position_id, client));
    }
    let start = Instant::now();
    let tasks: Vec<_> = connected
        .into_iter()
        .map(|(c, position_id, mut client)| {
            tokio::spawn(async move {
                let mut h = histogram()?;
                let mut errors = 0;
                for n in 0..per_client {
                    let t = Instant::now();
                    let call = client
                        .journal_event(credit(position_id, format!("k-{c}-{n}")))
                        .await;
                    if call.is_err() {
                        errors += 1;
                    }
                    h.record(u64::try_from(t.elapsed().as_micros())?.max(1))?;
                }
                anyhow::Ok((h, errors))
            })
        })
        .collect();
    let mut latency_us = histogram()?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await??;
        latency_us.add(h)?;
        errors += e;
    }
    Ok(Round {
        ops: per_client * clients,
        errors,
        elapsed: start.elapsed(),
        latency_us,
    })
}

/// The same rows inserted with plain sqlx, one autocommit INSERT each (one
/// round trip: the pool does not ping).
async fn raw_round(pool: &PgPool, bot: &str, clients: usize, ops: usize) -> anyhow::Result<Round> {
    let position_id: i64 = sqlx::query_scalar("SELECT MIN(position_id) FROM position_ledger")
        .fetch_one(pool)
        .await?;
    let per_client = (ops / clients).max(1);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let pool = pool.clone();
            let bot = bot.to_owned();
            tokio::spawn(async move {
                let mut h = histogram()?;
                for n in 0..per_client {
                    let t = Instant::now();
                    let seq = i64::try_from(n)? + 1;
                    let key = format!("raw-{c}-{n}");
                    let details = format!(
                        r#"{{"churner_profit":{{"net_profit":"0.01","churner_cycle_id":"{key}"}}}}"#
                    );
                    sqlx::query(
                        "INSERT INTO position_journal (position_id, bot_id, slot_id, slot_seq, at, \
                           event_type, details, event_key, affects_subsidy, delta_churner_profit, \
                           delta_over_performance, delta_subsidy, delta_operator, cum_churner_profit, \
                           cum_over_performance, cum_subsidy, cum_operator) \
                         VALUES ($1, $2, $3, $4, to_timestamp($5), 'churner_profit', $6::jsonb, $7, true, \
                           0.01, 0, 0, 0, $8, 0, 0, 0)",
                    )
                    .bind(position_id)
                    .bind(&bot)
                    .bind(i64::try_from(c)?)
                    .bind(seq)
                    .bind(T0 as f64)
                    .bind(details)
                    .bind(key)
                    .bind(rust_decimal::Decimal::new(seq, 2))
                    .execute(&pool)
                    .await?;
                    h.record(u64::try_from(t.elapsed().as_micros())?.max(1))?;
                }
                anyhow::Ok(h)
            })
        })
        .collect();
    let mut latency_us = histogram()?;
    for t in tasks {
        latency_us.add(t.await??)?;
    }
    Ok(Round {
        ops: per_client * clients,
        errors: 0,
        elapsed: start.elapsed(),
        latency_us,
    })
}

/// Loads `rows` credit rows into one slot with `generate_series`, keeping
/// the cumulative columns exactly as the ledger would have written them.
async fn bulk_load(pool: &PgPool, client: &mut Client, bot: &str, rows: u64) -> anyhow::Result<()> {
    let p = client
        .open_position(open_request(bot, 0))
        .await?
        .into_inner();
    let position_id = i64::try_from(p.position.context("position")?.position_id)?;
    let rows = i64::try_from(rows)?;
    sqlx::query(
        "INSERT INTO position_journal (position_id, bot_id, slot_id, slot_seq, at, event_type, \
           details, event_key, affects_subsidy, delta_churner_profit, delta_over_performance, \
           delta_subsidy, delta_operator, cum_churner_profit, cum_over_performance, cum_subsidy, \
           cum_operator) \
         SELECT $1, $2, 0, g + 1, to_timestamp(1700000100), 'churner_profit', \
           '{\"churner_profit\":{\"net_profit\":\"0.01\",\"churner_cycle_id\":\"bulk\"}}'::jsonb, \
           'bulk-' || g, true, 0.01, 0, 0, 0, g * 0.01, 0, 0, 0 \
         FROM generate_series(1, $3) AS g",
    )
    .bind(position_id)
    .bind(bot)
    .bind(rows)
    .execute(pool)
    .await?;
    sqlx::query("UPDATE ledger_slots SET last_seq = $3 + 1 WHERE bot_id = $1 AND slot_id = $2")
        .bind(bot)
        .bind(0_i64)
        .bind(rows)
        .execute(pool)
        .await?;
    sqlx::query("ANALYZE position_journal")
        .execute(pool)
        .await?;
    Ok(())
}

async fn subsidy_latency(
    pool: &PgPool,
    endpoint: &str,
    rows: u64,
    samples: usize,
) -> anyhow::Result<(Round, String)> {
    let bot = format!("subsidy-{rows}");
    let mut client = LedgerServiceClient::connect(endpoint.to_owned()).await?;
    let load = Instant::now();
    bulk_load(pool, &mut client, &bot, rows).await?;
    eprintln!(
        "loaded {rows} journal rows in {:.1} s",
        load.elapsed().as_secs_f64()
    );
    let request = pb::GetSubsidyBalanceRequest {
        bot_id: bot,
        slot_id: Some(0),
    };
    let mut latency_us = histogram()?;
    let mut balance = String::new();
    // Warm-up.
    for _ in 0..20 {
        client.get_subsidy_balance(request.clone()).await?;
    }
    let start = Instant::now();
    for _ in 0..samples {
        let t = Instant::now();
        let r = client
            .get_subsidy_balance(request.clone())
            .await?
            .into_inner();
        latency_us.record(u64::try_from(t.elapsed().as_micros())?.max(1))?;
        balance = r.subsidy.context("subsidy")?.balance;
    }
    let expected = rust_decimal::Decimal::new(i64::try_from(rows)?, 2)
        .normalize()
        .to_string();
    if balance != expected {
        bail!("balance after {rows} rows is {balance}, expected {expected}");
    }
    Ok((
        Round {
            ops: samples,
            errors: 0,
            elapsed: start.elapsed(),
            latency_us,
        },
        balance,
    ))
}

/// A schema of the benchmark database, dropped by [`Schemas::drop_all`].
struct Schemas {
    admin: PgConnection,
    base_url: String,
    names: Vec<String>,
}

impl Schemas {
    /// A fresh schema; returns a URL whose sessions use only it.
    async fn create(&mut self, tag: &str) -> anyhow::Result<String> {
        let name = format!("ledger_bench_{tag}_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut self.admin)
            .await?;
        self.names.push(name.clone());
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}options[search_path]={name}", self.base_url))
    }

    async fn drop_all(mut self) -> anyhow::Result<()> {
        for name in &self.names {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
                .execute(&mut self.admin)
                .await?;
        }
        Ok(())
    }
}

/// A build under measurement.
struct Build {
    label: &'static str,
    bin: PathBuf,
    url: String,
    ledger: Option<Ledger>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.ops = 240;
        args.repeat = 1;
        args.concurrency = vec![1, 32, 64];
        args.replica_clients = 16;
        args.subsidy_rows = vec![1_000, 10_000];
        args.subsidy_samples = 100;
    }
    let admin = PgConnection::connect(&args.database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let mut schemas = Schemas {
        admin,
        base_url: args.database_url.clone(),
        names: Vec::new(),
    };
    let result = run(&args, &mut schemas).await;
    schemas.drop_all().await?;
    result
}

fn default_ledger_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("program directory")?;
    Ok(dir.join("ledger-service"))
}

async fn run(args: &Args, schemas: &mut Schemas) -> anyhow::Result<()> {
    let bin = match &args.ledger_bin {
        Some(b) => b.clone(),
        None => default_ledger_bin()?,
    };
    let mut builds = vec![Build {
        label: "this build",
        bin,
        url: schemas.create("after").await?,
        ledger: None,
    }];
    if let Some(bin) = &args.baseline_bin {
        builds.push(Build {
            label: "baseline",
            bin: bin.clone(),
            url: schemas.create("before").await?,
            ledger: None,
        });
    }
    for b in &mut builds {
        b.ledger = Some(Ledger::start(&b.bin, &b.url, args.pool).await?);
    }
    // Without sqlx's ping per lent connection, as the ledger's own pool:
    // the baseline is a single-row insert done as well as sqlx allows.
    let raw_pool = PgPoolOptions::new()
        .max_connections(args.pool)
        .test_before_acquire(false)
        .connect(&builds[0].url)
        .await?;

    println!(
        "JournalEvent (churner_profit credit, one slot per client), about {} calls per round",
        args.ops
    );
    println!();
    println!(
        "| clients | build | ops/s | p50 ms | p99 ms | errors | raw sqlx ops/s | raw p50 ms | raw p99 ms | ratio |"
    );
    println!(
        "|--------:|:------|------:|-------:|-------:|-------:|---------------:|-----------:|-----------:|------:|"
    );
    let mut line = Line::default();
    let mut round = 0;
    for &clients in &args.concurrency {
        let clients = clients.max(1);
        let ops = if clients == 1 { args.ops / 4 } else { args.ops };
        let mut sides: Vec<Vec<Round>> = builds.iter().map(|_| Vec::new()).collect();
        let mut raws = Vec::new();
        for _ in 0..args.repeat.max(1) {
            for (b, side) in builds.iter().zip(&mut sides) {
                round += 1;
                let endpoint = b.endpoint()?;
                side.push(grpc_round(&[endpoint], &format!("bench-{round}"), clients, ops).await?);
            }
            round += 1;
            raws.push(raw_round(&raw_pool, &format!("raw-{round}"), clients, ops).await?);
        }
        let raw = median(raws)?;
        for (b, side) in builds.iter().zip(sides) {
            let g = median(side)?;
            let ratio = g.throughput() / raw.throughput();
            println!(
                "| {clients:>7} | {} | {:>5.0} | {:>6.2} | {:>6.2} | {:>6} | {:>14.0} | {:>10.2} | {:>10.2} | {:>5.2} |",
                b.label,
                g.throughput(),
                g.ms(0.5),
                g.ms(0.99),
                g.errors,
                raw.throughput(),
                raw.ms(0.5),
                raw.ms(0.99),
                ratio,
            );
            if b.label == "this build" {
                line.record(clients, &g, ratio);
            }
        }
    }
    println!();
    println!(
        "Median of {} alternated rounds per side.",
        args.repeat.max(1)
    );

    println!();
    println!(
        "{} clients, one ledger process versus two on the same database",
        args.replica_clients
    );
    println!();
    println!("| build | one process ops/s | two processes ops/s | gain | errors |");
    println!("|:------|------------------:|--------------------:|-----:|-------:|");
    for b in &builds {
        let second = Ledger::start(&b.bin, &b.url, args.pool).await?;
        let one_endpoint = vec![b.endpoint()?];
        let two_endpoints = vec![b.endpoint()?, second.endpoint.clone()];
        let (mut ones, mut twos) = (Vec::new(), Vec::new());
        for _ in 0..args.repeat.max(1) {
            round += 1;
            ones.push(
                grpc_round(
                    &one_endpoint,
                    &format!("one-{round}"),
                    args.replica_clients,
                    args.ops,
                )
                .await?,
            );
            round += 1;
            twos.push(
                grpc_round(
                    &two_endpoints,
                    &format!("two-{round}"),
                    args.replica_clients,
                    args.ops,
                )
                .await?,
            );
        }
        second.stop().await?;
        let (one, two) = (median(ones)?, median(twos)?);
        let gain = two.throughput() / one.throughput();
        println!(
            "| {} | {:>17.0} | {:>19.0} | {:>4.2} | {:>6} |",
            b.label,
            one.throughput(),
            two.throughput(),
            gain,
            one.errors + two.errors
        );
        if b.label == "this build" {
            line.replicas_gain = Some(gain);
        }
    }

    println!();
    println!("GetSubsidyBalance, one slot, sequential calls (this build)");
    println!();
    println!("| journal rows | p50 ms | p99 ms | balance |");
    println!("|-------------:|-------:|-------:|--------:|");
    let mut p50s = Vec::new();
    let endpoint = builds[0].endpoint()?;
    for &rows in &args.subsidy_rows {
        let (r, balance) =
            subsidy_latency(&raw_pool, &endpoint, rows, args.subsidy_samples).await?;
        p50s.push(r.ms(0.5));
        println!(
            "| {rows:>12} | {:>6.3} | {:>6.3} | {balance:>7} |",
            r.ms(0.5),
            r.ms(0.99)
        );
    }
    if let (Some(first), Some(last)) = (p50s.first(), p50s.last()) {
        line.subsidy_flat = Some(last / first);
        println!();
        println!(
            "p50 growth from smallest to largest journal: {:.2}x",
            last / first
        );
    }
    for b in builds {
        if let Some(l) = b.ledger {
            l.stop().await?;
        }
    }
    println!();
    println!("{}", line.render());
    Ok(())
}

impl Build {
    fn endpoint(&self) -> anyhow::Result<String> {
        Ok(self
            .ledger
            .as_ref()
            .context("ledger not started")?
            .endpoint
            .clone())
    }
}

/// The closing machine-readable figures; `nan` where not measured.
#[derive(Default)]
struct Line {
    ratio32: Option<f64>,
    p99_32_ms: Option<f64>,
    p99_256_ms: Option<f64>,
    errors256: Option<usize>,
    replicas_gain: Option<f64>,
    subsidy_flat: Option<f64>,
}

impl Line {
    fn record(&mut self, clients: usize, round: &Round, ratio: f64) {
        if clients == 32 {
            self.ratio32 = Some(ratio);
            self.p99_32_ms = Some(round.ms(0.99));
        }
        if clients == 256 {
            self.p99_256_ms = Some(round.ms(0.99));
            self.errors256 = Some(round.errors);
        }
    }

    fn render(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "nan".to_owned(), |v| format!("{v:.2}"));
        format!(
            "ledger-bench: ratio32={} p99_32_ms={} p99_256_ms={} errors256={} replicas_gain64={} subsidy_flat={}",
            f(self.ratio32),
            f(self.p99_32_ms),
            f(self.p99_256_ms),
            self.errors256
                .map_or_else(|| "nan".to_owned(), |n| n.to_string()),
            f(self.replicas_gain),
            f(self.subsidy_flat),
        )
    }
}
