//! Answers that more than one handler gives.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::tokens::TokenResponse;

/// Responses that carry or describe tokens are never cached (RFC 6749 §5.1, RFC 7662 §2.2).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A token response: never cached.
pub struct TokenReply(pub TokenResponse);

impl IntoResponse for TokenReply {
    fn into_response(self) -> Response {
        let json = HeaderValue::from_static("application/json");
        no_store(([(header::CONTENT_TYPE, json)], self.0.to_json()).into_response())
    }
}
