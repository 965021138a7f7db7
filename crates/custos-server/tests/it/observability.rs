//! Issue 11: what the server tells its operator, and how it treats slow clients — one JSON log
//! line per request under the id it answers with, metrics an independent Prometheus parser
//! reads, gzip where it pays, the request deadline, the header read timeout and the shutdown
//! deadline.

use std::io::Read as _;
use std::time::{Duration, Instant};

use custos_server::Config;
use prom_text_format_parser::{Metric, Scrape, Type, ValueType};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{NOTICE, TestApp};

/// The log line of the request answered with `id`; there must be exactly one.
#[track_caller]
fn line_of(app: &TestApp, id: &str) -> Json {
    let lines: Vec<Json> = app
        .request_lines()
        .into_iter()
        .filter(|l| l["span"]["request_id"] == id)
        .collect();
    assert_eq!(lines.len(), 1, "lines of request {id}: {lines:?}");
    lines.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_json_line_under_the_id_it_answers_with() {
    let app = TestApp::spawn().await;
    let key = app.key("meeting-center").to_string();
    let subject = app.attendee("Ada", "ada@example.com").await;
    // A client's own request id is replaced by the server's, in the answer and in the log.
    let forged = "forged-request-id";
    let read = app
        .raw(
            format!(
                "GET /v1/subjects/{subject}?purpose=service.meetings HTTP/1.1\r\nHost: t\r\n\
                 Connection: close\r\nAuthorization: Bearer {key}\r\nX-Request-Id: {forged}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let answers = [
        (
            read,
            "/v1/subjects/{id}",
            "GET",
            200,
            Some("meeting-center"),
        ),
        (
            app.get("/healthz", None).await,
            "/healthz",
            "GET",
            200,
            None,
        ),
        (
            app.get("/nowhere", None).await,
            "unmatched",
            "GET",
            404,
            None,
        ),
        (
            app.raw(b"BREW /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await,
            "/healthz",
            "other",
            405,
            None,
        ),
    ];
    let mut ids = std::collections::HashSet::new();
    for (r, route, method, status, accessor) in &answers {
        let id = r.header("x-request-id").expect("every answer has an id");
        let uuid = uuid::Uuid::try_parse(id).unwrap();
        assert_eq!(uuid.get_version_num(), 7, "{id}");
        assert_eq!(uuid.hyphenated().to_string(), id);
        assert!(ids.insert(id.to_string()), "{id} answered twice");
        let line = line_of(&app, id);
        let span = &line["span"];
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["message"], "answered", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
        assert_eq!(span["route"], *route, "{line}");
        assert_eq!(span["method"], *method, "{line}");
        assert_eq!(span["status"], *status, "{line}");
        assert!(span["ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
        match accessor {
            Some(a) => assert_eq!(span["accessor"], *a, "{line}"),
            None => assert!(span.get("accessor").is_none(), "{line}"),
        }
    }
    let logs = app.logs();
    assert!(!logs.contains(forged), "{logs}");
    assert!(!logs.contains(&subject) && !logs.contains("Ada"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_its_time_is_a_503_problem_logged_as_a_warning() {
    // Warnings only: the request's fields are still on its line.
    let app = TestApp::spawn_filtered(
        Config {
            request_timeout: Duration::from_millis(300),
            ..Config::default()
        },
        "warn",
    )
    .await;
    assert_eq!(app.get("/healthz", None).await.status, 200);
    // A body announced and never sent: the request cannot finish in time.
    let raw = format!(
        "POST /v1/subjects HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.key("meeting-center")
    );
    let r = app.raw(raw.as_bytes()).await;
    let p = r.problem(503, "request_timeout");
    assert!(p["detail"].as_str().unwrap().contains("300ms"), "{p}");
    let line = line_of(&app, r.header("x-request-id").unwrap());
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["span"]["status"], 503, "{line}");
    assert_eq!(line["span"]["accessor"], "meeting-center", "{line}");
    assert_eq!(line["span"]["route"], "/v1/subjects", "{line}");
    // The answered health check was not worth a line.
    assert_eq!(app.log_lines().len(), 1, "{}", app.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_closed_within_the_header_timeout() {
    let app = TestApp::spawn_with(Config {
        header_read_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    // Closed (or reset) by the server, not by this timeout.
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let took = start.elapsed();
    assert!(
        closed.is_ok(),
        "the connection is still open after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!String::from_utf8_lossy(&buf).contains("200"), "{buf:?}");
    // Meanwhile, and after, others are served.
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_within_its_deadline_whatever_clients_hold_open() {
    let mut app = TestApp::spawn_with(Config {
        header_read_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(60),
        shutdown_timeout: Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    // Connected and silent; half a request head; a request waiting for its body.
    let idle = TcpStream::connect(app.addr).await.unwrap();
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut waiting = TcpStream::connect(app.addr).await.unwrap();
    let raw = format!(
        "POST /v1/subjects HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.key("meeting-center")
    );
    waiting.write_all(raw.as_bytes()).await.unwrap();
    // And an idle kept-alive connection that has been answered once.
    let mut kept = TcpStream::connect(app.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the server stopped within 5 s");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    for mut s in [idle, half, waiting, kept] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "a connection is still open after the shutdown"
        );
    }
    assert!(tokio::net::TcpStream::connect(app.addr).await.is_err());
    let lines = app.log_lines();
    assert!(
        lines.iter().any(|l| l["level"] == "WARN"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("deadline"))),
        "{}",
        app.logs()
    );
}

/// Sends a raw request; returns the head and the body, de-chunked.
async fn raw_bytes(app: &TestApp, request: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(buf[..at].to_vec())
        .unwrap()
        .to_lowercase();
    let body = buf[at + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        (head, dechunk(&body))
    } else {
        (head, body)
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&b[..eol]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

fn get_gzip(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_are_gzipped_for_who_accepts_it_and_tiny_ones_never() {
    let app = TestApp::spawn().await;
    for path in ["/openapi.json", "/privacy"] {
        let plain = app.get(path, None).await;
        assert_eq!(plain.status, 200);
        assert!(plain.header("content-encoding").is_none(), "{path}");
        let (head, body) = raw_bytes(&app, &get_gzip(path)).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(
            head.contains("\r\ncontent-encoding: gzip"),
            "{path}: {head}"
        );
        assert!(head.contains("\r\nx-request-id: "), "{head}");
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain.body, "{path}");
        assert!(
            body.len() * 3 < plain.body.len(),
            "{path}: {} bytes gzipped from {}",
            body.len(),
            plain.body.len()
        );
    }
    let (head, body) = raw_bytes(&app, &get_gzip("/healthz")).await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(body, br#"{"status":"ok"}"#);
}

/// The metric family `name` of a scrape.
#[track_caller]
fn family<'s>(scrape: &'s Scrape, name: &str) -> &'s Metric {
    scrape
        .metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The value of the one sample of `metric` with exactly these labels (in this order).
#[track_caller]
fn value(metric: &Metric, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = metric
        .samples
        .iter()
        .filter(|s| {
            s.value.value_type == ValueType::Sample
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|(l, (k, v))| l.key == *k && l.value == *v)
        })
        .collect();
    assert_eq!(found.len(), 1, "{} {labels:?}: {found:?}", metric.name);
    found[0].value.value.as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_are_prometheus_text_an_independent_parser_reads() {
    let app = TestApp::spawn().await;
    let key = Some(app.key("meeting-center"));
    let id = app.attendee("Ada", "ada@example.com").await;
    let r = app
        .get(&format!("/v1/subjects/{id}?purpose=service.meetings"), key)
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .post(
            "/v1/subjects",
            key,
            &serde_json::json!({"service": "meeting-center", "role": "attendee",
                "purposes": ["service.meetings"], "notice": NOTICE, "data": {}}),
        )
        .await;
    assert_eq!(r.status / 100, 4);
    app.raw(b"BREW /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    let r = app.get("/metrics", key).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let scrape = Scrape::parse(&r.body).unwrap_or_else(|e| panic!("{e:?}: {}", r.body));
    // Nothing the parser skipped: printed back, the scrape is the exposition.
    assert_eq!(scrape.to_string(), r.body);

    let requests = family(&scrape, "custos_http_requests_total");
    assert_eq!(requests.kind, Type::Counter);
    assert!(requests.help_desc.is_some());
    for (route, method, status) in [
        ("/v1/subjects", "POST", "2xx"),
        ("/v1/subjects", "POST", "4xx"),
        ("/v1/subjects/{id}", "GET", "2xx"),
        ("/healthz", "other", "4xx"),
    ] {
        let labels = [("route", route), ("method", method), ("status", status)];
        assert_eq!(value(requests, &labels), 1.0, "{labels:?}");
    }
    let decisions = family(&scrape, "custos_decisions_total");
    assert_eq!(decisions.kind, Type::Counter);
    let permit = [("kind", "read"), ("effect", "permit")];
    assert_eq!(value(decisions, &permit), 1.0);
    let none = [("kind", "decide"), ("effect", "deny")];
    assert_eq!(value(decisions, &none), 0.0);
    // Histograms: cumulative buckets ending in +Inf, which is their count.
    for (name, at_least) in [
        ("custos_http_request_duration_seconds", 4.0),
        ("custos_ledger_batch_size", 2.0),
    ] {
        let h = family(&scrape, name);
        assert_eq!(h.kind, Type::Histogram, "{name}");
        assert!(h.help_desc.is_some(), "{name}");
        let buckets: Vec<(f64, f64)> = h
            .samples
            .iter()
            .filter(|s| s.value.value_type == ValueType::Sample)
            .map(|s| {
                assert_eq!(s.labels.len(), 1);
                let le = &s.labels[0];
                assert_eq!(le.key, "le");
                let bound = match le.value.as_str() {
                    "+Inf" => f64::INFINITY,
                    v => v.parse().unwrap(),
                };
                (bound, s.value.value.as_f64())
            })
            .collect();
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{name}: {buckets:?}"
        );
        let (bound, all) = *buckets.last().unwrap();
        assert!(
            bound.is_infinite() && all >= at_least,
            "{name}: {buckets:?}"
        );
        let count = h
            .samples
            .iter()
            .find(|s| s.value.value_type == ValueType::Count)
            .unwrap();
        assert_eq!(count.value.value.as_f64(), all, "{name}");
    }
    assert!(!r.body.contains(&id) && !r.body.contains("Ada"));
}
