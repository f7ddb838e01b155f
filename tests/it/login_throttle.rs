//! Brute-force defence at `/api/v1/auth/login`, over real HTTP: per client IP (as trusted
//! proxies report it), per account across IPs, and what resets each.

use crate::common;

use std::time::Duration;

use crate::common::PASSWORD;

const BEHIND_PROXY: [(&str, &str); 1] = [("ISSUER_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")];

#[tokio::test]
async fn the_sixth_failed_login_from_one_ip_waits_and_other_ips_do_not() {
    let server = common::start_with(&BEHIND_PROXY).await;
    server.register("target@example.com").await;
    for i in 0..5 {
        let (status, _) = server
            .login_from("198.51.100.1", &format!("guess{i}@example.com"), "wrong password")
            .await;
        assert_eq!(status, 401, "failure {i}");
    }
    let (status, retry_after) = server
        .login_from("198.51.100.1", "target@example.com", PASSWORD)
        .await;
    assert_eq!(status, 429, "even the right password waits: nothing is checked");
    // 15 minutes / 5 failures, less the time the five attempts took.
    assert!(
        retry_after.is_some_and(|s| (170..=180).contains(&s)),
        "{retry_after:?}"
    );
    let (status, _) = server
        .login_from("198.51.100.2", "target@example.com", PASSWORD)
        .await;
    assert_eq!(status, 200, "another client IP is unaffected");
}

#[tokio::test]
async fn forwarded_addresses_from_untrusted_peers_are_ignored() {
    let server = common::start().await;
    for i in 0..5 {
        // A client inventing a new address each time is still one client.
        let (status, _) = server
            .login_from(&format!("203.0.113.{i}"), "nobody@example.com", "wrong")
            .await;
        assert_eq!(status, 401);
    }
    let (status, retry_after) = server
        .login_from("203.0.113.99", "nobody@example.com", "wrong")
        .await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
}

#[tokio::test]
async fn an_account_under_attack_from_many_ips_backs_off_and_its_owner_gets_back_in() {
    let settings = [
        BEHIND_PROXY[0],
        ("ISSUER_LOGIN_MAX_FAILURES", "3"),
        ("ISSUER_LOGIN_FAILURE_WINDOW", "30s"),
    ];
    let server = common::start_with(&settings).await;
    server.register("victim@example.com").await;
    for i in 0..3 {
        let (status, _) = server
            .login_from(&format!("192.0.2.{i}"), "Victim@Example.com", "wrong")
            .await;
        assert_eq!(status, 401, "credential stuffing, attempt {i}");
    }
    // The account now backs off from every address: 1 s, and twice as long after each
    // further failure. Waited out, a failure counts and doubles the wait.
    server.advance(Duration::from_secs(1));
    assert_eq!(
        server
            .login_from("192.0.2.3", "victim@example.com", "wrong")
            .await
            .0,
        401
    );
    server.advance(Duration::from_secs(2));
    assert_eq!(
        server
            .login_from("192.0.2.4", "victim@example.com", "wrong")
            .await
            .0,
        401
    );
    // A fresh address with the right password must wait out the 4 s back-off too (more
    // than the 1 s a back-off that never doubled would leave).
    let (status, retry_after) = server
        .login_from("192.0.2.50", "victim@example.com", PASSWORD)
        .await;
    assert_eq!(status, 429);
    server.wait_out(retry_after, 2..=4);
    // The owner, after the wait, logs in — and that clears the account's failures.
    let (status, _) = server
        .login_from("192.0.2.60", "victim@example.com", PASSWORD)
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .login_from("192.0.2.61", "victim@example.com", "wrong")
        .await;
    assert_eq!(status, 401, "counting starts again from zero");
}

#[tokio::test]
async fn the_ip_budget_refills_with_time() {
    let settings = [
        BEHIND_PROXY[0],
        ("ISSUER_LOGIN_MAX_FAILURES", "2"),
        // One failure refills every 7.5 minutes.
        ("ISSUER_LOGIN_FAILURE_WINDOW", "15m"),
    ];
    let server = common::start_with(&settings).await;
    server.register("patient@example.com").await;
    for email in ["a@example.com", "b@example.com"] {
        assert_eq!(server.login_from("198.51.100.9", email, "wrong").await.0, 401);
    }
    let (status, retry_after) = server
        .login_from("198.51.100.9", "patient@example.com", PASSWORD)
        .await;
    assert_eq!(status, 429);
    server.wait_out(retry_after, 440..=450);
    assert_eq!(
        server
            .login_from("198.51.100.9", "patient@example.com", PASSWORD)
            .await
            .0,
        200,
        "one failure's worth refilled after window / max"
    );
}
