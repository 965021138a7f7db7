//! Issue 13, items 1 and 2: the outbox and people's sign-in. Cases of the conformance suite
//! (both backends, through `cases.rs`), the attacker's side first.

use custos_vault::vault::{MAX_CODE_ATTEMPTS, MAX_CODES_PER_HOUR, MAX_MAIL_ATTEMPTS};
use custos_vault::{Error, Mail, SignInRequest, Vault};

use crate::support::{Harness, attendee};

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The codes mailed since the last call, by address; each message marked sent.
fn codes(v: &Vault) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for m in v.claim_mail(100).unwrap() {
        v.mail_sent(&m).unwrap();
        let text = &m.mail.text;
        let start = text.find(|c: char| c.is_ascii_digit()).unwrap();
        out.insert(m.mail.to.clone(), text[start..start + 8].to_string());
    }
    out
}

fn code_of(v: &Vault, to: &str) -> String {
    codes(v)
        .remove(to)
        .unwrap_or_else(|| panic!("no mail to {to}"))
}

fn err_code(r: Result<impl std::fmt::Debug, Error>) -> &'static str {
    r.unwrap_err().code()
}

/// A queued message is sealed (its address appears nowhere in the database); a failed
/// attempt is retried later, not at once; a sent one, or one given up, keeps no content.
pub fn outbox_seals_and_forgets_what_it_sent(h: Harness) {
    let v = h.vault();
    let canary = "zq-outbox-canary-51c2@example.invalid";
    let body = "Qxoutboxbody secret 93817";
    let mail = |to: &str| Mail {
        to: to.into(),
        subject: "Qxsubjectline".into(),
        text: body.into(),
        ..Default::default()
    };
    let a = v.queue_mail(&mail(canary)).unwrap();
    let dump = h.dump();
    for needle in [canary, "outbox-canary", body, "Qxsubjectline"] {
        assert!(!contains(&dump, needle), "`{needle}` stored in plaintext");
    }
    // Claimed once: a second claim while it is leased gets nothing.
    let claimed = v.claim_mail(10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].mail.to, canary);
    assert_eq!(claimed[0].mail.text, body);
    assert!(v.claim_mail(10).unwrap().is_empty());
    // A transient failure: queued again, later, content kept.
    assert_eq!(v.mail_failed(&claimed[0], false).unwrap(), "queued");
    let s = v.mail_status(&a).unwrap().unwrap();
    assert_eq!(
        (s.state.as_str(), s.attempts, s.has_content),
        ("queued", 1, true)
    );
    assert!(s.next_ms > s.created_ms + 20_000, "{s:?}");
    assert!(v.claim_mail(10).unwrap().is_empty());
    // Due again: sent, and then nothing of it is left but id, state, attempts and times.
    h.exec("UPDATE outbox SET next_ms = 0");
    let again = v.claim_mail(10).unwrap();
    assert_eq!(again[0].attempts, 1);
    v.mail_sent(&again[0]).unwrap();
    let s = v.mail_status(&a).unwrap().unwrap();
    assert_eq!(
        (s.state.as_str(), s.attempts, s.has_content),
        ("sent", 2, false)
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox WHERE sealed IS NOT NULL"),
        0
    );
    // Refused for good, and out of attempts: given up, content deleted.
    let b = v.queue_mail(&mail("b@example.invalid")).unwrap();
    let m = v.claim_mail(10).unwrap();
    assert_eq!(v.mail_failed(&m[0], true).unwrap(), "failed");
    assert!(!v.mail_status(&b).unwrap().unwrap().has_content);
    let c = v.queue_mail(&mail("c@example.invalid")).unwrap();
    for i in 1..=MAX_MAIL_ATTEMPTS {
        h.exec("UPDATE outbox SET next_ms = 0 WHERE state = 'queued'");
        let m = v.claim_mail(10).unwrap();
        assert_eq!(m.len(), 1, "attempt {i}");
        let state = v.mail_failed(&m[0], false).unwrap();
        assert_eq!(
            state,
            if i == MAX_MAIL_ATTEMPTS {
                "failed"
            } else {
                "queued"
            }
        );
    }
    let s = v.mail_status(&c).unwrap().unwrap();
    assert_eq!(
        (s.state.as_str(), s.attempts, s.has_content),
        ("failed", MAX_MAIL_ATTEMPTS, false)
    );
    // The ledger names messages by id, never their address.
    let entries = v.store().ledger_page(1, 10_000).unwrap();
    assert!(entries.iter().any(|e| e.draft.action == "mail_sent"));
    assert!(
        entries
            .iter()
            .all(|e| !format!("{:?}", e.draft).contains('@'))
    );
    let dump = h.dump();
    for needle in [canary, body, "Qxsubjectline"] {
        assert!(!contains(&dump, needle), "`{needle}` stored in plaintext");
    }
}

/// A code mailed to an address signs in as every subject holding it and no other; it signs
/// in once; a code for A does not sign in as B; a session is stored hashed and ends at
/// sign-out; nothing of the address or the code is stored or ledgered in plaintext.
pub fn sign_in_reaches_the_address_subjects_only(h: Harness) {
    let v = h.vault();
    let email = "zq-person-2b7e@example.invalid";
    let a1 = v
        .collect("meeting-center", &attendee("Pat One", email))
        .unwrap();
    let a2 = v
        .collect("meeting-center", &attendee("Pat Two", email))
        .unwrap();
    let other = "zq-other-4c1d@example.invalid";
    let b = v
        .collect("meeting-center", &attendee("Other", other))
        .unwrap();
    assert_eq!(v.request_sign_in(email).unwrap(), SignInRequest::Queued);
    assert_eq!(v.request_sign_in(other).unwrap(), SignInRequest::Queued);
    let mut mailed = codes(v);
    let code_a = mailed.remove(email).unwrap();
    let code_b = mailed.remove(other).unwrap();
    // The address, typed differently, is the same address.
    let upper = email.to_uppercase();
    // A's code does not sign in as B, nor a made-up one as A.
    assert_eq!(err_code(v.verify_sign_in(other, &code_a)), "code_invalid");
    let wrong = if code_a == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    assert_eq!(err_code(v.verify_sign_in(email, wrong)), "code_invalid");
    assert_eq!(err_code(v.verify_sign_in(email, "12ab")), "invalid_code");
    let signed = v.verify_sign_in(&upper, &code_a).unwrap();
    let mut want = vec![a1.clone(), a2.clone()];
    want.sort();
    assert_eq!(signed.subjects, want);
    // Once only.
    assert_eq!(err_code(v.verify_sign_in(email, &code_a)), "code_invalid");
    let p = v.authenticate_person(&signed.session).unwrap();
    assert_eq!(p.subjects(), want.as_slice());
    assert!(!p.reaches(&b));
    assert!(p.signed_in_within(std::time::Duration::from_secs(60)));
    let overview = v.person_overview(&p).unwrap();
    assert_eq!(overview.len(), 2);
    assert!(
        overview[0]
            .categories
            .contains(&"contact.email".to_string())
    );
    assert_eq!(
        overview[0].services,
        vec![("meeting-center".into(), "attendee".into())]
    );
    // An API key is not a session, nor a session an API key.
    let key = v.create_key("meeting-center").unwrap();
    assert!(matches!(
        v.authenticate_person(&key),
        Err(Error::Unauthorized)
    ));
    assert!(matches!(
        v.authenticate(&signed.session),
        Err(Error::Unauthorized)
    ));
    // B's own code still works for B, and B's session reaches B only.
    let sb = v.verify_sign_in(other, &code_b).unwrap();
    assert_eq!(sb.subjects, vec![b]);
    // Signed out: the session is gone.
    v.sign_out(&p).unwrap();
    assert!(matches!(
        v.authenticate_person(&signed.session),
        Err(Error::Unauthorized)
    ));
    // Stored: hashes only.
    let dump = h.dump();
    for needle in [
        email,
        upper.as_str(),
        "person-2b7e",
        &code_a,
        &signed.session,
    ] {
        assert!(!contains(&dump, needle), "`{needle}` stored in plaintext");
    }
    let entries = v.store().ledger_page(1, 10_000).unwrap();
    let ledger = format!("{entries:?}");
    assert!(!ledger.contains(email) && !ledger.contains(&code_a));
    for (action, effect) in [
        ("sign_in_code", "sent"),
        ("sign_in", "done"),
        ("sign_in", "failed"),
        ("sign_out", "done"),
        ("me_overview", "done"),
    ] {
        assert!(
            entries.iter().any(|e| e.draft.actor == "person"
                && e.draft.action == action
                && e.draft.effect == effect
                && e.draft.subject == a1.as_str()),
            "no {action}/{effect} entry for the subject"
        );
    }
}

/// Guessing is cut off after the attempts allowed (even the right code then fails), a code
/// expires, and an address gets a bounded number of codes an hour — an unknown address
/// alike, and no mail goes to it.
pub fn sign_in_codes_are_bounded(h: Harness) {
    let v = h.vault();
    let email = "zq-guess-77aa@example.invalid";
    v.collect("meeting-center", &attendee("Guess", email))
        .unwrap();
    v.request_sign_in(email).unwrap();
    let code = code_of(v, email);
    let wrong = if code == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    for _ in 0..MAX_CODE_ATTEMPTS {
        assert_eq!(err_code(v.verify_sign_in(email, wrong)), "code_invalid");
    }
    assert_eq!(err_code(v.verify_sign_in(email, &code)), "code_exhausted");
    // A new code; expired before use.
    v.request_sign_in(email).unwrap();
    let code = code_of(v, email);
    h.exec("UPDATE sign_in_codes SET expires_ms = 1");
    assert_eq!(err_code(v.verify_sign_in(email, &code)), "code_expired");
    // Two codes so far; the rest of the hour's allowance, then refusals.
    for _ in 2..MAX_CODES_PER_HOUR {
        assert_eq!(v.request_sign_in(email).unwrap(), SignInRequest::Queued);
    }
    let SignInRequest::RateLimited { retry_after } = v.request_sign_in(email).unwrap() else {
        panic!("not rate-limited")
    };
    assert!(retry_after.as_secs() > 3000 && retry_after.as_secs() <= 3600);
    // An unknown address: the same answers, no mail, and its codes sign in as nobody.
    let unknown = "zq-nobody-0f0f@example.invalid";
    let mails_before = h.count("SELECT COUNT(*) FROM outbox");
    for _ in 0..MAX_CODES_PER_HOUR {
        assert_eq!(v.request_sign_in(unknown).unwrap(), SignInRequest::Queued);
    }
    assert!(matches!(
        v.request_sign_in(unknown).unwrap(),
        SignInRequest::RateLimited { .. }
    ));
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox"), mails_before);
    assert_eq!(
        err_code(v.verify_sign_in(unknown, "12345678")),
        "code_invalid"
    );
    assert_eq!(
        err_code(v.verify_sign_in("never@asked.invalid", "12345678")),
        "code_invalid"
    );
    assert_eq!(
        err_code(v.request_sign_in("not an address")),
        "invalid_email"
    );
}

/// The retention sweep deletes a sign-in code once it can neither sign in nor count towards
/// its address's hourly limit, and a session once it has expired or been signed out; a code
/// still counting, and a live session, stay — the person stays signed in and the limit holds.
pub fn expired_sign_ins_are_swept(h: Harness) {
    use sha2::Digest as _;
    let v = h.vault();
    let (live_mail, old_mail) = (
        "zq-sweep-live@example.invalid",
        "zq-sweep-old@example.invalid",
    );
    v.collect("meeting-center", &attendee("Live", live_mail))
        .unwrap();
    v.collect("meeting-center", &attendee("Old", old_mail))
        .unwrap();
    let age_codes = |minutes: i64| {
        h.exec(&format!(
            "UPDATE sign_in_codes SET created_ms = created_ms - {0}, expires_ms = expires_ms - {0}",
            minutes * 60_000
        ));
    };
    // The old address's code, made 91 minutes ago: past its expiry and out of its hour.
    v.request_sign_in(old_mail).unwrap();
    let _ = codes(v);
    age_codes(61);
    // The live address's three codes, one made 30 minutes ago and two now (expired or used,
    // they still count towards its hour), and their three sessions: one live, one expired,
    // one signed out.
    let mut sessions = Vec::new();
    for i in 0..3 {
        v.request_sign_in(live_mail).unwrap();
        let code = code_of(v, live_mail);
        sessions.push(v.verify_sign_in(live_mail, &code).unwrap().session);
        if i == 0 {
            age_codes(30);
        }
    }
    let hash: String = sha2::Sha256::digest(sessions[1].as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    h.exec(&format!(
        "UPDATE sessions SET expires_ms = 1 WHERE hash = '{hash}'"
    ));
    let out = v.authenticate_person(&sessions[2]).unwrap();
    v.sign_out(&out).unwrap();
    assert_eq!(h.count("SELECT COUNT(*) FROM sign_in_codes"), 4);
    assert_eq!(h.count("SELECT COUNT(*) FROM sessions"), 3);
    let sweep = v.purge_expired("retention").unwrap();
    assert_eq!((sweep.codes, sweep.sessions), (1, 2));
    assert_eq!(h.count("SELECT COUNT(*) FROM sign_in_codes"), 3);
    assert_eq!(h.count("SELECT COUNT(*) FROM sessions"), 1);
    let entry = crate::cases::last_entry(v);
    assert_eq!(
        (entry.draft.action.as_str(), entry.draft.reasons.as_str()),
        (
            "purge_expired",
            "records:0,values:0,codes:1,sessions:2,mail:0"
        )
    );
    // The live session still signs in; the others sign in nobody.
    assert!(v.authenticate_person(&sessions[0]).is_ok());
    for s in &sessions[1..] {
        assert_eq!(err_code(v.authenticate_person(s)), "unauthorized");
    }
    // The live address's codes still count: two more this hour, then it is limited.
    for _ in 3..MAX_CODES_PER_HOUR {
        assert_eq!(v.request_sign_in(live_mail).unwrap(), SignInRequest::Queued);
    }
    assert!(matches!(
        v.request_sign_in(live_mail).unwrap(),
        SignInRequest::RateLimited { .. }
    ));
    // Nothing more is due.
    let again = v.purge_expired("retention").unwrap();
    assert_eq!((again.codes, again.sessions), (0, 0));
}

/// The retention sweep deletes an outbox row once its message has been done (sent or given
/// up) for longer than `FINISHED_MAIL_KEPT`; one done recently stays, and so does a queued
/// one, however old.
pub fn finished_mail_is_swept(h: Harness) {
    let v = h.vault();
    let mail = |to: &str| Mail {
        to: to.into(),
        subject: "Qxsweep".into(),
        text: "Qxsweep body".into(),
        ..Default::default()
    };
    let old = v.queue_mail(&mail("zq-old@example.invalid")).unwrap();
    let recent = v.queue_mail(&mail("zq-recent@example.invalid")).unwrap();
    for m in v.claim_mail(10).unwrap() {
        v.mail_sent(&m).unwrap();
    }
    let queued = v.queue_mail(&mail("zq-queued@example.invalid")).unwrap();
    let day = 86_400_000_i64;
    h.exec(&format!(
        "UPDATE outbox SET done_ms = done_ms - {} WHERE id = '{old}'",
        31 * day
    ));
    h.exec(&format!(
        "UPDATE outbox SET created_ms = created_ms - {0}, next_ms = next_ms - {0} WHERE id = '{queued}'",
        90 * day
    ));
    let sweep = v.purge_expired("retention").unwrap();
    assert_eq!(sweep.mail, 1);
    assert!(v.mail_status(&old).unwrap().is_none());
    assert_eq!(v.mail_status(&recent).unwrap().unwrap().state, "sent");
    assert_eq!(v.mail_status(&queued).unwrap().unwrap().state, "queued");
    assert!(
        crate::cases::last_entry(v)
            .draft
            .reasons
            .ends_with(",mail:1")
    );
    assert_eq!(v.purge_expired("retention").unwrap().mail, 0);
}
