//! `custos requests …`: people's requests handled by the operator (issue 13), with the same
//! checks and ledger entries as staff over HTTP (`/v1/requests`).

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use custos_vault::vault::MAX_REQUESTS_LISTED;
use custos_vault::{PersonRequest, RequestHandler, RequestInput, RequestList};

use crate::vault_cmd::{Location, fail, open};

/// Which requests `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// Received or verified.
    Open,
    /// Open and past due.
    Overdue,
    /// Every request.
    All,
}

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// List requests, due soonest first: one line each (id, kind, state, due, subject), all
    /// of them (read a page of 1,000 at a time, each page ledgered).
    List {
        /// `open` (the default), `overdue` or `all`.
        #[arg(long, value_enum, default_value_t = Which::Open)]
        state: Which,
        #[command(flatten)]
        at: Location,
    },
    /// Show one request, a `key: value` line per field.
    Show {
        /// The request id.
        id: String,
        #[command(flatten)]
        at: Location,
    },
    /// Enter a request received from a person; prints its id alone. Ledgered
    /// (`request_receive`).
    Create {
        /// `access`, `export`, `rectify`, `deactivate`, `erase`, `object` or
        /// `california-disclosures`.
        #[arg(long)]
        kind: String,
        /// The subject it is about (required but for `california-disclosures`).
        #[arg(long, value_name = "ID")]
        subject: Option<String>,
        /// How it arrived: `online`, `email`, `letter` or `phone`.
        #[arg(long)]
        channel: String,
        /// How the requester's identity is verified: `signed_in` (online only),
        /// `email_from_address_on_file`, `knowledge_based` or `document_checked`.
        #[arg(long)]
        verification: String,
        /// The purpose objected to (`object` only; none: every communication topic, an
        /// unsubscribe from promotional mail by letter or email).
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        at: Location,
    },
    /// Record that the requester's identity was verified. Ledgered (`request_verify`).
    Verify {
        /// The request id.
        id: String,
        #[command(flatten)]
        at: Location,
    },
    /// Complete a verified request: `erase` erases the subject, `deactivate` deactivates
    /// it, `object` records the objection, `access` and `export` write the person's export
    /// (`docs/export.md`; send it by the channel the request came by), `rectify` applies
    /// the corrected values of `--set`. Ledgered (`request_complete`).
    Complete {
        /// The request id.
        id: String,
        /// For a `rectify` request: `CATEGORY=VALUE`, at least one (repeat for several).
        #[arg(long = "set", value_name = "CATEGORY=VALUE")]
        set: Vec<String>,
        /// For an `access` or `export` request: the readable HTML page instead of JSON.
        #[arg(long)]
        html: bool,
        /// For an `access` or `export` request: write the export to this file (created,
        /// never overwritten) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        #[command(flatten)]
        at: Location,
    },
    /// Refuse an open request. Ledgered (`request_refuse`).
    Refuse {
        /// The request id.
        id: String,
        /// `identity_not_verified`, `no_data_held`, `legal_obligation`,
        /// `manifestly_unfounded` or `duplicate`.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        at: Location,
    },
}

pub fn run(cmd: RequestsCommand) -> ExitCode {
    let at = match &cmd {
        RequestsCommand::List { at, .. }
        | RequestsCommand::Show { at, .. }
        | RequestsCommand::Create { at, .. }
        | RequestsCommand::Verify { at, .. }
        | RequestsCommand::Complete { at, .. }
        | RequestsCommand::Refuse { at, .. } => at,
    };
    let vault = match open(at, false) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let op = RequestHandler::Operator;
    let done = match cmd {
        RequestsCommand::List { state, .. } => {
            let which = match state {
                Which::Open => RequestList::Open,
                Which::Overdue => RequestList::Overdue,
                Which::All => RequestList::All,
            };
            // Every page, in turn (each ledgered as it is read).
            let mut after: Option<String> = None;
            loop {
                match vault.requests_page(op, which, after.as_deref(), MAX_REQUESTS_LISTED) {
                    Ok(page) => {
                        for r in &page.requests {
                            println!(
                                "{}\t{}\t{}\t{}{}\t{}",
                                r.id,
                                r.kind,
                                r.state,
                                r.due,
                                if r.overdue { " (overdue)" } else { "" },
                                r.subject.as_deref().unwrap_or("-")
                            );
                        }
                        match page.next {
                            Some(next) => after = Some(next),
                            None => break Ok(()),
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
        }
        RequestsCommand::Show { id, .. } => {
            vault.request(op, &id).map(|r| print!("{}", describe(&r)))
        }
        RequestsCommand::Create {
            kind,
            subject,
            channel,
            verification,
            purpose,
            ..
        } => {
            let input = RequestInput {
                kind,
                subject,
                channel,
                verification,
                purpose,
            };
            vault.create_request(op, &input).map(|r| {
                println!("{}", r.id);
                eprintln!("received {} request, due {}", r.kind, r.due);
            })
        }
        RequestsCommand::Verify { id, .. } => vault
            .verify_request(op, &id)
            .map(|r| eprintln!("request {} {}", r.id, r.state)),
        RequestsCommand::Complete {
            id, set, html, out, ..
        } => {
            let data = if set.is_empty() {
                None
            } else {
                match crate::subjects_cmd::parse_sets(&set) {
                    Ok(d) => Some(d),
                    Err(code) => return code,
                }
            };
            match vault.complete_request_with(op, &id, data.as_ref()) {
                Ok(c) => {
                    if let Some(e) = c.export {
                        let doc = custos_server::export::ExportDocument::new(
                            e,
                            vault.ledger_verifier_key(),
                        );
                        if let Err(code) =
                            crate::subjects_cmd::write_export(&doc, html, out.as_deref())
                        {
                            return code;
                        }
                    }
                    eprintln!("request {} {}", c.request.id, c.request.state);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        RequestsCommand::Refuse { id, reason, .. } => vault
            .refuse_request(op, &id, &reason)
            .map(|r| eprintln!("request {} {}", r.id, r.state)),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// One `key: value` line per field.
fn describe(r: &PersonRequest) -> String {
    format!(
        "id: {}\nkind: {}\nsubject: {}\nchannel: {}\nverification: {}\npurpose: {}\nstate: {}\nreason: {}\nreceived: {}\ndue: {}{}\nupdated: {}\ncreated_by: {}\nupdated_by: {}\n",
        r.id,
        r.kind,
        r.subject.as_deref().unwrap_or("-"),
        r.channel,
        r.verification,
        r.purpose.as_deref().unwrap_or("-"),
        r.state,
        r.reason.as_deref().unwrap_or("-"),
        r.received,
        r.due,
        if r.overdue { " (overdue)" } else { "" },
        r.updated,
        r.created_by,
        r.updated_by
    )
}
