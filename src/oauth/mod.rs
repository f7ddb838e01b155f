//! OAuth 2.0 and OpenID Connect: registered clients and their authentication, the
//! authorization endpoint and the code grant, the token endpoint (RFC 6749), introspection
//! (RFC 7662), revocation (RFC 7009), discovery (RFC 8414).

mod authorize;
mod client_auth;
pub mod clients;
mod code_grant;
pub mod discovery;
mod form;
mod introspection;
mod logout;
pub mod redirect;
mod revocation;
mod token_endpoint;

pub use authorize::{AuthorizationRequest, AuthorizeError, Step};
pub use client_auth::JWT_BEARER_ASSERTION;
pub use clients::{ClientError, Clients, GrantType};
pub use form::{parse_basic_credentials, BasicCredentials, FormParams};
pub use introspection::Introspection;
pub use logout::LogoutRequest;

use std::sync::Arc;

use crate::accounts::{Accounts, LoginSessions, SessionError, Sessions};
use crate::clock::Clock;
use crate::ratelimit::{Denied, RateLimits};
use crate::store::{Store, StoreError};
use crate::tokens::{IdTokens, RefreshError, TokenError};

/// What the OAuth endpoints are made of.
pub struct OAuthParts {
    pub clients: Clients,
    pub sessions: Sessions,
    pub accounts: Accounts,
    pub login_sessions: LoginSessions,
    pub id_tokens: IdTokens,
    pub store: Store,
    pub issuer: String,
    /// `aud` of a client_credentials token for a client without registered audiences.
    pub default_audience: String,
    pub rate_limits: Arc<RateLimits>,
    pub clock: Clock,
}

/// The OAuth endpoints' shared parts.
#[derive(Clone)]
pub struct OAuth {
    pub clients: Clients,
    sessions: Sessions,
    accounts: Accounts,
    pub login_sessions: LoginSessions,
    id_tokens: IdTokens,
    /// Codes and consents.
    store: Store,
    issuer: String,
    default_audience: String,
    rate_limits: Arc<RateLimits>,
    clock: Clock,
}

impl OAuth {
    pub fn new(parts: OAuthParts) -> Self {
        Self {
            clients: parts.clients,
            sessions: parts.sessions,
            accounts: parts.accounts,
            login_sessions: parts.login_sessions,
            id_tokens: parts.id_tokens,
            store: parts.store,
            issuer: parts.issuer,
            default_audience: parts.default_audience,
            rate_limits: parts.rate_limits,
            clock: parts.clock,
        }
    }

    pub fn id_tokens(&self) -> &IdTokens {
        &self.id_tokens
    }

    /// Authenticates the caller of the endpoint at `path` (its URL is an accepted audience
    /// of client assertions, beside the issuer and the token endpoint).
    async fn caller(
        &self,
        path: &str,
        params: &FormParams,
        basic: Option<BasicCredentials>,
    ) -> Result<client_auth::Caller, OAuthError> {
        let audiences = client_auth::Audiences {
            issuer: &self.issuer,
            path,
        };
        client_auth::authenticate(&self.clients, audiences, params, basic).await
    }
}
/// The scopes of a space-separated `requested` list, repeats dropped, each one `allowed`; the
/// first that is not is the error. One rule for the token endpoint, refreshes and the
/// authorization endpoint.
fn scopes_within(requested: &str, allowed: impl Fn(&str) -> bool) -> Result<Vec<&str>, &str> {
    let mut scopes: Vec<&str> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed(scope) {
            return Err(scope);
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

/// RFC 6749 §5.2 errors, plus the server-side failures a token endpoint can meet.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// An `invalid_request` whose body is over the size limit: answered 413.
    #[error("invalid_request: the request body is too large")]
    BodyTooLarge,
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
    /// RFC 8707: a `resource` the client may not have a token for.
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// Over a rate limit: retry after this many seconds.
    #[error("rate limited")]
    RateLimited(u64),
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
            SessionError::Refresh(RefreshError::Store(e)) | SessionError::Store(e) => e.into(),
            SessionError::Token(e) => e.into(),
            SessionError::Denied(denied) => denied.into(),
            SessionError::Account(e) => OAuthError::Server(e.to_string()),
        }
    }
}

impl From<TokenError> for OAuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NoSigningKey(alg) => OAuthError::Unavailable(format!("no active {alg} signing key")),
            other => OAuthError::Server(other.to_string()),
        }
    }
}

impl From<Denied> for OAuthError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Wait(wait) => OAuthError::RateLimited(crate::accounts::throttle::retry_after_secs(wait)),
            Denied::Unavailable(e) => OAuthError::Unavailable(e.to_string()),
        }
    }
}

impl From<ClientError> for OAuthError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Store(e) => e.into(),
            other => OAuthError::Server(other.to_string()),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => OAuthError::Unavailable(e.to_string()),
            other => OAuthError::Server(other.to_string()),
        }
    }
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::BodyTooLarge => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Server(_) => "server_error",
        }
    }

    /// What the client may be told; server-side causes stay in the logs.
    pub fn description(&self) -> &str {
        match self {
            Self::RateLimited(_) => "too many requests; retry later",
            Self::BodyTooLarge => "the request body is too large",
            Self::Unavailable(_) => "the service is temporarily unavailable",
            Self::Server(_) => "internal error",
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d) => d,
        }
    }
}
