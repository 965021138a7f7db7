//! `custos subjects …`: a person's rights acts done by the operator for a request staff
//! verified (issue 13, item 6) — export, correction, deactivation, erasure — with the same
//! checks and ledger entries as the person's own routes (`Requester::Operator` as the actor).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use custos_server::export::ExportDocument;
use custos_vault::{Requester, SubjectId};

use crate::vault_cmd::{Location, fail, open};

#[derive(Debug, Subcommand)]
pub enum SubjectsCommand {
    /// Export everything held about a subject (right of access, portability): the JSON
    /// document of `docs/export.md`, or `--html` for the readable page. Ledgered
    /// (`export`). The output holds the person's data: send it to them, keep no copy.
    Export {
        /// The subject id.
        id: String,
        /// The readable HTML page instead of JSON.
        #[arg(long)]
        html: bool,
        /// Write to this file (created, never overwritten) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        at: Location,
    },
    /// Correct values held about a subject (C029, C030): each `--set CATEGORY=VALUE`
    /// replaces a value the vault holds. Ledgered (`correct`, the categories, never a value).
    Correct {
        /// The subject id.
        id: String,
        /// `CATEGORY=VALUE`, at least one (repeat for several).
        #[arg(long = "set", value_name = "CATEGORY=VALUE", required = true)]
        set: Vec<String>,
        #[command(flatten)]
        at: Location,
    },
    /// Deactivate a subject's account (C030): only contractual and legal purposes remain.
    Deactivate {
        /// The subject id.
        id: String,
        #[command(flatten)]
        at: Location,
    },
    /// Erase a subject: the data key is destroyed, values, index terms and consents deleted
    /// at once, records purged before this returns. Ledgered (`erase`).
    Erase {
        /// The subject id.
        id: String,
        #[command(flatten)]
        at: Location,
    },
}

fn subject(id: &str) -> Result<SubjectId, ExitCode> {
    SubjectId::parse(id).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

pub fn run(cmd: SubjectsCommand) -> ExitCode {
    match run_inner(cmd) {
        Ok(code) | Err(code) => code,
    }
}

fn run_inner(cmd: SubjectsCommand) -> Result<ExitCode, ExitCode> {
    match cmd {
        SubjectsCommand::Export { id, html, out, at } => {
            let id = subject(&id)?;
            let vault = open(&at, false)?;
            let e = vault.export(Requester::Operator, &id).map_err(fail)?;
            let doc = ExportDocument::new(e, vault.ledger_verifier_key());
            write_export(&doc, html, out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        SubjectsCommand::Correct { id, set, at } => {
            let id = subject(&id)?;
            let data = parse_sets(&set)?;
            let vault = open(&at, false)?;
            vault
                .correct(Requester::Operator, &id, &data)
                .map_err(fail)?;
            eprintln!(
                "corrected {}",
                data.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        SubjectsCommand::Deactivate { id, at } => {
            let id = subject(&id)?;
            let vault = open(&at, false)?;
            vault
                .deactivate_for(Requester::Operator, &id)
                .map_err(fail)?;
            eprintln!("deactivated {id}");
            Ok(ExitCode::SUCCESS)
        }
        SubjectsCommand::Erase { id, at } => {
            let id = subject(&id)?;
            let vault = open(&at, false)?;
            vault.erase_for(Requester::Operator, &id).map_err(fail)?;
            let purged = vault.purge_erased().map_err(fail)?;
            eprintln!("erased {id} ({purged} record(s) purged)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--set CATEGORY=VALUE` arguments as a map, each category once.
pub(crate) fn parse_sets(set: &[String]) -> Result<BTreeMap<String, String>, ExitCode> {
    let mut data = BTreeMap::new();
    for (i, s) in set.iter().enumerate() {
        let Some((k, v)) = s.split_once('=') else {
            eprintln!(
                "error: --set takes CATEGORY=VALUE (no `=` in argument {})",
                i + 1
            );
            return Err(ExitCode::from(2));
        };
        if data.insert(k.trim().to_string(), v.to_string()).is_some() {
            eprintln!(
                "error: --set gives `{}` twice; give each category once",
                k.trim()
            );
            return Err(ExitCode::from(2));
        }
    }
    Ok(data)
}

/// Writes an export as JSON (or its HTML page) to `out` (created, never overwritten) or
/// standard output, and says on standard error what it holds.
pub(crate) fn write_export(
    doc: &ExportDocument,
    html: bool,
    out: Option<&std::path::Path>,
) -> Result<(), ExitCode> {
    let text = if html {
        doc.to_html()
    } else {
        let mut t = serde_json::to_string_pretty(doc).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        })?;
        t.push('\n');
        t
    };
    let written = match out {
        Some(path) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes())),
        None => std::io::stdout().write_all(text.as_bytes()),
    };
    if let Err(e) = written {
        eprintln!("error: cannot write the export: {e}");
        return Err(ExitCode::FAILURE);
    }
    eprintln!(
        "exported {} value(s), {} record(s), {} ledger entr{} (this export: #{})",
        doc.values.len(),
        doc.records.len(),
        doc.ledger.entries.len(),
        if doc.ledger.entries.len() == 1 {
            "y"
        } else {
            "ies"
        },
        doc.ledger.export_seq
    );
    Ok(())
}
