//! Issue 14, item 4: mailings and the one-click unsubscribe (RFC 8058). Cases of the
//! conformance suite (both backends). The tests proving C031 (every promotional message
//! carries its unsubscribe instructions) are named `c031_…`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use custos_vault::{
    Actor, Error, MailingInput, OutgoingMail, Vault, ledger::Draft, vault::ONE_CLICK_POST,
};

use crate::support::{Harness, attendee, registration};

const BASE: &str = "https://privacy.example.com";

fn mailing(purpose: &str) -> MailingInput {
    MailingInput {
        purpose: purpose.into(),
        subject: "Service announcements".into(),
        text: "WebEx has new features.".into(),
        html: None,
    }
}

fn header<'a>(m: &'a OutgoingMail, name: &str) -> Option<&'a str> {
    m.mail
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The token of a queued message's `List-Unsubscribe` URL.
fn token_of(m: &OutgoingMail) -> String {
    let v = header(m, "List-Unsubscribe").unwrap();
    let start = v.find("/u/").unwrap() + 3;
    let end = v[start..].find('>').unwrap() + start;
    v[start..end].to_string()
}

/// Every message queued now, by recipient.
fn queued(v: &Vault) -> Vec<OutgoingMail> {
    let mut out = v.claim_mail(1000).unwrap();
    for m in &out {
        v.mail_sent(m).unwrap();
    }
    out.sort_by(|a, b| a.mail.to.cmp(&b.mail.to));
    out
}

fn entries(v: &Vault) -> Vec<Draft> {
    let n = v.verify_ledger().unwrap().entries;
    v.store()
        .ledger_page(1, n)
        .unwrap()
        .into_iter()
        .map(|e| e.draft)
        .collect()
}

fn field_of(e: &Error) -> (&str, &str) {
    match e {
        Error::InvalidField { code, field, .. } => (code, field.as_str()),
        other => panic!("expected a field error, got {other:?}"),
    }
}

/// C031, C032, C033: every message of a mailing carries RFC 8058's header fields, exactly,
/// and ends with the unsubscribe instructions — the one-click link, the unsubscribe address
/// and the postal address of the policy — and its one-click unsubscribe takes the person
/// out of the next mailing, with a receipt, once.
pub fn c031_every_mailing_message_carries_unsubscribe_headers_and_footer(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "website",
            &registration("ann@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    let _bob = v
        .collect(
            "website",
            &registration("bob@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    let sent = v
        .send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    assert_eq!(sent.recipients, 2, "{sent:?}");
    assert!(sent.excluded.is_empty(), "{sent:?}");
    let mails = queued(v);
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].mail.to, "ann@example.com");
    for m in &mails {
        let token = token_of(m);
        assert_eq!(token.len(), custos_vault::vault::TOKEN_CHARS);
        assert_eq!(
            header(m, "List-Unsubscribe"),
            Some(
                format!(
                    "<{BASE}/u/{token}>, <mailto:unsubscribe@webex.com?subject=unsubscribe-{token}>"
                )
                .as_str()
            )
        );
        assert_eq!(header(m, "List-Unsubscribe-Post"), Some(ONE_CLICK_POST));
        assert_eq!(ONE_CLICK_POST, "List-Unsubscribe=One-Click");
        assert_eq!(m.mail.subject, "Service announcements");
        let text = &m.mail.text;
        assert!(text.starts_with("WebEx has new features."), "{text}");
        let footer = &text[text.find("\n--\n").expect("a footer")..];
        assert!(footer.contains(&format!("{BASE}/u/{token}")), "{footer}");
        assert!(footer.contains("unsubscribe@webex.com"), "{footer}");
        assert!(footer.contains(&format!("unsubscribe-{token}")), "{footer}");
        assert!(footer.contains("3979 Freedom Circle"), "{footer}");
        assert!(
            footer.contains("Service announcements and offers"),
            "{footer}"
        );
    }
    // The ledger: the mailing, and one entry per person, with the category and purpose.
    let log = entries(v);
    let tag = format!("mailing:{}", sent.mailing);
    let per_person: Vec<&Draft> = log
        .iter()
        .filter(|d| d.action == "mail" && d.reasons.contains(&tag))
        .collect();
    assert_eq!(per_person.len(), 2);
    assert!(per_person.iter().all(|d| d.effect == "permit"
        && d.categories == "contact.email"
        && d.purpose == "marketing.announcements"
        && d.actor == "marketing"));
    // Ann's one click: an objection with a receipt, by the person.
    let ann_token = token_of(&mails[0]);
    let t = v.verify_unsubscribe_token(&ann_token).unwrap();
    assert_eq!(t.subject, ann);
    assert_eq!(t.mailing, sent.mailing);
    assert_eq!(t.purpose, "marketing.announcements");
    let before = v.store().consents(ann.as_str()).unwrap().len();
    let u = v.unsubscribe(&ann_token).unwrap();
    assert!(!u.already && u.receipt.is_some(), "{u:?}");
    let last = entries(v).pop().unwrap();
    assert_eq!(
        (
            last.actor.as_str(),
            last.action.as_str(),
            last.effect.as_str()
        ),
        ("person", "objection", "given")
    );
    assert!(
        last.reasons.starts_with("one_click_unsubscribe,receipt:"),
        "{}",
        last.reasons
    );
    assert!(last.reasons.ends_with(&tag), "{}", last.reasons);
    // Replayed: nothing more recorded.
    let again = v.unsubscribe(&ann_token).unwrap();
    assert!(again.already && again.receipt.is_none());
    assert_eq!(v.store().consents(ann.as_str()).unwrap().len(), before + 1);
    // The next mailing leaves Ann out, and says why.
    let next = v
        .send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    assert_eq!(next.recipients, 1);
    assert_eq!(next.excluded.get("objected"), Some(&1), "{next:?}");
    let mails = queued(v);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].mail.to, "bob@example.com");
    // The stored mailing has its counts, for its sender.
    let shown = v.mailing("marketing", &next.mailing).unwrap().unwrap();
    assert_eq!(shown.sent.recipients, 1);
    assert_eq!(shown.sent.excluded.get("objected"), Some(&1));
    assert_eq!(shown.subject, "Service announcements");
    assert!(v.mailing("support", &next.mailing).unwrap().is_none());
    assert!(v.mailing("admin", &next.mailing).unwrap().is_some());
}

/// C031 with an HTML body: both parts end with the instructions.
pub fn c031_html_mailings_carry_the_footer_too(h: Harness) {
    let v = h.vault();
    v.collect(
        "website",
        &registration("hana@example.com", &["account", "marketing.announcements"]),
    )
    .unwrap();
    let mut input = mailing("newsletters");
    input.html = Some("<p>News</p>".into());
    // Newsletters rest on consent: nobody consented yet.
    let sent = v.send_mailing("marketing", &input, BASE).unwrap();
    assert_eq!(sent.recipients, 0);
    assert_eq!(sent.excluded.get("consent_missing"), Some(&1), "{sent:?}");
    let sent = v
        .send_mailing(
            "marketing",
            &{
                let mut i = input.clone();
                i.purpose = "marketing.announcements".into();
                i
            },
            BASE,
        )
        .unwrap();
    assert_eq!(sent.recipients, 1);
    let m = queued(v).remove(0);
    let html = m.mail.html.as_deref().unwrap();
    let token = token_of(&m);
    assert!(html.starts_with("<p>News</p>"));
    assert!(
        html.contains(&format!("href=\"{BASE}/u/{token}\"")),
        "{html}"
    );
    assert!(html.contains("unsubscribe@webex.com") && html.contains("3979 Freedom Circle"));
    assert!(m.mail.text.contains(&format!("{BASE}/u/{token}")));
}

/// A token changed in one character, cut, made up, or moved to another person or mailing
/// unsubscribes nobody.
pub fn unsubscribe_tokens_cannot_be_forged_or_moved(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "website",
            &registration("ann@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    let bob = v
        .collect(
            "website",
            &registration("bob@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    v.send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    let mails = queued(v);
    let ann_token = token_of(&mails[0]);
    let bob_token = token_of(&mails[1]);
    let invalid = |t: &str| {
        let e = v.unsubscribe(t).unwrap_err();
        assert_eq!(e.code(), "invalid_token", "{t}: {e:?}");
        let e = v.verify_unsubscribe_token(t).unwrap_err();
        assert_eq!(e.code(), "invalid_token");
    };
    // One character changed, at each end and in the middle.
    for at in [0, 20, 40, 63] {
        let mut t: Vec<u8> = ann_token.clone().into_bytes();
        t[at] = if t[at] == b'A' { b'B' } else { b'A' };
        invalid(std::str::from_utf8(&t).unwrap());
    }
    // Ann's MAC with Bob's subject id: moved to another person.
    let mut raw = B64.decode(&ann_token).unwrap();
    let bob_uuid = uuid::Uuid::parse_str(bob.as_str()).unwrap();
    raw[16..32].copy_from_slice(bob_uuid.as_bytes());
    invalid(&B64.encode(&raw));
    // Bob's subject and MAC under Ann's token's mailing of another mailing id.
    let mut raw = B64.decode(&bob_token).unwrap();
    raw[0] ^= 1;
    invalid(&B64.encode(&raw));
    invalid(&ann_token[..63]);
    invalid(&format!("{ann_token}A"));
    invalid(&"A".repeat(64));
    invalid("");
    invalid("../../etc/passwd");
    // Nobody was unsubscribed.
    assert!(v.store().consents(ann.as_str()).unwrap().is_empty());
    assert!(v.store().consents(bob.as_str()).unwrap().is_empty());
    let next = v
        .send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    assert_eq!(next.recipients, 2);
    // A token of another vault (another secret) is not this vault's.
    let other = Harness::sqlite();
    let e = other.vault().unsubscribe(&ann_token).unwrap_err();
    assert_eq!(e.code(), "invalid_token");
}

/// Only an accessor the policy lets use `contact.email` for the purpose, or staff, sends a
/// mailing; the purpose must be one people can leave; each refusal names the field.
pub fn only_entitled_senders_mail(h: Harness) {
    let v = h.vault();
    v.collect(
        "website",
        &registration("ann@example.com", &["account", "marketing.announcements"]),
    )
    .unwrap();
    let m = mailing("marketing.announcements");
    // A meeting service may not mail people for marketing.
    let e = v.send_mailing("meeting-center", &m, BASE).unwrap_err();
    assert_eq!(field_of(&e), ("mailing_not_allowed", "purpose"));
    let last = entries(v).pop().unwrap();
    assert_eq!(
        (
            last.actor.as_str(),
            last.action.as_str(),
            last.effect.as_str(),
            last.reasons.as_str()
        ),
        (
            "meeting-center",
            "mailing",
            "refused",
            "mailing_not_allowed"
        )
    );
    // Nor a customer admin's key of a tenant.
    let e = v
        .send_mailing(Actor::of_tenant("customer-admin", "acme"), &m, BASE)
        .unwrap_err();
    assert_eq!(field_of(&e), ("mailing_not_allowed", "purpose"));
    assert!(v.claim_mail(10).unwrap().is_empty());
    // Staff sends as the accessor the policy lets mail for the purpose.
    let sent = v.send_mailing("admin", &m, BASE).unwrap();
    assert_eq!(sent.recipients, 1);
    let head = entries(v)
        .into_iter()
        .find(|d| d.action == "mailing" && d.reasons.contains(&sent.mailing))
        .unwrap();
    assert_eq!(head.actor, "admin");
    assert!(head.reasons.ends_with(",as:marketing"), "{}", head.reasons);
    // The operator too.
    assert_eq!(
        v.send_mailing(custos_vault::MailingBy::Operator, &m, BASE)
            .unwrap()
            .recipients,
        1
    );
    // A purpose people cannot leave, or none at all.
    let e = v
        .send_mailing("marketing", &mailing("account"), BASE)
        .unwrap_err();
    assert_eq!(field_of(&e), ("not_a_mailing_purpose", "purpose"));
    let e = v
        .send_mailing("marketing", &mailing("marketing.partners"), BASE)
        .unwrap_err();
    assert_eq!(field_of(&e), ("not_a_mailing_purpose", "purpose"));
    let e = v
        .send_mailing("marketing", &mailing("marketting"), BASE)
        .unwrap_err();
    assert_eq!(field_of(&e), ("unknown_purpose", "purpose"));
    // The message itself.
    for (input, want) in [
        (
            MailingInput {
                subject: " ".into(),
                ..m.clone()
            },
            ("invalid_subject", "subject"),
        ),
        (
            MailingInput {
                subject: "a\r\nBcc: x@example.com".into(),
                ..m.clone()
            },
            ("invalid_subject", "subject"),
        ),
        (
            MailingInput {
                text: String::new(),
                ..m.clone()
            },
            ("invalid_text", "text"),
        ),
        (
            MailingInput {
                html: Some(String::new()),
                ..m.clone()
            },
            ("invalid_html", "html"),
        ),
    ] {
        let e = v.send_mailing("marketing", &input, BASE).unwrap_err();
        assert_eq!(field_of(&e), want);
    }
}

/// The excluded are counted by the decision's reason: objected, deactivated, no address (or
/// one that cannot be mailed, found once decrypted and ledgered `failed`).
/// Addresses and subject lines are stored sealed: neither is in the database in plaintext.
pub fn mailings_count_the_excluded_and_store_nothing_in_plaintext(h: Harness) {
    let v = h.vault();
    let canary = "zq-mailing-canary-4b1e@example.invalid";
    let subject_canary = "Qxmailsubject 7731";
    v.collect(
        "website",
        &registration(canary, &["account", "marketing.announcements"]),
    )
    .unwrap();
    let gone = v
        .collect(
            "website",
            &registration("gone@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    v.deactivate("website", &gone).unwrap();
    let objector = v
        .collect(
            "website",
            &registration("no@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    v.object("website", &objector, "marketing", "privacy-center")
        .unwrap();
    // A person of another service without an address.
    let mut no_address = attendee("Nomail", "x@example.com");
    no_address.data.remove("contact.email");
    v.collect("meeting-center", &no_address).unwrap();
    // A person whose stored address cannot be mailed (longer than an address is; a blank
    // one, refused at collection now, may be held from before): permitted by the policy,
    // but excluded once it is decrypted — the mailing goes to the others.
    let long = format!("{}@example.com", "a".repeat(320));
    let blank = v
        .collect(
            "website",
            &registration(&long, &["account", "marketing.announcements"]),
        )
        .unwrap();
    let sent = v
        .send_mailing(
            "marketing",
            &MailingInput {
                subject: subject_canary.into(),
                ..mailing("marketing.announcements")
            },
            BASE,
        )
        .unwrap();
    assert_eq!(sent.recipients, 1, "{sent:?}");
    assert_eq!(sent.excluded.get("objected"), Some(&1), "{sent:?}");
    assert_eq!(
        sent.excluded.get("subject_deactivated"),
        Some(&1),
        "{sent:?}"
    );
    assert_eq!(sent.excluded.get("no_address"), Some(&2), "{sent:?}");
    let refused: Vec<Draft> = entries(v)
        .into_iter()
        .filter(|d| d.action == "mail" && d.effect == "deny")
        .collect();
    assert_eq!(refused.len(), 2);
    let unmailable: Vec<Draft> = entries(v)
        .into_iter()
        .filter(|d| d.action == "mail" && d.effect == "failed")
        .collect();
    assert_eq!(unmailable.len(), 1);
    assert_eq!(unmailable[0].subject, blank.as_str());
    assert_eq!(
        unmailable[0].reasons,
        format!("mailing:{},no_address", sent.mailing)
    );
    let stored = v.mailing("marketing", &sent.mailing).unwrap().unwrap().sent;
    assert_eq!((stored.recipients, &stored.excluded), (1, &sent.excluded));
    let dump = h.dump();
    for needle in [
        canary,
        "mailing-canary-4b1e",
        subject_canary,
        "Qxmailsubject",
    ] {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` stored in plaintext"
        );
    }
    // The message opens for the delivery worker only.
    let m = queued(v).remove(0);
    assert_eq!(m.mail.to, canary);
    assert_eq!(m.mail.subject, subject_canary);
}

/// A tenant-bound key's mailing reaches only its tenant's people, and counts no one else.
/// The builtin policy lets no tenant-bound accessor mail people, so this case adds one: a
/// customer's announcements service, disclosing to a recipient of kind `customer`.
pub fn a_tenant_bound_mailing_reaches_only_its_tenant(mut h: Harness) {
    let text = format!(
        "{}\n{}",
        custos_policy::BUILTIN_WEBEX_2010,
        r#"
[[recipient]]
id = "customer-news"
name = "Customer's announcements"
kind = "customer"
description = "A business customer mailing its own people."
clauses = ["C067"]

[[recipient.allow]]
purpose = "marketing.announcements"
categories = ["contact.email"]
clauses = ["C067"]

[[accessor]]
id = "customer-mailer"
name = "Customer's announcements service"
recipient = "customer-news"
purposes = ["marketing.announcements"]
clauses = ["C067"]

[[accessor.limit]]
purpose = "marketing.announcements"
categories = ["contact.email"]
clauses = ["C067"]
"#
    );
    let policy = std::sync::Arc::new(
        custos_policy::Policy::from_str("tenant-mailer", &text).unwrap_or_else(|d| panic!("{d}")),
    );
    h.close();
    let v = Vault::open(h.store().unwrap(), policy, h.kek.clone()).unwrap();
    for (email, tenant) in [
        ("ann@acme.example", Some("acme")),
        ("bob@globex.example", Some("globex")),
        ("carl@example.com", None),
    ] {
        let mut r = registration(email, &["account", "marketing.announcements"]);
        r.tenant = tenant.map(str::to_string);
        v.collect("website", &r).unwrap();
    }
    let sent = v
        .send_mailing(
            Actor::of_tenant("customer-mailer", "acme"),
            &mailing("marketing.announcements"),
            BASE,
        )
        .unwrap();
    assert_eq!(sent.recipients, 1, "{sent:?}");
    assert!(sent.excluded.is_empty(), "{sent:?}");
    let mails = queued(&v);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].mail.to, "ann@acme.example");
    // The tenant's people only are in its mailing's ledger entries.
    let decided = entries(&v)
        .into_iter()
        .filter(|d| d.action == "mail" && d.reasons.contains(&sent.mailing))
        .count();
    assert_eq!(decided, 1);
    // The key of another tenant reaches its own; the marketing key of no tenant, all three.
    let globex = v
        .send_mailing(
            Actor::of_tenant("customer-mailer", "globex"),
            &mailing("marketing.announcements"),
            BASE,
        )
        .unwrap();
    assert_eq!(globex.recipients, 1);
    assert_eq!(queued(&v)[0].mail.to, "bob@globex.example");
    // A key of that accessor's tenant cannot see the other tenant's mailing.
    assert!(
        v.mailing(Actor::of_tenant("customer-mailer", "globex"), &sent.mailing)
            .unwrap()
            .is_none()
    );
    let all = v
        .send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    assert_eq!(all.recipients, 3);
}

/// A raw unsubscribe message from `from` with `subject`.
fn reply(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: unsubscribe@webex.com\r\nSubject: {subject}\r\n\
         Date: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <r1@example.net>\r\n\r\n\
         Please take me off.\r\n"
    )
    .into_bytes()
}

/// C032: a reply to a mailing's `List-Unsubscribe` mailto names its person by the token in
/// its subject line, whatever address it comes from; a changed token names no one.
pub fn c032_a_reply_to_the_mailto_unsubscribes_by_its_token(h: Harness) {
    let v = h.vault();
    v.collect(
        "website",
        &registration("ann@example.com", &["account", "marketing.announcements"]),
    )
    .unwrap();
    v.send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    let token = token_of(&queued(v)[0]);
    let mut forged = token.clone().into_bytes();
    forged[40] = if forged[40] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let op = custos_vault::RequestHandler::Operator;
    let none = v
        .intake_mail(
            op,
            &reply("alias@elsewhere.example", &format!("unsubscribe-{forged}")),
        )
        .unwrap();
    assert_eq!((none.matched, none.changes), (0, 0));
    let next = v
        .send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    assert_eq!(next.recipients, 1, "{next:?}");
    queued(v);
    let done = v
        .intake_mail(
            op,
            &reply(
                "alias@elsewhere.example",
                &format!("Re: unsubscribe-{token}"),
            ),
        )
        .unwrap();
    assert_eq!(done.matched, 1);
    assert!(done.changes > 0);
    let after = v
        .send_mailing("marketing", &mailing("marketing.announcements"), BASE)
        .unwrap();
    assert_eq!(after.recipients, 0, "{after:?}");
    assert_eq!(after.excluded.get("objected"), Some(&1), "{after:?}");
}

/// C031–C033: the footer offers, and intake takes, exactly the ways the policy's
/// `unsubscribe` right names: without `email`, no address in the footer and mail to it is
/// refused (`channel_not_offered`); without `postal`, no postal address.
pub fn c033_the_footer_and_intake_follow_the_unsubscribe_right(mut h: Harness) {
    let full = "channels = [\"link\", \"email\", \"postal\"]";
    assert!(custos_policy::BUILTIN_WEBEX_2010.contains(full));
    h.close();
    for (channels, email, postal) in [
        ("channels = [\"link\", \"email\"]", true, false),
        ("channels = [\"link\"]", false, false),
    ] {
        let text = custos_policy::BUILTIN_WEBEX_2010.replacen(full, channels, 1);
        let policy = std::sync::Arc::new(
            custos_policy::Policy::from_str("narrowed", &text).unwrap_or_else(|d| panic!("{d}")),
        );
        let v = Vault::open(h.store().unwrap(), policy, h.kek.clone()).unwrap();
        v.collect(
            "website",
            &registration("ann@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
        v.send_mailing("marketing", &mailing("marketing.announcements"), BASE)
            .unwrap();
        for m in queued(&v) {
            let footer = &m.mail.text[m.mail.text.find("\n--\n").expect("a footer")..];
            assert!(footer.contains(&format!("{BASE}/u/")), "{footer}");
            assert_eq!(footer.contains("unsubscribe@webex.com"), email, "{footer}");
            assert_eq!(footer.contains("3979 Freedom Circle"), postal, "{footer}");
            let list = header(&m, "List-Unsubscribe").unwrap();
            assert_eq!(list.contains("mailto:"), email, "{list}");
        }
        let taken = v.intake_mail(
            custos_vault::RequestHandler::Operator,
            &reply("ann@example.com", "unsubscribe"),
        );
        if email {
            assert_eq!(taken.unwrap().matched, 1);
            // The confirmation to the address, not a mailing's message.
            let told = queued(&v);
            assert_eq!(told.len(), 1);
            assert!(header(&told[0], "List-Unsubscribe").is_none());
        } else {
            assert_eq!(taken.unwrap_err().code(), "channel_not_offered");
        }
        drop(v);
    }
}
