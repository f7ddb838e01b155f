//! The deadline hyper sets for each HTTP/1 request head, kept in one timer per connection.
//!
//! hyper arms a new deadline for every request head it reads and drops it once the head is
//! in. Behind hyper-util's `TokioTimer`, each one was an allocation, entered into tokio's
//! timer wheel under its lock on its first poll and taken out again under it when dropped.
//! A [`ConnectionTimer`] keeps one tokio `Sleep` for all the deadlines of its connection.
//! Each head's deadline is later than the one before, and moving a registered `Sleep` later
//! only stores the new time (the wheel files it again when the old time comes), so a request
//! head costs a small allocation and, while the deadline before it is still pending, no trip
//! to the wheel: 2–4 % of a JWKS answer's CPU under load (BENCHMARKS.md, round 18). The
//! `Sleep` outliving its head wakes the connection once, for nothing, when it comes due: at
//! most once per patience, and only while the connection is doing something other than
//! reading a head.
//!
//! One timer serves one connection only: hyper keeps one deadline at a time per connection,
//! each later than the last, and a shared `Sleep` relies on that.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// hyper's timer for one connection: its deadlines share one tokio `Sleep`.
#[derive(Default)]
pub struct ConnectionTimer {
    shared: SharedSleep,
}

/// The connection's `Sleep`, made on the first deadline's first poll. A lock, not a cell:
/// hyper wants its timers and their deadlines `Sync`; only the connection's task takes it.
type SharedSleep = Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>;

impl hyper::rt::Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Deadline {
            at: deadline.into(),
            shared: self.shared.clone(),
            moved: false,
        })
    }

    /// tokio's clock, which the deadlines are kept by (as `TokioTimer` does).
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into()
    }
}

/// One deadline: ready once `at` has passed.
struct Deadline {
    at: tokio::time::Instant,
    shared: SharedSleep,
    /// Whether the shared `Sleep` has been moved to `at`. It is moved on the first poll, not
    /// at creation: a deadline is only polled when its head has not arrived in one read.
    moved: bool,
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // Poisoned only by `Sleep::poll` panicking as the runtime shuts down; the `Sleep`
        // itself is sound.
        let mut shared = this.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match shared.as_mut() {
            Some(sleep) if !this.moved => sleep.as_mut().reset(this.at),
            Some(sleep) => debug_assert_eq!(sleep.deadline(), this.at, "one deadline at a time"),
            None => {}
        }
        this.moved = true;
        shared
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(this.at)))
            .as_mut()
            .poll(cx)
    }
}

impl hyper::rt::Sleep for Deadline {}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use hyper::rt::Timer as _;

    use super::*;

    /// Whether `deadline` is ready now, polled once.
    async fn due(deadline: &mut Pin<Box<dyn hyper::rt::Sleep>>) -> bool {
        poll_fn(|cx| Poll::Ready(deadline.as_mut().poll(cx).is_ready())).await
    }

    /// Awaits `deadline`, which must wake its task at `at` (the wheel counts whole
    /// milliseconds, rounding up).
    async fn woken_at(deadline: Pin<Box<dyn hyper::rt::Sleep>>, at: Instant) {
        tokio::time::timeout(Duration::from_secs(60), deadline)
            .await
            .expect("woken at its deadline");
        let now: Instant = tokio::time::Instant::now().into();
        assert!(
            now >= at && now < at + Duration::from_millis(10),
            "{:?} late",
            now - at
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_connection_is_woken_when_its_first_deadline_passes() {
        let timer = ConnectionTimer::default();
        let at = timer.now() + Duration::from_secs(3);
        woken_at(timer.sleep_until(at), at).await;
    }

    #[tokio::test(start_paused = true)]
    async fn each_deadline_of_a_connection_comes_due_at_its_own_time() {
        let timer = ConnectionTimer::default();
        let start = timer.now();
        let mut first = timer.sleep(Duration::from_secs(10));
        assert!(!due(&mut first).await);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!due(&mut first).await);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(due(&mut first).await, "the first deadline has passed");

        // The `Sleep` has fired, as it does when a request runs past the patience after its
        // head came in: the next head's deadline, later, files it again.
        drop(first);
        let at = start + Duration::from_secs(25);
        let mut second = timer.sleep_until(at);
        assert!(!due(&mut second).await);
        tokio::time::advance(Duration::from_secs(13)).await;
        assert!(!due(&mut second).await, "24 s in, the second is not due");
        woken_at(second, at).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_is_not_cut_short_by_the_one_before() {
        let timer = ConnectionTimer::default();
        let start = timer.now();
        let mut first = timer.sleep(Duration::from_secs(10));
        assert!(!due(&mut first).await, "the shared Sleep is registered for 10 s");
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(first);
        // Moved later before the first came due.
        let at = start + Duration::from_secs(15);
        let mut second = timer.sleep_until(at);
        assert!(!due(&mut second).await);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            !due(&mut second).await,
            "11 s in, past the first but not the second"
        );
        woken_at(second, at).await;
    }
}
