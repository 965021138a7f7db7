//! Issue 14, items 1–4: consent records, receipts and preferences over HTTP, on both
//! backends; the attacker's side first.

use serde_json::{Value, json};

use crate::support::{Backend, NOBODY, NOTICE, Response, TestApp};

/// Registers a person on the website (holding them: the `website` key), for the account.
pub async fn registered(app: &TestApp, email: &str) -> String {
    let r = app
        .post(
            "/v1/subjects",
            Some(app.key("website")),
            &json!({
                "service": "website", "role": "account-holder",
                "purposes": ["account", "marketing.announcements"], "notice": NOTICE,
                "age": 30,
                "data": {"contact.name": "Rosa Receipt", "contact.email": email},
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["subject"].as_str().unwrap().to_string()
}

/// The ledger's last entry, as the store has it (read on a plain thread: the PostgreSQL
/// client cannot run inside the test's runtime).
fn last_entry(app: &TestApp) -> custos_vault::LedgerEntry {
    let store = std::sync::Arc::clone(app.vault().store());
    std::thread::spawn(move || {
        let last = store.ledger_last_seq().unwrap();
        store.ledger_page(last, 1).unwrap().pop().unwrap()
    })
    .join()
    .unwrap()
}

fn choice(purpose: &str, given: bool, method: &str) -> Value {
    json!({"purpose": purpose, "given": given, "method": method, "notice": NOTICE})
}

async fn consent(app: &TestApp, key: &str, id: &str, body: &Value) -> Response {
    app.post(&format!("/v1/subjects/{id}/consents"), Some(key), body)
        .await
}

async fn newsletters_email(app: &TestApp, id: &str) -> Value {
    let r = app
        .get(
            &format!("/v1/subjects/{id}?purpose=newsletters&categories=contact.email"),
            Some(app.key("marketing")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn jwks(app: &TestApp) -> String {
    let r = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Another service's key and customer-admin keys (of another tenant, and of the person's
/// own) give, withdraw or read nothing for a person they do not hold: each answer is the
/// answer for a subject never collected.
async fn only_the_holder_records_choices(backend: Backend) {
    let app = TestApp::spawn_tenants(backend).await;
    let id = registered(&app, "rosa@example.com").await;
    let give = choice("newsletters", true, "checkbox_unticked");
    let withdraw = choice("newsletters", false, "settings_page");
    let requests: Vec<(&str, &str, Option<String>)> = vec![
        ("POST", "/v1/subjects/{id}/consents", Some(give.to_string())),
        (
            "POST",
            "/v1/subjects/{id}/consents",
            Some(withdraw.to_string()),
        ),
        ("GET", "/v1/subjects/{id}/consents", None),
        ("GET", "/v1/subjects/{id}/preferences", None),
        (
            "PUT",
            "/v1/subjects/{id}/preferences",
            Some(json!({"topics": {"newsletters": true}}).to_string()),
        ),
    ];
    let keys = [
        app.key("meeting-center"),
        app.key("marketing"),
        app.tenant_key("customer-admin", "globex"),
        app.tenant_key("customer-admin", "acme"),
    ];
    for key in keys {
        for (method, path, body) in &requests {
            let never = app
                .send(
                    method,
                    &path.replace("{id}", NOBODY),
                    Some(key),
                    body.as_deref(),
                )
                .await;
            never.problem(404, "subject_not_found");
            if *method == "POST" {
                // The refusal was durable before the answer, though it was queued on the
                // request's thread, not waited for there (`Vault::queueing_records`).
                let d = last_entry(&app).draft;
                assert_eq!(
                    (d.action.as_str(), d.effect.as_str(), d.subject.as_str()),
                    ("consent", "refused", NOBODY),
                    "{method} {path}"
                );
            }
            let r = app
                .send(
                    method,
                    &path.replace("{id}", &id),
                    Some(key),
                    body.as_deref(),
                )
                .await;
            assert_eq!(
                (r.status, &r.body),
                (never.status, &never.body),
                "{method} {path}"
            );
        }
    }
    // Nothing was recorded: newsletters stay withheld, the holder sees no record.
    assert_eq!(
        newsletters_email(&app, &id).await["withheld"]["contact.email"],
        "consent_missing"
    );
    let r = app
        .get(
            &format!("/v1/subjects/{id}/consents"),
            Some(app.key("website")),
        )
        .await;
    assert_eq!(r.json()["consents"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_records_choices_on_sqlite() {
    only_the_holder_records_choices(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_records_choices_on_postgresql() {
    only_the_holder_records_choices(Backend::Postgres).await;
}

/// What is not consent: a purpose of another basis, a notice not in force, a pre-ticked box,
/// silence, inactivity. 422 naming the field; nothing recorded.
async fn what_is_not_consent_is_refused(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let id = registered(&app, "rosa@example.com").await;
    let key = app.key("website");
    for purpose in ["account", "service.features", "order", "legal.process"] {
        let p = consent(&app, key, &id, &choice(purpose, true, "checkbox_unticked"))
            .await
            .problem(422, "consent_not_applicable");
        assert_eq!(p["field"], "purpose");
    }
    let mut old = choice("newsletters", true, "checkbox_unticked");
    old["notice"] = json!("2009-01-01");
    let p = consent(&app, key, &id, &old)
        .await
        .problem(422, "unknown_notice_version");
    assert_eq!(p["field"], "notice");
    for m in ["pre_ticked", "silence", "inactivity"] {
        let p = consent(&app, key, &id, &choice("newsletters", true, m))
            .await
            .problem(422, "consent_not_freely_given");
        assert_eq!(p["field"], "method");
    }
    let p = consent(&app, key, &id, &choice("newsletters", true, "gpc_signal"))
        .await
        .problem(422, "consent_not_freely_given");
    assert_eq!(p["field"], "method");
    let mut extra = choice("newsletters", true, "checkbox_unticked");
    extra["pre_ticked"] = json!(false);
    consent(&app, key, &id, &extra)
        .await
        .problem(400, "unknown_field");
    let r = app
        .get(&format!("/v1/subjects/{id}/consents"), Some(key))
        .await;
    assert_eq!(r.json()["consents"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_consent_is_refused_on_sqlite() {
    what_is_not_consent_is_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_consent_is_refused_on_postgresql() {
    what_is_not_consent_is_refused(Backend::Postgres).await;
}

/// Give, and the next read permits; withdraw, and the very next read withholds. Each answer
/// carries a receipt that verifies against `/.well-known/jwks.json` and names the person by
/// id only; one changed byte fails.
async fn consent_and_receipts(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let id = registered(&app, "rosa.canary@example.com").await;
    let key = app.key("website");
    assert_eq!(
        newsletters_email(&app, &id).await["withheld"]["contact.email"],
        "consent_missing"
    );
    let r = consent(
        &app,
        key,
        &id,
        &choice("newsletters", true, "double_opt_in"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let given = r.json();
    assert_eq!(given["consent"]["kind"], "consent");
    assert_eq!(given["consent"]["given"], true);
    assert_eq!(given["consent"]["method"], "double_opt_in");
    assert_eq!(given["consent"]["actor"], "website");
    assert_eq!(
        newsletters_email(&app, &id).await["data"]["contact.email"],
        "rosa.canary@example.com"
    );
    let r = consent(
        &app,
        key,
        &id,
        &choice("newsletters", false, "settings_page"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let after = newsletters_email(&app, &id).await;
    assert_eq!(after["data"], json!({}));
    assert_eq!(after["withheld"]["contact.email"], "consent_missing");

    // The notice hash is the SHA-256 of what `/privacy` serves.
    let notice = app.get("/privacy", None).await.body;
    assert_eq!(
        given["consent"]["notice_sha256"],
        custos_vault::crypto::hex(&custos_vault::crypto::sha256(notice.as_bytes()))
    );

    // The keys, keyless and cacheable.
    let r = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(r.header("content-type"), Some("application/jwk-set+json"));
    assert!(r.header("cache-control").unwrap().contains("max-age"));
    let set = r.json();
    let k = &set["keys"][0];
    assert_eq!(
        (&k["kty"], &k["crv"], &k["alg"], &k["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    let keys = jwks(&app).await;

    let receipt = given["receipt"].as_str().unwrap();
    let ok = custos_vault::verify_receipt(receipt, &keys).unwrap();
    assert_eq!(ok.kid, k["kid"].as_str().unwrap());
    assert_eq!(ok.claims["piiPrincipalId"], id.as_str());
    assert_eq!(
        ok.claims["consentReceiptID"],
        given["consent"]["receipt_id"]
    );
    let text = Value::Object(ok.claims.clone()).to_string();
    assert!(!text.contains("rosa.canary@example.com") && !text.contains("Rosa Receipt"));
    // One changed byte, anywhere: refused.
    for at in [3, receipt.len() / 2, receipt.len() - 3] {
        let mut b = receipt.as_bytes().to_vec();
        b[at] = if b[at] == b'x' { b'y' } else { b'x' };
        let changed = String::from_utf8(b).unwrap();
        assert!(
            custos_vault::verify_receipt(&changed, &keys).is_err(),
            "byte {at}"
        );
    }

    // Listed, with evidence and receipts.
    let r = app
        .get(&format!("/v1/subjects/{id}/consents"), Some(key))
        .await;
    let list = r.json();
    assert_eq!(list["consents"].as_array().unwrap().len(), 2);
    assert_eq!(list["consents"][0]["receipt"], given["receipt"]);
    assert_eq!(list["consents"][1]["given"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_and_receipts_on_sqlite() {
    consent_and_receipts(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_and_receipts_on_postgresql() {
    consent_and_receipts(Backend::Postgres).await;
}

/// Preferences: the topics with their basis; a `PUT` records each change with a receipt;
/// an unknown topic is refused naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_over_http() {
    let app = TestApp::spawn().await;
    let id = registered(&app, "rosa@example.com").await;
    let key = app.key("website");
    let path = format!("/v1/subjects/{id}/preferences");
    let r = app.get(&path, Some(key)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let topics = r.json()["topics"].clone();
    let news = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["purpose"] == "newsletters")
        .unwrap();
    assert_eq!(
        (&news["basis"], &news["on"]),
        (&json!("consent"), &json!(false))
    );
    let put = |body: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            app.send("PUT", &path, Some(key), Some(&body.to_string()))
                .await
        }
    };
    let r = put(json!({"topics": {"newsletters": true, "marketing.announcements": false}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json();
    assert_eq!(a["changes"].as_array().unwrap().len(), 2);
    let keys = jwks(&app).await;
    for c in a["changes"].as_array().unwrap() {
        custos_vault::verify_receipt(c["receipt"].as_str().unwrap(), &keys).unwrap();
        assert_eq!(c["consent"]["method"], "settings_page");
    }
    assert!(newsletters_email(&app, &id).await["data"]["contact.email"].is_string());
    let p = put(json!({"topics": {"account": false}}))
        .await
        .problem(422, "unknown_topic");
    assert_eq!(p["field"], "topics.account");
    put(json!({"topics": {}}))
        .await
        .problem(400, "missing_field");
}
