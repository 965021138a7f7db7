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
    let mut child = custos(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data", "data"])
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
    let (status, body) = request(
        &server.addr,
        "GET",
        &format!("{path}?collection=chat_messages&purpose=service.connect"),
        &key,
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let read: serde_json::Value = serde_json::from_str(&body).unwrap();
    let held: Vec<&str> = read["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    for v in &acked {
        assert!(
            held.contains(&v.as_str()),
            "acknowledged write `{v}` was lost"
        );
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

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = temp("term");
    let mut server = serve(&dir);
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("custos keys create --accessor NAME"),
        "the start line says how to get a key: {log}"
    );
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("custos: stopped"))
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
