//! A token endpoint whose tokens name their grant, and APIs that take only tokens meant for
//! them: what the tests of many grants through one middleware stand on.
//!
//! A token reads `{audience}.{organization or -}.{n}`, `n` counting that grant's token calls.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};

use super::assertion::fields;
use super::{Counter, TOKEN_PATH, bearer_token, json_response, token_json};

/// Token calls by grant (`audience.organization`).
#[derive(Clone, Default)]
pub struct Issuer(Arc<Mutex<HashMap<String, usize>>>);

impl Issuer {
    /// Token calls for `audience` and `organization`.
    pub fn calls(&self, audience: &str, organization: Option<&str>) -> usize {
        let grant = format!("{audience}.{}", organization.unwrap_or("-"));
        self.0.lock().unwrap().get(&grant).copied().unwrap_or(0)
    }

    /// Token calls, all grants together.
    pub fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }
}

/// `auth`'s token endpoint, issuing tokens that name their audience and organization.
pub async fn issuer(auth: &MockServer) -> Issuer {
    let issuer = Issuer::default();
    let calls = issuer.clone();
    auth.mock_async(move |when, then| {
        when.method("POST").path(TOKEN_PATH);
        then.respond_with(move |request: &HttpMockRequest| {
            let form = fields(&request.body_string());
            let field = |name: &str| {
                form.iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            };
            let grant = format!(
                "{}.{}",
                field("audience").unwrap_or_else(|| "-".into()),
                field("organization").unwrap_or_else(|| "-".into())
            );
            let n = {
                let mut calls = calls.0.lock().unwrap();
                let n = calls.entry(grant.clone()).or_default();
                *n += 1;
                *n
            };
            json_response(200, &token_json(&format!("{grant}.{n}"), Some(3600)))
        });
    })
    .await;
    issuer
}

/// What an API saw: requests it served, and tokens that were not meant for it.
#[derive(Clone, Default)]
pub struct Api {
    pub served: Counter,
    pub wrong: Counter,
    revoked: Arc<Mutex<HashSet<String>>>,
}

impl Api {
    /// Makes the API refuse `token` from now on, as if it had been revoked.
    pub fn revoke(&self, token: &str) {
        self.revoked.lock().unwrap().insert(token.to_owned());
    }
}

/// An API on `server` that takes only tokens for `audience`; under `/orgs/{org}/`, only those
/// of that organization too. Any other token is counted as wrong and answered 401.
pub async fn api(server: &MockServer, audience: &'static str) -> Api {
    let api = Api::default();
    let seen = api.clone();
    server
        .mock_async(move |when, then| {
            when.method("GET");
            then.respond_with(move |request: &HttpMockRequest| {
                let token = bearer_token(request).unwrap_or_default();
                let mut parts = token.split('.');
                let (token_audience, token_org) = (parts.next(), parts.next());
                let path = request.uri().path().to_owned();
                let wanted_org = path
                    .strip_prefix("/orgs/")
                    .and_then(|p| p.split('/').next());
                let meant_for_us = token_audience == Some(audience)
                    && wanted_org.is_none_or(|org| token_org == Some(org));
                if !meant_for_us {
                    seen.wrong.bump();
                    return HttpMockResponse::builder().status(401).build();
                }
                if seen.revoked.lock().unwrap().contains(&token) {
                    return HttpMockResponse::builder().status(401).build();
                }
                seen.served.bump();
                HttpMockResponse::builder().status(200).build()
            });
        })
        .await;
    api
}
