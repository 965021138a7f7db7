//! The WebEx privacy policy of April 2010, clause by clause: each test fails when the policy
//! element that keeps its clause is removed or weakened. `policies/webex-2010/trace.toml` names
//! these tests.

use custos_policy::decide::{AgeStatus, Effect, Reason, Request, Subject, SubjectStatus};
use custos_policy::{Basis, CollectionRequest, Policy, RecipientKind, render};

use crate::builtin;

/// A subject whose `categories` were collected by `service/role` for all the role's purposes.
fn collected_by(p: &Policy, service_role: &str, categories: &[&str]) -> Subject {
    let (s, r) = service_role.split_once('/').unwrap();
    let svc = p.service(p.service_id(s).unwrap()).unwrap();
    let role = svc
        .roles
        .iter()
        .find(|x| x.id == r)
        .unwrap_or_else(|| panic!("no role {service_role}"));
    let mut subject = Subject::new();
    subject.hold(p.category_set(categories).unwrap(), role.allowed_purposes);
    subject
}

struct Ask<'a> {
    accessor: &'a str,
    purpose: &'a str,
    categories: &'a [&'a str],
    recipient: Option<&'a str>,
    reference: bool,
}

fn ask(p: &Policy, a: Ask<'_>, subject: &Subject) -> custos_policy::Decision {
    let req = Request {
        accessor: p.accessor_id(a.accessor).unwrap(),
        purpose: p.purpose_id(a.purpose).unwrap(),
        categories: p.category_set(a.categories).unwrap(),
        recipient: a.recipient.map(|r| p.recipient_id(r).unwrap()),
        has_reference: a.reference,
    };
    p.decide(&req, subject)
}

fn simple<'a>(accessor: &'a str, purpose: &'a str, categories: &'a [&'a str]) -> Ask<'a> {
    Ask {
        accessor,
        purpose,
        categories,
        recipient: None,
        reference: false,
    }
}

fn names(p: &Policy, d: &custos_policy::Decision) -> Vec<String> {
    p.category_names(d.permitted)
        .into_iter()
        .map(String::from)
        .collect()
}

fn collect<'a>(
    service: &'a str,
    role: &'a str,
    purposes: &'a [&'a str],
    categories: &'a [&'a str],
) -> CollectionRequest<'a> {
    CollectionRequest {
        service,
        role,
        purposes,
        notice: "2010-04-24",
        age: None,
        categories,
    }
}

fn codes(e: Vec<custos_policy::CollectionError>) -> Vec<(&'static str, String)> {
    e.into_iter().map(|e| (e.code, e.field)).collect()
}

// C001, C080: the notice states when it was revised; C003: a section per service.

#[test]
fn notice_states_revision_date() {
    let p = builtin();
    assert_eq!(p.header().effective.get_ref(), "2010-04-24");
    let md = render::markdown(&p);
    assert!(md.contains("April 24, 2010"), "revision date missing");
    assert!(render::html(&p).contains("April 24, 2010"));
}

#[test]
fn notice_has_a_section_per_service() {
    let p = builtin();
    let md = render::markdown(&p);
    for family in [
        "Meeting services",
        "WebEx Connect",
        "Cisco WebEx Mail",
        "Cisco WebEx Meet",
    ] {
        assert!(
            md.contains(&format!("## {family}")),
            "no section for {family}"
        );
    }
    for s in p.services() {
        assert!(md.contains(&s.name), "service {} not in the notice", s.id);
    }
}

#[test]
fn notice_carries_every_statement() {
    let p = builtin();
    let md = render::markdown(&p);
    for s in &p.file().statement {
        let first = s.text.lines().next().unwrap().trim_start_matches("* ");
        let words: String = first
            .split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            md.contains(&words) || md.contains(&words.replace('.', "\\.")),
            "statement `{}` not rendered",
            s.id.get_ref()
        );
    }
}

// C004: collection needs notice, purpose and a declared category.

#[test]
fn collection_requires_purpose_and_current_notice() {
    let p = builtin();
    let ok = p.check_collection(&collect(
        "website",
        "account-holder",
        &["account.registration"],
        &["contact.name", "contact.email"],
    ));
    assert!(ok.is_ok(), "{ok:?}");
    let none = p
        .check_collection(&collect(
            "website",
            "account-holder",
            &[],
            &["contact.email"],
        ))
        .unwrap_err();
    assert_eq!(
        codes(none),
        vec![("purpose_required", "purposes".to_string())]
    );
    let mut stale = collect(
        "website",
        "account-holder",
        &["account"],
        &["contact.email"],
    );
    stale.notice = "2009-01-01";
    assert_eq!(
        codes(p.check_collection(&stale).unwrap_err()),
        vec![("unknown_notice_version", "notice".to_string())]
    );
}

#[test]
fn collection_refuses_undeclared_category_and_purpose() {
    let p = builtin();
    let e = p
        .check_collection(&collect(
            "website",
            "event-registrant",
            &["events.registration", "marketing.partners"],
            &["contact.email", "payment.card_number", "contact.emial"],
        ))
        .unwrap_err();
    assert_eq!(
        codes(e),
        vec![
            ("purpose_not_stated_for_role", "purposes[1]".to_string()),
            (
                "category_not_declared_for_role",
                "data.payment.card_number".to_string()
            ),
            ("unknown_category", "data.contact.emial".to_string()),
        ]
    );
    let e = p
        .check_collection(&collect(
            "meeting-centre",
            "host",
            &["service.meetings"],
            &["contact.email"],
        ))
        .unwrap_err();
    assert!(
        e[0].message.contains("did you mean `meeting-center`?"),
        "{e:?}"
    );
}

// C005–C015: every reason for collection is a purpose some service role collects for.

#[test]
fn every_collection_reason_is_a_purpose_some_role_collects_for() {
    let p = builtin();
    let reasons = [
        ("C005", "account.registration"),
        ("C006", "service.features"),
        ("C007", "support"),
        ("C008", "order"),
        ("C009", "events.registration"),
        ("C010", "surveys"),
        ("C011", "promotions"),
        ("C012", "forums"),
        ("C013", "collaboration"),
        ("C014", "newsletters"),
        ("C015", "personalization"),
    ];
    for (clause, purpose) in reasons {
        let id = p.purpose_id(purpose).unwrap();
        let info = p.purpose(id).unwrap();
        assert!(
            info.clauses.iter().any(|c| c == clause)
                || p.purpose(info.parent.unwrap())
                    .unwrap()
                    .clauses
                    .iter()
                    .any(|c| c == clause),
            "{purpose} does not cite {clause}"
        );
        let collected_by = p
            .services()
            .iter()
            .flat_map(|s| &s.roles)
            .any(|r| r.allowed_purposes.contains(id));
        assert!(collected_by, "no role collects for {purpose} ({clause})");
    }
    // Voluntary ones (C010 surveys, C011 promotions, C014 newsletters) need opt-in consent.
    for purpose in ["surveys", "promotions", "newsletters"] {
        assert_eq!(
            p.purpose(p.purpose_id(purpose).unwrap()).unwrap().basis,
            Basis::Consent,
            "{purpose}"
        );
    }
}

// C016: used only as specified at collection; never changed without consent.

#[test]
fn use_beyond_collection_purpose_is_withheld() {
    let p = builtin();
    // An event registration's email may serve the event, but not account marketing mail.
    let s = collected_by(&p, "website/event-registrant", &["contact.email"]);
    let d = ask(
        &p,
        simple("event-center", "events.registration", &["contact.email"]),
        &s,
    );
    assert_eq!(d.effect, Effect::Permit);
    let d = ask(
        &p,
        simple("marketing", "marketing.announcements", &["contact.email"]),
        &s,
    );
    assert_eq!(
        d.reason_for(p.category_id("contact.email").unwrap()),
        Some(Reason::NotCollectedForPurpose)
    );
}

// C017–C028: every way of using information is a purpose with its basis.

#[test]
fn every_use_is_a_purpose_with_its_basis() {
    let p = builtin();
    let uses = [
        ("C017", "service.delivery", Basis::Service),
        ("C017", "order", Basis::Contract),
        ("C018", "marketing.announcements", Basis::OptOut),
        ("C019", "support", Basis::Service),
        ("C020", "account.profile", Basis::Service),
        ("C021", "order.shipping", Basis::Contract),
        ("C021", "order.billing", Basis::Contract),
        ("C022", "support", Basis::Service),
        ("C023", "promotions", Basis::Consent),
        ("C024", "surveys", Basis::Consent),
        ("C025", "recruitment", Basis::Service),
        ("C026", "personalization", Basis::OptOut),
        ("C027", "referral", Basis::Service),
        ("C028", "contract", Basis::Contract),
    ];
    for (clause, purpose, basis) in uses {
        let info = p.purpose(p.purpose_id(purpose).unwrap()).unwrap();
        assert_eq!(info.basis, basis, "{purpose}");
        assert!(
            info.clauses.iter().any(|c| c == clause),
            "{purpose} does not cite {clause}"
        );
    }
}

#[test]
fn announcements_stop_after_objection() {
    let p = builtin();
    let mut s = collected_by(&p, "website/account-holder", &["contact.email"]);
    let a = simple("marketing", "marketing.announcements", &["contact.email"]);
    assert_eq!(
        ask(
            &p,
            simple("marketing", "marketing.announcements", &["contact.email"]),
            &s
        )
        .effect,
        Effect::Permit
    );
    s.objections.insert(p.purpose_id("marketing").unwrap());
    let d = ask(&p, a, &s);
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.withheld[0].reason, Reason::Objected);
}

#[test]
fn surveys_need_consent() {
    let p = builtin();
    let mut s = collected_by(&p, "website/account-holder", &["contact.email"]);
    let d = ask(&p, simple("marketing", "surveys", &["contact.email"]), &s);
    assert_eq!(d.withheld[0].reason, Reason::ConsentMissing);
    s.consents.insert(p.purpose_id("surveys").unwrap());
    assert_eq!(
        ask(&p, simple("marketing", "surveys", &["contact.email"]), &s).effect,
        Effect::Permit
    );
}

#[test]
fn referral_contact_is_never_stored() {
    let p = builtin();
    let plan = p
        .check_collection(&collect(
            "website",
            "referrer",
            &["referral"],
            &["referral.name", "referral.email"],
        ))
        .unwrap();
    assert!(plan.store.is_empty(), "referral data would be stored");
    assert_eq!(plan.transient.len(), 2);
}

// C034, C035: aggregate data and service health; analytics reads nothing that identifies.

#[test]
fn analytics_reads_only_aggregate_and_cookie_data() {
    let p = builtin();
    let s = collected_by(
        &p,
        "website/visitor",
        &["web.aggregate", "usage.clickstream", "network.ip_address"],
    );
    let d = ask(
        &p,
        simple(
            "analytics",
            "analytics.website",
            &["web.aggregate", "usage.clickstream", "network.ip_address"],
        ),
        &s,
    );
    assert_eq!(names(&p, &d), ["usage.clickstream", "web.aggregate"]);
    assert_eq!(
        d.reason_for(p.category_id("network.ip_address").unwrap()),
        Some(Reason::ExceedsMinimumNecessary)
    );
    let s = collected_by(&p, "website/account-holder", &["contact.email"]);
    assert_eq!(
        ask(
            &p,
            simple("analytics", "analytics.website", &["contact.email"]),
            &s
        )
        .effect,
        Effect::Deny
    );
}

#[test]
fn service_health_telemetry_reads_only_telemetry() {
    let p = builtin();
    let s = collected_by(
        &p,
        "connect/user",
        &["telemetry.service_health", "contact.email"],
    );
    let d = ask(
        &p,
        simple(
            "connect",
            "analytics.service_health",
            &["telemetry.service_health", "contact.email"],
        ),
        &s,
    );
    assert_eq!(names(&p, &d), ["telemetry.service_health"]);
    let cat = p
        .categories()
        .iter()
        .find(|c| c.id == "telemetry.service_health")
        .unwrap();
    assert!(!cat.identifier);
}

// C036, C042: no sharing for third-party marketing without an opt-in.

#[test]
fn marketing_partners_need_consent() {
    let p = builtin();
    let mut s = collected_by(
        &p,
        "website/account-holder",
        &["contact.email", "contact.phone"],
    );
    let share = || Ask {
        accessor: "marketing",
        purpose: "marketing.partners",
        categories: &["contact.email"],
        recipient: Some("marketing-partner"),
        reference: false,
    };
    let d = ask(&p, share(), &s);
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.withheld[0].reason, Reason::ConsentMissing);
    let clauses = p.decision_clauses(&d);
    assert!(
        clauses.contains(&"C036") && clauses.contains(&"C042"),
        "{clauses:?}"
    );
    // Consent to marketing in general (an opt-out purpose) is not consent to this.
    s.consents.insert(p.purpose_id("marketing").unwrap());
    assert_eq!(ask(&p, share(), &s).effect, Effect::Deny);
    s.consents
        .insert(p.purpose_id("marketing.partners").unwrap());
    let d = ask(&p, share(), &s);
    assert_eq!(d.effect, Effect::Permit);
    assert_eq!(
        d.disclosure_to,
        Some(p.recipient_id("marketing-partner").unwrap())
    );
    // Even with consent, the partner gets no more than its minimum.
    let d = ask(
        &p,
        Ask {
            categories: &["contact.email", "contact.phone"],
            ..share()
        },
        &s,
    );
    assert_eq!(
        d.reason_for(p.category_id("contact.phone").unwrap()),
        Some(Reason::ExceedsMinimumNecessary)
    );
}

// C037, C058: Cisco and its subsidiaries receive data for processing and storage only.

#[test]
fn cisco_receives_for_processing_only() {
    let p = builtin();
    let s = collected_by(&p, "website/account-holder", &["contact.email"]);
    assert_eq!(
        ask(&p, simple("cisco", "processing", &["contact.email"]), &s).effect,
        Effect::Permit
    );
    let r = p.recipient(p.recipient_id("cisco").unwrap()).unwrap();
    assert_eq!(r.kind, RecipientKind::Affiliate);
    let d = ask(
        &p,
        Ask {
            accessor: "marketing",
            purpose: "marketing.announcements",
            categories: &["contact.email"],
            recipient: Some("cisco"),
            reference: false,
        },
        &s,
    );
    assert_eq!(d.denial, Some(Reason::RecipientNotAllowedForPurpose));
}

#[test]
fn every_recipient_region_is_covered_by_a_transfer() {
    let p = builtin();
    let f = p.file();
    assert!(!f.transfer.is_empty());
    for r in &f.recipient {
        let kind = r.kind.as_ref().unwrap().get_ref().as_str();
        if matches!(kind, "affiliate" | "processor") {
            assert!(
                r.region.is_some(),
                "{} {} has no region",
                kind,
                r.id.get_ref()
            );
        }
        if let Some(region) = &r.region {
            let covered = f.transfer.iter().any(|t| {
                t.to.get_ref() == region.get_ref()
                    && (t.recipients.is_empty()
                        || t.recipients.iter().any(|x| x.get_ref() == r.id.get_ref()))
            });
            assert!(
                covered,
                "recipient {} in region {} has no transfer",
                r.id.get_ref(),
                region.get_ref()
            );
        }
    }
}

// C038: vendors get only the minimum necessary for the requested service.

#[test]
fn payment_processor_gets_only_its_minimum() {
    let p = builtin();
    let s = collected_by(
        &p,
        "website/customer",
        &[
            "payment.card_number",
            "contact.name",
            "contact.email",
            "contact.postal_address",
        ],
    );
    let d = ask(
        &p,
        simple(
            "payment-processor",
            "order.payment",
            &[
                "payment.card_number",
                "contact.name",
                "contact.email",
                "contact.postal_address",
            ],
        ),
        &s,
    );
    assert_eq!(d.effect, Effect::Partial);
    assert_eq!(
        names(&p, &d),
        [
            "contact.name",
            "contact.postal_address",
            "payment.card_number"
        ]
    );
    assert_eq!(
        d.reason_for(p.category_id("contact.email").unwrap()),
        Some(Reason::ExceedsMinimumNecessary)
    );
    assert_eq!(
        d.disclosure_to,
        Some(p.recipient_id("payment-processor").unwrap())
    );
    // And only for the service it provides.
    let d = ask(
        &p,
        simple("payment-processor", "support", &["contact.name"]),
        &s,
    );
    assert_eq!(d.denial, Some(Reason::PurposeNotAllowedForAccessor));
    for r in p
        .recipients()
        .iter()
        .filter(|r| r.kind == RecipientKind::Processor)
    {
        assert!(
            r.allows
                .iter()
                .flatten()
                .all(|set| set.len() < p.categories().len() / 2),
            "{} gets too much",
            r.id
        );
    }
}

// C039, C040: legal process and investigations need a reference.

#[test]
fn legal_process_needs_a_reference() {
    let p = builtin();
    let s = collected_by(&p, "website/account-holder", &["contact.email"]);
    let a = || Ask {
        accessor: "authorities",
        purpose: "legal.process",
        categories: &["contact.email"],
        recipient: None,
        reference: false,
    };
    assert_eq!(
        ask(&p, a(), &s).withheld[0].reason,
        Reason::ReferenceMissing
    );
    let d = ask(
        &p,
        Ask {
            reference: true,
            ..a()
        },
        &s,
    );
    assert_eq!(d.effect, Effect::Permit);
    assert_eq!(
        d.disclosure_to,
        Some(p.recipient_id("authorities").unwrap())
    );
    // Marketing may never invoke legal purposes.
    let d = ask(
        &p,
        Ask {
            accessor: "marketing",
            reference: true,
            ..a()
        },
        &s,
    );
    assert_eq!(d.denial, Some(Reason::PurposeNotAllowedForAccessor));
}

#[test]
fn investigation_reads_any_held_category_with_a_reference() {
    let p = builtin();
    let mut s = collected_by(&p, "connect/user", &["contact.email"]);
    s.hold(
        p.category_set(&["chat.history"]).unwrap(),
        p.purpose_set(&["service.connect"]).unwrap(),
    );
    s.status = SubjectStatus::Deactivated;
    let d = ask(
        &p,
        Ask {
            accessor: "legal",
            purpose: "legal.investigation",
            categories: &["contact.email", "chat.history"],
            recipient: None,
            reference: true,
        },
        &s,
    );
    assert_eq!(d.effect, Effect::Permit, "{d:?}");
    let d = ask(
        &p,
        Ask {
            accessor: "legal",
            purpose: "legal.investigation",
            categories: &["contact.email"],
            recipient: None,
            reference: false,
        },
        &s,
    );
    assert_eq!(d.effect, Effect::Deny);
}

// C030 (decision side): a deactivated account serves only legal and contractual purposes.

#[test]
fn deactivated_subject_serves_only_legal_and_contract() {
    let p = builtin();
    let mut s = collected_by(&p, "website/customer", &["contact.email", "order.details"]);
    s.status = SubjectStatus::Deactivated;
    assert_eq!(
        ask(&p, simple("support", "support", &["contact.email"]), &s).denial,
        Some(Reason::SubjectDeactivated)
    );
    assert_eq!(
        ask(&p, simple("billing", "contract", &["order.details"]), &s).effect,
        Effect::Permit
    );
}

// C047–C049: cookies and web beacons serve declared purposes only.

#[test]
fn cookies_and_beacons_serve_declared_purposes() {
    let p = builtin();
    let f = p.file();
    assert!(
        f.cookie
            .iter()
            .any(|c| c.kind.get_ref() == "cookie" && c.required)
    );
    assert!(f.cookie.iter().any(|c| c.kind.get_ref() == "web_beacon"));
    for c in &f.cookie {
        let purpose = p.purpose_id(c.purpose.get_ref()).unwrap();
        let category = p.category_id(c.category.get_ref()).unwrap();
        let collected = p.services().iter().flat_map(|s| &s.roles).any(|r| {
            r.collects.union(r.optional).contains(category) && r.allowed_purposes.contains(purpose)
        });
        assert!(
            collected,
            "cookie {} serves a purpose no role collects its data for",
            c.id.get_ref()
        );
    }
    // A cookie identifier gathered for analytics is not a marketing list.
    let s = collected_by(&p, "website/visitor", &["cookie.identifier"]);
    assert_eq!(
        ask(
            &p,
            simple(
                "marketing",
                "marketing.announcements",
                &["cookie.identifier"]
            ),
            &s
        )
        .effect,
        Effect::Deny
    );
}

// C052: forum posts are public, and only they (with the author's name).

#[test]
fn forum_readers_see_only_posts_and_name() {
    let p = builtin();
    let s = collected_by(
        &p,
        "website/forum-participant",
        &["forum.posts", "contact.name", "contact.email"],
    );
    let d = ask(
        &p,
        simple(
            "forum",
            "forums",
            &["forum.posts", "contact.name", "contact.email"],
        ),
        &s,
    );
    assert_eq!(names(&p, &d), ["contact.name", "forum.posts"]);
    assert_eq!(
        p.recipient(p.recipient_id("forum-readers").unwrap())
            .unwrap()
            .kind,
        RecipientKind::Public
    );
}

// C053: nothing collected from or used about a child under 13.

#[test]
fn under_age_collection_is_refused() {
    let p = builtin();
    assert_eq!(p.minimum_age(), Some(13));
    let mut req = collect(
        "website",
        "sweepstakes-entrant",
        &["promotions"],
        &["contact.name", "contact.email", "promotion.entries"],
    );
    req.age = Some(12);
    assert_eq!(
        codes(p.check_collection(&req).unwrap_err()),
        vec![("subject_under_minimum_age", "age".to_string())]
    );
    req.age = Some(13);
    assert!(p.check_collection(&req).is_ok());
}

#[test]
fn under_age_subject_gets_nothing() {
    let p = builtin();
    let mut s = collected_by(&p, "website/account-holder", &["contact.email"]);
    s.age = AgeStatus::UnderMinimum;
    let d = ask(&p, simple("support", "support", &["contact.email"]), &s);
    assert_eq!(d.denial, Some(Reason::SubjectUnderMinimumAge));
    assert!(p.decision_clauses(&d).contains(&"C053"));
}

// C064–C067: meeting services.

#[test]
fn meeting_roles_collect_what_c065_lists() {
    let p = builtin();
    for svc in [
        "meeting-center",
        "event-center",
        "support-center",
        "training-center",
        "meetmenow",
        "weboffice",
    ] {
        assert!(
            p.check_collection(&collect(
                svc,
                "attendee",
                &["service.meetings"],
                &["contact.name", "contact.email", "network.ip_address"]
            ))
            .is_ok(),
            "{svc}"
        );
        let e = p
            .check_collection(&collect(
                svc,
                "attendee",
                &["service.meetings"],
                &["contact.phone"],
            ))
            .unwrap_err();
        assert_eq!(e[0].code, "category_not_declared_for_role", "{svc}");
        assert!(
            p.check_collection(&collect(
                svc,
                "host",
                &["service.meetings"],
                &[
                    "contact.name",
                    "contact.email",
                    "network.ip_address",
                    "contact.phone",
                    "contact.postal_address"
                ]
            ))
            .is_ok(),
            "{svc}"
        );
        let s = p.service(p.service_id(svc).unwrap()).unwrap();
        let host = s.roles.iter().find(|r| r.id == "host").unwrap();
        assert!(
            host.optional
                .contains(p.category_id("contact.phone").unwrap()),
            "{svc}: host phone must be optional"
        );
        assert!(
            host.records
                .contains(&p.collection_id("account_activity").unwrap()),
            "{svc}: account activity"
        );
    }
}

#[test]
fn customer_usage_reports_get_only_usage_categories() {
    let p = builtin();
    let s = collected_by(
        &p,
        "meeting-center/attendee",
        &[
            "contact.name",
            "contact.email",
            "network.ip_address",
            "meeting.attendance",
        ],
    );
    let d = ask(
        &p,
        simple(
            "customer-admin",
            "reports.customer_usage",
            &[
                "contact.name",
                "contact.email",
                "network.ip_address",
                "meeting.attendance",
            ],
        ),
        &s,
    );
    assert_eq!(
        names(&p, &d),
        ["contact.name", "contact.email", "meeting.attendance"]
    );
    assert_eq!(d.disclosure_to, Some(p.recipient_id("customer").unwrap()));
}

// C068–C071: Connect.

#[test]
fn connect_user_keeps_chat_contacts_calendar_spaces_and_user_actions() {
    let p = builtin();
    let svc = p.service(p.service_id("connect").unwrap()).unwrap();
    let user = svc.roles.iter().find(|r| r.id == "user").unwrap();
    for c in [
        "chat_messages",
        "contacts",
        "calendar_events",
        "space_files",
        "user_actions",
        "account_activity",
    ] {
        assert!(
            user.records.contains(&p.collection_id(c).unwrap()),
            "connect user lacks {c}"
        );
    }
    let chat = p
        .collection(p.collection_id("chat_messages").unwrap())
        .unwrap();
    for cat in ["chat.history", "chat.participants", "chat.timing"] {
        assert!(
            chat.categories.contains(p.category_id(cat).unwrap()),
            "chat lacks {cat}"
        );
    }
    assert!(
        user.collects
            .contains(p.category_id("presence.status").unwrap())
    );
    // C070: user actions are kept for archival under their own retention.
    let ua = p
        .collection(p.collection_id("user_actions").unwrap())
        .unwrap();
    assert!(ua.retention.is_some());
}

#[test]
fn contacts_see_presence_only_and_employer_sees_profile() {
    let p = builtin();
    let s = collected_by(
        &p,
        "connect/user",
        &["presence.status", "contact.name", "contact.email"],
    );
    let d = ask(
        &p,
        simple(
            "contact-directory",
            "connect.presence",
            &["presence.status", "contact.name", "contact.email"],
        ),
        &s,
    );
    assert_eq!(names(&p, &d), ["presence.status"]);
    let d = ask(
        &p,
        simple(
            "employer",
            "employer.access",
            &["contact.email", "presence.status"],
        ),
        &s,
    );
    assert_eq!(d.effect, Effect::Permit);
    assert_eq!(d.disclosure_to, Some(p.recipient_id("employer").unwrap()));
    // A website account holder's data was never collected for an employer.
    let s = collected_by(&p, "website/account-holder", &["contact.email"]);
    assert_eq!(
        ask(
            &p,
            simple("employer", "employer.access", &["contact.email"]),
            &s
        )
        .effect,
        Effect::Deny
    );
}

// C072–C075: Mail.

#[test]
fn mail_owner_collection_and_filtering() {
    let p = builtin();
    let svc = p.service(p.service_id("mail").unwrap()).unwrap();
    let owner = svc.roles.iter().find(|r| r.id == "mailbox-owner").unwrap();
    for c in [
        "mailbox_items",
        "mail_contacts",
        "filter_verdicts",
        "account_activity",
    ] {
        assert!(
            owner.records.contains(&p.collection_id(c).unwrap()),
            "mailbox owner lacks {c}"
        );
    }
    let mut s = collected_by(&p, "mail/mailbox-owner", &["contact.email"]);
    s.hold(
        p.category_set(&["mail.messages", "mail.filter_metadata"])
            .unwrap(),
        owner.allowed_purposes,
    );
    let d = ask(
        &p,
        simple(
            "mail",
            "mail.filtering",
            &["mail.messages", "mail.filter_metadata", "contact.name"],
        ),
        &s,
    );
    assert_eq!(names(&p, &d), ["mail.messages", "mail.filter_metadata"]);
}

#[test]
fn purchaser_needs_verified_authority() {
    let p = builtin();
    let s = collected_by(&p, "mail/mailbox-owner", &["contact.email"]);
    let a = || Ask {
        accessor: "mailbox-purchaser",
        purpose: "mail.purchaser_access",
        categories: &["contact.email"],
        recipient: None,
        reference: false,
    };
    assert_eq!(
        ask(&p, a(), &s).withheld[0].reason,
        Reason::ReferenceMissing
    );
    assert_eq!(
        ask(
            &p,
            Ask {
                reference: true,
                ..a()
            },
            &s
        )
        .effect,
        Effect::Permit
    );
}

// C076–C079: Meet.

#[test]
fn meet_roles_collect_what_c077_lists() {
    let p = builtin();
    assert!(
        p.check_collection(&collect(
            "meet",
            "attendee",
            &["service.meet"],
            &["contact.name", "contact.email", "network.ip_address"]
        ))
        .is_ok()
    );
    assert!(
        p.check_collection(&collect(
            "meet",
            "host",
            &["service.meet"],
            &["contact.phone", "contact.postal_address"]
        ))
        .is_ok()
    );
    assert!(
        p.check_collection(&collect(
            "meet",
            "attendee",
            &["service.meet"],
            &["contact.phone"]
        ))
        .is_err()
    );
    let svc = p.service(p.service_id("meet").unwrap()).unwrap();
    let user = svc.roles.iter().find(|r| r.id == "user").unwrap();
    for c in [
        "chat_messages",
        "contacts",
        "calendar_events",
        "space_files",
    ] {
        assert!(
            user.records.contains(&p.collection_id(c).unwrap()),
            "meet user lacks {c}"
        );
    }
}

#[test]
fn meet_shares_presence_employer_and_usage_reports() {
    let p = builtin();
    let s = collected_by(&p, "meet/user", &["presence.status", "contact.email"]);
    assert_eq!(
        ask(
            &p,
            simple(
                "contact-directory",
                "connect.presence",
                &["presence.status"]
            ),
            &s
        )
        .effect,
        Effect::Permit
    );
    assert_eq!(
        ask(
            &p,
            simple("employer", "employer.access", &["contact.email"]),
            &s
        )
        .effect,
        Effect::Permit
    );
    let s = collected_by(&p, "meet/attendee", &["contact.email"]);
    assert_eq!(
        ask(
            &p,
            simple(
                "customer-admin",
                "reports.customer_usage",
                &["contact.email"]
            ),
            &s
        )
        .effect,
        Effect::Permit
    );
}

// C064, C068, C072, C076: the services exist in their families.

#[test]
fn service_families_are_declared() {
    let p = builtin();
    let family = |id: &str| {
        p.file()
            .service
            .iter()
            .find(|s| s.id.get_ref() == id)
            .and_then(|s| s.family.clone())
            .unwrap()
    };
    for s in [
        "meeting-center",
        "event-center",
        "support-center",
        "training-center",
        "meetmenow",
        "weboffice",
    ] {
        assert_eq!(family(s), "meeting-services");
    }
    assert_eq!(family("connect"), "connect");
    assert_eq!(family("mail"), "mail");
    assert_eq!(family("meet"), "meet");
}

// C031, C032 (decision side): unsubscribing from marketing stops every kind of marketing.

#[test]
fn objecting_to_marketing_stops_partner_sharing_too() {
    let p = builtin();
    let mut s = collected_by(&p, "website/account-holder", &["contact.email"]);
    s.consents
        .insert(p.purpose_id("marketing.partners").unwrap());
    let share = || Ask {
        accessor: "marketing",
        purpose: "marketing.partners",
        categories: &["contact.email"],
        recipient: Some("marketing-partner"),
        reference: false,
    };
    assert_eq!(ask(&p, share(), &s).effect, Effect::Permit);
    s.objections.insert(p.purpose_id("marketing").unwrap());
    let d = ask(&p, share(), &s);
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.withheld[0].reason, Reason::Objected);
}

#[test]
fn disclosure_purposes_need_a_named_recipient() {
    let p = builtin();
    let mut s = collected_by(
        &p,
        "website/account-holder",
        &["contact.email", "contact.title"],
    );
    s.consents
        .insert(p.purpose_id("marketing.partners").unwrap());
    // Without naming the partner, the marketing team cannot pursue partner marketing at all.
    let d = ask(
        &p,
        simple(
            "marketing",
            "marketing.partners",
            &["contact.email", "contact.title"],
        ),
        &s,
    );
    assert_eq!(d.denial, Some(Reason::RecipientRequired));
    for purpose in [
        "marketing.partners",
        "employer.access",
        "reports.customer_usage",
        "mail.purchaser_access",
    ] {
        assert!(
            p.purpose(p.purpose_id(purpose).unwrap())
                .unwrap()
                .requires_recipient,
            "{purpose}"
        );
    }
}

#[test]
fn consent_does_not_open_categories_beyond_the_purpose() {
    let p = builtin();
    let mut s = collected_by(
        &p,
        "website/customer",
        &["contact.email", "payment.card_number"],
    );
    s.consents.insert(p.purpose_id("newsletters").unwrap());
    let d = ask(
        &p,
        simple(
            "website",
            "newsletters",
            &["contact.email", "payment.card_number"],
        ),
        &s,
    );
    assert_eq!(names(&p, &d), ["contact.email"]);
    assert_eq!(
        d.reason_for(p.category_id("payment.card_number").unwrap()),
        Some(Reason::ExceedsMinimumNecessary)
    );
}

// Invariant 3 (C016): a later version never widens what old data may be used for.

#[test]
fn a_new_refinement_in_a_later_version_does_not_reach_old_data() {
    let v1 = builtin();
    let plan = v1
        .check_collection(&collect(
            "website",
            "account-holder",
            &["account"],
            &["contact.email"],
        ))
        .unwrap();
    let stored: Vec<&str> = v1.purpose_names(plan.purposes);
    assert!(
        stored.contains(&"account.profile"),
        "the scope holds the refinements of v1"
    );
    // Version 2 refines `account` with a new purpose; the website may pursue it (it pursues
    // `account` and everything below).
    let text = custos_policy::BUILTIN_WEBEX_2010
        .replace("version = \"2010-04-24\"", "version = \"2011-01-01\"")
        + "\n[[purpose]]\nid = \"account.insights\"\nparent = \"account\"\nbasis = \"service\"\nname = \"Account insights\"\n";
    let v2 = Policy::from_str("v2.toml", &text).unwrap();
    let mut old = Subject::new();
    old.hold(
        v2.category_set(&["contact.email"]).unwrap(),
        v2.purpose_set(&stored).unwrap(),
    );
    let d = ask(
        &v2,
        simple("website", "account.insights", &["contact.email"]),
        &old,
    );
    assert_eq!(d.withheld[0].reason, Reason::NotCollectedForPurpose);
    // The same use of data collected under version 2 is permitted: its notice said so.
    let mut req = collect(
        "website",
        "account-holder",
        &["account"],
        &["contact.email"],
    );
    req.notice = "2011-01-01";
    let plan = v2.check_collection(&req).unwrap();
    let mut new = Subject::new();
    new.hold(v2.category_set(&["contact.email"]).unwrap(), plan.purposes);
    assert_eq!(
        ask(
            &v2,
            simple("website", "account.insights", &["contact.email"]),
            &new
        )
        .effect,
        Effect::Permit
    );
}

// C004: a collection is made by the service that tells the person why, not in its name.

#[test]
fn a_caller_collects_only_for_a_purpose_it_pursues() {
    let p = builtin();
    let mc = p.service_id("meeting-center").unwrap();
    let stated = p.purpose_set(&["service.meetings"]).unwrap();
    assert!(p.check_collector("meeting-center", mc, stated).is_ok());
    // A service's own accessor that pursues none of the stated purposes.
    let website = p.service_id("website").unwrap();
    let e = p.check_collector("website", website, stated).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        ("purpose_not_allowed_for_accessor", "purposes")
    );
    assert_eq!(
        p.check_collector("nobody", mc, stated).unwrap_err().code,
        "unknown_accessor"
    );
}

// C004, C064–C079: a service collects in its own name only. The mail service shares the
// `account` purpose with Meeting Center's hosts, and still may not collect (or append
// records, or state an age) as Meeting Center; a team that is no service collects for none.

#[test]
fn a_caller_collects_only_in_the_name_of_its_own_service() {
    let p = builtin();
    let mc = p.service_id("meeting-center").unwrap();
    let account = p.purpose_set(&["account"]).unwrap();
    for (accessor, service) in [
        ("mail", mc),
        ("marketing", mc),
        ("connect", p.service_id("meet").unwrap()),
        ("support", p.service_id("website").unwrap()),
    ] {
        let e = p.check_collector(accessor, service, account).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("service_not_allowed_for_accessor", "service"),
            "{accessor}"
        );
    }
    let mail = p.service_id("mail").unwrap();
    assert!(p.check_collector("mail", mail, account).is_ok());
    for (accessor, service) in [
        ("website", "website"),
        ("meeting-center", "meeting-center"),
        ("event-center", "event-center"),
        ("support-center", "support-center"),
        ("training-center", "training-center"),
        ("meetmenow", "meetmenow"),
        ("weboffice", "weboffice"),
        ("connect", "connect"),
        ("mail", "mail"),
        ("meet", "meet"),
    ] {
        let a = p.accessor(p.accessor_id(accessor).unwrap()).unwrap();
        let s = p.service_id(service).unwrap();
        assert_eq!(a.services.iter().collect::<Vec<_>>(), vec![s], "{accessor}");
    }
    for team in [
        "marketing",
        "support",
        "billing",
        "legal",
        "admin",
        "analytics",
    ] {
        let a = p.accessor(p.accessor_id(team).unwrap()).unwrap();
        assert!(a.services.is_empty(), "{team}");
    }
}

/// Issue 12, item 3 (C067, C071, C075, C079: "the customer", "your employer", "the
/// purchaser"): the accessors acting for a business customer are tenant-bound, decided by
/// the kind of recipient they act for, not by a list in code.
#[test]
fn accessors_acting_for_a_business_customer_are_tenant_bound() {
    let p = builtin();
    let bound: Vec<&str> = p
        .accessors()
        .iter()
        .filter(|a| a.tenant_bound)
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(bound, ["customer-admin", "employer", "mailbox-purchaser"]);
    for a in p.accessors() {
        let kind = a.recipient.and_then(|r| p.recipient(r)).map(|r| r.kind);
        assert_eq!(
            a.tenant_bound,
            kind.is_some_and(RecipientKind::acts_for_tenant),
            "{}",
            a.id
        );
    }
    let kinds: Vec<&str> = RecipientKind::NAMES
        .iter()
        .copied()
        .filter(|k| RecipientKind::parse(k).is_some_and(RecipientKind::acts_for_tenant))
        .collect();
    assert_eq!(kinds, ["customer", "employer", "purchaser"]);
}

/// C044 ("when we transfer credit card information over the Internet, we protect it using
/// SSL"), C074 (Mail: "your contact and financial information is submitted via a secure
/// (HTTPS) connection"): the card number, and everything the Mail service collects, cross
/// the network only over TLS; the vault refuses them over plain HTTP from another host.
#[test]
fn card_numbers_and_what_mail_collects_cross_the_network_only_over_tls() {
    let p = builtin();
    assert_eq!(
        p.category_names(p.tls_categories()),
        ["payment.card_number"]
    );
    let tls_services: Vec<&str> = p
        .services()
        .iter()
        .filter(|s| s.requires_tls)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(tls_services, ["mail"]);

    // A card number in an order: the plan says it needs TLS, and only it.
    let order = p
        .check_collection(&CollectionRequest {
            service: "website",
            role: "customer",
            purposes: &["order"],
            notice: p.version(),
            age: None,
            categories: &["contact.name", "payment.card_number", "order.details"],
        })
        .unwrap();
    assert_eq!(p.category_names(order.tls), ["payment.card_number"]);
    // Everything a mailbox user gives needs it.
    let mailbox = p
        .check_collection(&CollectionRequest {
            service: "mail",
            role: "mailbox-owner",
            purposes: &["service.mail"],
            notice: p.version(),
            age: None,
            categories: &["contact.name", "contact.email", "contact.phone"],
        })
        .unwrap();
    assert_eq!(
        p.category_names(mailbox.tls),
        ["contact.name", "contact.email", "contact.phone"]
    );
    // The same contact details given to a meeting service do not.
    let attendee = p
        .check_collection(&CollectionRequest {
            service: "meeting-center",
            role: "attendee",
            purposes: &["service.meetings"],
            notice: p.version(),
            age: None,
            categories: &["contact.name", "contact.email"],
        })
        .unwrap();
    assert!(attendee.tls.is_empty());
    // Mail's records need TLS when a Mail role keeps them; another service's do not.
    let mail = p.service_id("mail").unwrap();
    let meetings = p.service_id("meeting-center").unwrap();
    let activity = p.collection_id("account_activity").unwrap();
    let mailbox_items = p.collection_id("mailbox_items").unwrap();
    assert_eq!(
        p.category_names(p.tls_for_records(mail, mailbox_items)),
        ["mail.messages"]
    );
    assert!(!p.tls_for_records(mail, activity).is_empty());
    assert!(p.tls_for_records(meetings, activity).is_empty());
    // The notice says what the server enforces, where the category and the service are.
    let notice = render::markdown(&p);
    let card_row = notice
        .lines()
        .find(|l| l.starts_with("| Credit or debit card number"))
        .unwrap();
    assert!(
        card_row.contains("Crosses the Internet to and from us only encrypted (HTTPS)."),
        "{card_row}"
    );
    assert!(
        notice.contains("What you give Cisco WebEx Mail is sent to us only encrypted (HTTPS).")
    );
    assert_eq!(notice.matches("only encrypted (HTTPS)").count(), 2);
}
