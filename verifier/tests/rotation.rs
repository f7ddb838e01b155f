//! token-verifier through a real token-issuer's key rotation — the issuer's own rotation path
//! (keyset source, state machine, hot reload) — with the verifier honouring the JWKS max-age:
//! every token verifies, and no lookup ever misses the cache for an unknown `kid`.
//! Its own test binary, because it installs the process-wide metrics recorder it reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::{json, Value};
use time::OffsetDateTime;
use token_issuer::keys::lifecycle::{self, Timing};
use token_issuer::keys::source::{FileSource, KeySource};
use token_issuer::keys::{generate_record, Alg, KeyState};
use token_verifier::{CacheClock, JwksOptions, Verifier};

fn new_key() -> token_issuer::keys::KeyRecord {
    generate_record(Alg::EdDsa, 0, KeyState::Pending, OffsetDateTime::now_utc()).expect("generate")
}

async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    http.post(url)
        .json(body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

fn kid_of(token: &str) -> String {
    token_issuer::testkit::segment(token, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

/// What the verifier counted: a snapshot drains the recorder, so counts are kept here.
struct Counters {
    snapshotter: Snapshotter,
    totals: std::sync::Mutex<HashMap<String, u64>>,
}

impl Counters {
    fn count(&self, name: &str) -> u64 {
        let mut totals = self.totals.lock().expect("totals");
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            if let DebugValue::Counter(n) = value {
                *totals.entry(key.key().name().to_owned()).or_default() += n;
            }
        }
        totals.get(name).copied().unwrap_or(0)
    }
}

/// Waits until the issuer's JWKS lists `kid` (or no longer does).
async fn serves(server: &token_issuer::testkit::TestServer, kid: &str, listed: bool) {
    let done =
        token_issuer::testkit::eventually(Duration::from_secs(10), Duration::from_millis(100), || async {
            let jwks = server.jwks().await;
            let has = jwks["keys"]
                .as_array()
                .is_some_and(|keys| keys.iter().any(|k| k["kid"] == kid));
            (has == listed).then_some(())
        })
        .await;
    assert!(
        done.is_some(),
        "the issuer never {} {kid}",
        if listed { "published" } else { "dropped" }
    );
}

/// Lets the verifier's cache age past max-age, twice, and waits for each refetch (the
/// watcher verifies every 50 ms): the second fetch began after the call.
async fn refetched(counters: &Counters, clock: &CacheClock) {
    for _ in 0..2 {
        let before = counters.count("token_verifier_jwks_fetches_total");
        clock.advance(Duration::from_secs(1));
        let fetched =
            token_issuer::testkit::eventually(Duration::from_secs(10), Duration::from_millis(20), || async {
                (counters.count("token_verifier_jwks_fetches_total") > before).then_some(())
            })
            .await;
        assert!(fetched.is_some(), "the verifier never refetched the keys");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verifies_every_token_across_a_real_rotation_without_an_unknown_kid() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("metrics recorder");
    let fetches = Counters {
        snapshotter,
        totals: Default::default(),
    };

    // Publication 2 s ≥ max-age 1 s + reload 1 s; retention 3 + 1 + 1 = 5 s. The issuer
    // makes its first EdDSA key itself (development, empty file source).
    let server = token_issuer::testkit::start_with(&[
        ("ISSUER_SIGNING_ALG", "EdDSA"),
        ("ISSUER_JWKS_MAX_AGE", "1s"),
        ("ISSUER_KEY_RELOAD_INTERVAL", "1s"),
        ("ISSUER_KEY_PUBLICATION_PERIOD", "2s"),
        ("ISSUER_ACCESS_TOKEN_TTL", "3s"),
    ])
    .await;
    let base = server.base.clone();
    let source = KeySource::File(FileSource::new(server.dir.path().join("keys")));
    let now = OffsetDateTime::now_utc;
    let timing = Timing::from_settings(&server.app.settings);

    // Honour the issuer's max-age exactly; an unknown kid would be refetched only after an
    // hour, so it would show as a failure, not be papered over.
    let options = JwksOptions {
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(1),
        unknown_kid_cooldown: Duration::from_secs(3600),
        ..JwksOptions::default()
    };
    // The key cache runs on a clock the test moves: max-age passes when the test says so.
    let cache_clock = CacheClock::adjustable();
    let verifier = Arc::new(
        Verifier::builder(&base)
            .audience(&base)
            .jwks_options(options)
            .cache_clock(cache_clock.clone())
            .build()
            .await
            .expect("verifier"),
    );

    let http = server.client.clone();
    server.register("rotation@example.com").await;
    let tokens = server.login("rotation@example.com").await;
    let old_kid = kid_of(tokens["access_token"].as_str().expect("access"));

    // Refresh and verify continuously until told to stop.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let (http, verifier, base) = (http.clone(), verifier.clone(), base.clone());
        let mut refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
        tokio::spawn(async move {
            let (mut seen, mut failures) = (HashMap::<String, usize>::new(), Vec::new());
            loop {
                let url = format!("{base}/api/v1/auth/refresh");
                let tokens = post_json(&http, &url, &json!({ "refresh_token": refresh })).await;
                refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
                let access = tokens["access_token"].as_str().expect("access");
                match verifier.verify::<Value>(access).await {
                    Ok(_) => *seen.entry(kid_of(access)).or_insert(0) += 1,
                    Err(e) => failures.push(e.to_string()),
                }
                tokio::select! {
                    _ = &mut stopped => return (seen, failures),
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
    };

    // The issuer's rotation path: a pending key, the publication period, rotate, prune.
    let next = new_key();
    let new_kid = next.kid.clone();
    source
        .update(|doc| lifecycle::add(doc, next, now()))
        .await
        .expect("pending key");
    // Published: the issuer serves the pending key and the verifier has fetched the keys
    // since. Then the publication period is made to pass on the lifecycle's clock.
    serves(&server, &new_kid, true).await;
    refetched(&fetches, &cache_clock).await;
    let published = now() + Duration::from_secs(2);
    let login = || async {
        let tokens = server.login("rotation@example.com").await;
        tokens["access_token"].as_str().expect("access").to_owned()
    };
    let before_rotation = login().await;
    source
        .update(|doc| {
            lifecycle::rotate(doc, Alg::EdDsa, timing, published)?;
            lifecycle::add(doc, new_key(), published)
        })
        .await
        .expect("rotate");
    let promoted =
        token_issuer::testkit::eventually(Duration::from_secs(10), Duration::from_millis(100), || async {
            (kid_of(&login().await) == new_kid).then_some(())
        })
        .await;
    assert!(promoted.is_some(), "the issuer never signed with the new key");
    assert_eq!(kid_of(&before_rotation), old_kid);
    verifier
        .verify::<Value>(&before_rotation)
        .await
        .expect("a token from before the rotation verifies until it expires");
    // Retention (3 + 1 + 1 s after retirement), on the lifecycle's clock.
    let retained = published + Duration::from_secs(5);
    let (pruned, _) = source
        .update(|doc| Ok(lifecycle::prune(doc, timing, retained)))
        .await
        .expect("prune");
    assert_eq!(pruned.len(), 1);
    assert_eq!(pruned[0].kid, old_kid);
    // Verification goes on while the issuer drops the key and the verifier follows.
    serves(&server, &old_kid, false).await;
    refetched(&fetches, &cache_clock).await;

    let _ = stop.send(());
    let (seen, failures) = watcher.await.expect("watcher");
    assert!(
        failures.is_empty(),
        "verification failed across the rotation: {failures:?}"
    );
    assert!(seen.get(&old_kid).is_some_and(|n| *n > 0), "{seen:?}");
    assert!(seen.get(&new_kid).is_some_and(|n| *n > 0), "{seen:?}");
    let counter = |name: &str| fetches.count(name);
    assert!(counter("token_verifier_key_cache_hits_total") > 0);
    assert!(
        counter("token_verifier_jwks_fetches_total") > 2,
        "the cache expired and was refreshed"
    );
    assert_eq!(
        counter("token_verifier_key_cache_misses_total"),
        0,
        "a verifier met an unknown kid"
    );
}
