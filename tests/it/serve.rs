//! The real binary: `serve` on defaults in a fresh directory, JSON logs that never carry a
//! secret, and a graceful stop on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::PASSWORD;

#[tokio::test]
async fn serves_on_defaults_logs_no_secrets_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = dir.path().join("issuer.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_token-issuer"))
        .arg("serve")
        .current_dir(dir.path())
        .env("ISSUER_BIND", format!("127.0.0.1:{port}"))
        .env("ISSUER_URL", &base)
        .env("ISSUER_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("start token-issuer");

    let client = reqwest::Client::new();
    let up = crate::common::eventually(Duration::from_secs(30), Duration::from_millis(100), || async {
        let resp = client.get(format!("{base}/readyz")).send().await.ok()?;
        (resp.status() == 200).then_some(())
    })
    .await;
    assert!(
        up.is_some(),
        "server did not become ready: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    assert!(
        dir.path().join("data/token-issuer.db").exists(),
        "SQLite database created under ./data"
    );
    assert!(
        dir.path().join("keys/keyset.json").exists(),
        "key generated under ./keys"
    );

    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let creds = json!({"email": "nina@example.com", "password": PASSWORD});
    assert_eq!(
        post("/api/v1/auth/register", creds.clone())
            .await
            .expect("register")
            .status(),
        201
    );
    let wrong = json!({"email": "nina@example.com", "password": "wrong horse battery staple"});
    assert_eq!(
        post("/api/v1/auth/login", wrong).await.expect("login").status(),
        401
    );
    let tokens: Value = post("/api/v1/auth/login", creds)
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let rotated: Value = post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let reuse = post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await
        .expect("reuse");
    assert_eq!(reuse.status(), 401);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exited = crate::common::eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        let code = child.try_wait().expect("wait");
        async move { code }
    })
    .await;
    let code = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no exit within 10 s of SIGTERM")
    });
    assert!(code.success(), "graceful stop exits 0, got {code}");

    let log = std::fs::read_to_string(&log_path).expect("log");
    let keyset = std::fs::read_to_string(dir.path().join("keys/keyset.json")).expect("keyset");
    let pem_body: String = keyset.split("\\n").nth(1).expect("pem line").to_owned();
    let secrets = [
        PASSWORD,
        "wrong horse battery staple",
        &refresh,
        rotated["refresh_token"].as_str().expect("rt"),
        tokens["access_token"].as_str().expect("at"),
        rotated["access_token"].as_str().expect("at"),
        "PRIVATE KEY",
        &pem_body,
    ];
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "a secret reached the log: {}…",
            &secret[..secret.len().min(12)]
        );
    }
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    for expected in ["user_registered", "login_failed", "login_succeeded"] {
        assert!(events.contains(&expected), "{expected} missing from {events:?}");
    }
    assert!(log.contains("reuse"), "reuse detection is logged");
    assert!(
        lines.iter().any(|l| l["span"]["request_id"].is_string()),
        "request ids in the log"
    );
}

#[tokio::test]
async fn healthcheck_asks_the_running_instance_and_fails_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = crate::common::ServeProcess::start(dir.path(), &[("ISSUER_LOG_FORMAT", "json")]).await;
    let port = serve.base.rsplit(':').next().expect("port").to_owned();
    // A wildcard listen address is asked on loopback, as a container's HEALTHCHECK does.
    let env = [("ISSUER_BIND", format!("0.0.0.0:{port}"))];
    let (ok, out, err) = crate::common::run_issuer(dir.path(), &["healthcheck"], &env);
    assert!(ok && out.trim() == "healthy", "{out}{err}");
    drop(serve);
    let (ok, _, err) = crate::common::run_issuer(dir.path(), &["healthcheck"], &env);
    assert!(!ok && err.contains("healthcheck:"), "{err}");
}

#[tokio::test]
async fn a_stopping_instance_reports_not_ready_and_serves_on_for_the_shutdown_delay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = crate::common::ServeProcess::start(dir.path(), &[("ISSUER_SHUTDOWN_DELAY", "3s")]).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(serve.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    let killed = Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Draining: not ready (a load balancer takes it out), yet it answers.
    let draining = crate::common::eventually(Duration::from_secs(5), Duration::from_millis(50), || async {
        let resp = client.get(serve.url("/readyz")).send().await.ok()?;
        let body: Value = resp.json().await.ok()?;
        (body["status"] == "draining").then_some(())
    })
    .await;
    assert!(draining.is_some(), "{}", serve.logs());
    let jwks = client
        .get(serve.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), 200, "still serving while draining");
    // Then it stops.
    let stopped = crate::common::eventually(Duration::from_secs(15), Duration::from_millis(100), || async {
        client
            .get(serve.url("/healthz"))
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(stopped.is_some(), "{}", serve.logs());
    assert!(serve.logs().contains("not ready, serving on meanwhile"));
}

/// How many worker threads the `listening` line of a JSON log reports.
fn workers_listening(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "listening")?["workers"]
        .as_u64()
}

#[tokio::test]
async fn worker_threads_sets_how_many_threads_serve_requests() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let dir = tempfile::tempdir().expect("tempdir");
    let wanted = (cores + 1).to_string();
    let serve =
        crate::common::ServeProcess::start(dir.path(), &[("ISSUER_WORKER_THREADS", wanted.as_str())]).await;
    assert_eq!(
        workers_listening(&serve.logs()),
        Some(cores as u64 + 1),
        "{}",
        serve.logs()
    );
    drop(serve);
    let serve = crate::common::ServeProcess::start(dir.path(), &[] as &[(&str, &str)]).await;
    assert_eq!(
        workers_listening(&serve.logs()),
        Some(cores as u64),
        "unset: one per core"
    );
    drop(serve);

    for refused in ["0", "1025"] {
        let (ok, _, stderr) = crate::common::run_issuer(
            dir.path(),
            &["check-config"],
            &[("ISSUER_WORKER_THREADS", refused)],
        );
        assert!(
            !ok && stderr.contains("ISSUER_WORKER_THREADS") && stderr.contains("must be 1 to 1024"),
            "{refused}: {stderr}"
        );
    }
}
