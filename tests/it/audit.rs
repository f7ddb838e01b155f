//! The audit log, as the binary writes it with `ISSUER_LOG_FORMAT=json`: the events of a
//! failed login, a refresh-token reuse and a key rotation carry who, from where and which
//! request — and the log of the whole run holds no password, token, secret or key.

use std::time::Duration;

use crate::common::{self, run_issuer, ServeProcess, PASSWORD};
use serde_json::{json, Value};

const EMAIL: &str = "audited.person@example.com";

/// Every JSON line of `text` on the `audit` target.
fn audit_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["target"] == "audit")
        .collect()
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:#?}"))
}

/// The request fields the request span adds to every line logged while serving it.
fn request_of(event: &Value) -> (&str, &str) {
    let span = &event["span"];
    (
        span["request_id"].as_str().expect("request_id"),
        span["client_ip"].as_str().expect("client_ip"),
    )
}

#[tokio::test]
async fn security_events_carry_their_context_and_the_log_holds_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("ISSUER_SIGNING_ALG", "EdDSA"),
        ("ISSUER_JWKS_MAX_AGE", "1s"),
        ("ISSUER_KEY_RELOAD_INTERVAL", "1s"),
        ("ISSUER_KEY_PUBLICATION_PERIOD", "2s"),
        ("ISSUER_ACCESS_TOKEN_TTL", "3s"),
        ("ISSUER_REFRESH_TOKEN_TTL", "1h"),
    ];
    let cli = |args: &[&str]| {
        let mut env: Vec<(&str, &str)> = env.to_vec();
        env.push(("ISSUER_LOG_FORMAT", "json"));
        let (ok, out, err) = run_issuer(dir.path(), args, &env);
        assert!(ok, "{args:?}: {err}");
        (out, err)
    };
    let (_, mut cli_log) = cli(&["keys", "generate", "--alg", "EdDSA"]);
    let server = ServeProcess::start(dir.path(), &env).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(server.url(path))
            .header("x-request-id", format!("audit-test-{}", path.len()))
            .json(&body)
            .send()
    };

    let resp = post(
        "/api/v1/auth/register",
        json!({"email": EMAIL, "password": PASSWORD}),
    )
    .await
    .expect("register");
    assert_eq!(resp.status(), 201);
    let wrong = "not the right password at all";
    let resp = post("/api/v1/auth/login", json!({"email": EMAIL, "password": wrong}))
        .await
        .expect("login");
    assert_eq!(resp.status(), 401);
    let tokens: Value = post(
        "/api/v1/auth/login",
        json!({"email": EMAIL, "password": PASSWORD}),
    )
    .await
    .expect("login")
    .json()
    .await
    .expect("json");
    let first_refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let rotated: Value = post("/api/v1/auth/refresh", json!({"refresh_token": first_refresh}))
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let resp = post("/api/v1/auth/refresh", json!({"refresh_token": first_refresh}))
        .await
        .expect("reuse");
    assert_eq!(resp.status(), 401, "a spent refresh token is reuse");

    // A service client: its secret is printed once, on stdout.
    let (created, err) = cli(&[
        "clients",
        "create",
        "--id",
        "audited-svc",
        "--grant",
        "client_credentials",
    ]);
    cli_log.push_str(&err);
    let client_secret = created
        .split_whitespace()
        .find(|w| w.len() >= 40)
        .expect("the secret is printed")
        .to_owned();

    // A rotation: a pending key, published for the publication period, then promoted.
    cli_log.push_str(&cli(&["keys", "generate", "--alg", "EdDSA"]).1);
    let source = token_issuer::keys::source::KeySource::File(token_issuer::keys::source::FileSource::new(
        dir.path().join("keys"),
    ));
    common::age_keyset(&source, Duration::from_secs(3)).await;
    cli_log.push_str(&cli(&["keys", "rotate", "--alg", "EdDSA"]).1);
    // The server picks the rotation up at its next reload (every second here).
    let reloaded = common::eventually(Duration::from_secs(10), Duration::from_millis(100), || async {
        server.logs().contains("key_state_changed").then_some(())
    })
    .await;
    assert!(reloaded.is_some(), "the server never reloaded the rotated keyset");

    let server_log = server.logs();
    let events = audit_events(&server_log);

    let failed = event(&events, "login_failed");
    let (request_id, client_ip) = request_of(failed);
    assert_eq!(request_id, "audit-test-18");
    assert_eq!(client_ip, "127.0.0.1");
    assert!(
        failed["account"].as_str().is_some_and(|a| a.len() >= 16),
        "a keyed hash: {failed}"
    );
    let reuse = event(&events, "refresh_reuse_detected");
    request_of(reuse);
    let user_id = reuse["user_id"].as_str().expect("user_id");
    assert_eq!(event(&events, "user_registered")["user_id"], user_id);
    assert_eq!(event(&events, "login_succeeded")["user_id"], user_id);
    assert!(reuse["family_id"].is_string());
    // Each instance logs the key it starts signing with, at its next reload.
    assert!(
        events.iter().any(|e| e["event"] == "key_state_changed"),
        "{events:#?}"
    );

    let cli_events = audit_events(&cli_log);
    let rotated_event = event(&cli_events, "key_rotated");
    for field in ["kid", "alg", "from", "to", "actor"] {
        assert!(rotated_event[field].is_string(), "{field} in {rotated_event}");
    }
    // The CLI runs without $USER or $LOGNAME here: the actor comes from the system.
    let actor = rotated_event["actor"].as_str().expect("actor");
    assert!(!actor.starts_with("unknown-user"), "{actor}");
    assert_eq!(event(&cli_events, "client_created")["client_id"], "audited-svc");

    let keyset = std::fs::read_to_string(dir.path().join("keys/keyset.json")).expect("keyset");
    let keyset: Value = serde_json::from_str(&keyset).expect("json");
    let whole_run = format!("{server_log}\n{cli_log}");
    let mut secrets = vec![
        PASSWORD.to_owned(),
        wrong.to_owned(),
        EMAIL.to_owned(),
        first_refresh,
        rotated["refresh_token"].as_str().expect("refresh").to_owned(),
        tokens["access_token"].as_str().expect("access").to_owned(),
        client_secret,
        "PRIVATE KEY".to_owned(),
    ];
    for key in keyset["keys"].as_array().expect("keys") {
        let pem = key["private_key_pem"].as_str().expect("pem");
        // Any line of the base64 body.
        secrets.extend(pem.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned));
    }
    for secret in &secrets {
        assert!(
            !whole_run.contains(secret.as_str()),
            "the log holds a secret ({} chars)",
            secret.len()
        );
    }
    // No JWT at all, not only those above: a JSON header ("eyJ…") and two more parts. Not
    // a bare "eyJ", which a random kid or hash in the log may contain.
    let jwts = whole_run
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .filter(|word| word.starts_with("eyJ") && word.matches('.').count() == 2)
        .count();
    assert_eq!(jwts, 0, "the log holds a JWT");
}
