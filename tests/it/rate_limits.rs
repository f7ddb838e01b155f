//! Request budgets over real HTTP — register, refresh, the token endpoint — and, with the
//! database or Redis as the store, budgets that two instances share instead of each
//! granting its own. With the store gone, login and register refuse (fail closed).

use crate::common;

use std::time::Duration;

use crate::common::{TestServer, PASSWORD};
use serde_json::{json, Value};
use token_issuer::oauth::clients::NewClient;

const REDIS: &str = "redis://127.0.0.1:6379";
const BEHIND_PROXY: (&str, &str) = ("ISSUER_TRUSTED_PROXIES", "127.0.0.1/32,::1/128");

/// An IPv6 /64 (documentation range) that nothing else uses: Redis keeps counters across
/// tests and runs, so every test's clients are new to it.
fn fresh_net() -> String {
    let r = uuid::Uuid::new_v4().as_u128();
    format!("2001:db8:{:x}:{:x}", (r >> 16) as u16, r as u16)
}

fn fresh_email(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// POSTs JSON as the client at `ip` (the loopback peer is a trusted proxy); returns the
/// status, `Retry-After` and body.
async fn post(server: &TestServer, path: &str, ip: &str, body: Value) -> (u16, Option<u64>, Value) {
    let resp = server
        .client
        .post(server.url(path))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .expect("request");
    outcome(resp).await
}

/// Status, `Retry-After` and JSON body (null when there is none).
async fn outcome(resp: reqwest::Response) -> (u16, Option<u64>, Value) {
    let status = resp.status().as_u16();
    let retry_after = common::retry_after(&resp);
    (status, retry_after, resp.json().await.unwrap_or(Value::Null))
}

async fn register(server: &TestServer, ip: &str, email: &str) -> (u16, Option<u64>) {
    let (status, retry_after, _) = post(
        server,
        "/api/v1/auth/register",
        ip,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    (status, retry_after)
}

async fn budgets_are_shared_by_two_instances(store: &str) {
    let settings = [
        BEHIND_PROXY,
        ("ISSUER_RATE_LIMIT_STORE", store),
        ("ISSUER_LOGIN_MAX_FAILURES", "4"),
        ("ISSUER_LOGIN_FAILURE_WINDOW", "1h"),
        ("ISSUER_REGISTER_RATE_LIMIT", "3/1h"),
    ];
    let a = common::start_with(&settings).await;
    let b = a.sibling(&settings).await;
    let both = [&a, &b];

    // Registration: 3 per client across both instances (an IPv6 client is its /64).
    let net = fresh_net();
    let victim = fresh_email("victim");
    for (i, email) in [victim.clone(), fresh_email("b"), fresh_email("c")]
        .iter()
        .enumerate()
    {
        let ip = format!("{net}::{i}");
        assert_eq!(register(both[i % 2], &ip, email).await.0, 201, "registration {i}");
    }
    let (status, retry_after) = register(&b, &format!("{net}::ff"), &fresh_email("d")).await;
    assert_eq!(status, 429, "b saw one registration, but the budget is shared");
    assert!(retry_after.is_some_and(|s| s > 1000), "{retry_after:?}");

    // Failed logins per client: 4 across both instances, then both refuse.
    let attacker = fresh_net();
    for i in 0..4 {
        let (status, _) = both[i % 2]
            .login_from(&format!("{attacker}::{i}"), &fresh_email("guess"), "wrong")
            .await;
        assert_eq!(status, 401, "failure {i}");
    }
    for server in both {
        let (status, retry_after) = server
            .login_from(&format!("{attacker}::99"), &victim, PASSWORD)
            .await;
        assert_eq!(status, 429);
        assert!(
            retry_after.is_some_and(|s| (890..=900).contains(&s)),
            "one failure refills every 1h / 4: {retry_after:?}"
        );
    }

    // One account from many clients, across both instances: it backs off on both.
    for i in 0..4 {
        let (status, _) = both[i % 2]
            .login_from(&format!("{}::1", fresh_net()), &victim, "wrong")
            .await;
        assert_eq!(status, 401, "stuffing attempt {i}");
    }
    // The 1 s back-off waited out, a failure on a doubles it to 2 s, which b enforces.
    a.advance(Duration::from_secs(1));
    let (status, _) = a
        .login_from(&format!("{}::1", fresh_net()), &victim, "wrong")
        .await;
    assert_eq!(status, 401, "stuffing attempt after the back-off");
    let (status, retry_after) = b
        .login_from(&format!("{}::1", fresh_net()), &victim, PASSWORD)
        .await;
    assert_eq!(status, 429);
    a.wait_out(retry_after, 1..=2);
    let (status, _) = a
        .login_from(&format!("{}::1", fresh_net()), &victim, PASSWORD)
        .await;
    assert_eq!(status, 200, "the owner gets in after the short wait");
    let (status, _) = b
        .login_from(&format!("{}::1", fresh_net()), &victim, "wrong")
        .await;
    assert_eq!(
        status, 401,
        "a's success cleared the account's failures for b too"
    );
}

#[tokio::test]
async fn two_instances_on_one_database_share_their_budgets() {
    budgets_are_shared_by_two_instances("database").await;
}

#[tokio::test]
async fn two_instances_on_one_redis_share_their_budgets() {
    budgets_are_shared_by_two_instances(REDIS).await;
}

async fn create_client(server: &TestServer, id: &str) -> String {
    server
        .register_client(NewClient {
            id: id.into(),
            grants: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            audiences: vec![],
            access_token_ttl: None,
            jwk: None,
            ..Default::default()
        })
        .await
        .expect("a secret client")
}

async fn client_token(server: &TestServer, id: &str, secret: &str) -> (u16, Option<u64>, Value) {
    let resp = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    outcome(resp).await
}

#[tokio::test]
async fn the_token_endpoint_limits_each_client_once_it_is_authenticated() {
    let server = common::start_with(&[("ISSUER_TOKEN_RATE_LIMIT", "3/1h")]).await;
    let a = create_client(&server, "svc-a").await;
    let b = create_client(&server, "svc-b").await;
    for i in 0..3 {
        assert_eq!(client_token(&server, "svc-a", &a).await.0, 200, "token {i}");
    }
    let (status, retry_after, body) = client_token(&server, "svc-a", &a).await;
    assert_eq!(status, 429);
    assert!(
        retry_after.is_some_and(|s| (1190..=1200).contains(&s)),
        "one token refills every 1h / 3: {retry_after:?}"
    );
    assert_eq!(body["error"], "rate_limited");
    for _ in 0..5 {
        // Someone who knows only the id cannot spend the client's budget.
        assert_eq!(client_token(&server, "svc-b", "not-the-secret").await.0, 401);
    }
    assert_eq!(
        client_token(&server, "svc-b", &b).await.0,
        200,
        "another client is unaffected"
    );
}

/// Many requests of one client at once, on two instances sharing a store: exactly the
/// budget goes through — none more, and none refused for the crowd itself.
async fn a_crowd_of_one_client_gets_exactly_its_budget(store: &str) {
    let settings = [
        ("ISSUER_RATE_LIMIT_STORE", store),
        ("ISSUER_TOKEN_RATE_LIMIT", "25/1h"),
    ];
    let a = common::start_with(&settings).await;
    let b = a.sibling(&settings).await;
    // Redis outlives the test: a fresh client, so a fresh budget.
    let id = format!("crowd-{}", uuid::Uuid::new_v4().simple());
    let secret = create_client(&a, &id).await;
    let mut crowd = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = if i % 2 == 0 {
            a.url("/oauth2/token")
        } else {
            b.url("/oauth2/token")
        };
        let (client, id, secret) = (a.client.clone(), id.clone(), secret.clone());
        crowd.spawn(async move {
            let resp = client
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token request");
            resp.status().as_u16()
        });
    }
    let statuses = crowd.join_all().await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((admitted, refused), (25, 15), "{statuses:?}");
}

#[tokio::test]
async fn a_crowd_of_one_client_gets_exactly_its_budget_from_the_database() {
    a_crowd_of_one_client_gets_exactly_its_budget("database").await;
}

#[tokio::test]
async fn a_crowd_of_one_client_gets_exactly_its_budget_from_redis() {
    a_crowd_of_one_client_gets_exactly_its_budget(REDIS).await;
}

#[tokio::test]
async fn refreshes_are_limited_per_client_on_both_refresh_paths() {
    let server = common::start_with(&[BEHIND_PROXY, ("ISSUER_REFRESH_RATE_LIMIT", "2/1h")]).await;
    let (_, refresh) = server.user_session("refresher@example.com").await;
    let (status, _, body) = post(
        &server,
        "/api/v1/auth/refresh",
        "192.0.2.1",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, 200);
    let refresh = body["refresh_token"].as_str().expect("rotated").to_owned();
    let token_endpoint = |refresh: String, ip: &'static str| {
        server
            .client
            .post(server.url("/oauth2/token"))
            .header("x-forwarded-for", ip)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", "first-party"),
            ])
            .send()
    };
    let resp = token_endpoint(refresh, "192.0.2.1").await.expect("refresh");
    assert_eq!(resp.status(), 200);
    let refresh = resp.json::<Value>().await.expect("json")["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let resp = token_endpoint(refresh.clone(), "192.0.2.1")
        .await
        .expect("refresh");
    assert_eq!(
        resp.status(),
        429,
        "the third refresh from one client within the hour"
    );
    assert!(resp.headers().contains_key("retry-after"));
    let (status, _, _) = post(
        &server,
        "/api/v1/auth/refresh",
        "192.0.2.2",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, 200, "another client has its own budget");
}

#[tokio::test]
async fn with_the_redis_store_down_login_and_register_refuse_and_tokens_go_on() {
    // Nothing listens on port 1.
    let server = common::start_with(&[("ISSUER_RATE_LIMIT_STORE", "redis://127.0.0.1:1")]).await;
    let (status, _, body) = post(
        &server,
        "/api/v1/auth/register",
        "ignored",
        json!({"email": "new@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "unavailable");
    let (status, _) = server
        .login_from("ignored", "someone@example.com", PASSWORD)
        .await;
    assert_eq!(status, 503, "login fails closed");
    let secret = create_client(&server, "svc").await;
    assert_eq!(
        client_token(&server, "svc", &secret).await.0,
        200,
        "client tokens go on, unmetered (logged)"
    );
}
