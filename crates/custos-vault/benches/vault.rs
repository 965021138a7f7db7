//! Vault throughput: enforced vs raw reads, bulk collection, erasure of a subject with many
//! records, ledger append and verify. Prints a Markdown table.
//!
//! ```sh
//! cargo bench -p custos-vault --bench vault                      # SQLite in a temp dir
//! CUSTOS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p custos-vault --bench vault                    # and PostgreSQL
//! ```
//!
//! `CUSTOS_BENCH_ONLY` runs one case alone: `reads` (every read row), `pipelined` (the
//! enforced/raw comparison of reads kept in flight), `collect_many`, `erase` (the erasure of a subject
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
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use custos_policy::Policy;
use custos_vault::ledger::{Draft, Ledger};
use custos_vault::{
    CollectionInput, Durable, MasterKey, PostgresStore, ReadInput, SealedRead, SqliteStore, Store,
    SubjectId, Vault,
};

/// The allocator the `custos` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const THREADS: usize = 8;
/// Concurrency of the raw-vs-enforced comparison and of the wide ledger append.
const READ_THREADS: usize = 64;
/// Threads of the pipelined read comparison (one per core) and the reads each keeps in flight.
const PIPE_THREADS: usize = 2;
const PIPE_WINDOW: usize = 256;
/// Turns raw and enforced reads take in the pipelined comparison.
const PIPE_ROUNDS: usize = 8;
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
    named_parallel("bench", threads, f)
}

/// [`parallel`] on threads named `name` (for profiles).
fn named_parallel<F: Fn(usize) + Send + Sync + 'static>(
    name: &str,
    threads: usize,
    f: F,
) -> Duration {
    let f = Arc::new(f);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || f(t))
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

/// Enforced reads the server's way against raw reads, on one thread per core.
fn pipelined(
    backend: &str,
    vault: &Arc<Vault>,
    ids_shared: &Arc<Vec<SubjectId>>,
    read: &ReadInput,
    raw_read: &RawRead,
) {
    // The server's way: a thread never blocks on the ledger's commit. Each of PIPE_THREADS
    // threads (one per core) keeps PIPE_WINDOW reads in flight — `begin_read` decides,
    // fetches and queues the entry; the read's values are opened only once the writer says
    // its entry is durable — against raw reads on as many threads. Raw and enforced take
    // turns, PIPE_ROUNDS times, so a change in the machine's load falls on both.
    let per = 12_500;
    let (mut raw_p, mut enforced_p) = (Duration::ZERO, Duration::ZERO);
    let batches = vault.ledger_batches();
    let (commits_before, entries_before) = (
        batches.commits.load(Ordering::Relaxed),
        batches.entries.load(Ordering::Relaxed),
    );
    let (mut raw_cpu, mut enforced_cpu, mut writer_cpu) = (0, 0, 0);
    for _ in 0..PIPE_ROUNDS {
        let (is, rr) = (Arc::clone(ids_shared), Arc::clone(raw_read));
        let cpu = cpu_ticks(None);
        raw_p += named_parallel("raw", PIPE_THREADS, move |t| {
            for i in 0..per {
                rr(&is[(t * per + i) % is.len()]);
            }
        });
        raw_cpu += cpu_ticks(None) - cpu;
        let (v, is, r2) = (Arc::clone(vault), Arc::clone(ids_shared), read.clone());
        let (cpu, writer) = (cpu_ticks(None), cpu_ticks(Some("custos-ledger")));
        enforced_p += named_parallel("enforced", PIPE_THREADS, move |t| {
            pipelined_reads(&v, &is, &r2, t * per, per);
        });
        enforced_cpu += cpu_ticks(None) - cpu;
        writer_cpu += cpu_ticks(Some("custos-ledger")) - writer;
    }
    let n = PIPE_ROUNDS * PIPE_THREADS * per;
    row(
        backend,
        &format!("raw read, {PIPE_THREADS} threads"),
        n,
        raw_p,
    );
    row(
        backend,
        &format!("enforced read, {PIPE_THREADS} threads × {PIPE_WINDOW} in flight (group commit)"),
        n,
        enforced_p,
    );
    let tick_us = |ticks: u64| ticks as f64 * 1e6 / CLOCK_TICKS / n as f64;
    println!(
        "| {backend} | CPU per read (all threads): raw, enforced (of which the ledger writer) | | {:.1} µs, {:.1} µs ({:.1} µs) | |",
        tick_us(raw_cpu),
        tick_us(enforced_cpu),
        tick_us(writer_cpu)
    );
    let commits = batches.commits.load(Ordering::Relaxed) - commits_before;
    let entries = batches.entries.load(Ordering::Relaxed) - entries_before;
    println!(
        "| {backend} | **enforced / raw, {PIPE_THREADS} threads, pipelined** | | **{:.2}×** | {:.1} entries per group commit |",
        enforced_p.as_secs_f64() / raw_p.as_secs_f64(),
        entries as f64 / commits.max(1) as f64
    );
}

/// Clock ticks per second of `/proc`'s CPU times (`getconf CLK_TCK`; 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// CPU time (user + system, in clock ticks) of this process, or of its threads named `thread`.
fn cpu_ticks(thread: Option<&str>) -> u64 {
    let stat = |path: &std::path::Path| -> u64 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // Fields after the command name, which is in parentheses: utime and stime are the
        // 12th and 13th.
        let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
        rest.split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum()
    };
    match thread {
        None => stat(std::path::Path::new("/proc/self/stat")),
        Some(name) => std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .map(|t| stat(&t.path().join("stat")))
            .sum(),
    }
}

/// `n` enforced reads from `ids[from..]`, at most [`PIPE_WINDOW`] in flight: each is begun
/// (decided, fetched, its ledger entry queued) and opened once its entry is durable.
fn pipelined_reads(vault: &Vault, ids: &[SubjectId], read: &ReadInput, from: usize, n: usize) {
    let (tx, rx) = mpsc::channel::<(usize, custos_vault::Result<Durable>)>();
    let mut slots: Vec<Option<SealedRead>> = (0..PIPE_WINDOW).map(|_| None).collect();
    let mut free: Vec<usize> = (0..PIPE_WINDOW).collect();
    let (mut begun, mut opened) = (0, 0);
    while opened < n {
        while begun < n {
            let Some(slot) = free.pop() else { break };
            let tx = tx.clone();
            let id = &ids[(from + begun) % ids.len()];
            let sealed = vault
                .begin_read("meeting-center", id, read, move |d| {
                    let _ = tx.send((slot, d));
                })
                .unwrap();
            slots[slot] = Some(sealed);
            begun += 1;
        }
        let mut ready = Some(rx.recv().unwrap());
        while let Some((slot, durable)) = ready {
            let sealed = slots[slot].take().unwrap();
            let r = sealed.open(vault, durable.unwrap()).unwrap();
            assert_eq!(r.data.len(), 3);
            free.push(slot);
            opened += 1;
            ready = rx.try_recv().ok();
        }
    }
}

/// Raw read: the same rows and key fetched by the same statement, the same AES-GCM work
/// (with its cipher set up once, not per read: less than the vault does), no decision, no
/// ledger.
fn raw_reader(store: &Arc<dyn Store>) -> RawRead {
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
    let store = Arc::clone(store);
    Arc::new(move |id: &SubjectId| {
        // The statement the enforced read runs: status, values, consents and wrapped key.
        let state = store.subject_state(id.as_str()).unwrap().unwrap();
        assert!(!state.values.is_empty() && state.wrapped_dek.is_some());
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
    })
}

/// A raw read of one subject, shareable between threads.
type RawRead = Arc<dyn Fn(&SubjectId) + Send + Sync>;

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
    if std::env::var("CUSTOS_BENCH_ONLY").is_ok_and(|v| v == "pipelined") {
        let inputs: Vec<CollectionInput> = (0..1000).map(attendee).collect();
        let ids = vault
            .collect_many("meeting-center", &inputs)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let read = ReadInput {
            purpose: "service.meetings".into(),
            ..ReadInput::default()
        };
        return pipelined(backend, &vault, &Arc::new(ids), &read, &raw_reader(&store));
    }

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

    let read = ReadInput {
        purpose: "service.meetings".into(),
        ..ReadInput::default()
    };
    let raw_read = raw_reader(&store);
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
    pipelined(backend, &vault, &ids_shared, &read, &raw_read);
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
