//! HTTP: the router, its middleware, extractors, and the one place errors become responses.

mod api;
mod browser;
mod client_ip;
mod deadline;
mod error;
mod extract;
mod middleware;
mod oauth;
mod openapi;
pub mod pages;
mod reply;
pub(crate) mod request_scope;
mod schema;
mod server;
pub mod tls;
mod wellknown;

pub use error::ApiError;
pub use extract::parse_json;
pub use server::{Listeners, Server};

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use tower::{Service, ServiceBuilder};

use crate::app::AppState;

/// What the main listener answers with: [`middleware::Edge`] around CORS, the published
/// documents ([`wellknown::Published`]), the time limit, the body limit and the routes, each
/// wrapped around the next once, not layered on every route.
pub fn service(
    app: Arc<AppState>,
) -> middleware::Edge<
    impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static,
> {
    let settings = &app.settings;
    let policy = middleware::Policy {
        trusted_proxies: settings.trusted_proxies.clone(),
        hsts: settings.issuer_is_https(),
    };
    let timeout = settings.request_timeout;
    let inner = ServiceBuilder::new()
        .option_layer(middleware::cors(&settings.cors_origins.0))
        .layer_fn(|inner| wellknown::Published {
            app: app.clone(),
            inner,
        })
        .map_future(move |handling| middleware::guard(handling, timeout))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .service(router(app.clone()));
    middleware::Edge {
        policy: Arc::new(policy),
        inner,
    }
}

/// The routes. None has path parameters: the request metrics label a request by its path.
fn router(app: Arc<AppState>) -> Router {
    let settings = &app.settings;
    // Precomputed or trivial, and without a body: never shed, so a flood of slow or costly
    // requests cannot cut verifiers off from the keys.
    let published = Router::new()
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(wellknown::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(wellknown::discovery),
        )
        .route("/healthz", get(wellknown::healthz))
        .route("/readyz", get(wellknown::readyz))
        .route(
            "/openapi.json",
            get(openapi::openapi_json).with_state(openapi::document(settings)),
        );
    let mut sheddable = Router::new()
        .route(
            "/oauth2/authorize",
            get(browser::authorize).post(browser::authorize_post),
        )
        .route("/oauth2/authorize/login", post(browser::login))
        .route("/oauth2/authorize/consent", post(browser::consent))
        .route("/oauth2/logout", get(browser::logout).post(browser::logout_post))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route(
            "/oauth2/userinfo",
            get(oauth::userinfo).post(oauth::userinfo_post),
        )
        .route("/api/v1/auth/register", post(api::register))
        .route("/api/v1/auth/login", post(api::login))
        .route("/api/v1/auth/refresh", post(api::refresh))
        .route("/api/v1/auth/logout", post(api::logout))
        .route("/api/v1/auth/logout-all", post(api::logout_all))
        .route("/api/v1/users/me", get(api::me).delete(api::delete_me));
    if settings.admin_bind.is_none() {
        sheddable = sheddable.route("/metrics", get(wellknown::metrics));
    }
    let capacity = middleware::Capacity {
        permits: tokio::sync::Semaphore::new(settings.max_concurrent_requests),
        per_client: crate::ratelimit::InFlight::new(settings.max_concurrent_requests_per_client),
    };
    let sheddable = sheddable.route_layer(axum::middleware::from_fn_with_state(
        Arc::new(capacity),
        middleware::shed_load,
    ));
    published
        .merge(sheddable)
        .fallback(|| async {
            (
                Extension(middleware::Unrouted),
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed here",
            )
        })
        .with_state(app)
}

/// The admin listener (`ISSUER_ADMIN_BIND`): metrics and probes, for the internal network.
pub fn admin_router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(wellknown::metrics))
        .route("/healthz", get(wellknown::healthz))
        .route("/readyz", get(wellknown::readyz))
        .with_state(app)
}
