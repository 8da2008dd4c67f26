//! A throwaway Redis Cluster: six `redis-server --cluster-enabled yes` on free loopback ports
//! (each with its bus port, port + 10000, free too), joined as three masters with a replica
//! each by `redis-cli --cluster create`, and stopped when the test ends.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the cluster may take to start and agree on its slots.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

pub struct RedisCluster {
    ports: Vec<u16>,
    /// Ports of nodes the test killed.
    dead: Vec<u16>,
    processes: Vec<Child>,
    dir: PathBuf,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("alf-cluster-{}", unique_name()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self {
            ports: Vec::new(),
            dead: Vec::new(),
            processes: Vec::new(),
            dir,
        };
        while cluster.ports.len() < 6 {
            let port = free_port_with_free_bus();
            let process = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "1000"])
                // Replicas sync at once rather than after the default 5 s.
                .args(["--repl-diskless-sync-delay", "0"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--dir", &cluster.dir.to_string_lossy()])
                .args(["--logfile", "", "--loglevel", "warning"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH (apt-get install redis-server)");
            cluster.ports.push(port);
            cluster.processes.push(process);
        }
        let deadline = Instant::now() + STARTUP_DEADLINE;
        for port in &cluster.ports {
            while !answers(&["-p", &port.to_string(), "ping"], "PONG") {
                assert!(Instant::now() < deadline, "node {port} did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let nodes: Vec<String> = cluster.seeds();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli on PATH");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            // Polling a cluster we just made until every node has it whole.
            while !answers(
                &["-p", &port.to_string(), "cluster", "info"],
                "cluster_state:ok",
            ) {
                assert!(
                    Instant::now() < deadline,
                    "node {port} never saw the cluster whole"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    /// Every node, as `127.0.0.1:port`.
    pub fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// The slot a key hashes to.
    pub fn slot_of(&self, key: &str) -> u16 {
        let out = Command::new("redis-cli")
            .args(["-p", &self.living().to_string(), "cluster", "keyslot", key])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Every key stored on the cluster's masters (replicas hold copies).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for port in &self.ports {
            let role = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "role"])
                .output()
                .unwrap();
            if !String::from_utf8_lossy(&role.stdout).starts_with("master") {
                continue;
            }
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "--scan"])
                .output()
                .unwrap();
            keys.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned),
            );
        }
        keys.sort();
        keys
    }
}

impl RedisCluster {
    /// Kills (SIGKILL) the master that serves `key`'s slot, after its replica holds `key`;
    /// its port.
    pub async fn kill_master_of(&mut self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        let nodes = self.nodes();
        let master = nodes
            .iter()
            .find(|node| node.flags.contains("master") && node.serves(slot))
            .expect("a master serves every slot");
        let replica = nodes
            .iter()
            .find(|node| node.master == master.id)
            .expect("every master has a replica");
        let deadline = Instant::now() + STARTUP_DEADLINE;
        // A replica in a cluster answers a key's read with MOVED: count its keys instead.
        let (replica_port, master_port) = (replica.port.to_string(), master.port.to_string());
        while !answers(
            &["-p", &replica_port, "info", "replication"],
            "master_link_status:up",
        ) || dbsize(&replica_port) != dbsize(&master_port)
        {
            assert!(Instant::now() < deadline, "{key} never reached the replica");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let index = self.ports.iter().position(|p| *p == master.port).unwrap();
        let _ = self.processes[index].kill();
        let _ = self.processes[index].wait();
        self.dead.push(master.port);
        master.port
    }

    /// Waits until every living node sees the cluster whole again, `key`'s slot served by a
    /// living master: the dead master's replica has taken over.
    pub async fn wait_for_failover(&self, key: &str) {
        let slot = self.slot_of(key);
        let deadline = Instant::now() + STARTUP_DEADLINE;
        for port in self.ports.iter().filter(|p| !self.dead.contains(p)) {
            loop {
                let whole = answers(
                    &["-p", &port.to_string(), "cluster", "info"],
                    "cluster_state:ok",
                );
                let served = self.nodes_seen_by(*port).iter().any(|node| {
                    node.serves(slot)
                        && node.flags.contains("master")
                        && !node.flags.contains("fail")
                        && !self.dead.contains(&node.port)
                });
                if whole && served {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {port} never saw the failover"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn nodes(&self) -> Vec<Node> {
        self.nodes_seen_by(self.living())
    }

    /// A node the test has not killed.
    fn living(&self) -> u16 {
        *self.ports.iter().find(|p| !self.dead.contains(p)).unwrap()
    }

    /// `CLUSTER NODES` as node `port` sees it.
    fn nodes_seen_by(&self, port: u16) -> Vec<Node> {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "cluster", "nodes"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(Node::parse)
            .collect()
    }
}

/// One line of `CLUSTER NODES`.
struct Node {
    id: String,
    port: u16,
    flags: String,
    master: String,
    slots: Vec<(u16, u16)>,
}

impl Node {
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?.split('@').next()?;
        let port = address.rsplit(':').next()?.parse().ok()?;
        let slots = fields
            .iter()
            .skip(8)
            .filter(|range| !range.starts_with('['))
            .filter_map(|range| match range.split_once('-') {
                Some((from, to)) => Some((from.parse().ok()?, to.parse().ok()?)),
                None => range.parse().ok().map(|slot| (slot, slot)),
            })
            .collect();
        Some(Self {
            id: fields.first()?.to_string(),
            port,
            flags: fields.get(2)?.to_string(),
            master: fields.get(3)?.to_string(),
            slots,
        })
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|(from, to)| (*from..=*to).contains(&slot))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `redis-cli args` prints something that contains `expected`.
pub fn answers(args: &[&str], expected: &str) -> bool {
    Command::new("redis-cli")
        .args(args)
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(expected))
}

/// How many keys the node at `port` holds.
fn dbsize(port: &str) -> Option<u64> {
    let out = Command::new("redis-cli")
        .args(["-p", port, "dbsize"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A free loopback port whose cluster bus port (port + 10000) is free too.
fn free_port_with_free_bus() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A name no other test run uses at the same time.
pub fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}
