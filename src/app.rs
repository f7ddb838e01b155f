//! Wiring: from settings to the running parts every request uses.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::HeaderValue;

use crate::accounts::throttle::LoginThrottle;
use crate::accounts::{AccountError, Accounts, LoginSessions, Passwords, SessionParts, Sessions};
use crate::clock::Clock;
use crate::config::{ConfigError, RateLimitStore, Settings};
use crate::http::tls::Tls;
use crate::keys::source::KeySource;
use crate::keys::{KeyError, KeySet, Reloader};
use crate::oauth::discovery::Discovery;
use crate::oauth::{Clients, OAuth, OAuthParts};
use crate::ratelimit::{Counters, RateLimits};
use crate::store::{Changes, Store, StoreError};
use crate::tokens::{AccessTokens, IdTokens, RefreshTokens, Revocations};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("ISSUER_DATABASE_URL: {0}")]
    Store(#[from] StoreError),
    #[error("ISSUER_KEY_SOURCE: {0}")]
    Keys(#[from] KeyError),
    /// A `keys` command refused or failed; its message says why.
    #[error(transparent)]
    KeyCommand(KeyError),
    #[error(transparent)]
    Clients(#[from] crate::oauth::ClientError),
    #[error("ISSUER_RATE_LIMIT_STORE: {0}")]
    RateLimitStore(#[from] crate::ratelimit::CounterError),
    #[error("accounts: {0}")]
    Accounts(#[from] AccountError),
    #[error("ISSUER_TLS_CERT: {0}")]
    Tls(#[from] crate::http::tls::TlsError),
    #[error("{setting}: cannot listen on {addr}: {source}; {hint}")]
    Bind {
        setting: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
        /// What to change.
        hint: String,
    },
    /// `check-config` found what `serve` would trip on, one line each.
    #[error("{0}")]
    Checks(String),
    /// The server stopped serving because of an I/O error.
    #[error("serving stopped: {0}")]
    Serve(std::io::Error),
}

/// How often expired tokens, jtis and counters are deleted.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub keys: Arc<ArcSwap<KeySet>>,
    /// Keeps `keys` in step with the key source.
    pub reloader: Arc<Reloader>,
    pub accounts: Accounts,
    pub sessions: Sessions,
    pub oauth: OAuth,
    /// Request budgets of register and the token endpoint (sessions spend refresh budgets).
    pub rate_limits: Arc<RateLimits>,
    pub discovery: Discovery,
    /// The HTTPS certificate, when the issuer terminates TLS itself.
    pub tls: Option<Arc<Tls>>,
    /// `Cache-Control` of the JWKS, formatted once.
    pub jwks_cache_control: HeaderValue,
    /// The time every rule goes by (tests move it forward).
    pub clock: Clock,
    /// The hosted pages' branding and policy.
    pub pages: crate::http::pages::Pages,
    /// Set on `SIGTERM`: `/readyz` answers 503 while the instance drains.
    pub draining: std::sync::atomic::AtomicBool,
    /// What the caches of clients and revocations go by.
    pub changes: Changes,
}

impl AppState {
    /// Connects and migrates the database, loads the keys, prepares password hashing.
    pub async fn build(settings: Settings) -> Result<Arc<Self>, StartError> {
        let source = KeySource::from_spec(&settings.key_source).await;
        Self::build_with(settings, source, Clock::system()).await
    }

    /// As [`AppState::build`], with a key source and a clock made by the caller (tests give
    /// the AWS source an explicit endpoint, and keep a clock they can move). Starts the key
    /// reload and housekeeping tasks.
    pub async fn build_with(
        settings: Settings,
        source: KeySource,
        clock: Clock,
    ) -> Result<Arc<Self>, StartError> {
        crate::metrics::handle();
        let tls = match settings.tls() {
            Some(files) => {
                let tls = Tls::load(&files.cert, &files.key)?;
                // Audited at start as on every renewal: the log says which certificate serves.
                tracing::info!(target: "audit", event = "tls_certificate_loaded", cert = %files.cert.display());
                tls.spawn_watch();
                Some(tls)
            }
            None => None,
        };
        let store = Store::connect(&settings.database_url).await?;
        store.migrate().await?;
        store.spawn_housekeeping(HOUSEKEEPING_EVERY, clock.clone());
        let changes = Changes::new(clock.clone());
        changes.spawn_poller(store.clone());
        let reloader = Reloader::start(source, settings.mode, settings.signing_alg, clock.clone()).await?;
        reloader.spawn(settings.key_reload_interval);
        let keys = reloader.keys().clone();
        if keys.load().active(crate::keys::Alg::Rs256).is_none() {
            tracing::warn!(
                "no active RS256 key: OpenID Connect ID tokens are RS256 unless a client registered \
                 EdDSA, and fail until one exists; run `token-issuer keys generate --alg RS256`"
            );
        }
        let passwords = Passwords::new(settings.argon2()).await?;
        let access = AccessTokens::new(
            settings.url.clone(),
            settings.access_token_ttl,
            settings.signing_alg,
            keys.clone(),
            clock.clone(),
        );
        let refresh = RefreshTokens::new(store.clone(), settings.refresh_token_ttl, clock.clone());
        let accounts = Accounts::new(
            store.clone(),
            passwords,
            settings.password_min_length,
            clock.clone(),
        );
        let counters = match settings.rate_limit_store() {
            RateLimitStore::Memory => Counters::memory(),
            RateLimitStore::Database => Counters::database(store.clone(), clock.clone()),
            RateLimitStore::Redis(url) => Counters::redis(&url)?,
        };
        let rate_limits = Arc::new(RateLimits::new(
            counters.clone(),
            clock.clone(),
            settings.register_rate_limit,
            settings.refresh_rate_limit,
            settings.token_rate_limit,
        ));
        let sessions = Sessions::new(SessionParts {
            access,
            refresh,
            revocations: Revocations::new(store.clone(), clock.clone(), changes.clone()),
            audience: settings.audience().to_owned(),
            accounts: accounts.clone(),
            login_throttle: LoginThrottle::new(
                counters,
                settings.login_max_failures,
                settings.login_failure_window,
            ),
            rate_limits: rate_limits.clone(),
            clock: clock.clone(),
        });
        let oauth = OAuth::new(OAuthParts {
            clients: Clients::new(
                store.clone(),
                settings.access_token_ttl,
                clock.clone(),
                changes.clone(),
            ),
            sessions: sessions.clone(),
            accounts: accounts.clone(),
            login_sessions: LoginSessions::new(store.clone(), settings.login_session_ttl, clock.clone()),
            id_tokens: IdTokens::new(
                settings.url.clone(),
                settings.access_token_ttl,
                keys.clone(),
                clock.clone(),
            ),
            store: store.clone(),
            issuer: settings.url.clone(),
            default_audience: settings.audience().to_owned(),
            rate_limits: rate_limits.clone(),
            clock: clock.clone(),
        });
        Ok(Arc::new(Self {
            rate_limits,
            tls,
            accounts,
            sessions,
            oauth,
            discovery: Discovery::new(&settings.url),
            // Digits: always a valid header value.
            jwks_cache_control: HeaderValue::try_from(format!(
                "public, max-age={}",
                settings.jwks_max_age.as_secs()
            ))
            .unwrap_or(HeaderValue::from_static("no-cache")),
            keys,
            reloader,
            store,
            pages: crate::http::pages::Pages::new(&settings),
            draining: std::sync::atomic::AtomicBool::new(false),
            changes,
            settings,
            clock,
        }))
    }
}
