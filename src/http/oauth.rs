//! OAuth 2.0 endpoints: token, introspection, revocation, userinfo.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::TokenReply;
use super::error::ApiError;
use super::extract::{Bearer, ClientIp, OAuthForm};
use super::no_store;
use crate::app::AppState;
use crate::oauth::{parse_basic_credentials, BasicCredentials, OAuthError};

/// `Authorization: Basic` client credentials, if sent.
fn basic(headers: &HeaderMap) -> Result<Option<BasicCredentials>, OAuthError> {
    headers
        .get(header::AUTHORIZATION)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| OAuthError::InvalidClient("malformed Authorization header".into()))
                .and_then(parse_basic_credentials)
        })
        .transpose()
}

pub async fn token(
    State(app): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<TokenReply, OAuthError> {
    app.oauth
        .token(&params, basic(&headers)?, ip)
        .await
        .map(TokenReply)
}

pub async fn introspect(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    let info = app.oauth.introspect(&params, basic(&headers)?).await?;
    Ok(no_store(Json(info).into_response()))
}

pub async fn revoke(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    app.oauth.revoke(&params, basic(&headers)?).await?;
    Ok(no_store(StatusCode::OK.into_response()))
}

pub async fn userinfo(
    State(app): State<Arc<AppState>>,
    Bearer(claims): Bearer,
) -> Result<Json<Value>, ApiError> {
    let user = app.accounts.find(&claims.sub).await?;
    Ok(Json(json!({ "sub": user.id, "email": user.email })))
}
