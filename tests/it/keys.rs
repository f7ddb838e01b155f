//! Key rotation, revocation, hot reload and the `keys` CLI, on the file source and on AWS
//! Secrets Manager (a local moto server). Keys are changed the way operators change them: by
//! running `token-issuer keys …`; the issuer under test reloads them on its own.

use crate::common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::moto::Moto;
use crate::common::{run_issuer, TestServer};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use tempfile::TempDir;
use token_issuer::keys::source::KeySource;

/// Short periods so a rotation takes seconds: publication 3 s ≥ max-age 1 s + reload 1 s,
/// with a second to spare for a slow reload or CLI start; retention = access TTL 3 s +
/// max-age 1 s + reload 1 s = 5 s.
const FAST: [(&str, &str); 5] = [
    ("ISSUER_JWKS_MAX_AGE", "1s"),
    ("ISSUER_KEY_RELOAD_INTERVAL", "1s"),
    ("ISSUER_KEY_PUBLICATION_PERIOD", "3s"),
    ("ISSUER_ACCESS_TOKEN_TTL", "3s"),
    ("ISSUER_REFRESH_TOKEN_TTL", "1h"),
];

/// A key source as both the CLI (environment) and an in-process server see it.
struct Keys {
    dir: Arc<TempDir>,
    spec: String,
    moto: Option<Moto>,
    secret: String,
    alg: &'static str,
}

impl Keys {
    fn file(alg: &'static str) -> Keys {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let spec = format!("file:{}/keys", dir.path().display());
        Keys {
            dir,
            spec,
            moto: None,
            secret: String::new(),
            alg,
        }
    }

    async fn aws(alg: &'static str) -> Keys {
        let secret = format!("token-issuer/test/{}", uuid::Uuid::new_v4().simple());
        Keys {
            dir: Arc::new(tempfile::tempdir().expect("tempdir")),
            spec: format!("aws-secretsmanager:{secret}"),
            moto: Some(Moto::start().await),
            secret,
            alg,
        }
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("ISSUER_KEY_SOURCE".into(), self.spec.clone()),
            ("ISSUER_SIGNING_ALG".into(), self.alg.into()),
        ];
        env.extend(
            FAST.iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        if let Some(moto) = &self.moto {
            env.extend(moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
        }
        env
    }

    /// Runs `token-issuer keys ARGS…`; returns (success, stdout, stderr).
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["keys"];
        all.extend_from_slice(args);
        run_issuer(self.dir.path(), &all, &self.env(&[]))
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(ok, "keys {args:?} failed: {err}");
        out
    }

    /// `keys list --json`.
    fn list(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.cli_ok(&["list", "--json"]))
            .expect("json")
            .as_array()
            .expect("array")
            .clone()
    }

    fn kid_in(&self, state: &str) -> Vec<String> {
        self.list()
            .iter()
            .filter(|k| k["state"] == state)
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    async fn source(&self) -> KeySource {
        match &self.moto {
            Some(moto) => moto.source(&self.secret).await,
            None => KeySource::File(token_issuer::keys::source::FileSource::new(
                self.dir.path().join("keys"),
            )),
        }
    }

    async fn serve(&self, extra: &[(&str, &str)]) -> TestServer {
        let database_url = common::fresh_database(&self.dir).await;
        let mut settings: Vec<(&str, &str)> = vec![("ISSUER_SIGNING_ALG", self.alg)];
        settings.extend(FAST.iter().chain(extra));
        common::start_on_source(self.dir.clone(), database_url, &settings, self.source().await).await
    }
}

/// A verifier that behaves like a well-mannered cache: it fetches the JWKS only when its copy
/// has outlived `Cache-Control: max-age`, and never refetches because of an unknown `kid`.
struct CachingVerifier {
    issuer: String,
    client: reqwest::Client,
    cached: Option<(JwkSet, Instant)>,
    fetches: usize,
    /// The kids of the JWKS it holds, for the test to watch.
    holds: Arc<std::sync::Mutex<Vec<String>>>,
}

impl CachingVerifier {
    fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            client: reqwest::Client::new(),
            cached: None,
            fetches: 0,
            holds: Arc::default(),
        }
    }

    async fn keys(&mut self) -> &JwkSet {
        let fresh = matches!(&self.cached, Some((_, until)) if Instant::now() < *until);
        if !fresh {
            let resp = self
                .client
                .get(format!("{}/.well-known/jwks.json", self.issuer))
                .send()
                .await
                .expect("jwks");
            let max_age = resp
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split("max-age=").nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .expect("max-age");
            let set: JwkSet = resp.json().await.expect("jwks json");
            let kids = set.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
            *self.holds.lock().expect("holds") = kids;
            self.cached = Some((set, Instant::now() + Duration::from_secs(max_age)));
            self.fetches += 1;
        }
        &self.cached.as_ref().expect("cached").0
    }

    /// Verifies offline; the error says why a token failed.
    async fn verify(&mut self, token: &str) -> Result<String, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let issuer = self.issuer.clone();
        let jwk = self
            .keys()
            .await
            .find(&kid)
            .ok_or_else(|| format!("unknown kid {kid}"))?
            .clone();
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&issuer]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| format!("{kid}: {e}"))?;
        Ok(kid)
    }
}

fn kid_of(token: &str) -> String {
    common::segment(token, 0)["kid"].as_str().expect("kid").to_owned()
}

/// Keeps refreshing a session and verifying every new access token with a caching verifier,
/// until told to stop; returns the tokens seen per kid and every failure.
type Watcher = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<(HashMap<String, usize>, Vec<String>)>,
    // The kids the watcher's verifier holds.
    Arc<std::sync::Mutex<Vec<String>>>,
);

fn watch(server: &TestServer, refresh: String) -> Watcher {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let (client, url, issuer) = (
        server.client.clone(),
        server.url("/api/v1/auth/refresh"),
        server.base.clone(),
    );
    let mut verifier = CachingVerifier::new(&issuer);
    let holds = verifier.holds.clone();
    let task = tokio::spawn(async move {
        let (mut refresh, mut seen, mut failures) = (refresh, HashMap::new(), Vec::new());
        loop {
            let resp = client
                .post(&url)
                .json(&serde_json::json!({ "refresh_token": refresh }))
                .send()
                .await
                .expect("refresh");
            assert_eq!(resp.status(), 200, "the issuer kept issuing");
            let tokens: Value = resp.json().await.expect("json");
            refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
            match verifier
                .verify(tokens["access_token"].as_str().expect("access"))
                .await
            {
                Ok(kid) => *seen.entry(kid).or_insert(0) += 1,
                Err(e) => failures.push(e),
            }
            tokio::select! {
                _ = &mut stopped => return (seen, failures),
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
    (stop, task, holds)
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    check: impl Fn() -> F,
) {
    let done = common::eventually(limit, Duration::from_millis(100), || async {
        check().await.then_some(())
    })
    .await;
    assert!(done.is_some(), "timed out waiting until {what}");
}

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    server.jwks().await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// generate → wait the publication period → rotate → prune, while tokens are issued and
/// verified the whole time.
async fn rotation_without_failed_verification(keys: Keys) {
    let first = keys.cli_ok(&["generate", "--alg", keys.alg]);
    assert!(
        first.contains("absent -> active"),
        "bootstrap: the first key signs at once: {first}"
    );
    let server = keys.serve(&[]).await;
    let (access, refresh) = server.user_session("rotation@example.com").await;
    let old_kid = kid_of(&access);
    let (stop, watcher, verifier_holds) = watch(&server, refresh);

    let out = keys.cli_ok(&["generate", "--alg", keys.alg]);
    assert!(out.contains("absent -> pending"), "{out}");
    let pending = keys.kid_in("pending");
    assert_eq!(pending.len(), 1);
    let (ok, _, err) = keys.cli(&["rotate"]);
    assert!(
        !ok,
        "a key published for less than the publication period must not sign"
    );
    assert!(
        err.contains("can be promoted in") && err.contains(&pending[0]),
        "{err}"
    );

    // Published: once the instance serves the pending key and a verifier that follows the
    // cache headers holds it, the publication period is what remains — made to pass.
    wait_until(
        "a caching verifier holds the pending key",
        Duration::from_secs(10),
        || async { verifier_holds.lock().expect("holds").contains(&pending[0]) },
    )
    .await;
    common::age_keyset(&keys.source().await, Duration::from_secs(3)).await;
    let before_rotation = server.login("rotation@example.com").await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let out = keys.cli_ok(&["rotate"]);
    assert!(out.contains(&format!("{old_kid}: active -> retired")), "{out}");
    assert!(
        out.contains(&format!("{}: pending -> active", pending[0])),
        "{out}"
    );
    assert_eq!(
        keys.kid_in("pending").len(),
        1,
        "rotate adds the next pending key"
    );

    // The instance picks the rotation up on its own, and signs with the promoted key.
    wait_until("the new key signs", Duration::from_secs(10), || async {
        kid_of(
            server.login("rotation@example.com").await["access_token"]
                .as_str()
                .expect("token"),
        ) == pending[0]
    })
    .await;
    // A token signed before the rotation still verifies offline until it expires.
    assert_eq!(
        CachingVerifier::new(&server.base).verify(&before_rotation).await,
        Ok(old_kid.clone())
    );

    let out = keys.cli_ok(&["prune"]);
    assert!(
        out.contains(&format!("kept retired {old_kid}: prunable in")),
        "{out}"
    );
    // Retention: access TTL 3 s + JWKS max-age 1 s + reload interval 1 s.
    let retired = keys
        .list()
        .into_iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .expect("retired");
    let at = |field: &str| {
        time::OffsetDateTime::parse(
            retired[field].as_str().expect(field),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("rfc3339")
    };
    assert_eq!(at("prunable_at") - at("retired_at"), time::Duration::seconds(5));
    common::age_keyset(&keys.source().await, Duration::from_secs(5)).await;
    let out = keys.cli_ok(&["prune"]);
    assert!(out.contains(&format!("{old_kid}: retired -> absent")), "{out}");
    wait_until(
        "the pruned key leaves the JWKS",
        Duration::from_secs(10),
        || async { !jwks_kids(&server).await.contains(&old_kid) },
    )
    .await;

    let _ = stop.send(());
    let (seen, failures) = watcher.await.expect("watcher");
    assert!(
        failures.is_empty(),
        "verification failed during rotation: {failures:?}"
    );
    assert!(seen.get(&old_kid).copied().unwrap_or(0) > 0, "{seen:?}");
    assert!(seen.get(&pending[0]).copied().unwrap_or(0) > 0, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_on_the_file_source_never_fails_a_verification() {
    rotation_without_failed_verification(Keys::file("RS256")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_on_secrets_manager_never_fails_a_verification() {
    rotation_without_failed_verification(Keys::aws("EdDSA").await).await;
}

/// The emergency path: the key leaves the JWKS at the next reload, its tokens stop verifying,
/// and the newest pending key signs at once.
async fn revocation_takes_effect_at_the_next_reload(keys: Keys) {
    keys.cli_ok(&["generate", "--alg", keys.alg]);
    keys.cli_ok(&["generate", "--alg", keys.alg]);
    let server = keys
        .serve(&[
            ("ISSUER_KEY_RELOAD_INTERVAL", "1h"),
            ("ISSUER_KEY_PUBLICATION_PERIOD", "2h"),
        ])
        .await;
    let (access, _) = server.user_session("revoked@example.com").await;
    let compromised = kid_of(&access);
    let standby = keys.kid_in("pending").pop().expect("pending");
    // Verified once before, so the instance remembers the token: that must not outlive the key.
    assert_eq!(server.get_bearer("/oauth2/userinfo", &access).await.status(), 200);

    let (ok, out, err) = keys.cli(&["revoke", &compromised, "--actor", "ops-oncall"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{compromised}: active -> absent")), "{out}");
    assert!(out.contains(&format!("{standby}: pending -> active")), "{out}");
    // A count of revocations is a count of revocations: the takeover is a state change.
    let events = |name: &str| {
        err.lines()
            .filter(|l| l.contains(&format!("event=\"{name}\"")))
            .collect::<Vec<_>>()
    };
    let revoked = events("key_revoked");
    assert_eq!(revoked.len(), 1, "{err}");
    assert!(
        revoked[0].contains(&compromised) && revoked[0].contains("actor=\"ops-oncall\""),
        "{err}"
    );
    assert!(
        events("key_state_changed").iter().any(|l| l.contains(&standby)),
        "{err}"
    );
    server
        .app
        .reloader
        .reload()
        .await
        .expect("reload (what SIGHUP does)");

    assert!(!jwks_kids(&server).await.contains(&compromised));
    let err = CachingVerifier::new(&server.base)
        .verify(&access)
        .await
        .expect_err("revoked");
    assert!(err.contains("unknown kid"), "{err}");
    assert_eq!(server.get_bearer("/oauth2/userinfo", &access).await.status(), 401);
    let (fresh, _) = server.user_session("after@example.com").await;
    assert_eq!(kid_of(&fresh), standby);
    assert_eq!(
        CachingVerifier::new(&server.base).verify(&fresh).await,
        Ok(standby)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_on_the_file_source() {
    revocation_takes_effect_at_the_next_reload(Keys::file("EdDSA")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_on_secrets_manager() {
    revocation_takes_effect_at_the_next_reload(Keys::aws("RS256").await).await;
}

/// Asserts the instance still issues tokens signed by `kid` and reports the failing reload.
async fn still_serving(server: &TestServer, kid: &str, email: &str) {
    let tokens = server.login(email).await;
    assert_eq!(kid_of(tokens["access_token"].as_str().expect("token")), kid);
    let ready = server.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["keyset"]["reload"], "failing", "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_key_file_keeps_the_last_good_keyset() {
    let keys = Keys::file("EdDSA");
    keys.cli_ok(&["generate", "--alg", "EdDSA"]);
    let server = keys
        .serve(&[
            ("ISSUER_KEY_RELOAD_INTERVAL", "1h"),
            ("ISSUER_KEY_PUBLICATION_PERIOD", "2h"),
        ])
        .await;
    server.register("faults@example.com").await;
    let good_kid = keys.kid_in("active").pop().expect("active");
    let path = keys.dir.path().join("keys/keyset.json");
    let good = std::fs::read_to_string(&path).expect("keyset");
    let write = |text: &str, mode: u32| {
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let doc: Value = serde_json::from_str(&good).expect("json");
    let mut wrong_kid = doc.clone();
    wrong_kid["keys"][0]["kid"] = "not-its-thumbprint".into();
    let mut two_active = doc.clone();
    let other = token_issuer::keys::generate_record(
        token_issuer::keys::Alg::EdDsa,
        0,
        token_issuer::keys::KeyState::Active,
        time::OffsetDateTime::now_utc(),
    )
    .expect("generate");
    two_active["keys"]
        .as_array_mut()
        .expect("keys")
        .push(serde_json::to_value(&other).expect("record"));

    let faults = [
        ("{ not json".to_owned(), 0o600, "not valid"),
        (wrong_kid.to_string(), 0o600, "not-its-thumbprint"),
        (two_active.to_string(), 0o600, "two active EdDSA keys"),
        (good.clone(), 0o644, "by group or others"),
        (r#"{"keys": []}"#.to_owned(), 0o600, "no active EdDSA key"),
    ];
    for (text, mode, expected) in faults {
        write(&text, mode);
        let err = server.app.reloader.reload().await.expect_err(expected);
        assert!(err.to_string().contains(expected), "{expected}: {err}");
        assert!(server.app.reloader.status().last_error.is_some());
        still_serving(&server, &good_kid, "faults@example.com").await;
    }
    // Prometheus sees it too.
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("issuer_keyset_reloads_total{result=\"failed\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("issuer_keyset_reload_failing 1"), "{metrics}");
    assert!(metrics.contains("issuer_keyset_age_seconds"), "{metrics}");
    std::fs::remove_dir_all(keys.dir.path().join("keys")).expect("rm");
    server.app.reloader.reload().await.expect_err("source gone");
    still_serving(&server, &good_kid, "faults@example.com").await;

    // Fixed: the instance recovers on its own.
    std::fs::create_dir(keys.dir.path().join("keys")).expect("mkdir");
    write(&good, 0o600);
    // Old enough that an age of 0 below can only come from the good read.
    server.advance(Duration::from_secs(2));
    server.app.reloader.reload().await.expect("recovered");
    assert!(server.app.reloader.status().last_error.is_none());
    let ready = server.get_json("/readyz").await;
    assert_eq!(ready["keyset"]["reload"], "ok");
    assert_eq!(
        ready["keyset"]["age_seconds"], 0,
        "a good read makes the keyset current again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_secrets_manager_keeps_the_last_good_keyset() {
    let keys = Keys::aws("EdDSA").await;
    keys.cli_ok(&["generate", "--alg", "EdDSA"]);
    let good_kid = keys.kid_in("active").pop().expect("active");
    let server = keys.serve(&[("ISSUER_KEY_PUBLICATION_PERIOD", "2h")]).await;
    server.register("outage@example.com").await;
    let moto = keys.moto.as_ref().expect("moto");
    let source = keys.source().await;
    let saved = source.load().await.expect("load").doc;

    // The endpoint goes away: reloads fail, the periodic task keeps trying, tokens keep coming.
    let port = moto.port();
    let Keys { moto, .. } = keys;
    drop(moto);
    server.advance(Duration::from_secs(2));
    let err = server.app.reloader.reload().await.expect_err("unreachable");
    assert!(err.to_string().contains("aws-secretsmanager:"), "{err}");
    still_serving(&server, &good_kid, "outage@example.com").await;
    let ready = server.get_json("/readyz").await;
    assert!(
        ready["keyset"]["age_seconds"].as_i64().expect("age") >= 2,
        "a failed reload does not confirm the keyset: {ready}"
    );

    // It comes back (empty, as moto does), first with a broken value, then with the keys.
    let moto = Moto::start_on(port).await;
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let secret = source.name().trim_start_matches("aws-secretsmanager:").to_owned();
    client
        .create_secret()
        .name(&secret)
        .secret_string("{\"keys\": [")
        .send()
        .await
        .expect("create");
    let err = server.app.reloader.reload().await.expect_err("invalid JSON");
    assert!(err.to_string().contains("not valid"), "{err}");
    still_serving(&server, &good_kid, "outage@example.com").await;
    client
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(saved.to_json().as_str())
        .send()
        .await
        .expect("put");
    wait_until(
        "the periodic reload recovers",
        Duration::from_secs(10),
        || async { server.app.reloader.status().last_error.is_none() },
    )
    .await;
}

/// Several `keys generate` at once: each success is in the final keyset (none overwrote
/// another), and on the file source all of them succeed, one after the other.
async fn concurrent_writers(keys: &Keys) -> (usize, usize) {
    keys.cli_ok(&["generate", "--alg", "EdDSA"]);
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let (dir, env) = (keys.dir.clone(), keys.env(&[]));
            std::thread::spawn(move || run_issuer(dir.path(), &["keys", "generate", "--alg", "EdDSA"], &env))
        })
        .collect();
    let mut added = Vec::new();
    for run in runs {
        let (ok, out, err) = run.join().expect("thread");
        if ok {
            added.push(
                out.split_whitespace()
                    .nth(1)
                    .expect("kid")
                    .trim_end_matches(':')
                    .to_owned(),
            );
        } else {
            assert!(
                err.contains("changed since it was read") && err.contains("run the command again"),
                "{err}"
            );
        }
    }
    let listed: Vec<String> = keys
        .list()
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    for kid in &added {
        assert!(listed.contains(kid), "a successful write was lost: {kid}");
    }
    (added.len(), listed.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_cli_writers_on_the_file_source_lose_nothing() {
    let keys = Keys::file("EdDSA");
    assert_eq!(
        concurrent_writers(&keys).await,
        (6, 7),
        "the lock file makes writers take turns"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_cli_writers_on_secrets_manager_lose_nothing() {
    let keys = Keys::aws("EdDSA").await;
    let (succeeded, listed) = concurrent_writers(&keys).await;
    assert!(succeeded >= 1);
    assert_eq!(listed, succeeded + 1, "exactly the successful writes are stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secrets_manager_write_from_a_stale_read_is_refused() {
    let keys = Keys::aws("EdDSA").await;
    // Created empty, as infrastructure code often does: the first write gives it a value.
    let moto = keys.moto.as_ref().expect("moto");
    aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await)
        .create_secret()
        .name(&keys.secret)
        .send()
        .await
        .expect("create an empty secret");
    keys.cli_ok(&["generate", "--alg", "EdDSA"]);
    let KeySource::Aws(aws) = keys.source().await else {
        panic!("an AWS source")
    };
    let stale = keys.source().await.load().await.expect("load");
    keys.cli_ok(&["generate", "--alg", "EdDSA"]);
    let mut doc = stale.doc.clone();
    doc.keys.clear();
    let err = aws
        .write(&doc.to_json(), stale.version.as_deref())
        .await
        .expect_err("refused");
    assert!(matches!(
        err,
        token_issuer::keys::source::AwsWriteError::Conflict(_)
    ));
    assert_eq!(keys.list().len(), 2, "the other writer's key is still there");
}

fn openssl(args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keys_cli_imports_lists_and_refuses_with_clear_messages() {
    let keys = Keys::file("RS256");
    let dir = keys.dir.path();
    assert!(keys.cli_ok(&["list"]).contains("no keys in file:"));
    let (ok, _, err) = keys.cli(&["rotate"]);
    assert!(
        !ok && err.contains("no pending RS256 key") && err.contains("keys generate"),
        "{err}"
    );

    // A key made elsewhere (OpenSSL), imported: the first RS256 key signs at once.
    let rsa = dir.join("rsa.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
        "-out",
        rsa.to_str().expect("path"),
    ]);
    let (ok, out, err) = keys.cli(&["import", "--alg", "RS256", rsa.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(out.contains("absent -> active"), "{out}");
    assert!(
        err.contains("key_imported") && !err.contains("PRIVATE KEY"),
        "audit line without key material: {err}"
    );

    // Refused, each with one clear reason.
    let weak = dir.join("weak.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        weak.to_str().expect("path"),
    ]);
    let pkcs1 = dir.join("pkcs1.pem");
    openssl(&[
        "rsa",
        "-in",
        rsa.to_str().expect("path"),
        "-traditional",
        "-out",
        pkcs1.to_str().expect("path"),
    ]);
    let ed = dir.join("ed.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        ed.to_str().expect("path"),
    ]);
    for (alg, file, reason) in [
        ("RS256", &weak, "weaker than 2048 bits"),
        ("RS256", &pkcs1, "PKCS#8"),
        ("RS256", &ed, "not an RSA"),
        ("RS256", &rsa, "already in the keyset"),
        ("HS256", &rsa, "RS256 or EdDSA"),
    ] {
        let (ok, _, err) = keys.cli(&["import", "--alg", alg, file.to_str().expect("path")]);
        assert!(!ok, "{file:?} as {alg} must be refused");
        assert!(err.contains(reason), "{file:?}: {err}");
    }
    let (ok, _, err) = keys.cli(&["generate", "--alg", "RS256", "--bits", "1024"]);
    assert!(!ok && err.contains("2048, 3072 or 4096"), "{err}");

    // Ed25519 from OpenSSL is fine for EdDSA; then a table and JSON without key material.
    assert!(keys
        .cli_ok(&["import", "--alg", "EdDSA", ed.to_str().expect("path")])
        .contains("absent -> active"));
    keys.cli_ok(&["generate", "--alg", "RS256", "--bits", "3072"]);
    let table = keys.cli_ok(&["list"]);
    assert!(table.starts_with("KID"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.contains("signing") && table.contains("promotable in"),
        "{table}"
    );
    let json = keys.cli_ok(&["list", "--json"]);
    assert!(
        !json.contains("PRIVATE") && !json.contains("private_key_pem"),
        "{json}"
    );
    let listed = keys.list();
    assert!(listed
        .iter()
        .any(|k| k["state"] == "pending" && k["promotable_at"].is_string()));
    let file = std::fs::read_to_string(dir.join("keys/keyset.json")).expect("keyset");
    assert!(file.contains("BEGIN PRIVATE KEY"));
    assert_eq!(
        std::fs::metadata(dir.join("keys/keyset.json"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

/// The served binary reads Secrets Manager through the standard AWS settings, and SIGHUP
/// makes it reload at once (the interval here is an hour).
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_reads_secrets_manager_from_aws_settings_and_reloads_on_sighup() {
    let keys = Keys::aws("EdDSA").await;
    keys.cli_ok(&["generate", "--alg", "EdDSA"]);
    let slow = [
        ("ISSUER_KEY_RELOAD_INTERVAL", "1h"),
        ("ISSUER_KEY_PUBLICATION_PERIOD", "2h"),
    ];
    let (ok, out, err) = run_issuer(keys.dir.path(), &["check-config"], &keys.env(&slow));
    assert!(ok && out.contains("keys: 1 published"), "{out}{err}");

    let child = common::ServeProcess::start(
        keys.dir.path(),
        &keys.env(&[("RUST_LOG", "debug"), slow[0], slow[1]]),
    )
    .await;
    let client = reqwest::Client::new();
    let jwks_len = || async {
        match client.get(child.url("/.well-known/jwks.json")).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .map(|v| v["keys"].as_array().map_or(0, Vec::len))
                .unwrap_or(0),
            Err(_) => 0,
        }
    };
    assert_eq!(jwks_len().await, 1);

    keys.cli_ok(&["generate", "--alg", "EdDSA"]);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.pid().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    wait_until("SIGHUP reloads the keyset", Duration::from_secs(10), || async {
        jwks_len().await == 2
    })
    .await;
    let logs = child.logs();
    assert!(logs.contains("keyset reloaded"), "{logs}");
    assert!(
        !logs.contains("PRIVATE KEY") && !logs.contains("private_key_pem"),
        "key material in logs"
    );
}

/// A typo in a secret id must not fork the keyset: `serve` refuses, naming the source and the
/// command that creates a keyset, and creates nothing in Secrets Manager. Only the development
/// default (an empty file source) makes up a key.
#[tokio::test(flavor = "multi_thread")]
async fn serve_on_an_empty_secrets_manager_source_refuses_and_creates_nothing() {
    let keys = Keys::aws("RS256").await;
    let mut env = keys.env(&[("ISSUER_BIND", "127.0.0.1:0")]);
    env.push(("ISSUER_LOG_FORMAT".into(), "json".into()));
    let (ok, _, err) = common::run_issuer(keys.dir.path(), &["serve"], &env);
    assert!(!ok, "serve must refuse: {err}");
    assert!(
        err.contains(&format!("no keyset in aws-secretsmanager:{}", keys.secret))
            && err.contains("keys generate --alg RS256"),
        "{err}"
    );
    let moto = keys.moto.as_ref().expect("moto");
    let described = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await)
        .describe_secret()
        .secret_id(&keys.secret)
        .send()
        .await;
    assert!(described.is_err(), "no secret was created: {described:?}");

    // What the message says to run works, and then serve starts on it.
    keys.cli_ok(&["generate", "--alg", "RS256"]);
    let server = keys.serve(&[]).await;
    let (access, _) = server.user_session("after-generate@example.com").await;
    assert_eq!(kid_of(&access), keys.kid_in("active")[0]);
}
