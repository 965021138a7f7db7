//! Request lines written in batches, as a web server's buffered access log is (nginx's
//! `access_log … buffer= flush=`): one `write` per batch, not one per request.
//!
//! A line a request's answer writes (target [`crate::observe::TARGET`], at `info` or below)
//! waits in memory until [`BATCH_BYTES`] have gathered or [`FLUSH_EVERY`] has passed since the
//! first of them, whichever is sooner. Every other line — a warning, an error, the server's
//! start and stop — is written at once, after whatever waits, so the order of lines is the
//! order they were logged in. [`LogBuffer::flush`] writes what waits (the server calls it once
//! stopped); so does dropping the last handle.
//!
//! Why: the `write` system call of each request's line was the larger part of what the log
//! cost a read (docs/benchmarks.md, "Issue 11"). A line can be [`FLUSH_EVERY`] late; none is
//! lost while the process lives.

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// The longest a request's line waits before it is written.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Bytes of waiting lines that are written at once, without waiting longer.
pub(crate) const BATCH_BYTES: usize = 32 * 1024;

/// A [`MakeWriter`] over `W` that batches the request lines (see the module's documentation).
/// Cheap to clone; the last handle dropped writes what waits and stops the flushing thread.
pub(crate) struct LogBuffer<W: for<'w> MakeWriter<'w> + Send + Sync + 'static> {
    inner: Arc<Inner<W>>,
    _stop: Arc<Stop<W>>,
}

impl<W: for<'w> MakeWriter<'w> + Send + Sync + 'static> Clone for LogBuffer<W> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _stop: Arc::clone(&self._stop),
        }
    }
}

struct Inner<W> {
    writer: W,
    /// The longest a request's line waits ([`FLUSH_EVERY`]).
    every: Duration,
    waiting: Mutex<Waiting>,
    /// Tells the flushing thread that lines wait, or that it is to stop.
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    lines: Vec<u8>,
    stop: bool,
}

/// Dropped with the last [`LogBuffer`]: stops the flushing thread, which writes what waits.
struct Stop<W: for<'w> MakeWriter<'w> + Send + Sync + 'static> {
    inner: Arc<Inner<W>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<W: for<'w> MakeWriter<'w> + Send + Sync + 'static> Drop for Stop<W> {
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.inner.flush();
    }
}

impl<W: for<'w> MakeWriter<'w> + Send + Sync + 'static> Inner<W> {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // A panic while a line was appended leaves at worst a partial line: keep logging.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `lines` (and clears it) with one `write_all`; called with the lock held, so
    /// batches and the lines written at once keep their order.
    fn write(&self, lines: &mut Vec<u8>) {
        if !lines.is_empty() {
            let _ = self.writer.make_writer().write_all(lines);
            lines.clear();
        }
    }

    fn flush(&self) {
        let mut waiting = self.lock();
        self.write(&mut waiting.lines);
    }

    /// Takes one line: kept to be written with others when `batched`, else written now,
    /// after what waits.
    fn put(&self, line: &[u8], batched: bool) {
        let mut waiting = self.lock();
        let first = waiting.lines.is_empty();
        waiting.lines.extend_from_slice(line);
        // Stopped (or without a flushing thread), nothing would write it later.
        if !batched || waiting.stop || waiting.lines.len() >= BATCH_BYTES {
            self.write(&mut waiting.lines);
        } else if first {
            // The flushing thread sleeps until lines wait.
            self.wake.notify_one();
        }
    }
}

/// The flushing thread: once lines wait, waits [`FLUSH_EVERY`] (or until stopped) and writes
/// whatever waits then.
fn flushing<W: for<'w> MakeWriter<'w> + Send + Sync + 'static>(inner: &Inner<W>) {
    let mut waiting = inner.lock();
    loop {
        while waiting.lines.is_empty() && !waiting.stop {
            waiting = inner
                .wake
                .wait(waiting)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let due = Instant::now() + inner.every;
        while !waiting.stop {
            let Some(left) = due.checked_duration_since(Instant::now()) else {
                break;
            };
            waiting = inner
                .wake
                .wait_timeout(waiting, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        inner.write(&mut waiting.lines);
        if waiting.stop {
            return;
        }
    }
}

impl<W: for<'w> MakeWriter<'w> + Send + Sync + 'static> LogBuffer<W> {
    /// Batches the request lines written to `writer`; starts the flushing thread (none
    /// started: every line is written at once).
    pub(crate) fn new(writer: W) -> Self {
        Self::every(writer, FLUSH_EVERY)
    }

    /// As [`LogBuffer::new`], a line waiting at most `every`.
    fn every(writer: W, every: Duration) -> Self {
        let inner = Arc::new(Inner {
            writer,
            every,
            waiting: Mutex::new(Waiting::default()),
            wake: Condvar::new(),
        });
        let thread = {
            let inner = Arc::clone(&inner);
            thread::Builder::new()
                .name("custos-log".into())
                .spawn(move || flushing(&inner))
                .ok()
        };
        if thread.is_none() {
            // Without the thread nothing would write a waiting line: write each at once.
            inner.lock().stop = true;
        }
        Self {
            _stop: Arc::new(Stop {
                inner: Arc::clone(&inner),
                thread,
            }),
            inner,
        }
    }

    /// Writes the lines that wait.
    pub(crate) fn flush(&self) {
        self.inner.flush();
    }
}

/// One event's writer: the formatters write a line with one `write_all`, which is one
/// [`std::io::Write::write`] here.
pub(crate) struct LineWriter<'a, W> {
    inner: &'a Inner<W>,
    batched: bool,
}

impl<W: for<'w> MakeWriter<'w> + Send + Sync + 'static> std::io::Write for LineWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.put(buf, self.batched);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, W: for<'w> MakeWriter<'w> + Send + Sync + 'static> MakeWriter<'a> for LogBuffer<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            inner: &self.inner,
            batched: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineWriter {
            inner: &self.inner,
            batched: meta.target() == crate::observe::TARGET
                && *meta.level() >= tracing::Level::INFO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What reached the writer, one entry per `write`.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<String>>>);

    impl std::io::Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn taken(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    /// A buffer whose lines wait longer than any test runs, unless `short`.
    fn buffer_waiting(
        short: bool,
    ) -> (LogBuffer<impl for<'w> MakeWriter<'w> + Send + Sync>, Writes) {
        let writes = Writes::default();
        let w = writes.clone();
        let every = if short {
            FLUSH_EVERY
        } else {
            Duration::from_secs(3600)
        };
        (LogBuffer::every(move || w.clone(), every), writes)
    }

    fn buffer() -> (LogBuffer<impl for<'w> MakeWriter<'w> + Send + Sync>, Writes) {
        buffer_waiting(false)
    }

    fn line(
        buffer: &LogBuffer<impl for<'w> MakeWriter<'w> + Send + Sync>,
        text: &str,
        batched: bool,
    ) {
        buffer.inner.put(text.as_bytes(), batched);
    }

    #[test]
    fn request_lines_wait_and_other_lines_follow_them_in_order() {
        let (buffer, writes) = buffer();
        line(&buffer, "a\n", true);
        line(&buffer, "b\n", true);
        line(&buffer, "warn\n", false);
        line(&buffer, "c\n", true);
        // The first three in one write, in the order logged; `c` waits.
        assert_eq!(writes.taken(), ["a\nb\nwarn\n"]);
        buffer.flush();
        assert_eq!(writes.taken(), ["a\nb\nwarn\n", "c\n"]);
    }

    #[test]
    fn a_full_batch_is_written_at_once() {
        let (buffer, writes) = buffer();
        let long = "x".repeat(1000) + "\n";
        for _ in 0..(BATCH_BYTES / long.len() + 1) {
            line(&buffer, &long, true);
        }
        let w = writes.taken();
        assert!(
            w.first().is_some_and(|b| b.len() >= BATCH_BYTES),
            "{:?}",
            w.len()
        );
    }

    #[test]
    fn a_waiting_line_is_written_by_the_thread_and_on_the_last_drop() {
        let (buffer, writes) = buffer_waiting(true);
        line(&buffer, "waits\n", true);
        // Written by the flushing thread, without a flush or another line.
        let deadline = Instant::now() + Duration::from_secs(30);
        while writes.taken().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the waiting line was never written"
            );
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(writes.taken(), ["waits\n"]);
        let copy = buffer.clone();
        line(&copy, "last\n", true);
        drop(buffer);
        drop(copy);
        assert_eq!(writes.taken().concat(), "waits\nlast\n");
    }

    /// What `log` logs through `tracing`'s formatter into a buffer, and what was written.
    fn logged(
        log: impl FnOnce(),
    ) -> (LogBuffer<impl for<'w> MakeWriter<'w> + Send + Sync>, Writes) {
        let (lines, writes) = buffer();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        (lines, writes)
    }

    #[test]
    fn the_request_lines_at_info_wait_and_the_rest_do_not() {
        let (lines, writes) = logged(|| {
            tracing::info!(target: "custos::serve", "started");
            tracing::info!(target: crate::observe::TARGET, "answered");
        });
        let w = writes.taken();
        assert!(w.len() == 1 && w[0].contains("started"), "{w:?}");
        lines.flush();
        assert!(writes.taken().concat().contains("answered"));
        let (_lines, writes) = logged(|| {
            tracing::warn!(target: crate::observe::TARGET, "answered");
        });
        assert!(writes.taken().concat().contains("WARN"));
    }
}
