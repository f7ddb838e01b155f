//! Login sessions: a browser's login at the hosted page, held in a cookie, so that the next
//! authorization of the same user needs no password. Stored in the database (every instance
//! sees them); the cookie holds 256 random bits, stored only as their SHA-256.

use std::time::Duration;

use crate::clock::Clock;
use crate::store::{LoginSessionRecord, Store, StoreError};
use crate::tokens::Secret;

pub type LoginSession = LoginSessionRecord;

#[derive(Clone)]
pub struct LoginSessions {
    store: Store,
    ttl: Duration,
    clock: Clock,
}

impl LoginSessions {
    pub fn new(store: Store, ttl: Duration, clock: Clock) -> Self {
        Self { store, ttl, clock }
    }

    /// How long a login session lasts (the cookie's Max-Age).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for a user who has just typed their password: always a new id and a new
    /// cookie, never a presented one (no session fixation). The browser's `previous` session
    /// ends: the same user's tokens move to the new one; another user's end with it.
    /// Returns the cookie's value.
    pub async fn open(
        &self,
        user_id: &str,
        previous: Option<&LoginSession>,
    ) -> Result<(Secret, LoginSession), StoreError> {
        let cookie = Secret::generate();
        let now = self.clock.unix();
        let session = LoginSessionRecord {
            id: uuid::Uuid::new_v4().to_string(),
            token_hash: Secret::stored_form(cookie.expose()),
            user_id: user_id.to_owned(),
            auth_time: now,
            expires_at: now + self.ttl.as_secs() as i64,
        };
        self.store.replace_login_session(&session, previous, now).await?;
        if let Some(old) = previous {
            tracing::info!(target: "audit", event = "login_session_ended", user_id = %old.user_id, sid = %old.id);
        }
        tracing::info!(target: "audit", event = "login_session_opened", user_id = %user_id, sid = %session.id);
        Ok((cookie, session))
    }

    /// The live session a cookie value names (unexpired, not ended, its user enabled).
    pub async fn find(&self, cookie: &str) -> Result<Option<LoginSession>, StoreError> {
        let hash = Secret::stored_form(cookie);
        self.store.live_login_session(&hash, self.clock.unix()).await
    }

    /// Ends a session and the token sessions opened from it.
    pub async fn end(&self, session: &LoginSession) -> Result<(), StoreError> {
        if self
            .store
            .end_login_session(&session.id, self.clock.unix())
            .await?
        {
            tracing::info!(target: "audit", event = "login_session_ended", user_id = %session.user_id, sid = %session.id);
        }
        Ok(())
    }
}
