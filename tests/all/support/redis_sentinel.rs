//! A throwaway Redis Sentinel set-up: a master, its replica and three sentinels watching them
//! under the name `tokens`, each a `redis-server` on a free loopback port, stopped when the test
//! ends. The master can be killed to make the sentinels fail over to the replica.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::redis_cluster::{answers, unique_name};
use crate::support::redis_server::free_loopback_port;

/// The name the sentinels know the master by.
pub const MASTER_NAME: &str = "tokens";

/// How long the set-up may take to start, or to fail over.
const DEADLINE: Duration = Duration::from_secs(30);

pub struct RedisSentinels {
    master: (u16, Option<Child>),
    replica: (u16, Child),
    sentinels: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl RedisSentinels {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("alf-sentinel-{}", unique_name()));
        std::fs::create_dir_all(&dir).unwrap();
        let master_port = free_loopback_port();
        let master = redis_server(&dir, master_port, &[]);
        let replica_port = free_loopback_port();
        let replica = redis_server(
            &dir,
            replica_port,
            &["--replicaof", "127.0.0.1", &master_port.to_string()],
        );
        let mut set_up = Self {
            master: (master_port, Some(master)),
            replica: (replica_port, replica),
            sentinels: Vec::new(),
            dir,
        };
        let deadline = Instant::now() + DEADLINE;
        while !answers(
            &["-p", &master_port.to_string(), "info", "replication"],
            "state=online",
        ) {
            assert!(Instant::now() < deadline, "the replica never caught up");
            // Polling servers we just started: there is nothing else to wait on.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..3 {
            let port = free_loopback_port();
            let config = set_up.dir.join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n",
                    dir = set_up.dir.display()
                ),
            )
            .unwrap();
            let process = Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH (apt-get install redis-server)");
            set_up.sentinels.push((port, process));
        }
        // Each sentinel must know the replica and the two other sentinels (by the master's
        // hello channel) before a failover can be agreed on.
        for (port, _) in &set_up.sentinels {
            while !set_up.sentinel_sees(*port, "num-other-sentinels", "2")
                || !set_up.sentinel_sees(*port, "num-slaves", "1")
            {
                assert!(
                    Instant::now() < deadline,
                    "sentinel {port} never saw the set-up"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        set_up
    }

    /// The sentinels, as `127.0.0.1:port`.
    pub fn sentinels(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// `redis://` URL of the replica, which becomes the master after a failover.
    pub fn replica_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.replica.0)
    }

    /// `redis://` URL of the first master.
    pub fn master_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.master.0)
    }

    /// Kills the master (SIGKILL), as a crashed machine would go.
    pub fn kill_master(&mut self) {
        if let Some(mut process) = self.master.1.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Waits until every sentinel names the replica as the master.
    pub async fn wait_for_failover(&self) {
        let deadline = Instant::now() + DEADLINE;
        let replica = self.replica.0.to_string();
        for (port, _) in &self.sentinels {
            while !answers(
                &[
                    "-p",
                    &port.to_string(),
                    "sentinel",
                    "get-master-addr-by-name",
                    MASTER_NAME,
                ],
                &replica,
            ) {
                assert!(
                    Instant::now() < deadline,
                    "sentinel {port} never failed over"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Waits until the replica holds `key`: the master's write has reached it.
    pub async fn wait_until_replicated(&self, key: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !answers(&["-p", &self.replica.0.to_string(), "exists", key], "1") {
            assert!(Instant::now() < deadline, "{key} never reached the replica");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether sentinel `port` reports `field` of the master as `value`.
    fn sentinel_sees(&self, port: u16, field: &str, value: &str) -> bool {
        let Ok(out) = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "sentinel", "master", MASTER_NAME])
            .output()
        else {
            return false;
        };
        let out = String::from_utf8_lossy(&out.stdout);
        let mut lines = out.lines();
        while let Some(line) = lines.next() {
            if line == field {
                return lines.next() == Some(value);
            }
        }
        false
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        let processes = self
            .master
            .1
            .iter_mut()
            .chain([&mut self.replica.1])
            .chain(self.sentinels.iter_mut().map(|(_, process)| process));
        for process in processes {
            let _ = process.kill();
            let _ = process.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn redis_server(dir: &std::path::Path, port: u16, more: &[&str]) -> Child {
    let process = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", &dir.to_string_lossy()])
        .args(["--logfile", "", "--loglevel", "warning"])
        // The replica syncs at once rather than after the default 5 s.
        .args(["--repl-diskless-sync-delay", "0"])
        .args(more)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install redis-server)");
    let deadline = Instant::now() + DEADLINE;
    while !answers(&["-p", &port.to_string(), "ping"], "PONG") {
        assert!(
            Instant::now() < deadline,
            "redis-server {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    process
}
