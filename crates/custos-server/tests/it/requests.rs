//! Issue 13: people's requests over HTTP, on both backends. From the attacker's side first:
//! no key but staff's reaches a request, whatever it asks.

use serde_json::{Value, json};

use crate::support::{Backend, NOBODY, TestApp};

fn erase_by_email(subject: &str) -> Value {
    json!({
        "kind": "erase",
        "subject": subject,
        "channel": "email",
        "verification": "email_from_address_on_file",
    })
}

async fn only_staff_handle_requests(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let admin = app.key("admin");
    let ann = app.attendee("Ann Req", "ann.req@acme.example").await;
    let r = app
        .post("/v1/requests", Some(admin), &erase_by_email(&ann))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["request"].as_str().unwrap().to_string();
    let before = app.ledger().len();
    for key in [
        app.key("marketing"),
        app.key("connect"),
        app.tenant_key("customer-admin", "acme"),
    ] {
        app.post("/v1/requests", Some(key), &erase_by_email(&ann))
            .await
            .problem(403, "not_staff");
        let paths = [
            "/v1/requests".to_string(),
            "/v1/requests?state=all".to_string(),
            format!("/v1/requests/{id}"),
        ];
        for path in &paths {
            app.get(path, Some(key)).await.problem(403, "not_staff");
        }
        for action in ["verify", "complete"] {
            app.post(
                &format!("/v1/requests/{id}/{action}"),
                Some(key),
                &json!({}),
            )
            .await
            .problem(403, "not_staff");
        }
        app.post(
            &format!("/v1/requests/{id}/refuse"),
            Some(key),
            &json!({"reason": "duplicate"}),
        )
        .await
        .problem(403, "not_staff");
    }
    assert_eq!(app.get("/v1/requests", None).await.status, 401);
    // Each refusal ledgered; the request untouched, the subject still held.
    let refused = app
        .ledger()
        .into_iter()
        .skip(before)
        .filter(|d| d.effect == "refused" && d.reasons == "not_staff")
        .count();
    assert_eq!(refused, 3 * 7);
    let r = app.get(&format!("/v1/requests/{id}"), Some(admin)).await;
    assert_eq!(r.json()["state"], "received", "{}", r.body);
    let r = app
        .get(
            &format!("/v1/subjects/{ann}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    assert_eq!(r.json()["data"]["contact.email"], "ann.req@acme.example");
}

async fn staff_take_a_request_to_completion(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let admin = app.key("admin");
    let bo = app.attendee("Bo Req", "bo.req@acme.example").await;

    // Bad input is named.
    let mut bad = erase_by_email(&bo);
    bad["kind"] = json!("erasure");
    let p = app
        .post("/v1/requests", Some(admin), &bad)
        .await
        .problem(400, "invalid_field");
    assert_eq!(p["field"], "kind");
    let mut bad = erase_by_email(&bo);
    bad["verification"] = json!("signed_in");
    let p = app
        .post("/v1/requests", Some(admin), &bad)
        .await
        .problem(422, "invalid_verification");
    assert_eq!(p["field"], "verification");
    let mut bad = erase_by_email(&bo);
    bad["note"] = json!("she called twice");
    let p = app
        .post("/v1/requests", Some(admin), &bad)
        .await
        .problem(400, "unknown_field");
    assert_eq!(p["field"], "note");
    app.post("/v1/requests", Some(admin), &erase_by_email(NOBODY))
        .await
        .problem(404, "subject_not_found");
    let mut objection = erase_by_email(&bo);
    objection["kind"] = json!("object");
    // No purpose is an unsubscribe from every topic (`unsubscribe.rs`); an unknown one is named.
    objection["purpose"] = json!("marketting");
    let p = app
        .post("/v1/requests", Some(admin), &objection)
        .await
        .problem(422, "unknown_purpose");
    assert_eq!(p["field"], "purpose");

    // Received, verified, completed: the subject is erased.
    let r = app
        .post("/v1/requests", Some(admin), &erase_by_email(&bo))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(created["state"], "received");
    assert_eq!(created["kind"], "erase");
    assert!(created["due"].as_str().unwrap() > created["received"].as_str().unwrap());
    let id = created["request"].as_str().unwrap().to_string();
    let r = app.get("/v1/requests?state=open", Some(admin)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["request"] == id.as_str())
    );
    let r = app.get("/v1/requests?state=overdue", Some(admin)).await;
    assert_eq!(r.json()["requests"], json!([]));
    app.get("/v1/requests?state=late", Some(admin))
        .await
        .problem(400, "invalid_query");

    app.post(
        &format!("/v1/requests/{id}/complete"),
        Some(admin),
        &json!({}),
    )
    .await
    .problem(409, "request_not_verified");
    let r = app
        .post(
            &format!("/v1/requests/{id}/verify"),
            Some(admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.json()["state"], "verified", "{}", r.body);
    let r = app
        .post(
            &format!("/v1/requests/{id}/complete"),
            Some(admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "completed");
    app.post(
        &format!("/v1/requests/{id}/complete"),
        Some(admin),
        &json!({}),
    )
    .await
    .problem(409, "request_closed");
    app.post(
        &format!("/v1/requests/{id}/refuse"),
        Some(admin),
        &json!({"reason": "duplicate"}),
    )
    .await
    .problem(409, "request_closed");
    let r = app
        .get(
            &format!("/v1/subjects/{bo}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    r.problem(404, "subject_not_found");
    app.get(&format!("/v1/requests/{NOBODY}"), Some(admin))
        .await
        .problem(404, "request_not_found");

    // A California request needs no subject, and is refused with a reason from the set.
    let r = app
        .post(
            "/v1/requests",
            Some(admin),
            &json!({"kind": "california-disclosures", "channel": "letter", "verification": "document_checked"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let cal = r.json()["request"].as_str().unwrap().to_string();
    let p = app
        .post(
            &format!("/v1/requests/{cal}/refuse"),
            Some(admin),
            &json!({"reason": "because"}),
        )
        .await
        .problem(400, "invalid_field");
    assert_eq!(p["field"], "reason");
    let r = app
        .post(
            &format!("/v1/requests/{cal}/refuse"),
            Some(admin),
            &json!({"reason": "no_data_held"}),
        )
        .await;
    assert_eq!(r.json()["state"], "refused", "{}", r.body);
    assert_eq!(r.json()["reason"], "no_data_held");
    let all = app.get("/v1/requests?state=all", Some(admin)).await.json();
    assert_eq!(all["requests"].as_array().unwrap().len(), 2);

    // The ledger names the request by keywords, never a value.
    let ledger = app.ledger();
    for action in ["request_receive", "request_verify", "request_complete"] {
        assert!(
            ledger.iter().any(|d| d.action == action
                && d.effect == "done"
                && d.reasons.ends_with(&format!("request:{id}"))),
            "{action}"
        );
    }
    assert!(
        ledger
            .iter()
            .any(|d| d.action == "erase" && d.subject == bo)
    );
    for d in &ledger {
        let text = format!("{d:?}");
        assert!(
            !text.contains("bo.req@acme.example") && !text.contains("Bo Req"),
            "{d:?}"
        );
    }
}

/// An export request completes with the person's export in the answer (never cached); a
/// rectify request with the corrected values its body gives, and not without them.
async fn export_and_rectify_requests_complete_with_their_answers(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let admin = app.key("admin");
    let gi = app.attendee("Gi Req", "gi.req@acme.example").await;
    let open = |kind: &str| {
        let mut r = erase_by_email(&gi);
        r["kind"] = json!(kind);
        r
    };
    let verified = |kind: &'static str| {
        let body = open(kind);
        let app = &app;
        async move {
            let r = app.post("/v1/requests", Some(admin), &body).await;
            let id = r.json()["request"].as_str().unwrap().to_string();
            let r = app
                .post(
                    &format!("/v1/requests/{id}/verify"),
                    Some(admin),
                    &json!({}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            id
        }
    };
    let id = verified("export").await;
    let r = app
        .send(
            "POST",
            &format!("/v1/requests/{id}/complete"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c = r.json();
    assert_eq!(c["state"], "completed");
    assert_eq!(c["export"]["schema"], "custos-export/1");
    assert_eq!(c["export"]["subject"]["id"], gi.as_str());
    let id = verified("rectify").await;
    let p = app
        .send(
            "POST",
            &format!("/v1/requests/{id}/complete"),
            Some(admin),
            None,
        )
        .await
        .problem(400, "missing_field");
    assert_eq!(p["field"], "data");
    let r = app
        .post(
            &format!("/v1/requests/{id}/complete"),
            Some(admin),
            &json!({"data": {"contact.name": "Gi Corrected"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json().get("export").is_none());
    let r = app
        .get(
            &format!("/v1/subjects/{gi}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    assert_eq!(r.json()["data"]["contact.name"], "Gi Corrected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_rectify_requests_complete_with_their_answers_on_sqlite() {
    export_and_rectify_requests_complete_with_their_answers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_rectify_requests_complete_with_their_answers_on_postgresql() {
    export_and_rectify_requests_complete_with_their_answers(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staff_handle_requests_on_sqlite() {
    only_staff_handle_requests(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staff_handle_requests_on_postgresql() {
    only_staff_handle_requests(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_take_a_request_to_completion_on_sqlite() {
    staff_take_a_request_to_completion(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_take_a_request_to_completion_on_postgresql() {
    staff_take_a_request_to_completion(Backend::Postgres).await;
}

/// `GET /v1/requests` is paged: `limit` a page, `next` the `after` of the following one,
/// every request once; a bad `limit` or `after` is refused by its field, and another
/// service's key is refused before either is read.
async fn requests_are_listed_page_by_page(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let admin = app.key("admin");
    let ann = app.attendee("Ann Page", "ann.page@acme.example").await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let r = app
            .post("/v1/requests", Some(admin), &erase_by_email(&ann))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        created.push(r.json()["request"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/requests?state=all&limit=2".to_string();
    let mut pages = 0;
    loop {
        let r = app.get(&path, Some(admin)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        let page = body["requests"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(
            page.iter()
                .map(|q| q["request"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match body["next"].as_str() {
            Some(next) => path = format!("/v1/requests?state=all&limit=2&after={next}"),
            None => break,
        }
        assert!(pages <= 4, "the pages never end");
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "{seen:?}");
    created.sort();
    assert_eq!(sorted, created);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=two", "limit"),
        ("after=nope", "after"),
        ("after=1_", "after"),
    ] {
        let p = app
            .get(&format!("/v1/requests?{query}"), Some(admin))
            .await
            .problem(400, "invalid_query");
        assert_eq!(p["field"], field, "{query}");
    }
    app.get("/v1/requests?after=nope", Some(app.key("marketing")))
        .await
        .problem(403, "not_staff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_listed_page_by_page_sqlite() {
    requests_are_listed_page_by_page(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_listed_page_by_page_postgres() {
    requests_are_listed_page_by_page(Backend::Postgres).await;
}
