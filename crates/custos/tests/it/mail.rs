//! `custos mail intake` (C032) and a letter entered with `custos requests` (C033), on an
//! embedded vault, as an MTA and the operator run them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use custos_vault::{CollectionInput, ReadInput, Requester, SubjectId, Vault};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("custos_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `custos ARGS` in `dir`, `stdin` on its standard input.
fn custos(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(args)
        .current_dir(dir)
        .env_remove("CUSTOS_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("custos runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn open(data: &Path) -> Vault {
    let policy = Arc::new(custos_policy::Policy::builtin().unwrap());
    Vault::open_embedded(data, policy).unwrap()
}

/// A website account holder who was told of service announcements: its id.
fn account_holder(data: &Path, email: &str) -> SubjectId {
    let v = open(data);
    let input = CollectionInput {
        service: "website".into(),
        role: "account-holder".into(),
        purposes: vec!["account".into(), "marketing.announcements".into()],
        notice: "2010-04-24".into(),
        age: Some(30),
        data: [("contact.name", "Pia Pipe"), ("contact.email", email)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    v.collect("website", &input).unwrap()
}

/// The effect of `marketing` using the subject's address for announcements.
fn announcements(data: &Path, id: &SubjectId) -> String {
    open(data)
        .decide(
            "marketing",
            id,
            &ReadInput {
                purpose: "marketing.announcements".into(),
                categories: Some(vec!["contact.email".into()]),
                ..Default::default()
            },
        )
        .unwrap()
        .effect
}

fn methods(data: &Path, id: &SubjectId) -> Vec<(String, String, bool)> {
    open(data)
        .consents(Requester::Operator, id)
        .unwrap()
        .into_iter()
        .map(|c| (c.purpose, c.method, c.given))
        .collect()
}

/// C032 by pipe: the MTA pipes the message to `custos mail intake -`; the sender's subject
/// is unsubscribed (`email_request`), exit 0 and the counts, never the address. An unknown
/// address is exit 0 and nothing; a message that is none is exit 65 (the MTA bounces it)
/// with the problem named; a file works as standard input does.
#[test]
fn mail_intake_unsubscribes_the_sender_from_a_pipe() {
    let dir = temp("mail_intake");
    let data = dir.join("custos-data");
    let id = account_holder(&data, "pia.pipe-c032@example.com");
    assert_eq!(announcements(&data, &id), "permit");
    let msg = b"Return-Path: <pia.pipe-c032@example.com>\r\nFrom: Pia Pipe <Pia.Pipe-C032@example.com>\r\nTo: unsubscribe@webex.com\r\nSubject: unsubscribe\r\n\r\nunsubscribe me\r\n";
    let out = custos(&dir, &["mail", "intake", "-"], msg);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("matched: 1\nchanges: "), "{stdout}");
    assert!(!stdout.contains("pia") && out.stderr.is_empty());
    assert_eq!(announcements(&data, &id), "deny");
    let m = methods(&data, &id);
    assert!(
        m.contains(&(
            "marketing.announcements".into(),
            "email_request".into(),
            false
        )),
        "{m:?}"
    );

    let out = custos(
        &dir,
        &["mail", "intake", "-"],
        b"From: nobody-c032@example.org\r\n\r\nunsubscribe\r\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "matched: 0\nchanges: 0\n"
    );

    let bad = dir.join("bad.eml");
    std::fs::write(&bad, b"pia.pipe-c032@example.com said hi\r\n\r\n").unwrap();
    let out = custos(&dir, &["mail", "intake", bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not an RFC 5322 message"), "{err}");
    assert!(!err.contains("pia"), "{err}");
    let out = custos(&dir, &["mail", "intake", "-"], b"Subject: hi\r\n\r\nx\r\n");
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// C033: a letter to the Legal Department, entered by the operator as an `object` request
/// by `letter` naming no purpose, verified and completed: every topic that was on is off,
/// by `letter`, and the next decision for announcements refuses.
#[test]
fn a_letter_entered_and_completed_by_the_operator_unsubscribes() {
    let dir = temp("mail_letter");
    let data = dir.join("custos-data");
    let id = account_holder(&data, "leo.letter-c033@example.com");
    let id_s = id.to_string();
    let out = custos(
        &dir,
        &[
            "requests",
            "create",
            "--kind",
            "object",
            "--subject",
            &id_s,
            "--channel",
            "letter",
            "--verification",
            "document_checked",
        ],
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    let rid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(announcements(&data, &id), "permit");
    assert!(
        custos(&dir, &["requests", "verify", &rid], b"")
            .status
            .success()
    );
    let out = custos(&dir, &["requests", "complete", &rid], b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(announcements(&data, &id), "deny");
    let m = methods(&data, &id);
    assert!(
        !m.is_empty()
            && m.iter()
                .all(|(_, method, given)| method == "letter" && !given),
        "{m:?}"
    );
    assert!(
        m.iter().any(|(p, _, _)| p == "marketing.announcements"),
        "{m:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
