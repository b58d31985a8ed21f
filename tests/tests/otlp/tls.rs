//! TLS for the test receiver: a test CA and the receiver's certificate
//! (rcgen), and an axum listener that does the handshake.
use std::{net::SocketAddr, sync::Arc};

use anyhow::Result;

/// A test CA and a server certificate for 127.0.0.1 signed by it (PEM).
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestPki {
    pub fn generate() -> Result<Self> {
        use crate::support::pki::{TestCa, Usage};
        let ca = TestCa::new()?;
        let server = ca.issue("receiver", "127.0.0.1", Usage::ServerAuth)?;
        Ok(Self {
            ca_pem: ca.pem(),
            cert_pem: server.cert_pem,
            key_pem: server.key_pem,
        })
    }

    pub(super) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor> {
        use tokio_rustls::rustls::{
            crypto::ring,
            pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
            ServerConfig,
        };
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())?;
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// HTTPS for axum: TCP accept, then the TLS handshake (failed ones skipped).
pub(super) struct TlsListener {
    pub(super) tcp: tokio::net::TcpListener,
    pub(super) acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
