//! What DPoP asks of HTTP: the `DPoP` header, a server's nonce challenge, a token's `ath`.
//!
//! Plain HTTP and hashing, with no signing: the middleware reads these with or without the
//! `jwt` feature.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName};
use http_auth::parser::ChallengeParser;

/// The request header a proof goes in.
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");

/// Whether a resource server's 401 asks for a proof with its nonce: a `DPoP` challenge whose
/// `error` is `use_dpop_nonce` (RFC 9449 §9), among any others in any `WWW-Authenticate` field
/// (a field may hold several challenges, and proxies merge fields: RFC 9110 §11.6.1). What
/// cannot be parsed asks for nothing.
pub(crate) fn asks_for_nonce(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| ChallengeParser::new(value).map_while(Result::ok))
        .any(|challenge| {
            challenge.scheme.eq_ignore_ascii_case("DPoP")
                && challenge.params.iter().any(|(name, value)| {
                    name.eq_ignore_ascii_case("error") && value.to_unescaped() == "use_dpop_nonce"
                })
        })
}

/// `ath`: the base64url SHA-256 of the access token (RFC 9449 §4.2).
pub(crate) fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn ath_is_the_base64url_sha256_of_the_token() {
        // RFC 9449 §7.1's example token and its hash.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn a_nonce_challenge_is_a_dpop_challenge_naming_use_dpop_nonce() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(value),
            );
            headers
        };
        assert!(asks_for_nonce(&headers(
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce""#
        )));
        assert!(!asks_for_nonce(&headers(r#"DPoP error="invalid_token""#)));
        assert!(!asks_for_nonce(&headers(
            r#"Bearer error="use_dpop_nonce""#
        )));
        // Several challenges in one field, as a proxy merges them.
        assert!(asks_for_nonce(&headers(
            r#"Bearer realm="api", DPoP error="use_dpop_nonce""#
        )));
        assert!(asks_for_nonce(&headers(
            r#"Bearer realm="api", error="invalid_token", DPoP algs="ES256", error=use_dpop_nonce"#
        )));
        assert!(!asks_for_nonce(&headers(
            r#"Bearer error="invalid_token", DPoP algs="ES256 EdDSA""#
        )));
        // The words alone, elsewhere than in a DPoP challenge's error, ask for nothing.
        assert!(!asks_for_nonce(&headers(
            r#"DPoP error="invalid_token", error_description="not a use_dpop_nonce case""#
        )));
        assert!(!asks_for_nonce(&headers(
            r#"Bearer error="use_dpop_nonce", DPoP realm="api""#
        )));
        assert!(!asks_for_nonce(&headers(r#"DPoP error="use_dpop_nonce"#)));
        // Two fields: the second one asks.
        let mut two = headers(r#"Bearer error="invalid_token""#);
        two.append(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"DPoP error="use_dpop_nonce""#),
        );
        assert!(asks_for_nonce(&two));
    }
}
