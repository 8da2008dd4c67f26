//! `private_key_jwt` client authentication: a signed JWT in place of the client secret.
//!
//! RFC 7523 §2.2, OpenID Connect Core §9: instead of a shared secret, each token request carries a
//! short-lived JWT signed with the client's private key, whose public half the authorization
//! server holds.

use std::fmt;
use std::sync::{Arc, Once};
use std::time::SystemTime;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::endpoint::assertion_source::assertion_claims;
use crate::error::{ConfigError, Error};

/// The signature algorithm of a client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, for RSA keys: the default for RSA keys.
    Rs256,
    /// RSASSA-PSS with SHA-256, for RSA keys.
    Ps256,
    /// ECDSA on P-256 with SHA-256, for EC keys: the default for EC keys.
    Es256,
    /// HMAC with SHA-256, keyed with the client secret: what
    /// [`AuthMethod::ClientSecretJwt`](crate::AuthMethod::ClientSecretJwt) signs with. A
    /// [`PrivateKey`] refuses it.
    Hs256,
    /// EdDSA on Ed25519: what an Ed25519 [`DpopKey`](crate::DpopKey) signs with. A
    /// [`PrivateKey`] refuses it.
    EdDsa,
}

impl JwtAlgorithm {
    pub(crate) fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Ps256 => Algorithm::PS256,
            Self::Es256 => Algorithm::ES256,
            Self::Hs256 => Algorithm::HS256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// The client's private key for [`AuthMethod::PrivateKeyJwt`](crate::AuthMethod::PrivateKeyJwt),
/// with what goes in the assertions it signs.
///
/// Each token request gets a fresh assertion: `iss` and `sub` are the client id, `aud` the
/// token endpoint (or [`audience`](Self::audience); the [Auth0 preset](crate::ClientCredentials::auth0)
/// sets `https://{domain}/`), `jti` a random UUID, `iat` now and `exp` two minutes later, and
/// the header has `kid` when [`key_id`](Self::key_id) is set.
///
/// `Debug` shows the algorithm, key id and audience, never the key.
///
/// # Example
/// ```no_run
/// use reqwest_alf::{AuthMethod, ClientCredentials, JwtAlgorithm, PrivateKey};
///
/// let pem = std::fs::read("private-key.pem")?;
/// let key = PrivateKey::from_pem(&pem)?
///     .algorithm(JwtAlgorithm::Ps256)
///     .key_id("2024-signing-key");
/// let auth = ClientCredentials::builder("https://idp.example/oauth2/token", "my-client-id", "")
///     .auth_method(AuthMethod::PrivateKeyJwt(key))
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PrivateKey {
    key: Arc<EncodingKey>,
    kind: KeyKind,
    /// Tells keys apart without keeping their bytes anywhere else.
    fingerprint: [u8; 32],
    algorithm: JwtAlgorithm,
    key_id: Option<String>,
    audience: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec,
    /// The client secret, for `client_secret_jwt`.
    Secret,
}

impl PrivateKey {
    /// Reads an unencrypted private key in PEM form, and checks that it can sign: an RSA key
    /// (`RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`) signs with RS256, a P-256 EC key (PKCS#8
    /// `PRIVATE KEY`) with ES256, unless [`algorithm`](Self::algorithm) says otherwise.
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrivateKey`] when `pem` is not such a key. The message never
    /// holds key material.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let pem = pem.as_ref();
        let (key, kind, algorithm) = if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            (key, KeyKind::Rsa, JwtAlgorithm::Rs256)
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            (key, KeyKind::Ec, JwtAlgorithm::Es256)
        } else {
            return Err(invalid_key(
                "not a PEM-encoded RSA or EC private key (PKCS#1 or PKCS#8, unencrypted)",
            ));
        };
        let key = Self {
            key: Arc::new(key),
            kind,
            fingerprint: sha256(pem),
            algorithm,
            key_id: None,
            audience: None,
        };
        key.check()?;
        Ok(key)
    }

    /// The key for `client_secret_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): assertions
    /// signed with HS256, keyed with the client secret.
    pub(crate) fn from_client_secret(secret: &str) -> Self {
        Self {
            key: Arc::new(EncodingKey::from_secret(secret.as_bytes())),
            kind: KeyKind::Secret,
            fingerprint: sha256(secret.as_bytes()),
            algorithm: JwtAlgorithm::Hs256,
            key_id: None,
            audience: None,
        }
    }

    /// The signature algorithm: [`Rs256`](JwtAlgorithm::Rs256) or
    /// [`Ps256`](JwtAlgorithm::Ps256) for RSA keys, [`Es256`](JwtAlgorithm::Es256) for EC keys.
    /// An algorithm that does not fit the key is refused by
    /// [`build`](crate::ClientCredentialsBuilder::build).
    pub fn algorithm(mut self, algorithm: JwtAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// The `kid` header: which of the client's registered keys this is.
    pub fn key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// The assertion's `aud` claim, when the server wants something other than the token
    /// endpoint URL (Auth0 wants `https://{domain}/`, which its preset sets).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Whether this key signs with its algorithm; what `build` checks.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let fits = matches!(
            (self.kind, self.algorithm),
            (KeyKind::Rsa, JwtAlgorithm::Rs256 | JwtAlgorithm::Ps256)
                | (KeyKind::Ec, JwtAlgorithm::Es256)
                | (KeyKind::Secret, JwtAlgorithm::Hs256)
        );
        if !fits {
            return Err(invalid_key(match self.kind {
                KeyKind::Rsa => "an RSA key signs with RS256 or PS256",
                KeyKind::Ec => "an EC key signs with ES256",
                KeyKind::Secret => "a client secret signs with HS256",
            }));
        }
        self.sign(
            "check",
            "check",
            "https://check.invalid/",
            SystemTime::now(),
        )
        .map(drop)
    }

    /// Whether this is the client secret of `client_secret_jwt` rather than a private key.
    pub(crate) fn is_client_secret(&self) -> bool {
        self.kind == KeyKind::Secret
    }

    /// The assertion's audience: the one set on the key, or else `default`.
    pub(crate) fn audience_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.audience.as_deref().unwrap_or(default)
    }

    /// A new assertion by `issuer` about `subject` (both the client id for a client
    /// assertion), for `audience`, issued at `now`.
    pub(crate) fn sign(
        &self,
        issuer: &str,
        subject: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<String, Error> {
        install_crypto_provider();
        let claims = assertion_claims(issuer, subject, audience, now);
        let mut header = Header::new(self.algorithm.jsonwebtoken());
        header.kid.clone_from(&self.key_id);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| invalid_key("the key could not sign a client assertion"))
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
            && self.algorithm == other.algorithm
            && self.key_id == other.key_id
            && self.audience == other.audience
    }
}

impl Eq for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("key", &"[redacted]")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("audience", &self.audience)
            .finish()
    }
}

fn invalid_key(reason: &'static str) -> Error {
    ConfigError::InvalidPrivateKey(reason).into()
}

/// jsonwebtoken picks its crypto from its cargo features, and cannot when another crate in the
/// build turns on a second backend. Naming ours once makes signing work either way; a provider
/// the application installed first is kept.
pub(crate) fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

/// The SHA-256 of `bytes`: what tells two keys apart without keeping a copy of either.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    const RSA: &str = include_str!("../../tests/all/keys/rsa-private.pem");
    const RSA_PKCS8: &str = include_str!("../../tests/all/keys/rsa-private-pkcs8.pem");
    const RSA_PUBLIC: &str = include_str!("../../tests/all/keys/rsa-public.pem");
    const EC: &str = include_str!("../../tests/all/keys/ec-private.pem");
    const EC_PUBLIC: &str = include_str!("../../tests/all/keys/ec-public.pem");

    fn verify(assertion: &str, public: DecodingKey, algorithm: Algorithm) -> serde_json::Value {
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&["https://idp.example/token"]);
        validation.set_issuer(&["client-1"]);
        jsonwebtoken::decode::<serde_json::Value>(assertion, &public, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn rsa_keys_sign_rs256_by_default_and_ps256_on_request() {
        for pem in [RSA, RSA_PKCS8] {
            let key = PrivateKey::from_pem(pem).unwrap();
            let assertion = key
                .sign(
                    "client-1",
                    "client-1",
                    "https://idp.example/token",
                    SystemTime::now(),
                )
                .unwrap();
            let public = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap();
            let claims = verify(&assertion, public, Algorithm::RS256);
            assert_eq!(claims["sub"], "client-1");

            let pss = key.algorithm(JwtAlgorithm::Ps256);
            pss.check().unwrap();
            let assertion = pss
                .sign(
                    "client-1",
                    "client-1",
                    "https://idp.example/token",
                    SystemTime::now(),
                )
                .unwrap();
            let public = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).unwrap();
            verify(&assertion, public, Algorithm::PS256);
        }
    }

    #[test]
    fn ec_keys_sign_es256() {
        let key = PrivateKey::from_pem(EC).unwrap();
        let assertion = key
            .sign(
                "client-1",
                "client-1",
                "https://idp.example/token",
                SystemTime::now(),
            )
            .unwrap();
        let public = DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap();
        verify(&assertion, public, Algorithm::ES256);
    }

    #[test]
    fn each_assertion_is_new_and_short_lived() {
        let key = PrivateKey::from_pem(EC).unwrap();
        let now = SystemTime::now();
        let decode = |assertion: &str| {
            let public = DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).unwrap();
            verify(assertion, public, Algorithm::ES256)
        };
        let first = decode(
            &key.sign("client-1", "client-1", "https://idp.example/token", now)
                .unwrap(),
        );
        let second = decode(
            &key.sign("client-1", "client-1", "https://idp.example/token", now)
                .unwrap(),
        );
        assert_ne!(first["jti"], second["jti"]);
        let lifetime = first["exp"].as_u64().unwrap() - first["iat"].as_u64().unwrap();
        assert!(lifetime > 0 && lifetime <= 300, "{lifetime}");
    }

    #[test]
    fn bad_key_material_is_a_clear_error_without_the_key() {
        let truncated = &RSA[..RSA.len() / 2];
        let garbled = RSA.replace("MII", "XXX");
        for pem in [
            "",
            "not a key",
            truncated,
            RSA_PUBLIC,
            garbled.as_str(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let error = PrivateKey::from_pem(pem).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(shown.contains("private key"), "{shown}");
            assert!(!shown.contains("MII") && !shown.contains("AAAA"), "{shown}");
        }
    }

    #[test]
    fn an_algorithm_that_does_not_fit_the_key_is_refused() {
        let rsa = PrivateKey::from_pem(RSA)
            .unwrap()
            .algorithm(JwtAlgorithm::Es256);
        assert!(matches!(
            rsa.check(),
            Err(Error::InvalidConfig(ConfigError::InvalidPrivateKey(_)))
        ));
        let ec = PrivateKey::from_pem(EC)
            .unwrap()
            .algorithm(JwtAlgorithm::Rs256);
        assert!(ec.check().is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = PrivateKey::from_pem(RSA).unwrap().key_id("kid-1");
        let shown = format!("{key:?} {key:#?}");
        assert!(
            shown.contains("kid-1") && shown.contains("Rs256"),
            "{shown}"
        );
        assert!(
            !shown.contains("MII") && !shown.contains("BEGIN"),
            "{shown}"
        );
    }

    #[test]
    fn keys_are_equal_by_content_and_settings() {
        let a = PrivateKey::from_pem(RSA).unwrap();
        assert_eq!(a, PrivateKey::from_pem(RSA).unwrap());
        assert_ne!(a, PrivateKey::from_pem(EC).unwrap());
        assert_ne!(a.clone(), a.key_id("other"));
    }
}
