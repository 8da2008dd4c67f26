//! Token endpoints that misbehave below what httpmock can fake: a body that never ends, and a
//! body that drips a byte at a time. Plain TCP on a free loopback port, one task per connection,
//! until the test's runtime ends.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the body misbehaves.
#[derive(Clone, Copy)]
pub enum Body {
    /// Chunks of JSON-looking bytes, as fast as the client reads them, forever.
    Endless,
    /// One byte of a valid token response every `interval`: it would finish, much later.
    Drip(Duration),
}

/// Starts a server answering every request with a 200 whose body misbehaves as `body` says;
/// its token endpoint URL.
pub async fn misbehaving_token_endpoint(body: Body) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, body));
        }
    });
    format!("http://{addr}/oauth/token")
}

async fn answer(mut stream: TcpStream, body: Body) {
    // The request is small; read what has arrived and answer regardless.
    let mut request = [0_u8; 8192];
    let _ = stream.read(&mut request).await;
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    match body {
        Body::Endless => {
            let chunk = format!("1000\r\n{}\r\n", "a".repeat(0x1000));
            while stream.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        Body::Drip(interval) => {
            for byte in br#"{"access_token":"late","token_type":"Bearer","expires_in":3600}"# {
                let chunk = format!("1\r\n{}\r\n", *byte as char);
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
    }
}

/// A token endpoint that answers its first request with `body` and then goes away: later
/// connections to it are refused. Its token endpoint URL.
pub async fn token_endpoint_answering_once(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0_u8; 8192];
            let _ = stream.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
        // The listener goes with this task: from now on the port refuses connections.
    });
    format!("http://{addr}/oauth/token")
}
