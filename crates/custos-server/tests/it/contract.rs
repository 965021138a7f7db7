//! The keyless routes and the contract: OpenAPI lists every route served, the notice fetches
//! nothing, metrics carry no personal information.

use serde_json::json;

use crate::support::{Backend, TestApp};

/// What the router serves, probed below; `{id}` is replaced by a subject id.
const SERVED: &[(&str, &str)] = &[
    ("POST", "/v1/subjects"),
    ("GET", "/v1/subjects/{id}"),
    ("POST", "/v1/subjects/{id}/data"),
    ("POST", "/v1/subjects/{id}/records"),
    ("GET", "/v1/subjects/{id}/records"),
    ("POST", "/v1/subjects/{id}/consents"),
    ("GET", "/v1/subjects/{id}/consents"),
    ("GET", "/v1/subjects/{id}/preferences"),
    ("PUT", "/v1/subjects/{id}/preferences"),
    ("POST", "/v1/decisions"),
    ("POST", "/v1/instruments"),
    ("GET", "/v1/instruments/{id}"),
    ("POST", "/v1/people/sign-in"),
    ("POST", "/v1/people/sign-in/verify"),
    ("POST", "/v1/people/sign-out"),
    ("GET", "/v1/me"),
    ("GET", "/v1/me/export"),
    ("GET", "/v1/me/ledger"),
    ("PATCH", "/v1/me/data"),
    ("POST", "/v1/me/deactivate"),
    ("POST", "/v1/me/erase"),
    ("GET", "/v1/me/consents"),
    ("POST", "/v1/me/consents"),
    ("GET", "/v1/me/preferences"),
    ("PUT", "/v1/me/preferences"),
    ("POST", "/v1/requests"),
    ("GET", "/v1/requests"),
    ("GET", "/v1/requests/{id}"),
    ("POST", "/v1/requests/{id}/verify"),
    ("POST", "/v1/requests/{id}/complete"),
    ("POST", "/v1/requests/{id}/refuse"),
    ("GET", "/v1/ledger/verify"),
    ("GET", "/v1/ledger/checkpoint"),
    ("GET", "/v1/ledger/key"),
    ("GET", "/v1/ledger/proof/inclusion"),
    ("GET", "/v1/ledger/proof/consistency"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/privacy"),
    ("GET", "/.well-known/jwks.json"),
    ("POST", "/v1/inbound-mail"),
    ("POST", "/v1/referrals"),
    ("POST", "/v1/mailings"),
    ("GET", "/v1/mailings/{id}"),
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
    ("GET", "/consent.js"),
    ("POST", "/v1/cookie-consents"),
    ("GET", "/.well-known/gpc.json"),
    ("GET", "/b.gif"),
    ("POST", "/v1/telemetry"),
    ("GET", "/v1/analytics/pages"),
    ("GET", "/v1/analytics/gpc"),
    ("GET", "/v1/analytics/telemetry"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_served_and_nothing_else() {
    let app = TestApp::spawn().await;
    let r = app.get("/openapi.json", None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = SERVED
        .iter()
        .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    let mut listed: Vec<(String, String)> = custos_server::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
        .collect();
    listed.sort();
    assert_eq!(listed, served);
    // Each is really served: neither 404 nor 405.
    let id = app.attendee("Ada", "ada@example.com").await;
    for (method, path) in SERVED {
        let r = app
            .send(method, &path.replace("{id}", &id), None, Some("{}"))
            .await;
        // A 404 of the route itself (an unsubscribe token that is not one) is served; the
        // router's own is `not_found`.
        let unrouted = r.status == 405 || (r.status == 404 && r.body.contains("\"not_found\""));
        assert!(!unrouted, "{method} {path}: {}", r.status);
    }
    // Every problem code is in the document.
    let codes = &doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"];
    for (code, _, _) in custos_server::problem::CODES {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_notice_is_self_contained_and_keyless() {
    let app = TestApp::spawn().await;
    let r = app.get("/privacy", None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'")
    );
    let html = r.body.to_lowercase();
    assert!(html.contains("webex"));
    for external in [
        "src=", "<link", "<script", "@import", "url(", "<iframe", "<img",
    ] {
        assert!(!html.contains(external), "the notice has `{external}`");
    }
    assert_eq!(
        app.get("/healthz", None).await.json(),
        json!({"status": "ok"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_routes_and_decisions() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    let id = app.attendee("Ada", "ada@example.com").await;
    app.get(&format!("/v1/subjects/{id}?purpose=service.meetings"), key)
        .await;
    app.get(&format!("/v1/subjects/{id}?purpose=support"), key)
        .await;
    let r = app.get("/metrics", key).await;
    assert_eq!(r.status, 200);
    let m = r.body;
    assert!(
        m.contains(
            r#"custos_http_requests_total{route="/v1/subjects/{id}",method="GET",status="2xx"} 2"#
        ),
        "{m}"
    );
    assert!(
        m.contains(
            r#"custos_http_requests_total{route="/v1/subjects",method="POST",status="2xx"} 1"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"custos_decisions_total{kind="read",effect="permit"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"custos_decisions_total{kind="read",effect="deny"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("custos_http_request_duration_seconds_bucket{le=\"+Inf\"}"),
        "{m}"
    );
    // The ledger's group commits by size: the collection and the two reads, at least.
    // (A sample's value is a float in the text format: `7.0`.)
    let sum: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("custos_ledger_batch_size_sum "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ledger batch sizes in {m}"));
    assert!(sum >= 3.0, "{m}");
    assert!(
        m.contains("custos_ledger_batch_size_bucket{le=\"1\"}"),
        "{m}"
    );
    assert!(!m.contains(&id) && !m.contains("Ada"));
    // The access log names the route template and the accessor, never the subject.
    let logs = app.logs();
    assert!(
        app.request_lines()
            .iter()
            .any(|l| l["span"]["route"] == "/v1/subjects/{id}"
                && l["span"]["method"] == "GET"
                && l["span"]["status"] == 200
                && l["span"]["accessor"] == "meeting-center"),
        "{logs}"
    );
    assert!(!logs.contains(&id), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_and_the_server_stops() {
    let mut app = TestApp::spawn().await;
    let _ = app.attendee("Ada", "ada@example.com").await;
    app.stop().await;
    assert!(tokio::net::TcpStream::connect(app.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_its_time_is_answered_503() {
    let app = TestApp::spawn_with(custos_server::Config {
        request_timeout: std::time::Duration::from_millis(300),
        ..custos_server::Config::default()
    })
    .await;
    // A body announced and never sent: the request cannot finish in time.
    let raw = format!(
        "POST /v1/subjects HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.key("meeting-center")
    );
    let r = app.raw(raw.as_bytes()).await;
    r.problem(503, "request_timeout");
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_answers_nothing_internal_and_is_logged_under_its_request_id() {
    let app = TestApp::spawn_on(Backend::Postgres).await;
    let key = app.key("meeting-center").to_string();
    app.kill_database();
    let r = app.get("/v1/ledger/verify", Some(&key)).await;
    let p = r.problem(500, "internal_error");
    let body = r.body.to_lowercase();
    for internal in ["database", "postgres", "storage", "sql", "connection"] {
        assert!(
            !body.contains(internal),
            "the answer says `{internal}`: {}",
            r.body
        );
    }
    assert!(p.get("field").is_none());
    let id = r.header("x-request-id").unwrap().to_string();
    let line = app
        .request_lines()
        .into_iter()
        .find(|l| l["span"]["request_id"] == id)
        .unwrap_or_else(|| panic!("no log line for request {id}: {}", app.logs()));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["span"]["status"], 500, "{line}");
    assert!(
        line["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("storage_failure")),
        "{line}"
    );
}

/// Issue 11: a target longer than any request of the API is answered 414 problem+json, as
/// the document says, on any route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_too_long_is_a_problem() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(custos_server::pages::MAX_URI_BYTES);
    for path in [
        format!("/healthz?x={long}"),
        format!("/v1/subjects/{long}"),
        format!("/{long}"),
    ] {
        let r = app.get(&path, Some(app.key("meeting-center"))).await;
        r.problem(414, "uri_too_long");
        assert!(r.body.len() < 1024, "{}", r.body);
    }
    let doc = app.get("/openapi.json", None).await.json();
    assert!(
        doc["paths"]["/healthz"]["get"]["responses"]["414"].is_object(),
        "{doc}"
    );
}

/// Every code the vault and the policy can refuse with is in the one table (so it has a
/// status and a title, and `/openapi.json` lists it): a code missing there was answered
/// with a code the document did not know.
#[test]
fn every_code_the_vault_and_policy_raise_is_in_the_table() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    let mut dirs = vec![
        root.join("custos-vault/src"),
        root.join("custos-policy/src"),
    ];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let table: Vec<&str> = custos_server::problem::CODES
        .iter()
        .map(|(c, _, _)| *c)
        .collect();
    let mut missing = Vec::new();
    for text in &files {
        for marker in ["Error::invalid(", "code: \"", "err("] {
            for (i, _) in text.match_indices(marker) {
                let rest = text[i + marker.len()..].trim_start();
                let rest = rest.strip_prefix('"').unwrap_or(rest);
                let code: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                let quoted = rest.chars().nth(code.len()) == Some('"');
                if code.len() > 3 && quoted && !table.contains(&code.as_str()) {
                    missing.push(code);
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "codes missing from CODES: {missing:?}");
}
