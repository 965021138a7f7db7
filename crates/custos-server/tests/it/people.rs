//! Issue 13, items 1–3: the outbox delivered over real SMTP (a small server of the test's
//! own, over TCP) and as `.eml` files, and people's sign-in over HTTP, from the attacker's
//! side, on both backends.

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use custos_server::mail::{Transport, deliver_due, sender};
use custos_vault::{Mail, Vault};
use serde_json::json;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::support::{Backend, TestApp};

/// What the test SMTP server received in one session.
#[derive(Debug, Default, Clone)]
pub(crate) struct Received {
    pub(crate) auth: Option<String>,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) data: String,
    /// Whether the session had turned TLS (STARTTLS) before the message.
    pub(crate) tls: bool,
}

/// A test SMTP server's connection: TCP, or TLS over it after `STARTTLS`.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// The TLS configuration of a test SMTP server offering STARTTLS: the `localhost`
/// certificate of `fixtures/` (also valid for 127.0.0.1).
pub(crate) fn starttls_config() -> Arc<ServerConfig> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    let certs = CertificateDer::pem_file_iter(dir.join("localhost.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("localhost.key")).unwrap();
    Arc::new(
        ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// A minimal SMTP server (RFC 5321: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP,
/// QUIT; RFC 3207 STARTTLS when given a TLS configuration) on a loopback port, one session
/// at a time, recording what it received, and every command that came in plain text. With
/// `busy`, it answers `451` to `MAIL FROM`, as a server that wants the client to retry.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    plain: Arc<Mutex<Vec<String>>>,
}

impl SmtpServer {
    pub(crate) fn start(busy: bool) -> Self {
        Self::start_with(busy, None)
    }

    pub(crate) fn start_with(busy: bool, starttls: Option<Arc<ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let plain = Arc::new(Mutex::new(Vec::new()));
        let (sink, plain_sink) = (Arc::clone(&received), Arc::clone(&plain));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut lines = BufReader::new(Conn::Plain(stream));
                let mut r = Received::default();
                let say = |c: &mut BufReader<Conn>, s: &str| {
                    c.get_mut().write_all(format!("{s}\r\n").as_bytes())
                };
                if say(&mut lines, "220 test.invalid ESMTP ready").is_err() {
                    continue;
                }
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let cmd = line.trim_end().to_string();
                    if !r.tls {
                        plain_sink.lock().unwrap().push(cmd.clone());
                    }
                    let upper = cmd.to_ascii_uppercase();
                    let answer = if upper.starts_with("EHLO") {
                        let tls = if starttls.is_some() && !r.tls {
                            "250-STARTTLS\r\n"
                        } else {
                            ""
                        };
                        format!("250-test.invalid\r\n{tls}250-AUTH PLAIN\r\n250 8BITMIME")
                    } else if upper.starts_with("HELO") {
                        "250 test.invalid".into()
                    } else if upper == "STARTTLS" && !r.tls {
                        let Some(config) = &starttls else {
                            let _ = say(&mut lines, "502 not implemented");
                            continue;
                        };
                        if say(&mut lines, "220 2.0.0 ready to start TLS").is_err() {
                            break;
                        }
                        // The client waits for the 220 before its handshake: nothing is
                        // buffered. The session starts over (RFC 3207, 4.2).
                        let Conn::Plain(tcp) = lines.into_inner() else {
                            unreachable!("a plain connection before STARTTLS")
                        };
                        let tls = ServerConnection::new(Arc::clone(config)).unwrap();
                        lines = BufReader::new(Conn::Tls(Box::new(StreamOwned::new(tls, tcp))));
                        r = Received {
                            tls: true,
                            ..Received::default()
                        };
                        continue;
                    } else if upper.starts_with("AUTH PLAIN") {
                        r.auth = cmd.get(11..).map(str::to_string);
                        "235 2.7.0 authenticated".into()
                    } else if upper.starts_with("MAIL FROM:") {
                        if busy {
                            "451 4.3.0 try again later".into()
                        } else {
                            r.from = cmd[10..].to_string();
                            "250 ok".into()
                        }
                    } else if upper.starts_with("RCPT TO:") {
                        r.to.push(cmd[8..].to_string());
                        "250 ok".into()
                    } else if upper == "DATA" {
                        let _ = say(&mut lines, "354 end with <CRLF>.<CRLF>");
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                                break;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        r.data = data;
                        sink.lock().unwrap().push(r.clone());
                        "250 queued".into()
                    } else if upper == "QUIT" {
                        let _ = say(&mut lines, "221 bye");
                        break;
                    } else if upper == "RSET" || upper == "NOOP" {
                        "250 ok".into()
                    } else {
                        "502 not implemented".into()
                    };
                    if say(&mut lines, &answer).is_err() {
                        break;
                    }
                }
            }
        });
        Self {
            port,
            received,
            plain,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Every command received in plain text, in order, across sessions.
    pub(crate) fn plain_commands(&self) -> Vec<String> {
        self.plain.lock().unwrap().clone()
    }
}

/// One delivery pass, on a plain thread (the vault's PostgreSQL client must not run on the
/// runtime).
pub(crate) async fn deliver(vault: &Vault, transport: &Transport) -> usize {
    let from = sender("Custos <custos@test.invalid>").unwrap();
    std::thread::scope(|s| {
        s.spawn(|| deliver_due(vault, transport, &from).unwrap())
            .join()
            .unwrap()
    })
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The outbox over SMTP: AUTH with the URL's user and password, the envelope and the
/// RFC 5322 message as queued; after delivery the row keeps no content and the database no
/// address. A server that answers 451 gets the message again later, not now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_delivers_over_smtp_and_retries_a_busy_server() {
    let app = TestApp::spawn().await;
    let v = app.vault();
    let to = "zq-smtp-rcpt-9d1e@example.invalid";
    let id = v
        .queue_mail(&Mail {
            to: to.into(),
            subject: "Your sign-in code".into(),
            text: "Your code is 12345678.".into(),
            ..Default::default()
        })
        .unwrap();
    // Busy first: the attempt fails, the message waits for its retry.
    let busy = SmtpServer::start(true);
    let t = Transport::smtp(&format!("smtp://127.0.0.1:{}", busy.port), None).unwrap();
    assert_eq!(deliver(v, &t).await, 0);
    let s = v.mail_status(&id).unwrap().unwrap();
    assert_eq!(
        (s.state.as_str(), s.attempts, s.has_content),
        ("queued", 1, true)
    );
    assert!(busy.received().is_empty());
    // Not due yet: a pass now sends nothing, even to a willing server.
    let smtp = SmtpServer::start(false);
    let t = Transport::smtp(
        &format!("smtp://mailer:s%40cret@127.0.0.1:{}", smtp.port),
        None,
    )
    .unwrap();
    assert_eq!(deliver(v, &t).await, 0);
    assert!(smtp.received().is_empty());
    // Due: delivered.
    make_due(&app.dir);
    assert_eq!(deliver(v, &t).await, 1);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    // AUTH PLAIN: base64 of "\0mailer\0s@cret", the URL's password percent-decoded.
    assert_eq!(r.auth.as_deref(), Some("AG1haWxlcgBzQGNyZXQ="));
    assert_eq!(r.from, "<custos@test.invalid>");
    assert_eq!(r.to, vec![format!("<{to}>")]);
    assert!(r.data.contains(&format!("To: {to}\r\n")), "{}", r.data);
    assert!(r.data.contains("Subject: Your sign-in code\r\n"));
    assert!(r.data.contains(&format!("Message-ID: <{id}@test.invalid>")));
    assert!(r.data.contains("Your code is 12345678."));
    let s = v.mail_status(&id).unwrap().unwrap();
    assert_eq!(
        (s.state.as_str(), s.attempts, s.has_content),
        ("sent", 2, false)
    );
    // Nowhere in the data directory's files, as the canary tests look.
    for (path, bytes) in app.data_files() {
        for needle in [to, "smtp-rcpt-9d1e", "12345678"] {
            assert!(
                !contains(&bytes, needle),
                "`{needle}` in {}",
                path.display()
            );
        }
    }
}

/// Makes every queued message of the app's SQLite vault due now, through a second store
/// over the same files (as a second server would open them).
pub(crate) fn make_due(dir: &Path) {
    use custos_vault::Store as _;
    let store = custos_vault::SqliteStore::open(dir).unwrap();
    for m in store.claim_mail(i64::MAX, 0, 100).unwrap() {
        store.update_mail(&m.id, "queued", m.attempts, 0).unwrap();
    }
}

/// A transport that always fails permanently: an address that does not parse is given up
/// at the first attempt, its content deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_address_is_given_up_at_once() {
    let app = TestApp::spawn().await;
    let v = app.vault();
    let id = v
        .queue_mail(&Mail {
            to: "not an address".into(),
            subject: "x".into(),
            text: "y".into(),
            ..Default::default()
        })
        .unwrap();
    let dir = app.dir.join("outbox");
    assert_eq!(deliver(v, &Transport::Files(dir.clone())).await, 0);
    let s = v.mail_status(&id).unwrap().unwrap();
    assert_eq!((s.state.as_str(), s.has_content), ("failed", false));
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none());
}

/// The `.eml` files the file transport wrote, newest last.
fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Delivers the outbox into `<data>/outbox/` and reads the code of the newest message to
/// `to`.
pub async fn mailed_code(app: &TestApp, to: &str) -> String {
    let dir = app.dir.join("outbox");
    deliver(app.vault(), &Transport::Files(dir.clone())).await;
    let text = eml_files(&dir)
        .into_iter()
        .rev()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|t| t.contains(&format!("To: {to}\r\n")))
        .unwrap_or_else(|| panic!("no message to {to}"));
    let at = text.find("code is ").unwrap() + 8;
    text[at..at + 8].to_string()
}

pub async fn sign_in(app: &TestApp, email: &str) -> crate::support::Response {
    app.post("/v1/people/sign-in", None, &json!({ "email": email }))
        .await
}

pub async fn verify(app: &TestApp, email: &str, code: &str) -> crate::support::Response {
    app.post(
        "/v1/people/sign-in/verify",
        None,
        &json!({ "email": email, "code": code }),
    )
    .await
}

fn wrong(code: &str) -> &'static str {
    if code == "00000000" {
        "00000001"
    } else {
        "00000000"
    }
}

async fn people_over_http(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let ann = "zq-ann-31f0@example.invalid";
    let bob = "zq-bob-8e22@example.invalid";
    let a = app.attendee("Ann", ann).await;
    let b = app.attendee("Bob", bob).await;
    // Known and unknown addresses: byte-identical answers.
    let known = sign_in(&app, ann).await;
    let unknown = sign_in(&app, "zq-nobody-5a5a@example.invalid").await;
    assert_eq!(known.status, 202, "{}", known.body);
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.body, unknown.body);
    assert_eq!(known.header("content-type"), unknown.header("content-type"));
    assert_eq!(known.json()["status"], "accepted");
    let code_a = mailed_code(&app, ann).await;
    // Only Ann's message was written: none to the unknown address.
    assert_eq!(eml_files(&app.dir.join("outbox")).len(), 1);
    // A's code does not sign in as B (who asked for none yet, then who did).
    verify(&app, bob, &code_a)
        .await
        .problem(401, "code_invalid");
    assert_eq!(sign_in(&app, bob).await.status, 202);
    let code_b = mailed_code(&app, bob).await;
    verify(&app, bob, &code_a)
        .await
        .problem(401, "code_invalid");
    // Malformed input names the field and not the value.
    let p = verify(&app, ann, "12ab").await.problem(400, "invalid_code");
    assert_eq!(p["field"], "code");
    let p = sign_in(&app, "nope").await.problem(400, "invalid_email");
    assert_eq!(p["field"], "email");
    assert!(!p.to_string().contains("nope"));
    // Ann signs in, once.
    let r = verify(&app, ann, &code_a).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.json();
    let session_a = s["session"].as_str().unwrap().to_string();
    assert_eq!(s["subjects"], json!([a]));
    assert!(s["expires"].as_str().unwrap().ends_with('Z'));
    verify(&app, ann, &code_a)
        .await
        .problem(401, "code_invalid");
    // The session reaches Ann's subject in /v1/me, and nothing on the accessor routes.
    let r = app.get("/v1/me", Some(&session_a)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let me = r.json();
    assert_eq!(me["subjects"].as_array().unwrap().len(), 1);
    assert_eq!(me["subjects"][0]["id"], a);
    assert_eq!(me["subjects"][0]["status"], "active");
    assert_eq!(
        me["subjects"][0]["services"],
        json!([{"service": "meeting-center", "role": "attendee"}])
    );
    assert!(!r.body.contains(ann) && !r.body.contains(&b));
    for (method, path, body) in [
        (
            "GET",
            format!("/v1/subjects/{b}?purpose=service.meetings"),
            None,
        ),
        (
            "GET",
            format!("/v1/subjects/{a}?purpose=service.meetings"),
            None,
        ),
        ("POST", format!("/v1/subjects/{a}/data"), Some("{}")),
        ("POST", "/v1/subjects".to_string(), Some("{}")),
        (
            "GET",
            format!(
                "/v1/subjects/{a}/records?collection=meeting_attendance&purpose=service.meetings"
            ),
            None,
        ),
        ("POST", "/v1/decisions".to_string(), Some("{}")),
        ("POST", "/v1/instruments".to_string(), Some("{}")),
        (
            "GET",
            "/v1/instruments/0198c0de-0000-7000-8000-000000000000".to_string(),
            None,
        ),
    ] {
        let r = app.send(method, &path, Some(&session_a), body).await;
        r.problem(401, "session_not_accepted");
    }
    // An API key does not reach /v1/me, nor does no credential.
    let key = app.key("meeting-center").to_string();
    app.get("/v1/me", Some(&key))
        .await
        .problem(401, "invalid_session");
    app.get("/v1/me", None)
        .await
        .problem(401, "missing_session");
    app.post("/v1/people/sign-out", Some(&key), &json!({}))
        .await
        .problem(401, "invalid_session");
    // Guessing Bob's code is cut off after five tries (Ann's code was the first): then even
    // the right code fails.
    for _ in 0..4 {
        verify(&app, bob, wrong(&code_b))
            .await
            .problem(401, "code_invalid");
    }
    verify(&app, bob, &code_b)
        .await
        .problem(401, "code_exhausted");
    // Sign-out ends the session.
    let r = app
        .post("/v1/people/sign-out", Some(&session_a), &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    app.get("/v1/me", Some(&session_a))
        .await
        .problem(401, "invalid_session");
    // The ledger: sign-ins by subject id, never the address or the code.
    let ledger = app.ledger();
    let text = format!("{ledger:?}");
    for needle in [ann, bob, "zq-nobody", &code_a, &code_b, &session_a] {
        assert!(!text.contains(needle), "`{needle}` in the ledger");
    }
    for (action, effect) in [
        ("sign_in_code", "sent"),
        ("sign_in", "done"),
        ("me_overview", "done"),
        ("sign_out", "done"),
    ] {
        assert!(
            ledger.iter().any(|d| d.actor == "person"
                && d.action == action
                && d.effect == effect
                && d.subject == a),
            "no {action}/{effect} for Ann"
        );
    }
    assert!(
        ledger
            .iter()
            .any(|d| d.action == "sign_in" && d.effect == "failed" && d.subject == b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_over_http_sqlite() {
    people_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_over_http_postgres() {
    people_over_http(Backend::Postgres).await;
}

/// An address gets five codes an hour, known or not, then `429 rate_limited` with
/// `Retry-After`; a client that keeps calling is cut off by its own bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_rate_limited_per_address_and_per_client() {
    let app = TestApp::spawn().await;
    let known = "zq-rate-1a2b@example.invalid";
    app.attendee("Rate", known).await;
    for email in [known, "zq-rate-unknown@example.invalid"] {
        for _ in 0..5 {
            assert_eq!(sign_in(&app, email).await.status, 202);
        }
        let r = sign_in(&app, email).await;
        let p = r.problem(429, "rate_limited");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!(wait > 3000 && wait <= 3600, "{wait}");
        assert!(!p.to_string().contains("zq-rate"));
    }
    // 12 requests so far; the client's bucket holds 20.
    let mut limited = None;
    for i in 0..20 {
        let r = verify(&app, "zq-x@example.invalid", "12345678").await;
        if r.status == 429 {
            limited = Some(i);
            let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=4).contains(&wait), "{wait}");
            break;
        }
        r.problem(401, "code_invalid");
    }
    assert!(limited.is_some_and(|i| i >= 7), "{limited:?}");
}
