//! Where rate-limit state lives: this process's memory, the database, or Redis. Each holds
//! small string values by key and can replace one only if it is unchanged since it was read
//! (compare-and-swap), so the algorithms above stay in one place, in Rust, and stay exact
//! when several instances update one key at once.

use crate::clock::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::batch::Batches;
use crate::store::Store;
use crate::sync::lock;

/// Bounds how long a request waits on Redis before it is refused (or let through).
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Below this many keys in memory, expired ones are not swept.
const SWEEP_ABOVE: usize = 10_000;
/// Compare-and-swap rounds before giving up on a key that is being written by a crowd.
pub(super) const MAX_ROUNDS: usize = 32;
const REDIS_PREFIX: &str = "token-issuer:rate-limit:";

/// Replaces KEYS[1] only if it still holds ARGV[2] (ARGV[1] = "1"), or nothing (ARGV[1] =
/// "0"); writes ARGV[3] with a lifetime of ARGV[4] ms (0: none), or deletes on ARGV[3] = "".
const REDIS_SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
";

#[derive(Debug, Clone, thiserror::Error)]
pub enum CounterError {
    #[error("rate-limit store unavailable: {0}")]
    Unavailable(String),
    /// Every round lost to another writer: the key is under a flood.
    #[error("rate-limit key contended")]
    Contended,
}

/// What an update writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Keep,
    /// The value, and how long it matters (`None`: for good).
    Put(String, Option<Duration>),
    Delete,
}

#[derive(Clone)]
pub struct Counters {
    backend: Backend,
    /// GCRA spends in flight per key, for the shared stores (`batch.rs`).
    batches: Batches,
}

/// Entries by key in this process, swept of those no longer needed when they have doubled
/// since the last sweep, so a flood of keys costs amortised constant time.
pub(super) struct Swept<V> {
    pub(super) map: HashMap<String, V>,
    sweep_above: usize,
}

impl<V> Default for Swept<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep_above: SWEEP_ABOVE,
        }
    }
}

impl<V> Swept<V> {
    /// Keeps what `keep` keeps, if the map is due a sweep.
    pub(super) fn sweep(&mut self, keep: impl FnMut(&String, &mut V) -> bool) {
        if self.map.len() > self.sweep_above {
            self.map.retain(keep);
            self.sweep_above = (self.map.len() * 2).max(SWEEP_ABOVE);
        }
    }
}

/// Values by key, with the instant each stops mattering.
type MemoryMap = Swept<(String, Option<Instant>)>;

impl MemoryMap {
    /// Writes `write` over `key`'s value, in place when the key is known.
    fn write(&mut self, key: &str, write: Write) {
        match write {
            Write::Keep => {}
            Write::Put(value, ttl) => {
                let now = Instant::now();
                let entry = (value, ttl.map(|t| now + t));
                match self.map.get_mut(key) {
                    Some(known) => *known = entry,
                    None => {
                        self.sweep(|_, (_, expires)| expires.is_none_or(|at| at > now));
                        self.map.insert(key.to_owned(), entry);
                    }
                }
            }
            Write::Delete => {
                self.map.remove(key);
            }
        }
    }
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<MemoryMap>>),
    /// Expiry times come from the clock.
    Database(Store, Clock),
    Redis(redis::aio::ConnectionManager, Arc<redis::Script>),
}

impl Counters {
    pub fn memory() -> Self {
        Self {
            backend: Backend::Memory(Arc::default()),
            batches: Batches::default(),
        }
    }

    /// Counters in the database (its housekeeping deletes expired ones).
    pub fn database(store: Store, clock: Clock) -> Self {
        Self {
            backend: Backend::Database(store, clock),
            batches: Batches::default(),
        }
    }

    /// Connects lazily: the issuer starts while Redis is down, and reconnects when it is back.
    pub fn redis(url: &str) -> Result<Self, CounterError> {
        let client = redis::Client::open(url).map_err(|e| CounterError::Unavailable(e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let manager = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| CounterError::Unavailable(e.to_string()))?;
        Ok(Self {
            backend: Backend::Redis(manager, Arc::new(redis::Script::new(REDIS_SWAP))),
            batches: Batches::default(),
        })
    }

    /// The spends in flight per key, for a shared store; `None` in memory, where a spend is
    /// read and written under one lock and never waits.
    pub(super) fn batches(&self) -> Option<&Batches> {
        match self.backend {
            Backend::Memory(_) => None,
            Backend::Database(..) | Backend::Redis(..) => Some(&self.batches),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CounterError> {
        match &self.backend {
            Backend::Memory(map) => Ok(lock(map).map.get(key).map(|(v, _)| v.clone())),
            Backend::Database(store, _) => store.counter(key).await.map_err(unavailable),
            Backend::Redis(conn, _) => {
                let mut conn = conn.clone();
                let mut get = redis::cmd("GET");
                get.arg(format!("{REDIS_PREFIX}{key}"));
                redis_call(get.query_async::<Option<String>>(&mut conn)).await
            }
        }
    }

    /// Reads `key`, lets `change` decide what to write and what to answer, and writes only
    /// if nobody wrote in between — else reads again. `change` may run more than once.
    pub async fn update<R>(
        &self,
        key: &str,
        mut change: impl FnMut(Option<&str>) -> (Write, R),
    ) -> Result<R, CounterError> {
        if let Backend::Memory(map) = &self.backend {
            // Read and written under one lock: nobody can write in between.
            let mut map = lock(map);
            let (write, answer) = change(map.map.get(key).map(|(v, _)| v.as_str()));
            map.write(key, write);
            return Ok(answer);
        }
        for _ in 0..MAX_ROUNDS {
            let current = self.get(key).await?;
            let (write, answer) = change(current.as_deref());
            if write == Write::Keep || self.swap(key, current.as_deref(), &write).await? {
                return Ok(answer);
            }
        }
        Err(CounterError::Contended)
    }

    pub(super) async fn swap(
        &self,
        key: &str,
        expected: Option<&str>,
        write: &Write,
    ) -> Result<bool, CounterError> {
        let (value, ttl) = match write {
            Write::Keep => return Ok(true),
            Write::Put(value, ttl) => (Some(value.as_str()), *ttl),
            Write::Delete => (None, None),
        };
        match &self.backend {
            Backend::Memory(map) => {
                let mut map = lock(map);
                if map.map.get(key).map(|(v, _)| v.as_str()) != expected {
                    return Ok(false);
                }
                map.write(key, write.clone());
                Ok(true)
            }
            Backend::Database(store, clock) => {
                // Whole seconds, rounded up: when housekeeping may delete the row.
                let expires_at = ttl.map(|t| (clock.unix_ms().saturating_add(millis(t)) + 999) / 1000);
                store
                    .swap_counter(key, expected, value, expires_at)
                    .await
                    .map_err(unavailable)
            }
            Backend::Redis(conn, script) => {
                let mut conn = conn.clone();
                let mut invocation = script.key(format!("{REDIS_PREFIX}{key}"));
                invocation
                    .arg(if expected.is_some() { "1" } else { "0" })
                    .arg(expected.unwrap_or(""))
                    .arg(value.unwrap_or(""))
                    .arg(ttl.map_or(0, |t| millis(t).max(1)));
                let swapped: i64 = redis_call(invocation.invoke_async(&mut conn)).await?;
                Ok(swapped == 1)
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn unavailable(e: impl std::fmt::Display) -> CounterError {
    CounterError::Unavailable(e.to_string())
}

async fn redis_call<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, CounterError> {
    match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(CounterError::Unavailable("Redis did not answer in time".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(value: &str, ttl: Option<Duration>) -> impl FnMut(Option<&str>) -> (Write, ()) + '_ {
        move |_| (Write::Put(value.to_owned(), ttl), ())
    }

    fn keys_in_memory(counters: &Counters) -> usize {
        match &counters.backend {
            Backend::Memory(map) => lock(map).map.len(),
            _ => unreachable!("a memory store"),
        }
    }

    #[tokio::test]
    async fn memory_updates_overwrite_keep_and_delete() {
        let counters = Counters::memory();
        counters.update("a", put("1", None)).await.expect("update");
        let seen = counters
            .update("a", |current| {
                (Write::Put("2".into(), None), current.map(str::to_owned))
            })
            .await
            .expect("update");
        assert_eq!(
            seen.as_deref(),
            Some("1"),
            "the change reads the value written before"
        );
        counters.update("a", |_| (Write::Keep, ())).await.expect("keep");
        assert_eq!(counters.get("a").await.expect("get").as_deref(), Some("2"));
        assert!(
            counters
                .swap("a", Some("1"), &Write::Delete)
                .await
                .is_ok_and(|s| !s),
            "stale swap"
        );
        assert!(counters
            .swap("a", Some("2"), &Write::Delete)
            .await
            .is_ok_and(|s| s));
        assert_eq!(counters.get("a").await.expect("get"), None);
        assert_eq!(keys_in_memory(&counters), 0);
    }

    #[tokio::test]
    async fn memory_sweeps_lapsed_keys_once_past_the_threshold() {
        let counters = Counters::memory();
        counters.update("for good", put("1", None)).await.expect("update");
        for n in 0..SWEEP_ABOVE {
            let lapsed = put("1", Some(Duration::ZERO));
            counters
                .update(&format!("lapsed {n}"), lapsed)
                .await
                .expect("update");
        }
        assert_eq!(
            keys_in_memory(&counters),
            SWEEP_ABOVE + 1,
            "nothing swept up to the threshold"
        );
        counters.update("new", put("1", None)).await.expect("update");
        assert_eq!(
            keys_in_memory(&counters),
            2,
            "the lapsed keys are swept as a new one comes"
        );
        assert_eq!(counters.get("for good").await.expect("get").as_deref(), Some("1"));
    }
}
