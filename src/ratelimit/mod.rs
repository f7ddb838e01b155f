//! Rate limits on register, refresh and the token endpoint, and the counters the login
//! throttle (`accounts::throttle`) keeps. Counters live in this process's memory, in the
//! database or in Redis; with a shared store, N instances share one budget instead of each
//! granting its own.

mod batch;
mod counters;
mod gcra;
mod in_flight;

pub use counters::{CounterError, Counters, Write};
pub use gcra::{Budget, Gcra};
pub use in_flight::InFlight;

use crate::clock::Clock;
pub use crate::values::Rate;
use std::net::IpAddr;
use std::time::Duration;

/// A request budget, written `N/DURATION`: `10/1h` is 10 at once, then one every 6 minutes.
/// The endpoints with a request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Per client IP.
    Register,
    /// Per client IP, at `/api/v1/auth/refresh` and the token endpoint's refresh grant.
    Refresh,
    /// Per registered client, at the token endpoint.
    Token,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Refresh => "refresh",
            Self::Token => "token",
        }
    }

    /// Registration refuses when its budget cannot be checked (account spam is what the
    /// limit stops). Refresh and client tokens go on, logged: a store outage must not stop
    /// every session and service; their secrets are 256-bit, so no guessing is at stake.
    fn fails_closed(self) -> bool {
        self == Self::Register
    }
}

/// Why a request may not go on.
#[derive(Debug)]
pub enum Denied {
    /// Over budget: retry after this long.
    Wait(Duration),
    /// The shared store cannot be reached and this limit fails closed.
    Unavailable(CounterError),
}

/// The request budgets of register, refresh and the token endpoint.
pub struct RateLimits {
    counters: Counters,
    clock: Clock,
    register: Gcra,
    refresh: Gcra,
    token: Gcra,
}

impl RateLimits {
    pub fn new(counters: Counters, clock: Clock, register: Rate, refresh: Rate, token: Rate) -> Self {
        let gcra = |r: Rate| Gcra::new(r.burst, r.period);
        Self {
            counters,
            clock,
            register: gcra(register),
            refresh: gcra(refresh),
            token: gcra(token),
        }
    }

    /// Spends one request of `subject`'s budget for `limit`, or says how long to wait.
    pub async fn admit(&self, limit: Limit, subject: &str) -> Result<(), Denied> {
        let gcra = match limit {
            Limit::Register => self.register,
            Limit::Refresh => self.refresh,
            Limit::Token => self.token,
        };
        let key = Budget::key(limit.name(), subject);
        let now = self.clock.unix_ms();
        let spent = self.counters.spend(&key, gcra, now).await;
        let denied = match spent {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(wait)) => Denied::Wait(wait),
            Err(CounterError::Contended) => Denied::Wait(Duration::from_secs(1)),
            Err(e) if limit.fails_closed() => {
                tracing::error!(error = %e, limit = limit.name(), "rate-limit store unavailable: refusing (this limit fails closed)");
                Denied::Unavailable(e)
            }
            Err(e) => {
                tracing::error!(error = %e, limit = limit.name(), "rate-limit store unavailable: letting the request through unmetered");
                metrics::counter!("issuer_rate_limit_store_errors_total").increment(1);
                return Ok(());
            }
        };
        if matches!(denied, Denied::Wait(_)) {
            rejected(limit.name(), subject);
        }
        Err(denied)
    }
}

/// How far ahead of this instance's clock a stored `latest` is believed.
const MAX_LEAD_MS: i64 = 1_000;

/// The instant a request stamped `now` counts at, against a budget last spent at `latest`:
/// no earlier than that. A request stamped before a spend it raced (batched here, or on
/// another instance) arrives with it, not before it. A clock ahead of ours counts for at most
/// a second: a stored instant far in the future (a badly set clock, a tampered store) must
/// not open or close a budget.
pub fn arrival(latest: i64, now: i64) -> i64 {
    latest.clamp(now, now.saturating_add(MAX_LEAD_MS))
}

/// One GCRA event on a stored budget, if it conforms.
pub fn spend(gcra: Gcra, current: Option<&str>, now: i64) -> (Write, Result<(), Duration>) {
    let budget = current.and_then(Budget::parse);
    let now = budget.map_or(now, |b| arrival(b.latest, now));
    let tat = budget.map(|b| b.tat);
    let wait = gcra.wait(tat, now);
    if !wait.is_zero() {
        return (Write::Keep, Err(wait));
    }
    let tat = gcra.after_event(tat, now);
    (put(Budget { tat, latest: now }, now), Ok(()))
}

/// Gives back `events` recorded at or before `now`: the write that undoes them.
pub fn refund(gcra: Gcra, budget: Budget, events: u32, now: i64) -> Write {
    match gcra.before_events(budget.tat, events, now) {
        Some(tat) => put(Budget { tat, ..budget }, now),
        None => Write::Delete,
    }
}

/// Writes `budget`; it matters until its TAT has passed.
fn put(budget: Budget, now: i64) -> Write {
    let ttl = Duration::from_millis(u64::try_from(budget.tat.saturating_sub(now)).unwrap_or(0));
    Write::Put(budget.value(), Some(ttl))
}

/// A request refused for being over `limit`: an audit event and a metric. `subject` is an
/// IP subject, a client id or an account hash, never an email.
pub fn rejected(limit: &'static str, subject: &str) {
    tracing::warn!(target: "audit", event = "rate_limited", limit, subject);
    counted(limit);
}

/// A rejection counted in the metrics only (its audit event was logged already).
pub fn counted(limit: &'static str) {
    metrics::counter!("issuer_rate_limited_total", "limit" => limit).increment(1);
}

/// The network a client address counts as: the address itself (an IPv4-mapped IPv6 address
/// as its IPv4), or an IPv6 client's /64 (one host usually owns a whole /64, so counting
/// single addresses would give it 2^64 budgets).
pub fn ip_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

/// The budget a client address counts under: its [`ip_network`] as text.
pub fn ip_subject(ip: IpAddr) -> String {
    match ip_network(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(net) => format!("{net}/64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let rate: Rate = "10/1h".parse().expect("valid");
        assert_eq!(
            rate,
            Rate {
                burst: 10,
                period: Duration::from_secs(3600)
            }
        );
        assert_eq!(rate.to_string(), "10/1h");
        for bad in ["10", "0/1m", "5/0s", "x/1m", "5/soon"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_subject(a), "2001:db8:1:2::/64");
        assert_eq!(ip_subject(a), ip_subject(b));
        assert_ne!(ip_subject(a), ip_subject(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_subject(mapped), "192.0.2.7");
    }

    fn spend_n(gcra: Gcra, value: &mut Option<String>, n: usize, now: i64) -> usize {
        (0..n)
            .filter(|_| {
                let (write, spent) = spend(gcra, value.as_deref(), now);
                if let Write::Put(next, _) = write {
                    *value = Some(next);
                }
                spent.is_ok()
            })
            .count()
    }

    #[test]
    fn a_request_spent_after_a_later_stamped_one_still_gets_the_last_event_of_the_burst() {
        // 25 requests arrive within 5 ms at two instances; the one stamped 103 is spent last.
        let gcra = Gcra::new(25, Duration::from_secs(3600));
        let mut value = None;
        assert_eq!(spend_n(gcra, &mut value, 24, 105), 24);
        assert_eq!(spend_n(gcra, &mut value, 1, 103), 1, "the 25th, stamped earlier");
        assert_eq!(spend_n(gcra, &mut value, 1, 103), 0, "a 26th is over budget");
        assert_eq!(
            spend_n(gcra, &mut value, 1, 105 + 144_000),
            1,
            "one refills per 144 s"
        );
    }

    #[test]
    fn a_stored_instant_far_ahead_of_the_clock_does_not_open_the_budget() {
        let gcra = Gcra::new(2, Duration::from_secs(60));
        // Both events spent at 0, by an instance whose clock read the end of time.
        let mut value = Some(format!("60000:{}", i64::MAX));
        assert_eq!(spend_n(gcra, &mut value, 1, 0), 0);
        assert_eq!(spend_n(gcra, &mut value, 1, 30_000), 1, "one refills in 30 s");
    }

    #[tokio::test]
    async fn a_budget_is_spent_then_refused_per_subject() {
        let limits = RateLimits::new(
            Counters::memory(),
            Clock::system(),
            "2/1h".parse().expect("rate"),
            "1/1h".parse().expect("rate"),
            "1/1h".parse().expect("rate"),
        );
        assert!(limits.admit(Limit::Register, "192.0.2.1").await.is_ok());
        assert!(limits.admit(Limit::Register, "192.0.2.1").await.is_ok());
        match limits.admit(Limit::Register, "192.0.2.1").await {
            Err(Denied::Wait(wait)) => assert!(wait > Duration::from_secs(1790), "{wait:?}"),
            other => panic!("the third registration must wait: {other:?}"),
        }
        assert!(
            limits.admit(Limit::Register, "192.0.2.2").await.is_ok(),
            "another IP"
        );
        assert!(
            limits.admit(Limit::Refresh, "192.0.2.1").await.is_ok(),
            "another limit"
        );
    }
}
