//! Headers every response carries, CORS, request ids, health.

use crate::common;

use crate::common::{start, start_with};
use serde_json::Value;

fn assert_security_headers(resp: &reqwest::Response, what: &str) {
    let h = resp.headers();
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(
        h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
        "{what}"
    );
    assert!(h.get("x-request-id").is_some(), "{what}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = start().await;
    let responses = [
        ("jwks", s.client.get(s.url("/.well-known/jwks.json")).send().await),
        ("404", s.client.get(s.url("/nowhere")).send().await),
        ("405", s.client.get(s.url("/api/v1/auth/login")).send().await),
        ("401", s.client.get(s.url("/api/v1/users/me")).send().await),
        (
            "415",
            s.client.post(s.url("/api/v1/auth/login")).body("x").send().await,
        ),
    ];
    for (what, resp) in responses {
        let resp = resp.expect("request");
        assert_security_headers(&resp, what);
        assert!(
            resp.headers().get("strict-transport-security").is_none(),
            "no HSTS on an http issuer"
        );
        if what != "jwks" {
            let body: Value = resp.json().await.expect("errors are JSON");
            assert!(body["error"].is_string(), "{what}");
        }
    }
}

#[tokio::test]
async fn request_ids_are_kept_when_well_formed_and_replaced_otherwise() {
    let s = start().await;
    let kept = s
        .client
        .get(s.url("/healthz"))
        .header("x-request-id", "abc-123.X_y")
        .send()
        .await
        .expect("req");
    assert_eq!(kept.headers()["x-request-id"], "abc-123.X_y");
    for bad in ["has space", "semi;colon", &"x".repeat(200)] {
        let resp = s
            .client
            .get(s.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .expect("req");
        let id = resp.headers()["x-request-id"].to_str().expect("ascii");
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok());
    }
}

#[tokio::test]
async fn cors_answers_only_allowed_origins() {
    let s = start_with(&[("ISSUER_CORS_ORIGINS", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("/api/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.expect("req");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(allowed
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    let denied = preflight("https://evil.example.com").await.expect("req");
    assert!(denied.headers().get("access-control-allow-origin").is_none());

    let plain = start().await;
    let resp = plain
        .client
        .get(plain.url("/.well-known/jwks.json"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("req");
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "no origins configured, no CORS"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let s = start().await;
    let health = s.client.get(s.url("/healthz")).send().await.expect("req");
    assert_eq!(health.status(), 200);
    let ready: Value = s
        .client
        .get(s.url("/readyz"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["signing_key"], "ok");

    s.app.store.close().await;
    let down = s.client.get(s.url("/readyz")).send().await.expect("req");
    assert_eq!(down.status(), 503);
    let login = s
        .post_json(
            "/api/v1/auth/login",
            serde_json::json!({"email": "a@example.com", "password": common::PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), 503, "database gone: 503, not 500");
    let body: Value = login.json().await.expect("json");
    assert!(body["request_id"].is_string());
    assert!(
        !body.to_string().to_lowercase().contains("pool"),
        "no internals: {body}"
    );
}

#[tokio::test]
async fn a_request_that_stalls_is_ended_with_a_json_503_a_browser_app_can_read() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = start_with(&[
        ("ISSUER_REQUEST_TIMEOUT", "1s"),
        ("ISSUER_CORS_ORIGINS", "https://app.example.com"),
    ])
    .await;
    let addr = s.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // Promise a body and never send it.
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nOrigin: https://app.example.com\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            response.extend_from_slice(&buf[..n]);
            if n == 0 || response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled request");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"error\":\"timeout\""), "{text}");
    let text = text.to_lowercase();
    assert!(text.contains("x-request-id"), "{text}");
    assert!(
        text.contains("access-control-allow-origin: https://app.example.com"),
        "CORS headers on the 503 too: {text}"
    );
}
