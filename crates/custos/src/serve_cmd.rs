//! `custos serve`: the HTTP API over an embedded or PostgreSQL vault.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use custos_server::{AppState, Config, Log, LogFormat};
use custos_vault::Vault;

/// Where `custos serve`'s own messages are logged; `custos=…` in `RUST_LOG` covers them with
/// the server's (`custos::http`, `custos::tls`). The target is the program's name, so a
/// human line reads `… INFO custos: listening on …`.
const TARGET: &str = "custos";

/// Where to listen, where the vault is, which policy.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CUSTOS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Data directory of the embedded (SQLite) vault.
    #[arg(long, env = "CUSTOS_DATA", default_value = "./custos-data")]
    data: PathBuf,
    /// PostgreSQL URL instead of the embedded vault; the master key then comes from
    /// `CUSTOS_MASTER_KEY`.
    #[arg(long, env = "CUSTOS_DATABASE_URL")]
    database_url: Option<String>,
    /// The policy enforced (default: the built-in WebEx 2010 policy).
    #[arg(long, env = "CUSTOS_POLICY")]
    policy: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (with `--tls-key`).
    #[arg(long, env = "CUSTOS_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "CUSTOS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address range (`10.0.0.0/8`, `fd00::/8`, or one address) of a TLS-terminating proxy
    /// in front of the server; repeat it, or separate ranges with commas. A request from one
    /// counts as HTTPS only when it carries `X-Forwarded-Proto: https`. Without TLS or a
    /// proxy, what the policy marks `transport = "tls"` is refused from other hosts.
    #[arg(
        long,
        env = "CUSTOS_TLS_PROXY",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    tls_proxy: Vec<custos_server::transport::Cidr>,
    /// Where the outbox's mail goes: `smtp://user:pass@host:port` (STARTTLS, required
    /// unless the host is this machine; `?tls=opportunistic` to settle for plain text when
    /// the server offers no STARTTLS, refused with a password to another host) or
    /// `smtps://user:pass@host:port` (TLS from the first byte); the user and password, if
    /// any, are used for AUTH. Without it, each message is written as an RFC 5322 `.eml` file
    /// under `<data>/outbox/`.
    #[arg(long, env = "CUSTOS_SMTP_URL", value_name = "URL")]
    smtp_url: Option<String>,
    /// PEM certificates trusted for the SMTP server's, besides the public roots: a relay
    /// whose certificate a private CA signed.
    #[arg(
        long,
        env = "CUSTOS_SMTP_CA",
        value_name = "FILE",
        requires = "smtp_url"
    )]
    smtp_ca: Option<PathBuf>,
    /// The server's public base URL, which the unsubscribe links of mailings start with
    /// (`https://privacy.example.com`); default: the scheme and `--listen` address.
    #[arg(long, env = "CUSTOS_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// The sender of the outbox's mail.
    #[arg(
        long,
        env = "CUSTOS_MAIL_FROM",
        default_value = "Custos <custos@localhost>"
    )]
    mail_from: String,
    /// Load a small synthetic WebEx world and print an API key per demo accessor.
    #[arg(long)]
    demo: bool,
    /// Seconds between retention sweeps (what the policy no longer allows to be kept is
    /// deleted and the deletion ledgered; see `custos retention run`); 0 turns them off.
    #[arg(long, env = "CUSTOS_RETENTION_EVERY", default_value_t = 3600)]
    retention_every: u64,
    /// How logs are written to standard error: `human`, one line of text per event; `json`,
    /// one JSON object per line (each request's line carries `span.request_id`, `route`,
    /// `method`, `status`, `ms` and `accessor`); `auto`, human on a terminal, else json.
    #[arg(long, env = "CUSTOS_LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Human)]
    log_format: LogFormatArg,
    /// The ledger's origin as a transparency log: the first line of its checkpoints and the
    /// name of their key (default `custos/` and the first 16 hex digits of the ledger's
    /// public key).
    #[arg(long, env = "CUSTOS_LEDGER_ORIGIN")]
    ledger_origin: Option<String>,
    /// Append each checkpoint the server signs to this file, apart from the data (0600,
    /// append-only, synced): on start, every `--witness-every` seconds when the ledger has
    /// grown, and on shutdown. On start the ledger must extend the file's last checkpoint,
    /// or the server refuses to start.
    #[arg(long, env = "CUSTOS_WITNESS", value_name = "PATH")]
    witness: Option<PathBuf>,
    /// Seconds between the witness file's checkpoints.
    #[arg(long, env = "CUSTOS_WITNESS_EVERY", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    witness_every: u64,
    /// Which events are logged, as `RUST_LOG` says: a level (`info`), or levels by target
    /// (`info,custos::http=warn` quiets the access log; `custos=debug` adds connection events).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_filter: String,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
    Auto,
}

impl LogFormatArg {
    fn resolve(self) -> LogFormat {
        use std::io::IsTerminal as _;
        match self {
            Self::Human => LogFormat::Human,
            Self::Json => LogFormat::Json,
            Self::Auto if std::io::stderr().is_terminal() => LogFormat::Human,
            Self::Auto => LogFormat::Json,
        }
    }
}

/// Runs `Vault::purge_expired` every `every` on a plain thread (a vault call may block on
/// the database; the synchronous PostgreSQL client must not run on the runtime), once at
/// start; stops when the returned sender is dropped.
fn retention_sweeper(
    vault: &Arc<Vault>,
    every: std::time::Duration,
) -> std::io::Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let vault = Arc::clone(vault);
    let thread = std::thread::Builder::new()
        .name("custos-retention".into())
        .spawn(move || {
            loop {
                match vault.purge_expired("retention") {
                    Ok(s) if s.records + s.value_count() + s.codes + s.sessions + s.mail > 0 => {
                        let line = crate::vault_cmd::sweep_line(&s);
                        tracing::info!(target: TARGET, "retention: {line}");
                    }
                    Ok(_) => {}
                    // The vault's errors name no value.
                    Err(e) => tracing::error!(target: TARGET, "retention sweep failed: {e}"),
                }
                match stopped.recv_timeout(every) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
        })?;
    Ok((stop, thread))
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub fn run(args: ServeArgs) -> ExitCode {
    // First, so everything after is logged; the process's default, for the sweeper thread
    // and whatever else runs outside a request.
    let mut log = match Log::stderr(args.log_format.resolve(), &args.log_filter) {
        Ok(log) => log,
        Err(e) => return fail(e),
    };
    log.install_global();
    let policy = match crate::policy_cmd::load(args.policy.as_deref()) {
        Ok(p) => Arc::new(p),
        Err(code) => return code,
    };
    let (location, key_hint) = match &args.database_url {
        Some(_) => ("PostgreSQL".to_string(), "--database-url URL".to_string()),
        None => (
            format!("embedded SQLite in {}", args.data.display()),
            format!("--data {}", args.data.display()),
        ),
    };
    // The embedded vault makes its key file on first start; PostgreSQL needs
    // `CUSTOS_MASTER_KEY`.
    let vault = Vault::open_location(&args.data, args.database_url.as_deref(), policy, true);
    let vault = match vault {
        Ok(v) => Arc::new(v),
        Err(e) => return fail(e),
    };
    if let Some(origin) = &args.ledger_origin
        && let Err(e) = vault.set_ledger_origin(origin)
    {
        return fail(e);
    }
    let witnessed = match &args.witness {
        None => None,
        Some(path) => match crate::witness::check(&vault, path) {
            Ok(last) => Some((path.clone(), last)),
            Err(e) => return fail(e),
        },
    };
    if args.demo {
        match custos_server::demo::load(&vault) {
            Ok(world) => {
                for (who, id) in &world.subjects {
                    tracing::info!(target: TARGET, "demo subject {id} ({who})");
                }
                for (accessor, key) in &world.keys {
                    println!("{accessor}: {key}");
                }
            }
            Err(e) => return fail(format!("cannot load the demo world: {e}")),
        }
    }
    let transport = match &args.smtp_url {
        Some(url) => match smtp_ca(args.smtp_ca.as_deref())
            .and_then(|ca| custos_server::mail::Transport::smtp(url, ca.as_deref()))
        {
            Ok(t) => t,
            Err(e) => return fail(e),
        },
        None => custos_server::mail::Transport::files_in(&args.data),
    };
    let mail_from = match custos_server::mail::sender(&args.mail_from) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match custos_server::tls::config(cert, key) {
            Ok(c) => Some(c),
            Err(e) => return fail(e),
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let public_url = args.public_url.clone().unwrap_or_else(|| {
        let scheme = if tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", args.listen)
    });
    let config = Config {
        tls_proxy: args.tls_proxy.clone(),
        public_url: Some(public_url.trim_end_matches('/').to_string()),
        ..Config::default()
    };
    let state = match AppState::with(Arc::clone(&vault), config, log.clone()) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot start the vault threads: {e}")),
    };
    let sweeper = match args.retention_every {
        0 => None,
        secs => match retention_sweeper(&vault, std::time::Duration::from_secs(secs)) {
            Ok(s) => Some(s),
            Err(e) => return fail(format!("cannot start the retention sweeper: {e}")),
        },
    };
    let mail_note = match &transport {
        custos_server::mail::Transport::Files(dir) => {
            format!("mail is written to {} (no --smtp-url)", dir.display())
        }
        custos_server::mail::Transport::Smtp(_) => "mail goes out over SMTP".to_string(),
    };
    let mailer = match custos_server::mail::MailWorker::start(
        Arc::clone(&vault),
        transport,
        mail_from,
        std::time::Duration::from_secs(1),
        &log,
    ) {
        Ok(m) => m,
        Err(e) => return fail(format!("cannot start the mail thread: {e}")),
    };
    let witness = match witnessed {
        None => None,
        Some((path, last)) => {
            let every = std::time::Duration::from_secs(args.witness_every);
            match crate::witness::start(&vault, path, every, last) {
                Ok(w) => Some(w),
                Err(e) => return fail(e),
            }
        }
    };
    let policy_name = format!("{} {}", vault.policy().id(), vault.policy().version());
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        // Before saying it listens: a signal from then on stops it cleanly.
        let shutdown = custos_server::shutdown_signal()
            .map_err(|e| format!("cannot install the signal handlers: {e}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Tests and scripts read the address from this line: keep `listening on URL `.
        tracing::info!(
            target: TARGET,
            "listening on {scheme}://{addr} (policy {policy_name}, {location}); \
             get an API key with `custos keys create --accessor NAME {key_hint}`"
        );
        tracing::info!(target: TARGET, "{mail_note}");
        if tls.is_none() && args.tls_proxy.is_empty() {
            tracing::info!(
                target: TARGET,
                "plain HTTP: categories the policy marks `transport = \"tls\"` are accepted and answered only for clients on this host; serve HTTPS with --tls-cert/--tls-key, or state a TLS-terminating proxy with --tls-proxy CIDR"
            );
        }
        match tls {
            Some(cfg) => {
                let listener =
                    custos_server::tls::TlsListener::new(listener, cfg, state.log().clone())
                        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
                custos_server::serve(listener, state, shutdown).await
            }
            None => custos_server::serve(listener, state, shutdown).await,
        }
        .map_err(|e| format!("server failed: {e}"))
    });
    // Requests in flight have finished; every acknowledged entry is durable. Dropping the
    // last handle stops the ledger writer.
    drop(runtime);
    drop(mailer);
    if let Some((stop, thread)) = witness {
        drop(stop);
        let _ = thread.join();
    }
    if let Some((stop, thread)) = sweeper {
        drop(stop);
        let _ = thread.join();
    }
    drop(vault);
    let code = match result {
        Ok(()) => {
            tracing::info!(target: TARGET, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    };
    // The request lines still waiting to be written in a batch.
    log.flush();
    code
}

/// The PEM file of `--smtp-ca`, read (at most 1 MiB).
fn smtp_ca(path: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, String> {
    let Some(path) = path else { return Ok(None) };
    let bytes = std::fs::read(path)
        .map_err(|e| format!("--smtp-ca {}: cannot read it: {e}", path.display()))?;
    if bytes.len() > 1 << 20 {
        return Err(format!(
            "--smtp-ca {}: more than 1 MiB; give the CA's certificates only",
            path.display()
        ));
    }
    Ok(Some(bytes))
}
