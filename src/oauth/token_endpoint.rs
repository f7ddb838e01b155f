//! `POST /oauth2/token`: grant dispatch and client identification.

use super::{BasicCredentials, FormParams, OAuthError};
use crate::accounts::{SessionError, Sessions};
use crate::store::StoreError;
use crate::tokens::{RefreshError, TokenResponse, FIRST_PARTY_CLIENT};

pub async fn token(
    sessions: &Sessions,
    params: &FormParams,
    basic: Option<BasicCredentials>,
) -> Result<TokenResponse, OAuthError> {
    match params.require("grant_type")? {
        "refresh_token" => {
            let client_id = public_client(params, basic)?;
            let refresh_token = params.require("refresh_token")?;
            if params.get("scope").is_some() {
                return Err(OAuthError::InvalidScope(
                    "the first-party client has no scopes to narrow".into(),
                ));
            }
            sessions
                .refresh(refresh_token, client_id)
                .await
                .map_err(session_error)
        }
        other => Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type {other} is not supported"
        ))),
    }
}

/// The public client `first-party` identifies itself by `client_id` alone, or not at all
/// (RFC 6749 §3.2.1). Registered confidential clients do not exist yet.
fn public_client(params: &FormParams, basic: Option<BasicCredentials>) -> Result<&'static str, OAuthError> {
    if basic.is_some() || params.get("client_secret").is_some() {
        return Err(OAuthError::InvalidClient("unknown client or wrong secret".into()));
    }
    match params.get("client_id") {
        None | Some(FIRST_PARTY_CLIENT) => Ok(FIRST_PARTY_CLIENT),
        Some(_) => Err(OAuthError::InvalidClient("unknown client or wrong secret".into())),
    }
}

fn session_error(e: SessionError) -> OAuthError {
    match e {
        SessionError::Refresh(RefreshError::Invalid | RefreshError::Reused { .. }) => {
            OAuthError::InvalidGrant("refresh token is invalid, expired or revoked".into())
        }
        SessionError::Refresh(RefreshError::Store(StoreError::Unavailable(e))) => {
            OAuthError::Unavailable(e.to_string())
        }
        other => OAuthError::Server(other.to_string()),
    }
}
