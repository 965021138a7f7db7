//! Group commit of single collections: concurrent [`crate::Vault::collect`] calls share one
//! ledger commit and one store transaction.
//!
//! A collection is checked and sealed on its caller's thread (every core at once); the sealed
//! subject and its ledger draft go to the gathering thread, which takes everything queued and
//! hands the drafts to the ledger writer ([`Appender::submit`]). Once they are durable the
//! ledger writer passes the batch to the storing thread, which stores it with
//! [`Store::create_subjects`] in one transaction and answers the callers; meanwhile the next
//! batch's entries commit. A caller is answered once its entry is durable and its subject
//! stored — the same promise as a collection alone, at one ledger commit and one data commit
//! (two fsyncs on SQLite: `custos.db` and `keys.db`) per batch instead of per subject.
//!
//! INVARIANT: audit before data — the entries commit before the subjects they record, so a
//! crash between the two leaves entries without data (the callers were never answered),
//! never personal information held without its `collect` entry. A batch the store fails
//! gets a `failed` entry per subject.
//!
//! The threads stop when the vault is dropped, after the batches in flight.

use std::sync::mpsc;
use std::thread;

use crate::error::{Error, Result};
use crate::ledger::{Appender, Draft};
use crate::store::{NewSubject, Store};

/// Most subjects stored in one transaction.
const MAX_BATCH: usize = 1024;

/// What a caller is told: stored and ledgered, or why not.
type Reply = mpsc::SyncSender<Result<()>>;

/// One sealed collection, waiting to be stored.
struct Pending {
    new: NewSubject,
    draft: Draft,
    reply: Reply,
}

/// The writer of single collections.
pub(crate) struct Collector {
    tx: Option<mpsc::Sender<Pending>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

/// A batch whose entries are durable (or failed), on its way to the store.
type Ledgered = (Vec<Pending>, Result<()>);

impl Collector {
    /// Starts the gathering and storing threads.
    pub(crate) fn start(store: std::sync::Arc<dyn Store>, ledger: Appender) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Pending>();
        let (durable_tx, durable_rx) = mpsc::channel::<Ledgered>();
        let store_ledger = ledger.clone();
        let gather = thread::Builder::new()
            .name("custos-collect".into())
            .spawn(move || gatherer(&ledger, &rx, &durable_tx))
            .map_err(|_| Error::Storage("cannot start the collection writer".into()))?;
        let storer = thread::Builder::new()
            .name("custos-collect-store".into())
            .spawn(move || storer(&*store, &store_ledger, &durable_rx))
            .map_err(|_| Error::Storage("cannot start the collection writer".into()))?;
        Ok(Self {
            tx: Some(tx),
            threads: vec![gather, storer],
        })
    }

    /// Ledgers a sealed subject's collection and stores it; returns once both are durable.
    pub(crate) fn collect(&self, new: NewSubject, draft: Draft) -> Result<()> {
        let stopped = || Error::Storage("collection writer stopped".into());
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(Pending { new, draft, reply })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // The gatherer stops once its queue is closed; the storer once the gatherer and
        // every batch in the ledger writer's hands have let go of its queue.
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn gatherer(ledger: &Appender, rx: &mpsc::Receiver<Pending>, durable: &mpsc::Sender<Ledgered>) {
    // One batch at the ledger at a time: while it commits, the next one gathers (callers
    // wait for their answer, so a batch taken at once would hold the one or two that came
    // first, and every collection would pay a commit of its own).
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // The drafts go to the ledger; the batch waits in the callback for them to be
        // durable. Should the ledger writer have stopped, the callback is dropped uncalled,
        // and with it the replies: each caller hears that the writer stopped.
        let drafts: Vec<Draft> = batch
            .iter_mut()
            .map(|p| {
                let d = std::mem::take(&mut p.draft);
                // Kept for a `failed` entry, should the store fail.
                p.draft.actor.clone_from(&d.actor);
                d
            })
            .collect();
        let next = durable.clone();
        // Its own channel per batch: a callback the writer drops uncalled (it stopped)
        // closes it, and the wait below ends.
        let (done, committed) = mpsc::sync_channel::<()>(1);
        let submitted = ledger.submit(
            drafts,
            Box::new(move |r| {
                let _ = next.send((batch, r.map(|_| ())));
                let _ = done.send(());
            }),
        );
        if submitted.is_ok() {
            let _ = committed.recv();
        }
    }
}

fn storer(store: &dyn Store, ledger: &Appender, rx: &mpsc::Receiver<Ledgered>) {
    while let Ok(first) = rx.recv() {
        // Everything ledgered while the last transaction was written goes in one
        // transaction (the data commit costs more than the ledger's).
        let mut ledgered = vec![first];
        while ledgered.len() < 4 {
            match rx.try_recv() {
                Ok(b) => ledgered.push(b),
                Err(_) => break,
            }
        }
        let mut batch = Vec::new();
        for (b, r) in ledgered {
            match r {
                Ok(()) => batch.extend(b),
                Err(e) => {
                    for p in b {
                        let _ = p.reply.send(Err(e.clone()));
                    }
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        // A panic in the store fails this batch, not the writer: later collections go on.
        let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.create_subjects(&mut batch.iter().map(|p| Ok(&p.new)))
        }))
        .unwrap_or_else(|_| Err(Error::Storage("the collection writer failed".into())));
        if let Err(e) = stored {
            // The entries said `permit`; the ledger now says the data never arrived.
            let failed: Vec<Draft> = batch.iter().map(|p| failed_draft(p, &e)).collect();
            let _ = ledger.append_many(failed);
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
            continue;
        }
        for p in batch {
            let _ = p.reply.send(Ok(()));
        }
    }
}

/// The entry that follows a `collect` whose data the store did not keep.
fn failed_draft(p: &Pending, e: &Error) -> Draft {
    Draft {
        time_ms: crate::store::now_ms(),
        actor: p.draft.actor.clone(),
        action: "collect".into(),
        subject: p.new.row.id.clone(),
        effect: "failed".into(),
        reasons: e.code().into(),
        ..Draft::default()
    }
}
