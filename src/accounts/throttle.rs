//! Brute-force defence for logins, in this instance's memory (shared stores are to come):
//! - per client IP, at most `max_failures` failed logins per `window` — a GCRA budget that
//!   refills steadily — then 429 with `Retry-After`, before any password is checked;
//! - per account, progressive back-off once `max_failures` attempts failed, from any IPs
//!   (credential stuffing): a wait that doubles with each further failure up to a cap, so an
//!   attacker slows to a crawl but can never lock the owner out for long. A successful login
//!   clears the account's failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest an account waits between attempts, however many failed.
const MAX_ACCOUNT_BACKOFF: Duration = Duration::from_secs(60);
/// Above this many tracked keys, expired entries are swept (bounded memory under a flood).
const SWEEP_ABOVE: usize = 10_000;

pub struct LoginThrottle {
    /// GCRA: a failure every `interval` on average, `tolerance` of burst.
    interval: Duration,
    tolerance: Duration,
    max_failures: u32,
    ips: Mutex<HashMap<IpAddr, Instant>>,
    accounts: Mutex<HashMap<String, AccountFailures>>,
}

#[derive(Debug, Clone, Copy)]
struct AccountFailures {
    count: u32,
    last: Instant,
    next_allowed: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        let max_failures = max_failures.max(1);
        let interval = window / max_failures;
        Self {
            interval,
            tolerance: interval * (max_failures - 1),
            max_failures,
            ips: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Before checking a password: `Err(retry_after)` when this IP or this account must wait.
    pub fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        if let Some(tat) = lock(&self.ips).get(&ip) {
            // GCRA: conforming when now ≥ TAT − tolerance.
            let allowed_at = tat.checked_sub(self.tolerance).unwrap_or(*tat);
            if allowed_at > now {
                return Err(allowed_at - now);
            }
        }
        match lock(&self.accounts).get(account) {
            Some(a) if a.next_allowed > now => Err(a.next_allowed - now),
            _ => Ok(()),
        }
    }

    /// Records a failed login of `account` from `ip`.
    pub fn failed(&self, ip: IpAddr, account: &str, now: Instant) {
        {
            let mut ips = lock(&self.ips);
            if ips.len() > SWEEP_ABOVE {
                ips.retain(|_, tat| *tat > now);
            }
            let tat = ips.entry(ip).or_insert(now);
            *tat = (*tat).max(now) + self.interval;
        }
        let mut accounts = lock(&self.accounts);
        if accounts.len() > SWEEP_ABOVE {
            let window = self.interval * self.max_failures;
            accounts.retain(|_, a| now.duration_since(a.last) < window);
        }
        let entry = accounts.entry(account.to_owned()).or_insert(AccountFailures {
            count: 0,
            last: now,
            next_allowed: now,
        });
        // Failures older than a whole window are forgotten.
        if now.duration_since(entry.last) >= self.interval * self.max_failures {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count >= self.max_failures {
            let doublings = (entry.count - self.max_failures).min(16);
            entry.next_allowed = now + Duration::from_secs(1 << doublings).min(MAX_ACCOUNT_BACKOFF);
        }
    }

    /// A successful login clears the account's failures (not the IP's: an attacker who owns
    /// one account must not reset its budget for guessing others).
    pub fn succeeded(&self, account: &str) {
        lock(&self.accounts).remove(account);
    }
}

/// What failures are counted under for an email: a keyed hash of its lower-cased form (the
/// key is random per process), so neither memory nor logs hold the address or anything a
/// dictionary could turn back into it, and case variants count as one.
pub fn account_key(email: &str) -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    use sha2::Digest as _;
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        key
    });
    let digest = sha2::Sha256::new()
        .chain_update(key)
        .chain_update(email.trim().to_lowercase().as_bytes())
        .finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
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

    #[test]
    fn five_failures_per_window_per_ip_then_a_wait_then_the_budget_refills() {
        let throttle = LoginThrottle::new(5, Duration::from_secs(15 * 60));
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(
                throttle.check(A, &format!("user{i}"), t0),
                Ok(()),
                "failure {i} is allowed"
            );
            throttle.failed(A, &format!("user{i}"), t0);
        }
        let wait = throttle
            .check(A, "someone-else", t0)
            .expect_err("the sixth waits");
        assert_eq!(
            wait,
            Duration::from_secs(180),
            "one failure refills every 15 min / 5"
        );
        assert_eq!(
            throttle.check(B, "someone-else", t0),
            Ok(()),
            "another IP is unaffected"
        );
        assert_eq!(throttle.check(A, "someone-else", t0 + wait), Ok(()));
        assert!(throttle.check(A, "x", t0 + Duration::from_secs(15 * 60)).is_ok());
    }

    #[test]
    fn an_account_backs_off_progressively_from_any_ip_and_success_clears_it() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let ips: Vec<IpAddr> = (1..=10u8)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i)))
            .collect();
        throttle.failed(ips[0], "victim", t0);
        throttle.failed(ips[1], "victim", t0);
        assert_eq!(throttle.check(ips[2], "victim", t0), Ok(()));
        throttle.failed(ips[2], "victim", t0);
        assert_eq!(throttle.check(ips[3], "victim", t0), Err(Duration::from_secs(1)));
        throttle.failed(ips[3], "victim", t0 + Duration::from_secs(1));
        assert_eq!(
            throttle.check(ips[4], "victim", t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(2)),
            "the wait doubles"
        );
        for i in 0..20 {
            throttle.failed(ips[5], "victim", t0 + Duration::from_secs(2 + i));
        }
        let capped = throttle
            .check(ips[6], "victim", t0 + Duration::from_secs(21))
            .expect_err("waits");
        assert!(capped <= MAX_ACCOUNT_BACKOFF, "never a lockout: {capped:?}");
        throttle.succeeded("victim");
        assert_eq!(
            throttle.check(ips[7], "victim", t0 + Duration::from_secs(21)),
            Ok(())
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(180)), 180);
    }
}
