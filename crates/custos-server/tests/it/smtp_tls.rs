//! The outbox over SMTP with TLS (issue 13's mail, RFC 3207): STARTTLS to a server whose
//! certificate `--smtp-ca` trusts carries the AUTH and the message encrypted; a certificate
//! nobody vouched for, or a server that offers no STARTTLS when TLS is required, gets
//! nothing — neither the password nor the message — in plain text.

use custos_server::mail::Transport;
use custos_vault::Mail;

use crate::people::{SmtpServer, deliver, starttls_config};
use crate::support::TestApp;

const CA: &[u8] = include_bytes!("fixtures/localhost.crt");

fn queue(app: &TestApp, to: &str) {
    app.vault()
        .queue_mail(&Mail {
            to: to.into(),
            subject: "Your sign-in code".into(),
            text: "Your code is 24681357.".into(),
            ..Default::default()
        })
        .unwrap();
}

/// Nothing but the greeting and STARTTLS crossed in plain text.
fn only_starttls_in_plain(smtp: &SmtpServer) {
    let plain = smtp.plain_commands();
    assert!(
        plain
            .iter()
            .all(|c| c.starts_with("EHLO") || c == "STARTTLS"),
        "{plain:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_carries_the_auth_and_the_message_to_a_trusted_server() {
    let app = TestApp::spawn().await;
    let smtp = SmtpServer::start_with(false, Some(starttls_config()));
    // `tls=required`, and the loopback default (STARTTLS when offered): both turn TLS.
    for (n, query) in [(1, "?tls=required"), (2, "")] {
        queue(&app, &format!("tls-rcpt-{n}@example.invalid"));
        let url = format!("smtp://mailer:s%40cret@localhost:{}{query}", smtp.port);
        let t = Transport::smtp(&url, Some(CA)).unwrap();
        assert_eq!(deliver(app.vault(), &t).await, 1, "{url}");
        let got = smtp.received();
        assert_eq!(got.len(), n);
        let r = &got[n - 1];
        assert!(r.tls, "the message came in plain text: {url}");
        assert_eq!(r.auth.as_deref(), Some("AG1haWxlcgBzQGNyZXQ="));
        assert!(r.data.contains("Your code is 24681357."));
    }
    only_starttls_in_plain(&smtp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_gets_nothing() {
    let app = TestApp::spawn().await;
    queue(&app, "untrusted-rcpt@example.invalid");
    let smtp = SmtpServer::start_with(false, Some(starttls_config()));
    // The public roots only: the server's self-signed certificate is nobody's.
    for query in ["?tls=required", ""] {
        let url = format!("smtp://mailer:s%40cret@localhost:{}{query}", smtp.port);
        let t = Transport::smtp(&url, None).unwrap();
        assert_eq!(deliver(app.vault(), &t).await, 0, "{url}");
        crate::people::make_due(&app.dir);
    }
    assert!(smtp.received().is_empty());
    only_starttls_in_plain(&smtp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_sends_nothing_to_a_server_without_starttls() {
    let app = TestApp::spawn().await;
    queue(&app, "plain-rcpt@example.invalid");
    let smtp = SmtpServer::start(false);
    let url = format!(
        "smtp://mailer:s%40cret@127.0.0.1:{}?tls=required",
        smtp.port
    );
    let t = Transport::smtp(&url, Some(CA)).unwrap();
    assert_eq!(deliver(app.vault(), &t).await, 0);
    assert!(smtp.received().is_empty());
    let plain = smtp.plain_commands();
    assert!(plain.iter().all(|c| c.starts_with("EHLO")), "{plain:?}");
}

/// `--smtp-ca` that holds no certificate is refused with what to give instead.
#[test]
fn an_smtp_ca_without_certificates_is_refused() {
    for pem in [
        &b""[..],
        b"not a certificate",
        include_bytes!("fixtures/localhost.key"),
    ] {
        let e = Transport::smtp("smtp://localhost:25", Some(pem)).unwrap_err();
        assert!(e.starts_with("--smtp-ca:"), "{e}");
    }
}
