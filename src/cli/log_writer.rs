//! Where log lines go: stderr, with the lines of requests written in batches. A `write` to
//! stderr per line took 6.6 % of an EdDSA token's CPU, and the workers queued on stderr's lock
//! for it (BENCHMARKS.md, round 8). So a line logged while a request is handled, below WARN,
//! is appended to a buffer, and a thread of its own writes what has gathered about [`DELAY`]
//! after its previous write, with one system call. Every other line — start-up, reloads,
//! warnings, errors — is written at once, after the lines before it: order is kept, and what
//! an operator waits for is there without delay. Nothing is dropped: past [`BACKLOG`] bytes
//! waiting, a line is written at once too, so a stalled stderr holds the loggers back as it
//! always did; and [`Flush`] writes out the rest when the process ends.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::sync::lock;

/// How long a request's line waits to be written, counted from the previous write.
pub const DELAY: Duration = Duration::from_millis(5);
/// Bytes waiting past which a line is written at once.
const BACKLOG: usize = 1 << 20;
/// The most a buffer keeps between batches: 5 ms of lines at 40,000 a second.
const KEPT: usize = 64 << 10;

/// A `MakeWriter` for the subscriber; [`Flush`] ends its thread.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

struct Shared {
    /// The lines waiting. Locked briefly, to append or take them, never across a write.
    waiting: Mutex<Waiting>,
    /// Held across each write, taken before `waiting`: batches reach the sink in order.
    sink: Mutex<Box<dyn Write + Send>>,
    /// The thread waits here for a first line, and then for `delay` to pass.
    wake: Condvar,
    delay: Duration,
}

#[derive(Default)]
struct Waiting {
    lines: Vec<u8>,
    /// The thread waits for a first line: the next one must wake it.
    idle: bool,
    /// [`Flush`] has run: every line is written at once.
    closed: bool,
}

/// Writes out the lines still waiting and ends the writing thread, when dropped.
pub struct Flush {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Lines to `sink`, a request's written at most `delay` after it (the service: [`DELAY`]),
    /// and the guard that writes out the last of them. Should the thread not start, every
    /// line is written at once.
    pub fn new(sink: impl Write + Send + 'static, delay: Duration) -> (Self, Flush) {
        let shared = Arc::new(Shared {
            waiting: Mutex::default(),
            sink: Mutex::new(Box::new(sink)),
            wake: Condvar::new(),
            delay,
        });
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.write_behind())
            .ok();
        lock(&shared.waiting).closed = thread.is_none();
        let flush = Flush {
            shared: Arc::clone(&shared),
            thread,
        };
        (Self { shared }, flush)
    }
}

impl Shared {
    /// Appends `line`; writes it, and all before it, at once unless it may wait.
    fn push(&self, line: &[u8], may_wait: bool) {
        let mut waiting = lock(&self.waiting);
        waiting.lines.extend_from_slice(line);
        if !may_wait || waiting.closed || waiting.lines.len() > BACKLOG {
            drop(waiting);
            self.write_waiting(&mut Vec::new());
        } else if std::mem::take(&mut waiting.idle) {
            self.wake.notify_one();
        }
    }

    /// Writes every line waiting, in one call. They are swapped with `batch`, which is left
    /// empty: the thread passes the same one each time, so the two buffers keep their size.
    fn write_waiting(&self, batch: &mut Vec<u8>) {
        let mut sink = lock(&self.sink);
        std::mem::swap(&mut lock(&self.waiting).lines, batch);
        if !batch.is_empty() {
            // As tracing-subscriber does: a log that cannot be written is not worth failing
            // the request for, and there is nowhere left to report it.
            let _ = sink.write_all(batch).and_then(|()| sink.flush());
        }
        batch.clear();
        // What a burst grew is not kept for good.
        batch.shrink_to(KEPT);
    }

    /// The thread: once a line waits, lets others gather for `delay`, then writes them.
    fn write_behind(&self) {
        let mut batch = Vec::new();
        loop {
            let mut waiting = lock(&self.waiting);
            while waiting.lines.is_empty() && !waiting.closed {
                waiting.idle = true;
                waiting = self.wake.wait(waiting).unwrap_or_else(PoisonError::into_inner);
            }
            if waiting.closed {
                return;
            }
            let (waiting, _) = self
                .wake
                .wait_timeout(waiting, self.delay)
                .unwrap_or_else(PoisonError::into_inner);
            drop(waiting);
            self.write_waiting(&mut batch);
        }
    }
}

impl Flush {
    /// Writes the lines waiting now, before the process prints something of its own.
    pub fn write_out(&self) {
        self.shared.write_waiting(&mut Vec::new());
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        lock(&self.shared.waiting).closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.write_out();
    }
}

/// One line's writer: whether it may wait is decided by the line's level and whether a
/// request is being handled.
pub struct Line<'a> {
    shared: &'a Shared,
    may_wait: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.push(buf, self.may_wait);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
            may_wait: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            shared: &self.shared,
            may_wait: *meta.level() > Level::WARN
                && crate::http::request_scope::with_current(|_| ()).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request_scope::{sync_scope, RequestScope};

    /// Each `write` call's bytes, as the sink received them.
    #[derive(Clone, Default)]
    struct Calls(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            lock(&self.0).push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Calls {
        fn texts(&self) -> Vec<String> {
            lock(&self.0)
                .iter()
                .map(|call| String::from_utf8_lossy(call).into_owned())
                .collect()
        }
    }

    /// A delay no test waits out: whatever is written before the end was written at once.
    const NEVER: Duration = Duration::from_secs(3600);

    fn request() -> RequestScope {
        RequestScope {
            id: axum::http::HeaderValue::from_static("r1"),
            client_ip: None,
            method: axum::http::Method::POST,
            uri: axum::http::Uri::from_static("/oauth2/token"),
        }
    }

    #[test]
    fn a_request_s_lines_wait_and_any_other_line_is_written_at_once_after_them() {
        let calls = Calls::default();
        let (writer, flush) = LogWriter::new(calls.clone(), NEVER);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            sync_scope(request(), || tracing::info!("issued one"));
            sync_scope(request(), || tracing::info!("issued two"));
            assert_eq!(calls.texts(), Vec::<String>::new(), "a request's lines wait");

            tracing::info!("reloaded");
            let [written] = calls.texts().try_into().expect("one write");
            let order: Vec<&str> = ["issued one", "issued two", "reloaded"]
                .into_iter()
                .filter(|m| written.contains(m))
                .collect();
            assert_eq!(order.len(), 3, "all three at once: {written}");
            assert!(
                written.find("issued one") < written.find("issued two")
                    && written.find("issued two") < written.find("reloaded"),
                "in order: {written}"
            );

            sync_scope(request(), || tracing::warn!("refused"));
            assert!(
                calls.texts()[1].contains("refused"),
                "a warning is written at once"
            );
            sync_scope(request(), || tracing::info!("issued three"));
        });
        assert_eq!(calls.texts().len(), 2);
        flush.write_out();
        assert!(
            calls.texts().get(2).is_some_and(|t| t.contains("issued three")),
            "written on demand: {:?}",
            calls.texts()
        );
        writer.shared.push(b"issued four\n", true);
        drop(flush);
        assert!(
            calls.texts().get(3).is_some_and(|t| t.contains("issued four")),
            "the last line is written when the process ends: {:?}",
            calls.texts()
        );
    }

    #[test]
    fn waiting_lines_are_written_together_by_the_thread() {
        let calls = Calls::default();
        let (writer, flush) = LogWriter::new(calls.clone(), NEVER);
        for n in 0..100 {
            writer.shared.push(format!("line {n}\n").as_bytes(), true);
        }
        drop(flush);
        let lines: String = (0..100).map(|n| format!("line {n}\n")).collect();
        assert_eq!(calls.texts(), vec![lines], "one write, in order");

        // And without a flush, once the delay has passed.
        let calls = Calls::default();
        let (writer, _flush) = LogWriter::new(calls.clone(), Duration::from_millis(1));
        writer.shared.push(b"soon\n", true);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while calls.texts().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(calls.texts(), vec!["soon\n".to_owned()]);
    }

    #[test]
    fn a_backlog_is_written_at_once_rather_than_held() {
        let calls = Calls::default();
        let (writer, _flush) = LogWriter::new(calls.clone(), NEVER);
        let line = vec![b'x'; 1023];
        for _ in 0..BACKLOG / 1024 {
            writer.shared.push(&[line.as_slice(), b"\n"].concat(), true);
        }
        assert!(calls.texts().is_empty(), "up to the backlog, lines wait");
        writer.shared.push(b"one more\n", true);
        let written = calls.texts();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].len(), BACKLOG + "one more\n".len(), "all of it");
    }

    #[test]
    fn after_the_flush_every_line_is_written_at_once() {
        let calls = Calls::default();
        let (writer, flush) = LogWriter::new(calls.clone(), NEVER);
        drop(flush);
        writer.shared.push(b"late\n", true);
        assert_eq!(calls.texts(), vec!["late\n".to_owned()]);
    }
}
