//! Registered clients, the jti of accepted client assertions, and revoked access tokens.

use super::changes::{bump, Counted};
use super::{Store, StoreError};
use sqlx::Connection as _;

row_struct! {
    /// A client as stored. Lists are space-separated. The schema holds at most one of
    /// `secret_hash` and `public_jwk`; a public client has neither.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ClientRecord {
        pub id: String,
        pub secret_hash: Option<String>,
        pub public_jwk: Option<String>,
        pub grant_types: String,
        pub scopes: String,
        pub audiences: String,
        pub access_token_ttl: Option<i64>,
        pub created_at: i64,
        pub secret_rotated_at: Option<i64>,
        pub redirect_uris: String,
        pub post_logout_redirect_uris: String,
        /// 1: skips the consent page.
        pub first_party: i64,
        /// `RS256` or `EdDSA`.
        pub id_token_alg: String,
    }
}

const COLUMNS: &str = "id, secret_hash, public_jwk, grant_types, scopes, audiences, access_token_ttl, \
                       created_at, secret_rotated_at, redirect_uris, post_logout_redirect_uris, \
                       first_party, id_token_alg";

impl Store {
    /// Stores a new client; `Conflict` if the id is taken.
    pub async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let insert = format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        leased!(self.writer, |c| sqlx::query(&insert)
            .bind(&client.id)
            .bind(&client.secret_hash)
            .bind(&client.public_jwk)
            .bind(&client.grant_types)
            .bind(&client.scopes)
            .bind(&client.audiences)
            .bind(client.access_token_ttl)
            .bind(client.created_at)
            .bind(client.secret_rotated_at)
            .bind(&client.redirect_uris)
            .bind(&client.post_logout_redirect_uris)
            .bind(client.first_party)
            .bind(&client.id_token_alg)
            .execute(c))?;
        Ok(())
    }

    /// The one read the token endpoint makes per request.
    pub async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let query = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
        leased!(self.pool, |c| sqlx::query_as(&query).bind(id).fetch_optional(c))
    }

    pub async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let query = format!("SELECT {COLUMNS} FROM clients ORDER BY id");
        leased!(self.pool, |c| sqlx::query_as(&query).fetch_all(c))
    }

    /// Returns false if there was no such client.
    pub async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() == 1;
        if deleted {
            bump(&mut tx, Counted::Clients).await?;
        }
        tx.commit().await?;
        lease.finish(Ok(deleted))
    }

    /// Replaces a secret client's secret hash; false if there is no such secret client.
    pub async fn set_client_secret(&self, id: &str, secret_hash: &str, now: i64) -> Result<bool, StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = $1, secret_rotated_at = $2 WHERE id = $3 AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let rotated = done.rows_affected() == 1;
        if rotated {
            bump(&mut tx, Counted::Clients).await?;
        }
        tx.commit().await?;
        lease.finish(Ok(rotated))
    }

    /// Records an accepted assertion's jti; `Conflict` if it was seen before (a replay).
    /// Expired entries of the client go first, so the table stays small.
    pub async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut lease = self.writer.lease().await?;
        sqlx::query("DELETE FROM client_assertions WHERE client_id = $1 AND expires_at < $2")
            .bind(client_id)
            .bind(now)
            .execute(&mut *lease)
            .await?;
        let inserted =
            sqlx::query("INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)")
                .bind(client_id)
                .bind(jti)
                .bind(expires_at)
                .execute(&mut *lease)
                .await;
        lease.finish(inserted.map(|_| ()))
    }

    /// Records a revoked access token until it expires anyway. Revoking twice is fine.
    pub async fn revoke_access_token(&self, jti: &str, expires_at: i64, now: i64) -> Result<(), StoreError> {
        let mut lease = self.writer.lease().await?;
        sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *lease)
            .await?;
        let mut tx = lease.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        // Revoked before: nothing changed, so nobody need read the list again.
        if inserted.rows_affected() == 1 {
            bump(&mut tx, Counted::RevokedAccessTokens).await?;
        }
        tx.commit().await?;
        lease.finish(Ok(()))
    }

    /// The revoked access tokens that have not expired, unless there are more than `limit`.
    pub async fn revoked_access_tokens(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let jtis: Vec<(String,)> = leased!(self.pool, |c| sqlx::query_as(
            "SELECT jti FROM revoked_access_tokens WHERE expires_at >= $1 LIMIT $2"
        )
        .bind(now)
        .bind(limit + 1)
        .fetch_all(c))?;
        Ok((jtis.len() as i64 <= limit).then(|| jtis.into_iter().map(|(jti,)| jti).collect()))
    }

    pub async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = leased!(self.pool, |c| sqlx::query(
            "SELECT 1 FROM revoked_access_tokens WHERE jti = $1"
        )
        .bind(jti)
        .fetch_optional(c))?;
        Ok(row.is_some())
    }
}
