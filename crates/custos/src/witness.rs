//! `custos serve --witness PATH`: each checkpoint the server signs is appended to a file
//! apart from the data, so a copy of the tree's history survives whatever happens to the
//! database; on start, the database must still extend the file's last checkpoint.
//!
//! The file holds signed notes (C2SP tlog-checkpoint in a signed note), each followed by a
//! blank line; it is created 0600, opened for appending only, and synced after each note. A
//! checkpoint is written on start, every `--witness-every` seconds when the tree has grown,
//! and once more on shutdown.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use custos_vault::Vault;

const TARGET: &str = "custos";

/// Checks that the vault's ledger extends the last checkpoint in `path` (none yet: nothing
/// to check). An error names what is wrong; the server then refuses to start.
pub fn check(vault: &Vault, path: &Path) -> Result<Option<u64>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the witness file `{}`: {}",
                path.display(),
                e.kind()
            ));
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let note = custos_vault::tlog::last_note(&text).ok_or_else(|| {
        format!(
            "the witness file `{}` holds no signed checkpoint at its end",
            path.display()
        )
    })?;
    let checked = vault.check_checkpoint(note).map_err(|e| {
        format!(
            "the ledger does not extend the last checkpoint of the witness file `{}`: {e}; \
             keep the database and the file as evidence (`custos audit verify --checkpoint`)",
            path.display()
        )
    })?;
    Ok(Some(checked.checkpoint.size))
}

/// Appends a signed checkpoint of the tree now to `path` and syncs it; returns its size.
fn append(vault: &Vault, path: &Path) -> Result<u64, String> {
    let head = vault.ledger_checkpoint().map_err(|e| e.to_string())?;
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot open `{}`: {}", path.display(), e.kind()))?;
    f.write_all(format!("{}\n", head.note).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write `{}`: {}", path.display(), e.kind()))?;
    Ok(head.size)
}

/// The witness thread: a checkpoint now, then every `every` when the tree has grown, and a
/// last one when the returned sender is dropped.
pub fn start(
    vault: &Arc<Vault>,
    path: PathBuf,
    every: Duration,
    last: Option<u64>,
) -> Result<(mpsc::Sender<()>, std::thread::JoinHandle<()>), String> {
    let mut written = last;
    let size = append(vault, &path)?;
    written = written.max(Some(size));
    let (stop, stopped) = mpsc::channel::<()>();
    let vault = Arc::clone(vault);
    let thread = std::thread::Builder::new()
        .name("custos-witness".into())
        .spawn(move || {
            loop {
                let last_round = !matches!(
                    stopped.recv_timeout(every),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                match vault.ledger_tree_size() {
                    Ok(n) if Some(n) != written => match append(&vault, &path) {
                        Ok(n) => written = Some(n),
                        Err(e) => tracing::error!(target: TARGET, "witness: {e}"),
                    },
                    Ok(_) => {}
                    Err(e) => tracing::error!(target: TARGET, "witness: {e}"),
                }
                if last_round {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the witness: {e}"))?;
    Ok((stop, thread))
}
