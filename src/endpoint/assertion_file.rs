//! A client assertion read from a file for each token request: a workload's identity token.
//!
//! Kubernetes projects a service account token into a file and rotates it; Azure workload
//! identity names one in `AZURE_FEDERATED_TOKEN_FILE`. The file is read afresh for every token
//! request, so a rotated token is used as soon as it is there; what it holds is never shown.

use std::io::ErrorKind;
use std::path::Path;

use crate::error::Error;

/// The most bytes read from the file: a JWT is a few kilobytes; more is not one.
const MAX_ASSERTION_BYTES: u64 = 64 * 1024;

/// The assertion in `path`, trimmed, once it looks like a JWT (three base64url parts); `kind`
/// says which assertion it is, for messages.
///
/// # Errors
/// [`Error::ClientAssertion`] when the file is missing, cannot be read, is empty, too large, or
/// does not hold a JWT. The message names the file and what is wrong, never what it holds.
pub(crate) fn read_assertion(path: &Path, kind: &'static str) -> Result<String, Error> {
    let refuse = |reason: &'static str| Error::ClientAssertion {
        kind,
        from: format!("the file {}", path.display()),
        reason,
        source: None,
    };
    // A small file on a local (often in-memory) file system: read in place, as a token request
    // is about to wait on the network anyway.
    let size = std::fs::metadata(path)
        .map_err(|error| refuse(io_reason(error.kind())))?
        .len();
    if size > MAX_ASSERTION_BYTES {
        return Err(refuse("is larger than any assertion (64 KiB)"));
    }
    let text = std::fs::read_to_string(path).map_err(|error| refuse(io_reason(error.kind())))?;
    let assertion = text.trim();
    if assertion.is_empty() {
        return Err(refuse("is empty"));
    }
    if !is_jwt(assertion) {
        return Err(refuse(
            "does not hold a JWT (three base64url parts joined by dots)",
        ));
    }
    Ok(assertion.to_owned())
}

fn io_reason(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "does not exist",
        ErrorKind::PermissionDenied => "cannot be read: permission denied",
        ErrorKind::InvalidData => "is not text",
        _ => "cannot be read",
    }
}

/// Whether `text` has the shape of a compact JWS: three parts of base64url, the first two not
/// empty.
pub(crate) fn is_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    let base64url = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| base64url(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes its file when dropped.
    struct Remove(std::path::PathBuf);

    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn file_with(text: &[u8]) -> (std::path::PathBuf, Remove) {
        let path =
            std::env::temp_dir().join(format!("alf-assertion-{}", crate::random::random_hex()));
        std::fs::write(&path, text).unwrap();
        (path.clone(), Remove(path))
    }

    fn reason(result: Result<String, Error>) -> &'static str {
        match result {
            Err(Error::ClientAssertion { reason, .. }) => reason,
            other => panic!("expected a client assertion error, got {other:?}"),
        }
    }

    #[test]
    fn a_jwt_is_read_trimmed() {
        let (path, _remove) = file_with(b"eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl\n");
        assert_eq!(
            read_assertion(&path, "client assertion").unwrap(),
            "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"
        );
    }

    #[test]
    fn what_is_not_an_assertion_is_a_typed_error_that_never_shows_the_content() {
        for (content, expected) in [
            (&b""[..], "is empty"),
            (b"  \n", "is empty"),
            (
                b"s3cr3t-not-a-jwt",
                "does not hold a JWT (three base64url parts joined by dots)",
            ),
            (
                b"a.b",
                "does not hold a JWT (three base64url parts joined by dots)",
            ),
            (
                b"a.b.c.d",
                "does not hold a JWT (three base64url parts joined by dots)",
            ),
            (
                b"a.b+c.d",
                "does not hold a JWT (three base64url parts joined by dots)",
            ),
            (b"\xff\xfe.a.b", "is not text"),
        ] {
            let (path, _remove) = file_with(content);
            let error = read_assertion(&path, "client assertion").unwrap_err();
            assert!(!error.to_string().contains("s3cr3t"), "{error}");
            assert_eq!(reason(Err(error)), expected, "{content:?}");
        }
        let missing = std::env::temp_dir().join("alf-no-such-assertion");
        assert_eq!(
            reason(read_assertion(&missing, "client assertion")),
            "does not exist"
        );
        let (path, _remove) = file_with(&vec![b'a'; 70 * 1024]);
        assert_eq!(
            reason(read_assertion(&path, "client assertion")),
            "is larger than any assertion (64 KiB)"
        );
    }
}
