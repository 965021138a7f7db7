//! Two-phase erasure, the second phase: an erased subject's records are deleted after the
//! erasure returned, in bounded transactions, by a thread the vault owns.
//!
//! [`crate::Vault::erase`] destroys the subject's data key, deletes its values, index terms
//! and consents, marks it erased and queues it (the `erasures` table), all in one
//! transaction; from that commit on nothing of the subject reads or decrypts. Its records are
//! still rows of the `records` table then — ciphertext under a key that exists nowhere, which
//! no read returns — and deleting 100,000 of them in that same transaction would hold the one
//! SQLite writer for hundreds of milliseconds. The purger deletes them [`CHUNK`] rows per
//! transaction instead, ledgers the completed purge (`purge_erased`: the subject id and a
//! count, nothing else), and on open resumes a purge that a crash or a shutdown interrupted.
//!
//! The thread stops when the vault is dropped: at most one chunk's transaction is waited for,
//! and it holds neither the store nor the ledger afterwards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ledger::{Appender, Draft};
use crate::store::{Store, now_ms};
use crate::vault::OPERATOR;

/// Records deleted per transaction: writes queued behind the purge (reads' ledger entries
/// among them) wait at most one chunk. On SQLite, a chunk of a 100k-record subject held the
/// writer 40–110 ms on the project's 2-core machine under load (load average ~4), and 2,000
/// rows took nearly as long: each chunk rewrites most leaf pages of the random-keyed
/// `records.id` index whatever its size, so smaller chunks buy little and cost more in total.
pub const CHUNK: u64 = 5_000;

/// After a pass that failed or could not finish (database down, another server's purge in
/// the way), the background purger tries again after this long, or at the next erasure.
const RETRY: Duration = Duration::from_secs(30);

/// How a vault removes erased subjects' records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purging {
    /// A background thread purges after each erasure, and on open resumes any purge left
    /// unfinished.
    #[default]
    Background,
    /// Only [`crate::Vault::purge_erased`] purges: for tests, and for deployments that run
    /// the purge from one process of their choosing.
    OnDemand,
}

/// What the purger thread and [`Purger::purge_now`] share.
struct Shared {
    store: Arc<dyn Store>,
    ledger: Appender,
    /// One pass at a time in this process.
    pass: Mutex<()>,
    /// Set when the vault is dropped: a pass stops between chunks.
    stop: AtomicBool,
}

/// The purge of erased subjects' records, and its thread when [`Purging::Background`].
pub(crate) struct Purger {
    shared: Arc<Shared>,
    wake: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Purger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purger")
            .field("background", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl Purger {
    /// Starts the purger; in the background, its first pass resumes whatever is queued.
    pub(crate) fn start(store: Arc<dyn Store>, ledger: Appender, mode: Purging) -> Result<Self> {
        let shared = Arc::new(Shared {
            store,
            ledger,
            pass: Mutex::new(()),
            stop: AtomicBool::new(false),
        });
        let mut purger = Self {
            shared,
            wake: None,
            thread: None,
        };
        if mode == Purging::Background {
            let (tx, rx) = mpsc::channel();
            let shared = Arc::clone(&purger.shared);
            let thread = thread::Builder::new()
                .name("custos-purge".into())
                .spawn(move || run(&shared, &rx))
                .map_err(|_| Error::Storage("cannot start the erasure purger".into()))?;
            purger.wake = Some(tx);
            purger.thread = Some(thread);
        }
        Ok(purger)
    }

    /// Tells the background thread an erasure was queued.
    pub(crate) fn wake(&self) {
        if let Some(w) = &self.wake {
            let _ = w.send(());
        }
    }

    /// Purges everything queued on this thread, after any pass under way; returns how many
    /// records this call deleted.
    pub(crate) fn purge_now(&self) -> Result<u64> {
        pass(&self.shared).map(|p| p.deleted)
    }
}

impl Drop for Purger {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, wake: &mpsc::Receiver<()>) {
    loop {
        let settled = matches!(pass(shared), Ok(Pass { complete: true, .. }));
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let next = if settled {
            wake.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            wake.recv_timeout(RETRY)
        };
        match next {
            // Erasures that arrived meanwhile are all in the queue the next pass reads.
            Ok(()) | Err(RecvTimeoutError::Timeout) => while wake.try_recv().is_ok() {},
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// What one pass did.
struct Pass {
    /// Records deleted.
    deleted: u64,
    /// Every subject queued at its start is purged.
    complete: bool,
}

/// Purges every queued subject, chunk by chunk, and ledgers each one finished. A subject
/// that fails is left queued and the others go on; the first error is returned at the end.
fn pass(shared: &Shared) -> Result<Pass> {
    let _one = shared.pass.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = Pass {
        deleted: 0,
        complete: true,
    };
    let mut failed = None;
    let queue = shared.store.purge_queue()?;
    if queue.is_empty() {
        return Ok(out);
    }
    // First make sure the erased keys' bytes are out of the key store's files (SQLite:
    // `keys.db` and its WAL's older frames). The erasure did this already unless a reader
    // was in the way; until it succeeds no subject leaves the queue, so it is retried.
    if !shared.store.scrub_keys()? {
        return Err(Error::Storage(
            "the key database was busy: its log is not truncated yet".into(),
        ));
    }
    for subject in queue {
        let mut n = 0u64;
        let done = loop {
            if shared.stop.load(Ordering::Relaxed) {
                out.complete = false;
                return Ok(out);
            }
            match shared.store.purge_records(&subject, CHUNK) {
                Ok(p) => {
                    n += p.deleted;
                    out.deleted += p.deleted;
                    if p.done {
                        break true;
                    }
                    // Rows this transaction could not delete (another server's purge holds
                    // them): leave the subject queued for the next pass.
                    if p.deleted == 0 {
                        break false;
                    }
                }
                Err(e) => {
                    failed.get_or_insert(e);
                    break false;
                }
            }
        };
        if !done {
            out.complete = false;
            continue;
        }
        let draft = Draft {
            time_ms: now_ms(),
            actor: OPERATOR.to_string(),
            action: "purge_erased".into(),
            subject,
            effect: "done".into(),
            reasons: format!("count:{n}"),
            ..Draft::default()
        };
        if let Err(e) = shared.ledger.append(draft) {
            failed.get_or_insert(e);
            out.complete = false;
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
