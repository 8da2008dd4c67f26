//! A fleet whose API keeps revoking tokens: 401s to callers only from replays revoked in flight.
//!
//! The fleet shares one `redis-server`. A request whose token is refused is replayed with a
//! newer one, only a replay whose own token was revoked in flight brings its caller a 401, and
//! no instance sends a token it has already seen refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use http::Extensions;
use http::header::AUTHORIZATION;
use httpmock::{HttpMockRequest, MockServer};
use reqwest::{Request, Response};
use reqwest_alf::RedisStorage;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

use crate::support::redis_server::RedisServer;
use crate::support::{self, Counter};

const TASKS_PER_INSTANCE: usize = 4;
/// The requests go on until the last revocation and quiet spell, a task sending this many at
/// the most.
const MOST_REQUESTS_PER_TASK: usize = 200_000;

/// How hard and how long the API revokes.
struct Revocations {
    instances: usize,
    /// Every token issued so far is revoked this often…
    every: Duration,
    /// … this many times in a round…
    per_round: usize,
    /// … followed by this long without a revocation…
    quiet: Duration,
    /// … this many rounds over.
    rounds: usize,
    /// Whether every third token is revoked as it is handed out, so that replays meet
    /// revocations in flight for sure.
    every_third_at_once: bool,
}

/// What the callers and the instances saw, summed over the fleet.
#[derive(Debug)]
struct Seen {
    requests: usize,
    tokens_issued: usize,
    callers_refused: usize,
    replays_refused: usize,
    sent_again: usize,
}

/// What one instance's requests met, seen on both sides of its `ClientCredentials`.
///
/// Order is told by a counter, not a clock: each request takes a number as it starts, and a
/// token refused to a request is taken as seen by the instance once that request has come
/// back out of `ClientCredentials` (which forgot the token first). A send that carries a token
/// the instance had seen refused before its request started, or a replay that carries the
/// token its own first send was refused, is a token sent again after its refusal.
#[derive(Default)]
struct Witness {
    clock: AtomicU64,
    /// Each refused token, and the number of the moment the instance had seen it refused.
    refused: Mutex<HashMap<String, u64>>,
    sent_again: AtomicUsize,
    replays_refused: AtomicUsize,
    callers_refused: AtomicUsize,
}

/// This request's story, kept in its extensions: its number, and what each of its sends
/// carried and got.
#[derive(Clone, Default)]
struct Story {
    started: u64,
    sends: Vec<(String, u16)>,
}

/// Outside `ClientCredentials`: numbers each request, and notes its refusals once it is done.
#[derive(Clone)]
struct Outside(Arc<Witness>);

/// Inside `ClientCredentials`: sees each send, first or replay, with its token.
#[derive(Clone)]
struct Inside(Arc<Witness>);

#[async_trait::async_trait]
impl Middleware for Outside {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let started = self.0.clock.fetch_add(1, Ordering::SeqCst);
        extensions.insert(Story {
            started,
            sends: Vec::new(),
        });
        let response = next.run(request, extensions).await?;
        let story = extensions.get::<Story>().cloned().unwrap_or_default();
        let seen = self.0.clock.fetch_add(1, Ordering::SeqCst);
        let mut refused = self.0.refused.lock().unwrap();
        for (token, status) in &story.sends {
            if *status == 401 {
                refused.entry(token.clone()).or_insert(seen);
            }
        }
        if response.status() == 401 {
            self.0.callers_refused.fetch_add(1, Ordering::SeqCst);
        }
        Ok(response)
    }
}

#[async_trait::async_trait]
impl Middleware for Inside {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let story = extensions.get::<Story>().cloned().unwrap_or_default();
        let seen_before_start = self
            .0
            .refused
            .lock()
            .unwrap()
            .get(&token)
            .is_some_and(|seen| *seen < story.started);
        let own_first_refused = story
            .sends
            .first()
            .is_some_and(|(first, _)| *first == token);
        if seen_before_start || own_first_refused {
            self.0.sent_again.fetch_add(1, Ordering::SeqCst);
        }
        let is_replay = !story.sends.is_empty();
        let response = next.run(request, extensions).await?;
        let status = response.status().as_u16();
        if is_replay && status == 401 {
            self.0.replays_refused.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(story) = extensions.get_mut::<Story>() {
            story.sends.push((token, status));
        }
        Ok(response)
    }
}

/// A token endpoint that hands out `token-1`, `token-2`, …, and with `every_third_at_once`
/// revokes every third one as it hands it out: whoever asked for it, a replay among them, meets
/// a 401 with it. The count of tokens issued.
async fn numbered_tokens(
    auth: &MockServer,
    floor: Arc<AtomicUsize>,
    every_third_at_once: bool,
) -> Counter {
    let issued = Counter::default();
    let counter = issued.clone();
    auth.mock_async(move |when, then| {
        when.method("POST").path(support::TOKEN_PATH);
        then.respond_with(move |_: &HttpMockRequest| {
            let n = counter.bump();
            if every_third_at_once && n % 3 == 0 {
                floor.fetch_max(n + 1, Ordering::SeqCst);
            }
            support::json_response(200, &support::token_json(&format!("token-{n}"), Some(3600)))
        });
    })
    .await;
    issued
}

/// A fleet of `revocations.instances` on one `redis-server`, each sending requests from
/// `TASKS_PER_INSTANCE` tasks while the API revokes as `revocations` says; what they saw.
async fn fleet_under(revocations: &Revocations) -> Seen {
    let redis = RedisServer::start().await;
    let (auth, api) = (
        MockServer::start_async().await,
        MockServer::start_async().await,
    );
    let floor = Arc::new(AtomicUsize::new(1));
    let issued = numbered_tokens(&auth, floor.clone(), revocations.every_third_at_once).await;
    support::api_taking_tokens_from(&api, floor.clone()).await;
    let instances: Vec<(ClientWithMiddleware, Arc<Witness>)> = (0..revocations.instances)
        .map(|_| {
            let storage = RedisStorage::from_url(&redis.url()).unwrap();
            let credentials = support::builder(&auth).storage(storage).build().unwrap();
            let witness = Arc::new(Witness::default());
            let client = ClientBuilder::new(reqwest::Client::new())
                .with(Outside(witness.clone()))
                .with(credentials)
                .with(Inside(witness.clone()))
                .build();
            (client, witness)
        })
        .collect();

    let done = Arc::new(AtomicBool::new(false));
    let revoker = {
        let (floor, issued, done) = (floor.clone(), issued.clone(), done.clone());
        let (every, per_round, quiet, rounds) = (
            revocations.every,
            revocations.per_round,
            revocations.quiet,
            revocations.rounds,
        );
        tokio::spawn(async move {
            for _ in 0..rounds {
                for _ in 0..per_round {
                    tokio::time::sleep(every).await;
                    floor.fetch_max(issued.get() + 1, Ordering::SeqCst);
                }
                tokio::time::sleep(quiet).await;
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let url = api.url("/fruits");
    let outcomes = join_all(instances.iter().flat_map(|(client, _)| {
        (0..TASKS_PER_INSTANCE).map(|_| {
            let (client, url, done) = (client.clone(), url.clone(), done.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !done.load(Ordering::SeqCst) && statuses.len() < MOST_REQUESTS_PER_TASK {
                    let response = client.get(&url).send().await.unwrap();
                    statuses.push(response.status().as_u16());
                }
                statuses
            })
        })
    }))
    .await;
    revoker.await.unwrap();

    let statuses: Vec<u16> = outcomes.into_iter().flat_map(Result::unwrap).collect();
    assert!(
        statuses.iter().all(|s| [200, 401].contains(s)),
        "{statuses:?}"
    );
    let total =
        |count: fn(&Witness) -> usize| -> usize { instances.iter().map(|(_, w)| count(w)).sum() };
    let seen = Seen {
        requests: statuses.len(),
        tokens_issued: issued.get(),
        callers_refused: total(|w| w.callers_refused.load(Ordering::SeqCst)),
        replays_refused: total(|w| w.replays_refused.load(Ordering::SeqCst)),
        sent_again: total(|w| w.sent_again.load(Ordering::SeqCst)),
    };
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        seen.callers_refused
    );
    seen
}

/// Every promise of the replay under revocation: no token sent again after its refusal, and no
/// 401 to a caller but a replay's.
fn assert_kept(seen: &Seen) {
    assert_eq!(
        seen.sent_again, 0,
        "tokens sent again after their refusal: {seen:?}"
    );
    assert_eq!(
        seen.callers_refused, seen.replays_refused,
        "every 401 a caller got must be a replay's whose token was revoked in flight: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_under_constant_revocation_passes_on_only_the_401s_of_replays_revoked_in_flight() {
    let seen = fleet_under(&Revocations {
        instances: 8,
        every: Duration::from_millis(50),
        per_round: 30,
        quiet: Duration::ZERO,
        rounds: 1,
        every_third_at_once: true,
    })
    .await;
    assert_kept(&seen);
    // The revocations were real: tokens were refused and replaced many times over, replays'
    // tokens among them.
    assert!(seen.tokens_issued >= 3, "{seen:?}");
    assert!(seen.replays_refused > 0, "{seen:?}");
    assert!(seen.callers_refused < seen.requests, "{seen:?}");
}

/// The soak at full size, some two minutes: 24 instances, the newest token revoked every
/// 400 ms for 15 s, then 5 s quiet, six rounds over.
///
/// ```text
/// cargo test --all-features --test all -- --ignored --nocapture soak
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a soak of two minutes; run it by name"]
async fn soak_of_24_instances_under_revocation_every_400_ms() {
    let seen = fleet_under(&Revocations {
        instances: 24,
        every: Duration::from_millis(400),
        per_round: 38,
        quiet: Duration::from_secs(5),
        rounds: 6,
        every_third_at_once: false,
    })
    .await;
    eprintln!("{seen:?}");
    assert_kept(&seen);
}
