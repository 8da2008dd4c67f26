//! Access tokens: what the token endpoint hands out, and when each one counts as expired.
//!
//! Expiry is a pure function of a point in time (`*_at(now)`), so it is tested without waiting.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::error::TokenResponseError;
use crate::time::{from_stored_seconds, to_stored_seconds};

/// The lifetime given to a token whose response has no `expires_in`, unless
/// [`default_expires_in`](crate::ClientCredentialsBuilder::default_expires_in) says otherwise.
pub(crate) const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60 * 60);

/// The least expiry margin [`Token::stale_at`] takes.
const MIN_MARGIN: Duration = Duration::from_secs(1);

/// The most of a token's lifetime the expiry margin takes: a quarter.
const MAX_MARGIN_DIVISOR: u32 = 4;

/// An OAuth 2 access token: a bearer credential, so its `Debug` prints `[redacted]`.
///
/// The value comes out only through [`AccessToken::secret`]. Cloning is cheap (reference counted).
/// Two tokens compare in constant time (for tokens of one length), so that a comparison tells
/// nothing of how much of a guess was right.
#[derive(Clone)]
pub struct AccessToken(Arc<str>);

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for AccessToken {}

impl AccessToken {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Arc::from(token.into()))
    }

    /// The token itself, as sent in `Authorization: Bearer …`. Handle with care.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The `Authorization: Bearer …` header value for this token, marked sensitive so that HTTP
    /// libraries keep it out of their logs.
    pub(crate) fn bearer_header(&self) -> Result<HeaderValue, TokenResponseError> {
        self.header(TokenType::Bearer)
    }

    /// The `Authorization` header value for this token of type `kind`, marked sensitive.
    pub(crate) fn header(&self, kind: TokenType) -> Result<HeaderValue, TokenResponseError> {
        if self.0.is_empty() {
            return Err(TokenResponseError::EmptyAccessToken);
        }
        // RFC 6750 allows far fewer characters, but real providers (Salesforce's `!`, for one)
        // go beyond it; what must never pass is anything that would break the header line.
        if !self.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenResponseError::AccessTokenNotHeaderSafe);
        }
        let mut value = HeaderValue::try_from(format!("{} {}", kind.scheme(), self.0))
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

/// What kind of token a [`Token`] is: what the `token_type` of its response said, and the
/// scheme of the `Authorization` header it goes in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// A bearer token (RFC 6750): whoever holds it may use it.
    #[default]
    Bearer,
    /// A DPoP-bound token (RFC 9449): usable only with a proof signed by the key it is bound
    /// to, which the middleware holds (see
    /// `ClientCredentialsBuilder::dpop`, feature `jwt`).
    Dpop,
}

impl TokenType {
    /// The `Authorization` scheme and `token_type` value: `Bearer` or `DPoP`.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }

    /// The type a `token_type` value names (in any case), if it is one this crate knows.
    pub(crate) fn from_scheme(scheme: &str) -> Option<Self> {
        [Self::Bearer, Self::Dpop]
            .into_iter()
            .find(|kind| kind.scheme().eq_ignore_ascii_case(scheme))
    }
}

/// An access token with its absolute lifetime, as kept in a [`TokenStorage`](crate::TokenStorage).
///
/// A token is a bearer token, or a DPoP-bound one when the middleware has a
/// DPoP key (feature `jwt`; see [`TokenType`]). Times are
/// absolute (wall clock), so a token written to shared storage by one process is judged
/// correctly by another.
///
/// `Serialize`/`Deserialize` give a stable JSON form for storage backends:
/// `{"access_token", "token_type": "Bearer" (or "DPoP"), "issued_at", "expires_at", "scope"}` with times in
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
    kind: TokenType,
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
            kind: TokenType::Bearer,
        }
    }

    /// The same token, of type `kind` (a new token is a bearer token).
    pub fn with_token_type(mut self, kind: TokenType) -> Self {
        self.kind = kind;
        self
    }

    /// What kind of token this is: bearer, or DPoP-bound.
    pub fn token_type(&self) -> TokenType {
        self.kind
    }

    /// The same token, with the scope the server granted.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(Arc::from(scope.into()));
        self
    }

    /// The same token, expiring no later than `max` after it was issued.
    pub(crate) fn with_lifetime_at_most(mut self, max: Duration) -> Self {
        self.expires_at = self.expires_at.min(self.issued_at + max);
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
    /// never less than a second before (servers write `exp` in whole seconds and round their
    /// own way), and never more than a quarter of its lifetime, so that a short-lived token is
    /// still used, and has room to be refreshed ahead before this moment.
    pub fn stale_at(&self, margin: Duration) -> SystemTime {
        let margin = margin
            .max(MIN_MARGIN)
            .min(self.lifetime() / MAX_MARGIN_DIVISOR);
        self.expires_at - margin
    }

    /// The old name of [`Token::stale_at`]: the moment the token counts as expired, not the one
    /// its refresh ahead starts.
    #[deprecated(since = "0.1.0", note = "renamed: use `Token::stale_at`")]
    pub fn refresh_at(&self, margin: Duration) -> SystemTime {
        self.stale_at(margin)
    }

    /// Whether the token may still be used at `now`, treating it as expired `margin` early (see
    /// [`Token::stale_at`]).
    pub fn is_fresh_at(&self, now: SystemTime, margin: Duration) -> bool {
        now < self.stale_at(margin)
    }

    /// Whether the token has really expired at `now`, with no margin.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }
}

/// The JSON form of a [`Token`] in storage: `access_token`, `token_type`, `issued_at` and
/// `expires_at` (UNIX seconds, with fractions) and, when there is one, `scope`. Written by hand
/// rather than derived, which would cost every build a proc-macro crate.
impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let fields = if self.scope.is_some() { 5 } else { 4 };
        let mut stored = serializer.serialize_struct("StoredToken", fields)?;
        stored.serialize_field("access_token", self.access_token.secret())?;
        stored.serialize_field("token_type", self.kind.scheme())?;
        stored.serialize_field("issued_at", &to_stored_seconds(self.issued_at))?;
        stored.serialize_field("expires_at", &to_stored_seconds(self.expires_at))?;
        if let Some(scope) = &self.scope {
            stored.serialize_field("scope", &**scope)?;
        }
        stored.end()
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let stored = serde_json::Value::deserialize(deserializer)?;
        let text = |name: &'static str| {
            stored
                .get(name)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| D::Error::custom(format_args!("{name} is not a string")))
        };
        let seconds = |name: &'static str| {
            stored
                .get(name)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| D::Error::custom(format_args!("{name} is not a number")))
        };
        let kind = TokenType::from_scheme(text("token_type")?)
            .ok_or_else(|| D::Error::custom("token_type is neither Bearer nor DPoP"))?;
        let (issued_at, expires_at) = (seconds("issued_at")?, seconds("expires_at")?);
        if expires_at < issued_at {
            return Err(D::Error::custom("expires_at is before issued_at"));
        }
        let at = |seconds: f64| {
            from_stored_seconds(seconds).ok_or_else(|| D::Error::custom("time out of range"))
        };
        let token = Token::new(
            AccessToken::new(text("access_token")?),
            at(issued_at)?,
            at(expires_at)?,
        )
        .with_token_type(kind);
        Ok(match stored.get("scope") {
            None | Some(serde_json::Value::Null) => token,
            Some(_) => token.with_scope(text("scope")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_margin_is_capped_at_a_quarter_of_the_lifetime() {
        let token = Token::new(AccessToken::new("t"), at(0), at(3_600));
        let margin = Duration::from_secs(30);
        assert_eq!(token.stale_at(margin), at(3_570));
        assert!(token.is_fresh_at(at(3_569), margin));
        assert!(!token.is_fresh_at(at(3_570), margin));

        let short = Token::new(AccessToken::new("t"), at(0), at(60));
        assert_eq!(short.stale_at(margin), at(45));
        assert!(short.is_fresh_at(at(44), margin));
        assert!(!short.is_fresh_at(at(45), margin));
        assert!(!short.is_expired_at(at(59)));
        assert!(short.is_expired_at(at(60)));
    }

    #[test]
    fn a_lifetime_is_shortened_to_a_bound_and_never_lengthened() {
        let token = Token::new(AccessToken::new("t"), at(100), at(200)).with_scope("s");
        let short = token.clone().with_lifetime_at_most(Duration::from_secs(40));
        assert_eq!(short.expires_at(), at(140));
        assert_eq!(short.scope(), Some("s"));
        assert_eq!(
            token
                .clone()
                .with_lifetime_at_most(Duration::from_secs(500)),
            token
        );
    }

    #[test]
    fn a_margin_under_a_second_counts_as_a_second_for_whole_second_expiry() {
        let token = Token::new(AccessToken::new("t"), at(0), at(100));
        for margin in [Duration::ZERO, Duration::from_millis(500)] {
            assert_eq!(token.stale_at(margin), at(99), "{margin:?}");
        }
        // Unless a second is more than a quarter of the life.
        let brief = Token::new(AccessToken::new("t"), at(0), at(2));
        assert_eq!(
            brief.stale_at(Duration::ZERO),
            at(2) - Duration::from_millis(500)
        );
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
    fn tokens_are_equal_when_every_byte_is() {
        let token = AccessToken::new("abc.def");
        assert_eq!(token, AccessToken::new("abc.def"));
        for other in ["abc.deg", "abc.de", "abc.defg", "", "xbc.def"] {
            assert_ne!(token, AccessToken::new(other), "{other}");
        }
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
}
