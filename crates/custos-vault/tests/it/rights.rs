//! Issue 13, items 4 and 5: export, correction, deactivation and erasure asked for by the
//! person (their session's subjects) or the operator. Cases of the conformance suite (both
//! backends), the attacker's side first.

use std::collections::BTreeMap;

use custos_vault::{Error, Person, RequestHandler, RequestList, Requester, Vault, ledger::Draft};

use crate::cases::{contains, read};
use crate::support::{Harness, attendee};

fn last(v: &Vault) -> Draft {
    let n = v.verify_ledger().unwrap().entries;
    v.store().ledger_page(n, 1).unwrap().remove(0).draft
}

/// Signs in as the person holding `email`: the code from the outbox, the session opened.
pub fn sign_in(v: &Vault, email: &str) -> Person {
    v.request_sign_in(email).unwrap();
    let mail = v
        .claim_mail(100)
        .unwrap()
        .into_iter()
        .find(|m| m.mail.to == email)
        .unwrap();
    v.mail_sent(&mail).unwrap();
    let text = &mail.mail.text;
    let start = text.find(|c: char| c.is_ascii_digit()).unwrap();
    let signed = v.verify_sign_in(email, &text[start..start + 8]).unwrap();
    v.authenticate_person(&signed.session).unwrap()
}

/// The latest entry of `action`.
fn last_of(v: &Vault, action: &str) -> Draft {
    let n = v.verify_ledger().unwrap().entries;
    v.store()
        .ledger_page(1, n)
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.draft)
        .find(|d| d.action == action)
        .unwrap()
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A person signed in reaches the subjects of their session and no one else: exporting,
/// correcting, deactivating or erasing another person is refused as a subject never held,
/// ledgered `not_own_subject`, and leaves the other person as they were.
pub fn a_person_reaches_only_their_own_subjects(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect("meeting-center", &attendee("Ann", "ann@acme.example"))
        .unwrap();
    let bob = v
        .collect("meeting-center", &attendee("Bob", "bob@acme.example"))
        .unwrap();
    let ann_session = sign_in(v, "ann@acme.example");
    let me = Requester::Person(&ann_session);
    let not_found =
        |r: custos_vault::Result<()>| assert!(matches!(r, Err(Error::SubjectNotFound)), "{r:?}");
    not_found(v.export(me, &bob).map(drop));
    assert_eq!(last(v).reasons, "not_own_subject");
    assert_eq!(last(v).action, "export");
    not_found(v.correct(
        me,
        &bob,
        &data(&[("contact.email", "mallory@evil.example")]),
    ));
    assert_eq!(last(v).reasons, "not_own_subject");
    not_found(v.deactivate_for(me, &bob));
    not_found(v.erase_for(me, &bob));
    assert_eq!(
        (
            last(v).action.as_str(),
            last(v).effect.as_str(),
            last(v).actor.as_str()
        ),
        ("erase", "deny", "person")
    );
    // Bob is untouched: his own export holds his address, active.
    let bob_session = sign_in(v, "bob@acme.example");
    let e = v.export(Requester::Person(&bob_session), &bob).unwrap();
    assert_eq!(e.status, "active");
    assert!(
        e.values.iter().any(|x| x.value == "bob@acme.example"),
        "{e:?}"
    ); // Ann's own session reaches Ann.
    assert_eq!(v.export(me, &ann).unwrap().subject, ann);
}

/// The export holds every value with what it was collected for, every record, the consent
/// events and every ledger entry about the person — and only about them — each entry in the
/// checkpoint's tree with an inclusion proof that verifies against the signed root.
pub fn export_holds_everything_about_the_person(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect("meeting-center", &attendee("Ann", "ann@acme.example"))
        .unwrap();
    let bob = v
        .collect("meeting-center", &attendee("Bob", "bob@acme.example"))
        .unwrap();
    let recs = ["attended the kickoff", "attended the review"];
    v.append_records(
        "meeting-center",
        &ann,
        "meeting_attendance",
        &["service.meetings".into()],
        &recs,
    )
    .unwrap();
    // Over two complete tiles of the tree (256 entries each), Ann's reads among Bob's: her
    // proofs come from complete tiles (kept between exports) and from the partial last one.
    for i in 0..600 {
        let who = if i % 97 == 0 { &ann } else { &bob };
        v.read("meeting-center", who, &read("service.meetings"))
            .unwrap();
    }
    // Twice: the second export's proofs come from the tiles the first one kept.
    let first = v.export(Requester::Operator, &ann).unwrap();
    let e = v.export(Requester::Operator, &ann).unwrap();
    // The entries are found through the subject index; a ledger older than the index (here:
    // the index made at entry ~300) is read in full before it, and finds the same.
    let seqs =
        |x: &custos_vault::Export| -> Vec<u64> { x.ledger.iter().map(|l| l.entry.seq).collect() };
    h.exec(
        "UPDATE ledger_subjects_from SET seq = (SELECT MIN(first_seq) FROM ledger_blocks WHERE first_seq >= 300);
         DELETE FROM ledger_subjects WHERE first_seq < (SELECT seq FROM ledger_subjects_from);",
    );
    let late = v.export(Requester::Operator, &ann).unwrap();
    let mut want = seqs(&e);
    want.push(e.export_seq + 1);
    assert_eq!(seqs(&late), want);
    assert_eq!(seqs(&first).len() + 1, seqs(&e).len());
    assert_eq!(e.subject, ann);
    let values: BTreeMap<&str, &str> = e
        .values
        .iter()
        .map(|x| (x.category.as_str(), x.value.as_str()))
        .collect();
    assert_eq!(values["contact.name"], "Ann");
    assert_eq!(values["contact.email"], "ann@acme.example");
    assert!(e.values.iter().all(|x| x.service == "meeting-center"
        && x.role == "attendee"
        && x.purposes == ["service.meetings"]
        && x.notice == v.policy().version()));
    let mut got: Vec<&str> = e.records.iter().map(|r| r.value.as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, recs);
    // The ledger entries: all about Ann (the collection, the records, the read, the export
    // itself), none about Bob.
    assert!(
        e.ledger
            .iter()
            .all(|x| x.entry.draft.subject == ann.as_str())
    );
    let actions: Vec<&str> = e
        .ledger
        .iter()
        .map(|x| x.entry.draft.action.as_str())
        .collect();
    for a in ["collect", "read", "export"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(e.ledger.last().unwrap().entry.seq, e.export_seq);
    // Each entry in the checkpoint's tree proves against its signed root.
    let mut proven = 0;
    for x in &e.ledger {
        let Some(proof) = &x.proof else {
            assert!(x.entry.seq > e.checkpoint.size);
            continue;
        };
        let leaf = custos_vault::tlog::leaf_hash(&hex(&x.entry.hash));
        custos_vault::tlog::verify_inclusion(
            x.entry.seq - 1,
            e.checkpoint.size,
            &leaf,
            proof,
            &e.checkpoint.root,
        )
        .unwrap();
        // A proof is for its entry only.
        if e.checkpoint.size > 1 {
            assert!(
                custos_vault::tlog::verify_inclusion(
                    x.entry.seq % e.checkpoint.size,
                    e.checkpoint.size,
                    &leaf,
                    proof,
                    &e.checkpoint.root
                )
                .is_err()
            );
        }
        proven += 1;
    }
    assert!(proven >= 9, "{proven} proven of {}", e.ledger.len());
    assert!(e.checkpoint.size > 600);
    // The export is ledgered as a permit, the right it answers in its reasons.
    let own = &e.ledger.last().unwrap().entry.draft;
    assert_eq!(
        (
            own.action.as_str(),
            own.effect.as_str(),
            own.reasons.as_str()
        ),
        ("export", "permit", "right_of_access")
    );
    // An erased person exports nothing.
    v.erase_for(Requester::Operator, &ann).unwrap();
    assert!(matches!(
        v.export(Requester::Operator, &ann),
        Err(Error::SubjectNotFound)
    ));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A correction replaces the value and its blind-index term, keeps what it was collected
/// for, ledgers the category and never a value; a category the vault does not hold for the
/// person is refused naming its field, and nothing is written.
pub fn correction_replaces_the_value_everywhere(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "meeting-center",
            &attendee("Ann", "ann.old.canary@acme.example"),
        )
        .unwrap();
    let ann_session = sign_in(v, "ann.old.canary@acme.example");
    let me = Requester::Person(&ann_session);
    // Not held (the attendee gave no phone), and unknown: refused, naming the field.
    for category in ["contact.phone", "no.such.category"] {
        match v.correct(me, &ann, &data(&[(category, "+1 555 0199")])) {
            Err(Error::InvalidField { code, field, .. }) => {
                assert_eq!(code, "category_not_held");
                assert_eq!(field, format!("data.{category}"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        last(v).categories,
        "?",
        "an undeclared name is not ledgered"
    );
    assert!(matches!(
        v.correct(me, &ann, &data(&[("contact.email", "  ")])),
        Err(Error::InvalidField { .. })
    ));
    v.correct(
        me,
        &ann,
        &data(&[("contact.email", "ann.new@acme.example")]),
    )
    .unwrap();
    let d = last_of(v, "correct");
    assert_eq!(
        (
            d.action.as_str(),
            d.actor.as_str(),
            d.categories.as_str(),
            d.effect.as_str()
        ),
        ("correct", "person", "contact.email", "done")
    );
    let r = v
        .read("meeting-center", &ann, &read("service.meetings"))
        .unwrap();
    assert_eq!(r.data["contact.email"], "ann.new@acme.example");
    assert_eq!(r.data["contact.name"], "Ann");
    assert_eq!(
        v.find_by_identifier("contact.email", "ann.new@acme.example")
            .unwrap(),
        Some(ann.clone())
    );
    assert_eq!(
        v.find_by_identifier("contact.email", "ann.old.canary@acme.example")
            .unwrap(),
        None
    );
    let e = v.export(me, &ann).unwrap();
    let email = e
        .values
        .iter()
        .find(|x| x.category == "contact.email")
        .unwrap();
    assert_eq!(email.purposes, ["service.meetings"]);
    assert_eq!(email.service, "meeting-center");
    let dump = h.dump();
    assert!(!contains(&dump, b"ann.new@acme.example"));
    assert!(!contains(&dump, b"ann.old.canary"));
}

/// Deactivation and erasure by the person: after deactivation only contractual and legal
/// purposes read; after erasure nothing reads, exports or corrects, and the ledger verifies.
pub fn deactivation_and_erasure_by_the_person(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect("meeting-center", &attendee("Ann", "ann@acme.example"))
        .unwrap();
    let ann_session = sign_in(v, "ann@acme.example");
    let me = Requester::Person(&ann_session);
    v.deactivate_for(me, &ann).unwrap();
    assert_eq!(v.export(me, &ann).unwrap().status, "deactivated");
    let r = v
        .read("meeting-center", &ann, &read("service.meetings"))
        .unwrap();
    assert!(r.data.is_empty(), "{r:?}");
    v.erase_for(me, &ann).unwrap();
    let d = last_of(v, "erase");
    assert_eq!((d.action.as_str(), d.actor.as_str()), ("erase", "person"));
    // The erasure's entry carries the person's request it answers: no second entry.
    assert!(
        d.reasons.starts_with(
            "erasure_requested_by_person,kind:erase,channel:online,verification:signed_in,request:"
        ),
        "{}",
        d.reasons
    );
    assert!(matches!(v.export(me, &ann), Err(Error::SubjectNotFound)));
    assert!(matches!(
        v.correct(me, &ann, &data(&[("contact.name", "Ann B")])),
        Err(Error::SubjectNotFound)
    ));
    assert!(matches!(v.erase_for(me, &ann), Err(Error::SubjectNotFound)));
    // Each act the person did online is also their request, received and completed at once.
    let done: Vec<(String, String, String)> = v
        .requests(RequestHandler::Operator, RequestList::All)
        .unwrap()
        .into_iter()
        .filter(|r| r.subject.as_deref() == Some(ann.as_str()))
        .map(|r| (r.kind, r.channel, r.state))
        .collect();
    for kind in ["export", "deactivate", "erase"] {
        assert!(
            done.contains(&(kind.into(), "online".into(), "completed".into())),
            "{kind}: {done:?}"
        );
    }
    // The service reads nothing; the ledger says why.
    let r = v
        .read("meeting-center", &ann, &read("service.meetings"))
        .unwrap();
    assert!(r.data.is_empty());
    assert_eq!(r.denial.as_deref(), Some("subject_erased"));
    assert!(v.verify_ledger().unwrap().ok());
}

/// The person's look at the ledger entries about them: theirs only, each proven, ledgered;
/// another person's is refused as a subject never held.
pub fn a_person_reads_the_ledger_entries_about_them(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect("meeting-center", &attendee("Ann", "ann@acme.example"))
        .unwrap();
    let bob = v
        .collect("meeting-center", &attendee("Bob", "bob@acme.example"))
        .unwrap();
    v.read("meeting-center", &bob, &read("service.meetings"))
        .unwrap();
    let ann_session = sign_in(v, "ann@acme.example");
    let me = Requester::Person(&ann_session);
    assert!(matches!(
        v.ledger_about(me, &bob),
        Err(Error::SubjectNotFound)
    ));
    assert_eq!(last(v).reasons, "not_own_subject");
    let (entries, head) = v.ledger_about(me, &ann).unwrap();
    assert!(
        entries
            .iter()
            .all(|x| x.entry.draft.subject == ann.as_str())
    );
    assert!(entries.iter().any(|x| x.entry.draft.action == "collect"));
    let proven = entries.iter().filter(|x| x.proof.is_some()).count();
    assert!(proven >= 1 && head.size >= 1);
    assert_eq!(
        (last(v).action.as_str(), last(v).actor.as_str()),
        ("read_ledger", "person")
    );
}
