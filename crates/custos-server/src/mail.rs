//! Delivering the vault's outbox (`custos_vault` `vault/mail.rs`): a plain thread claims the
//! due messages, sends each through the [`Transport`], and tells the vault how it went — sent
//! (the message's content is deleted), failed for now (retried with exponential backoff), or
//! refused for good / out of attempts (given up, content deleted).
//!
//! Two transports: SMTP (`custos serve --smtp-url smtp://user:pass@host:port`, STARTTLS —
//! required unless the relay is on this machine ([`SmtpTls::of`]) — or `smtps://…` for TLS
//! from the first byte; AUTH with the URL's user and password; `--smtp-ca` for a relay whose
//! certificate a private CA signed), and, without one, files: each message written as an
//! RFC 5322 `.eml` file under `<data>/outbox/`, so `custos serve` needs nothing else to run.
//!
//! A plain thread, not a task: the vault's PostgreSQL client must not run inside the
//! runtime (`workers.rs`), and lettre's blocking SMTP client is as simple as it gets.
//!
//! **Invariant:** no address, subject line or body is logged; a line names the message id
//! and the failure's kind (lettre's errors can quote the server's answer, which may echo the
//! address, so only whether it was permanent is kept).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use custos_vault::{OutgoingMail, Vault};
use lettre::message::{
    Mailbox,
    header::{ContentType, HeaderName, HeaderValue},
};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};
use rustls_pki_types::pem::PemObject as _;

use crate::observe::Log;

/// Where `custos serve` logs the outbox's deliveries.
const TARGET: &str = "custos::mail";
/// Messages one pass claims at most.
const BATCH: u64 = 32;
/// How long an SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How messages leave.
#[derive(Clone)]
pub enum Transport {
    /// Each message as an RFC 5322 `.eml` file in this folder (made 0700 if missing).
    Files(PathBuf),
    /// An SMTP server.
    Smtp(Box<SmtpTransport>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files(dir) => write!(f, "Files({})", dir.display()),
            // The URL's password stays out of any log line.
            Self::Smtp(_) => f.write_str("Smtp(..)"),
        }
    }
}

impl Transport {
    /// The folder a vault's messages are written to without SMTP: `<data>/outbox/`.
    pub fn files_in(data: &Path) -> Self {
        Self::Files(data.join("outbox"))
    }

    /// An SMTP transport from `smtp://[user:pass@]host[:port]` (STARTTLS) or
    /// `smtps://…` (TLS from the first byte); the user and password are percent-decoded and
    /// used for AUTH. The server's certificate is checked against the public (webpki) roots
    /// and the PEM certificates of `extra_roots` (`--smtp-ca`: a relay with a private CA).
    ///
    /// How much TLS `smtp://` insists on ([`SmtpTls::of`]): STARTTLS is required unless the
    /// host is this machine (`localhost`, a loopback address), where it is used when offered;
    /// `?tls=required` insists anywhere; `?tls=opportunistic` settles for plain text when the
    /// server offers no STARTTLS — never with a user and password to another host, whose
    /// credentials an attacker stripping `STARTTLS` from the server's answer would read.
    pub fn smtp(url: &str, extra_roots: Option<&[u8]>) -> Result<Self, String> {
        let bad = |e: &dyn std::fmt::Display| format!("--smtp-url: {e}");
        let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad(&"the URL names no host"))?;
        let tls = SmtpTls::of(&parsed)?;
        // lettre reads the host, port, credentials and EHLO name; the TLS is set here.
        let mut base = parsed.clone();
        base.set_query(None);
        let mut params = TlsParameters::builder(host.trim_matches(['[', ']']).to_string());
        if let Some(pem) = extra_roots {
            let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--smtp-ca: not PEM certificates: {e}"))?;
            if certs.is_empty() {
                return Err("--smtp-ca: the file holds no PEM certificate".into());
            }
            for c in certs {
                let cert = Certificate::from_der(c.to_vec())
                    .map_err(|e| format!("--smtp-ca: a certificate is invalid: {e}"))?;
                params = params.add_root_certificate(cert);
            }
        }
        let params = params.build_rustls().map_err(|e| bad(&e))?;
        let (url, tls) = match tls {
            SmtpTls::Wrapper => (base.as_str().to_string(), Tls::Wrapper(params)),
            // lettre's `tls=required` gives the submission port (587) when none is named.
            SmtpTls::Required => (format!("{base}?tls=required"), Tls::Required(params)),
            SmtpTls::Opportunistic => (
                format!("{base}?tls=opportunistic"),
                Tls::Opportunistic(params),
            ),
        };
        let transport = SmtpTransport::from_url(&url)
            .map_err(|e| bad(&e))?
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self::Smtp(Box::new(transport)))
    }
}

/// How much TLS an SMTP URL insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte.
    Wrapper,
    /// STARTTLS, or no message is sent.
    Required,
    /// STARTTLS when the server offers it, else plain text.
    Opportunistic,
}

impl SmtpTls {
    /// What `url` asks for, with its defaults (see [`Transport::smtp`]); an error for a
    /// scheme or `tls` value it does not know, and for credentials that could cross the
    /// network in plain text.
    pub fn of(url: &url::Url) -> Result<Self, String> {
        let asked = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        // `smtp` is not a scheme the URL standard knows: its host is text, an address too.
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let local = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let tls = match (url.scheme(), asked.as_deref()) {
            ("smtps", None) => Self::Wrapper,
            ("smtp", Some("required")) => Self::Required,
            ("smtp", Some("opportunistic")) => Self::Opportunistic,
            ("smtp", None) if local => Self::Opportunistic,
            ("smtp", None) => Self::Required,
            ("smtp" | "smtps", Some(other)) => {
                return Err(format!(
                    "--smtp-url: tls={other} is not a choice; use tls=required or tls=opportunistic with smtp://, nothing with smtps://"
                ));
            }
            (scheme, _) => {
                return Err(format!(
                    "--smtp-url: scheme `{scheme}`; use smtp://user:pass@host:port or smtps://…"
                ));
            }
        };
        if tls == Self::Opportunistic && !local && url.password().is_some() {
            return Err(
                "--smtp-url: tls=opportunistic with a user and password to another host would send them in plain text if STARTTLS were stripped; drop tls=opportunistic (STARTTLS is then required) or use smtps://"
                    .into(),
            );
        }
        Ok(tls)
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Delivered (handed to the SMTP server, or written).
    Sent,
    /// Failed; worth trying again later.
    Transient,
    /// Refused for good (a 5xx answer, an address that does not parse).
    Permanent,
}

/// The message as RFC 5322: `From`, `To`, `Subject`, `Date`, `Message-ID`, a plain-text
/// UTF-8 body.
fn message(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, Attempt> {
    let to: Mailbox = mail.mail.to.parse().map_err(|_| Attempt::Permanent)?;
    let domain = from.email.domain().to_string();
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.mail.subject.clone())
        .message_id(Some(format!("<{}@{domain}>", mail.id)));
    for (name, value) in &mail.mail.headers {
        let name = HeaderName::new_from_ascii(name.clone()).map_err(|_| Attempt::Permanent)?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    match &mail.mail.html {
        // A mailing with an HTML body: both, as `multipart/alternative`.
        Some(html) => builder
            .multipart(lettre::message::MultiPart::alternative_plain_html(
                mail.mail.text.clone(),
                html.clone(),
            ))
            .map_err(|_| Attempt::Permanent),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(mail.mail.text.clone())
            .map_err(|_| Attempt::Permanent),
    }
}

/// Sends one message.
pub fn deliver(transport: &Transport, from: &Mailbox, mail: &OutgoingMail) -> Attempt {
    let msg = match message(from, mail) {
        Ok(m) => m,
        Err(a) => return a,
    };
    match transport {
        Transport::Files(dir) => match write_eml(dir, &mail.id, &msg.formatted()) {
            Ok(()) => Attempt::Sent,
            Err(e) => {
                tracing::warn!(target: TARGET, id = %mail.id, error = %e.kind(), "cannot write the message");
                Attempt::Transient
            }
        },
        Transport::Smtp(smtp) => match smtp.send(&msg) {
            Ok(_) => Attempt::Sent,
            Err(e) if e.is_permanent() => Attempt::Permanent,
            Err(_) => Attempt::Transient,
        },
    }
}

/// Writes `<dir>/<id>.eml` (0600, in a 0700 folder), through a temporary file renamed into
/// place, so a reader never sees half a message.
fn write_eml(dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)?;
    }
    let tmp = dir.join(format!(".{id}.tmp"));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{id}.eml")))
}

/// One pass: claims the due messages and delivers each; returns how many were sent.
pub fn deliver_due(
    vault: &Vault,
    transport: &Transport,
    from: &Mailbox,
) -> custos_vault::Result<usize> {
    let mut sent = 0;
    for mail in vault.claim_mail(BATCH)? {
        match deliver(transport, from, &mail) {
            Attempt::Sent => {
                vault.mail_sent(&mail)?;
                sent += 1;
            }
            a => {
                let state = vault.mail_failed(&mail, a == Attempt::Permanent)?;
                tracing::warn!(
                    target: TARGET,
                    id = %mail.id,
                    attempt = mail.attempts + 1,
                    permanent = a == Attempt::Permanent,
                    "delivery failed; the message is {state}"
                );
            }
        }
    }
    Ok(sent)
}

/// The outbox's delivery thread; stops (after its pass in progress) when dropped.
#[derive(Debug)]
pub struct MailWorker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MailWorker {
    /// Starts the thread: a pass every `every` (and at once), logging to `log`.
    pub fn start(
        vault: Arc<Vault>,
        transport: Transport,
        from: Mailbox,
        every: Duration,
        log: &Log,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let dispatch = log.scoped().cloned();
        let thread = std::thread::Builder::new()
            .name("custos-mail".into())
            .spawn(move || {
                let _log = dispatch.as_ref().map(tracing::dispatcher::set_default);
                loop {
                    // A full batch sent: more may be due (a mailing); the next pass at once.
                    let wait = match deliver_due(&vault, &transport, &from) {
                        Ok(n) if n as u64 >= BATCH => Duration::ZERO,
                        Ok(_) => every,
                        Err(e) => {
                            // The vault's errors name no value.
                            tracing::error!(target: TARGET, "outbox pass failed: {e}");
                            every
                        }
                    };
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for MailWorker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses the sender's address (`--mail-from`).
pub fn sender(from: &str) -> Result<Mailbox, String> {
    from.parse::<Mailbox>()
        .map_err(|_| format!("--mail-from: `{from}` is not an email address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(url: &str) -> Result<SmtpTls, String> {
        SmtpTls::of(&url::Url::parse(url).map_err(|e| e.to_string())?)
    }

    /// STARTTLS is required by default, except to this machine; a password never goes to
    /// another host where a stripped `STARTTLS` would leave it in plain text.
    #[test]
    fn an_smtp_url_insists_on_tls_unless_the_relay_is_this_machine() {
        for (url, want) in [
            ("smtp://mail.example.com", SmtpTls::Required),
            ("smtp://u:p@mail.example.com:587", SmtpTls::Required),
            ("smtp://u:p@10.0.0.5:25", SmtpTls::Required),
            ("smtp://mail.example.com?tls=required", SmtpTls::Required),
            (
                "smtp://mail.example.com?tls=opportunistic",
                SmtpTls::Opportunistic,
            ),
            ("smtp://u:p@127.0.0.1:25", SmtpTls::Opportunistic),
            ("smtp://u:p@127.8.0.1:25", SmtpTls::Opportunistic),
            ("smtp://u:p@[::1]:25", SmtpTls::Opportunistic),
            ("smtp://u:p@LocalHost:25", SmtpTls::Opportunistic),
            ("smtp://u:p@localhost:25?tls=required", SmtpTls::Required),
            (
                "smtp://u:p@127.0.0.1:25?tls=opportunistic",
                SmtpTls::Opportunistic,
            ),
            ("smtps://u:p@mail.example.com", SmtpTls::Wrapper),
        ] {
            assert_eq!(tls(url), Ok(want), "{url}");
        }
        for (url, says) in [
            (
                "smtp://u:p@mail.example.com?tls=opportunistic",
                "plain text",
            ),
            (
                "smtp://u:p@localhost.example.com?tls=opportunistic",
                "plain text",
            ),
            (
                "smtp://mail.example.com?tls=none",
                "tls=none is not a choice",
            ),
            (
                "smtps://mail.example.com?tls=required",
                "nothing with smtps://",
            ),
            ("http://mail.example.com", "scheme `http`"),
        ] {
            let e = tls(url).unwrap_err();
            assert!(
                e.starts_with("--smtp-url: ") && e.contains(says),
                "{url}: {e}"
            );
        }
        assert!(Transport::smtp("smtp://", None).is_err());
        assert!(Transport::smtp("not a url", None).is_err());
    }
}
