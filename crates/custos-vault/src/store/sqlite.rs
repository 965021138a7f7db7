//! The embedded backend: SQLite via rusqlite (bundled).
//!
//! Layout in the data directory: `custos.db` holds subjects, values, records, consents and
//! API keys' hashes; `keys.db`, attached as schema `keys`, holds the wrapped data keys and
//! vault secrets — so a copy of `custos.db` alone cannot decrypt anything, even with the
//! master key; `ledger.db`, attached as schema `audit`, holds the ledger and its checkpoints,
//! so the ledger's many small commits do not invalidate the readers' cache of the data
//! tables. All run in WAL mode with `synchronous = FULL`: a commit returns after the WAL
//! is fsynced, which is what "the ledger entry is durable before the data" needs; the
//! ledger's group commit keeps that to one fsync per batch. `secure_delete` is `ON` in the key
//! database, so an erased wrapped key is overwritten in the file, and an erasure truncates the
//! key WAL; the data database, which holds only ciphertext, uses `FAST` (deleted cells are
//! zeroed in the pages a delete rewrites anyway, whole freed pages are not rewritten).
//!
//! SQLite does not make a transaction spanning two WAL databases atomic across a crash (it
//! commits them one after the other, this data database first). A torn one is harmless: a
//! new subject's row and values without their key cannot be decrypted (and the collection
//! was never acknowledged), and an erasure deletes the key in a commit of its own before
//! anything else.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{
    Age, ApiKeyRow, ConsentEvidence, ConsentRow, InstrumentRow, MailRow, MailingRow, NewSubject,
    Purged, RecordRow, RequestFilter, RequestRow, SessionRow, SignInCodeRow, Status, Store,
    SubjectRow, SubjectState, ValueRow,
};
use super::{
    Checkpointer, CookieConsentRow, CountRow, LedgerRow, LedgerVisitor, Rewrap, join, not_erased,
    now_ms, split,
};
use crate::error::{Error, Result};
use crate::ledger::tree::{self, Edge, TileIo, TileKey, Tiles};
use crate::ledger::{Chained, Checkpoint, Draft, GENESIS, LedgerEntry, block};

mod checkpoint;
use checkpoint::WalCheckpointer;

/// Name of the data database in the data directory.
pub const DATA_FILE: &str = "custos.db";
/// Name of the key database in the data directory.
pub const KEYS_FILE: &str = "keys.db";
/// Name of the ledger database in the data directory.
pub const LEDGER_FILE: &str = "ledger.db";

/// The ledger's tables in their own database, attached as schema `audit`. A commit to one
/// database of a connection leaves the page cache of the others valid: were the ledger in
/// `custos.db`, every group commit of read decisions would make every reader drop its cached
/// pages of the data tables and search a growing WAL for them. Created on every open (a no-op
/// once there); ledgers of older versions are moved here by `move_ledger`.
const LEDGER_SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS audit.ledger_blocks (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    entries BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.ledger_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit.ledger_tiles (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
";

/// The index from a subject to the ledger blocks holding entries about it, written with each
/// block (`append_in`), and the first seq it covers: the head's next when it was made (a
/// ledger older than the index is read in full before it). Made on open, after an older
/// ledger is converted to blocks; each statement is a no-op once done.
const LEDGER_SUBJECTS: &str = r"
CREATE TABLE IF NOT EXISTS audit.ledger_subjects (
    subject TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    PRIMARY KEY (subject, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit.ledger_subjects_from (seq INTEGER NOT NULL);
INSERT INTO audit.ledger_subjects_from (seq)
    SELECT COALESCE((SELECT MAX(last_seq) FROM audit.ledger_blocks), 0) + 1
    WHERE NOT EXISTS (SELECT 1 FROM audit.ledger_subjects_from);
";

/// The ledger as a row per entry, as versions before 0.3 kept it (in `custos.db` before
/// 0.2): created only to move an old `main.ledger` over, and converted into blocks by
/// `upgrade_ledger`.
const LEGACY_LEDGER: &str = r"
CREATE TABLE IF NOT EXISTS audit.ledger (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    purpose TEXT NOT NULL,
    recipient TEXT NOT NULL,
    categories TEXT NOT NULL,
    effect TEXT NOT NULL,
    reasons TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
";

/// Schema migrations, applied in order on open; `meta.schema_version` counts those applied.
/// Append new ones; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r"
CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    age TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE subject_tenants (
    subject TEXT NOT NULL,
    tenant TEXT NOT NULL,
    PRIMARY KEY (subject, tenant)
);
CREATE TABLE field_values (
    subject TEXT NOT NULL,
    category TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    purposes TEXT NOT NULL,
    notice TEXT NOT NULL,
    service TEXT NOT NULL,
    role TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, category)
);
CREATE TABLE blind_index (
    category TEXT NOT NULL,
    term TEXT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (category, term, subject)
);
CREATE INDEX blind_index_subject ON blind_index (subject);
CREATE TABLE records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    purposes TEXT NOT NULL,
    notice TEXT NOT NULL,
    retain_until_ms INTEGER,
    time_ms INTEGER NOT NULL
);
CREATE INDEX records_subject ON records (subject, collection, seq);
CREATE TABLE consents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    purpose TEXT NOT NULL,
    kind TEXT NOT NULL,
    given INTEGER NOT NULL,
    notice TEXT NOT NULL,
    method TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE INDEX consents_subject ON consents (subject, seq);
CREATE TABLE api_keys (
    hash TEXT PRIMARY KEY,
    accessor TEXT NOT NULL,
    revoked INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    purpose TEXT NOT NULL,
    recipient TEXT NOT NULL,
    categories TEXT NOT NULL,
    effect TEXT NOT NULL,
    reasons TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE ledger_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE keys.subject_keys (
    subject TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL
);
CREATE TABLE keys.secrets (
    name TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL
);
",
    // 2: the purge queue of two-phase erasure — subjects erased (key gone) whose records
    // are not all deleted yet.
    r"
CREATE TABLE IF NOT EXISTS erasures (
    subject TEXT PRIMARY KEY,
    queued_ms INTEGER NOT NULL
);
",
    // 3: the tables read and written by their primary key become `WITHOUT ROWID`: one
    // b-tree each instead of a rowid table plus a separate primary-key index. With
    // time-ordered subject ids each grows at its end. Every table is rebuilt (copied,
    // dropped, renamed), so an existing database keeps its rows. Should a crash tear this
    // transaction between the two databases, running it again on the next open is harmless
    // (it rebuilds a table that may already be rebuilt).
    r"
CREATE TABLE subjects_v2 (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    age TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO subjects_v2 (id, status, age, created_ms)
    SELECT id, status, age, created_ms FROM subjects;
DROP TABLE subjects;
ALTER TABLE subjects_v2 RENAME TO subjects;

CREATE TABLE subject_tenants_v2 (
    subject TEXT NOT NULL,
    tenant TEXT NOT NULL,
    PRIMARY KEY (subject, tenant)
) WITHOUT ROWID;
INSERT INTO subject_tenants_v2 (subject, tenant) SELECT subject, tenant FROM subject_tenants;
DROP TABLE subject_tenants;
ALTER TABLE subject_tenants_v2 RENAME TO subject_tenants;

CREATE TABLE field_values_v2 (
    subject TEXT NOT NULL,
    category TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    purposes TEXT NOT NULL,
    notice TEXT NOT NULL,
    service TEXT NOT NULL,
    role TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, category)
) WITHOUT ROWID;
INSERT INTO field_values_v2
    (subject, category, ciphertext, purposes, notice, service, role, time_ms)
    SELECT subject, category, ciphertext, purposes, notice, service, role, time_ms
    FROM field_values;
DROP TABLE field_values;
ALTER TABLE field_values_v2 RENAME TO field_values;

CREATE TABLE blind_index_v2 (
    category TEXT NOT NULL,
    term TEXT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (category, term, subject)
) WITHOUT ROWID;
INSERT INTO blind_index_v2 (category, term, subject)
    SELECT category, term, subject FROM blind_index;
DROP TABLE blind_index;
ALTER TABLE blind_index_v2 RENAME TO blind_index;
CREATE INDEX blind_index_subject ON blind_index (subject);

CREATE TABLE keys.subject_keys_v2 (
    subject TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO keys.subject_keys_v2 (subject, wrapped) SELECT subject, wrapped FROM keys.subject_keys;
DROP TABLE keys.subject_keys;
ALTER TABLE keys.subject_keys_v2 RENAME TO subject_keys;
",
    // 4: ledger entries whose data committed before them (an erasure commits to
    // `custos.db`, then its entry to `ledger.db`): each row lives from the data's commit
    // until the entry is in the ledger, so a crash in between cannot lose the entry
    // (`Store::settle_pending`). `after_seq` is the ledger's last seq before it.
    r"
CREATE TABLE IF NOT EXISTS pending_ledger (
    id INTEGER PRIMARY KEY,
    after_seq INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    purpose TEXT NOT NULL,
    recipient TEXT NOT NULL,
    categories TEXT NOT NULL,
    effect TEXT NOT NULL,
    reasons TEXT NOT NULL
);
",
    // 5: the tenant an API key acts for (`api_keys.tenant`, NULL for a key that acts for
    // none and for keys made before). SQLite has no `ADD COLUMN IF NOT EXISTS`: the column
    // is added by `migrate` from `ADDED_COLUMNS`, when it is not there yet.
    "",
    // 6: legal instruments (issue 12) and the subjects each covers.
    r"
CREATE TABLE IF NOT EXISTS instruments (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    issuer TEXT NOT NULL,
    issued TEXT NOT NULL,
    document_sha256 TEXT NOT NULL,
    categories TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    registered_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS instrument_subjects (
    instrument TEXT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (instrument, subject)
);
",
    // 7: the ledger's Merkle tree as C2SP tiles (`ledger/tree.rs`), in `ledger.db` beside
    // the blocks, written in the blocks' transaction. A ledger kept before it gets its tree
    // built on open (`Store::grow_ledger_tree`).
    r"
CREATE TABLE IF NOT EXISTS audit.ledger_tiles (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
",
    // 8: level-0 tiles are no longer stored: a leaf hash is `SHA-256(0x00 || entry hash)`
    // and the entry hashes are the blocks' (`ledger/tree.rs`); the tiles of level 1 and up
    // stay, and the tree's size is read from level 1.
    r"
DELETE FROM audit.ledger_tiles WHERE level = 0;
",
    // 9: the outbox (`vault/mail.rs`): each message sealed under the outbox key until it
    // is sent or given up, then only its id, state, attempts and times.
    r"
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    next_ms INTEGER NOT NULL,
    done_ms INTEGER,
    sealed BLOB
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_ms);
",
    // 10: people's sign-in codes and sessions (`vault/people.rs`): keyed hashes of the
    // address and the code, the SHA-256 of the session token; never the values.
    r"
CREATE TABLE IF NOT EXISTS sign_in_codes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    code TEXT NOT NULL,
    subjects TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    used INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_codes_address ON sign_in_codes (address, created_ms);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY,
    subjects TEXT NOT NULL,
    signed_in_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL
);
",
    // 11: people's requests (issue 13) as staff handle them: keywords, ids and times, no
    // value of a subject.
    r"
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT,
    channel TEXT NOT NULL,
    verification TEXT NOT NULL,
    purpose TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    received_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_open_due ON requests (due_ms)
    WHERE state IN ('received', 'verified');
",
    // 12: the evidence of a consent change (issue 14), beside its event (`seq` of
    // `consents`): the recipient it is about, who recorded it, the SHA-256 of the notice
    // shown and its receipt's id; the signed receipts in a table of their own, so the rows
    // every decision reads stay small. New tables only (`IF NOT EXISTS`): safe to apply
    // again, whatever its number becomes.
    r"
CREATE TABLE IF NOT EXISTS consent_evidence (
    seq INTEGER PRIMARY KEY,
    recipient TEXT,
    actor TEXT NOT NULL,
    notice_sha256 TEXT NOT NULL,
    receipt_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_receipts (
    id TEXT PRIMARY KEY,
    receipt TEXT NOT NULL
);
",
    // 13: mailings (issue 14, `vault/mailings.rs`): who sent one for which purpose, its
    // subject line sealed, its counts; no recipient. New table only: safe to apply again.
    r"
CREATE TABLE IF NOT EXISTS mailings (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    actor TEXT NOT NULL,
    tenant TEXT,
    subject BLOB NOT NULL,
    recipients INTEGER NOT NULL,
    excluded TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
",
    // 14: cookies, beacons, GPC and telemetry (`vault/cookies.rs`): anonymous
    // cookie-consent records (a random id, no address, no user agent) and aggregate counts
    // by kind (`page`, `gpc`, `telemetry`), name and day, nothing else. New tables only (`IF
    // NOT EXISTS`): safe to apply again, whatever its number becomes.
    r"
CREATE TABLE IF NOT EXISTS cookie_consents (
    id TEXT PRIMARY KEY,
    choices TEXT NOT NULL,
    notice TEXT NOT NULL,
    notice_sha256 TEXT NOT NULL,
    gpc INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    receipt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aggregate_counts (
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (kind, day, name)
);
",
    // 15: the dictionaries consent receipts are packed with (`store/receipts.rs`): an
    // earlier receipt's header and claims with the person's and the receipt's ids blanked.
    // A packed receipt is a BLOB in `consent_receipts.receipt`; one stored before stays TEXT.
    // New table only: safe to apply again.
    r"
CREATE TABLE IF NOT EXISTS receipt_dicts (
    id INTEGER PRIMARY KEY,
    dict BLOB NOT NULL
);
",
];

/// Columns added to an existing table, each by its migration (numbered from 1): `(migration,
/// table, column, declaration)`. `migrate` adds one only when the table lacks it, so the
/// migration, like every other, is safe to apply twice.
const ADDED_COLUMNS: &[(usize, &str, &str, &str)] = &[(5, "api_keys", "tenant", "TEXT")];

/// The columns of a [`RequestRow`], in [`request_row`]'s order.
const REQUEST_COLUMNS: &str = "id, kind, subject, channel, verification, purpose, state, reason,
     received_ms, due_ms, updated_ms, created_by, updated_by";

fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: r.get(2)?,
        channel: r.get(3)?,
        verification: r.get(4)?,
        purpose: r.get(5)?,
        state: r.get(6)?,
        reason: r.get(7)?,
        received_ms: r.get(8)?,
        due_ms: r.get(9)?,
        updated_ms: r.get(10)?,
        created_by: r.get(11)?,
        updated_by: r.get(12)?,
    })
}

/// Connections that only read: with WAL they proceed while the writer commits (and fsyncs).
const READERS: usize = 2;

/// The SQLite store. One writer connection behind a mutex (SQLite has one writer anyway, and
/// the ledger's group commit batches the writes that matter), and a few reader connections,
/// so reads are not held up behind a commit's fsync.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The ledger's writer: `ledger.db` alone, so a group commit locks and syncs that file
    /// only, and never waits behind a data write (or holds one up).
    ledger: Mutex<Connection>,
    /// The right edge of the ledger's Merkle tree as last committed (`ledger/tree.rs`);
    /// locked only with `ledger`.
    edge: Mutex<Option<Edge>>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    dir: PathBuf,
    checkpointer: WalCheckpointer,
    /// The consent receipts' packer, locked while the writer connection is.
    packer: Mutex<super::receipts::Packer>,
    /// The receipts' dictionaries read so far.
    dicts: super::receipts::Dictionaries,
}

/// How long a connection sleeps between tries of a lock another connection holds.
const BUSY_STEP: Duration = Duration::from_micros(100);
/// Tries before a connection gives up on a lock (`SQLITE_BUSY`): 10 s of [`BUSY_STEP`]s or
/// more.
const BUSY_TRIES: i32 = 100_000;

/// The busy handler of every connection: waits for a lock in steps of [`BUSY_STEP`], for at
/// least 10 s. SQLite's `busy_timeout` sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries: a
/// writer that met the checkpointer's `RESTART` (which holds the write lock a few ms) slept
/// up to 18 ms past its end — the tail of consent changes' latency (docs/benchmarks.md).
fn busy_wait(tries: i32) -> bool {
    if tries >= BUSY_TRIES {
        return false;
    }
    std::thread::sleep(BUSY_STEP);
    true
}

/// Attaches `ledger.db` as `audit`, read through [`AUDIT_READS`] (settings of an attached
/// schema go with it when it is detached: attached again, it is set again).
fn attach_audit(conn: &Connection, dir: &Path, audit: Audit) -> Result<()> {
    let path = dir.join(LEDGER_FILE);
    let name = match audit {
        Audit::ReadWrite => path.to_string_lossy().into_owned(),
        Audit::ReadOnly => read_only_uri(&path),
    };
    conn.execute("ATTACH DATABASE ?1 AS audit", params![name])?;
    conn.execute_batch(AUDIT_READS)?;
    Ok(())
}

/// `file:<path>?mode=ro`, the path percent-encoded where a URI needs it.
fn read_only_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/._~-".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?mode=ro");
    uri
}

/// Page cache of a connection between bulk writes (KiB, as negative `cache_size`s): reads
/// touch a subject's few pages, and the operating system caches the files anyway.
const IDLE_CACHE: &str = "PRAGMA main.cache_size = -8192; PRAGMA keys.cache_size = -4096;";
/// How a data connection reads the attached ledger: a small page cache, and the file
/// memory-mapped (up to 1 GiB of it): a scan of its blocks (an export looks for the entries
/// about a person) then reads the operating system's cache in place, with no read call and
/// no copy per page.
const AUDIT_READS: &str = "PRAGMA audit.cache_size = -4096; PRAGMA audit.mmap_size = 1073741824;";
/// Page cache of the writer's `custos.db`, smaller than a reader's: SQLite walks the whole
/// page cache of a connection at the end of a commit in which a B-tree balance renumbered
/// pages (`balance_nonroot` parks a page at the locking page's number, past the end of the
/// file, and the commit then drops every cached page past the end, hash bucket by bucket).
/// Random-keyed indexes (`consents_subject`, `records_subject`) rebalance in most group
/// commits: with 5,000 pages and 8,192 buckets that walk was 4–5% of the server's CPU under
/// consent changes (docs/benchmarks.md); 2 MiB keeps it to about 500 pages. The bound holds
/// because each connection has a cache of its own (`-USQLITE_ENABLE_MEMORY_MANAGEMENT` in
/// `.cargo/config.toml`: with one shared pool the writer's cache grew to the sum of all
/// connections' sizes), and because the consent writer stores at most 128 records a
/// transaction (a transaction's dirty pages stay cached, and grow the hash table, until it
/// commits). A page the writer no longer caches is read from the operating system's cache.
const WRITER_CACHE: &str = "PRAGMA main.cache_size = -2048;";
/// Page cache of the writer while it stores a batch of more than [`BULK_SUBJECTS`] new
/// subjects: thousands touch pages all over the random-keyed indexes, and a small cache
/// spills them to the WAL and reads them back mid-transaction. The writer is opened afresh
/// after (see [`SqliteStore::create_subjects`]), so the memory is held only while such a
/// batch is written; the collector's batches of concurrent single collections stay within
/// the small cache.
const BULK_CACHE: &str = "PRAGMA main.cache_size = -65536; PRAGMA keys.cache_size = -65536;";

/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 128;

/// How a data connection sees `ledger.db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    /// Writable: only while the store opens (schema, moving an old ledger).
    ReadWrite,
    /// Read-only. A `BEGIN IMMEDIATE` takes the write lock of every database attached
    /// writable, so a data transaction would hold the ledger writer (and every read waiting
    /// for its entry) until it committed; attached read-only, `ledger.db` is only read.
    ReadOnly,
}

fn connect(dir: &Path, audit: Audit) -> Result<Connection> {
    let conn = Connection::open(dir.join(DATA_FILE))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS keys",
        params![dir.join(KEYS_FILE).to_string_lossy()],
    )?;
    attach_audit(&conn, dir, audit)?;
    conn.busy_handler(Some(busy_wait))?;
    // Room for every statement the store runs (bulk inserts keep one per table and size).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(IDLE_CACHE)?;
    Ok(conn)
}

/// What makes a data connection the writer: per connection, so set on every one opened as
/// the writer (at open, and afresh after a bulk batch).
fn writer_settings(conn: &Connection) -> Result<()> {
    for schema in ["main", "keys", "audit"] {
        // INVARIANT: audit before data — a commit returns only after the WAL is fsynced.
        // Erasable by key: the key database zeroes every deleted byte (`ON`); the data
        // database, which holds only ciphertext, zeroes deleted cells in the pages it
        // rewrites anyway (`FAST`) but does not rewrite whole freed pages — what may
        // linger there is ciphertext under a data key that no longer exists.
        let secure_delete = if schema == "keys" { "ON" } else { "FAST" };
        conn.execute_batch(&format!(
            "PRAGMA {schema}.synchronous = FULL; \
             PRAGMA {schema}.secure_delete = {secure_delete};"
        ))?;
    }
    // The checkpointer copies the WALs into the database files; commits do not.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;")?;
    conn.execute_batch(WRITER_CACHE)?;
    Ok(())
}

/// Creates the database files readable and writable by their owner only (0600) before SQLite
/// opens them: SQLite would create them 0644 under the usual umask, and it makes each `-wal`
/// and `-shm` with its database's mode, so those are 0600 too. A database file (or its
/// `-wal`, `-shm`) an older version left open to others is narrowed to 0600. Warns, on
/// standard error, when the data directory itself lets group or others in: it was not made
/// by Custos (which makes it 0700), and what else is in it is the operator's to restrict.
fn private_files(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        for name in [DATA_FILE, KEYS_FILE, LEDGER_FILE] {
            let path = dir.join(name);
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|e| {
                    Error::Storage(format!("cannot create `{}`: {}", path.display(), e.kind()))
                })?;
            for suffix in ["", "-wal", "-shm"] {
                let path = dir.join(format!("{name}{suffix}"));
                let open =
                    std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
                if open {
                    // Best effort: a file the process cannot narrow is left as it is.
                    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
                }
            }
        }
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                eprintln!(
                    "WARNING: the data directory {} is open to group or others (mode {mode:o}); \
                     Custos keeps its files there 0600, but restrict the directory: chmod 700 {}",
                    dir.display(),
                    dir.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in a data directory and applies migrations.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                // The data directory is the operator's alone.
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder.create(dir).map_err(|e| {
                Error::Storage(format!("cannot create `{}`: {}", dir.display(), e.kind()))
            })?;
        }
        private_files(dir)?;
        let conn = connect(dir, Audit::ReadWrite)?;
        for schema in ["main", "keys", "audit"] {
            let mode: String =
                conn.query_row(&format!("PRAGMA {schema}.journal_mode = WAL"), [], |r| {
                    r.get(0)
                })?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::Storage("cannot enable write-ahead logging".into()));
            }
        }
        writer_settings(&conn)?;
        let ledger = Connection::open(dir.join(LEDGER_FILE))?;
        ledger.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        ledger.busy_handler(Some(busy_wait))?;
        // INVARIANT: audit before data — `synchronous` is per connection: FULL here too.
        // The ledger checkpoints its own WAL, in the commit that takes it past 1000 pages
        // (SQLite's default): a background checkpoint's fsync of `ledger.db` competes with
        // the group commits' WAL syncs, and halved grouped appends (docs/benchmarks.md).
        ledger.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -4096;")?;
        let mut store = Self {
            conn: Mutex::new(conn),
            ledger: Mutex::new(ledger),
            edge: Mutex::new(None),
            readers: Vec::new(),
            next: AtomicUsize::new(0),
            dir: dir.to_path_buf(),
            checkpointer: WalCheckpointer::start(dir)?,
            packer: Mutex::new(super::receipts::Packer::new()),
            dicts: super::receipts::Dictionaries::default(),
        };
        store.migrate()?;
        store.upgrade_ledger()?;
        store
            .conn
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .execute_batch(LEDGER_SUBJECTS)?;
        {
            let conn = store
                .conn
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            conn.execute_batch("DETACH DATABASE audit")?;
            attach_audit(conn, dir, Audit::ReadOnly)?;
        }
        for _ in 0..READERS {
            store
                .readers
                .push(Mutex::new(connect(dir, Audit::ReadOnly)?));
        }
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn migrate(&mut self) -> Result<()> {
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        )?;
        let applied: usize = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        for (i, m) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.execute_batch(m)?;
            for (_, table, column, decl) in ADDED_COLUMNS.iter().filter(|c| c.0 == i + 1) {
                let present: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                    params![table, column],
                    |r| r.get(0),
                )?;
                if !present {
                    tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
                }
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![(i + 1).to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Brings a ledger kept by an older version to blocks: one kept in `custos.db` (before
    /// 0.2) is moved into `ledger.db` first (copy, commit, then drop the old tables,
    /// commit); one kept as a row per entry (before 0.3) is converted into blocks and its
    /// table dropped in one transaction. Each step is idempotent, so a crash in between is
    /// finished by the next open and never loses an entry.
    fn upgrade_ledger(&mut self) -> Result<()> {
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.execute_batch(LEDGER_SCHEMA)?;
        let tables = |conn: &Connection, schema: &str| -> Result<i64> {
            Ok(conn.query_row(
                &format!(
                    "SELECT COUNT(*) FROM {schema}.sqlite_master
                     WHERE type = 'table' AND name IN ('ledger', 'ledger_checkpoints')"
                ),
                [],
                |r| r.get(0),
            )?)
        };
        if tables(conn, "main")? > 0 {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(LEGACY_LEDGER)?;
            tx.execute_batch(
                "INSERT OR IGNORE INTO audit.ledger SELECT * FROM main.ledger;
                 INSERT OR IGNORE INTO audit.ledger_checkpoints
                   SELECT * FROM main.ledger_checkpoints;",
            )?;
            tx.commit()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "DROP TABLE IF EXISTS main.ledger; DROP TABLE IF EXISTS main.ledger_checkpoints;",
            )?;
            tx.commit()?;
        }
        let rows: i64 = conn.query_row(
            "SELECT COUNT(*) FROM audit.sqlite_master WHERE type = 'table' AND name = 'ledger'",
            [],
            |r| r.get(0),
        )?;
        if rows > 0 {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            convert_rows(&tx)?;
            tx.execute_batch("DROP TABLE audit.ledger")?;
            tx.commit()?;
        }
        Ok(())
    }

    /// [`Store::create_subjects`] on the writer connection `conn`, in one transaction.
    fn create_on(
        &self,
        conn: &mut Connection,
        subjects: &mut dyn Iterator<Item = Result<&NewSubject>>,
    ) -> Result<u64> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut chunk: Vec<&NewSubject> = Vec::with_capacity(BULK_SUBJECTS);
        let mut terms: Vec<[&str; 3]> = Vec::new();
        let (mut n, mut rows) = (0u64, 0u64);
        loop {
            chunk.clear();
            for s in (&mut *subjects).take(BULK_SUBJECTS) {
                let s = s?;
                terms.extend(
                    s.index
                        .iter()
                        .map(|(category, term)| [category.as_str(), term.as_str(), &s.row.id]),
                );
                chunk.push(s);
            }
            if chunk.is_empty() {
                break;
            }
            if n == 0 && chunk.len() == BULK_SUBJECTS {
                // More than a block: a bulk batch, worth the big cache (see `BULK_CACHE`).
                tx.execute_batch(BULK_CACHE)?;
            }
            // In id order: ids are time-ordered only to the millisecond (random within
            // one); in key order the rows append to the end of each table keyed by subject
            // instead of landing between the rows of their own millisecond.
            chunk.sort_unstable_by(|a, b| a.row.id.cmp(&b.row.id));
            rows += insert_subjects(&tx, &chunk)?;
            n += chunk.len() as u64;
        }
        // The blind index is keyed by HMAC terms, random by nature: inserted one subject at
        // a time they land on random pages all over the index, each page read, dirtied and
        // written to the WAL again and again. Sorted, the batch sweeps the index once.
        terms.sort_unstable();
        {
            let mut index = BulkInsert::new(
                &tx,
                "OR IGNORE",
                "blind_index",
                &["category", "term", "subject"],
            );
            for [category, term, subject] in terms {
                index.push(&[
                    ValueRef::Text(category.as_bytes()),
                    ValueRef::Text(term.as_bytes()),
                    ValueRef::Text(subject.as_bytes()),
                ])?;
            }
            index.finish()?;
            rows += index.rows;
        }
        tx.commit()?;
        self.checkpointer.committed(rows);
        Ok(n)
    }

    /// Runs `append` in one `BEGIN IMMEDIATE` transaction of the ledger connection and
    /// commits it; rolls back on error. A transaction a panic left open on the connection is
    /// rolled back first, so one failed append cannot lock out the ones after it.
    fn in_ledger<T>(
        &self,
        append: impl FnOnce(&Connection, &mut Option<Edge>) -> Result<T>,
    ) -> Result<T> {
        let conn = self
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut edge = self
            .edge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // INVARIANT: one chain — BEGIN IMMEDIATE takes the write lock of `ledger.db` before
        // the head is read, so no other writer (thread or process) can append in between.
        // The statements are prepared once per connection: this runs once per group commit.
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let done = append(&conn, &mut edge)
            .and_then(|t| Ok(conn.prepare_cached("COMMIT")?.execute([]).map(|_| t)?));
        if done.is_err() {
            // The tree's edge may be ahead of what is stored: read it again next time.
            *edge = None;
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        done
    }

    /// Appends `entry` unless an entry equal to it in every field follows `after_seq`
    /// already; the check and the append hold the ledger's write lock together. Returns its
    /// seq, and whether this call appended it.
    fn append_once(
        &self,
        entry: &Draft,
        after_seq: u64,
        checkpoint: &Checkpointer<'_>,
    ) -> Result<(u64, bool)> {
        self.in_ledger(|conn, edge| {
            let mut found = None;
            // Malformed blocks are `audit verify`'s to report; here they hold no match.
            blocks_from(conn, after_seq + 1, u64::MAX, &mut |b| {
                Ok(block::decode(b, &mut |r| {
                    if let Ok(r) = r
                        && r.seq > after_seq
                        && same_entry(r, entry)
                    {
                        found = Some(r.seq);
                    }
                    found.is_none()
                }))
            })?;
            match found {
                Some(seq) => Ok((seq, false)),
                None => Ok((
                    append_in(conn, std::slice::from_ref(entry), checkpoint, edge)?,
                    true,
                )),
            }
        })
    }

    /// Deletes a `pending_ledger` row whose entry is in the ledger.
    fn forget_pending(&self, id: i64) -> Result<()> {
        self.write()
            .prepare_cached("DELETE FROM pending_ledger WHERE id = ?1")?
            .execute(params![id])?;
        Ok(())
    }

    /// A new writer connection, as [`SqliteStore::open`] leaves it.
    fn fresh_writer(&self) -> Result<Connection> {
        let conn = connect(&self.dir, Audit::ReadOnly)?;
        writer_settings(&conn)?;
        Ok(conn)
    }

    fn write(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A free reader if there is one, else the next in turn (the writer when there are none).
    fn read(&self) -> MutexGuard<'_, Connection> {
        for c in &self.readers {
            if let Ok(guard) = c.try_lock() {
                return guard;
            }
        }
        let n = self.readers.len().max(1);
        match self
            .readers
            .get(self.next.fetch_add(1, Ordering::Relaxed) % n)
        {
            Some(c) => c.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            None => self.write(),
        }
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Whether the stored entry `r` holds exactly the fields of `d`.
fn same_entry(r: &LedgerRow<'_>, d: &Draft) -> bool {
    r.time_ms == d.time_ms
        && r.actor == d.actor.as_bytes()
        && r.action == d.action.as_bytes()
        && r.subject == d.subject.as_bytes()
        && r.purpose == d.purpose.as_bytes()
        && r.recipient == d.recipient.as_bytes()
        && r.categories == d.categories.as_bytes()
        && r.effect == d.effect.as_bytes()
        && r.reasons == d.reasons.as_bytes()
}

/// Hands `each` the blocks holding entries `from..to`, in order — from the block holding
/// `from` (or the first after it) to the last one starting before `to` — until it returns
/// `false`.
fn blocks_from(
    conn: &Connection,
    from: u64,
    to: u64,
    each: &mut dyn FnMut(&block::BlockRef<'_>) -> Result<bool>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, last_seq, prev_hash, entries FROM ledger_blocks
         WHERE first_seq >= COALESCE(
             (SELECT first_seq FROM ledger_blocks WHERE first_seq <= ?1
              ORDER BY first_seq DESC LIMIT 1), ?1)
           AND first_seq < ?2
         ORDER BY first_seq",
    )?;
    let mut rows = stmt.query(params![to_i64(from), to_i64(to)])?;
    while let Some(r) = rows.next()? {
        if !each(&block_ref(r)?)? {
            break;
        }
    }
    Ok(())
}

/// The last entry's seq and stored hash, `(0, GENESIS)` when the ledger is empty (see
/// [`block::last`] for a last block that does not decode).
fn ledger_head(conn: &Connection) -> Result<(u64, String)> {
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, last_seq, prev_hash, entries FROM ledger_blocks
         ORDER BY first_seq DESC LIMIT 1",
    )?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        None => Ok((0, GENESIS.to_string())),
        Some(r) => Ok(block::last(&block_ref(r)?)),
    }
}

/// A `ledger_blocks` row (`first_seq, last_seq, prev_hash, entries`), borrowed.
fn block_ref<'r>(r: &'r rusqlite::Row<'_>) -> Result<block::BlockRef<'r>> {
    let bytes = |i: usize| match r.get_ref(i)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => Ok(b),
        _ => Err(Error::Storage(
            "a ledger block column is not text or a blob".into(),
        )),
    };
    Ok(block::BlockRef {
        first_seq: to_u64(r.get(0)?),
        last_seq: to_u64(r.get(1)?),
        prev_hash: bytes(2)?,
        body: bytes(3)?,
    })
}

/// Converts the rows of a ledger kept as a row per entry (`audit.ledger`) into blocks, in
/// the open transaction `tx`. Rows are grouped into a block while their seqs run on and each
/// row's `prev_hash` is the row before's `hash`; any break (a gap, a link that does not
/// match — a tampered ledger stays exactly as tampered) starts a new block.
fn convert_rows(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let mut stmt = tx.prepare(
        "SELECT seq, time_ms, actor, action, subject, purpose, recipient, categories,
           effect, reasons, prev_hash, hash FROM audit.ledger ORDER BY seq",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO audit.ledger_blocks (first_seq, last_seq, prev_hash, entries)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut rows = stmt.query([])?;
    let mut blocks = block::Grouper::default();
    while let Some(r) = rows.next()? {
        let mut row = block::OwnedRow {
            seq: to_u64(r.get(0)?),
            time_ms: r.get(1)?,
            ..block::OwnedRow::default()
        };
        for (i, t) in row.text.iter_mut().enumerate() {
            *t = match r.get_ref(i + 2)? {
                ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                _ => {
                    return Err(Error::Storage(format!(
                        "ledger row {} holds a column that is not text; \
                         it cannot be converted into a block",
                        row.seq
                    )));
                }
            };
        }
        if let Some(b) = blocks.push(row) {
            insert_block(&mut insert, &b)?;
        }
    }
    if let Some(b) = blocks.finish() {
        insert_block(&mut insert, &b)?;
    }
    Ok(())
}

/// Inserts `b` with `insert` (`INSERT INTO … ledger_blocks … VALUES (?1, ?2, ?3, ?4)`).
fn insert_block(insert: &mut rusqlite::Statement<'_>, b: &block::NewBlock) -> Result<()> {
    insert.execute(params![
        to_i64(b.first_seq),
        to_i64(b.last_seq),
        ToSqlOutput::Borrowed(ValueRef::Text(&b.prev_hash)),
        b.body
    ])?;
    Ok(())
}

/// Old frames of the key database's WAL, and the file itself until the next checkpoint, may
/// still hold an erased wrapped key: checkpoint it (the page the delete rewrote was zeroed,
/// `secure_delete = ON`) and truncate the WAL. `false` when a reader kept it from finishing.
fn scrub(conn: &Connection) -> Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA keys.wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

/// A subject's field values, by category.
fn values_on(conn: &Connection, subject: &str) -> rusqlite::Result<Vec<ValueRow>> {
    conn.prepare_cached(
        "SELECT category, ciphertext, purposes, notice, service, role, time_ms
         FROM field_values WHERE subject = ?1 ORDER BY category",
    )?
    .query_map(params![subject], |r| {
        Ok(ValueRow {
            subject: subject.to_string(),
            category: r.get(0)?,
            ciphertext: r.get(1)?,
            purposes: split(r.get_ref(2)?.as_str()?),
            notice: r.get(3)?,
            service: r.get(4)?,
            role: r.get(5)?,
            time_ms: r.get(6)?,
        })
    })?
    .collect()
}

/// `custos.db`'s `receipt_dicts`, through a connection (in the transaction being written,
/// for [`super::receipts::Packer::pack`]).
pub(crate) struct SqliteDicts<'a>(pub(crate) &'a Connection);

impl super::receipts::DictWriter for SqliteDicts<'_> {
    fn insert_dict(&mut self, dict: &[u8]) -> Result<u32> {
        self.0
            .prepare_cached("INSERT INTO receipt_dicts (dict) VALUES (?1)")?
            .execute(params![dict])?;
        u32::try_from(self.0.last_insert_rowid())
            .map_err(|_| crate::Error::Storage("too many receipt dictionaries".into()))
    }
}

impl super::receipts::DictTable for SqliteDicts<'_> {
    fn dict(&mut self, id: u32) -> Result<Option<Vec<u8>>> {
        Ok(self
            .0
            .prepare_cached("SELECT dict FROM receipt_dicts WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?)
    }
}

/// [`Store::put_consents`] on the writer connection, in one transaction.
fn put_consents_on(
    conn: &mut Connection,
    packer: &mut super::receipts::Packer,
    rows: &[&ConsentRow],
) -> Result<()> {
    // Deferred: the first statement, an insert, takes the write lock of `custos.db`
    // alone. `IMMEDIATE` takes that of every database attached writable (`keys.db`
    // too), which SQLite then ends at every commit: 118–128 µs of server CPU per consent
    // change against 134–141 µs (docs/benchmarks.md).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    {
        let mut event = tx.prepare_cached(
            "INSERT INTO consents (subject, purpose, kind, given, notice, method, time_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut evidence = tx.prepare_cached(
            "INSERT INTO consent_evidence (seq, recipient, actor, notice_sha256, receipt_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut receipt =
            tx.prepare_cached("INSERT INTO consent_receipts (id, receipt) VALUES (?1, ?2)")?;
        for c in rows {
            event.execute(params![
                c.subject, c.purpose, c.kind, c.given, c.notice, c.method, c.time_ms
            ])?;
            let seq = tx.last_insert_rowid();
            match &c.evidence {
                Some(e) => {
                    evidence.execute(params![
                        seq,
                        c.recipient,
                        e.actor,
                        e.notice_sha256,
                        e.receipt_id
                    ])?;
                    match packer.pack(
                        &mut SqliteDicts(&tx),
                        &e.receipt,
                        &c.subject,
                        &e.receipt_id,
                    )? {
                        super::receipts::Stored::Packed(p) => {
                            receipt.execute(params![e.receipt_id, p])?
                        }
                        super::receipts::Stored::Text => {
                            receipt.execute(params![e.receipt_id, e.receipt])?
                        }
                    };
                }
                None if c.recipient.is_some() => {
                    return Err(crate::Error::Storage(
                        "a consent about a recipient needs its evidence".into(),
                    ));
                }
                None => {}
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// A subject's consent and objection events, oldest first, their receipts unpacked.
fn consents_on(
    conn: &Connection,
    dicts: &super::receipts::Dictionaries,
    subject: &str,
) -> Result<Vec<ConsentRow>> {
    let rows = conn
        .prepare_cached(
            "SELECT c.purpose, c.kind, c.given, c.notice, c.method, c.time_ms, e.recipient,
                    e.actor, e.notice_sha256, e.receipt_id, r.receipt
             FROM consents c LEFT JOIN consent_evidence e ON e.seq = c.seq
                             LEFT JOIN consent_receipts r ON r.id = e.receipt_id
             WHERE c.subject = ?1 ORDER BY c.seq",
        )?
        .query_map(params![subject], |r| {
            // A receipt stored packed is a BLOB, one stored before packing TEXT — UTF-8 as
            // written, or the read fails: a receipt is given back as signed or not at all.
            let receipt = match r.get_ref(10)? {
                ValueRef::Text(t) => Some(Ok(std::str::from_utf8(t)?.to_owned())),
                ValueRef::Blob(b) => Some(Err(b.to_vec())),
                _ => None,
            };
            let evidence = match (r.get(7)?, r.get(8)?, r.get(9)?, receipt) {
                (Some(actor), Some(notice_sha256), Some(receipt_id), Some(receipt)) => {
                    Some((actor, notice_sha256, receipt_id, receipt))
                }
                _ => None,
            };
            Ok((
                ConsentRow {
                    subject: subject.to_string(),
                    purpose: r.get(0)?,
                    kind: r.get(1)?,
                    given: r.get(2)?,
                    notice: r.get(3)?,
                    method: r.get(4)?,
                    time_ms: r.get(5)?,
                    recipient: r.get(6)?,
                    evidence: None,
                },
                evidence,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mut row, evidence)| {
            if let Some((actor, notice_sha256, receipt_id, receipt)) = evidence {
                let receipt = match receipt {
                    Ok(text) => text,
                    Err(packed) => dicts.unpack(&mut SqliteDicts(conn), &packed)?,
                };
                row.evidence = Some(ConsentEvidence {
                    actor,
                    notice_sha256,
                    receipt_id,
                    receipt,
                });
            }
            Ok(row)
        })
        .collect()
}

/// Inserts or replaces field values and their index terms inside a transaction.
fn write_values(
    tx: &rusqlite::Transaction<'_>,
    values: &[ValueRow],
    index: &[(String, String)],
) -> Result<()> {
    let mut put = tx.prepare_cached(
        "INSERT INTO field_values
               (subject, category, ciphertext, purposes, notice, service, role, time_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (subject, category) DO UPDATE SET
               ciphertext = excluded.ciphertext, purposes = excluded.purposes,
               notice = excluded.notice, service = excluded.service,
               role = excluded.role, time_ms = excluded.time_ms",
    )?;
    for v in values {
        put.execute(params![
            v.subject,
            v.category,
            v.ciphertext,
            join(&v.purposes),
            v.notice,
            v.service,
            v.role,
            v.time_ms
        ])?;
    }
    // `+category`: look the rows up by the subject index. Without the `+`, SQLite picks the
    // primary key's `category` prefix and scans every term of the category — one full scan
    // of, say, all e-mail terms per collection.
    let mut unindex =
        tx.prepare_cached("DELETE FROM blind_index WHERE subject = ?1 AND +category = ?2")?;
    let mut reindex = tx.prepare_cached(
        "INSERT OR IGNORE INTO blind_index (category, term, subject) VALUES (?1, ?2, ?3)",
    )?;
    if let Some(subject) = values.first().map(|v| &v.subject) {
        for (category, term) in index {
            unindex.execute(params![subject, category])?;
            reindex.execute(params![category, term, subject])?;
        }
    }
    Ok(())
}

/// Subjects written per round of [`insert_subjects`].
const BULK_SUBJECTS: usize = 512;
/// Rows per multi-row `INSERT` of a bulk creation: one statement execution writes this many
/// rows, instead of one execution (bind, step, reset) per row.
const BULK_ROWS: usize = 64;

/// Keeps `entry` in `pending_ledger`, in the open transaction `tx`, with the ledger's last
/// seq before it; returns its row id and that seq.
fn insert_pending(tx: &rusqlite::Transaction<'_>, entry: &Draft) -> Result<(i64, u64)> {
    let (id, after_seq) = tx
        .prepare_cached(
            "INSERT INTO pending_ledger (after_seq, time_ms, actor, action, subject, purpose,
               recipient, categories, effect, reasons)
             VALUES (COALESCE((SELECT last_seq FROM audit.ledger_blocks
                                ORDER BY first_seq DESC LIMIT 1), 0),
               ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             RETURNING id, after_seq",
        )?
        .query_row(draft_params(entry), |r| {
            Ok((r.get::<_, i64>(0)?, to_u64(r.get(1)?)))
        })?;
    Ok((id, after_seq))
}

/// A draft's fields as statement parameters `?1`–`?9`, in the ledger's column order.
fn draft_params(d: &Draft) -> [&dyn rusqlite::ToSql; 9] {
    [
        &d.time_ms,
        &d.actor,
        &d.action,
        &d.subject,
        &d.purpose,
        &d.recipient,
        &d.categories,
        &d.effect,
        &d.reasons,
    ]
}

/// Chains drafts after the ledger's head and inserts them, with their due checkpoints, in
/// the open transaction of the ledger connection; returns the first draft's sequence number.
fn append_in(
    conn: &Connection,
    drafts: &[Draft],
    checkpoint: &Checkpointer<'_>,
    edge: &mut Option<Edge>,
) -> Result<u64> {
    let (head_seq, head_hash) = ledger_head(conn)?;
    let chained = Chained::new(head_seq, head_hash, drafts);
    let mut insert = conn.prepare_cached(
        "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let blocks = block::chained(drafts, &chained);
    for b in &blocks {
        insert_block(&mut insert, b)?;
    }
    let mut index = conn.prepare_cached(
        "INSERT OR IGNORE INTO ledger_subjects (subject, first_seq) VALUES (?1, ?2)",
    )?;
    for (subject, first) in block::subjects_of(drafts, &chained, &blocks) {
        index.execute(params![subject, to_i64(first)])?;
    }
    let mut sign = conn.prepare_cached(
        "INSERT INTO ledger_checkpoints (seq, hash, signature) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    for c in chained.checkpoints(checkpoint) {
        sign.execute(params![to_i64(c.seq), c.hash, c.signature])?;
    }
    tree::append(&mut LedgerTiles(conn), edge, head_seq, chained.leaves())?;
    Ok(chained.first_seq())
}

/// The ledger's tiles on a connection (the ledger's own, inside its transaction, or a
/// reader's).
struct LedgerTiles<'c>(&'c Connection);

impl TileIo for LedgerTiles<'_> {
    fn tree_size(&mut self) -> Result<u64> {
        let last: Option<(i64, i64)> = self
            .0
            .prepare_cached(
                "SELECT idx, length(hashes) FROM ledger_tiles WHERE level = 1
                 ORDER BY idx DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(last.map_or(0, |(idx, len)| tree::covered_by(to_u64(idx), to_u64(len))))
    }

    fn read_tiles(&mut self, keys: &[TileKey]) -> Result<Tiles> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT hashes FROM ledger_tiles WHERE level = ?1 AND idx = ?2")?;
        let mut tiles = Tiles::with_capacity(keys.len());
        for k in keys {
            let hashes: Option<Vec<u8>> = stmt
                .query_row(params![k.level, to_i64(k.index)], |r| r.get(0))
                .optional()?;
            if let Some(h) = hashes {
                tiles.insert(*k, h);
            }
        }
        Ok(tiles)
    }

    fn write_tiles(&mut self, tiles: &[(TileKey, Vec<u8>)]) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT INTO ledger_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)
             ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
        )?;
        for (k, h) in tiles {
            stmt.execute(params![k.level, to_i64(k.index), h])?;
        }
        Ok(())
    }

    fn blocks(
        &mut self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(&block::BlockRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        blocks_from(self.0, from, to, each)
    }
}

/// Inserts rows into one table [`BULK_ROWS`] at a time; what is left at the end goes in
/// statements of power-of-two rows. Statements are prepared (from the connection's cache)
/// when first needed, so a handful of rows costs no more than single-row inserts.
struct BulkInsert<'t, 'a> {
    tx: &'t Connection,
    head: String,
    width: usize,
    many: Option<rusqlite::CachedStatement<'t>>,
    pending: Vec<ValueRef<'a>>,
    /// Rows pushed.
    rows: u64,
}

impl<'t, 'a> BulkInsert<'t, 'a> {
    /// `INSERT {verb} INTO {table} ({columns}) VALUES …`.
    fn new(tx: &'t Connection, verb: &str, table: &str, columns: &[&str]) -> Self {
        Self {
            tx,
            head: format!(
                "INSERT {verb} INTO {table} ({}) VALUES ",
                columns.join(", ")
            ),
            width: columns.len(),
            many: None,
            pending: Vec::new(),
            rows: 0,
        }
    }

    fn sql(&self, rows: usize) -> String {
        let row = format!("({})", vec!["?"; self.width].join(", "));
        format!("{}{}", self.head, vec![row; rows].join(", "))
    }

    fn push(&mut self, row: &[ValueRef<'a>]) -> Result<()> {
        debug_assert_eq!(row.len(), self.width);
        self.pending.extend_from_slice(row);
        self.rows += 1;
        if self.pending.len() == BULK_ROWS * self.width {
            let many = match self.many.take() {
                Some(stmt) => stmt,
                None => self.tx.prepare_cached(&self.sql(BULK_ROWS))?,
            };
            let many = self.many.insert(many);
            for (i, v) in self.pending.iter().enumerate() {
                many.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(*v))?;
            }
            many.raw_execute()?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Writes what is pending.
    fn finish(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The rest in statements of 32, 16, … 1 rows: at most six executions, each of a
        // statement the connection keeps prepared.
        let mut rest = self.pending.as_slice();
        while !rest.is_empty() {
            let rows = (rest.len() / self.width).max(1);
            let k = 1 << rows.ilog2();
            let (chunk, tail) = rest
                .split_at_checked(k * self.width)
                .ok_or_else(|| Error::Storage("a bulk insert was given a partial row".into()))?;
            let mut stmt = self.tx.prepare_cached(&self.sql(k))?;
            for (i, v) in chunk.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(*v))?;
            }
            stmt.raw_execute()?;
            rest = tail;
        }
        self.pending.clear();
        Ok(())
    }
}

/// Writes new subjects — keys first, then rows, tenants and values (not their index terms)
/// — with multi-row inserts; returns how many rows. A new subject has no values or terms to replace,
/// and its values have distinct categories, so these are plain inserts.
fn insert_subjects<'t>(tx: &'t rusqlite::Transaction<'t>, subjects: &[&NewSubject]) -> Result<u64> {
    let mut keys = BulkInsert::new(tx, "", "keys.subject_keys", &["subject", "wrapped"]);
    for n in subjects {
        keys.push(&[
            ValueRef::Text(n.row.id.as_bytes()),
            ValueRef::Blob(&n.wrapped_dek),
        ])?;
    }
    keys.finish()?;
    let mut rows = BulkInsert::new(tx, "", "subjects", &["id", "status", "age", "created_ms"]);
    let mut tenants = BulkInsert::new(tx, "OR IGNORE", "subject_tenants", &["subject", "tenant"]);
    for n in subjects {
        let s = &n.row;
        rows.push(&[
            ValueRef::Text(s.id.as_bytes()),
            ValueRef::Text(s.status.as_str().as_bytes()),
            ValueRef::Text(s.age.as_str().as_bytes()),
            ValueRef::Integer(s.created_ms),
        ])?;
        for t in &s.tenants {
            tenants.push(&[
                ValueRef::Text(s.id.as_bytes()),
                ValueRef::Text(t.as_bytes()),
            ])?;
        }
    }
    rows.finish()?;
    tenants.finish()?;
    let purposes: Vec<Vec<String>> = subjects
        .iter()
        .map(|n| n.values.iter().map(|v| join(&v.purposes)).collect())
        .collect();
    let mut values = BulkInsert::new(
        tx,
        "",
        "field_values",
        &[
            "subject",
            "category",
            "ciphertext",
            "purposes",
            "notice",
            "service",
            "role",
            "time_ms",
        ],
    );
    for (n, joined) in subjects.iter().zip(&purposes) {
        for (v, p) in n.values.iter().zip(joined) {
            values.push(&[
                ValueRef::Text(v.subject.as_bytes()),
                ValueRef::Text(v.category.as_bytes()),
                ValueRef::Blob(&v.ciphertext),
                ValueRef::Text(p.as_bytes()),
                ValueRef::Text(v.notice.as_bytes()),
                ValueRef::Text(v.service.as_bytes()),
                ValueRef::Text(v.role.as_bytes()),
                ValueRef::Integer(v.time_ms),
            ])?;
        }
    }
    values.finish()?;
    Ok(keys.rows + rows.rows + tenants.rows + values.rows)
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()
            .prepare_cached("SELECT wrapped FROM keys.secrets WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?)
    }

    fn put_secret_if_absent(&self, name: &str, wrapped: &[u8]) -> Result<Vec<u8>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO keys.secrets (name, wrapped) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![name, wrapped],
        )?;
        let stored: Vec<u8> = tx.query_row(
            "SELECT wrapped FROM keys.secrets WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(stored)
    }

    fn create_subjects(
        &self,
        subjects: &mut dyn Iterator<Item = Result<&NewSubject>>,
    ) -> Result<u64> {
        let mut conn = self.write();
        let created = self.create_on(&mut conn, subjects);
        // After a bulk batch (or a failed one, which may have been) the writer is opened
        // afresh: setting the cache back would free its pages but not its hash table, which
        // SQLite never shrinks and walks whole at many commits (see `WRITER_CACHE`).
        let restored = match created {
            Ok(n) if n < BULK_SUBJECTS as u64 => Ok(()),
            _ => self.fresh_writer().map(|fresh| *conn = fresh),
        };
        let n = created?;
        restored?;
        Ok(n)
    }

    fn subject(&self, id: &str) -> Result<Option<SubjectRow>> {
        let conn = self.read();
        let row = conn
            .prepare_cached("SELECT status, age, created_ms FROM subjects WHERE id = ?1")?
            .query_row(params![id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        let Some((status, age, created_ms)) = row else {
            return Ok(None);
        };
        let mut stmt = conn.prepare_cached(
            "SELECT tenant FROM subject_tenants WHERE subject = ?1 ORDER BY tenant",
        )?;
        let tenants = stmt
            .query_map(params![id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(Some(SubjectRow {
            id: id.to_string(),
            status: Status::parse(&status),
            age: Age::parse(&age),
            tenants,
            created_ms,
        }))
    }

    fn subject_state(&self, id: &str) -> Result<Option<SubjectState>> {
        // One statement, so one snapshot (a concurrent erasure or consent change is seen
        // whole or not at all) and one pass: part 0 is the subject and its wrapped key,
        // part 1 its values, part 2 its consent events, part 3 its tenants. Put in order
        // here, not by an `ORDER BY`: SQLite would copy every row, ciphertext included,
        // into a sorter first (a sixth of a read's SQLite time).
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT 0, s.status, s.age, NULL, NULL, NULL, k.wrapped, 0, 0
               FROM subjects s LEFT JOIN keys.subject_keys k ON k.subject = s.id
              WHERE s.id = ?1
             UNION ALL
             SELECT 1, category, purposes, notice, service, role, ciphertext, time_ms, 0
               FROM field_values WHERE subject = ?1
             UNION ALL
             SELECT 2, c.purpose, c.kind, c.notice, c.method, c.given, e.recipient, c.time_ms,
                    c.seq
               FROM consents c LEFT JOIN consent_evidence e ON e.seq = c.seq
              WHERE c.subject = ?1
             UNION ALL
             SELECT 3, tenant, NULL, NULL, NULL, NULL, NULL, 0, 0
               FROM subject_tenants WHERE subject = ?1",
        )?;
        let mut rows = stmt.query(params![id])?;
        let mut state: Option<SubjectState> = None;
        let mut values = Vec::new();
        let mut consents = Vec::new();
        let mut tenants = Vec::new();
        while let Some(r) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
            let str_at = |i: usize| -> rusqlite::Result<&str> { Ok(r.get_ref(i)?.as_str()?) };
            match r.get::<_, i64>(0)? {
                0 => {
                    state = Some(SubjectState {
                        status: Status::parse(str_at(1)?),
                        age: Age::parse(str_at(2)?),
                        tenants: Vec::new(),
                        values: Vec::new(),
                        consents: Vec::new(),
                        wrapped_dek: r.get(6)?,
                    });
                }
                1 => values.push(ValueRow {
                    subject: id.to_string(),
                    category: text(1)?,
                    ciphertext: r.get(6)?,
                    purposes: split(str_at(2)?),
                    notice: text(3)?,
                    service: text(4)?,
                    role: text(5)?,
                    time_ms: r.get(7)?,
                }),
                2 => consents.push((
                    r.get::<_, i64>(8)?,
                    ConsentRow {
                        subject: id.to_string(),
                        purpose: text(1)?,
                        kind: text(2)?,
                        given: r.get::<_, i64>(5)? != 0,
                        notice: text(3)?,
                        method: text(4)?,
                        time_ms: r.get(7)?,
                        recipient: r.get(6)?,
                        evidence: None,
                    },
                )),
                _ => tenants.push(text(1)?),
            }
        }
        // Rows of a subject that does not exist: nothing to decide over.
        let Some(mut state) = state else {
            return Ok(None);
        };
        // Values by category, consent events by seq (the last one counts), tenants by name.
        values.sort_by(|a, b| a.category.cmp(&b.category));
        consents.sort_unstable_by_key(|(seq, _)| *seq);
        tenants.sort_unstable();
        state.values = values;
        state.consents = consents.into_iter().map(|(_, c)| c).collect();
        state.tenants = tenants;
        Ok(Some(state))
    }

    fn subject_holders(&self, id: &str) -> Result<Option<SubjectState>> {
        // As `subject_state`, without the values' ciphertext, the consent events or the
        // key (a read of `keys.db`): part 0 the subject, part 1 its values' services and
        // roles, part 2 its tenants — put in order and made distinct here, as
        // `subject_state` does, not by SQLite's sorter and temporary index.
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT 0, status, age FROM subjects WHERE id = ?1
             UNION ALL
             SELECT 1, service, role FROM field_values WHERE subject = ?1
             UNION ALL
             SELECT 2, tenant, NULL FROM subject_tenants WHERE subject = ?1",
        )?;
        let mut rows = stmt.query(params![id])?;
        let mut state: Option<SubjectState> = None;
        let mut holders: Vec<(String, String)> = Vec::new();
        let mut tenants = Vec::new();
        while let Some(r) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
            let str_at = |i: usize| -> rusqlite::Result<&str> { Ok(r.get_ref(i)?.as_str()?) };
            match r.get::<_, i64>(0)? {
                0 => {
                    state = Some(SubjectState {
                        status: Status::parse(str_at(1)?),
                        age: Age::parse(str_at(2)?),
                        tenants: Vec::new(),
                        values: Vec::new(),
                        consents: Vec::new(),
                        wrapped_dek: None,
                    });
                }
                1 => holders.push((text(1)?, text(2)?)),
                _ => tenants.push(text(1)?),
            }
        }
        let Some(mut state) = state else {
            return Ok(None);
        };
        holders.sort_unstable();
        holders.dedup();
        tenants.sort_unstable();
        state.values = holders
            .into_iter()
            .map(|(service, role)| ValueRow {
                subject: id.to_string(),
                category: String::new(),
                ciphertext: Vec::new(),
                purposes: Vec::new(),
                notice: String::new(),
                service,
                role,
                time_ms: 0,
            })
            .collect();
        state.tenants = tenants;
        Ok(Some(state))
    }

    fn set_age(&self, id: &str, age: Age) -> Result<()> {
        self.write().execute(
            "UPDATE subjects SET age = ?2 WHERE id = ?1",
            params![id, age.as_str()],
        )?;
        Ok(())
    }

    fn set_status(&self, id: &str, status: Status) -> Result<()> {
        self.write().execute(
            "UPDATE subjects SET status = ?2 WHERE id = ?1",
            params![id, status.as_str()],
        )?;
        Ok(())
    }

    fn add_tenant(&self, id: &str, tenant: &str) -> Result<()> {
        self.write().execute(
            "INSERT OR IGNORE INTO subject_tenants (subject, tenant) VALUES (?1, ?2)",
            params![id, tenant],
        )?;
        Ok(())
    }

    fn wrapped_dek(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()
            .prepare_cached("SELECT wrapped FROM keys.subject_keys WHERE subject = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?)
    }

    fn put_values(&self, values: &[ValueRow], index: &[(String, String)]) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        write_values(&tx, values, index)?;
        tx.commit()?;
        Ok(())
    }

    fn values(&self, subject: &str) -> Result<Vec<ValueRow>> {
        Ok(values_on(&self.read(), subject)?)
    }

    fn find_by_term(&self, category: &str, term: &str) -> Result<Option<String>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT subject FROM blind_index WHERE category = ?1 AND term = ?2
                 ORDER BY subject LIMIT 1",
            )?
            .query_row(params![category, term], |r| r.get(0))
            .optional()?)
    }

    fn append_record(&self, record: &RecordRow) -> Result<()> {
        self.append_records(std::slice::from_ref(record))
    }

    fn append_records(&self, records: &[RecordRow]) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO records
                   (id, subject, collection, ciphertext, purposes, notice, retain_until_ms, time_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut status = tx.prepare_cached("SELECT status FROM subjects WHERE id = ?1")?;
            let mut checked: Option<&str> = None;
            for r in records {
                // INVARIANT: no record is stored for an erased subject — it could land after
                // its purge and stay for ever. Checked under the write lock the erasure
                // also takes.
                if checked != Some(r.subject.as_str()) {
                    let s: Option<String> = status
                        .query_row(params![r.subject], |row| row.get(0))
                        .optional()?;
                    if s.is_some_and(|s| Status::parse(&s) == Status::Erased) {
                        return Err(Error::SubjectNotFound);
                    }
                    checked = Some(&r.subject);
                }
                stmt.execute(params![
                    r.id,
                    r.subject,
                    r.collection,
                    r.ciphertext,
                    join(&r.purposes),
                    r.notice,
                    r.retain_until_ms,
                    r.time_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn records(
        &self,
        subject: &str,
        collection: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<RecordRow>> {
        let conn = self.read();
        // An erased subject's records may wait for the purge; they are never returned. The
        // page starts after the cursor's own `seq` (none when the cursor is not the
        // subject's: `seq > NULL` holds for no row).
        let mut stmt = conn.prepare_cached(
            "SELECT id, ciphertext, purposes, notice, retain_until_ms, time_ms
             FROM records WHERE subject = ?1 AND collection = ?2
               AND seq > CASE WHEN ?3 IS NULL THEN 0 ELSE
                   (SELECT seq FROM records WHERE id = ?3 AND subject = ?1 AND collection = ?2)
                 END
               AND NOT EXISTS (SELECT 1 FROM subjects
                               WHERE id = ?1 AND status NOT IN ('active', 'deactivated'))
             ORDER BY seq LIMIT ?4",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![subject, collection, after, limit], |r| {
                Ok(RecordRow {
                    id: r.get(0)?,
                    subject: subject.to_string(),
                    collection: collection.to_string(),
                    ciphertext: r.get(1)?,
                    purposes: split(&r.get::<_, String>(2)?),
                    notice: r.get(3)?,
                    retain_until_ms: r.get(4)?,
                    time_ms: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn delete_expired_records(&self, now_ms: i64) -> Result<u64> {
        let n = self.write().execute(
            "DELETE FROM records WHERE retain_until_ms IS NOT NULL AND retain_until_ms <= ?1",
            params![now_ms],
        )?;
        Ok(n as u64)
    }

    fn delete_expired_sign_ins(&self, codes_before_ms: i64, now_ms: i64) -> Result<(u64, u64)> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let codes = tx.execute(
            "DELETE FROM sign_in_codes WHERE created_ms < ?1",
            params![codes_before_ms],
        )?;
        let sessions = tx.execute(
            "DELETE FROM sessions WHERE expires_ms <= ?1 OR revoked <> 0",
            params![now_ms],
        )?;
        tx.commit()?;
        Ok((codes as u64, sessions as u64))
    }

    fn delete_finished_mail(&self, done_before_ms: i64) -> Result<u64> {
        let n = self.write().execute(
            "DELETE FROM outbox WHERE state <> 'queued' AND done_ms < ?1",
            params![done_before_ms],
        )?;
        Ok(n as u64)
    }

    fn delete_expired_values(&self, expiries: &[(String, i64)]) -> Result<Vec<u64>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut counts = Vec::with_capacity(expiries.len());
        for (category, cutoff) in expiries {
            // The terms first: they are found through the values they index.
            tx.prepare_cached(
                "DELETE FROM blind_index WHERE category = ?1 AND subject IN
                   (SELECT subject FROM field_values WHERE category = ?1 AND time_ms <= ?2)",
            )?
            .execute(params![category, cutoff])?;
            let n = tx
                .prepare_cached("DELETE FROM field_values WHERE category = ?1 AND time_ms <= ?2")?
                .execute(params![category, cutoff])?;
            counts.push(n as u64);
        }
        tx.commit()?;
        Ok(counts)
    }

    fn put_consent(&self, c: &ConsentRow) -> Result<()> {
        self.put_consents(&[c])
    }

    fn put_consents(&self, rows: &[&ConsentRow]) -> Result<()> {
        let mut conn = self.write();
        super::receipts::packing(&self.packer, &self.dicts, |packer| {
            put_consents_on(&mut conn, packer, rows)
        })
    }
    fn consents(&self, subject: &str) -> Result<Vec<ConsentRow>> {
        consents_on(&self.read(), &self.dicts, subject)
    }

    fn erase_subject(
        &self,
        id: &str,
        age: Age,
        entry: &Draft,
        checkpoint: &Checkpointer<'_>,
    ) -> Result<u64> {
        let mut conn = self.write();
        // INVARIANT: erasable by key — the data key goes first, in a commit of its own.
        // SQLite commits a transaction spanning two WAL databases one file at a time, the
        // data database first, so within one transaction a crash could leave the subject
        // erased and its records waiting for the purge with their key still there. Committed
        // first, the key is gone whatever happens next: without it nothing of the subject
        // decrypts, whatever copy of the data survives.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM keys.subject_keys WHERE subject = ?1")?
            .execute(params![id])?;
        tx.commit()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for sql in [
            "DELETE FROM field_values WHERE subject = ?1",
            "DELETE FROM blind_index WHERE subject = ?1",
            "DELETE FROM consent_receipts WHERE id IN
                 (SELECT e.receipt_id FROM consents c JOIN consent_evidence e ON e.seq = c.seq
                   WHERE c.subject = ?1)",
            "DELETE FROM consent_evidence WHERE seq IN
                 (SELECT seq FROM consents WHERE subject = ?1)",
            "DELETE FROM consents WHERE subject = ?1",
            "DELETE FROM subject_tenants WHERE subject = ?1",
        ] {
            tx.prepare_cached(sql)?.execute(params![id])?;
        }
        tx.prepare_cached("UPDATE subjects SET status = 'erased', age = ?2 WHERE id = ?1")?
            .execute(params![id, age.as_str()])?;
        // The records go later, in bounded transactions (`purge_records`).
        tx.prepare_cached(
            "INSERT INTO erasures (subject, queued_ms)
             SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM subjects WHERE id = ?1)
             ON CONFLICT (subject) DO NOTHING",
        )?
        .execute(params![id, now_ms()])?;
        // INVARIANT: every erasure is ledgered — the entry commits to `ledger.db` after
        // this, so it is kept here too, with this commit, until it is in the ledger; after a
        // crash in between, the next open appends it (`settle_pending`).
        let (pending, after_seq) = insert_pending(&tx, entry)?;
        tx.commit()?;
        // Old frames of the key database's WAL may still hold the wrapped key: truncate it
        // now. Should a reader keep that from finishing, the purge's first step retries.
        let _ = scrub(&conn);
        drop(conn);
        // Once only: another process opening the store now may have appended it already
        // (`settle_pending`).
        let (seq, _) = self.append_once(entry, after_seq, checkpoint)?;
        // The erasure and its entry are durable; should this delete fail, or a crash come
        // first, the next open finds the entry in the ledger and deletes the row then.
        let _ = self.forget_pending(pending);
        Ok(seq)
    }

    fn settle_pending(&self, checkpoint: &Checkpointer<'_>) -> Result<u64> {
        let pending = self
            .write()
            .prepare_cached(
                "SELECT id, after_seq, time_ms, actor, action, subject, purpose, recipient,
                   categories, effect, reasons FROM pending_ledger ORDER BY id",
            )?
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    to_u64(r.get(1)?),
                    Draft {
                        time_ms: r.get(2)?,
                        actor: r.get(3)?,
                        action: r.get(4)?,
                        subject: r.get(5)?,
                        purpose: r.get(6)?,
                        recipient: r.get(7)?,
                        categories: r.get(8)?,
                        effect: r.get(9)?,
                        reasons: r.get(10)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut appended = 0;
        for (id, after_seq, entry) in pending {
            if self.append_once(&entry, after_seq, checkpoint)?.1 {
                appended += 1;
            }
            self.forget_pending(id)?;
        }
        Ok(appended)
    }

    fn scrub_keys(&self) -> Result<bool> {
        scrub(&self.write())
    }

    fn purge_queue(&self) -> Result<Vec<String>> {
        let conn = self.read();
        let mut stmt =
            conn.prepare_cached("SELECT subject FROM erasures ORDER BY queued_ms, subject")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    fn purge_records(&self, subject: &str, limit: u64) -> Result<Purged> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status: Option<String> = tx
            .prepare_cached("SELECT status FROM subjects WHERE id = ?1")?
            .query_row(params![subject], |r| r.get(0))
            .optional()?;
        if status.is_none_or(|s| Status::parse(&s) != Status::Erased) {
            return Err(not_erased());
        }
        // By rowid through the subject index: one bounded transaction, so the writer is
        // never held for long.
        let deleted = tx
            .prepare_cached(
                "DELETE FROM records WHERE seq IN
                   (SELECT seq FROM records WHERE subject = ?1 LIMIT ?2)",
            )?
            .execute(params![subject, to_i64(limit)])? as u64;
        let left = deleted >= limit
            || tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM records WHERE subject = ?1)")?
                .query_row(params![subject], |r| r.get::<_, bool>(0))?;
        if !left {
            tx.prepare_cached("DELETE FROM erasures WHERE subject = ?1")?
                .execute(params![subject])?;
        }
        tx.commit()?;
        Ok(Purged {
            deleted,
            done: !left,
        })
    }

    fn put_api_key(&self, k: &ApiKeyRow) -> Result<()> {
        self.write().execute(
            "INSERT INTO api_keys (hash, accessor, tenant, revoked, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![k.hash, k.accessor, k.tenant, k.revoked, k.created_ms],
        )?;
        Ok(())
    }

    fn api_key(&self, hash: &str) -> Result<Option<ApiKeyRow>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT hash, accessor, tenant, revoked, created_ms FROM api_keys WHERE hash = ?1",
            )?
            .query_row(params![hash], |r| {
                Ok(ApiKeyRow {
                    hash: r.get(0)?,
                    accessor: r.get(1)?,
                    tenant: r.get(2)?,
                    revoked: r.get(3)?,
                    created_ms: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn revoke_api_keys(&self, accessor: &str, tenant: Option<&str>) -> Result<u64> {
        let n = self.write().execute(
            "UPDATE api_keys SET revoked = 1
              WHERE accessor = ?1 AND revoked = 0 AND (?2 IS NULL OR tenant = ?2)",
            params![accessor, tenant],
        )?;
        Ok(n as u64)
    }

    fn put_instrument(&self, i: &InstrumentRow) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO instruments (id, kind, issuer, issued, document_sha256, categories,
                                      expires_ms, registered_by, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            i.id,
            i.kind,
            i.issuer,
            i.issued,
            i.document_sha256,
            join(&i.categories),
            i.expires_ms,
            i.registered_by,
            i.created_ms
        ])?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO instrument_subjects (instrument, subject) VALUES (?1, ?2)",
            )?;
            for s in &i.subjects {
                stmt.execute(params![i.id, s])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn instrument(&self, id: &str, subject: Option<&str>) -> Result<Option<InstrumentRow>> {
        let conn = self.read();
        let found = conn
            .prepare_cached(
                "SELECT kind, issuer, issued, document_sha256, categories, expires_ms,
                        registered_by, created_ms
                   FROM instruments WHERE id = ?1",
            )?
            .query_row(params![id], |r| {
                Ok(InstrumentRow {
                    id: id.to_string(),
                    kind: r.get(0)?,
                    issuer: r.get(1)?,
                    issued: r.get(2)?,
                    document_sha256: r.get(3)?,
                    subjects: Vec::new(),
                    categories: split(&r.get::<_, String>(4)?),
                    expires_ms: r.get(5)?,
                    registered_by: r.get(6)?,
                    created_ms: r.get(7)?,
                })
            })
            .optional()?;
        let Some(mut row) = found else {
            return Ok(None);
        };
        // INVARIANT: an erased subject is covered by no instrument.
        let mut stmt = conn.prepare_cached(
            "SELECT s.subject FROM instrument_subjects s JOIN subjects p ON p.id = s.subject
              WHERE s.instrument = ?1 AND (?2 IS NULL OR s.subject = ?2)
                AND p.status <> 'erased'
              ORDER BY s.subject",
        )?;
        row.subjects = stmt
            .query_map(params![id, subject], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if subject.is_some() && row.subjects.is_empty() {
            return Ok(None);
        }
        Ok(Some(row))
    }

    fn find_all_by_term(&self, category: &str, term: &str) -> Result<Vec<String>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT subject FROM blind_index WHERE category = ?1 AND term = ?2
                 ORDER BY subject LIMIT 1000",
            )?
            .query_map(params![category, term], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?)
    }

    fn mailing_audience(&self, category: &str) -> Result<Vec<(String, SubjectState)>> {
        let conn = self.read();
        // One read transaction: one snapshot for the three statements.
        let tx = conn.unchecked_transaction()?;
        let mut out: Vec<(String, SubjectState)> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT s.id, s.status, s.age, k.wrapped, v.category, v.ciphertext, v.purposes,
                        v.notice, v.service, v.role, v.time_ms
                   FROM subjects s
                   LEFT JOIN keys.subject_keys k ON k.subject = s.id
                   LEFT JOIN field_values v ON v.subject = s.id AND v.category = ?1
                  WHERE s.status <> 'erased'
                  ORDER BY s.id",
            )?;
            let mut rows = stmt.query(params![category])?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let str_at = |i: usize| -> rusqlite::Result<&str> { Ok(r.get_ref(i)?.as_str()?) };
                let mut state = SubjectState {
                    status: Status::parse(str_at(1)?),
                    age: Age::parse(str_at(2)?),
                    tenants: Vec::new(),
                    values: Vec::new(),
                    consents: Vec::new(),
                    wrapped_dek: r.get(3)?,
                };
                if let Some(category) = r.get::<_, Option<String>>(4)? {
                    state.values.push(ValueRow {
                        subject: id.clone(),
                        category,
                        ciphertext: r.get(5)?,
                        purposes: split(str_at(6)?),
                        notice: r.get(7)?,
                        service: r.get(8)?,
                        role: r.get(9)?,
                        time_ms: r.get(10)?,
                    });
                }
                at.insert(id.clone(), out.len());
                out.push((id, state));
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "SELECT c.subject, c.purpose, c.kind, c.notice, c.method, c.given, e.recipient,
                        c.time_ms
                   FROM consents c LEFT JOIN consent_evidence e ON e.seq = c.seq
                  ORDER BY c.seq",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let subject: String = r.get(0)?;
                let Some(st) = at.get(&subject).and_then(|&i| out.get_mut(i)) else {
                    continue;
                };
                st.1.consents.push(ConsentRow {
                    purpose: r.get(1)?,
                    kind: r.get(2)?,
                    notice: r.get(3)?,
                    method: r.get(4)?,
                    given: r.get::<_, i64>(5)? != 0,
                    recipient: r.get(6)?,
                    time_ms: r.get(7)?,
                    evidence: None,
                    subject,
                });
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "SELECT subject, tenant FROM subject_tenants ORDER BY subject, tenant",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let subject: String = r.get(0)?;
                if let Some(st) = at.get(&subject).and_then(|&i| out.get_mut(i)) {
                    st.1.tenants.push(r.get(1)?);
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn put_mailing(&self, m: &MailingRow, mails: &[MailRow]) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO mailings (id, purpose, actor, tenant, subject, recipients, excluded,
                                   created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            m.id,
            m.purpose,
            m.actor,
            m.tenant,
            m.subject,
            to_i64(m.recipients),
            m.excluded,
            m.created_ms
        ])?;
        for mail in mails {
            put_mail_on(&tx, mail)?;
        }
        tx.commit()?;
        self.checkpointer.committed(mails.len() as u64);
        Ok(())
    }

    fn mailing(&self, id: &str) -> Result<Option<MailingRow>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT id, purpose, actor, tenant, subject, recipients, excluded, created_ms
                   FROM mailings WHERE id = ?1",
            )?
            .query_row(params![id], |r| {
                Ok(MailingRow {
                    id: r.get(0)?,
                    purpose: r.get(1)?,
                    actor: r.get(2)?,
                    tenant: r.get(3)?,
                    subject: r.get(4)?,
                    recipients: to_u64(r.get(5)?),
                    excluded: r.get(6)?,
                    created_ms: r.get(7)?,
                })
            })
            .optional()?)
    }

    fn put_mail(&self, m: &MailRow) -> Result<()> {
        put_mail_on(&self.write(), m)
    }

    fn claim_mail(&self, now_ms: i64, lease_until_ms: i64, limit: u64) -> Result<Vec<MailRow>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows = tx
            .prepare_cached(
                "SELECT id, state, attempts, created_ms, next_ms, done_ms, sealed FROM outbox
                  WHERE state = 'queued' AND next_ms <= ?1 ORDER BY next_ms LIMIT ?2",
            )?
            .query_map(
                params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
                mail_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        {
            let mut lease = tx.prepare_cached("UPDATE outbox SET next_ms = ?2 WHERE id = ?1")?;
            for r in &rows {
                lease.execute(params![r.id, lease_until_ms])?;
            }
        }
        tx.commit()?;
        Ok(rows)
    }

    fn update_mail(&self, id: &str, state: &str, attempts: u32, next_ms: i64) -> Result<()> {
        // INVARIANT: a message sent or given up keeps no sealed body, recipient or subject.
        self.write()
            .prepare_cached(
                "UPDATE outbox SET state = ?2, attempts = ?3, next_ms = ?4,
                        done_ms = CASE WHEN ?2 = 'queued' THEN NULL ELSE ?4 END,
                        sealed = CASE WHEN ?2 = 'queued' THEN sealed ELSE NULL END
                  WHERE id = ?1",
            )?
            .execute(params![id, state, attempts, next_ms])?;
        Ok(())
    }

    fn mail(&self, id: &str) -> Result<Option<MailRow>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT id, state, attempts, created_ms, next_ms, done_ms, sealed FROM outbox
                  WHERE id = ?1",
            )?
            .query_row(params![id], mail_row)
            .optional()?)
    }

    fn put_sign_in_code(
        &self,
        row: &SignInCodeRow,
        mail: Option<&MailRow>,
        since_ms: i64,
        max: u32,
    ) -> Result<Option<i64>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (count, oldest): (i64, Option<i64>) = tx
            .prepare_cached(
                "SELECT COUNT(*), MIN(created_ms) FROM sign_in_codes
                  WHERE address = ?1 AND created_ms > ?2",
            )?
            .query_row(params![row.address, since_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if count >= i64::from(max) {
            return Ok(Some(oldest.unwrap_or(since_ms)));
        }
        tx.prepare_cached(
            "INSERT INTO sign_in_codes (id, address, code, subjects, attempts, used, created_ms,
                                        expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            row.id,
            row.address,
            row.code,
            join(&row.subjects),
            row.attempts,
            row.used,
            row.created_ms,
            row.expires_ms
        ])?;
        if let Some(m) = mail {
            put_mail_on(&tx, m)?;
        }
        tx.commit()?;
        Ok(None)
    }

    fn attempt_sign_in_code(
        &self,
        address: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<Option<(SignInCodeRow, bool)>> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .prepare_cached(
                "SELECT id, address, code, subjects, attempts, used, created_ms, expires_ms
                   FROM sign_in_codes WHERE address = ?1
                  ORDER BY created_ms DESC, id DESC LIMIT 1",
            )?
            .query_row(params![address], |r| {
                Ok(SignInCodeRow {
                    id: r.get(0)?,
                    address: r.get(1)?,
                    code: r.get(2)?,
                    subjects: split(&r.get::<_, String>(3)?),
                    attempts: r.get(4)?,
                    used: r.get(5)?,
                    created_ms: r.get(6)?,
                    expires_ms: r.get(7)?,
                })
            })
            .optional()?;
        let Some(mut row) = row else {
            return Ok(None);
        };
        let counted = !row.used && row.expires_ms > now_ms && row.attempts < max_attempts;
        if counted {
            row.attempts += 1;
            tx.prepare_cached("UPDATE sign_in_codes SET attempts = ?2 WHERE id = ?1")?
                .execute(params![row.id, row.attempts])?;
        }
        tx.commit()?;
        Ok(Some((row, counted)))
    }

    fn redeem_sign_in_code(&self, id: &str, session: &SessionRow) -> Result<bool> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx
            .prepare_cached("UPDATE sign_in_codes SET used = 1 WHERE id = ?1 AND used = 0")?
            .execute(params![id])?;
        if n == 0 {
            return Ok(false);
        }
        tx.prepare_cached(
            "INSERT INTO sessions (hash, subjects, signed_in_ms, expires_ms, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            session.hash,
            join(&session.subjects),
            session.signed_in_ms,
            session.expires_ms,
            session.revoked
        ])?;
        tx.commit()?;
        Ok(true)
    }

    fn session(&self, hash: &str) -> Result<Option<SessionRow>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT hash, subjects, signed_in_ms, expires_ms, revoked FROM sessions
                  WHERE hash = ?1",
            )?
            .query_row(params![hash], |r| {
                Ok(SessionRow {
                    hash: r.get(0)?,
                    subjects: split(&r.get::<_, String>(1)?),
                    signed_in_ms: r.get(2)?,
                    expires_ms: r.get(3)?,
                    revoked: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn revoke_session(&self, hash: &str) -> Result<bool> {
        let n = self
            .write()
            .prepare_cached("UPDATE sessions SET revoked = 1 WHERE hash = ?1 AND revoked = 0")?
            .execute(params![hash])?;
        Ok(n > 0)
    }

    fn put_request(&self, q: &RequestRow) -> Result<()> {
        let conn = self.write();
        conn.prepare_cached(
            "INSERT INTO requests (id, kind, subject, channel, verification, purpose, state,
                                   reason, received_ms, due_ms, updated_ms, created_by, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            q.id,
            q.kind,
            q.subject,
            q.channel,
            q.verification,
            q.purpose,
            q.state,
            q.reason,
            q.received_ms,
            q.due_ms,
            q.updated_ms,
            q.created_by,
            q.updated_by
        ])?;
        Ok(())
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        let conn = self.read();
        let row = conn
            .prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"
            ))?
            .query_row(params![id], request_row)
            .optional()?;
        Ok(row)
    }

    fn requests(
        &self,
        filter: RequestFilter,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<Vec<RequestRow>> {
        let conn = self.read();
        let (open, before) = filter.bounds();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests
              WHERE (?1 = 0 OR state IN ('received', 'verified')) AND due_ms < ?2
                AND (?4 IS NULL OR due_ms > ?4 OR (due_ms = ?4 AND id > ?5))
              ORDER BY due_ms, id LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    open,
                    before,
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    after.map(|a| a.0),
                    after.map(|a| a.1)
                ],
                request_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn transition_request(&self, q: &RequestRow, from: &str) -> Result<bool> {
        let conn = self.write();
        let n = conn
            .prepare_cached(
                "UPDATE requests SET state = ?2, reason = ?3, updated_ms = ?4, updated_by = ?5
                  WHERE id = ?1 AND state = ?6",
            )?
            .execute(params![
                q.id,
                q.state,
                q.reason,
                q.updated_ms,
                q.updated_by,
                from
            ])?;
        Ok(n == 1)
    }

    fn rewrap_keys(&self, rewrap: &mut Rewrap<'_>) -> Result<u64> {
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0u64;
        for (kind, table, col) in [
            ("dek", "keys.subject_keys", "subject"),
            ("secret", "keys.secrets", "name"),
        ] {
            let rows = {
                let mut stmt = tx.prepare(&format!("SELECT {col}, wrapped FROM {table}"))?;
                stmt.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut update =
                tx.prepare(&format!("UPDATE {table} SET wrapped = ?2 WHERE {col} = ?1"))?;
            for (name, wrapped) in rows {
                update.execute(params![name, rewrap(kind, &name, &wrapped)?])?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    fn append_ledger(&self, drafts: &[Draft], checkpoint: &Checkpointer<'_>) -> Result<u64> {
        self.in_ledger(|conn, edge| append_in(conn, drafts, checkpoint, edge))
    }

    fn ledger_tiles(&self, keys: &[TileKey]) -> Result<Tiles> {
        LedgerTiles(&self.read()).read_tiles(keys)
    }

    fn ledger_tree_size(&self) -> Result<u64> {
        let conn = self.read();
        let (head, _) = ledger_head(&conn)?;
        Ok(tree::served_size(head, LedgerTiles(&conn).tree_size()?))
    }

    fn grow_ledger_tree(&self, limit: u64) -> Result<u64> {
        self.in_ledger(|conn, edge| {
            let (head_seq, _) = ledger_head(conn)?;
            let mut io = LedgerTiles(conn);
            let before = io.tree_size()?;
            // The tiles stop at the last full tile: up to 255 entries after them are the
            // blocks' (`ledger/tree.rs`).
            if head_seq < before + tree::TILE_WIDTH {
                return Ok(0);
            }
            let grown = tree::catch_up(&mut io, head_seq, limit)?;
            let added = grown.size() - before;
            *edge = Some(grown);
            Ok(added)
        })
    }

    fn ledger_page(&self, from_seq: u64, limit: u64) -> Result<Vec<LedgerEntry>> {
        let conn = self.read();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut page = Vec::new();
        if limit > 0 {
            blocks_from(&conn, from_seq, u64::MAX, &mut |b| {
                block::page(b, from_seq, limit, &mut page)
            })?;
        }
        Ok(page)
    }

    fn ledger_last_seq(&self) -> Result<u64> {
        let last: Option<i64> = self
            .read()
            .prepare_cached("SELECT last_seq FROM ledger_blocks ORDER BY first_seq DESC LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        Ok(last.map_or(0, to_u64))
    }

    fn ledger_span(&self) -> Result<Option<(u64, u64)>> {
        let (first, last): (Option<i64>, Option<i64>) = self
            .read()
            .prepare_cached(
                "SELECT (SELECT first_seq FROM ledger_blocks ORDER BY first_seq LIMIT 1),
                        (SELECT MAX(first_seq, last_seq) FROM ledger_blocks
                         ORDER BY first_seq DESC LIMIT 1)",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(first.zip(last).map(|(f, l)| (to_u64(f), to_u64(l))))
    }

    fn scan_ledger(&self, seqs: std::ops::Range<u64>, visit: &mut LedgerVisitor<'_>) -> Result<()> {
        let conn = self.read();
        let mut scan = block::Scan::new(seqs.clone());
        blocks_from(&conn, seqs.start, seqs.end, &mut |b| {
            Ok(scan.block(b, visit))
        })
    }

    fn scan_ledger_about(&self, subject: &str, visit: &mut LedgerVisitor<'_>) -> Result<()> {
        let conn = self.read();
        let from: i64 = conn
            .prepare_cached("SELECT seq FROM audit.ledger_subjects_from")?
            .query_row([], |r| r.get(0))
            .optional()?
            .unwrap_or(1);
        let from = to_u64(from);
        if from > 1 {
            let mut scan = block::Scan::new(1..from);
            blocks_from(&conn, 1, from, &mut |b| Ok(scan.block(b, visit)))?;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT b.first_seq, b.last_seq, b.prev_hash, b.entries
               FROM audit.ledger_subjects s
               JOIN audit.ledger_blocks b ON b.first_seq = s.first_seq
              WHERE s.subject = ?1 AND s.first_seq >= ?2
              ORDER BY s.first_seq",
        )?;
        let mut rows = stmt.query(params![subject, to_i64(from)])?;
        while let Some(r) = rows.next()? {
            if !block::visit_block(&block_ref(r)?, visit)? {
                break;
            }
        }
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let conn = self.read();
        let mut stmt = conn
            .prepare_cached("SELECT seq, hash, signature FROM ledger_checkpoints ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Checkpoint {
                    seq: to_u64(r.get(0)?),
                    hash: r.get(1)?,
                    signature: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn put_cookie_consent(&self, row: &CookieConsentRow) -> Result<()> {
        self.write()
            .prepare_cached(
                "INSERT INTO cookie_consents (id, choices, notice, notice_sha256, gpc, time_ms, receipt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                row.id,
                row.choices,
                row.notice,
                row.notice_sha256,
                row.gpc,
                row.time_ms,
                row.receipt
            ])?;
        Ok(())
    }

    fn cookie_consent(&self, id: &str) -> Result<Option<CookieConsentRow>> {
        let conn = self.read();
        let row = conn
            .prepare_cached(
                "SELECT id, choices, notice, notice_sha256, gpc, time_ms, receipt
                   FROM cookie_consents WHERE id = ?1",
            )?
            .query_row(params![id], |r| {
                Ok(CookieConsentRow {
                    id: r.get(0)?,
                    choices: r.get(1)?,
                    notice: r.get(2)?,
                    notice_sha256: r.get(3)?,
                    gpc: r.get(4)?,
                    time_ms: r.get(5)?,
                    receipt: r.get(6)?,
                })
            })
            .optional()?;
        Ok(row)
    }

    fn add_counts(&self, rows: &[CountRow], max_names: u64, other: &str) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut conn = self.write();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE aggregate_counts SET count = count + ?4, total = total + ?5
                  WHERE kind = ?1 AND day = ?2 AND name = ?3",
            )?;
            let mut names = tx.prepare_cached(
                "SELECT COUNT(*) FROM aggregate_counts WHERE kind = ?1 AND day = ?2",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO aggregate_counts (kind, day, name, count, total)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, day, name) DO UPDATE
                   SET count = count + excluded.count, total = total + excluded.total",
            )?;
            for c in rows {
                if update.execute(params![c.kind, c.day, c.name, c.count, c.total])? > 0 {
                    continue;
                }
                let held: i64 = names.query_row(params![c.kind, c.day], |r| r.get(0))?;
                let name = if u64::try_from(held).unwrap_or(u64::MAX) >= max_names {
                    other
                } else {
                    c.name.as_str()
                };
                insert.execute(params![c.kind, c.day, name, c.count, c.total])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn counts(&self, kind: &str, from: &str, to: &str, limit: u64) -> Result<Vec<CountRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT kind, name, day, count, total FROM aggregate_counts
              WHERE kind = ?1 AND day >= ?2 AND day <= ?3
              ORDER BY day, name LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(
                params![kind, from, to, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(CountRow {
                        kind: r.get(0)?,
                        name: r.get(1)?,
                        day: r.get(2)?,
                        count: r.get(3)?,
                        total: r.get(4)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

fn put_mail_on(conn: &Connection, m: &MailRow) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, state, attempts, created_ms, next_ms, done_ms, sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        m.id,
        m.state,
        m.attempts,
        m.created_ms,
        m.next_ms,
        m.done_ms,
        m.sealed
    ])?;
    Ok(())
}

fn mail_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailRow> {
    Ok(MailRow {
        id: r.get(0)?,
        state: r.get(1)?,
        attempts: r.get(2)?,
        created_ms: r.get(3)?,
        next_ms: r.get(4)?,
        done_ms: r.get(5)?,
        sealed: r.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(actor: &str) -> Draft {
        Draft {
            actor: actor.into(),
            action: "test".into(),
            ..Draft::default()
        }
    }

    /// A data transaction (the writer's `BEGIN IMMEDIATE`) does not hold the ledger: the
    /// data connections attach `ledger.db` read-only. And a transaction a panic left open on
    /// the ledger connection does not lock out the next append.
    #[test]
    fn the_ledger_appends_beside_an_open_data_transaction() {
        let dir = std::env::temp_dir().join(format!("custos_sqlite_unit_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).unwrap();
        store
            .ledger
            .lock()
            .unwrap()
            .busy_timeout(Duration::from_millis(200))
            .unwrap();
        let none = |_: u64, _: &str| None;
        {
            let data = store.write();
            data.execute_batch("BEGIN IMMEDIATE").unwrap();
            assert_eq!(store.append_ledger(&[draft("a")], &none).unwrap(), 1);
            data.execute_batch("ROLLBACK").unwrap();
        }
        store
            .ledger
            .lock()
            .unwrap()
            .execute_batch("BEGIN IMMEDIATE")
            .unwrap();
        assert_eq!(store.append_ledger(&[draft("b")], &none).unwrap(), 2);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A receipt stored as TEXT (before packing, or not the canonical JWS) reads back as
    /// written; bytes that are not UTF-8 fail the read rather than come back altered.
    #[test]
    fn a_text_receipt_reads_back_as_written_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("custos_sqlite_text_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).unwrap();
        let row = |receipt_id: &str| ConsentRow {
            subject: "s1".into(),
            purpose: "newsletters".into(),
            kind: "consent".into(),
            given: true,
            notice: "2010-04-24".into(),
            method: "settings_page".into(),
            time_ms: 1,
            recipient: None,
            evidence: Some(ConsentEvidence {
                actor: "person".into(),
                notice_sha256: "00".repeat(32),
                receipt_id: receipt_id.into(),
                // Not a JWS: stored as TEXT.
                receipt: "not a receipt \u{e9}".into(),
            }),
        };
        store.put_consents(&[&row("r1")]).unwrap();
        let read = store.consents("s1").unwrap();
        assert_eq!(read, vec![row("r1")]);
        store
            .write()
            .execute(
                "UPDATE consent_receipts SET receipt = CAST(x'6e6fff' AS TEXT) WHERE id = 'r1'",
                [],
            )
            .unwrap();
        assert!(store.consents("s1").is_err());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The writer's per-connection settings, read back from the connection.
    fn writer_pragmas(conn: &Connection) -> Vec<(String, i64)> {
        [
            "main.synchronous",
            "keys.synchronous",
            "main.secure_delete",
            "keys.secure_delete",
            "foreign_keys",
            "wal_autocheckpoint",
            "main.cache_size",
            "audit.cache_size",
            "audit.mmap_size",
        ]
        .into_iter()
        .map(|p| {
            let v: i64 = conn
                .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
                .unwrap();
            (p.to_string(), v)
        })
        .collect()
    }

    /// Each connection's page cache is its own, bounded by its own `cache_size`: with SQLite's
    /// memory management compiled in (libsqlite3-sys's default) every connection shares one
    /// pool, and the writer's cache grows to thousands of pages walked at its commits.
    #[test]
    fn each_connection_keeps_a_page_cache_of_its_own() {
        let conn = Connection::open_in_memory().unwrap();
        let shared: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_compile_options
                 WHERE compile_options = 'ENABLE_MEMORY_MANAGEMENT'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            shared, 0,
            "build with LIBSQLITE3_FLAGS from .cargo/config.toml"
        );
    }

    /// A bulk batch leaves the writer opened afresh (its big page cache gone) and set as the
    /// store opened it: durable commits, keys zeroed when deleted, foreign keys checked, no
    /// checkpoint in a commit, the writer's small cache, the ledger read memory-mapped (at
    /// open too, though the writer attaches `ledger.db` again read-only after the migrations).
    #[test]
    fn the_writer_after_a_bulk_batch_is_set_as_at_open() {
        let dir = std::env::temp_dir().join(format!("custos_sqlite_bulk_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).unwrap();
        let expected: Vec<(String, i64)> = [
            ("main.synchronous", 2),
            ("keys.synchronous", 2),
            ("main.secure_delete", 2),
            ("keys.secure_delete", 1),
            ("foreign_keys", 1),
            ("wal_autocheckpoint", 0),
            ("main.cache_size", -2048),
            ("audit.cache_size", -4096),
            ("audit.mmap_size", 1 << 30),
        ]
        .into_iter()
        .map(|(p, v)| (p.to_string(), v))
        .collect();
        assert_eq!(writer_pragmas(&store.write()), expected, "at open");
        let subjects: Vec<NewSubject> = (0..BULK_SUBJECTS + 1)
            .map(|i| NewSubject {
                row: SubjectRow {
                    id: format!("00000000-0000-7000-8000-{i:012}"),
                    status: Status::Active,
                    age: Age::Unknown,
                    tenants: Vec::new(),
                    created_ms: 1,
                },
                wrapped_dek: vec![1; 8],
                values: Vec::new(),
                index: Vec::new(),
            })
            .collect();
        let n = store.create_subjects(&mut subjects.iter().map(Ok)).unwrap();
        assert_eq!(n, subjects.len() as u64);
        assert_eq!(
            writer_pragmas(&store.write()),
            expected,
            "after a bulk batch"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
