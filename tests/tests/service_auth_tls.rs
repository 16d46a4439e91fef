//! Service auth and TLS through the real binaries, with a CA and a server
//! certificate (for `localhost` and 127.0.0.1) made by this test.
//!
//! Proves:
//! - the ledger and the trader serve over TLS with a token; the trader
//!   writes to the ledger over TLS with the ledger's token; `ctl` reads the
//!   trader's status over TLS with the trader's token; the gateway reads
//!   both over TLS (`--trader-tls-ca`, `--ledger-tls-ca`) with their tokens;
//! - health and reflection (ledger and trader) answer without a token,
//!   reflection only with it under `--reflection-needs-token`; any other call without
//!   it, or with another token, gets UNAUTHENTICATED and changes nothing
//!   (a trader holding the wrong ledger token parks its writes and the
//!   ledger stays empty);
//! - a client without the CA, or speaking plaintext, fails clearly;
//! - a non-loopback bind without a token logs the loud warning (ledger
//!   and trader);
//! - the gateway reads the ledger with the ledger's token, and a gateway
//!   without it is refused;
//! - no secret (tokens, the Kraken key and secret, a database password)
//!   appears in any log (the simulator's included), error or status output
//!   of a run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use healgrid_proto::auth::{AuthChannel, ClientAuth, ServiceToken};
use healgrid_proto::ledger::v1 as lpb;
use healgrid_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use healgrid_proto::tls::ClientTls;
use healgrid_proto::trader::v1::trader_service_client::TraderServiceClient;
use healgrid_tests::http;
use healgrid_tests::process::{
    RunArgs, Service, SimProcess, TraderProcess, free_port, gateway_binary, ledger_binary,
    trader_binary, wait_until,
};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

const LEDGER_TOKEN: &str = "ledger-token-Zq81vT";
const TRADER_TOKEN: &str = "trader-token-Xw42pL";
const GATEWAY_TOKEN: &str = "gateway-token-Mb77cR";
const PG_PASSWORD: &str = "pg-password-Kd93sW";

/// The CA, and a server certificate and key it signed, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    std::fs::write(&pki.ca, ca.pem()).expect("writing the CA");
    std::fs::write(&pki.cert, cert.pem()).expect("writing the certificate");
    std::fs::write(&pki.key, key.serialize_pem()).expect("writing the key");
    pki
}

/// `ledger-service ARGS` on the database `db`, expecting `token` when
/// given, logging to `log`.
fn spawn_ledger(args: &[&str], db: &str, token: Option<&str>, log: &Path) -> Service {
    let mut envs = vec![("LEDGER_DATABASE_URL", db)];
    envs.extend(token.map(|t| ("LEDGER_TOKEN", t)));
    Service::spawn(&ledger_binary(), args, &envs, log)
}

/// A channel to `url` (TLS with `ca` for https) sending `token` as the
/// setting `name`.
async fn channel(
    url: &str,
    ca: Option<&Path>,
    token: Option<(&'static str, &str)>,
) -> Result<AuthChannel, String> {
    let tls = ClientTls::new("ca", ca).map_err(|e| e.to_string())?;
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| e.to_string())?;
    let channel = tls
        .apply(endpoint, None)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| healgrid_proto::tls::error_chain(&e))?;
    let token = token.map(|(name, v)| ServiceToken::new(name, v).expect("valid token"));
    Ok(InterceptedService::new(
        channel,
        ClientAuth::new(token.as_ref()),
    ))
}

async fn ledger_client(
    url: &str,
    ca: Option<&Path>,
    token: Option<&str>,
) -> LedgerServiceClient<AuthChannel> {
    let ch = channel(url, ca, token.map(|t| ("LEDGER_TOKEN", t)))
        .await
        .expect("connecting to the ledger");
    LedgerServiceClient::new(ch)
}

async fn open_positions(c: &mut LedgerServiceClient<AuthChannel>, bot: &str) -> usize {
    c.list_open_positions(lpb::ListOpenPositionsRequest {
        bot_id: bot.into(),
        slot_id: None,
    })
    .await
    .expect("ListOpenPositions with the right token")
    .into_inner()
    .positions
    .len()
}

fn open_request(bot: &str) -> lpb::OpenPositionRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    lpb::OpenPositionRequest {
        bot_id: bot.into(),
        slot_id: Some(0),
        trade_id: lpb::TradeId::B as i32,
        slot_mode: lpb::SlotMode::Sticky as i32,
        cycle: 1,
        open_key: "auth-test-open".into(),
        entry_price: "0.0931".into(),
        entry_cost: "9.31".into(),
        entry_fee: "0.0242".into(),
        entry_volume: "100".into(),
        entry_time: Some(prost_types::Timestamp {
            seconds: i64::try_from(now).expect("seconds fit") - 60,
            nanos: 0,
        }),
        entry_regime: lpb::Regime::Ranging as i32,
        entry_volatility: "0.8".into(),
        original_exit_price: "0.0940".into(),
        target_profit_pct: "1.0".into(),
        exit_txid: "OEXIT-1".into(),
        migration: false,
    }
}

/// `trader-service ctl ARGS`.
fn ctl(args: &[&str]) -> Output {
    Command::new(trader_binary())
        .arg("ctl")
        .args(args)
        .env_clear()
        .output()
        .expect("running ctl")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Paper-trading arguments of `trader-service run` for `bot`, then `more`.
fn paper_args(bot: &str, store: &Path, ledger: &str, more: &[&str]) -> Vec<String> {
    let run = RunArgs {
        bot,
        store,
        ledger_url: ledger,
        slots: 3,
    };
    run.paper(7, more)
}

/// The services the reflection at `url` lists (TLS with `ca` for https,
/// sending `ledger_token` when given), as text; the call's status when it
/// is refused.
async fn list_services(
    url: &str,
    ca: Option<&Path>,
    ledger_token: Option<&str>,
) -> Result<String, tonic::Status> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let ch = channel(url, ca, ledger_token.map(|t| ("LEDGER_TOKEN", t)))
        .await
        .expect("connecting for reflection");
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(ch)
        .server_reflection_info(tokio_stream::iter(vec![list]))
        .await?
        .into_inner();
    replies.message().await.map(|r| format!("{r:?}"))
}

/// `GET /api/v1/status` of the gateway at `addr`, waiting up to 60 s for
/// it to answer 200 (it starts before its backends answer).
async fn gateway_status(addr: &str) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        match http::request(addr, "GET", "/api/v1/status").await {
            Ok(body) => return body,
            other => {
                assert!(Instant::now() < end, "gateway status never 200: {other:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_and_trader_talk_over_tls_with_tokens_and_refuse_strangers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let (ca, cert, key) = (
        pki.ca.to_str().unwrap(),
        pki.cert.to_str().unwrap(),
        pki.key.to_str().unwrap(),
    );
    let port = free_port();
    let ledger_url = format!("https://localhost:{port}");
    let ledger_db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let listen = format!("127.0.0.1:{port}");
    let ledger = spawn_ledger(
        &["--listen", &listen, "--tls-cert", cert, "--tls-key", key],
        &ledger_db,
        Some(LEDGER_TOKEN),
        &dir.path().join("ledger.log"),
    )
    // Health over TLS, without a token.
    .healthy(&ledger_url, Some(&pki.ca))
    .await;

    // Reflection answers without a token too.
    let listed = list_services(&ledger_url, Some(&pki.ca), None)
        .await
        .expect("reflection without a token");
    assert!(listed.contains("healgrid.ledger.v1.LedgerService"));

    // No token, or another one: UNAUTHENTICATED, and nothing is written.
    // (Its own bot id: the trader below must not meet this position.)
    let probe = "tls-probe";
    for token in [None, Some("not-the-token")] {
        let mut c = ledger_client(&ledger_url, Some(&pki.ca), token).await;
        let e = c.open_position(open_request(probe)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
        assert!(e.message().contains("LEDGER_TOKEN"), "{}", e.message());
    }
    let mut good = ledger_client(&ledger_url, Some(&pki.ca), Some(LEDGER_TOKEN)).await;
    assert_eq!(
        open_positions(&mut good, probe).await,
        0,
        "refused calls changed nothing"
    );
    good.open_position(open_request(probe))
        .await
        .expect("OpenPosition with the token");
    assert_eq!(open_positions(&mut good, probe).await, 1);

    // The container healthcheck speaks TLS to a TLS ledger.
    let check = Command::new(ledger_binary())
        .args(["--check-health", "--listen", &listen, "--tls-cert", cert])
        .args(["--tls-key", key, "--tls-ca", ca])
        .env_clear()
        .output()
        .expect("running --check-health");
    assert!(check.status.success(), "{}", text(&check));

    // Without the CA, or in plaintext, a client fails clearly.
    let no_ca = ctl(&["--url", &ledger_url, "health"]);
    assert!(!no_ca.status.success());
    let said = text(&no_ca);
    assert!(
        said.contains("certificate") || said.contains("native certs"),
        "a client without the CA says why: {said}"
    );
    let plain = ctl(&["--url", &format!("http://127.0.0.1:{port}"), "health"]);
    assert!(!plain.status.success(), "plaintext to a TLS port fails");
    let with_ca = ctl(&["--url", &ledger_url, "--tls-ca", ca, "health"]);
    assert!(with_ca.status.success(), "{}", text(&with_ca));
    let ca_for_http = ctl(&["--url", "http://127.0.0.1:1", "--tls-ca", ca, "health"]);
    assert!(
        text(&ca_for_http).contains("not https://"),
        "{}",
        text(&ca_for_http)
    );

    // The trader: TLS and a token on its control API, TLS and the ledger's
    // token towards the ledger.
    let bot = "tls-bot";
    let trader_port = free_port();
    let trader_listen = format!("127.0.0.1:{trader_port}");
    let trader_url = format!("https://localhost:{trader_port}");
    let store = dir.path().join("trader.db");
    let tls = ["--tls-cert", cert, "--tls-key", key, "--ledger-tls-ca", ca];
    let run = ["run", "--listen", &trader_listen];
    let args = [
        run.map(String::from).to_vec(),
        paper_args(bot, &store, &ledger_url, &tls),
    ]
    .concat();
    let mut trader = Service::spawn(
        &trader_binary(),
        &args,
        &[
            ("LEDGER_TOKEN", LEDGER_TOKEN),
            ("TRADER_TOKEN", TRADER_TOKEN),
        ],
        &dir.path().join("trader.log"),
    )
    .healthy(&trader_url, Some(&pki.ca))
    .await;
    let ch = channel(
        &trader_url,
        Some(&pki.ca),
        Some(("TRADER_TOKEN", TRADER_TOKEN)),
    )
    .await
    .unwrap();
    let mut control = TraderServiceClient::new(ch);
    wait_until("positions the ledger acknowledged", 90, &mut control, |s| {
        s.positions.iter().any(|p| !p.position_id.is_empty())
            && s.outbox.is_some_and(|o| o.depth == 0 && o.parked == 0)
    })
    .await;
    assert!(
        open_positions(&mut good, bot).await >= 1,
        "the trader's writes landed"
    );

    let refused = ctl(&["--url", &trader_url, "--tls-ca", ca, "status"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("TRADER_TOKEN"),
        "{}",
        text(&refused)
    );
    let status = ctl(&[
        "--url",
        &trader_url,
        "--tls-ca",
        ca,
        "--token",
        TRADER_TOKEN,
        "status",
    ]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains(bot), "{}", text(&status));

    // The trader's reflection answers without its token, over TLS.
    let listed = list_services(&trader_url, Some(&pki.ca), None)
        .await
        .expect("trader reflection without a token");
    assert!(listed.contains("healgrid.trader.v1.TraderService"));

    // The gateway reaches both over TLS (their CA) with their tokens: the
    // status comes from the trader, the positions page from the ledger.
    let gateway_addr = format!("127.0.0.1:{}", free_port());
    let mut gateway = Service::spawn(
        &gateway_binary(),
        &[
            "--listen",
            &gateway_addr,
            "--trader-url",
            &trader_url,
            "--ledger-url",
            &ledger_url,
            "--trader-tls-ca",
            ca,
            "--ledger-tls-ca",
            ca,
        ],
        &[
            ("LEDGER_TOKEN", LEDGER_TOKEN),
            ("TRADER_TOKEN", TRADER_TOKEN),
        ],
        &dir.path().join("gateway.log"),
    );
    let status = gateway_status(&gateway_addr).await;
    assert!(status.contains(bot), "{status}");
    let positions = http::request(&gateway_addr, "GET", "/api/v1/positions")
        .await
        .expect("the gateway reads the TLS ledger");
    let page: serde_json::Value = serde_json::from_str(&positions).expect("a positions page");
    assert!(page["total"].as_u64() >= Some(1), "{positions}");
    gateway.terminate(Duration::from_secs(60)).await;

    trader.terminate(Duration::from_secs(60)).await;
    drop(ledger);
}

/// Proves: with `--reflection-needs-token`, the ledger's reflection
/// refuses a caller without the token (UNAUTHENTICATED) and answers one
/// with it, while health still answers without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_can_require_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let _ledger = spawn_ledger(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--reflection-needs-token",
        ],
        &db,
        Some(LEDGER_TOKEN),
        &dir.path().join("ledger.log"),
    )
    .healthy(&url, None)
    .await;
    let reflect = async |token| list_services(&url, None, token).await;
    let refused = reflect(None).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let listed = reflect(Some(LEDGER_TOKEN)).await.unwrap();
    assert!(
        listed.contains("healgrid.ledger.v1.LedgerService"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trader_with_the_wrong_ledger_token_parks_its_writes_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let ledger_url = format!("http://127.0.0.1:{port}");
    let ledger_db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let _ledger = spawn_ledger(
        &["--listen", &format!("127.0.0.1:{port}")],
        &ledger_db,
        Some(LEDGER_TOKEN),
        &dir.path().join("ledger.log"),
    )
    .healthy(&ledger_url, None)
    .await;
    let bot = "wrong-token-bot";
    let store = dir.path().join("trader.db");
    let trader = TraderProcess::start(
        &paper_args(bot, &store, &ledger_url, &[]),
        &[("LEDGER_TOKEN", "some-other-token")],
        &dir.path().join("trader.log"),
    )
    .await;
    let ch = channel(&trader.endpoint, None, None).await.unwrap();
    let mut control = TraderServiceClient::new(ch);
    let s = wait_until("a parked ledger write", 90, &mut control, |s| {
        s.outbox.is_some_and(|o| o.parked > 0)
    })
    .await;
    assert!(
        s.parked_writes
            .iter()
            .any(|p| p.reason.contains("Unauthenticated")),
        "parked for the token: {:?}",
        s.parked_writes
    );
    let mut good = ledger_client(&ledger_url, None, Some(LEDGER_TOKEN)).await;
    assert_eq!(
        open_positions(&mut good, bot).await,
        0,
        "nothing reached the ledger"
    );
    drop(trader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_errors_or_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = [
        LEDGER_TOKEN,
        TRADER_TOKEN,
        GATEWAY_TOKEN,
        PG_PASSWORD,
        SimProcess::KEY,
        SimProcess::SECRET,
    ];
    let mut outputs: Vec<(String, String)> = Vec::new();

    // Database URLs with a password, where nothing listens (or naming no
    // supported backend): the ledger fails to start and says why, without
    // the password.
    for (url, shown) in [
        (
            format!("postgres://healgrid:{PG_PASSWORD}@127.0.0.1:1/healgrid"),
            "healgrid:***@127.0.0.1:1",
        ),
        (
            format!("postgres://127.0.0.1:1/healgrid?user=healgrid&password={PG_PASSWORD}"),
            "password=***",
        ),
        (
            format!("mysql://healgrid:{PG_PASSWORD}@127.0.0.1:1/healgrid"),
            "unsupported database url",
        ),
    ] {
        let mut failing = spawn_ledger(
            &["--listen", &format!("127.0.0.1:{}", free_port())],
            &url,
            Some(LEDGER_TOKEN),
            &dir.path().join("ledger-bad-db.log"),
        );
        let exit = failing.wait_exit(Duration::from_secs(60)).await;
        assert_ne!(exit, Some(0), "no database, no ledger");
        let said = failing.log_text();
        assert!(said.contains(shown), "says why, password hidden: {said}");
        outputs.push((format!("ledger on {shown}"), said));
    }

    // Listening beyond loopback without a token: the loud warning.
    let exposed_port = free_port();
    let exposed_db = format!("sqlite://{}", dir.path().join("exposed.db").display());
    let exposed = spawn_ledger(
        &["--listen", &format!("0.0.0.0:{exposed_port}")],
        &exposed_db,
        None,
        &dir.path().join("ledger-exposed.log"),
    )
    .healthy(&format!("http://127.0.0.1:{exposed_port}"), None)
    .await;
    assert!(
        exposed
            .log_text()
            .contains("(NOT LOOPBACK) WITHOUT A TOKEN"),
        "{}",
        exposed.log_text()
    );
    drop(exposed);
    // The trader says the same of its control API.
    let trader_port = free_port();
    let exposed_trader = Service::spawn(
        &trader_binary(),
        &[
            vec![
                "run".to_owned(),
                "--listen".to_owned(),
                format!("0.0.0.0:{trader_port}"),
            ],
            paper_args(
                "exposed-bot",
                &dir.path().join("exposed-trader.db"),
                "http://127.0.0.1:1",
                &[],
            ),
        ]
        .concat(),
        &[],
        &dir.path().join("trader-exposed.log"),
    )
    .healthy(&format!("http://127.0.0.1:{trader_port}"), None)
    .await;
    let said = exposed_trader.log_text();
    assert!(
        said.contains("(NOT LOOPBACK) WITHOUT A TOKEN") && said.contains("TRADER_TOKEN"),
        "{said}"
    );
    drop(exposed_trader);

    // The whole system with every secret set: simulator, ledger, trader on
    // Kraken, gateway.
    let sim = SimProcess::start(&["--speed", "60"], &dir.path().join("sim.log")).await;
    let port = free_port();
    let ledger_url = format!("http://127.0.0.1:{port}");
    let ledger_db = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let mut ledger = spawn_ledger(
        &["--listen", &format!("0.0.0.0:{port}")],
        &ledger_db,
        Some(LEDGER_TOKEN),
        &dir.path().join("ledger.log"),
    )
    .healthy(&ledger_url, None)
    .await;
    let run = RunArgs {
        bot: "secrets-bot",
        store: &dir.path().join("trader.db"),
        ledger_url: &ledger_url,
        slots: 2,
    };
    let envs = [
        SimProcess::CREDENTIALS.as_slice(),
        &[
            ("LEDGER_TOKEN", LEDGER_TOKEN),
            ("TRADER_TOKEN", TRADER_TOKEN),
        ],
    ]
    .concat();
    let mut trader = TraderProcess::start(
        &run.kraken(&sim, &["--poll-interval-sec", "1"]),
        &envs,
        &dir.path().join("trader.log"),
    )
    .await;
    let trader_url = trader.endpoint.clone();
    let gateway_port = free_port();
    let gateway_addr = format!("127.0.0.1:{gateway_port}");
    let mut gateway = Service::spawn(
        &gateway_binary(),
        &[
            "--listen",
            &gateway_addr,
            "--trader-url",
            &trader_url,
            "--ledger-url",
            &ledger_url,
        ],
        &[
            ("LEDGER_TOKEN", LEDGER_TOKEN),
            ("TRADER_TOKEN", TRADER_TOKEN),
            ("GATEWAY_TOKEN", GATEWAY_TOKEN),
        ],
        &dir.path().join("gateway.log"),
    );
    let ch = channel(&trader_url, None, Some(("TRADER_TOKEN", TRADER_TOKEN)))
        .await
        .unwrap();
    let mut control = TraderServiceClient::new(ch);
    wait_until("three trading loops", 90, &mut control, |s| s.loops >= 3).await;

    let status = gateway_status(&gateway_addr).await;
    assert!(status.contains("secrets-bot"), "{status}");
    outputs.push(("gateway /api/v1/status".into(), status));
    // The ledger refuses calls without its token: a positions page through
    // the gateway proves the gateway sends it.
    let positions = http::request(&gateway_addr, "GET", "/api/v1/positions")
        .await
        .expect("the gateway reads the ledger with its token");
    outputs.push(("gateway /api/v1/positions".into(), positions));
    // A gateway without the ledger's token is refused by the ledger, and
    // says so without showing any token.
    let tokenless_addr = format!("127.0.0.1:{}", free_port());
    let mut tokenless = Service::spawn(
        &gateway_binary(),
        &[
            "--listen",
            &tokenless_addr,
            "--trader-url",
            &trader_url,
            "--ledger-url",
            &ledger_url,
        ],
        &[("TRADER_TOKEN", TRADER_TOKEN)],
        &dir.path().join("gateway-tokenless.log"),
    );
    let end = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        match http::request(&tokenless_addr, "GET", "/api/v1/positions").await {
            Err(e) if e.to_string().contains("HTTP error") => break e.to_string(),
            other => {
                assert!(
                    Instant::now() < end,
                    "a gateway without LEDGER_TOKEN must be refused: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(refused.contains("502"), "{refused}");
    tokenless.terminate(Duration::from_secs(60)).await;
    outputs.push(("tokenless gateway log".into(), tokenless.log_text()));
    for (name, args) in [
        (
            "ctl status",
            vec!["--url", &trader_url, "--token", TRADER_TOKEN, "status"],
        ),
        (
            "ctl status, wrong token",
            vec!["--url", &trader_url, "--token", "wrong-token", "status"],
        ),
        ("ctl status, no token", vec!["--url", &trader_url, "status"]),
    ] {
        outputs.push((name.into(), text(&ctl(&args))));
    }
    // A refused ledger call leaves a log line on the ledger.
    let mut stranger = ledger_client(&ledger_url, None, Some("wrong-token")).await;
    let refused = stranger
        .open_position(open_request("secrets-bot"))
        .await
        .unwrap_err();
    outputs.push(("refused ledger call".into(), format!("{refused:?}")));

    for service in [&mut *trader, &mut gateway, &mut ledger] {
        service.terminate(Duration::from_secs(60)).await;
    }
    for (name, service) in [
        ("trader", &*trader),
        ("gateway", &gateway),
        ("ledger", &ledger),
        ("simulator", &*sim),
    ] {
        outputs.push((format!("{name} log"), service.log_text()));
    }
    assert!(
        outputs.iter().any(|(_, t)| t.contains("UNAUTHENTICATED")),
        "a refusal was logged"
    );
    for (name, out) in &outputs {
        for secret in secrets {
            assert!(
                !out.contains(secret),
                "{name} shows a secret ({secret}):\n{out}"
            );
        }
    }
}
