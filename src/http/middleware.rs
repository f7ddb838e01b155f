//! Request ids, access logs, security headers and CORS: applied to every response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument as _;

use super::client_ip::client_ip;
use super::error::ApiError;
use super::extract::ClientIp;
use super::request_id::{self, X_REQUEST_ID};
use crate::ratelimit::{counted, ip_subject, rejected, InFlight};
use crate::values::Cidr;

/// A response slower than this is logged whatever its status.
const SLOW: Duration = Duration::from_secs(1);

/// Keeps a well-formed incoming `X-Request-Id` (1–128 of `A-Z a-z 0-9 . _ -`), else makes one;
/// works out the client IP; logs a refused, failed or slow request inside a span that carries
/// both, so every log line of the request (audit events too) names them.
pub async fn request_id(
    State(trusted_proxies): State<Arc<[Cidr]>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client_ip = peer.map(|peer| client_ip(peer, request.headers(), &trusted_proxies));
    if let Some(ip) = client_ip {
        request.extensions_mut().insert(ClientIp(ip));
    }
    // The path only: query strings are not logged.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        client_ip = client_ip.map(tracing::field::display),
        method = %request.method(),
        path = %request.uri().path()
    );
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let mut response = request_id::scope(id.clone(), next.run(request).instrument(span.clone())).await;
    let elapsed = started.elapsed();
    // Refusals, failures and slow answers are logged; the rest only at debug level: a line
    // costs more CPU than a JWKS answer, the metrics below count every request, and what
    // matters for security is logged as audit events anyway.
    let status = response.status().as_u16();
    let latency_ms = elapsed.as_millis() as u64;
    span.in_scope(|| {
        if status >= 400 || elapsed >= SLOW {
            tracing::info!(status, latency_ms, "response");
        } else {
            tracing::debug!(status, latency_ms, "response");
        }
    });
    // Labelled by route template, never by raw path: unknown paths are one series.
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    crate::metrics::http_request(route, method_label(&method), response.status(), elapsed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
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
pub async fn security_headers(State(hsts): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
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
    response
}

/// Ends a request that takes longer than `limit` with a JSON 503; dropping it cancels its work.
pub async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took too long",
            )
            .into_response()
        }
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
    let client = request.extensions().get::<ClientIp>().map(|ip| ip_subject(ip.0));
    let _slot = match client
        .as_deref()
        .map(|client| (client, capacity.per_client.enter(client)))
    {
        None => None,
        Some((_, Ok(slot))) => Some(slot),
        Some((client, Err(refused))) => {
            if refused.first {
                rejected("in_flight", client);
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

/// A panic in a handler becomes a JSON 500 carrying only the request id.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"handler panicked").into_response()
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
