//! Issue 12, item 4: legal instruments over HTTP, on both backends. From the attacker's
//! side first: keys that are not staff cannot register or see an instrument, and a read for
//! a legal purpose gets nothing with a made-up reference, another person's instrument, an
//! expired one, one of the wrong kind, or beyond the categories it covers.

use serde_json::{Value, json};

use crate::support::{Backend, NOBODY, NOTICE, TestApp};

/// A court order (or `kind`) for `subjects` and `categories`, expiring at `expires`.
fn order(kind: &str, subjects: &[&str], categories: &[&str], expires: &str) -> Value {
    json!({
        "kind": kind,
        "issuer": "Superior Court of Santa Clara County",
        "issued": "2026-01-15",
        "document_sha256": "9f".repeat(32),
        "subjects": subjects,
        "categories": categories,
        "expires": expires,
    })
}

const NEXT_YEARS: &str = "2099-12-31T23:59:59Z";

/// `secs` seconds from now, RFC 3339 in UTC (whole seconds).
fn in_seconds(secs: u64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    custos_vault::vault::format_date_time(i64::try_from(t).unwrap() * 1000)
}

async fn register(app: &TestApp, key: &str, body: &Value) -> String {
    let r = app.post("/v1/instruments", Some(key), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

/// `GET /v1/subjects/{id}` for a legal purpose as the legal department.
async fn legal_read(app: &TestApp, subject: &str, q: &str) -> Value {
    let r = app
        .get(
            &format!("/v1/subjects/{subject}?purpose=legal.process&{q}"),
            Some(app.key("legal")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn legal_reads_take_a_registered_instrument(backend: Backend) {
    let app = TestApp::spawn_instruments(backend).await;
    let legal = app.key("legal");
    let a = app.attendee("Ann Law", "ann@law.example").await;
    let b = app.attendee("Bob Law", "bob@law.example").await;
    let id = register(
        &app,
        legal,
        &order("court_order", &[&a], &["contact.email"], NEXT_YEARS),
    )
    .await;

    // A made-up reference, free text or an id: nothing.
    for made_up in ["case-2026-17", "00000000-0000-7000-8000-000000000000"] {
        let r = legal_read(
            &app,
            &a,
            &format!("categories=contact.email&reference={made_up}"),
        )
        .await;
        assert_eq!(r["effect"], "deny", "{r}");
        assert_eq!(r["data"], json!({}));
        assert_eq!(r["withheld"]["contact.email"], "instrument_unknown");
    }
    // A's court order for B: exactly as a made-up one.
    let r = legal_read(
        &app,
        &b,
        &format!("categories=contact.email&reference={id}"),
    )
    .await;
    assert_eq!(r["data"], json!({}));
    assert_eq!(r["withheld"]["contact.email"], "instrument_unknown");
    // More than it covers: the rest withheld.
    let r = legal_read(
        &app,
        &a,
        &format!("categories=contact.email,contact.name&reference={id}"),
    )
    .await;
    assert_eq!(r["effect"], "partial", "{r}");
    assert_eq!(r["data"], json!({"contact.email": "ann@law.example"}));
    assert_eq!(r["withheld"], json!({"contact.name": "instrument_scope"}));
    // The use is ledgered with the instrument's id.
    let seq = r["ledger_seq"].as_u64().unwrap();
    let ledger = app.ledger();
    let entry = &ledger[usize::try_from(seq).unwrap() - 1];
    assert_eq!(entry.action, "read");
    assert_eq!(entry.subject, a);
    assert!(
        entry
            .reasons
            .split(',')
            .any(|x| x == format!("instrument:{id}")),
        "{}",
        entry.reasons
    );
    // The authority the order is served by reads with it (a disclosure, ledgered as one);
    // without it, nothing.
    let authorities = app.key("authorities");
    let r = app
        .get(
            &format!(
                "/v1/subjects/{a}?purpose=legal.process&categories=contact.email&reference={id}"
            ),
            Some(authorities),
        )
        .await;
    assert_eq!(
        r.json()["data"],
        json!({"contact.email": "ann@law.example"}),
        "{}",
        r.body
    );
    let seq = r.json()["ledger_seq"].as_u64().unwrap();
    let entry = &app.ledger()[usize::try_from(seq).unwrap() - 1];
    assert_eq!(
        (entry.actor.as_str(), entry.recipient.as_str()),
        ("authorities", "authorities")
    );
    assert!(entry.reasons.contains(&format!("instrument:{id}")));
    let r = app
        .get(
            &format!(
                "/v1/subjects/{a}?purpose=legal.process&categories=contact.email&reference=case-17"
            ),
            Some(authorities),
        )
        .await;
    assert_eq!(r.json()["data"], json!({}), "{}", r.body);
    // The decision route checks the same.
    let decide = |reference: &str| {
        json!({"subject": a, "purpose": "legal.process",
               "categories": ["contact.email"], "reference": reference})
    };
    let r = app.post("/v1/decisions", Some(legal), &decide(&id)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["effect"], "permit");
    assert_eq!(r.json()["ground"], "legal_reference");
    let r = app.post("/v1/decisions", Some(legal), &decide("x")).await;
    assert_eq!(r.json()["withheld"]["contact.email"], "instrument_unknown");
    // And records reads: this order does not cover attendance.
    let r = app
        .post(
            &format!("/v1/subjects/{a}/records"),
            Some(app.key("meeting-center")),
            &json!({"collection": "meeting_attendance", "purposes": ["service.meetings"],
                    "value": "{\"meeting\":\"weekly\"}"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let records = |reference: &str| {
        format!(
            "/v1/subjects/{a}/records?collection=meeting_attendance&purpose=legal.process&reference={reference}"
        )
    };
    let r = app.get(&records(&id), Some(legal)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["records"], json!([]));
    assert_eq!(r.json()["withheld"], json!({"instrument_scope": 1}));
    let attendance = register(
        &app,
        legal,
        &order(
            "subpoena",
            &[&a],
            &["meeting.attendance", "network.ip_address"],
            NEXT_YEARS,
        ),
    )
    .await;
    let r = app.get(&records(&attendance), Some(legal)).await;
    assert_eq!(r.json()["effect"], "permit", "{}", r.body);
    assert_eq!(r.json()["records"].as_array().unwrap().len(), 1);

    // A court order for the purchaser's access: the wrong kind (C075 takes a purchaser's
    // verified authority).
    let r = app
        .post(
            "/v1/subjects",
            Some(app.key("mail")),
            &json!({"service": "mail", "role": "mailbox-owner",
                    "purposes": ["service.mail", "mail.purchaser_access"], "notice": NOTICE,
                    "tenant": "acme", "data": {"contact.email": "mo@acme.example"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mo = r.json()["subject"].as_str().unwrap().to_string();
    let mo_order = register(
        &app,
        legal,
        &order("court_order", &[&mo], &["contact.email"], NEXT_YEARS),
    )
    .await;
    let r = app
        .get(
            &format!(
                "/v1/subjects/{mo}?purpose=mail.purchaser_access&categories=contact.email&reference={mo_order}"
            ),
            Some(app.tenant_key("mailbox-purchaser", "acme")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"], json!({}));
    assert_eq!(r.json()["withheld"]["contact.email"], "instrument_kind");

    // Expired: nothing.
    let short = register(
        &app,
        legal,
        &order("court_order", &[&b], &["contact.email"], &in_seconds(3)),
    )
    .await;
    let r = legal_read(
        &app,
        &b,
        &format!("categories=contact.email&reference={short}"),
    )
    .await;
    assert_eq!(r["data"], json!({"contact.email": "bob@law.example"}));
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = legal_read(
        &app,
        &b,
        &format!("categories=contact.email&reference={short}"),
    )
    .await;
    assert_eq!(r["data"], json!({}));
    assert_eq!(r["withheld"]["contact.email"], "instrument_expired");
    let r = app
        .get(&format!("/v1/instruments/{short}"), Some(legal))
        .await;
    assert_eq!(r.json()["expired"], true, "{}", r.body);
    let r = app.get("/v1/ledger/verify", Some(legal)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn only_staff_register_and_see_instruments(backend: Backend) {
    let app = TestApp::spawn_instruments(backend).await;
    let a = app.attendee("Cy Law", "cy@law.example").await;
    let body = order("court_order", &[&a], &["contact.email"], NEXT_YEARS);
    // Every key that is not staff: refused, whatever it sends.
    for key in [
        app.key("marketing"),
        app.key("meeting-center"),
        app.key("support"),
        app.key("authorities"),
        app.tenant_key("customer-admin", "acme"),
        app.tenant_key("mailbox-purchaser", "acme"),
    ] {
        let r = app.post("/v1/instruments", Some(key), &body).await;
        r.problem(403, "instrument_not_allowed");
    }
    let legal = app.key("legal");
    // Legal staff register legal instruments, not a purchaser's authority.
    let r = app
        .post(
            "/v1/instruments",
            Some(legal),
            &order("purchaser_authority", &[&a], &["contact.email"], NEXT_YEARS),
        )
        .await;
    r.problem(403, "instrument_not_allowed");
    assert!(app.post("/v1/instruments", None, &body).await.status == 401);

    // Bad fields are named.
    let bad = |field: &str, value: Value| {
        let mut b = body.clone();
        b[field] = value;
        b
    };
    for (b, status, code, field) in [
        (bad("issuer", json!(" ")), 422, "invalid_issuer", "issuer"),
        (
            bad("issued", json!("2026-02-30")),
            422,
            "invalid_date",
            "issued",
        ),
        (
            bad("expires", json!("2020-01-01T00:00:00Z")),
            422,
            "invalid_expiry",
            "expires",
        ),
        (
            bad("expires", json!("soon")),
            422,
            "invalid_date",
            "expires",
        ),
        (
            bad("document_sha256", json!("abc")),
            422,
            "invalid_document_hash",
            "document_sha256",
        ),
        (
            bad("subjects", json!([a, NOBODY])),
            422,
            "unknown_subject",
            "subjects[1]",
        ),
        (
            bad("subjects", json!([])),
            422,
            "subjects_required",
            "subjects",
        ),
        (
            bad("categories", json!(["contact.emial"])),
            422,
            "unknown_category",
            "categories[0]",
        ),
        (bad("kind", json!("warrant")), 400, "invalid_field", "kind"),
        (bad("warrant", json!(true)), 400, "unknown_field", "warrant"),
    ] {
        let r = app.post("/v1/instruments", Some(legal), &b).await;
        let p = r.problem(status, code);
        assert_eq!(p["field"], field, "{}", r.body);
        assert!(!r.body.contains("Superior Court"), "{}", r.body);
    }

    // Registered: its id, what it covers; ledgered per subject without the issuer.
    let r = app.post("/v1/instruments", Some(legal), &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let got = r.json();
    let id = got["id"].as_str().unwrap().to_string();
    assert_eq!(got["kind"], "court_order");
    assert_eq!(got["subjects"], json!([a]));
    assert_eq!(got["categories"], json!(["contact.email"]));
    assert_eq!(got["registered_by"], "legal");
    assert_eq!(got["expired"], false);
    let ledger = app.ledger();
    let registered: Vec<_> = ledger
        .iter()
        .filter(|d| d.action == "instrument_register")
        .collect();
    let done: Vec<_> = registered.iter().filter(|d| d.effect == "done").collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].subject, a);
    assert_eq!(done[0].reasons, format!("court_order,instrument:{id}"));
    assert!(registered.iter().filter(|d| d.effect == "refused").count() >= 7);
    assert!(
        ledger
            .iter()
            .all(|d| !format!("{d:?}").contains("Superior")),
        "the issuer stays out of the ledger"
    );

    // Shown to staff; to anyone else exactly as an id never registered.
    let r = app.get(&format!("/v1/instruments/{id}"), Some(legal)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), got);
    for key in [
        app.key("marketing"),
        app.key("support"),
        app.key("authorities"),
        app.tenant_key("customer-admin", "acme"),
    ] {
        let other = app.get(&format!("/v1/instruments/{id}"), Some(key)).await;
        let never = app
            .get(&format!("/v1/instruments/{NOBODY}"), Some(key))
            .await;
        other.problem(404, "instrument_not_found");
        never.problem(404, "instrument_not_found");
        assert_eq!(other.json()["detail"], never.json()["detail"]);
    }
    app.get(&format!("/v1/instruments/{NOBODY}"), Some(legal))
        .await
        .problem(404, "instrument_not_found");
    app.get("/v1/instruments/not-a-uuid", Some(legal))
        .await
        .problem(404, "instrument_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_reads_take_a_registered_instrument_on_sqlite() {
    legal_reads_take_a_registered_instrument(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_reads_take_a_registered_instrument_on_postgresql() {
    legal_reads_take_a_registered_instrument(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staff_register_and_see_instruments_on_sqlite() {
    only_staff_register_and_see_instruments(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staff_register_and_see_instruments_on_postgresql() {
    only_staff_register_and_see_instruments(Backend::Postgres).await;
}
