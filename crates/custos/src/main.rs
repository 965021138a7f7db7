//! The `custos` binary: a thin clap front over the Custos crates.

mod instruments_cmd;
mod mail_cmd;
mod mailings_cmd;
mod policy_cmd;
mod receipt_cmd;
mod requests_cmd;
mod serve_cmd;
mod subjects_cmd;
mod vault_cmd;
mod witness;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc, not the system allocator: the server allocates and frees on many threads (the
/// runtime, the vault workers, the ledger writer), where glibc's arenas spend a sixth of the
/// CPU of a read; see docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Custos keeps a privacy policy's promises by construction: the policy is a file, the notice
/// is rendered from it, and personal information leaves only through a decision it permits.
#[derive(Debug, Parser)]
#[command(name = "custos", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API: embedded SQLite in `--data` (or PostgreSQL), the built-in policy.
    Serve(serve_cmd::ServeArgs),
    /// Check, render, trace, explain and compare policy files.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Create and revoke API keys; rotate the master key.
    #[command(subcommand)]
    Keys(vault_cmd::KeysCommand),
    /// Check the ledger.
    #[command(subcommand)]
    Audit(vault_cmd::AuditCommand),
    /// Delete what the policy no longer allows to be kept.
    #[command(subcommand)]
    Retention(vault_cmd::RetentionCommand),
    /// Register and show legal instruments (court orders, subpoenas, …).
    #[command(subcommand)]
    Instruments(instruments_cmd::InstrumentsCommand),
    /// A person's rights acts for a verified request: export, correct, deactivate, erase.
    #[command(subcommand)]
    Subjects(subjects_cmd::SubjectsCommand),
    /// Enter, list, verify, complete and refuse people's requests, as staff do.
    #[command(subcommand)]
    Requests(requests_cmd::RequestsCommand),
    /// Check consent receipts offline.
    #[command(subcommand)]
    Receipt(receipt_cmd::ReceiptCommand),
    /// Inbound mail: unsubscribe requests by email (`custos mail intake -` from the MTA).
    #[command(subcommand)]
    Mail(mail_cmd::MailCommand),
    /// Send a mailing to the people eligible for its purpose.
    #[command(subcommand)]
    Mailings(mailings_cmd::MailingsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve_cmd::run(args),
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Keys(cmd) => vault_cmd::keys(cmd),
        Command::Audit(cmd) => vault_cmd::audit(cmd),
        Command::Retention(cmd) => vault_cmd::retention(cmd),
        Command::Instruments(cmd) => instruments_cmd::run(cmd),
        Command::Subjects(cmd) => subjects_cmd::run(cmd),
        Command::Requests(cmd) => requests_cmd::run(cmd),
        Command::Receipt(cmd) => receipt_cmd::run(cmd),
        Command::Mail(cmd) => mail_cmd::run(cmd),
        Command::Mailings(cmd) => mailings_cmd::run(cmd),
    }
}
