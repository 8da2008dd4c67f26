//! A throwaway `redis-server` per test: started from PATH on a free loopback port, keeping
//! nothing on disk, stopped when the test ends (whether it passed or not), and stoppable and
//! restartable on the same port mid-test to play an outage.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server may take to answer `PING`.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

pub struct RedisServer {
    port: u16,
    password: Option<String>,
    process: Option<Child>,
}

impl RedisServer {
    /// A new server without a password.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A new server that requires `password` (`--requirepass`).
    pub async fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned())).await
    }

    async fn start_with(password: Option<String>) -> Self {
        // Another process may take the free port between our look and redis-server's bind:
        // try a few ports before giving up.
        for _ in 0..5 {
            let mut server = Self {
                port: free_loopback_port(),
                password: password.clone(),
                process: None,
            };
            if server.launch().await {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free loopback ports");
    }

    /// `redis://` URL of this server, with the password when it has one.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url_without_password(),
        }
    }

    pub fn url_without_password(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.process.as_ref().expect("the server is running").id()
    }

    /// Kills the server (SIGKILL): connections drop, nothing is kept.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub async fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch().await,
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// A plain connection for the test to look at (or tamper with) what is stored.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("the test's own connection to redis-server")
    }

    /// Starts redis-server on `self.port` and waits until it answers; false if it exited.
    async fn launch(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .args(["--logfile", "", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let process = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot run redis-server ({error}): the Redis tests need it on PATH. Install it \
                 with `apt-get install redis-server` (Debian, Ubuntu) or `brew install redis` \
                 (macOS)"
            )
        });
        self.process = Some(process);
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while Instant::now() < deadline {
            if self.answers_ping().await {
                return true;
            }
            if let Some(status) = self
                .process
                .as_mut()
                .and_then(|p| p.try_wait().ok().flatten())
            {
                self.process = None;
                eprintln!("redis-server on port {} exited: {status}", self.port);
                return false;
            }
            // Polling for readiness of a process we just started: nothing else to wait on.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.stop();
        false
    }

    async fn answers_ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .is_ok()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
