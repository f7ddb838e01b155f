//! Public documents: JWKS and discovery, served from bytes computed at load; health checks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use crate::app::AppState;

pub async fn jwks(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let keys = app.keys.load();
    let jwks = keys.jwks();

    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == jwks.etag)
        });
    let common = [
        (header::CACHE_CONTROL, app.jwks_cache_control.clone()),
        (header::ETAG, jwks.etag.clone()),
    ];
    if not_modified {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        (
            common,
            [(header::CONTENT_TYPE, "application/json".to_owned())],
            jwks.body.clone(),
        )
            .into_response()
    }
}

pub async fn discovery(State(app): State<Arc<AppState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        app.discovery.body(&app.oauth.clients).await,
    )
        .into_response()
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and the configured algorithm has a signing key.
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
    let age = keyset.age_seconds();
    let ready = database == "ok" && signing_key == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": database,
        "signing_key": signing_key,
        "keyset": {
            "age_seconds": age,
            "reload": if keyset.last_error.is_none() { "ok" } else { "failing" },
        },
    });
    (status, Json(body)).into_response()
}

/// Prometheus text format. Gauges that describe the present are set just before rendering.
pub async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let keyset = app.reloader.status();
    let age = keyset.age_seconds();
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
