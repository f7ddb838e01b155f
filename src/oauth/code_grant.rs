//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): a code, once, by the
//! client it was issued to, with the redirect URI it went to and the verifier of its
//! challenge. A code presented again ends what its first exchange opened (RFC 6749 §4.1.2).

use super::authorize::{code_hash, pkce_matches};
use super::clients::{Client, GrantType};
use super::{FormParams, OAuth, OAuthError};
use crate::accounts::AccountError;
use crate::store::{NewFamily, Redemption};
use crate::tokens::{AccessGrant, IdGrant, RefreshTokens, TokenResponse};

impl OAuth {
    pub(super) async fn exchange_code(
        &self,
        client: &Client,
        params: &FormParams,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params.require("code")?;
        let redirect_uri = params.require("redirect_uri")?;
        let verifier = params.require("code_verifier")?;
        let invalid = || {
            OAuthError::InvalidGrant("the code is invalid, expired or used, or was issued for another client, redirect URI or code verifier".into())
        };
        let hash = code_hash(code);
        let record = self.store.code(&hash).await?.ok_or_else(invalid)?;
        let now = self.clock.unix();
        if record.used_at.is_some() {
            self.replayed(&record.client_id, record.family_id.as_deref())
                .await?;
            return Err(invalid());
        }
        // Another client's try leaves the code alone: a public client's id is no secret,
        // and whoever saw a code must not be able to spend it for its owner.
        if record.client_id != client.id {
            tracing::warn!(target: "audit", event = "authorization_code_refused", client_id = %client.id,
                reason = "issued to another client");
            return Err(invalid());
        }
        let bound = record.redirect_uri == redirect_uri && pkce_matches(verifier, &record.code_challenge);
        if record.expires_at <= now || !bound {
            // One try per code: a wrong verifier cannot be retried.
            self.store.spend_code(&hash, now).await?;
            tracing::info!(target: "audit", event = "authorization_code_refused", client_id = %client.id,
                reason = if bound { "expired" } else { "redirect URI or verifier mismatch" });
            return Err(invalid());
        }
        let user = match self.accounts.find(&record.user_id).await {
            Ok(user) => user,
            Err(AccountError::NotFound) => return Err(invalid()),
            Err(AccountError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(OAuthError::Server(e.to_string())),
        };
        // Signed before anything is stored: without a signing key no session is left behind.
        let family_id = RefreshTokens::new_family_id();
        let scope = record.scope.clone();
        let scopes: Vec<&str> = scope.as_deref().unwrap_or_default().split(' ').collect();
        let access = self
            .sessions
            .access_tokens()
            .issue(AccessGrant {
                grant: "authorization_code",
                sub: user.id.clone(),
                aud: self.sessions.audience().to_owned(),
                client_id: client.id.clone(),
                scope: scope.clone(),
                sid: Some(family_id.clone()),
                ttl: client.access_token_ttl,
            })
            .await?;
        let id_token = match scopes.contains(&"openid") {
            true => Some(
                self.id_tokens
                    .issue(IdGrant {
                        sub: &user.id,
                        client_id: &client.id,
                        alg: client.id_token_alg,
                        auth_time: record.auth_time,
                        nonce: record.nonce.as_deref(),
                        sid: &record.login_session_id,
                        access_token: &access.token,
                        email: scopes.contains(&"email").then_some(user.email.as_str()),
                    })
                    .await?,
            ),
            false => None,
        };
        let refresh = client
            .allows(GrantType::RefreshToken)
            .then(|| self.sessions.refresh_tokens().first_token());
        let redemption = Redemption {
            family: NewFamily {
                id: &family_id,
                user_id: &user.id,
                client_id: &client.id,
                scope: scope.as_deref(),
                login_session_id: Some(&record.login_session_id),
            },
            refresh_hash: refresh.as_ref().map(|(_, hash, _)| hash.as_str()),
            refresh_expires_at: refresh.as_ref().map_or(0, |(_, _, at)| *at),
        };
        if !self.store.redeem_code(&hash, redemption, now).await? {
            // Another exchange won (on this instance or another), or the login ended.
            if let Some(winner) = self.store.code(&hash).await?.filter(|c| c.used_at.is_some()) {
                self.replayed(&winner.client_id, winner.family_id.as_deref())
                    .await?;
            }
            return Err(invalid());
        }
        tracing::info!(target: "audit", event = "token_issued", grant = "authorization_code", client_id = %client.id, user_id = %user.id);
        let mut response = TokenResponse::bearer(access, scope);
        response.refresh_token = refresh.map(|(secret, _, _)| secret);
        response.id_token = id_token;
        Ok(response)
    }

    /// A used code came back: whoever holds it may be an attacker, so what it opened ends.
    async fn replayed(&self, client_id: &str, family_id: Option<&str>) -> Result<(), OAuthError> {
        if let Some(family_id) = family_id {
            self.sessions.refresh_tokens().end_session(family_id).await?;
        }
        metrics::counter!("issuer_authorization_code_reuse_total").increment(1);
        tracing::warn!(target: "audit", event = "authorization_code_reused", client_id = %client_id,
            family_id = family_id.unwrap_or("-"), "a used authorization code came back; its tokens are revoked");
        Ok(())
    }
}
