//! Brute-force defence for logins. The counters live in the rate-limit store (memory, the
//! database or Redis), so instances sharing a store share the budgets:
//! - per client IP (an IPv6 client: its /64), at most `max_failures` failed logins per
//!   `window` — a GCRA budget that refills steadily — then 429 with `Retry-After`, before any
//!   password is checked;
//! - per account, progressive back-off once `max_failures` attempts failed, from any IPs
//!   (credential stuffing): a wait that doubles with each further failure up to a cap, so an
//!   attacker slows to a crawl but can never lock the owner out for long. A successful login
//!   clears the account's failures.
//!
//! When the store cannot be reached, login is refused (503): this defence fails closed.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::OnceCell;

use crate::ratelimit::{self, Budget, CounterError, Counters, Denied, Gcra, Write};

/// The longest an account waits between attempts, however many failed.
const MAX_ACCOUNT_BACKOFF: Duration = Duration::from_secs(60);
/// The store key of the account-hash key, shared by every instance on the store.
const HASH_KEY: &str = "login-account-hash-key";

pub struct LoginThrottle {
    counters: Counters,
    ip: Gcra,
    max_failures: u32,
    window_ms: i64,
    hash_key: OnceCell<[u8; 32]>,
}

/// An account's recent failures, stored as `count:last:next_allowed` (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AccountFailures {
    count: u32,
    last: i64,
    next_allowed: i64,
}

impl AccountFailures {
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(':');
        let failures = Self {
            count: parts.next()?.parse().ok()?,
            last: parts.next()?.parse().ok()?,
            next_allowed: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(failures)
    }

    fn value(&self) -> String {
        format!("{}:{}:{}", self.count, self.last, self.next_allowed)
    }
}

impl LoginThrottle {
    pub fn new(counters: Counters, max_failures: u32, window: Duration) -> Self {
        Self {
            counters,
            ip: Gcra::new(max_failures, window),
            max_failures: max_failures.max(1),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            hash_key: OnceCell::new(),
        }
    }

    /// What an email's failures are counted (and logged) under: a keyed hash of its
    /// lower-cased form, so neither the store nor the logs hold the address or anything a
    /// dictionary could turn back into it, and case variants count as one. The key is random
    /// and kept in the store, so every instance on it hashes alike.
    pub async fn account_key(&self, email: &str) -> Result<String, Denied> {
        use sha2::Digest as _;
        let key = self
            .hash_key
            .get_or_try_init(|| self.load_hash_key())
            .await
            .map_err(fail_closed)?;
        let digest = sha2::Sha256::new()
            .chain_update(key)
            .chain_update(email.trim().to_lowercase().as_bytes())
            .finalize();
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]))
    }

    async fn load_hash_key(&self) -> Result<[u8; 32], CounterError> {
        use rand::RngCore as _;
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let b64 = base64::engine::general_purpose::STANDARD;
        self.counters
            .update(HASH_KEY, |current| {
                match current
                    .and_then(|v| b64.decode(v).ok())
                    .and_then(|k| <[u8; 32]>::try_from(k).ok())
                {
                    Some(stored) => (Write::Keep, stored),
                    None => (Write::Put(b64.encode(fresh), None), fresh),
                }
            })
            .await
    }

    /// Before checking a password: spends one attempt of this client's budget and counts
    /// one failure against the account, each atomically in the store, so parallel guesses
    /// cannot all pass a check made before any of them failed. `Wait` when the client or
    /// the account must wait; a refused attempt checks no password and counts for nothing
    /// more. A successful login gives its attempt back ([`LoginThrottle::succeeded`]).
    pub async fn begin(&self, ip: IpAddr, account: &str, now: i64) -> Result<(), Denied> {
        let gcra = self.ip;
        let spent = self
            .counters
            .spend(&ip_counter(ip), gcra, now)
            .await
            .map_err(refused)?;
        if let Err(wait) = spent {
            ratelimit::rejected("login_ip", &ratelimit::ip_subject(ip));
            return Err(Denied::Wait(wait));
        }
        let counted = self
            .counters
            .update(&account_counter(account), |current| {
                let before = current.and_then(AccountFailures::parse);
                // Below the threshold a failure's `next_allowed` is its own instant: a login
                // stamped earlier must not read that as a back-off.
                let now = before.map_or(now, |b| ratelimit::arrival(b.last, now));
                match before {
                    Some(b) if b.next_allowed > now => (Write::Keep, Err(ms(b.next_allowed - now))),
                    _ => {
                        let after = self.after_failure(before, now);
                        // Kept while it matters: the window, or the back-off if longer.
                        let keep = ms(self.window_ms.max(after.next_allowed - now));
                        (Write::Put(after.value(), Some(keep)), Ok(()))
                    }
                }
            })
            .await
            .map_err(refused)?;
        if let Err(wait) = counted {
            ratelimit::rejected("login_account", account);
            return Err(Denied::Wait(wait));
        }
        Ok(())
    }

    fn after_failure(&self, before: Option<AccountFailures>, now: i64) -> AccountFailures {
        // Failures older than a whole window are forgotten.
        let count = match before {
            Some(b) if now.saturating_sub(b.last) < self.window_ms => b.count,
            _ => 0,
        } + 1;
        let next_allowed = if count >= self.max_failures {
            let doublings = (count - self.max_failures).min(16);
            let wait = Duration::from_secs(1 << doublings).min(MAX_ACCOUNT_BACKOFF);
            now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
        } else {
            now
        };
        AccountFailures {
            count,
            last: now,
            next_allowed,
        }
    }

    /// A successful login gives the client its attempt back and clears the account's
    /// failures (not the client's earlier failures: an attacker who owns one account must
    /// not reset its budget for guessing others).
    pub async fn succeeded(&self, ip: IpAddr, account: &str, now: i64) -> Result<(), CounterError> {
        let gcra = self.ip;
        self.counters
            .update(&ip_counter(ip), |current| {
                let write = match current.and_then(Budget::parse) {
                    Some(budget) => ratelimit::refund(gcra, budget, 1, now),
                    None => Write::Keep,
                };
                (write, ())
            })
            .await?;
        self.counters
            .update(&account_counter(account), |current| {
                (
                    if current.is_some() {
                        Write::Delete
                    } else {
                        Write::Keep
                    },
                    (),
                )
            })
            .await
    }
}

/// The store key of a client's failure budget.
fn ip_counter(ip: IpAddr) -> String {
    Budget::key("login-ip", &ratelimit::ip_subject(ip))
}

/// The store key of an account's failures.
fn account_counter(account: &str) -> String {
    format!("login-account:{account}")
}

fn ms(millis: i64) -> Duration {
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// A store that cannot be reached refuses logins; a key written by a crowd means a flood.
fn refused(e: CounterError) -> Denied {
    match e {
        CounterError::Contended => Denied::Wait(Duration::from_secs(1)),
        e => fail_closed(e),
    }
}

fn fail_closed(e: CounterError) -> Denied {
    tracing::error!(error = %e, "rate-limit store unavailable: refusing logins until it is back (fails closed)");
    Denied::Unavailable(e)
}

/// Retry-After in whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn wait_of(result: Result<(), Denied>) -> Option<Duration> {
        match result {
            Ok(()) => None,
            Err(Denied::Wait(wait)) => Some(wait),
            Err(Denied::Unavailable(e)) => panic!("memory is always available: {e}"),
        }
    }

    #[tokio::test]
    async fn five_failures_per_window_per_ip_then_a_wait_then_the_budget_refills() {
        let throttle = LoginThrottle::new(Counters::memory(), 5, Duration::from_secs(15 * 60));
        let t0 = 1_000_000;
        for i in 0..5 {
            let user = format!("user{i}");
            assert_eq!(
                wait_of(throttle.begin(A, &user, t0).await),
                None,
                "failure {i} is allowed"
            );
        }
        let wait = wait_of(throttle.begin(A, "someone-else", t0).await).expect("the sixth waits");
        assert_eq!(
            wait,
            Duration::from_secs(180),
            "one failure refills every 15 min / 5"
        );
        assert_eq!(
            wait_of(throttle.begin(B, "someone-else", t0).await),
            None,
            "another IP"
        );
        assert_eq!(
            wait_of(throttle.begin(A, "someone-else", t0 + 180_000).await),
            None
        );
    }

    #[tokio::test]
    async fn parallel_guesses_cannot_outrun_the_budget() {
        let throttle = std::sync::Arc::new(LoginThrottle::new(
            Counters::memory(),
            5,
            Duration::from_secs(900),
        ));
        let attempts: Vec<_> = (0..40)
            .map(|i| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.begin(A, &format!("guess{i}"), 0).await.is_ok() })
            })
            .collect();
        let mut admitted = 0;
        for attempt in attempts {
            admitted += usize::from(attempt.await.expect("task"));
        }
        assert_eq!(admitted, 5);
    }

    #[tokio::test]
    async fn a_successful_login_gives_its_attempt_back() {
        let throttle = LoginThrottle::new(Counters::memory(), 2, Duration::from_secs(900));
        for _ in 0..10 {
            throttle.begin(A, "owner", 0).await.expect("admitted");
            throttle.succeeded(A, "owner", 0).await.expect("refunded");
        }
        throttle.begin(A, "x", 0).await.expect("a failure");
        throttle.begin(A, "y", 0).await.expect("a failure");
        assert!(
            wait_of(throttle.begin(A, "owner", 0).await).is_some(),
            "two failures spend the budget"
        );
    }

    #[tokio::test]
    async fn a_login_stamped_before_the_accounts_last_failure_is_not_told_to_wait() {
        // One account's logins run side by side: one stamped earlier can reach the account's
        // counter after a later one counted there (its IP budget's batch took longer).
        let throttle = LoginThrottle::new(Counters::memory(), 5, Duration::from_secs(60));
        assert_eq!(wait_of(throttle.begin(A, "owner", 1_000).await), None);
        assert_eq!(
            wait_of(throttle.begin(B, "owner", 990).await),
            None,
            "stamped 10 ms earlier"
        );
    }

    #[tokio::test]
    async fn an_ipv6_client_is_one_budget_across_its_64() {
        let throttle = LoginThrottle::new(Counters::memory(), 2, Duration::from_secs(60));
        for host in ["2001:db8:7:7::1", "2001:db8:7:7::2"] {
            throttle
                .begin(host.parse().expect("ip"), "x", 0)
                .await
                .expect("admitted");
        }
        let same_64: IpAddr = "2001:db8:7:7:ffff::9".parse().expect("ip");
        let other_64: IpAddr = "2001:db8:7:8::1".parse().expect("ip");
        assert!(wait_of(throttle.begin(same_64, "y", 0).await).is_some());
        assert_eq!(wait_of(throttle.begin(other_64, "y", 0).await), None);
    }

    #[tokio::test]
    async fn an_account_backs_off_progressively_from_any_ip_and_success_clears_it() {
        let throttle = LoginThrottle::new(Counters::memory(), 3, Duration::from_secs(3600));
        let ip = |i: u8| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
        for i in 0..3 {
            assert_eq!(wait_of(throttle.begin(ip(i), "victim", 0).await), None);
        }
        assert_eq!(
            wait_of(throttle.begin(ip(3), "victim", 0).await),
            Some(Duration::from_secs(1))
        );
        assert_eq!(wait_of(throttle.begin(ip(4), "victim", 1000).await), None);
        assert_eq!(
            wait_of(throttle.begin(ip(5), "victim", 1000).await),
            Some(Duration::from_secs(2)),
            "the wait doubles"
        );
        let mut now = 1000;
        for i in 0..20u8 {
            now += 61_000;
            assert_eq!(wait_of(throttle.begin(ip(10 + i), "victim", now).await), None);
        }
        let capped = wait_of(throttle.begin(ip(40), "victim", now).await).expect("waits");
        assert_eq!(capped, MAX_ACCOUNT_BACKOFF, "never a lockout");
        throttle.succeeded(ip(41), "victim", now).await.expect("cleared");
        assert_eq!(wait_of(throttle.begin(ip(41), "victim", now).await), None);
    }

    #[tokio::test]
    async fn the_account_hash_is_stable_case_blind_and_keyed_per_store() {
        let counters = Counters::memory();
        let one = LoginThrottle::new(counters.clone(), 5, Duration::from_secs(60));
        let two = LoginThrottle::new(counters, 5, Duration::from_secs(60));
        async fn hash(t: &LoginThrottle, e: &str) -> String {
            match t.account_key(e).await {
                Ok(h) => h,
                Err(_) => panic!("memory is available"),
            }
        }
        let a = hash(&one, "Alice@Example.com").await;
        assert_eq!(
            a,
            hash(&two, " alice@example.com").await,
            "two instances on one store agree"
        );
        assert!(!a.to_lowercase().contains("alice"));
        let elsewhere = LoginThrottle::new(Counters::memory(), 5, Duration::from_secs(60));
        assert_ne!(
            a,
            hash(&elsewhere, "alice@example.com").await,
            "another store, another key"
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(180)), 180);
    }
}
