//! `custos mailings send`: the operator sends a mailing (issue 14, item 4) against the data
//! directory or database, with the same decisions, ledger entries, headers and footer as
//! `POST /v1/mailings` (`MailingBy::Operator`: decided as the accessor the policy lets mail
//! for the purpose). A running `custos serve` over the same vault delivers the messages.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use custos_vault::{MailingBy, MailingInput};

use crate::vault_cmd::{Location, fail, open};

#[derive(Debug, Subcommand)]
pub enum MailingsCommand {
    /// Send a mailing for a purpose to every person eligible for it; prints the mailing's
    /// id, its recipients and the people excluded by reason.
    Send {
        /// The purpose (basis consent or opt-out, no recipient).
        #[arg(long)]
        purpose: String,
        /// The subject line.
        #[arg(long)]
        subject: String,
        /// A file holding the body, plain text (UTF-8).
        #[arg(long, value_name = "FILE")]
        text_file: PathBuf,
        /// A file holding an HTML body besides the text.
        #[arg(long, value_name = "FILE")]
        html_file: Option<PathBuf>,
        /// The server's public base URL the unsubscribe links start with.
        #[arg(long, env = "CUSTOS_PUBLIC_URL", value_name = "URL")]
        public_url: String,
        #[command(flatten)]
        at: Location,
    },
}

pub fn run(cmd: MailingsCommand) -> ExitCode {
    match cmd {
        MailingsCommand::Send {
            purpose,
            subject,
            text_file,
            html_file,
            public_url,
            at,
        } => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|e| fail(format!("{}: {e}", p.display())))
            };
            let text = match read(&text_file) {
                Ok(t) => t,
                Err(c) => return c,
            };
            let html = match html_file.as_ref().map(read).transpose() {
                Ok(h) => h,
                Err(c) => return c,
            };
            let vault = match open(&at, false) {
                Ok(v) => v,
                Err(c) => return c,
            };
            let input = MailingInput {
                purpose,
                subject,
                text,
                html,
            };
            match vault.send_mailing(MailingBy::Operator, &input, &public_url) {
                Ok(sent) => {
                    println!("mailing {}", sent.mailing);
                    println!("recipients {}", sent.recipients);
                    for (reason, n) in &sent.excluded {
                        println!("excluded {reason} {n}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}
