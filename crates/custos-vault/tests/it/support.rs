//! The test harness: a fresh vault on a fresh SQLite directory or a fresh PostgreSQL
//! database, with raw SQL access for tampering and dumps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use custos_policy::Policy;
use custos_vault::ledger::block;
use custos_vault::{
    CollectionInput, LedgerEntry, MasterKey, PostgresStore, Purging, SqliteStore, Store, Vault,
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn policy() -> Arc<Policy> {
    static P: OnceLock<Arc<Policy>> = OnceLock::new();
    Arc::clone(P.get_or_init(|| Arc::new(Policy::builtin().expect("builtin policy"))))
}

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let r: [u8; 4] = custos_vault::crypto::random_bytes().unwrap();
    format!(
        "{prefix}_{}_{n}_{}",
        std::process::id(),
        custos_vault::crypto::hex(&r)
    )
}

/// Where a harness keeps its vault.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres {
        admin: String,
        url: String,
        db: String,
    },
}

pub struct Harness {
    pub backend: Backend,
    pub kek: MasterKey,
    vault: Option<Vault>,
}

/// The PostgreSQL server the tests use. Unreachable is a failure, never a skip.
pub fn postgres_admin_url() -> String {
    std::env::var("CUSTOS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (server, _) = base.rsplit_once('/').expect("database url has a path");
    format!("{server}/{db}{query}")
}

impl Harness {
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(unique("custos_it"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut h = Self {
            backend: Backend::Sqlite(dir),
            kek: MasterKey::generate().unwrap(),
            vault: None,
        };
        h.vault = Some(h.open(h.kek.clone()).unwrap());
        h
    }

    pub fn postgres() -> Self {
        let admin = postgres_admin_url();
        let db = unique("custos_test");
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!("PostgreSQL at CUSTOS_TEST_DATABASE_URL ({admin}) is unreachable: {e}")
        });
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        let url = with_db(&admin, &db);
        let mut h = Self {
            backend: Backend::Postgres { admin, url, db },
            kek: MasterKey::generate().unwrap(),
            vault: None,
        };
        h.vault = Some(h.open(h.kek.clone()).unwrap());
        h
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self.backend, Backend::Sqlite(_))
    }

    pub fn store(&self) -> custos_vault::Result<Arc<dyn Store>> {
        Ok(match &self.backend {
            Backend::Sqlite(dir) => Arc::new(SqliteStore::open(dir)?),
            Backend::Postgres { url, .. } => Arc::new(PostgresStore::connect(url)?),
        })
    }

    /// Another vault over the same database: a second server.
    pub fn open(&self, kek: MasterKey) -> custos_vault::Result<Vault> {
        Vault::open(self.store()?, policy(), kek)
    }

    /// [`Harness::open`], choosing how erased subjects' records are purged.
    pub fn open_with(&self, kek: MasterKey, purging: Purging) -> custos_vault::Result<Vault> {
        Vault::open_with(self.store()?, policy(), kek, purging)
    }

    pub fn vault(&self) -> &Vault {
        self.vault.as_ref().unwrap()
    }

    pub fn vault_mut(&mut self) -> &mut Vault {
        self.vault.as_mut().unwrap()
    }

    /// Closes the harness's own vault (its ledger writer and connection).
    pub fn close(&mut self) {
        self.vault = None;
    }

    /// Makes the store refuse, from now on, every row inserted into `table` whose `column`
    /// is `value` (a trigger named `name`, on either backend): a store failing mid-batch.
    pub fn refuse_inserts(&self, name: &str, table: &str, column: &str, value: &str) {
        if self.is_sqlite() {
            self.exec(&format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
                 WHEN NEW.{column} = '{value}' BEGIN SELECT RAISE(ABORT, '{name}'); END;"
            ));
        } else {
            self.exec(&format!(
                "CREATE FUNCTION {name}() RETURNS trigger AS $$ \
                 BEGIN IF NEW.{column} = '{value}' THEN RAISE EXCEPTION '{name}'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER {name} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {name}();"
            ));
        }
    }

    pub fn exec(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite(dir) => {
                let c = self.sqlite_conn(dir);
                c.execute_batch(sql).unwrap();
            }
            Backend::Postgres { url, .. } => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                c.batch_execute(sql).unwrap();
            }
        }
    }

    /// The first column of the first row, as text (`''` when null or no row).
    pub fn text(&self, sql: &str) -> String {
        match &self.backend {
            Backend::Sqlite(dir) => {
                let c = self.sqlite_conn(dir);
                c.query_row(sql, [], |r| {
                    let v: rusqlite::types::Value = r.get(0)?;
                    Ok(match v {
                        rusqlite::types::Value::Null => String::new(),
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    })
                })
                .unwrap_or_default()
            }
            Backend::Postgres { url, .. } => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                let rows = c.query(sql, &[]).unwrap();
                let Some(r) = rows.first() else {
                    return String::new();
                };
                if let Ok(v) = r.try_get::<_, Option<String>>(0) {
                    return v.unwrap_or_default();
                }
                r.get::<_, i64>(0).to_string()
            }
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.text(sql).parse().unwrap()
    }

    fn sqlite_conn(&self, dir: &std::path::Path) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
        c.execute(
            "ATTACH DATABASE ?1 AS keys",
            [dir.join("keys.db").to_string_lossy()],
        )
        .unwrap();
        c.execute(
            "ATTACH DATABASE ?1 AS audit",
            [dir.join("ledger.db").to_string_lossy()],
        )
        .unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    /// Every byte the database holds: the SQLite files (db, WAL, keys), or a text dump of
    /// every PostgreSQL table.
    pub fn dump(&self) -> Vec<u8> {
        match &self.backend {
            Backend::Sqlite(dir) => {
                let mut out = Vec::new();
                for entry in std::fs::read_dir(dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.file_name().is_some_and(|n| n == "master.key") {
                        continue;
                    }
                    out.extend(std::fs::read(&path).unwrap());
                }
                out
            }
            Backend::Postgres { url, .. } => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                let tables = c
                    .query(
                        "SELECT schemaname, tablename FROM pg_tables
                         WHERE schemaname IN ('public', 'custos_keys')",
                        &[],
                    )
                    .unwrap();
                assert!(tables.len() >= 10, "expected the vault's tables");
                let mut out = Vec::new();
                for t in tables {
                    let (s, n): (String, String) = (t.get(0), t.get(1));
                    for row in c
                        .query(&format!("SELECT (t.*)::text FROM {s}.{n} t"), &[])
                        .unwrap()
                    {
                        let line: String = row.get(0);
                        out.extend(line.into_bytes());
                        out.push(b'\n');
                    }
                }
                out
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.vault = None;
        match &self.backend {
            Backend::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Backend::Postgres { admin, db, .. } => {
                if let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
                }
            }
        }
    }
}

/// A meeting attendee's collection.
pub fn attendee(name: &str, email: &str) -> CollectionInput {
    CollectionInput {
        service: "meeting-center".into(),
        role: "attendee".into(),
        purposes: vec!["service.meetings".into()],
        notice: policy().version().to_string(),
        age: None,
        tenant: Some("acme".into()),
        data: BTreeMap::from([
            ("contact.name".into(), name.into()),
            ("contact.email".into(), email.into()),
            ("network.ip_address".into(), "192.0.2.7".into()),
        ]),
    }
}

/// A website registration.
pub fn registration(email: &str, purposes: &[&str]) -> CollectionInput {
    CollectionInput {
        service: "website".into(),
        role: "account-holder".into(),
        purposes: purposes.iter().map(|p| p.to_string()).collect(),
        notice: policy().version().to_string(),
        age: Some(30),
        tenant: None,
        data: BTreeMap::from([
            ("contact.name".into(), "Ann Example".into()),
            ("contact.email".into(), email.into()),
            ("contact.postal_address".into(), "1 Example Way".into()),
            ("contact.phone".into(), "+1 555 0100".into()),
            ("contact.title".into(), "Engineer".into()),
            ("contact.company".into(), "Acme".into()),
        ]),
    }
}

/// The ledger as the tests tamper with it: every entry as stored (in blocks, on both
/// backends).
impl Harness {
    /// Every stored block: `(first_seq, last_seq, prev_hash, entries)`.
    fn ledger_blocks(&self) -> Vec<(u64, u64, String, Vec<u8>)> {
        const SQL: &str =
            "SELECT first_seq, last_seq, prev_hash, entries FROM ledger_blocks ORDER BY first_seq";
        let seq = |n: i64| u64::try_from(n).unwrap();
        match &self.backend {
            Backend::Sqlite(dir) => {
                let c = self.sqlite_conn(dir);
                let mut stmt = c.prepare(SQL).unwrap();
                stmt.query_map([], |r| {
                    Ok((seq(r.get(0)?), seq(r.get(1)?), r.get(2)?, r.get(3)?))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
            Backend::Postgres { url, .. } => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                c.query(SQL, &[])
                    .unwrap()
                    .iter()
                    .map(|r| (seq(r.get(0)), seq(r.get(1)), r.get(2), r.get(3)))
                    .collect()
            }
        }
    }

    /// Every stored entry, in seq order.
    pub fn ledger_entries(&self) -> Vec<LedgerEntry> {
        let mut out = Vec::new();
        for (first_seq, last_seq, prev, body) in self.ledger_blocks() {
            let b = block::BlockRef {
                first_seq,
                last_seq,
                prev_hash: prev.as_bytes(),
                body: &body,
            };
            block::decode(&b, &mut |e| {
                out.push(e.expect("a block that decodes").to_entry());
                true
            });
        }
        out
    }

    /// Rewrites the stored ledger as `edit` leaves its entries (nothing else is checked: this
    /// is how an attacker with the database would go about it).
    pub fn edit_ledger(&self, edit: impl FnOnce(&mut Vec<LedgerEntry>)) {
        let mut entries = self.ledger_entries();
        edit(&mut entries);
        // Blocks as the vault's own conversion makes them: a run of consecutive, linked
        // entries per block.
        let mut grouper = block::Grouper::default();
        let mut new_blocks = Vec::new();
        for e in &entries {
            let d = &e.draft;
            let text = [
                &d.actor,
                &d.action,
                &d.subject,
                &d.purpose,
                &d.recipient,
                &d.categories,
                &d.effect,
                &d.reasons,
                &e.prev_hash,
                &e.hash,
            ]
            .map(|t| t.as_bytes().to_vec());
            new_blocks.extend(grouper.push(block::OwnedRow {
                seq: e.seq,
                time_ms: d.time_ms,
                text,
            }));
        }
        new_blocks.extend(grouper.finish());
        let blocks: Vec<(i64, i64, String, Vec<u8>)> = new_blocks
            .into_iter()
            .map(|b| {
                (
                    i64::try_from(b.first_seq).unwrap(),
                    i64::try_from(b.last_seq).unwrap(),
                    String::from_utf8(b.prev_hash).unwrap(),
                    b.body,
                )
            })
            .collect();
        match &self.backend {
            Backend::Sqlite(dir) => {
                let mut c = self.sqlite_conn(dir);
                let tx = c.transaction().unwrap();
                tx.execute("DELETE FROM ledger_blocks", []).unwrap();
                for (first, last, prev, body) in &blocks {
                    tx.execute(
                        "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries) \
                         VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![first, last, prev, body],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            Backend::Postgres { url, .. } => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                let mut tx = c.transaction().unwrap();
                tx.execute("DELETE FROM ledger_blocks", &[]).unwrap();
                for (first, last, prev, body) in &blocks {
                    tx.execute(
                        "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries) \
                         VALUES ($1, $2, $3, $4)",
                        &[first, last, prev, body],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
        }
    }

    /// Stores `entries` (consecutive, linked) as one more block beside the others, as an
    /// attacker with the database could: blocks that overlap, or claim seqs already held.
    pub fn insert_block(&self, entries: &[LedgerEntry]) {
        let mut grouper = block::Grouper::default();
        for e in entries {
            let d = &e.draft;
            let text = [
                &d.actor,
                &d.action,
                &d.subject,
                &d.purpose,
                &d.recipient,
                &d.categories,
                &d.effect,
                &d.reasons,
                &e.prev_hash,
                &e.hash,
            ]
            .map(|t| t.as_bytes().to_vec());
            let closed = grouper.push(block::OwnedRow {
                seq: e.seq,
                time_ms: d.time_ms,
                text,
            });
            assert!(closed.is_none(), "entries that make one block");
        }
        let b = grouper.finish().expect("at least one entry");
        let (first, last) = (
            i64::try_from(b.first_seq).unwrap(),
            i64::try_from(b.last_seq).unwrap(),
        );
        let prev = String::from_utf8(b.prev_hash).unwrap();
        match &self.backend {
            Backend::Sqlite(dir) => {
                self.sqlite_conn(dir)
                    .execute(
                        "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries) \
                         VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![first, last, prev, b.body],
                    )
                    .unwrap();
            }
            Backend::Postgres { url, .. } => {
                postgres::Client::connect(url, postgres::NoTls)
                    .unwrap()
                    .execute(
                        "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries) \
                         VALUES ($1, $2, $3, $4)",
                        &[&first, &last, &prev, &b.body],
                    )
                    .unwrap();
            }
        }
    }

    /// Column `col` of the entry at `seq`, as text.
    pub fn ledger_text(&self, seq: u64, col: &str) -> String {
        let mut e = self
            .ledger_entries()
            .into_iter()
            .find(|e| e.seq == seq)
            .unwrap_or_else(|| panic!("no entry {seq}"));
        column(&mut e, col).clone()
    }

    /// Sets column `col` of the entry at `seq` to `f` of its text.
    pub fn tamper(&self, seq: u64, col: &str, f: impl FnOnce(&str) -> String) {
        self.edit_ledger(|entries| {
            let e = entries.iter_mut().find(|e| e.seq == seq).unwrap();
            let mut text = column(e, col).clone();
            text = f(&text);
            *column(e, col) = text;
        });
    }

    /// Removes the entry at `seq`.
    pub fn delete_entry(&self, seq: u64) {
        self.edit_ledger(|entries| entries.retain(|e| e.seq != seq));
    }

    /// Puts `e` back in its place.
    pub fn insert_entry(&self, e: LedgerEntry) {
        self.edit_ledger(|entries| {
            entries.push(e);
            entries.sort_by_key(|e| e.seq);
        });
    }
}

/// Column `col` of an entry as text; `seq` and `time_ms` go through a scratch string that
/// [`Harness::tamper`] parses back.
fn column<'e>(e: &'e mut LedgerEntry, col: &str) -> &'e mut String {
    let d = &mut e.draft;
    match col {
        "actor" => &mut d.actor,
        "action" => &mut d.action,
        "subject" => &mut d.subject,
        "purpose" => &mut d.purpose,
        "recipient" => &mut d.recipient,
        "categories" => &mut d.categories,
        "effect" => &mut d.effect,
        "reasons" => &mut d.reasons,
        "prev_hash" => &mut e.prev_hash,
        "hash" => &mut e.hash,
        other => panic!("not a text column: {other}"),
    }
}

impl Harness {
    /// Puts the ledger back into the layout of versions before 0.3 — a row per entry in a
    /// `ledger` table, no blocks — with `edit` applied to its entries first (to store a
    /// tampered ledger). The next open converts it.
    pub fn to_rows(&self, edit: impl FnOnce(&mut Vec<LedgerEntry>)) {
        let mut entries = self.ledger_entries();
        edit(&mut entries);
        const TABLE: &str = "ledger (seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, \
            actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, \
            purpose TEXT NOT NULL, recipient TEXT NOT NULL, categories TEXT NOT NULL, \
            effect TEXT NOT NULL, reasons TEXT NOT NULL, prev_hash TEXT NOT NULL, \
            hash TEXT NOT NULL)";
        match &self.backend {
            Backend::Sqlite(dir) => {
                let mut c = self.sqlite_conn(dir);
                let tx = c.transaction().unwrap();
                tx.execute_batch(&format!(
                    "CREATE TABLE audit.{TABLE}; DROP TABLE audit.ledger_blocks;"
                ))
                .unwrap();
                insert_rows(&tx, "audit.ledger", &entries);
                tx.commit().unwrap();
            }
            Backend::Postgres { url, .. } => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                let mut tx = c.transaction().unwrap();
                tx.batch_execute(&format!(
                    "CREATE TABLE {TABLE}; DROP TABLE ledger_blocks; \
                     UPDATE custos_meta SET value = '2' WHERE key = 'schema_version';"
                ))
                .unwrap();
                for e in &entries {
                    let d = &e.draft;
                    tx.execute(
                        "INSERT INTO ledger VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        &[
                            &i64::try_from(e.seq).unwrap(),
                            &d.time_ms,
                            &d.actor,
                            &d.action,
                            &d.subject,
                            &d.purpose,
                            &d.recipient,
                            &d.categories,
                            &d.effect,
                            &d.reasons,
                            &e.prev_hash,
                            &e.hash,
                        ],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
        }
    }
}

/// Inserts `entries` as rows of the pre-0.3 layout into `table` (SQLite).
pub fn insert_rows(conn: &rusqlite::Connection, table: &str, entries: &[LedgerEntry]) {
    let mut insert = conn
        .prepare(&format!(
            "INSERT INTO {table} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ))
        .unwrap();
    for e in entries {
        let d = &e.draft;
        insert
            .execute(rusqlite::params![
                i64::try_from(e.seq).unwrap(),
                d.time_ms,
                d.actor,
                d.action,
                d.subject,
                d.purpose,
                d.recipient,
                d.categories,
                d.effect,
                d.reasons,
                e.prev_hash,
                e.hash
            ])
            .unwrap();
    }
}
