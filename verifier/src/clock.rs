//! The time the key cache goes by (max-age, stale-if-error, cooldowns). Services use the
//! system's, the default; a test moves an adjustable one forward instead of sleeping
//! through a max-age.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct CacheClock {
    /// Milliseconds added to the monotonic clock; only an adjustable clock has it.
    offset_ms: Option<Arc<AtomicU64>>,
}

impl CacheClock {
    pub fn system() -> Self {
        Self::default()
    }

    /// The system's clock, plus however far [`CacheClock::advance`] has moved it.
    pub fn adjustable() -> Self {
        Self {
            offset_ms: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Moves an adjustable clock (every copy of it) forward; the system clock ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset_ms {
            offset.fetch_add(
                u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
                Ordering::SeqCst,
            );
        }
    }

    pub(crate) fn now(&self) -> Instant {
        let offset = self.offset_ms.as_ref().map_or(0, |o| o.load(Ordering::SeqCst));
        Instant::now() + Duration::from_millis(offset)
    }

    /// How long ago `then` was.
    pub(crate) fn since(&self, then: Instant) -> Duration {
        self.now().saturating_duration_since(then)
    }
}
