//! A ledger told to stop (SIGTERM) drains before it closes: its
//! `grpc.health.v1` status turns NOT_SERVING, overall and for the ledger
//! service, while it goes on answering calls, so a rolling restart moves
//! clients off it without losing one; the container healthcheck
//! (`ledger-service --check-health`) fails from that moment; after the
//! grace the process exits 0.

use std::process::Command;
use std::time::{Duration, Instant};

use healgrid_proto::ledger::v1 as pb;
use healgrid_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use healgrid_tests::process::{LedgerProcess, free_port, ledger_binary};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Runs the container healthcheck against the ledger on `port`: exit
/// success and its stderr.
fn check_health(port: u16) -> (bool, String) {
    let out = Command::new(ledger_binary())
        .args(["--check-health", "--listen", &format!("0.0.0.0:{port}")])
        .output()
        .expect("running ledger-service --check-health");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_reports_not_serving_while_calls_are_still_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let port = free_port();
    // A grace far longer than the test needs: every check below happens
    // inside it, whatever the machine's load.
    let mut ledger =
        LedgerProcess::start_with(port, &db, &[("LEDGER_DRAIN_GRACE_SEC", "20")]).await;
    assert_eq!(
        check_health(port),
        (true, String::new()),
        "healthy at first"
    );

    let channel = tonic::transport::Endpoint::from_shared(ledger.endpoint.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let mut ledger_client = LedgerServiceClient::new(channel);
    let status = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };

    ledger.sigterm();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let overall = health.check(status("")).await.expect("health").into_inner();
        if overall.status() == ServingStatus::NotServing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?} after SIGTERM",
            overall.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let service = health
        .check(status("healgrid.ledger.v1.LedgerService"))
        .await
        .expect("health of the ledger service")
        .into_inner();
    assert_eq!(service.status(), ServingStatus::NotServing);

    // Draining: calls are still answered, on the open connection and on a
    // new one.
    let open = ledger_client
        .list_open_positions(pb::ListOpenPositionsRequest {
            bot_id: "drain".into(),
            ..Default::default()
        })
        .await
        .expect("a call while draining is answered");
    assert!(open.into_inner().positions.is_empty());
    let (healthy, why) = check_health(port);
    assert!(!healthy, "the healthcheck fails while draining");
    assert!(why.contains("NOT_SERVING"), "{why}");

    assert_eq!(
        ledger.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "a drained ledger exits 0"
    );
    let (healthy, why) = check_health(port);
    assert!(!healthy, "nothing answers after the exit");
    assert!(!why.is_empty());
}

#[tokio::test]
async fn the_healthcheck_fails_when_nothing_listens() {
    let (healthy, why) = check_health(free_port());
    assert!(!healthy);
    assert!(why.contains("ledger at http://127.0.0.1:"), "{why}");
}
