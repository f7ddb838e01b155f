//! Rate-limit counters: one opaque value per key, replaced only by compare-and-swap so that
//! instances sharing the database never lose each other's updates.

use super::{Store, StoreError};

impl Store {
    pub async fn counter(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM rate_limits WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Writes `value` (or deletes, with `None`) only if the stored value is still `expected`
    /// (`None`: no row). False when another writer came first. `expires_at`: Unix seconds after
    /// which housekeeping may delete the row.
    pub async fn swap_counter(
        &self,
        key: &str,
        expected: Option<&str>,
        value: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let query = match (expected, value) {
            (None, None) => return Ok(true),
            (None, Some(value)) => sqlx::query(
                "INSERT INTO rate_limits (key, value, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .bind(expires_at),
            (Some(expected), Some(value)) => sqlx::query(
                "UPDATE rate_limits SET value = $3, expires_at = $4 WHERE key = $1 AND value = $2",
            )
            .bind(key)
            .bind(expected)
            .bind(value)
            .bind(expires_at),
            (Some(expected), None) => sqlx::query("DELETE FROM rate_limits WHERE key = $1 AND value = $2")
                .bind(key)
                .bind(expected),
        };
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }
}
