//! The `custos` binary: a thin clap front over the Custos crates.

mod policy_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Check, render, trace, explain and compare policy files.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd),
    }
}
