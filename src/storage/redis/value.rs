//! A token as one Redis value: its JSON form, and a TTL that ends with the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::time::unix_millis;
use crate::token::Token;

/// A token's stored value and the Redis TTL that makes it vanish when the token expires; `None`
/// when it has expired already. The TTL counts to the stored expiry (to the millisecond,
/// rounded down), so Redis never keeps a token longer than the value says it is good for.
pub(super) fn encode(token: &Token, now: SystemTime) -> Option<(String, Duration)> {
    let value = serde_json::to_string(token).ok()?;
    let stored_expiry = UNIX_EPOCH + Duration::from_millis(unix_millis(token.expires_at()));
    let ttl = stored_expiry.duration_since(now).ok()?;
    (ttl >= Duration::from_millis(1)).then_some((value, ttl))
}

/// A stored value read back. The reason names the kind of damage only: serde's messages can
/// quote the value, which may hold a token.
pub(super) fn decode(bytes: &[u8]) -> Result<Token, &'static str> {
    serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => "not JSON",
        serde_json::error::Category::Data => "JSON, but not a token",
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::AccessToken;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn token(issued: u64, expires: u64) -> Token {
        Token::new(AccessToken::new("tok.en-1"), at(issued), at(expires))
    }

    #[test]
    fn the_value_holds_token_type_and_absolute_expiry() {
        let (value, _) = encode(&token(1_000, 4_600), at(1_000)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&value).unwrap();
        assert_eq!(json["access_token"], "tok.en-1");
        assert_eq!(json["token_type"], "Bearer");
        assert_eq!(json["issued_at"], 1_000.0);
        assert_eq!(json["expires_at"], 4_600.0);
    }

    #[test]
    fn the_ttl_is_the_remaining_lifetime() {
        let now = at(2_000) + Duration::from_millis(250);
        let (_, ttl) = encode(&token(1_000, 4_600), now).unwrap();
        assert_eq!(ttl, Duration::from_millis(2_599_750));
    }

    #[test]
    fn the_ttl_counts_to_the_millisecond_the_value_says() {
        let expires = at(4_600) + Duration::from_micros(900_700);
        let token = Token::new(AccessToken::new("t"), at(1_000), expires);
        let (_, ttl) = encode(&token, at(4_599)).unwrap();
        assert_eq!(ttl, Duration::from_millis(1_900));
    }

    #[test]
    fn an_expired_token_is_not_written() {
        assert!(encode(&token(1_000, 2_000), at(2_000)).is_none());
        assert!(encode(&token(1_000, 2_000), at(3_000)).is_none());
    }

    #[test]
    fn a_value_reads_back_as_the_same_token() {
        let original = token(1_000, 4_600).with_scope("read:fruits");
        let (value, _) = encode(&original, at(1_000)).unwrap();
        assert_eq!(decode(value.as_bytes()).unwrap(), original);
    }

    #[test]
    fn damaged_values_are_errors_that_quote_nothing() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "truncated JSON"),
            (br#"{"access_token":"tok.en-1","tok"#, "truncated JSON"),
            (b"\xff\xfe garbage", "not JSON"),
            (b"tok.en-1", "not JSON"),
            (br#"{"access_token":"tok.en-1"}"#, "JSON, but not a token"),
            (
                br#"{"access_token":1,"token_type":"tok.en-1","issued_at":1,"expires_at":2}"#,
                "JSON, but not a token",
            ),
            (
                br#"{"access_token":"a","token_type":"mac","issued_at":1,"expires_at":2}"#,
                "JSON, but not a token",
            ),
        ];
        for (value, reason) in cases {
            assert_eq!(
                decode(value),
                Err(reason),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }
}
