//! A JWKS server for tests, on loopback, that counts what it serves and can be told to
//! misbehave (as jwt-authorizer's harness does); plus keys to sign test tokens with.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use time::OffsetDateTime;
use token_issuer::keys::{generate_record, Alg, KeyRecord, KeySet, KeyState, KeysetDocument, SigningKey};
use token_verifier::{CacheClock, JwksOptions, Verifier};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "https://api.test";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Down,
    Malformed,
    Huge,
    Slow(Duration),
}

pub struct Published {
    pub records: Vec<KeyRecord>,
    pub max_age: u64,
    pub mode: Mode,
}

pub struct JwksServer {
    pub url: String,
    pub state: Arc<ServerState>,
}

pub struct ServerState {
    pub published: Mutex<Published>,
    /// Every request, answered or not.
    pub requests: AtomicUsize,
    /// Full responses (200) and revalidations (304).
    pub full: AtomicUsize,
    pub not_modified: AtomicUsize,
}

impl ServerState {
    pub fn fetches(&self) -> usize {
        self.full.load(Ordering::SeqCst) + self.not_modified.load(Ordering::SeqCst)
    }
}

pub fn new_key(alg: Alg) -> KeyRecord {
    generate_record(alg, 2048, KeyState::Active, OffsetDateTime::now_utc()).expect("key")
}

fn jwks_of(records: &[KeyRecord]) -> (String, String) {
    // Publish every key as "active" in its own document so several algorithms can coexist.
    let mut published = Vec::new();
    for r in records {
        let set = KeySet::from_document(&KeysetDocument {
            keys: vec![r.clone()],
        })
        .expect("keyset");
        let body: Value = serde_json::from_slice(&set.jwks().body).expect("json");
        published.extend(body["keys"].as_array().expect("keys").iter().cloned());
    }
    let body = json!({ "keys": published }).to_string();
    let etag = format!("\"{:x}\"", body.len() * 31 + records.len());
    (body, etag)
}

async fn serve_jwks(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (mode, max_age, body, etag) = {
        let p = state.published.lock().expect("lock");
        let (body, etag) = jwks_of(&p.records);
        (p.mode, p.max_age, body, etag)
    };
    let cache = [
        (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        (header::ETAG, etag.clone()),
    ];
    match mode {
        Mode::Down => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Malformed => return (cache, "this is not JSON").into_response(),
        Mode::Huge => return (cache, "x".repeat(2 * 1024 * 1024)).into_response(),
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Normal => {}
    }
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        state.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    state.full.fetch_add(1, Ordering::SeqCst);
    (cache, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub async fn jwks_server(records: Vec<KeyRecord>, max_age: u64) -> JwksServer {
    let state = Arc::new(ServerState {
        published: Mutex::new(Published {
            records,
            max_age,
            mode: Mode::Normal,
        }),
        requests: AtomicUsize::new(0),
        full: AtomicUsize::new(0),
        not_modified: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/jwks", get(serve_jwks))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer { url, state }
}

impl JwksServer {
    pub fn set_mode(&self, mode: Mode) {
        self.state.published.lock().expect("lock").mode = mode;
    }

    pub fn publish(&self, record: KeyRecord) {
        self.state.published.lock().expect("lock").records.push(record);
    }
}

/// Quick options for tests: second-scale TTLs and cooldowns.
pub fn options() -> JwksOptions {
    JwksOptions {
        min_ttl: Duration::from_secs(1),
        max_ttl: Duration::from_secs(3600),
        unknown_kid_cooldown: Duration::from_secs(30),
        stale_if_error: Duration::from_secs(3600),
        retry_after_error: Duration::from_millis(0),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        max_response_bytes: 1024 * 1024,
    }
}

pub async fn verifier(server: &JwksServer, options: JwksOptions) -> Verifier {
    verifier_on_clock(server, options).await.0
}

/// A verifier whose key cache runs on a clock the test moves forward.
pub async fn verifier_on_clock(server: &JwksServer, options: JwksOptions) -> (Verifier, CacheClock) {
    let clock = CacheClock::adjustable();
    let verifier = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .jwks_url(&server.url)
        .jwks_options(options)
        .cache_clock(clock.clone())
        .build()
        .await
        .expect("verifier");
    (verifier, clock)
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

pub fn claims() -> Value {
    let now = now();
    json!({"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "iat": now, "exp": now + 300,
           "jti": "j-1", "client_id": "first-party", "scope": "read write"})
}

/// A token signed by `record` (header `alg`, `kid`, `typ: at+jwt`).
pub fn sign(record: &KeyRecord, claims: &Value) -> String {
    SigningKey::from_record(record)
        .expect("key")
        .sign_jws(
            token_issuer::keys::JwsKind::AccessToken,
            claims.to_string().as_bytes(),
        )
        .expect("sign")
}
