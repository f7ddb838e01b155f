//! Public documents: JWKS and discovery, served from bytes kept for them (a GET before
//! routing); health checks.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::future::{ready, Either, Ready};
use serde::Serialize;
use tower::Service;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::IfNoneMatch;
use super::schema::JwkSet;
use crate::app::AppState;
use crate::oauth::discovery::ServerMetadata;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `not_ready`, or `draining` (stopping: `ISSUER_SHUTDOWN_DELAY`).
    #[schema(value_type = String, example = "ready")]
    status: &'static str,
    /// `ok` or `unreachable`.
    #[schema(value_type = String, example = "ok")]
    database: &'static str,
    /// `ok`, or `missing` when the configured algorithm has no active key.
    #[schema(value_type = String, example = "ok")]
    signing_key: &'static str,
    keyset: KeysetHealth,
}

/// The last good keyset keeps serving while reloads fail; this says how old it is.
#[derive(Serialize, ToSchema)]
pub struct KeysetHealth {
    /// Seconds since the keyset was last read from its source.
    age_seconds: i64,
    /// `ok`, or `failing` while re-reading the source fails.
    #[schema(value_type = String, example = "ok")]
    reload: &'static str,
}

/// The public signing keys (RFC 7517): pending, active and retired, by `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    params(("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer")),
    responses(
        (status = 200, description = "The key set", body = JwkSet, headers(
            ("ETag" = String, description = "Strong; changes with the key set"),
            ("Cache-Control" = String, description = "`public, max-age=N` (`ISSUER_JWKS_MAX_AGE`)"),
        )),
        (status = 304, description = "The key set is unchanged since that `ETag`"),
    ))]
pub async fn jwks(State(app): State<Arc<AppState>>, IfNoneMatch(tags): IfNoneMatch) -> Response {
    jwks_answer(&app, tags.as_ref())
}

/// The key set, or 304 when `tags` (`If-None-Match`) names its `ETag` or `*`.
fn jwks_answer(app: &AppState, tags: Option<&HeaderValue>) -> Response {
    let keys = app.keys.load();
    let jwks = keys.jwks();
    let not_modified = tags.and_then(|v| v.to_str().ok()).is_some_and(|tags| {
        tags.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t.as_bytes() == jwks.etag.as_bytes())
    });
    let (cache_control, etag) = (app.jwks_cache_control.clone(), jwks.etag.clone());
    if not_modified {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::CACHE_CONTROL, cache_control), (header::ETAG, etag)],
        )
            .into_response();
    }
    let mut response = document(jwks.body.clone(), cache_control);
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// A JSON document, built directly: with room for the headers every response gets
/// (`middleware::Edge`), so that the map is not grown again per answer.
fn document(body: Bytes, cache_control: HeaderValue) -> Response {
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, cache_control);
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    response
}

/// Authorization-server metadata (RFC 8414), also served as OpenID discovery.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "keys",
    responses((status = 200, description = "The metadata", body = ServerMetadata)))]
pub async fn openid_configuration(app: State<Arc<AppState>>) -> Response {
    discovery(app).await
}

/// Authorization-server metadata (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "keys",
    responses((status = 200, description = "The metadata", body = ServerMetadata)))]
pub async fn discovery(State(app): State<Arc<AppState>>) -> Response {
    discovery_answer(app.discovery.body(&app.oauth.clients).await)
}

fn discovery_answer(body: Bytes) -> Response {
    document(body, HeaderValue::from_static("public, max-age=3600"))
}

/// Answers a GET of a published document (the key set; the metadata while its scopes are
/// fresh) from the bytes kept for it, before `inner`: the time limit, the body limit and the
/// router. Such an answer cannot take long, reads no body and is found by its path alone;
/// going through those cost a JWKS answer a fifth of its instructions (BENCHMARKS.md, round
/// 17). The rest, HEAD and the metadata's rebuild once a minute among it, goes to `inner`,
/// whose routes answer with the same functions. Outside the time limit's `catch_unwind`
/// too, so nothing in [`published`] may panic.
#[derive(Clone)]
pub struct Published<S> {
    pub app: Arc<AppState>,
    pub inner: S,
}

impl<S> Service<Request> for Published<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match published(&self.app, &request) {
            Some(answer) => Either::Left(ready(Ok(answer))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

fn published(app: &AppState, request: &Request) -> Option<Response> {
    if request.method() != Method::GET {
        return None;
    }
    match request.uri().path() {
        "/.well-known/jwks.json" => Some(jwks_answer(app, request.headers().get(header::IF_NONE_MATCH))),
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
            app.discovery.fresh().map(discovery_answer)
        }
        _ => None,
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when the database answers and the configured algorithm has a signing key.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; the body says why", body = Readiness),
    ))]
pub async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let database = match app.store.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database not reachable");
            "unreachable"
        }
    };
    let signing_key = if app.keys.load().active(app.settings.signing_alg).is_some() {
        "ok"
    } else {
        "missing"
    };
    // The last good keyset keeps serving while reloads fail; say how old it is.
    let keyset = app.reloader.status();
    let age = keyset.age_seconds(app.clock.now());
    let draining = app.draining.load(std::sync::atomic::Ordering::Relaxed);
    let ready = database == "ok" && signing_key == "ok" && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: match (ready, draining) {
            (true, _) => "ready",
            (false, true) => "draining",
            (false, false) => "not_ready",
        },
        database,
        signing_key,
        keyset: KeysetHealth {
            age_seconds: age,
            reload: if keyset.last_error.is_none() {
                "ok"
            } else {
                "failing"
            },
        },
    };
    (status, Json(body)).into_response()
}

/// Prometheus text format. Gauges that describe the present are set just before rendering.
///
/// Served here only when `ISSUER_ADMIN_BIND` is not set.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let keyset = app.reloader.status();
    let age = keyset.age_seconds(app.clock.now());
    metrics::gauge!("issuer_keyset_age_seconds").set(age as f64);
    metrics::gauge!("issuer_keyset_reload_failing").set(if keyset.last_error.is_some() { 1.0 } else { 0.0 });
    metrics::gauge!("issuer_keys_published").set(app.keys.load().key_count() as f64);
    match crate::metrics::handle() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "metrics are recorded elsewhere",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use tower::ServiceExt as _;

    use super::*;
    use crate::config::Settings;

    async fn app(dir: &tempfile::TempDir) -> Arc<AppState> {
        let at = dir.path().display();
        let settings = Settings::from_values([
            ("ISSUER_URL", "http://127.0.0.1:8080".to_owned()),
            ("ISSUER_DATABASE_URL", format!("sqlite://{at}/issuer.db")),
            ("ISSUER_KEY_SOURCE", format!("file:{at}/keys")),
        ])
        .expect("settings");
        AppState::build(settings).await.expect("app")
    }

    fn request(method: Method, path: &str, tag: Option<&str>) -> Request {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(tag) = tag {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        request.body(Body::empty()).expect("request")
    }

    /// Status, headers and body; not the length, which axum's routes set and hyper otherwise
    /// writes from the body itself.
    async fn seen(mut response: Response) -> (StatusCode, HeaderMap, Bytes) {
        response.headers_mut().remove(header::CONTENT_LENGTH);
        let (parts, body) = response.into_parts();
        (
            parts.status,
            parts.headers,
            to_bytes(body, usize::MAX).await.expect("body"),
        )
    }

    #[tokio::test]
    async fn an_early_answer_is_the_routed_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(&dir).await;
        let router = super::super::router(app.clone());
        let metadata = "/.well-known/openid-configuration";
        // The metadata is built by its first request, through the router.
        assert!(published(&app, &request(Method::GET, metadata, None)).is_none());
        let built = router.clone().oneshot(request(Method::GET, metadata, None)).await;
        assert_eq!(built.map(|r| r.status()), Ok(StatusCode::OK));
        let etag = app.keys.load().jwks().etag.to_str().expect("etag").to_owned();
        let jwks = "/.well-known/jwks.json";
        for (path, tag, status) in [
            (jwks, None, StatusCode::OK),
            ("/.well-known/jwks.json?x=1", None, StatusCode::OK),
            (jwks, Some(etag.as_str()), StatusCode::NOT_MODIFIED),
            (
                jwks,
                Some(&format!("\"other\", W/{etag}")),
                StatusCode::NOT_MODIFIED,
            ),
            (jwks, Some("*"), StatusCode::NOT_MODIFIED),
            (jwks, Some("\"other\""), StatusCode::OK),
            (metadata, None, StatusCode::OK),
            ("/.well-known/oauth-authorization-server", None, StatusCode::OK),
        ] {
            let early = published(&app, &request(Method::GET, path, tag)).expect("answered early");
            let Ok(routed) = router.clone().oneshot(request(Method::GET, path, tag)).await;
            let early = seen(early).await;
            assert_eq!(early.0, status, "{path} {tag:?}");
            assert_eq!(early, seen(routed).await, "{path} {tag:?}");
        }
        for (method, path) in [
            (Method::HEAD, jwks),
            (Method::POST, jwks),
            (Method::GET, "/.well-known/jwks.json/"),
            (Method::GET, "/.well-known/%6Awks.json"),
            (Method::GET, "/healthz"),
        ] {
            assert!(
                published(&app, &request(method.clone(), path, None)).is_none(),
                "{method} {path}"
            );
        }
    }
}
