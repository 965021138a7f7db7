//! Group commit of consent changes: concurrent [`crate::Vault::record_consent`] calls share
//! one ledger commit and one store transaction, as single collections do (`collector.rs`).
//!
//! A change is checked, and its receipt signed, on its caller's thread; its ledger draft
//! goes straight to the ledger writer, whose group commit it joins (held open under load,
//! `ledger::Gather`). Once an entry is durable the ledger writer hands its change to the
//! storing thread, which stores everything that came while it wrote the last records with
//! [`Store::put_consents`], at most [`STORE_BATCH`] a transaction, and answers the callers.
//! (A gathering thread of its own between the callers and the ledger, as before, cost a
//! thread hop and two context switches a batch: docs/benchmarks.md.)
//!
//! INVARIANT: audit before data — the entries commit before the records, so a crash between
//! the two leaves entries without records (the callers were never answered), never a record
//! without its entry. A batch the store fails gets a `failed` entry per change.

use std::sync::mpsc;
use std::thread;

use crate::error::{Error, Result};
use crate::ledger::{Appender, Draft};
use crate::store::{ConsentRow, Store};

/// Most records stored at once: what the ledger made durable while the last records were
/// written, taken in one go (and stored [`STORE_BATCH`] a transaction).
const MAX_BATCH: usize = 1024;
/// Most records stored in one transaction: what the ledger commits while a transaction is
/// written is stored in transactions of at most this many. A transaction's pages stay in
/// its connection's page cache until it commits, and SQLite never shrinks a cache's hash
/// table, which it walks whole at the end of most commits (see `WRITER_CACHE` in
/// `store/sqlite.rs`); 128 records dirty a few hundred pages (docs/benchmarks.md).
const STORE_BATCH: usize = 128;

/// What a caller is told once its change is stored and ledgered, or why not.
pub(crate) type Reply = Box<dyn FnOnce(Result<()>) + Send>;

struct Pending {
    row: ConsentRow,
    draft: Draft,
    reply: Reply,
}

/// A change whose entry the ledger committed (or failed).
type Ledgered = (Pending, Result<()>);

/// The writer of consent changes.
pub(crate) struct Writer {
    ledger: Option<Appender>,
    durable: Option<mpsc::Sender<Ledgered>>,
    storer: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("consent::Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the storing thread.
    pub(crate) fn start(store: std::sync::Arc<dyn Store>, ledger: Appender) -> Result<Self> {
        let (durable, rx) = mpsc::channel::<Ledgered>();
        let store_ledger = ledger.clone();
        let storer = thread::Builder::new()
            .name("custos-consent-store".into())
            .spawn(move || storer(&*store, &store_ledger, &rx))
            .map_err(|_| Error::Storage("cannot start the consent writer".into()))?;
        Ok(Self {
            ledger: Some(ledger),
            durable: Some(durable),
            storer: Some(storer),
        })
    }

    /// Queues a change and returns at once; `reply` is called once its entry is durable and
    /// its record stored, or with the error (dropped uncalled only if the writer stopped,
    /// which this then reports).
    pub(crate) fn submit(&self, row: ConsentRow, draft: Draft, reply: Reply) -> Result<()> {
        let stopped = || Error::Storage("consent writer stopped".into());
        let (Some(ledger), Some(durable)) = (&self.ledger, &self.durable) else {
            return Err(stopped());
        };
        let next = durable.clone();
        let pending = Pending {
            row,
            draft: draft.clone(),
            reply,
        };
        // The entry joins the ledger's next group commit, with everything else queued
        // there; once it is durable the change goes to the storing thread.
        ledger.submit(
            vec![draft],
            Box::new(move |r| {
                let _ = next.send((pending, r.map(|_| ())));
            }),
        )
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The storing thread ends once every sender is gone: this one, and those of the
        // changes still queued at the ledger (sent on, or dropped, by its writer).
        drop(self.ledger.take());
        drop(self.durable.take());
        if let Some(t) = self.storer.take() {
            let _ = t.join();
        }
    }
}

fn storer(store: &dyn Store, ledger: &Appender, rx: &mpsc::Receiver<Ledgered>) {
    while let Ok(first) = rx.recv() {
        // Everything ledgered while the last transaction was written goes in one.
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some((p, r)) = next.take() {
            match r {
                Ok(()) => batch.push(p),
                Err(e) => (p.reply)(Err(e)),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let chunk: Vec<Pending> = batch.by_ref().take(STORE_BATCH).collect();
            store_chunk(store, ledger, chunk);
        }
    }
}

/// Stores one transaction's records and answers their callers.
fn store_chunk(store: &dyn Store, ledger: &Appender, batch: Vec<Pending>) {
    let rows: Vec<&ConsentRow> = batch.iter().map(|p| &p.row).collect();
    // A panic in the store fails this batch, not the writer.
    let stored =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.put_consents(&rows)))
            .unwrap_or_else(|_| Err(Error::Storage("the consent writer failed".into())));
    if let Err(e) = stored {
        // The entries said `given` or `withdrawn`; the ledger now says no record was kept.
        let failed: Vec<Draft> = batch
            .iter()
            .map(|p| Draft {
                time_ms: crate::store::now_ms(),
                effect: "failed".into(),
                reasons: e.code().into(),
                ..p.draft.clone()
            })
            .collect();
        let _ = ledger.append_many(failed);
        for p in batch {
            (p.reply)(Err(e.clone()));
        }
        return;
    }
    for p in batch {
        (p.reply)(Ok(()));
    }
}
