//! Issue 13, item 3: people's requests as staff handle them. Cases of the conformance suite
//! (run on both backends through `cases.rs`), each from the attacker's side first.

use custos_vault::store::RequestRow;
use custos_vault::{
    Actor, Error, RequestHandler, RequestInput, RequestList, SubjectId, Vault, ledger::Draft,
};
use std::collections::BTreeMap;

use crate::cases::read;
use crate::support::{Harness, attendee, registration};

/// A request of `kind` about `subject`, received by email and checked against the address
/// on file.
pub fn by_email(kind: &str, subject: Option<&SubjectId>) -> RequestInput {
    RequestInput {
        kind: kind.into(),
        subject: subject.map(ToString::to_string),
        channel: "email".into(),
        verification: "email_from_address_on_file".into(),
        purpose: None,
    }
}

fn now_ms_for_tests() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_millis()).unwrap()
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

fn code(e: &Error) -> (&'static str, Option<&str>) {
    match e {
        Error::InvalidField { code, field, .. } => (code, Some(field.as_str())),
        other => (other.code(), None),
    }
}

/// Every key but staff's is refused `not_staff` on every act, before anything is read,
/// and each refusal is ledgered: another service (`marketing`, `connect`), a key made for a
/// customer's tenant, an undeclared accessor, and staff's own accessor acting for a tenant.
pub fn only_staff_handle_requests(h: Harness) {
    let v = h.vault();
    let ann = v
        .collect(
            "meeting-center",
            &attendee("Ann Req", "ann.req@acme.example"),
        )
        .unwrap();
    let mine = v
        .create_request("admin", &by_email("erase", Some(&ann)))
        .unwrap();
    let attackers = [
        Actor::from("marketing"),
        Actor::from("connect"),
        Actor::of_tenant("customer-admin", "acme"),
        Actor::of_tenant("admin", "acme"),
        Actor::from("nobody"),
    ];
    for a in attackers {
        let before = entries(v).len();
        let e = v
            .create_request(a, &by_email("erase", Some(&ann)))
            .unwrap_err();
        assert_eq!(e.code(), "not_staff", "{a:?}");
        assert_eq!(
            v.requests(a, RequestList::All).unwrap_err().code(),
            "not_staff"
        );
        assert_eq!(v.request(a, &mine.id).unwrap_err().code(), "not_staff");
        assert_eq!(
            v.verify_request(a, &mine.id).unwrap_err().code(),
            "not_staff"
        );
        assert_eq!(
            v.complete_request(a, &mine.id).unwrap_err().code(),
            "not_staff"
        );
        assert_eq!(
            v.refuse_request(a, &mine.id, "duplicate")
                .unwrap_err()
                .code(),
            "not_staff"
        );
        let after = entries(v);
        assert_eq!(after.len(), before + 6, "{a:?}: each refusal ledgered");
        for d in &after[before..] {
            assert_eq!(
                (d.effect.as_str(), d.reasons.as_str()),
                ("refused", "not_staff")
            );
            assert!(d.subject.is_empty(), "a refusal names no subject: {d:?}");
        }
    }
    // Untouched: still received, the subject still held.
    assert_eq!(v.request("admin", &mine.id).unwrap().state, "received");
    assert!(
        v.read("meeting-center", &ann, &read("service.meetings"))
            .unwrap()
            .data
            .len()
            > 1
    );
}

/// received → verified → completed, each ledgered with the request's keywords; a second
/// completion, a refusal of a closed request, completing before verifying and verifying
/// twice are each refused with their code; the due time is `respond_days` after receipt.
pub fn requests_move_through_their_states(h: Harness) {
    let v = h.vault();
    let bo = v
        .collect("meeting-center", &attendee("Bo Req", "bo.req@acme.example"))
        .unwrap();
    let before = now_ms_for_tests();
    let r = v
        .create_request("admin", &by_email("access", Some(&bo)))
        .unwrap();
    assert_eq!(r.state, "received");
    assert_eq!(r.kind, "access");
    assert_eq!(r.subject.as_deref(), Some(bo.as_str()));
    assert_eq!(r.created_by, "admin");
    assert!(!r.overdue);
    let stored = v.store().request(&r.id).unwrap().unwrap();
    assert_eq!(stored.due_ms - stored.received_ms, 30 * 86_400_000);
    assert!(stored.received_ms >= before);

    let e = v.complete_request("admin", &r.id).unwrap_err();
    assert_eq!(e.code(), "request_not_verified");
    let r2 = v.verify_request("admin", &r.id).unwrap();
    assert_eq!(r2.state, "verified");
    assert_eq!(
        v.verify_request("admin", &r.id).unwrap_err().code(),
        "request_already_verified"
    );
    let done = v.complete_request("admin", &r.id).unwrap();
    assert_eq!(done.state, "completed");
    assert_eq!(done.updated_by, "admin");
    for again in [
        v.complete_request("admin", &r.id).unwrap_err(),
        v.refuse_request("admin", &r.id, "duplicate").unwrap_err(),
        v.verify_request("admin", &r.id).unwrap_err(),
    ] {
        assert_eq!(again.code(), "request_closed");
    }
    // The operator handles requests too.
    let q = v
        .create_request(
            RequestHandler::Operator,
            &by_email("california-disclosures", None),
        )
        .unwrap();
    assert_eq!(q.created_by, "operator");
    assert_eq!(q.subject, None);
    let refused = v
        .refuse_request(RequestHandler::Operator, &q.id, "no_data_held")
        .unwrap();
    assert_eq!(
        (refused.state.as_str(), refused.reason.as_deref()),
        ("refused", Some("no_data_held"))
    );
    let e = v.refuse_request("admin", &q.id, "because").unwrap_err();
    assert_eq!(code(&e), ("invalid_refusal_reason", Some("reason")));
    assert_eq!(
        v.request("admin", "00000000-0000-7000-8000-000000000000")
            .unwrap_err()
            .code(),
        "request_not_found"
    );
    assert_eq!(
        v.complete_request("admin", "not-an-id").unwrap_err().code(),
        "request_not_found"
    );

    // The ledger: each transition, with keywords only.
    let ledger = entries(v);
    let of = |action: &str| -> Vec<&Draft> {
        ledger
            .iter()
            .filter(|d| d.action == action && d.effect == "done")
            .collect()
    };
    let tag = format!(
        "kind:access,channel:email,verification:email_from_address_on_file,request:{}",
        r.id
    );
    for action in ["request_receive", "request_verify", "request_complete"] {
        let found = of(action);
        assert!(
            found
                .iter()
                .any(|d| d.reasons == tag && d.subject == bo.as_str() && d.actor == "admin"),
            "{action}: {found:?}"
        );
    }
    assert!(of("request_refuse").iter().any(|d| d.reasons
        == format!(
            "no_data_held,kind:california-disclosures,channel:email,verification:email_from_address_on_file,request:{}",
            q.id
        )
        && d.actor == "operator"));
    assert!(ledger.iter().any(|d| d.action == "request_complete"
        && d.effect == "refused"
        && d.reasons == format!("request_closed,request:{}", r.id)));
    assert!(ledger.iter().any(|d| d.action == "request_complete"
        && d.effect == "refused"
        && d.reasons == format!("request_not_verified,request:{}", r.id)));
}

/// Completing an `erase` request erases the subject, `deactivate` deactivates it, `object`
/// records the objection to its purpose; each act is ledgered as itself.
pub fn completing_a_request_does_it(h: Harness) {
    let v = h.vault();
    let complete = |input: RequestInput| {
        let r = v.create_request("admin", &input).unwrap();
        v.verify_request("admin", &r.id).unwrap();
        v.complete_request("admin", &r.id).unwrap()
    };
    // Erase.
    let cy = v
        .collect("meeting-center", &attendee("Cy Req", "cy.req@acme.example"))
        .unwrap();
    let r = v
        .create_request("admin", &by_email("erase", Some(&cy)))
        .unwrap();
    v.verify_request("admin", &r.id).unwrap();
    assert!(
        v.find_by_identifier("contact.email", "cy.req@acme.example")
            .unwrap()
            .is_some()
    );
    v.complete_request("admin", &r.id).unwrap();
    assert_eq!(
        v.find_by_identifier("contact.email", "cy.req@acme.example")
            .unwrap(),
        None
    );
    assert!(
        v.read("meeting-center", &cy, &read("service.meetings"))
            .map_or(true, |r| r.data.is_empty())
    );
    // A request about the erased subject is about no one.
    let e = v
        .create_request("admin", &by_email("access", Some(&cy)))
        .unwrap_err();
    assert!(matches!(e, Error::SubjectNotFound), "{e:?}");

    // Deactivate: only legal and contractual purposes remain.
    let di = v
        .collect(
            "website",
            &registration("di.req@example.com", &["account", "support", "contract"]),
        )
        .unwrap();
    assert!(
        !v.read("support", &di, &read("support"))
            .unwrap()
            .data
            .is_empty()
    );
    complete(by_email("deactivate", Some(&di)));
    let r = v.read("support", &di, &read("support")).unwrap();
    assert_eq!(r.denial.as_deref(), Some("subject_deactivated"));
    assert!(
        !v.read("billing", &di, &read("contract"))
            .unwrap()
            .data
            .is_empty()
    );

    // Object: marketing stops.
    let ed = v
        .collect(
            "website",
            &registration(
                "ed.req@example.com",
                &["account", "marketing.announcements"],
            ),
        )
        .unwrap();
    let announcements = read("marketing.announcements");
    assert!(
        !v.read("marketing", &ed, &announcements)
            .unwrap()
            .data
            .is_empty()
    );
    let mut objection = by_email("object", Some(&ed));
    objection.purpose = Some("marketing".into());
    complete(objection);
    let r = v.read("marketing", &ed, &announcements).unwrap();
    assert!(r.data.is_empty(), "{r:?}");
    assert!(r.withheld.values().any(|w| w == "objected"), "{r:?}");

    let ledger = entries(v);
    for (action, subject) in [("erase", &cy), ("deactivate", &di), ("objection", &ed)] {
        assert!(
            ledger
                .iter()
                .any(|d| d.action == action && d.subject == subject.as_str() && d.actor == "admin"),
            "{action}"
        );
    }

    // Access and export: completed with the person's export, made by staff and ledgered so.
    let fa = v
        .collect("meeting-center", &attendee("Fa Req", "fa.req@acme.example"))
        .unwrap();
    for kind in ["access", "export"] {
        let r = v
            .create_request("admin", &by_email(kind, Some(&fa)))
            .unwrap();
        v.verify_request("admin", &r.id).unwrap();
        let c = v.complete_request_with("admin", &r.id, None).unwrap();
        assert_eq!(c.request.state, "completed");
        let e = c.export.expect("an export");
        assert_eq!(e.subject, fa);
        assert!(e.values.iter().any(|x| x.value == "fa.req@acme.example"));
        let own = &e.ledger.last().unwrap().entry.draft;
        assert_eq!(
            (own.action.as_str(), own.actor.as_str()),
            ("export", "admin")
        );
    }
    // Rectify: completed with the corrected values, and only with them; no other kind
    // takes values.
    let r = v
        .create_request("admin", &by_email("rectify", Some(&fa)))
        .unwrap();
    v.verify_request("admin", &r.id).unwrap();
    match v.complete_request_with("admin", &r.id, None) {
        Err(Error::InvalidField { code, field, .. }) => {
            assert_eq!((code, field.as_str()), ("missing_field", "data"));
        }
        other => panic!("{other:?}"),
    }
    let fix: BTreeMap<String, String> =
        [("contact.name".to_string(), "Fa Corrected".to_string())].into();
    let c = v.complete_request_with("admin", &r.id, Some(&fix)).unwrap();
    assert_eq!(c.request.state, "completed");
    assert!(c.export.is_none());
    let got = v
        .read("meeting-center", &fa, &read("service.meetings"))
        .unwrap();
    assert_eq!(got.data["contact.name"], "Fa Corrected");
    let r = v
        .create_request("admin", &by_email("deactivate", Some(&fa)))
        .unwrap();
    v.verify_request("admin", &r.id).unwrap();
    assert!(matches!(
        v.complete_request_with("admin", &r.id, Some(&fix)),
        Err(Error::InvalidField { .. })
    ));
    assert_eq!(v.request("admin", &r.id).unwrap().state, "verified");
}

/// Each field is checked and its error names it; nothing is stored or done.
pub fn requests_are_checked_field_by_field(h: Harness) {
    let v = h.vault();
    let fi = v
        .collect("meeting-center", &attendee("Fi Req", "fi.req@acme.example"))
        .unwrap();
    let ok = by_email("erase", Some(&fi));
    let cases: Vec<(RequestInput, (&str, Option<&str>))> = vec![
        (
            RequestInput {
                kind: "erasure".into(),
                ..ok.clone()
            },
            ("invalid_request_kind", Some("kind")),
        ),
        (
            RequestInput {
                channel: "carrier-pigeon".into(),
                ..ok.clone()
            },
            ("invalid_channel", Some("channel")),
        ),
        (
            RequestInput {
                verification: "trust_me".into(),
                ..ok.clone()
            },
            ("invalid_verification", Some("verification")),
        ),
        (
            RequestInput {
                verification: "signed_in".into(),
                ..ok.clone()
            },
            ("invalid_verification", Some("verification")),
        ),
        (
            RequestInput {
                channel: "online".into(),
                ..ok.clone()
            },
            ("invalid_verification", Some("verification")),
        ),
        (
            RequestInput {
                subject: None,
                ..ok.clone()
            },
            ("subject_required", Some("subject")),
        ),
        (
            RequestInput {
                subject: Some("00000000-0000-7000-8000-000000000000".into()),
                ..ok.clone()
            },
            ("subject_not_found", None),
        ),
        (
            RequestInput {
                subject: Some("ann@example.com".into()),
                ..ok.clone()
            },
            ("subject_not_found", None),
        ),
        (
            RequestInput {
                purpose: Some("marketing".into()),
                ..ok.clone()
            },
            ("purpose_not_expected", Some("purpose")),
        ),
        (
            RequestInput {
                kind: "object".into(),
                purpose: Some("marketting".into()),
                ..ok.clone()
            },
            ("unknown_purpose", Some("purpose")),
        ),
    ];
    for (input, expected) in cases {
        let e = v.create_request("admin", &input).unwrap_err();
        assert_eq!(code(&e), expected, "{input:?}");
        // The message names no value given.
        assert!(!e.to_string().contains("carrier-pigeon") && !e.to_string().contains("ann@"));
    }
    assert!(v.requests("admin", RequestList::All).unwrap().is_empty());
    let online = RequestInput {
        channel: "online".into(),
        verification: "signed_in".into(),
        ..ok
    };
    assert_eq!(
        v.create_request("admin", &online).unwrap().channel,
        "online"
    );
}

/// Open lists received and verified requests, overdue those of them past due, all every
/// one, due soonest first.
pub fn open_and_overdue_requests_are_listed(h: Harness) {
    let v = h.vault();
    let gi = v
        .collect("meeting-center", &attendee("Gi Req", "gi.req@acme.example"))
        .unwrap();
    let open = v
        .create_request("admin", &by_email("access", Some(&gi)))
        .unwrap();
    let closed = v
        .create_request("admin", &by_email("export", Some(&gi)))
        .unwrap();
    v.refuse_request("admin", &closed.id, "duplicate").unwrap();
    // One received 40 days ago, due 10 days ago: overdue.
    let now = now_ms_for_tests();
    let late = RequestRow {
        id: "0190a000-0000-7000-8000-000000000001".into(),
        kind: "erase".into(),
        subject: Some(gi.to_string()),
        channel: "letter".into(),
        verification: "document_checked".into(),
        purpose: None,
        state: "verified".into(),
        reason: None,
        received_ms: now - 40 * 86_400_000,
        due_ms: now - 10 * 86_400_000,
        updated_ms: now - 40 * 86_400_000,
        created_by: "admin".into(),
        updated_by: "admin".into(),
    };
    v.store().put_request(&late).unwrap();
    let ids = |l: RequestList| -> Vec<String> {
        v.requests("admin", l)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(RequestList::Overdue), std::slice::from_ref(&late.id));
    assert_eq!(ids(RequestList::Open), [late.id.clone(), open.id.clone()]);
    let all = ids(RequestList::All);
    assert_eq!(all.len(), 3);
    assert_eq!(all.first(), Some(&late.id));
    let shown = v.request("admin", &late.id).unwrap();
    assert!(shown.overdue);
    assert!(!v.request("admin", &open.id).unwrap().overdue);
    assert!(
        entries(v)
            .iter()
            .any(|d| d.action == "request_list" && d.reasons == "list:overdue,count:1")
    );
}

/// A kind the policy gives no `respond_days` is not taken, and a policy with no staff lets
/// no key handle requests (only the operator).
#[test]
fn a_request_kind_without_a_deadline_is_not_taken_and_staff_are_the_policys() {
    let text = custos_policy::BUILTIN_WEBEX_2010
        .replace(" object = 10,", "")
        .replace("staff = [\"admin\"]", "staff = [\"legal\"]");
    let policy = std::sync::Arc::new(custos_policy::Policy::from_str("p.toml", &text).unwrap());
    let dir = std::env::temp_dir().join(format!("custos_requests_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let v = Vault::open_embedded(&dir, policy).unwrap();
    let ed = v
        .collect("meeting-center", &attendee("Ed Req", "ed.req@acme.example"))
        .unwrap();
    let mut objection = by_email("object", Some(&ed));
    objection.purpose = Some("marketing".into());
    let e = v.create_request("legal", &objection).unwrap_err();
    assert_eq!(code(&e), ("request_kind_not_offered", Some("kind")));
    // `admin` is no longer staff; `legal` is.
    let e = v
        .create_request("admin", &by_email("erase", Some(&ed)))
        .unwrap_err();
    assert_eq!(e.code(), "not_staff");
    assert_eq!(
        v.create_request("legal", &by_email("erase", Some(&ed)))
            .unwrap()
            .created_by,
        "legal"
    );
    drop(v);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A list is read page by page: every request once, in due order (ties by id), whatever the
/// page size; a cursor that is not a page's `next` is refused by its field; a key that may
/// not list is refused `not_staff` before its cursor is even read.
pub fn requests_are_listed_page_by_page(h: Harness) {
    let v = h.vault();
    let gi = v
        .collect("meeting-center", &attendee("Pa Ged", "pa.ged@acme.example"))
        .unwrap();
    // Seven requests: three created now, four stored due at one and the same time (the
    // page boundary falls between equal due times).
    let mut want: Vec<(i64, String)> = Vec::new();
    for kind in ["access", "export", "erase"] {
        let r = v
            .create_request("admin", &by_email(kind, Some(&gi)))
            .unwrap();
        let row = v.store().request(&r.id).unwrap().unwrap();
        want.push((row.due_ms, r.id));
    }
    let now = now_ms_for_tests();
    for i in [4, 1, 3, 2] {
        let row = RequestRow {
            id: format!("0190a000-0000-7000-8000-00000000000{i}"),
            kind: "erase".into(),
            subject: Some(gi.to_string()),
            channel: "letter".into(),
            verification: "document_checked".into(),
            purpose: None,
            state: "received".into(),
            reason: None,
            received_ms: now - 5 * 86_400_000,
            due_ms: now + 86_400_000,
            updated_ms: now - 5 * 86_400_000,
            created_by: "admin".into(),
            updated_by: "admin".into(),
        };
        want.push((row.due_ms, row.id.clone()));
        v.store().put_request(&row).unwrap();
    }
    want.sort();
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
    for limit in [1, 2, 3, 7, 1000] {
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = v
                .requests_page("admin", RequestList::All, after.as_deref(), limit)
                .unwrap();
            pages += 1;
            assert!(page.requests.len() as u64 <= limit);
            got.extend(page.requests.into_iter().map(|r| r.id));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
            assert!(pages <= 8, "the pages never end");
        }
        assert_eq!(got, want, "limit {limit}");
    }
    // The default page, and the first page of `requests`.
    let first = v.requests_page("admin", RequestList::All, None, 0).unwrap();
    assert_eq!(first.requests.len(), 7);
    assert_eq!(first.next, None);
    assert_eq!(v.requests("admin", RequestList::All).unwrap().len(), 7);
    for bad in [
        "",
        "x",
        "12",
        "12_",
        "_0190",
        "12_0190 a",
        "abc_0190a000",
        "-5_0190a000",
        "+5_0190a000",
        "1234567890123456789_0190a000",
    ] {
        let e = v
            .requests_page("admin", RequestList::All, Some(bad), 2)
            .unwrap_err();
        assert_eq!(code(&e), ("invalid_query", Some("after")), "{bad:?}");
    }
    let e = v
        .requests_page("marketing", RequestList::All, Some("x"), 2)
        .unwrap_err();
    assert_eq!(e.code(), "not_staff");
}
