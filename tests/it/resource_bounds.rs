//! Resource bounds over real sockets: load shedding past the concurrency limit and past a
//! client's share of it (503 at once, no queue), a client too slow to send its headers (or its HTTP/2 preface) is disconnected
//! (on a kept-alive connection too, at each request) while both protocols are still served,
//! and metrics on a separate admin listener.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::ServeProcess;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A raw TCP connection to the server at `base` (`http://host:port`).
async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Sends the request again, a moment apart, until it answers `status` (within 5 s): that
/// response.
async fn until_status<F, R>(status: u16, what: &str, send: F) -> reqwest::Response
where
    F: Fn() -> R,
    R: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    common::eventually(Duration::from_secs(5), Duration::from_millis(50), || async {
        let resp = send().await.expect("request");
        (resp.status() == status).then_some(resp)
    })
    .await
    .unwrap_or_else(|| panic!("never {status}: {what}"))
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_shed_with_503_not_queued() {
    let server = common::start_with(&[("ISSUER_MAX_CONCURRENT_REQUESTS", "1")]).await;
    // A request that holds its slot: the headers promise a body that has not come yet.
    let mut slow = connect(&server.base).await;
    slow.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"email\"",
    )
    .await
    .expect("write");

    let get = |path: &str| server.client.get(server.url(path)).send();
    let resp = until_status(503, "shed past the limit", || get("/api/v1/users/me")).await;
    let jwks = get("/.well-known/jwks.json").await.expect("jwks");
    assert_eq!(jwks.status(), 200, "the JWKS is never shed");
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "overloaded");

    drop(slow);
    until_status(401, "the slot is free again once the slow client is gone", || {
        get("/api/v1/users/me")
    })
    .await;
}

/// One client holding requests open takes its own share of the capacity, not all of it.
#[tokio::test]
async fn a_client_past_its_share_of_the_capacity_is_shed_and_others_are_not() {
    let server = common::start_with(&[
        ("ISSUER_MAX_CONCURRENT_REQUESTS_PER_CLIENT", "1"),
        ("ISSUER_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let mut slow = connect(&server.base).await;
    slow.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"email\"",
    )
    .await
    .expect("write");

    let me_from = |client: &'static str| {
        server
            .client
            .get(server.url("/api/v1/users/me"))
            .header("x-forwarded-for", client)
            .send()
    };
    // Once the slow request holds the client's one place, its next request is shed.
    let resp = until_status(503, "the slow client's second request is shed", || {
        me_from("203.0.113.7")
    })
    .await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "overloaded");
    assert_eq!(
        me_from("198.51.100.8").await.expect("me").status(),
        401,
        "another client is served"
    );

    drop(slow);
    until_status(
        401,
        "the client's place is given back once its request is gone",
        || me_from("203.0.113.7"),
    )
    .await;
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_or_preface_is_disconnected() {
    let server = common::start_with(&[("ISSUER_REQUEST_TIMEOUT", "1s")]).await;
    let mut slow = connect(&server.base).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    // And one that connects and sends nothing at all.
    let mut silent = connect(&server.base).await;
    // And one that starts the HTTP/2 preface and stops half-way (the protocol is not known
    // yet, so no HTTP/1 or HTTP/2 deadline has started).
    let mut half_preface = connect(&server.base).await;
    half_preface
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    for (name, conn) in [
        ("slow", &mut slow),
        ("silent", &mut silent),
        ("half preface", &mut half_preface),
    ] {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "{name}: the server closes the connection instead of waiting forever"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// hyper's deadline for a request head runs anew for each request of a kept-alive
/// connection (one timer per connection, moved on: `http::deadline`): requests spread over
/// more than the patience are all answered, and a head left unfinished after them is cut off.
#[tokio::test]
async fn each_request_head_on_a_kept_alive_connection_has_a_deadline_of_its_own() {
    let server = common::start_with(&[("ISSUER_REQUEST_TIMEOUT", "2s")]).await;
    let mut conn = connect(&server.base).await;
    for _ in 0..4 {
        // Each head within the deadline, all four past it.
        tokio::time::sleep(Duration::from_millis(700)).await;
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let answer = read_response(&mut conn).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let cut = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "the unfinished head is cut off instead of waited for forever"
    );
    // The patience from the last answer, not more.
    assert!(cut.elapsed() < Duration::from_secs(4), "{:?}", cut.elapsed());
}

/// One HTTP/1.1 response read off `conn` (its head and a `Content-Length` body), as text.
async fn read_response(conn: &mut TcpStream) -> String {
    let mut read = Vec::new();
    loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before the answer: {}",
            String::from_utf8_lossy(&read)
        );
        read.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&read).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length = text[..end]
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().expect("a length"))
            })
            .unwrap_or(0);
        if read.len() >= end + 4 + length {
            return text;
        }
    }
}

/// Plain HTTP tells the protocol from the first bytes: HTTP/1.1, and HTTP/2 with prior
/// knowledge (RFC 9113 §3.3), are both served.
#[tokio::test]
async fn plain_http_serves_http_1_1_and_http_2_with_prior_knowledge() {
    let server = common::start().await;
    let url = format!("{}/healthz", server.base);
    for (flag, version) in [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")] {
        let out = tokio::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
                flag,
            ])
            .arg(&url)
            .output()
            .await
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{version} 200"),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn metrics_move_to_the_admin_listener_and_count_what_matters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let admin = format!("127.0.0.1:{admin_port}");
    let server = ServeProcess::start(
        dir.path(),
        &[
            ("ISSUER_ADMIN_BIND", admin.as_str()),
            ("ISSUER_SIGNING_ALG", "EdDSA"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let public = http.get(server.url("/metrics")).send().await.expect("metrics");
    assert_eq!(public.status(), 404, "not on the public listener");
    let admin_metrics = || async {
        http.get(format!("http://{admin}/metrics"))
            .send()
            .await
            .expect("admin metrics")
            .text()
            .await
            .expect("text")
    };
    // What alerts watch exists from start, at zero.
    let fresh = admin_metrics().await;
    for zero in [
        r#"issuer_rate_limited_total{limit="register"} 0"#,
        r#"issuer_rate_limited_total{limit="in_flight"} 0"#,
        r#"issuer_keyset_reloads_total{result="failed"} 0"#,
        "issuer_requests_shed_total 0",
        "issuer_rate_limit_store_errors_total 0",
        "issuer_refresh_reuse_detected_total 0",
        "issuer_login_failures_total 0",
        r#"issuer_tokens_issued_total{grant="client_credentials",alg="RS256"} 0"#,
    ] {
        assert!(fresh.lines().any(|l| l == zero), "missing {zero} in\n{fresh}");
    }

    let body = |email: &str, password: &str| serde_json::json!({"email": email, "password": password});
    let post = |path: &str, json: serde_json::Value| http.post(server.url(path)).json(&json).send();
    let password = common::PASSWORD;
    assert_eq!(
        post("/api/v1/auth/register", body("m@example.com", password))
            .await
            .expect("register")
            .status(),
        201
    );
    assert_eq!(
        post("/api/v1/auth/login", body("m@example.com", "wrong"))
            .await
            .expect("login")
            .status(),
        401
    );
    let tokens: serde_json::Value = post("/api/v1/auth/login", body("m@example.com", password))
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let refresh = serde_json::json!({"refresh_token": tokens["refresh_token"]});
    assert_eq!(
        post("/api/v1/auth/refresh", refresh.clone())
            .await
            .expect("refresh")
            .status(),
        200
    );
    assert_eq!(
        post("/api/v1/auth/refresh", refresh)
            .await
            .expect("reuse")
            .status(),
        401
    );
    for _ in 0..5 {
        post("/api/v1/auth/login", body("nobody@example.com", "wrong"))
            .await
            .expect("login");
    }
    // Counted by route, never by a path a client makes up: unknown paths and OPTIONS (which
    // no route takes) are one series.
    for path in ["/.well-known/jwks.json", "/made-up-1", "/made-up-2/x"] {
        http.get(server.url(path)).send().await.expect("get");
    }
    let options = http
        .request(reqwest::Method::OPTIONS, server.url("/oauth2/token"))
        .send()
        .await
        .expect("options");
    assert_eq!(options.status(), 405);

    let text = admin_metrics().await;
    assert!(
        !text.contains("made-up"),
        "a made-up path became a series:\n{text}"
    );
    for expected in [
        r#"issuer_http_requests_total{route="/.well-known/jwks.json",method="GET",status="200"} 1"#,
        r#"issuer_http_requests_total{route="unmatched",method="GET",status="404"} 3"#,
        r#"issuer_http_requests_total{route="unmatched",method="OPTIONS",status="405"} 1"#,
        r#"issuer_http_requests_total{route="/api/v1/auth/login",method="POST",status="401"} 5"#,
        r#"issuer_http_requests_total{route="/api/v1/auth/login",method="POST",status="429"} 1"#,
        r#"issuer_http_request_duration_seconds_bucket{route="/api/v1/auth/login",le="0.005"}"#,
        r#"issuer_tokens_issued_total{grant="password",alg="EdDSA"} 1"#,
        r#"issuer_tokens_issued_total{grant="refresh_token",alg="EdDSA"} 1"#,
        "issuer_login_failures_total 5",
        r#"issuer_rate_limited_total{limit="login_ip"} 1"#,
        "issuer_refresh_reuse_detected_total 1",
        "issuer_keyset_age_seconds",
        "issuer_keyset_reload_failing 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    let probe = http
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(probe.status(), 200, "probes answer on the admin listener too");
}
