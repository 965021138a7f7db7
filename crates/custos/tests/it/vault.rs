//! `custos keys …` and `custos audit verify` on an embedded vault.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn custos(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(args)
        .current_dir(dir)
        .env_remove("CUSTOS_MASTER_KEY")
        .env_remove("CUSTOS_NEW_MASTER_KEY")
        .output()
        .expect("custos runs")
}

/// A meeting attendee collected through the library (the CLI collects no one): its id.
fn attendee(data: &Path, values: &[(&str, &str)]) -> String {
    let policy = std::sync::Arc::new(custos_policy::Policy::builtin().unwrap());
    let vault = custos_vault::Vault::open_embedded(data, policy).unwrap();
    let input = custos_vault::CollectionInput {
        service: "meeting-center".into(),
        role: "attendee".into(),
        purposes: vec!["service.meetings".into()],
        notice: "2010-04-24".into(),
        data: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    vault.collect("meeting-center", &input).unwrap().to_string()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("custos_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn keys_create_prints_the_key_alone_and_audit_verifies() {
    let dir = temp("keys");
    let out = custos(&dir, &["keys", "create", "--accessor", "meeting-center"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("custos_") && lines[0].len() == 71);
    // First start: the key file is made, and the operator is told to back it up.
    assert!(String::from_utf8_lossy(&out.stderr).contains("back it up"));
    assert!(dir.join("custos-data/master.key").exists());

    let out = custos(&dir, &["keys", "create", "--accessor", "nobody"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());

    let out = custos(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ledger intact"));

    // Any changed byte in the ledger: exit 1, naming the entry.
    let db = rusqlite::Connection::open(dir.join("custos-data/ledger.db")).unwrap();
    // Entries are stored in blocks (one per group commit): byte 6 of the first block's body
    // lies in its first entry.
    db.execute(
        "UPDATE ledger_blocks SET entries = substr(entries, 1, 5) \
         || (CASE WHEN substr(entries, 6, 1) = X'41' THEN X'42' ELSE X'41' END) \
         || substr(entries, 7) WHERE first_seq = 1",
        [],
    )
    .unwrap();
    drop(db);
    let out = custos(&dir, &["audit", "verify", "--data", "custos-data"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broken at entry 1"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 12, item 3: an accessor acting for a business customer gets keys of one tenant
/// (`--tenant`), stored with the key's hash; any other accessor takes no tenant; revoking
/// can be limited to one tenant's keys.
#[test]
fn keys_create_binds_a_customers_key_to_its_tenant() {
    let dir = temp("tenant_keys");
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // Without a tenant: refused, no key printed.
    let out = custos(&dir, &["keys", "create", "--accessor", "customer-admin"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("--tenant"), "{out:?}");
    // A tenant for an accessor that acts for none: refused.
    let out = custos(
        &dir,
        &[
            "keys",
            "create",
            "--accessor",
            "support",
            "--tenant",
            "acme",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("no tenant"), "{out:?}");
    // With one: the key alone on stdout, its tenant beside its hash.
    let mut keys = Vec::new();
    for tenant in ["acme", "globex"] {
        let out = custos(
            &dir,
            &[
                "keys",
                "create",
                "--accessor",
                "customer-admin",
                "--tenant",
                tenant,
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(key.starts_with("custos_") && key.len() == 71);
        keys.push(key);
    }
    let db = rusqlite::Connection::open(dir.join("custos-data/custos.db")).unwrap();
    let rows = |db: &rusqlite::Connection| -> Vec<(String, Option<String>, bool)> {
        db.prepare("SELECT accessor, tenant, revoked FROM api_keys ORDER BY tenant")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        rows(&db),
        [
            ("customer-admin".into(), Some("acme".into()), false),
            ("customer-admin".into(), Some("globex".into()), false),
        ]
    );
    let dump = std::fs::read(dir.join("custos-data/custos.db")).unwrap();
    for key in &keys {
        assert!(!dump.windows(key.len()).any(|w| w == key.as_bytes()));
    }
    // Revoking one tenant's keys leaves the other's.
    let out = custos(
        &dir,
        &[
            "keys",
            "revoke",
            "--accessor",
            "customer-admin",
            "--tenant",
            "acme",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("revoked 1 key(s)"), "{out:?}");
    assert_eq!(
        rows(&db),
        [
            ("customer-admin".into(), Some("acme".into()), true),
            ("customer-admin".into(), Some("globex".into()), false),
        ]
    );
    drop(db);
    let out = custos(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rotate_master_rewraps_and_replaces_the_key_file() {
    let dir = temp("rotate");
    let out = custos(&dir, &["keys", "create", "--accessor", "meeting-center"]);
    assert!(out.status.success());
    let old = std::fs::read_to_string(dir.join("custos-data/master.key")).unwrap();
    let new = "ab".repeat(32);
    std::fs::write(dir.join("new.key"), &new).unwrap();
    let out = custos(
        &dir,
        &["keys", "rotate-master", "--new-key-file", "new.key"],
    );
    assert!(out.status.success(), "{out:?}");
    let now = std::fs::read_to_string(dir.join("custos-data/master.key")).unwrap();
    assert_ne!(now, old);
    assert_eq!(now.trim(), new);
    let out = custos(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The old key no longer opens the vault.
    std::fs::write(dir.join("custos-data/master.key"), old).unwrap();
    let out = custos(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not open this vault"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The head `audit verify` prints (`SEQ:HASH`), from its output.
fn printed_head(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let head = stdout
        .split_whitespace()
        .find(|w| w.contains(':') && w.len() > 64)
        .unwrap_or_else(|| panic!("no head in {stdout:?}"));
    head.to_string()
}

#[test]
fn audit_verify_head_detects_a_cut_or_rewritten_ledger() {
    let dir = temp("head");
    let verify = |head: Option<&str>| {
        let mut args = vec!["audit", "verify"];
        args.extend(head.iter().flat_map(|h| ["--head", h]));
        custos(&dir, &args)
    };
    // Each key made is one ledger entry, in a block of its own.
    for _ in 0..3 {
        let out = custos(&dir, &["keys", "create", "--accessor", "meeting-center"]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = verify(None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let head = printed_head(&out);
    assert!(head.starts_with("3:"), "{head}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("--head {head}")));

    // The ledger grows: the head kept is still in it.
    for _ in 0..2 {
        let out = custos(&dir, &["keys", "create", "--accessor", "meeting-center"]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = verify(Some(&head));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact and holds the head given"));
    assert!(printed_head(&out).starts_with("5:"));

    // Another hash at its seq: the ledger was rewritten up to it.
    let other = format!("3:{}", "ab".repeat(32));
    let out = verify(Some(&other));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ledger rewritten: entry 3"),
        "{out:?}"
    );

    // Its tail cut, back past the head: intact as far as the database tells, not with it.
    let db = rusqlite::Connection::open(dir.join("custos-data/ledger.db")).unwrap();
    db.execute("DELETE FROM ledger_blocks WHERE first_seq >= 3", [])
        .unwrap();
    drop(db);
    let out = verify(None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(printed_head(&out).starts_with("2:"));
    let out = verify(Some(&head));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ledger cut: it holds 2 entries, not the head given"),
        "{out:?}"
    );
    assert!(stdout.contains(&head), "{out:?}");

    // A head that is not `SEQ:HASH` is a bad argument.
    let out = verify(Some("3:xyz"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`SEQ:HASH`"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 12, item 4: the operator registers a legal instrument (`custos instruments
/// register`, the id alone on stdout) and shows it; a bad field or an unknown id is an
/// error naming it, exit 2; the registration is ledgered and the ledger still verifies.
#[test]
fn instruments_register_prints_the_id_and_show_lists_the_fields() {
    let dir = temp("instruments");
    let data = dir.join("custos-data");
    // A person to cover, collected through the library (the CLI collects no one).
    let subject = attendee(&data, &[("contact.email", "ida@law.example")]);
    let hash = "c0".repeat(32);
    let register = |subject: &str, expires: &str| {
        custos(
            &dir,
            &[
                "instruments",
                "register",
                "--kind",
                "purchaser_authority",
                "--issuer",
                "Acme Corp, verified by WebEx legal",
                "--issued",
                "2026-03-01",
                "--document-sha256",
                &hash,
                "--subject",
                subject,
                "--category",
                "contact.email,contact.name",
                "--expires",
                expires,
            ],
        )
    };
    let out = register(&subject, "2099-01-01T00:00:00+01:00");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout.trim().to_string();
    assert_eq!(stdout.lines().count(), 1);
    assert_eq!(id.len(), 36, "{id}");

    let out = custos(&dir, &["instruments", "show", &id]);
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8(out.stdout).unwrap();
    for line in [
        format!("id: {id}"),
        "kind: purchaser_authority".into(),
        format!("subjects: {subject}"),
        "categories: contact.name,contact.email".into(),
        "expires: 2098-12-31T23:00:00Z".into(),
        "registered_by: operator".into(),
    ] {
        assert!(shown.lines().any(|l| l == line), "`{line}` in\n{shown}");
    }

    // An unknown subject, a past expiry, an unknown id: exit 2, the field named.
    let out = register(
        "00000000-0000-7000-8000-000000000000",
        "2099-01-01T00:00:00Z",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("subjects[0]"),
        "{out:?}"
    );
    let out = register(&subject, "2001-01-01T00:00:00Z");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expires"),
        "{out:?}"
    );
    let out = custos(
        &dir,
        &[
            "instruments",
            "show",
            "00000000-0000-7000-8000-000000000000",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());

    let out = custos(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let db = rusqlite::Connection::open(data.join("custos.db")).unwrap();
    let covered: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM instrument_subjects WHERE instrument = ?1 AND subject = ?2",
            [&id, &subject],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(covered, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 15: a checkpoint kept outside the database (`audit checkpoint`) is extended by the
/// ledger as it grows (`audit verify --checkpoint`), and the check fails once a block is
/// rewritten — even with the chain recomputed after it — or the tail cut, tree and all.
#[test]
fn audit_verify_checkpoint_detects_a_cut_or_rewritten_ledger() {
    let dir = temp("checkpoint");
    let key = || {
        let out = custos(&dir, &["keys", "create", "--accessor", "meeting-center"]);
        assert!(out.status.success(), "{out:?}");
    };
    for _ in 0..3 {
        key();
    }
    let out = custos(&dir, &["audit", "checkpoint"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let note = String::from_utf8(out.stdout).unwrap();
    assert!(note.lines().nth(1) == Some("3"), "{note}");
    std::fs::write(dir.join("kept.note"), &note).unwrap();
    // The verifier key the note is signed with, and a proof printed for an entry.
    let out = custos(&dir, &["audit", "key"]);
    let vkey = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        custos_vault::tlog::verify_note(&note, vkey.trim()).unwrap(),
        note.split("\n\n").next().unwrap().to_string() + "\n"
    );
    let out = custos(&dir, &["audit", "prove", "2"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (proof["seq"].as_u64(), proof["tree_size"].as_u64()),
        (Some(2), Some(3))
    );
    let out = custos(&dir, &["audit", "prove", "9"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    for _ in 0..2 {
        key();
    }
    let verify = || custos(&dir, &["audit", "verify", "--checkpoint", "kept.note"]);
    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ledger extends the checkpoint: 3 entries"),
        "{out:?}"
    );

    // A block rewritten: the chain breaks there.
    let db = rusqlite::Connection::open(dir.join("custos-data/ledger.db")).unwrap();
    let body: Vec<u8> = db
        .query_row(
            "SELECT entries FROM ledger_blocks WHERE first_seq = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE ledger_blocks SET entries = substr(entries, 1, 5) \
         || (CASE WHEN substr(entries, 6, 1) = X'41' THEN X'42' ELSE X'41' END) \
         || substr(entries, 7) WHERE first_seq = 2",
        [],
    )
    .unwrap();
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broken at entry 2"),
        "{out:?}"
    );
    db.execute(
        "UPDATE ledger_blocks SET entries = ?1 WHERE first_seq = 2",
        [&body],
    )
    .unwrap();
    assert_eq!(verify().status.code(), Some(0));

    // The tail cut back past the checkpoint, its tree with it: the checkpoint names entries
    // the ledger no longer holds.
    db.execute_batch("DELETE FROM ledger_blocks WHERE first_seq >= 3; DELETE FROM ledger_tiles;")
        .unwrap();
    drop(db);
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ledger cut"),
        "{out:?}"
    );
    // Not a note: a bad argument.
    std::fs::write(dir.join("bad.note"), "nothing here").unwrap();
    let out = custos(&dir, &["audit", "verify", "--checkpoint", "bad.note"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13, item 6: the operator exports (JSON and HTML), corrects, deactivates and
/// erases a subject with `custos subjects …`; each is ledgered with the operator as actor,
/// a category not held is refused naming its field, and after erasure nothing exports.
#[test]
fn subjects_export_correct_deactivate_erase() {
    let dir = temp("subjects");
    let data = dir.join("custos-data");
    let subject = attendee(
        &data,
        &[
            ("contact.email", "una@acme.example"),
            ("contact.name", "Una <b>Bold</b>"),
        ],
    );
    let out = custos(&dir, &["subjects", "export", &subject]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "custos-export/1");
    assert_eq!(doc["subject"]["id"], subject.as_str());
    let value = |doc: &serde_json::Value, c: &str| {
        doc["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["category"] == c)
            .map(|v| v["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        value(&doc, "contact.email").as_deref(),
        Some("una@acme.example")
    );
    let entries = doc["ledger"]["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["action"] == "collect"));
    assert!(entries.iter().any(|e| e["proof"].is_array()), "{entries:?}");
    // The page escapes what it shows.
    let out = custos(&dir, &["subjects", "export", &subject, "--html"]);
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.contains("Una &lt;b&gt;Bold&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>Bold"));
    // Correction: a category not held is refused, naming it; a held one is replaced.
    let out = custos(
        &dir,
        &[
            "subjects",
            "correct",
            &subject,
            "--set",
            "contact.phone=+1 555",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("data.contact.phone"),
        "{out:?}"
    );
    let out = custos(
        &dir,
        &[
            "subjects",
            "correct",
            &subject,
            "--set",
            "contact.email=una@new.example",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = custos(&dir, &["subjects", "export", &subject]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        value(&doc, "contact.email").as_deref(),
        Some("una@new.example")
    );
    let last = doc["ledger"]["entries"].as_array().unwrap();
    assert!(last.iter().any(|e| e["action"] == "correct"
        && e["actor"] == "operator"
        && e["categories"] == serde_json::json!(["contact.email"])));
    // Deactivate, then erase; nothing exports after.
    let out = custos(&dir, &["subjects", "deactivate", &subject]);
    assert!(out.status.success(), "{out:?}");
    let out = custos(&dir, &["subjects", "erase", &subject]);
    assert!(out.status.success(), "{out:?}");
    let out = custos(&dir, &["subjects", "export", &subject]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let out = custos(&dir, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13: the operator handles people's requests (`custos requests …`) with the same
/// checks and ledger entries as staff over HTTP: create prints the id alone; list, show,
/// verify, complete (an erasure erases) and refuse; a bad field is named, exit 2; a second
/// completion is refused; the ledger still verifies.
#[test]
fn requests_are_created_listed_completed_and_refused_by_the_operator() {
    let dir = temp("requests");
    let data = dir.join("custos-data");
    let subject = attendee(&data, &[("contact.email", "jo@req.example")]);
    let create = |kind: &str, channel: &str, verification: &str| {
        custos(
            &dir,
            &[
                "requests",
                "create",
                "--kind",
                kind,
                "--subject",
                &subject,
                "--channel",
                channel,
                "--verification",
                verification,
            ],
        )
    };
    // Bad fields: named, exit 2, nothing stored.
    let out = create("erasure", "email", "email_from_address_on_file");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("kind: unknown request kind; did you mean `erase`?"),
        "{out:?}"
    );
    let out = create("erase", "phone", "signed_in");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verification:"),
        "{out:?}"
    );

    let out = create("erase", "phone", "knowledge_based");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let id = stdout.trim().to_string();
    assert_eq!(id.len(), 36, "{id}");

    let out = custos(&dir, &["requests", "list"]);
    assert!(out.status.success(), "{out:?}");
    let listed = String::from_utf8(out.stdout).unwrap();
    let line = listed.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("\terase\treceived\t") && line.ends_with(&subject),
        "{line}"
    );
    let out = custos(&dir, &["requests", "list", "--state", "overdue"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");

    let out = custos(&dir, &["requests", "complete", &id]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verify the requester"),
        "{out:?}"
    );
    assert!(custos(&dir, &["requests", "verify", &id]).status.success());
    let out = custos(&dir, &["requests", "complete", &id]);
    assert!(out.status.success(), "{out:?}");
    let out = custos(&dir, &["requests", "complete", &id]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("closed"),
        "{out:?}"
    );

    let out = custos(&dir, &["requests", "show", &id]);
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8(out.stdout).unwrap();
    for l in [
        format!("id: {id}"),
        "kind: erase".into(),
        format!("subject: {subject}"),
        "channel: phone".into(),
        "verification: knowledge_based".into(),
        "state: completed".into(),
        "created_by: operator".into(),
    ] {
        assert!(shown.lines().any(|x| x == l), "`{l}` in\n{shown}");
    }
    // The erasure happened: the person is found no more.
    {
        let policy = std::sync::Arc::new(custos_policy::Policy::builtin().unwrap());
        let vault = custos_vault::Vault::open_embedded(&data, policy).unwrap();
        assert_eq!(
            vault
                .find_by_identifier("contact.email", "jo@req.example")
                .unwrap(),
            None
        );
    }

    // Refused, for a reason from the set only.
    let out = custos(
        &dir,
        &[
            "requests",
            "create",
            "--kind",
            "california-disclosures",
            "--channel",
            "letter",
            "--verification",
            "document_checked",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let cal = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = custos(&dir, &["requests", "refuse", &cal, "--reason", "busy"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = custos(
        &dir,
        &["requests", "refuse", &cal, "--reason", "no_data_held"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = custos(&dir, &["requests", "list", "--state", "all"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    let out = custos(&dir, &["requests", "list"]);
    assert!(out.stdout.is_empty(), "{out:?}");

    let out = custos(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `custos receipt verify`: a receipt the vault signed verifies against the JWKS the server
/// publishes and against the vault's own keys; one changed byte, or another vault's keys,
/// exit 1 with a clear message.
#[test]
fn receipt_verify_checks_a_receipt_offline() {
    let dir = temp("receipt");
    let out = custos(&dir, &["keys", "create", "--accessor", "website"]);
    assert!(out.status.success(), "{out:?}");
    let (receipt, subject, keys) = {
        let policy = std::sync::Arc::new(custos_policy::Policy::builtin().unwrap());
        let v = custos_vault::Vault::open_location(
            &dir.join("custos-data"),
            None,
            std::sync::Arc::clone(&policy),
            false,
        )
        .unwrap();
        let id = v
            .collect(
                "website",
                &custos_vault::CollectionInput {
                    service: "website".into(),
                    role: "account-holder".into(),
                    purposes: vec!["account".into()],
                    notice: policy.version().into(),
                    age: Some(30),
                    tenant: None,
                    data: [("contact.email".to_string(), "rita@example.com".to_string())]
                        .into_iter()
                        .collect(),
                },
            )
            .unwrap();
        let c = v
            .record_consent(
                "website",
                &id,
                &custos_vault::ConsentInput {
                    purpose: "newsletters".into(),
                    recipient: None,
                    given: true,
                    method: "double_opt_in".into(),
                    notice: policy.version().into(),
                },
            )
            .unwrap();
        let keys = custos_vault::jwks(&v.receipt_keys()).to_string();
        (c.receipt, id.as_str().to_string(), keys)
    };
    std::fs::write(dir.join("receipt.jws"), &receipt).unwrap();
    std::fs::write(dir.join("jwks.json"), &keys).unwrap();
    for args in [
        &["receipt", "verify", "receipt.jws", "--jwks", "jwks.json"][..],
        &["receipt", "verify", "receipt.jws"][..],
    ] {
        let out = custos(&dir, args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("piiPrincipalId: {subject}")),
            "{text}"
        );
        assert!(text.contains("collectionMethod: double_opt_in"), "{text}");
        assert!(!text.contains("rita@example.com"));
    }
    // One changed byte of the payload.
    let mut b = receipt.clone().into_bytes();
    let at = receipt.find('.').unwrap() + 10;
    b[at] = if b[at] == b'a' { b'b' } else { b'a' };
    std::fs::write(dir.join("changed.jws"), &b).unwrap();
    let out = custos(
        &dir,
        &["receipt", "verify", "changed.jws", "--jwks", "jwks.json"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not verify"), "{err}");
    // Another vault's keys.
    let other = temp("receipt_other");
    assert!(
        custos(&other, &["keys", "create", "--accessor", "website"])
            .status
            .success()
    );
    let out = custos(
        &dir,
        &[
            "receipt",
            "verify",
            "receipt.jws",
            "--data",
            other.join("custos-data").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key"));
}

#[test]
fn mailings_send_queues_the_operators_mailing_with_its_unsubscribe_headers() {
    let dir = temp("mailings");
    let data = dir.join("custos-data");
    {
        let policy = std::sync::Arc::new(custos_policy::Policy::builtin().unwrap());
        let vault = custos_vault::Vault::open_embedded(&data, policy).unwrap();
        let input = custos_vault::CollectionInput {
            service: "website".into(),
            role: "account-holder".into(),
            purposes: vec!["account".into(), "marketing.announcements".into()],
            notice: "2010-04-24".into(),
            age: Some(30),
            data: [("contact.email", "rita@example.org")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        vault.collect("website", &input).unwrap();
    }
    std::fs::write(dir.join("news.txt"), "Our news.").unwrap();
    let send = |purpose: &str| {
        custos(
            &dir,
            &[
                "mailings",
                "send",
                "--purpose",
                purpose,
                "--subject",
                "News",
                "--text-file",
                "news.txt",
                "--public-url",
                "https://privacy.example.com",
            ],
        )
    };
    let out = send("marketing.announcements");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("recipients 1"), "{stdout}");
    // A purpose people cannot leave: refused, naming the field.
    let out = send("account");
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("purpose"), "{stderr}");
    let policy = std::sync::Arc::new(custos_policy::Policy::builtin().unwrap());
    let vault = custos_vault::Vault::open_embedded(&data, policy).unwrap();
    let mails = vault.claim_mail(10).unwrap();
    assert_eq!(mails.len(), 1);
    let m = &mails[0].mail;
    assert_eq!(m.to, "rita@example.org");
    assert!(
        m.headers
            .iter()
            .any(|(n, v)| n == "List-Unsubscribe"
                && v.starts_with("<https://privacy.example.com/u/"))
    );
    assert!(
        m.headers
            .iter()
            .any(|(n, v)| n == "List-Unsubscribe-Post" && v == "List-Unsubscribe=One-Click")
    );
    assert!(m.text.contains("unsubscribe@webex.com"));
    drop(vault);
    let _ = std::fs::remove_dir_all(&dir);
}
