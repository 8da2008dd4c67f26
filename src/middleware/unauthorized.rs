//! After a 401 from the API: a new token and one replay, or the 401 to the caller, and why.

use http::{Extensions, StatusCode};
use reqwest::Response;
use reqwest_middleware::Next;
use tokio::time::Instant;

use std::sync::Arc;

use crate::cache::Slot;
use crate::cache::cached_token::TokenId;
use crate::cache::refusals::{FIRST_PACE, LONGEST_PACE};
use crate::endpoint::dpop::header::asks_for_nonce;
use crate::middleware::attach::answered_where_sent;
use crate::middleware::put_token::attach_fresh_token;
use crate::middleware::replay::{Recalled, Replay};
use crate::stats::count;

/// What follows `response`, a 401 to a request that went out with `slot`'s token `used`: at
/// most one replay, with a new token, or with the current one and the DPoP nonce the API
/// asked for.
pub(super) async fn after_unauthorized(
    slot: &Arc<Slot>,
    response: Response,
    replay: Replay,
    used: TokenId,
    extensions: &mut Extensions,
    next: Next<'_>,
) -> reqwest_middleware::Result<Response> {
    let Some(Recalled { sent_to, request }) = replay.recall(response.url()) else {
        return Ok(response);
    };
    if !answered_where_sent(&sent_to, response.url()) {
        tracing::debug!(
            key = %slot.key,
            answered_from = %response.url().origin().ascii_serialization(),
            "the 401 came from another origin a redirect led to, which never saw the token: \
             the token is kept and the request is not replayed"
        );
        return Ok(response);
    }
    if slot.client.endpoint.dpop.is_some() && asks_for_nonce(response.headers()) {
        // The token is good; the proof lacked the server's nonce, which it has now given.
        // This is the request's one replay.
        let Some(mut replay) = request else {
            return Ok(response);
        };
        tracing::debug!(key = %slot.key, "the API asked for a DPoP nonce; replaying once with it");
        attach_fresh_token(slot, &mut replay).await?;
        count(&slot.counters.replays);
        return next.run(replay, extensions).await;
    }
    // Replayed or not, the refused token must not serve another request.
    slot.invalidate_used(used).await;
    let Some(mut replay) = request else {
        tracing::warn!(
            key = %slot.key,
            "the API answered 401, and the request is not replayed: its body is a stream \
             that cannot be sent twice; the next request gets a new token"
        );
        return Ok(response);
    };

    tracing::debug!(key = %slot.key, "the API answered 401; replaying once with a new token");
    let replayed_with = attach_fresh_token(slot, &mut replay).await?;
    if replayed_with == used {
        // Unreachable while the cache keeps its invariants; the promise not to send a
        // refused token again does not rest on that.
        tracing::warn!(key = %slot.key, "no other token than the refused one could be had; the 401 goes to the caller");
        return Ok(response);
    }
    count(&slot.counters.replays);
    let replayed_to = replay.url().clone();
    let replayed = next.run(replay, extensions).await?;
    if replayed.status() != StatusCode::UNAUTHORIZED {
        slot.refusals.accepted();
        return Ok(replayed);
    }
    if !answered_where_sent(&replayed_to, replayed.url()) {
        // From another origin a redirect led to, which never saw the token: neither taken
        // nor refused.
        return Ok(replayed);
    }
    slot.invalidate_used(replayed_with).await;
    if slot.refusals.refused(replayed_with, Instant::now()) {
        tracing::warn!(
            key = %slot.key,
            "the API refused the token a replay got too: it was revoked in flight, or the \
             API does not take this client's tokens. Check the audience, the resource \
             (RFC 8707) and the scope the token is asked for, and that the API trusts this \
             authorization server. While refusals go on, new tokens are fetched at most \
             once every {}–{} s",
            FIRST_PACE.as_secs(),
            LONGEST_PACE.as_secs()
        );
    }
    Ok(replayed)
}
