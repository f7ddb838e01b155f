//! GCRA spends against a shared store (the database, Redis), combined per key: while one
//! compare-and-swap of a key is in flight, the requests for that key that arrive queue up,
//! and the next swap spends for all of them at once. Requests of this process never race
//! each other for a key — only other instances — and a flood of one client costs one write
//! per batch, not one failed swap after another.
//!
//! A key's batches are run by a task of its own, so a request that is cancelled (a client
//! gone, a timeout) never leaves the others without an answer. It lives while the key has
//! requests waiting, and remembers the value it last wrote, so that no read precedes the
//! write while nobody else wrote.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::counters::{CounterError, Counters, Write, MAX_ROUNDS};
use super::Gcra;
use crate::sync::lock;

/// One request's outcome: admitted, or how long to wait.
type Spent = Result<(), Duration>;

pub(super) struct Waiter {
    gcra: Gcra,
    now: i64,
    reply: oneshot::Sender<Result<Spent, CounterError>>,
}

/// The requests waiting per key. A key is present while its task runs, and only then.
pub(super) type Batches = Arc<Mutex<HashMap<String, Vec<Waiter>>>>;

impl Counters {
    /// Spends one GCRA event of `key` at `now`, or says how long to wait.
    pub async fn spend(&self, key: &str, gcra: Gcra, now: i64) -> Result<Spent, CounterError> {
        let Some(batches) = self.batches() else {
            return self.update(key, |current| super::spend(gcra, current, now)).await;
        };
        let (reply, answer) = oneshot::channel();
        let waiter = Waiter { gcra, now, reply };
        let start = {
            let mut waiting = lock(batches);
            match waiting.get_mut(key) {
                Some(queue) => {
                    queue.push(waiter);
                    false
                }
                None => {
                    waiting.insert(key.to_owned(), vec![waiter]);
                    true
                }
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
        // The value as this task last wrote or read it; `None`: read it first.
        let mut known: Option<Option<String>> = None;
        loop {
            let waiters = {
                let mut waiting = lock(&batches);
                let queue = waiting.entry(key.clone()).or_default();
                if queue.is_empty() {
                    waiting.remove(&key);
                    return;
                }
                std::mem::take(queue)
            };
            match self.spend_all(&key, &mut known, &waiters).await {
                Ok(spent) => {
                    for (waiter, spent) in waiters.into_iter().zip(spent) {
                        let _ = waiter.reply.send(Ok(spent));
                    }
                }
                Err(e) => {
                    known = None;
                    for waiter in waiters {
                        let _ = waiter.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Spends for every waiter, in turn, on one value of the key; writes the result once.
    async fn spend_all(
        &self,
        key: &str,
        known: &mut Option<Option<String>>,
        waiters: &[Waiter],
    ) -> Result<Vec<Spent>, CounterError> {
        for _ in 0..MAX_ROUNDS {
            let (current, fresh) = match known.take() {
                Some(value) => (value, false),
                None => (self.get(key).await?, true),
            };
            let mut value = current.clone();
            let mut last_write = None;
            let spent: Vec<Spent> = waiters
                .iter()
                .map(|w| {
                    let (write, spent) = super::spend(w.gcra, value.as_deref(), w.now);
                    if let Write::Put(next, ttl) = write {
                        value = Some(next.clone());
                        last_write = Some(Write::Put(next, ttl));
                    }
                    spent
                })
                .collect();
            match last_write {
                // All refused: that must rest on what the store holds now, not on memory.
                None if !fresh => continue,
                None => {
                    *known = Some(current);
                    return Ok(spent);
                }
                Some(write) => {
                    if self.swap(key, current.as_deref(), &write).await? {
                        *known = Some(value);
                        return Ok(spent);
                    }
                    // Another instance wrote meanwhile: read and spend again.
                }
            }
        }
        Err(CounterError::Contended)
    }
}
