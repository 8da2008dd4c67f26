//! DPoP (RFC 9449): the key tokens are bound to (`key`), and the proofs it signs (`proof`).
//!
//! With a DPoP key, the token endpoint binds each token to the key's public half, and a token
//! is good only with a fresh proof, signed with the key, for the request it goes with: a stolen
//! token is useless without the key. Signing needs the `jwt` feature; what DPoP asks of HTTP
//! (`header`) is there without it.

pub(crate) mod header;
#[cfg(feature = "jwt")]
mod key;
#[cfg(feature = "jwt")]
pub(crate) mod proof;
#[cfg(feature = "jwt")]
mod signer;

#[cfg(feature = "jwt")]
pub use key::DpopKey;

/// Without the `jwt` feature there is no DPoP key, and so never a `DpopProofs`: the type has
/// no values, and the code that would use one is never reached.
#[cfg(not(feature = "jwt"))]
pub(crate) mod proof {
    use http::{HeaderMap, HeaderValue, Method};
    use url::Url;

    use crate::error::Error;

    pub(crate) enum DpopProofs {}

    impl DpopProofs {
        pub(crate) fn proof(
            &self,
            _: &Method,
            _: &Url,
            _: Option<&str>,
        ) -> Result<HeaderValue, Error> {
            match *self {}
        }

        pub(crate) fn remember_nonce(&self, _: &Url, _: &HeaderMap) -> bool {
            match *self {}
        }
    }
}
