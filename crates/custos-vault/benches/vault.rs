//! Vault throughput: enforced vs raw reads, bulk collection, erasure of a subject with many
//! records, ledger append and verify. Prints a Markdown table.
//!
//! ```sh
//! cargo bench -p custos-vault --bench vault                      # SQLite in a temp dir
//! CUSTOS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p custos-vault --bench vault                    # and PostgreSQL
//! ```
//!
//! `CUSTOS_BENCH_ONLY` runs one case alone: `collect_many`, `erase` (the erasure of a subject
//! with 100k records, and its purge), `ledger` (the ledger rows) or `verify` (verify over
//! `CUSTOS_BENCH_LEDGER` entries, default 1,000,000, three times).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark fails loudly"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use custos_policy::Policy;
use custos_vault::ledger::{Draft, Ledger};
use custos_vault::{
    CollectionInput, MasterKey, PostgresStore, ReadInput, SqliteStore, Store, SubjectId, Vault,
};

/// The allocator the `custos` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: usize = 8;
/// Concurrency of the raw-vs-enforced comparison and of the wide ledger append.
const READ_THREADS: usize = 64;
/// Appenders of the widest group-commit case.
const LEDGER_THREADS: usize = 256;

fn attendee(i: usize) -> CollectionInput {
    static NOTICE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let notice = NOTICE
        .get_or_init(|| Policy::builtin().unwrap().version().to_string())
        .clone();
    CollectionInput {
        service: "meeting-center".into(),
        role: "attendee".into(),
        purposes: vec!["service.meetings".into()],
        notice,
        age: None,
        tenant: Some("acme".into()),
        data: BTreeMap::from([
            ("contact.name".into(), format!("User {i}")),
            ("contact.email".into(), format!("user{i}@example.com")),
            ("network.ip_address".into(), "192.0.2.7".into()),
        ]),
    }
}

fn per_sec(n: usize, d: Duration) -> String {
    let r = n as f64 / d.as_secs_f64();
    if r >= 1000.0 {
        format!("{:.1} k/s", r / 1000.0)
    } else {
        format!("{r:.0} /s")
    }
}

fn per_op(n: usize, d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6 / n as f64;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

fn row(backend: &str, case: &str, n: usize, d: Duration) {
    println!(
        "| {backend} | {case} | {n} | {} | {} |",
        per_op(n, d),
        per_sec(n, d)
    );
}

fn parallel<F: Fn(usize) + Send + Sync + 'static>(threads: usize, f: F) -> Duration {
    let f = Arc::new(f);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || f(t))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn run(backend: &str, make_store: &dyn Fn() -> Arc<dyn Store>) {
    match std::env::var("CUSTOS_BENCH_ONLY").as_deref() {
        Ok("collect_many") => return bulk(backend, make_store),
        Ok("verify") => return verify_only(backend, make_store),
        Ok("ledger") => {
            return ledger(backend, make_store, "00000000-0000-4000-8000-000000000000");
        }
        Ok("erase") => {
            let policy = Arc::new(Policy::builtin().unwrap());
            let vault = Vault::open(make_store(), policy, MasterKey::generate().unwrap()).unwrap();
            let id = vault.collect("meeting-center", &attendee(0)).unwrap();
            return erase(backend, &vault, &id);
        }
        _ => {}
    }
    let store = make_store();
    let policy = Arc::new(Policy::builtin().unwrap());
    let vault =
        Arc::new(Vault::open(Arc::clone(&store), policy, MasterKey::generate().unwrap()).unwrap());

    // Bulk collection.
    let n = 1000;
    let start = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(vault.collect("meeting-center", &attendee(i)).unwrap());
    }
    row(backend, "collect, 1 thread", n, start.elapsed());
    let per = 250;
    let v = Arc::clone(&vault);
    let d = parallel(THREADS, move |t| {
        for i in 0..per {
            v.collect("meeting-center", &attendee(100_000 + t * per + i))
                .unwrap();
        }
    });
    row(
        backend,
        &format!("collect, {THREADS} threads"),
        THREADS * per,
        d,
    );

    // Raw read: the same rows and key fetched, the same AES-GCM work, no decision, no ledger.
    let read = ReadInput {
        purpose: "service.meetings".into(),
        ..ReadInput::default()
    };
    let key = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
    let nonce = [1u8; 12];
    let sealed: Vec<Vec<u8>> = ["User 1", "user1@example.com", "192.0.2.7"]
        .iter()
        .map(|p| {
            key.encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: p.as_bytes(),
                    aad: b"aad",
                },
            )
            .unwrap()
        })
        .collect();
    let wrapped = key
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &[0u8; 32],
                aad: b"wrap",
            },
        )
        .unwrap();
    let raw_read = {
        let store = Arc::clone(&store);
        let key = key.clone();
        move |id: &SubjectId| {
            let values = store.values(id.as_str()).unwrap();
            let w = store.wrapped_dek(id.as_str()).unwrap().unwrap();
            assert!(!values.is_empty() && !w.is_empty());
            let _dek = key
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &wrapped,
                        aad: b"wrap",
                    },
                )
                .unwrap();
            for s in &sealed {
                let _ = key
                    .decrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: s,
                            aad: b"aad",
                        },
                    )
                    .unwrap();
            }
        }
    };
    let reads = 2000;
    let start = Instant::now();
    for i in 0..reads {
        raw_read(&ids[i % ids.len()]);
    }
    let raw = start.elapsed();
    row(
        backend,
        "raw read (no decision, no ledger), 1 thread",
        reads,
        raw,
    );
    let start = Instant::now();
    for i in 0..reads {
        let r = vault
            .read("meeting-center", &ids[i % ids.len()], &read)
            .unwrap();
        assert_eq!(r.data.len(), 3);
    }
    let enforced = start.elapsed();
    row(
        backend,
        "enforced read (decide + durable ledger), 1 thread",
        reads,
        enforced,
    );
    let per = 500;
    let v = Arc::clone(&vault);
    let ids_shared: Arc<Vec<SubjectId>> = Arc::new(ids.clone());
    let r2 = read.clone();
    let d = parallel(THREADS, move |t| {
        for i in 0..per {
            let id = &ids_shared[(t * per + i) % ids_shared.len()];
            v.read("meeting-center", id, &r2).unwrap();
        }
    });
    row(
        backend,
        &format!("enforced read, {THREADS} threads (group commit)"),
        THREADS * per,
        d,
    );
    println!(
        "| {backend} | enforced / raw, 1 thread | | {:.1}× | |",
        enforced.as_secs_f64() / raw.as_secs_f64()
    );
    // Raw and enforced at the same high concurrency, back to back: group commit shares each
    // fsync among the waiting reads.
    let per = 250;
    let ids_shared: Arc<Vec<SubjectId>> = Arc::new(ids.clone());
    let raw_read = Arc::new(raw_read);
    let (is, rr) = (Arc::clone(&ids_shared), Arc::clone(&raw_read));
    let raw_c = parallel(READ_THREADS, move |t| {
        for i in 0..per {
            rr(&is[(t * per + i) % is.len()]);
        }
    });
    row(
        backend,
        &format!("raw read, {READ_THREADS} threads"),
        READ_THREADS * per,
        raw_c,
    );
    let (v, is, r2) = (Arc::clone(&vault), Arc::clone(&ids_shared), read.clone());
    let enforced_c = parallel(READ_THREADS, move |t| {
        for i in 0..per {
            let r = v
                .read("meeting-center", &is[(t * per + i) % is.len()], &r2)
                .unwrap();
            assert_eq!(r.data.len(), 3);
        }
    });
    row(
        backend,
        &format!("enforced read, {READ_THREADS} threads (group commit)"),
        READ_THREADS * per,
        enforced_c,
    );
    println!(
        "| {backend} | enforced / raw, {READ_THREADS} threads | | {:.2}× | |",
        enforced_c.as_secs_f64() / raw_c.as_secs_f64()
    );
    if std::env::var("CUSTOS_BENCH_ONLY").is_ok_and(|v| v == "reads") {
        return;
    }

    // Erasure of a subject with 100k records.
    erase(backend, &vault, &ids[0]);

    // Ledger alone, on a fresh database.
    drop(vault);
    ledger(backend, make_store, ids[1].as_str());
    bulk(backend, make_store);
}

/// `Ledger::append` and `append_many` alone on a fresh database, then `ledger::verify` over
/// what they appended.
fn ledger(backend: &str, make_store: &dyn Fn() -> Arc<dyn Store>, subject: &str) {
    let store = make_store();
    let signer_seed = custos_vault::crypto::random_secret().unwrap();
    let ledger = Arc::new(
        Ledger::start(
            Arc::clone(&store),
            custos_vault::ledger::CheckpointSigner::new(&signer_seed),
        )
        .unwrap(),
    );
    let draft = Draft {
        time_ms: 1,
        actor: "meeting-center".into(),
        action: "read".into(),
        subject: subject.to_string(),
        purpose: "service.meetings".into(),
        recipient: String::new(),
        categories: "contact.email,contact.name,network.ip_address".into(),
        effect: "permit".into(),
        reasons: "collected_for_purpose".into(),
    };
    let n = 1000;
    let start = Instant::now();
    for _ in 0..n {
        ledger.append(draft.clone()).unwrap();
    }
    row(backend, "ledger append, 1 thread", n, start.elapsed());
    let per = 2000;
    let l = Arc::clone(&ledger);
    let dr = draft.clone();
    let d = parallel(16, move |_| {
        for _ in 0..per {
            l.append(dr.clone()).unwrap();
        }
    });
    row(
        backend,
        "ledger append, 16 threads (group commit)",
        16 * per,
        d,
    );
    let per = 1000;
    let l = Arc::clone(&ledger);
    let dr = draft.clone();
    let d = parallel(READ_THREADS, move |_| {
        for _ in 0..per {
            l.append(dr.clone()).unwrap();
        }
    });
    row(
        backend,
        &format!("ledger append, {READ_THREADS} threads (group commit)"),
        READ_THREADS * per,
        d,
    );
    let per = 250;
    let l = Arc::clone(&ledger);
    let dr = draft.clone();
    let d = parallel(LEDGER_THREADS, move |_| {
        for _ in 0..per {
            l.append(dr.clone()).unwrap();
        }
    });
    row(
        backend,
        &format!("ledger append, {LEDGER_THREADS} threads (group commit)"),
        LEDGER_THREADS * per,
        d,
    );
    let chunk = 1000;
    let n = 100_000;
    let start = Instant::now();
    for _ in 0..n / chunk {
        ledger.append_many(vec![draft.clone(); chunk]).unwrap();
    }
    row(
        backend,
        &format!("ledger append_many, {chunk} per call, 1 thread"),
        n,
        start.elapsed(),
    );
    drop(ledger);
    let start = Instant::now();
    let signer = custos_vault::ledger::CheckpointSigner::new(&signer_seed);
    let v = custos_vault::ledger::verify(&*store, &signer).unwrap();
    let d = start.elapsed();
    assert!(v.ok() && v.checkpoints >= 250, "{v:?}");
    let entries = usize::try_from(v.entries).unwrap();
    row(backend, "ledger verify (chain + checkpoints)", entries, d);
}

/// Erasure of a subject holding 100k records: the call (key destroyed, values deleted, the
/// subject marked erased and queued, the ledger entry durable), and the time until the purge
/// has deleted every record.
fn erase(backend: &str, vault: &Vault, big: &SubjectId) {
    let values: Vec<String> = (0..10_000)
        .map(|i| format!("attended meeting {i}"))
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let start = Instant::now();
    for _ in 0..10 {
        vault
            .append_records(
                "meeting-center",
                big,
                "meeting_attendance",
                &["service.meetings".into()],
                &refs,
            )
            .unwrap();
    }
    row(
        backend,
        "append records, 10k per transaction",
        100_000,
        start.elapsed(),
    );
    let start = Instant::now();
    vault.erase("bench", big).unwrap();
    let call = start.elapsed();
    // Waits for the background purger's pass, or runs it.
    vault.purge_erased().unwrap();
    let purged = start.elapsed();
    assert!(vault.store().purge_queue().unwrap().is_empty());
    println!(
        "| {backend} | erase a subject with 100k records (the call) | 1 | {} | |",
        per_op(1, call)
    );
    println!(
        "| {backend} | erase a subject with 100k records, until purged | 1 | {} | |",
        per_op(1, purged)
    );
}

/// `ledger::verify` alone, three times over a chain of `CUSTOS_BENCH_LEDGER` entries
/// (default 1,000,000) appended with `append_many` on a fresh database.
fn verify_only(backend: &str, make_store: &dyn Fn() -> Arc<dyn Store>) {
    let store = make_store();
    let seed = custos_vault::crypto::random_secret().unwrap();
    let signer = custos_vault::ledger::CheckpointSigner::new(&seed);
    let total: usize = std::env::var("CUSTOS_BENCH_LEDGER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    {
        let ledger = Ledger::start(Arc::clone(&store), signer.clone()).unwrap();
        let mut done = 0;
        while done < total {
            let k = 10_000.min(total - done);
            let drafts = (done..done + k)
                .map(|i| Draft {
                    time_ms: 1_764_000_000_000 + i as i64,
                    actor: "meeting-center".into(),
                    action: "read".into(),
                    subject: format!("{:08x}-0000-4000-8000-{:012x}", i % 100_000, i),
                    purpose: "service.meetings".into(),
                    recipient: String::new(),
                    categories: "contact.email,contact.name,network.ip_address".into(),
                    effect: "permit".into(),
                    reasons: "collected_for_purpose".into(),
                })
                .collect();
            ledger.append_many(drafts).unwrap();
            done += k;
        }
    }
    for _ in 0..3 {
        let start = Instant::now();
        let v = custos_vault::ledger::verify(&*store, &signer).unwrap();
        let d = start.elapsed();
        assert!(v.ok() && v.entries == total as u64, "{v:?}");
        row(backend, "ledger verify (chain + checkpoints)", total, d);
    }
}

/// Bulk collection through `collect_many`, on a fresh database.
fn bulk(backend: &str, make_store: &dyn Fn() -> Arc<dyn Store>) {
    let store = make_store();
    let policy = Arc::new(Policy::builtin().unwrap());
    let vault = Vault::open(Arc::clone(&store), policy, MasterKey::generate().unwrap()).unwrap();
    let total: usize = std::env::var("CUSTOS_BENCH_SUBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if backend == "sqlite" {
            1_000_000
        } else {
            100_000
        });
    let batch: usize = std::env::var("CUSTOS_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut done = 0;
    let mut busy = Duration::ZERO;
    while done < total {
        let k = batch.min(total - done);
        let inputs: Vec<CollectionInput> = (done..done + k).map(attendee).collect();
        let start = Instant::now();
        let out = vault.collect_many("meeting-center", &inputs).unwrap();
        busy += start.elapsed();
        assert!(out.iter().all(Result::is_ok));
        done += k;
    }
    row(
        backend,
        &format!("collect_many, {batch} subjects per call"),
        total,
        busy,
    );
    let start = Instant::now();
    let v = vault.verify_ledger().unwrap();
    assert!(v.ok() && v.entries >= total as u64, "{v:?}");
    row(
        backend,
        "ledger verify after collect_many",
        usize::try_from(v.entries).unwrap(),
        start.elapsed(),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("| backend | case | n | per op | rate |");
    println!("| --- | --- | --- | --- | --- |");
    let dirs = std::cell::RefCell::new(Vec::new());
    let sqlite = || -> Arc<dyn Store> {
        let dir = std::env::temp_dir().join(format!(
            "custos_bench_{}_{}",
            std::process::id(),
            dirs.borrow().len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dirs.borrow_mut().push(dir.clone());
        Arc::new(SqliteStore::open(&dir).unwrap())
    };
    run("sqlite", &sqlite);
    for d in dirs.borrow().iter() {
        let _ = std::fs::remove_dir_all(d);
    }
    if let Ok(admin) = std::env::var("CUSTOS_BENCH_DATABASE_URL") {
        let dbs = std::cell::RefCell::new(Vec::new());
        let postgres = || -> Arc<dyn Store> {
            let db = format!("custos_bench_{}_{}", std::process::id(), dbs.borrow().len());
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
            dbs.borrow_mut().push(db.clone());
            let (server, _) = admin.rsplit_once('/').unwrap();
            Arc::new(PostgresStore::connect(&format!("{server}/{db}")).unwrap())
        };
        run("postgres", &postgres);
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        for db in dbs.borrow().iter() {
            let _ = c.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"));
        }
    }
}
