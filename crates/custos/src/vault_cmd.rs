//! `custos keys …` and `custos audit …`: the vault's operator commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use custos_vault::crypto::{MASTER_KEY_ENV, master_key_path};
use custos_vault::ledger::{Broken, Head};
use custos_vault::{MasterKey, Vault};

/// Environment variable holding the new master key for `keys rotate-master`.
const NEW_MASTER_KEY_ENV: &str = "CUSTOS_NEW_MASTER_KEY";

/// Where the vault is.
#[derive(Debug, Args)]
pub struct Location {
    /// Data directory of the embedded (SQLite) vault.
    #[arg(long, default_value = "./custos-data", conflicts_with = "database_url")]
    data: PathBuf,
    /// PostgreSQL URL; the master key then comes from `CUSTOS_MASTER_KEY`.
    #[arg(long)]
    database_url: Option<String>,
    /// The policy enforced (default: the built-in WebEx 2010 policy).
    #[arg(long)]
    policy: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key for an accessor the policy declares; prints the key alone, once.
    ///
    /// An accessor acting for a business customer (its recipient is a `customer`, `employer`
    /// or `purchaser`, e.g. `customer-admin`) needs `--tenant`: the key then reaches only
    /// that tenant's people. Any other accessor takes no tenant.
    Create {
        /// The accessor the key acts as.
        #[arg(long)]
        accessor: String,
        /// The tenant (business customer id) the key acts for.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        at: Location,
    },
    /// Revoke every API key of an accessor, or only those made for one tenant.
    Revoke {
        /// The accessor.
        #[arg(long)]
        accessor: String,
        /// Only the keys made for this tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        at: Location,
    },
    /// Re-wrap every data key under a new master key; values are untouched.
    ///
    /// The new key comes from `--new-key-file` or `CUSTOS_NEW_MASTER_KEY`. When the current
    /// key is `<data>/master.key`, that file is replaced by the new key once the re-wrap is
    /// committed; when it is `CUSTOS_MASTER_KEY`, set that to the new key afterwards.
    RotateMaster {
        /// A file holding the new key (64 hex digits or base64 of 32 bytes).
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        #[command(flatten)]
        at: Location,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the ledger's hash chain and check its signed checkpoints.
    ///
    /// Exits 0 when the ledger is intact and prints its head as `SEQ:HASH`; otherwise names
    /// the first entry that does not match and exits 1. Keep the head outside the database:
    /// given back with `--head`, it detects a ledger cut or rewritten up to it, which the
    /// database alone cannot show.
    Verify {
        /// A head an earlier verify printed (`SEQ:HASH`): the ledger must still hold that
        /// entry with that hash.
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
        /// A signed checkpoint kept outside the database (from `GET /v1/ledger/checkpoint`,
        /// `custos audit checkpoint`, or the last one of a `--witness` file): its signature
        /// must be the vault's, and the ledger must still extend it — the tree of its first
        /// entries, recomputed from the entries, has the checkpoint's root, and the stored
        /// tree proves consistent with it.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        #[command(flatten)]
        at: Location,
    },
    /// Print a signed checkpoint of the ledger's Merkle tree (C2SP tlog-checkpoint in a
    /// signed note) to keep outside the database.
    Checkpoint {
        #[command(flatten)]
        at: Location,
    },
    /// Print the inclusion proof (RFC 9162) of the ledger entry SEQ, as JSON, with a signed
    /// checkpoint of the tree it is proved in.
    Prove {
        /// The entry's seq (from 1).
        seq: u64,
        #[command(flatten)]
        at: Location,
    },
    /// Print the checkpoints' verifier key (signed-note `NAME+KEYID+KEY`).
    Key {
        #[command(flatten)]
        at: Location,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Delete what the policy no longer allows to be kept: records past their collection's
    /// retention, values held longer than their category's retention. Ledgered.
    ///
    /// `custos serve` runs the same sweep on a schedule (`--retention-every`).
    Run {
        #[command(flatten)]
        at: Location,
    },
}

pub fn retention(cmd: RetentionCommand) -> ExitCode {
    let RetentionCommand::Run { at } = cmd;
    let vault = match open(&at, false) {
        Ok(v) => v,
        Err(code) => return code,
    };
    match vault.purge_expired(custos_vault::OPERATOR) {
        Ok(sweep) => {
            println!("{}", sweep_line(&sweep));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `deleted 3 record(s) and 2 value(s) (network.ip_address 2)`, and when there were any,
/// `; 4 sign-in code(s), 1 session(s) and 2 finished mail row(s)`.
pub fn sweep_line(sweep: &custos_vault::Sweep) -> String {
    let by: Vec<String> = sweep
        .values
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let by = if by.is_empty() {
        String::new()
    } else {
        format!(" ({})", by.join(", "))
    };
    let people = if sweep.codes + sweep.sessions + sweep.mail > 0 {
        format!(
            "; {} sign-in code(s), {} session(s) and {} finished mail row(s)",
            sweep.codes, sweep.sessions, sweep.mail
        )
    } else {
        String::new()
    };
    format!(
        "deleted {} record(s) and {} value(s){by}{people}",
        sweep.records,
        sweep.value_count()
    )
}

pub(crate) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub(crate) fn open(at: &Location, create_key: bool) -> Result<Vault, ExitCode> {
    let policy = Arc::new(crate::policy_cmd::load(at.policy.as_deref())?);
    let result = Vault::open_location(&at.data, at.database_url.as_deref(), policy, create_key);
    result.map_err(fail)
}

pub fn keys(cmd: KeysCommand) -> ExitCode {
    match cmd {
        KeysCommand::Create {
            accessor,
            tenant,
            at,
        } => {
            let vault = match open(&at, true) {
                Ok(v) => v,
                Err(code) => return code,
            };
            match vault.create_key_for(&accessor, tenant.as_deref()) {
                Ok(key) => {
                    println!("{key}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeysCommand::Revoke {
            accessor,
            tenant,
            at,
        } => {
            let vault = match open(&at, false) {
                Ok(v) => v,
                Err(code) => return code,
            };
            match vault.revoke_for(&accessor, tenant.as_deref()) {
                Ok(n) => {
                    let of = tenant.map_or_else(String::new, |_| " for that tenant".into());
                    eprintln!("revoked {n} key(s) of `{accessor}`{of}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeysCommand::RotateMaster { new_key_file, at } => rotate(new_key_file.as_deref(), &at),
    }
}

fn rotate(new_key_file: Option<&Path>, at: &Location) -> ExitCode {
    let new = match (new_key_file, std::env::var(NEW_MASTER_KEY_ENV)) {
        (Some(path), _) => MasterKey::from_file(path),
        (None, Ok(text)) => MasterKey::parse(&text),
        (None, Err(_)) => {
            return fail(format!(
                "give the new key with `--new-key-file PATH` or `{NEW_MASTER_KEY_ENV}`"
            ));
        }
    };
    let new = match new {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let mut vault = match open(at, false) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let n = match vault.rotate_master(new.clone()) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    drop(vault);
    eprintln!("re-wrapped {n} key(s) under the new master key");
    if at.database_url.is_some() || std::env::var_os(MASTER_KEY_ENV).is_some() {
        eprintln!("set `{MASTER_KEY_ENV}` to the new key before the next start");
        return ExitCode::SUCCESS;
    }
    // The vault now opens only with the new key: put it where the next start looks.
    let path = master_key_path(&at.data);
    let next = path.with_extension("key.next");
    let _ = std::fs::remove_file(&next);
    if let Err(e) = new.write_new_file(&next) {
        return fail(e);
    }
    if let Err(e) = std::fs::rename(&next, &path) {
        return fail(format!(
            "cannot replace `{}`: {}; the new key is in `{}`",
            path.display(),
            e.kind(),
            next.display()
        ));
    }
    eprintln!(
        "`{}` now holds the new key; back it up, and destroy copies of the old one",
        path.display()
    );
    ExitCode::SUCCESS
}

pub fn audit(cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::Verify {
            head,
            checkpoint,
            at,
        } => verify(head, checkpoint.as_deref(), &at),
        AuditCommand::Checkpoint { at } => with_vault(&at, |v| {
            let head = v.ledger_checkpoint()?;
            print!("{}", head.note);
            Ok(ExitCode::SUCCESS)
        }),
        AuditCommand::Prove { seq, at } => with_vault(&at, |v| {
            let head = v.ledger_checkpoint()?;
            let p = v.ledger_inclusion(seq, Some(head.size))?;
            let b64 = custos_vault::tlog::hash_to_base64;
            let out = serde_json::json!({
                "seq": p.seq,
                "leaf_index": p.seq - 1,
                "tree_size": p.size,
                "entry_hash": p.entry_hash,
                "leaf_hash": b64(&p.leaf_hash),
                "root_hash": b64(&p.root),
                "proof": p.proof.iter().map(b64).collect::<Vec<_>>(),
                "checkpoint": head.note,
            });
            println!("{out:#}");
            Ok(ExitCode::SUCCESS)
        }),
        AuditCommand::Key { at } => with_vault(&at, |v| {
            println!("{}", v.ledger_verifier_key());
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// Opens the vault and runs `f`; a vault error exits 2 (1 for a bad argument it names).
fn with_vault(at: &Location, f: impl FnOnce(&Vault) -> custos_vault::Result<ExitCode>) -> ExitCode {
    let vault = match open(at, false) {
        Ok(v) => v,
        Err(code) => return code,
    };
    f(&vault).unwrap_or_else(|e| match e {
        custos_vault::Error::Invalid { .. } => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        e => fail(e),
    })
}

const EVIDENCE: &str = "keep this database as evidence and restore the ledger from a backup";

/// Checks a checkpoint kept outside the database against the ledger `v` (already verified
/// as a chain, with the root at the checkpoint's size recomputed from its entries).
fn check_checkpoint(vault: &Vault, note: &str) -> ExitCode {
    // The chain first, recomputing the tree of the checkpoint's size from the entries: a
    // broken chain is named as such, before any proof reads the entries.
    let size = note
        .split_once("\n\n")
        .and_then(|(text, _)| custos_vault::tlog::Checkpoint::parse(&format!("{text}\n")).ok())
        .map(|c| c.size);
    let v = match vault.verify_ledger_tree(None, size) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if let Some(seq) = v.first_bad {
        println!(
            "ledger broken at entry {seq}: it is missing or does not match the chain ({} \
             entries before it verify); {EVIDENCE}",
            v.entries
        );
        return ExitCode::FAILURE;
    }
    let checked = match vault.check_checkpoint(note) {
        Ok(c) => c,
        Err(e @ custos_vault::Error::Invalid { code, .. }) => {
            let what = match code {
                "checkpoint_past_end" => "ledger cut",
                "checkpoint_inconsistent" => "ledger rewritten",
                _ => "checkpoint refused",
            };
            println!("{what}: {e}; {EVIDENCE}");
            return ExitCode::FAILURE;
        }
        Err(e) => return fail(e),
    };
    let cp = &checked.checkpoint;
    match v.root_at {
        None => {
            println!(
                "ledger cut: it holds {} entries, fewer than the {} of the checkpoint; {EVIDENCE}",
                v.entries, cp.size
            );
            return ExitCode::FAILURE;
        }
        Some((_, root)) if root != cp.root => {
            println!(
                "ledger rewritten: its first {} entries do not hash to the checkpoint's root; \
                 {EVIDENCE}",
                cp.size
            );
            return ExitCode::FAILURE;
        }
        Some(_) => {}
    }
    match vault.ledger_root(v.entries) {
        Ok(stored) if stored == v.root => {}
        Ok(_) => {
            println!(
                "ledger tree altered: the stored Merkle tree of {} entries does not match the entries; {EVIDENCE}",
                v.entries
            );
            return ExitCode::FAILURE;
        }
        Err(e) => return fail(e),
    }
    println!(
        "ledger extends the checkpoint: {} entries at the checkpoint ({}), {} now; signature, consistency proof and the entries' tree all check out",
        cp.size, cp.origin, checked.size
    );
    ExitCode::SUCCESS
}

fn verify(head: Option<String>, checkpoint: Option<&Path>, at: &Location) -> ExitCode {
    let head: Option<Head> = match head.as_deref().map(str::parse).transpose() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let note = match checkpoint {
        None => None,
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return fail(format!("cannot read `{}`: {}", path.display(), e.kind())),
            };
            match custos_vault::tlog::last_note(&text) {
                Some(n) => Some(n.to_string()),
                None => {
                    return fail(format!(
                        "`{}` holds no signed checkpoint (a note: text, a blank line, signature lines)",
                        path.display()
                    ));
                }
            }
        }
    };
    let vault = match open(at, false) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if let Some(note) = note {
        let code = check_checkpoint(&vault, &note);
        if code != ExitCode::SUCCESS || head.is_none() {
            return code;
        }
    }
    let v = match vault.verify_ledger_against(head.as_ref()) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let Some(seq) = v.first_bad else {
        let held = if head.is_some() {
            " and holds the head given"
        } else {
            ""
        };
        // The head last: `SEQ:HASH`, exactly as `--head` takes it.
        println!(
            "ledger intact{held}: {} entries, {} signed checkpoints, head {}",
            v.entries,
            v.checkpoints,
            v.verified_head()
        );
        eprintln!(
            "keep the head outside the database: `custos audit verify --head {}` fails if \
             the ledger is later cut or rewritten up to it",
            v.verified_head()
        );
        return ExitCode::SUCCESS;
    };
    let n = v.entries;
    let given = head.map(|h| h.to_string()).unwrap_or_default();
    match v.broken {
        Some(Broken::HeadPastEnd) => {
            println!("ledger cut: it holds {n} entries, not the head given ({given}); {EVIDENCE}")
        }
        Some(Broken::HeadDiffers) => println!(
            "ledger rewritten: entry {seq} does not have the hash of the head given \
             ({given}); {EVIDENCE}"
        ),
        Some(Broken::CheckpointPastEnd) => println!(
            "ledger cut: it holds {n} entries, but a signed checkpoint names a later one; \
             {EVIDENCE}"
        ),
        Some(Broken::Checkpoint) => println!(
            "ledger broken at entry {seq}: its signed checkpoint is missing or does not match \
             it ({n} entries before it verify); {EVIDENCE}"
        ),
        Some(Broken::Entry) | None => println!(
            "ledger broken at entry {seq}: it is missing or does not match the chain \
             ({n} entries before it verify); {EVIDENCE}"
        ),
    }
    ExitCode::FAILURE
}
