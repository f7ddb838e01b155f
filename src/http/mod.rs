//! HTTP: the router, its middleware, extractors, and the one place errors become responses.

mod api;
mod client_ip;
mod error;
mod extract;
mod middleware;
mod oauth;
mod wellknown;

pub use error::ApiError;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::{AppState, StartError};

pub fn router(app: Arc<AppState>) -> Router {
    let settings = &app.settings;
    let routes = Router::new()
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/openid-configuration", get(wellknown::discovery))
        .route(
            "/.well-known/oauth-authorization-server",
            get(wellknown::discovery),
        )
        .route("/healthz", get(wellknown::healthz))
        .route("/readyz", get(wellknown::readyz))
        .route("/metrics", get(wellknown::metrics))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/oauth2/userinfo", get(oauth::userinfo).post(oauth::userinfo))
        .route("/api/v1/auth/register", post(api::register))
        .route("/api/v1/auth/login", post(api::login))
        .route("/api/v1/auth/refresh", post(api::refresh))
        .route("/api/v1/auth/logout", post(api::logout))
        .route("/api/v1/auth/logout-all", post(api::logout_all))
        .route("/api/v1/users/me", get(api::me).delete(api::delete_me))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed here",
            )
        })
        .layer(DefaultBodyLimit::max(settings.max_body_bytes));
    let layers = ServiceBuilder::new()
        .layer(axum::middleware::from_fn(middleware::request_id))
        .layer(axum::middleware::from_fn_with_state(
            settings.issuer_is_https(),
            middleware::security_headers,
        ))
        .option_layer(middleware::cors(&settings.cors_origins))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            settings.request_timeout,
            middleware::timeout,
        ));
    routes.layer(layers).with_state(app)
}

/// Responses that carry or describe tokens are never cached (RFC 6749 §5.1, RFC 7662 §2.2).
pub(crate) fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A bound listener with the application behind it.
pub struct Server {
    listener: TcpListener,
    app: Arc<AppState>,
}

impl Server {
    pub async fn bind(app: Arc<AppState>) -> Result<Self, StartError> {
        let addr = app.settings.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Self::new(listener, app))
    }

    /// Serves on a listener the caller bound (tests bind port 0 before building the app).
    pub fn new(listener: TcpListener, app: Arc<AppState>) -> Self {
        Self { listener, app }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let router = router(self.app);
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
