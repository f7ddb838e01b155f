//! The authorization-code flow's rows: login sessions (a browser's login at the hosted page),
//! authorization codes, and remembered consents. Secrets are stored as SHA-256 hashes only.

use super::sessions::{insert_family, insert_token};
use super::{NewFamily, Store, StoreError};
use sqlx::Connection as _;

row_struct! {
    #[derive(Debug, Clone)]
    pub struct LoginSessionRecord {
        /// Public: the `sid` of ID tokens.
        pub id: String,
        pub token_hash: String,
        pub user_id: String,
        /// When the user last typed their password (Unix seconds).
        pub auth_time: i64,
        pub expires_at: i64,
    }
}

row_struct! {
    #[derive(Debug, Clone)]
    pub struct CodeRecord {
        pub code_hash: String,
        pub client_id: String,
        pub user_id: String,
        pub login_session_id: String,
        pub redirect_uri: String,
        pub code_challenge: String,
        pub scope: Option<String>,
        pub nonce: Option<String>,
        pub auth_time: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        pub family_id: Option<String>,
    }
}

/// A code's exchange: the refresh family it opens, and its first refresh token if the client
/// gets one.
pub struct Redemption<'a> {
    pub family: NewFamily<'a>,
    pub refresh_hash: Option<&'a str>,
    pub refresh_expires_at: i64,
}

const CODE_COLUMNS: &str = "code_hash, client_id, user_id, login_session_id, redirect_uri, \
                            code_challenge, scope, nonce, auth_time, expires_at, used_at, family_id";

impl Store {
    /// The login session a cookie names, if it is live at `now` and its user enabled.
    pub async fn live_login_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<LoginSessionRecord>, StoreError> {
        leased!(self.pool, |c| sqlx::query_as(
            "SELECT s.id, s.token_hash, s.user_id, s.auth_time, s.expires_at \
             FROM login_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 \
             AND u.disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(c))
    }

    /// Ends a login session and every session (refresh family) opened from it; false if it
    /// had ended already.
    pub async fn end_login_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let ended = end_login_session(&mut tx, id, now).await?;
        tx.commit().await?;
        lease.finish(Ok(ended))
    }

    /// Stores a new login session for a browser and ends its `previous` one, at once. The
    /// same user logging in again hands the old session's token sessions and codes over to
    /// the new one (they end with it); another user's end now.
    pub async fn replace_login_session(
        &self,
        session: &LoginSessionRecord,
        previous: Option<&LoginSessionRecord>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        sqlx::query(
            "INSERT INTO login_sessions (id, token_hash, user_id, auth_time, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id)
        .bind(&session.token_hash)
        .bind(&session.user_id)
        .bind(session.auth_time)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        if let Some(old) = previous {
            if old.user_id == session.user_id {
                for table in ["refresh_families", "authorization_codes"] {
                    sqlx::query(&format!(
                        "UPDATE {table} SET login_session_id = $1 WHERE login_session_id = $2"
                    ))
                    .bind(&session.id)
                    .bind(&old.id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            end_login_session(&mut tx, &old.id, now).await?;
        }
        tx.commit().await?;
        lease.finish(Ok(()))
    }

    pub async fn insert_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        let insert = format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        leased!(self.writer, |c| sqlx::query(&insert)
            .bind(&code.code_hash)
            .bind(&code.client_id)
            .bind(&code.user_id)
            .bind(&code.login_session_id)
            .bind(&code.redirect_uri)
            .bind(&code.code_challenge)
            .bind(&code.scope)
            .bind(&code.nonce)
            .bind(code.auth_time)
            .bind(code.expires_at)
            .bind(code.used_at)
            .bind(&code.family_id)
            .execute(c))?;
        Ok(())
    }

    pub async fn code(&self, code_hash: &str) -> Result<Option<CodeRecord>, StoreError> {
        let query = format!("SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1");
        leased!(self.pool, |c| sqlx::query_as(&query)
            .bind(code_hash)
            .fetch_optional(c))
    }

    /// Marks a code used without exchanging it (a failed exchange spends it); false if it was
    /// used already.
    pub async fn spend_code(&self, code_hash: &str, now: i64) -> Result<bool, StoreError> {
        let done = leased!(self.writer, |c| sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(code_hash)
        .execute(c))?;
        Ok(done.rows_affected() == 1)
    }

    /// Exchanges a code: marks it used, naming the family it opens, and opens that family, at
    /// once. False, changing nothing, when the code was used already: of concurrent exchanges
    /// (on any instance) exactly one wins, as with refresh-token rotation. The login session
    /// must still be live, or a logout that came between the code and its exchange would
    /// miss the new tokens.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        redemption: Redemption<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let marked = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1, family_id = $2 \
             WHERE code_hash = $3 AND used_at IS NULL AND login_session_id IN \
             (SELECT id FROM login_sessions WHERE id = $4 AND ended_at IS NULL AND expires_at > $1)",
        )
        .bind(now)
        .bind(redemption.family.id)
        .bind(code_hash)
        .bind(redemption.family.login_session_id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            tx.rollback().await?;
            return lease.finish(Ok(false));
        }
        insert_family(&mut tx, &redemption.family, now).await?;
        if let Some(hash) = redemption.refresh_hash {
            insert_token(
                &mut tx,
                hash,
                redemption.family.id,
                now,
                redemption.refresh_expires_at,
            )
            .await?;
        }
        tx.commit().await?;
        lease.finish(Ok(true))
    }

    /// The scopes `user_id` approved for `client_id`, space-separated.
    pub async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = leased!(self.pool, |c| sqlx::query_as(
            "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2"
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_optional(c))?;
        Ok(row.map(|(scope,)| scope))
    }

    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        leased!(self.writer, |c| sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, \
             granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(c))?;
        Ok(())
    }
}

/// Ends a login session and the token sessions opened from it; false if it had ended.
async fn end_login_session(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let ended = sqlx::query("UPDATE login_sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1 WHERE login_session_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(ended.rows_affected() == 1)
}
