//! Concurrent `GET /api/v1/status` requests share one `GetStatus` call,
//! through the real gateway router and the trader's real gRPC service (its
//! calls counted and slowed by an interceptor), and nothing is kept once
//! the call has ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gateway::AppState;
use gateway::auth::ActionPolicy;
use gateway::clients::Backends;
use healgrid_proto::trader::v1::trader_service_server::TraderServiceServer;
use trader_service::grpc::TraderGrpc;
use trader_service::runtime::{RuntimeHandle, StatusSnapshot};

/// How long the trader takes per `GetStatus`: long enough that every
/// request of the burst arrives while the first call runs.
const SLOW_CALL: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_status_reads_share_one_trader_call() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut snapshot = StatusSnapshot::starting("share:XDGUSD:main", "XDGUSD");
    snapshot.loops = 7;
    let (handle, _runtime_side) = RuntimeHandle::channel(snapshot);
    let counted = calls.clone();
    let service = TraderServiceServer::with_interceptor(TraderGrpc::new(handle), move |request| {
        counted.fetch_add(1, Ordering::SeqCst);
        // Blocking on purpose: the interceptor is synchronous, and the
        // test only needs the call to last.
        std::thread::sleep(SLOW_CALL);
        Ok(request)
    });
    let trader = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trader_url = format!("http://{}", trader.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(trader)),
    );

    let backends =
        Backends::new(&trader_url, "http://127.0.0.1:9", Duration::from_secs(10)).unwrap();
    let state = Arc::new(AppState::new(backends, ActionPolicy::Refused, None));
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/status", http.local_addr().unwrap());
    tokio::spawn(gateway::serve(http, state, std::future::pending()));

    let client = reqwest::Client::new();
    let burst: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(
                    r.headers()["content-type"].to_str().unwrap(),
                    "application/json"
                );
                r.text().await.unwrap()
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for request in burst {
        bodies.push(request.await.unwrap());
    }
    let shared = calls.load(Ordering::SeqCst);
    assert!(
        shared <= 2,
        "16 concurrent reads made {shared} GetStatus calls"
    );
    let status: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(status["bot_id"], "share:XDGUSD:main");
    assert_eq!(status["loops"], 7);
    assert!(bodies.iter().all(|b| *b == bodies[0]), "one answer for all");

    // The call has ended: the next read asks the trader again.
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), shared + 1);
}
