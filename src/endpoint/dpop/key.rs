//! [`DpopKey`]: the key DPoP tokens are bound to, from a PEM or generated; its public JWK.
//!
//! Its thumbprint (RFC 7638) is part of the storage key: a bound token is good only with its key.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};

use crate::endpoint::client_assertion::{JwtAlgorithm, install_crypto_provider};
use crate::endpoint::dpop::signer::Signer;
use crate::error::{ConfigError, Error};

/// The key DPoP proofs are signed with, for [`dpop`](crate::ClientCredentialsBuilder::dpop).
///
/// From a PEM (an RSA key signs with RS256, or PS256 on request; a P-256 EC key with ES256; an
/// Ed25519 key with EdDSA), or [generated](Self::generate) for the process (ES256).
///
/// Tokens are bound to the key: with a shared [`TokenStorage`](crate::TokenStorage), only
/// middlewares with the same key share tokens. Its [`thumbprint`](Self::thumbprint) (RFC 7638)
/// is part of the storage key, so that a middleware never picks up a token bound to another
/// key. A generated key lives only as long as the process, and so do the tokens bound to it.
///
/// `Debug` shows the algorithm and the thumbprint, never the key.
///
/// # Example
/// ```
/// use reqwest_alf::{ClientCredentials, DpopKey};
///
/// let key = DpopKey::generate()?;
/// let auth = ClientCredentials::builder("https://idp.example/oauth2/token", "id", "secret")
///     .dpop(key)
///     .build()?;
/// # Ok::<(), reqwest_alf::Error>(())
/// ```
#[derive(Clone)]
pub struct DpopKey {
    key: Arc<EncodingKey>,
    signer: Arc<Signer>,
    kind: KeyKind,
    algorithm: JwtAlgorithm,
    /// The public half, as it goes in each proof's header.
    jwk: Arc<Jwk>,
    thumbprint: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec,
    Ed,
}

impl DpopKey {
    /// Reads an unencrypted private key in PEM form: RSA (`RSA PRIVATE KEY` or PKCS#8),
    /// EC P-256 or Ed25519 (PKCS#8 `PRIVATE KEY`).
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrivateKey`] when `pem` is not such a key. The message never holds
    /// key material.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        install_crypto_provider();
        let pem = pem.as_ref();
        let (key, kind, algorithm) = if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            (key, KeyKind::Rsa, JwtAlgorithm::Rs256)
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            (key, KeyKind::Ec, JwtAlgorithm::Es256)
        } else if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            (ed25519_v1(&key)?, KeyKind::Ed, JwtAlgorithm::EdDsa)
        } else {
            return Err(invalid_key(
                "not a PEM-encoded RSA, EC P-256 or Ed25519 private key (unencrypted)",
            ));
        };
        Self::with(Arc::new(key), kind, algorithm)
    }

    /// A new P-256 key (ES256) for this process alone: tokens bound to it cannot be shared with
    /// other processes, and die with it.
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrivateKey`] if the system's random source fails.
    pub fn generate() -> Result<Self, Error> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        install_crypto_provider();
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|_| invalid_key("a new P-256 key could not be generated"))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        Self::with(Arc::new(key), KeyKind::Ec, JwtAlgorithm::Es256)
    }

    /// The signature algorithm, for RSA keys: [`Rs256`](JwtAlgorithm::Rs256) (the default) or
    /// [`Ps256`](JwtAlgorithm::Ps256).
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrivateKey`] when the algorithm does not fit the key.
    pub fn algorithm(self, algorithm: JwtAlgorithm) -> Result<Self, Error> {
        Self::with(self.key, self.kind, algorithm)
    }

    /// The key's JWK SHA-256 thumbprint (RFC 7638), base64url: what a server puts in a bound
    /// token's `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The signature algorithm.
    pub(crate) fn jwt_algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    pub(super) fn signer(&self) -> &Signer {
        &self.signer
    }

    pub(crate) fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn with(key: Arc<EncodingKey>, kind: KeyKind, algorithm: JwtAlgorithm) -> Result<Self, Error> {
        let fits = matches!(
            (kind, algorithm),
            (KeyKind::Rsa, JwtAlgorithm::Rs256 | JwtAlgorithm::Ps256)
                | (KeyKind::Ec, JwtAlgorithm::Es256)
                | (KeyKind::Ed, JwtAlgorithm::EdDsa)
        );
        if !fits {
            return Err(invalid_key(match kind {
                KeyKind::Rsa => "an RSA key signs DPoP proofs with RS256 or PS256",
                KeyKind::Ec => "an EC key signs DPoP proofs with ES256",
                KeyKind::Ed => "an Ed25519 key signs DPoP proofs with EdDSA",
            }));
        }
        let jwk = Jwk::from_encoding_key(&key, algorithm.jsonwebtoken())
            .map_err(|_| invalid_key("the public key could not be read from the private key"))?;
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| invalid_key("the key's thumbprint could not be computed"))?;
        let signer = Signer::new(&key, algorithm)
            .ok_or_else(|| invalid_key("the key could not be read for signing"))?;
        let key = Self {
            signer: Arc::new(signer),
            key,
            kind,
            algorithm,
            jwk: Arc::new(jwk),
            thumbprint: thumbprint.into(),
        };
        // A key that cannot sign is refused here, not on the first request.
        key.signer
            .sign(b"a DPoP proof")
            .ok_or_else(|| invalid_key("the key could not sign a DPoP proof"))?;
        Ok(key)
    }
}

impl PartialEq for DpopKey {
    /// The same public key and algorithm (and so the same private key).
    fn eq(&self, other: &Self) -> bool {
        self.thumbprint == other.thumbprint && self.algorithm == other.algorithm
    }
}

impl Eq for DpopKey {}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("key", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("thumbprint", &self.thumbprint)
            .finish()
    }
}

/// The same Ed25519 key as PKCS#8 v1: a v2 document (with the public key, as OpenSSL 3 and
/// rcgen write them) is one jsonwebtoken cannot read the public key from.
fn ed25519_v1(key: &EncodingKey) -> Result<EncodingKey, Error> {
    use aws_lc_rs::signature::Ed25519KeyPair;
    let v1 = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes())
        .ok()
        .and_then(|pair| pair.to_pkcs8v1().ok())
        .ok_or_else(|| invalid_key("not a usable Ed25519 private key"))?;
    Ok(EncodingKey::from_ed_der(v1.as_ref()))
}

fn invalid_key(reason: &'static str) -> Error {
    ConfigError::InvalidPrivateKey(reason).into()
}
