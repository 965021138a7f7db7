//! The WAL checkpointer of the SQLite store: copies committed WAL frames into `custos.db`
//! and `keys.db` on its own thread, and restarts a WAL that has grown — syncing the database
//! file first, outside SQLite's locks, so the `RESTART` (which holds the write lock) has
//! little left to sync.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Audit, BUSY_STEP, DATA_FILE, KEYS_FILE, busy_wait, connect};
use crate::error::{Error, Result};

/// Rows a transaction writes from which it wakes the [`WalCheckpointer`] at once; smaller
/// ones wait for its next round.
const CHECKPOINT_ROWS: u64 = 1000;
/// The longest the checkpointer waits between rounds while the WALs are idle.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// The shortest time between two rounds (wakes in between are folded into one), and the
/// time between rounds while they copy frames: each syncs what it copied, so a busy
/// database's dirty pages go to disk a tenth of a second's worth at a time, not a second's
/// at once.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

/// Copies committed WAL frames into the data and key database files (`custos.db`,
/// `keys.db`) on its own thread and connection, so no data commit does: SQLite's automatic
/// checkpoint, which runs inside the commit that takes a WAL past 1000 pages, is off on the
/// writer connection. `ledger.db` keeps the automatic checkpoint on its own connection: its
/// commits are small and frequent, and a background checkpoint's fsync competing with them
/// cost grouped appends a third to a half of their rate. A round runs every 100 ms while
/// rounds copy frames, else every second, and after a large transaction commits (at most one
/// round per 100 ms). Rounds are `PASSIVE`: they block neither writers nor readers, and what
/// they cannot copy yet waits for the next one; each syncs what it copied through the file's
/// own descriptor ([`DbFile`]), outside SQLite's locks.
#[derive(Debug)]
pub(super) struct WalCheckpointer {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WalCheckpointer {
    pub(super) fn start(dir: &Path) -> Result<Self> {
        let conn = connect(dir, Audit::ReadOnly)?;
        // Durable checkpoints: the database files are synced before the WAL is reused.
        conn.execute_batch(
            "PRAGMA main.synchronous = FULL; PRAGMA keys.synchronous = FULL; \
             PRAGMA audit.synchronous = FULL;",
        )?;
        // The files this store's connections opened: they exist now.
        let files = [
            ("main", DbFile::of(&dir.join(DATA_FILE))),
            ("keys", DbFile::of(&dir.join(KEYS_FILE))),
        ];
        let (wake, rx) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("custos-checkpoint".into())
            .spawn(move || checkpoint_rounds(&conn, &files, &rx))
            .map_err(|_| Error::Storage("cannot start the WAL checkpointer".into()))?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// After a commit of `rows` rows: wakes the checkpointer if that was many.
    pub(super) fn committed(&self, rows: u64) {
        if rows >= CHECKPOINT_ROWS {
            if let Some(w) = &self.wake {
                // Full: a round is already due.
                let _ = w.try_send(());
            }
        }
    }
}

/// The checkpointer's loop, until its store is dropped (then one last round).
fn checkpoint_rounds(
    conn: &Connection,
    files: &[(&str, Option<Arc<File>>); 2],
    wake: &mpsc::Receiver<()>,
) {
    let mut last = Instant::now();
    // Whether the last round copied frames: then the next comes after CHECKPOINT_PAUSE.
    let mut busy = false;
    // Per file, the frames of its WAL copied so far (SQLite counts from the WAL's start).
    let mut copied_before = [0i64; 2];
    loop {
        let every = if busy {
            CHECKPOINT_PAUSE
        } else {
            CHECKPOINT_EVERY
        };
        let mut stop = matches!(
            wake.recv_timeout(every),
            Err(RecvTimeoutError::Disconnected)
        );
        while let Some(left) = (last + CHECKPOINT_PAUSE).checked_duration_since(Instant::now()) {
            if stop || left.is_zero() {
                break;
            }
            stop = matches!(wake.recv_timeout(left), Err(RecvTimeoutError::Disconnected));
        }
        busy = false;
        // Not `audit`: the ledger connection checkpoints `ledger.db` itself.
        for ((schema, file), before) in files.iter().zip(&mut copied_before) {
            busy |= round(conn, schema, file.as_ref(), before);
        }
        last = Instant::now();
        if stop {
            break;
        }
    }
}

/// One round of `schema`'s WAL: a `PASSIVE` checkpoint, the sync of what it copied and,
/// when the WAL has grown past [`RESTART_FRAMES`], its restart. `before` is the frames the
/// last round had copied (SQLite counts from the WAL's start); returns whether this one
/// copied any.
fn round(conn: &Connection, schema: &str, file: Option<&Arc<File>>, before: &mut i64) -> bool {
    // A busy or failed round is retried by the next one.
    let Some((frames, copied)) = passive(conn, schema) else {
        return false;
    };
    // Frames copied by this round (after a restart the count starts again).
    let progressed = copied != *before && copied > 0;
    *before = copied;
    // What the round copied is synced here, while writers go on, a round's worth at a
    // time: under a stream of commits SQLite never syncs it (it syncs the file only once
    // every frame is copied), so the `RESTART` did — holding the write lock, every commit
    // waiting, for 28–32 ms a second (docs/benchmarks.md). A failed sync is the
    // `RESTART`'s to do again. A round that copied every frame has had SQLite sync the file
    // already.
    if let Some(f) = file.filter(|_| progressed && copied < frames) {
        let _ = f.sync_data();
    }
    if frames >= RESTART_FRAMES {
        // What came while this round copied and synced is copied and synced too, still
        // outside the write lock: the `RESTART` then has a few milliseconds' frames left to
        // copy and sync while every writer waits, not a round's (docs/benchmarks.md: 2.0–2.8
        // ms against 5.0 ms on average under consent changes).
        for _ in 0..PRE_RESTART_ROUNDS {
            let Some((frames, copied)) = passive(conn, schema) else {
                break;
            };
            let moved = copied != *before;
            *before = copied;
            if copied >= frames {
                // All copied: SQLite synced the file itself.
                break;
            }
            if !moved {
                // A reader holds back what is left: nothing new to sync, nor to wait for.
                break;
            }
            if let Some(f) = file {
                let _ = f.sync_data();
            }
        }
        restart_wal(conn, schema);
    }
    progressed
}

/// One `PASSIVE` checkpoint of `schema`: the frames in its WAL and how many of them are
/// copied into the database file now; `None` when it failed (busy, say).
fn passive(conn: &Connection, schema: &str) -> Option<(i64, i64)> {
    conn.query_row(
        &format!("PRAGMA {schema}.wal_checkpoint(PASSIVE)"),
        [],
        |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
    )
    .ok()
}

/// `PASSIVE` rounds, each synced, run just before a [`restart_wal`].
const PRE_RESTART_ROUNDS: usize = 2;

/// WAL frames (4 KiB pages) after a `PASSIVE` round from which the checkpointer restarts
/// the WAL ([`restart_wal`]): 16 MiB.
const RESTART_FRAMES: i64 = 4096;
/// The longest a [`restart_wal`] waits for readers (writers wait behind it meanwhile).
const RESTART_WAIT: Duration = Duration::from_millis(20);

/// Checkpoints `schema` in `RESTART` mode, so the next transaction writes its WAL from the
/// start. Under a steady stream of commits and reads a `PASSIVE` round never leaves the WAL
/// wholly copied when a writer begins (some reader always holds a snapshot of frames not
/// yet copied), and SQLite restarts a WAL only then: the WAL grew without bound (a gigabyte
/// in 20 s of consent changes), and every frame written past its end made the file system
/// zero new blocks (a sixth of the consent store's CPU). `RESTART` takes the write lock,
/// copies what the `PASSIVE` round left and waits for the readers of older snapshots
/// (reads are short) — at most [`RESTART_WAIT`], else the next round tries again. The file
/// keeps its size, so the frames after a restart overwrite allocated blocks.
fn restart_wal(conn: &Connection, schema: &str) {
    if conn.busy_handler(Some(busy_wait_restart)).is_err() {
        return;
    }
    let _ = conn.query_row(
        &format!("PRAGMA {schema}.wal_checkpoint(RESTART)"),
        [],
        |_| Ok(()),
    );
    let _ = conn.busy_handler(Some(busy_wait));
}

/// [`busy_wait`] for at most [`RESTART_WAIT`]: the checkpointer's `RESTART` waiting for the
/// readers of older snapshots, while writers wait behind it.
fn busy_wait_restart(tries: i32) -> bool {
    const TRIES: u128 = RESTART_WAIT.as_micros() / BUSY_STEP.as_micros();
    if u128::try_from(tries).unwrap_or(0) >= TRIES {
        return false;
    }
    std::thread::sleep(BUSY_STEP);
    true
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A database file's own descriptor, through which the checkpointer syncs it outside
/// SQLite's locks ([`DbFile::of`]).
///
/// INVARIANT: a descriptor of a database file is never closed while it is linked in the
/// file system. Closing any descriptor of a file drops every POSIX lock the process holds on
/// it — those of SQLite's own connections included, which would let another process
/// checkpoint or recover the database under them. So each file is opened once per process
/// and kept; a file no longer linked (a test's removed directory, a file replaced) can be
/// opened by no one else, and its descriptor is closed at the next [`DbFile::of`].
struct DbFile;

/// A file's device and inode.
type FileId = (u64, u64);

impl DbFile {
    /// The process's descriptor of the file at `path`: one per file (device and inode),
    /// opened at the first call. `None` when it cannot be opened; the `RESTART` then syncs
    /// the file itself, as it always does.
    fn of(path: &Path) -> Option<Arc<File>> {
        static OPEN: Mutex<Vec<(FileId, Arc<File>)>> = Mutex::new(Vec::new());
        let meta = std::fs::metadata(path).ok()?;
        let id = (meta.dev(), meta.ino());
        let mut open = OPEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Files no one can open any more: their locks guard nothing.
        open.retain(|(_, f)| f.metadata().is_ok_and(|m| m.nlink() > 0));
        if let Some((_, f)) = open.iter().find(|(i, _)| *i == id) {
            return Some(Arc::clone(f));
        }
        let file = Arc::new(File::open(path).ok()?);
        open.push((id, Arc::clone(&file)));
        Some(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One descriptor per file while it is linked — closing a second one would drop the
    /// SQLite connections' locks on it — and a removed file's is closed at the next call.
    #[test]
    fn a_database_file_has_one_descriptor_until_it_is_removed() {
        let dir = std::env::temp_dir().join(format!("custos_dbfile_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.db"), dir.join("b.db"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let first = DbFile::of(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &DbFile::of(&a).unwrap()));
        assert!(!Arc::ptr_eq(&first, &DbFile::of(&b).unwrap()));
        // Linked: the process keeps it even when no checkpointer holds it.
        let kept = Arc::downgrade(&first);
        drop(first);
        assert!(DbFile::of(&b).is_some());
        assert!(
            kept.upgrade().is_some(),
            "a linked file's descriptor was closed"
        );
        // Removed, then another file of that name: the old descriptor goes, a new one comes.
        std::fs::remove_file(&a).unwrap();
        std::fs::write(&a, b"a again").unwrap();
        let again = DbFile::of(&a).unwrap();
        assert!(
            kept.upgrade().is_none(),
            "a removed file's descriptor was kept"
        );
        assert!(again.metadata().unwrap().nlink() > 0);
        assert!(DbFile::of(&dir.join("missing.db")).is_none());
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A WAL past the restart size is copied, synced and restarted by one round, with
    /// nothing lost, even while a reader holds a snapshot of frames a `PASSIVE` checkpoint
    /// cannot copy yet (as some reader always does under load): the `RESTART` waits for it,
    /// and the next commit writes from the WAL's start. Without the `RESTART` the WAL would
    /// go on growing: SQLite reuses it by itself only once every frame is copied.
    #[test]
    fn a_round_restarts_a_wal_past_its_restart_size() {
        let dir = std::env::temp_dir().join(format!("custos_restart_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
            )
            .unwrap();
        // A page and more per row, in small transactions: a WAL of more than RESTART_FRAMES,
        // with a reader's snapshot before its last transaction.
        let chunks = RESTART_FRAMES / 100 + 2;
        let reader = Connection::open(&path).unwrap();
        for chunk in 0..chunks {
            if chunk == chunks - 1 {
                reader
                    .execute_batch("BEGIN; SELECT count(*) FROM t;")
                    .unwrap();
            }
            let tx = writer.unchecked_transaction().unwrap();
            for i in 0..100 {
                tx.execute(
                    "INSERT INTO t (id, v) VALUES (?1, zeroblob(4200))",
                    [chunk * 100 + i],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        // The reader ends its snapshot once something holds the write lock (the `RESTART`,
        // waiting for it), or after five seconds.
        let probe_path = path.clone();
        let holder = std::thread::spawn(move || {
            let probe = Connection::open(&probe_path).unwrap();
            // Told `SQLITE_BUSY` at once, not after rusqlite's default five seconds.
            probe.busy_timeout(Duration::ZERO).unwrap();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until
                && probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok()
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            reader.execute_batch("COMMIT").unwrap();
        });
        let checkpointer = Connection::open(&path).unwrap();
        checkpointer.busy_handler(Some(busy_wait)).unwrap();
        let file = DbFile::of(&path);
        let mut before = 0;
        assert!(round(&checkpointer, "main", file.as_ref(), &mut before));
        // A holder too slow to see the `RESTART` wait (a loaded machine) sees the next one.
        for _ in 0..20 {
            if holder.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            round(&checkpointer, "main", file.as_ref(), &mut before);
        }
        holder.join().unwrap();
        // A holder that saw the last `RESTART` only after it gave up (a loaded machine)
        // ended its snapshot after every round: one more, with no reader left, restarts.
        round(&checkpointer, "main", file.as_ref(), &mut before);
        writer
            .execute("INSERT INTO t (id, v) VALUES (?1, x'00')", [chunks * 100])
            .unwrap();
        let (frames, _) = passive(&checkpointer, "main").unwrap();
        assert!(frames < 10, "the WAL was not restarted: {frames} frames");
        let count: i64 = checkpointer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, chunks * 100 + 1);
        drop((writer, checkpointer));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
