//! axum integration: an extractor, and a middleware that guards whole routers.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use token_verifier::axum::{require_bearer, Authenticated};
//!
//! async fn hello(Authenticated(claims): Authenticated) -> String {
//!     format!("hello {}", claims.sub)
//! }
//! # fn app(verifier: token_verifier::Verifier) -> Router {
//! Router::new()
//!     .route("/hello", get(hello))
//!     .layer(axum::middleware::from_fn_with_state(verifier.clone(), require_bearer))
//!     .with_state(verifier)
//! # }
//! ```

use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{Claims, Verifier, VerifyError};

/// A rejected request: 401 (RFC 6750 §3) or 403 for a missing scope. The reason goes to the
/// log, not to the caller.
#[derive(Debug)]
pub enum AuthError {
    Missing,
    Invalid(VerifyError),
    InsufficientScope(String),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, challenge) = match &self {
            AuthError::Missing => (StatusCode::UNAUTHORIZED, "Bearer".to_owned()),
            // Not the token's fault: a 401 would make clients throw good tokens away.
            AuthError::Invalid(e @ VerifyError::KeysUnavailable(_)) => {
                tracing::warn!(reason = %e, "cannot verify bearer tokens");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            AuthError::Invalid(e) => {
                tracing::info!(reason = %e, "bearer token refused");
                (
                    StatusCode::UNAUTHORIZED,
                    "Bearer error=\"invalid_token\"".to_owned(),
                )
            }
            AuthError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
            ),
        };
        let mut response = status.into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(AuthError::Missing)
}

/// Claims in the request's extensions, with the verifier that checked them.
#[derive(Clone)]
struct Verified {
    by: usize,
    claims: Claims,
}

/// The verified claims of the request's bearer token.
pub struct Authenticated(pub Claims);

impl Authenticated {
    /// 403 `insufficient_scope` unless the token grants `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        if self.0.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope(scope.to_owned()))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let verifier = Verifier::from_ref(state);
        // Already verified by `require_bearer` with this very verifier (same audiences).
        if let Some(v) = parts
            .extensions
            .get::<Verified>()
            .filter(|v| v.by == verifier.id())
        {
            return Ok(Authenticated(v.claims.clone()));
        }
        let token = bearer(parts)?;
        let claims = verifier.verify(token).await.map_err(AuthError::Invalid)?;
        Ok(Authenticated(claims))
    }
}

/// Middleware: refuses requests without a valid bearer token; puts the claims in the
/// request's extensions for handlers (and `Authenticated`) to use.
pub async fn require_bearer(State(verifier): State<Verifier>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let claims = match bearer(&parts) {
        Ok(token) => {
            verifier
                .verify::<serde_json::Map<String, serde_json::Value>>(token)
                .await
        }
        Err(e) => return e.into_response(),
    };
    match claims {
        Ok(claims) => {
            parts.extensions.insert(claims.clone());
            parts.extensions.insert(Verified {
                by: verifier.id(),
                claims,
            });
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => AuthError::Invalid(e).into_response(),
    }
}
