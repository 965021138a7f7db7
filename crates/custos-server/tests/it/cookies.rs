//! Cookies, beacons, GPC and telemetry over HTTP (issue 14; C034, C035, C036, C047–C049):
//! the banner script, cookie-consent records, Global Privacy Control, the page beacon, the
//! telemetry endpoint and who reads the aggregates; on both backends.

use serde_json::{Value, json};

use crate::people::{mailed_code, sign_in, verify};
use crate::support::{Backend, NOTICE, Response, TestApp};

/// Runs a vault call off the runtime's threads (the PostgreSQL client may not block on one).
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// Sends a request with extra headers.
async fn send_with(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    if method != "GET" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    app.raw(req.as_bytes()).await
}

async fn consent(app: &TestApp, headers: &[(&str, &str)], choices: Value) -> Response {
    send_with(
        app,
        "POST",
        "/v1/cookie-consents",
        headers,
        Some(&json!({"choices": choices, "notice": NOTICE})),
    )
    .await
}

/// C047, C048: the banner is one self-hosted script, generated from the policy's cookies:
/// it names every cookie, marks the required one, leaves the optional ones off, offers
/// "Reject all" beside "Accept all", honours GPC, posts to its own origin only, and uses no
/// `eval`, no inline markup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_script_is_self_hosted_and_same_origin() {
    let app = TestApp::spawn().await;
    let r = app.get("/consent.js", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let js = &r.body;
    for id in [
        "session",
        "preferences",
        "analytics",
        "web-beacon",
        "email-beacon",
    ] {
        assert!(js.contains(&format!("\"id\":\"{id}\"")), "{id}");
    }
    assert!(js.contains("\"required\":true"));
    assert!(js.contains(&format!("\"notice\":\"{NOTICE}\"")));
    // No pre-ticked box: a box starts ticked only for a required cookie.
    assert!(js.contains("cb.checked = c.required;"));
    assert!(js.contains("Reject all") && js.contains("Accept all"));
    assert!(js.contains("navigator.globalPrivacyControl === true"));
    // Same origin only: one relative endpoint, no absolute or protocol-relative URL.
    assert!(js.contains("\"endpoint\":\"/v1/cookie-consents\""));
    let lower = js.to_lowercase();
    for banned in [
        "http:",
        "https:",
        "\"//",
        "'//",
        "eval(",
        "new function",
        "innerhtml",
        "document.write",
        "import(",
        "<script",
        "xmlhttprequest",
        "sendbeacon",
        "websocket",
    ] {
        assert!(!lower.contains(banned), "the script has `{banned}`");
    }
    assert_eq!(lower.matches("fetch(").count(), 1);
    // The JSON it embeds is the policy's cookies, nothing else.
    let start = js.find("var C = ").unwrap() + 8;
    let end = js[start..].find(";\n").unwrap() + start;
    let config: Value = serde_json::from_str(&js[start..end]).unwrap();
    let cookies = config["cookies"].as_array().unwrap();
    assert_eq!(cookies.len(), 5);
    let beacon = cookies.iter().find(|c| c["id"] == "email-beacon").unwrap();
    assert_eq!(beacon["gpc"], true);
    assert_eq!(beacon["required"], false);
}

async fn cookie_consent_over_http(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let r = consent(&app, &[], json!({"preferences": true, "analytics": false})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    let id = c["consent"].as_str().unwrap();
    assert_eq!(
        c["choices"],
        json!({"session": true, "preferences": true, "analytics": false,
               "web-beacon": false, "email-beacon": false})
    );
    assert_eq!(c["notice"], NOTICE);
    assert_eq!(c["notice_sha256"], app.vault().notice_sha256());
    assert_eq!(c["gpc"], false);
    assert_eq!(c["gpc_records"], json!([]));
    // The browser keeps the choice in a first-party cookie: the record id and the choices.
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.starts_with(&format!(
            "custos_consent={id}|session=1|preferences=1|analytics=0|"
        )),
        "{set}"
    );
    assert!(
        set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    // A signed receipt whose subject is the random consent id.
    let jwks = app.get("/.well-known/jwks.json", None).await.body;
    let receipt = custos_vault::verify_receipt(c["receipt"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(receipt.claims["piiPrincipalId"], id);
    assert_eq!(receipt.claims["custos"]["noticeSha256"], c["notice_sha256"]);
    // Stored without an address or a user agent: these are all its fields.
    let row = blocking(|| app.vault().cookie_consent(id))
        .unwrap()
        .expect("the record is stored");
    assert_eq!(row.notice_sha256, c["notice_sha256"].as_str().unwrap());
    assert!(!format!("{row:?}").contains("127.0.0.1"));
    // Ledgered with no subject.
    let entry = app
        .ledger()
        .into_iter()
        .find(|d| d.action == "cookie_consent")
        .unwrap();
    assert_eq!(entry.subject, "");
    assert_eq!(entry.actor, "visitor");
    // Withdrawal is a new choice.
    let again = consent(&app, &[], json!({"preferences": false})).await;
    assert_eq!(again.status, 201);
    assert_ne!(again.json()["consent"], c["consent"]);
    assert_eq!(again.json()["choices"]["preferences"], false);
    // Refusals name the field.
    let p = consent(&app, &[], json!({"session": false}))
        .await
        .problem(422, "cookie_required");
    assert_eq!(p["field"], "choices.session");
    let p = consent(&app, &[], json!({"tracker": true}))
        .await
        .problem(422, "unknown_cookie");
    assert_eq!(p["field"], "choices.tracker");
    let p = send_with(
        &app,
        "POST",
        "/v1/cookie-consents",
        &[],
        Some(&json!({"choices": {}, "notice": "1999-01-01"})),
    )
    .await
    .problem(422, "unknown_notice_version");
    assert_eq!(p["field"], "notice");
    let p = send_with(
        &app,
        "POST",
        "/v1/cookie-consents",
        &[],
        Some(&json!({"choices": {}, "notice": NOTICE, "ip": "127.0.0.1"})),
    )
    .await
    .problem(400, "unknown_field");
    assert_eq!(p["field"], "ip");
    let p = send_with(
        &app,
        "POST",
        "/v1/cookie-consents",
        &[],
        Some(&json!({"choices": {"analytics": "yes"}, "notice": NOTICE})),
    )
    .await
    .problem(400, "invalid_field");
    assert_eq!(p["field"], "choices.analytics");
    // An API key is no visitor's: ignored, the choice recorded as anonymous.
    let key = app.key("website").to_string();
    let r = consent(
        &app,
        &[
            ("Sec-GPC", "1"),
            ("Authorization", &format!("Bearer {key}")),
        ],
        json!({}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["gpc_records"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_consent_recorded_with_notice_hash_sqlite() {
    cookie_consent_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_consent_recorded_with_notice_hash_postgres() {
    cookie_consent_over_http(Backend::Postgres).await;
}

async fn gpc_over_http(backend: Backend) {
    let app = TestApp::spawn_analytics(backend).await;
    let gpc = [("Sec-GPC", "1")];
    // Anonymous: the sale or sharing cookies are refused whatever was sent, and GPC recorded.
    let r = consent(&app, &gpc, json!({"email-beacon": true, "analytics": true})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    assert_eq!(c["gpc"], true);
    assert_eq!(c["choices"]["email-beacon"], false);
    assert_eq!(c["choices"]["analytics"], true);
    assert_eq!(c["gpc_records"], json!([]));
    let id = c["consent"].as_str().unwrap();
    assert!(
        blocking(|| app.vault().cookie_consent(id))
            .unwrap()
            .unwrap()
            .gpc
    );
    // A signed-in person: their consent to sale and sharing (partner marketing, C036) is
    // withdrawn, method gpc_signal, once.
    let email = "zq-gpc-7d1e@example.invalid";
    let subject = app.attendee("Gil", email).await;
    assert_eq!(sign_in(&app, email).await.status, 202);
    let code = mailed_code(&app, email).await;
    let session = verify(&app, email, &code).await.json()["session"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {session}");
    let with_session = [("Sec-GPC", "1"), ("Authorization", bearer.as_str())];
    let r = consent(&app, &with_session, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let records = r.json()["gpc_records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["purpose"], "marketing.partners");
    assert_eq!(records[0]["method"], "gpc_signal");
    assert_eq!(records[0]["given"], false);
    let mine = app.get("/v1/me/consents", Some(&session)).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    let listed = mine.body;
    assert!(listed.contains("gpc_signal") && listed.contains("marketing.partners"));
    assert!(listed.contains(&subject));
    // Again: already withdrawn, nothing new.
    let r = consent(&app, &with_session, json!({})).await;
    assert_eq!(r.json()["gpc_records"], json!([]));
    // Without GPC a session records no withdrawal.
    let r = consent(&app, &[("Authorization", bearer.as_str())], json!({})).await;
    assert_eq!(r.json()["gpc_records"], json!([]));
    // A forged session is refused, not ignored.
    consent(
        &app,
        &[
            ("Sec-GPC", "1"),
            ("Authorization", "Bearer custos_session_forged"),
        ],
        json!({}),
    )
    .await
    .problem(401, "invalid_session");
    // A GPC visit to the notice and to a page are counted too; the analytics key reads them.
    assert_eq!(
        send_with(&app, "GET", "/privacy", &gpc, None).await.status,
        200
    );
    assert_eq!(
        send_with(&app, "GET", "/b.gif?page=/", &gpc, None)
            .await
            .status,
        200
    );
    let r = app
        .get("/v1/analytics/gpc", Some(app.key("analytics")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let counts = r.json()["counts"].clone();
    assert_eq!(counts.as_array().unwrap().len(), 1);
    assert_eq!(counts[0]["name"], "gpc");
    // Three posts with GPC (the forged one was refused first), the notice, the beacon.
    assert_eq!(counts[0]["count"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpc_refuses_sale_and_sharing_and_is_recorded_sqlite() {
    gpc_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpc_refuses_sale_and_sharing_and_is_recorded_postgres() {
    gpc_over_http(Backend::Postgres).await;
}

/// The GPC support resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpc_json_says_gpc_is_honoured() {
    let app = TestApp::spawn().await;
    let r = app.get("/.well-known/gpc.json", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"gpc": true, "lastUpdate": "2010-04-24"}));
}

async fn pixel(app: &TestApp, path: &str) {
    let r = app.get(path, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body.starts_with("GIF89a"));
}

async fn beacon_over_http(backend: Backend) {
    let sqlite = matches!(backend, Backend::Sqlite);
    let app = TestApp::spawn_analytics(backend).await;
    // The query and fragment of the page are dropped; what may carry personal information
    // is counted as redacted.
    pixel(
        &app,
        "/b.gif?page=/pricing%3Fref%3Dzq-beacon-91c3%40example.invalid",
    )
    .await;
    pixel(&app, "/b.gif?page=/pricing%23top").await;
    pixel(&app, "/b.gif?page=/users/zq-beacon-91c3@example.invalid").await;
    pixel(&app, "/b.gif?page=/orders/5550123").await;
    pixel(&app, "/b.gif?page=not-a-path").await;
    pixel(&app, "/b.gif").await;
    let long = format!("/b.gif?page=/{}", "a".repeat(128));
    let p = app.get(&long, None).await.problem(400, "invalid_query");
    assert_eq!(p["field"], "page");
    // A visitor who refused analytics is not counted; one who accepted is.
    let refused =
        "custos_consent=0b0e6b9e-1f7a-4c61-9d55-0d7d0b4f2a11|session=1|analytics=0|web-beacon=0";
    let accepted =
        "custos_consent=0b0e6b9e-1f7a-4c61-9d55-0d7d0b4f2a11|session=1|analytics=1|web-beacon=1";
    for _ in 0..3 {
        let r = send_with(
            &app,
            "GET",
            "/b.gif?page=/refused",
            &[("Cookie", refused)],
            None,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let r = send_with(
        &app,
        "GET",
        "/b.gif?page=/pricing",
        &[("Cookie", accepted)],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    // Only the analytics key reads the aggregates.
    for other in ["website", "marketing", "meeting-center"] {
        app.get("/v1/analytics/pages", Some(app.key(other)))
            .await
            .problem(403, "purpose_not_allowed_for_accessor");
    }
    app.get("/v1/analytics/pages", None)
        .await
        .problem(401, "missing_api_key");
    let r = app
        .get(
            "/v1/analytics/pages?from=2000-01-01&to=2999-12-31",
            Some(app.key("analytics")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let counts = r.json()["counts"].clone();
    let got: Vec<(String, i64)> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("(redacted)".to_string(), 2), ("/pricing".to_string(), 3)]
    );
    for bad in ["from=yesterday", "from=2026-02-30", "to=2026-13-01"] {
        let p = app
            .get(
                &format!("/v1/analytics/pages?{bad}"),
                Some(app.key("analytics")),
            )
            .await
            .problem(400, "invalid_query");
        assert_eq!(p["field"], bad.split('=').next().unwrap());
    }
    // Nothing of the visitor is stored: no address, no page query, no identifier.
    let rows = blocking(|| {
        app.vault()
            .store()
            .counts("page", "0000-01-01", "9999-12-31", 100)
    })
    .unwrap();
    for r in &rows {
        assert!(!format!("{r:?}").contains("127.0.0.1"));
        assert!(!format!("{r:?}").contains("zq-beacon"));
    }
    if sqlite {
        let mut app = app;
        app.stop().await;
        for (path, bytes) in app.data_files() {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("zq-beacon-91c3"), "{}", path.display());
            assert!(!text.contains("0b0e6b9e-1f7a"), "{}", path.display());
        }
    }
}

/// C034, C049: the beacon keeps page counts by day, nothing of the visitor, and counts
/// nothing of a visitor who refused analytics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacon_counts_pages_as_aggregates_only_sqlite() {
    beacon_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacon_counts_pages_as_aggregates_only_postgres() {
    beacon_over_http(Backend::Postgres).await;
}

async fn telemetry_over_http(backend: Backend) {
    let app = TestApp::spawn_analytics(backend).await;
    let mc = app.key("meeting-center").to_string();
    let r = app
        .post("/v1/telemetry", Some(&mc), &json!({"metric": "crash"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = app
        .post(
            "/v1/telemetry",
            Some(&mc),
            &json!({"metric": "join_latency_ms", "count": 2.0, "value": 300}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // No identifier can ride along: the body takes no other field.
    let p = app
        .post(
            "/v1/telemetry",
            Some(&mc),
            &json!({"metric": "crash", "user": "zq-tele@example.invalid"}),
        )
        .await
        .problem(400, "unknown_field");
    assert_eq!(p["field"], "user");
    let p = app
        .post("/v1/telemetry", Some(&mc), &json!({"metric": "user_email"}))
        .await
        .problem(422, "unknown_metric");
    assert_eq!(p["field"], "metric");
    let p = app
        .post(
            "/v1/telemetry",
            Some(&mc),
            &json!({"metric": "crash", "count": 0}),
        )
        .await
        .problem(422, "invalid_count");
    assert_eq!(p["field"], "count");
    app.post(
        "/v1/telemetry",
        Some(app.key("marketing")),
        &json!({"metric": "crash"}),
    )
    .await
    .problem(403, "purpose_not_allowed_for_accessor");
    app.post("/v1/telemetry", None, &json!({"metric": "crash"}))
        .await
        .problem(401, "missing_api_key");
    app.get("/v1/analytics/telemetry", Some(&mc))
        .await
        .problem(403, "purpose_not_allowed_for_accessor");
    let r = app
        .get("/v1/analytics/telemetry", Some(app.key("analytics")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let counts = r.json()["counts"].clone();
    let got: Vec<(String, i64, i64)> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["count"].as_i64().unwrap(),
                c["total"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("meeting-center/crash".to_string(), 1, 0),
            ("meeting-center/join_latency_ms".to_string(), 2, 300)
        ]
    );
}

/// C035: service-health telemetry is accepted as anonymous aggregates only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_is_anonymous_aggregates_only_sqlite() {
    telemetry_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_is_anonymous_aggregates_only_postgres() {
    telemetry_over_http(Backend::Postgres).await;
}

/// A test site in front of the app on one origin: it serves `/page` (the site's page, which
/// loads `/driver.js` then `/consent.js`, under a content security policy that allows
/// scripts and requests to its own origin only) and `/driver.js` itself, and passes every
/// other connection through to the app.
async fn site(app_addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = [0u8; 64];
                let n = client.peek(&mut head).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&head[..n]).to_string();
                let (body, kind) = if line.starts_with("GET /page ") {
                    (PAGE, "text/html; charset=utf-8")
                } else if line.starts_with("GET /driver.js ") {
                    (DRIVER, "text/javascript")
                } else {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(app_addr).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let _ = client.read(&mut buf).await;
                let csp = "default-src 'none'; script-src 'self'; connect-src 'self'";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Security-Policy: {csp}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = client.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>site</title>\
<script src=\"/driver.js\"></script><script src=\"/consent.js\"></script></head>\
<body><h1>A page</h1><pre id=\"out\"></pre></body></html>";

/// Records the banner as shown (boxes, ticks, buttons) and any content security policy
/// violation, then clicks "Reject all" and records what the server answered.
const DRIVER: &str = r#"
var violations = 0;
document.addEventListener("securitypolicyviolation", function () { violations += 1; });
window.addEventListener("load", function () {
  var out = document.getElementById("out");
  var banner = document.getElementById("custos-consent");
  var boxes = banner ? banner.querySelectorAll("input[type=checkbox]") : [];
  var shown = [];
  for (var i = 0; i < boxes.length; i++) {
    shown.push(boxes[i].name + ":" + (boxes[i].checked ? "on" : "off") + (boxes[i].disabled ? ":fixed" : ""));
  }
  var buttons = banner ? Array.prototype.map.call(banner.querySelectorAll("button"), function (b) { return b.textContent; }) : [];
  document.addEventListener("custos-consent", function (e) {
    out.textContent = JSON.stringify({
      shown: shown, buttons: buttons, violations: violations,
      record: e.detail, still_shown: !!document.getElementById("custos-consent"),
      cookie: document.cookie
    });
  });
  document.getElementById("custos-reject").click();
});
"#;

/// C047, C048 in a real browser (Debian's chromium, headless): the banner shows every cookie
/// with only the required one ticked, "Reject all" beside "Accept all", runs under a content
/// security policy allowing only its own origin (no violation), and "Reject all" records a
/// choice with every optional cookie off and keeps it in the first-party cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_banner_works_in_chromium() {
    let chromium = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .expect("chromium is not installed (`apt-get install -y chromium`, as .ci/run does)");
    let app = TestApp::spawn().await;
    let site = site(app.addr).await;
    let profile = app.dir.join("chromium-profile");
    let url = format!("http://{site}/page");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-sync",
                "--disable-background-networking",
                "--disable-component-update",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--dump-dom", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let start = dom.find("<pre id=\"out\">").map(|i| i + 14);
    let text = start
        .and_then(|s| dom[s..].find("</pre>").map(|e| &dom[s..s + e]))
        .unwrap_or_default()
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let got: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "no result ({e}); dom: {dom}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        got["shown"],
        json!([
            "session:on:fixed",
            "preferences:off",
            "analytics:off",
            "web-beacon:off",
            "email-beacon:off"
        ])
    );
    assert_eq!(
        got["buttons"],
        json!(["Reject all", "Accept all", "Save my choices"])
    );
    assert_eq!(got["violations"], 0);
    assert_eq!(got["still_shown"], false);
    let record = &got["record"];
    assert_eq!(
        record["choices"],
        json!({"session": true, "preferences": false, "analytics": false,
               "web-beacon": false, "email-beacon": false})
    );
    let id = record["consent"].as_str().unwrap();
    assert!(
        got["cookie"]
            .as_str()
            .unwrap()
            .contains(&format!("custos_consent={id}|session=1|preferences=0")),
        "{got}"
    );
    let stored = blocking(|| app.vault().cookie_consent(id))
        .unwrap()
        .unwrap();
    assert!(!stored.gpc);
}

/// A keyless route that ledgers and signs must not be a free way to fill the vault: cookie
/// consents are limited per client (a bucket of 20, one more every 3 s), apart from the
/// sign-in routes' buckets. Behind a stated proxy the client is the address the proxy
/// appended to `X-Forwarded-For`: what a client writes into the header itself does not move
/// it to a fresh bucket, and another client keeps its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_consents_are_rate_limited_per_client() {
    let config = custos_server::Config {
        tls_proxy: vec!["10.0.0.0/8".parse().unwrap()],
        ..custos_server::Config::default()
    };
    let app = TestApp::spawn_remote(config, "10.0.0.2:40000", false).await;
    let choose = |xff: &'static str| {
        let app = &app;
        async move { consent(app, &[("X-Forwarded-For", xff)], json!({"analytics": true})).await }
    };
    for _ in 0..20 {
        assert_eq!(choose("198.51.100.1").await.status, 201);
    }
    let r = choose("198.51.100.1").await;
    let p = r.problem(429, "rate_limited");
    assert!(
        p.to_string().contains("too many cookie consent requests"),
        "{p}"
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&wait), "{wait}");
    // A client naming another address before the proxy's entry is still itself.
    choose("203.0.113.77, 198.51.100.1")
        .await
        .problem(429, "rate_limited");
    // Another client behind the same proxy has its own bucket.
    assert_eq!(choose("198.51.100.2").await.status, 201);
    // The sign-in routes' buckets are their own: the limited client still asks for a code.
    let r = send_with(
        &app,
        "POST",
        "/v1/people/sign-in",
        &[("X-Forwarded-For", "198.51.100.1")],
        Some(&json!({"email": "zq-bucket@example.invalid"})),
    )
    .await;
    assert_eq!(r.status, 202);
    // Only the 21 choices answered 201 were recorded; the refused ones left nothing.
    let recorded = blocking(|| {
        let store = app.vault().store();
        let last = store.ledger_last_seq().unwrap();
        store
            .ledger_page(1, last)
            .unwrap()
            .iter()
            .filter(|e| e.draft.action == "cookie_consent")
            .count()
    });
    assert_eq!(recorded, 21);
}
