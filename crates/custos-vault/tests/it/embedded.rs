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
    for f in ["custos.db", "keys.db"] {
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
