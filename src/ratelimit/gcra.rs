//! GCRA, the generic cell rate algorithm: a budget of `burst` events that refills steadily,
//! one event every `period / burst`. Its state is one instant, the theoretical arrival time
//! (TAT), kept with the latest spend's instant ([`Budget`]) as one value, so any store that
//! can compare-and-swap one value can hold it. Instants are Unix milliseconds, so instances
//! sharing a store agree on them.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time one event uses up.
    interval_ms: i64,
    /// How far ahead of now the TAT may run: the burst minus the one event being admitted.
    tolerance_ms: i64,
}

impl Gcra {
    /// At most `burst` events per `period` (a zero burst counts as one).
    pub fn new(burst: u32, period: Duration) -> Self {
        let burst = burst.max(1);
        let interval_ms = i64::try_from(period.as_millis() / u128::from(burst))
            .unwrap_or(i64::MAX)
            .max(1);
        Self {
            interval_ms,
            tolerance_ms: interval_ms.saturating_mul(i64::from(burst - 1)),
        }
    }

    /// How long until one more event conforms; zero when it does now.
    pub fn wait(&self, tat: Option<i64>, now: i64) -> Duration {
        let allowed_at = tat.unwrap_or(now).saturating_sub(self.tolerance_ms);
        Duration::from_millis(u64::try_from(allowed_at.saturating_sub(now)).unwrap_or(0))
    }

    /// The TAT with `events` fewer; `None` when nothing would be left ahead of `now`.
    pub fn before_events(&self, tat: i64, events: u32, now: i64) -> Option<i64> {
        Some(tat.saturating_sub(self.interval_ms.saturating_mul(i64::from(events))))
            .filter(|earlier| *earlier > now)
    }

    /// Whether the budget refills an event within `span_ms`.
    pub fn refills_within(&self, span_ms: i64) -> bool {
        self.interval_ms <= span_ms
    }

    /// The TAT once one more event has happened at `now`.
    pub fn after_event(&self, tat: Option<i64>, now: i64) -> i64 {
        tat.unwrap_or(now).max(now).saturating_add(self.interval_ms)
    }
}

/// What a store holds for one budget, written `tat:latest`: the TAT, and the latest instant
/// an event was spent at. Requests are stamped when they arrive but spent in turn, here and
/// on other instances, so one may be spent after a later-stamped one; it counts as arriving
/// with that one (`latest`), or it would be refused the last event of a burst it came in
/// time for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub tat: i64,
    pub latest: i64,
}

impl Budget {
    pub fn parse(value: &str) -> Option<Self> {
        let (tat, latest) = value.split_once(':')?;
        Some(Self {
            tat: tat.parse().ok()?,
            latest: latest.parse().ok()?,
        })
    }

    /// `tat:latest`. These texts are made for every metered request, so without `format!`
    /// (two fifths of the in-memory budget's cost, BENCHMARKS.md round 15).
    pub fn value(&self) -> String {
        let mut value = self.tat.to_string();
        value.push(':');
        value.push_str(&self.latest.to_string());
        value
    }

    /// The store key of `subject`'s budget for `limit`, versioned with the value: releases
    /// before `latest` was kept read a bare TAT, and would take this value for an empty
    /// budget and overwrite it. With keys of their own, two releases side by side in a
    /// rolling update count apart (at most twice a budget while it lasts) instead of
    /// resetting each other's at every turn.
    pub fn key(limit: &str, subject: &str) -> String {
        [limit, "@2:", subject].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use governor::{Quota, RateLimiter};
    use proptest::prelude::*;
    use std::num::NonZeroU32;

    #[test]
    fn five_per_fifteen_minutes_then_one_every_three() {
        let gcra = Gcra::new(5, Duration::from_secs(900));
        let mut tat = None;
        for _ in 0..5 {
            assert_eq!(gcra.wait(tat, 0), Duration::ZERO);
            tat = Some(gcra.after_event(tat, 0));
        }
        assert_eq!(gcra.wait(tat, 0), Duration::from_secs(180));
        assert_eq!(gcra.wait(tat, 180_000), Duration::ZERO);
        assert_eq!(
            gcra.wait(tat, 900_000),
            Duration::ZERO,
            "a whole period refills all"
        );
    }

    #[test]
    fn a_budget_is_stored_as_text_under_a_versioned_key() {
        let budget = Budget {
            tat: -5,
            latest: 1_700_000_000_123,
        };
        assert_eq!(budget.value(), "-5:1700000000123");
        assert_eq!(Budget::parse(&budget.value()), Some(budget));
        assert_eq!(Budget::parse("12"), None, "a bare TAT of an older release");
        assert_eq!(Budget::key("token", "client:a"), "token@2:client:a");
    }

    proptest! {
        /// The same decisions as the `governor` crate's GCRA for any burst, period and
        /// arrival pattern (governor keeps its state in process memory; ours must fit a
        /// shared store, so it is our own code, checked against theirs).
        #[test]
        fn admits_exactly_what_governor_admits(
            burst in 1u32..20,
            period_ms in 20u64..100_000,
            gaps in proptest::collection::vec(0u64..5_000, 1..200),
        ) {
            let gcra = Gcra::new(burst, Duration::from_millis(period_ms));
            let interval = Duration::from_millis((period_ms / u64::from(burst)).max(1));
            let burst_nz = NonZeroU32::new(burst).expect("burst ≥ 1");
            let quota = Quota::with_period(interval).expect("non-zero").allow_burst(burst_nz);
            let clock = FakeRelativeClock::default();
            let governor = RateLimiter::direct_with_clock(quota, clock.clone());
            let (mut now, mut tat) = (0i64, None);
            for gap in gaps {
                clock.advance(Duration::from_millis(gap));
                now += i64::try_from(gap).expect("small");
                let ours = gcra.wait(tat, now).is_zero();
                prop_assert_eq!(ours, governor.check().is_ok(), "at {} ms", now);
                if ours {
                    tat = Some(gcra.after_event(tat, now));
                }
            }
        }
    }
}
