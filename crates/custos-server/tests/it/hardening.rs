//! What a caller can make the server keep or send back: made-up methods grow neither the
//! metrics nor the log; names longer than any id are refused short, before any lookup, and a
//! name that is quoted is quoted short and escaped (issue 10, findings 3 and 6).

use serde_json::json;

use crate::support::{NOBODY, NOTICE, Response, TestApp};

/// A problem answer that carries nothing of what was sent at length: small, and without a
/// NUL byte, raw or escaped.
#[track_caller]
fn short(r: &Response) {
    assert!(
        r.body.len() < 2048,
        "{} bytes: {:.300}",
        r.body.len(),
        r.body
    );
    assert!(
        !r.body.contains('\0') && !r.body.contains("\\u0000"),
        "{:.300}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_grow_neither_the_metrics_nor_the_log() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    // Every label the requests below can give, once, before measuring.
    for path in ["/healthz", "/nowhere"] {
        app.raw(
            format!("BREW {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
    }
    app.get("/metrics", key).await;
    let before = app.get("/metrics", key).await.body.len();
    let long = "X".repeat(50_000);
    let mut methods: Vec<String> = (0..300).map(|i| format!("MADEUP{i}")).collect();
    methods.extend([long.clone(), format!("{long}Y")]);
    for (i, method) in methods.iter().enumerate() {
        let path = if i % 2 == 0 { "/healthz" } else { "/nowhere" };
        let r = app
            .raw(
                format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        assert!(
            [404, 405].contains(&r.status),
            "{method:.20} {path}: {}",
            r.status
        );
    }
    let m = app.get("/metrics", key).await.body;
    // The counts grow by a few digits; no series is added.
    assert!(
        m.len() < before + 256,
        "metrics grew from {before} to {} bytes",
        m.len()
    );
    assert!(!m.contains("MADEUP") && !m.contains("XXXX"), "{m}");
    assert!(
        m.contains(r#"custos_http_requests_total{route="/healthz",method="other",status="4xx"}"#),
        "{m}"
    );
    assert!(
        m.contains(r#"custos_http_requests_total{route="unmatched",method="other",status="4xx"}"#),
        "{m}"
    );
    // One line per request, each short: every field is bounded.
    let requests = app.request_lines();
    assert!(requests.len() >= methods.len(), "{} lines", requests.len());
    assert!(
        requests
            .iter()
            .filter(|l| l["span"]["method"] == "other")
            .count()
            >= methods.len()
    );
    let logs = app.logs();
    for line in logs.lines() {
        assert!(
            line.len() < 512,
            "a log line of {} bytes: {line:.300}",
            line.len()
        );
        assert!(!line.contains("MADEUP") && !line.contains("XXXX"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_longer_than_any_id_are_refused_short() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    // About a megabyte (within the body limit), with a NUL and a backtick up front.
    let huge = format!("service.meetings\0`{}", "x".repeat(1_000_000));
    let collection = |purposes: serde_json::Value, data: serde_json::Value| {
        json!({"service": "meeting-center", "role": "attendee", "purposes": purposes,
            "notice": NOTICE, "data": data})
    };
    let cases = [
        (
            collection(json!([huge]), json!({"contact.name": "N"})),
            "purposes[0]",
        ),
        (
            collection(json!(["service.meetings"]), json!({huge.clone(): "N"})),
            "data",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/subjects", key, &body).await;
        short(&r);
        assert_eq!(
            r.problem(400, "name_too_long")["field"],
            field,
            "{}",
            r.body
        );
    }
    let mut body = collection(json!(["service.meetings"]), json!({"contact.name": "N"}));
    body["role"] = json!(huge);
    let r = app.post("/v1/subjects", key, &body).await;
    short(&r);
    assert_eq!(r.problem(400, "name_too_long")["field"], "role");
    // A decision for many categories, one of them far too long.
    let r = app
        .post(
            "/v1/decisions",
            key,
            &json!({"subject": NOBODY, "purpose": "service.meetings",
                "categories": ["contact.name", huge]}),
        )
        .await;
    short(&r);
    assert_eq!(r.problem(400, "name_too_long")["field"], "categories[1]");
    // In a query string too (within the longest target the server answers, 8 KiB).
    let long = "x".repeat(4_000);
    for (query, field) in [
        (format!("purpose={long}"), "purpose"),
        (
            format!("purpose=service.meetings&categories=contact.name,{long}"),
            "categories",
        ),
        (
            format!("purpose=service.meetings&recipient={long}"),
            "recipient",
        ),
    ] {
        let r = app
            .get(&format!("/v1/subjects/{NOBODY}?{query}"), key)
            .await;
        short(&r);
        assert_eq!(
            r.problem(400, "name_too_long")["field"],
            field,
            "{}",
            r.body
        );
    }
    // A field or parameter no route takes is named short.
    let mut body = collection(json!(["service.meetings"]), json!({"contact.name": "N"}));
    body[format!("{huge}z")] = json!(1);
    let r = app.post("/v1/subjects", key, &body).await;
    short(&r);
    r.problem(400, "unknown_field");
    let r = app
        .get(
            &format!("/v1/subjects/{NOBODY}?purpose=service.meetings&{long}=1"),
            key,
        )
        .await;
    short(&r);
    r.problem(400, "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_name_is_quoted_short_and_escaped() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    // Within the bound, so the policy answers: it quotes a short prefix, escaped.
    let odd = format!("service.meetings\0`{}", "y".repeat(100));
    let r = app
        .post(
            "/v1/subjects",
            key,
            &json!({"service": "meeting-center", "role": "attendee",
                "purposes": [odd], "notice": NOTICE, "data": {"contact.name": "N"}}),
        )
        .await;
    short(&r);
    let p = r.problem(422, "unknown_purpose");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("`service.meetings\\u{0}\\`yyyy"),
        "{detail}"
    );
    assert!(!detail.contains(&"y".repeat(50)), "{detail}");
    let odd = format!("contact.\n{}", "z".repeat(100));
    let r = app
        .post(
            "/v1/subjects",
            key,
            &json!({"service": "meeting-center", "role": "attendee",
                "purposes": ["service.meetings"], "notice": NOTICE, "data": {odd: "N"}}),
        )
        .await;
    short(&r);
    let p = r.problem(422, "unknown_category");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("`contact.\\u{a}zzz"), "{detail}");
    assert!(
        !detail.contains('\n') && !detail.contains(&"z".repeat(50)),
        "{detail}"
    );
}
