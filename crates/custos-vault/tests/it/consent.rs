//! Issue 14, items 1–3: consent records with evidence, signed receipts, preferences. Cases of
//! the conformance suite (both backends), the attacker's side first.

use std::collections::BTreeMap;

use custos_vault::{
    Actor, ConsentInput, Error, ReceiptError, Requester, Vault, jwks, ledger::Draft, verify_receipt,
};

use crate::cases::read;
use crate::support::{Harness, attendee, policy, registration};

fn last(v: &Vault) -> Draft {
    let n = v.verify_ledger().unwrap().entries;
    v.store().ledger_page(n, 1).unwrap().remove(0).draft
}

fn choice(purpose: &str, given: bool, method: &str) -> ConsentInput {
    ConsentInput {
        purpose: purpose.into(),
        recipient: None,
        given,
        method: method.into(),
        notice: policy().version().to_string(),
    }
}

fn jwks_of(v: &Vault) -> String {
    jwks(&v.receipt_keys()).to_string()
}

/// Another service's key, a key of a tenant-bound accessor of another tenant, and a key of no
/// tenant for a tenant-bound accessor record nothing for a person they do not hold: answered
/// as a subject never held, ledgered, nothing stored.
pub fn only_a_holder_records_a_persons_choice(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "website",
            &registration("ann@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    let acme = v
        .collect("meeting-center", &attendee("Ari", "ari@acme.example"))
        .unwrap();
    let give = choice("newsletters", true, "checkbox_unticked");
    // The meeting service never collected Ann.
    let e = v.record_consent("meeting-center", &ann, &give).unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
    assert_eq!(
        (
            last(v).action.as_str(),
            last(v).effect.as_str(),
            last(v).reasons.as_str()
        ),
        ("consent", "refused", "subject_not_held")
    );
    // A customer admin of another tenant, and one of the person's own tenant: neither holds
    // anyone (it collects for no service).
    for tenant in ["globex", "acme"] {
        let e = v
            .record_consent(Actor::of_tenant("customer-admin", tenant), &acme, &give)
            .unwrap_err();
        assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
    }
    let e = v.consents("meeting-center", &ann).unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
    let e = v.preferences("support", &ann).unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
    let e = v
        .set_preferences(
            "meeting-center",
            &ann,
            &BTreeMap::from([("newsletters".to_string(), true)]),
            "settings_page",
        )
        .unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
    // An id never collected is the same answer.
    let nobody = custos_vault::SubjectId::parse("00000000-0000-4000-8000-000000000000").unwrap();
    assert!(matches!(
        v.record_consent("website", &nobody, &give),
        Err(Error::SubjectNotFound)
    ));
    // A person signed in reaches only their own subjects.
    let mine = crate::rights::sign_in(v, "ari@acme.example");
    assert!(matches!(
        v.record_consent(Requester::Person(&mine), &ann, &give),
        Err(Error::SubjectNotFound)
    ));
    // Nothing was stored, and Ann's newsletters stay withheld.
    assert!(v.consents("website", &ann).unwrap().is_empty());
    let r = v.read("marketing", &ann, &read("newsletters")).unwrap();
    assert_eq!(r.withheld["contact.email"], "consent_missing", "{r:?}");
}

/// Consent given by the holding service permits the next read for the consent purpose;
/// withdrawn, the very next read withholds. Each change is ledgered before it is stored and
/// carries its evidence and a receipt that verifies, naming the subject by id only.
pub fn consent_takes_effect_for_the_next_decision(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "website",
            &registration("ann.canary@example.com", &["account"]),
        )
        .unwrap();
    let r = v.read("marketing", &ann, &read("newsletters")).unwrap();
    assert_eq!(r.withheld["contact.email"], "consent_missing", "{r:?}");

    let given = v
        .record_consent(
            "website",
            &ann,
            &choice("newsletters", true, "double_opt_in"),
        )
        .unwrap();
    let entry = last(v);
    assert_eq!(
        (
            entry.action.as_str(),
            entry.effect.as_str(),
            entry.purpose.as_str()
        ),
        ("consent", "given", "newsletters")
    );
    let id = given.consent.receipt_id.clone().unwrap();
    assert_eq!(entry.reasons, format!("double_opt_in,receipt:{id}"));
    let r = v.read("marketing", &ann, &read("newsletters")).unwrap();
    assert!(r.data.contains_key("contact.email"), "{r:?}");

    let withdrawn = v
        .record_consent(
            "website",
            &ann,
            &choice("newsletters", false, "settings_page"),
        )
        .unwrap();
    let r = v.read("marketing", &ann, &read("newsletters")).unwrap();
    assert!(r.data.is_empty(), "{r:?}");
    assert_eq!(r.withheld["contact.email"], "consent_missing");

    // The evidence.
    let list = v.consents("website", &ann).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], given.consent);
    assert_eq!(list[1], withdrawn.consent);
    let c = &list[0];
    assert_eq!((c.kind.as_str(), c.given), ("consent", true));
    assert_eq!(c.method, "double_opt_in");
    assert_eq!(c.notice, policy().version());
    assert_eq!(c.notice_sha256.as_deref(), Some(v.notice_sha256()));
    assert_eq!(c.notice_sha256.as_deref().map(str::len), Some(64));
    assert_eq!(c.actor.as_deref(), Some("website"));
    assert_eq!(c.receipt.as_deref(), Some(given.receipt.as_str()));
    assert!(!list[1].given);
    assert_eq!(last(v).action, "read_consents");

    // The receipts verify against the vault's keys and carry the Kantara fields.
    let keys = jwks_of(v);
    for (change, yes) in [(&given, true), (&withdrawn, false)] {
        let ok = verify_receipt(&change.receipt, &keys).unwrap();
        let c = &ok.claims;
        assert_eq!(c["version"], "KI-CR-v1.1.0");
        assert_eq!(c["piiPrincipalId"], ann.as_str());
        assert_eq!(
            c["consentReceiptID"],
            *change.consent.receipt_id.as_ref().unwrap()
        );
        assert_eq!(
            c["piiControllers"][0]["piiController"],
            "WebEx Communications, Inc."
        );
        assert_eq!(c["piiControllers"][0]["contact"], "Legal Department");
        assert_eq!(c["piiControllers"][0]["email"], "privacy@webex.com");
        assert_eq!(c["jurisdiction"], "US");
        assert_eq!(c["services"][0]["service"], "website");
        let p = &c["services"][0]["purposes"][0];
        assert_eq!(p["consentType"], "EXPLICIT");
        assert_eq!(p["primaryPurpose"], false);
        assert!(
            p["piiCategory"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == "contact.email"),
            "{p}"
        );
        assert_eq!(c["custos"]["given"], yes);
        assert_eq!(c["custos"]["noticeSha256"], v.notice_sha256());
        // No personal information beyond the subject id.
        let text = serde_json::Value::Object(c.clone()).to_string();
        for pi in [
            "ann.canary@example.com",
            "Ann Example",
            "1 Example Way",
            "555 0100",
        ] {
            assert!(!text.contains(pi), "{pi} in {text}");
        }
    }
    // Nor is any of it in the stored evidence.
    let rows = v.store().consents(ann.as_str()).unwrap();
    assert!(
        rows.iter()
            .all(|r| !format!("{r:?}").contains("ann.canary@example.com"))
    );

    // One changed byte of a receipt fails.
    let jws = given.receipt.clone();
    let dot = jws.find('.').unwrap();
    let mut bytes = jws.into_bytes();
    bytes[dot + 5] = if bytes[dot + 5] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(bytes).unwrap();
    assert!(verify_receipt(&changed, &keys).is_err());
    // Another vault's key does not verify it.
    let other = Harness::sqlite();
    assert!(matches!(
        verify_receipt(&given.receipt, &jwks_of(other.vault())),
        Err(ReceiptError::UnknownKey(_))
    ));
    // Erased, the person's records and receipts go with them.
    assert_eq!(h.count("SELECT COUNT(*) FROM consent_receipts"), 2);
    v.erase("website", &ann).unwrap();
    assert_eq!(h.count("SELECT COUNT(*) FROM consent_receipts"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM consents"), 0);
}

/// An opt-out purpose: `given: false` objects (the next read withholds, `objected`), `given:
/// true` withdraws the objection.
pub fn objection_by_choice_and_its_withdrawal(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "website",
            &registration("ann@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    let announcements = || {
        v.read("marketing", &ann, &read("marketing.announcements"))
            .unwrap()
    };
    assert!(announcements().data.contains_key("contact.email"));
    let no = v
        .record_consent(
            "website",
            &ann,
            &choice("marketing.announcements", false, "one_click_unsubscribe"),
        )
        .unwrap();
    assert_eq!(
        (no.consent.kind.as_str(), no.consent.given),
        ("objection", false)
    );
    assert_eq!(
        (last(v).action.as_str(), last(v).effect.as_str()),
        ("objection", "given")
    );
    let r = announcements();
    assert!(r.data.is_empty(), "{r:?}");
    assert!(r.withheld.values().any(|w| w == "objected"), "{r:?}");
    let claims = verify_receipt(&no.receipt, &jwks_of(v)).unwrap().claims;
    assert_eq!(
        claims["services"][0]["purposes"][0]["consentType"],
        "IMPLICIT"
    );
    v.record_consent(
        "website",
        &ann,
        &choice("marketing.announcements", true, "settings_page"),
    )
    .unwrap();
    assert!(announcements().data.contains_key("contact.email"));
}

/// What is not consent is refused, naming the field, ledgered, and stores nothing: a purpose
/// of another basis, a notice version not in force, silence, a pre-ticked box, inactivity, a
/// withdrawal-only method used to give, a method outside the set, a recipient for a purpose
/// that discloses to none, a recipient the policy gives nothing for the purpose.
pub fn what_is_not_consent_is_refused(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect("website", &registration("ann@example.com", &["account"]))
        .unwrap();
    let field = |input: ConsentInput| match v.record_consent("website", &ann, &input) {
        Err(Error::InvalidField { code, field, .. }) => {
            assert_eq!(last(v).effect, "refused");
            assert_eq!(last(v).reasons, code);
            (code, field)
        }
        other => panic!("{other:?}"),
    };
    for purpose in ["account", "order", "legal.process", "service.meetings"] {
        assert_eq!(
            field(choice(purpose, true, "checkbox_unticked")),
            ("consent_not_applicable", "purpose".to_string())
        );
    }
    assert_eq!(
        field(choice("nope", true, "checkbox_unticked")).0,
        "unknown_purpose"
    );
    let mut old = choice("newsletters", true, "checkbox_unticked");
    old.notice = "2009-01-01".into();
    assert_eq!(field(old), ("unknown_notice_version", "notice".to_string()));
    for m in ["pre_ticked", "silence", "inactivity", "implied"] {
        assert_eq!(
            field(choice("newsletters", true, m)),
            ("consent_not_freely_given", "method".to_string())
        );
    }
    assert_eq!(
        field(choice("newsletters", true, "gpc_signal")),
        ("consent_not_freely_given", "method".to_string())
    );
    assert_eq!(
        field(choice("newsletters", true, "privacy-center")),
        ("invalid_method", "method".to_string())
    );
    assert_eq!(
        field(choice("newsletters", false, "double_opt_in")),
        ("invalid_method", "method".to_string())
    );
    let mut to = choice("newsletters", true, "checkbox_unticked");
    to.recipient = Some("marketing-partner".into());
    assert_eq!(
        field(to),
        ("recipient_not_applicable", "recipient".to_string())
    );
    let mut to = choice("marketing.partners", true, "checkbox_unticked");
    to.recipient = Some("cisco".into());
    assert_eq!(
        field(to),
        ("recipient_not_applicable", "recipient".to_string())
    );
    assert!(v.consents("website", &ann).unwrap().is_empty());
    let r = v.read("marketing", &ann, &read("newsletters")).unwrap();
    assert!(r.data.is_empty());
}

/// Consent to partner marketing names the partner; it opens the purpose to that partner.
pub fn partner_consent_is_for_its_recipient(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect("website", &registration("ann@example.com", &["account"]))
        .unwrap();
    let partner = || {
        v.read("marketing-partner", &ann, &read("marketing.partners"))
            .unwrap()
    };
    assert!(partner().data.is_empty());
    let mut yes = choice("marketing.partners", true, "checkbox_unticked");
    yes.recipient = Some("marketing-partner".into());
    let c = v.record_consent("website", &ann, &yes).unwrap();
    assert_eq!(c.consent.recipient.as_deref(), Some("marketing-partner"));
    let claims = verify_receipt(&c.receipt, &jwks_of(v)).unwrap().claims;
    let p = &claims["services"][0]["purposes"][0];
    assert_eq!(p["thirdPartyDisclosure"], true);
    assert!(p["thirdPartyName"].is_string(), "{p}");
    let r = partner();
    assert!(!r.data.is_empty(), "{r:?}");
    // Withdrawn for that partner: closed again at once.
    yes.given = false;
    yes.method = "email_request".into();
    v.record_consent("website", &ann, &yes).unwrap();
    assert!(partner().data.is_empty());
}

/// Preferences: the policy's communication topics, each on or off with its basis; a change
/// is a record with a receipt; an unchanged topic records nothing; a name that is no topic is
/// refused.
pub fn preferences_are_consent_records(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "website",
            &registration("ann@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    let prefs = v.preferences("website", &ann).unwrap();
    let topics: BTreeMap<&str, (&str, bool)> = prefs
        .iter()
        .map(|p| (p.purpose.as_str(), (p.basis.as_str(), p.on)))
        .collect();
    assert_eq!(
        topics,
        BTreeMap::from([
            ("marketing", ("opt_out", true)),
            ("marketing.announcements", ("opt_out", true)),
            ("newsletters", ("consent", false)),
            ("personalization", ("opt_out", true)),
            ("promotions", ("consent", false)),
            ("surveys", ("consent", false)),
        ])
    );
    let set = |pairs: &[(&str, bool)]| {
        v.set_preferences(
            "website",
            &ann,
            &pairs.iter().map(|(k, b)| (k.to_string(), *b)).collect(),
            "settings_page",
        )
    };
    let changes = set(&[
        ("newsletters", true),
        ("marketing.announcements", false),
        ("surveys", false),
    ])
    .unwrap();
    // Surveys were already off: two changes, in the topics' order (queued together, they
    // are answered in any order), each with a receipt that verifies.
    let purposes: Vec<&str> = changes.iter().map(|c| c.consent.purpose.as_str()).collect();
    assert_eq!(purposes, ["marketing.announcements", "newsletters"]);
    for c in &changes {
        verify_receipt(&c.receipt, &jwks_of(v)).unwrap();
        assert_eq!(c.consent.method, "settings_page");
    }
    let on: BTreeMap<String, bool> = v
        .preferences("website", &ann)
        .unwrap()
        .into_iter()
        .map(|p| (p.purpose, p.on))
        .collect();
    assert!(on["newsletters"]);
    assert!(!on["marketing.announcements"]);
    assert!(
        v.read("marketing", &ann, &read("newsletters"))
            .unwrap()
            .data
            .contains_key("contact.email")
    );
    match set(&[("account", false)]).unwrap_err() {
        Error::InvalidField { code, field, .. } => {
            assert_eq!((code, field.as_str()), ("unknown_topic", "topics.account"));
        }
        e => panic!("{e:?}"),
    }
    // The person themself, through the same functions.
    let mine = crate::rights::sign_in(v, "ann@example.com");
    let changes = v
        .set_preferences(
            Requester::Person(&mine),
            &ann,
            &BTreeMap::from([("newsletters".to_string(), false)]),
            "settings_page",
        )
        .unwrap();
    assert_eq!(changes[0].consent.actor.as_deref(), Some("person"));
    assert!(
        v.read("marketing", &ann, &read("newsletters"))
            .unwrap()
            .data
            .is_empty()
    );
}

/// Inside `queueing_records` a refusal's entry is queued, not waited for: the call returns,
/// and `durable` says when the entry is durable — then it is the ledger's last; a call that
/// records nothing is told at once, and adds nothing.
pub fn refusals_queued_are_durable_when_told(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "website",
            &registration("queue@example.com", &["account", "marketing.announcements"]),
        )
        .unwrap();
    let give = choice("newsletters", true, "checkbox_unticked");
    let (tx, rx) = std::sync::mpsc::channel();
    let before = v.store().ledger_last_seq().unwrap();
    let e = v
        .queueing_records(
            |v| {
                let refused = v.record_consent("meeting-center", &ann, &give);
                // Queued, not written: nothing reached the ledger while the call ran.
                assert_eq!(v.store().ledger_last_seq().unwrap(), before);
                refused
            },
            move |r| tx.send(r).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("told")
        .expect("durable");
    assert!(v.store().ledger_last_seq().unwrap() > before);
    assert_eq!(
        (
            last(v).action.as_str(),
            last(v).effect.as_str(),
            last(v).reasons.as_str()
        ),
        ("consent", "refused", "subject_not_held")
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let before = v.store().ledger_last_seq().unwrap();
    v.queueing_records(|_| (), move |r| tx.send(r).unwrap());
    rx.try_recv()
        .expect("told at once")
        .expect("nothing to wait for");
    assert_eq!(v.store().ledger_last_seq().unwrap(), before);
}

/// `begin_consent`, the path the server takes: the change is answered through `done` once
/// its entry is durable and its record stored; a refusal is returned at once and `done` is
/// never called.
pub fn consent_begun_is_answered_once_durable(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect("website", &registration("ann@example.com", &["account"]))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    v.begin_consent(
        "website",
        &ann,
        &choice("surveys", true, "checkbox_unticked"),
        move |r| tx.send(r).unwrap(),
    )
    .unwrap();
    let change = rx.recv().unwrap().unwrap();
    verify_receipt(&change.receipt, &jwks_of(v)).unwrap();
    assert_eq!(v.consents("website", &ann).unwrap()[0], change.consent);
    let r = v.read("marketing", &ann, &read("surveys")).unwrap();
    assert!(r.data.contains_key("contact.email"), "{r:?}");
    let (tx, rx) = std::sync::mpsc::channel::<custos_vault::Result<_>>();
    let e = v
        .begin_consent(
            "meeting-center",
            &ann,
            &choice("surveys", false, "settings_page"),
            move |r| tx.send(r).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound), "{e:?}");
    assert!(rx.recv().is_err(), "done was called for a refused change");
}

/// Changes begun together are each answered once, after their entry and record are durable;
/// a change the store fails is answered with the failure, its `given` entry followed by a
/// `failed` one, no record kept — and the writer goes on.
pub fn consent_changes_share_commits_and_a_failed_store_says_so(h: Harness) {
    let v = h.vault();
    let people: Vec<_> = (0..24)
        .map(|i| {
            v.collect(
                "website",
                &registration(&format!("many{i}@example.com"), &["account"]),
            )
            .unwrap()
        })
        .collect();
    let before = v.verify_ledger().unwrap().entries;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for (i, who) in people.iter().enumerate() {
            let tx = tx.clone();
            s.spawn(move || {
                v.begin_consent(
                    "website",
                    who,
                    &choice("newsletters", i % 2 == 0, "settings_page"),
                    move |r| tx.send((i, r)).unwrap(),
                )
                .unwrap();
            });
        }
    });
    drop(tx);
    let answers: Vec<_> = rx.iter().collect();
    assert_eq!(answers.len(), people.len(), "each change answered once");
    let ledgered = v
        .store()
        .ledger_page(before + 1, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.draft)
        .collect::<Vec<_>>();
    for (i, r) in answers {
        let change = r.unwrap();
        let stored = v.consents("website", &people[i]).unwrap();
        assert_eq!(stored, std::slice::from_ref(&change.consent));
        // Its entry names its receipt.
        let id = change.consent.receipt_id.as_ref().unwrap();
        let entry = ledgered
            .iter()
            .find(|d| d.reasons.ends_with(&format!("receipt:{id}")))
            .unwrap();
        assert_eq!(entry.subject, people[i].as_str());
    }
    // The store refuses every consent record about surveys from now on.
    h.refuse_inserts("surveys_down", "consents", "purpose", "surveys");
    let ann = &people[0];
    let e = v
        .record_consent("website", ann, &choice("surveys", true, "settings_page"))
        .unwrap_err();
    assert_eq!(e.code(), "storage_failure", "{e:?}");
    let n = v.verify_ledger().unwrap().entries;
    let tail = v.store().ledger_page(n - 1, 2).unwrap();
    assert_eq!(
        tail.iter()
            .map(|e| (e.draft.effect.as_str(), e.draft.subject.as_str()))
            .collect::<Vec<_>>(),
        [("given", ann.as_str()), ("failed", ann.as_str())]
    );
    assert_eq!(
        v.consents("website", ann).unwrap().len(),
        1,
        "no record kept"
    );
    // The writer goes on.
    let change = v
        .record_consent(
            "website",
            ann,
            &choice("newsletters", false, "settings_page"),
        )
        .unwrap();
    assert_eq!(v.consents("website", ann).unwrap()[1], change.consent);
}

/// `Store::subject_holders`, what a consent change checks: the status, age and tenants of
/// `Store::subject_state` and each service holding a value, once — not the sealed values, the
/// consent events or the key; `None` for a subject never collected; an erased subject keeps
/// its status and nothing else. The receipt names the services it read.
pub fn subject_holders_is_what_a_change_checks(h: Harness) {
    use custos_vault::store::Status;
    let v = h.vault();
    let store = v.store();
    let none = "00000000-0000-4000-8000-000000000000";
    assert_eq!(store.subject_holders(none).unwrap(), None);
    let ann = v
        .collect(
            "website",
            &registration(
                "holders@example.com",
                &["account", "marketing.announcements"],
            ),
        )
        .unwrap();
    let change = v
        .record_consent(
            "website",
            &ann,
            &choice("surveys", true, "checkbox_unticked"),
        )
        .unwrap();
    let full = store.subject_state(ann.as_str()).unwrap().unwrap();
    let brief = store.subject_holders(ann.as_str()).unwrap().unwrap();
    assert_eq!(
        (brief.status, brief.age, &brief.tenants),
        (full.status, full.age, &full.tenants)
    );
    let mut services: Vec<(&str, &str)> = full
        .values
        .iter()
        .map(|x| (x.service.as_str(), x.role.as_str()))
        .collect();
    services.sort_unstable();
    services.dedup();
    let held: Vec<(&str, &str)> = brief
        .values
        .iter()
        .map(|x| (x.service.as_str(), x.role.as_str()))
        .collect();
    assert_eq!(held, services);
    assert!(
        full.values.len() > brief.values.len(),
        "one row per service"
    );
    assert!(!full.consents.is_empty() && full.wrapped_dek.is_some());
    assert!(brief.consents.is_empty() && brief.wrapped_dek.is_none());
    assert!(brief.values.iter().all(|x| x.ciphertext.is_empty()));
    let claims = verify_receipt(&change.receipt, &jwks_of(v)).unwrap().claims;
    let named: Vec<&str> = claims["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["website"]);
    // A person of a tenant: the tenants read are the state's.
    let ari = v
        .collect("meeting-center", &attendee("Ari", "ari@acme.example"))
        .unwrap();
    let full = store.subject_state(ari.as_str()).unwrap().unwrap();
    let brief = store.subject_holders(ari.as_str()).unwrap().unwrap();
    assert!(!brief.tenants.is_empty());
    assert_eq!(brief.tenants, full.tenants);
    v.erase("operator", &ann).unwrap();
    let erased = store.subject_holders(ann.as_str()).unwrap().unwrap();
    assert_eq!(erased.status, Status::Erased);
    assert!(erased.values.is_empty() && erased.tenants.is_empty());
}

/// Receipts come back as they were signed after the store is opened again. They are stored
/// packed (`store/receipts.rs`) on both backends: a few hundred bytes, against a dictionary
/// that names no one.
pub fn receipts_read_back_as_signed_after_reopen(mut h: Harness) {
    let v = h.vault();
    let people: Vec<_> = ["ann@example.com", "bo@example.com", "cy@example.com"]
        .iter()
        .map(|e| {
            v.collect(
                "website",
                &registration(e, &["account", "marketing.announcements"]),
            )
            .unwrap()
        })
        .collect();
    let mut given = Vec::new();
    for (i, p) in people.iter().enumerate() {
        for (purpose, yes) in [("newsletters", true), ("surveys", i % 2 == 0)] {
            let c = v
                .record_consent("website", p, &choice(purpose, yes, "settings_page"))
                .unwrap();
            given.push((p.clone(), c.receipt));
        }
    }
    h.close();
    let v = h.open(h.kek.clone()).unwrap();
    let keys = jwks_of(&v);
    for p in &people {
        let stored: Vec<String> = v
            .consents("website", p)
            .unwrap()
            .into_iter()
            .map(|c| c.receipt.unwrap())
            .collect();
        let signed: Vec<String> = given
            .iter()
            .filter(|(s, _)| s == p)
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(stored, signed);
        for r in &stored {
            verify_receipt(r, &keys).unwrap();
        }
    }
    let (packed, size, named) = if h.is_sqlite() {
        (
            "SELECT COUNT(*) FROM consent_receipts WHERE typeof(receipt) = 'blob'",
            "SELECT MAX(length(receipt)) FROM consent_receipts",
            "SELECT COUNT(*) FROM receipt_dicts WHERE instr(dict, CAST('{p}' AS BLOB)) > 0",
        )
    } else {
        (
            "SELECT COUNT(*) FROM consent_receipts WHERE packed IS NOT NULL AND receipt IS NULL",
            "SELECT MAX(octet_length(packed))::BIGINT FROM consent_receipts",
            "SELECT COUNT(*) FROM receipt_dicts WHERE position(convert_to('{p}', 'UTF8') IN dict) > 0",
        )
    };
    assert_eq!(h.count(packed), 6);
    assert!(h.count(size) < 400);
    assert_eq!(h.count("SELECT COUNT(*) FROM receipt_dicts"), 1);
    for p in &people {
        assert_eq!(h.count(&named.replace("{p}", p.as_str())), 0);
    }
}
