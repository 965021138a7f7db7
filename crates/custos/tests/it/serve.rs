//! `custos serve` as a process: SIGKILL during a write load loses no acknowledged write and
//! leaves a ledger that verifies; SIGTERM stops it cleanly.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("custos_serve_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn custos(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
    c.current_dir(dir)
        .env_remove("CUSTOS_MASTER_KEY")
        .env_remove("CUSTOS_LISTEN")
        .env_remove("CUSTOS_DATA")
        .env_remove("CUSTOS_DATABASE_URL")
        .env_remove("CUSTOS_POLICY");
    c
}

struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    // A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `custos serve --listen 127.0.0.1:0` on a data directory; waits for its address.
fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// [`serve`] with more arguments.
fn serve_with(dir: &Path, more: &[&str]) -> Server {
    let mut child = custos(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data", "data"])
        .args(more)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let addr = line
                .split("listening on http://")
                .nth(1)
                .map(|rest| rest.split(' ').next().unwrap_or_default().to_string());
            // Logged before the address is handed out, so a test reading the log sees it.
            sink.lock().unwrap().push(line);
            if let Some(addr) = addr {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("custos serve says where it listens");
    Server { child, addr, log }
}

fn request(addr: &str, method: &str, path: &str, key: &str, body: &str) -> Option<(u16, String)> {
    request_with(addr, method, path, key, "", body)
}

/// [`request`] with more header lines (`Name: value\r\n` each).
fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    headers: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {key}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn key(dir: &Path, accessor: &str) -> String {
    let out = custos(dir)
        .args(["keys", "create", "--accessor", accessor, "--data", "data"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn sigkill_during_writes_loses_no_acknowledged_write_and_the_ledger_verifies() {
    let dir = temp("crash");
    let key = key(&dir, "connect");
    let mut server = serve(&dir);
    let collect = r#"{"service":"connect","role":"user","purposes":["service.connect"],"notice":"2010-04-24","data":{"contact.name":"Cy","contact.email":"cy@example.com","presence.status":"away"}}"#;
    let (status, body) = request(&server.addr, "POST", "/v1/subjects", &key, collect).unwrap();
    assert_eq!(status, 201, "{body}");
    let subject = serde_json::from_str::<serde_json::Value>(&body).unwrap()["subject"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/subjects/{subject}/records");

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, key, path) = (server.addr.clone(), key.clone(), path.clone());
            let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let value = format!("w{w}-{i}");
                    let body = format!(
                        r#"{{"collection":"chat_messages","purposes":["service.connect"],"value":"{value}"}}"#
                    );
                    match request(&addr, "POST", &path, &key, &body) {
                        Some((201, _)) => acked.lock().unwrap().push(value),
                        Some(_) => {}
                        None => break,
                    }
                }
            })
        })
        .collect();
    // Let the load run, then kill -9 in the middle of it.
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let mut server = serve(&dir);
    // Every page of the records, following `next`.
    let mut held: Vec<String> = Vec::new();
    let mut after = String::new();
    loop {
        let (status, body) = request(
            &server.addr,
            "GET",
            &format!("{path}?collection=chat_messages&purpose=service.connect&limit=1000{after}"),
            &key,
            "",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let read: serde_json::Value = serde_json::from_str(&body).unwrap();
        held.extend(
            read["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["value"].as_str().unwrap().to_string()),
        );
        match read["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    for v in &acked {
        assert!(held.contains(v), "acknowledged write `{v}` was lost");
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let out = custos(&dir)
        .args(["audit", "verify", "--data", "data"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 10, finding 5: a crash in the middle of collections leaves no subject held without
/// its `collect` entry (the entry is durable before the data), and loses no acknowledged one.
#[test]
fn sigkill_during_collections_leaves_no_data_without_its_ledger_entry() {
    use custos_vault::Store as _;
    let dir = temp("crash_collect");
    let key = key(&dir, "connect");
    let server = serve(&dir);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, key) = (server.addr.clone(), key.clone());
            let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = format!(
                        r#"{{"service":"connect","role":"user","purposes":["service.connect"],"notice":"2010-04-24","data":{{"contact.name":"W{w}","contact.email":"w{w}-{i}@example.com"}}}}"#
                    );
                    match request(&addr, "POST", "/v1/subjects", &key, &body) {
                        Some((201, b)) => {
                            let v: serde_json::Value = serde_json::from_str(&b).unwrap();
                            acked
                                .lock()
                                .unwrap()
                                .push(v["subject"].as_str().unwrap().to_string());
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // What the store holds, and what the ledger says was collected.
    let data = dir.join("data");
    let held: Vec<String> = {
        let c = rusqlite::Connection::open(data.join("custos.db")).unwrap();
        let mut stmt = c.prepare("SELECT id FROM subjects").unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let store = custos_vault::SqliteStore::open(&data).unwrap();
    let collected: std::collections::HashSet<String> = store
        .ledger_page(1, u64::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| e.draft.action == "collect" && e.draft.effect == "permit")
        .map(|e| e.draft.subject)
        .collect();
    drop(store);
    for id in &held {
        assert!(
            collected.contains(id),
            "subject {id} is held without its collect entry"
        );
    }
    for id in &acked {
        assert!(held.contains(id), "acknowledged collection {id} was lost");
    }
    let out = custos(&dir)
        .args(["audit", "verify", "--data", "data"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = temp("term");
    let mut server = serve(&dir);
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("custos keys create --accessor NAME"),
        "the start line says how to get a key: {log}"
    );
    // A request's line is written in a batch (`log_buffer.rs`), at most 100 ms late: a
    // server stopped at once has written it before it exits, and before its last line.
    // (The stop takes longer than 100 ms here, so this does not single out `Log::flush`;
    // `log_buffer.rs`'s unit tests do.)
    let answered = request(&server.addr, "GET", "/healthz", "", "");
    assert_eq!(answered.map(|(status, _)| status), Some(200));
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log.lock().unwrap().clone();
    let at = |what: &str| log.iter().position(|l| l.contains(what));
    let (line, stopped) = (at("route=/healthz status=200"), at("custos: stopped"));
    assert!(
        line.is_some() && stopped.is_some() && line < stopped,
        "the request's line, then the last line: {log:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configuration_comes_from_custos_environment_variables_too() {
    let dir = temp("env");
    let mut child = custos(&dir)
        .arg("serve")
        .env("CUSTOS_LISTEN", "127.0.0.1:0")
        .env("CUSTOS_DATA", "from-env")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"))
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    assert!(line.contains("embedded SQLite in from-env"), "{line}");
    assert!(dir.join("from-env").is_dir());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 10, retention runs: `custos retention run` and the sweeper inside `custos serve`
/// delete what the policy no longer allows to be kept, and the ledger says so.
#[test]
fn retention_runs_from_the_cli_and_inside_serve() {
    let dir = temp("retention");
    let key = key(&dir, "meeting-center");
    let collect = r#"{"service":"meeting-center","role":"attendee","purposes":["service.meetings"],"notice":"2010-04-24","data":{"contact.name":"Rex","contact.email":"rex@example.com","network.ip_address":"192.0.2.7"}}"#;
    let record = r#"{"collection":"meeting_attendance","purposes":["service.meetings"],"value":"weekly sync"}"#;
    let db = dir.join("data").join("custos.db");
    // Makes everything held so far overdue: the IP address (one year), the records.
    let age_everything = || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "UPDATE field_values SET time_ms = 1 WHERE category = 'network.ip_address';
             UPDATE records SET retain_until_ms = 1;",
        )
        .unwrap();
    };
    let collect_one = || {
        let mut server = serve(&dir);
        let (status, body) = request(&server.addr, "POST", "/v1/subjects", &key, collect).unwrap();
        assert_eq!(status, 201, "{body}");
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["subject"]
            .as_str()
            .unwrap()
            .to_string();
        let path = format!("/v1/subjects/{id}/records");
        let (status, body) = request(&server.addr, "POST", &path, &key, record).unwrap();
        assert_eq!(status, 201, "{body}");
        server.child.kill().unwrap();
        server.child.wait().unwrap();
    };
    collect_one();
    age_everything();
    let out = custos(&dir)
        .args(["retention", "run", "--data", "data"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "deleted 1 record(s) and 1 value(s) (network.ip_address 1)"
    );
    // The server sweeps on its own, at start and every `--retention-every` seconds.
    collect_one();
    age_everything();
    let mut server = {
        let mut child = custos(&dir)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data",
                "data",
                "--retention-every",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the server sweeps and says so");
            if line.contains("retention:") {
                break line;
            }
        };
        assert!(
            line.ends_with("deleted 1 record(s) and 1 value(s) (network.ip_address 1)"),
            "{line}"
        );
        child
    };
    server.kill().unwrap();
    server.wait().unwrap();
    let c = rusqlite::Connection::open(&db).unwrap();
    let left: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM field_values WHERE category = 'network.ip_address'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    drop(c);
    let out = custos(&dir)
        .args(["audit", "verify", "--data", "data"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// C044 through the binary: `--tls-proxy` names the proxy (here on the server's own host, as a
/// local TLS terminator is); its requests count as HTTPS only with `X-Forwarded-Proto: https`,
/// so a card number it forwards from a plain-HTTP client is refused (403 `tls_required`).
#[test]
fn serve_with_a_tls_proxy_takes_card_numbers_only_forwarded_from_https() {
    let dir = temp("tls_proxy");
    let key = key(&dir, "website");
    let server = serve_with(&dir, &["--tls-proxy", "127.0.0.1/32,::1"]);
    let order = |email: &str| {
        format!(
            r#"{{"service":"website","role":"customer","purposes":["order"],"notice":"2010-04-24","data":{{"contact.email":"{email}","payment.card_number":"4111111111111111"}}}}"#
        )
    };
    let (status, body) = request(
        &server.addr,
        "POST",
        "/v1/subjects",
        &key,
        &order("a@example.com"),
    )
    .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains(r#""code":"tls_required""#), "{body}");
    assert!(!body.contains("4111111111111111"), "{body}");
    let (status, body) = request_with(
        &server.addr,
        "POST",
        "/v1/subjects",
        &key,
        "X-Forwarded-Proto: https\r\n",
        &order("b@example.com"),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    // Without --tls-proxy, the same host is loopback: accepted without the header.
    drop(server);
    let server = serve(&dir);
    let (status, body) = request(
        &server.addr,
        "POST",
        "/v1/subjects",
        &key,
        &order("c@example.com"),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 15, as a newcomer does it: fetch a checkpoint from the running server, keep it, let
/// the server run on, and prove with `custos audit verify --checkpoint` that the ledger still
/// extends it. The server's witness file keeps its own checkpoints apart from the data; once
/// the ledger's tail is removed, both checks fail and the server refuses to start on it.
#[test]
fn a_kept_checkpoint_is_extended_and_a_cut_ledger_is_caught() {
    let dir = temp("checkpoint");
    let witness = ["--witness", "witness.log", "--witness-every", "1"];
    let mut server = serve_with(&dir, &witness);
    for _ in 0..3 {
        key(&dir, "meeting-center");
    }
    let (status, note) = request(&server.addr, "GET", "/v1/ledger/checkpoint", "", "").unwrap();
    assert_eq!(status, 200, "{note}");
    std::fs::write(dir.join("kept.note"), &note).unwrap();
    let kept: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(kept >= 3, "{note}");
    // The server runs on.
    for _ in 0..3 {
        key(&dir, "meeting-center");
    }
    let verify = |file: &str| {
        custos(&dir)
            .args(["audit", "verify", "--data", "data", "--checkpoint", file])
            .output()
            .unwrap()
    };
    let out = verify("kept.note");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The witness file: the server's checkpoints, 0600, appended; the last one on shutdown.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(server.child.wait().unwrap().success());
    let file = std::fs::read_to_string(dir.join("witness.log")).unwrap();
    let notes = file.matches("\n\n\u{2014} ").count();
    assert!(notes >= 2, "{file}");
    let last = custos_vault::tlog::last_note(&file).unwrap();
    let last_size: u64 = last.lines().nth(1).unwrap().parse().unwrap();
    assert!(last_size >= kept + 3, "{file}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("witness.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(verify("witness.log").status.code(), Some(0));

    // The tail removed, its tree with it.
    let db = rusqlite::Connection::open(dir.join("data/ledger.db")).unwrap();
    db.execute_batch("DELETE FROM ledger_blocks WHERE first_seq >= 5; DELETE FROM ledger_tiles;")
        .unwrap();
    drop(db);
    let out = verify("kept.note");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the kept checkpoint is older: {out:?}"
    );
    let out = verify("witness.log");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ledger cut"),
        "{out:?}"
    );
    // The server will not start on a ledger that no longer extends its witness file.
    let out = custos(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data", "data"])
        .args(witness)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not extend the last checkpoint"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--smtp-url` and `--smtp-ca` mistakes stop `custos serve` before it listens, naming the
/// flag and what to do; the password is not repeated.
#[test]
fn smtp_settings_that_would_leak_or_cannot_work_are_refused_at_start() {
    let dir = temp("smtp");
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    for (args, says) in [
        (
            &[
                "--smtp-url",
                "smtp://mailer:hunter2@mail.example.com?tls=opportunistic",
            ][..],
            "plain text if STARTTLS were stripped",
        ),
        (
            &["--smtp-url", "smtp://mail.example.com?tls=none"],
            "tls=none is not a choice",
        ),
        (
            &[
                "--smtp-url",
                "smtp://mail.example.com",
                "--smtp-ca",
                "empty.pem",
            ],
            "--smtp-ca: the file holds no PEM certificate",
        ),
        (
            &[
                "--smtp-url",
                "smtp://mail.example.com",
                "--smtp-ca",
                "missing.pem",
            ],
            "--smtp-ca missing.pem: cannot read it",
        ),
    ] {
        let out = custos(&dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--data", "data"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
