//! The embedded start: master key file and data directory layout.

use custos_vault::Vault;

use crate::support::policy;

/// An empty directory of this test process, named for the test.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("custos_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A vault on SQLite in `dir` under `kek`.
fn open_in(dir: &std::path::Path, kek: &custos_vault::MasterKey) -> Vault {
    let store = std::sync::Arc::new(custos_vault::SqliteStore::open(dir).unwrap());
    Vault::open(store, policy(), kek.clone()).unwrap()
}

#[test]
fn first_start_creates_a_private_master_key() {
    if std::env::var_os(custos_vault::crypto::MASTER_KEY_ENV).is_some() {
        return; // the environment supplies the key; no file is made
    }
    let dir = std::env::temp_dir().join(format!("custos_embedded_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let v = Vault::open_embedded(&dir, policy()).unwrap();
    let key = dir.join("master.key");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
    for f in ["custos.db", "keys.db", "ledger.db"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let id = v
        .collect(
            "meeting-center",
            &crate::support::attendee("Rae", "rae@example.com"),
        )
        .unwrap();
    drop(v);
    // The second start reads the same key.
    let v = Vault::open_embedded(&dir, policy()).unwrap();
    assert!(v.store().wrapped_dek(id.as_str()).unwrap().is_some());
    assert!(v.verify_ledger().unwrap().ok());
    drop(v);
    // The data database alone holds no keys.
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('subject_keys', 'secrets')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Puts the ledger of the store in `dir` back into the layout of an older version: a row
/// per entry, in `custos.db` (before 0.2) or in `ledger.db` (before 0.3).
fn to_rows(dir: &std::path::Path, in_data_db: bool) {
    use custos_vault::Store as _;
    let entries = custos_vault::SqliteStore::open(dir)
        .unwrap()
        .ledger_page(1, u64::MAX)
        .unwrap();
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    c.execute(
        "ATTACH DATABASE ?1 AS audit",
        [dir.join("ledger.db").to_string_lossy()],
    )
    .unwrap();
    let schema = if in_data_db { "main" } else { "audit" };
    c.execute_batch(&format!(
        "CREATE TABLE {schema}.ledger (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,
           actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL,
           purpose TEXT NOT NULL, recipient TEXT NOT NULL, categories TEXT NOT NULL,
           effect TEXT NOT NULL, reasons TEXT NOT NULL, prev_hash TEXT NOT NULL,
           hash TEXT NOT NULL);
         DROP TABLE audit.ledger_blocks;"
    ))
    .unwrap();
    crate::support::insert_rows(&c, &format!("{schema}.ledger"), &entries);
    if in_data_db {
        c.execute_batch(
            "CREATE TABLE main.ledger_checkpoints AS SELECT * FROM audit.ledger_checkpoints;
             DROP TABLE audit.ledger_checkpoints;",
        )
        .unwrap();
    }
}

/// A data directory of a version that kept the ledger as a row per entry — in `custos.db`,
/// or in `ledger.db` — opens with its ledger converted into blocks in `ledger.db`, whole:
/// the chain verifies with the same head and goes on from it, and a tampered row stays
/// tampered (it is not healed by the conversion).
#[test]
fn a_ledger_kept_as_rows_is_converted_into_blocks() {
    use custos_vault::MasterKey;

    for in_data_db in [true, false] {
        let dir = fresh_dir(&format!("move_ledger_{in_data_db}"));
        let kek = MasterKey::generate().unwrap();
        let open = |kek: &MasterKey| open_in(&dir, kek);
        let v = open(&kek);
        for i in 0..3 {
            v.collect(
                "meeting-center",
                &crate::support::attendee("Old", &format!("old{i}@example.com")),
            )
            .unwrap();
        }
        let before = v.verify_ledger().unwrap();
        assert!(before.ok() && before.entries >= 3);
        drop(v);
        to_rows(&dir, in_data_db);
        let v = open(&kek);
        let after = v.verify_ledger().unwrap();
        assert!(after.ok(), "{after:?}");
        assert_eq!((after.entries, &after.head), (before.entries, &before.head));
        v.collect(
            "meeting-center",
            &crate::support::attendee("New", "new@example.com"),
        )
        .unwrap();
        let next = v.verify_ledger().unwrap();
        assert!(next.ok() && next.entries > before.entries);
        drop(v);
        let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
        let left: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'ledger%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        let c = rusqlite::Connection::open(dir.join("ledger.db")).unwrap();
        let rows: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'ledger'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 0, "the row table is gone once converted");
        drop(c);
        // A tampered row, converted: verify still names it.
        to_rows(&dir, in_data_db);
        let c = rusqlite::Connection::open(dir.join(if in_data_db {
            "custos.db"
        } else {
            "ledger.db"
        }))
        .unwrap();
        c.execute("UPDATE ledger SET actor = 'mallory' WHERE seq = 2", [])
            .unwrap();
        c.execute("UPDATE ledger SET hash = upper(hash) WHERE seq = 3", [])
            .unwrap();
        drop(c);
        let v = open(&kek);
        assert_eq!(v.verify_ledger().unwrap().first_bad, Some(2));
        drop(v);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A database of schema version 1 (rowid tables keyed by random ids) opens migrated: its
/// tables keyed by subject become `WITHOUT ROWID`, and every subject, value, index term and
/// key still reads.
#[test]
fn old_schema_migrates_to_tables_keyed_by_subject() {
    use custos_vault::{MasterKey, ReadInput};

    let dir = fresh_dir("migrate_v1");
    let kek = MasterKey::generate().unwrap();
    let open = |kek: &MasterKey| open_in(&dir, kek);
    let v = open(&kek);
    let inputs: Vec<_> = (0..50)
        .map(|i| crate::support::attendee(&format!("Old {i}"), &format!("old{i}@example.com")))
        .collect();
    let ids: Vec<_> = v
        .collect_many("meeting-center", &inputs)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    drop(v);
    // Back to the version-1 layout: the same tables as rowid tables, and version 1.
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    c.execute(
        "ATTACH DATABASE ?1 AS keys",
        [dir.join("keys.db").to_string_lossy()],
    )
    .unwrap();
    c.execute_batch(
        "BEGIN;
         CREATE TABLE s1 (id TEXT PRIMARY KEY, status TEXT NOT NULL, age TEXT NOT NULL,
             created_ms INTEGER NOT NULL);
         INSERT INTO s1 SELECT * FROM subjects; DROP TABLE subjects;
         ALTER TABLE s1 RENAME TO subjects;
         CREATE TABLE t1 (subject TEXT NOT NULL, tenant TEXT NOT NULL,
             PRIMARY KEY (subject, tenant));
         INSERT INTO t1 SELECT * FROM subject_tenants; DROP TABLE subject_tenants;
         ALTER TABLE t1 RENAME TO subject_tenants;
         CREATE TABLE v1 (subject TEXT NOT NULL, category TEXT NOT NULL,
             ciphertext BLOB NOT NULL, purposes TEXT NOT NULL, notice TEXT NOT NULL,
             service TEXT NOT NULL, role TEXT NOT NULL, time_ms INTEGER NOT NULL,
             PRIMARY KEY (subject, category));
         INSERT INTO v1 SELECT * FROM field_values; DROP TABLE field_values;
         ALTER TABLE v1 RENAME TO field_values;
         CREATE TABLE b1 (category TEXT NOT NULL, term TEXT NOT NULL, subject TEXT NOT NULL,
             PRIMARY KEY (category, term, subject));
         INSERT INTO b1 SELECT * FROM blind_index; DROP TABLE blind_index;
         ALTER TABLE b1 RENAME TO blind_index;
         CREATE INDEX blind_index_subject ON blind_index (subject);
         CREATE TABLE keys.k1 (subject TEXT PRIMARY KEY, wrapped BLOB NOT NULL);
         INSERT INTO keys.k1 SELECT * FROM keys.subject_keys; DROP TABLE keys.subject_keys;
         ALTER TABLE keys.k1 RENAME TO subject_keys;
         UPDATE meta SET value = '1' WHERE key = 'schema_version';
         COMMIT;",
    )
    .unwrap();
    let without_rowid = |c: &rusqlite::Connection, schema: &str| -> i64 {
        c.query_row(
            &format!(
                "SELECT COUNT(*) FROM {schema}.sqlite_master WHERE type = 'table'
                 AND sql LIKE '%WITHOUT ROWID%'"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(without_rowid(&c, "main") + without_rowid(&c, "keys"), 0);
    drop(c);
    let v = open(&kek);
    let read = ReadInput {
        purpose: "service.meetings".into(),
        ..ReadInput::default()
    };
    for (i, id) in ids.iter().enumerate() {
        let r = v.read("meeting-center", id, &read).unwrap();
        assert_eq!(r.data["contact.email"], format!("old{i}@example.com"));
        assert_eq!(
            v.find_by_identifier("contact.email", &format!("old{i}@example.com"))
                .unwrap()
                .as_ref(),
            Some(id)
        );
    }
    assert!(v.verify_ledger().unwrap().ok());
    drop(v);
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    c.execute(
        "ATTACH DATABASE ?1 AS keys",
        [dir.join("keys.db").to_string_lossy()],
    )
    .unwrap();
    // subjects, subject_tenants, field_values, blind_index; keys.subject_keys.
    assert_eq!(without_rowid(&c, "main"), 4);
    assert_eq!(without_rowid(&c, "keys"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Commits do not copy the WAL into the database file; the store's checkpointer does, in
/// the background: soon after a bulk collection its rows are in `custos.db` itself, though
/// nothing else opened the database.
#[test]
fn wal_is_checkpointed_in_the_background() {
    use std::time::{Duration, Instant};

    use custos_vault::MasterKey;

    let dir = fresh_dir("checkpoint");
    let v = open_in(&dir, &MasterKey::generate().unwrap());
    let inputs: Vec<_> = (0..600)
        .map(|i| crate::support::attendee("Wal", &format!("wal{i}@example.com")))
        .collect();
    let ids: Vec<_> = v
        .collect_many("meeting-center", &inputs)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let last = ids.last().unwrap().as_str().as_bytes().to_vec();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let db = std::fs::read(dir.join("custos.db")).unwrap();
        if db.windows(last.len()).any(|w| w == last.as_slice()) {
            break;
        }
        assert!(Instant::now() < deadline, "the WAL was not checkpointed");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(v);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite commits an erasure's data, then its entry to `ledger.db`. A crash between the two
/// leaves the entry kept beside the data; the next open appends it, once. A crash after the
/// entry's commit but before that row's delete leaves a row whose entry is there: it is
/// dropped, not appended twice.
#[test]
fn an_erasure_entry_a_crash_kept_out_of_the_ledger_is_appended_on_open() {
    use custos_vault::MasterKey;
    let dir = fresh_dir("pending_entry");
    let kek = MasterKey::generate().unwrap();
    let v = open_in(&dir, &kek);
    let id = v
        .collect(
            "meeting-center",
            &crate::support::attendee("Uma", "uma@example.com"),
        )
        .unwrap();
    v.erase("privacy-office", &id).unwrap();
    drop(v);
    let data = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    let pending = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT COUNT(*) FROM pending_ledger", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(pending(&data), 0, "a clean erasure leaves nothing pending");
    let stored = |action: &str, subject: &str| -> Vec<custos_vault::LedgerEntry> {
        use custos_vault::Store as _;
        custos_vault::SqliteStore::open(&dir)
            .unwrap()
            .ledger_page(1, u64::MAX)
            .unwrap()
            .into_iter()
            .filter(|e| e.draft.action == action && e.draft.subject == subject)
            .collect()
    };
    let entries = |action: &str, subject: &str| stored(action, subject).len();
    assert_eq!(entries("erase", id.as_str()), 1);
    // The state of two crashes: an erasure of `lost` whose entry never committed, and the
    // erasure above whose pending row outlived its entry's commit.
    let lost = "0192b3c4-d5e6-7f00-8000-000000000001";
    data.execute(
        "INSERT INTO pending_ledger (after_seq, time_ms, actor, action, subject, purpose,
           recipient, categories, effect, reasons)
         VALUES (0, 1700000000000, 'privacy-office', 'erase', ?1, '', '', '', 'done',
           'erasure_requested')",
        [lost],
    )
    .unwrap();
    let kept = stored("erase", id.as_str()).remove(0).draft;
    data.execute(
        "INSERT INTO pending_ledger (after_seq, time_ms, actor, action, subject, purpose,
           recipient, categories, effect, reasons)
         VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            kept.time_ms,
            kept.actor,
            kept.action,
            kept.subject,
            kept.purpose,
            kept.recipient,
            kept.categories,
            kept.effect,
            kept.reasons
        ],
    )
    .unwrap();
    assert_eq!(pending(&data), 2);
    for _ in 0..2 {
        let v = open_in(&dir, &kek);
        assert!(v.verify_ledger().unwrap().ok());
        drop(v);
        assert_eq!(pending(&data), 0);
        assert_eq!(
            entries("erase", lost),
            1,
            "the lost entry is appended, once"
        );
        assert_eq!(
            entries("erase", id.as_str()),
            1,
            "the kept one is not repeated"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file the vault writes in a data directory that already exists (made 0755, as an
/// operator's `mkdir` would) is its owner's alone: the databases, their `-wal` and `-shm`,
/// the master key. A database file an older version left 0644 is narrowed on open.
#[cfg(unix)]
#[test]
fn every_file_in_an_existing_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = fresh_dir("file_modes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let modes = |dir: &std::path::Path| -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                (e.file_name().to_string_lossy().into_owned(), mode)
            })
            .collect();
        out.sort();
        out
    };
    // The master key is made here too, unless the environment supplies it.
    let open = || Vault::open_embedded(&dir, policy()).unwrap();
    let v = open();
    v.collect(
        "meeting-center",
        &crate::support::attendee("Mo", "mo@example.com"),
    )
    .unwrap();
    let seen = modes(&dir);
    for f in [
        "custos.db",
        "keys.db",
        "ledger.db",
        "custos.db-wal",
        "ledger.db-wal",
    ] {
        assert!(seen.iter().any(|(n, _)| n == f), "no {f} in {seen:?}");
    }
    for (name, mode) in &seen {
        assert_eq!(*mode, 0o600, "{name} is {mode:o}: {seen:?}");
    }
    drop(v);
    // A file left open to others by an older version is narrowed at the next open.
    std::fs::set_permissions(
        dir.join("custos.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let v = open();
    let seen = modes(&dir);
    for (name, mode) in &seen {
        assert_eq!(*mode, 0o600, "{name} is {mode:o}: {seen:?}");
    }
    drop(v);
    let _ = std::fs::remove_dir_all(&dir);
}
