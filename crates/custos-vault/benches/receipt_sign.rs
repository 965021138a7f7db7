//! The consent receipt's signature: aws-lc's Ed25519 (what the vault signs receipts with)
//! against ed25519-dalek's (what it signed them with before, and still verifies them and
//! signs checkpoints with), over a signing input of a receipt's size (1,962 bytes: the JWS
//! header and claims of a `newsletters` consent of the built-in policy). Both give the same
//! signature (Ed25519 is deterministic), checked first. Rounds alternate; prints each
//! round and the medians as a Markdown table.
//!
//! ```sh
//! cargo bench -p custos-vault --bench receipt_sign
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark fails loudly"
)]

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::Ed25519KeyPair;
use ed25519_dalek::{Signer as _, SigningKey};

/// The allocator the `custos` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INPUT: usize = 1962;
const SIGNATURES: u32 = 20_000;
const ROUNDS: usize = 5;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seed = [7u8; 32];
    // JSON-like ASCII, as a receipt's signing input is base64url text.
    let input: Vec<u8> = (0..INPUT).map(|i| b'A' + (i * 7 % 26) as u8).collect();
    let aws = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let dalek = SigningKey::from_bytes(&seed);
    assert_eq!(
        aws.sign(&input).as_ref(),
        dalek.sign(&input).to_bytes().as_slice(),
        "the same Ed25519 signature"
    );
    let time = |f: &dyn Fn()| {
        for _ in 0..1000 {
            f();
        }
        let t = Instant::now();
        for _ in 0..SIGNATURES {
            f();
        }
        t.elapsed().as_nanos() as f64 / f64::from(SIGNATURES)
    };
    let (mut a, mut d) = (Vec::new(), Vec::new());
    println!("| round | aws-lc-rs ns/signature | ed25519-dalek ns/signature |");
    println!("| --- | --- | --- |");
    for round in 0..ROUNDS {
        let sign_aws = || {
            black_box(aws.sign(black_box(&input)));
        };
        let sign_dalek = || {
            black_box(dalek.sign(black_box(&input)));
        };
        // Alternate which goes first.
        let (x, y) = if round % 2 == 0 {
            let x = time(&sign_aws);
            (x, time(&sign_dalek))
        } else {
            let y = time(&sign_dalek);
            (time(&sign_aws), y)
        };
        println!("| {} | {x:.0} | {y:.0} |", round + 1);
        a.push(x);
        d.push(y);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ma, md) = (median(&mut a), median(&mut d));
    println!(
        "| median | {ma:.0} | {md:.0} (aws-lc-rs takes {:.2} of it) |",
        ma / md
    );
}
