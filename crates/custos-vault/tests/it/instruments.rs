//! Issue 12, item 4: legal instruments as records. Cases of the conformance suite (run on
//! both backends through `cases.rs`), each from the attacker's side first.

use custos_vault::{
    Error, InstrumentInput, ReadInput, RecordsPage, SubjectId, Vault, ledger::Draft,
};

use crate::support::{Harness, attendee};

/// A court order (or `kind`) covering `subjects` and `categories`, expiring next year.
pub fn instrument(kind: &str, subjects: &[&SubjectId], categories: &[&str]) -> InstrumentInput {
    InstrumentInput {
        kind: kind.into(),
        issuer: "Superior Court of Santa Clara County".into(),
        issued: "2026-01-15".into(),
        document_sha256: "ab".repeat(32),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|c| c.to_string()).collect(),
        expires: "2099-12-31T23:59:59Z".into(),
    }
}

fn legal(purpose: &str, categories: &[&str], reference: Option<&str>) -> ReadInput {
    ReadInput {
        purpose: purpose.into(),
        categories: Some(categories.iter().map(|c| c.to_string()).collect()),
        recipient: None,
        reference: reference.map(str::to_string),
    }
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

fn withheld(v: &Vault, subject: &SubjectId, input: &ReadInput) -> Vec<String> {
    let r = v.read("legal", subject, input).unwrap();
    assert!(r.data.is_empty(), "{r:?}");
    r.withheld.values().cloned().collect()
}

/// A read for a legal purpose is decided by the registered instrument its reference names:
/// a made-up reference, another subject's instrument, an expired one, one of a kind the
/// purpose does not accept, and one that does not cover a category each withhold; a good
/// one permits exactly what it covers, and the read's ledger entry names it.
pub fn legal_reads_need_a_registered_instrument(h: Harness) {
    let v = h.vault();
    let a = v
        .collect("meeting-center", &attendee("Ann Law", "ann@acme.example"))
        .unwrap();
    let b = v
        .collect("meeting-center", &attendee("Bob Law", "bob@acme.example"))
        .unwrap();
    let order = v
        .register_instrument(
            "legal",
            &instrument("court_order", &[&a], &["contact.email"]),
        )
        .unwrap();
    let email = &["contact.email"];

    // Nothing, free text, a made-up id: as before, nothing.
    assert_eq!(
        withheld(v, &a, &legal("legal.process", email, None)),
        ["reference_missing"]
    );
    for made_up in ["case 2026-17", "00000000-0000-7000-8000-000000000000"] {
        assert_eq!(
            withheld(v, &a, &legal("legal.process", email, Some(made_up))),
            ["instrument_unknown"],
            "{made_up}"
        );
    }
    // Subject A's court order used for subject B: as unknown as a made-up id.
    assert_eq!(
        withheld(v, &b, &legal("legal.process", email, Some(&order.id))),
        ["instrument_unknown"]
    );
    // A court order for the purchaser's access (C075 takes a purchaser authority only).
    let mut mailbox = attendee("Mo Mail", "mo@acme.example");
    mailbox.service = "mail".into();
    mailbox.role = "mailbox-owner".into();
    mailbox.purposes = vec!["service.mail".into(), "mail.purchaser_access".into()];
    let mo = v.collect("mail", &mailbox).unwrap();
    let mo_order = v
        .register_instrument(
            "legal",
            &instrument("court_order", &[&mo], &["contact.email"]),
        )
        .unwrap();
    let key = v.create_key_for("mailbox-purchaser", Some("acme")).unwrap();
    let purchaser = v.authenticate(&key).unwrap();
    let access = |reference: &str| {
        v.read(
            &purchaser,
            &mo,
            &legal("mail.purchaser_access", email, Some(reference)),
        )
        .unwrap()
    };
    let refused = access(&mo_order.id);
    assert!(refused.data.is_empty());
    assert_eq!(refused.withheld["contact.email"], "instrument_kind");
    let authority = v
        .register_instrument_as_operator(&instrument(
            "purchaser_authority",
            &[&mo],
            &["contact.email"],
        ))
        .unwrap();
    assert_eq!(
        access(&authority.id).data["contact.email"],
        "mo@acme.example"
    );
    // A fraud case is not legal process (legal.process takes court orders, subpoenas and
    // authority requests), but is what an investigation takes.
    let case = v
        .register_instrument(
            "legal",
            &instrument("fraud_case", &[&a], &["contact.email"]),
        )
        .unwrap();
    assert_eq!(
        withheld(v, &a, &legal("legal.process", email, Some(&case.id))),
        ["instrument_kind"]
    );
    let r = v
        .read(
            "legal",
            &a,
            &legal("legal.investigation", email, Some(&case.id)),
        )
        .unwrap();
    assert_eq!(r.data["contact.email"], "ann@acme.example");

    // An order covering only the email, asked for more: the rest is withheld.
    let r = v
        .read(
            "legal",
            &a,
            &legal(
                "legal.process",
                &["contact.email", "contact.name"],
                Some(&order.id),
            ),
        )
        .unwrap();
    assert_eq!(r.effect, "partial");
    assert_eq!(r.data["contact.email"], "ann@acme.example");
    assert!(!r.data.contains_key("contact.name"));
    assert_eq!(r.withheld["contact.name"], "instrument_scope");
    // The use is ledgered with the instrument's id.
    let used = entries(v)
        .into_iter()
        .rfind(|d| d.action == "read")
        .unwrap();
    assert_eq!(used.subject, a.as_str());
    assert!(
        used.reasons
            .split(',')
            .any(|r| r == format!("instrument:{}", order.id)),
        "{}",
        used.reasons
    );
    // The decision alone says the same, and is ledgered the same way.
    let d = v
        .decide(
            "legal",
            &a,
            &legal("legal.process", &["contact.email"], Some(&order.id)),
        )
        .unwrap();
    assert_eq!(d.effect, "permit");
    assert_eq!(d.ground.as_deref(), Some("legal_reference"));
    let decided = entries(v)
        .into_iter()
        .rfind(|x| x.action == "decide")
        .unwrap();
    assert!(
        decided
            .reasons
            .contains(&format!("instrument:{}", order.id))
    );

    // Expired (the clock moved past it): refused, and the ledger names what was used.
    h.exec(&format!(
        "UPDATE instruments SET expires_ms = 1000 WHERE id = '{}'",
        order.id
    ));
    assert_eq!(
        withheld(v, &a, &legal("legal.process", email, Some(&order.id))),
        ["instrument_expired"]
    );
    assert!(v.instrument("legal", &order.id).unwrap().expired);

    // Erased: covered by nothing, listed nowhere.
    v.erase("meeting-center", &a).unwrap();
    assert!(v.instrument("legal", &case.id).unwrap().subjects.is_empty());
    let gone = v
        .read(
            "legal",
            &a,
            &legal("legal.investigation", email, Some(&case.id)),
        )
        .unwrap();
    assert_eq!(gone.denial.as_deref(), Some("subject_erased"));
    assert!(gone.data.is_empty());
    assert!(v.verify_ledger().unwrap().ok());
}

/// Only staff register: an accessor that pursues a purpose accepting the kind and acts for
/// no tenant or external recipient (the `legal` department), and the operator. Every other
/// key is refused, and the refusal ledgered; so is each registration, per subject, with
/// the instrument's id and kind but never its issuer. A registration names each bad field;
/// an instrument is shown to staff only.
pub fn only_staff_register_instruments(h: Harness) {
    let v = h.vault();
    let a = v
        .collect("meeting-center", &attendee("Cy Law", "cy@acme.example"))
        .unwrap();
    let order = instrument("court_order", &[&a], &["contact.email"]);
    let marketing = "marketing";
    let admin_key = v.create_key_for("customer-admin", Some("acme")).unwrap();
    let admin = v.authenticate(&admin_key).unwrap();
    let purchaser_key = v.create_key_for("mailbox-purchaser", Some("acme")).unwrap();
    let purchaser = v.authenticate(&purchaser_key).unwrap();
    let code = |r: custos_vault::Result<custos_vault::Instrument>| r.unwrap_err().code();
    assert_eq!(
        code(v.register_instrument(marketing, &order)),
        "instrument_not_allowed"
    );
    assert_eq!(
        code(v.register_instrument(&admin, &order)),
        "instrument_not_allowed"
    );
    // An authority does not vouch for its own request, nor a purchaser for its authority.
    assert_eq!(
        code(v.register_instrument("authorities", &order)),
        "instrument_not_allowed"
    );
    assert_eq!(
        code(v.register_instrument(
            &purchaser,
            &instrument("purchaser_authority", &[&a], &["contact.email"])
        )),
        "instrument_not_allowed"
    );
    // Legal staff register legal instruments, not a purchaser's authority.
    assert_eq!(
        code(v.register_instrument(
            "legal",
            &instrument("purchaser_authority", &[&a], &["contact.email"])
        )),
        "instrument_not_allowed"
    );
    assert_eq!(
        code(v.register_instrument("nobody", &order)),
        "unknown_accessor"
    );
    let refusals = entries(v)
        .into_iter()
        .filter(|d| d.action == "instrument_register" && d.effect == "refused")
        .count();
    assert_eq!(refusals, 6);

    // Each bad field is named.
    let field = |input: InstrumentInput| match v.register_instrument("legal", &input) {
        Err(Error::InvalidField { code, field, .. }) => (code, field),
        other => panic!("{other:?}"),
    };
    let with = |f: &dyn Fn(&mut InstrumentInput)| {
        let mut i = order.clone();
        f(&mut i);
        field(i)
    };
    assert_eq!(
        with(&|i| i.kind = "court_ordr".into()),
        ("invalid_instrument_kind", "kind".into())
    );
    assert_eq!(
        with(&|i| i.issuer = " ".into()),
        ("invalid_issuer", "issuer".into())
    );
    assert_eq!(
        with(&|i| i.issuer = "x".repeat(129)),
        ("invalid_issuer", "issuer".into())
    );
    assert_eq!(
        with(&|i| i.issued = "2026-02-30".into()),
        ("invalid_date", "issued".into())
    );
    assert_eq!(
        with(&|i| i.issued = "2999-01-01".into()),
        ("invalid_date", "issued".into())
    );
    assert_eq!(
        with(&|i| i.document_sha256 = "ab".into()),
        ("invalid_document_hash", "document_sha256".into())
    );
    assert_eq!(
        with(&|i| i.expires = "tomorrow".into()),
        ("invalid_date", "expires".into())
    );
    assert_eq!(
        with(&|i| i.expires = "2020-01-01T00:00:00Z".into()),
        ("invalid_expiry", "expires".into())
    );
    assert_eq!(
        with(&|i| i.categories = vec!["contact.email".into(), "contact.emial".into()]),
        ("unknown_category", "categories[1]".into())
    );
    assert_eq!(
        with(&|i| i.categories.clear()),
        ("categories_required", "categories".into())
    );
    assert_eq!(
        with(&|i| i.subjects.clear()),
        ("subjects_required", "subjects".into())
    );
    assert_eq!(
        with(&|i| i.subjects.push("not-a-subject".into())),
        ("unknown_subject", "subjects[1]".into())
    );
    assert_eq!(
        with(&|i| i
            .subjects
            .push("00000000-0000-7000-8000-000000000000".into())),
        ("unknown_subject", "subjects[1]".into())
    );

    // Registered by staff: ledgered per subject, before it is stored, without the issuer.
    let b = v
        .collect("meeting-center", &attendee("Di Law", "di@acme.example"))
        .unwrap();
    let two = instrument(
        "subpoena",
        &[&a, &b, &a],
        &["contact.email", "contact.name"],
    );
    let got = v.register_instrument("legal", &two).unwrap();
    assert_eq!(got.kind, "subpoena");
    assert_eq!(got.registered_by, "legal");
    assert_eq!(got.subjects.len(), 2, "each subject once");
    assert_eq!(got.categories, ["contact.name", "contact.email"]);
    assert_eq!(got.expires, "2099-12-31T23:59:59Z");
    let registered: Vec<Draft> = entries(v)
        .into_iter()
        .filter(|d| d.action == "instrument_register" && d.effect == "done")
        .collect();
    assert_eq!(registered.len(), 2);
    for d in &registered {
        assert_eq!(d.actor, "legal");
        assert!([a.as_str(), b.as_str()].contains(&d.subject.as_str()));
        assert_eq!(d.reasons, format!("subpoena,instrument:{}", got.id));
        assert_eq!(d.categories, "contact.name,contact.email");
    }
    let ledger_text: String = entries(v)
        .iter()
        .map(|d| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !ledger_text.contains("Superior Court"),
        "the issuer stays out of the ledger"
    );

    // Shown to staff and the operator; to anyone else, as an id never registered.
    assert_eq!(v.instrument("legal", &got.id).unwrap(), got);
    assert_eq!(v.instrument_as_operator(&got.id).unwrap().id, got.id);
    for other in ["support", "marketing", "authorities"] {
        assert_eq!(
            v.instrument(other, &got.id).unwrap_err().code(),
            "instrument_not_found",
            "{other}"
        );
    }
    assert_eq!(
        v.instrument(&admin, &got.id).unwrap_err().code(),
        "instrument_not_found"
    );
    assert_eq!(
        v.instrument("legal", "00000000-0000-7000-8000-000000000000")
            .unwrap_err()
            .code(),
        "instrument_not_found"
    );
    assert!(v.verify_ledger().unwrap().ok());
}

/// Records read for a legal purpose take the same instrument check: none, or one that does
/// not cover the collection's categories, withholds them; one that does permits them.
pub fn legal_records_reads_need_a_covering_instrument(h: Harness) {
    let v = h.vault();
    let a = v
        .collect("meeting-center", &attendee("Ed Law", "ed@acme.example"))
        .unwrap();
    v.append_record(
        "meeting-center",
        &a,
        "meeting_attendance",
        &["service.meetings".into()],
        "{\"joined\":\"10:00\"}",
    )
    .unwrap();
    let page = RecordsPage::default();
    let read = |reference: Option<&str>| {
        v.read_records_with(
            "legal",
            &a,
            "meeting_attendance",
            "legal.process",
            reference,
            &page,
        )
        .unwrap()
    };
    let none = read(None);
    assert!(none.records.is_empty());
    assert_eq!(none.withheld["reference_missing"], 1);
    let email_only = v
        .register_instrument(
            "legal",
            &instrument("court_order", &[&a], &["contact.email"]),
        )
        .unwrap();
    let narrow = read(Some(&email_only.id));
    assert!(narrow.records.is_empty());
    assert_eq!(narrow.withheld["instrument_scope"], 1);
    let covering = v
        .register_instrument(
            "legal",
            &instrument(
                "court_order",
                &[&a],
                &["meeting.attendance", "network.ip_address"],
            ),
        )
        .unwrap();
    let ok = read(Some(&covering.id));
    assert_eq!(ok.effect, "permit", "{ok:?}");
    assert_eq!(ok.records.len(), 1);
    let used = entries(v)
        .into_iter()
        .rfind(|d| d.action == "read_records")
        .unwrap();
    assert!(
        used.reasons
            .contains(&format!("instrument:{}", covering.id))
    );
}
