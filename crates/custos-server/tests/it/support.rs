//! `TestApp`: the real app on 127.0.0.1:0 over a fresh vault in a fresh data directory, its
//! JSON log lines captured (each app its own); and a tiny HTTP/1.1 client over a raw
//! `TcpStream`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use custos_policy::Policy;
use custos_server::{AppState, Config, Log, LogFormat};
use custos_vault::{MasterKey, PostgresStore, SqliteStore, Store, Vault};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub const NOTICE: &str = "2010-04-24";

/// A subject id that exists nowhere.
pub const NOBODY: &str = "00000000-0000-4000-8000-000000000000";

/// The accessors each test app has a key for.
pub const ACCESSORS: &[&str] = &[
    "meeting-center",
    "connect",
    "marketing",
    "mail",
    "website",
    "billing",
];

/// The keys an app spawned by [`TestApp::spawn_instruments`] has besides [`ACCESSORS`]'s:
/// `(accessor, tenant)`, an empty tenant for an accessor bound to none.
pub const INSTRUMENT_KEYS: &[(&str, &str)] = &[
    ("legal", ""),
    ("support", ""),
    ("authorities", ""),
    ("customer-admin", "acme"),
    ("mailbox-purchaser", "acme"),
];

/// The keys an app spawned by [`TestApp::spawn_requests`] has besides [`ACCESSORS`]'s:
/// staff (`admin`) and a key acting for a customer's tenant.
pub const REQUEST_KEYS: &[(&str, &str)] = &[("admin", ""), ("customer-admin", "acme")];

/// The keys of tenant-bound accessors an app spawned by [`TestApp::spawn_tenants`] has:
/// `(accessor, tenant)`, each found by [`TestApp::tenant_key`].
pub const TENANT_KEYS: &[(&str, &str)] =
    &[("customer-admin", "acme"), ("customer-admin", "globex")];

fn policy() -> Arc<Policy> {
    static P: OnceLock<Arc<Policy>> = OnceLock::new();
    Arc::clone(P.get_or_init(|| Arc::new(Policy::builtin().expect("builtin policy"))))
}

/// Where the test vault is.
pub enum Backend {
    Sqlite,
    /// A fresh database on the PostgreSQL server of `CUSTOS_TEST_DATABASE_URL`.
    Postgres,
}

/// The PostgreSQL server the tests use. Unreachable is a failure, never a skip.
fn postgres_admin_url() -> String {
    std::env::var("CUSTOS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (server, _) = base.rsplit_once('/').expect("database url has a path");
    format!("{server}/{db}{query}")
}

pub struct TestApp {
    pub addr: SocketAddr,
    postgres_db: Option<String>,
    pub dir: PathBuf,
    /// What the app logged: JSON lines, as `custos serve --log-format json` writes them.
    pub logs: Arc<Mutex<Vec<u8>>>,
    pub keys: BTreeMap<String, String>,
    /// The app's vault, to look into its ledger and store (dropped off the runtime).
    vault: Option<Arc<Vault>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not json ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A problem document with this status and code.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        let p = self.json();
        assert_eq!(p["code"], code, "{}", self.body);
        assert_eq!(p["status"], status);
        for k in ["type", "title", "detail"] {
            assert!(p[k].is_string(), "problem lacks `{k}`: {}", self.body);
        }
        p
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Config::default()).await
    }

    pub async fn spawn_with(config: Config) -> Self {
        Self::spawn_inner(config, None, Backend::Sqlite).await
    }

    /// An app whose log keeps only what `filter` (`RUST_LOG` syntax) lets through.
    pub async fn spawn_filtered(config: Config, filter: &str) -> Self {
        Self::spawn_logged(config, None, Backend::Sqlite, filter).await
    }

    pub async fn spawn_on(backend: Backend) -> Self {
        Self::spawn_inner(Config::default(), None, backend).await
    }

    /// The app behind TLS, with the test certificate of `fixtures/`.
    pub async fn spawn_tls() -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
        let tls =
            custos_server::tls::config(&dir.join("localhost.crt"), &dir.join("localhost.key"))
                .unwrap();
        Self::spawn_inner(Config::default(), Some(tls), Backend::Sqlite).await
    }

    async fn spawn_inner(
        config: Config,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        backend: Backend,
    ) -> Self {
        // Debug, so connection events are captured too.
        Self::spawn_logged(config, tls, backend, "info,custos=debug").await
    }

    /// An app whose vault also has the keys of [`INSTRUMENT_KEYS`]: staff, an authority and
    /// tenant-bound accessors, for the legal instruments' tests.
    pub async fn spawn_instruments(backend: Backend) -> Self {
        Self::spawn_keyed(
            Config::default(),
            None,
            backend,
            "info,custos=debug",
            INSTRUMENT_KEYS,
        )
        .await
    }

    /// Every ledger entry, read through a second store over the app's database (on a plain
    /// thread, as the PostgreSQL client needs).
    pub fn ledger(&self) -> Vec<custos_vault::ledger::Draft> {
        let dir = self.dir.clone();
        let url = self
            .postgres_db
            .as_ref()
            .map(|db| with_db(&postgres_admin_url(), db));
        std::thread::spawn(move || {
            let store: Arc<dyn Store> = match url {
                Some(url) => Arc::new(PostgresStore::connect(&url).unwrap()),
                None => Arc::new(SqliteStore::open(&dir).unwrap()),
            };
            let n = store.ledger_last_seq().unwrap();
            store
                .ledger_page(1, n)
                .unwrap()
                .into_iter()
                .map(|e| e.draft)
                .collect()
        })
        .join()
        .unwrap()
    }

    /// An app whose vault also has the keys of [`REQUEST_KEYS`]: staff, and a key acting
    /// for a customer's tenant, for the requests' tests.
    pub async fn spawn_requests(backend: Backend) -> Self {
        Self::spawn_keyed(
            Config::default(),
            None,
            backend,
            "info,custos=debug",
            REQUEST_KEYS,
        )
        .await
    }

    /// An app whose vault also has a key of the `analytics` accessor (the aggregates'
    /// reader).
    pub async fn spawn_analytics(backend: Backend) -> Self {
        Self::spawn_keyed(
            Config::default(),
            None,
            backend,
            "info,custos=debug",
            &[("analytics", "")],
        )
        .await
    }

    /// An app whose vault also has the keys of [`TENANT_KEYS`].
    pub async fn spawn_tenants(backend: Backend) -> Self {
        Self::spawn_keyed(
            Config::default(),
            None,
            backend,
            "info,custos=debug",
            TENANT_KEYS,
        )
        .await
    }

    async fn spawn_logged(
        config: Config,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        backend: Backend,
        filter: &str,
    ) -> Self {
        Self::spawn_keyed(config, tls, backend, filter, &[]).await
    }

    /// An app (SQLite) whose every connection appears to come from `peer`, another host: a
    /// real listener on 127.0.0.1, its peer addresses replaced before the server sees them.
    /// With `tls`, behind TLS with the test certificate.
    pub async fn spawn_remote(config: Config, peer: &str, tls: bool) -> Self {
        let tls = tls.then(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
            custos_server::tls::config(&dir.join("localhost.crt"), &dir.join("localhost.key"))
                .unwrap()
        });
        let peer: SocketAddr = peer.parse().unwrap();
        Self::spawn_full(
            config,
            tls,
            Backend::Sqlite,
            "info,custos=debug",
            &[],
            Some(peer),
        )
        .await
    }

    async fn spawn_keyed(
        config: Config,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        backend: Backend,
        filter: &str,
        tenant_keys: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self::spawn_full(config, tls, backend, filter, tenant_keys, None).await
    }

    async fn spawn_full(
        config: Config,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        backend: Backend,
        filter: &str,
        tenant_keys: &'static [(&'static str, &'static str)],
        remote: Option<SocketAddr>,
    ) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("custos_server_it_{}_{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // On a plain thread: the postgres client may not run (nor be dropped) inside a
        // runtime, which is also why the server runs vault calls on its own threads.
        let vault_dir = dir.clone();
        let (vault, keys, postgres_db) = std::thread::spawn(move || {
            let (store, postgres_db): (Arc<dyn Store>, _) = match backend {
                Backend::Sqlite => (Arc::new(SqliteStore::open(&vault_dir).unwrap()), None),
                Backend::Postgres => {
                    let admin = postgres_admin_url();
                    let db = format!("custos_server_it_{}_{n}", std::process::id());
                    let url = with_db(&admin, &db);
                    let mut c = postgres::Client::connect(&admin, postgres::NoTls)
                        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable: {e}"));
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                        .unwrap();
                    c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
                    (Arc::new(PostgresStore::connect(&url).unwrap()), Some(db))
                }
            };
            let vault = Vault::open(store, policy(), MasterKey::generate().unwrap()).unwrap();
            let mut keys: BTreeMap<String, String> = ACCESSORS
                .iter()
                .map(|a| ((*a).to_string(), vault.create_key(a).unwrap()))
                .collect();
            for (a, t) in tenant_keys {
                if t.is_empty() {
                    keys.insert((*a).to_string(), vault.create_key(a).unwrap());
                    continue;
                }
                let key = vault.create_key_for(a, Some(t)).unwrap();
                keys.insert(format!("{a}@{t}"), key);
            }
            (Arc::new(vault), keys, postgres_db)
        })
        .join()
        .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let log = Log::new(LogFormat::Json, filter, move || Capture(Arc::clone(&sink))).unwrap();
        let state = AppState::with(Arc::clone(&vault), config, log).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async {
            let _ = rx.await;
        };
        let server = match (tls, remote) {
            (Some(cfg), None) => {
                let log = state.log().clone();
                let listener = custos_server::tls::TlsListener::new(listener, cfg, log).unwrap();
                tokio::spawn(custos_server::serve(listener, state, stop))
            }
            (None, None) => tokio::spawn(custos_server::serve(listener, state, stop)),
            (Some(cfg), Some(peer)) => {
                let log = state.log().clone();
                let inner = custos_server::tls::TlsListener::new(listener, cfg, log).unwrap();
                tokio::spawn(custos_server::serve(Remote { inner, peer }, state, stop))
            }
            (None, Some(peer)) => {
                let inner = listener;
                tokio::spawn(custos_server::serve(Remote { inner, peer }, state, stop))
            }
        };
        Self {
            addr,
            postgres_db,
            dir,
            logs,
            keys,
            vault: Some(vault),
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// The app's vault (its ledger and store, for what the HTTP API does not show).
    pub fn vault(&self) -> &Vault {
        self.vault.as_deref().expect("the app's vault")
    }

    /// Drops the PostgreSQL database under the running server (its connections die).
    pub fn kill_database(&self) {
        let db = self.postgres_db.clone().expect("a PostgreSQL test app");
        let admin = postgres_admin_url();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            c.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
                .unwrap();
        })
        .join()
        .unwrap();
    }

    pub fn key(&self, accessor: &str) -> &str {
        &self.keys[accessor]
    }

    /// The key of a tenant-bound accessor for a tenant ([`TestApp::spawn_tenants`]).
    pub fn tenant_key(&self, accessor: &str, tenant: &str) -> &str {
        &self.keys[&format!("{accessor}@{tenant}")]
    }

    /// Everything the app logged, one JSON object a line.
    pub fn logs(&self) -> String {
        String::from_utf8(self.logs.lock().unwrap().clone()).unwrap()
    }

    /// The app's log lines, parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not json ({e}): {l}")))
            .collect()
    }

    /// The one log line of each request answered: its fields are the request span's.
    pub fn request_lines(&self) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .filter(|l| l["target"] == "custos::http" && l["span"]["name"] == "request")
            .collect()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.unwrap().unwrap();
        }
    }

    /// Sends raw bytes; returns the parsed response.
    pub async fn raw(&self, request: &[u8]) -> Response {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        parse(&buf)
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if let Some(k) = key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        let body = body.unwrap_or_default();
        if method != "GET" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.raw(req.as_bytes()).await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Response {
        self.send("GET", path, key, None).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Response {
        self.send("POST", path, key, Some(&body.to_string())).await
    }

    /// Collects an attendee through meeting-center, for `service.meetings` only.
    pub async fn attendee(&self, name: &str, email: &str) -> String {
        let r = self
            .post(
                "/v1/subjects",
                Some(self.key("meeting-center")),
                &serde_json::json!({
                    "service": "meeting-center", "role": "attendee",
                    "purposes": ["service.meetings"], "notice": NOTICE,
                    "data": {"contact.name": name, "contact.email": email},
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["subject"].as_str().unwrap().to_string()
    }

    /// Every byte of every file in the data directory.
    pub fn data_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out
    }
}

impl TestApp {
    /// On PostgreSQL: every row of every table of the app's database (all schemas but the
    /// system's), each as its text form, for the canary scans; `None` on SQLite.
    pub fn postgres_rows(&self) -> Option<String> {
        let url = with_db(&postgres_admin_url(), self.postgres_db.as_ref()?);
        Some(
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let tables = c
                    .query(
                        "SELECT table_schema, table_name FROM information_schema.tables \
                         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
                         AND table_type = 'BASE TABLE'",
                        &[],
                    )
                    .unwrap();
                let mut out = String::new();
                for t in tables {
                    let (schema, table): (String, String) = (t.get(0), t.get(1));
                    let sql = format!("SELECT t::text FROM \"{schema}\".\"{table}\" t");
                    for row in c.query(sql.as_str(), &[]).unwrap() {
                        out.push_str(&row.get::<_, String>(0));
                        out.push('\n');
                    }
                }
                out
            })
            .join()
            .unwrap(),
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        // Off the runtime's threads: the postgres client may not be dropped inside one.
        if let Some(vault) = self.vault.take() {
            let _ = std::thread::spawn(move || drop(vault)).join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(db) = self.postgres_db.take() {
            // Off the runtime's threads: the postgres client blocks.
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
                }
            })
            .join();
        }
    }
}

/// A listener whose connections appear to come from `peer` (another host), as
/// [`TestApp::spawn_remote`] serves: whether a connection is TLS stays the inner listener's.
struct Remote<L> {
    inner: L,
    peer: SocketAddr,
}

/// The peer a [`Remote`] listener yields.
struct RemotePeer {
    addr: SocketAddr,
    tls: bool,
}

impl custos_server::transport::Peer for RemotePeer {
    fn socket_addr(&self) -> SocketAddr {
        self.addr
    }
    fn is_tls(&self) -> bool {
        self.tls
    }
}

impl<L> axum::serve::Listener for Remote<L>
where
    L: axum::serve::Listener,
    L::Addr: custos_server::transport::Peer,
{
    type Io = L::Io;
    type Addr = RemotePeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        let tls = custos_server::transport::Peer::is_tls(&addr);
        (
            io,
            RemotePeer {
                addr: self.peer,
                tls,
            },
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(RemotePeer {
            addr: self.peer,
            tls: false,
        })
    }
}

/// Where an app's log lines go: appended to its buffer, one event per `write` (the formatter
/// writes each event whole).
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn parse(buf: &[u8]) -> Response {
    let text = String::from_utf8_lossy(buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
        "chunked responses are not expected"
    );
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}
