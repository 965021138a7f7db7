//! `custos receipt verify FILE`: checks a consent receipt offline (issue 14) — its signature
//! with the key its `kid` names (from a JWKS file, as `GET /.well-known/jwks.json` serves
//! it, or from the vault's own keys with `--data` / `--database-url`), then its structure;
//! prints its fields. Exit 0 when it verifies, 1 when it does not (a changed byte, another
//! key, not a receipt), 2 on a bad argument.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use crate::vault_cmd::{Location, fail, open};

#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Verify a consent receipt (a compact JWS) and print its fields.
    Verify {
        /// The receipt: a file holding the compact JWS (as `receipt` in the answer of
        /// `POST /v1/subjects/{id}/consents`), or `-` for standard input.
        file: PathBuf,
        /// The signing keys, a JWKS file (`GET /.well-known/jwks.json`); without it, the
        /// keys of the vault at `--data` or `--database-url`.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        #[command(flatten)]
        at: Location,
    },
}

pub fn run(cmd: ReceiptCommand) -> ExitCode {
    match cmd {
        ReceiptCommand::Verify { file, jwks, at } => verify(&file, jwks.as_deref(), &at),
    }
}

fn read(path: &std::path::Path) -> Result<String, ExitCode> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    text.map_err(|e| fail(format!("cannot read `{}`: {e}", path.display())))
}

fn verify(file: &std::path::Path, jwks: Option<&std::path::Path>, at: &Location) -> ExitCode {
    let receipt = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let keys = match jwks {
        Some(p) => match read(p) {
            Ok(t) => t,
            Err(code) => return code,
        },
        None => match open(at, false) {
            Ok(v) => custos_vault::jwks(&v.receipt_keys()).to_string(),
            Err(code) => return code,
        },
    };
    let ok = match custos_vault::verify_receipt(receipt.trim(), &keys) {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("error: `{}` does not verify: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    println!("ok: signed by key {}", ok.kid);
    for (k, v) in &ok.claims {
        match v {
            Value::String(s) => println!("{k}: {s}"),
            other => println!("{k}: {other}"),
        }
    }
    ExitCode::SUCCESS
}
