//! HTTPS served directly (`tls: {cert, key}` in the config), because Meta calls webhooks over
//! HTTPS only. The PEM files are loaded and checked at startup, each problem naming the file and
//! what to give instead; the listener hands axum connections that are already through the TLS
//! handshake, so serving — and graceful shutdown — is the same code with TLS as without.
//!
//! rustls with the crypto provider reqwest already uses (aws-lc-rs), so the binary carries one.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::config::Tls;

/// How long a client may take over the handshake before its connection is dropped, so a
/// client that connects and says nothing holds no more than a socket for this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// Why the certificate or key cannot be used; each names the setting and file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error(
        "tls.{setting}: cannot read {} (fix the path, relative to chatflow.yaml, or the file's permissions)",
        path.display()
    )]
    Read {
        /// `cert` or `key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A PEM section of the file is broken.
    #[error(
        "tls.{setting}: {} is not valid PEM (give the file as your certificate authority issued it)",
        path.display()
    )]
    Pem {
        /// `cert` or `key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is broken.
        #[source]
        source: pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error(
        "tls.cert: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the certificate chain, e.g. Let's Encrypt's fullchain.pem",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error(
        "tls.key: {} holds no PEM private key (-----BEGIN PRIVATE KEY-----, or RSA/EC PRIVATE KEY); give the certificate's key, e.g. Let's Encrypt's privkey.pem",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refuses the pair: the key is not the certificate's, or of a kind it cannot use.
    #[error(
        "tls.key: {} cannot serve the certificate in {} (it must be that certificate's own RSA, ECDSA or Ed25519 key)",
        key.display(),
        cert.display()
    )]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}

impl TlsError {
    /// The `tls` setting the problem is in (`cert` or `key`), to point at it in the config.
    #[must_use]
    pub fn setting(&self) -> &'static str {
        match self {
            Self::Read { setting, .. } | Self::Pem { setting, .. } => setting,
            Self::NoCertificate { .. } => "cert",
            Self::NoKey { .. } | Self::Unusable { .. } => "key",
        }
    }
}

/// Loads the certificate chain and key of `tls` and checks they belong together.
///
/// # Errors
/// A file is missing, unreadable or not PEM, holds no certificate or key, or the key does not
/// fit the certificate.
pub fn acceptor(tls: &Tls) -> Result<TlsAcceptor, TlsError> {
    let chain = certificates(&tls.cert)?;
    let key = private_key(&tls.key)?;
    // The provider installed for the process if any, else the one reqwest defaults to.
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let unusable = |source| TlsError::Unusable {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        source,
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(unusable)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("cert", path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            setting: "cert",
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            setting: "key",
            path: path.to_owned(),
            source,
        },
    })
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: path.to_owned(),
        source,
    })
}

/// A TCP listener whose connections come out through the TLS handshake, for `axum::serve`.
/// Handshakes run concurrently, each in its own task with a time limit, so a slow or silent
/// client never holds up the others; a failed one is logged at debug level and dropped.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: AbortHandle,
}

impl TlsListener {
    /// Starts accepting on `tcp` (so call it inside the runtime); connections wait, handshaken,
    /// until the server takes them. Dropping the listener stops accepting.
    ///
    /// # Errors
    /// The socket's address cannot be read.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (handshaken, ready) = mpsc::channel(READY_QUEUE);
        let accepting = tokio::spawn(accept(tcp, acceptor, handshaken)).abort_handle();
        Ok(Self {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts connections (axum's accept retries on errors such as too many open files) and
/// handshakes each in its own task.
async fn accept(
    mut tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = axum::serve::Listener::accept(&mut tcp).await;
        let acceptor = acceptor.clone();
        let handshaken = handshaken.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // The listener is gone (shutting down): the connection closes unserved.
                    let _ = handshaken.send((tls, peer)).await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(message = "TLS handshake failed.", %peer, %error);
                }
                Err(_) => tracing::debug!(message = "TLS handshake timed out.", %peer),
            }
        });
    }
}
