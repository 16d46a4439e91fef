//! `ledger-bench`: JournalEvent throughput and latency over gRPC on
//! PostgreSQL next to a raw sqlx insert of the same rows, and
//! GetSubsidyBalance latency as one slot's journal grows.
//!
//! Runs in its own schema of `DATABASE_URL` (dropped afterwards) against an
//! in-process server on a loopback port, so the gRPC stack, the ledger
//! rules and the database are all on the measured path.
//!
//! ```text
//! cargo run --release -p ledger-service --bin ledger-bench
//! cargo run --release -p ledger-service --bin ledger-bench -- --quick   # CI smoke pass
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use healgrid_proto::ledger::v1::{self as pb, ledger_service_client::LedgerServiceClient};
use ledger_service::{Ledger, server};
use prost_types::Timestamp;
use sqlx::{Connection, PgConnection, PgPool, postgres::PgPoolOptions};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::Channel;

const T0: i64 = 1_700_000_000;

/// Benchmark settings.
#[derive(Debug, Parser)]
#[command(name = "ledger-bench", about)]
struct Args {
    /// PostgreSQL to benchmark against; a fresh schema is created in it.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Tiny sizes for a CI smoke pass.
    #[arg(long)]
    quick: bool,
    /// Concurrent clients per JournalEvent round.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    concurrency: Vec<usize>,
    /// Total JournalEvent calls per round.
    #[arg(long, default_value_t = 6000)]
    ops: usize,
    /// Journal sizes (rows of one slot) for the GetSubsidyBalance latency.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    subsidy_rows: Vec<u64>,
    /// GetSubsidyBalance calls per size.
    #[arg(long, default_value_t = 2000)]
    subsidy_samples: usize,
    /// Pooled connections of the ledger and of the raw baseline (the same
    /// for both; by default the ledger service's own default).
    #[arg(long, default_value_t = ledger_service::store::DEFAULT_MAX_CONNECTIONS)]
    pool: u32,
    /// gRPC and raw rounds per concurrency level, alternated; the table
    /// shows the median of each side, since one round on a shared machine
    /// can be off by a third either way (autovacuum, checkpoints).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// The round with the median throughput.
fn median(mut rounds: Vec<Round>) -> anyhow::Result<Round> {
    rounds.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    let mid = rounds.len() / 2;
    rounds.into_iter().nth(mid).context("no rounds")
}

type Client = LedgerServiceClient<Channel>;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// One measured round.
struct Round {
    ops: usize,
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

/// JournalEvent over gRPC: `clients` tasks, each on its own slot.
async fn grpc_round(
    endpoint: &str,
    round: usize,
    clients: usize,
    ops: usize,
) -> anyhow::Result<Round> {
    let bot = format!("bench-{round}");
    let mut setup = LedgerServiceClient::connect(endpoint.to_owned()).await?;
    let mut positions = Vec::new();
    for slot in 0..clients {
        let slot = u32::try_from(slot)?;
        let p = setup
            .open_position(open_request(&bot, slot))
            .await?
            .into_inner();
        positions.push(p.position.context("position")?.position_id);
    }
    let per_client = ops / clients;
    let start = Instant::now();
    let tasks: Vec<_> = positions
        .into_iter()
        .enumerate()
        .map(|(c, position_id)| {
            let endpoint = endpoint.to_owned();
            tokio::spawn(async move {
                let mut client: Client = LedgerServiceClient::connect(endpoint).await?;
                let mut h = histogram()?;
                for n in 0..per_client {
                    let t = Instant::now();
                    client
                        .journal_event(credit(position_id, format!("k-{c}-{n}")))
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
        elapsed: start.elapsed(),
        latency_us,
    })
}

/// The same rows inserted with plain sqlx, one autocommit INSERT each.
async fn raw_round(
    pool: &PgPool,
    round: usize,
    clients: usize,
    ops: usize,
) -> anyhow::Result<Round> {
    let position_id: i64 = sqlx::query_scalar("SELECT MIN(position_id) FROM position_ledger")
        .fetch_one(pool)
        .await?;
    let per_client = ops / clients;
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let pool = pool.clone();
            let bot = format!("raw-{round}");
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
            elapsed: start.elapsed(),
            latency_us,
        },
        balance,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.ops = 240;
        args.repeat = 1;
        args.subsidy_rows = vec![1_000, 10_000];
        args.subsidy_samples = 100;
    }
    let schema = format!("ledger_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&args.database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await?;
    let sep = if args.database_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!("{}{sep}options[search_path]={schema}", args.database_url);
    let result = run(&args, &url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await?;
    result
}

async fn run(args: &Args, url: &str) -> anyhow::Result<()> {
    let ledger = Ledger::open_postgres(url, args.pool).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(ledger, listener, async {
        let _ = stopped.await;
    }));
    let raw_pool = PgPoolOptions::new()
        .max_connections(args.pool)
        .connect(url)
        .await?;

    println!(
        "JournalEvent (churner_profit credit, one slot per client), {} calls per round",
        args.ops
    );
    println!();
    println!(
        "| clients | gRPC ops/s | p50 ms | p99 ms | raw sqlx ops/s | raw p50 ms | raw p99 ms | ratio |"
    );
    println!(
        "|--------:|-----------:|-------:|-------:|---------------:|-----------:|-----------:|------:|"
    );
    let mut every_ratio = Vec::new();
    for (level, &clients) in args.concurrency.iter().enumerate() {
        let clients = clients.max(1);
        let (mut gs, mut rs) = (Vec::new(), Vec::new());
        let mut ratios = Vec::new();
        for rep in 0..args.repeat.max(1) {
            let round = level * 1000 + rep;
            let g = grpc_round(&endpoint, round, clients, args.ops).await?;
            let r = raw_round(&raw_pool, round, clients, args.ops).await?;
            ratios.push(format!("{:.2}", g.throughput() / r.throughput()));
            gs.push(g);
            rs.push(r);
        }
        every_ratio.push(format!("{clients} clients: {}", ratios.join(", ")));
        let (g, r) = (median(gs)?, median(rs)?);
        println!(
            "| {clients:>7} | {:>10.0} | {:>6.2} | {:>6.2} | {:>14.0} | {:>10.2} | {:>10.2} | {:>5.2} |",
            g.throughput(),
            g.ms(0.5),
            g.ms(0.99),
            r.throughput(),
            r.ms(0.5),
            r.ms(0.99),
            g.throughput() / r.throughput()
        );
    }
    println!();
    println!(
        "Median of {} alternated rounds per side; ratio of each gRPC round to the raw round right after it:",
        args.repeat.max(1)
    );
    for line in every_ratio {
        println!("- {line}");
    }
    println!();
    println!("GetSubsidyBalance, one slot, sequential calls");
    println!();
    println!("| journal rows | p50 ms | p99 ms | balance |");
    println!("|-------------:|-------:|-------:|--------:|");
    let mut p50s = Vec::new();
    for &rows in &args.subsidy_rows {
        let (round, balance) =
            subsidy_latency(&raw_pool, &endpoint, rows, args.subsidy_samples).await?;
        p50s.push(round.ms(0.5));
        println!(
            "| {rows:>12} | {:>6.3} | {:>6.3} | {balance:>7} |",
            round.ms(0.5),
            round.ms(0.99)
        );
    }
    if let (Some(first), Some(last)) = (p50s.first(), p50s.last()) {
        println!();
        println!(
            "p50 growth from smallest to largest journal: {:.2}x",
            last / first
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
