//! The ledger as a transparency log (issue 15): proofs in a tree of 10,000,000 entries, and
//! the checkpoint signing rate.
//!
//! The ledger is written straight into a fresh SQLite store (`ledger_blocks` and
//! `ledger_tiles` in `ledger.db`) as the ledger writer writes them: real entries (their
//! chained hashes) in blocks of up to 1,024 (`ledger::block::Grouper`), and the tiles of
//! level 1 and up (`ledger::tree::Edge::append`), 65,536 entries per transaction, without
//! the vault's per-append work. A proof reads the tiles of level 1 and up and the entry
//! hashes of the level-0 tiles it needs from the blocks (one or two blocks each): what a
//! proof in a ledger of that size reads. Each proof is made by the code the vault serves
//! them with (`ledger::tree::prove_inclusion`, `prove_consistency`: the tiles read in one
//! go, the level-0 tiles made from the blocks, the hashes computed) and checked once with
//! `custos-tlog` outside the timed loop. A proof the HTTP route serves also reads the
//! entry's hash from its block (one more primary-key read).
//!
//! `CUSTOS_BENCH_TREE` sets the tree size (default 10,000,000). Output: Markdown rows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark fails loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_policy::Policy;
use custos_vault::ledger::tree::{self, Edge};
use custos_vault::ledger::{Draft, block, entry_hash};
use custos_vault::{MasterKey, SqliteStore, Store, Vault};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn row(case: &str, n: usize, d: Duration) {
    let per = d / u32::try_from(n.max(1)).unwrap();
    let rate = n as f64 / d.as_secs_f64();
    println!("| sqlite | {case} | {n} | {per:.2?} | {rate:.0}/s |");
}

/// A deterministic spread of numbers below `n`.
fn spread(n: u64, count: usize) -> Vec<u64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..count)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 11) % n
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let size: u64 = std::env::var("CUSTOS_BENCH_TREE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let dir = std::env::temp_dir().join(format!("custos_bench_tlog_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
    println!("| backend | case | n | per op | rate |");
    println!("| --- | --- | --- | --- | --- |");

    // The ledger, 65,536 entries per transaction: its blocks, and the tiles of level 1 and
    // up the writer keeps beside them.
    let start = Instant::now();
    {
        let mut db = rusqlite::Connection::open(dir.join("ledger.db")).unwrap();
        let mut edge = Edge::default();
        let mut compact = custos_tlog::Compact::new();
        let mut grouper = block::Grouper::default();
        let mut prev = custos_vault::ledger::GENESIS.to_string();
        let mut next = 1u64;
        while next <= size {
            let to = size.min(next + 65_535);
            let mut leaves = Vec::with_capacity(65_536);
            let mut blocks = Vec::new();
            for seq in next..=to {
                let d = Draft {
                    time_ms: 1,
                    actor: "meeting-center".into(),
                    action: "read".into(),
                    subject: format!("s{seq}"),
                    purpose: "service.meetings".into(),
                    effect: "permit".into(),
                    ..Draft::default()
                };
                let hash = entry_hash(seq, &d, &prev);
                leaves.push(tree::leaf_of_hex(hash.as_bytes()));
                let text = [
                    &d.actor,
                    &d.action,
                    &d.subject,
                    &d.purpose,
                    &d.recipient,
                    &d.categories,
                    &d.effect,
                    &d.reasons,
                    &prev,
                    &hash,
                ]
                .map(|t| t.as_bytes().to_vec());
                blocks.extend(grouper.push(block::OwnedRow {
                    seq,
                    time_ms: 1,
                    text,
                }));
                prev = hash;
            }
            blocks.extend(grouper.finish());
            for l in &leaves {
                compact.push(*l);
            }
            let tiles = edge.append(leaves);
            let tx = db.transaction().unwrap();
            {
                let mut put = tx
                    .prepare(
                        "INSERT INTO ledger_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)
                         ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
                    )
                    .unwrap();
                for (k, h) in tiles {
                    put.execute(rusqlite::params![
                        k.level,
                        i64::try_from(k.index).unwrap(),
                        h
                    ])
                    .unwrap();
                }
                let mut put = tx
                    .prepare(
                        "INSERT INTO ledger_blocks (first_seq, last_seq, prev_hash, entries)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .unwrap();
                for b in blocks {
                    put.execute(rusqlite::params![
                        i64::try_from(b.first_seq).unwrap(),
                        i64::try_from(b.last_seq).unwrap(),
                        String::from_utf8(b.prev_hash).unwrap(),
                        b.body
                    ])
                    .unwrap();
                }
            }
            tx.commit().unwrap();
            next = to + 1;
        }
        assert_eq!(store.ledger_tree_size().unwrap(), size);
        let root = tree::hashes_in(&*store, &[(0, size)]).unwrap()[0];
        assert_eq!(root, compact.root(), "the tiles' root is the tree's");
    }
    row(
        &format!("build the ledger ({size} entries: entry hashes, blocks, tiles, commits)"),
        usize::try_from(size).unwrap(),
        start.elapsed(),
    );
    let root = tree::hashes_in(&*store, &[(0, size)]).unwrap()[0];

    // Inclusion proofs at spread-out leaves, each read and computed from the store.
    let picks = spread(size, 2_000);
    for &i in picks.iter().take(20).chain(&[size - 1]) {
        let (proof, l, r) = tree::prove_inclusion(&*store, i, size).unwrap();
        assert_eq!(r, root);
        custos_tlog::verify_inclusion(i, size, &l, &proof, &r).unwrap();
    }
    let mut times: Vec<Duration> = Vec::with_capacity(picks.len());
    let start = Instant::now();
    for &i in &picks {
        let t = Instant::now();
        std::hint::black_box(tree::prove_inclusion(&*store, i, size).unwrap());
        times.push(t.elapsed());
    }
    let total = start.elapsed();
    times.sort_unstable();
    row(
        &format!("inclusion proof in a tree of {size} (mean)"),
        picks.len(),
        total,
    );
    println!(
        "| sqlite | inclusion proof: median, p99, max | | {:.2?}, {:.2?}, {:.2?} | |",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );

    // Consistency proofs from spread-out earlier sizes to the whole tree.
    let froms: Vec<u64> = spread(size, 2_000).into_iter().map(|f| f.max(1)).collect();
    for &f in froms.iter().take(20) {
        let (proof, fr, tr) = tree::prove_consistency(&*store, f, size).unwrap();
        assert_eq!(tr, root);
        custos_tlog::verify_consistency(f, size, &fr, &tr, &proof).unwrap();
    }
    let mut times: Vec<Duration> = Vec::with_capacity(froms.len());
    let start = Instant::now();
    for &f in &froms {
        let t = Instant::now();
        std::hint::black_box(tree::prove_consistency(&*store, f, size).unwrap());
        times.push(t.elapsed());
    }
    let total = start.elapsed();
    times.sort_unstable();
    row(
        &format!("consistency proof to a tree of {size} (mean)"),
        froms.len(),
        total,
    );
    println!(
        "| sqlite | consistency proof: median, p99, max | | {:.2?}, {:.2?}, {:.2?} | |",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );

    // Signed checkpoints of that tree, by the vault: tree size and root from the tiles,
    // C2SP body, Ed25519 signed note.
    let vault = Vault::open(
        Arc::clone(&store),
        Arc::new(Policy::builtin().unwrap()),
        MasterKey::generate().unwrap(),
    )
    .unwrap();
    let head = vault.ledger_checkpoint().unwrap();
    assert_eq!((head.size, head.root), (size, root));
    let n = 2_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(vault.ledger_checkpoint().unwrap());
    }
    row(
        &format!("signed checkpoint of a tree of {size} (read, root, sign)"),
        n,
        start.elapsed(),
    );
    drop(vault);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
