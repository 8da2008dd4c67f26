//! Which requests get a token: a bearer token goes only where it is meant to go.
//!
//! A bearer token is a credential: whoever holds it is the client.

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, Method};
use reqwest::Request;
use url::{Host, Url};

use crate::error::{ConfigError, printable_without_userinfo};

/// A caller's test of whether a request gets a token.
pub(crate) type Predicate = Arc<dyn Fn(&RequestInfo<'_>) -> bool + Send + Sync>;

/// What [`attach_when`](crate::ClientCredentialsBuilder::attach_when) sees of a request: its
/// method, URL, headers and reqwest-middleware extensions, whatever the HTTP stack.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    method: &'a Method,
    url: &'a Url,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestInfo<'a> {
    /// The parts of a request the rules look at.
    pub fn new(
        method: &'a Method,
        url: &'a Url,
        headers: &'a HeaderMap,
        extensions: &'a Extensions,
    ) -> Self {
        Self {
            method,
            url,
            headers,
            extensions,
        }
    }

    /// The request's method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request's URL.
    pub fn url(&self) -> &'a Url {
        self.url
    }

    /// The request's headers, as the caller set them.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request's extensions (`with_extension` of reqwest-middleware).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

/// Scheme, host and port: where a token may go when [`only_for`] is used.
///
/// [`only_for`]: crate::ClientCredentialsBuilder::only_for
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// `https://api.example` or `https://api.example:8443`: an origin, without a path.
    pub(crate) fn parse(origin: &str) -> Result<Self, ConfigError> {
        let refuse = |why: &str| {
            ConfigError::InvalidOrigin(format!("{:?} {why}", printable_without_userinfo(origin)))
        };
        let url = web_url(origin, refuse)?;
        if url.path() != "/" {
            return Err(refuse("has a path; give the scheme, host and port alone"));
        }
        Self::of(&url).ok_or_else(|| refuse("has no host"))
    }

    pub(crate) fn of(url: &Url) -> Option<Self> {
        Some(Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }

    /// Whether `url` is at this origin; compared in place, without allocating.
    pub(crate) fn contains(&self, url: &Url) -> bool {
        url.scheme() == self.scheme
            && url.host_str() == Some(self.host.as_str())
            && url.port_or_known_default() == Some(self.port)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// `text` as an `http` or `https` URL without credentials, a query or a fragment: what a
/// setting naming where tokens go must be. The first problem otherwise, in `refuse`'s words.
pub(crate) fn web_url(
    text: &str,
    refuse: impl Fn(&str) -> ConfigError,
) -> Result<Url, ConfigError> {
    let url = Url::parse(text.trim()).map_err(|e| refuse(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("is not http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("has a query or a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("holds credentials"));
    }
    Ok(url)
}

/// The rules a request must pass to get a token, all of them.
#[derive(Clone, Default)]
pub(crate) struct AttachRules {
    /// Plain `http` to hosts that are not loopback is allowed too.
    pub(crate) allow_insecure_http: bool,
    /// When set, only these origins.
    pub(crate) origins: Option<Vec<Origin>>,
    /// When set, only requests it accepts.
    pub(crate) predicate: Option<Predicate>,
}

impl AttachRules {
    /// Whether `request` gets a token (and a replay after a 401).
    pub(crate) fn applies_to(&self, request: &Request, extensions: &Extensions) -> bool {
        let url = request.url();
        // A URL's text starts with its scheme, lower-cased, and a colon: two short compares
        // in place, where `scheme()` slices the text and calls out to compare it.
        let text = url.as_str().as_bytes();
        let transport_ok = if text.starts_with(b"https:") {
            true
        } else if text.starts_with(b"http:") {
            self.allow_insecure_http || url.host().is_some_and(|h| is_loopback(&h))
        } else {
            false
        };
        transport_ok
            && self
                .origins
                .as_ref()
                .is_none_or(|origins| origins.iter().any(|o| o.contains(url)))
            && self.predicate.as_ref().is_none_or(|accepts| {
                accepts(&RequestInfo::new(
                    request.method(),
                    url,
                    request.headers(),
                    extensions,
                ))
            })
    }
}

impl fmt::Debug for AttachRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachRules")
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field(
                "only_for",
                &self
                    .origins
                    .as_ref()
                    .map(|o| o.iter().map(ToString::to_string).collect::<Vec<_>>()),
            )
            .field(
                "attach_when",
                &self.predicate.as_ref().map(|_| "<predicate>"),
            )
            .finish()
    }
}

/// Whether an answer to a request sent to `sent_to` came from where the token went. When a
/// redirect leads to another origin (scheme, host or port), reqwest drops `Authorization`: a
/// 401 from there never saw the token, and says nothing about it.
pub(crate) fn answered_where_sent(sent_to: &Url, answered_from: &Url) -> bool {
    sent_to.origin() == answered_from.origin()
}

/// `localhost`, `*.localhost`, 127.0.0.0/8 and `::1`: traffic that never leaves the machine.
pub(crate) fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            // Byte-wise, without lowering a copy: this runs for every plain-http request.
            let suffix = b".localhost";
            let name = name.as_bytes();
            name.eq_ignore_ascii_case(&suffix[1..])
                || (name.len() > suffix.len()
                    && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
        }
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> Request {
        Request::new(reqwest::Method::GET, Url::parse(url).unwrap())
    }

    #[test]
    fn a_401_counts_only_from_the_origin_the_token_went_to() {
        let sent = Url::parse("https://api.example/old?x=1").unwrap();
        for (answered, same) in [
            ("https://api.example/new", true),
            ("https://api.example:443/x", true),
            ("https://api.example:8443/x", false),
            ("http://api.example/x", false),
            ("https://login.example/x", false),
        ] {
            let answered = Url::parse(answered).unwrap();
            assert_eq!(answered_where_sent(&sent, &answered), same, "{answered}");
        }
    }

    #[test]
    fn by_default_https_and_loopback_http_only() {
        let rules = AttachRules::default();
        for url in [
            "https://api.example/x",
            "https://api.example:8443/x",
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://[::1]/x",
            "http://API.LocalHost:9000/x",
        ] {
            assert!(rules.applies_to(&request(url), &Extensions::new()), "{url}");
        }
        for url in [
            "http://api.example/x",
            "http://10.0.0.1/x",
            "http://notlocalhost/x",
            "http://localhost.example/x",
            "ftp://api.example/x",
            "httpsx://api.example/x",
            "http+unix://localhost/x",
        ] {
            assert!(
                !rules.applies_to(&request(url), &Extensions::new()),
                "{url}"
            );
        }
        let insecure = AttachRules {
            allow_insecure_http: true,
            ..AttachRules::default()
        };
        assert!(insecure.applies_to(&request("http://api.example/x"), &Extensions::new()));
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let rules = AttachRules {
            origins: Some(vec![
                Origin::parse("https://api.example").unwrap(),
                Origin::parse("https://other.example:8443/").unwrap(),
            ]),
            ..AttachRules::default()
        };
        for url in [
            "https://api.example/fruits",
            "https://API.example:443/x?y=1",
            "https://other.example:8443/",
        ] {
            assert!(rules.applies_to(&request(url), &Extensions::new()), "{url}");
        }
        for url in [
            "https://api.example:8443/fruits",
            "https://evil.example/fruits",
            "https://api.example.evil.example/",
            "https://other.example/",
            "http://localhost/",
        ] {
            assert!(
                !rules.applies_to(&request(url), &Extensions::new()),
                "{url}"
            );
        }
    }

    #[test]
    fn a_predicate_narrows_further() {
        let rules = AttachRules {
            predicate: Some(Arc::new(|r: &RequestInfo<'_>| {
                r.url().path().starts_with("/api/")
            })),
            ..AttachRules::default()
        };
        let none = Extensions::new();
        assert!(rules.applies_to(&request("https://a.example/api/x"), &none));
        assert!(!rules.applies_to(&request("https://a.example/health"), &none));
        assert!(!rules.applies_to(&request("http://a.example/api/x"), &none));
    }

    #[test]
    fn origins_are_scheme_host_and_port_alone() {
        for bad in [
            "api.example",
            "https://api.example/v1",
            "https://api.example?x",
            "ftp://api.example",
            "https://u:p@api.example",
            "",
        ] {
            assert!(
                matches!(Origin::parse(bad), Err(ConfigError::InvalidOrigin(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Origin::parse("HTTPS://Api.Example").unwrap().to_string(),
            "https://api.example:443"
        );
    }
}
