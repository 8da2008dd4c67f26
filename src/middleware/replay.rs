//! What a request keeps of itself before it is sent, for a replay after a 401.

use std::time::Duration;

use http::{Method, Version};
use reqwest::Request;
use url::Url;

/// What a request keeps of itself to be sent again after a 401, or, for a request whose body
/// is a stream that cannot be sent twice, only where it went.
pub(super) enum Replay {
    /// A request of a method and a URL alone, the commonest kind: the little it takes to make
    /// it again, with no request built until a 401 asks for one.
    Bare {
        method: Method,
        url: Url,
        version: Version,
        timeout: Option<Duration>,
    },
    /// A request with headers or a body of its own, copied whole; boxed, so that the state every
    /// request keeps stays the size of the bare kind.
    Copy(Box<Request>),
    Streamed(Url),
}

impl Replay {
    /// Made before the token goes on `request`: the replay gets a new one.
    pub(super) fn of(request: &Request) -> Self {
        if request.headers().is_empty() && request.body().is_none() {
            return Self::Bare {
                method: request.method().clone(),
                url: request.url().clone(),
                version: request.version(),
                timeout: request.timeout().copied(),
            };
        }
        match copy(request) {
            Some(copy) => Self::Copy(Box::new(copy)),
            None => Self::Streamed(request.url().clone()),
        }
    }

    /// Where the request went, and the token with it.
    pub(super) fn sent_to(&self) -> &Url {
        match self {
            Self::Bare { url, .. } | Self::Streamed(url) => url,
            Self::Copy(request) => request.url(),
        }
    }

    /// The request to send again, if it can be.
    pub(super) fn into_request(self) -> Option<Request> {
        match self {
            Self::Bare {
                method,
                url,
                version,
                timeout,
            } => {
                let mut request = Request::new(method, url);
                *request.version_mut() = version;
                if timeout.is_some() {
                    *request.timeout_mut() = timeout;
                }
                Some(request)
            }
            Self::Copy(request) => Some(*request),
            Self::Streamed(_) => None,
        }
    }
}

/// A copy of `request`, or `None` when its body is a stream that cannot be sent twice. For a
/// request without a body, what `Request::try_clone` copies (method, URL, headers, version
/// and timeout, reqwest's only per-request setting), without the timeout setting `try_clone`
/// makes for a request that has none: a map allocated and dropped for every request.
fn copy(request: &Request) -> Option<Request> {
    if request.body().is_some() {
        return request.try_clone();
    }
    let mut copy = Request::new(request.method().clone(), request.url().clone());
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    if let Some(timeout) = request.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    Some(copy)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderValue, Method, Version, header};

    use super::*;

    fn request(method: Method) -> Request {
        Request::new(method, "https://api.example/things?page=2".parse().unwrap())
    }

    #[test]
    fn a_copy_keeps_every_setting_a_request_has() {
        let mut original = request(Method::POST);
        let mut secret = HeaderValue::from_static("s3cr3t");
        secret.set_sensitive(true);
        original.headers_mut().insert("x-api-key", secret);
        original
            .headers_mut()
            .append(header::ACCEPT, HeaderValue::from_static("a/b"));
        original
            .headers_mut()
            .append(header::ACCEPT, HeaderValue::from_static("c/d"));
        *original.body_mut() = Some("{\"n\":1}".into());
        *original.version_mut() = Version::HTTP_2;
        *original.timeout_mut() = Some(Duration::from_millis(1500));

        let copy = Replay::of(&original)
            .into_request()
            .expect("a request with a body in memory can be sent again");

        assert_eq!(copy.method(), original.method());
        assert_eq!(copy.url(), original.url());
        assert_eq!(copy.headers(), original.headers());
        assert!(copy.headers()["x-api-key"].is_sensitive());
        assert_eq!(
            copy.body().and_then(reqwest::Body::as_bytes),
            Some(&b"{\"n\":1}"[..])
        );
        assert_eq!(copy.version(), Version::HTTP_2);
        assert_eq!(copy.timeout(), Some(&Duration::from_millis(1500)));
    }

    #[test]
    fn a_bare_request_is_copied_without_settings_it_does_not_have() {
        let original = request(Method::GET);
        let copy = Replay::of(&original)
            .into_request()
            .expect("a request without a body can be sent again");
        assert!(copy.headers().is_empty());
        assert!(copy.body().is_none());
        assert_eq!(copy.timeout(), None);
        assert_eq!(copy.version(), original.version());
    }

    #[test]
    fn a_streamed_body_keeps_only_where_it_went() {
        let mut original = request(Method::PUT);
        let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>("chunk")]);
        *original.body_mut() = Some(reqwest::Body::wrap_stream(chunks));
        let replay = Replay::of(&original);
        assert_eq!(replay.sent_to(), original.url());
        assert!(replay.into_request().is_none());
    }
}
