//! A token endpoint behind TLS that requires a client certificate (mutual TLS, RFC 8705): a
//! rustls server that checks client certificates against a throwaway CA (rcgen), in front of an
//! httpmock server, and records the certificate each connection presented.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use httpmock::MockServer;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// A client certificate signed by the front's CA, and its key, as one PEM.
pub struct ClientCertificate {
    pub pem: String,
    pub der: Vec<u8>,
}

pub struct MtlsFront {
    /// `https://domain:port`.
    pub base_url: String,
    /// A certificate the front accepts.
    pub client: ClientCertificate,
    /// The front's server certificate, for clients to trust.
    pub server_certificate: reqwest::Certificate,
    pub domain: String,
    pub address: SocketAddr,
    /// The client certificates presented, one per connection that completed its handshake.
    pub presented: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Connections refused during the handshake.
    pub refused: Arc<Mutex<usize>>,
}

impl MtlsFront {
    /// A client that trusts the front and resolves its domain to it, presenting `identity`.
    pub fn client(&self, identity: Option<reqwest::Identity>) -> reqwest::Client {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_only([self.server_certificate.clone()])
            .resolve(&self.domain, self.address);
        match identity {
            Some(identity) => builder.identity(identity),
            None => builder,
        }
        .build()
        .unwrap()
    }
}

/// Serves `domain` over TLS with client certificates required, in front of `backend`.
pub async fn mtls_front(backend: &MockServer, domain: &str) -> MtlsFront {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
    let client = ClientCertificate {
        pem: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
        der: client_cert.der().to_vec(),
    };

    let server = rcgen::generate_simple_self_signed(vec![domain.to_owned()]).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let config = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.cert.der().to_vec())],
            PrivatePkcs8KeyDer::from(server.signing_key.serialize_der()).into(),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let backend = *backend.address();
    let (presented, refused) = (
        Arc::<Mutex<Vec<Vec<u8>>>>::default(),
        Arc::<Mutex<usize>>::default(),
    );
    let (seen, refusals) = (presented.clone(), refused.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, seen, refusals) = (acceptor.clone(), seen.clone(), refusals.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    *refusals.lock().unwrap() += 1;
                    return;
                };
                if let Some(chain) = tls.get_ref().1.peer_certificates() {
                    seen.lock().unwrap().push(chain[0].to_vec());
                }
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    MtlsFront {
        base_url: format!("https://{domain}:{}", address.port()),
        client,
        server_certificate: reqwest::Certificate::from_pem(server.cert.pem().as_bytes()).unwrap(),
        domain: domain.to_owned(),
        address,
        presented,
        refused,
    }
}
