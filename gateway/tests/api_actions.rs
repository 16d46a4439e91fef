//! Every operator action route through the real `gateway` against real
//! `ledger-service` and `trader-service run` processes (paper exchange
//! replaying a market that leaves each slot's long leg stuck, so the
//! cleanup queue fills within seconds): success with the journal rows it
//! leaves, refusals (404 unknown position or slot, 400 bad input, 409
//! refused in this state, 422 missing reason), 401 without the token, and
//! idempotent retries answered with the first answer, by the gateway and,
//! after a gateway restart, by the trader from the same `Idempotency-Key`.

#![allow(missing_docs)]

mod support;

use serde_json::Value;
use support::{GatewayProcess, get, post, queue_of, start_stuck_stack, wait_for};

const BOT: &str = "paper:XDGUSD:actions";
const TOKEN: &str = "tok-actions-0b8e";

/// POSTs with the token and returns (status, JSON body).
async fn act(base: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    let a = post(base, path, Some(key), Some(TOKEN), body).await;
    let v = a.json();
    if a.status != 200 {
        a.error_code();
    }
    (a.status, v)
}

async fn journal_types(base: &str, id: &str) -> Vec<(String, Value)> {
    let d = get(base, &format!("/api/v1/positions/{id}")).await;
    assert_eq!(d.status, 200, "{}", d.text);
    d.json()["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_owned(),
                e["details"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_route_against_the_real_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, trader) = start_stuck_stack(dir.path(), BOT, 2).await;
    let envs = [
        ("TRADER_URL", trader.endpoint.as_str()),
        ("LEDGER_URL", ledger.endpoint.as_str()),
        ("GATEWAY_TOKEN", TOKEN),
    ];
    let gw = GatewayProcess::start("127.0.0.1", &envs, &dir.path().join("gw.log")).await;
    let base = gw.base.as_str();
    let ids = queue_of(base, 2, 90).await;
    let (held, closed) = (ids[0].clone(), ids[1].clone());
    let entry = get(base, "/api/v1/cleanup-queue").await.json()["positions"][0].clone();
    assert_eq!(
        entry["actions"],
        serde_json::json!(["reprice_to_breakeven", "close_at_market", "keep_holding"]),
        "{entry}"
    );
    assert!(
        entry["subsidy_needed"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    // The slots' own long legs: sticky, as the trader's queue says.
    assert_eq!(entry["slot_mode"], "sticky", "{entry}");

    // Auth: every action needs the token (checked before anything else).
    for path in [
        format!("/api/v1/positions/{held}/reprice-breakeven"),
        format!("/api/v1/positions/{held}/close-at-market"),
        format!("/api/v1/positions/{held}/keep-holding"),
        format!("/api/v1/positions/{held}/release-hold"),
        "/api/v1/churners/0/spawn".to_owned(),
        "/api/v1/churners/0/kill".to_owned(),
        "/api/v1/churner-reserve".to_owned(),
        "/api/v1/regime-override".to_owned(),
    ] {
        for token in [None, Some("wrong")] {
            let a = post(base, &path, Some("auth-1"), token, r#"{"reason":"x"}"#).await;
            assert_eq!(
                (a.status, a.error_code().as_str()),
                (401, "unauthorized"),
                "{path}"
            );
        }
    }

    // Keep holding: accepted, journaled with the reason; a retry returns
    // the first answer; the position leaves the queue.
    let hold = format!("/api/v1/positions/{held}/keep-holding");
    let body = r#"{"reason":"waiting for the rebound","hold_seconds":3600}"#;
    let (s, first) = act(base, &hold, "hold-1", body).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(
        (
            first["action"].as_str(),
            first["position_id"].as_str(),
            first["replayed"].as_bool()
        ),
        (Some("keep_holding"), Some(held.as_str()), Some(false))
    );
    let again = post(base, &hold, Some("hold-1"), Some(TOKEN), body).await;
    assert_eq!((again.status, again.json()), (200, first.clone()));
    assert!(again.headers.contains_key("idempotent-replayed"));
    let reused = post(
        base,
        &hold,
        Some("hold-1"),
        Some(TOKEN),
        r#"{"reason":"other"}"#,
    )
    .await;
    assert_eq!(
        (reused.status, reused.error_code().as_str()),
        (409, "conflict")
    );
    wait_for("the held position out of the queue", 30, async || {
        let q = get(base, "/api/v1/cleanup-queue").await.json();
        q["positions"]
            .as_array()?
            .iter()
            .all(|p| p["position_id"] != held.as_str())
            .then_some(())
    })
    .await;

    // The same key through a fresh gateway (its cache is empty): the
    // trader answers from its stored first answer and does nothing again.
    let gw2 = GatewayProcess::start("127.0.0.1", &envs, &dir.path().join("gw2.log")).await;
    let (s, replay) = act(&gw2.base, &hold, "hold-1", body).await;
    assert_eq!(s, 200, "{replay}");
    assert_eq!(replay["replayed"], true, "{replay}");
    assert_eq!(
        (&replay["message"], &replay["at"]),
        (&first["message"], &first["at"])
    );
    drop(gw2);

    // Refusals in this state: breakeven on hold, release of nothing held.
    let be = format!("/api/v1/positions/{held}/reprice-breakeven");
    let (s, v) = act(base, &be, "be-0", r#"{"reason":"free it"}"#).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("on hold"),
        "{v}"
    );
    let release = format!("/api/v1/positions/{held}/release-hold");
    let (s, v) = act(base, &release, "rel-1", r#"{"reason":"no rebound"}"#).await;
    assert_eq!(
        (s, v["action"].as_str()),
        (200, Some("release_hold")),
        "{v}"
    );
    let (s, v) = act(base, &release, "rel-2", r#"{"reason":"again"}"#).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not on hold"),
        "{v}"
    );

    // Breakeven: the exit moves; a retry replays.
    let (s, moved) = act(base, &be, "be-1", r#"{"reason":"free the capital"}"#).await;
    assert_eq!(s, 200, "{moved}");
    assert!(
        moved["message"].as_str().unwrap().contains("breakeven"),
        "{moved}"
    );
    let again = post(
        base,
        &be,
        Some("be-1"),
        Some(TOKEN),
        r#"{"reason":"free the capital"}"#,
    )
    .await;
    assert_eq!((again.status, again.json()), (200, moved));

    // Close at market the other one.
    let close = format!("/api/v1/positions/{closed}/close-at-market");
    let (s, v) = act(base, &close, "close-1", r#"{"reason":"cut the loss"}"#).await;
    assert_eq!(
        (s, v["action"].as_str()),
        (200, Some("close_at_market")),
        "{v}"
    );

    // Their journals carry the operator's reasons; the close books the
    // write-off.
    wait_for("the journal rows", 60, async || {
        let j = journal_types(base, &held).await;
        let kinds: Vec<&str> = j.iter().map(|(k, _)| k.as_str()).collect();
        (kinds.contains(&"keep_holding")
            && kinds.iter().filter(|k| **k == "operator_action").count() >= 2
            && kinds.contains(&"repriced"))
        .then_some(())
    })
    .await;
    let j = journal_types(base, &held).await;
    assert!(
        j.iter()
            .any(|(k, d)| k == "keep_holding" && d["reason"] == "waiting for the rebound"),
        "{j:?}"
    );
    assert!(
        j.iter().any(|(k, d)| k == "operator_action"
            && d["action"] == "reprice_to_breakeven"
            && d["reason"] == "free the capital"
            && d["operator"] == "gateway"),
        "{j:?}"
    );
    wait_for("the closed position", 60, async || {
        let d = get(base, &format!("/api/v1/positions/{closed}"))
            .await
            .json();
        (d["position"]["status"] == "closed").then_some(d)
    })
    .await;
    let j = journal_types(base, &closed).await;
    assert!(
        j.iter()
            .any(|(k, d)| k == "operator_action" && d["reason"] == "cut the loss"),
        "{j:?}"
    );
    assert!(j.iter().any(|(k, _)| k == "written_off"), "{j:?}");

    // Churners: spawn, retry, a second spawn has nothing to do, kill; the
    // churner view shows the slot; the reserve is set and shown.
    let (s, v) = act(
        base,
        "/api/v1/churners/0/spawn",
        "sp-1",
        r#"{"reason":"by hand"}"#,
    )
    .await;
    assert_eq!(
        (s, v["action"].as_str()),
        (200, Some("spawn_churner")),
        "{v}"
    );
    let (s, again) = act(
        base,
        "/api/v1/churners/0/spawn",
        "sp-1",
        r#"{"reason":"by hand"}"#,
    )
    .await;
    assert_eq!((s, &again), (200, &v));
    let (s, e) = act(
        base,
        "/api/v1/churners/0/spawn",
        "sp-2",
        r#"{"reason":"again"}"#,
    )
    .await;
    assert_eq!(s, 409, "{e}");
    let (s, v) = act(
        base,
        "/api/v1/churners/0/kill",
        "kl-1",
        r#"{"reason":"stop"}"#,
    )
    .await;
    assert_eq!(
        (s, v["action"].as_str()),
        (200, Some("kill_churner")),
        "{v}"
    );
    let (s, v) = act(
        base,
        "/api/v1/churner-reserve",
        "rs-1",
        r#"{"reason":"more room","reserve_usd":"20"}"#,
    )
    .await;
    assert_eq!(
        (s, v["action"].as_str()),
        (200, Some("set_churner_reserve")),
        "{v}"
    );
    let churners = wait_for("the killed churner", 30, async || {
        let c = get(base, "/api/v1/churners").await;
        assert_eq!(c.status, 200, "{}", c.text);
        let c = c.json();
        c["slots"]
            .as_array()?
            .iter()
            .any(|s| s["slot_id"] == 0 && s["paused_reason"] == "killed")
            .then_some(c)
    })
    .await;
    assert_eq!(churners["enabled"], true);
    let total: f64 = ["reserve_earmarked_usd", "reserve_available_usd"]
        .iter()
        .map(|k| churners[k].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((total - 20.0).abs() < 1e-9, "{churners}");

    // Regime override, set and cleared.
    let (s, v) = act(
        base,
        "/api/v1/regime-override",
        "rg-1",
        r#"{"reason":"news","regime":"bearish","ttl_seconds":3600}"#,
    )
    .await;
    assert_eq!(
        (s, v["action"].as_str()),
        (200, Some("set_regime_override")),
        "{v}"
    );
    let (s, v) = act(
        base,
        "/api/v1/regime-override",
        "rg-2",
        r#"{"reason":"over","regime":"auto"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // Bad input and unknown targets: the right status, never a 500, and
    // nothing done.
    for (path, body, code) in [
        (
            "/api/v1/positions/99999999/keep-holding",
            r#"{"reason":"x"}"#,
            404,
        ),
        (
            "/api/v1/positions/99999999/reprice-breakeven",
            r#"{"reason":"x"}"#,
            404,
        ),
        (
            "/api/v1/positions/99999999/close-at-market",
            r#"{"reason":"x"}"#,
            404,
        ),
        (
            "/api/v1/positions/99999999/release-hold",
            r#"{"reason":"x"}"#,
            404,
        ),
        ("/api/v1/churners/9/spawn", r#"{"reason":"x"}"#, 404),
        ("/api/v1/churners/9/kill", r#"{"reason":"x"}"#, 404),
        (
            "/api/v1/positions/abc/close-at-market",
            r#"{"reason":"x"}"#,
            400,
        ),
        ("/api/v1/churners/-1/kill", r#"{"reason":"x"}"#, 400),
        (&hold, r#"{"reason":"x","hold_seconds":5}"#, 400),
        (
            "/api/v1/churner-reserve",
            r#"{"reason":"x","reserve_usd":"lots"}"#,
            400,
        ),
        (
            "/api/v1/churner-reserve",
            r#"{"reason":"x","reserve_usd":"-5"}"#,
            400,
        ),
        (
            "/api/v1/regime-override",
            r#"{"reason":"x","regime":"sideways","ttl_seconds":3600}"#,
            400,
        ),
        (
            "/api/v1/regime-override",
            r#"{"reason":"x","regime":"ranging","ttl_seconds":5}"#,
            400,
        ),
        (&close, "{not json", 400),
        (&close, "{}", 422),
        (&close, r#"{"reason":"  "}"#, 422),
        (&close, r#"{"reason":"x","extra":1}"#, 422),
        ("/api/v1/churner-reserve", r#"{"reason":"x"}"#, 422),
        ("/api/v1/regime-override", r#"{"reason":"x"}"#, 422),
    ] {
        let a = post(base, path, Some("bad-1"), Some(TOKEN), body).await;
        assert_eq!(a.status, code, "{path} {body}: {}", a.text);
        a.error_code();
    }
    let missing_key = post(base, &close, None, Some(TOKEN), r#"{"reason":"x"}"#).await;
    assert_eq!(missing_key.status, 400);

    // Candles for the chart: the trader's observed 5-minute bars.
    let c = get(base, "/api/v1/candles?since=0").await;
    assert_eq!(c.status, 200, "{}", c.text);
    let c = c.json();
    assert_eq!(c["bar_seconds"], 300);
    let bars = c["candles"].as_array().unwrap();
    assert!(!bars.is_empty(), "{c}");
    assert_eq!(bars.last().unwrap()["close"], "0.09", "{c}");
    let last_start = bars.last().unwrap()["start"].as_i64().unwrap();
    let later = get(base, &format!("/api/v1/candles?since={}", last_start + 1))
        .await
        .json();
    assert!(later["candles"].as_array().unwrap().len() <= 1);
}
