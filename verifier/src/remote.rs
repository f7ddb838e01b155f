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

use crate::clock::CacheClock;
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

impl JwksOptions {
    /// Refuses settings that could not work (or would overflow clock arithmetic).
    pub fn validate(&self) -> Result<(), String> {
        const WEEK: Duration = Duration::from_secs(7 * 86_400);
        if self.min_ttl > self.max_ttl {
            return Err("min_ttl is longer than max_ttl".into());
        }
        for (name, d) in [
            ("max_ttl", self.max_ttl),
            ("unknown_kid_cooldown", self.unknown_kid_cooldown),
            ("stale_if_error", self.stale_if_error),
            ("retry_after_error", self.retry_after_error),
            ("timeout", self.timeout),
        ] {
            if d > WEEK {
                return Err(format!("{name} is longer than 7 days"));
            }
        }
        if self.timeout.is_zero() || self.max_response_bytes == 0 {
            return Err("timeout and max_response_bytes must be positive".into());
        }
        Ok(())
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
    clock: CacheClock,
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
        Self::with_clock(url, client, options, CacheClock::system())
    }

    /// As [`RemoteJwks::new`], with the cache's ages read from `clock`.
    pub fn with_clock(
        url: impl Into<String>,
        client: reqwest::Client,
        options: JwksOptions,
        clock: CacheClock,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.into(),
                client,
                options,
                snapshot: ArcSwapOption::empty(),
                flight: Mutex::new(None),
                last_unknown_kid_fetch: Mutex::new(None),
                failed_at: Mutex::new(None),
                clock,
            }),
        }
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Fetches the key set now (e.g. at start, to fail fast); later calls use the cache.
    pub async fn prefetch(&self) -> Result<(), VerifyError> {
        self.current().await.map(|_| ())
    }

    /// The key published under `kid`.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, VerifyError> {
        let arrived = self.inner.clock.now();
        let snapshot = self.current().await?;
        if let Some(key) = snapshot.keys.get(kid) {
            metrics::counter!("token_verifier_key_cache_hits_total").increment(1);
            return Ok(key.clone());
        }
        metrics::counter!("token_verifier_key_cache_misses_total").increment(1);
        let unknown = || VerifyError::UnknownKid(kid.chars().take(64).collect());
        if snapshot.fetched_at >= arrived {
            return Err(unknown()); // fetched for this very request: as fresh as it gets
        }
        // Maybe the issuer has just published it: join a fetch in flight, or start one if
        // the cooldown allows. A flood of invented kids costs one fetch per cooldown.
        let flight = {
            let mut last = lock(&self.inner.last_unknown_kid_fetch);
            match self.in_flight() {
                Some(flight) => flight,
                None if last
                    .is_none_or(|t| self.inner.clock.since(t) >= self.inner.options.unknown_kid_cooldown) =>
                {
                    *last = Some(self.inner.clock.now());
                    self.start_flight()
                }
                None => {
                    // A fetch may have finished since this request loaded its snapshot.
                    if let Some(key) = self.cached_key(kid) {
                        return Ok(key);
                    }
                    metrics::counter!("token_verifier_unknown_kid_cooldown_rejections_total").increment(1);
                    return Err(unknown());
                }
            }
        };
        let snapshot = flight.await.map_err(VerifyError::KeysUnavailable)?;
        snapshot.keys.get(kid).cloned().ok_or_else(unknown)
    }

    fn cached_key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.inner
            .snapshot
            .load()
            .as_ref()
            .and_then(|s| s.keys.get(kid).cloned())
    }

    fn recently_failed(&self) -> bool {
        lock(&self.inner.failed_at)
            .is_some_and(|t| self.inner.clock.since(t) < self.inner.options.retry_after_error)
    }

    /// Fresh keys, fetching first when they expired; stale ones when the issuer is down.
    /// After a failed fetch nobody asks again for `retry_after_error`, so an issuer that is
    /// down is not hammered by every request.
    async fn current(&self) -> Result<Arc<Snapshot>, VerifyError> {
        let now = self.inner.clock.now();
        let cached = self.inner.snapshot.load_full();
        if let Some(s) = cached.as_ref().filter(|s| now < s.fresh_until) {
            if now >= s.refresh_at && self.in_flight().is_none() && !self.recently_failed() {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let flight = self.start_flight();
                    runtime.spawn(async move {
                        let _ = flight.await;
                    });
                }
            }
            return Ok(s.clone());
        }
        let stale = cached.filter(|s| now < s.fetched_at + self.inner.options.stale_if_error);
        let fetched = if self.recently_failed() {
            Err("the issuer's JWKS could not be fetched moments ago".to_owned())
        } else {
            self.in_flight().unwrap_or_else(|| self.start_flight()).await
        };
        match (fetched, stale) {
            (Ok(s), _) => Ok(s),
            (Err(_), Some(s)) => {
                // Logged once per failed fetch (in `fetch`), counted per use.
                metrics::counter!("token_verifier_stale_serves_total").increment(1);
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
    // Bounded even with a caller-supplied HTTP client that has no timeouts of its own.
    let result = match tokio::time::timeout(inner.options.timeout, fetch_once(inner)).await {
        Ok(result) => result,
        Err(_) => Err("JWKS fetch timed out".to_owned()),
    };
    match &result {
        Ok(s) => {
            *lock(&inner.failed_at) = None;
            inner.snapshot.store(Some(s.clone()));
            tracing::debug!(keys = s.keys.len(), "JWKS fetched");
        }
        Err(e) => {
            *lock(&inner.failed_at) = Some(inner.clock.now());
            metrics::counter!("token_verifier_jwks_fetch_errors_total").increment(1);
            tracing::warn!(error = %e, "JWKS fetch failed; known keys are served until it succeeds");
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
    let response = request.send().await.map_err(|e| format!("request failed: {e}"))?;
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
                ..timing(ttl, &inner.clock)
            }));
        }
        (StatusCode::OK, _) => {
            let keys = parse_jwks(&read_capped(response, options.max_response_bytes).await?)?;
            if keys.is_empty() {
                // Replacing good keys with none would refuse every token: keep the old ones.
                return Err("JWKS holds no usable key".into());
            }
            keys
        }
        (status, _) => return Err(format!("JWKS endpoint answered HTTP {status}")),
    };
    Ok(Arc::new(Snapshot {
        keys,
        etag,
        ..timing(ttl, &inner.clock)
    }))
}

/// A response body, refused once it grows past `cap` bytes.
pub(crate) async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err("response too large".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading response: {e}"))?
    {
        if body.len() + chunk.len() > cap {
            return Err("response too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A snapshot's clock fields, starting now; its keys and ETag are filled in by the caller.
fn timing(ttl: Duration, clock: &CacheClock) -> Snapshot {
    let now = clock.now();
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
