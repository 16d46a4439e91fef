//! The OpenAPI document against the router: it is OpenAPI 3.1, it is
//! served at `/api/v1/openapi.json`, and every operation it lists reaches
//! a real handler (never the router's "no such route" or "wrong method"),
//! with every error response using the JSON error shape.

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gateway::AppState;
use gateway::auth::ActionPolicy;
use gateway::clients::Backends;
use healgrid_tests::process::free_port;
use tower::ServiceExt;

fn app() -> axum::Router {
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let backends = Backends::new(&nowhere, &nowhere, Duration::from_millis(300)).expect("urls");
    gateway::router(Arc::new(AppState::new(
        backends,
        ActionPolicy::OpenOnLoopback,
        Some("bot".into()),
    )))
}

async fn call(app: &axum::Router, method: &str, path: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("idempotency-key", "walk")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("request");
    let r = app.clone().oneshot(req).await.expect("infallible");
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn every_documented_route_reaches_its_handler() {
    let app = app();
    let doc = gateway::api::openapi();
    let json = serde_json::to_value(&doc).expect("doc serialises");
    assert_eq!(json["openapi"], "3.1.0");
    let paths = json["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "only {} paths documented", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "1").replace("{slot}", "0");
        for (method, op) in item.as_object().expect("path item") {
            operations += 1;
            let (status, body) = call(&app, &method.to_uppercase(), &concrete).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            assert!(
                !body.contains("no such route"),
                "{method} {path} is documented but not routed"
            );
            let documented = op["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {path} answered {status}, which its document does not list: {body}"
            );
            for (code, resp) in documented {
                if code.starts_with('4') || code.starts_with('5') {
                    let schema = &resp["content"]["application/json"]["schema"];
                    assert!(!schema.is_null(), "{method} {path} {code} has no JSON body");
                }
            }
        }
    }
    assert!(operations >= 22, "{operations} operations");

    let (status, served) = call(&app, "GET", "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let served: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert_eq!(served, json, "the served document is the generated one");
}

#[tokio::test]
async fn undocumented_paths_get_the_json_404() {
    let app = app();
    let doc = serde_json::to_value(gateway::api::openapi()).expect("doc");
    for path in [
        "/api/v1/statuses",
        "/api/v2/status",
        "/api/v1/positions/1/journal",
    ] {
        assert!(doc["paths"].get(path).is_none());
        let (status, body) = call(&app, "GET", path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(v["error"]["code"], "not_found");
    }
}

/// Proves: a cleanup-queue entry documents its slot mode as a required
/// field whose values are the slot modes the status' positions use.
#[test]
fn cleanup_entries_document_their_slot_mode() {
    let doc = serde_json::to_value(gateway::api::openapi()).expect("doc");
    let schemas = &doc["components"]["schemas"];
    let entry = &schemas["CleanupEntry"];
    assert!(
        entry["required"]
            .as_array()
            .expect("required")
            .contains(&"slot_mode".into()),
        "{entry}"
    );
    assert_eq!(
        entry["properties"]["slot_mode"]["$ref"],
        "#/components/schemas/SlotMode"
    );
    let position = &schemas["OpenPosition"]["properties"]["slot_mode"];
    assert_eq!(position["$ref"], "#/components/schemas/SlotMode");
    assert_eq!(
        schemas["SlotMode"]["enum"],
        serde_json::json!(["sticky", "churner", "unknown"])
    );
}
