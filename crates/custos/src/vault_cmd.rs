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

/// `deleted 3 record(s) and 2 value(s) (network.ip_address 2)`.
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
    format!(
        "deleted {} record(s) and {} value(s){by}",
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
    let AuditCommand::Verify { head, at } = cmd;
    let head: Option<Head> = match head.as_deref().map(str::parse).transpose() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let vault = match open(&at, false) {
        Ok(v) => v,
        Err(code) => return code,
    };
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
    const EVIDENCE: &str = "keep this database as evidence and restore the ledger from a backup";
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
