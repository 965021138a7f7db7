//! Issue 14, item 5: unsubscribe by email (C032) — `POST /v1/inbound-mail` — and by letter
//! (C033) — a staff request `{kind: object, channel: letter}` — over HTTP, on both backends,
//! the attacker's side included.

use custos_server::mail::Transport;
use serde_json::{Value, json};

use crate::consents::registered;
use crate::people::{SmtpServer, deliver};
use crate::support::{Backend, Response, TestApp};

/// Posts a raw message to `/v1/inbound-mail` with `content_type`.
async fn post_mail(app: &TestApp, key: Option<&str>, content_type: &str, body: &[u8]) -> Response {
    let mut req = format!(
        "POST /v1/inbound-mail HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    if let Some(k) = key {
        req.extend_from_slice(format!("Authorization: Bearer {k}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    app.raw(&req).await
}

fn message(from: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: unsubscribe@webex.com\r\nSubject: unsubscribe\r\n\
         Date: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <u1@example.com>\r\n\r\n\
         Please unsubscribe me. My name is Una Sub.\r\n"
    )
    .into_bytes()
}

/// What `marketing` may do with the subject's address for service announcements.
async fn announcements(app: &TestApp, id: &str) -> Value {
    let r = app
        .post(
            "/v1/decisions",
            Some(app.key("marketing")),
            &json!({"subject": id, "purpose": "marketing.announcements", "categories": ["contact.email"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// C032: an inbound message from a known address (in another case, with a display name and
/// a comment) unsubscribes the subject from every topic that was on, by `email_request`,
/// each with a receipt; the next decision for announcements refuses (`objected`). A message
/// from an address the vault does not know is ledgered without it and changes nothing. The
/// address is in no log line, no ledger entry, no answer; a confirmation goes to the
/// address over SMTP.
async fn an_email_to_unsubscribe_objects_to_every_topic(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let address = "una.sub-c032-7e1@example.com";
    let id = registered(&app, address).await;
    let other = registered(&app, "bystander-c032@example.com").await;
    assert_eq!(announcements(&app, &id).await["effect"], "permit");
    let admin = Some(app.key("admin"));
    let before = app.ledger().len();
    // The topics on now: the opt-out ones (announcements, marketing, personalization).
    let r = app
        .get(
            &format!("/v1/subjects/{id}/preferences"),
            Some(app.key("website")),
        )
        .await;
    let on = r.json()["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["on"] == true)
        .count();
    assert!(on >= 2, "{}", r.body);

    let from = "\"Una Sub\" <UNA.Sub-C032-7e1@Example.COM> (home)";
    let r = post_mail(&app, admin, "message/rfc822", &message(from)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"matched": 1, "changes": on}));

    let d = announcements(&app, &id).await;
    assert_eq!(d["effect"], "deny", "{d}");
    assert_eq!(d["withheld"]["contact.email"], "objected", "{d}");
    assert_eq!(announcements(&app, &other).await["effect"], "permit");
    let r = app
        .get(
            &format!("/v1/subjects/{id}/consents"),
            Some(app.key("website")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let consents = r.json()["consents"].as_array().unwrap().clone();
    let objection = consents
        .iter()
        .find(|c| c["purpose"] == "marketing.announcements")
        .expect("the objection is recorded");
    assert_eq!(objection["kind"], "objection");
    assert_eq!(objection["given"], false);
    assert_eq!(objection["method"], "email_request");
    assert_eq!(objection["actor"], "admin");
    assert!(
        objection["receipt"]
            .as_str()
            .is_some_and(|r| r.split('.').count() == 3)
    );

    // Again (as `text/plain`, taken as the same): nothing more to change; still matched.
    let r = post_mail(&app, admin, "text/plain; charset=utf-8", &message(address)).await;
    assert_eq!(r.json(), json!({"matched": 1, "changes": 0}));

    // An address the vault does not know: ignored, its arrival ledgered without it.
    let stranger = "stranger-c032-b2@example.org";
    let r = post_mail(&app, admin, "message/rfc822", &message(stranger)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"matched": 0, "changes": 0}));

    let ledger = app.ledger();
    let new = &ledger[before..];
    let intakes: Vec<_> = new.iter().filter(|d| d.action == "inbound_mail").collect();
    assert_eq!(intakes.len(), 3);
    assert!(
        intakes
            .iter()
            .all(|d| d.subject.is_empty() && d.actor == "admin")
    );
    assert_eq!(intakes[2].reasons, "subjects:0");
    assert_eq!(
        new.iter()
            .filter(|d| matches!(d.action.as_str(), "objection" | "consent") && d.subject == id)
            .count(),
        on
    );
    assert!(
        new.iter()
            .all(|d| d.subject.is_empty() || d.subject == id || d.action == "decide")
    );
    // The confirmation reaches the address, once; the stranger gets nothing.
    let smtp = SmtpServer::start(false);
    let t = Transport::smtp(&format!("smtp://127.0.0.1:{}", smtp.port), None).unwrap();
    assert_eq!(deliver(app.vault(), &t).await, 1);
    let got = smtp.received();
    assert_eq!(got[0].to, vec![format!("<{address}>")]);
    assert!(got[0].data.contains("Subject: You are unsubscribed"));
    // Nowhere: not in the ledger, the logs, or (SQLite) the data files.
    let needles = [address, "una.sub-c032", "UNA.Sub", stranger, "Una Sub"];
    let ledger_text = format!("{ledger:?}");
    let logs = app.logs();
    for n in needles {
        assert!(!ledger_text.contains(n), "`{n}` in the ledger");
        assert!(!logs.contains(n), "`{n}` in the logs");
        for (path, bytes) in app.data_files() {
            assert!(!contains(&bytes, n), "`{n}` in {}", path.display());
        }
        if let Some(rows) = app.postgres_rows() {
            assert!(!rows.contains(n), "`{n}` in a PostgreSQL table");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_to_unsubscribe_objects_to_every_topic_sqlite() {
    an_email_to_unsubscribe_objects_to_every_topic(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_to_unsubscribe_objects_to_every_topic_postgres() {
    an_email_to_unsubscribe_objects_to_every_topic(Backend::Postgres).await;
}

/// Only staff hand in mail: a service's key and a customer's key are `403 not_staff`, the
/// subject unchanged; no key is 401. Oversized (413), not a message (400, naming the
/// problem), no `From` (422), not `message/rfc822` (415): each refused, nothing recorded,
/// no header value in the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_mail_is_for_staff_and_refuses_what_is_not_a_message() {
    let app = TestApp::spawn_requests(Backend::Sqlite).await;
    let address = "victim-c032@example.com";
    let id = registered(&app, address).await;
    let mail = message(address);
    for key in [
        app.key("marketing"),
        app.key("website"),
        app.tenant_key("customer-admin", "acme"),
    ] {
        let r = post_mail(&app, Some(key), "message/rfc822", &mail).await;
        r.problem(403, "not_staff");
        assert!(!r.body.contains("victim"));
    }
    post_mail(&app, None, "message/rfc822", &mail)
        .await
        .problem(401, "missing_api_key");
    assert_eq!(announcements(&app, &id).await["effect"], "permit");

    let admin = Some(app.key("admin"));
    let mut big = mail.clone();
    big.extend(std::iter::repeat_n(b'x', custos_vault::MAX_INBOUND_MAIL));
    post_mail(&app, admin, "message/rfc822", &big)
        .await
        .problem(413, "mail_too_large");
    let p = post_mail(
        &app,
        admin,
        "message/rfc822",
        b"this is no message about victim-c032@example.com\r\n\r\n",
    )
    .await
    .problem(400, "invalid_message");
    assert!(p["detail"].as_str().unwrap().contains("header line"), "{p}");
    assert!(!p.to_string().contains("victim"));
    post_mail(&app, admin, "message/rfc822", b"")
        .await
        .problem(400, "invalid_message");
    post_mail(
        &app,
        admin,
        "message/rfc822",
        b"To: unsubscribe@webex.com\r\nSubject: unsubscribe\r\n\r\nvictim-c032@example.com\r\n",
    )
    .await
    .problem(422, "missing_from");
    post_mail(&app, admin, "application/json", &mail)
        .await
        .problem(415, "unsupported_media_type");
    post_mail(&app, admin, "multipart/form-data", &mail)
        .await
        .problem(415, "unsupported_media_type");
    assert_eq!(announcements(&app, &id).await["effect"], "permit");
    let ledger = app.ledger();
    let refused: Vec<_> = ledger
        .iter()
        .filter(|d| d.action == "inbound_mail" && d.effect == "refused")
        .map(|d| d.reasons.as_str())
        .collect();
    assert_eq!(
        refused,
        [
            "not_staff",
            "not_staff",
            "not_staff",
            "invalid_message",
            "invalid_message",
            "missing_from"
        ]
    );
    assert!(!ledger.iter().any(|d| d.action == "objection"));
    assert!(!app.logs().contains("victim"));
}

/// C033: a letter to the Legal Department is a staff request `{kind: object, channel:
/// letter}` naming no purpose; completing it records the unsubscribe from every topic that
/// was on with method `letter` and a receipt, and the next decision for announcements
/// refuses. A request naming a purpose objects to that purpose alone, by the channel's
/// method.
async fn a_letter_to_unsubscribe_objects_to_every_topic(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let admin = Some(app.key("admin"));
    let id = registered(&app, "letter-c033@example.com").await;
    // The person had also said yes to newsletters.
    let r = app
        .post(
            &format!("/v1/subjects/{id}/consents"),
            Some(app.key("website")),
            &json!({"purpose": "newsletters", "given": true, "method": "checkbox_unticked", "notice": crate::support::NOTICE}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app
        .post(
            "/v1/requests",
            admin,
            &json!({"kind": "object", "subject": id, "channel": "letter", "verification": "document_checked"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let req = r.json();
    assert_eq!(req["purpose"], Value::Null);
    let rid = req["request"].as_str().unwrap();
    // Not before it is verified.
    app.post(&format!("/v1/requests/{rid}/complete"), admin, &json!({}))
        .await
        .problem(409, "request_not_verified");
    assert_eq!(announcements(&app, &id).await["effect"], "permit");
    let r = app
        .send("POST", &format!("/v1/requests/{rid}/verify"), admin, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .send("POST", &format!("/v1/requests/{rid}/complete"), admin, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "completed");
    let d = announcements(&app, &id).await;
    assert_eq!(d["effect"], "deny", "{d}");
    assert_eq!(d["withheld"]["contact.email"], "objected");
    let r = app
        .get(
            &format!("/v1/subjects/{id}/preferences"),
            Some(app.key("website")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let topics = r.json()["topics"].as_array().unwrap().clone();
    assert!(topics.iter().all(|t| t["on"] == false), "{topics:?}");
    let r = app
        .get(
            &format!("/v1/subjects/{id}/consents"),
            Some(app.key("website")),
        )
        .await;
    let consents = r.json()["consents"].as_array().unwrap().clone();
    let by_letter: Vec<&str> = consents
        .iter()
        .filter(|c| c["method"] == "letter")
        .map(|c| c["purpose"].as_str().unwrap())
        .collect();
    assert!(
        by_letter.contains(&"marketing.announcements"),
        "{by_letter:?}"
    );
    assert!(by_letter.contains(&"newsletters"), "{by_letter:?}");
    assert!(
        consents
            .iter()
            .filter(|c| c["method"] == "letter")
            .all(|c| c["given"] == false && c["actor"] == "admin" && c["receipt"].is_string())
    );

    // A request by email naming one purpose: that purpose, by `email_request`.
    let id2 = registered(&app, "letter2-c033@example.com").await;
    let r = app
        .post(
            "/v1/requests",
            admin,
            &json!({"kind": "object", "subject": id2, "channel": "email", "verification": "email_from_address_on_file", "purpose": "marketing"}),
        )
        .await;
    let rid = r.json()["request"].as_str().unwrap().to_string();
    app.send("POST", &format!("/v1/requests/{rid}/verify"), admin, None)
        .await;
    let r = app
        .send("POST", &format!("/v1/requests/{rid}/complete"), admin, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(announcements(&app, &id2).await["effect"], "deny");
    let r = app
        .get(
            &format!("/v1/subjects/{id2}/consents"),
            Some(app.key("website")),
        )
        .await;
    let consents = r.json()["consents"].as_array().unwrap().clone();
    assert_eq!(consents.len(), 1, "{consents:?}");
    assert_eq!(consents[0]["purpose"], "marketing");
    assert_eq!(consents[0]["method"], "email_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_to_unsubscribe_objects_to_every_topic_sqlite() {
    a_letter_to_unsubscribe_objects_to_every_topic(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_to_unsubscribe_objects_to_every_topic_postgres() {
    a_letter_to_unsubscribe_objects_to_every_topic(Backend::Postgres).await;
}
