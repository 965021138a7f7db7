//! `custos instruments …`: legal instruments registered by the operator (issue 12).

use std::process::ExitCode;

use clap::Subcommand;
use custos_vault::{Instrument, InstrumentInput};

use crate::vault_cmd::{Location, fail, open};

#[derive(Debug, Subcommand)]
pub enum InstrumentsCommand {
    /// Register a legal instrument; prints its id alone. A read or decision for a purpose
    /// that requires a reference (every legal one) names that id as its `reference`.
    ///
    /// Ledgered, one `instrument_register` entry per subject covered.
    Register {
        /// `court_order`, `subpoena`, `authority_request`, `fraud_case` or
        /// `purchaser_authority`.
        #[arg(long)]
        kind: String,
        /// Who issued it (a court, an authority), at most 128 characters.
        #[arg(long)]
        issuer: String,
        /// The day it was issued, `YYYY-MM-DD`.
        #[arg(long)]
        issued: String,
        /// SHA-256 of the document, 64 hex digits.
        #[arg(long)]
        document_sha256: String,
        /// A subject it covers (repeat, or comma-separate, for several).
        #[arg(
            long = "subject",
            value_name = "ID",
            required = true,
            value_delimiter = ','
        )]
        subjects: Vec<String>,
        /// A category it covers (repeat, or comma-separate, for several).
        #[arg(
            long = "category",
            value_name = "ID",
            required = true,
            value_delimiter = ','
        )]
        categories: Vec<String>,
        /// When it expires: an RFC 3339 date-time, e.g. `2027-01-31T23:59:59Z`.
        #[arg(long)]
        expires: String,
        #[command(flatten)]
        at: Location,
    },
    /// Show a registered legal instrument.
    Show {
        /// The instrument id.
        id: String,
        #[command(flatten)]
        at: Location,
    },
}

pub fn run(cmd: InstrumentsCommand) -> ExitCode {
    match cmd {
        InstrumentsCommand::Register {
            kind,
            issuer,
            issued,
            document_sha256,
            subjects,
            categories,
            expires,
            at,
        } => {
            let vault = match open(&at, false) {
                Ok(v) => v,
                Err(code) => return code,
            };
            let input = InstrumentInput {
                kind,
                issuer,
                issued,
                document_sha256,
                subjects,
                categories,
                expires,
            };
            match vault.register_instrument_as_operator(&input) {
                Ok(i) => {
                    println!("{}", i.id);
                    eprintln!(
                        "registered {} covering {} subject(s) and {} categor{}, expiring {}",
                        i.kind,
                        i.subjects.len(),
                        i.categories.len(),
                        if i.categories.len() == 1 { "y" } else { "ies" },
                        i.expires
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        InstrumentsCommand::Show { id, at } => {
            let vault = match open(&at, false) {
                Ok(v) => v,
                Err(code) => return code,
            };
            match vault.instrument_as_operator(&id) {
                Ok(i) => {
                    print!("{}", describe(&i));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// One `key: value` line per field.
fn describe(i: &Instrument) -> String {
    format!(
        "id: {}\nkind: {}\nissuer: {}\nissued: {}\ndocument_sha256: {}\nsubjects: {}\ncategories: {}\nexpires: {}{}\nregistered_by: {}\nregistered: {}\n",
        i.id,
        i.kind,
        i.issuer,
        i.issued,
        i.document_sha256,
        i.subjects.join(","),
        i.categories.join(","),
        i.expires,
        if i.expired { " (expired)" } else { "" },
        i.registered_by,
        i.registered
    )
}
