//! `/api/v1`: accounts and first-party sessions, as JSON.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Bearer, ClientIp};
use super::reply::TokenReply;
use crate::accounts::User;
use crate::app::AppState;
use crate::ratelimit::{self, Limit};
use crate::tokens::{TokenResponse, FIRST_PARTY_CLIENT};

type App = State<Arc<AppState>>;

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    #[schema(example = "ada@example.com")]
    email: String,
    /// At registration: at least `ISSUER_PASSWORD_MIN_LENGTH` characters (12 by default), at
    /// most 1024 bytes, and not easily guessed.
    #[schema(example = "violet tractor melts quietly")]
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    /// The account's current password, to confirm the erasure.
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: String,
    email: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            created_at: u.created_at.format(&Rfc3339).unwrap_or_default(),
            id: u.id,
            email: u.email,
        }
    }
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 201, description = "The account", body = UserView, links(
            ("Login" = (operation_id = "login", request_body = json!({
                "email": "$request.body#/email", "password": "$request.body#/password"})))
        )),
        (status = 409, description = "The email is registered already", body = ErrorBody),
        (status = 429, description = "Too many registrations from this client address", body = ErrorBody),
    ))]
pub async fn register(
    State(app): App,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    app.rate_limits
        .admit(Limit::Register, &ratelimit::ip_subject(ip))
        .await?;
    let user = app.accounts.register(&body.email, &body.password).await?;
    tracing::info!(target: "audit", event = "user_registered", user_id = %user.id);
    Ok((StatusCode::CREATED, Json(UserView::from(user))))
}

/// Log in: a session of the built-in client `first-party`.
///
/// A wrong email and a wrong password answer alike.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 200, description = "An access token and the session's refresh token", body = TokenResponse,
            links(("Refresh" = (operation_id = "refresh", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("Logout" = (operation_id = "logout", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
                ("Introspect" = (operation_id = "introspect",
                    request_body = json!({"token": "$response.body#/refresh_token"}))))),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "The account is disabled", body = ErrorBody),
        (status = 429, description = "Too many failed logins from this client address, or for this account", body = ErrorBody),
    ))]
pub async fn login(
    State(app): App,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<TokenReply, ApiError> {
    Ok(TokenReply(
        app.sessions.login(&body.email, &body.password, ip).await?,
    ))
}

/// Swap a refresh token for new tokens. The old refresh token is spent; presenting it again
/// ends its whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "accounts",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new access token and the next refresh token", body = TokenResponse,
            links(("Refresh" = (operation_id = "refresh", request_body = json!({"refresh_token": "$response.body#/refresh_token"}))))),
        (status = 401, description = "The refresh token is invalid, expired, revoked or spent", body = ErrorBody),
        (status = 429, description = "Too many refreshes from this client address", body = ErrorBody),
    ))]
pub async fn refresh(
    State(app): App,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<TokenReply, ApiError> {
    Ok(TokenReply(
        app.sessions
            .refresh(&body.refresh_token, FIRST_PARTY_CLIENT, true, ip, None)
            .await?,
    ))
}

/// End the session that the refresh token belongs to.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    request_body = RefreshBody, security(("bearer" = [])),
    responses((status = 204, description = "The session is over (or was already)")))]
pub async fn logout(
    State(app): App,
    Bearer(claims): Bearer,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    if app.sessions.logout(&claims.sub, &body.refresh_token).await? {
        tracing::info!(target: "audit", event = "logout", user_id = %claims.sub);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the bearer's user.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "accounts",
    security(("bearer" = [])),
    responses((status = 204, description = "Every session is over")))]
pub async fn logout_all(State(app): App, Bearer(claims): Bearer) -> Result<StatusCode, ApiError> {
    let ended = app.sessions.logout_all(&claims.sub).await?;
    tracing::info!(target: "audit", event = "logout_all", user_id = %claims.sub, sessions = ended);
    Ok(StatusCode::NO_CONTENT)
}

/// The bearer's account.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The account", body = UserView)))]
pub async fn me(State(app): App, Bearer(claims): Bearer) -> Result<Json<UserView>, ApiError> {
    Ok(Json(app.accounts.find(&claims.sub).await?.into()))
}

/// Erase the bearer's account, its sessions and its refresh tokens.
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "accounts",
    request_body = PasswordBody, security(("bearer" = [])),
    responses(
        (status = 204, description = "The account is erased"),
        (status = 403, description = "Wrong password", body = ErrorBody),
    ))]
pub async fn delete_me(
    State(app): App,
    Bearer(claims): Bearer,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    app.accounts.delete(&claims.sub, &body.password).await?;
    tracing::info!(target: "audit", event = "user_deleted", user_id = %claims.sub);
    Ok(StatusCode::NO_CONTENT)
}
