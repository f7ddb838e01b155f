//! Storage: one implementation over sqlx's `Any` driver, so SQLite and PostgreSQL run the
//! same queries (`$N` placeholders work on both) and the same migrations.

mod authorization;
pub mod changes;
mod clients;
mod housekeeping;
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
use sqlx::{AnyPool, ConnectOptions as _, Executor as _};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
    pool: AnyPool,
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
        let pool = AnyPoolOptions::new()
                        // Each connection to `sqlite::memory:` would be a separate, empty database.
            .max_connections(match (sqlite, url.contains(":memory:")) {
                (true, true) => 1,
                (true, false) => 8,
                (false, _) => 16,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL lets readers run beside the one writer (NORMAL sync is safe with
                        // WAL: a power cut may lose the last commits, never corrupts); wait for
                        // the write lock instead of failing; enforce the schema's foreign keys.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            postgres: !sqlite,
        })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
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
