//! `/api/v1`: accounts and first-party sessions, as JSON.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use super::error::ApiError;
use super::extract::{ApiJson, Bearer, ClientIp};
use crate::accounts::{AccountError, User};
use crate::app::AppState;
use crate::ratelimit::{self, Limit};
use crate::tokens::{TokenResponse, FIRST_PARTY_CLIENT};

type App = State<Arc<AppState>>;

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
pub struct PasswordBody {
    password: String,
}

#[derive(Serialize)]
pub struct UserView {
    id: String,
    email: String,
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

/// A token response: never cached (RFC 6749 §5.1).
pub struct TokenReply(pub TokenResponse);

impl IntoResponse for TokenReply {
    fn into_response(self) -> Response {
        super::no_store(Json(self.0).into_response())
    }
}

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

pub async fn login(
    State(app): App,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<TokenReply, ApiError> {
    // Throttled by a keyed hash of the email: the address itself is never kept or logged.
    let throttle = &app.login_throttle;
    let account = throttle.account_key(&body.email).await?;
    let now = ratelimit::now_ms();
    throttle.begin(ip, &account, now).await?;
    let user = match app.accounts.authenticate(&body.email, &body.password).await {
        Ok(user) => user,
        Err(e) => {
            if matches!(e, AccountError::InvalidCredentials | AccountError::Disabled) {
                metrics::counter!("issuer_login_failures_total").increment(1);
                tracing::info!(target: "audit", event = "login_failed", reason = %e, account = %account);
            }
            return Err(e.into());
        }
    };
    if let Err(store) = throttle.succeeded(ip, &account, now).await {
        tracing::error!(error = %store, "cannot give back a successful login's attempt");
    }
    let tokens = app.sessions.open(&user.id).await?;
    tracing::info!(target: "audit", event = "login_succeeded", user_id = %user.id);
    Ok(TokenReply(tokens))
}

pub async fn refresh(
    State(app): App,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<TokenReply, ApiError> {
    app.rate_limits
        .admit(Limit::Refresh, &ratelimit::ip_subject(ip))
        .await?;
    Ok(TokenReply(
        app.sessions
            .refresh(&body.refresh_token, FIRST_PARTY_CLIENT)
            .await?,
    ))
}

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

pub async fn logout_all(State(app): App, Bearer(claims): Bearer) -> Result<StatusCode, ApiError> {
    let ended = app.sessions.logout_all(&claims.sub).await?;
    tracing::info!(target: "audit", event = "logout_all", user_id = %claims.sub, sessions = ended);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(State(app): App, Bearer(claims): Bearer) -> Result<Json<UserView>, ApiError> {
    Ok(Json(app.accounts.find(&claims.sub).await?.into()))
}

pub async fn delete_me(
    State(app): App,
    Bearer(claims): Bearer,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    app.accounts.delete(&claims.sub, &body.password).await?;
    tracing::info!(target: "audit", event = "user_deleted", user_id = %claims.sub);
    Ok(StatusCode::NO_CONTENT)
}
