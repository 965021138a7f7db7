//! `custos mail intake FILE`: an unsubscribe by email (issue 14, item 5; C032). The MTA that
//! receives `unsubscribe@…` pipes each message to `custos mail intake -` (or the operator
//! hands a saved `.eml`); the vault matches the `From` address to subjects through the blind
//! index and unsubscribes each from the communication topics, as the operator, with method
//! `email_request` (`vault/inbound.rs`). The exit status speaks the MTA's language
//! (sysexits): 0 handled (an unknown address too: ignored, its arrival ledgered), 65
//! (`EX_DATAERR`) a message the vault refuses (malformed, no `From`, too large) — the MTA
//! bounces it — and 75 (`EX_TEMPFAIL`) anything else, which the MTA retries.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use custos_vault::{MAX_INBOUND_MAIL, RequestHandler};

use crate::vault_cmd::{Location, open};

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Handle an inbound unsubscribe message (RFC 5322): FILE, or `-` for standard input (an
    /// MTA's pipe). Prints how many subjects matched and how many choices changed; never an
    /// address.
    Intake {
        /// The message file, or `-` for standard input.
        file: PathBuf,
        #[command(flatten)]
        at: Location,
    },
}

const EX_DATAERR: u8 = 65;
const EX_TEMPFAIL: u8 = 75;

pub fn run(cmd: MailCommand) -> ExitCode {
    match cmd {
        MailCommand::Intake { file, at } => {
            // One byte past the limit tells a message too large from one at the limit.
            let limit = u64::try_from(MAX_INBOUND_MAIL).unwrap_or(u64::MAX) + 1;
            let mut raw = Vec::new();
            let read = if file.as_os_str() == "-" {
                std::io::stdin().take(limit).read_to_end(&mut raw)
            } else {
                std::fs::File::open(&file).and_then(|f| f.take(limit).read_to_end(&mut raw))
            };
            if let Err(e) = read {
                eprintln!("error: reading the message: {}", e.kind());
                return ExitCode::from(EX_TEMPFAIL);
            }
            let Ok(vault) = open(&at, false) else {
                return ExitCode::from(EX_TEMPFAIL);
            };
            match vault.intake_mail(RequestHandler::Operator, &raw) {
                Ok(i) => {
                    println!("matched: {}\nchanges: {}", i.matched, i.changes);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    let refused = matches!(
                        e.code(),
                        "invalid_message" | "missing_from" | "mail_too_large"
                    );
                    ExitCode::from(if refused { EX_DATAERR } else { EX_TEMPFAIL })
                }
            }
        }
    }
}
