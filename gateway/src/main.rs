//! `gateway`: serves the healgrid REST API and dashboard until SIGTERM or
//! ctrl-c. Starts even when the trader or ledger is down. `--check-health`
//! is the container healthcheck: it asks a running gateway instead.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gateway::AppState;
use gateway::clients::Backends;
use gateway::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let config = Config::parse();
    if config.check_health {
        return Ok(check_health(config.listen).await);
    }
    init_logging(config.log_format);
    let policy = config.action_policy()?;
    let deadline = config.rpc_deadline()?;
    let limits = config.request_limits()?;
    let backends = Backends::secured(
        &config.trader_url,
        &config.ledger_url,
        deadline,
        &config.backend_security,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(
        listen = %local,
        trader_url = %config.trader_url,
        ledger_url = %config.ledger_url,
        bot_id = config.bot_id.as_deref().unwrap_or("(from the trader)"),
        rpc_deadline_ms = config.rpc_deadline_ms,
        max_body_bytes = limits.max_body_bytes,
        client_timeout_ms = limits.client_timeout.as_millis(),
        actions = policy.describe(),
        "gateway listening; dashboard at http://{local}/"
    );
    let state =
        Arc::new(AppState::new(backends, policy, config.bot_id.clone()).with_limits(limits));
    gateway::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("gateway stopped");
    Ok(ExitCode::SUCCESS)
}

/// `GET /healthz` on the gateway at `listen` (loopback for an unspecified
/// address): exit 0 on `200`, else one line on stderr and exit 1.
async fn check_health(mut listen: SocketAddr) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if listen.ip().is_unspecified() {
        listen.set_ip(if listen.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(listen).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await?;
        std::io::Result::Ok(String::from_utf8_lossy(&reply).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(reply)) if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") => {
            ExitCode::SUCCESS
        }
        Ok(Ok(reply)) => {
            eprintln!(
                "gateway at {listen}: {}",
                reply.lines().next().unwrap_or("empty reply")
            );
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("gateway at {listen}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("gateway at {listen}: no answer within 3 s");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
