//! `ledger-service`: serves the healgrid ledger over gRPC until SIGTERM or
//! ctrl-c, then drains (health NOT_SERVING for the drain grace, then the
//! calls in flight) and exits. `--check-health` is the container
//! healthcheck: it asks a running ledger instead of serving.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ledger_service::{AnyLedger, Config, LedgerMetrics, LogFormat, redact_url};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let config = Config::parse();
    if config.check_health {
        return Ok(check_health(&config).await);
    }
    init_logging(config.log_format);
    if let Some(at) = config.crash_at {
        healgrid_proto::crash::arm(at);
    }
    let security = config.security()?;
    if let Some(warning) = healgrid_proto::auth::exposure_warning(
        "THE LEDGER",
        config.listen,
        &security.auth,
        "LEDGER_TOKEN",
    ) {
        tracing::warn!("{warning}");
    }
    let ledger = AnyLedger::open(&config.database_url, config.db_max_connections)
        .await
        .with_context(|| format!("opening {}", redact_url(&config.database_url)))?
        .with_batching(config.batching());
    tracing::info!(backend = ledger.backend(), database = %redact_url(&config.database_url), batching = ?config.batching(), "ledger database ready");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let metrics = LedgerMetrics::new();
    if let Some(addr) = config.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics listener {addr}"))?;
        tokio::spawn(healgrid_metrics::serve(
            metrics_listener,
            metrics.registry(),
            std::future::pending(),
        ));
    }
    ledger
        .serve_secured(
            listener,
            shutdown_signal(),
            Duration::from_secs(config.drain_grace_sec),
            &security,
            metrics,
        )
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 when the ledger this config serves reports SERVING within 3 s
/// (over TLS when it serves TLS, trusting `--tls-ca`); else one line on
/// stderr saying what it reported, and exit 1.
async fn check_health(config: &Config) -> ExitCode {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let endpoint = &config.local_endpoint();
    let timeout = Duration::from_secs(3);
    let status = async {
        let tls = healgrid_proto::tls::ClientTls::new("--tls-ca", config.tls_ca.as_deref())?;
        let plain =
            tonic::transport::Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(timeout);
        let channel = tls.apply(plain, None)?.connect().await?;
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        request.set_timeout(timeout);
        let reply = HealthClient::new(channel).check(request).await?;
        anyhow::Ok(reply.into_inner().status())
    };
    match tokio::time::timeout(timeout * 2, status).await {
        Ok(Ok(ServingStatus::Serving)) => ExitCode::SUCCESS,
        Ok(Ok(other)) => {
            eprintln!("ledger at {endpoint}: {}", other.as_str_name());
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("ledger at {endpoint}: {e:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("ledger at {endpoint}: no answer within {timeout:?}");
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
    tracing::info!("shutdown requested; draining in-flight requests");
}
