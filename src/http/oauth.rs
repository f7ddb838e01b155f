//! OAuth 2.0 endpoints: token, introspection, revocation, userinfo. (The browser's
//! endpoints, authorize and logout, are in `browser`.)

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, OAuthErrorBody};
use super::extract::{Authorization, ClientIp, OAuthForm, UserBearer};
use super::reply::{no_store, TokenReply};
use super::schema::{IntrospectionRequest, RevocationRequest, TokenRequest};
use crate::app::AppState;
use crate::oauth::{Introspection, OAuthError};
use crate::tokens::{TokenResponse, FIRST_PARTY_CLIENT};

/// The userinfo answer (OpenID Connect Core §5.3.2): the subject, and the email for the
/// first-party client or a token with scope `email`.
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// With scope `email`: whether the issuer verified the address (it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

/// The token endpoint (RFC 6749): `client_credentials` for a registered client,
/// `refresh_token` for any client's refresh token (rotated on every use).
///
/// A confidential client authenticates with HTTP Basic (`client_secret_basic`), in the body
/// (`client_secret_post`) or with a signed assertion (`private_key_jwt`); the built-in public
/// client `first-party` sends only its `client_id`, or nothing.
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, description = "The tokens", body = TokenResponse, links(
            ("Introspect" = (operation_id = "introspect",
                request_body = json!({"token": "$response.body#/access_token"}))),
            ("Revoke" = (operation_id = "revoke",
                request_body = json!({"token": "$response.body#/access_token"}))),
        )),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope` or `invalid_target`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: the client failed to authenticate", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is larger than `ISSUER_MAX_BODY_BYTES`", body = OAuthErrorBody),
        (status = 429, description = "Too many requests from this client", body = OAuthErrorBody),
    ))]
pub async fn token(
    State(app): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    authorization: Authorization,
    OAuthForm(params): OAuthForm,
) -> Result<TokenReply, OAuthError> {
    app.oauth
        .token(&params, authorization.basic()?, ip)
        .await
        .map(TokenReply)
}

/// Token introspection (RFC 7662), for registered clients: any live access or refresh token
/// of this issuer is described; anything else is `{"active": false}`.
///
/// The client authenticates with HTTP Basic, in the body, or with a signed assertion.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth",
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    security(("client_secret_basic" = [])),
    responses(
        (status = 200, description = "What the token is", body = Introspection),
        (status = 400, description = "`invalid_request`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: no registered client authenticated", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is larger than `ISSUER_MAX_BODY_BYTES`", body = OAuthErrorBody),
    ))]
pub async fn introspect(
    State(app): State<Arc<AppState>>,
    authorization: Authorization,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    let info = app.oauth.introspect(&params, authorization.basic()?).await?;
    Ok(no_store(Json(info).into_response()))
}

/// Token revocation (RFC 7009): a refresh token ends its session; an access token is
/// refused from then on by this issuer's own endpoints and introspection.
///
/// An unknown token also answers 200. The built-in public client `first-party` needs no
/// authentication.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth",
    request_body(content = RevocationRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = 200, description = "Revoked; also for a token that is unknown, expired or malformed, and then nothing is done"),
        (status = 400, description = "`invalid_request`, or `unauthorized_client` for a token issued to another client", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is larger than `ISSUER_MAX_BODY_BYTES`", body = OAuthErrorBody),
    ))]
pub async fn revoke(
    State(app): State<Arc<AppState>>,
    authorization: Authorization,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    app.oauth.revoke(&params, authorization.basic()?).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

/// The claims of the bearer's user.
#[utoipa::path(get, path = "/oauth2/userinfo", tag = "oauth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 403, description = "An app's token without scope `openid` (`insufficient_scope`)", body = ErrorBody),
    ))]
pub async fn userinfo(
    State(app): State<Arc<AppState>>,
    UserBearer(claims): UserBearer,
) -> Result<Json<UserInfo>, ApiError> {
    let first_party = claims.client_id == FIRST_PARTY_CLIENT;
    let granted = |scope: &str| {
        claims
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == scope))
    };
    // An app's token answers here only if it was granted OpenID Connect (Core §5.3).
    if !first_party && !granted("openid") {
        return Err(ApiError::insufficient_scope("openid"));
    }
    let user = app.accounts.find(&claims.sub).await?;
    let email_scope = granted("email");
    Ok(Json(UserInfo {
        sub: user.id,
        email: (first_party || email_scope).then_some(user.email),
        email_verified: email_scope.then_some(false),
    }))
}

/// The claims of the bearer's user (OpenID Connect Core §5.3.1 allows POST too).
#[utoipa::path(post, path = "/oauth2/userinfo", tag = "oauth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserInfo),
        (status = 403, description = "An app's token without scope `openid` (`insufficient_scope`)", body = ErrorBody),
    ))]
pub async fn userinfo_post(
    app: State<Arc<AppState>>,
    bearer: UserBearer,
) -> Result<Json<UserInfo>, ApiError> {
    userinfo(app, bearer).await
}
