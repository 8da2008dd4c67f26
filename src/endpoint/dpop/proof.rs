//! DPoP proofs: one signed JWT per request, and the server nonces they must carry.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use jsonwebtoken::Header;
use url::Url;

use crate::endpoint::dpop::key::DpopKey;
use crate::error::{ConfigError, Error};
use crate::random::random_hex;
use crate::time::unix_seconds;

/// The response header a server hands out a nonce in.
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The most nonce bytes kept: real ones are a few dozen; more is a misbehaving server.
const MAX_NONCE_BYTES: usize = 512;

/// The most origins whose nonces are kept: a middleware talks to a handful.
const MAX_ORIGINS: usize = 64;

/// A DPoP key, and the latest nonce each origin gave.
pub(crate) struct DpopProofs {
    pub(crate) key: DpopKey,
    nonces: Mutex<HashMap<String, String>>,
}

impl DpopProofs {
    pub(crate) fn new(key: DpopKey) -> Self {
        Self {
            key,
            nonces: Mutex::default(),
        }
    }

    /// A new proof for a `method` request to `url`, with `ath` when it goes with a token, and
    /// the nonce `url`'s origin gave last, if any.
    pub(crate) fn proof(
        &self,
        method: &Method,
        url: &Url,
        ath: Option<&str>,
    ) -> Result<HeaderValue, Error> {
        let nonce = self.nonce_for(url);
        let proof = sign(
            &self.key,
            method.as_str(),
            &htu(url),
            ath,
            nonce.as_deref(),
            unix_seconds(SystemTime::now()),
        )?;
        // A JWT is base64url and dots: always a valid header value.
        let mut value = HeaderValue::try_from(proof).map_err(|_| unsignable())?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Keeps the nonce in `headers` (`DPoP-Nonce`), if any, for `url`'s origin; whether there
    /// was one that is new.
    pub(crate) fn remember_nonce(&self, url: &Url, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if nonce.is_empty() || nonce.len() > MAX_NONCE_BYTES {
            return false;
        }
        let origin = url.origin().ascii_serialization();
        let mut nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        if nonces.get(&origin).is_some_and(|known| known == nonce) {
            return false;
        }
        if nonces.len() >= MAX_ORIGINS && !nonces.contains_key(&origin) {
            nonces.clear();
        }
        nonces.insert(origin, nonce.to_owned());
        true
    }

    fn nonce_for(&self, url: &Url) -> Option<String> {
        let nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        nonces.get(&url.origin().ascii_serialization()).cloned()
    }
}

/// `htu`: the request URL without its query and fragment (RFC 9449 §4.2).
fn htu(url: &Url) -> String {
    let mut htu = url.clone();
    htu.set_query(None);
    htu.set_fragment(None);
    htu.into()
}

/// A DPoP proof JWT (RFC 9449 §4.2), signed with `key`.
pub(super) fn sign(
    key: &DpopKey,
    htm: &str,
    htu: &str,
    ath: Option<&str>,
    nonce: Option<&str>,
    iat: u64,
) -> Result<String, Error> {
    let mut header = Header::new(key.jwt_algorithm().jsonwebtoken());
    header.typ = Some("dpop+jwt".to_owned());
    header.jwk = Some(key.jwk().clone());
    let mut claims = serde_json::json!({
        "jti": random_hex(),
        "htm": htm,
        "htu": htu,
        "iat": iat,
    });
    // `ath` and `nonce` only when there is one: absent, not null.
    for (name, value) in [("ath", ath), ("nonce", nonce)] {
        if let Some(value) = value {
            claims[name] = value.into();
        }
    }
    // The JWS compact form (RFC 7515 §7.1), signed with the key parsed once: jsonwebtoken's
    // `encode` would parse it again for every proof, which costs as much as the signature.
    let part = |json: Vec<u8>| URL_SAFE_NO_PAD.encode(json);
    let mut jwt = part(serde_json::to_vec(&header).map_err(|_| unsignable())?);
    jwt.push('.');
    jwt.push_str(&part(
        serde_json::to_vec(&claims).map_err(|_| unsignable())?,
    ));
    let signature = key.signer().sign(jwt.as_bytes()).ok_or_else(unsignable)?;
    jwt.push('.');
    jwt.push_str(&part(signature));
    Ok(jwt)
}

fn unsignable() -> Error {
    ConfigError::InvalidPrivateKey("the DPoP key could not sign a proof").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_drops_the_query_and_the_fragment() {
        let url = Url::parse("https://api.example:8443/a/b?x=1#top").unwrap();
        assert_eq!(htu(&url), "https://api.example:8443/a/b");
    }

    #[test]
    fn nonces_are_kept_per_origin_and_oversized_ones_ignored() {
        let proofs = DpopProofs::new(DpopKey::generate().unwrap());
        let api = Url::parse("https://api.example/x").unwrap();
        let other = Url::parse("https://other.example/x").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(DPOP_NONCE, HeaderValue::from_static("n-1"));
        assert!(proofs.remember_nonce(&api, &headers));
        assert!(!proofs.remember_nonce(&api, &headers), "not new");
        assert_eq!(proofs.nonce_for(&api).as_deref(), Some("n-1"));
        assert_eq!(proofs.nonce_for(&other), None);
        headers.insert(
            DPOP_NONCE,
            HeaderValue::try_from("n".repeat(MAX_NONCE_BYTES + 1)).unwrap(),
        );
        assert!(!proofs.remember_nonce(&api, &headers));
        assert_eq!(proofs.nonce_for(&api).as_deref(), Some("n-1"));
    }
}
