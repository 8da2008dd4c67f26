//! Values made safe for error messages and logs: control characters dropped, length capped.

/// How many characters of a short server-sent value (a token type, an error code) to keep.
pub(crate) const SHORT_VALUE: usize = 64;
/// How many characters of a server's `error_description` to keep.
pub(crate) const LONG_VALUE: usize = 512;

/// A configured URL or host made safe to put in an error message: as [`printable`], and
/// anything before an `@` (a user name and password) left out.
pub(crate) fn printable_without_userinfo(value: &str) -> String {
    let Some(at) = value.rfind('@') else {
        return printable(value, SHORT_VALUE);
    };
    let scheme = value
        .find("://")
        .filter(|end| *end < at)
        .map_or("", |end| &value[..end + 3]);
    printable(&format!("{scheme}…@{}", &value[at + 1..]), SHORT_VALUE)
}

/// A server-sent value made safe to put in an error message: control characters dropped and the
/// length capped, so a hostile server can neither flood nor garble logs.
pub(crate) fn printable(value: &str, max_chars: usize) -> String {
    let mut kept = value.chars().filter(|c| !c.is_control());
    let mut out: String = kept.by_ref().take(max_chars).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_left_out() {
        assert_eq!(
            printable_without_userinfo("https://user:pw@api.example/x"),
            "https://…@api.example/x"
        );
        assert_eq!(
            printable_without_userinfo("user:pw@tenant.example"),
            "…@tenant.example"
        );
        assert_eq!(printable_without_userinfo("api.example"), "api.example");
    }

    #[test]
    fn printable_strips_control_characters_and_caps_length() {
        assert_eq!(printable("a\u{0}b\nc", 10), "abc");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
    }
}
