//! Server reflection (v1 and v1alpha) and `grpc.health.v1`, so tools such as
//! grpcurl work with no `.proto` files at hand.

mod common;

use common::*;
use prost::Message;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

const LEDGER: &str = "healgrid.ledger.v1.LedgerService";

async fn v1_ask(
    s: &Server,
    request: v1::server_reflection_request::MessageRequest,
) -> v1::server_reflection_response::MessageResponse {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(s.channel.clone());
    let req = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    stream
        .message()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[tokio::test]
async fn reflection_lists_and_describes_every_service() {
    let s = Server::start(sqlite().await).await;
    use v1::{
        server_reflection_request::MessageRequest as Req,
        server_reflection_response::MessageResponse as Resp,
    };

    // `grpcurl list`
    let Resp::ListServicesResponse(list) = v1_ask(&s, Req::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        LEDGER,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with("healgrid.trader.")),
        "the ledger must not offer another service's API: {names:?}"
    );

    // `grpcurl describe healgrid.ledger.v1.LedgerService`
    for (symbol, file) in [
        (LEDGER, "healgrid/ledger/v1/ledger.proto"),
        ("grpc.health.v1.Health", "health.proto"),
    ] {
        let Resp::FileDescriptorResponse(fds) =
            v1_ask(&s, Req::FileContainingSymbol(symbol.into())).await
        else {
            panic!("expected descriptors for {symbol}");
        };
        let files: Vec<prost_types::FileDescriptorProto> = fds
            .file_descriptor_proto
            .iter()
            .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
            .collect();
        let owner = files
            .iter()
            .find(|f| f.name() == file)
            .unwrap_or_else(|| panic!("{file} not served for {symbol}"));
        if symbol == LEDGER {
            let methods: Vec<&str> = owner.service[0].method.iter().map(|m| m.name()).collect();
            assert_eq!(
                methods,
                [
                    "OpenPosition",
                    "JournalEvent",
                    "ClosePosition",
                    "RepricePosition",
                    "GetPosition",
                    "ListOpenPositions",
                    "GetPositionHistory",
                    "GetJournal",
                    "GetSubsidyBalance",
                    "GetSubsidySummary",
                    "Compact",
                    "AppendBotJournal",
                    "GetBotJournal"
                ]
            );
            assert!(
                owner
                    .dependency
                    .iter()
                    .any(|d| d == "google/protobuf/timestamp.proto")
            );
        }
    }

    // Imports are served by name, as grpcurl asks for them.
    let Resp::FileDescriptorResponse(fds) = v1_ask(
        &s,
        Req::FileByFilename("google/protobuf/timestamp.proto".into()),
    )
    .await
    else {
        panic!("expected the Timestamp descriptor");
    };
    assert_eq!(fds.file_descriptor_proto.len(), 1);

    // v1alpha answers as well (older grpcurl versions use it).
    let mut alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(s.channel.clone());
    let req = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut stream = alpha
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream
        .message()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    assert!(matches!(
        resp,
        v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(l)
            if l.service.iter().any(|s| s.name == LEDGER)
    ));
    s.shutdown().await;
}

#[tokio::test]
async fn health_reports_serving() {
    let s = Server::start(sqlite().await).await;
    let mut health = HealthClient::new(s.channel.clone());
    for service in ["", LEDGER] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    s.shutdown().await;
}
