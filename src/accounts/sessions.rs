//! Sessions: a login opens a refresh family; refreshing rotates it; logout ends it.

use crate::store::StoreError;
use crate::tokens::{
    AccessGrant, AccessTokens, RefreshError, RefreshTokens, Revocations, TokenError, TokenResponse,
    FIRST_PARTY_CLIENT,
};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Sessions {
    access: AccessTokens,
    refresh: RefreshTokens,
    revocations: Revocations,
    /// `aud` of user access tokens.
    audience: String,
}

impl Sessions {
    pub fn new(
        access: AccessTokens,
        refresh: RefreshTokens,
        revocations: Revocations,
        audience: String,
    ) -> Self {
        Self {
            access,
            refresh,
            revocations,
            audience,
        }
    }

    /// Opens a first-party session for a user who has just proved their password.
    pub async fn open(&self, user_id: &str) -> Result<TokenResponse, SessionError> {
        // Sign first: without a signing key no session row is left behind.
        let sid = RefreshTokens::new_family_id();
        let access = self
            .issue("password", &sid, user_id, FIRST_PARTY_CLIENT, None)
            .await?;
        let refresh = self
            .refresh
            .start(&sid, user_id, FIRST_PARTY_CLIENT, None)
            .await?;
        Ok(TokenResponse {
            refresh_token: Some(refresh),
            ..access
        })
    }

    /// One code path for `/api/v1/auth/refresh` and `grant_type=refresh_token`.
    pub async fn refresh(&self, presented: &str, client_id: &str) -> Result<TokenResponse, SessionError> {
        let rotated = self.refresh.rotate(presented, client_id).await?;
        let access = self
            .issue(
                "refresh_token",
                &rotated.family_id,
                &rotated.user_id,
                &rotated.client_id,
                rotated.scope.clone(),
            )
            .await?;
        Ok(TokenResponse {
            refresh_token: Some(rotated.secret),
            ..access
        })
    }

    /// An access token of session `sid`.
    async fn issue(
        &self,
        grant: &'static str,
        sid: &str,
        user_id: &str,
        client_id: &str,
        scope: Option<String>,
    ) -> Result<TokenResponse, TokenError> {
        let issued = self
            .access
            .issue(AccessGrant {
                grant,
                sub: user_id.to_owned(),
                aud: self.audience.clone(),
                client_id: client_id.to_owned(),
                scope: scope.clone(),
                sid: Some(sid.to_owned()),
                ttl: None,
            })
            .await?;
        Ok(TokenResponse::bearer(issued, scope))
    }

    /// Ends the session of `refresh_token` if it is this user's.
    pub async fn logout(&self, user_id: &str, refresh_token: &str) -> Result<bool, SessionError> {
        Ok(self.refresh.revoke(refresh_token, Some(user_id)).await?)
    }

    pub async fn logout_all(&self, user_id: &str) -> Result<u64, SessionError> {
        Ok(self.refresh.revoke_all(user_id).await?)
    }

    pub fn access_tokens(&self) -> &AccessTokens {
        &self.access
    }

    pub fn refresh_tokens(&self) -> &RefreshTokens {
        &self.refresh
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }
    pub fn audience(&self) -> &str {
        &self.audience
    }
}
