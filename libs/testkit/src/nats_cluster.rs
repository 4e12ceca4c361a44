//! A three-node JetStream cluster of this test's own: three nats-server
//! processes joined by routes, each with JetStream on its own store, on
//! ports chosen for the test. Any node can be killed (as a crash would),
//! stopped for a while, and started again on the same ports and store.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::spawn_nats;

/// A JetStream cluster; every node killed when dropped.
pub struct NatsCluster {
    nodes: Vec<Node>,
}

struct Node {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
}

/// Ports nothing listens on now. The operating system hands out a port
/// once per bind; the nodes bind them moments later.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address").port())
        .collect()
}

impl NatsCluster {
    /// How many nodes the cluster has: the least that keeps a quorum when
    /// one leaves.
    pub const NODES: usize = 3;

    /// Starts the three nodes and waits until JetStream has a meta leader.
    pub async fn start() -> Self {
        let ports = free_ports(2 * Self::NODES);
        let (clients, routes) = ports.split_at(Self::NODES);
        let route_urls = routes
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for (index, (client, route)) in clients.iter().zip(routes).enumerate() {
            let store = tempfile::tempdir().expect("temporary directory");
            let config = format!(
                "server_name: n{index}\n\
                 jetstream {{\n  store_dir: {:?}\n}}\n\
                 cluster {{\n  name: aia-test\n  listen: 127.0.0.1:{route}\n  routes: [{route_urls}]\n}}\n",
                store.path().join("js").display().to_string()
            );
            std::fs::write(store.path().join("nats.conf"), config).expect("write nats.conf");
            nodes.push(Node {
                child: None,
                port: *client,
                store,
            });
        }
        // Each node waits for its client port only; the routes form while
        // the others start.
        for node in &mut nodes {
            let (child, _) = spawn_nats(node.store.path(), Some(node.port)).await;
            node.child = Some(child);
        }
        let cluster = Self { nodes };
        cluster.wait_for_jetstream(Duration::from_secs(30)).await;
        cluster
    }

    /// Every node's client URL, comma-separated, as services take
    /// `AI_AGENTS_NATS_URL` for a cluster.
    pub fn urls(&self) -> String {
        (0..Self::NODES)
            .map(|index| self.url(index))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's client URL.
    pub fn url(&self, index: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[index].port)
    }

    /// The index of the node whose client port is `port`.
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|node| node.port == port)
    }

    /// The index of the node named `name` (`n0`, `n1`, `n2`), as JetStream
    /// names a leader.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        name.strip_prefix('n')?
            .parse()
            .ok()
            .filter(|index| *index < Self::NODES)
    }

    /// Kills one node with SIGKILL, as a crash would.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its ports and store.
    pub async fn restart(&mut self, index: usize) {
        self.kill(index);
        let node = &mut self.nodes[index];
        let (child, _) = spawn_nats(node.store.path(), Some(node.port)).await;
        node.child = Some(child);
    }

    /// Whether the node is running.
    pub fn is_up(&self, index: usize) -> bool {
        self.nodes[index].child.is_some()
    }

    /// Waits until JetStream answers through a running node: the meta
    /// group has a leader.
    pub async fn wait_for_jetstream(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            for index in (0..Self::NODES).filter(|index| self.is_up(*index)) {
                if let Ok(client) = async_nats::connect(self.url(index)).await {
                    let jetstream = async_nats::jetstream::new(client);
                    if jetstream.query_account().await.is_ok() {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "the NATS cluster elected no JetStream leader within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..Self::NODES {
            self.kill(index);
        }
    }
}
