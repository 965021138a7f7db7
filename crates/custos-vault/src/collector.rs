//! Group commit of single collections: concurrent [`crate::Vault::collect`] calls share one
//! store transaction and one ledger commit.
//!
//! A collection is checked and sealed on its caller's thread (every core at once); the sealed
//! subject and its ledger draft go to one writer thread, which takes everything queued,
//! stores it with [`Store::create_subjects`] in one transaction, then hands the drafts to the
//! ledger writer ([`Appender::submit`]) and goes on with the next batch while that commits.
//! A caller is answered once its subject is stored and its entry durable — the same promise
//! as a collection alone, at one data commit (two fsyncs on SQLite: `custos.db` and
//! `keys.db`) and one ledger commit per batch instead of per subject.
//!
//! The thread stops when the vault is dropped, after the batch it is writing.

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
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

impl Collector {
    /// Starts the writer thread.
    pub(crate) fn start(store: std::sync::Arc<dyn Store>, ledger: Appender) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Pending>();
        let thread = thread::Builder::new()
            .name("custos-collect".into())
            .spawn(move || writer(&*store, &ledger, &rx))
            .map_err(|_| Error::Storage("cannot start the collection writer".into()))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stores a sealed subject and ledgers its collection; returns once both are durable.
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
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer(store: &dyn Store, ledger: &Appender, rx: &mpsc::Receiver<Pending>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // A panic in the store fails this batch, not the writer: later collections go on.
        let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.create_subjects(&mut batch.iter().map(|p| Ok(&p.new)))
        }))
        .unwrap_or_else(|_| Err(Error::Storage("the collection writer failed".into())));
        let (drafts, replies): (Vec<Draft>, Vec<Reply>) =
            batch.into_iter().map(|p| (p.draft, p.reply)).unzip();
        if let Err(e) = stored {
            for r in replies {
                let _ = r.send(Err(e.clone()));
            }
            continue;
        }
        // INVARIANT: the entries commit after the subjects they record; each caller is
        // answered once its entry is durable. Should the ledger writer have stopped, the
        // callback is dropped uncalled, and with it the replies: each caller hears that the
        // writer stopped.
        let _ = ledger.submit(
            drafts,
            Box::new(move |r| {
                for reply in replies {
                    let _ = reply.send(r.clone().map(|_| ()));
                }
            }),
        );
    }
}
