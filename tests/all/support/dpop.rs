//! A DPoP-checking authorization server and API (RFC 9449), on httpmock: each proof is
//! verified as a real server would (signature against the header's `jwk`, `typ`, `htm`, `htu`,
//! `iat` within a minute, `jti` never seen before, `ath`, and the nonce when one is required),
//! and a request whose proof fails is refused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{DecodingKey, Validation};

use super::{Counter, TOKEN_PATH, json_response};

/// What a server checks proofs against, and what it has seen.
#[derive(Clone, Default)]
pub struct Verifier {
    jtis: Arc<Mutex<HashSet<String>>>,
    /// Thumbprints of the keys whose proofs were accepted, in order.
    pub thumbprints: Arc<Mutex<Vec<String>>>,
    /// Every proof refused, with why.
    pub refusals: Arc<Mutex<Vec<String>>>,
}

impl Verifier {
    /// The proof in `request`, checked for a `method` request to `htu`, bound to `token` when
    /// given, and carrying `nonce` when given; `Err` says what is wrong.
    pub fn check(
        &self,
        request: &HttpMockRequest,
        method: &str,
        htu: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<(), String> {
        let result = self.check_proof(request, method, htu, token, nonce);
        if let Err(why) = &result {
            self.refusals.lock().unwrap().push(why.clone());
        }
        result
    }

    fn check_proof(
        &self,
        request: &HttpMockRequest,
        method: &str,
        htu: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<(), String> {
        let headers = request.headers();
        let proofs: Vec<_> = headers.get_all("dpop").iter().collect();
        let [proof] = proofs[..] else {
            return Err(format!("{} DPoP headers, not one", proofs.len()));
        };
        let proof = proof.to_str().map_err(|e| e.to_string())?;
        let header = jsonwebtoken::decode_header(proof).map_err(|e| e.to_string())?;
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(format!("typ {:?}", header.typ));
        }
        let jwk = header.jwk.ok_or("no jwk")?;
        let jwk_json = serde_json::to_value(&jwk).unwrap();
        if jwk_json.get("d").is_some() || jwk_json.get("p").is_some() {
            return Err("the jwk holds the private key".into());
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(proof, &key, &validation)
            .map_err(|e| format!("signature: {e}"))?
            .claims;
        if claims["htm"] != method {
            return Err(format!("htm {}", claims["htm"]));
        }
        if claims["htu"] != htu {
            return Err(format!("htu {} for {htu}", claims["htu"]));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let iat = claims["iat"].as_u64().ok_or("no iat")?;
        if iat.abs_diff(now) > 60 {
            return Err(format!("iat {iat} is not within a minute of {now}"));
        }
        match (token, claims.get("ath")) {
            (Some(token), Some(ath)) if *ath == ath_of(token) => {}
            (None, None) => {}
            (_, ath) => return Err(format!("ath {ath:?}")),
        }
        if let Some(nonce) = nonce
            && claims["nonce"] != nonce
        {
            return Err(format!("nonce {} instead of {nonce}", claims["nonce"]));
        }
        let jti = claims["jti"].as_str().ok_or("no jti")?.to_owned();
        if !self.jtis.lock().unwrap().insert(jti) {
            return Err("a jti seen before: a replayed proof".into());
        }
        self.thumbprints
            .lock()
            .unwrap()
            .push(jwk.thumbprint(ThumbprintHash::SHA256).unwrap());
        Ok(())
    }
}

/// `ath` as a server computes it: base64url SHA-256 of the token.
pub fn ath_of(token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

/// A token endpoint that hands out DPoP tokens `dpop-token-1`, `-2`, … to requests with a
/// valid proof (and, when `nonce` is set, that nonce in it: a proof without it is answered
/// `400 use_dpop_nonce` with the nonce). Counts the tokens it hands out.
pub async fn token_endpoint(
    auth: &MockServer,
    verifier: &Verifier,
    nonce: Option<&'static str>,
) -> Counter {
    let issued = Counter::default();
    let (counter, verifier, htu) = (issued.clone(), verifier.clone(), auth.url(TOKEN_PATH));
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |request: &HttpMockRequest| {
            match verifier.check(request, "POST", &htu, None, nonce) {
                Ok(()) => {}
                Err(why) if why.starts_with("nonce") => {
                    return HttpMockResponse::builder()
                        .status(400)
                        .header("content-type", "application/json")
                        .header("dpop-nonce", nonce.unwrap())
                        .body(r#"{"error":"use_dpop_nonce"}"#)
                        .build();
                }
                Err(why) => {
                    let body =
                        format!(r#"{{"error":"invalid_dpop_proof","error_description":"{why}"}}"#);
                    return json_response(400, &body);
                }
            }
            let n = counter.bump();
            json_response(
                200,
                &format!(
                    r#"{{"access_token":"dpop-token-{n}","token_type":"DPoP","expires_in":3600}}"#
                ),
            )
        });
    })
    .await;
    issued
}

/// An API at `path` that answers 200 to `Authorization: DPoP <token>` with a valid proof for
/// that token (and, when `nonce` is set, that nonce in it: otherwise a 401 asking for it), and
/// 401 to anything else. Counts the requests it accepts.
pub async fn api(api: &MockServer, verifier: &Verifier, nonce: Option<&'static str>) -> Counter {
    let accepted = Counter::default();
    let (counter, verifier, base) = (accepted.clone(), verifier.clone(), api.base_url());
    api.mock_async(move |when, then| {
        when.any_request();
        then.respond_with(move |request: &HttpMockRequest| {
            let refuse = |challenge: String| {
                HttpMockResponse::builder()
                    .status(401)
                    .header("www-authenticate", challenge)
                    .build()
            };
            let headers = request.headers();
            let authorization = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let Some(token) = authorization.strip_prefix("DPoP ") else {
                return refuse(r#"DPoP error="invalid_token""#.into());
            };
            let htu = format!("{base}{}", request.uri().path());
            match verifier.check(request, request.method_str(), &htu, Some(token), nonce) {
                Ok(()) => {}
                Err(why) if why.starts_with("nonce") => {
                    return HttpMockResponse::builder()
                        .status(401)
                        .header("www-authenticate", r#"DPoP error="use_dpop_nonce""#)
                        .header("dpop-nonce", nonce.unwrap())
                        .build();
                }
                Err(why) => {
                    return refuse(format!(
                        r#"DPoP error="invalid_dpop_proof", error_description="{why}""#
                    ));
                }
            }
            counter.bump();
            HttpMockResponse::builder()
                .status(200)
                .body("apple")
                .build()
        });
    })
    .await;
    accepted
}
