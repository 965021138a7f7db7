//! Issue 10: several `custos serve` processes on one PostgreSQL database, the way Custos
//! scales out. Three servers take a concurrent write load; afterwards the ledger is one valid
//! chain holding every acknowledged write, every acknowledged write is readable through any
//! server, and an erasure or a key revocation made through one process is seen by all of
//! them within a second (`KEY_CACHE_TTL`).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Servers sharing the database.
const SERVERS: usize = 3;
/// Client threads of the load, each spreading its requests over every server.
const CLIENTS: usize = 4;
/// The load stops after this many requests or [`LOAD_FOR`], whichever comes first.
const LOAD_REQUESTS: usize = 600;
const LOAD_FOR: Duration = Duration::from_secs(3);
/// How long a change is polled for on each server, and the most it may take to be seen.
const POLL_FOR: Duration = Duration::from_millis(1200);
const SEEN_WITHIN: Duration = Duration::from_millis(1500);

const NOTICE: &str = "2010-04-24";

/// A fresh database on the test PostgreSQL server, dropped when the test ends, pass or fail.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn create() -> Self {
        let admin = std::env::var("CUSTOS_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let r: [u8; 4] = custos_vault::crypto::random_bytes().unwrap();
        let name = format!(
            "custos_scale_out_{}_{}",
            std::process::id(),
            custos_vault::crypto::hex(&r)
        );
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!("PostgreSQL at CUSTOS_TEST_DATABASE_URL ({admin}) is unreachable: {e}")
        });
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (base, query) = match admin.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin.as_str(), String::new()),
        };
        let (server, _) = base.rsplit_once('/').expect("database url has a path");
        let url = format!("{server}/{name}{query}");
        Self { admin, name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// `custos` on the database, with the master key every process shares.
fn custos(db: &Database, master_key: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
    c.current_dir(std::env::temp_dir())
        .env("CUSTOS_MASTER_KEY", master_key)
        .env_remove("CUSTOS_LISTEN")
        .env_remove("CUSTOS_DATA")
        .env_remove("CUSTOS_DATABASE_URL")
        .env_remove("CUSTOS_POLICY")
        .args(args)
        .args(["--database-url", &db.url]);
    c
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One `custos serve` process; killed when dropped, so a failing test leaves none running.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the servers together (their migrations race for the lock), waits for each address.
fn serve_all(db: &Database, master_key: &str) -> Vec<Server> {
    let started: Vec<_> = (0..SERVERS)
        .map(|_| {
            let mut child = custos(db, master_key, &["serve", "--listen", "127.0.0.1:0"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let _ = tx.send(rest.split(' ').next().unwrap_or_default().to_string());
                    } else if line.starts_with("error") {
                        eprintln!("custos serve: {line}");
                    }
                }
            });
            (child, rx)
        })
        .collect();
    // Owned by guards before waiting, so a server that never says where it listens is killed.
    let mut servers = Vec::new();
    let mut waiting = Vec::new();
    for (child, rx) in started {
        servers.push(Server {
            child,
            addr: String::new(),
        });
        waiting.push(rx);
    }
    for (server, rx) in servers.iter_mut().zip(waiting) {
        server.addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("custos serve says where it listens");
    }
    servers
}

/// One HTTP/1.1 request on a new connection; `None` when the connection fails.
fn request(addr: &str, method: &str, path: &str, key: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn attendee(name: &str, email: &str) -> String {
    format!(
        r#"{{"service":"meeting-center","role":"attendee","purposes":["service.meetings"],"notice":"{NOTICE}","data":{{"contact.name":"{name}","contact.email":"{email}"}}}}"#
    )
}

fn record(value: &str) -> String {
    format!(
        r#"{{"collection":"meeting_attendance","purposes":["service.meetings"],"value":"{value}"}}"#
    )
}

/// Every record value of a subject's `meeting_attendance`, following `next`.
fn records(addr: &str, key: &str, subject: &str) -> Vec<String> {
    let mut held = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!(
            "/v1/subjects/{subject}/records?collection=meeting_attendance&purpose=service.meetings&limit=1000{after}"
        );
        let (status, body) = request(addr, "GET", &path, key, "").expect("the server answers");
        assert_eq!(status, 200, "{addr} {path}: {body}");
        let page = json(&body);
        held.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["value"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return held,
        }
    }
}

/// Polls every server until `seen` holds of its answer, for at most [`POLL_FOR`] after
/// `since`; each server's time from `since` to the first answer that showed it.
fn poll_all(
    servers: &[Server],
    since: Instant,
    seen: impl Fn(&str) -> bool,
) -> Vec<Option<Duration>> {
    let mut at = vec![None; servers.len()];
    while at.iter().any(Option::is_none) && since.elapsed() < POLL_FOR {
        for (s, t) in servers.iter().zip(at.iter_mut()) {
            if t.is_none() && seen(&s.addr) {
                *t = Some(since.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    at
}

fn assert_seen_by_all(what: &str, at: &[Option<Duration>]) {
    for (i, t) in at.iter().enumerate() {
        let t =
            t.unwrap_or_else(|| panic!("server {i} did not see the {what} within {POLL_FOR:?}"));
        assert!(
            t < SEEN_WITHIN,
            "server {i} saw the {what} after {t:?}, not within {SEEN_WITHIN:?}"
        );
    }
}

/// What the load's clients were told.
#[derive(Default)]
struct Acked {
    /// Subject id → the email collected.
    subjects: HashMap<String, String>,
    /// Subject id → the record values appended.
    records: HashMap<String, Vec<String>>,
    /// Answers other than 201, and failed connections (`0`), by status.
    other: HashMap<u16, usize>,
    /// Example bodies of the other answers.
    other_bodies: Vec<String>,
}

/// One client of the load: collects a subject through one server, then appends records to
/// it through the others, round-robin; stops at [`LOAD_REQUESTS`] in all or [`LOAD_FOR`].
fn client(
    c: usize,
    addrs: &[String],
    key: &str,
    sent: &AtomicUsize,
    start: Instant,
    acked: &Mutex<Acked>,
) {
    let mut mine: Vec<String> = Vec::new();
    for i in 0.. {
        if start.elapsed() >= LOAD_FOR || sent.fetch_add(1, Ordering::Relaxed) >= LOAD_REQUESTS {
            return;
        }
        let addr = &addrs[(c + i) % addrs.len()];
        let answer = if i % 3 == 0 || mine.is_empty() {
            let email = format!("c{c}-{i}@example.com");
            let answer = request(addr, "POST", "/v1/subjects", key, &attendee("Load", &email));
            if let Some((201, body)) = &answer {
                let id = json(body)["subject"].as_str().unwrap().to_string();
                mine.push(id.clone());
                acked.lock().unwrap().subjects.insert(id, email);
            }
            answer
        } else {
            let subject = &mine[i % mine.len()];
            let value = format!("c{c}-{i}");
            let path = format!("/v1/subjects/{subject}/records");
            let answer = request(addr, "POST", &path, key, &record(&value));
            if let Some((201, _)) = &answer {
                let mut a = acked.lock().unwrap();
                a.records.entry(subject.clone()).or_default().push(value);
            }
            answer
        };
        match answer {
            Some((201, _)) => {}
            Some((status, body)) => {
                let mut a = acked.lock().unwrap();
                *a.other.entry(status).or_default() += 1;
                if a.other_bodies.len() < 5 {
                    a.other_bodies.push(format!("{status} {body}"));
                }
            }
            None => *acked.lock().unwrap().other.entry(0).or_default() += 1,
        }
    }
}

#[test]
fn three_servers_on_one_postgresql_keep_one_ledger_lose_nothing_and_agree_within_a_second() {
    let began = Instant::now();
    // Declared before the servers, so it is dropped after them.
    let db = Database::create();
    let master_key = custos_vault::MasterKey::generate().unwrap().to_hex();
    let servers = serve_all(&db, &master_key);
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let key_of = |accessor: &str| {
        succeeded(
            &custos(
                &db,
                &master_key,
                &["keys", "create", "--accessor", accessor],
            )
            .output()
            .unwrap(),
        )
    };
    let key = key_of("meeting-center");
    let revoked = key_of("marketing");
    // Writes acknowledged outside the load; each has at least one ledger entry.
    let mut acked_outside = 0;

    // The person erased later: collected through the first server, a record through the last.
    let (status, body) = request(
        &addrs[0],
        "POST",
        "/v1/subjects",
        &key,
        &attendee("Kid", "kid@example.com"),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let kid = json(&body)["subject"].as_str().unwrap().to_string();
    let (status, body) = request(
        &addrs[SERVERS - 1],
        "POST",
        &format!("/v1/subjects/{kid}/records"),
        &key,
        &record("kid-1"),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    acked_outside += 2;

    // The load: CLIENTS threads, each over every server.
    let sent = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let load_start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addrs, key) = (addrs.clone(), key.clone());
            let (sent, acked) = (Arc::clone(&sent), Arc::clone(&acked));
            std::thread::spawn(move || client(c, &addrs, &key, &sent, load_start, &acked))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // (c) Under the load, an erasure through the second server: every server answers the
    // person as one who never was, within a second.
    let read_kid = format!("/v1/subjects/{kid}?purpose=service.meetings");
    for addr in &addrs {
        let (status, body) = request(addr, "GET", &read_kid, &key, "").unwrap();
        assert_eq!(status, 200, "{addr}: {body}");
        assert_eq!(
            json(&body)["data"]["contact.email"],
            "kid@example.com",
            "{body}"
        );
    }
    let mut under_age = json(&attendee("Kid", "kid@example.com"));
    under_age["age"] = 9.into();
    let (status, body) = request(
        &addrs[1],
        "POST",
        &format!("/v1/subjects/{kid}/data"),
        &key,
        &under_age.to_string(),
    )
    .unwrap();
    let erased_at = Instant::now();
    assert_eq!(status, 422, "{body}");
    assert_eq!(json(&body)["code"], "subject_under_minimum_age", "{body}");
    let erasure_seen = poll_all(&servers, erased_at, |addr| {
        matches!(request(addr, "GET", &read_kid, &key, ""),
            Some((404, body)) if json(&body)["code"] == "subject_not_found")
    });
    assert_seen_by_all("erasure", &erasure_seen);
    acked_outside += 1; // the erasure is ledgered

    // (d) Under the load, a revocation by `custos keys revoke`, a fourth process: the key,
    // just confirmed (and so cached) by every server, answers 401 everywhere within a second.
    for addr in &addrs {
        let (status, body) = request(addr, "GET", "/metrics", &revoked, "").unwrap();
        assert_eq!(status, 200, "{addr}: {body}");
    }
    succeeded(
        &custos(
            &db,
            &master_key,
            &["keys", "revoke", "--accessor", "marketing"],
        )
        .output()
        .unwrap(),
    );
    let revoked_at = Instant::now();
    let revocation_seen = poll_all(&servers, revoked_at, |addr| {
        matches!(
            request(addr, "GET", "/metrics", &revoked, ""),
            Some((401, _))
        )
    });
    assert_seen_by_all("revocation", &revocation_seen);
    acked_outside += 1; // the revocation is ledgered

    for c in clients {
        c.join().unwrap();
    }
    let load_took = load_start.elapsed();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let appended: usize = acked.records.values().map(Vec::len).sum();
    eprintln!(
        "scale_out: {} requests in {load_took:?}: {} collections and {appended} records \
         acknowledged, other answers {:?} {:?}; erasure seen after {erasure_seen:?}, \
         revocation after {revocation_seen:?}",
        sent.load(Ordering::Relaxed).min(LOAD_REQUESTS),
        acked.subjects.len(),
        acked.other,
        acked.other_bodies,
    );
    assert!(
        acked.subjects.len() >= CLIENTS && appended >= CLIENTS,
        "the load made progress: {} collections, {appended} records",
        acked.subjects.len()
    );
    assert!(
        !acked.other.keys().any(|s| *s == 0 || *s >= 500),
        "no server failed under the load: {:?} {:?}",
        acked.other,
        acked.other_bodies
    );

    // (b) Nothing lost: every acknowledged collection and record, read through a server
    // other than the one that took it (and the records through yet another).
    for (n, (subject, email)) in acked.subjects.iter().enumerate() {
        let addr = &addrs[n % SERVERS];
        let path = format!("/v1/subjects/{subject}?purpose=service.meetings");
        let (status, body) = request(addr, "GET", &path, &key, "").unwrap();
        assert_eq!(
            status, 200,
            "acknowledged collection {subject} via {addr}: {body}"
        );
        assert_eq!(
            json(&body)["data"]["contact.email"],
            email.as_str(),
            "{body}"
        );
        if let Some(values) = acked.records.get(subject) {
            let held = records(&addrs[(n + 1) % SERVERS], &key, subject);
            for v in values {
                assert!(
                    held.contains(v),
                    "acknowledged record `{v}` of {subject} was lost"
                );
            }
        }
    }

    // (a) One ledger, intact, holding an entry for every acknowledged write.
    let verified = succeeded(
        &custos(&db, &master_key, &["audit", "verify"])
            .output()
            .unwrap(),
    );
    let entries: usize = verified
        .strip_prefix("ledger intact: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{verified}"));
    let writes = acked.subjects.len() + appended + acked_outside;
    assert!(
        entries >= writes,
        "the ledger holds {entries} entries for {writes} acknowledged writes"
    );
    drop(servers);
    eprintln!(
        "scale_out: {entries} ledger entries; took {:?}",
        began.elapsed()
    );
}
