//! Group commit of consent changes: concurrent [`crate::Vault::record_consent`] calls share
//! one ledger commit and one store transaction, as single collections do (`collector.rs`).
//!
//! A change is checked, and its receipt signed, on its caller's thread; the record and its
//! ledger draft go to the gathering thread, which hands everything queued to the ledger
//! writer at once — under load once the batch has stopped growing (`ledger::Gather`). Once the entries are durable the storing thread stores the records with
//! [`Store::put_consents`], at most [`STORE_BATCH`] a transaction, and answers the callers.
//!
//! INVARIANT: audit before data — the entries commit before the records, so a crash between
//! the two leaves entries without records (the callers were never answered), never a record
//! without its entry. A batch the store fails gets a `failed` entry per change.

use std::sync::mpsc;
use std::thread;

use crate::error::{Error, Result};
use crate::ledger::{Appender, Draft, Gather, next_group};
use crate::store::{ConsentRow, Store};

/// Most records stored in one transaction.
const MAX_BATCH: usize = 1024;
/// Most records stored in one transaction: what the ledger commits while a transaction is
/// written is stored in transactions of at most this many. A transaction's pages stay in
/// its connection's page cache until it commits, and SQLite never shrinks a cache's hash
/// table, which it walks whole at the end of most commits (see `WRITER_CACHE` in
/// `store/sqlite.rs`); 128 records dirty a few hundred pages (docs/benchmarks.md).
const STORE_BATCH: usize = 128;
/// The smallest last batch after which, while changes keep coming, a batch is held open
/// to grow ([`Gather::new`]).
const GATHER_FROM: usize = 2;

/// What a caller is told once its change is stored and ledgered, or why not.
pub(crate) type Reply = Box<dyn FnOnce(Result<()>) + Send>;

struct Pending {
    row: ConsentRow,
    draft: Draft,
    reply: Reply,
}

type Ledgered = (Vec<Pending>, Result<()>);

/// The writer of consent changes.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Pending>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("consent::Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the gathering and storing threads.
    pub(crate) fn start(store: std::sync::Arc<dyn Store>, ledger: Appender) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Pending>();
        let (durable_tx, durable_rx) = mpsc::channel::<Ledgered>();
        let store_ledger = ledger.clone();
        let failed = || Error::Storage("cannot start the consent writer".into());
        let gather = thread::Builder::new()
            .name("custos-consent".into())
            .spawn(move || gatherer(&ledger, &rx, &durable_tx))
            .map_err(|_| failed())?;
        let storer = thread::Builder::new()
            .name("custos-consent-store".into())
            .spawn(move || storer(&*store, &store_ledger, &durable_rx))
            .map_err(|_| failed())?;
        Ok(Self {
            tx: Some(tx),
            threads: vec![gather, storer],
        })
    }

    /// Queues a change and returns at once; `reply` is called once its entry is durable and
    /// its record stored, or with the error (dropped uncalled only if the writer stopped,
    /// which this then reports).
    pub(crate) fn submit(&self, row: ConsentRow, draft: Draft, reply: Reply) -> Result<()> {
        let stopped = || Error::Storage("consent writer stopped".into());
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(Pending { row, draft, reply })
            .map_err(|_| stopped())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn gatherer(ledger: &Appender, rx: &mpsc::Receiver<Pending>, durable: &mpsc::Sender<Ledgered>) {
    // One batch at the ledger at a time: while it commits, the next one gathers — and under
    // load it is held open while it grows (`ledger::Gather`): each batch costs two commits,
    // the ledger's and the records', whose fsyncs and whole-page WAL writes cost the same
    // for one change as for fifty.
    let mut gather = Gather::new(GATHER_FROM, MAX_BATCH);
    while let Some(batch) = next_group(rx, &mut gather, |_| 1) {
        let drafts: Vec<Draft> = batch.iter().map(|p| p.draft.clone()).collect();
        let next = durable.clone();
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
        // Everything ledgered while the last transaction was written goes in one.
        let mut ledgered = vec![first];
        let mut rows = ledgered.iter().map(|(b, _)| b.len()).sum::<usize>();
        while rows < MAX_BATCH {
            match rx.try_recv() {
                Ok(b) => {
                    rows += b.0.len();
                    ledgered.push(b);
                }
                Err(_) => break,
            }
        }
        let mut batch = Vec::new();
        for (b, r) in ledgered {
            match r {
                Ok(()) => batch.extend(b),
                Err(e) => {
                    for p in b {
                        (p.reply)(Err(e.clone()));
                    }
                }
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
