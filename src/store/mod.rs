//! Storage: one implementation over sqlx's `Any` driver, so SQLite and PostgreSQL run the
//! same queries (`$N` placeholders work on both) and the same migrations.

/// A struct read from a row by its fields' names, as `#[derive(sqlx::FromRow)]` would read
/// it: that derive (like `migrate!`) builds every database driver a second time, for the
/// compiler, which cost minutes of each build on two cores.
macro_rules! row_struct {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
    }) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for $name {
            fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)*
                })
            }
        }
    };
}

#[macro_use]
mod pool;

mod authorization;
pub mod changes;
mod clients;
mod housekeeping;
mod migrations;
mod rate_limits;
mod sessions;
mod users;

pub use authorization::{CodeRecord, LoginSessionRecord, Redemption};
pub use changes::Changes;
pub use clients::ClientRecord;
pub use sessions::{NewFamily, RefreshRecord, RotatedFamily};
pub use users::{NewUser, UserRecord};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};

use pool::{Pool, ALIVE_WINDOW};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            // PostgreSQL's "connection exception" (08) and "operator intervention" (57: the
            // server shutting down or starting up) classes: the database is away, not wrong.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57")) =>
            {
                StoreError::Unavailable(e)
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            _ => StoreError::Database(e),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// Where writes go. On a SQLite file, a pool of one connection, and `pool` is read-only:
    /// the file has one write lock, and writers that each held a connection of their own
    /// slept in SQLite's busy handler (1 to 100 ms at a time) until it was free, where here
    /// they queue in order. On PostgreSQL and in memory, the same pool.
    writer: Pool,
    /// PostgreSQL rotates a refresh token in one statement of a form SQLite lacks
    /// (data-modifying `WITH`).
    postgres: bool,
}

impl Store {
    /// Opens the database named by `url`, creating a SQLite file (and its directory) if needed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite {
            prepare_sqlite(url)?
        } else {
            url.to_owned()
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let (pool, writer) = if sqlite && !url.contains(":memory:") {
            let readers = pool_options(sqlite, 8, true)
                .connect_with(options.clone())
                .await?;
            let writer = pool_options(sqlite, 1, false).connect_with(options).await?;
            (Pool::new(readers), Pool::new(writer))
        } else {
            // Each connection to `sqlite::memory:` would be a separate, empty database.
            let max = if sqlite { 1 } else { 16 };
            let pool = Pool::new(pool_options(sqlite, max, false).connect_with(options).await?);
            (pool.clone(), pool)
        };
        Ok(Self {
            pool,
            writer,
            postgres: !sqlite,
        })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = migrations::migrator().await?;
        let mut lease = self.writer.lease().await?;
        migrator.run(&mut *lease).await?;
        lease.finish(Ok(()))
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        leased!(self.pool, |c| sqlx::query("SELECT 1").execute(c))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// A pool of up to `max` connections, each set up for the database; `read_only` (SQLite's
/// readers beside the writer) refuses writes, so one sent to the wrong pool fails at once.
fn pool_options(sqlite: bool, max: u32, read_only: bool) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        // Also how long a SQLite write waits its turn for the writer before a 503.
        .acquire_timeout(Duration::from_secs(5))
        // sqlx would ping every connection before handing it out: a round trip to the
        // database (to SQLite's worker thread) before each statement. It pings each one that
        // comes back to it (`pool.rs` keeps those whose statements succeeded), so one used in
        // the last half second answered then; only one idle for longer is checked first, as
        // HikariCP's `aliveBypassWindowMs` does, and a broken one is dropped and another
        // opened. The trade-off: a connection cut within that half second (a database restart
        // under load) fails the one statement sent on it, with a 503, before it is dropped.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ALIVE_WINDOW {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    // WAL lets readers run beside the one writer (NORMAL sync is safe with
                    // WAL: a power cut may lose the last commits, never corrupts); wait for
                    // the write lock instead of failing (another process, such as the CLI,
                    // may hold it); enforce the schema's foreign keys.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
                        .await?;
                    if read_only {
                        conn.execute("PRAGMA query_only = ON").await?;
                    }
                }
                Ok(())
            })
        })
}

/// The file of a `sqlite:` URL (`sqlite://path`, `sqlite:path`, with or without a query);
/// `None` for an in-memory database or another kind of URL.
pub fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Creates the SQLite file and its directory, readable by the service's user only (0600,
/// 0700: the file holds password hashes; SQLite gives its WAL and SHM files the database
/// file's mode), and lets sqlx open it. A read-only URL creates nothing.
fn prepare_sqlite(url: &str) -> Result<String, StoreError> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let io = |e| StoreError::Unavailable(sqlx::Error::Io(e));
    if let Some(path) = sqlite_file(url).filter(|_| !query.contains("mode=ro")) {
        if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{NewUser, Store, StoreError, ALIVE_WINDOW};
    use sqlx::{Connection as _, Executor as _};

    /// The PostgreSQL server of scripts/test's PostgreSQL phase (`TEST_DATABASE_URL`), for the
    /// unit tests that need one; they pass at once without it.
    pub(crate) fn postgres_url() -> Option<String> {
        std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
    }

    /// A migrated store on a SQLite file, which lives as long as the directory.
    async fn sqlite_file_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&format!("sqlite://{}/issuer.db", dir.path().display()))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        (dir, store)
    }

    /// A write sent to the readers.
    async fn reader_writes(store: &Store) -> Result<(), StoreError> {
        leased!(store.pool, |c| sqlx::query("DELETE FROM users").execute(c))?;
        Ok(())
    }

    /// On a SQLite file the readers refuse writes, so every write of the store (each run by
    /// the integration tests) must take the writer; and writers from many tasks at once queue
    /// for its one connection: every write lands, none times out or deadlocks.
    #[tokio::test]
    async fn concurrent_writes_on_sqlite_all_land() {
        let (_dir, store) = sqlite_file_store().await;
        assert_eq!(store.writer.max(), 1);
        assert!(reader_writes(&store).await.is_err(), "the readers refuse writes");
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..64 {
            let store = store.clone();
            writers.spawn(async move {
                let (id, email) = (format!("u{i}"), format!("u{i}@example.com"));
                let user = NewUser {
                    id: &id,
                    email: &email,
                    password_hash: "hash",
                    created_at: 0,
                };
                store.insert_user(user).await
            });
        }
        for written in writers.join_all().await {
            written.expect("insert");
        }
        for i in 0..64 {
            let found = store.user_by_id(&format!("u{i}")).await.expect("read");
            assert!(found.is_some(), "user {i} was written");
        }
    }

    /// A pooled connection that died while idle (the database restarted, a proxy cut it) is
    /// noticed before a query is sent on it, once it has been idle longer than the window in
    /// which connections are trusted without a ping. Needs PostgreSQL: scripts/test runs it in
    /// its PostgreSQL phase, with `TEST_DATABASE_URL` set.
    #[tokio::test]
    async fn a_connection_cut_while_idle_is_replaced_before_the_next_query() {
        let Some(url) = postgres_url() else {
            return;
        };
        let store = Store::connect(&url).await.expect("connect");
        let pid = backend_pid(&store).await.expect("pid");
        let mut admin = sqlx::PgConnection::connect(&url).await.expect("admin");
        admin
            .execute(format!("SELECT pg_terminate_backend({pid})").as_str())
            .await
            .expect("terminate");
        tokio::time::sleep(ALIVE_WINDOW * 2).await;
        let answered = backend_pid(&store).await.expect("a query after the cut");
        assert_ne!(answered, pid, "answered by a new connection");
    }

    async fn backend_pid(store: &Store) -> Result<i32, StoreError> {
        leased!(store.pool, |c| sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(c))
    }

    /// A statement that succeeded leaves its connection for the next one (no ping, no task,
    /// no wait on sqlx's pool); one that failed gives it back to sqlx, and the next still runs.
    #[tokio::test]
    async fn a_connection_is_kept_after_a_statement_that_succeeded_only() {
        let (_dir, store) = sqlite_file_store().await;
        assert_eq!(store.writer.kept_count(), 1, "the migration's");
        store.ping().await.expect("ping");
        assert_eq!(store.pool.kept_count(), 1);
        assert!(reader_writes(&store).await.is_err(), "the readers refuse writes");
        assert_eq!(
            store.pool.kept_count(),
            0,
            "the failed statement's connection went back to sqlx"
        );
        store.ping().await.expect("the next statement runs");
        store.close().await;
    }

    /// On PostgreSQL: the next statement runs on the same backend; a statement cancelled
    /// midway (its future dropped, as when a client goes away) is not reused while the server
    /// still works on it.
    #[tokio::test]
    async fn statements_share_a_kept_connection_and_a_cancelled_one_is_not_reused() {
        let Some(url) = postgres_url() else {
            return;
        };
        let store = Store::connect(&url).await.expect("connect");
        let first = backend_pid(&store).await.expect("pid");
        assert_eq!(
            backend_pid(&store).await.expect("pid"),
            first,
            "the same connection"
        );
        assert_eq!(store.pool.kept_count(), 1);
        let sleeping = async { leased!(store.pool, |c| sqlx::query("SELECT pg_sleep(2)").execute(c)) };
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(200), sleeping).await;
        assert!(cancelled.is_err(), "cancelled midway");
        assert_eq!(store.pool.kept_count(), 0);
        let next = backend_pid(&store).await.expect("the next statement runs");
        assert_ne!(next, first, "not the connection still sleeping");
        store.close().await;
    }
}
