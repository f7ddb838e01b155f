//! What this issuer knows about its access tokens and offline verifiers cannot: tokens
//! revoked one by one at `/oauth2/revoke`, sessions that have ended (logout, logout-all,
//! refresh-token revocation or reuse, the user deleted), and users who are disabled (a
//! suspension: enabled again, their sessions count again). Introspection and the issuer's
//! own bearer endpoints ask here after the signature checks.
//!
//! Tokens revoked one by one are few and short-lived: a running instance keeps their jtis in
//! memory while the change counters say the list is unchanged (`store::Changes`), so a
//! client's token costs no query. A revocation counts at once on the instance that made it,
//! and within `STALE_AFTER` (2 s) everywhere else.

use std::collections::HashSet;
use std::sync::Arc;

use super::AccessClaims;
use crate::clock::Clock;
use crate::store::{Changes, Store, StoreError};

/// Past this many live revoked tokens, each check asks the database instead.
const IN_MEMORY_AT_MOST: i64 = 100_000;

/// The revoked jtis as read under one generation; `None` when there were too many to keep.
struct Revoked {
    generation: u64,
    jtis: Option<HashSet<String>>,
}

#[derive(Clone)]
pub struct Revocations {
    store: Store,
    clock: Clock,
    changes: Changes,
    /// Async: one task reads the list again while the others wait for it.
    revoked: Arc<tokio::sync::Mutex<Option<Revoked>>>,
}

impl Revocations {
    pub fn new(store: Store, clock: Clock, changes: Changes) -> Self {
        Self {
            store,
            clock,
            changes,
            revoked: Arc::default(),
        }
    }

    /// Refuses `claims` from now until it expires anyway. Revoking twice is fine.
    pub async fn revoke(&self, claims: &AccessClaims) -> Result<(), StoreError> {
        self.store
            .revoke_access_token(&claims.jti, claims.exp, self.clock.unix())
            .await?;
        if let Some(jtis) = self.revoked.lock().await.as_mut().and_then(|r| r.jtis.as_mut()) {
            jtis.insert(claims.jti.clone());
        }
        Ok(())
    }

    /// Whether a verified token still counts: not revoked, and when it belongs to a session
    /// (`sid`), that session not ended and its user neither deleted nor disabled (one
    /// indexed query).
    pub async fn honours(&self, claims: &AccessClaims) -> Result<bool, StoreError> {
        match &claims.sid {
            Some(sid) => self.store.session_token_live(sid, &claims.sub, &claims.jti).await,
            None => Ok(!self.revoked(&claims.jti).await?),
        }
    }

    async fn revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let Some(generation) = self.changes.current().map(|g| g.revoked_access_tokens) else {
            return self.store.access_token_revoked(jti).await;
        };
        let mut revoked = self.revoked.lock().await;
        let known = match revoked.as_ref().filter(|r| r.generation == generation) {
            Some(known) => known,
            None => {
                let jtis = self
                    .store
                    .revoked_access_tokens(self.clock.unix(), IN_MEMORY_AT_MOST)
                    .await?;
                revoked.insert(Revoked {
                    generation,
                    jtis: jtis.map(|j| j.into_iter().collect()),
                })
            }
        };
        let answer = known.jtis.as_ref().map(|jtis| jtis.contains(jti));
        drop(revoked);
        match answer {
            Some(revoked) => Ok(revoked),
            None => self.store.access_token_revoked(jti).await,
        }
    }
}
