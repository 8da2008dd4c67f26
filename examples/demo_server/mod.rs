//! An embedded authorization server and a protected "fruit" API, both real HTTP servers on
//! loopback, for the examples.
//!
//! The authorization server implements the client-credentials grant (RFC 6749 §4.4) with
//! `client_secret_basic` and `client_secret_post`, and can be told to fail its next calls. The
//! API checks each bearer token the way a resource server would: known, not expired, not
//! revoked, and granted the `read:fruits` scope.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;

/// The scope the API asks for.
pub const SCOPE: &str = "read:fruits";

/// A client the authorization server knows.
pub struct RegisteredClient {
    pub id: &'static str,
    pub secret: &'static str,
    /// The `expires_in` of the tokens it gets.
    pub lifetime: Duration,
}

struct Issued {
    scope: String,
    expires_at: SystemTime,
}

#[derive(Default)]
struct Shared {
    clients: HashMap<&'static str, (&'static str, Duration)>,
    issued: Mutex<HashMap<String, Issued>>,
    token_calls: AtomicUsize,
    api_calls: AtomicUsize,
    fail_next: AtomicUsize,
    /// How long each token request takes to answer, as a real server's would.
    token_latency: Mutex<Duration>,
    /// When each token request arrived and when it was answered.
    token_call_times: Mutex<Vec<(Instant, Instant)>>,
}

/// The two servers, running until the process ends.
pub struct DemoServers {
    /// The token endpoint, `http://127.0.0.1:{port}/oauth/token`.
    pub token_url: String,
    /// The API's base URL; `GET {api_url}/fruits` is the protected resource.
    pub api_url: String,
    shared: Arc<Shared>,
}

impl DemoServers {
    /// Starts both servers on free loopback ports.
    pub async fn start(clients: &[RegisteredClient]) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            clients: clients
                .iter()
                .map(|c| (c.id, (c.secret, c.lifetime)))
                .collect(),
            ..Shared::default()
        });
        let auth = Router::new()
            .route("/oauth/token", post(token))
            .with_state(shared.clone());
        let api = Router::new()
            .route("/fruits", get(fruits))
            .with_state(shared.clone());
        let auth_addr = serve(auth).await?;
        let api_addr = serve(api).await?;
        Ok(Self {
            token_url: format!("http://{auth_addr}/oauth/token"),
            api_url: format!("http://{api_addr}"),
            shared,
        })
    }

    /// Token requests received so far, failed ones included.
    pub fn token_calls(&self) -> usize {
        self.shared.token_calls.load(Ordering::SeqCst)
    }

    /// API requests received so far, rejected ones included.
    pub fn api_calls(&self) -> usize {
        self.shared.api_calls.load(Ordering::SeqCst)
    }

    /// The next `n` token requests get `503 Service Unavailable`.
    pub fn fail_next_token_calls(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Makes every token request take `latency` before it is answered.
    pub fn set_token_latency(&self, latency: Duration) {
        *lock(&self.shared.token_latency) = latency;
    }

    /// When each token request arrived and when it was answered, in order of answer.
    pub fn token_call_times(&self) -> Vec<(Instant, Instant)> {
        lock(&self.shared.token_call_times).clone()
    }

    /// Revokes every token issued so far: the API answers 401 to them from now on.
    pub fn revoke_all(&self) {
        self.shared
            .issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

async fn serve(router: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            eprintln!("demo server stopped: {error}");
        }
    });
    Ok(addr)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// The client id and secret from `Authorization: Basic` or from the form (RFC 6749 §2.3.1).
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return Some((unescape(id)?, unescape(secret)?));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let arrived = Instant::now();
    let latency = *lock(&shared.token_latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = issue_token(&shared, &headers, &body);
    lock(&shared.token_call_times).push((arrived, Instant::now()));
    response
}

fn issue_token(shared: &Shared, headers: &HeaderMap, body: &str) -> Response {
    shared.token_calls.fetch_add(1, Ordering::SeqCst);
    let failing = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the server is busy",
        );
    }

    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use client_credentials",
        );
    }
    let Some((id, secret)) = client_credentials(headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no client authentication",
        );
    };
    let Some((expected, lifetime)) = shared.clients.get(id.as_str()) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    };
    if secret != *expected {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "wrong client secret",
        );
    }

    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| SCOPE.to_owned());
    let access_token = format!("{:032x}", rand::random::<u128>());
    shared
        .issued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            access_token.clone(),
            Issued {
                scope: scope.clone(),
                expires_at: SystemTime::now() + *lifetime,
            },
        );
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "scope": scope,
        })),
    )
        .into_response()
}

async fn fruits(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.api_calls.fetch_add(1, Ordering::SeqCst);
    let unauthorized = |error: &str| {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                format!("Bearer error=\"{error}\""),
            )],
        )
            .into_response()
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized("invalid_request");
    };
    let issued = shared.issued.lock().unwrap_or_else(|e| e.into_inner());
    let Some(grant) = issued.get(token) else {
        return unauthorized("invalid_token");
    };
    if SystemTime::now() >= grant.expires_at {
        return unauthorized("invalid_token");
    }
    if !grant.scope.split(' ').any(|s| s == SCOPE) {
        return (
            StatusCode::FORBIDDEN,
            [(
                header::WWW_AUTHENTICATE,
                format!("Bearer error=\"insufficient_scope\", scope=\"{SCOPE}\""),
            )],
        )
            .into_response();
    }
    axum::Json(json!(["apple", "banana", "cherry"])).into_response()
}
