//! Request ids and scopes, time limits, access logs, metrics, security headers, CORS and
//! load shedding.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use futures_util::FutureExt as _;
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt as _};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::client_ip::client_ip;
use super::error::ApiError;
use super::extract::ClientIp;
use super::request_scope::{self, RequestScope, X_REQUEST_ID};
use crate::ratelimit::{counted, ip_network, ip_subject, rejected, InFlight};
use crate::values::Cidr;

/// A response slower than this is logged whatever its status.
const SLOW: Duration = Duration::from_secs(1);

/// What [`Edge`] needs of the settings.
pub struct Policy {
    pub trusted_proxies: Vec<Cidr>,
    /// HSTS only when the issuer is served over https.
    pub hsts: bool,
}

/// Set on the answer of the router's fallback, so that unknown paths are counted as one
/// series (see [`route_label`]).
#[derive(Clone, Copy)]
pub struct Unrouted;

/// Around every request, before routing: keeps a well-formed incoming `X-Request-Id` (1–128
/// of `A-Z a-z 0-9 . _ -`), else makes one; works out the client IP; runs the request as its
/// [`RequestScope`], so every log line of it (audit events too) names both; logs a refused,
/// failed or slow request; counts it in the metrics; sets the contract's security headers
/// and the request id on the response. Then `inner`: CORS, the published documents
/// (`wellknown::Published`), [`guard`] and the router.
///
/// One plain future per request, wrapped around the router rather than layered on each
/// route: axum boxes and clones a route's layers on every request, and that cost a JWKS
/// answer a third of its CPU.
#[derive(Clone)]
pub struct Edge<S> {
    pub policy: Arc<Policy>,
    pub inner: S,
}

impl<S> Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    /// The answer to `request`, which came from `peer`. (Not an `async fn`: every layer of
    /// future around the router's is one more copy of it per request.)
    pub fn answer(&self, peer: IpAddr, request: Request) -> impl Future<Output = Response> + Send + 'static {
        let id = request
            .headers()
            .get(&X_REQUEST_ID)
            .filter(|v| {
                (1..=128).contains(&v.len())
                    && v.as_bytes()
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
            })
            .cloned()
            .unwrap_or_else(new_request_id);
        let client_ip = client_ip(peer, request.headers(), &self.policy.trusted_proxies);
        let scope = RequestScope {
            id: id.clone(),
            client_ip: Some(client_ip),
            method: request.method().clone(),
            uri: request.uri().clone(),
        };
        request_scope::scope(scope, respond(self.inner.clone(), request, id, self.policy.hsts))
    }
}

/// A new request id: a random UUID, as text (written in place, not through `fmt`).
fn new_request_id() -> HeaderValue {
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    // A UUID's text is always a valid header value.
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

/// `inner`'s response to `request`, logged, counted, and with the request id and the
/// security headers set; run as the request's scope.
async fn respond<S>(inner: S, request: Request, id: HeaderValue, hsts: bool) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let mut response = match inner.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let elapsed = started.elapsed();
    // Refusals, failures and slow answers are logged; the rest only at debug level: a line
    // costs more CPU than a JWKS answer, the metrics below count every request, and what
    // matters for security is logged as audit events anyway.
    let status = response.status().as_u16();
    let latency_ms = elapsed.as_millis() as u64;
    if status >= 400 || elapsed >= SLOW {
        tracing::info!(status, latency_ms, "response");
    } else {
        tracing::debug!(status, latency_ms, "response");
    }
    // The request's method and path, as its scope holds them.
    request_scope::with_current(|scope| {
        let route = route_label(&scope.method, scope.uri.path(), &response);
        crate::metrics::http_request(route, method_label(&scope.method), response.status(), elapsed);
    });
    let headers = response.headers_mut();
    headers.insert(X_REQUEST_ID.clone(), id);
    security_headers(headers, hsts);
    response
}

/// The route a request is counted under, never its raw path when unknown: the path itself
/// where the router routed it or a published document was answered before routing (no route
/// has parameters, so the path is the route's own), and one series, `unmatched`, for the
/// rest: unknown paths, and OPTIONS, which no route takes (with CORS on, its preflights are
/// answered before routing).
fn route_label<'a>(method: &Method, path: &'a str, response: &Response) -> &'a str {
    if method == Method::OPTIONS || response.extensions().get::<Unrouted>().is_some() {
        "unmatched"
    } else {
        path
    }
}

/// Ends a request that takes longer than `limit` with a JSON 503 (dropping it cancels its
/// work), and one that panics with a JSON 500 carrying only the request id. It runs inside
/// CORS, so a browser app can read either answer, and wraps the router's future without a
/// layer of boxing (`ServiceBuilder::map_future`).
pub async fn guard(
    handling: impl Future<Output = Result<Response, Infallible>>,
    limit: Duration,
) -> Result<Response, Infallible> {
    let handling = std::panic::AssertUnwindSafe(handling).catch_unwind();
    Ok(match tokio::time::timeout(limit, handling).await {
        Ok(Ok(answered)) => answered?,
        Ok(Err(_panic)) => ApiError::internal(&"handler panicked").into_response(),
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took too long",
            )
            .into_response()
        }
    })
}

/// A bounded label set: any other method a client invents is one series, `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// The contract's security headers; HSTS only when the issuer is served over https.
fn security_headers(headers: &mut HeaderMap, hsts: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // A hosted page sets a policy of its own, as strict but allowing its stylesheet.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
}

/// The requests the server takes at once: so many in all, and of those so many from one
/// client address.
pub struct Capacity {
    pub permits: Semaphore,
    pub per_client: Arc<InFlight>,
}

/// At most as many requests at once as the capacity holds, and a client's share of it; the
/// rest are answered 503 at once (load shedding, as nginx's `limit_conn` does), so overload
/// shows as fast refusals instead of an unbounded queue, and one client holding requests open
/// cannot take every place. The router applies it to the routes that do real work only.
pub async fn shed_load(State(capacity): State<Arc<Capacity>>, request: Request, next: Next) -> Response {
    let shed = || {
        metrics::counter!("issuer_requests_shed_total").increment(1);
        ApiError::overloaded().into_response()
    };
    // The server always knows the peer; a request without an address has no share to count.
    let client = ClientIp::current().map(|ip| ip_network(ip.0));
    let _slot = match client.map(|client| (client, capacity.per_client.enter(client))) {
        None => None,
        Some((_, Ok(slot))) => Some(slot),
        Some((client, Err(refused))) => {
            if refused.first {
                rejected("in_flight", &ip_subject(client));
            } else {
                counted("in_flight");
            }
            return shed();
        }
    };
    let Ok(_permit) = capacity.permits.try_acquire() else {
        return shed();
    };
    next.run(request).await
}

/// CORS for the configured origins only; bearer tokens travel in headers, so no credentials.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, X_REQUEST_ID.clone()])
            .expose_headers([X_REQUEST_ID.clone()])
            .max_age(Duration::from_secs(600)),
    )
}
