//! OAuth 2.0 endpoints' rules: the token endpoint (RFC 6749) and discovery (RFC 8414).

pub mod discovery;
mod form;
mod token_endpoint;

pub use form::{parse_basic_credentials, BasicCredentials, FormParams};
pub use token_endpoint::token;

use crate::accounts::SessionError;
use crate::store::StoreError;
use crate::tokens::{RefreshError, TokenError};

/// RFC 6749 §5.2 errors, plus the server-side failures a token endpoint can meet.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("server error: {0}")]
    Server(String),
}

impl From<SessionError> for OAuthError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refresh(RefreshError::Invalid | RefreshError::Reused { .. }) => {
                OAuthError::InvalidGrant("refresh token is invalid, expired or revoked".into())
            }
            SessionError::Refresh(RefreshError::Store(StoreError::Unavailable(e)))
            | SessionError::Store(StoreError::Unavailable(e)) => OAuthError::Unavailable(e.to_string()),
            SessionError::Token(TokenError::NoSigningKey(alg)) => {
                OAuthError::Unavailable(format!("no active {alg} signing key"))
            }
            other => OAuthError::Server(other.to_string()),
        }
    }
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Server(_) => "server_error",
        }
    }

    /// What the client may be told; server-side causes stay in the logs.
    pub fn description(&self) -> &str {
        match self {
            Self::Unavailable(_) => "the service is temporarily unavailable",
            Self::Server(_) => "internal error",
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d) => d,
        }
    }
}
