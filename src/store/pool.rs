//! sqlx's pool, with connections kept out of it between statements. sqlx pings every
//! connection that comes back to its pool, from a task spawned for it: a round trip to the
//! database (to SQLite's worker thread) after each statement, as many again as the
//! statements themselves. Here a connection whose statements finished is put on a list of
//! our own and handed out again as it is; one whose statement failed, or whose future was
//! dropped midway, goes back to sqlx, which pings it and closes it if it is broken.
//!
//! Every statement of the store takes its connection here, and leases wait their turn
//! here, one per connection sqlx may open: one that finds the list empty always has a
//! connection in sqlx's pool, and none waits for sqlx while one sits on the list. One on the
//! list for longer than [`ALIVE_WINDOW`] is pinged before it is used again, as sqlx's
//! `before_acquire` does for its own; one taken from sqlx longer than [`KEEP_FOR`] ago, or
//! idle that long, goes back to it, so that sqlx's limits on a connection's lifetime and
//! idle time still apply.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::StoreError;
use crate::sync::lock;

/// A connection used this recently answered then, and is handed out without a ping.
pub(super) const ALIVE_WINDOW: Duration = Duration::from_millis(500);
/// How long a connection stays out of sqlx's pool.
const KEEP_FOR: Duration = Duration::from_secs(60);

/// Runs one statement on a connection of `$pool`: `leased!(self.pool, |c| query.execute(c))`.
/// The connection is kept for the next statement if this one succeeded.
macro_rules! leased {
    ($pool:expr, |$c:ident| $statement:expr) => {{
        let mut lease = $pool.lease().await?;
        let $c = &mut *lease;
        let result = $statement.await;
        lease.finish(result)
    }};
}

#[derive(Clone, Debug)]
pub(super) struct Pool {
    sqlx: AnyPool,
    kept: Arc<Mutex<Vec<Kept>>>,
    /// One per connection sqlx may open, held by each lease: so a lease that finds the list
    /// empty always has a connection in sqlx's pool (idle, coming back, or to be opened), and
    /// leases wait their turn here, in order, not for sqlx while one sits on the list.
    permits: Arc<Semaphore>,
}

#[derive(Debug)]
struct Kept {
    conn: PoolConnection<Any>,
    /// When its last statement finished.
    used: Instant,
    /// When it was taken from sqlx's pool.
    since: Instant,
}

impl Pool {
    pub(super) fn new(sqlx: AnyPool) -> Self {
        let permits = sqlx.options().get_max_connections() as usize;
        Self {
            sqlx,
            kept: Arc::default(),
            permits: Arc::new(Semaphore::new(permits)),
        }
    }

    /// A connection: the one kept last, or one from sqlx's pool. Waits as long as sqlx's
    /// `acquire_timeout` for a turn.
    pub(super) async fn lease(&self) -> Result<Lease<'_>, sqlx::Error> {
        let turn = tokio::time::timeout(self.sqlx.options().get_acquire_timeout(), self.permits.acquire());
        let permit = match turn.await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(sqlx::Error::PoolClosed),
            Err(_elapsed) => return Err(sqlx::Error::PoolTimedOut),
        };
        let (conn, since) = match self.kept().await {
            Some(kept) => kept,
            None => (self.sqlx.acquire().await?, Instant::now()),
        };
        Ok(Lease {
            conn,
            since,
            kept: &self.kept,
            _permit: permit,
        })
    }

    /// The connection kept last, pinged first if it has been idle a while; `None` if the
    /// list is empty. A broken one is dropped, back to sqlx, which closes it.
    async fn kept(&self) -> Option<(PoolConnection<Any>, Instant)> {
        loop {
            let mut kept = lock(&self.kept).pop()?;
            if kept.used.elapsed() < ALIVE_WINDOW || kept.conn.ping().await.is_ok() {
                return Some((kept.conn, kept.since));
            }
        }
    }

    /// Closes every connection, waiting for those in use.
    pub(super) async fn close(&self) {
        self.permits.close();
        // sqlx waits for every connection it handed out, kept ones included.
        lock(&self.kept).clear();
        self.sqlx.close().await;
    }

    #[cfg(test)]
    pub(super) fn max(&self) -> u32 {
        self.sqlx.options().get_max_connections()
    }

    #[cfg(test)]
    pub(super) fn kept_count(&self) -> usize {
        lock(&self.kept).len()
    }
}

/// A connection taken for some statements. Dropped, it goes back to sqlx (pinged there);
/// [`Lease::finish`] keeps it once its statements succeeded.
pub(super) struct Lease<'a> {
    conn: PoolConnection<Any>,
    since: Instant,
    kept: &'a Mutex<Vec<Kept>>,
    /// Given back after the connection, when the lease is dropped or finished.
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// The result of the lease's last statement (or transaction), as the store's; the
    /// connection is kept for the next statement if it succeeded.
    pub(super) fn finish<T>(self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        if result.is_ok() && self.since.elapsed() < KEEP_FOR {
            let mut kept = lock(self.kept);
            // The one at the bottom waited longest: idle that long, it goes back to sqlx,
            // whose idle timeout closes connections a quieter load no longer needs.
            if kept.first().is_some_and(|k| k.used.elapsed() >= KEEP_FOR) {
                kept.remove(0);
            }
            kept.push(Kept {
                conn: self.conn,
                used: Instant::now(),
                since: self.since,
            });
        }
        Ok(result?)
    }
}

impl Deref for Lease<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}
