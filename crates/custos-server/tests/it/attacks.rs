//! The attacks of issue 10 with one API key, over HTTP on both backends: a key of another
//! service, or of a team, may neither erase a person by stating an age nor append records in
//! a service's name; a records read answers a bounded page.

use serde_json::{Value, json};

use crate::support::{Backend, NOTICE, TestApp};

/// Meeting Center still reads the attendee: nothing was erased.
async fn still_held(app: &TestApp, id: &str) {
    let r = app
        .get(
            &format!("/v1/subjects/{id}?purpose=service.meetings"),
            Some(app.key("meeting-center")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["contact.name"], "Ada", "{}", r.body);
}

async fn no_key_erases_by_stating_an_age(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let id = app.attendee("Ada", "ada@example.com").await;
    let path = format!("/v1/subjects/{id}/data");
    // The request the attacker sent: nonsense around `"age": 1`.
    let nonsense = json!({"service": "x", "role": "x", "purposes": ["x"], "notice": "x",
        "age": 1, "data": {"x": "y"}});
    for accessor in ["marketing", "mail", "connect"] {
        let r = app.post(&path, Some(app.key(accessor)), &nonsense).await;
        r.problem(404, "subject_not_found");
        still_held(&app, &id).await;
    }
    // A request sound for the caller's own service.
    let mailbox = json!({"service": "mail", "role": "mailbox-owner",
        "purposes": ["service.mail"], "notice": NOTICE, "age": 1,
        "data": {"contact.name": "Ada", "contact.email": "ada@example.com"}});
    let r = app.post(&path, Some(app.key("mail")), &mailbox).await;
    r.problem(404, "subject_not_found");
    // Posing as the holder, with a purpose the caller shares with it.
    let posing = json!({"service": "meeting-center", "role": "host",
        "purposes": ["account"], "notice": NOTICE, "age": 1,
        "data": {"contact.name": "Ada"}});
    let r = app.post(&path, Some(app.key("mail")), &posing).await;
    r.problem(404, "subject_not_found");
    still_held(&app, &id).await;
    // The holder, with anything else wrong: refused, nothing erased.
    let wrong = json!({"service": "meeting-center", "role": "attendee",
        "purposes": ["service.meetings"], "notice": "1999-01-01", "age": 1,
        "data": {"contact.name": "Ada"}});
    let r = app
        .post(&path, Some(app.key("meeting-center")), &wrong)
        .await;
    r.problem(422, "unknown_notice_version");
    still_held(&app, &id).await;
    // The holder, with a sound request: C053 erases at once.
    let child = json!({"service": "meeting-center", "role": "attendee",
        "purposes": ["service.meetings"], "notice": NOTICE, "age": 9,
        "data": {"contact.name": "Ada"}});
    let r = app
        .post(&path, Some(app.key("meeting-center")), &child)
        .await;
    r.problem(422, "subject_under_minimum_age");
    // Erased, the person is answered everywhere as one who never was (finding 9).
    let never = "0190b7d2-58a1-7c4e-9d7a-1f2e3d4c5b6a";
    for subject in [id.as_str(), never] {
        let key = Some(app.key("meeting-center"));
        let answers = [
            app.get(&format!("/v1/subjects/{subject}?purpose=service.meetings"), key)
                .await,
            app.get(
                &format!(
                    "/v1/subjects/{subject}/records?collection=meeting_attendance&purpose=service.meetings"
                ),
                key,
            )
            .await,
            app.post(
                "/v1/decisions",
                key,
                &json!({"subject": subject, "purpose": "service.meetings"}),
            )
            .await,
            app.post(&format!("/v1/subjects/{subject}/data"), key, &child)
                .await,
            app.post(&format!("/v1/subjects/{subject}/records"), key, &forged())
                .await,
        ];
        for r in answers {
            let p = r.problem(404, "subject_not_found");
            assert_eq!(p["detail"], "no such subject", "{p}");
        }
    }
}

fn forged() -> Value {
    json!({"collection": "meeting_attendance", "purposes": ["service.meetings"],
        "value": "forged"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_erases_by_stating_an_age_sqlite() {
    no_key_erases_by_stating_an_age(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_erases_by_stating_an_age_postgres() {
    no_key_erases_by_stating_an_age(Backend::Postgres).await;
}

async fn records_only_in_the_holders_name(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let id = app.attendee("Ada", "ada@example.com").await;
    let path = format!("/v1/subjects/{id}/records");
    let forged = forged();
    for accessor in ["marketing", "mail", "connect"] {
        let r = app.post(&path, Some(app.key(accessor)), &forged).await;
        r.problem(404, "subject_not_found");
    }
    let read = format!("{path}?collection=meeting_attendance&purpose=service.meetings");
    let r = app.get(&read, Some(app.key("meeting-center"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["records"], json!([]), "{}", r.body);
    let r = app
        .post(&path, Some(app.key("meeting-center")), &forged)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_only_in_the_holders_name_sqlite() {
    records_only_in_the_holders_name(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_only_in_the_holders_name_postgres() {
    records_only_in_the_holders_name(Backend::Postgres).await;
}

async fn records_are_read_a_page_at_a_time(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let id = app.attendee("Ada", "ada@example.com").await;
    let path = format!("/v1/subjects/{id}/records");
    let key = Some(app.key("meeting-center"));
    let values: Vec<String> = (0..1500).map(|i| format!("meeting {i:04}")).collect();
    for chunk in values.chunks(1000) {
        let r = app
            .post(
                &path,
                key,
                &json!({"collection": "meeting_attendance", "purposes": ["service.meetings"],
                    "values": chunk}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // More than a thousand at once, or one record too large: refused, nothing kept.
    let too_many: Vec<&str> = vec!["x"; 1001];
    let r = app
        .post(
            &path,
            key,
            &json!({"collection": "meeting_attendance", "purposes": ["service.meetings"],
                "values": too_many}),
        )
        .await;
    r.problem(413, "too_many_records");
    let r = app
        .post(
            &path,
            key,
            &json!({"collection": "meeting_attendance", "purposes": ["service.meetings"],
                "value": "x".repeat(65_537)}),
        )
        .await;
    r.problem(413, "record_too_large");
    let base = format!("{path}?collection=meeting_attendance&purpose=service.meetings");
    let first = app.get(&base, key).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["records"].as_array().unwrap().len(), 100);
    let mut seen: Vec<String> = Vec::new();
    let mut after = String::new();
    loop {
        let r = app.get(&format!("{base}&limit=1000{after}"), key).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let body: Value = r.json();
        let page = body["records"].as_array().unwrap();
        assert!(page.len() <= 1000);
        seen.extend(
            page.iter()
                .map(|r| r["value"].as_str().unwrap().to_string()),
        );
        match body["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    assert_eq!(seen, values);
    for bad in ["limit=0", "limit=1001", "limit=x", "after=zz"] {
        let r = app.get(&format!("{base}&{bad}"), key).await;
        let p = r.problem(400, "invalid_query");
        assert!(bad.starts_with(p["field"].as_str().unwrap()), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_read_a_page_at_a_time_sqlite() {
    records_are_read_a_page_at_a_time(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_read_a_page_at_a_time_postgres() {
    records_are_read_a_page_at_a_time(Backend::Postgres).await;
}
