//! Transport security (C044, C074): what the policy lets cross the network only over TLS
//! (the card number; everything the Mail service collects) is refused over plain HTTP from
//! another host, ledgered, and never stored or decrypted; over TLS, from the server's own
//! host, or through a stated TLS-terminating proxy it is accepted. A forged
//! `X-Forwarded-Proto` from anyone else counts for nothing.
//!
//! "Another host" is a real listener on 127.0.0.1 whose peer addresses are replaced before the
//! server sees them ([`TestApp::spawn_remote`]), so these tests run everywhere.

use std::sync::Arc;

use custos_server::Config;
use custos_vault::{CollectionInput, LedgerEntry};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::support::{NOTICE, Response, TestApp};

/// Another host, outside any proxy range the tests state.
const REMOTE: &str = "203.0.113.7:40000";
/// A TLS-terminating proxy's address, and the range the operator states for it.
const PROXY: &str = "198.51.100.9:40000";
const PROXY_RANGE: &str = "198.51.100.0/24";

const CARD: &str = "4111111111111111";

fn order(email: &str, card: bool) -> Value {
    let mut data =
        json!({"contact.name": "Ada Card", "contact.email": email, "order.details": "1 seat"});
    if card {
        data["payment.card_number"] = json!(CARD);
    }
    json!({
        "service": "website", "role": "customer", "purposes": ["order"],
        "notice": NOTICE, "data": data,
    })
}

fn with_proxy() -> Config {
    Config {
        tls_proxy: vec![PROXY_RANGE.parse().unwrap()],
        ..Config::default()
    }
}

/// The ledger's last entry.
fn last_entry(app: &TestApp) -> LedgerEntry {
    let store = app.vault().store();
    let last = store.ledger_last_seq().unwrap();
    store.ledger_page(last, 1).unwrap().pop().unwrap()
}

/// Whether the vault holds a subject found by this email (an identifier category).
fn held(app: &TestApp, email: &str) -> bool {
    app.vault()
        .find_by_identifier("contact.email", email)
        .unwrap()
        .is_some()
}

/// A subject with a card number, collected in the vault's own process (no network).
fn customer_with_card(app: &TestApp, email: &str) -> String {
    let input = CollectionInput {
        service: "website".into(),
        role: "customer".into(),
        purposes: vec!["order".into()],
        notice: NOTICE.into(),
        data: [
            ("contact.name", "Ada Card"),
            ("contact.email", email),
            ("payment.card_number", CARD),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..CollectionInput::default()
    };
    app.vault()
        .collect("website", &input)
        .unwrap()
        .as_str()
        .to_string()
}

/// Sends raw HTTP/1.1 with extra header lines.
async fn post_with(
    app: &TestApp,
    path: &str,
    key: &str,
    headers: &[&str],
    body: &Value,
) -> Response {
    let body = body.to_string();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {key}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    app.raw(req.as_bytes()).await
}

/// Sends a request over TLS (trusting the test certificate); status and body.
async fn https(
    app: &TestApp,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let cert =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/localhost.crt");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cert).unwrap())
        .unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {key}\r\n"
    );
    if method != "GET" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    // A peer that closes without close_notify ends the read with an error after the data.
    let _ = tls.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[track_caller]
fn assert_tls_required(r: &Response, categories: &[&str]) {
    let p = r.problem(403, "tls_required");
    let detail = p["detail"].as_str().unwrap();
    for c in categories {
        assert!(detail.contains(&format!("`{c}`")), "{detail}");
    }
    assert!(
        detail.contains("--tls-cert") && detail.contains("--tls-proxy"),
        "{detail}"
    );
    assert!(!r.body.contains(CARD), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_number_over_plain_http_from_another_host_is_refused_and_ledgered() {
    let app = TestApp::spawn_remote(Config::default(), REMOTE, false).await;
    let website = app.key("website");

    // A new customer with a card number: refused, nothing stored, the refusal ledgered.
    let r = app
        .post(
            "/v1/subjects",
            Some(website),
            &order("ada@example.com", true),
        )
        .await;
    assert_tls_required(&r, &["payment.card_number"]);
    assert!(!held(&app, "ada@example.com"));
    let e = last_entry(&app);
    assert_eq!(
        (
            e.draft.action.as_str(),
            e.draft.effect.as_str(),
            e.draft.reasons.as_str()
        ),
        ("collect", "refused", "tls_required")
    );
    assert!(e.draft.categories.contains("payment.card_number"));
    assert_eq!(e.draft.subject, "");
    assert!(!format!("{e:?}").contains(CARD));

    // The same order without the card is the caller's to make over plain HTTP.
    let r = app
        .post(
            "/v1/subjects",
            Some(website),
            &order("ada@example.com", false),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["subject"].as_str().unwrap().to_string();

    // Adding the card later, to a person the service holds: refused the same way.
    let r = app
        .post(
            &format!("/v1/subjects/{id}/data"),
            Some(website),
            &order("ada@example.com", true),
        )
        .await;
    assert_tls_required(&r, &["payment.card_number"]);
    let e = last_entry(&app);
    assert_eq!(
        (e.draft.subject.as_str(), e.draft.reasons.as_str()),
        (id.as_str(), "tls_required")
    );
    let read = app
        .vault()
        .read(
            "billing",
            &custos_vault::SubjectId::parse(&id).unwrap(),
            &custos_vault::ReadInput {
                purpose: "order.payment".into(),
                categories: Some(vec!["payment.card_number".into()]),
                ..custos_vault::ReadInput::default()
            },
        )
        .unwrap();
    assert!(read.data.is_empty(), "stored: {:?}", read.data.keys());

    // Reading a card number out to another host over plain HTTP: refused before decryption,
    // and ledgered; the rest of the record may still be read.
    let held_card = customer_with_card(&app, "grace@example.com");
    let billing = app.key("billing");
    let r = app
        .get(
            &format!("/v1/subjects/{held_card}?purpose=order.payment"),
            Some(billing),
        )
        .await;
    assert_tls_required(&r, &["payment.card_number"]);
    let e = last_entry(&app);
    assert_eq!(
        (
            e.draft.action.as_str(),
            e.draft.effect.as_str(),
            e.draft.reasons.as_str()
        ),
        ("read", "deny", "tls_required")
    );
    let r = app
        .get(
            &format!("/v1/subjects/{held_card}?purpose=order.payment&categories=contact.name"),
            Some(billing),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["contact.name"], "Ada Card");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_mail_service_collects_needs_tls_from_another_host() {
    let app = TestApp::spawn_remote(Config::default(), REMOTE, false).await;
    let mail = app.key("mail");
    let mailbox = json!({
        "service": "mail", "role": "mailbox-owner", "purposes": ["service.mail"],
        "notice": NOTICE, "data": {"contact.name": "Mo", "contact.email": "mo@example.com"},
    });
    // C074: contact information is submitted over HTTPS — not over plain HTTP.
    let r = app.post("/v1/subjects", Some(mail), &mailbox).await;
    assert_tls_required(&r, &["contact.name", "contact.email"]);
    assert!(!held(&app, "mo@example.com"));

    // A mailbox user collected in-process; a mail record appended from another host over
    // plain HTTP is refused and ledgered, and nothing is appended.
    let input = CollectionInput {
        service: "mail".into(),
        role: "mailbox-owner".into(),
        purposes: vec!["service.mail".into()],
        notice: NOTICE.into(),
        data: [("contact.email".to_string(), "mo@example.com".to_string())].into(),
        ..CollectionInput::default()
    };
    let id = app.vault().collect("mail", &input).unwrap();
    let records = json!({"collection": "mailbox_items", "purposes": ["service.mail"], "value": "inbox: hello"});
    let r = app
        .post(
            &format!("/v1/subjects/{}/records", id.as_str()),
            Some(mail),
            &records,
        )
        .await;
    assert_tls_required(&r, &["mail.messages"]);
    let e = last_entry(&app);
    assert_eq!(
        (
            e.draft.action.as_str(),
            e.draft.effect.as_str(),
            e.draft.reasons.as_str()
        ),
        ("append_record", "refused", "tls_required")
    );
    let page = app
        .vault()
        .read_records(
            "mail",
            &id,
            "mailbox_items",
            "service.mail",
            &custos_vault::RecordsPage::default(),
        )
        .unwrap();
    assert!(page.records.is_empty());

    // Another service's records, with no TLS-only category, are appended as before.
    let attendee = app.attendee("Ann", "ann@example.com").await;
    let r = app
        .post(
            &format!("/v1/subjects/{attendee}/records"),
            Some(app.key("meeting-center")),
            &json!({"collection": "account_activity", "purposes": ["service.meetings"], "value": "login"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_number_over_tls_from_another_host_is_accepted() {
    let app = TestApp::spawn_remote(Config::default(), REMOTE, true).await;
    let (status, body) = https(
        &app,
        "POST",
        "/v1/subjects",
        app.key("website"),
        Some(&order("ada@example.com", true)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["subject"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = https(
        &app,
        "GET",
        &format!("/v1/subjects/{id}?purpose=order.payment"),
        app.key("billing"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["data"]["payment.card_number"], CARD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_number_over_plain_http_from_the_servers_own_host_is_accepted() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/subjects",
            Some(app.key("website")),
            &order("ada@example.com", true),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["subject"].as_str().unwrap().to_string();
    let r = app
        .get(
            &format!("/v1/subjects/{id}?purpose=order.payment"),
            Some(app.key("billing")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["payment.card_number"], CARD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_proto_counts_only_from_a_stated_tls_proxy() {
    // Another host forges the header: it counts for nothing.
    let app = TestApp::spawn_remote(with_proxy(), REMOTE, false).await;
    let r = post_with(
        &app,
        "/v1/subjects",
        app.key("website"),
        &["X-Forwarded-Proto: https"],
        &order("ada@example.com", true),
    )
    .await;
    assert_tls_required(&r, &["payment.card_number"]);
    assert!(!held(&app, "ada@example.com"));

    // The stated proxy: its request counts as HTTPS when it says its client used HTTPS…
    let app = TestApp::spawn_remote(with_proxy(), PROXY, false).await;
    let r = post_with(
        &app,
        "/v1/subjects",
        app.key("website"),
        &["X-Forwarded-Proto: https"],
        &order("ada@example.com", true),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(held(&app, "ada@example.com"));
    // …and as plain HTTP from another host when it does not, or says so twice.
    for headers in [
        &[][..],
        &["X-Forwarded-Proto: http"][..],
        &["X-Forwarded-Proto: https", "X-Forwarded-Proto: http"][..],
    ] {
        let r = post_with(
            &app,
            "/v1/subjects",
            app.key("website"),
            headers,
            &order("bob@example.com", true),
        )
        .await;
        assert_tls_required(&r, &["payment.card_number"]);
    }
    assert!(!held(&app, "bob@example.com"));
}
