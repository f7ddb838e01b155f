//! The one source of "now" for every time rule: token lifetimes, refresh expiry, client
//! assertions, revocation, rate limits and back-off, housekeeping, keyset age. Production
//! reads the system clock; tests move theirs forward (`TestServer::advance`) instead of
//! sleeping, so a rule about an hour is tested in no time. Deadlines of I/O (request
//! timeouts, the accept loop) are not rules of the service and keep tokio's clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; only an adjustable clock has it.
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// The system time, plus however far [`Clock::advance`] has moved it.
    pub fn adjustable() -> Self {
        Self {
            offset_ms: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Moves an adjustable clock forward (every copy of it); the system clock ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset_ms {
            offset.fetch_add(
                i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                Ordering::SeqCst,
            );
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        match &self.offset_ms {
            Some(offset) => now + time::Duration::milliseconds(offset.load(Ordering::SeqCst)),
            None => now,
        }
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Unix milliseconds.
    pub fn unix_ms(&self) -> i64 {
        i64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_moves_forward_for_every_copy_and_the_system_clock_does_not() {
        let clock = Clock::adjustable();
        let copy = clock.clone();
        let before = copy.unix();
        clock.advance(Duration::from_secs(3600));
        assert!(copy.unix() >= before + 3600);
        let system = Clock::system();
        system.advance(Duration::from_secs(3600));
        assert!(system.unix() < before + 3600);
        assert!((system.unix_ms() / 1000 - system.unix()).abs() <= 1);
    }
}
