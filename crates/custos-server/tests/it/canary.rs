//! A planted canary never appears in plaintext in the data directory, the server's (JSON) logs,
//! the metrics, or an error answer.

use serde_json::json;

use crate::support::{NOTICE, TestApp};

const CANARY: &str = "CANARY-7f3a9c-do-not-leak";

fn assert_absent(haystack: &[u8], what: &str) {
    let needle = CANARY.as_bytes();
    assert!(
        !haystack.windows(needle.len()).any(|w| w == needle),
        "the canary is in {what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_stays_out_of_files_logs_metrics_and_errors() {
    let mut app = TestApp::spawn().await;
    let key = Some(app.key("connect"));
    let email = format!("{CANARY}@example.com");
    let r = app
        .post(
            "/v1/subjects",
            key,
            &json!({"service": "connect", "role": "user", "purposes": ["service.connect"],
                "notice": NOTICE, "data": {"contact.name": CANARY, "contact.email": email,
                "presence.status": CANARY}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["subject"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/v1/subjects/{id}/records"),
            key,
            &json!({"collection": "chat_messages", "purposes": ["service.connect"], "value": CANARY}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // It comes back for the purpose it was collected for…
    let r = app
        .get(&format!("/v1/subjects/{id}?purpose=service.connect"), key)
        .await;
    assert_eq!(r.json()["data"]["contact.name"], CANARY);
    // …and nowhere else. (A name the caller sent, such as an unknown category, may be named
    // back to it: that is its own input, not a stored value.)
    let answers = [
        app.get(&format!("/v1/subjects/{id}?purpose=collaboration"), key)
            .await,
        app.get(
            &format!("/v1/subjects/{id}?purpose=service.connect"),
            Some(app.key("marketing")),
        )
        .await,
        app.post(
            "/v1/subjects",
            key,
            &json!({"service": "connect", "role": "user",
            "purposes": ["service.connect"], "notice": NOTICE, "age": CANARY,
            "data": {"contact.name": CANARY}}),
        )
        .await,
        app.post(
            "/v1/subjects",
            key,
            &json!({"service": "connect", "role": "user",
            "purposes": ["service.connect"], "notice": NOTICE,
            "data": {"contact.name": CANARY, "contact.phone": [CANARY]}}),
        )
        .await,
        app.send(
            "POST",
            "/v1/subjects",
            key,
            Some(&format!("{{\"service\": \"{CANARY}")),
        )
        .await,
        app.post(
            "/v1/decisions",
            key,
            &json!({"subject": id, "purpose": "service.connect"}),
        )
        .await,
        app.get(
            &format!("/v1/subjects/{id}/records?collection=chat_messages&purpose=collaboration"),
            key,
        )
        .await,
        app.get("/metrics", key).await,
    ];
    for a in &answers {
        assert_absent(a.body.as_bytes(), &format!("an answer: {}", a.body));
    }
    // Every request was logged, and none of it says the canary.
    assert!(app.request_lines().len() >= answers.len() + 3);
    assert_absent(app.logs().as_bytes(), "the logs");
    for (path, bytes) in app.data_files() {
        assert_absent(&bytes, &path.display().to_string());
    }
    // After a graceful stop too (the WAL checkpointed into the database).
    app.stop().await;
    for (path, bytes) in app.data_files() {
        assert_absent(&bytes, &path.display().to_string());
    }
}
