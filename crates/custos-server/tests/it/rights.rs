//! Issue 13, items 4 and 5 over HTTP: a signed-in person exports, reads the ledger about
//! them, corrects, deactivates and erases themself — and no one else — on both backends.

use serde_json::json;

use crate::people::{mailed_code, sign_in, verify};
use crate::support::{Backend, TestApp};

/// Signs in as the person holding `email`; the session token.
async fn session(app: &TestApp, email: &str) -> String {
    assert_eq!(sign_in(app, email).await.status, 202);
    let code = mailed_code(app, email).await;
    let r = verify(app, email, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["session"].as_str().unwrap().to_string()
}

async fn rights_over_http(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let ann_email = "zr-ann-7c1d@example.invalid";
    let ann = app.attendee("Ann", ann_email).await;
    let bob = app.attendee("Bob", "zr-bob-41aa@example.invalid").await;
    let s = session(&app, ann_email).await;
    let me = Some(s.as_str());

    // From the attacker's side: Ann's session on Bob, for every act — as a subject never held.
    app.get(&format!("/v1/me/export?subject={bob}"), me)
        .await
        .problem(404, "subject_not_found");
    app.get(&format!("/v1/me/ledger?subject={bob}"), me)
        .await
        .problem(404, "subject_not_found");
    app.send(
        "PATCH",
        "/v1/me/data",
        me,
        Some(&json!({"subject": bob, "data": {"contact.email": "x@evil.invalid"}}).to_string()),
    )
    .await
    .problem(404, "subject_not_found");
    for act in ["deactivate", "erase"] {
        app.post(&format!("/v1/me/{act}"), me, &json!({ "subject": bob }))
            .await
            .problem(404, "subject_not_found");
    }
    // Bob is as he was.
    let r = app
        .get(
            &format!("/v1/subjects/{bob}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    assert_eq!(
        r.json()["data"]["contact.email"],
        "zr-bob-41aa@example.invalid"
    );
    // An API key is no session; a malformed subject names the field.
    app.get("/v1/me/export", Some(app.key("meeting-center")))
        .await
        .problem(401, "invalid_session");
    let p = app
        .get("/v1/me/export?subject=nope", me)
        .await
        .problem(400, "invalid_subject_id");
    assert_eq!(p["field"], "subject");

    // Ann's export: JSON of the documented schema, never cached.
    let r = app.get("/v1/me/export", me).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let doc = r.json();
    assert_eq!(doc["schema"], "custos-export/1");
    assert_eq!(doc["subject"]["id"], ann.as_str());
    assert!(
        doc["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["category"] == "contact.email" && v["value"] == ann_email),
        "{doc}"
    );
    assert!(!r.body.contains("zr-bob"));
    // The readable page, self-contained.
    let html = app
        .raw(
            format!(
                "GET /v1/me/export HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAccept: text/html\r\nAuthorization: Bearer {s}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        html.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert!(html.body.contains(ann_email));

    // Correction: a category not held is refused naming it; a held one replaced.
    let p = app
        .send(
            "PATCH",
            "/v1/me/data",
            me,
            Some(&json!({"data": {"contact.phone": "+1 555 0100"}}).to_string()),
        )
        .await
        .problem(422, "category_not_held");
    assert_eq!(p["field"], "data.contact.phone");
    let r = app
        .send(
            "PATCH",
            "/v1/me/data",
            me,
            Some(&json!({"data": {"contact.name": "Ann Corrected"}}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["done"], "corrected");
    let r = app
        .get(
            &format!("/v1/subjects/{ann}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    assert_eq!(r.json()["data"]["contact.name"], "Ann Corrected");
    // The ledger about Ann: the correction is there, with the categories only, proven.
    let r = app.get("/v1/me/ledger", me).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let l = r.json();
    let entries = l["ledger"]["entries"].as_array().unwrap();
    let refused = entries
        .iter()
        .find(|e| e["action"] == "correct" && e["effect"] == "deny")
        .unwrap();
    assert_eq!(refused["categories"], json!(["contact.phone"]));
    assert_eq!(refused["reasons"], json!(["category_not_held"]));
    let c = entries
        .iter()
        .find(|e| e["action"] == "correct" && e["effect"] == "done")
        .unwrap();
    assert_eq!(c["categories"], json!(["contact.name"]));
    assert_eq!(c["actor"], "person");
    assert!(!r.body.contains("Ann Corrected"));
    assert!(entries.iter().any(|e| e["proof"].is_array()));

    // Deactivation, then erasure: the service reads nothing; the export is gone.
    let r = app.post("/v1/me/deactivate", me, &json!({})).await;
    assert_eq!(r.json()["done"], "deactivated", "{}", r.body);
    let r = app.post("/v1/me/erase", me, &json!({})).await;
    assert_eq!(r.json()["done"], "erased", "{}", r.body);
    app.get("/v1/me/export", me)
        .await
        .problem(404, "subject_not_found");
    let r = app
        .get(
            &format!("/v1/subjects/{ann}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    assert!(
        r.json()["data"].as_object().is_none_or(|d| d.is_empty()),
        "{}",
        r.body
    );
    let r = app
        .get("/v1/ledger/verify", Some(app.key("meeting-center")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], true, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_over_http_sqlite() {
    rights_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_over_http_postgres() {
    rights_over_http(Backend::Postgres).await;
}

/// Export and erasure need a sign-in of the last 10 minutes: an older session is told to
/// sign in again, and nothing is erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_erasure_need_a_recent_sign_in() {
    let app = TestApp::spawn_on(Backend::Sqlite).await;
    let email = "zr-old-0b9e@example.invalid";
    let id = app.attendee("Old", email).await;
    let s = session(&app, email).await;
    let db = rusqlite::Connection::open(app.dir.join("custos.db")).unwrap();
    assert_eq!(
        db.execute(
            "UPDATE sessions SET signed_in_ms = signed_in_ms - 660000",
            []
        )
        .unwrap(),
        1
    );
    app.get("/v1/me/export", Some(&s))
        .await
        .problem(401, "sign_in_too_old");
    app.post("/v1/me/erase", Some(&s), &json!({}))
        .await
        .problem(401, "sign_in_too_old");
    // What needs no recent sign-in still works; the person is still held.
    assert_eq!(app.get("/v1/me", Some(&s)).await.status, 200);
    let r = app
        .get(
            &format!("/v1/subjects/{id}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    assert_eq!(r.json()["data"]["contact.email"], email);
}

/// The person's own choices: their preferences and consents, signed in, reach their
/// subjects only, and the next decision reads them.
async fn choices_over_http(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let email = "zr-rosa-5e11@example.com";
    let rosa = crate::consents::registered(&app, email).await;
    let other = crate::consents::registered(&app, "zr-other-77aa@example.com").await;
    let s = session(&app, email).await;
    let me = Some(s.as_str());
    let marketing = app.key("marketing");
    let newsletter = format!("/v1/subjects/{rosa}?purpose=newsletters&categories=contact.email");
    // Another person's preferences: as a subject never held.
    app.get(&format!("/v1/me/preferences?subject={other}"), me)
        .await
        .problem(404, "subject_not_found");
    app.send(
        "PUT",
        "/v1/me/preferences",
        me,
        Some(&json!({"subject": other, "topics": {"newsletters": true}}).to_string()),
    )
    .await
    .problem(404, "subject_not_found");
    // Newsletters on, by the person: marketing may now use the address.
    let r = app
        .send(
            "PUT",
            "/v1/me/preferences",
            me,
            Some(&json!({"topics": {"newsletters": true}}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let changes = r.json()["changes"].clone();
    assert_eq!(changes[0]["consent"]["actor"], "person", "{changes}");
    assert!(changes[0]["receipt"].as_str().unwrap().split('.').count() == 3);
    let r = app.get(&newsletter, Some(marketing)).await;
    assert_eq!(r.json()["data"]["contact.email"], email, "{}", r.body);
    // Withdrawn as easily: the next decision withholds it.
    let r = app
        .post(
            "/v1/me/consents",
            me,
            &json!({"purpose": "newsletters", "given": false, "method": "settings_page", "notice": "2010-04-24"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app.get(&newsletter, Some(marketing)).await;
    assert_eq!(
        r.json()["withheld"]["contact.email"],
        "consent_missing",
        "{}",
        r.body
    );
    let r = app.get("/v1/me/consents", me).await;
    assert_eq!(
        r.json()["consents"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );
    // Silence is no consent, from the person either.
    app.post(
        "/v1/me/consents",
        me,
        &json!({"purpose": "newsletters", "given": true, "method": "silence", "notice": "2010-04-24"}),
    )
    .await
    .problem(422, "consent_not_freely_given");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choices_over_http_sqlite() {
    choices_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choices_over_http_postgres() {
    choices_over_http(Backend::Postgres).await;
}
