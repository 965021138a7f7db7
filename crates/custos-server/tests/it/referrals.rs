//! Issue 14, item 7: referral (C027) — `POST /v1/referrals` — on both backends: the canary
//! test (the friend's name and address nowhere once the mail is delivered over real SMTP),
//! and the attacker's side.

use custos_server::mail::Transport;
use serde_json::{Value, json};

use crate::consents::registered;
use crate::people::{SmtpServer, deliver};
use crate::support::{Backend, NOBODY, Response, TestApp};

/// Runs a vault call off the runtime's threads (the PostgreSQL client must not run on one).
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn refer(app: &TestApp, key: &str, body: &Value) -> Response {
    app.post("/v1/referrals", Some(key), body).await
}

/// Every place the canary must not be: each file under the data directory (the databases,
/// their `-wal` and `-shm`, the outbox directory), the JSON logs, the ledger, and on
/// PostgreSQL every row of every table.
fn assert_nowhere(app: &TestApp, needles: &[&str]) {
    let files = app.data_files();
    let rows = app.postgres_rows();
    assert!(rows.is_some() || files.len() >= 3, "{files:?}");
    let ledger = format!("{:?}", app.ledger());
    let logs = app.logs();
    for n in needles {
        for (path, bytes) in &files {
            assert!(!contains(bytes, n), "`{n}` in {}", path.display());
        }
        assert!(!ledger.contains(n), "`{n}` in the ledger");
        assert!(!logs.contains(n), "`{n}` in the logs");
        if let Some(rows) = &rows {
            assert!(!rows.contains(n), "`{n}` in a PostgreSQL table");
        }
    }
}

/// C027: "WebEx does not store the personal information of the third party". A referral
/// with a unique canary name and address is queued (its ledger entry naming the referrer,
/// the purpose and the categories), is in no file, table, log or ledger entry while queued
/// — the outbox holds it sealed, so its plaintext never touches the disk, whatever
/// `secure_delete` does with freed pages (FAST in `custos.db`, where the outbox is) — is
/// delivered over SMTP on TCP with the name and address, and then its sealed content is
/// deleted and the canary is still nowhere.
async fn a_referral_leaves_no_trace_of_the_friend(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let referrer = registered(&app, "referrer-c027@example.com").await;
    let tag = uuid_like();
    let name = format!("Canaryfriend {tag}");
    let email = format!("canary-{tag}@friend.example");
    let r = refer(
        &app,
        app.key("website"),
        &json!({"subject": referrer, "name": name, "email": email,
                "message": "Have a look at WebEx meetings.\nSee you, Rosa"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let out = r.json();
    let mail = out["mail"].as_str().unwrap().to_string();
    assert_eq!(out["remaining"], custos_vault::MAX_REFERRALS_PER_DAY - 1);
    let entry = app
        .ledger()
        .into_iter()
        .find(|d| d.action == "referral")
        .unwrap();
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.subject.as_str(),
            entry.purpose.as_str(),
            entry.categories.as_str(),
            entry.effect.as_str(),
        ),
        (
            "website",
            referrer.as_str(),
            "referral",
            "referral.name,referral.email",
            "done"
        )
    );
    assert_eq!(entry.reasons, format!("transient,mail:{mail}"));
    let needles = [name.as_str(), email.as_str(), tag.as_str()];
    // Queued: sealed, so nowhere in plaintext.
    assert!(off(|| app
        .vault()
        .mail_status(&mail)
        .unwrap()
        .unwrap()
        .has_content));
    assert_nowhere(&app, &needles);

    let smtp = SmtpServer::start(false);
    let t = Transport::smtp(&format!("smtp://127.0.0.1:{}", smtp.port), None).unwrap();
    assert_eq!(deliver(app.vault(), &t).await, 1);
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec![format!("<{email}>")]);
    assert!(
        got[0].data.contains(&format!("Hello {name},")),
        "{}",
        got[0].data
    );
    assert!(got[0].data.contains("See you, Rosa"));
    assert!(!got[0].data.contains("referrer-c027"));
    let s = off(|| app.vault().mail_status(&mail).unwrap().unwrap());
    assert_eq!((s.state.as_str(), s.has_content), ("sent", false));
    assert!(
        app.ledger()
            .iter()
            .any(|d| d.action == "mail_sent" && d.reasons == format!("mail:{mail}"))
    );
    // Delivered: still nowhere, the sealed content gone too.
    assert_nowhere(&app, &needles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_leaves_no_trace_of_the_friend_sqlite() {
    a_referral_leaves_no_trace_of_the_friend(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_leaves_no_trace_of_the_friend_postgres() {
    a_referral_leaves_no_trace_of_the_friend(Backend::Postgres).await;
}

/// A tag no other test writes.
fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("q{:x}z{}", n, std::process::id())
}

/// Who may refer whom: another service's key does not reach the website's person (404, as
/// for no one); a service that does not pursue `referral` is refused for its own person
/// (403 `purpose_not_allowed_for_accessor`); a customer's key reaches no one outside its
/// tenant (404); an id of no one is 404. Every refusal is ledgered without the friend, and
/// nothing is queued.
async fn only_a_holder_allowed_to_refer_sends_a_referral(backend: Backend) {
    let app = TestApp::spawn_requests(backend).await;
    let referrer = registered(&app, "holder-c027@example.com").await;
    let attendee = app.attendee("Att Endee", "attendee-c027@example.com").await;
    let body = |subject: &str| json!({"subject": subject, "name": "Fritz Friend", "email": "fritz-c027@friend.example"});
    refer(&app, app.key("meeting-center"), &body(&referrer))
        .await
        .problem(404, "subject_not_found");
    refer(&app, app.key("meeting-center"), &body(&attendee))
        .await
        .problem(403, "purpose_not_allowed_for_accessor");
    refer(&app, app.key("marketing"), &body(&referrer))
        .await
        .problem(404, "subject_not_found");
    refer(
        &app,
        app.tenant_key("customer-admin", "acme"),
        &body(&referrer),
    )
    .await
    .problem(404, "subject_not_found");
    refer(&app, app.key("website"), &body(NOBODY))
        .await
        .problem(404, "subject_not_found");
    // The website does not hold the meeting attendee.
    refer(&app, app.key("website"), &body(&attendee))
        .await
        .problem(404, "subject_not_found");
    app.post("/v1/referrals", None, &body(&referrer))
        .await
        .problem(401, "missing_api_key");
    let ledger = app.ledger();
    let refused: Vec<_> = ledger.iter().filter(|d| d.action == "referral").collect();
    assert_eq!(refused.len(), 6);
    assert!(refused.iter().all(|d| d.effect == "refused"));
    assert!(!format!("{ledger:?}").contains("fritz"));
    assert!(!format!("{ledger:?}").contains("Fritz"));
    assert!(off(|| app.vault().claim_mail(10).unwrap().is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_holder_allowed_to_refer_sends_a_referral_sqlite() {
    only_a_holder_allowed_to_refer_sends_a_referral(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_holder_allowed_to_refer_sends_a_referral_postgres() {
    only_a_holder_allowed_to_refer_sends_a_referral(Backend::Postgres).await;
}

/// Not a spam relay: one plain address (a second recipient, a display name or a header
/// smuggled in a line break is 400 naming `email`), a one-line name (`name`), a bounded
/// message (`message`), no unknown field; and five referrals a day per referrer, the sixth
/// `429 rate_limited`. A deactivated referrer refers no one. Errors quote no value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_refuse_header_injection_and_are_rate_limited() {
    let app = TestApp::spawn().await;
    let key = app.key("website");
    let referrer = registered(&app, "limited-c027@example.com").await;
    let ok = json!({"subject": referrer, "name": "Fay Friend", "email": "fay-c027@friend.example"});
    let with = |field: &str, value: Value| {
        let mut b = ok.clone();
        b[field] = value;
        b
    };
    for bad in [
        "fay-c027@friend.example\r\nBcc: spam@victim.example",
        "fay-c027@friend.example, spam@victim.example",
        "Fay <fay-c027@friend.example>",
        "fay-c027@localhost",
    ] {
        let p = refer(&app, key, &with("email", json!(bad)))
            .await
            .problem(400, "invalid_email");
        assert_eq!(p["field"], "email");
        assert!(!p.to_string().contains("fay-c027"), "{p}");
    }
    let p = refer(
        &app,
        key,
        &with("name", json!("Fay\r\nBcc: spam@victim.example")),
    )
    .await
    .problem(400, "invalid_field");
    assert_eq!(p["field"], "name");
    refer(&app, key, &with("name", json!("x".repeat(129))))
        .await
        .problem(400, "invalid_field");
    let p = refer(&app, key, &with("message", json!("y".repeat(1001))))
        .await
        .problem(400, "invalid_field");
    assert_eq!(p["field"], "message");
    refer(&app, key, &with("message", Value::Null))
        .await
        .problem(400, "invalid_field");
    refer(&app, key, &with("bcc", json!("spam@victim.example")))
        .await
        .problem(400, "unknown_field");
    assert!(off(|| app.vault().claim_mail(10).unwrap().is_empty()));

    for left in (0..custos_vault::MAX_REFERRALS_PER_DAY).rev() {
        let r = refer(&app, key, &ok).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.json()["remaining"], left);
    }
    refer(&app, key, &ok).await.problem(429, "rate_limited");
    // Another referrer has their own five.
    let other = registered(&app, "other-c027@example.com").await;
    let r = refer(&app, key, &with("subject", json!(other))).await;
    assert_eq!(r.status, 202, "{}", r.body);

    app.vault()
        .deactivate("website", &custos_vault::SubjectId::parse(&other).unwrap())
        .unwrap();
    refer(&app, key, &with("subject", json!(other)))
        .await
        .problem(422, "subject_deactivated");
    assert!(!app.logs().contains("fay-c027"));
    assert!(!app.logs().contains("Fay Friend"));
}
