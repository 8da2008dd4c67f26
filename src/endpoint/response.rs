//! Reading the token endpoint's answer into a [`Token`] or a typed error, with a size cap.
//!
//! A success (RFC 6749 §5.1) becomes a [`Token`]; an error (§5.2) an [`OAuthError`].

use std::time::{Duration, SystemTime};

use crate::error::{LONG_VALUE, OAuthError, SHORT_VALUE, TokenResponseError, printable};
use crate::time::MAX_EXPIRES_IN;
use crate::token::{AccessToken, Token, TokenType};

/// Parses a successful token response (RFC 6749 §5.1) into a [`Token`].
///
/// `sent_at` is when the request was sent: the lifetime counts from then, which errs on the
/// safe side. `default_expires_in` stands in for a missing `expires_in`. `expected` is
/// [`TokenType::Dpop`] when the request carried a DPoP proof: the answer must then say DPoP.
pub(super) fn parse_token_response(
    body: &[u8],
    sent_at: SystemTime,
    default_expires_in: Duration,
    expected: TokenType,
) -> Result<Token, TokenResponseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| TokenResponseError::NotJson)?;
    let fields = value.as_object().ok_or(TokenResponseError::NotJson)?;
    let present = |name: &str| fields.get(name).filter(|v| !v.is_null());

    let access_token = match present("access_token") {
        None => return Err(TokenResponseError::MissingAccessToken),
        Some(serde_json::Value::String(token)) => AccessToken::new(token.as_str()),
        Some(_) => return Err(TokenResponseError::NotAString("access_token")),
    };
    access_token.bearer_header()?;

    let kind = match present("token_type") {
        // Bearer is what servers that leave it out mean.
        None => "Bearer",
        Some(serde_json::Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(TokenResponseError::NotAString("token_type")),
    };
    let known = TokenType::from_scheme(kind);
    if known != Some(expected) {
        let kind = printable(kind, SHORT_VALUE);
        return Err(match known {
            Some(TokenType::Bearer) => TokenResponseError::NotDpopBound(kind),
            _ => TokenResponseError::UnsupportedTokenType(kind),
        });
    }
    let lifetime = match present("expires_in") {
        None => default_expires_in,
        Some(value) => parse_expires_in(value)?,
    };

    let mut token = Token::new(access_token, sent_at, sent_at + lifetime).with_token_type(expected);
    match present("scope") {
        None => {}
        Some(serde_json::Value::String(scope)) => token = token.with_scope(scope.as_str()),
        Some(_) => return Err(TokenResponseError::NotAString("scope")),
    }
    Ok(token)
}

/// `expires_in` as a number of seconds, or a string of one as some servers send it. RFC 6749
/// asks for a whole number; a fraction is taken rounded down, so it must be at least 1.
fn parse_expires_in(value: &serde_json::Value) -> Result<Duration, TokenResponseError> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(whole_seconds)),
        serde_json::Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(whole_seconds))
        }
        _ => None,
    };
    match seconds {
        Some(s) if s > 0 && s <= MAX_EXPIRES_IN.as_secs() => Ok(Duration::from_secs(s)),
        _ => Err(TokenResponseError::InvalidExpiresIn(describe(value))),
    }
}

/// A finite, non-negative number of seconds, rounded down; `None` for NaN, infinities,
/// negatives and numbers past any lifetime (which the range check then refuses).
fn whole_seconds(seconds: f64) -> Option<u64> {
    // `as` saturates, so a huge value becomes u64::MAX and is refused as out of range.
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.floor() as u64)
}

/// A bad `expires_in` for an error message: numbers as they are, anything else by its kind, so
/// that a server that misplaces its token in this field does not get it into logs.
fn describe(value: &serde_json::Value) -> String {
    let number_like = |s: &str| {
        s.len() <= 24
            && s.chars()
                .all(|c| c.is_ascii_digit() || " .eE+-".contains(c))
    };
    match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) if number_like(s) => format!("{s:?}"),
        serde_json::Value::String(s) => format!("(a string of {} characters)", s.chars().count()),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Array(_) => "(an array)".to_owned(),
        serde_json::Value::Object(_) => "(an object)".to_owned(),
        serde_json::Value::Null => "null".to_owned(),
    }
}

/// The whole body, or `None` once it grows past `max` bytes (the rest is not read).
pub(super) async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// An RFC 6749 §5.2 error body, if that is what this is.
pub(super) fn parse_oauth_error(body: &[u8]) -> Option<OAuthError> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |name: &str, max: usize| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(|s| printable(s, max))
    };
    Some(OAuthError {
        error: text("error", SHORT_VALUE)?,
        description: text("error_description", LONG_VALUE),
        uri: text("error_uri", LONG_VALUE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::DEFAULT_EXPIRES_IN;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn parse(body: &str) -> Result<Token, TokenResponseError> {
        parse_token_response(
            body.as_bytes(),
            at(1_000),
            DEFAULT_EXPIRES_IN,
            TokenType::Bearer,
        )
    }

    #[test]
    fn expiry_counts_from_the_moment_the_request_was_sent() {
        let token = parse(r#"{"access_token":"t","token_type":"Bearer","expires_in":60}"#).unwrap();
        assert_eq!(token.issued_at(), at(1_000));
        assert_eq!(token.expires_at(), at(1_060));
        assert_eq!(token.access_token().secret(), "t");
        assert_eq!(token.scope(), None);
    }

    #[test]
    fn expires_in_may_be_a_numeric_string_or_a_whole_float() {
        let token = parse(r#"{"access_token":"t","expires_in":" 120 "}"#).unwrap();
        assert_eq!(token.expires_at(), at(1_120));
        let token = parse(r#"{"access_token":"t","expires_in":120.0}"#).unwrap();
        assert_eq!(token.expires_at(), at(1_120));
    }

    #[test]
    fn a_fraction_of_at_least_a_second_is_taken_rounded_down() {
        for (expires_in, seconds) in [("1.5", 1), ("59.99", 59), ("\" 90.7 \"", 90), ("1e3", 1000)]
        {
            let body = format!(r#"{{"access_token":"t","expires_in":{expires_in}}}"#);
            let token = parse(&body).unwrap();
            assert_eq!(
                token.lifetime(),
                Duration::from_secs(seconds),
                "{expires_in}"
            );
        }
    }

    #[test]
    fn a_missing_expires_in_takes_the_default() {
        let token = parse(r#"{"access_token":"t"}"#).unwrap();
        assert_eq!(token.expires_at(), at(1_000) + DEFAULT_EXPIRES_IN);
        let token = parse(r#"{"access_token":"t","expires_in":null}"#).unwrap();
        assert_eq!(token.expires_at(), at(1_000) + DEFAULT_EXPIRES_IN);
        let token = parse_token_response(
            br#"{"access_token":"t"}"#,
            at(0),
            Duration::from_secs(86_400),
            TokenType::Bearer,
        )
        .unwrap();
        assert_eq!(token.expires_at(), at(86_400));
    }

    #[test]
    fn token_type_is_bearer_in_any_case() {
        for kind in ["Bearer", "bearer", "BEARER"] {
            let body = format!(r#"{{"access_token":"t","token_type":"{kind}"}}"#);
            assert!(parse(&body).is_ok(), "{kind}");
        }
        assert_eq!(
            parse(r#"{"access_token":"t","token_type":"mac"}"#),
            Err(TokenResponseError::UnsupportedTokenType("mac".into()))
        );
    }

    #[test]
    fn scope_is_kept() {
        let token = parse(r#"{"access_token":"t","scope":"read:fruits write"}"#).unwrap();
        assert_eq!(token.scope(), Some("read:fruits write"));
    }

    #[test]
    fn malformed_responses_are_typed_errors() {
        use TokenResponseError as E;
        let cases: &[(&str, TokenResponseError)] = &[
            ("<html>502 Bad Gateway</html>", E::NotJson),
            ("", E::NotJson),
            ("[]", E::NotJson),
            ("\"token\"", E::NotJson),
            ("{}", E::MissingAccessToken),
            (r#"{"access_token":null}"#, E::MissingAccessToken),
            (r#"{"access_token":""}"#, E::EmptyAccessToken),
            (r#"{"access_token":42}"#, E::NotAString("access_token")),
            (r#"{"access_token":"a b"}"#, E::AccessTokenNotHeaderSafe),
            (
                r#"{"access_token":"a\r\nX-Evil: 1"}"#,
                E::AccessTokenNotHeaderSafe,
            ),
            (r#"{"access_token":"é"}"#, E::AccessTokenNotHeaderSafe),
            (
                r#"{"access_token":"t","token_type":7}"#,
                E::NotAString("token_type"),
            ),
            (
                r#"{"access_token":"t","scope":["a"]}"#,
                E::NotAString("scope"),
            ),
            (
                r#"{"access_token":"t","expires_in":-5}"#,
                E::InvalidExpiresIn("-5".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":0}"#,
                E::InvalidExpiresIn("0".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":0.9}"#,
                E::InvalidExpiresIn("0.9".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":"0.5"}"#,
                E::InvalidExpiresIn("\"0.5\"".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":"NaN"}"#,
                E::InvalidExpiresIn("(a string of 3 characters)".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":"soon"}"#,
                E::InvalidExpiresIn("(a string of 4 characters)".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":true}"#,
                E::InvalidExpiresIn("true".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":1e300}"#,
                E::InvalidExpiresIn("1e+300".into()),
            ),
            (
                r#"{"access_token":"t","expires_in":315360001}"#,
                E::InvalidExpiresIn("315360001".into()),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body).as_ref(), Err(expected), "body: {body}");
        }
    }

    #[test]
    fn the_longest_accepted_lifetime_is_ten_years() {
        let body = format!(
            r#"{{"access_token":"t","expires_in":{}}}"#,
            MAX_EXPIRES_IN.as_secs()
        );
        assert_eq!(parse(&body).unwrap().lifetime(), MAX_EXPIRES_IN);
    }

    #[test]
    fn server_values_in_errors_are_capped_and_stripped() {
        let long = "x".repeat(500);
        let body = format!(r#"{{"access_token":"t","token_type":"{long}\u0007"}}"#);
        match parse(&body) {
            Err(TokenResponseError::UnsupportedTokenType(kind)) => {
                assert_eq!(kind.chars().count(), 65);
                assert!(kind.ends_with('…'));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oauth_errors_are_read_from_json_bodies() {
        let error = parse_oauth_error(
            br#"{"error":"invalid_client","error_description":"Unauthorized","error_uri":"https://e/x"}"#,
        )
        .unwrap();
        assert_eq!(error.error(), "invalid_client");
        assert_eq!(error.description(), Some("Unauthorized"));
        assert_eq!(error.uri(), Some("https://e/x"));
    }

    #[test]
    fn bodies_without_an_error_code_are_not_oauth_errors() {
        for body in [
            &b"<html>oops</html>"[..],
            b"{}",
            br#"{"error":42}"#,
            b"",
            b"[1]",
        ] {
            assert_eq!(parse_oauth_error(body), None);
        }
    }

    #[test]
    fn long_descriptions_are_capped() {
        let body = format!(
            r#"{{"error":"invalid_request","error_description":"{}"}}"#,
            "x".repeat(10_000)
        );
        let error = parse_oauth_error(body.as_bytes()).unwrap();
        assert_eq!(error.description().unwrap().chars().count(), LONG_VALUE + 1);
    }

    /// Whatever a server sends, the parser never panics: it gives a token whose header can be
    /// sent and whose lifetime is in range, or a typed error.
    mod properties {
        use proptest::prelude::*;
        use serde_json::{Map, Value, json};

        use super::*;

        /// 10 000 cases per property, in every `cargo test` run.
        const CASES: u32 = 10_000;

        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::String),
                "[ -~]{0,40}".prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(any::<String>(), inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Objects with the token response's own fields, holding anything: these reach the
        /// parser's deeper paths far more often than arbitrary JSON does.
        fn token_like() -> impl Strategy<Value = Value> {
            let field = || prop::option::of(any_json());
            let expires_in = prop_oneof![
                any_json(),
                any::<i64>().prop_map(Value::from),
                (0_u64..=400_000_000).prop_map(Value::from),
                "[0-9 .e+-]{0,12}".prop_map(Value::String),
            ];
            (
                prop::option::of(prop_oneof![
                    any_json(),
                    "[!-~]{1,64}".prop_map(Value::String)
                ]),
                prop::option::of(prop_oneof![
                    any_json(),
                    Just(json!("Bearer")),
                    Just(json!("bEaReR"))
                ]),
                prop::option::of(expires_in),
                field(),
                field(),
            )
                .prop_map(|(token, kind, expires_in, scope, extra)| {
                    let mut object = Map::new();
                    for (name, value) in [
                        ("access_token", token),
                        ("token_type", kind),
                        ("expires_in", expires_in),
                        ("scope", scope),
                        ("extra", extra),
                    ] {
                        if let Some(value) = value {
                            object.insert(name.to_owned(), value);
                        }
                    }
                    Value::Object(object)
                })
        }

        fn check(body: &[u8]) -> Result<(), TestCaseError> {
            let sent_at = SystemTime::now();
            if let Ok(token) =
                parse_token_response(body, sent_at, DEFAULT_EXPIRES_IN, TokenType::Bearer)
            {
                let header = token.access_token().bearer_header();
                prop_assert!(header.is_ok(), "an unsendable token was accepted");
                prop_assert!(header.unwrap().is_sensitive());
                prop_assert!(token.lifetime() >= Duration::from_secs(1));
                prop_assert!(token.lifetime() <= MAX_EXPIRES_IN);
                prop_assert_eq!(token.issued_at(), sent_at);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]

            #[test]
            fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
                check(&body)?;
            }

            #[test]
            fn arbitrary_json(value in any_json()) {
                check(value.to_string().as_bytes())?;
            }

            #[test]
            fn token_shaped_json(value in token_like()) {
                check(value.to_string().as_bytes())?;
            }
        }
    }
}
