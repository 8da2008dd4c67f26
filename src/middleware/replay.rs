//! What a request keeps of itself before it is sent, for a replay after a 401.

use std::time::Duration;

use arrayvec::ArrayString;
use http::{Method, Version};
use reqwest::Request;
use url::Url;

/// The longest URL a replay keeps as text in place rather than as a copy of its own: API URLs
/// are nearly all shorter, and a request answered without a 401 then allocates nothing for it.
const INLINE_URL: usize = 128;

/// What a request keeps of itself to be sent again after a 401, or, for a request whose body
/// is a stream that cannot be sent twice, only where it went.
pub(super) enum Replay {
    /// A request of a method and a URL alone, the commonest kind: the little it takes to make
    /// it again, with no request built until a 401 asks for one.
    Bare {
        method: Method,
        url: SentTo,
        version: Version,
        timeout: Option<Duration>,
    },
    /// A request with headers or a body of its own, copied whole; boxed, so that the state every
    /// request keeps stays the size of the bare kind.
    Copy(Box<Request>),
    /// A request whose body is a stream: only where it went, for the 401's origin check.
    Streamed(SentTo),
}

/// Where a request went: the URL's text when it is short, a copy of the URL otherwise.
pub(super) enum SentTo {
    Text(ArrayString<INLINE_URL>),
    Url(Url),
}

/// What a replay gets back once the answer is in: where the request went, and the request to
/// send again, if it can be.
pub(super) struct Recalled {
    pub(super) sent_to: Url,
    pub(super) request: Option<Request>,
}

impl Replay {
    /// Made before the token goes on `request`: the replay gets a new one.
    #[inline]
    pub(super) fn of(request: &Request) -> Self {
        if request.headers().is_empty() && request.body().is_none() {
            let mut bare = Self::Bare {
                method: request.method().clone(),
                url: SentTo::Text(ArrayString::new()),
                version: request.version(),
                timeout: request.timeout().copied(),
            };
            // The URL's text copied into the replay itself, not made beside it and moved in.
            if let Self::Bare { url, .. } = &mut bare {
                url.keep(request.url());
            }
            return bare;
        }
        match copy(request) {
            Some(copy) => Self::Copy(Box::new(copy)),
            None => Self::Streamed(SentTo::of(request.url())),
        }
    }

    /// Where the request went, and the request to send again if it can be, given
    /// `answered_from`, the URL its answer came from. `None` only if where it went can no
    /// longer be told: text that does not parse, which a URL's own text always does.
    pub(super) fn recall(self, answered_from: &Url) -> Option<Recalled> {
        match self {
            Self::Bare {
                method,
                url,
                version,
                timeout,
            } => {
                let sent_to = url.recall(answered_from)?;
                let mut request = Request::new(method, sent_to.clone());
                *request.version_mut() = version;
                if timeout.is_some() {
                    *request.timeout_mut() = timeout;
                }
                Some(Recalled {
                    sent_to,
                    request: Some(request),
                })
            }
            Self::Copy(request) => Some(Recalled {
                sent_to: request.url().clone(),
                request: Some(*request),
            }),
            Self::Streamed(url) => Some(Recalled {
                sent_to: url.recall(answered_from)?,
                request: None,
            }),
        }
    }
}

impl SentTo {
    /// `url` as text when it fits in place, as a copy otherwise.
    #[inline]
    fn of(url: &Url) -> Self {
        let mut sent_to = Self::Text(ArrayString::new());
        sent_to.keep(url);
        sent_to
    }

    /// Keeps `url` in place of what this held: as text, written where this is, when it fits,
    /// as a copy otherwise.
    #[inline]
    fn keep(&mut self, url: &Url) {
        if let Self::Text(text) = self {
            text.clear();
            if text.try_push_str(url.as_str()).is_ok() {
                return;
            }
        }
        *self = Self::Url(url.clone());
    }

    /// The URL, given `answered_from`, the one the answer came from: that one itself when no
    /// redirect led elsewhere, so that only a redirected request parses its URL again.
    fn recall(self, answered_from: &Url) -> Option<Url> {
        match self {
            Self::Url(url) => Some(url),
            Self::Text(text) if text.as_str() == answered_from.as_str() => {
                Some(answered_from.clone())
            }
            // Parsing a URL's text gives that URL back: serializing a URL is idempotent.
            Self::Text(text) => Url::parse(&text).ok(),
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

    /// The request a 401 from `original`'s own URL gets back to send again.
    fn replayed(original: &Request) -> Option<Request> {
        Replay::of(original).recall(original.url())?.request
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

        let copy = replayed(&original).expect("a request with a body in memory can be sent again");

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
        let copy = replayed(&original).expect("a request without a body can be sent again");
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
        let recalled = Replay::of(&original).recall(original.url()).unwrap();
        assert_eq!(&recalled.sent_to, original.url());
        assert!(recalled.request.is_none());
    }

    #[test]
    fn a_redirected_request_is_replayed_where_it_first_went() {
        let long = format!("https://api.example/{}?q=%20x#top", "a".repeat(INLINE_URL));
        for sent in [
            "https://api.example/things?page=2",
            "https://b\u{fc}cher.example:8443/caf\u{e9}/%7Euser/../x?q=a b&r=\u{e9}#frag",
            "http://[::1]:8080/x",
            "https://user:pa%20ss@api.example/",
            long.as_str(),
        ] {
            let mut original = request(Method::DELETE);
            *original.url_mut() = Url::parse(sent).unwrap();
            *original.version_mut() = Version::HTTP_11;
            let redirected_to = Url::parse("https://api.example/moved").unwrap();
            for answered_from in [original.url().clone(), redirected_to] {
                let recalled = Replay::of(&original).recall(&answered_from).unwrap();
                assert_eq!(&recalled.sent_to, original.url(), "{sent}");
                let replay = recalled.request.unwrap();
                assert_eq!(replay.url(), original.url(), "{sent}");
                assert_eq!(replay.method(), Method::DELETE);
                assert_eq!(replay.version(), Version::HTTP_11);
            }
        }
    }
}
