//! What a DPoP proof costs per request, next to a bearer token, for each key type.
//!
//! ```text
//! cargo bench --bench dpop
//! ```
//!
//! The no-network set-up of `hot_path`: every client ends in a middleware that answers at once,
//! so each bench is the middleware's own cost. `bearer` attaches a cached token; the others
//! attach a cached DPoP token and sign a new proof (one signature) for the request.

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use reqwest_alf::{ClientCredentials, DpopKey, JwtAlgorithm};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::{Answer, compare, runtime, start_server};

const RSA: &str = include_str!("../tests/all/keys/rsa-private.pem");

fn answering(auth: Option<ClientCredentials>) -> ClientWithMiddleware {
    let builder = ClientBuilder::new(reqwest::Client::new());
    match auth {
        Some(auth) => builder.with(auth).with(Answer).build(),
        None => builder.with(Answer).build(),
    }
}

fn benches(c: &mut Criterion) {
    let runtime = runtime();
    let addr = runtime.block_on(start_server());
    let url = format!("http://{addr}/fruits");
    let with_key = |key: DpopKey| {
        let auth =
            ClientCredentials::builder(format!("http://{addr}/dpop/token"), "bench", "secret")
                .dpop(key)
                .build()
                .unwrap();
        runtime.block_on(auth.token()).unwrap();
        answering(Some(auth))
    };
    let bearer = {
        let auth = support::credentials(addr, reqwest_alf::MemoryStorage::new());
        runtime.block_on(auth.token()).unwrap();
        answering(Some(auth))
    };
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .unwrap()
        .serialize_pem();
    let clients = [
        ("plain", answering(None)),
        ("bearer", bearer),
        ("DPoP ES256", with_key(DpopKey::generate().unwrap())),
        ("DPoP EdDSA", with_key(DpopKey::from_pem(ed25519).unwrap())),
        ("DPoP RS256", with_key(DpopKey::from_pem(RSA).unwrap())),
        (
            "DPoP PS256",
            with_key(
                DpopKey::from_pem(RSA)
                    .unwrap()
                    .algorithm(JwtAlgorithm::Ps256)
                    .unwrap(),
            ),
        ),
    ];
    let named = clients.each_ref().map(|(name, client)| (*name, client));
    compare(c, &runtime, "no network", named, &url);
}

criterion_group!(dpop, benches);
criterion_main!(dpop);
