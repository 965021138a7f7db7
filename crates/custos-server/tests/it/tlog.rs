//! The ledger as a transparency log over HTTP (issue 15): the keyless checkpoint and key, the
//! proofs and their errors — and the interoperability test: what Custos serves verifies with
//! independent implementations of C2SP signed notes and checkpoints (`signed_note`,
//! `tlog_tiles`) and of RFC 6962/9162 proofs (`tlog_tiles`, a port of Go's sumdb `tlog`),
//! the leaf hashes computed by them from the entries' hashes.

use custos_vault::tlog::{hash_from_base64, verify_consistency, verify_inclusion, verify_note};
use serde_json::Value;
use signed_note::{Note, StandardVerifier, VerifierList};

use crate::support::{Backend, TestApp};

fn hash(v: &Value) -> [u8; 32] {
    hash_from_base64(v.as_str().unwrap()).unwrap()
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array().unwrap().iter().map(hash).collect()
}

/// Reads between collections and reads, so the tree has a few dozen entries.
async fn grow(app: &TestApp, n: usize) {
    let key = Some(app.key("meeting-center"));
    let id = app.attendee("Ada", "ada@example.com").await;
    for _ in 0..n {
        let r = app
            .get(&format!("/v1/subjects/{id}?purpose=service.meetings"), key)
            .await;
        assert_eq!(r.status, 200);
    }
}

/// `(note, verifier key)` from the keyless checkpoint route.
async fn checkpoint(app: &TestApp) -> (String, String) {
    let r = app.get("/v1/ledger/checkpoint", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let vkey = r.header("custos-ledger-key").unwrap().to_string();
    (r.body.clone(), vkey)
}

async fn proofs_verify_with_independent_implementations(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    grow(&app, 20).await;
    let key = Some(app.key("meeting-center"));
    let (note, vkey) = checkpoint(&app).await;
    // The key route serves the same key.
    let r = app.get("/v1/ledger/key", None).await;
    assert_eq!(r.body.trim(), vkey);

    // Our own verifier…
    let body = verify_note(&note, &vkey).unwrap();
    // …and an independent one: `signed_note` checks the signature and key id.
    let parsed = Note::from_bytes(note.as_bytes()).unwrap();
    let verifier = StandardVerifier::new(&vkey).unwrap();
    let (ok, _) = parsed
        .verify(&VerifierList::new(vec![Box::new(verifier.clone())]))
        .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(parsed.text(), body.as_bytes());
    // A note altered in its text fails there too.
    let altered = note.replacen("\n", "x\n", 1);
    let altered = Note::from_bytes(altered.as_bytes()).unwrap();
    assert!(
        altered
            .verify(&VerifierList::new(vec![Box::new(verifier)]))
            .is_err()
    );
    // `tlog_tiles` reads the C2SP checkpoint body.
    let cp = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    let size = cp.size();
    assert!(size > 20, "{size}");
    let root = tlog_tiles::Hash(cp.hash().0);

    // Every entry's inclusion proof, checked by `tlog_tiles`, the leaf hashed by it from
    // the entry's hash (RFC 6962: SHA-256(0x00 || the 32 bytes)).
    for seq in 1..=size {
        let r = app
            .get(
                &format!("/v1/ledger/proof/inclusion?seq={seq}&size={size}"),
                key,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let p = r.json();
        assert_eq!(p["leaf_index"], seq - 1);
        let entry = p["entry_hash"].as_str().unwrap();
        let raw: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&entry[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let leaf = tlog_tiles::record_hash(&raw);
        assert_eq!(leaf.0, hash(&p["leaf_hash"]));
        assert_eq!(hash(&p["root_hash"]), root.0);
        let proof: Vec<tlog_tiles::Hash> = hashes(&p["proof"])
            .into_iter()
            .map(tlog_tiles::Hash)
            .collect();
        tlog_tiles::check_record(&proof, size, root, seq - 1, leaf).unwrap();
        // Not for another leaf.
        let other = tlog_tiles::record_hash(b"another entry");
        assert!(tlog_tiles::check_record(&proof, size, root, seq - 1, other).is_err());
        verify_inclusion(seq - 1, size, &leaf.0, &hashes(&p["proof"]), &root.0).unwrap();
    }

    // The ledger runs on; a later checkpoint extends the kept one, by a consistency proof
    // `tlog_tiles` checks.
    grow(&app, 7).await;
    let (later, _) = checkpoint(&app).await;
    let later_cp =
        tlog_tiles::Checkpoint::from_bytes(Note::from_bytes(later.as_bytes()).unwrap().text())
            .unwrap();
    let to = later_cp.size();
    assert!(to > size);
    for from in [1, size / 2, size, to] {
        let r = app
            .get(
                &format!("/v1/ledger/proof/consistency?from={from}&to={to}"),
                key,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let p = r.json();
        assert_eq!(hash(&p["to_root"]), later_cp.hash().0);
        let proof: Vec<tlog_tiles::Hash> = hashes(&p["proof"])
            .into_iter()
            .map(tlog_tiles::Hash)
            .collect();
        let from_root = tlog_tiles::Hash(hash(&p["from_root"]));
        tlog_tiles::check_tree(
            &proof,
            to,
            tlog_tiles::Hash(later_cp.hash().0),
            from,
            from_root,
        )
        .unwrap();
        verify_consistency(
            from,
            to,
            &from_root.0,
            &later_cp.hash().0,
            &hashes(&p["proof"]),
        )
        .unwrap();
        if from == size {
            assert_eq!(from_root, root);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_verify_with_independent_implementations_on_sqlite() {
    proofs_verify_with_independent_implementations(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_verify_with_independent_implementations_on_postgres() {
    proofs_verify_with_independent_implementations(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_requests_out_of_range_name_their_field() {
    let app = TestApp::spawn().await;
    grow(&app, 3).await;
    let key = Some(app.key("meeting-center"));
    let size: u64 = checkpoint(&app)
        .await
        .0
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    for (query, status, code, field) in [
        (
            format!("inclusion?seq={}", size + 1),
            422,
            "seq_out_of_range",
            "seq",
        ),
        (
            "inclusion?seq=3&size=2".into(),
            422,
            "seq_out_of_range",
            "seq",
        ),
        (
            format!("inclusion?seq=1&size={}", size + 1),
            422,
            "tree_size_too_large",
            "size",
        ),
        ("inclusion?seq=0".into(), 400, "invalid_query", "seq"),
        ("inclusion?seq=x".into(), 400, "invalid_query", "seq"),
        ("inclusion".into(), 400, "missing_field", "seq"),
        (
            "inclusion?seq=1&other=1".into(),
            400,
            "invalid_query",
            "other",
        ),
        (
            "consistency?from=3&to=2".into(),
            422,
            "sizes_out_of_order",
            "from",
        ),
        (
            format!("consistency?from=1&to={}", size + 1),
            422,
            "tree_size_too_large",
            "to",
        ),
        ("consistency?from=-1".into(), 400, "invalid_query", "from"),
        (
            "inclusion?seq=123456789012345678901234567890".into(),
            422,
            "seq_out_of_range",
            "seq",
        ),
        ("consistency".into(), 400, "missing_field", "from"),
    ] {
        let r = app.get(&format!("/v1/ledger/proof/{query}"), key).await;
        let p = r.problem(status, code);
        assert_eq!(p["field"], field, "{query}");
    }
    // The keyless routes need no key; the proofs do.
    let r = app.get("/v1/ledger/proof/inclusion?seq=1", None).await;
    r.problem(401, "missing_api_key");
}
