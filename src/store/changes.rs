//! Change counters: each write to `clients` or `revoked_access_tokens` bumps its table's
//! counter in the same transaction, so an instance that saw the counter unchanged knows its
//! copy in memory is current ([`Changes`]). Instances compare counters only for equality with
//! their previous reading, so a counter set back (a restored backup) counts as a change too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::AnyConnection;

use super::{Store, StoreError};
use crate::clock::Clock;
use crate::sync::lock;

/// The tables whose changes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Clients,
    RevokedAccessTokens,
}

impl Counted {
    fn name(self) -> &'static str {
        match self {
            Counted::Clients => "clients",
            Counted::RevokedAccessTokens => "revoked_access_tokens",
        }
    }
}

/// Both counters as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCounters {
    pub clients: i64,
    pub revoked_access_tokens: i64,
}

impl Store {
    pub async fn change_counters(&self) -> Result<ChangeCounters, StoreError> {
        let rows: Vec<(String, i64)> = leased!(self.pool, |c| sqlx::query_as(
            "SELECT name, counter FROM change_counters"
        )
        .fetch_all(c))?;
        // A missing row would hide every change: no reading, so nothing is cached.
        let counter = |table: Counted| {
            rows.iter()
                .find(|(name, _)| name == table.name())
                .map(|(_, counter)| *counter)
                .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
        };
        Ok(ChangeCounters {
            clients: counter(Counted::Clients)?,
            revoked_access_tokens: counter(Counted::RevokedAccessTokens)?,
        })
    }
}

/// Bumps `table`'s counter; call it inside the transaction that changes the table. Without
/// its row the change could not be counted, so it fails.
pub(super) async fn bump(conn: &mut AnyConnection, table: Counted) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE change_counters SET counter = counter + 1 WHERE name = $1")
        .bind(table.name())
        .execute(conn)
        .await?;
    match done.rows_affected() {
        1 => Ok(()),
        _ => Err(StoreError::Database(sqlx::Error::RowNotFound)),
    }
}

/// How often a running instance reads the counters.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// Copies in memory are trusted while the last successful read began at most this long ago,
/// so a change made anywhere is seen everywhere within it; past it (the database away, the
/// clock moved), every lookup goes to the database again.
pub const STALE_AFTER: Duration = Duration::from_secs(2);

/// How many changes of each table this instance has seen: a number that only grows, which
/// caches tag what they read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Generations {
    pub clients: u64,
    pub revoked_access_tokens: u64,
}

/// What the last successful reading found, and when (clock milliseconds) it began.
#[derive(Default)]
struct Seen {
    counters: Option<ChangeCounters>,
    generations: Generations,
    read_at: Option<i64>,
}

/// This instance's latest reading of the change counters, shared by the caches that rely on
/// it. Until a reading succeeds, and once it is stale, [`Changes::current`] is `None`.
#[derive(Clone)]
pub struct Changes {
    seen: Arc<Mutex<Seen>>,
    clock: Clock,
}

impl Changes {
    /// Knows nothing yet: nothing may be cached until a [`Changes::poll`] succeeds (the CLI
    /// never polls, so it never caches).
    pub fn new(clock: Clock) -> Self {
        Self {
            seen: Arc::default(),
            clock,
        }
    }

    /// The generations, while the reading is recent enough to trust what was cached under
    /// them.
    pub fn current(&self) -> Option<Generations> {
        let seen = lock(&self.seen);
        let age = self.clock.unix_ms().saturating_sub(seen.read_at?);
        (0..=STALE_AFTER.as_millis() as i64)
            .contains(&age)
            .then_some(seen.generations)
    }

    /// Reads the counters once.
    pub async fn poll(&self, store: &Store) -> Result<(), StoreError> {
        let began = self.clock.unix_ms();
        let counters = store.change_counters().await?;
        let mut seen = lock(&self.seen);
        // A slower read that began earlier must not replace a newer one.
        if seen.read_at.is_some_and(|at| at > began) {
            return Ok(());
        }
        if let Some(before) = seen.counters {
            if before.clients != counters.clients {
                seen.generations.clients += 1;
            }
            if before.revoked_access_tokens != counters.revoked_access_tokens {
                seen.generations.revoked_access_tokens += 1;
            }
        }
        seen.counters = Some(counters);
        seen.read_at = Some(began);
        Ok(())
    }

    /// Polls every [`POLL_EVERY`] for as long as the process runs.
    pub fn spawn_poller(&self, store: Store) {
        let changes = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                ticks.tick().await;
                match changes.poll(&store).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("change counters readable again: caching clients and revocations");
                    }
                    Ok(()) => {}
                    // Once per outage: the cached copies are out of use meanwhile.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "cannot read the change counters: looking up clients and revocations in the database");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}
