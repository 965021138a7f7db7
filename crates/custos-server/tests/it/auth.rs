//! Every data route needs a valid key; a key's accessor gets only its own purposes.

use serde_json::json;

use crate::support::{NOBODY, TestApp};

/// Every route but the three public ones (`/healthz`, `/openapi.json`, `/privacy`): those that
/// touch personal information or the ledger, and `/metrics`, with a body that would
/// otherwise be valid.
fn data_routes(subject: &str) -> Vec<(&'static str, String, Option<String>)> {
    let collect = json!({"service": "meeting-center", "role": "attendee",
        "purposes": ["service.meetings"], "notice": "2010-04-24",
        "data": {"contact.name": "N"}})
    .to_string();
    vec![
        ("POST", "/v1/subjects".into(), Some(collect.clone())),
        ("GET", format!("/v1/subjects/{subject}?purpose=service.meetings"), None),
        ("POST", format!("/v1/subjects/{subject}/data"), Some(collect)),
        (
            "POST",
            format!("/v1/subjects/{subject}/records"),
            Some(json!({"collection": "meeting_attendance", "purposes": ["service.meetings"], "value": "v"}).to_string()),
        ),
        (
            "GET",
            format!("/v1/subjects/{subject}/records?collection=meeting_attendance&purpose=service.meetings"),
            None,
        ),
        (
            "POST",
            "/v1/decisions".into(),
            Some(json!({"subject": subject, "purpose": "service.meetings"}).to_string()),
        ),
        ("GET", "/v1/ledger/verify".into(), None),
        ("GET", "/v1/ledger/proof/inclusion?seq=1".into(), None),
        ("GET", "/v1/ledger/proof/consistency?from=1".into(), None),
        ("GET", "/metrics".into(), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_route_refuses_a_missing_or_wrong_key() {
    let app = TestApp::spawn().await;
    let subject = app.attendee("Ada", "ada@example.com").await;
    let wrong = format!("custos_{}", "0".repeat(64));
    for (method, path, body) in data_routes(&subject) {
        let r = app.send(method, &path, None, body.as_deref()).await;
        r.problem(401, "missing_api_key");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer"),
            "{method} {path}"
        );
        let r = app.send(method, &path, Some(&wrong), body.as_deref()).await;
        r.problem(401, "invalid_api_key");
        let r = app
            .send(method, &path, Some("nonsense"), body.as_deref())
            .await;
        r.problem(401, "invalid_api_key");
        // Another scheme is not a bearer key.
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Basic {}\r\nContent-Length: 0\r\n\r\n",
            app.key("meeting-center")
        );
        app.raw(raw.as_bytes())
            .await
            .problem(401, "invalid_api_key");
    }
    // The same routes answer with a valid key (no 401).
    for (method, path, body) in data_routes(NOBODY) {
        let r = app
            .send(
                method,
                &path,
                Some(app.key("meeting-center")),
                body.as_deref(),
            )
            .await;
        assert_ne!(r.status, 401, "{method} {path}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accessors_purpose_is_forbidden() {
    let app = TestApp::spawn().await;
    let subject = app.attendee("Ada", "ada@example.com").await;
    // Marketing may not pursue the meeting service's purpose, nor meeting-center marketing.
    for (accessor, purpose) in [
        ("marketing", "service.meetings"),
        ("meeting-center", "marketing"),
    ] {
        let r = app
            .get(
                &format!("/v1/subjects/{subject}?purpose={purpose}"),
                Some(app.key(accessor)),
            )
            .await;
        let p = r.problem(403, "purpose_not_allowed_for_accessor");
        assert_eq!(p["field"], "purpose");
        assert!(!r.body.contains("Ada"));
        let r = app
            .get(
                &format!(
                    "/v1/subjects/{subject}/records?collection=meeting_attendance&purpose={purpose}"
                ),
                Some(app.key(accessor)),
            )
            .await;
        r.problem(403, "purpose_not_allowed_for_accessor");
    }
    // The decision route answers the same denial as a decision, not an error.
    let r = app
        .post(
            "/v1/decisions",
            Some(app.key("marketing")),
            &json!({"subject": subject, "purpose": "service.meetings"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["effect"], "deny");
    assert_eq!(d["denial"], "purpose_not_allowed_for_accessor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_cannot_collect_in_another_services_name() {
    let app = TestApp::spawn().await;
    // Marketing is not Meeting Center (and pursues none of its purposes): it may not
    // collect as it.
    let r = app
        .post(
            "/v1/subjects",
            Some(app.key("marketing")),
            &json!({"service": "meeting-center", "role": "attendee",
                "purposes": ["service.meetings"], "notice": "2010-04-24",
                "data": {"contact.name": "N", "contact.email": "n@example.com"}}),
        )
        .await;
    let p = r.problem(403, "service_not_allowed_for_accessor");
    assert_eq!(p["field"], "service", "{p}");
    let codes: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["service_not_allowed_for_accessor"]);
}
