//! `POST /oauth2/introspect` (RFC 7662): any registered client may ask about any token of
//! this issuer. Anything not live — unknown, forged, expired, revoked, its user disabled or
//! deleted, its client deleted — is `{"active": false}` and nothing more.

use serde::Serialize;

use super::client_auth::Caller;
use super::{BasicCredentials, FormParams, OAuth, OAuthError};
use crate::accounts::AccountError;
use crate::tokens::{AccessClaims, FIRST_PARTY_CLIENT};

/// An introspection answer (RFC 7662 §2.2): everything but `active` is absent when it is false.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// `Bearer` for an access token, `refresh_token` for a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Access tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl OAuth {
    pub async fn introspect(
        &self,
        params: &FormParams,
        basic: Option<BasicCredentials>,
    ) -> Result<Introspection, OAuthError> {
        match self.caller("/oauth2/introspect", params, basic).await? {
            Caller::Client(client) if !client.is_public() => {}
            _ => {
                return Err(OAuthError::InvalidClient(
                    "introspection needs a confidential client's credentials".into(),
                ))
            }
        }
        let token = params.require("token")?;
        // The hint only orders the search (RFC 7662 §2.1).
        let refresh_first = params.get("token_type_hint") == Some("refresh_token");
        let found = if refresh_first {
            match self.refresh_token_info(token).await? {
                Some(info) => Some(info),
                None => self.access_token_info(token).await?,
            }
        } else {
            match self.access_token_info(token).await? {
                Some(info) => Some(info),
                None => self.refresh_token_info(token).await?,
            }
        };
        Ok(found.unwrap_or_default())
    }

    /// A live access token of this issuer, any audience.
    pub(super) async fn live_access_token(&self, token: &str) -> Result<Option<AccessClaims>, OAuthError> {
        let Ok(claims) = self.sessions.access_tokens().verify(token, None) else {
            return Ok(None);
        };
        if !self.sessions.revocations().honours(&claims).await? {
            return Ok(None);
        }
        let subject_live = if claims.client_id != FIRST_PARTY_CLIENT {
            // A registered client's token dies with the client; one deleted and registered
            // again under the same id is not the same client.
            self.clients
                .find(&claims.client_id)
                .await?
                .is_some_and(|c| claims.iat >= c.created_at)
        } else if claims.sid.is_some() {
            // The session's check covered its user.
            true
        } else {
            // A user's token from a version without `sid`: its user must still be active.
            match self.accounts.find(&claims.sub).await {
                Ok(_) => true,
                Err(AccountError::NotFound) => false,
                Err(e) => return Err(OAuthError::Server(e.to_string())),
            }
        };
        Ok(subject_live.then_some(claims))
    }

    async fn access_token_info(&self, token: &str) -> Result<Option<Introspection>, OAuthError> {
        Ok(self.live_access_token(token).await?.map(|c| Introspection {
            active: true,
            token_type: Some("Bearer"),
            client_id: Some(c.client_id),
            sub: Some(c.sub),
            aud: Some(c.aud),
            iss: Some(c.iss),
            exp: Some(c.exp),
            iat: Some(c.iat),
            jti: Some(c.jti),
            scope: c.scope,
        }))
    }

    async fn refresh_token_info(&self, token: &str) -> Result<Option<Introspection>, OAuthError> {
        let record = self.sessions.refresh_tokens().live(token).await?;
        Ok(record.map(|r| Introspection {
            active: true,
            token_type: Some("refresh_token"),
            client_id: Some(r.client_id),
            sub: Some(r.user_id),
            aud: Some(self.sessions.audience().to_owned()),
            iss: Some(self.issuer.clone()),
            exp: Some(r.expires_at),
            iat: Some(r.issued_at),
            jti: None,
            scope: r.scope,
        }))
    }
}
