//! Collection, purpose-limited reads, records and decisions, over HTTP.

use serde_json::json;

use crate::support::{Backend, NOBODY, NOTICE, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_then_read_for_the_purpose_then_refused_for_another_with_the_reason() {
    let app = TestApp::spawn().await;
    let key = app.key("meeting-center");
    let subject = app.attendee("Ada Lovelace", "ada@example.com").await;

    let r = app
        .get(
            &format!("/v1/subjects/{subject}?purpose=service.meetings"),
            Some(key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(b["subject"], subject.as_str());
    assert_eq!(b["purpose"], "service.meetings");
    assert_eq!(b["effect"], "permit");
    assert_eq!(
        b["data"],
        json!({"contact.name": "Ada Lovelace", "contact.email": "ada@example.com"})
    );
    assert_eq!(b["withheld"], json!({}));

    // Only the categories asked for.
    let r = app
        .get(
            &format!("/v1/subjects/{subject}?purpose=service.meetings&categories=contact.name"),
            Some(key),
        )
        .await;
    assert_eq!(r.json()["data"], json!({"contact.name": "Ada Lovelace"}));

    // Support is one of meeting-center's purposes, but Ada's data was not collected for it.
    let r = app
        .get(
            &format!("/v1/subjects/{subject}?purpose=support"),
            Some(key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(b["effect"], "deny");
    assert_eq!(b["data"], json!({}));
    assert_eq!(
        b["withheld"],
        json!({"contact.name": "not_collected_for_purpose", "contact.email": "not_collected_for_purpose"})
    );
    assert!(!r.body.contains("Ada"));

    // Collecting more, for support, permits it.
    let r = app
        .post(
            &format!("/v1/subjects/{subject}/data"),
            Some(key),
            &json!({"service": "meeting-center", "role": "attendee", "purposes": ["support"],
                    "notice": NOTICE, "data": {"contact.name": "Ada Lovelace"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app
        .get(
            &format!("/v1/subjects/{subject}?purpose=support"),
            Some(key),
        )
        .await;
    let b = r.json();
    assert_eq!(b["effect"], "partial");
    assert_eq!(b["data"], json!({"contact.name": "Ada Lovelace"}));
    assert_eq!(
        b["withheld"],
        json!({"contact.email": "not_collected_for_purpose"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_name_the_field_and_the_code() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    let base = json!({"service": "meeting-center", "role": "attendee",
        "purposes": ["service.meetings"], "notice": NOTICE, "data": {"contact.name": "N"}});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (without("service"), 400, "missing_field", "service"),
        (with("age", json!("eleven")), 400, "invalid_field", "age"),
        (
            with("purposes", json!(["service.meetings", 3])),
            400,
            "invalid_field",
            "purposes[1]",
        ),
        (
            with("data", json!({"contact.name": 5})),
            400,
            "invalid_field",
            "data.contact.name",
        ),
        (with("servce", json!("x")), 400, "unknown_field", "servce"),
        (
            with("service", json!("nope")),
            422,
            "unknown_service",
            "service",
        ),
        (with("role", json!("pilot")), 422, "unknown_role", "role"),
        (
            with(
                "purposes",
                json!(["service.meetings", "marketing.partners"]),
            ),
            422,
            "purpose_not_stated_for_role",
            "purposes[1]",
        ),
        (
            with("data", json!({"contact.phone": "555"})),
            422,
            "category_not_declared_for_role",
            "data.contact.phone",
        ),
        (
            with("notice", json!("1999-01-01")),
            422,
            "unknown_notice_version",
            "notice",
        ),
        (
            with(
                "data",
                json!({"contact.name": "Ann", "contact.email": " \t "}),
            ),
            422,
            "invalid_value",
            "data.contact.email",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = app.post("/v1/subjects", key, &body).await;
        let p = r.problem(status, code);
        assert_eq!(p["field"], field, "{}", r.body);
        if status == 422 {
            assert_eq!(p["errors"][0]["field"], field, "{}", r.body);
        }
    }
    // Several refusals at once: each is listed.
    let r = app
        .post(
            "/v1/subjects",
            key,
            &with("data", json!({"contact.phone": "1", "contact.title": "2"})),
        )
        .await;
    let p = r.problem(422, "category_not_declared_for_role");
    assert_eq!(p["errors"].as_array().unwrap().len(), 2);
    // Under the minimum age: refused.
    app.post("/v1/subjects", key, &with("age", json!(12)))
        .await
        .problem(422, "subject_under_minimum_age");

    app.send("POST", "/v1/subjects", key, Some("{not json"))
        .await
        .problem(400, "invalid_json");
    app.send("POST", "/v1/subjects", key, Some("[1]"))
        .await
        .problem(400, "invalid_json");
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    app.send("POST", "/v1/subjects", key, Some(&huge))
        .await
        .problem(413, "body_too_large");

    let r = app
        .get("/v1/subjects/not-a-uuid?purpose=service.meetings", key)
        .await;
    assert_eq!(r.problem(400, "invalid_subject_id")["field"], "id");
    app.get(
        &format!("/v1/subjects/{NOBODY}?purpose=service.meetings"),
        key,
    )
    .await
    .problem(404, "subject_not_found");
    let r = app.get(&format!("/v1/subjects/{NOBODY}"), key).await;
    assert_eq!(r.problem(422, "purpose_required")["field"], "purpose");
    let r = app
        .get(
            &format!("/v1/subjects/{NOBODY}?purpose=service.meetings&purpse=x"),
            key,
        )
        .await;
    assert_eq!(r.problem(400, "invalid_query")["field"], "purpse");
    app.get(&format!("/v1/subjects/{NOBODY}?purpose=no.such"), key)
        .await
        .problem(422, "unknown_purpose");
    app.get("/v1/nowhere", key).await.problem(404, "not_found");
    app.send("DELETE", "/v1/decisions", key, Some(""))
        .await
        .problem(405, "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_appended_and_read_back_for_their_purpose_only() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("connect"));
    let r = app
        .post(
            "/v1/subjects",
            key,
            &json!({"service": "connect", "role": "user",
                "purposes": ["service.connect", "connect.presence"], "notice": NOTICE,
                "data": {"contact.name": "Cy", "contact.email": "cy@example.com",
                         "presence.status": "away"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let subject = r.json()["subject"].as_str().unwrap().to_string();
    let path = format!("/v1/subjects/{subject}/records");
    let r = app
        .post(
            &path,
            key,
            &json!({"collection": "chat_messages", "purposes": ["service.connect"], "value": "hello there"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["appended"], 1);
    assert!(r.json()["id"].is_string());
    let r = app
        .post(
            &path,
            key,
            &json!({"collection": "chat_messages", "purposes": ["service.connect"], "values": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.json()["appended"], 2, "{}", r.body);

    let r = app
        .get(
            &format!("{path}?collection=chat_messages&purpose=service.connect"),
            key,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(b["effect"], "permit");
    let values: Vec<&str> = b["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["hello there", "a", "b"]);

    // Collaboration is connect's purpose too, but the chat was not kept for it.
    let r = app
        .get(
            &format!("{path}?collection=chat_messages&purpose=collaboration"),
            key,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(b["effect"], "deny");
    assert_eq!(b["records"], json!([]));
    assert_eq!(b["withheld"], json!({"not_collected_for_purpose": 3}));

    let r = app
        .post(
            &path,
            key,
            &json!({"collection": "no_such", "purposes": ["service.connect"], "value": "x"}),
        )
        .await;
    r.problem(422, "unknown_collection");
    let r = app
        .post(
            &path,
            key,
            &json!({"collection": "chat_messages", "purposes": ["service.connect"]}),
        )
        .await;
    assert_eq!(r.problem(400, "missing_field")["field"], "value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_answer_without_data_and_are_ledgered() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    let subject = app.attendee("Ada Lovelace", "ada@example.com").await;
    let before = app.get("/v1/ledger/verify", key).await.json();
    assert_eq!(before["ok"], true);

    let r = app
        .post(
            "/v1/decisions",
            key,
            &json!({"subject": subject, "purpose": "service.meetings"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["effect"], "permit");
    assert_eq!(d["permitted"], json!(["contact.name", "contact.email"]));
    assert_eq!(d["ground"], "collected_for_purpose");
    assert!(
        !r.body.contains("Ada"),
        "a decision carries no data: {}",
        r.body
    );

    let r = app
        .post(
            "/v1/decisions",
            key,
            &json!({"subject": subject, "purpose": "support", "categories": ["contact.email"]}),
        )
        .await;
    let d = r.json();
    assert_eq!(d["effect"], "deny");
    assert_eq!(
        d["withheld"],
        json!({"contact.email": "not_collected_for_purpose"})
    );

    let after = app.get("/v1/ledger/verify", key).await.json();
    assert_eq!(after["ok"], true);
    assert!(after["entries"].as_u64().unwrap() >= before["entries"].as_u64().unwrap() + 2);
    assert_eq!(after["head"].as_str().unwrap().len(), 64);

    app.post(
        "/v1/decisions",
        key,
        &json!({"subject": NOBODY, "purpose": "service.meetings"}),
    )
    .await
    .problem(404, "subject_not_found");
    let r = app
        .post(
            "/v1/decisions",
            key,
            &json!({"subject": "x", "purpose": "service.meetings"}),
        )
        .await;
    assert_eq!(r.problem(400, "invalid_subject_id")["field"], "subject");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_runs_on_postgresql_too() {
    let app = TestApp::spawn_on(Backend::Postgres).await;
    let key = Some(app.key("meeting-center"));
    let subject = app.attendee("Ada Lovelace", "ada@example.com").await;
    let r = app
        .get(
            &format!("/v1/subjects/{subject}?purpose=service.meetings"),
            key,
        )
        .await;
    assert_eq!(
        r.json()["data"]["contact.name"],
        "Ada Lovelace",
        "{}",
        r.body
    );
    let r = app
        .get(&format!("/v1/subjects/{subject}?purpose=support"), key)
        .await;
    assert_eq!(r.json()["effect"], "deny", "{}", r.body);
    app.get(&format!("/v1/subjects/{subject}?purpose=marketing"), key)
        .await
        .problem(403, "purpose_not_allowed_for_accessor");
    let v = app.get("/v1/ledger/verify", key).await.json();
    assert_eq!(v["ok"], true);
}

/// Issue 11: a body is JSON by its content type, each key once, and what the document
/// allows (`age: 89.0` is a JSON Schema integer) the server takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_json_objects_with_each_key_once() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    let body = r#"{"service":"meeting-center","role":"attendee","purposes":["service.meetings"],"notice":"2010-04-24","data":{"contact.name":"N"}}"#;
    let raw = |content_type: Option<&str>, body: &str| {
        let mut req = format!(
            "POST /v1/subjects HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n",
            app.key("meeting-center"),
            body.len()
        );
        if let Some(t) = content_type {
            req.push_str(&format!("Content-Type: {t}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        req
    };
    for wrong in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        app.raw(raw(wrong, body).as_bytes())
            .await
            .problem(415, "unsupported_media_type");
    }
    for right in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        let r = app.raw(raw(Some(right), body).as_bytes()).await;
        assert_eq!(r.status, 201, "{right}: {}", r.body);
    }
    // A key given twice: refused, naming it (serde would keep the last).
    let twice = r#"{"service":"meeting-center","service":"website","role":"attendee","purposes":["service.meetings"],"notice":"2010-04-24","data":{"contact.name":"N"}}"#;
    let p = app
        .send("POST", "/v1/subjects", key, Some(twice))
        .await
        .problem(400, "duplicate_field");
    assert_eq!(p["field"], "service", "{p}");
    let twice = r#"{"service":"meeting-center","role":"attendee","purposes":["service.meetings"],"notice":"2010-04-24","data":{"contact.name":"N","contact.name":"M"}}"#;
    let p = app
        .send("POST", "/v1/subjects", key, Some(twice))
        .await
        .problem(400, "duplicate_field");
    assert_eq!(p["field"], "data", "{p}");
    // A purpose listed twice: refused (the document says `uniqueItems`, and bounds the list
    // by the number of purposes the policy declares).
    let twice = r#"{"service":"meeting-center","role":"attendee","purposes":["service.meetings","service.meetings"],"notice":"2010-04-24","data":{"contact.name":"N"}}"#;
    let p = app
        .send("POST", "/v1/subjects", key, Some(twice))
        .await
        .problem(400, "duplicate_item");
    assert_eq!(p["field"], "purposes", "{p}");
    // An optional field is left out, never `null` (the document does not allow it).
    let null_tenant = body.replacen("\"data\"", "\"tenant\":null,\"data\"", 1);
    let p = app
        .send("POST", "/v1/subjects", key, Some(&null_tenant))
        .await
        .problem(400, "invalid_field");
    assert_eq!(p["field"], "tenant", "{p}");
    // `89.0` is a whole number; `89.5` and `-1` are not ages; neither is quoted back.
    let with_age = |age: &str| body.replacen("\"data\"", &format!("\"age\":{age},\"data\""), 1);
    let r = app
        .send("POST", "/v1/subjects", key, Some(&with_age("89.0")))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    for bad in ["89.5", "-1", "\"eighty\"", "1e10"] {
        let r = app
            .send("POST", "/v1/subjects", key, Some(&with_age(bad)))
            .await;
        let p = r.problem(400, "invalid_field");
        assert_eq!(p["field"], "age", "{p}");
        assert!(!r.body.contains("eighty"), "{}", r.body);
    }
    // A value of the wrong type is not quoted back either.
    let r = app
        .send(
            "POST",
            "/v1/subjects",
            key,
            Some(&body.replace("\"N\"", "{\"secret\":\"ada@example.com\"}")),
        )
        .await;
    let p = r.problem(400, "invalid_field");
    assert_eq!(p["field"], "data.contact.name", "{p}");
    assert!(!r.body.contains("ada@example.com"), "{}", r.body);
    // Anything after the object.
    app.send("POST", "/v1/subjects", key, Some(&format!("{body} {{}}")))
        .await
        .problem(400, "invalid_json");
}
