//! A TLS front for an httpmock server, so that presets that insist on `https://{domain}` (Auth0's)
//! can be tested against a mock: TLS with a throwaway self-signed certificate for `domain`,
//! then plain bytes both ways to the mock.

use std::net::SocketAddr;
use std::sync::Arc;

use httpmock::MockServer;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

pub struct TlsFront {
    /// `domain:port`, as a preset takes it.
    pub domain: String,
    /// A client for the preset's `http_client`: trusts the front's certificate alone, and
    /// resolves `domain` to it.
    pub http: reqwest::Client,
}

/// Serves `domain` over TLS on a free loopback port, in front of `backend`, until the test's
/// runtime ends.
pub async fn tls_front(backend: &MockServer, domain: &str) -> TlsFront {
    let certified = rcgen::generate_simple_self_signed(vec![domain.to_owned()]).unwrap();
    let certificate = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key.into())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front: SocketAddr = listener.local_addr().unwrap();
    let backend = *backend.address();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap()])
        .resolve(domain, front)
        .build()
        .unwrap();
    TlsFront {
        domain: format!("{domain}:{}", front.port()),
        http,
    }
}
