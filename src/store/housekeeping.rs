//! Rows that no longer matter, deleted every few minutes by every instance (the deletes are
//! idempotent, so instances need not take turns): expired refresh tokens (an expired token
//! is refused whether or not it was used, so reuse detection loses nothing) and the sessions
//! left without one, expired client-assertion and revoked-access-token jtis, and rate-limit
//! counters past their time, authorization codes and login sessions.

use std::time::Duration;

use super::{Store, StoreError};
use crate::clock::Clock;

impl Store {
    /// Deletes what expired before `now` (Unix seconds); how many rows went.
    pub async fn prune_expired(&self, now: i64) -> Result<u64, StoreError> {
        let statements = [
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
            "DELETE FROM refresh_families WHERE NOT EXISTS \
             (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id) \
             AND created_at < $1",
            "DELETE FROM client_assertions WHERE expires_at < $1",
            "DELETE FROM revoked_access_tokens WHERE expires_at < $1",
            "DELETE FROM rate_limits WHERE expires_at < $1",
            // Used codes are kept a day past their minute, so that a late replay still ends
            // what the code was exchanged for.
            "DELETE FROM authorization_codes WHERE expires_at < $1 - 86400",
            // A login session's codes go with it: it is kept a day too.
            "DELETE FROM login_sessions WHERE expires_at < $1 - 86400 OR ended_at < $1 - 86400",
            // Milliseconds, written by an instance of a version before migration 0005 during a
            // rolling upgrade: no expiry in seconds lies that far ahead.
            "DELETE FROM rate_limits WHERE expires_at > $1 * 100",
        ];
        let mut pruned = 0;
        for sql in statements {
            pruned += leased!(self.writer, |c| sqlx::query(sql).bind(now).execute(c))?.rows_affected();
        }
        Ok(pruned)
    }

    /// Runs [`Store::prune_expired`] every `every` for as long as the process runs.
    pub fn spawn_housekeeping(&self, every: Duration, clock: Clock) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                store.pool.release_idle();
                store.writer.release_idle();
                let now = clock.unix();
                match store.prune_expired(now).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned expired rows"),
                    Err(e) => tracing::warn!(error = %e, "cannot prune expired rows"),
                }
            }
        });
    }
}
