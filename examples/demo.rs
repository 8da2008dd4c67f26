//! The main job: reqwest-alf against an embedded authorization server and a protected API.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! Walks through first fetch, reuse, expiry, revocation with replay, retries after 503, and a
//! refused client, printing what the servers saw after each step. Exits with status 1 if any
//! step does not behave as expected.

// The demo's servers; their latency and timing controls are for the fleet example.
#[allow(dead_code)]
mod demo_server;

use std::process::ExitCode;
use std::time::Duration;

use demo_server::{DemoServers, RegisteredClient, SCOPE};
use reqwest_alf::retry_policies::policies::ExponentialBackoff;
use reqwest_alf::{AccessToken, AuthMethod, ClientCredentials, ClientCredentialsBuilder, Token};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

const CLIENT: RegisteredClient = RegisteredClient {
    id: "demo-client",
    secret: "demo-secret",
    lifetime: Duration::from_secs(3600),
};
const SHORT_LIVED: RegisteredClient = RegisteredClient {
    id: "short-lived-client",
    secret: "short-lived-secret",
    lifetime: Duration::from_secs(2),
};

/// One row of the table: what a step did, and what the servers had seen by its end.
struct Step {
    name: &'static str,
    outcome: String,
    token_calls: usize,
    api_calls: usize,
    expected: (&'static str, usize, usize),
}

impl Step {
    fn passed(&self) -> bool {
        (self.outcome.as_str(), self.token_calls, self.api_calls) == self.expected
    }
}

struct Demo {
    servers: DemoServers,
    steps: Vec<Step>,
}

impl Demo {
    fn middleware(&self, client: &RegisteredClient) -> ClientWithMiddleware {
        self.middleware_with_secret(client, client.secret)
    }

    fn middleware_with_secret(
        &self,
        client: &RegisteredClient,
        secret: &str,
    ) -> ClientWithMiddleware {
        let auth = ClientCredentials::builder(&self.servers.token_url, client.id, secret)
            .audience(&self.servers.api_url)
            .scope(SCOPE)
            .auth_method(AuthMethod::ClientSecretPost)
            .token_retry(
                ExponentialBackoff::builder()
                    .retry_bounds(Duration::from_millis(50), Duration::from_secs(1))
                    .build_with_max_retries(3),
            )
            .build()
            .expect("the demo's settings are valid");
        ClientBuilder::new(reqwest::Client::new())
            .with(auth)
            .build()
    }

    /// Sends `GET /fruits` through `client` and records the outcome as a step.
    async fn step(
        &mut self,
        name: &'static str,
        client: &ClientWithMiddleware,
        expected: (&'static str, usize, usize),
    ) {
        let outcome = match client
            .get(format!("{}/fruits", self.servers.api_url))
            .send()
            .await
        {
            Ok(response) => response.status().as_u16().to_string(),
            Err(error) => match reqwest_alf::Error::downcast_ref(&error) {
                Some(reqwest_alf::Error::TokenEndpoint {
                    oauth_error: Some(e),
                    ..
                }) => {
                    format!("error: {}", e.error())
                }
                Some(other) => format!("error: {other}"),
                None => format!("error: {error}"),
            },
        };
        self.steps.push(Step {
            name,
            outcome,
            token_calls: self.servers.token_calls(),
            api_calls: self.servers.api_calls(),
            expected,
        });
    }

    fn print(&self) {
        println!(
            "{:<3} {:<58} {:<22} {:>11} {:>9}  as expected",
            "#", "step", "outcome", "token calls", "API calls"
        );
        println!("{}", "-".repeat(120));
        for (n, step) in self.steps.iter().enumerate() {
            println!(
                "{:<3} {:<58} {:<22} {:>11} {:>9}  {}",
                n + 1,
                step.name,
                step.outcome,
                step.token_calls,
                step.api_calls,
                if step.passed() { "yes" } else { "NO" }
            );
            if !step.passed() {
                let (outcome, tokens, api) = step.expected;
                println!("    expected: {outcome}, {tokens} token calls, {api} API calls");
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let servers = match DemoServers::start(&[CLIENT, SHORT_LIVED]).await {
        Ok(servers) => servers,
        Err(error) => {
            eprintln!("could not start the demo servers: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("authorization server: {}", servers.token_url);
    println!("fruit API:            {}/fruits\n", servers.api_url);
    let mut demo = Demo {
        servers,
        steps: Vec::new(),
    };

    let client = demo.middleware(&CLIENT);
    demo.step("first request fetches a token", &client, ("200", 1, 1))
        .await;
    demo.step("second request reuses it", &client, ("200", 1, 2))
        .await;
    demo.step("third request reuses it", &client, ("200", 1, 3))
        .await;

    // A 2-second token counts as expired after 1 s: the margin never takes more than half.
    let short = demo.middleware(&SHORT_LIVED);
    demo.step(
        "short-lived client: first request fetches",
        &short,
        ("200", 2, 4),
    )
    .await;
    demo.step(
        "short-lived client: token still fresh, reused",
        &short,
        ("200", 2, 5),
    )
    .await;
    wait_until_stale(&SHORT_LIVED).await;
    demo.step(
        "short-lived client: token expired, refreshed",
        &short,
        ("200", 3, 6),
    )
    .await;

    demo.servers.revoke_all();
    demo.step(
        "API revoked the token: 401, refetch, replay",
        &client,
        ("200", 4, 8),
    )
    .await;

    demo.servers.fail_next_token_calls(2);
    let cold = demo.middleware(&CLIENT);
    demo.step(
        "token endpoint fails twice (503), retry succeeds",
        &cold,
        ("200", 7, 9),
    )
    .await;

    let wrong = demo.middleware_with_secret(&CLIENT, "not-the-secret");
    demo.step(
        "wrong secret: refused, API not called",
        &wrong,
        ("error: invalid_client", 8, 9),
    )
    .await;

    demo.print();
    if demo.steps.iter().all(Step::passed) {
        println!("\nall {} steps behaved as expected", demo.steps.len());
        ExitCode::SUCCESS
    } else {
        println!("\nsome steps did not behave as expected");
        ExitCode::FAILURE
    }
}

/// Sleeps until a token just issued to `client` counts as expired, by the middleware's own rule
/// for the default expiry margin.
async fn wait_until_stale(client: &RegisteredClient) {
    let now = std::time::SystemTime::now();
    let token = Token::new(AccessToken::new("-"), now, now + client.lifetime);
    let stale_at = token.stale_at(ClientCredentialsBuilder::DEFAULT_EXPIRY_MARGIN);
    let stale_after = stale_at.duration_since(now).unwrap_or_default();
    tokio::time::sleep(stale_after + Duration::from_millis(100)).await;
}
