//! The embedded start: master key file and data directory layout.

use custos_vault::Vault;

use crate::support::policy;

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

/// A data directory of a version that kept the ledger in `custos.db` opens with its ledger
/// moved, whole, into `ledger.db`; the chain still verifies and goes on from its head.
#[test]
fn ledger_in_the_data_database_moves_to_its_own() {
    use std::sync::Arc;

    use custos_vault::{MasterKey, SqliteStore};

    let dir = std::env::temp_dir().join(format!("custos_move_ledger_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let kek = MasterKey::generate().unwrap();
    let open = |kek: &MasterKey| {
        let store = Arc::new(SqliteStore::open(&dir).unwrap());
        Vault::open(store, policy(), kek.clone()).unwrap()
    };
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
    // The old layout: the ledger's tables in custos.db, none in ledger.db.
    let c = rusqlite::Connection::open(dir.join("custos.db")).unwrap();
    c.execute(
        "ATTACH DATABASE ?1 AS audit",
        [dir.join("ledger.db").to_string_lossy()],
    )
    .unwrap();
    c.execute_batch(
        "CREATE TABLE main.ledger AS SELECT * FROM audit.ledger;
         CREATE TABLE main.ledger_checkpoints AS SELECT * FROM audit.ledger_checkpoints;
         DROP TABLE audit.ledger; DROP TABLE audit.ledger_checkpoints;",
    )
    .unwrap();
    drop(c);
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
    let _ = std::fs::remove_dir_all(&dir);
}
