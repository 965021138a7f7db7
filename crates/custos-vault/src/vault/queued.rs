//! Entries recorded without waiting: a short call — one person's state read and decided on,
//! a consent change checked and signed — can run on the thread that serves its request
//! (an HTTP server's async worker) only if nothing in it waits for a commit. Its refusals
//! are ledgered as the call goes (`Vault::record`), each waiting for its entry to be
//! durable; inside [`Vault::queueing_records`] they are queued instead, submitted as one
//! group when the call returns, and the caller is told when they are durable.
//!
//! INVARIANT: audit before answer — the caller answers only once `durable` has said so
//! (the server awaits it); the entries are submitted even when the call panics. A call run
//! this way writes no data after a `record` it relies on (the short calls only refuse after
//! one).

use std::cell::RefCell;

use super::Vault;
use crate::error::Result;
use crate::ledger::Draft;

thread_local! {
    /// The entries of the [`Vault::queueing_records`] call running on this thread.
    static QUEUED: RefCell<Option<Vec<Draft>>> = const { RefCell::new(None) };
}

/// Queues `d` when a [`Vault::queueing_records`] call runs on this thread; gives it back
/// otherwise.
pub(super) fn queue(d: Draft) -> Option<Draft> {
    QUEUED.with_borrow_mut(|q| match q {
        Some(q) => {
            q.push(d);
            None
        }
        None => Some(d),
    })
}

/// Restores the enclosing call's queue, and submits what a panicking call queued.
struct Queueing<'a> {
    vault: &'a Vault,
    outer: Option<Option<Vec<Draft>>>,
}

impl Queueing<'_> {
    fn take(&mut self) -> Vec<Draft> {
        let outer = self.outer.take().unwrap_or(None);
        QUEUED
            .with_borrow_mut(|q| std::mem::replace(q, outer))
            .unwrap_or_default()
    }
}

impl Drop for Queueing<'_> {
    fn drop(&mut self) {
        if self.outer.is_some() {
            let drafts = self.take();
            if !drafts.is_empty() {
                let _ = self.vault.ledger.submit(drafts, Box::new(|_| {}));
            }
        }
    }
}

impl Vault {
    /// Runs `f` with the entries it records queued instead of waited for; once `f` returns
    /// they are submitted to the ledger as one group and `durable` is called when they are
    /// durable (at once when there are none), or with the ledger's error. The caller must
    /// not answer before then (audit before answer).
    pub fn queueing_records<T>(
        &self,
        f: impl FnOnce(&Self) -> T,
        durable: impl FnOnce(Result<()>) + Send + 'static,
    ) -> T {
        let outer = QUEUED.with_borrow_mut(|q| q.replace(Vec::new()));
        let mut guard = Queueing {
            vault: self,
            outer: Some(outer),
        };
        let out = f(self);
        let drafts = guard.take();
        if drafts.is_empty() {
            durable(Ok(()));
        } else {
            // Not submitted only when the writer stopped: then `durable` is dropped uncalled,
            // which its caller takes for a failure (the server answers 500).
            let _ = self
                .ledger
                .submit(drafts, Box::new(move |r| durable(r.map(|_| ()))));
        }
        out
    }
}
