//! Heap bytes: what a middleware holds, what a cached token adds, what each further thread that
//! reads it adds (its view of the token: the `Arc`, a header of its own), what a grant named per
//! request adds and that 10 000 of them stay bounded, and that nothing grows with the number of
//! requests. A counting global allocator, in a bench of its own.
//!
//! ```text
//! cargo bench --bench memory
//! ```

// The benches' shared servers; the helpers for paired criterion benches go unused here.
#[allow(dead_code)]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use std::net::SocketAddr;

use reqwest_alf::{ClientCredentials, Grant, MemoryStorage};
use support::{answering_pair, credentials, start_server};

/// The system allocator, counting the bytes in use.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Gives `http` a pooled connection to the token endpoint at `addr`.
async fn warm_up(addr: SocketAddr, http: &reqwest::Client) {
    let warm = ClientCredentials::builder(format!("http://{addr}/oauth/token"), "warm", "secret")
        .http_client(http.clone())
        .build()
        .unwrap();
    warm.token().await.unwrap();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = start_server().await;
        // The first build loads what every later one shares (TLS roots, the HTTP client's
        // statics): build one and drop it before counting.
        drop(credentials(addr, MemoryStorage::new()));

        let before = live();
        let auth = credentials(addr, MemoryStorage::new());
        let per_middleware = live() - before;
        drop(auth);

        // A middleware on an HTTP client that already has a connection to the token endpoint:
        // what it holds of its own, and what its first token adds, connection buffers left out.
        let http = reqwest::Client::new();
        warm_up(addr, &http).await;
        let before = live();
        let lean = ClientCredentials::builder(format!("http://{addr}/oauth/token"), "bench", "secret")
            .http_client(http.clone())
            .build()
            .unwrap();
        let per_lean_middleware = live() - before;
        let before = live();
        lean.token().await.unwrap();
        let per_token = live() - before;
        // Another thread reads the token: its view stays with the middleware when it exits.
        let before = live();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                runtime.block_on(lean.token()).unwrap();
            });
        });
        let per_thread = live() - before;

        // Grants named per request: one more slot, its token included; then a stream of 10 000
        // tenants, one organization each, through a middleware that keeps at most 1 000.
        let tenant = |n: usize| {
            Grant::new()
                .audience("https://members.example/")
                .organization(format!("org_{n:05}"))
        };
        let before = live();
        lean.token_for(&tenant(0)).await.unwrap();
        let per_grant = live() - before;
        let tenants = ClientCredentials::builder(format!("http://{addr}/oauth/token"), "bench", "secret")
            .http_client(http.clone())
            .max_grants(1_000)
            .build()
            .unwrap();
        let before = live();
        let mut after_tenants = Vec::new();
        for n in 0..10_000 {
            tenants.token_for(&tenant(n)).await.unwrap();
            if (n + 1) % 2_500 == 0 {
                after_tenants.push((n + 1, live() - before));
            }
        }

        let (_, client, url) = answering_pair(addr).await;
        let mut after = Vec::new();
        for round in 0..4 {
            for _ in 0..25_000 {
                std::hint::black_box(client.get(&url).send().await.unwrap());
            }
            after.push((25_000 * (round + 1), live()));
        }
        println!("| what | heap bytes |");
        println!("|---|---:|");
        println!("| a ClientCredentials, its HTTP client for token requests included | {per_middleware} |");
        println!("| a ClientCredentials on an HTTP client of the caller's | {per_lean_middleware} |");
        println!("| a cached token (in memory and in its MemoryStorage), with the first thread's view | {per_token} |");
        println!("| each further thread's view of the token | {per_thread} |");
        println!("| a grant named per request: its slot and its token | {per_grant} |");
        for (tenants, bytes) in &after_tenants {
            println!("| {tenants} tenants' grants named, at most 1 000 kept | {bytes} |");
        }
        for (requests, bytes) in &after {
            println!("| in use after {requests} requests | {bytes} |");
        }
        let growth = after[3].1 - after[0].1;
        println!("| growth from 25 000 to 100 000 requests | {growth} |");
    });
}
