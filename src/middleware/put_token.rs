//! A slot's token on a request: the cached one without a wait, else a new one.
//!
//! A token replacing one the API refused comes at the pace refusals set. With DPoP, a new proof
//! for the request's method and URL goes with the token.

use http::header::AUTHORIZATION;
use reqwest::Request;
use tokio::time::Instant;

use std::sync::Arc;

use crate::cache::cached_token::{Lent, TokenId};
use crate::cache::{Miss, Slot};
use crate::endpoint::dpop::header::DPOP;
use crate::error::Error;

/// Puts a token of `slot` that does not count as expired on `request`; which token it put
/// there. The cached token needs no await: nearly every request takes it.
pub(super) async fn attach_fresh_token(
    slot: &Arc<Slot>,
    request: &mut Request,
) -> reqwest_middleware::Result<TokenId> {
    match cached_token(slot) {
        Ok(lent) => put_token(slot, request, lent),
        // Boxed: rare, and its state would otherwise make every request's future larger.
        Err(miss) => Box::pin(put_replacing_token(slot, request, miss)).await,
    }
}

/// What a request takes of `slot`'s in-process token, with the calling thread's copy of its
/// header, when the token does not count as expired; otherwise what was seen there.
fn cached_token(slot: &Arc<Slot>) -> Result<Lent, Miss> {
    slot.cached(|cached| cached.lend(slot.header_of(cached)))
}

/// Puts on `request` a token in place of the one `miss` saw; which token it put there.
/// While the API refuses even the tokens replays get, a refused token is replaced only at
/// the pace the slot's refusals set: the request waits for that fetch.
async fn put_replacing_token(
    slot: &Arc<Slot>,
    request: &mut Request,
    mut miss: Miss,
) -> reqwest_middleware::Result<TokenId> {
    if miss.0.as_ref().is_some_and(|seen| seen.is_rejected())
        && let Some(until) = slot.refusals.wait_until(Instant::now())
    {
        tracing::debug!(key = %slot.key, "the API refused a replay's token lately; waiting for the next token fetch");
        tokio::time::sleep_until(until).await;
        // Another request may have fetched the token meanwhile.
        match cached_token(slot) {
            Ok(lent) => return put_token(slot, request, lent),
            Err(again) => miss = again,
        }
    }
    let (seen, now) = miss;
    let fetched = slot.replace(seen, now).await.map_err(Error::not_sent)?;
    put_token(slot, request, fetched.lend(slot.header_of(&fetched)))
}

/// Puts the token `lent` on `request`: its `Authorization` header and, with DPoP, a new
/// proof for the request's method and URL; which token it was.
fn put_token(
    slot: &Arc<Slot>,
    request: &mut Request,
    lent: Lent,
) -> reqwest_middleware::Result<TokenId> {
    if let Some(dpop) = &slot.client.endpoint.dpop {
        let proof = dpop
            .proof(request.method(), request.url(), lent.ath.as_deref())
            .map_err(Error::not_sent)?;
        request.headers_mut().insert(DPOP, proof);
    }
    request.headers_mut().insert(AUTHORIZATION, lent.header);
    Ok(lent.id)
}
