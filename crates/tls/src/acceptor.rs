//! The server side of the handshake on an accepted TCP connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::{peer_thumbprint, server_config, TlsError, TlsSettings};

/// A handshake time limit suited to the listener: long enough for a slow link, short enough
/// that silent connections do not pile up.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs TLS handshakes with one server configuration. Cheap to clone.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
}

impl TlsAcceptor {
    /// An acceptor for a configuration built by [`server_config`].
    pub fn new(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor { inner: tokio_rustls::TlsAcceptor::from(config) }
    }

    /// Loads the settings' files and builds the acceptor.
    pub fn from_settings(settings: &TlsSettings) -> Result<Self, TlsError> {
        Ok(Self::new(server_config(settings)?))
    }

    /// The handshake, with no time limit: prefer [`accept_within`](Self::accept_within) on a
    /// listener. Returns the stream and the thumbprint of the client certificate, if any.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<(TlsStream<TcpStream>, Option<String>)> {
        let stream = self.inner.accept(tcp).await?;
        let thumbprint = peer_thumbprint(stream.get_ref().1);
        Ok((stream, thumbprint))
    }

    /// The handshake, given up (and the connection dropped) after `limit`, so a client that
    /// opens TCP and never speaks TLS cannot hold the task. A timeout is an error of kind
    /// [`io::ErrorKind::TimedOut`].
    pub async fn accept_within(
        &self,
        tcp: TcpStream,
        limit: Duration,
    ) -> io::Result<(TlsStream<TcpStream>, Option<String>)> {
        match tokio::time::timeout(limit, self.accept(tcp)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("TLS handshake not done within {limit:?}"))),
        }
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}
