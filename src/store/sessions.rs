//! Refresh families (sessions) and their refresh tokens, stored as hashes.

use super::{Store, StoreError};
use sqlx::Connection as _;

row_struct! {
    /// A stored refresh token with what rotation needs to decide.
    #[derive(Debug, Clone)]
    pub struct RefreshRecord {
        pub family_id: String,
        pub user_id: String,
        pub client_id: String,
        pub scope: Option<String>,
        pub issued_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        pub family_revoked_at: Option<i64>,
        pub user_disabled_at: Option<i64>,
    }
}

impl RefreshRecord {
    /// Unexpired, its session not ended, its user not disabled (whether used or not).
    pub fn session_live(&self, now: i64) -> bool {
        self.family_revoked_at.is_none() && self.user_disabled_at.is_none() && self.expires_at > now
    }
}

row_struct! {
    /// The session a refresh token was rotated in, and what it was granted.
    #[derive(Debug)]
    pub struct RotatedFamily {
        pub family_id: String,
        pub user_id: String,
        pub client_id: String,
        pub scope: Option<String>,
    }
}

/// Marks a live, unused refresh token of a client's open session used ($1 now, $2 its hash,
/// $3 the client), returning its family: the rule of a rotation, for both databases.
macro_rules! mark_refresh_token {
    () => {
        "UPDATE refresh_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
         AND family_id IN (SELECT f.id FROM refresh_families f JOIN users u ON u.id = f.user_id \
             WHERE f.revoked_at IS NULL AND u.disabled_at IS NULL AND f.client_id = $3) \
         RETURNING family_id"
    };
}

macro_rules! select_family {
    () => {
        "SELECT f.id AS family_id, f.user_id, f.client_id, f.scope FROM refresh_families f"
    };
}

pub struct NewFamily<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
    /// The hosted page's login session the family was opened from, if any.
    pub login_session_id: Option<&'a str>,
}

impl Store {
    /// Starts a session: a family and its first refresh token.
    pub async fn insert_family(
        &self,
        family: NewFamily<'_>,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        insert_family(&mut tx, &family, now).await?;
        insert_token(&mut tx, token_hash, family.id, now, expires_at).await?;
        tx.commit().await?;
        lease.finish(Ok(()))
    }

    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        leased!(self.pool, |c| sqlx::query_as(
            "SELECT t.family_id, f.user_id, f.client_id, f.scope, t.issued_at, t.expires_at, \
                    t.used_at, f.revoked_at AS family_revoked_at, u.disabled_at AS user_disabled_at \
             FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id \
             JOIN users u ON u.id = f.user_id \
             WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(c))
    }

    /// Marks `old_hash` used and stores `new_hash` after it in its session, if `old_hash` is
    /// unused, unexpired and of an open session of `client_id` whose user is enabled; returns
    /// the session then, and changes nothing otherwise. Of concurrent callers exactly one
    /// wins: the conditional update takes the row lock on PostgreSQL, the write lock on
    /// SQLite. PostgreSQL does it all in one statement (one round trip, one commit).
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        client_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<RotatedFamily>, StoreError> {
        if self.postgres {
            // Read to its end (`pool.rs`): PostgreSQL runs the unreferenced INSERT after it
            // sent the row, so the INSERT's error would come after it.
            let rotated: Vec<RotatedFamily> = leased!(self.writer, |c| sqlx::query_as(concat!(
                "WITH marked AS (",
                mark_refresh_token!(),
                "), added AS (INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) \
                 SELECT $4, family_id, $1, $5 FROM marked) ",
                select_family!(),
                " JOIN marked m ON m.family_id = f.id"
            ))
            .bind(now)
            .bind(old_hash)
            .bind(client_id)
            .bind(new_hash)
            .bind(expires_at)
            .fetch_all(c))?;
            return Ok(rotated.into_iter().next());
        }
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let marked: Option<(String,)> = sqlx::query_as(mark_refresh_token!())
            .bind(now)
            .bind(old_hash)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((family_id,)) = marked else {
            tx.rollback().await?;
            return lease.finish(Ok(None));
        };
        insert_token(&mut tx, new_hash, &family_id, now, expires_at).await?;
        let family = sqlx::query_as(concat!(select_family!(), " WHERE f.id = $1"))
            .bind(&family_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        lease.finish(Ok(Some(family)))
    }

    /// Whether an access token of session `sid` still counts: the session open, its user
    /// `sub` present and enabled, the token's `jti` not revoked. Primary-key lookups only.
    pub async fn session_token_live(&self, sid: &str, sub: &str, jti: &str) -> Result<bool, StoreError> {
        let row = leased!(self.pool, |c| sqlx::query(
            "SELECT 1 FROM refresh_families f JOIN users u ON u.id = f.user_id \
             WHERE f.id = $1 AND f.user_id = $2 AND f.revoked_at IS NULL AND u.disabled_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = $3)",
        )
        .bind(sid)
        .bind(sub)
        .bind(jti)
        .fetch_optional(c))?;
        Ok(row.is_some())
    }

    /// Ends one session; false if it was already ended.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<bool, StoreError> {
        let done = leased!(self.writer, |c| sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
        )
        .bind(now)
        .bind(family_id)
        .execute(c))?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every session of a user, and their logins at the hosted page; returns how many
    /// sessions were open.
    pub async fn revoke_user_families(&self, user_id: &str, now: i64) -> Result<u64, StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE login_sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        lease.finish(Ok(done.rows_affected()))
    }
}

pub(super) async fn insert_family(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    family: &NewFamily<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_families (id, user_id, client_id, scope, created_at, login_session_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(family.id)
    .bind(family.user_id)
    .bind(family.client_id)
    .bind(family.scope)
    .bind(now)
    .bind(family.login_session_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token_hash: &str,
    family_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(family_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
