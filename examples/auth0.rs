//! Lists the users of an Auth0 tenant through the Management API, with a token the middleware
//! gets, caches and renews by itself.
//!
//! ```text
//! cargo run --example auth0
//! ```
//!
//! Reads from the environment, or from a `.env` file in the current directory:
//!
//! - `AUTH0_DOMAIN`: the tenant's domain, e.g. `tenant.eu.auth0.com`
//! - `AUTH0_CLIENT_ID`: a machine-to-machine application's client id
//! - `AUTH0_CLIENT_SECRET`: its client secret, or instead
//! - `AUTH0_PRIVATE_KEY_FILE`: a PEM private key whose public key is registered with the
//!   application (`private_key_jwt`, with `--features jwt`), with `AUTH0_KEY_ID` if the key
//!   has one
//! - `AUTH0_AUDIENCE` (optional): the API identifier; the Management API's by default
//!
//! The application must be authorized for the Management API with the `read:users` scope.
//! Without the variables, prints what to set and exits with status 2.

use std::process::ExitCode;

use reqwest_alf::ClientCredentials;
use reqwest_middleware::ClientBuilder;

const HELP: &str = "\
Set these in the environment or in a .env file, from the Auth0 dashboard:
  AUTH0_DOMAIN            Applications > your application > Settings > Domain
  AUTH0_CLIENT_ID         the same page, Client ID
  AUTH0_CLIENT_SECRET     the same page, Client Secret
    or AUTH0_PRIVATE_KEY_FILE (and AUTH0_KEY_ID) for private_key_jwt:
                          Credentials tab, Private Key JWT, with the public key registered there
  AUTH0_AUDIENCE          optional: APIs > your API > Identifier
                          (default: the Management API, https://{AUTH0_DOMAIN}/api/v2/)
The application must be authorized for the Auth0 Management API with the read:users scope
(Applications > APIs > Auth0 Management API > Machine to Machine Applications).";

struct Settings {
    domain: String,
    client_id: String,
    secret: Option<String>,
    private_key_file: Option<String>,
    key_id: Option<String>,
    audience: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn settings() -> Option<Settings> {
    let settings = Settings {
        domain: var("AUTH0_DOMAIN")?,
        client_id: var("AUTH0_CLIENT_ID")?,
        secret: var("AUTH0_CLIENT_SECRET"),
        private_key_file: var("AUTH0_PRIVATE_KEY_FILE"),
        key_id: var("AUTH0_KEY_ID"),
        audience: var("AUTH0_AUDIENCE"),
    };
    (settings.secret.is_some() || settings.private_key_file.is_some()).then_some(settings)
}

fn middleware(settings: &Settings) -> Result<ClientCredentials, Box<dyn std::error::Error>> {
    let audience = settings
        .audience
        .clone()
        .unwrap_or_else(|| format!("https://{}/api/v2/", settings.domain));
    let secret = settings.secret.clone().unwrap_or_default();
    let mut builder =
        ClientCredentials::auth0(&settings.domain, &settings.client_id, secret).audience(audience);
    if let Some(path) = &settings.private_key_file {
        builder = with_private_key(builder, path, settings.key_id.as_deref())?;
    }
    Ok(builder.build()?)
}

/// `private_key_jwt` with the key in `path`: the `jwt` feature's.
#[cfg(feature = "jwt")]
fn with_private_key(
    builder: reqwest_alf::ClientCredentialsBuilder,
    path: &str,
    key_id: Option<&str>,
) -> Result<reqwest_alf::ClientCredentialsBuilder, Box<dyn std::error::Error>> {
    use reqwest_alf::{AuthMethod, PrivateKey};

    let pem = std::fs::read(path).map_err(|e| format!("AUTH0_PRIVATE_KEY_FILE {path}: {e}"))?;
    let mut key = PrivateKey::from_pem(pem)?;
    if let Some(key_id) = key_id {
        key = key.key_id(key_id);
    }
    Ok(builder.auth_method(AuthMethod::PrivateKeyJwt(key)))
}

#[cfg(not(feature = "jwt"))]
fn with_private_key(
    _: reqwest_alf::ClientCredentialsBuilder,
    _: &str,
    _: Option<&str>,
) -> Result<reqwest_alf::ClientCredentialsBuilder, Box<dyn std::error::Error>> {
    Err(
        "AUTH0_PRIVATE_KEY_FILE needs the jwt feature: cargo run --example auth0 --features jwt"
            .into(),
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    // A .env file is optional: the environment alone will do.
    let _ = dotenvy::dotenv();
    let Some(settings) = settings() else {
        eprintln!("{HELP}");
        return ExitCode::from(2);
    };
    let auth = match middleware(&settings) {
        Ok(auth) => auth,
        Err(error) => {
            eprintln!("cannot set up the middleware: {error}");
            return ExitCode::from(2);
        }
    };
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build();

    let url = format!(
        "https://{}/api/v2/users?per_page=20&fields=user_id,email,name&include_fields=true",
        settings.domain
    );
    let response = match client.get(&url).send().await {
        Ok(response) => response,
        Err(error) => {
            match reqwest_alf::Error::downcast_ref(&error) {
                Some(no_token) => eprintln!("no token, so no request: {no_token}"),
                None => eprintln!("the request failed: {error}"),
            }
            return ExitCode::FAILURE;
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        eprintln!("GET /api/v2/users answered {status}: {body}");
        if status == reqwest::StatusCode::FORBIDDEN {
            eprintln!("Grant the application the read:users scope on the Management API.");
        }
        return ExitCode::FAILURE;
    }
    let body = response.bytes().await.unwrap_or_default();
    let users: Vec<serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(users) => users,
        Err(error) => {
            eprintln!("GET /api/v2/users answered something other than a list of users: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{:<40} {:<36} name", "user_id", "email");
    println!("{}", "-".repeat(100));
    for user in &users {
        let field = |name: &str| user[name].as_str().unwrap_or("").to_owned();
        println!(
            "{:<40} {:<36} {}",
            field("user_id"),
            field("email"),
            field("name")
        );
    }
    println!("{} user(s) shown (at most 20)", users.len());
    ExitCode::SUCCESS
}
