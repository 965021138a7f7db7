//! The ledger as a transparency log (issue 15), on both backends: the Merkle tree kept with
//! the blocks, signed checkpoints, inclusion and consistency proofs, and a checkpoint kept
//! outside the database that catches a ledger cut or rewritten.

use custos_tlog::{Checkpoint, leaf_hash, verify_consistency, verify_inclusion, verify_note};
use custos_vault::ledger::{entry_hash, tree::unhex32};

use crate::cases::read;
use crate::support::Harness;
use crate::support::attendee;

/// Entries: a collection and reads, `n` in all at least.
fn fill(h: &Harness, reads: usize) {
    let v = h.vault();
    let id = v
        .collect("meeting-center", &attendee("Tess", "tess@example.com"))
        .unwrap();
    for _ in 0..reads {
        v.read("meeting-center", &id, &read("service.meetings"))
            .unwrap();
    }
}

pub fn ledger_transparency_log(mut h: Harness) {
    // More than a tile (256 entries): the first ones under a stored level-1 hash, the last
    // ones past the stored tiles; every leaf hash is read from the blocks.
    fill(&h, 300);
    let v = h.vault();
    let n = v.verify_ledger().unwrap().entries;
    assert_eq!(v.ledger_tree_size().unwrap(), n);
    // The checkpoint: a C2SP body in a note signed by the vault's key.
    let head = v.ledger_checkpoint().unwrap();
    assert_eq!(head.size, n);
    // Deterministic: the cached checkpoint is the one signed again.
    assert_eq!(v.ledger_checkpoint_cached().unwrap(), head);
    assert_eq!(v.ledger_checkpoint_cached().unwrap(), head);
    let vkey = v.ledger_verifier_key();
    let body = verify_note(&head.note, &vkey).unwrap();
    let cp = Checkpoint::parse(body).unwrap();
    assert_eq!(
        (cp.origin.as_str(), cp.size, cp.root),
        (v.ledger_origin().as_str(), n, head.root)
    );
    // The root is the one recomputed from the entries themselves.
    let full = v.verify_ledger_tree(None, Some(n)).unwrap();
    assert!(full.ok());
    assert_eq!(full.root, head.root);
    assert_eq!(full.root_at, Some((n, head.root)));
    // Every entry is in it: the proof leads from its own hash to the root.
    let entries = h.ledger_entries();
    for e in &entries {
        let p = v.ledger_inclusion(e.seq, None).unwrap();
        assert_eq!(p.entry_hash, e.hash);
        let leaf = leaf_hash(&unhex32(e.hash.as_bytes()).unwrap());
        assert_eq!(p.leaf_hash, leaf);
        verify_inclusion(e.seq - 1, n, &leaf, &p.proof, &head.root).unwrap();
        // Not as another entry.
        if e.seq > 1 {
            assert!(verify_inclusion(e.seq - 2, n, &leaf, &p.proof, &head.root).is_err());
        }
    }
    // The log runs on; the later tree extends the checkpoint kept.
    fill(&h, 25);
    let v = h.vault();
    let later = v.ledger_checkpoint().unwrap();
    assert_eq!(v.ledger_checkpoint_cached().unwrap(), later);
    assert!(later.size > n);
    let c = v.ledger_consistency(n, None).unwrap();
    assert_eq!(
        (c.from, c.to, c.from_root, c.to_root),
        (n, later.size, head.root, later.root)
    );
    verify_consistency(n, later.size, &head.root, &later.root, &c.proof).unwrap();
    let checked = v.check_checkpoint(&head.note).unwrap();
    assert_eq!((checked.size, checked.root), (later.size, later.root));
    // A proof in an older tree, and of an older tree.
    let p = v.ledger_inclusion(3, Some(n)).unwrap();
    verify_inclusion(2, n, &p.leaf_hash, &p.proof, &head.root).unwrap();
    assert_eq!(v.ledger_root(n).unwrap(), head.root);
    // Bad requests, each with its own code.
    let code = |r: custos_vault::Result<()>| r.unwrap_err().code();
    let size = later.size;
    assert_eq!(
        code(v.ledger_inclusion(0, None).map(drop)),
        "seq_out_of_range"
    );
    assert_eq!(
        code(v.ledger_inclusion(size + 1, None).map(drop)),
        "seq_out_of_range"
    );
    assert_eq!(
        code(v.ledger_inclusion(5, Some(4)).map(drop)),
        "seq_out_of_range"
    );
    assert_eq!(
        code(v.ledger_inclusion(1, Some(size + 1)).map(drop)),
        "tree_size_too_large"
    );
    assert_eq!(
        code(v.ledger_consistency(5, Some(4)).map(drop)),
        "sizes_out_of_order"
    );
    assert_eq!(
        code(v.ledger_consistency(1, Some(size + 1)).map(drop)),
        "tree_size_too_large"
    );
    // A checkpoint not signed by this vault, or altered, is refused.
    let forged = head
        .note
        .replacen(&format!("\n{n}\n"), &format!("\n{}\n", n - 1), 1);
    assert_eq!(
        code(v.check_checkpoint(&forged).map(drop)),
        "checkpoint_signature"
    );
    assert_eq!(
        code(v.check_checkpoint("nonsense").map(drop)),
        "invalid_checkpoint"
    );

    // History rewritten, the chain recomputed after the change (as one holding the
    // database could): the chain checks out, but not against the checkpoint kept.
    let k = 5;
    let before = h.ledger_entries();
    h.edit_ledger(|es| {
        let mut prev = es[usize::try_from(k - 2).unwrap()].hash.clone();
        for e in es.iter_mut().filter(|e| e.seq >= k) {
            if e.seq == k {
                e.draft.purpose = "service.billing".into();
            }
            e.prev_hash = prev.clone();
            e.hash = entry_hash(e.seq, &e.draft, &prev);
            prev = e.hash.clone();
        }
    });
    let rewritten = v.verify_ledger_tree(None, Some(n)).unwrap();
    assert!(
        rewritten.ok(),
        "the re-chained ledger verifies on its own: {rewritten:?}"
    );
    assert_ne!(rewritten.root_at, Some((n, head.root)));
    // …and the stored tree (entry 5 is under a stored level-1 hash) no longer matches them.
    assert_ne!(rewritten.root, v.ledger_root(rewritten.entries).unwrap());
    h.edit_ledger(|es| *es = before);

    // The tree of a ledger kept before it is built on open, with the same root.
    h.close();
    h.exec("DELETE FROM ledger_tiles");
    let v = h.open(h.kek.clone()).unwrap();
    assert_eq!(v.ledger_tree_size().unwrap(), size);
    assert_eq!(v.ledger_root(size).unwrap(), later.root);
    assert_eq!(v.ledger_root(n).unwrap(), head.root);
    drop(v);

    // The tail cut: the checkpoint names entries the ledger no longer has.
    let last = h.count("SELECT MAX(first_seq) FROM ledger_blocks");
    h.exec(&format!(
        "DELETE FROM ledger_blocks WHERE first_seq = {last}; DELETE FROM ledger_tiles;"
    ));
    let v = h.open(h.kek.clone()).unwrap();
    let kept = v.ledger_checkpoint().unwrap();
    assert!(kept.size < size);
    assert_eq!(
        code(v.check_checkpoint(&later.note).map(drop)),
        "checkpoint_past_end"
    );
    let cut = v.verify_ledger_tree(None, Some(size)).unwrap();
    assert_eq!(cut.root_at, None);
}

/// Two stores appending to one ledger in turn (two servers on one PostgreSQL, or a server
/// and the CLI on one data directory): each finds the other's appends when its edge kept in
/// memory is stale, reads the tree again, and the stored tree stays the one of the entries,
/// across tile boundaries.
pub fn ledger_tree_shared_by_two_writers(h: Harness) {
    use custos_vault::ledger::Draft;
    let a = h.store().unwrap();
    let b = h.store().unwrap();
    // Under 1,000 entries: no chain checkpoint falls due (none is signed here).
    let none = |_: u64, _: &str| None;
    let draft = |who: &str, i: usize| Draft {
        time_ms: i64::try_from(i).unwrap(),
        actor: who.into(),
        action: "read".into(),
        ..Draft::default()
    };
    let mut i = 0;
    for (n, round) in [1usize, 7, 300, 2, 255, 1, 290].into_iter().zip(0..) {
        let (store, who) = if round % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let drafts: Vec<Draft> = (0..n).map(|k| draft(who, i + k)).collect();
        i += n;
        store.append_ledger(&drafts, &none).unwrap();
    }
    let v = h.vault();
    let full = v.verify_ledger_tree(None, None).unwrap();
    assert!(full.ok(), "{full:?}");
    let size = v.ledger_tree_size().unwrap();
    assert_eq!(size, full.entries);
    assert_eq!(v.ledger_root(size).unwrap(), full.root);
    // Each store serves the same tree.
    for s in [&a, &b] {
        let (_, _, root) =
            custos_vault::ledger::tree::prove_inclusion(&**s, size / 2, size).unwrap();
        assert_eq!(root, full.root);
    }
}

/// A store written before level-0 tiles left the table (they were stored in full, 8 KiB per
/// 256 entries): it opens, its level-0 rows go in the migration, and its tree — the level-1
/// tiles it kept and the entries' hashes from the blocks — has the same root and proofs. A
/// level-0 row put there later is never read.
pub fn ledger_tree_of_a_store_with_level0_tiles(mut h: Harness) {
    fill(&h, 600);
    let v = h.vault();
    let head = v.ledger_checkpoint().unwrap();
    assert!(head.size > 512);
    let stored = h.count("SELECT COUNT(*) FROM ledger_tiles WHERE level > 0");
    assert!(stored >= 1);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM ledger_tiles WHERE level = 0"),
        0
    );
    h.close();
    // As the old writer left it: level-0 tiles (here garbage: they must not be trusted),
    // the schema as it was before the migration that stopped storing them (SQLite's 8th,
    // PostgreSQL's 7th; the later ones, idempotent, run again too).
    let (meta, key, before_level0_migration) = if h.is_sqlite() {
        ("meta", "schema_version", 7)
    } else {
        ("custos_meta", "schema_version", 6)
    };
    let version = h.count(&format!(
        "SELECT CAST(value AS BIGINT) FROM {meta} WHERE key = '{key}'"
    ));
    assert!(version > before_level0_migration);
    let junk = "00".repeat(32 * 256);
    let blob = |i: u32| {
        if h.is_sqlite() {
            format!("INSERT INTO ledger_tiles (level, idx, hashes) VALUES (0, {i}, x'{junk}');")
        } else {
            format!(
                "INSERT INTO ledger_tiles (level, idx, hashes) VALUES (0, {i}, '\\x{junk}'::bytea);"
            )
        }
    };
    // The schema just before the migration that dropped level-0 tiles (SQLite's 8th,
    // PostgreSQL's 7th); the later migrations are applied again too, as every migration
    // may be.
    h.exec(&format!(
        "{}{}UPDATE {meta} SET value = '{}' WHERE key = '{key}';",
        blob(0),
        blob(1),
        before_level0_migration
    ));
    let v = h.open(h.kek.clone()).unwrap();
    assert_eq!(
        h.count("SELECT COUNT(*) FROM ledger_tiles WHERE level = 0"),
        0
    );
    assert_eq!(
        h.count(&format!(
            "SELECT CAST(value AS BIGINT) FROM {meta} WHERE key = '{key}'"
        )),
        version
    );
    let check = |v: &custos_vault::Vault| {
        assert_eq!(v.ledger_tree_size().unwrap(), head.size);
        assert_eq!(v.ledger_root(head.size).unwrap(), head.root);
        let full = v.verify_ledger_tree(None, Some(head.size)).unwrap();
        assert!(full.ok(), "{full:?}");
        assert_eq!(full.root_at, Some((head.size, head.root)));
        for seq in [1, 200, 256, 257, 300, 512, head.size] {
            let p = v.ledger_inclusion(seq, None).unwrap();
            verify_inclusion(seq - 1, head.size, &p.leaf_hash, &p.proof, &head.root).unwrap();
        }
        for from in [1, 255, 256, 400] {
            let c = v.ledger_consistency(from, None).unwrap();
            verify_consistency(from, head.size, &c.from_root, &head.root, &c.proof).unwrap();
        }
        v.check_checkpoint(&head.note).unwrap();
    };
    check(&v);
    drop(v);
    // A level-0 row written after the migration is ignored too.
    h.exec(&blob(0));
    let v = h.open(h.kek.clone()).unwrap();
    check(&v);
    // …and the log runs on over it.
    let id = v
        .collect("meeting-center", &attendee("Uma", "uma@example.com"))
        .unwrap();
    for _ in 0..300 {
        v.read("meeting-center", &id, &read("service.meetings"))
            .unwrap();
    }
    let later = v.ledger_checkpoint().unwrap();
    let c = v.ledger_consistency(head.size, None).unwrap();
    verify_consistency(head.size, later.size, &head.root, &later.root, &c.proof).unwrap();
}
