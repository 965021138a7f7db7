//! The test harness: a fresh vault on a fresh SQLite directory or a fresh PostgreSQL
//! database, with raw SQL access for tampering and dumps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use custos_policy::Policy;
use custos_vault::{CollectionInput, MasterKey, PostgresStore, Purging, SqliteStore, Store, Vault};

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
