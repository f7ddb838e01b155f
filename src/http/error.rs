//! Every error becomes an HTTP response here, and only here. Details go to the log; the
//! caller gets a code, a plain message, and for server errors only the request id.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::reply::no_store;
use super::request_scope;
use crate::accounts::{AccountError, SessionError};
use crate::oauth::OAuthError;
use crate::ratelimit::Denied;
use crate::store::StoreError;
use crate::tokens::{RefreshError, TokenError};

const REALM: &str = "token-issuer";

/// The body of every `/api/v1` error, and of the router's own 404, 405 and 503.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code for programs, e.g. `invalid_credentials`.
    #[schema(value_type = String, example = "invalid_credentials")]
    error: &'static str,
    /// A plain explanation for people; it never carries internals.
    #[schema(value_type = String)]
    message: Cow<'static, str>,
    /// The offending field: on 422, and on the 403 of a wrong password.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// Server errors only: the request id to quote when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

/// An OAuth endpoint's error (RFC 6749 §5.2).
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody<'a> {
    #[schema(value_type = String, example = "invalid_client")]
    error: &'static str,
    #[schema(value_type = String)]
    error_description: &'a str,
    /// Server errors only: the request id to quote when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

/// The request id, for the body of a server error only.
fn request_id_if(status: StatusCode) -> Option<String> {
    status.is_server_error().then(request_scope::current_id)
}

/// An error of the `/api/v1` endpoints: `{"error", "message"}` (+ `field` on 422).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    field: Option<String>,
    challenge: Option<String>,
    /// Seconds, for 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            challenge: None,
            retry_after: None,
        }
    }

    pub fn invalid_field(field: &str, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        }
    }

    pub fn with_status(self, status: StatusCode) -> Self {
        Self { status, ..self }
    }

    /// 401 for a protected endpoint: no token sent, or an invalid one (RFC 6750 §3).
    pub fn bearer(token_sent: bool) -> Self {
        let (challenge, message) = if token_sent {
            (
                format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"the access token is invalid or expired\""),
                "the access token is invalid or expired",
            )
        } else {
            (format!("Bearer realm=\"{REALM}\""), "an access token is required")
        };
        Self {
            challenge: Some(challenge),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                if token_sent {
                    "invalid_token"
                } else {
                    "unauthorized"
                },
                message,
            )
        }
    }

    /// 401 for a service's own token (client_credentials) at an endpoint that acts for a user:
    /// valid, but nobody's — said plainly, so nobody hunts for clock skew.
    pub fn service_token() -> Self {
        const WHY: &str = "this is a service's token (client_credentials); it does not act for a user";
        Self {
            challenge: Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{WHY}\""
            )),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", WHY)
        }
    }

    /// 403: the token is valid but lacks `scope` (RFC 6750 §3.1).
    pub fn insufficient_scope(scope: &'static str) -> Self {
        Self {
            challenge: Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("the access token needs scope {scope}"),
            )
        }
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many attempts; retry later",
            )
        }
    }

    /// 503 with `Retry-After`: more requests in flight than the server takes at once.
    pub fn overloaded() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is at capacity; retry shortly",
            )
        }
    }

    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }

    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: self.message,
            field: self.field,
            request_id: request_id_if(self.status),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Wait(wait) => Self::too_many_requests(crate::accounts::throttle::retry_after_secs(wait)),
            Denied::Unavailable(e) => Self::unavailable(&e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::unavailable(&e),
            _ => Self::internal(&e),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::InvalidEmail(p) => Self::invalid_field("email", "invalid_email", p.to_string()),
            AccountError::WeakPassword(p) => Self::invalid_field("password", "weak_password", p.to_string()),
            AccountError::EmailTaken => Self::new(StatusCode::CONFLICT, "email_taken", e.to_string()),
            AccountError::InvalidCredentials => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            AccountError::WrongPassword => Self::invalid_field("password", "invalid_password", e.to_string())
                .with_status(StatusCode::FORBIDDEN),
            AccountError::Disabled => Self::new(StatusCode::FORBIDDEN, "account_disabled", e.to_string()),
            // The user behind a valid token is gone or disabled: the token no longer counts.
            AccountError::NotFound => Self::bearer(true),
            AccountError::UnknownEmail(_) => Self::new(StatusCode::NOT_FOUND, "not_found", "no such user"),
            AccountError::Store(s) => s.into(),
            AccountError::Busy => Self::overloaded(),
            AccountError::Internal(_) => Self::internal(&e),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refresh(RefreshError::Invalid | RefreshError::Reused { .. }) => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            ),
            SessionError::Refresh(RefreshError::Store(s)) | SessionError::Store(s) => s.into(),
            SessionError::Token(TokenError::NoSigningKey(_)) => Self::unavailable(&e),
            SessionError::Token(_) => Self::internal(&e),
            SessionError::Account(e) => e.into(),
            SessionError::Denied(denied) => denied.into(),
        }
    }
}

/// RFC 6749 §5.2 error responses of the OAuth endpoints.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::Unavailable(cause) => {
                tracing::error!(error = %cause, "dependency unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            OAuthError::Server(cause) => {
                tracing::error!(error = %cause, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            OAuthError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = OAuthErrorBody {
            error: self.code(),
            error_description: self.description(),
            request_id: request_id_if(status),
        };
        let mut response = no_store((status, Json(body)).into_response());
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"token-issuer\""),
            );
        }
        if let OAuthError::RateLimited(secs) = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
