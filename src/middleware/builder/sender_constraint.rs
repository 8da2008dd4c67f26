//! Options that bind tokens to this client: a DPoP key, and a TLS client certificate (mTLS).

#[cfg(feature = "jwt")]
use crate::endpoint::dpop::DpopKey;
use crate::middleware::builder::ClientCredentialsBuilder;

impl ClientCredentialsBuilder {
    /// Binds tokens to `key` with DPoP (RFC 9449): each token request carries a proof signed
    /// with the key, the answer must be a `DPoP` token, and each request the middleware handles
    /// goes out with `Authorization: DPoP …` and a new proof for its method and URL. A server
    /// nonce (`use_dpop_nonce`) is remembered per origin and put in the following proofs: the
    /// token request asking for one is sent again at once; an API request answered 401 for one
    /// is replayed with it, and that is its one replay. The storage key includes the key's
    /// thumbprint, so only middlewares with the same key share tokens.
    #[cfg(feature = "jwt")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
    pub fn dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The client certificate and key that token requests present (mutual TLS, RFC 8705), on
    /// the HTTP client the builder makes: for [`AuthMethod::TlsClientAuth`] and
    /// [`AuthMethod::SelfSignedTlsClientAuth`], and for servers that bind tokens to the
    /// certificate. With your own [`http_client`](Self::http_client), give the certificate to
    /// that client instead (`reqwest::ClientBuilder::identity`).
    ///
    /// A certificate-bound token is good only on connections that present the same
    /// certificate: send API requests through a `reqwest::Client` built with the same
    /// identity.
    ///
    /// [`AuthMethod::TlsClientAuth`]: crate::AuthMethod::TlsClientAuth
    /// [`AuthMethod::SelfSignedTlsClientAuth`]: crate::AuthMethod::SelfSignedTlsClientAuth
    #[cfg(feature = "default-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "default-tls")))]
    pub fn client_identity(mut self, identity: reqwest::Identity) -> Self {
        self.client_identity = Some(identity);
        self
    }
}
