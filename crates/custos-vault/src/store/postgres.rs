//! The scale backend: PostgreSQL via the synchronous `postgres` crate.
//!
//! Many `custos serve` processes may share one database. Wrapped keys live in their own
//! schema, `custos_keys`, so they can be granted, dumped and backed up apart from the data.
//! Commits are durable with PostgreSQL's default `synchronous_commit = on`. The ledger stays
//! one chain across servers: each append takes a transaction-scoped advisory lock before it
//! reads the chain head. Migrations run under another advisory lock, so servers starting
//! together apply them once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use std::collections::HashMap;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::{Client, NoTls, Row, Statement};

use super::receipts::{DictTable, DictWriter, Dictionaries, Packer, Stored, packing};
use super::{
    Age, ApiKeyRow, ConsentEvidence, ConsentRow, InstrumentRow, MailRow, MailingRow, NewSubject,
    Purged, RecordRow, RequestFilter, RequestRow, SessionRow, SignInCodeRow, Status, Store,
    SubjectRow, SubjectState, ValueRow,
};
use super::{
    Checkpointer, CookieConsentRow, CountRow, LedgerVisitor, Rewrap, join, not_erased, now_ms,
    split,
};
use crate::error::{Error, Result};
use crate::ledger::tree::{self, Edge, TileIo, TileKey, Tiles};
use crate::ledger::{Chained, Checkpoint, Draft, GENESIS, LedgerEntry, block};

const LOCK_MIGRATE: i64 = 0x6375_7374_6f73_0001;
const LOCK_LEDGER: i64 = 0x6375_7374_6f73_0002;
const LOCK_PURGE: i64 = 0x6375_7374_6f73_0003;

/// Schema migrations, applied in order; `custos_meta.schema_version` counts those applied.
/// Append new ones; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r"
CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    age TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE subject_tenants (
    subject TEXT NOT NULL,
    tenant TEXT NOT NULL,
    PRIMARY KEY (subject, tenant)
);
CREATE TABLE field_values (
    subject TEXT NOT NULL,
    category TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    purposes TEXT NOT NULL,
    notice TEXT NOT NULL,
    service TEXT NOT NULL,
    role TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
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
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    purposes TEXT NOT NULL,
    notice TEXT NOT NULL,
    retain_until_ms BIGINT,
    time_ms BIGINT NOT NULL
);
CREATE INDEX records_subject ON records (subject, collection, seq);
CREATE TABLE consents (
    seq BIGSERIAL PRIMARY KEY,
    subject TEXT NOT NULL,
    purpose TEXT NOT NULL,
    kind TEXT NOT NULL,
    given BOOLEAN NOT NULL,
    notice TEXT NOT NULL,
    method TEXT NOT NULL,
    time_ms BIGINT NOT NULL
);
CREATE INDEX consents_subject ON consents (subject, seq);
CREATE TABLE api_keys (
    hash TEXT PRIMARY KEY,
    accessor TEXT NOT NULL,
    revoked BOOLEAN NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE ledger (
    seq BIGINT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
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
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE SCHEMA IF NOT EXISTS custos_keys;
CREATE TABLE custos_keys.subject_keys (
    subject TEXT PRIMARY KEY,
    wrapped BYTEA NOT NULL
);
CREATE TABLE custos_keys.secrets (
    name TEXT PRIMARY KEY,
    wrapped BYTEA NOT NULL
);
",
    // 2: the purge queue of two-phase erasure — subjects erased (key gone) whose records
    // are not all deleted yet.
    r"
CREATE TABLE IF NOT EXISTS erasures (
    subject TEXT PRIMARY KEY,
    queued_ms BIGINT NOT NULL
);
",
    // 3: the ledger as blocks, one row per group commit (`ledger/block.rs`); the rows of
    // the `ledger` table are converted by `convert_rows` in the same transaction, which
    // then drops it.
    r"
CREATE TABLE IF NOT EXISTS ledger_blocks (
    first_seq BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    entries BYTEA NOT NULL
);
",
    // 4: the tenant an API key acts for (NULL for a key that acts for none, and for keys
    // made before).
    r"
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS tenant TEXT;
",
    // 5: legal instruments (issue 12) and the subjects each covers.
    r"
CREATE TABLE IF NOT EXISTS instruments (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    issuer TEXT NOT NULL,
    issued TEXT NOT NULL,
    document_sha256 TEXT NOT NULL,
    categories TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    registered_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS instrument_subjects (
    instrument TEXT NOT NULL,
    subject TEXT NOT NULL,
    PRIMARY KEY (instrument, subject)
);
",
    // 6: the ledger's Merkle tree as C2SP tiles (`ledger/tree.rs`), written in the blocks'
    // transaction. A ledger kept before it gets its tree built on open
    // (`Store::grow_ledger_tree`).
    r"
CREATE TABLE IF NOT EXISTS ledger_tiles (
    level SMALLINT NOT NULL,
    idx BIGINT NOT NULL,
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
",
    // 7: level-0 tiles are no longer stored: a leaf hash is `SHA-256(0x00 || entry hash)`
    // and the entry hashes are the blocks' (`ledger/tree.rs`); the tiles of level 1 and up
    // stay, and the tree's size is read from level 1.
    r"
DELETE FROM ledger_tiles WHERE level = 0;
",
    // 8: the outbox (`vault/mail.rs`): each message sealed under the outbox key until it
    // is sent or given up, then only its id, state, attempts and times.
    r"
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    next_ms BIGINT NOT NULL,
    done_ms BIGINT,
    sealed BYTEA
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_ms);
",
    // 9: people's sign-in codes and sessions (`vault/people.rs`): keyed hashes of the
    // address and the code, the SHA-256 of the session token; never the values.
    r"
CREATE TABLE IF NOT EXISTS sign_in_codes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    code TEXT NOT NULL,
    subjects TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    used BOOLEAN NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_codes_address ON sign_in_codes (address, created_ms);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY,
    subjects TEXT NOT NULL,
    signed_in_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL
);
",
    // 10: people's requests (issue 13) as staff handle them: keywords, ids and times, no
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
    received_ms BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_open_due ON requests (due_ms)
    WHERE state IN ('received', 'verified');
",
    // 11: the evidence of a consent change (issue 14), beside its event (`seq` of
    // `consents`): the recipient it is about, who recorded it, the SHA-256 of the notice
    // shown and its receipt's id; the signed receipts in a table of their own, so the rows
    // every decision reads stay small. New tables only (`IF NOT EXISTS`): safe to apply
    // again, whatever its number becomes.
    r"
CREATE TABLE IF NOT EXISTS consent_evidence (
    seq BIGINT PRIMARY KEY,
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
    // 12: the index from a subject to the ledger blocks holding entries about it, written
    // with each block (`append_in`), and the first seq it covers: the head's next when it
    // was made (older blocks are read in full for a subject).
    r"
CREATE TABLE IF NOT EXISTS ledger_subjects (
    subject TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    PRIMARY KEY (subject, first_seq)
);
CREATE TABLE IF NOT EXISTS ledger_subjects_from (seq BIGINT NOT NULL);
INSERT INTO ledger_subjects_from (seq)
    SELECT COALESCE((SELECT MAX(last_seq) FROM ledger_blocks), 0) + 1
    WHERE NOT EXISTS (SELECT 1 FROM ledger_subjects_from);
",
    // 13: mailings (issue 14, `vault/mailings.rs`): who sent one for which purpose, its
    // subject line sealed, its counts; no recipient. New table only: safe to apply again.
    r"
CREATE TABLE IF NOT EXISTS mailings (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    actor TEXT NOT NULL,
    tenant TEXT,
    subject BYTEA NOT NULL,
    recipients BIGINT NOT NULL,
    excluded TEXT NOT NULL,
    created_ms BIGINT NOT NULL
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
    gpc BOOLEAN NOT NULL,
    time_ms BIGINT NOT NULL,
    receipt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aggregate_counts (
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    name TEXT NOT NULL,
    count BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (kind, day, name)
);
",
    // 15: the dictionaries consent receipts are packed with (`store/receipts.rs`), as on
    // SQLite: a packed receipt is `consent_receipts.packed`, its `receipt` then NULL; one
    // stored before, or not a canonical JWS, stays `receipt` TEXT. Safe to apply again.
    r"
CREATE TABLE IF NOT EXISTS receipt_dicts (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    dict BYTEA NOT NULL
);
ALTER TABLE consent_receipts ADD COLUMN IF NOT EXISTS packed BYTEA;
ALTER TABLE consent_receipts ALTER COLUMN receipt DROP NOT NULL;
",
];

/// The columns of a [`RequestRow`], in [`request_row`]'s order (a literal: statements are
/// cached by their static text).
macro_rules! request_columns {
    () => {
        "id, kind, subject, channel, verification, purpose, state, reason, received_ms, due_ms,
         updated_ms, created_by, updated_by"
    };
}

fn request_row(r: &Row) -> RequestRow {
    RequestRow {
        id: r.get(0),
        kind: r.get(1),
        subject: r.get(2),
        channel: r.get(3),
        verification: r.get(4),
        purpose: r.get(5),
        state: r.get(6),
        reason: r.get(7),
        received_ms: r.get(8),
        due_ms: r.get(9),
        updated_ms: r.get(10),
        created_by: r.get(11),
        updated_by: r.get(12),
    }
}

/// Connections each store keeps: the ledger writer's appends (and their fsync) then do not
/// hold up reads.
const POOL: usize = 4;
/// Records per `INSERT … SELECT FROM UNNEST` of [`Store::append_records`].
const RECORD_CHUNK: usize = 5_000;

/// The PostgreSQL store: a small pool of connections.
pub struct PostgresStore {
    url: String,
    first: Mutex<Conn>,
    rest: Vec<Mutex<Conn>>,
    next: AtomicUsize,
    /// The right edge of the ledger's Merkle tree as last committed by this store
    /// (`ledger/tree.rs`); held from before an append's transaction to its end.
    edge: Mutex<Option<Edge>>,
    /// The consent receipts' packer, held for the whole transaction receipts are packed in.
    packer: Mutex<Packer>,
    /// The receipts' dictionaries read so far.
    dicts: Dictionaries,
}

/// A connection with its prepared statements: a cached statement costs one round trip per
/// query instead of two.
struct Conn {
    client: Client,
    cache: HashMap<&'static str, Statement>,
}

impl Conn {
    fn new(client: Client) -> Self {
        Self {
            client,
            cache: HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.cache.insert(sql, s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&Param<'_>],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&Param<'_>],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&Param<'_>],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    fn transaction(&mut self) -> Result<postgres::Transaction<'_>, postgres::Error> {
        self.client.transaction()
    }
}

type Param<'a> = dyn postgres::types::ToSql + Sync + 'a;

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore(..)")
    }
}

impl PostgresStore {
    /// Connects and applies migrations.
    pub fn connect(url: &str) -> Result<Self> {
        let mut first = Client::connect(url, NoTls)?;
        migrate(&mut first)?;
        let mut rest = Vec::with_capacity(POOL - 1);
        for _ in 1..POOL {
            rest.push(Mutex::new(Conn::new(Client::connect(url, NoTls)?)));
        }
        Ok(Self {
            url: url.to_string(),
            first: Mutex::new(Conn::new(first)),
            rest,
            next: AtomicUsize::new(0),
            edge: Mutex::new(None),
            packer: Mutex::new(Packer::new()),
            dicts: Dictionaries::default(),
        })
    }

    /// A free connection if there is one, else the next in turn. A connection the server
    /// closed (restart, failover) is replaced; if that fails the caller gets the error.
    fn lock(&self) -> MutexGuard<'_, Conn> {
        let mut guard = self.pick();
        if guard.client.is_closed() {
            if let Ok(client) = Client::connect(&self.url, NoTls) {
                *guard = Conn::new(client);
            }
        }
        guard
    }

    /// The tree's edge, for an append's transaction.
    fn edge(&self) -> MutexGuard<'_, Option<Edge>> {
        self.edge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `append` in a transaction under the tree's edge and commits it; when it does not
    /// commit, the edge is read again from the tiles next time.
    fn in_ledger<T>(
        &self,
        c: &mut Conn,
        append: impl FnOnce(
            &mut postgres::Transaction<'_>,
            &LedgerStatements,
            &mut Option<Edge>,
        ) -> Result<T>,
    ) -> Result<T> {
        let st = LedgerStatements::on(c)?;
        let mut edge = self.edge();
        let done = (|| {
            let mut tx = c.transaction()?;
            let t = append(&mut tx, &st, &mut edge)?;
            tx.commit()?;
            Ok(t)
        })();
        if done.is_err() {
            *edge = None;
        }
        done
    }

    fn pick(&self) -> MutexGuard<'_, Conn> {
        let all = || std::iter::once(&self.first).chain(&self.rest);
        for c in all() {
            if let Ok(guard) = c.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % (1 + self.rest.len());
        all()
            .nth(i)
            .unwrap_or(&self.first)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Stores consent events, their evidence and their receipts (packed when they can be) in one
/// transaction.
fn put_consents_in(c: &mut Conn, packer: &mut Packer, rows: &[&ConsentRow]) -> Result<()> {
    let mut tx = c.transaction()?;
    let event = tx.prepare(
        "INSERT INTO consents (subject, purpose, kind, given, notice, method, time_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
    )?;
    let evidence = tx.prepare(
        "INSERT INTO consent_evidence (seq, recipient, actor, notice_sha256, receipt_id)
         VALUES ($1, $2, $3, $4, $5)",
    )?;
    let receipt =
        tx.prepare("INSERT INTO consent_receipts (id, receipt, packed) VALUES ($1, $2, $3)")?;
    for c in rows {
        let seq: i64 = tx
            .query_one(
                &event,
                &[
                    &c.subject, &c.purpose, &c.kind, &c.given, &c.notice, &c.method, &c.time_ms,
                ],
            )?
            .get(0);
        match &c.evidence {
            Some(e) => {
                tx.execute(
                    &evidence,
                    &[
                        &seq,
                        &c.recipient,
                        &e.actor,
                        &e.notice_sha256,
                        &e.receipt_id,
                    ],
                )?;
                match packer.pack(&mut tx, &e.receipt, &c.subject, &e.receipt_id)? {
                    Stored::Packed(p) => {
                        tx.execute(&receipt, &[&e.receipt_id, &None::<&str>, &p])?
                    }
                    Stored::Text => {
                        tx.execute(&receipt, &[&e.receipt_id, &e.receipt, &None::<&[u8]>])?
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
    tx.commit()?;
    Ok(())
}

/// `receipt_dicts`, in the transaction consent receipts are packed in.
impl DictWriter for postgres::Transaction<'_> {
    fn insert_dict(&mut self, dict: &[u8]) -> Result<u32> {
        let id: i64 = self
            .query_one(
                "INSERT INTO receipt_dicts (dict) VALUES ($1) RETURNING id",
                &[&dict],
            )?
            .get(0);
        u32::try_from(id).map_err(|_| Error::Storage("too many receipt dictionaries".into()))
    }
}

/// `receipt_dicts`, read through a pooled connection (its statement cached).
impl DictTable for Conn {
    fn dict(&mut self, id: u32) -> Result<Option<Vec<u8>>> {
        Ok(self
            .query_opt(
                "SELECT dict FROM receipt_dicts WHERE id = $1",
                &[&i64::from(id)],
            )?
            .map(|r| r.get(0)))
    }
}

fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS custos_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )?;
    let applied: usize = tx
        .query_opt(
            "SELECT value FROM custos_meta WHERE key = 'schema_version'",
            &[],
        )?
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0);
    for (i, m) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(m)?;
        tx.execute(
            "INSERT INTO custos_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&(i + 1).to_string()],
        )?;
    }
    convert_rows(&mut tx)?;
    tx.commit()?;
    Ok(())
}

/// A `TEXT` column's bytes as the server sent them (UTF-8, the database's encoding),
/// borrowed from the row: no copy, no validation.
struct RawText<'a>(&'a [u8]);

impl<'a> postgres::types::FromSql<'a> for RawText<'a> {
    fn from_sql(
        _: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw))
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        *ty == postgres::types::Type::TEXT
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Converts a ledger kept as a row per entry (the `ledger` table, before 0.3) into blocks
/// ([`block::Grouper`]) and drops the table, in the migration's transaction: all of it or
/// none, once, under the migration lock. Rows stream through a portal.
fn convert_rows(tx: &mut postgres::Transaction<'_>) -> Result<()> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('ledger') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(());
    }
    let select = tx.prepare(
        "SELECT seq, time_ms, actor::bytea, action::bytea, subject::bytea, purpose::bytea,
           recipient::bytea, categories::bytea, effect::bytea, reasons::bytea,
           prev_hash::bytea, hash::bytea
         FROM ledger ORDER BY seq",
    )?;
    let insert = tx.prepare(INSERT_BLOCKS)?;
    let portal = tx.bind(&select, &[])?;
    let mut blocks = block::Grouper::default();
    let mut done = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 10_000)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let mut row = block::OwnedRow {
                seq: to_u64(r.try_get(0)?),
                time_ms: r.try_get(1)?,
                ..block::OwnedRow::default()
            };
            for (i, t) in row.text.iter_mut().enumerate() {
                *t = r.try_get::<_, Vec<u8>>(i + 2)?;
            }
            done.extend(blocks.push(row));
        }
        insert_blocks(tx, &insert, &done)?;
        done.clear();
    }
    done.extend(blocks.finish());
    insert_blocks(tx, &insert, &done)?;
    // The table cannot be dropped while the portal reading it is open.
    drop(portal);
    tx.batch_execute("DROP TABLE ledger")?;
    Ok(())
}

/// Inserts blocks, in one statement: each column as an array, zipped back into rows by
/// UNNEST.
const INSERT_BLOCKS: &str = "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries)
     SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[])";

fn insert_blocks(
    tx: &mut postgres::Transaction<'_>,
    insert: &Statement,
    blocks: &[block::NewBlock],
) -> Result<()> {
    if blocks.is_empty() {
        return Ok(());
    }
    let firsts: Vec<i64> = blocks.iter().map(|b| to_i64(b.first_seq)).collect();
    let lasts: Vec<i64> = blocks.iter().map(|b| to_i64(b.last_seq)).collect();
    let prevs: Vec<TextBytes<'_>> = blocks.iter().map(|b| TextBytes(&b.prev_hash)).collect();
    let bodies: Vec<&[u8]> = blocks.iter().map(|b| b.body.as_slice()).collect();
    tx.execute(insert, &[&firsts, &lasts, &prevs, &bodies])?;
    Ok(())
}

/// Bytes sent as a `TEXT` value as they are (the bytes a converted row held, or a hash's
/// hex digits).
#[derive(Debug)]
struct TextBytes<'a>(&'a [u8]);

impl postgres::types::ToSql for TextBytes<'_> {
    fn to_sql(
        &self,
        _: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(postgres::types::IsNull::No)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        *ty == postgres::types::Type::TEXT
    }

    postgres::types::to_sql_checked!();
}

/// The blocks holding entries `$1..$2` (see [`blocks_from`]).
const BLOCKS_FROM: &str = "SELECT first_seq, last_seq, prev_hash, entries FROM ledger_blocks
         WHERE first_seq >= COALESCE(
             (SELECT first_seq FROM ledger_blocks WHERE first_seq <= $1
              ORDER BY first_seq DESC LIMIT 1), $1)
           AND first_seq < $2
         ORDER BY first_seq";

/// Hands `each` the blocks holding entries `from..to`, in order — from the block holding
/// `from` (or the first after it) to the last one starting before `to` — until it returns
/// `false`. Rows stream as the server sends them, their columns borrowed.
fn blocks_from(
    c: &mut Conn,
    from: u64,
    to: u64,
    each: &mut dyn FnMut(&block::BlockRef<'_>) -> Result<bool>,
) -> Result<()> {
    let stmt = c.statement(BLOCKS_FROM)?;
    let mut rows = c.client.query_raw(&stmt, [to_i64(from), to_i64(to)])?;
    while let Some(r) = rows.next()? {
        let b = block::BlockRef {
            first_seq: to_u64(r.try_get(0)?),
            last_seq: to_u64(r.try_get(1)?),
            prev_hash: r.try_get::<_, RawText<'_>>(2)?.0,
            body: r.try_get(3)?,
        };
        if !each(&b)? {
            break;
        }
    }
    Ok(())
}

/// The ledger append's statements, prepared once per connection: each is then one round trip.
struct LedgerStatements {
    lock: Statement,
    head: Statement,
    insert: Statement,
    index: Statement,
}

impl LedgerStatements {
    fn on(c: &mut Conn) -> Result<Self, postgres::Error> {
        Ok(Self {
            lock: c.statement("SELECT pg_advisory_xact_lock($1)")?,
            head: c.statement(
                "SELECT first_seq, last_seq, prev_hash, entries FROM ledger_blocks
                 ORDER BY first_seq DESC LIMIT 1",
            )?,
            insert: c.statement(INSERT_BLOCKS)?,
            index: c.statement(
                "INSERT INTO ledger_subjects (subject, first_seq)
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[]) ON CONFLICT DO NOTHING",
            )?,
        })
    }
}

/// Chains drafts after the head and inserts them, with their due checkpoints, inside a
/// transaction.
fn append_in(
    tx: &mut postgres::Transaction<'_>,
    st: &LedgerStatements,
    drafts: &[Draft],
    checkpoint: &Checkpointer<'_>,
    edge: &mut Option<Edge>,
) -> Result<u64> {
    // INVARIANT: one chain across servers — the advisory lock is held from reading the
    // head to commit, so appends from every server are serialized.
    tx.execute(&st.lock, &[&LOCK_LEDGER])?;
    let (head_seq, head_hash) = head_in(tx, st)?;
    let chained = Chained::new(head_seq, head_hash, drafts);
    // The whole group in one statement: one round trip.
    let blocks = block::chained(drafts, &chained);
    insert_blocks(tx, &st.insert, &blocks)?;
    let index = block::subjects_of(drafts, &chained, &blocks);
    if !index.is_empty() {
        let subjects: Vec<&str> = index.iter().map(|(s, _)| *s).collect();
        let firsts: Vec<i64> = index.iter().map(|(_, f)| to_i64(*f)).collect();
        tx.execute(&st.index, &[&subjects, &firsts])?;
    }
    for c in chained.checkpoints(checkpoint) {
        tx.execute(
            "INSERT INTO ledger_checkpoints (seq, hash, signature) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&to_i64(c.seq), &c.hash, &c.signature],
        )?;
    }
    tree::append(&mut LedgerTiles(tx), edge, head_seq, chained.leaves())?;
    Ok(chained.first_seq())
}

/// The last block, as `append_in` reads the head (under the advisory lock).
fn head_in(tx: &mut postgres::Transaction<'_>, st: &LedgerStatements) -> Result<(u64, String)> {
    Ok(match tx.query_opt(&st.head, &[])? {
        None => (0, GENESIS.to_string()),
        Some(r) => block::last(&block::BlockRef {
            first_seq: to_u64(r.try_get(0)?),
            last_seq: to_u64(r.try_get(1)?),
            prev_hash: r.try_get::<_, RawText<'_>>(2)?.0,
            body: r.try_get(3)?,
        }),
    })
}

/// The ledger's tiles, inside a transaction.
struct LedgerTiles<'t, 'c>(&'t mut postgres::Transaction<'c>);

const TREE_SIZE: &str = "SELECT idx, length(hashes) FROM ledger_tiles WHERE level = 1
                         ORDER BY idx DESC LIMIT 1";
const READ_TILES: &str = "SELECT t.level, t.idx, t.hashes FROM ledger_tiles t
                          JOIN UNNEST($1::SMALLINT[], $2::BIGINT[]) AS k (level, idx)
                            ON t.level = k.level AND t.idx = k.idx";

fn tree_size_of(row: Option<Row>) -> Result<u64> {
    Ok(match row {
        None => 0,
        Some(r) => {
            let (idx, len): (i64, i32) = (r.try_get(0)?, r.try_get(1)?);
            tree::covered_by(to_u64(idx), u64::try_from(len).unwrap_or(0))
        }
    })
}

fn tiles_of(rows: &[Row]) -> Result<Tiles> {
    let mut tiles = Tiles::with_capacity(rows.len());
    for r in rows {
        let level: i16 = r.try_get(0)?;
        let key = TileKey {
            level: u8::try_from(level).unwrap_or(u8::MAX),
            index: to_u64(r.try_get(1)?),
        };
        tiles.insert(key, r.try_get(2)?);
    }
    Ok(tiles)
}

fn tile_params(keys: &[TileKey]) -> (Vec<i16>, Vec<i64>) {
    keys.iter()
        .map(|k| (i16::from(k.level), to_i64(k.index)))
        .unzip()
}

impl TileIo for LedgerTiles<'_, '_> {
    fn tree_size(&mut self) -> Result<u64> {
        tree_size_of(self.0.query_opt(TREE_SIZE, &[])?)
    }

    fn read_tiles(&mut self, keys: &[TileKey]) -> Result<Tiles> {
        let (levels, idxs) = tile_params(keys);
        tiles_of(&self.0.query(READ_TILES, &[&levels, &idxs])?)
    }

    fn write_tiles(&mut self, tiles: &[(TileKey, Vec<u8>)]) -> Result<()> {
        if tiles.is_empty() {
            return Ok(());
        }
        let (levels, idxs) = tile_params(&tiles.iter().map(|t| t.0).collect::<Vec<_>>());
        let hashes: Vec<&[u8]> = tiles.iter().map(|t| t.1.as_slice()).collect();
        // The whole commit's tiles in one statement: one round trip.
        self.0.execute(
            "INSERT INTO ledger_tiles (level, idx, hashes)
             SELECT * FROM UNNEST($1::SMALLINT[], $2::BIGINT[], $3::BYTEA[])
             ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
            &[&levels, &idxs, &hashes],
        )?;
        Ok(())
    }

    fn blocks(
        &mut self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(&block::BlockRef<'_>) -> Result<bool>,
    ) -> Result<()> {
        let rows = self.0.query(BLOCKS_FROM, &[&to_i64(from), &to_i64(to)])?;
        for r in &rows {
            let b = block::BlockRef {
                first_seq: to_u64(r.try_get(0)?),
                last_seq: to_u64(r.try_get(1)?),
                prev_hash: r.try_get::<_, RawText<'_>>(2)?.0,
                body: r.try_get(3)?,
            };
            if !each(&b)? {
                break;
            }
        }
        Ok(())
    }
}

/// Inserts or replaces field values and their index terms inside a transaction.
fn write_values(
    tx: &mut postgres::Transaction<'_>,
    values: &[ValueRow],
    index: &[(String, String)],
) -> Result<()> {
    let put = tx.prepare(
        "INSERT INTO field_values
           (subject, category, ciphertext, purposes, notice, service, role, time_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (subject, category) DO UPDATE SET
           ciphertext = excluded.ciphertext, purposes = excluded.purposes,
           notice = excluded.notice, service = excluded.service,
           role = excluded.role, time_ms = excluded.time_ms",
    )?;
    for v in values {
        tx.execute(
            &put,
            &[
                &v.subject,
                &v.category,
                &v.ciphertext,
                &join(&v.purposes),
                &v.notice,
                &v.service,
                &v.role,
                &v.time_ms,
            ],
        )?;
    }
    if let Some(subject) = values.first().map(|v| &v.subject) {
        for (category, term) in index {
            tx.execute(
                "DELETE FROM blind_index WHERE subject = $1 AND category = $2",
                &[subject, category],
            )?;
            tx.execute(
                "INSERT INTO blind_index (category, term, subject) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[category, term, subject],
            )?;
        }
    }
    Ok(())
}

/// Subjects written per round of [`insert_subjects`]: one statement (and round trip) per
/// table per round.
const BULK_SUBJECTS: usize = 2048;

/// Outbox rows per `INSERT … SELECT FROM unnest` of [`Store::put_mailing`].
const BULK_MAILS: usize = 4096;

/// Writes new subjects — keys first, then rows, tenants, values and index terms — one
/// multi-row `INSERT … SELECT FROM unnest(arrays)` per table. A new subject has no values
/// or terms to replace, and its values have distinct categories, so these are plain
/// inserts.
fn insert_subjects(tx: &mut postgres::Transaction<'_>, subjects: &[&NewSubject]) -> Result<()> {
    let ids: Vec<&str> = subjects.iter().map(|n| n.row.id.as_str()).collect();
    let wrapped: Vec<&[u8]> = subjects.iter().map(|n| n.wrapped_dek.as_slice()).collect();
    tx.execute(
        "INSERT INTO custos_keys.subject_keys (subject, wrapped)
         SELECT * FROM unnest($1::text[], $2::bytea[])",
        &[&ids, &wrapped],
    )?;
    let status: Vec<&str> = subjects.iter().map(|n| n.row.status.as_str()).collect();
    let age: Vec<&str> = subjects.iter().map(|n| n.row.age.as_str()).collect();
    let created: Vec<i64> = subjects.iter().map(|n| n.row.created_ms).collect();
    tx.execute(
        "INSERT INTO subjects (id, status, age, created_ms)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])",
        &[&ids, &status, &age, &created],
    )?;
    let (t_subject, t_tenant): (Vec<&str>, Vec<&str>) = subjects
        .iter()
        .flat_map(|n| {
            n.row
                .tenants
                .iter()
                .map(|t| (n.row.id.as_str(), t.as_str()))
        })
        .unzip();
    if !t_subject.is_empty() {
        tx.execute(
            "INSERT INTO subject_tenants (subject, tenant)
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&t_subject, &t_tenant],
        )?;
    }
    let values: Vec<&ValueRow> = subjects.iter().flat_map(|n| &n.values).collect();
    if !values.is_empty() {
        let subject: Vec<&str> = values.iter().map(|v| v.subject.as_str()).collect();
        let category: Vec<&str> = values.iter().map(|v| v.category.as_str()).collect();
        let ciphertext: Vec<&[u8]> = values.iter().map(|v| v.ciphertext.as_slice()).collect();
        let purposes: Vec<String> = values.iter().map(|v| join(&v.purposes)).collect();
        let notice: Vec<&str> = values.iter().map(|v| v.notice.as_str()).collect();
        let service: Vec<&str> = values.iter().map(|v| v.service.as_str()).collect();
        let role: Vec<&str> = values.iter().map(|v| v.role.as_str()).collect();
        let time: Vec<i64> = values.iter().map(|v| v.time_ms).collect();
        tx.execute(
            "INSERT INTO field_values
               (subject, category, ciphertext, purposes, notice, service, role, time_ms)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[],
               $6::text[], $7::text[], $8::bigint[])",
            &[
                &subject,
                &category,
                &ciphertext,
                &purposes,
                &notice,
                &service,
                &role,
                &time,
            ],
        )?;
    }
    let ((category, term), subject): ((Vec<&str>, Vec<&str>), Vec<&str>) = subjects
        .iter()
        .flat_map(|n| {
            n.index
                .iter()
                .map(|(c, t)| ((c.as_str(), t.as_str()), n.row.id.as_str()))
        })
        .unzip();
    if !term.is_empty() {
        tx.execute(
            "INSERT INTO blind_index (category, term, subject)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
            &[&category, &term, &subject],
        )?;
    }
    Ok(())
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .query_opt(
                "SELECT wrapped FROM custos_keys.secrets WHERE name = $1",
                &[&name],
            )?
            .map(|r| r.get(0)))
    }

    fn put_secret_if_absent(&self, name: &str, wrapped: &[u8]) -> Result<Vec<u8>> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO custos_keys.secrets (name, wrapped) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&name, &wrapped],
        )?;
        let row = tx.query_one(
            "SELECT wrapped FROM custos_keys.secrets WHERE name = $1",
            &[&name],
        )?;
        tx.commit()?;
        Ok(row.get(0))
    }

    fn create_subjects(
        &self,
        subjects: &mut dyn Iterator<Item = Result<&NewSubject>>,
    ) -> Result<u64> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let mut chunk: Vec<&NewSubject> = Vec::with_capacity(BULK_SUBJECTS);
        let mut n = 0u64;
        loop {
            chunk.clear();
            for s in (&mut *subjects).take(BULK_SUBJECTS) {
                chunk.push(s?);
            }
            if chunk.is_empty() {
                break;
            }
            insert_subjects(&mut tx, &chunk)?;
            n += chunk.len() as u64;
        }
        tx.commit()?;
        Ok(n)
    }

    fn subject(&self, id: &str) -> Result<Option<SubjectRow>> {
        let mut c = self.lock();
        let Some(row) = c.query_opt(
            "SELECT status, age, created_ms FROM subjects WHERE id = $1",
            &[&id],
        )?
        else {
            return Ok(None);
        };
        let tenants = c
            .query(
                "SELECT tenant FROM subject_tenants WHERE subject = $1 ORDER BY tenant",
                &[&id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Some(SubjectRow {
            id: id.to_string(),
            status: Status::parse(row.get(0)),
            age: Age::parse(row.get(1)),
            tenants,
            created_ms: row.get(2),
        }))
    }

    fn set_age(&self, id: &str, age: Age) -> Result<()> {
        self.lock().execute(
            "UPDATE subjects SET age = $2 WHERE id = $1",
            &[&id, &age.as_str()],
        )?;
        Ok(())
    }

    fn set_status(&self, id: &str, status: Status) -> Result<()> {
        self.lock().execute(
            "UPDATE subjects SET status = $2 WHERE id = $1",
            &[&id, &status.as_str()],
        )?;
        Ok(())
    }

    fn add_tenant(&self, id: &str, tenant: &str) -> Result<()> {
        self.lock().execute(
            "INSERT INTO subject_tenants (subject, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &tenant],
        )?;
        Ok(())
    }

    fn wrapped_dek(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .query_opt(
                "SELECT wrapped FROM custos_keys.subject_keys WHERE subject = $1",
                &[&id],
            )?
            .map(|r| r.get(0)))
    }

    fn put_values(&self, values: &[ValueRow], index: &[(String, String)]) -> Result<()> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        write_values(&mut tx, values, index)?;
        tx.commit()?;
        Ok(())
    }

    fn subject_state(&self, id: &str) -> Result<Option<SubjectState>> {
        // One statement, so one round trip and one snapshot: part 0 is the subject and its
        // wrapped key, part 1 its values by category, part 2 its consent events by seq,
        // part 3 its tenants.
        let rows = self.lock().query(
            "SELECT 0::INT4, s.status, s.age, NULL::TEXT, NULL::TEXT, NULL::TEXT,
                    k.wrapped, 0::BIGINT, 0::BIGINT
               FROM subjects s LEFT JOIN custos_keys.subject_keys k ON k.subject = s.id
              WHERE s.id = $1
             UNION ALL
             SELECT 1, category, purposes, notice, service, role, ciphertext, time_ms, 0
               FROM field_values WHERE subject = $1
             UNION ALL
             SELECT 2, c.purpose, c.kind, c.notice, c.method,
                    CASE WHEN c.given THEN 't' ELSE 'f' END,
                    convert_to(e.recipient, 'UTF8'), c.time_ms, c.seq
               FROM consents c LEFT JOIN consent_evidence e ON e.seq = c.seq
              WHERE c.subject = $1
             UNION ALL
             SELECT 3, tenant, NULL, NULL, NULL, NULL, NULL, 0, 0
               FROM subject_tenants WHERE subject = $1
             ORDER BY 1, 9, 2",
            &[&id],
        )?;
        let mut state: Option<SubjectState> = None;
        for r in &rows {
            match (r.get::<_, i32>(0), state.as_mut()) {
                (0, _) => {
                    state = Some(SubjectState {
                        status: Status::parse(r.get(1)),
                        age: Age::parse(r.get(2)),
                        tenants: Vec::new(),
                        values: Vec::new(),
                        consents: Vec::new(),
                        wrapped_dek: r.get(6),
                    });
                }
                (1, Some(st)) => st.values.push(ValueRow {
                    subject: id.to_string(),
                    category: r.get(1),
                    ciphertext: r.get::<_, Option<Vec<u8>>>(6).unwrap_or_default(),
                    purposes: split(r.get(2)),
                    notice: r.get(3),
                    service: r.get(4),
                    role: r.get(5),
                    time_ms: r.get(7),
                }),
                (2, Some(st)) => st.consents.push(ConsentRow {
                    subject: id.to_string(),
                    purpose: r.get(1),
                    kind: r.get(2),
                    given: r.get::<_, Option<&str>>(5) == Some("t"),
                    notice: r.get(3),
                    method: r.get(4),
                    time_ms: r.get(7),
                    recipient: r
                        .get::<_, Option<Vec<u8>>>(6)
                        .and_then(|b| String::from_utf8(b).ok()),
                    evidence: None,
                }),
                (3, Some(st)) => st.tenants.push(r.get(1)),
                // Rows of a subject that does not exist: nothing to decide over.
                _ => {}
            }
        }
        Ok(state)
    }

    fn subject_holders(&self, id: &str) -> Result<Option<SubjectState>> {
        // As `subject_state`, without the values' ciphertext, the consent events or the
        // key: part 0 the subject, part 1 its services, part 2 its tenants.
        let rows = self.lock().query(
            "SELECT 0::INT4, status, age FROM subjects WHERE id = $1
             UNION ALL
             SELECT DISTINCT 1, service, role FROM field_values WHERE subject = $1
             UNION ALL
             SELECT 2, tenant, NULL FROM subject_tenants WHERE subject = $1
             ORDER BY 1, 2, 3",
            &[&id],
        )?;
        let mut state: Option<SubjectState> = None;
        for r in &rows {
            match (r.get::<_, i32>(0), state.as_mut()) {
                (0, _) => {
                    state = Some(SubjectState {
                        status: Status::parse(r.get(1)),
                        age: Age::parse(r.get(2)),
                        tenants: Vec::new(),
                        values: Vec::new(),
                        consents: Vec::new(),
                        wrapped_dek: None,
                    });
                }
                (1, Some(st)) => st.values.push(ValueRow {
                    subject: id.to_string(),
                    category: String::new(),
                    ciphertext: Vec::new(),
                    purposes: Vec::new(),
                    notice: String::new(),
                    service: r.get(1),
                    role: r.get(2),
                    time_ms: 0,
                }),
                (2, Some(st)) => st.tenants.push(r.get(1)),
                _ => {}
            }
        }
        Ok(state)
    }

    fn values(&self, subject: &str) -> Result<Vec<ValueRow>> {
        Ok(self
            .lock()
            .query(
                "SELECT category, ciphertext, purposes, notice, service, role, time_ms
                 FROM field_values WHERE subject = $1 ORDER BY category",
                &[&subject],
            )?
            .iter()
            .map(|r| ValueRow {
                subject: subject.to_string(),
                category: r.get(0),
                ciphertext: r.get(1),
                purposes: split(r.get(2)),
                notice: r.get(3),
                service: r.get(4),
                role: r.get(5),
                time_ms: r.get(6),
            })
            .collect())
    }

    fn find_by_term(&self, category: &str, term: &str) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_opt(
                "SELECT subject FROM blind_index WHERE category = $1 AND term = $2
                 ORDER BY subject LIMIT 1",
                &[&category, &term],
            )?
            .map(|r| r.get(0)))
    }

    fn append_record(&self, record: &RecordRow) -> Result<()> {
        self.append_records(std::slice::from_ref(record))
    }

    fn append_records(&self, records: &[RecordRow]) -> Result<()> {
        let mut c = self.lock();
        let status = c.statement("SELECT status FROM subjects WHERE id = $1 FOR SHARE")?;
        // Each column as an array, zipped back into rows by UNNEST: one statement (one round
        // trip) per chunk, not one per record.
        let insert = c.statement(
            "INSERT INTO records
               (id, subject, collection, ciphertext, purposes, notice, retain_until_ms, time_ms)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::TEXT[],
               $6::TEXT[], $7::BIGINT[], $8::BIGINT[])",
        )?;
        let mut tx = c.transaction()?;
        let mut checked: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for r in records {
            // INVARIANT: no record is stored for an erased subject — it could land after its
            // purge and stay for ever. `FOR SHARE` waits for an erasure in flight (it updates
            // the row) and then reads its outcome; an erasure that comes later waits for this
            // transaction, and its purge then finds these records.
            if checked.contains(&r.subject.as_str()) {
                continue;
            }
            let row = tx.query_opt(&status, &[&r.subject])?;
            if row.is_some_and(|s| Status::parse(s.get(0)) == Status::Erased) {
                return Err(Error::SubjectNotFound);
            }
            checked.insert(&r.subject);
        }
        for chunk in records.chunks(RECORD_CHUNK) {
            let text = |f: fn(&RecordRow) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
            let ciphertexts: Vec<&[u8]> = chunk.iter().map(|r| r.ciphertext.as_slice()).collect();
            let purposes: Vec<String> = chunk.iter().map(|r| join(&r.purposes)).collect();
            let retain: Vec<Option<i64>> = chunk.iter().map(|r| r.retain_until_ms).collect();
            let times: Vec<i64> = chunk.iter().map(|r| r.time_ms).collect();
            tx.execute(
                &insert,
                &[
                    &text(|r| &r.id),
                    &text(|r| &r.subject),
                    &text(|r| &r.collection),
                    &ciphertexts,
                    &purposes,
                    &text(|r| &r.notice),
                    &retain,
                    &times,
                ],
            )?;
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .lock()
            .query(
                // An erased subject's records may wait for the purge; they are never
                // returned. The page starts after the cursor's own `seq` (none when the
                // cursor is not the subject's: `seq > NULL` holds for no row).
                "SELECT id, ciphertext, purposes, notice, retain_until_ms, time_ms
                 FROM records WHERE subject = $1 AND collection = $2
                   AND seq > CASE WHEN $3::text IS NULL THEN 0 ELSE
                       (SELECT seq FROM records
                        WHERE id = $3 AND subject = $1 AND collection = $2)
                     END
                   AND NOT EXISTS (SELECT 1 FROM subjects
                                   WHERE id = $1 AND status NOT IN ('active', 'deactivated'))
                 ORDER BY seq LIMIT $4",
                &[&subject, &collection, &after, &limit],
            )?
            .iter()
            .map(|r| RecordRow {
                id: r.get(0),
                subject: subject.to_string(),
                collection: collection.to_string(),
                ciphertext: r.get(1),
                purposes: split(r.get(2)),
                notice: r.get(3),
                retain_until_ms: r.get(4),
                time_ms: r.get(5),
            })
            .collect())
    }

    fn delete_expired_records(&self, now_ms: i64) -> Result<u64> {
        Ok(self.lock().execute(
            "DELETE FROM records WHERE retain_until_ms IS NOT NULL AND retain_until_ms <= $1",
            &[&now_ms],
        )?)
    }

    fn delete_expired_sign_ins(&self, codes_before_ms: i64, now_ms: i64) -> Result<(u64, u64)> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let codes = tx.execute(
            "DELETE FROM sign_in_codes WHERE created_ms < $1",
            &[&codes_before_ms],
        )?;
        let sessions = tx.execute(
            "DELETE FROM sessions WHERE expires_ms <= $1 OR revoked",
            &[&now_ms],
        )?;
        tx.commit()?;
        Ok((codes, sessions))
    }

    fn delete_finished_mail(&self, done_before_ms: i64) -> Result<u64> {
        Ok(self.lock().execute(
            "DELETE FROM outbox WHERE state <> 'queued' AND done_ms < $1",
            &[&done_before_ms],
        )?)
    }

    fn delete_expired_values(&self, expiries: &[(String, i64)]) -> Result<Vec<u64>> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let mut counts = Vec::with_capacity(expiries.len());
        for (category, cutoff) in expiries {
            // The terms first: they are found through the values they index.
            tx.execute(
                "DELETE FROM blind_index WHERE category = $1 AND subject IN
                   (SELECT subject FROM field_values WHERE category = $1 AND time_ms <= $2)",
                &[category, cutoff],
            )?;
            counts.push(tx.execute(
                "DELETE FROM field_values WHERE category = $1 AND time_ms <= $2",
                &[category, cutoff],
            )?);
        }
        tx.commit()?;
        Ok(counts)
    }

    fn put_consent(&self, c: &ConsentRow) -> Result<()> {
        self.put_consents(&[c])
    }

    fn put_consents(&self, rows: &[&ConsentRow]) -> Result<()> {
        let mut c = self.lock();
        packing(&self.packer, &self.dicts, |packer| {
            put_consents_in(&mut c, packer, rows)
        })
    }

    fn consents(&self, subject: &str) -> Result<Vec<ConsentRow>> {
        let mut c = self.lock();
        let rows = c.query(
            "SELECT c.purpose, c.kind, c.given, c.notice, c.method, c.time_ms, e.recipient,
                    e.actor, e.notice_sha256, e.receipt_id, r.receipt, r.packed
             FROM consents c LEFT JOIN consent_evidence e ON e.seq = c.seq
                             LEFT JOIN consent_receipts r ON r.id = e.receipt_id
             WHERE c.subject = $1 ORDER BY c.seq",
            &[&subject],
        )?;
        rows.iter()
            .map(|r| {
                // A packed receipt is `packed`; one stored before packing `receipt`.
                let receipt = match (
                    r.get::<_, Option<String>>(10),
                    r.get::<_, Option<&[u8]>>(11),
                ) {
                    (_, Some(packed)) => Some(self.dicts.unpack(&mut *c, packed)?),
                    (text, None) => text,
                };
                Ok(ConsentRow {
                    subject: subject.to_string(),
                    purpose: r.get(0),
                    kind: r.get(1),
                    given: r.get(2),
                    notice: r.get(3),
                    method: r.get(4),
                    time_ms: r.get(5),
                    recipient: r.get(6),
                    evidence: match (r.get(7), r.get(8), r.get(9), receipt) {
                        (Some(actor), Some(notice_sha256), Some(receipt_id), Some(receipt)) => {
                            Some(ConsentEvidence {
                                actor,
                                notice_sha256,
                                receipt_id,
                                receipt,
                            })
                        }
                        _ => None,
                    },
                })
            })
            .collect()
    }

    fn erase_subject(
        &self,
        id: &str,
        age: Age,
        entry: &Draft,
        checkpoint: &Checkpointer<'_>,
    ) -> Result<u64> {
        let mut c = self.lock();
        self.in_ledger(&mut c, |tx, st, edge| {
            // INVARIANT: erasable by key — the data key goes in the same transaction as the
            // values and the erased mark; the records waiting for the purge are ciphertext under
            // a key that no longer exists.
            tx.execute(
                "DELETE FROM custos_keys.subject_keys WHERE subject = $1",
                &[&id],
            )?;
            for sql in [
                "DELETE FROM field_values WHERE subject = $1",
                "DELETE FROM blind_index WHERE subject = $1",
                "DELETE FROM consent_receipts WHERE id IN
                     (SELECT e.receipt_id FROM consents c JOIN consent_evidence e ON e.seq = c.seq
                       WHERE c.subject = $1)",
                "DELETE FROM consent_evidence WHERE seq IN
                     (SELECT seq FROM consents WHERE subject = $1)",
                "DELETE FROM consents WHERE subject = $1",
                "DELETE FROM subject_tenants WHERE subject = $1",
            ] {
                tx.execute(sql, &[&id])?;
            }
            tx.execute(
                "UPDATE subjects SET status = 'erased', age = $2 WHERE id = $1",
                &[&id, &age.as_str()],
            )?;
            // The records go later, in bounded transactions (`purge_records`).
            tx.execute(
                "INSERT INTO erasures (subject, queued_ms)
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM subjects WHERE id = $1)
             ON CONFLICT (subject) DO NOTHING",
                &[&id, &now_ms()],
            )?;
            // The erasure and its ledger entry commit together: one commit, and no erasure
            // without its entry.
            append_in(tx, st, std::slice::from_ref(entry), checkpoint, edge)
        })
    }

    fn scrub_keys(&self) -> Result<bool> {
        // A deleted row's bytes stay in its dead tuple until VACUUM reuses the space, and in
        // the server's WAL: nothing a client can scrub (docs/vault.md, known limits).
        Ok(true)
    }

    fn purge_queue(&self) -> Result<Vec<String>> {
        Ok(self
            .lock()
            .query(
                "SELECT subject FROM erasures ORDER BY queued_ms, subject",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn purge_records(&self, subject: &str, limit: u64) -> Result<Purged> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        // Purgers on every server take turns, so none counts another's uncommitted delete as
        // "nothing left".
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_PURGE])?;
        let status = tx.query_opt("SELECT status FROM subjects WHERE id = $1", &[&subject])?;
        if status.is_none_or(|s| Status::parse(s.get(0)) != Status::Erased) {
            return Err(not_erased());
        }
        // By tuple id (a TID scan): `seq IN (subquery)` was planned as a hash join over a
        // sequential scan of the whole table, once per chunk.
        let deleted = tx.execute(
            "DELETE FROM records WHERE ctid = ANY(ARRAY(
               SELECT ctid FROM records WHERE subject = $1 LIMIT $2))",
            &[&subject, &to_i64(limit)],
        )?;
        let left = deleted >= limit
            || tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM records WHERE subject = $1)",
                    &[&subject],
                )?
                .get::<_, bool>(0);
        if !left {
            tx.execute("DELETE FROM erasures WHERE subject = $1", &[&subject])?;
        }
        tx.commit()?;
        Ok(Purged {
            deleted,
            done: !left,
        })
    }

    fn put_api_key(&self, k: &ApiKeyRow) -> Result<()> {
        self.lock().execute(
            "INSERT INTO api_keys (hash, accessor, tenant, revoked, created_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[&k.hash, &k.accessor, &k.tenant, &k.revoked, &k.created_ms],
        )?;
        Ok(())
    }

    fn api_key(&self, hash: &str) -> Result<Option<ApiKeyRow>> {
        Ok(self
            .lock()
            .query_opt(
                "SELECT hash, accessor, tenant, revoked, created_ms FROM api_keys WHERE hash = $1",
                &[&hash],
            )?
            .map(|r| ApiKeyRow {
                hash: r.get(0),
                accessor: r.get(1),
                tenant: r.get(2),
                revoked: r.get(3),
                created_ms: r.get(4),
            }))
    }

    fn revoke_api_keys(&self, accessor: &str, tenant: Option<&str>) -> Result<u64> {
        Ok(self.lock().execute(
            "UPDATE api_keys SET revoked = TRUE
              WHERE accessor = $1 AND NOT revoked AND ($2::TEXT IS NULL OR tenant = $2)",
            &[&accessor, &tenant],
        )?)
    }

    fn find_all_by_term(&self, category: &str, term: &str) -> Result<Vec<String>> {
        Ok(self
            .lock()
            .query(
                "SELECT subject FROM blind_index WHERE category = $1 AND term = $2
                 ORDER BY subject LIMIT 1000",
                &[&category, &term],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn mailing_audience(&self, category: &str) -> Result<Vec<(String, SubjectState)>> {
        let mut c = self.lock();
        // One snapshot for the three statements.
        let mut tx = c
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let mut out: Vec<(String, SubjectState)> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for r in tx.query(
            "SELECT s.id, s.status, s.age, k.wrapped, v.category, v.ciphertext, v.purposes,
                    v.notice, v.service, v.role, v.time_ms
               FROM subjects s
               LEFT JOIN custos_keys.subject_keys k ON k.subject = s.id
               LEFT JOIN field_values v ON v.subject = s.id AND v.category = $1
              WHERE s.status <> 'erased'
              ORDER BY s.id",
            &[&category],
        )? {
            let id: String = r.get(0);
            let mut state = SubjectState {
                status: Status::parse(r.get(1)),
                age: Age::parse(r.get(2)),
                tenants: Vec::new(),
                values: Vec::new(),
                consents: Vec::new(),
                wrapped_dek: r.get(3),
            };
            if let Some(category) = r.get::<_, Option<String>>(4) {
                state.values.push(ValueRow {
                    subject: id.clone(),
                    category,
                    ciphertext: r.get(5),
                    purposes: split(r.get(6)),
                    notice: r.get(7),
                    service: r.get(8),
                    role: r.get(9),
                    time_ms: r.get(10),
                });
            }
            at.insert(id.clone(), out.len());
            out.push((id, state));
        }
        for r in tx.query(
            "SELECT c.subject, c.purpose, c.kind, c.notice, c.method, c.given, e.recipient,
                    c.time_ms
               FROM consents c LEFT JOIN consent_evidence e ON e.seq = c.seq
              ORDER BY c.seq",
            &[],
        )? {
            let subject: String = r.get(0);
            let Some(st) = at.get(&subject).and_then(|&i| out.get_mut(i)) else {
                continue;
            };
            st.1.consents.push(ConsentRow {
                purpose: r.get(1),
                kind: r.get(2),
                notice: r.get(3),
                method: r.get(4),
                given: r.get(5),
                recipient: r.get(6),
                time_ms: r.get(7),
                evidence: None,
                subject,
            });
        }
        for r in tx.query(
            "SELECT subject, tenant FROM subject_tenants ORDER BY subject, tenant",
            &[],
        )? {
            let subject: &str = r.get(0);
            if let Some(st) = at.get(subject).and_then(|&i| out.get_mut(i)) {
                st.1.tenants.push(r.get(1));
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn put_mailing(&self, m: &MailingRow, mails: &[MailRow]) -> Result<()> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO mailings (id, purpose, actor, tenant, subject, recipients, excluded,
                                   created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &m.id,
                &m.purpose,
                &m.actor,
                &m.tenant,
                &m.subject,
                &i64::try_from(m.recipients).unwrap_or(i64::MAX),
                &m.excluded,
                &m.created_ms,
            ],
        )?;
        for part in mails.chunks(BULK_MAILS) {
            let ids: Vec<&str> = part.iter().map(|r| r.id.as_str()).collect();
            let states: Vec<&str> = part.iter().map(|r| r.state.as_str()).collect();
            let attempts: Vec<i64> = part.iter().map(|r| i64::from(r.attempts)).collect();
            let created: Vec<i64> = part.iter().map(|r| r.created_ms).collect();
            let next: Vec<i64> = part.iter().map(|r| r.next_ms).collect();
            let sealed: Vec<Option<&[u8]>> = part.iter().map(|r| r.sealed.as_deref()).collect();
            tx.execute(
                "INSERT INTO outbox (id, state, attempts, created_ms, next_ms, sealed)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                      $5::bigint[], $6::bytea[])",
                &[&ids, &states, &attempts, &created, &next, &sealed],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn mailing(&self, id: &str) -> Result<Option<MailingRow>> {
        Ok(self
            .lock()
            .query_opt(
                "SELECT id, purpose, actor, tenant, subject, recipients, excluded, created_ms
                   FROM mailings WHERE id = $1",
                &[&id],
            )?
            .map(|r| MailingRow {
                id: r.get(0),
                purpose: r.get(1),
                actor: r.get(2),
                tenant: r.get(3),
                subject: r.get(4),
                recipients: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
                excluded: r.get(6),
                created_ms: r.get(7),
            }))
    }

    fn put_mail(&self, m: &MailRow) -> Result<()> {
        put_mail_on(&mut self.lock().client, m)
    }

    fn claim_mail(&self, now_ms: i64, lease_until_ms: i64, limit: u64) -> Result<Vec<MailRow>> {
        // Another server's worker skips the rows this one holds (`SKIP LOCKED`) and, once
        // this commits, sees them leased.
        let rows = self.lock().query(
            "WITH due AS (
                 SELECT id, next_ms AS due_ms FROM outbox
                  WHERE state = 'queued' AND next_ms <= $1
                  ORDER BY next_ms LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE outbox o SET next_ms = $2 FROM due WHERE o.id = due.id
             RETURNING o.id, o.state, o.attempts, o.created_ms, due.due_ms, o.done_ms, o.sealed",
            &[
                &now_ms,
                &lease_until_ms,
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )?;
        let mut out: Vec<MailRow> = rows.iter().map(mail_row).collect();
        out.sort_by_key(|m| m.next_ms);
        Ok(out)
    }

    fn update_mail(&self, id: &str, state: &str, attempts: u32, next_ms: i64) -> Result<()> {
        // INVARIANT: a message sent or given up keeps no sealed body, recipient or subject.
        self.lock().execute(
            "UPDATE outbox SET state = $2::TEXT, attempts = $3::BIGINT, next_ms = $4::BIGINT,
                    done_ms = CASE WHEN $2::TEXT = 'queued' THEN NULL ELSE $4::BIGINT END,
                    sealed = CASE WHEN $2::TEXT = 'queued' THEN sealed ELSE NULL END
              WHERE id = $1",
            &[&id, &state, &i64::from(attempts), &next_ms],
        )?;
        Ok(())
    }

    fn mail(&self, id: &str) -> Result<Option<MailRow>> {
        Ok(self
            .lock()
            .query_opt(
                "SELECT id, state, attempts, created_ms, next_ms, done_ms, sealed FROM outbox
                  WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(mail_row))
    }

    fn put_sign_in_code(
        &self,
        row: &SignInCodeRow,
        mail: Option<&MailRow>,
        since_ms: i64,
        max: u32,
    ) -> Result<Option<i64>> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        // Servers counting the same address's codes take turns.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&row.address],
        )?;
        let r = tx.query_one(
            "SELECT COUNT(*), MIN(created_ms) FROM sign_in_codes
              WHERE address = $1 AND created_ms > $2",
            &[&row.address, &since_ms],
        )?;
        let count: i64 = r.get(0);
        let oldest: Option<i64> = r.get(1);
        if count >= i64::from(max) {
            return Ok(Some(oldest.unwrap_or(since_ms)));
        }
        tx.execute(
            "INSERT INTO sign_in_codes (id, address, code, subjects, attempts, used, created_ms,
                                        expires_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &row.id,
                &row.address,
                &row.code,
                &join(&row.subjects),
                &i64::from(row.attempts),
                &row.used,
                &row.created_ms,
                &row.expires_ms,
            ],
        )?;
        if let Some(m) = mail {
            put_mail_on(&mut tx, m)?;
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
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let Some(r) = tx.query_opt(
            "SELECT id, address, code, subjects, attempts, used, created_ms, expires_ms
               FROM sign_in_codes WHERE address = $1
              ORDER BY created_ms DESC, id DESC LIMIT 1 FOR UPDATE",
            &[&address],
        )?
        else {
            return Ok(None);
        };
        let mut row = SignInCodeRow {
            id: r.get(0),
            address: r.get(1),
            code: r.get(2),
            subjects: split(r.get(3)),
            attempts: u32::try_from(r.get::<_, i64>(4)).unwrap_or(u32::MAX),
            used: r.get(5),
            created_ms: r.get(6),
            expires_ms: r.get(7),
        };
        let counted = !row.used && row.expires_ms > now_ms && row.attempts < max_attempts;
        if counted {
            row.attempts += 1;
            tx.execute(
                "UPDATE sign_in_codes SET attempts = $2 WHERE id = $1",
                &[&row.id, &i64::from(row.attempts)],
            )?;
        }
        tx.commit()?;
        Ok(Some((row, counted)))
    }

    fn redeem_sign_in_code(&self, id: &str, session: &SessionRow) -> Result<bool> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let n = tx.execute(
            "UPDATE sign_in_codes SET used = TRUE WHERE id = $1 AND NOT used",
            &[&id],
        )?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO sessions (hash, subjects, signed_in_ms, expires_ms, revoked)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &session.hash,
                &join(&session.subjects),
                &session.signed_in_ms,
                &session.expires_ms,
                &session.revoked,
            ],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn session(&self, hash: &str) -> Result<Option<SessionRow>> {
        Ok(self
            .lock()
            .query_opt(
                "SELECT hash, subjects, signed_in_ms, expires_ms, revoked FROM sessions
                  WHERE hash = $1",
                &[&hash],
            )?
            .map(|r| SessionRow {
                hash: r.get(0),
                subjects: split(r.get(1)),
                signed_in_ms: r.get(2),
                expires_ms: r.get(3),
                revoked: r.get(4),
            }))
    }

    fn revoke_session(&self, hash: &str) -> Result<bool> {
        let n = self.lock().execute(
            "UPDATE sessions SET revoked = TRUE WHERE hash = $1 AND NOT revoked",
            &[&hash],
        )?;
        Ok(n > 0)
    }

    fn put_instrument(&self, i: &InstrumentRow) -> Result<()> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO instruments (id, kind, issuer, issued, document_sha256, categories,
                                      expires_ms, registered_by, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &i.id,
                &i.kind,
                &i.issuer,
                &i.issued,
                &i.document_sha256,
                &join(&i.categories),
                &i.expires_ms,
                &i.registered_by,
                &i.created_ms,
            ],
        )?;
        tx.execute(
            "INSERT INTO instrument_subjects (instrument, subject)
             SELECT $1, s FROM UNNEST($2::TEXT[]) AS s ON CONFLICT DO NOTHING",
            &[&i.id, &i.subjects],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn instrument(&self, id: &str, subject: Option<&str>) -> Result<Option<InstrumentRow>> {
        let mut c = self.lock();
        let Some(r) = c.query_opt(
            "SELECT kind, issuer, issued, document_sha256, categories, expires_ms,
                    registered_by, created_ms
               FROM instruments WHERE id = $1",
            &[&id],
        )?
        else {
            return Ok(None);
        };
        // INVARIANT: an erased subject is covered by no instrument.
        let subjects: Vec<String> = c
            .query(
                "SELECT s.subject FROM instrument_subjects s JOIN subjects p ON p.id = s.subject
                  WHERE s.instrument = $1 AND ($2::TEXT IS NULL OR s.subject = $2)
                    AND p.status <> 'erased'
                  ORDER BY s.subject",
                &[&id, &subject],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if subject.is_some() && subjects.is_empty() {
            return Ok(None);
        }
        Ok(Some(InstrumentRow {
            id: id.to_string(),
            kind: r.get(0),
            issuer: r.get(1),
            issued: r.get(2),
            document_sha256: r.get(3),
            subjects,
            categories: split(r.get::<_, &str>(4)),
            expires_ms: r.get(5),
            registered_by: r.get(6),
            created_ms: r.get(7),
        }))
    }

    fn put_request(&self, q: &RequestRow) -> Result<()> {
        let mut c = self.lock();
        c.execute(
            "INSERT INTO requests (id, kind, subject, channel, verification, purpose, state,
                                   reason, received_ms, due_ms, updated_ms, created_by, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &q.id,
                &q.kind,
                &q.subject,
                &q.channel,
                &q.verification,
                &q.purpose,
                &q.state,
                &q.reason,
                &q.received_ms,
                &q.due_ms,
                &q.updated_ms,
                &q.created_by,
                &q.updated_by,
            ],
        )?;
        Ok(())
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        let mut c = self.lock();
        let row = c.query_opt(
            concat!(
                "SELECT ",
                request_columns!(),
                " FROM requests WHERE id = $1"
            ),
            &[&id],
        )?;
        Ok(row.as_ref().map(request_row))
    }

    fn requests(
        &self,
        filter: RequestFilter,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<Vec<RequestRow>> {
        let mut c = self.lock();
        let (open, before) = filter.bounds();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c.query(
            concat!(
                "SELECT ",
                request_columns!(),
                " FROM requests
                  WHERE (NOT $1 OR state IN ('received', 'verified')) AND due_ms < $2
                    AND ($4::BIGINT IS NULL OR due_ms > $4
                         OR (due_ms = $4 AND id > $5::TEXT))
                  ORDER BY due_ms, id LIMIT $3"
            ),
            &[
                &open,
                &before,
                &limit,
                &after.map(|a| a.0),
                &after.map(|a| a.1),
            ],
        )?;
        Ok(rows.iter().map(request_row).collect())
    }

    fn transition_request(&self, q: &RequestRow, from: &str) -> Result<bool> {
        let mut c = self.lock();
        let n = c.execute(
            "UPDATE requests SET state = $2, reason = $3, updated_ms = $4, updated_by = $5
              WHERE id = $1 AND state = $6",
            &[
                &q.id,
                &q.state,
                &q.reason,
                &q.updated_ms,
                &q.updated_by,
                &from,
            ],
        )?;
        Ok(n == 1)
    }

    fn rewrap_keys(&self, rewrap: &mut Rewrap<'_>) -> Result<u64> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let mut n = 0u64;
        for (kind, table, col) in [
            ("dek", "custos_keys.subject_keys", "subject"),
            ("secret", "custos_keys.secrets", "name"),
        ] {
            let rows = tx.query(
                &format!("SELECT {col}, wrapped FROM {table} FOR UPDATE"),
                &[],
            )?;
            for r in rows {
                let name: String = r.get(0);
                let wrapped: Vec<u8> = r.get(1);
                let new = rewrap(kind, &name, &wrapped)?;
                tx.execute(
                    &format!("UPDATE {table} SET wrapped = $2 WHERE {col} = $1"),
                    &[&name, &new],
                )?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    fn append_ledger(&self, drafts: &[Draft], checkpoint: &Checkpointer<'_>) -> Result<u64> {
        let mut c = self.lock();
        self.in_ledger(&mut c, |tx, st, edge| {
            append_in(tx, st, drafts, checkpoint, edge)
        })
    }

    fn ledger_tiles(&self, keys: &[TileKey]) -> Result<Tiles> {
        let (levels, idxs) = tile_params(keys);
        tiles_of(&self.lock().query(READ_TILES, &[&levels, &idxs])?)
    }

    fn ledger_tree_size(&self) -> Result<u64> {
        let mut c = self.lock();
        let head: Option<i64> = c
            .query_opt(
                "SELECT last_seq FROM ledger_blocks ORDER BY first_seq DESC LIMIT 1",
                &[],
            )?
            .map(|r| r.get(0));
        let covered = tree_size_of(c.query_opt(TREE_SIZE, &[])?)?;
        Ok(tree::served_size(head.map_or(0, to_u64), covered))
    }

    fn grow_ledger_tree(&self, limit: u64) -> Result<u64> {
        let mut c = self.lock();
        self.in_ledger(&mut c, |tx, st, edge| {
            tx.execute(&st.lock, &[&LOCK_LEDGER])?;
            let (head_seq, _) = head_in(tx, st)?;
            let mut io = LedgerTiles(tx);
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
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut page = Vec::new();
        if limit > 0 {
            blocks_from(&mut self.lock(), from_seq, u64::MAX, &mut |b| {
                block::page(b, from_seq, limit, &mut page)
            })?;
        }
        Ok(page)
    }

    fn ledger_last_seq(&self) -> Result<u64> {
        let last: Option<i64> = self
            .lock()
            .query_opt(
                "SELECT last_seq FROM ledger_blocks ORDER BY first_seq DESC LIMIT 1",
                &[],
            )?
            .map(|r| r.get(0));
        Ok(last.map_or(0, to_u64))
    }

    fn ledger_span(&self) -> Result<Option<(u64, u64)>> {
        let Some(r) = self.lock().query_opt(
            "SELECT (SELECT first_seq FROM ledger_blocks ORDER BY first_seq LIMIT 1),
                    (SELECT GREATEST(first_seq, last_seq) FROM ledger_blocks
                     ORDER BY first_seq DESC LIMIT 1)",
            &[],
        )?
        else {
            return Ok(None);
        };
        let (first, last): (Option<i64>, Option<i64>) = (r.try_get(0)?, r.try_get(1)?);
        Ok(first.zip(last).map(|(f, l)| (to_u64(f), to_u64(l))))
    }

    fn scan_ledger(&self, seqs: std::ops::Range<u64>, visit: &mut LedgerVisitor<'_>) -> Result<()> {
        let mut scan = block::Scan::new(seqs.clone());
        blocks_from(&mut self.lock(), seqs.start, seqs.end, &mut |b| {
            Ok(scan.block(b, visit))
        })
    }

    fn scan_ledger_about(&self, subject: &str, visit: &mut LedgerVisitor<'_>) -> Result<()> {
        let mut c = self.lock();
        let from: i64 = c
            .client
            .query_opt("SELECT seq FROM ledger_subjects_from", &[])?
            .map_or(1, |r| r.get(0));
        let from = to_u64(from);
        if from > 1 {
            let mut scan = block::Scan::new(1..from);
            blocks_from(&mut c, 1, from, &mut |b| Ok(scan.block(b, visit)))?;
        }
        let stmt = c.statement(
            "SELECT b.first_seq, b.last_seq, b.prev_hash, b.entries
               FROM ledger_subjects s JOIN ledger_blocks b ON b.first_seq = s.first_seq
              WHERE s.subject = $1 AND s.first_seq >= $2
              ORDER BY s.first_seq",
        )?;
        let mut rows = c.client.query_raw(
            &stmt,
            [
                &subject as &(dyn postgres::types::ToSql + Sync),
                &to_i64(from),
            ],
        )?;
        while let Some(r) = rows.next()? {
            let b = block::BlockRef {
                first_seq: to_u64(r.try_get(0)?),
                last_seq: to_u64(r.try_get(1)?),
                prev_hash: r.try_get::<_, RawText<'_>>(2)?.0,
                body: r.try_get(3)?,
            };
            if !block::visit_block(&b, visit)? {
                break;
            }
        }
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        Ok(self
            .lock()
            .query(
                "SELECT seq, hash, signature FROM ledger_checkpoints ORDER BY seq",
                &[],
            )?
            .iter()
            .map(|r| Checkpoint {
                seq: to_u64(r.get(0)),
                hash: r.get(1),
                signature: r.get(2),
            })
            .collect())
    }

    fn put_cookie_consent(&self, row: &CookieConsentRow) -> Result<()> {
        self.lock().execute(
            "INSERT INTO cookie_consents (id, choices, notice, notice_sha256, gpc, time_ms, receipt)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &row.id,
                &row.choices,
                &row.notice,
                &row.notice_sha256,
                &row.gpc,
                &row.time_ms,
                &row.receipt,
            ],
        )?;
        Ok(())
    }

    fn cookie_consent(&self, id: &str) -> Result<Option<CookieConsentRow>> {
        let row = self.lock().query_opt(
            "SELECT id, choices, notice, notice_sha256, gpc, time_ms, receipt
               FROM cookie_consents WHERE id = $1",
            &[&id],
        )?;
        Ok(row.map(|r| CookieConsentRow {
            id: r.get(0),
            choices: r.get(1),
            notice: r.get(2),
            notice_sha256: r.get(3),
            gpc: r.get(4),
            time_ms: r.get(5),
            receipt: r.get(6),
        }))
    }

    fn add_counts(&self, rows: &[CountRow], max_names: u64, other: &str) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let max_names = i64::try_from(max_names).unwrap_or(i64::MAX);
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        for r in rows {
            let n = tx.execute(
                "UPDATE aggregate_counts SET count = count + $4, total = total + $5
                  WHERE kind = $1 AND day = $2 AND name = $3",
                &[&r.kind, &r.day, &r.name, &r.count, &r.total],
            )?;
            if n > 0 {
                continue;
            }
            let held: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM aggregate_counts WHERE kind = $1 AND day = $2",
                    &[&r.kind, &r.day],
                )?
                .get(0);
            let name = if held >= max_names {
                other
            } else {
                r.name.as_str()
            };
            tx.execute(
                "INSERT INTO aggregate_counts (kind, day, name, count, total)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kind, day, name) DO UPDATE
                   SET count = aggregate_counts.count + EXCLUDED.count,
                       total = aggregate_counts.total + EXCLUDED.total",
                &[&r.kind, &r.day, &name, &r.count, &r.total],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn counts(&self, kind: &str, from: &str, to: &str, limit: u64) -> Result<Vec<CountRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.lock().query(
            "SELECT kind, name, day, count, total FROM aggregate_counts
              WHERE kind = $1 AND day >= $2 AND day <= $3
              ORDER BY day, name LIMIT $4",
            &[&kind, &from, &to, &limit],
        )?;
        Ok(rows
            .iter()
            .map(|r| CountRow {
                kind: r.get(0),
                name: r.get(1),
                day: r.get(2),
                count: r.get(3),
                total: r.get(4),
            })
            .collect())
    }
}

fn put_mail_on(c: &mut impl postgres::GenericClient, m: &MailRow) -> Result<()> {
    c.execute(
        "INSERT INTO outbox (id, state, attempts, created_ms, next_ms, done_ms, sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &m.id,
            &m.state,
            &i64::from(m.attempts),
            &m.created_ms,
            &m.next_ms,
            &m.done_ms,
            &m.sealed,
        ],
    )?;
    Ok(())
}

fn mail_row(r: &Row) -> MailRow {
    MailRow {
        id: r.get(0),
        state: r.get(1),
        attempts: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
        created_ms: r.get(3),
        next_ms: r.get(4),
        done_ms: r.get(5),
        sealed: r.get(6),
    }
}
