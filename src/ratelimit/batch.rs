//! GCRA spends against a shared store (the database, Redis), combined per key: while one
//! compare-and-swap of a key is in flight, the requests for that key that arrive queue up,
//! and the next swap spends for all of them at once. Requests of this process never race
//! each other for a key — only other instances — and a flood of one client costs one write
//! per batch, not one failed swap after another.
//!
//! A busy key on a fast budget (one that refills at least once per [`LEASE_MS`]) is also
//! spent ahead: each write takes, beyond its batch, as many events as this process was sent
//! since its last write, at most [`LEASE_MS`]' worth (and only those that conform now), and
//! hands them out without asking the store for up to [`LEASE_MS`]. Under a flood the events
//! taken grow write by write until they last that long, so the writes come down from one per
//! round trip to one per [`LEASE_MS`] or so. What it did not hand out goes back with the
//! key's next write if no other instance wrote meanwhile (as far as the refill has not given
//! it back already); otherwise the refill returns it. So an event may be counted up to
//! [`LEASE_MS`] before its request arrives, and another instance may be refused events this
//! one held until the refill returns them; never more than the budget goes through. A key
//! sent one request at a time takes nothing ahead, and neither do the default budgets, which
//! are slower.
//!
//! A key's batches are run by a task of its own, so a request that is cancelled (a client
//! gone, a timeout) never leaves the others without an answer. It lives while the key has
//! requests waiting. The value it last wrote stays with the key while events are held, so
//! that no read precedes the next write while nobody else wrote.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::counters::{CounterError, Counters, Swept, Write, MAX_ROUNDS};
use super::{Budget, Gcra};
use crate::sync::lock;

/// How far ahead a busy budget is spent.
const LEASE_MS: i64 = 20;
/// The most events one write spends ahead.
const MAX_AHEAD: u32 = 1_024;

/// One request's outcome: admitted, or how long to wait.
type Spent = Result<(), Duration>;

pub(super) struct Waiter {
    gcra: Gcra,
    now: i64,
    reply: oneshot::Sender<Result<Spent, CounterError>>,
}

impl Waiter {
    fn new(gcra: Gcra, now: i64) -> (Self, oneshot::Receiver<Result<Spent, CounterError>>) {
        let (reply, answer) = oneshot::channel();
        (Self { gcra, now, reply }, answer)
    }
}

/// Events spent ahead at `at`, for this process to hand out within [`LEASE_MS`] of it (either
/// side: a clock stepped back does not keep them longer).
#[derive(Debug, Clone, Copy)]
struct Lease {
    gcra: Gcra,
    left: u32,
    at: i64,
}

impl Lease {
    /// Whether it still holds events to hand out at `now`.
    fn holds(&self, now: i64) -> bool {
        self.left > 0 && now.saturating_sub(self.at).saturating_abs() < LEASE_MS
    }

    fn take(&mut self, gcra: Gcra, now: i64) -> bool {
        let fits = self.gcra == gcra && self.holds(now);
        self.left -= u32::from(fits);
        fits
    }
}

/// One key's state in this process.
#[derive(Default)]
pub(super) struct Key {
    waiting: Vec<Waiter>,
    /// A task runs this key's batches.
    running: bool,
    /// The value as last written or read here; `None`: read it first.
    known: Option<Option<String>>,
    lease: Option<Lease>,
    /// Requests since the last write, and when that was.
    seen: u32,
    written_at: Option<i64>,
}

/// The keys with requests waiting or events held. A key is dropped when its task ends with
/// nothing held; one left holding events stays until its next request, or until a sweep
/// once they have lapsed (the refill returns them then).
pub(super) type Batches = Arc<Mutex<Swept<Key>>>;

impl Counters {
    /// Spends one GCRA event of `key` at `now`, or says how long to wait.
    pub async fn spend(&self, key: &str, gcra: Gcra, now: i64) -> Result<Spent, CounterError> {
        let Some(batches) = self.batches() else {
            return self.update(key, |current| super::spend(gcra, current, now)).await;
        };
        let (answer, start) = {
            let mut keys = lock(batches);
            let keys = &mut *keys;
            if let Some(entry) = keys.map.get_mut(key) {
                entry.seen = entry.seen.saturating_add(1);
                if entry.lease.as_mut().is_some_and(|l| l.take(gcra, now)) {
                    return Ok(Ok(()));
                }
                let (waiter, answer) = Waiter::new(gcra, now);
                entry.waiting.push(waiter);
                (answer, !std::mem::replace(&mut entry.running, true))
            } else {
                keys.sweep(|_, key| key.running || key.lease.is_some_and(|l| l.holds(now)));
                let (waiter, answer) = Waiter::new(gcra, now);
                let entry = Key {
                    waiting: vec![waiter],
                    running: true,
                    seen: 1,
                    ..Key::default()
                };
                keys.map.insert(key.to_owned(), entry);
                (answer, true)
            }
        };
        if start {
            tokio::spawn(self.clone().run_batches(key.to_owned()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(CounterError::Unavailable("rate-limit task stopped".into())))
    }

    /// Spends for whoever waits on `key`, batch after batch, until nobody does.
    async fn run_batches(self, key: String) {
        let Some(batches) = self.batches().cloned() else {
            return;
        };
        loop {
            let (waiters, mut known, held, ahead) = {
                let mut keys = lock(&batches);
                let Some(entry) = keys.map.get_mut(&key) else {
                    return;
                };
                let Some(latest) = entry.waiting.iter().max_by_key(|w| w.now) else {
                    entry.running = false;
                    if entry.lease.is_none_or(|l| l.left == 0) {
                        keys.map.remove(&key);
                    }
                    return;
                };
                let ahead = Ahead::of(entry, latest.gcra, latest.now);
                let mut waiters = std::mem::take(&mut entry.waiting);
                // Those that queued while the last write was in flight take what it spent ahead.
                if let Some(lease) = entry.lease.as_mut() {
                    for served in waiters.extract_if(.., |w| lease.take(w.gcra, w.now)) {
                        let _ = served.reply.send(Ok(Ok(())));
                    }
                }
                if waiters.is_empty() {
                    continue;
                }
                entry.seen = 0;
                (waiters, entry.known.take(), entry.lease.take(), ahead)
            };
            let lease = match self.spend_all(&key, &mut known, held, ahead, &waiters).await {
                Ok((spent, lease)) => {
                    for (waiter, spent) in waiters.into_iter().zip(spent) {
                        let _ = waiter.reply.send(Ok(spent));
                    }
                    lease
                }
                Err(e) => {
                    for waiter in waiters {
                        let _ = waiter.reply.send(Err(e.clone()));
                    }
                    // Dropped, not given back: the write may have landed unanswered.
                    None
                }
            };
            if let Some(entry) = lock(&batches).map.get_mut(&key) {
                entry.known = known;
                entry.lease = lease;
                entry.written_at = Some(ahead.now);
            }
        }
    }

    /// Gives back the events `held` did not hand out, spends for every waiter in turn, and
    /// spends `ahead`; all on one value of the key, written once. Returns the waiters'
    /// outcomes and the events spent ahead.
    async fn spend_all(
        &self,
        key: &str,
        known: &mut Option<Option<String>>,
        held: Option<Lease>,
        ahead: Ahead,
        waiters: &[Waiter],
    ) -> Result<(Vec<Spent>, Option<Lease>), CounterError> {
        for _ in 0..MAX_ROUNDS {
            let (current, fresh) = match known.take() {
                Some(value) => (value, false),
                None => (self.get(key).await?, true),
            };
            let mut value = current.clone();
            let mut last_write = None;
            let mut apply = |value: &mut Option<String>, write: Write| {
                match &write {
                    Write::Keep => return,
                    Write::Put(next, _) => *value = Some(next.clone()),
                    Write::Delete => *value = None,
                }
                last_write = Some(write);
            };
            // Given back only on the value the lease's own write left (`known`, which the swap
            // checks the store still holds): its events are then the last ones, and the
            // refund gives back no more of them than are still ahead of now. Once another
            // instance wrote, possibly giving back events of its own, which are whose is lost,
            // and giving these back could let more than the budget through.
            let unspent = held.filter(|h| h.left > 0 && !fresh);
            if let (Some(held), Some(budget)) = (unspent, value.as_deref().and_then(Budget::parse)) {
                apply(&mut value, super::refund(held.gcra, budget, held.left, ahead.now));
            }
            let spent: Vec<Spent> = waiters
                .iter()
                .map(|w| {
                    let (write, spent) = super::spend(w.gcra, value.as_deref(), w.now);
                    apply(&mut value, write);
                    spent
                })
                .collect();
            let mut left = 0;
            while left < ahead.events {
                let (write, spent) = super::spend(ahead.gcra, value.as_deref(), ahead.now);
                if spent.is_err() {
                    break;
                }
                apply(&mut value, write);
                left += 1;
            }
            let lease = (left > 0).then_some(Lease {
                gcra: ahead.gcra,
                left,
                at: ahead.now,
            });
            match last_write {
                // All refused: that must rest on what the store holds now, not on memory.
                None if !fresh => continue,
                None => {
                    *known = Some(current);
                    return Ok((spent, None));
                }
                Some(write) => {
                    if self.swap(key, current.as_deref(), &write).await? {
                        *known = Some(value);
                        return Ok((spent, lease));
                    }
                    // Another instance wrote meanwhile: read and spend again.
                }
            }
        }
        Err(CounterError::Contended)
    }
}

/// What a batch spends ahead: `events` of `gcra`, at `now`, its latest request's instant.
#[derive(Debug, Clone, Copy)]
struct Ahead {
    gcra: Gcra,
    now: i64,
    events: u32,
}

impl Ahead {
    /// For a fast budget sent more than one request since its last write (or since it was
    /// last idle), those requests again, scaled down to [`LEASE_MS`]' worth when the write
    /// was longer ago.
    fn of(key: &Key, gcra: Gcra, now: i64) -> Self {
        let since = key
            .written_at
            .map_or(LEASE_MS, |at| now.saturating_sub(at).max(LEASE_MS));
        let events = if key.seen > 1 && gcra.refills_within(LEASE_MS) {
            let seen = i64::from(key.seen) * LEASE_MS / since;
            u32::try_from(seen).unwrap_or(MAX_AHEAD).min(MAX_AHEAD)
        } else {
            0
        };
        Self { gcra, now, events }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::Store;

    /// Two instances' counters on one database: PostgreSQL in scripts/test's PostgreSQL
    /// phase, else SQLite in memory.
    async fn two_instances() -> (Counters, Counters) {
        let url = crate::store::tests::postgres_url().unwrap_or_else(|| "sqlite::memory:".into());
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let counters = || Counters::database(store.clone(), Clock::system());
        (counters(), counters())
    }

    /// A key no other run of the test has used (PostgreSQL outlives it).
    fn fresh_key() -> String {
        format!("token@2:{}", uuid::Uuid::new_v4().simple())
    }

    async fn admitted(counters: &Counters, key: &str, gcra: Gcra, n: usize, now: i64) -> usize {
        let mut count = 0;
        for _ in 0..n {
            let spent = counters.spend(key, gcra, now).await.expect("store up");
            count += usize::from(spent.is_ok());
        }
        count
    }

    /// `n` requests at once.
    async fn crowd(counters: &Counters, key: &str, gcra: Gcra, n: usize, now: i64) -> usize {
        let mut crowd = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (counters, key) = (counters.clone(), key.to_owned());
            crowd.spawn(async move { counters.spend(&key, gcra, now).await.expect("store up") });
        }
        crowd.join_all().await.iter().filter(|s| s.is_ok()).count()
    }

    /// a is sent 30 requests at once at 0, and spends more ahead than they take; what b then
    /// gets of the burst at 0.
    async fn b_after_a_holds_some(a: &Counters, b: &Counters, key: &str) -> usize {
        assert_eq!(crowd(a, key, fast(), 30, 0).await, 30);
        let to_b = admitted(b, key, fast(), 100, 0).await;
        assert!(to_b < 70, "a holds events it spent ahead: b got {to_b}");
        to_b
    }

    /// 100 per 100 ms: one event per millisecond.
    fn fast() -> Gcra {
        Gcra::new(100, Duration::from_millis(100))
    }

    #[tokio::test]
    async fn a_crowd_at_one_instant_gets_exactly_the_burst() {
        let (a, _) = two_instances().await;
        let key = fresh_key();
        let mut admitted = 0;
        // In waves, so that later ones find events spent ahead by earlier ones' writes.
        for _ in 0..10 {
            admitted += crowd(&a, &key, fast(), 15, 1_000).await;
        }
        assert_eq!(admitted, 100);
    }

    #[tokio::test]
    async fn events_spent_ahead_are_held_for_this_instance_then_given_back() {
        let (a, b) = two_instances().await;
        let key = fresh_key();
        let to_b = b_after_a_holds_some(&a, &b, &key).await;
        let to_a = admitted(&a, &key, fast(), 100, 0).await;
        assert_eq!(
            30 + to_b + to_a,
            100,
            "a hands out what it holds: the burst, exactly"
        );

        // a's events held at 0 lapse unused at 20 ms; a's next write gives them back.
        let key = fresh_key();
        assert_eq!(crowd(&a, &key, fast(), 30, 0).await, 30);
        let mut later = admitted(&a, &key, fast(), 1, 25).await;
        later += admitted(&b, &key, fast(), 200, 25).await;
        assert_eq!(
            30 + later,
            100 + 25,
            "the burst and 25 ms of refill: none lost to what a held"
        );
    }

    #[tokio::test]
    async fn events_held_are_not_given_back_once_another_instance_wrote() {
        let (a, b) = two_instances().await;
        let key = fresh_key();
        let first = b_after_a_holds_some(&a, &b, &key).await;
        let mut later = admitted(&a, &key, fast(), 1, 25).await;
        later += admitted(&b, &key, fast(), 200, 25).await;
        later += admitted(&a, &key, fast(), 200, 25).await;
        assert!(
            30 + first + later < 100 + 25,
            "what a held at 0 is not given back, the refill returns it"
        );
        // A second later the budget is full again.
        assert_eq!(admitted(&b, &key, fast(), 200, 1_000).await, 100);
    }

    #[tokio::test]
    async fn a_slow_budget_is_never_spent_ahead() {
        let (a, b) = two_instances().await;
        let key = fresh_key();
        // 600 per minute, the token endpoint's default: one event per 100 ms.
        let slow = Gcra::new(600, Duration::from_secs(60));
        assert_eq!(admitted(&a, &key, slow, 1, 0).await, 1);
        assert_eq!(admitted(&b, &key, slow, 700, 0).await, 599);
    }
}
