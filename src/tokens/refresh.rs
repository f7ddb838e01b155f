//! Refresh tokens: 256 random bits, stored only as SHA-256 hashes, grouped in families (one
//! per login). Every use rotates the token; a second use of a used token ends its family.

use std::time::Duration;

use super::Secret;
use crate::clock::Clock;
use crate::store::{NewFamily, RefreshRecord, Store, StoreError};

/// A refresh token in plain text, as handed to the client once.
pub type RefreshSecret = Secret;

/// The stored form of a refresh token.
fn token_hash(token: &str) -> String {
    Secret::stored_form(token)
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token unknown, expired or revoked")]
    Invalid,
    /// A used token came back: the whole family was revoked.
    #[error("refresh token reused; session {family_id} revoked")]
    Reused { family_id: String, user_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of a successful rotation.
#[derive(Debug)]
pub struct Rotated {
    pub secret: RefreshSecret,
    pub family_id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: Option<String>,
}

#[derive(Clone)]
pub struct RefreshTokens {
    store: Store,
    ttl: Duration,
    clock: Clock,
}

impl RefreshTokens {
    pub fn new(store: Store, ttl: Duration, clock: Clock) -> Self {
        Self { store, ttl, clock }
    }

    /// A new session's id: random (UUID v4, 122 bits), so it can travel in tokens as `sid`.
    pub fn new_family_id() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// Starts family `family_id` for a login and returns its first token.
    pub async fn start(
        &self,
        family_id: &str,
        user_id: &str,
        client_id: &str,
        scope: Option<&str>,
    ) -> Result<RefreshSecret, StoreError> {
        let secret = RefreshSecret::generate();
        let now = self.clock.unix();
        let family = NewFamily {
            id: family_id,
            user_id,
            client_id,
            scope,
            login_session_id: None,
        };
        self.store
            .insert_family(
                family,
                &token_hash(secret.expose()),
                now,
                now + self.ttl.as_secs() as i64,
            )
            .await?;
        Ok(secret)
    }

    /// A new family's first token, to be stored by the caller (a code's exchange opens the
    /// family in the same transaction that spends the code): the token, its hash and expiry.
    pub fn first_token(&self) -> (RefreshSecret, String, i64) {
        let secret = RefreshSecret::generate();
        let hash = token_hash(secret.expose());
        (secret, hash, self.clock.unix() + self.ttl.as_secs() as i64)
    }

    /// Exchanges a refresh token of `client_id` for its successor.
    pub async fn rotate(&self, presented: &str, client_id: &str) -> Result<Rotated, RefreshError> {
        let hash = token_hash(presented);
        let secret = RefreshSecret::generate();
        let now = self.clock.unix();
        let rotated = self
            .store
            .rotate_refresh_token(
                &hash,
                &token_hash(secret.expose()),
                client_id,
                now,
                now + self.ttl.as_secs() as i64,
            )
            .await?;
        if let Some(family) = rotated {
            return Ok(Rotated {
                secret,
                family_id: family.family_id,
                user_id: family.user_id,
                client_id: family.client_id,
                scope: family.scope,
            });
        }
        // Not rotated: unknown, expired, another client's, its session ended, or used. A used
        // token coming back (used before, or by a concurrent request that won) means whoever
        // holds the family's newest token may be an attacker: end the session.
        let record = self
            .store
            .refresh_token(&hash)
            .await?
            .filter(|r| r.client_id == client_id && r.session_live(now) && r.used_at.is_some())
            .ok_or(RefreshError::Invalid)?;
        self.store.revoke_family(&record.family_id, now).await?;
        metrics::counter!("issuer_refresh_reuse_detected_total").increment(1);
        tracing::warn!(target: "audit", event = "refresh_reuse_detected", family_id = %record.family_id,
            user_id = %record.user_id, "refresh token reused; its session is revoked");
        Err(RefreshError::Reused {
            family_id: record.family_id,
            user_id: record.user_id,
        })
    }

    /// Ends the session a refresh token belongs to, if it belongs to `user_id` (any user when
    /// `None`). Unknown tokens are ignored: the caller learns nothing about them.
    pub async fn revoke(&self, presented: &str, user_id: Option<&str>) -> Result<bool, StoreError> {
        let Some(record) = self.lookup(presented).await? else {
            return Ok(false);
        };
        if user_id.is_some_and(|u| u != record.user_id) {
            return Ok(false);
        }
        self.end_session(&record.family_id).await
    }

    /// The stored record of a presented token, live or not.
    pub async fn lookup(&self, presented: &str) -> Result<Option<RefreshRecord>, StoreError> {
        self.store.refresh_token(&token_hash(presented)).await
    }

    /// The record of a token that would refresh now: unused, unexpired, its session and user
    /// active. What introspection calls active.
    pub async fn live(&self, presented: &str) -> Result<Option<RefreshRecord>, StoreError> {
        let now = self.clock.unix();
        Ok(self
            .lookup(presented)
            .await?
            .filter(|r| r.used_at.is_none() && r.session_live(now)))
    }

    pub async fn end_session(&self, family_id: &str) -> Result<bool, StoreError> {
        self.store.revoke_family(family_id, self.clock.unix()).await
    }
    /// Ends every session of a user.
    pub async fn revoke_all(&self, user_id: &str) -> Result<u64, StoreError> {
        self.store.revoke_user_families(user_id, self.clock.unix()).await
    }
}
