//! `POST /oauth2/token`: grant dispatch and client identification.

use super::{BasicCredentials, FormParams, OAuthError};
use crate::accounts::Sessions;
use crate::tokens::{TokenResponse, FIRST_PARTY_CLIENT};

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
            Ok(sessions.refresh(refresh_token, client_id).await?)
        }
        other => Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type {other} is not supported"
        ))),
    }
}

/// The public client `first-party` identifies itself by `client_id` alone, or not at all
/// (RFC 6749 §3.2.1). Registered confidential clients do not exist yet.
fn public_client(params: &FormParams, basic: Option<BasicCredentials>) -> Result<&'static str, OAuthError> {
    let refused = || OAuthError::InvalidClient("unknown client or wrong secret".into());
    if params.get("client_secret").is_some() {
        return Err(refused());
    }
    // Some client libraries send a public client as `Basic base64(client_id:)`.
    let basic_id = match basic {
        Some(b) if b.client_secret.is_empty() => Some(b.client_id),
        Some(_) => return Err(refused()),
        None => None,
    };
    match (basic_id.as_deref(), params.get("client_id")) {
        (Some(a), Some(b)) if a != b => Err(OAuthError::InvalidRequest("two different client ids".into())),
        (Some(FIRST_PARTY_CLIENT) | None, None | Some(FIRST_PARTY_CLIENT)) => Ok(FIRST_PARTY_CLIENT),
        _ => Err(refused()),
    }
}
