//! Users: accounts with an argon2id password hash.

use super::{Store, StoreError};
use sqlx::Connection as _;

row_struct! {
    #[derive(Debug, Clone)]
    pub struct UserRecord {
        pub id: String,
        pub email: String,
        pub password_hash: String,
        pub created_at: i64,
        pub disabled_at: Option<i64>,
    }
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub created_at: i64,
}

const COLUMNS: &str = "id, email, password_hash, created_at, disabled_at";

impl Store {
    /// Fails with `Conflict` when the email is taken.
    pub async fn insert_user(&self, new: NewUser<'_>) -> Result<(), StoreError> {
        leased!(self.writer, |c| sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(new.id)
        .bind(new.email)
        .bind(new.password_hash)
        .bind(new.created_at)
        .execute(c))?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let query = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
        leased!(self.pool, |c| sqlx::query_as(&query)
            .bind(email)
            .fetch_optional(c))
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let query = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        leased!(self.pool, |c| sqlx::query_as(&query).bind(id).fetch_optional(c))
    }

    pub async fn set_password_hash(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        leased!(self.writer, |c| sqlx::query(
            "UPDATE users SET password_hash = $1 WHERE id = $2"
        )
        .bind(hash)
        .bind(id)
        .execute(c))?;
        Ok(())
    }

    /// Disables (`Some(time)`) or re-enables (`None`) a user; their id, or `None` if there is
    /// no such email.
    pub async fn set_user_disabled(
        &self,
        email: &str,
        disabled_at: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        leased!(self.writer, |c| sqlx::query_scalar(
            "UPDATE users SET disabled_at = $1 WHERE email = $2 RETURNING id"
        )
        .bind(disabled_at)
        .bind(email)
        .fetch_optional(c))
    }

    /// Erases a user and every refresh token and session of theirs, in one transaction.
    pub async fn delete_user(&self, id: &str) -> Result<(), StoreError> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE user_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM refresh_families WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        lease.finish(Ok(()))
    }
}
