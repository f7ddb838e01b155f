//! The test kit (feature `test-support`): a fresh issuer per test, over real HTTP on a
//! loopback port, on SQLite or — when `TEST_DATABASE_URL` names a PostgreSQL server — on a
//! fresh PostgreSQL database; a local Secrets Manager (moto); and the helpers the integration
//! tests of this crate and of `token-verifier` share.

pub mod moto;

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::clock::Clock;
use crate::config::Settings;
use crate::http::Server;
use crate::keys::source::KeySource;
use crate::oauth::clients::NewClient;
use serde_json::{json, Value};
use sqlx::{Connection as _, Executor as _};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "violet tractor melts quietly";

/// A response's Retry-After in whole seconds.
pub fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: Arc<TempDir>,
    pub database_url: String,
    pub app: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A database for one test: a SQLite file in `dir`, or a new PostgreSQL database.
pub async fn fresh_database(dir: &TempDir) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if admin.starts_with("postgres") => {
            let name = format!("ti_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to TEST_DATABASE_URL");
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            let (server, _) = admin.rsplit_once('/').expect("database URL ends in /DB");
            format!("{server}/{name}")
        }
        _ => format!("sqlite://{}/issuer.db", dir.path().display()),
    }
}

pub async fn start() -> TestServer {
    start_with(&[]).await
}

pub async fn start_with(extra: &[(&str, &str)]) -> TestServer {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let database_url = fresh_database(&dir).await;
    start_on(dir, database_url, extra).await
}

/// Starts a server on an existing directory and database (a restart, or a second instance).
pub async fn start_on(dir: Arc<TempDir>, database_url: String, extra: &[(&str, &str)]) -> TestServer {
    launch(dir, database_url, extra, None, Clock::adjustable()).await
}

/// As [`start_on`], with the keys read from `source` instead of `DIR/keys`.
pub async fn start_on_source(
    dir: Arc<TempDir>,
    database_url: String,
    extra: &[(&str, &str)],
    source: KeySource,
) -> TestServer {
    launch(dir, database_url, extra, Some(source), Clock::adjustable()).await
}

async fn launch(
    dir: Arc<TempDir>,
    database_url: String,
    extra: &[(&str, &str)],
    source: Option<KeySource>,
    clock: Clock,
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tls = extra.iter().any(|(k, _)| *k == "ISSUER_TLS_CERT");
    let base = format!("{}://{addr}", if tls { "https" } else { "http" });
    let keys = format!("file:{}/keys", dir.path().display());
    let mut values: Vec<(String, String)> = vec![
        ("ISSUER_URL".into(), base.clone()),
        ("ISSUER_DATABASE_URL".into(), database_url.clone()),
        ("ISSUER_KEY_SOURCE".into(), keys),
        // Tests register and refresh a lot from one loopback address; rate_limits.rs tests
        // the budgets with its own settings.
        ("ISSUER_REGISTER_RATE_LIMIT".into(), "10000/1m".into()),
        ("ISSUER_REFRESH_RATE_LIMIT".into(), "10000/1m".into()),
    ];
    values.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::from_values(values).expect("valid test settings");
    let source = match source {
        Some(source) => source,
        None => KeySource::from_spec(&settings.key_source).await,
    };
    let app = AppState::build_with(settings, source, clock)
        .await
        .expect("app starts");
    let (tx, rx) = oneshot::channel::<()>();
    let server = Server::new(listener, None, app.clone());
    tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    TestServer {
        base,
        client: reqwest::Client::new(),
        dir,
        database_url,
        app,
        shutdown: Some(tx),
    }
}

impl TestServer {
    /// Moves the server's clock forward: every time rule sees `by` pass at once.
    pub fn advance(&self, by: Duration) {
        self.app.clock.advance(by);
    }

    /// Waits out a 429's Retry-After (whole seconds, which must lie in `expected`) on the
    /// server's clock.
    pub fn wait_out(&self, retry_after: Option<u64>, expected: std::ops::RangeInclusive<u64>) {
        match retry_after {
            Some(secs) if expected.contains(&secs) => self.advance(Duration::from_secs(secs)),
            _ => panic!("Retry-After {retry_after:?}, not {expected:?} s"),
        }
    }

    /// Another instance on this one's directory, database and clock (`extra` settings).
    pub async fn sibling(&self, extra: &[(&str, &str)]) -> TestServer {
        launch(
            self.dir.clone(),
            self.database_url.clone(),
            extra,
            None,
            self.app.clock.clone(),
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// A `method` request to `path` with a bearer token and, when given, a JSON body.
    pub async fn with_bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, email: &str) -> Value {
        let resp = self
            .post_json(
                "/api/v1/auth/register",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(resp.status(), 201, "register {email}");
        resp.json().await.expect("json")
    }

    /// Registers (if needed) and logs in; returns the token response.
    pub async fn login(&self, email: &str) -> Value {
        let resp = self
            .post_json(
                "/api/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(resp.status(), 200, "login {email}");
        resp.json().await.expect("json")
    }

    /// Logs in as `email` from `ip`, named by X-Forwarded-For (the test's loopback peer must
    /// be a trusted proxy); the status and Retry-After.
    pub async fn login_from(&self, ip: &str, email: &str, password: &str) -> (u16, Option<u64>) {
        let resp = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        (resp.status().as_u16(), retry_after(&resp))
    }

    /// Registers `email` and logs in: (access token, refresh token).
    pub async fn user_session(&self, email: &str) -> (String, String) {
        self.register(email).await;
        self.session(email).await
    }

    /// Logs a registered user in once more: another session's (access, refresh) tokens.
    pub async fn session(&self, email: &str) -> (String, String) {
        let tokens = self.login(email).await;
        (
            tokens["access_token"].as_str().expect("access_token").to_owned(),
            tokens["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        )
    }

    /// GETs `path` and returns its JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    pub async fn jwks(&self) -> Value {
        self.client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("json")
    }

    /// Registers a client as `clients create` does; its secret, unless it has a key.
    pub async fn register_client(&self, client: NewClient) -> Option<String> {
        let (_, secret) = self
            .app
            .oauth
            .clients
            .create(client)
            .await
            .expect("register client");
        secret.map(|s| s.expose().to_owned())
    }

    /// The private key document the server signs with (tests forge tokens with it).
    pub fn keyset(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("keys/keyset.json")).expect("keyset.json");
        serde_json::from_str(&text).expect("keyset json")
    }
}

/// Polls `check` every `every` until it gives `Some`, and returns that; `None` once `limit`
/// has passed (the caller says what did not happen). For events that take their own time —
/// a process starting or exiting, a file watcher, a background task — never for a duration
/// the test could set instead.
pub async fn eventually<T, F, Fut>(limit: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(done) = check().await {
            return Some(done);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Makes every key of `source` look `by` older — created, activated and retired that much
/// earlier — as if the time had passed: for the `keys` commands, which are processes of their
/// own and read the system clock.
pub async fn age_keyset(source: &KeySource, by: Duration) {
    source
        .update(|doc| {
            for key in &mut doc.keys {
                key.created_at -= by;
                key.activated_at = key.activated_at.map(|t| t - by);
                key.retired_at = key.retired_at.map(|t| t - by);
            }
            Ok(())
        })
        .await
        .expect("age the keyset");
}

/// Decodes a JWT segment (header or claims) without verifying anything.
pub fn segment(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).expect("segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}
