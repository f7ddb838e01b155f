//! The key cache against a counting JWKS server: TTL, ETag, cooldown, single-flight,
//! stale-if-error, and bounded bad responses.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::*;
use token_issuer::keys::Alg;
use token_verifier::{Claims, VerifyError};

#[tokio::test]
async fn keys_are_cached_for_max_age_then_revalidated_with_the_etag() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 1).await;
    let (v, clock) = verifier_on_clock(&server, options()).await;
    let token = sign(&key, &claims());
    for _ in 0..20 {
        let c: Claims = v.verify(&token).await.expect("valid");
        assert_eq!(c.sub, "user-1");
    }
    assert_eq!(server.state.fetches(), 1, "cached within max-age");
    clock.advance(Duration::from_secs(1));
    v.verify::<serde_json::Value>(&token).await.expect("still valid");
    assert_eq!(server.state.full.load(Ordering::SeqCst), 1);
    assert_eq!(
        server.state.not_modified.load(Ordering::SeqCst),
        1,
        "revalidated with If-None-Match"
    );
}

#[tokio::test]
async fn max_age_is_clamped_to_the_configured_bounds() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 0).await;
    let mut opts = options();
    opts.min_ttl = Duration::from_secs(60);
    let v = verifier(&server, opts).await;
    let token = sign(&key, &claims());
    for _ in 0..10 {
        v.verify::<serde_json::Value>(&token).await.expect("valid");
    }
    assert_eq!(server.state.fetches(), 1, "max-age=0 is raised to min_ttl");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 300).await;
    let v = verifier(&server, options()).await;
    v.verify::<serde_json::Value>(&sign(&key, &claims()))
        .await
        .expect("valid");
    let base = server.state.fetches();
    let forged = sign(&key, &claims());
    let (header, rest) = forged.split_once('.').expect("jws");
    let _ = header;
    for i in 0..1000 {
        use base64::Engine as _;
        let h = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": format!("random-{i}")});
        let token = format!(
            "{}.{rest}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.to_string())
        );
        let err = v
            .verify::<serde_json::Value>(&token)
            .await
            .expect_err("unknown kid");
        assert!(matches!(err, VerifyError::UnknownKid(_)), "{err}");
    }
    assert!(
        server.state.fetches() - base <= 1,
        "{} fetches",
        server.state.fetches() - base
    );
    // Good keys survived the flood.
    v.verify::<serde_json::Value>(&sign(&key, &claims()))
        .await
        .expect("still valid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_on_a_new_kid_share_one_fetch() {
    let old = new_key(Alg::EdDsa);
    let server = jwks_server(vec![old.clone()], 300).await;
    let v = verifier(&server, options()).await;
    v.verify::<serde_json::Value>(&sign(&old, &claims()))
        .await
        .expect("valid");
    let new = new_key(Alg::EdDsa);
    server.publish(new.clone());
    server.set_mode(Mode::Slow(Duration::from_millis(300)));
    let token = sign(&new, &claims());
    let before = server.state.fetches();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            tokio::spawn(async move { v.verify::<serde_json::Value>(&token).await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("the new key is found");
    }
    assert_eq!(server.state.fetches() - before, 1, "single flight");
}

#[tokio::test]
async fn known_keys_are_served_stale_while_the_issuer_is_down() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 1).await;
    let mut opts = options();
    opts.stale_if_error = Duration::from_secs(3);
    let (v, clock) = verifier_on_clock(&server, opts).await;
    let token = sign(&key, &claims());
    v.verify::<serde_json::Value>(&token).await.expect("valid");
    server.set_mode(Mode::Down);
    clock.advance(Duration::from_secs(1));
    v.verify::<serde_json::Value>(&token)
        .await
        .expect("stale keys still verify");
    clock.advance(Duration::from_secs(2));
    let err = v
        .verify::<serde_json::Value>(&token)
        .await
        .expect_err("past the stale limit");
    assert!(matches!(err, VerifyError::KeysUnavailable(_)), "{err}");
    server.set_mode(Mode::Normal);
    v.verify::<serde_json::Value>(&token)
        .await
        .expect("recovers by itself");
}

#[tokio::test]
async fn slow_huge_and_malformed_responses_are_bounded() {
    let key = new_key(Alg::EdDsa);
    let token = sign(&key, &claims());
    for mode in [
        Mode::Slow(Duration::from_secs(5)),
        Mode::Huge,
        Mode::Malformed,
        Mode::Down,
    ] {
        let server = jwks_server(vec![key.clone()], 300).await;
        server.set_mode(mode);
        let mut opts = options();
        opts.timeout = Duration::from_millis(500);
        let v = verifier(&server, opts).await;
        let started = Instant::now();
        let err = v
            .verify::<serde_json::Value>(&token)
            .await
            .expect_err("no usable keys");
        assert!(matches!(err, VerifyError::KeysUnavailable(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "bounded by the timeout"
        );
    }
}

#[tokio::test]
async fn keys_are_refreshed_in_the_background_before_they_expire() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 2).await;
    let (v, clock) = verifier_on_clock(&server, options()).await;
    let token = sign(&key, &claims());
    v.verify::<serde_json::Value>(&token).await.expect("valid");
    assert_eq!(server.state.fetches(), 1);
    // Past 80 % of the 2 s max-age: served from the cache at once, refreshed behind it.
    clock.advance(Duration::from_millis(1700));
    v.verify::<serde_json::Value>(&token).await.expect("valid");
    let refreshed =
        token_issuer::testkit::eventually(Duration::from_secs(1), Duration::from_millis(20), || async {
            (server.state.fetches() == 2).then_some(())
        })
        .await;
    assert!(refreshed.is_some(), "refreshed ahead of expiry");
    // Past the original expiry the refreshed keys are still fresh: no fetch on this call.
    clock.advance(Duration::from_millis(500));
    v.verify::<serde_json::Value>(&token).await.expect("valid");
    assert_eq!(server.state.fetches(), 2);
}

#[tokio::test]
async fn an_issuer_that_is_down_is_not_hammered() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 300).await;
    server.set_mode(Mode::Down);
    let mut opts = options();
    opts.retry_after_error = Duration::from_secs(30);
    let v = verifier(&server, opts).await;
    let token = sign(&key, &claims());
    for _ in 0..50 {
        let err = v
            .verify::<serde_json::Value>(&token)
            .await
            .expect_err("no keys yet");
        assert!(matches!(err, VerifyError::KeysUnavailable(_)), "{err}");
    }
    assert_eq!(
        server.state.requests.load(Ordering::SeqCst),
        1,
        "one attempt per retry period"
    );
}

#[tokio::test]
async fn an_empty_key_set_does_not_replace_good_keys() {
    let key = new_key(Alg::EdDsa);
    let server = jwks_server(vec![key.clone()], 1).await;
    let (v, clock) = verifier_on_clock(&server, options()).await;
    let token = sign(&key, &claims());
    v.verify::<serde_json::Value>(&token).await.expect("valid");
    server.state.published.lock().expect("lock").records.clear();
    clock.advance(Duration::from_secs(1));
    v.verify::<serde_json::Value>(&token)
        .await
        .expect("old keys kept");
    assert!(
        server.state.requests.load(Ordering::SeqCst) >= 2,
        "the empty set was fetched"
    );
}
