//! Every Rust snippet of README.rst but the first (which is `examples/quickstart.rs`), each in
//! a function that gives it what the text around it assumes: compiled with the tests, and
//! compared with the README by `readme.rs`, so that neither can drift.
//!
//! The snippets are kept as the README shows them: no `rustfmt`, and no lint about what a
//! fragment leaves unused.
#![allow(dead_code, unused, clippy::all)]

use reqwest_alf::ClientCredentials;
use reqwest_middleware::ClientWithMiddleware;

type Outcome = Result<(), Box<dyn std::error::Error>>;

#[rustfmt::skip]
async fn token_without_the_middleware(auth: ClientCredentials) -> Outcome {
    let token = auth.token().await?;
    let response = reqwest::Client::new()
        .get("https://fruits.example.com/fruits")
        .bearer_auth(token.access_token().secret())
        .send()
        .await?;
    Ok(())
}

#[rustfmt::skip]
async fn the_error_when_no_token_can_be_had(client: ClientWithMiddleware) -> Outcome {
    match client.get("https://fruits.example.com/fruits").send().await {
        Ok(response) => println!("{}", response.status()),
        Err(error) => match reqwest_alf::Error::downcast_ref(&error) {
            Some(no_token) => eprintln!("request not sent: {no_token}"),
            None => eprintln!("request failed: {error}"),
        },
    }
    Ok(())
}

#[rustfmt::skip]
async fn where_tokens_go(token_url: &str, client_id: &str, client_secret: &str) -> Outcome {
    let auth = ClientCredentials::builder(token_url, client_id, client_secret)
        .audience("https://fruits.example.com")
        .only_for(["https://fruits.example.com"]) // scheme, host and port
        .attach_when(|request| request.url().path().starts_with("/api/"))
        .build()?;
    Ok(())
}

#[rustfmt::skip]
async fn one_middleware_many_apis(client_id: &str, client_secret: &str) -> Outcome {
    use reqwest_alf::{ClientCredentials, Grant};

    let auth = ClientCredentials::auth0("tenant.eu.auth0.com", client_id, client_secret)
        .route("https://orders.example", Grant::new().audience("https://orders.example/"))
        .route("https://api.example/billing", Grant::new().audience("https://billing.example/"))
        .build()?;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(auth.clone())
        .build();

    // By route: the orders API's token.
    client.get("https://orders.example/v1/orders").send().await?;
    // Named per request: the members API's token for one organization (one per tenant, say).
    let acme = Grant::new().audience("https://members.example/").organization("org_acme");
    client
        .get("https://members.example/v1/members")
        .with_extension(acme.clone())
        .send()
        .await?;
    // Without reqwest-middleware: the same token.
    let token = auth.token_for(&acme).await?;
    Ok(())
}

#[rustfmt::skip]
async fn auth0(client_id: &str, client_secret: &str) -> Outcome {
    use reqwest_alf::ClientCredentials;

    let auth = ClientCredentials::auth0("tenant.eu.auth0.com", client_id, client_secret)
        .audience("https://tenant.eu.auth0.com/api/v2/") // the Management API
        .build()?;
    Ok(())
}

#[cfg(feature = "jwt")]
#[rustfmt::skip]
async fn auth0_with_a_private_key(client_id: &str) -> Outcome {
    use reqwest_alf::{AuthMethod, ClientCredentials, PrivateKey};

    let key = PrivateKey::from_pem(std::fs::read("private-key.pem")?)? // RS256; PS256 and ES256 too
        .key_id("my-key-id"); // optional `kid`
    let auth = ClientCredentials::auth0("tenant.eu.auth0.com", client_id, "")
        .audience("https://tenant.eu.auth0.com/api/v2/")
        .auth_method(AuthMethod::PrivateKeyJwt(key))
        .build()?;
    Ok(())
}

#[cfg(feature = "jwt")]
#[rustfmt::skip]
async fn dpop() -> Outcome {
    use reqwest_alf::{ClientCredentials, DpopKey};

    let key = DpopKey::from_pem(std::fs::read("dpop-key.pem")?)?; // or DpopKey::generate()?
    let auth = ClientCredentials::builder("https://idp.example/oauth2/token", "id", "secret")
        .dpop(key)
        .build()?;
    Ok(())
}

#[cfg(feature = "redis")]
#[rustfmt::skip]
async fn redis(token_url: &str, client_id: &str, client_secret: &str) -> Outcome {
    use reqwest_alf::{ClientCredentials, RedisStorage};

    let storage = RedisStorage::from_url("redis://:password@redis.internal:6379/0")?;
    let auth = ClientCredentials::builder(token_url, client_id, client_secret)
        .audience("https://fruits.example.com")
        .storage(storage)
        .build()?;
    Ok(())
}

#[rustfmt::skip]
async fn custom_storage() -> Outcome {
    use reqwest_alf::{StorageError, Token, TokenStorage};

    struct MyStorage { /* a connection pool, … */ }

    #[async_trait::async_trait]
    impl TokenStorage for MyStorage {
        async fn get(&self, key: &str) -> Result<Option<Token>, StorageError> { todo!() }
        async fn set(&self, key: &str, token: &Token) -> Result<(), StorageError> { todo!() }
        async fn remove(&self, key: &str) -> Result<(), StorageError> { todo!() }
    }
    Ok(())
}

#[rustfmt::skip]
async fn token_retry(token_url: &str, client_id: &str, client_secret: &str) -> Outcome {
    use std::time::Duration;
    use reqwest_alf::retry_policies::{Jitter, policies::ExponentialBackoff};

    let auth = ClientCredentials::builder(token_url, client_id, client_secret)
        .token_retry(
            ExponentialBackoff::builder()
                .retry_bounds(Duration::from_millis(200), Duration::from_secs(5))
                .jitter(Jitter::Bounded)
                .build_with_max_retries(5),
        )
        .build()?;
    Ok(())
}

#[rustfmt::skip]
async fn with_reqwest_retry(auth: ClientCredentials) -> Outcome {
    // cargo add reqwest-retry@0.9
    use reqwest_middleware::ClientBuilder;
    use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};

    let policy = ExponentialBackoff::builder().build_with_max_retries(3);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth) // the token, then
        .with(RetryTransientMiddleware::new_with_policy(policy)) // retries of the API call
        .build();
    Ok(())
}

#[cfg(feature = "metrics")]
#[rustfmt::skip]
async fn metrics(auth: ClientCredentials) -> Outcome {
    // cargo add reqwest-alf --features metrics; cargo add metrics-exporter-prometheus
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;

    // In the GET /metrics handler: this moment's counts, then the text Prometheus reads.
    auth.record_metrics();
    let body = prometheus.render();
    Ok(())
}

#[rustfmt::skip]
async fn workload_identity(token_url: &str, client_id: &str, assertion_file: &str) -> Outcome {
    use reqwest_alf::{AuthMethod, ClientCredentials};

    let auth = ClientCredentials::builder(token_url, client_id, "")
        .auth_method(AuthMethod::ClientAssertionFile(assertion_file.into()))
        .build()?;
    Ok(())
}

#[rustfmt::skip]
async fn jwt_bearer_grant(token_url: &str, client_id: &str, assertion_file: &str) -> Outcome {
    use reqwest_alf::{AuthMethod, ClientCredentials, JwtBearer};

    let auth = ClientCredentials::builder(token_url, client_id, "")
        .auth_method(AuthMethod::None) // or any method the server wants besides the assertion
        .jwt_bearer(JwtBearer::from_file("system:serviceaccount:shop:orders", assertion_file))
        .build()?;
    Ok(())
}
