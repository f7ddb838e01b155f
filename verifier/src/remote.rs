//! The issuer's key set, fetched over HTTP and cached: freshness from `Cache-Control`
//! (clamped), revalidation with `If-None-Match`, refresh ahead of expiry, stale keys served
//! while the issuer is unreachable, and unknown `kid`s refetched at most once per cooldown.
//! Concurrent fetches are one shared future; no lock is ever held across I/O.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

use crate::jwks::{parse_jwks, KeyMap, VerifyingKey};
use crate::VerifyError;

/// How the key set is fetched and cached.
#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// Bounds on the `Cache-Control: max-age` the issuer sends.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// At most one refetch per this period because of an unknown `kid`.
    pub unknown_kid_cooldown: Duration,
    /// How long known keys keep being used while the issuer cannot be reached.
    pub stale_if_error: Duration,
    /// After a failed fetch, expired keys are served (within `stale_if_error`) without
    /// asking again for this long.
    pub retry_after_error: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(6 * 3600),
            retry_after_error: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        }
    }
}

struct Snapshot {
    keys: KeyMap,
    etag: Option<String>,
    fetched_at: Instant,
    /// Refresh in the background from here on (80 % of the TTL)...
    refresh_at: Instant,
    /// ...and before use from here on.
    fresh_until: Instant,
}

type Flight = Shared<BoxFuture<'static, Result<Arc<Snapshot>, String>>>;

struct Inner {
    url: String,
    client: reqwest::Client,
    options: JwksOptions,
    snapshot: ArcSwapOption<Snapshot>,
    flight: Mutex<Option<Flight>>,
    last_unknown_kid_fetch: Mutex<Option<Instant>>,
    failed_at: Mutex<Option<Instant>>,
}

/// A cached remote JWKS. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct RemoteJwks {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RemoteJwks {
    pub fn new(url: impl Into<String>, client: reqwest::Client, options: JwksOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.into(),
                client,
                options,
                snapshot: ArcSwapOption::empty(),
                flight: Mutex::new(None),
                last_unknown_kid_fetch: Mutex::new(None),
                failed_at: Mutex::new(None),
            }),
        }
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The key published under `kid`.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, VerifyError> {
        let snapshot = self.current().await?;
        if let Some(key) = snapshot.keys.get(kid) {
            metrics::counter!("token_verifier_key_cache_hits_total").increment(1);
            return Ok(key.clone());
        }
        metrics::counter!("token_verifier_key_cache_misses_total").increment(1);
        // Maybe the issuer has just published it: join a fetch in flight, or start one if
        // the cooldown allows. A flood of invented kids costs one fetch per cooldown.
        let flight = {
            let mut last = lock(&self.inner.last_unknown_kid_fetch);
            if let Some(key) = self.cached_key(kid) {
                return Ok(key); // fetched meanwhile by someone else
            }
            match self.in_flight() {
                Some(flight) => flight,
                None if last.is_none_or(|t| t.elapsed() >= self.inner.options.unknown_kid_cooldown) => {
                    *last = Some(Instant::now());
                    self.start_flight()
                }
                None => {
                    metrics::counter!("token_verifier_unknown_kid_cooldown_rejections_total").increment(1);
                    return Err(VerifyError::UnknownKid(kid.to_owned()));
                }
            }
        };
        let snapshot = flight.await.map_err(VerifyError::KeysUnavailable)?;
        snapshot
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| VerifyError::UnknownKid(kid.to_owned()))
    }

    fn cached_key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.inner
            .snapshot
            .load()
            .as_ref()
            .and_then(|s| s.keys.get(kid).cloned())
    }

    /// Fresh keys, fetching first when they expired; stale ones when the issuer is down.
    async fn current(&self) -> Result<Arc<Snapshot>, VerifyError> {
        let now = Instant::now();
        let cached = self.inner.snapshot.load_full();
        if let Some(s) = cached.as_ref().filter(|s| now < s.fresh_until) {
            if now >= s.refresh_at && self.in_flight().is_none() {
                let flight = self.start_flight();
                tokio::spawn(async move {
                    let _ = flight.await;
                });
            }
            return Ok(s.clone());
        }
        let stale = cached.filter(|s| now < s.fetched_at + self.inner.options.stale_if_error);
        let recently_failed =
            lock(&self.inner.failed_at).is_some_and(|t| t.elapsed() < self.inner.options.retry_after_error);
        let fetched = match (&stale, recently_failed) {
            (Some(_), true) => Err("the issuer failed moments ago".to_owned()),
            _ => self.in_flight().unwrap_or_else(|| self.start_flight()).await,
        };
        match (fetched, stale) {
            (Ok(s), _) => Ok(s),
            (Err(e), Some(s)) => {
                metrics::counter!("token_verifier_stale_serves_total").increment(1);
                tracing::warn!(url = %self.inner.url, error = %e, "serving stale JWKS");
                Ok(s)
            }
            (Err(e), None) => Err(VerifyError::KeysUnavailable(e)),
        }
    }

    fn in_flight(&self) -> Option<Flight> {
        lock(&self.inner.flight)
            .as_ref()
            .filter(|f| f.peek().is_none())
            .cloned()
    }

    fn start_flight(&self) -> Flight {
        let mut slot = lock(&self.inner.flight);
        if let Some(f) = slot.as_ref().filter(|f| f.peek().is_none()) {
            return f.clone();
        }
        let inner = self.inner.clone();
        let flight = async move { fetch(&inner).await }.boxed().shared();
        *slot = Some(flight.clone());
        flight
    }
}

#[tracing::instrument(skip_all, fields(url = %inner.url))]
async fn fetch(inner: &Inner) -> Result<Arc<Snapshot>, String> {
    metrics::counter!("token_verifier_jwks_fetches_total").increment(1);
    let result = fetch_once(inner).await;
    match &result {
        Ok(s) => {
            *lock(&inner.failed_at) = None;
            inner.snapshot.store(Some(s.clone()));
            tracing::debug!(keys = s.keys.len(), "JWKS fetched");
        }
        Err(e) => {
            *lock(&inner.failed_at) = Some(Instant::now());
            metrics::counter!("token_verifier_jwks_fetch_errors_total").increment(1);
            tracing::warn!(error = %e, "JWKS fetch failed");
        }
    }
    result
}

async fn fetch_once(inner: &Inner) -> Result<Arc<Snapshot>, String> {
    let previous = inner.snapshot.load_full();
    let mut request = inner.client.get(&inner.url);
    if let Some(etag) = previous.as_ref().and_then(|p| p.etag.as_deref()) {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let mut response = request.send().await.map_err(|e| format!("request failed: {e}"))?;
    let options = &inner.options;
    let ttl = max_age(response.headers().get(CACHE_CONTROL))
        .unwrap_or(options.min_ttl)
        .clamp(options.min_ttl, options.max_ttl);
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let keys = match (response.status(), previous) {
        (StatusCode::NOT_MODIFIED, Some(previous)) => {
            metrics::counter!("token_verifier_jwks_not_modified_total").increment(1);
            return Ok(Arc::new(Snapshot {
                keys: previous.keys.clone(),
                etag: etag.or_else(|| previous.etag.clone()),
                ..timing(ttl)
            }));
        }
        (StatusCode::OK, _) => {
            if response
                .content_length()
                .is_some_and(|n| n > options.max_response_bytes as u64)
            {
                return Err("JWKS response too large".into());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading JWKS: {e}"))? {
                if body.len() + chunk.len() > options.max_response_bytes {
                    return Err("JWKS response too large".into());
                }
                body.extend_from_slice(&chunk);
            }
            parse_jwks(&body)?
        }
        (status, _) => return Err(format!("JWKS endpoint answered HTTP {status}")),
    };
    Ok(Arc::new(Snapshot {
        keys,
        etag,
        ..timing(ttl)
    }))
}

/// A snapshot's clock fields, starting now; its keys and ETag are filled in by the caller.
fn timing(ttl: Duration) -> Snapshot {
    let now = Instant::now();
    Snapshot {
        keys: KeyMap::default(),
        etag: None,
        fetched_at: now,
        refresh_at: now + ttl.mul_f64(0.8),
        fresh_until: now + ttl,
    }
}

fn max_age(header: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let value = header?.to_str().ok()?;
    if value
        .split(',')
        .any(|d| matches!(d.trim(), "no-cache" | "no-store"))
    {
        return Some(Duration::ZERO);
    }
    value
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|s| s.trim_matches('"').parse().ok())
        .map(Duration::from_secs)
}
