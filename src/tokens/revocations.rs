//! What this issuer knows about its access tokens and offline verifiers cannot: tokens
//! revoked one by one at `/oauth2/revoke`, sessions that have ended (logout, logout-all,
//! refresh-token revocation or reuse, the user deleted), and users who are disabled (a
//! suspension: enabled again, their sessions count again). Introspection and the issuer's
//! own bearer endpoints ask here after the signature checks.

use super::AccessClaims;
use crate::clock::Clock;
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct Revocations {
    store: Store,
    clock: Clock,
}

impl Revocations {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Refuses `claims` from now until it expires anyway. Revoking twice is fine.
    pub async fn revoke(&self, claims: &AccessClaims) -> Result<(), StoreError> {
        self.store
            .revoke_access_token(&claims.jti, claims.exp, self.clock.unix())
            .await
    }

    /// Whether a verified token still counts: not revoked, and when it belongs to a session
    /// (`sid`), that session not ended and its user neither deleted nor disabled. One
    /// indexed query either way.
    pub async fn honours(&self, claims: &AccessClaims) -> Result<bool, StoreError> {
        match &claims.sid {
            Some(sid) => self.store.session_token_live(sid, &claims.sub, &claims.jti).await,
            None => Ok(!self.store.access_token_revoked(&claims.jti).await?),
        }
    }
}
