//! Access tokens: what the token endpoint hands out, how long each one lives, and when it counts
//! as expired.
//!
//! Expiry is a pure function of a point in time (`*_at(now)`), so it is tested without waiting.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{SHORT_VALUE, TokenResponseError, printable};

/// The lifetime given to a token whose response has no `expires_in`, unless
/// [`default_expires_in`](crate::ClientCredentialsBuilder::default_expires_in) says otherwise.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60 * 60);

/// The longest `expires_in` taken at face value (ten years); a longer one is an error, as it can
/// only be a mistake and would overflow time arithmetic on some platforms.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// An OAuth 2 access token: a bearer credential, so its `Debug` prints `[redacted]`.
///
/// The value comes out only through [`AccessToken::secret`]. Cloning is cheap (reference counted).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }

    /// The token itself, as sent in `Authorization: Bearer …`. Handle with care.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The `Authorization` header value for this token, marked sensitive so that HTTP libraries
    /// keep it out of their logs.
    pub(crate) fn bearer_header(&self) -> Result<HeaderValue, TokenResponseError> {
        if self.0.is_empty() {
            return Err(TokenResponseError::EmptyAccessToken);
        }
        // RFC 6750 allows far fewer characters, but real providers (Salesforce's `!`, for one)
        // go beyond it; what must never pass is anything that would break the header line.
        if !self.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenResponseError::AccessTokenNotHeaderSafe);
        }
        let mut value = HeaderValue::try_from(format!("Bearer {}", self.0))
            .map_err(|_| TokenResponseError::AccessTokenNotHeaderSafe)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// An access token with its absolute lifetime, as kept in a [`TokenStorage`](crate::TokenStorage).
///
/// Every token is a bearer token: a response with any other `token_type` is refused. Times are
/// absolute (wall clock), so a token written to shared storage by one process is judged
/// correctly by another.
///
/// `Serialize`/`Deserialize` give a stable JSON form for storage backends:
/// `{"access_token", "token_type": "Bearer", "issued_at", "expires_at", "scope"}` with times in
/// UNIX seconds, milliseconds as a fraction (`1700000000.25`), so that tokens living only a few
/// seconds are judged alike by every process. That form holds the token itself: keep it only
/// where the token may be.
///
/// # Example
/// ```
/// use std::time::{Duration, SystemTime};
/// use reqwest_alf::{AccessToken, Token};
///
/// let now = SystemTime::now();
/// let token = Token::new(AccessToken::new("abc"), now, now + Duration::from_secs(3600));
/// assert!(token.is_fresh_at(now, Duration::from_secs(30)));
/// assert!(!token.is_fresh_at(now + Duration::from_secs(3590), Duration::from_secs(30)));
/// assert!(!format!("{token:?}").contains("abc"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    access_token: AccessToken,
    issued_at: SystemTime,
    expires_at: SystemTime,
    scope: Option<Arc<str>>,
}

impl Token {
    /// A token issued at `issued_at` that stops being valid at `expires_at`.
    ///
    /// An `expires_at` before `issued_at` is taken as `issued_at`: the token is expired.
    pub fn new(access_token: AccessToken, issued_at: SystemTime, expires_at: SystemTime) -> Self {
        Self {
            access_token,
            issued_at,
            expires_at: expires_at.max(issued_at),
            scope: None,
        }
    }

    /// The same token, with the scope the server granted.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(Arc::from(scope.into()));
        self
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// When the token was issued: the moment its request was sent, so never later than the
    /// server's own clock had it.
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// When the token stops being valid.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The scope the server granted, when it said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// How long the token was issued for.
    pub fn lifetime(&self) -> Duration {
        self.expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default()
    }

    /// The moment from which the token counts as expired: `margin` before its real expiry, but
    /// never earlier than half-way through its lifetime, so that short-lived tokens are still
    /// used rather than fetched again and again.
    pub fn refresh_at(&self, margin: Duration) -> SystemTime {
        self.expires_at - margin.min(self.lifetime() / 2)
    }

    /// Whether the token may still be used at `now`, treating it as expired `margin` early (see
    /// [`Token::refresh_at`]).
    pub fn is_fresh_at(&self, now: SystemTime, margin: Duration) -> bool {
        now < self.refresh_at(margin)
    }

    /// Whether the token has really expired at `now`, with no margin.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }
}

/// Parses a successful token response (RFC 6749 §5.1) into a [`Token`].
///
/// `sent_at` is when the request was sent: the lifetime counts from then, which errs on the
/// safe side. `default_expires_in` stands in for a missing `expires_in`.
pub(crate) fn parse_token_response(
    body: &[u8],
    sent_at: SystemTime,
    default_expires_in: Duration,
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

    match present("token_type") {
        None => {}
        Some(serde_json::Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => {}
        Some(serde_json::Value::String(kind)) => {
            return Err(TokenResponseError::UnsupportedTokenType(printable(
                kind,
                SHORT_VALUE,
            )));
        }
        Some(_) => return Err(TokenResponseError::NotAString("token_type")),
    }

    let lifetime = match present("expires_in") {
        None => default_expires_in,
        Some(value) => parse_expires_in(value)?,
    };

    let mut token = Token::new(access_token, sent_at, sent_at + lifetime);
    match present("scope") {
        None => {}
        Some(serde_json::Value::String(scope)) => token = token.with_scope(scope.as_str()),
        Some(_) => return Err(TokenResponseError::NotAString("scope")),
    }
    Ok(token)
}

/// `expires_in` as a number of seconds, or a string of digits as some servers send it.
fn parse_expires_in(value: &serde_json::Value) -> Result<Duration, TokenResponseError> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match seconds {
        Some(s) if s > 0 && s <= MAX_EXPIRES_IN.as_secs() => Ok(Duration::from_secs(s)),
        _ => Err(TokenResponseError::InvalidExpiresIn(describe(value))),
    }
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

/// The JSON form of a [`Token`] in storage.
#[derive(Serialize, Deserialize)]
struct StoredToken<'a> {
    #[serde(borrow)]
    access_token: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    token_type: std::borrow::Cow<'a, str>,
    issued_at: f64,
    expires_at: f64,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    scope: Option<std::borrow::Cow<'a, str>>,
}

/// `time` in whole UNIX seconds, rounded down: how times are put in JWT claims.
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `time` in whole UNIX milliseconds, rounded down: the precision of stored times.
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// The last second of the year 9999: later stored times are damage, not tokens.
const LATEST_STORED_SECONDS: f64 = 253_402_300_799.0;

/// A stored time (UNIX seconds, milliseconds as a fraction) back as a [`SystemTime`].
fn from_stored_seconds(seconds: f64) -> Option<SystemTime> {
    if !(0.0..=LATEST_STORED_SECONDS).contains(&seconds) {
        return None; // NaN too
    }
    // In range, so the product fits a u64 and `as` only drops what is below a millisecond.
    Some(UNIX_EPOCH + Duration::from_millis((seconds * 1000.0).round() as u64))
}

/// A time as stored: UNIX seconds with milliseconds as a fraction.
fn to_stored_seconds(time: SystemTime) -> f64 {
    unix_millis(time) as f64 / 1000.0
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredToken {
            access_token: self.access_token.secret().into(),
            token_type: "Bearer".into(),
            issued_at: to_stored_seconds(self.issued_at),
            expires_at: to_stored_seconds(self.expires_at),
            scope: self.scope.as_deref().map(Into::into),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let stored = StoredToken::deserialize(deserializer)?;
        if !stored.token_type.eq_ignore_ascii_case("bearer") {
            return Err(D::Error::custom("token_type is not Bearer"));
        }
        if stored.expires_at < stored.issued_at {
            return Err(D::Error::custom("expires_at is before issued_at"));
        }
        let at = |seconds: f64| {
            from_stored_seconds(seconds).ok_or_else(|| D::Error::custom("time out of range"))
        };
        let token = Token::new(
            AccessToken::new(stored.access_token.into_owned()),
            at(stored.issued_at)?,
            at(stored.expires_at)?,
        );
        Ok(match stored.scope {
            Some(scope) => token.with_scope(scope.into_owned()),
            None => token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn parse(body: &str) -> Result<Token, TokenResponseError> {
        parse_token_response(body.as_bytes(), at(1_000), DEFAULT_EXPIRES_IN)
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
    fn a_missing_expires_in_takes_the_default() {
        let token = parse(r#"{"access_token":"t"}"#).unwrap();
        assert_eq!(token.expires_at(), at(1_000) + DEFAULT_EXPIRES_IN);
        let token = parse(r#"{"access_token":"t","expires_in":null}"#).unwrap();
        assert_eq!(token.expires_at(), at(1_000) + DEFAULT_EXPIRES_IN);
        let token = parse_token_response(
            br#"{"access_token":"t"}"#,
            at(0),
            Duration::from_secs(86_400),
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
                r#"{"access_token":"t","expires_in":1.5}"#,
                E::InvalidExpiresIn("1.5".into()),
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
    fn the_margin_is_capped_at_half_the_lifetime() {
        let token = Token::new(AccessToken::new("t"), at(0), at(3_600));
        let margin = Duration::from_secs(30);
        assert_eq!(token.refresh_at(margin), at(3_570));
        assert!(token.is_fresh_at(at(3_569), margin));
        assert!(!token.is_fresh_at(at(3_570), margin));

        let short = Token::new(AccessToken::new("t"), at(0), at(10));
        assert_eq!(short.refresh_at(margin), at(5));
        assert!(short.is_fresh_at(at(4), margin));
        assert!(!short.is_fresh_at(at(5), margin));
        assert!(!short.is_expired_at(at(9)));
        assert!(short.is_expired_at(at(10)));
    }

    #[test]
    fn a_zero_margin_means_fresh_until_expiry() {
        let token = Token::new(AccessToken::new("t"), at(0), at(100));
        assert!(token.is_fresh_at(at(99), Duration::ZERO));
        assert!(!token.is_fresh_at(at(100), Duration::ZERO));
    }

    #[test]
    fn expiry_before_issue_means_expired() {
        let token = Token::new(AccessToken::new("t"), at(100), at(50));
        assert_eq!(token.expires_at(), at(100));
        assert_eq!(token.lifetime(), Duration::ZERO);
        assert!(!token.is_fresh_at(at(100), Duration::from_secs(30)));
    }

    #[test]
    fn the_bearer_header_is_sensitive() {
        let header = AccessToken::new("abc.def").bearer_header().unwrap();
        assert_eq!(header, "Bearer abc.def");
        assert!(header.is_sensitive());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::new(AccessToken::new("s3cr3t-t0ken"), at(0), at(1)).with_scope("a");
        let shown = format!("{token:?} {token:#?}");
        assert!(!shown.contains("s3cr3t-t0ken"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn storage_form_round_trips_to_the_millisecond() {
        let token = Token::new(
            AccessToken::new("t"),
            at(1_700_000_000) + Duration::from_micros(700_900),
            at(1_700_003_600) + Duration::from_millis(5),
        )
        .with_scope("read");
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(
            json,
            r#"{"access_token":"t","token_type":"Bearer","issued_at":1700000000.7,"expires_at":1700003600.005,"scope":"read"}"#
        );
        let back: Token = serde_json::from_str(&json).unwrap();
        assert_eq!(back.access_token(), token.access_token());
        assert_eq!(
            back.issued_at(),
            at(1_700_000_000) + Duration::from_millis(700)
        );
        assert_eq!(
            back.expires_at(),
            at(1_700_003_600) + Duration::from_millis(5)
        );
        assert_eq!(back.scope(), Some("read"));
    }

    #[test]
    fn whole_seconds_are_read_as_they_were_written_before_milliseconds() {
        let back: Token = serde_json::from_str(
            r#"{"access_token":"t","token_type":"Bearer","issued_at":1700000000,"expires_at":1700003600}"#,
        )
        .unwrap();
        assert_eq!(back.issued_at(), at(1_700_000_000));
        assert_eq!(back.expires_at(), at(1_700_003_600));
    }

    #[test]
    fn every_millisecond_survives_the_trip_through_storage() {
        // Around now and near the end of the accepted range, where an f64 has the fewest
        // digits to spare.
        for base in [1_700_000_000_u64, 253_402_300_000] {
            for millis in [0, 1, 7, 99, 100, 333, 500, 999] {
                let time = at(base) + Duration::from_millis(millis);
                let token = Token::new(AccessToken::new("t"), time, time);
                let back: Token =
                    serde_json::from_str(&serde_json::to_string(&token).unwrap()).unwrap();
                assert_eq!(back.expires_at(), time, "{base}.{millis:03}");
            }
        }
    }

    #[test]
    fn corrupt_storage_forms_are_errors_not_panics() {
        for json in [
            "",
            "{}",
            r#"{"access_token":"t","token_type":"Bearer","issued_at":10}"#,
            r#"{"access_token":"t","token_type":"mac","issued_at":1,"expires_at":2}"#,
            r#"{"access_token":"t","token_type":"Bearer","issued_at":5,"expires_at":2}"#,
            r#"{"access_token":"t","token_type":"Bearer","issued_at":-1,"expires_at":2}"#,
            r#"{"access_token":"t","token_type":"Bearer","issued_at":0,"expires_at":18446744073709551615}"#,
            r#"{"access_token":"t","token_type":"Bearer","issued_at":0,"expires_at":1e300}"#,
            r#"{"access_token":"t","token_type":"Bearer","issued_at":-0.5,"expires_at":2}"#,
        ] {
            assert!(serde_json::from_str::<Token>(json).is_err(), "{json}");
        }
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
            if let Ok(token) = parse_token_response(body, sent_at, DEFAULT_EXPIRES_IN) {
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
