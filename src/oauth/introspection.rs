//! `POST /oauth2/introspect` (RFC 7662): any registered client may ask about any token of
//! this issuer. Anything not live — unknown, forged, expired, revoked, its user disabled or
//! deleted, its client deleted — is `{"active": false}` and nothing more.

use serde_json::{json, Value};

use super::client_auth::Caller;
use super::{BasicCredentials, FormParams, OAuth, OAuthError};
use crate::accounts::AccountError;
use crate::tokens::{AccessClaims, FIRST_PARTY_CLIENT};

impl OAuth {
    pub async fn introspect(
        &self,
        params: &FormParams,
        basic: Option<BasicCredentials>,
    ) -> Result<Value, OAuthError> {
        if let Caller::FirstParty = self.caller("/oauth2/introspect", params, basic).await? {
            return Err(OAuthError::InvalidClient(
                "introspection needs a registered client's credentials".into(),
            ));
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
        Ok(found.unwrap_or_else(|| json!({ "active": false })))
    }

    /// A live access token of this issuer, any audience.
    pub(super) async fn live_access_token(&self, token: &str) -> Result<Option<AccessClaims>, OAuthError> {
        let Ok(claims) = self.sessions.access_tokens().verify(token, None) else {
            return Ok(None);
        };
        if self.store.access_token_revoked(&claims.jti).await? {
            return Ok(None);
        }
        let subject_live = if claims.client_id == FIRST_PARTY_CLIENT {
            match self.accounts.find(&claims.sub).await {
                Ok(_) => true,
                Err(AccountError::NotFound) => false,
                Err(e) => return Err(OAuthError::Server(e.to_string())),
            }
        } else {
            // A client deleted and registered again under the same id is not the same client.
            self.clients
                .find(&claims.client_id)
                .await?
                .is_some_and(|c| claims.iat >= c.created_at)
        };
        Ok(subject_live.then_some(claims))
    }

    async fn access_token_info(&self, token: &str) -> Result<Option<Value>, OAuthError> {
        Ok(self.live_access_token(token).await?.map(|c| {
            let mut info = json!({
                "active": true,
                "token_type": "Bearer",
                "client_id": c.client_id,
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "exp": c.exp,
                "iat": c.iat,
                "jti": c.jti,
            });
            if let Some(scope) = c.scope {
                info["scope"] = json!(scope);
            }
            info
        }))
    }

    async fn refresh_token_info(&self, token: &str) -> Result<Option<Value>, OAuthError> {
        let record = self.sessions.refresh_tokens().live(token).await?;
        Ok(record.map(|r| {
            let mut info = json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": r.client_id,
                                "sub": r.user_id,
                "aud": self.sessions.audience(),
                "iss": self.issuer,
                "exp": r.expires_at,
                "iat": r.issued_at,
            });
            if let Some(scope) = r.scope {
                info["scope"] = json!(scope);
            }
            info
        }))
    }
}
