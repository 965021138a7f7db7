//! The threads vault calls run on.
//!
//! The vault is synchronous, and its PostgreSQL client (the `postgres` crate) runs its own
//! Tokio runtime inside each call: on a thread of ours that is inside a runtime context —
//! including Tokio's blocking pool — it panics ("cannot start a runtime from within a
//! runtime"). So vault calls run on plain threads that never enter a runtime, and answer
//! over a oneshot channel. The pool's size also bounds how many vault calls run at once.
//! Each thread logs through its app's [`Log`], like the requests whose calls it runs.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::Log;
use crate::problem::Problem;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of plain threads.
#[derive(Debug)]
pub(crate) struct Workers {
    tx: mpsc::Sender<Job>,
}

impl Workers {
    /// Starts `n` threads (at least one), logging to `log`.
    pub(crate) fn start(n: usize, log: &Log) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n.max(1) {
            let rx = Arc::clone(&rx);
            let dispatch = log.scoped().cloned();
            std::thread::Builder::new()
                .name(format!("custos-vault-{i}"))
                .spawn(move || {
                    let _log = dispatch.as_ref().map(tracing::dispatcher::set_default);
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panic fails that request only; the thread goes on.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self { tx })
    }

    /// Runs `f` on a worker thread and awaits its result.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (otx, orx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = otx.send(f());
            }))
            .map_err(|_| Problem::internal("the vault workers stopped"))?;
        orx.await
            .map_err(|_| Problem::internal("a vault call failed without an answer (panic)"))
    }
}
