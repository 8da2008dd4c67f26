//! A DPoP key parsed once: each proof costs one signature, not a parse and a signature.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaEncoding, RsaKeyPair,
};
use jsonwebtoken::EncodingKey;

use crate::endpoint::client_assertion::JwtAlgorithm;

/// The private key, ready to sign with its algorithm.
pub(super) enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ed(Ed25519KeyPair),
}

impl Signer {
    /// `key` (DER, as jsonwebtoken keeps it: PKCS#8 for EC and Ed25519, PKCS#1 for RSA) for
    /// `algorithm`, or `None` when it is not such a key.
    pub(super) fn new(key: &EncodingKey, algorithm: JwtAlgorithm) -> Option<Self> {
        let der = key.as_bytes();
        match algorithm {
            JwtAlgorithm::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .ok()
                .map(Self::Ec),
            JwtAlgorithm::Rs256 => RsaKeyPair::from_der(der)
                .ok()
                .map(|pair| Self::Rsa(pair, &RSA_PKCS1_SHA256)),
            JwtAlgorithm::Ps256 => RsaKeyPair::from_der(der)
                .ok()
                .map(|pair| Self::Rsa(pair, &RSA_PSS_SHA256)),
            JwtAlgorithm::EdDsa => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .ok()
                .map(Self::Ed),
            JwtAlgorithm::Hs256 => None,
        }
    }

    /// The JWS signature of `message` (RFC 7515), or `None` if the crypto library fails.
    pub(super) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .ok()
                .map(|signature| signature.as_ref().to_vec()),
            Self::Rsa(pair, encoding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), message, &mut signature)
                    .ok()?;
                Some(signature)
            }
            Self::Ed(pair) => Some(pair.sign(message).as_ref().to_vec()),
        }
    }
}
