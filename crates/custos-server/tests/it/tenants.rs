//! Issue 12, item 3: tenant binding over HTTP, on both backends. A business customer's key
//! (`customer-admin`, made for one tenant) asks for people of another tenant and of none,
//! on every route that names a subject: each answer is exactly the answer for a subject
//! that was never collected. Its own tenant's people get the policy's answer.

use serde_json::{Value, json};

use crate::support::{Backend, NOBODY, NOTICE, Response, TestApp};

/// Collects a meeting attendee of `tenant` (or of none) through meeting-center, for
/// meetings and the customer's usage reports, with one attendance record.
async fn attendee_of(app: &TestApp, tenant: Option<&str>, email: &str) -> String {
    let key = Some(app.key("meeting-center"));
    let mut body = json!({
        "service": "meeting-center", "role": "attendee",
        "purposes": ["service.meetings", "reports.customer_usage"], "notice": NOTICE,
        "data": {"contact.name": "Tess Tenant", "contact.email": email},
    });
    if let Some(t) = tenant {
        body["tenant"] = json!(t);
    }
    let r = app.post("/v1/subjects", key, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["subject"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/v1/subjects/{id}/records"),
            key,
            &json!({"collection": "meeting_attendance",
                    "purposes": ["service.meetings", "reports.customer_usage"],
                    "value": "{\"meeting\":\"weekly sync\"}"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    id
}

/// Every request a key can make about a subject, with `{id}` in place of its id.
fn requests() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        (
            "GET",
            "/v1/subjects/{id}?purpose=reports.customer_usage&categories=contact.name,contact.email",
            None,
        ),
        (
            "GET",
            "/v1/subjects/{id}?purpose=reports.customer_usage",
            None,
        ),
        ("GET", "/v1/subjects/{id}?purpose=service.meetings", None),
        (
            "GET",
            "/v1/subjects/{id}/records?collection=meeting_attendance&purpose=reports.customer_usage",
            None,
        ),
        (
            "POST",
            "/v1/decisions",
            Some(
                json!({"subject": "{id}", "purpose": "reports.customer_usage",
                        "categories": ["contact.email"]}),
            ),
        ),
        (
            "POST",
            "/v1/subjects/{id}/data",
            Some(json!({"service": "meeting-center", "role": "attendee",
                        "purposes": ["reports.customer_usage"], "notice": NOTICE,
                        "tenant": "acme", "data": {"contact.email": "x@acme.example"}})),
        ),
        (
            "POST",
            "/v1/subjects/{id}/records",
            Some(json!({"collection": "meeting_attendance",
                        "purposes": ["reports.customer_usage"], "value": "forged"})),
        ),
    ]
}

async fn send(app: &TestApp, key: &str, req: &(&str, &str, Option<Value>), id: &str) -> Response {
    let (method, path, body) = req;
    let path = path.replace("{id}", id);
    let body = body.as_ref().map(|b| b.to_string().replace("{id}", id));
    app.send(method, &path, Some(key), body.as_deref()).await
}

/// What a client sees of an answer: status, content type and body (the request id header
/// differs by design).
fn seen(r: &Response) -> (u16, Option<String>, String) {
    (
        r.status,
        r.header("content-type").map(str::to_string),
        r.body.clone(),
    )
}

async fn a_key_of_one_tenant_finds_no_one_of_another(backend: Backend) {
    let app = TestApp::spawn_tenants(backend).await;
    let ours = attendee_of(&app, Some("acme"), "a@acme.example").await;
    let theirs = attendee_of(&app, Some("globex"), "b@globex.example").await;
    let nobodys = attendee_of(&app, None, "c@example.com").await;
    let acme = app.tenant_key("customer-admin", "acme");

    // The attack: another tenant's attendee, and an attendee of no tenant. Each request is
    // answered byte for byte as for an id that was never collected: a 404.
    for req in requests() {
        let never = seen(&send(&app, acme, &req, NOBODY).await);
        assert_eq!(never.0, 404, "{req:?}: {never:?}");
        let p: Value = serde_json::from_str(&never.2).unwrap();
        assert_eq!(p["code"], "subject_not_found", "{req:?}");
        for id in [&theirs, &nobodys] {
            let r = send(&app, acme, &req, id).await;
            assert_eq!(seen(&r), never, "{req:?} for {id}");
            assert!(!r.body.contains(id.as_str()) && !r.body.contains("globex"));
        }
    }

    // Its own tenant's attendee: the policy's answer.
    let r = app
        .get(
            &format!(
                "/v1/subjects/{ours}?purpose=reports.customer_usage&categories=contact.name,contact.email"
            ),
            Some(acme),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json();
    assert_eq!(a["effect"], "permit");
    assert_eq!(a["data"]["contact.email"], "a@acme.example");
    let r = app
        .post(
            "/v1/decisions",
            Some(acme),
            &json!({"subject": ours, "purpose": "reports.customer_usage",
                    "categories": ["contact.email", "network.ip_address"]}),
        )
        .await;
    let d = r.json();
    assert_eq!(d["effect"], "partial", "{}", r.body);
    assert_eq!(d["disclosure_to"], "customer");
    assert_eq!(
        d["withheld"],
        json!({"network.ip_address": "exceeds_minimum_necessary"})
    );
    // Records: the attendance collection holds the IP address too, more than the customer
    // may have; the records are withheld, as the policy says.
    let r = app
        .get(
            &format!(
                "/v1/subjects/{ours}/records?collection=meeting_attendance&purpose=reports.customer_usage"
            ),
            Some(acme),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["withheld"],
        json!({"exceeds_minimum_necessary": 1})
    );
    // A purpose it may not pursue: refused as such, for its own people.
    app.get(
        &format!("/v1/subjects/{ours}?purpose=service.meetings"),
        Some(acme),
    )
    .await
    .problem(403, "purpose_not_allowed_for_accessor");

    // The other tenant's key: the reverse.
    let globex = app.tenant_key("customer-admin", "globex");
    let report = |id: &str| {
        format!("/v1/subjects/{id}?purpose=reports.customer_usage&categories=contact.email")
    };
    let r = app.get(&report(&theirs), Some(globex)).await;
    assert_eq!(r.json()["data"]["contact.email"], "b@globex.example");
    app.get(&report(&ours), Some(globex))
        .await
        .problem(404, "subject_not_found");

    // A service acting for no tenant reaches every person it holds, any tenant or none.
    for id in [&ours, &theirs, &nobodys] {
        let r = app
            .get(
                &format!("/v1/subjects/{id}?purpose=service.meetings"),
                Some(app.key("meeting-center")),
            )
            .await;
        assert_eq!(r.json()["effect"], "permit", "{}", r.body);
    }
    let v = app
        .get("/v1/ledger/verify", Some(app.key("meeting-center")))
        .await
        .json();
    assert_eq!(v["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_admin_key_of_one_tenant_finds_no_one_of_another_on_sqlite() {
    a_key_of_one_tenant_finds_no_one_of_another(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_admin_key_of_one_tenant_finds_no_one_of_another_on_postgresql() {
    a_key_of_one_tenant_finds_no_one_of_another(Backend::Postgres).await;
}
