//! OAuth 2.0 endpoints: token and userinfo.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde_json::{json, Value};

use super::api::TokenReply;
use super::error::ApiError;
use super::extract::{Bearer, OAuthForm};
use crate::app::AppState;
use crate::oauth::{parse_basic_credentials, OAuthError};

pub async fn token(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<TokenReply, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(parse_basic_credentials(value.to_str().map_err(|_| {
            OAuthError::InvalidClient("malformed Authorization header".into())
        })?)?),
        None => None,
    };
    crate::oauth::token(&app.sessions, &params, basic)
        .await
        .map(TokenReply)
}

pub async fn userinfo(
    State(app): State<Arc<AppState>>,
    Bearer(claims): Bearer,
) -> Result<Json<Value>, ApiError> {
    let user = app.accounts.find(&claims.sub).await?;
    Ok(Json(json!({ "sub": user.id, "email": user.email })))
}
