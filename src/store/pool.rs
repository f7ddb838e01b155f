//! sqlx's pool, with connections kept out of it between statements. sqlx pings every
//! connection that comes back to its pool, from a task spawned for it: a round trip to the
//! database (to SQLite's worker thread) after each statement, as many again as the
//! statements themselves. Here a connection whose statements finished is put on a list of
//! our own and handed out again as it is; one whose statement failed, or whose future was
//! dropped midway, goes back to sqlx, which pings it and closes it if it is broken.
//!
//! Every statement of the store takes its connection here. Leases take turns, one per
//! connection sqlx may open, so none waits for sqlx while a connection sits on the list.
//! One that finds the list empty goes to sqlx (a connection on its way back there holds a
//! place), and while one waits there, the connections that finish go to sqlx too. One on
//! the list for longer than [`ALIVE_WINDOW`] is pinged before it is used again, as sqlx's
//! `before_acquire` does for its own. One taken from sqlx longer than [`KEEP_FOR`] ago goes
//! back to it when its statement ends, and the store's housekeeping gives back those idle
//! that long, so that sqlx's limits on a connection's lifetime and idle time still apply.
//!
//! Through sqlx's `Any` driver, `fetch_optional` and `fetch_one` return at the first row; on
//! PostgreSQL the rest of the reply is read at the connection's next statement (sqlx's ping
//! used to read it). A statement that could still fail after its first row is read to its
//! end with `fetch_all`, so that its error is its own.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::StoreError;
use crate::sync::lock;

/// A connection used this recently answered then, and is handed out without a ping.
pub(super) const ALIVE_WINDOW: Duration = Duration::from_millis(500);
/// How long a connection stays out of sqlx's pool, and on the list unused.
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
    /// One per connection sqlx may open, held by each lease: leases wait their turn here, in
    /// order, not for sqlx while a connection sits on the list.
    permits: Arc<Semaphore>,
    /// Leases waiting for sqlx's pool.
    on_sqlx: Arc<AtomicUsize>,
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
            on_sqlx: Arc::default(),
        }
    }

    /// A connection: the one kept last, or one from sqlx's pool, within sqlx's
    /// `acquire_timeout` in all (the turn, a kept one's ping, sqlx's own wait).
    pub(super) async fn lease(&self) -> Result<Lease<'_>, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + self.sqlx.options().get_acquire_timeout();
        match tokio::time::timeout_at(deadline, self.take()).await {
            Ok(taken) => taken,
            Err(_elapsed) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    async fn take(&self) -> Result<Lease<'_>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_closed| sqlx::Error::PoolClosed)?;
        let lease = |(conn, since)| Lease {
            conn,
            since,
            pool: self,
            _permit: permit,
        };
        if let Some(kept) = self.kept().await {
            return Ok(lease(kept));
        }
        // A connection on its way back to sqlx (pinged there) holds one of sqlx's places
        // and none of the turns, so this may wait for sqlx. Counted before the list is read
        // again: from here on, a lease that finishes gives its connection to sqlx (see
        // `finish`), unless this one found it on the list.
        let _waiting = OnSqlx::count(&self.on_sqlx);
        if let Some(kept) = self.kept().await {
            return Ok(lease(kept));
        }
        Ok(lease((self.sqlx.acquire().await?, Instant::now())))
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

    /// Gives back to sqlx the kept connections idle for [`KEEP_FOR`], where its idle timeout
    /// closes those a quieter load no longer needs (the store's housekeeping calls this).
    pub(super) fn release_idle(&self) {
        lock(&self.kept).retain(|k| k.used.elapsed() < KEEP_FOR);
    }

    /// Closes every connection, waiting for those in use.
    pub(super) async fn close(&self) {
        {
            // Under the list's lock, as `finish` checks: nothing is kept after this.
            let mut kept = lock(&self.kept);
            self.permits.close();
            kept.clear();
        }
        // sqlx waits for every connection it handed out.
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

/// A lease waiting for sqlx, counted until it has a connection or its future is dropped.
struct OnSqlx<'a>(&'a AtomicUsize);

impl<'a> OnSqlx<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, SeqCst);
        Self(waiting)
    }
}

impl Drop for OnSqlx<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// A connection taken for some statements. Dropped, it goes back to sqlx (pinged there);
/// [`Lease::finish`] keeps it once its statements succeeded.
pub(super) struct Lease<'a> {
    conn: PoolConnection<Any>,
    since: Instant,
    pool: &'a Pool,
    /// Given back after the connection, when the lease is dropped or finished.
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// The result of the lease's last statement (or transaction), as the store's; the
    /// connection is kept for the next statement if it succeeded.
    pub(super) fn finish<T>(self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        let pool = self.pool;
        if result.is_ok() && self.since.elapsed() < KEEP_FOR {
            let mut kept = lock(&pool.kept);
            if !pool.permits.is_closed() {
                kept.push(Kept {
                    conn: self.conn,
                    used: Instant::now(),
                    since: self.since,
                });
                // Checked after the push (see `take`): a lease waits for sqlx, so one goes
                // there.
                if pool.on_sqlx.load(SeqCst) > 0 {
                    kept.pop();
                }
            }
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
