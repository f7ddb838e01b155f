//! The id of the request being handled: set by the request-id middleware for the whole
//! handling of a request, read by the error mapping (a server error's body names it).

use axum::http::HeaderName;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `handling` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, handling: F) -> F::Output {
    REQUEST_ID.scope(id, handling).await
}

/// The id of the request being handled; empty outside one.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}
