//! Rate-limit counters: one opaque value per key, replaced only by compare-and-swap so that
//! instances sharing the database never lose each other's updates.
//!
//! On PostgreSQL a counter's write commits without waiting for its WAL flush
//! (`synchronous_commit` off for that statement's own transaction, by `set_config(…, true)`
//! joined in). A counter is worth a disk flush to no one: a database crash may lose the last
//! fraction of a second of spends, which hands those budgets back. Waiting, one client's
//! batch of spends cost a flush (3 ms on the bench machine's disk) instead of a round trip
//! (0.1 ms): BENCHMARKS.md, round 5.

use super::{Store, StoreError};

/// A one-row table that, joined into a PostgreSQL statement, turns `synchronous_commit` off
/// for that statement's own transaction.
macro_rules! async_commit {
    () => {
        "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"
    };
}

/// The compare-and-swap statements: (insert, update, delete), for PostgreSQL or SQLite.
fn swaps(postgres: bool) -> [&'static str; 3] {
    if postgres {
        [
            concat!(
                "INSERT INTO rate_limits (key, value, expires_at) SELECT $1, $2, $3 FROM ",
                async_commit!(),
                " ON CONFLICT (key) DO NOTHING"
            ),
            concat!(
                "UPDATE rate_limits SET value = $3, expires_at = $4 FROM ",
                async_commit!(),
                " WHERE key = $1 AND value = $2"
            ),
            concat!(
                "DELETE FROM rate_limits USING ",
                async_commit!(),
                " WHERE key = $1 AND value = $2"
            ),
        ]
    } else {
        [
            "INSERT INTO rate_limits (key, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
            "UPDATE rate_limits SET value = $3, expires_at = $4 WHERE key = $1 AND value = $2",
            "DELETE FROM rate_limits WHERE key = $1 AND value = $2",
        ]
    }
}

impl Store {
    pub async fn counter(&self, key: &str) -> Result<Option<String>, StoreError> {
        leased!(self.pool, |c| sqlx::query_scalar(
            "SELECT value FROM rate_limits WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(c))
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
        let [insert, update, delete] = swaps(self.postgres);
        let query = match (expected, value) {
            (None, None) => return Ok(true),
            (None, Some(value)) => sqlx::query(insert).bind(key).bind(value).bind(expires_at),
            (Some(expected), Some(value)) => sqlx::query(update)
                .bind(key)
                .bind(expected)
                .bind(value)
                .bind(expires_at),
            (Some(expected), None) => sqlx::query(delete).bind(key).bind(expected),
        };
        Ok(leased!(self.writer, |c| query.execute(c))?.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::swaps;
    use sqlx::{Connection as _, Executor as _};

    async fn synchronous_commit(conn: &mut sqlx::PgConnection) -> String {
        sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(conn)
            .await
            .expect("show")
    }

    /// Runs `query` as a statement of its own: the rows it changed, once the setting is seen
    /// to have ended with it.
    async fn alone(
        conn: &mut sqlx::PgConnection,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> u64 {
        let done = query.execute(&mut *conn).await.expect("swap");
        assert_eq!(
            synchronous_commit(conn).await,
            "on",
            "after a statement of its own"
        );
        done.rows_affected()
    }

    /// The statements commit without waiting for the WAL, and the setting ends with their own
    /// transaction: the pooled connection goes back to durable commits for everything else
    /// (refresh rotations, accounts). Needs PostgreSQL: scripts/test runs it in its PostgreSQL
    /// phase, with `TEST_DATABASE_URL` set.
    #[tokio::test]
    async fn a_counter_write_alone_skips_the_wal_flush_on_postgres() {
        let Some(url) = crate::store::tests::postgres_url() else {
            return;
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        conn.execute(
            "CREATE TEMP TABLE rate_limits (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at BIGINT)",
        )
        .await
        .expect("table");
        let [insert, update, delete] = swaps(true);
        let mut tx = conn.begin().await.expect("begin");
        let inserted = sqlx::query(insert)
            .bind("k")
            .bind("1")
            .bind(None::<i64>)
            .execute(&mut *tx)
            .await
            .expect("insert");
        assert_eq!(inserted.rows_affected(), 1);
        assert_eq!(
            synchronous_commit(&mut tx).await,
            "off",
            "within the write's transaction"
        );
        tx.commit().await.expect("commit");
        assert_eq!(synchronous_commit(&mut conn).await, "on", "after it");

        let stale = sqlx::query(update)
            .bind("k")
            .bind("0")
            .bind("2")
            .bind(Some(5_i64))
            .execute(&mut conn)
            .await
            .expect("update");
        assert_eq!(stale.rows_affected(), 0, "a stale expected value writes nothing");
        let updated = sqlx::query(update)
            .bind("k")
            .bind("1")
            .bind("2")
            .bind(Some(5_i64));
        assert_eq!(alone(&mut conn, updated).await, 1);
        let deleted = sqlx::query(delete).bind("k").bind("2");
        assert_eq!(alone(&mut conn, deleted).await, 1);
    }
}
