//! HTTPS (C044: personal information crosses the network encrypted): a rustls listener for
//! [`crate::serve`]. Handshakes run in their own tasks, each with a deadline, so a slow or
//! hostile client cannot stall the others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tracing::instrument::WithSubscriber as _;

use crate::Log;

/// The target of the TLS events.
const TARGET: &str = "custos::tls";

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS configuration from a PEM certificate chain and a PEM private key.
pub fn config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate `{}`: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in `{}`", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key `{}`: {e}", key.display()))?;
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: the certificate and key do not make a configuration: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A listener that yields connections after their TLS handshake.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    rx: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
}

/// The peer of a TLS connection: its requests count as TLS (`transport.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsPeer(pub SocketAddr);

impl crate::transport::Peer for TlsPeer {
    fn socket_addr(&self) -> SocketAddr {
        self.0
    }
    fn is_tls(&self) -> bool {
        true
    }
}

impl TlsListener {
    /// Accepts TCP connections on `tcp` and completes handshakes in the background, logging
    /// failed ones to `log`. Must be called within a Tokio runtime.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>, log: Log) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(64);
        let dispatch = log.scoped().cloned();
        let scoped = dispatch.is_some();
        let accept = async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    // The server stopped: stop accepting, and close the socket.
                    () = tx.closed() => break,
                };
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(_) => {
                        // Out of descriptors and the like: back off, then go on.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, done) = (acceptor.clone(), tx.clone());
                let handshake = async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, TlsPeer(peer))).await;
                        }
                        // The peer's address is not logged: it is personal information.
                        Ok(Err(e)) => {
                            tracing::info!(target: TARGET, error = %e, "tls handshake failed");
                        }
                        Err(_) => tracing::info!(target: TARGET, "tls handshake timed out"),
                    }
                };
                if scoped {
                    tokio::spawn(handshake.with_current_subscriber());
                } else {
                    tokio::spawn(handshake);
                }
            }
        };
        match dispatch {
            Some(d) => tokio::spawn(accept.with_subscriber(d)),
            None => tokio::spawn(accept),
        };
        Ok(Self { local, rx })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The acceptor task ended: no connection will ever come.
            None => std::future::pending().await,
        }
    }

    /// The address it listens on (a [`TlsPeer`], as the trait has one address type).
    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer(self.local))
    }
}
