//! One middleware, one client, three APIs and two Auth0-style organizations.
//!
//! ```text
//! cargo run --example many_apis [-- --requests 50]
//! ```
//!
//! A local authorization server issues tokens for an audience, and for an organization when one
//! is asked; three local APIs (orders, billing, and members, which serves one organization per
//! path) each take only tokens of their own audience, and members only those of the path's
//! organization. Every request goes through ONE `ClientCredentials` on ONE client: orders and
//! billing by route, members with the grant each request names. Prints a table per API and
//! `token calls: X (expected Y)`; exits with status 1 when an API saw a token not meant for it,
//! a request failed, or X is not Y.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest_alf::{ClientCredentials, Grant};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::json;

const CLIENT_ID: &str = "many-apis-client";
const CLIENT_SECRET: &str = "many-apis-secret";
const ORDERS: &str = "https://orders.example/";
const BILLING: &str = "https://billing.example/";
const MEMBERS: &str = "https://members.example/";
const ORGANIZATIONS: [&str; 2] = ["org_acme", "org_globex"];

/// What the authorization server issued, and what the APIs saw.
#[derive(Default)]
struct Shared {
    /// Each token's audience and organization.
    issued: Mutex<HashMap<String, (String, Option<String>)>>,
    token_calls: AtomicUsize,
    /// Per API (and organization): requests served, and tokens not meant for it.
    seen: Mutex<HashMap<String, (usize, usize)>>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let requests = requests_from_args();
    let shared = Arc::new(Shared::default());
    let auth = serve(authorization_server(), &shared).await;
    let orders = serve(api(ORDERS), &shared).await;
    let billing = serve(api(BILLING), &shared).await;
    let members = serve(api(MEMBERS), &shared).await;

    let middleware = ClientCredentials::builder(
        format!("http://{auth}/oauth/token"),
        CLIENT_ID,
        CLIENT_SECRET,
    )
    .route(format!("http://{orders}"), Grant::new().audience(ORDERS))
    .route(format!("http://{billing}"), Grant::new().audience(BILLING))
    .build()
    .expect("a valid configuration");
    let client: ClientWithMiddleware = ClientBuilder::new(reqwest::Client::new())
        .with(middleware.clone())
        .build();

    let mut failed = 0;
    for _ in 0..requests {
        let mut sent = vec![
            client.get(format!("http://{orders}/orders")),
            client.get(format!("http://{billing}/invoices")),
        ];
        for org in ORGANIZATIONS {
            sent.push(
                client
                    .get(format!("http://{members}/orgs/{org}/members"))
                    .with_extension(Grant::new().audience(MEMBERS).organization(org)),
            );
        }
        for request in sent {
            match request.send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    failed += 1;
                    eprintln!("{} answered {}", response.url(), response.status());
                }
                Err(error) => {
                    failed += 1;
                    eprintln!("request failed: {error}");
                }
            }
        }
    }

    println!("| API | served | tokens not meant for it |");
    println!("|---|---:|---:|");
    let seen = shared.seen.lock().unwrap().clone();
    let mut rows: Vec<_> = seen.iter().collect();
    rows.sort();
    let mut wrong = 0;
    for (api, (served, not_ours)) in rows {
        println!("| {api} | {served} | {not_ours} |");
        wrong += not_ours;
    }
    println!();
    println!("| grant | token requests | served from memory |");
    println!("|---|---:|---:|");
    for grant in middleware.stats_by_grant() {
        println!(
            "| {} | {} | {} |",
            grant.grant, grant.stats.token_requests, grant.stats.memory_hits
        );
    }
    println!();
    let token_calls = shared.token_calls.load(Ordering::SeqCst);
    // One token per grant: orders, billing, and members for each organization.
    let expected = 2 + ORGANIZATIONS.len();
    println!("token calls: {token_calls} (expected {expected})");
    if wrong > 0 || failed > 0 || token_calls != expected {
        eprintln!(
            "{wrong} tokens reached an API they were not meant for; {failed} requests failed"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `--requests N`: how many rounds of four requests (default 50).
fn requests_from_args() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--requests")
        .and_then(|at| args.get(at + 1))
        .map_or(50, |n| n.parse().expect("--requests takes a number"))
}

async fn serve(router: Router<Arc<Shared>>, shared: &Arc<Shared>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = router.with_state(Arc::clone(shared));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The token endpoint: client-credentials with `client_secret_basic`, a token per call for the
/// audience and organization asked.
fn authorization_server() -> Router<Arc<Shared>> {
    Router::new().route(
        "/oauth/token",
        post(
            |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String| async move {
                let basic = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
                let expected = format!("Basic {basic}");
                if headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    != Some(expected.as_str())
                {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": "invalid_client"})),
                    );
                }
                let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
                let n = shared.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
                let token = format!("opaque-token-{n}");
                let audience = form.get("audience").cloned().unwrap_or_default();
                let organization = form.get("organization").cloned();
                shared
                    .issued
                    .lock()
                    .unwrap()
                    .insert(token.clone(), (audience, organization));
                (
                    StatusCode::OK,
                    axum::Json(json!({
                        "access_token": token,
                        "token_type": "Bearer",
                        "expires_in": 3600,
                    })),
                )
            },
        ),
    )
}

/// An API that takes only tokens for `audience`; under `/orgs/{org}/`, only those of `org`.
fn api(audience: &'static str) -> Router<Arc<Shared>> {
    let check = move |shared: Arc<Shared>, headers: HeaderMap, org: Option<String>| {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let meant_for_us =
            shared
                .issued
                .lock()
                .unwrap()
                .get(token)
                .is_some_and(|(aud, token_org)| {
                    aud == audience && (org.is_none() || *token_org == org)
                });
        let name = match &org {
            Some(org) => format!("{audience} ({org})"),
            None => audience.to_owned(),
        };
        let mut seen = shared.seen.lock().unwrap();
        let row = seen.entry(name).or_default();
        if meant_for_us {
            row.0 += 1;
            StatusCode::OK
        } else {
            row.1 += 1;
            StatusCode::UNAUTHORIZED
        }
    };
    Router::new()
        .route(
            "/orgs/{org}/members",
            get(
                move |State(shared): State<Arc<Shared>>,
                      Path(org): Path<String>,
                      headers: HeaderMap| async move {
                    check(shared, headers, Some(org))
                },
            ),
        )
        .fallback(get(
            move |State(shared): State<Arc<Shared>>, headers: HeaderMap| async move {
                check(shared, headers, None)
            },
        ))
}
