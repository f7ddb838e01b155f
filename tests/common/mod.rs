//! A fresh issuer per test, over real HTTP on a loopback port, on SQLite or — when
//! `TEST_DATABASE_URL` names a PostgreSQL server — on a fresh PostgreSQL database.
#![allow(dead_code)]

pub mod moto;

use std::sync::Arc;

use serde_json::{json, Value};
use sqlx::{Connection as _, Executor as _};
use tempfile::TempDir;
use token_issuer::app::AppState;
use token_issuer::config::Settings;
use token_issuer::http::Server;
use token_issuer::keys::source::KeySource;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "violet tractor melts quietly";

/// A response's Retry-After in whole seconds.
pub fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Waits out a 429's Retry-After (whole seconds), which must lie in `expected`.
pub async fn wait_out(retry_after: Option<u64>, expected: std::ops::RangeInclusive<u64>) {
    match retry_after {
        Some(secs) if expected.contains(&secs) => {
            tokio::time::sleep(std::time::Duration::from_millis(secs * 1000 + 100)).await
        }
        _ => panic!("Retry-After {retry_after:?}, not {expected:?} s"),
    }
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
    launch(dir, database_url, extra, None).await
}

/// As [`start_on`], with the keys read from `source` instead of `DIR/keys`.
pub async fn start_on_source(
    dir: Arc<TempDir>,
    database_url: String,
    extra: &[(&str, &str)],
    source: KeySource,
) -> TestServer {
    launch(dir, database_url, extra, Some(source)).await
}

async fn launch(
    dir: Arc<TempDir>,
    database_url: String,
    extra: &[(&str, &str)],
    source: Option<KeySource>,
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
    let app = match source {
        Some(source) => AppState::build_with_key_source(settings, source).await,
        None => AppState::build(settings).await,
    }
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

    /// The private key document the server signs with (tests forge tokens with it).
    pub fn keyset(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("keys/keyset.json")).expect("keyset.json");
        serde_json::from_str(&text).expect("keyset json")
    }
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

/// Runs the `token-issuer` binary in `dir` with only `PATH` and `env` set; returns
/// (success, stdout, stderr).
pub fn run_issuer<K, V>(dir: &std::path::Path, args: &[&str], env: &[(K, V)]) -> (bool, String, String)
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_token-issuer"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run token-issuer");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `token-issuer serve` binary on a free loopback port, logging JSON to `DIR/serve.log`;
/// killed when dropped.
pub struct ServeProcess {
    pub base: String,
    pub log: std::path::PathBuf,
    child: std::process::Child,
}

impl ServeProcess {
    /// Starts the binary in `dir` with only `PATH` and `env` (plus the bind address, the
    /// issuer URL and JSON logs) and waits until it answers `/healthz`.
    pub async fn start<K: AsRef<str>, V: AsRef<str>>(dir: &std::path::Path, env: &[(K, V)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("serve.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_token-issuer"))
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ISSUER_BIND", format!("127.0.0.1:{port}"))
            .env("ISSUER_URL", &base)
            .env("ISSUER_LOG_FORMAT", "json")
            .envs(env.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("serve");
        let process = Self { base, log, child };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/healthz", process.base)).send().await {
                if r.status().is_success() {
                    return process;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the binary did not start: {}", process.logs());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
