//! Registration, login, the current user and erasure, over HTTP.

use crate::common;

use crate::common::{start, start_on, PASSWORD};
use serde_json::{json, Value};

#[tokio::test]
async fn register_login_me_and_erase() {
    let s = start().await;
    let user = s.register("  Alice@Example.COM ").await;
    assert_eq!(user["email"], "Alice@example.com", "trimmed, domain lower-cased");
    assert!(user["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(time::OffsetDateTime::parse(
        user["created_at"].as_str().expect("created_at"),
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());

    let dup = s
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "Alice@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(dup.status(), 409);

    let tokens = s.login("Alice@EXAMPLE.com").await;
    let access = tokens["access_token"].as_str().expect("access");
    let me: Value = s
        .get_bearer("/api/v1/users/me", access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me, user);

    let info: Value = s
        .get_bearer("/oauth2/userinfo", access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["sub"], user["id"]);

    let wrong = s
        .client
        .delete(s.url("/api/v1/users/me"))
        .bearer_auth(access)
        .json(&json!({"password": "not the password at all"}))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 403);
    assert_eq!(
        s.get_bearer("/api/v1/users/me", access).await.status(),
        200,
        "still there"
    );

    let gone = s
        .client
        .delete(s.url("/api/v1/users/me"))
        .bearer_auth(access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(gone.status(), 204);
    assert_eq!(s.get_bearer("/api/v1/users/me", access).await.status(), 401);
    let login = s
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "Alice@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), 401);
    let refresh = s
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_eq!(refresh.status(), 401, "erasure ends the sessions");
    // The address can be used again.
    s.register("alice@example.com").await;
}

#[tokio::test]
async fn wrong_email_and_wrong_password_look_the_same() {
    let s = start().await;
    s.register("bob@example.com").await;
    let unknown = s
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    let wrong = s
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "bob@example.com", "password": "wrong horse battery"}),
        )
        .await;
    let malformed = s
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "not-an-email", "password": PASSWORD}),
        )
        .await;
    let (su, sw, sm) = (unknown.status(), wrong.status(), malformed.status());
    let bodies: Vec<Value> = vec![
        unknown.json().await.expect("json"),
        wrong.json().await.expect("json"),
        malformed.json().await.expect("json"),
    ];
    assert_eq!(
        (su, sw, sm),
        (
            reqwest::StatusCode::UNAUTHORIZED,
            reqwest::StatusCode::UNAUTHORIZED,
            reqwest::StatusCode::UNAUTHORIZED
        )
    );
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    assert_eq!(bodies[0]["error"], "invalid_credentials");
}

#[tokio::test]
async fn password_policy_and_email_checks_name_the_field() {
    let s = start().await;
    let cases = [
        ("carol@example.com", "Xk9#mQ2$", "password"),
        ("carol@example.com", "password1234", "password"),
        ("carol@example.com", "carol@example.com1", "password"),
        ("carol-at-example.com", PASSWORD, "email"),
    ];
    for (email, password, field) in cases {
        let resp = s
            .post_json(
                "/api/v1/auth/register",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(resp.status(), 422, "{email} / {password}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["field"], field, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let long = "correct horse ".repeat(80);
    let resp = s
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "carol@example.com", "password": long}),
        )
        .await;
    assert_eq!(resp.status(), 422, "over 1024 bytes");
    let unicode = s
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "carol@example.com", "password": "Грузовик фиолетовый тает 🚜"}),
        )
        .await;
    assert_eq!(unicode.status(), 201);
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_json_errors() {
    let s = start().await;
    let url = s.url("/api/v1/auth/register");
    let send = |body: Vec<u8>, content_type: &'static str| {
        s.client
            .post(url.clone())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (
            b"{\"email\": ".to_vec(),
            "application/json",
            400,
            "malformed_json",
        ),
        (
            b"{\"email\":\"a@example.com\",\"password\":\"x\"} trailing".to_vec(),
            "application/json",
            400,
            "malformed_json",
        ),
        (
            b"email=a@example.com".to_vec(),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (
            b"{\"email\":\"a@example.com\"}".to_vec(),
            "application/json",
            422,
            "invalid_field",
        ),
        (
            b"{\"email\":5,\"password\":\"x\"}".to_vec(),
            "application/json",
            422,
            "invalid_field",
        ),
        (
            format!("{{\"email\":\"{}\"}}", "a".repeat(200_000)).into_bytes(),
            "application/json",
            413,
            "body_too_large",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let resp = send(body, content_type).await.expect("request");
        assert_eq!(resp.status().as_u16(), status, "{code}");
        let body: Value = resp.json().await.expect("json error body");
        assert_eq!(body["error"], code);
    }
    let not_an_object: Value = send(b"123".to_vec(), "application/json")
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(not_an_object["field"], "body");
    let missing: Value = send(b"{\"email\":\"a@example.com\"}".to_vec(), "application/json")
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(missing["field"], "password");
    let wrong_type: Value = send(b"{\"email\":5,\"password\":\"x\"}".to_vec(), "application/json")
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(wrong_type["field"], "email");
}

#[tokio::test]
async fn disabled_users_cannot_log_in_or_refresh() {
    let s = start().await;
    let (access, refresh) = s.user_session("dave@example.com").await;
    s.app
        .accounts
        .set_disabled("dave@example.com", true)
        .await
        .expect("disable");
    let login = s
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "dave@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), 403);
    assert_eq!(
        s.post_json("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
            .await
            .status(),
        401
    );
    assert_eq!(s.get_bearer("/api/v1/users/me", &access).await.status(), 401);
    s.app
        .accounts
        .set_disabled("dave@example.com", false)
        .await
        .expect("enable");
    s.login("dave@example.com").await;
}

#[tokio::test]
async fn login_rehashes_passwords_stored_with_old_parameters() {
    let cheap = [
        ("ISSUER_ARGON2_MEMORY_KIB", "8192"),
        ("ISSUER_ARGON2_ITERATIONS", "1"),
    ];
    let s = common::start_with(&cheap).await;
    s.register("erin@example.com").await;
    let stored = |s: &common::TestServer| {
        let store = s.app.store.clone();
        async move {
            store
                .user_by_email("erin@example.com")
                .await
                .expect("query")
                .expect("user")
                .password_hash
        }
    };
    let before = stored(&s).await;
    assert!(before.contains("m=8192,t=1,p=1"), "{before}");

    let (dir, db) = (s.dir.clone(), s.database_url.clone());
    drop(s);
    let s = start_on(dir, db, &[]).await;
    s.login("erin@example.com").await;
    let after = stored(&s).await;
    assert!(after.contains("m=19456,t=2,p=1"), "{after}");
    s.login("erin@example.com").await;
}
