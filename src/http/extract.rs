//! Request extractors that turn bad input into the contract's errors, never a 500.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::request_scope;
use crate::app::AppState;
use crate::oauth::{parse_basic_credentials, BasicCredentials, FormParams, OAuthError};
use crate::tokens::AccessClaims;

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// A JSON body: 415 without `Content-Type: application/json`, 413 when too large, 400 when
/// malformed, 422 naming the field when well-formed but wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !content_type_is(req.headers(), "application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| too_large_or_bad(e.status()))?;
        parse_json(&body).map(ApiJson)
    }
}

/// A JSON request body as `T`: malformed JSON is 400 `malformed_json`; a missing, unknown or
/// ill-typed field is 422 naming it (serde's message, without the position).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let malformed = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not valid JSON",
        )
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        if !e.inner().is_data() {
            return malformed();
        }
        let message = e.inner().to_string();
        // serde names a missing or unknown top-level field only in its message.
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p))
            .and_then(|rest| rest.split('`').next());
        let field = match e.path().to_string() {
            path if path != "." => path,
            _ => named.unwrap_or("body").to_owned(),
        };
        let message = message.split(" at line").next().unwrap_or_default().to_owned();
        ApiError::invalid_field(&field, "invalid_field", format!("{field}: {message}"))
    })?;
    de.end().map_err(|_| malformed())?;
    Ok(value)
}

fn too_large_or_bad(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is too large",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request body could not be read",
        )
    }
}

/// Form parameters of an OAuth endpoint (RFC 6749 §3.2: form-encoded, none repeated).
pub struct OAuthForm(pub FormParams);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthError> {
        if !content_type_is(req.headers(), "application/x-www-form-urlencoded") {
            return Err(OAuthError::InvalidRequest(
                "Content-Type must be application/x-www-form-urlencoded".into(),
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => OAuthError::BodyTooLarge,
                _ => OAuthError::InvalidRequest("the request body could not be read".into()),
            })?;
        FormParams::parse(&body).map(OAuthForm)
    }
}

/// The `Authorization` header of a request to the OAuth endpoints, read as `Basic` client
/// credentials (RFC 6749 §2.3.1) only once the form has been read, so a form error comes
/// first. (Taking the whole `HeaderMap` instead would copy every header of every request.)
pub struct Authorization(Option<HeaderValue>);

impl Authorization {
    /// The `Basic` credentials, if sent; a malformed header is `invalid_client`.
    pub fn basic(&self) -> Result<Option<BasicCredentials>, OAuthError> {
        self.0
            .as_ref()
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| OAuthError::InvalidClient("malformed Authorization header".into()))
                    .and_then(parse_basic_credentials)
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorization {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::AUTHORIZATION).cloned()))
    }
}

/// The `If-None-Match` header, if sent: read alone, as axum's `HeaderMap` extractor copies
/// every header.
pub struct IfNoneMatch(pub Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::IF_NONE_MATCH).cloned()))
    }
}

/// The client's IP address, as `ISSUER_TRUSTED_PROXIES` allows it to be known (worked out
/// once per request by `middleware::Edge`, which also logs it with the request's scope).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

impl ClientIp {
    /// The address of the request being handled.
    pub fn current() -> Option<Self> {
        request_scope::with_current(|scope| scope.client_ip)
            .flatten()
            .map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Self::current().ok_or_else(|| ApiError::internal(&"no client address on the request"))
    }
}

/// The verified claims of the request's bearer access token (RFC 6750 §2.1), a user's token
/// of the first-party client: what the account API (`/api/v1`) acts on.
pub struct Bearer(pub AccessClaims);

/// As [`Bearer`], for a user's token of any client (userinfo: an app that logged the user in
/// with the authorization code asks who they are).
pub struct UserBearer(pub AccessClaims);

impl<S: Send + Sync> FromRequestParts<S> for Bearer
where
    Arc<AppState>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        user_token(parts, &Arc::<AppState>::from_ref(state), true)
            .await
            .map(Bearer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UserBearer
where
    Arc<AppState>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        user_token(parts, &Arc::<AppState>::from_ref(state), false)
            .await
            .map(UserBearer)
    }
}

/// The bearer token's claims if it is a live user's token (of the first-party client only,
/// when `first_party`).
async fn user_token(parts: &Parts, app: &AppState, first_party: bool) -> Result<AccessClaims, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::bearer(false));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        // Another scheme (Basic, …) sent no bearer token at all (RFC 6750 §3.1).
        .ok_or_else(|| ApiError::bearer(false))?;
    let sessions = &app.sessions;
    // The audience is checked after the kind of token, so that a service's token (whose
    // audience is the service's API) hears what it is.
    let claims = sessions.access_tokens().verify(token, None).map_err(|e| {
        tracing::info!(reason = %e, "bearer token refused");
        ApiError::bearer(true)
    })?;
    // These endpoints act for a user: a service's own token (client_credentials) is no user.
    if claims.sub == claims.client_id {
        tracing::info!(client_id = %claims.client_id, "bearer token refused: a service's own token");
        return Err(ApiError::service_token());
    }
    if first_party && claims.client_id != crate::tokens::FIRST_PARTY_CLIENT {
        tracing::info!(client_id = %claims.client_id, "bearer token refused: not the first-party client's");
        return Err(ApiError::bearer(true));
    }
    if claims.aud != sessions.audience() {
        tracing::info!("bearer token refused: wrong audience");
        return Err(ApiError::bearer(true));
    }
    // Revoked at /oauth2/revoke, or its session ended: this issuer's own endpoints know.
    if !sessions.revocations().honours(&claims).await? {
        tracing::info!("bearer token refused: revoked or its session ended");
        return Err(ApiError::bearer(true));
    }
    Ok(claims)
}
