//! Issue 14, item 4 over HTTP: `POST /v1/mailings`, the `.eml` outbox, and RFC 8058's
//! one-click unsubscribe `POST /u/{token}` with its confirmation page `GET /u/{token}`; both
//! backends. The tests proving C031 are named `c031_…`.

use custos_server::mail::{Transport, deliver_due, sender};
use custos_vault::Vault;
use serde_json::json;

use crate::support::{Backend, NOTICE, Response, TestApp};

async fn register(app: &TestApp, email: &str) -> String {
    let r = app
        .post(
            "/v1/subjects",
            Some(app.key("website")),
            &json!({
                "service": "website", "role": "account-holder",
                "purposes": ["account", "marketing.announcements"], "notice": NOTICE,
                "age": 30,
                "data": {"contact.name": "Ann Example", "contact.email": email},
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["subject"].as_str().unwrap().to_string()
}

fn announcement() -> serde_json::Value {
    json!({"purpose": "marketing.announcements", "subject": "What is new", "text": "New features."})
}

/// Delivers the outbox into `<data>/outbox/*.eml`; returns the files' text, by recipient.
fn deliver(app: &TestApp) -> Vec<String> {
    let dir = app.dir.join("outbox");
    let v: &Vault = app.vault();
    let from = sender("WebEx <news@webex.example>").unwrap();
    std::thread::scope(|s| {
        s.spawn(|| while deliver_due(v, &Transport::Files(dir.clone()), &from).unwrap() > 0 {})
            .join()
            .unwrap();
    });
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    for f in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    out.sort_by_key(|m| m.lines().find(|l| l.starts_with("To:")).map(str::to_string));
    out
}

/// A header field of an RFC 5322 message, unfolded.
fn field(eml: &str, name: &str) -> Option<String> {
    let head = &eml[..eml.find("\r\n\r\n").unwrap_or(eml.len())];
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::to_string)
}

fn token_in(eml: &str) -> String {
    let v = field(eml, "List-Unsubscribe").expect("List-Unsubscribe");
    let start = v.find("/u/").unwrap() + 3;
    v[start..start + 64].to_string()
}

/// RFC 8058's POST: form-encoded `List-Unsubscribe=One-Click`, no key, no cookie.
async fn one_click(app: &TestApp, token: &str, accept: Option<&str>) -> Response {
    let body = "List-Unsubscribe=One-Click";
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    app.raw(
        format!(
            "POST /u/{token} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{accept}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
}

/// The subject's consent records, read on a plain thread (the PostgreSQL client may not run
/// inside the runtime).
fn consents(app: &TestApp, subject: &str) -> usize {
    let v: &Vault = app.vault();
    std::thread::scope(|s| {
        s.spawn(|| v.store().consents(subject).unwrap().len())
            .join()
            .unwrap()
    })
}

/// C031 end to end: a mailing through the `.eml` outbox carries RFC 8058's header fields and
/// the unsubscribe footer; the confirmation page changes nothing; the one-click POST (no key,
/// no cookie, never a redirect) takes the person out of the next mailing, once.
async fn c031_mailing_to_eml_and_one_click_unsubscribe(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let ann = register(&app, "ann@example.com").await;
    register(&app, "bob@example.com").await;
    let r = app
        .post("/v1/mailings", Some(app.key("marketing")), &announcement())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sent = r.json();
    assert_eq!(sent["recipients"], 2, "{sent}");
    assert_eq!(sent["excluded"], json!({}));
    let mailing = sent["mailing"].as_str().unwrap().to_string();
    let mails = deliver(&app);
    assert_eq!(mails.len(), 2);
    assert!(mails[0].contains("To: ann@example.com"), "{}", mails[0]);
    for eml in &mails {
        let token = token_in(eml);
        assert_eq!(
            field(eml, "List-Unsubscribe").unwrap(),
            format!(
                "<http://test/u/{token}>, <mailto:unsubscribe@webex.com?subject=unsubscribe-{token}>"
            )
        );
        assert_eq!(
            field(eml, "List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(eml.contains("New features."));
        assert!(eml.contains(&format!("http://test/u/{token}")), "{eml}");
        assert!(eml.contains("unsubscribe@webex.com") && eml.contains("3979 Freedom Circle"));
    }
    let token = token_in(&mails[0]);
    // The page a link scanner (or the person) sees: a button, and nothing recorded.
    let before = consents(&app, &ann);
    for _ in 0..2 {
        let page = app.get(&format!("/u/{token}"), None).await;
        assert_eq!(page.status, 200);
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            page.header("content-security-policy")
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(
            page.body.contains(&format!("action=\"/u/{token}\"")),
            "{}",
            page.body
        );
        assert!(page.body.contains("Service announcements and offers"));
    }
    assert_eq!(consents(&app, &ann), before);
    // The one click.
    let r = one_click(&app, &token, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("location").is_none() && r.header("set-cookie").is_none());
    assert_eq!(
        r.json(),
        json!({"status": "unsubscribed", "purpose": "marketing.announcements"})
    );
    assert_eq!(consents(&app, &ann), before + 1);
    // Replayed, by a mail client or the page's button: the same answer, nothing more.
    let r = one_click(&app, &token, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "already_unsubscribed");
    let r = one_click(&app, &token, Some("text/html")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("no longer receive"), "{}", r.body);
    // An empty POST is as good.
    let r = app
        .raw(format!("POST /u/{token} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(consents(&app, &ann), before + 1);
    // The person's choices show the one click.
    let list = app
        .get(
            &format!("/v1/subjects/{ann}/consents"),
            Some(app.key("website")),
        )
        .await;
    let c = &list.json()["consents"][0];
    assert_eq!(
        (c["method"].as_str(), c["actor"].as_str()),
        (Some("one_click_unsubscribe"), Some("person"))
    );
    // The next mailing leaves Ann out, and says why.
    let r = app
        .post("/v1/mailings", Some(app.key("marketing")), &announcement())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["recipients"], 1);
    assert_eq!(r.json()["excluded"], json!({"objected": 1}));
    let next = deliver(&app);
    assert_eq!(next.len(), 1);
    assert!(next[0].contains("To: bob@example.com"));
    // The first mailing's counts, for its sender and staff only.
    let shown = app
        .get(
            &format!("/v1/mailings/{mailing}"),
            Some(app.key("marketing")),
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.json()["recipients"], 2);
    assert_eq!(shown.json()["subject"], "What is new");
    let staff = app
        .get(&format!("/v1/mailings/{mailing}"), Some(app.key("admin")))
        .await;
    assert_eq!(staff.status, 200);
    let other = app
        .get(&format!("/v1/mailings/{mailing}"), Some(app.key("website")))
        .await;
    other.problem(404, "mailing_not_found");
}

/// Forged, tampered, moved tokens; callers not entitled to the purpose; bad fields. Each a
/// problem+json naming the field (or, for a page, an HTML page saying the link is invalid).
async fn mailing_and_unsubscribe_attacks(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let ann = register(&app, "ann@example.com").await;
    let bob = register(&app, "bob@example.com").await;
    let r = app
        .post("/v1/mailings", Some(app.key("marketing")), &announcement())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mails = deliver(&app);
    let ann_token = token_in(&mails[0]);
    // One character changed.
    let mut t = ann_token.clone().into_bytes();
    t[10] = if t[10] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(t).unwrap();
    let r = one_click(&app, &tampered, None).await;
    r.problem(404, "invalid_token");
    let page = app.get(&format!("/u/{tampered}"), None).await;
    assert_eq!(page.status, 404);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("not valid"));
    for forged in ["x", &"A".repeat(64), &format!("{ann_token}A")] {
        one_click(&app, forged, None)
            .await
            .problem(404, "invalid_token");
    }
    // Ann's token unsubscribes Ann only.
    assert_eq!(one_click(&app, &ann_token, None).await.status, 200);
    assert_eq!(consents(&app, &ann), 1);
    assert_eq!(consents(&app, &bob), 0);
    // Not entitled: a meeting service, a customer's key, no key.
    let r = app
        .post(
            "/v1/mailings",
            Some(app.key("meeting-center")),
            &announcement(),
        )
        .await;
    assert_eq!(r.problem(403, "mailing_not_allowed")["field"], "purpose");
    let r = app
        .post(
            "/v1/mailings",
            Some(app.tenant_key("customer-admin", "acme")),
            &announcement(),
        )
        .await;
    assert_eq!(r.problem(403, "mailing_not_allowed")["field"], "purpose");
    app.post("/v1/mailings", None, &announcement())
        .await
        .problem(401, "missing_api_key");
    // A purpose people cannot leave; a subject line of two lines; an unknown field.
    let r = app
        .post(
            "/v1/mailings",
            Some(app.key("marketing")),
            &json!({"purpose": "account", "subject": "x", "text": "y"}),
        )
        .await;
    assert_eq!(r.problem(422, "not_a_mailing_purpose")["field"], "purpose");
    let r = app
        .post(
            "/v1/mailings",
            Some(app.key("marketing")),
            &json!({"purpose": "marketing.announcements", "subject": "a\r\nBcc: x@example.com", "text": "y"}),
        )
        .await;
    assert_eq!(r.problem(422, "invalid_subject")["field"], "subject");
    let r = app
        .post(
            "/v1/mailings",
            Some(app.key("marketing")),
            &json!({"purpose": "marketing.announcements", "subject": "x", "text": "y", "to": "all"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Nothing of the refused was queued.
    assert!(deliver(&app).is_empty());
}

#[tokio::test]
async fn c031_mailing_to_eml_and_one_click_unsubscribe_sqlite() {
    c031_mailing_to_eml_and_one_click_unsubscribe(Backend::Sqlite).await;
}

#[tokio::test]
async fn c031_mailing_to_eml_and_one_click_unsubscribe_postgres() {
    c031_mailing_to_eml_and_one_click_unsubscribe(Backend::Postgres).await;
}

#[tokio::test]
async fn mailing_and_unsubscribe_attacks_sqlite() {
    mailing_and_unsubscribe_attacks(Backend::Sqlite).await;
}

#[tokio::test]
async fn mailing_and_unsubscribe_attacks_postgres() {
    mailing_and_unsubscribe_attacks(Backend::Postgres).await;
}

/// C031 with an HTML body: the `.eml` is `multipart/alternative`, and both parts end with the
/// unsubscribe instructions.
#[tokio::test]
async fn c031_html_mailing_is_multipart_with_the_footer_in_both_parts() {
    let app = TestApp::spawn_requests(Backend::Sqlite).await;
    register(&app, "hana@example.com").await;
    let r = app
        .post(
            "/v1/mailings",
            Some(app.key("marketing")),
            &json!({"purpose": "marketing.announcements", "subject": "News",
                    "text": "Plain news.", "html": "<p>HTML news.</p>"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mails = deliver(&app);
    assert_eq!(mails.len(), 1);
    let eml = &mails[0];
    assert!(
        field(eml, "Content-Type").is_some_and(|c| c.starts_with("multipart/alternative")),
        "{eml}"
    );
    // Both parts, as the worker encodes them (quoted-printable soft breaks removed).
    let body = eml.replace("=\r\n", "");
    assert!(
        body.contains("Plain news.") && body.contains("HTML news."),
        "{body}"
    );
    assert!(body.matches("unsubscribe@webex.com").count() >= 2, "{body}");
    assert!(body.matches("3979 Freedom Circle").count() >= 2, "{body}");
    assert!(field(eml, "List-Unsubscribe-Post").is_some());
}
