//! `POST /oauth2/revoke` (RFC 7009). A refresh token ends its session; an access token's
//! `jti` is recorded until it expires, so introspection and this issuer's own endpoints refuse
//! it (verifiers that check offline cannot know). Unknown or malformed tokens: 200, nothing
//! done. A client may revoke only tokens issued to it.

use super::{BasicCredentials, FormParams, OAuth, OAuthError};

impl OAuth {
    pub async fn revoke(
        &self,
        params: &FormParams,
        basic: Option<BasicCredentials>,
    ) -> Result<(), OAuthError> {
        let caller = self.caller("/oauth2/revoke", params, basic).await?;
        let token = params.require("token")?;
        let not_yours = || OAuthError::UnauthorizedClient("the token was not issued to this client".into());
        let refresh = self.sessions.refresh_tokens();
        if let Some(record) = refresh.lookup(token).await? {
            if record.client_id != caller.client_id() {
                return Err(not_yours());
            }
            refresh.end_session(&record.family_id).await?;
            tracing::info!(target: "audit", event = "token_revoked", token_type = "refresh_token",
                client_id = %record.client_id, user_id = %record.user_id, family_id = %record.family_id);
            return Ok(());
        }
        if let Ok(claims) = self.sessions.access_tokens().verify(token, None) {
            if claims.client_id != caller.client_id() {
                return Err(not_yours());
            }
            self.sessions.revocations().revoke(&claims).await?;
            tracing::info!(target: "audit", event = "token_revoked", token_type = "access_token",
                client_id = %claims.client_id, jti = %claims.jti);
        }
        Ok(())
    }
}
