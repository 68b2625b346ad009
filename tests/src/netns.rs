//! Test hosts in network namespaces, for network partitions the nodes cannot
//! tell from real ones. Each node runs in its own namespace with two
//! interfaces, each joined by a veth pair to a bridge in a "switch"
//! namespace: the peer network (10.213.S.0/24, Raft and forwarding) and the
//! client network (10.214.S.0/24, the API). The test process reaches both
//! through veth pairs of its own. Cutting a node's port on the peer bridge
//! isolates it from the other nodes while clients still reach it — so a test
//! sees exactly what a cut-off node answers. Needs root and iproute2 (`ip`);
//! CI runs as root.
//!
//! The subnets exist only on these veth pairs: the node namespaces have no
//! other route, and the host's routes to them go through the bridges even
//! while a node's port is down, so no packet for a test host ever leaves the
//! machine.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The namespaces of one cluster.
pub struct Netns {
    tag: String,
    subnet: u8,
    nodes: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Whether this machine lets the tests make namespaces (root, iproute2).
    pub fn available() -> bool {
        let probe = format!("arca-probe-{}", std::process::id());
        let ok = ip(&["netns", "add", &probe]).is_ok();
        if ok {
            let _ = ip(&["netns", "del", &probe]);
        }
        ok
    }

    /// Namespaces for `nodes` test hosts, wired to a switch and to this
    /// process.
    pub fn create(nodes: usize) -> Result<Netns, String> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let net = Netns {
            tag: format!("{}{}", pid % 100_000, n),
            subnet: ((pid + n * 37) % 250) as u8 + 1,
            nodes,
        };
        net.build()?;
        Ok(net)
    }

    fn switch(&self) -> String {
        format!("arca-sw{}", self.tag)
    }

    /// The namespace of test host `i`.
    pub fn node_ns(&self, i: usize) -> String {
        format!("arca-n{}-{}", self.tag, i)
    }

    /// The peer-network address of test host `i`.
    pub fn peer_ip(&self, i: usize) -> String {
        format!("10.213.{}.{}", self.subnet, i + 1)
    }

    /// The client-network address of test host `i`.
    pub fn client_ip(&self, i: usize) -> String {
        format!("10.214.{}.{}", self.subnet, i + 1)
    }

    /// This process's interface on network `net` (0: peers, 1: clients).
    fn host_if(&self, net: usize) -> String {
        format!("a{net}h{}", self.tag)
    }

    /// Test host `i`'s port on network `net`'s bridge.
    fn port(&self, net: usize, i: usize) -> String {
        format!("p{net}n{i}")
    }

    fn build(&self) -> Result<(), String> {
        let sw = self.switch();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        for (net, prefix) in [(0, "10.213"), (1, "10.214")] {
            let br = format!("br{net}");
            ip(&["-n", &sw, "link", "add", &br, "type", "bridge"])?;
            ip(&["-n", &sw, "link", "set", &br, "up"])?;
            // This process's port on the bridge.
            let host = self.host_if(net);
            let up = format!("up{net}");
            ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", &up, "netns", &sw,
            ])?;
            ip(&["-n", &sw, "link", "set", &up, "master", &br, "up"])?;
            let host_addr = format!("{prefix}.{}.254/24", self.subnet);
            ip(&["addr", "add", &host_addr, "dev", &host])?;
            ip(&["link", "set", &host, "up"])?;
        }
        for i in 0..self.nodes {
            let ns = self.node_ns(i);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            for (net, addr) in [(0, self.peer_ip(i)), (1, self.client_ip(i))] {
                let port = self.port(net, i);
                let dev = format!("eth{net}");
                ip(&[
                    "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", &dev, "netns",
                    &ns,
                ])?;
                ip(&[
                    "-n",
                    &sw,
                    "link",
                    "set",
                    &port,
                    "master",
                    &format!("br{net}"),
                    "up",
                ])?;
                ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", &dev])?;
                ip(&["-n", &ns, "link", "set", &dev, "up"])?;
            }
        }
        Ok(())
    }

    /// Isolates test host `i` from the other hosts (its peer-network port
    /// goes down); clients still reach it.
    pub fn cut(&self, i: usize) {
        ip(&[
            "-n",
            &self.switch(),
            "link",
            "set",
            &self.port(0, i),
            "down",
        ])
        .expect("cut");
    }

    /// Joins test host `i` to the others again.
    pub fn heal(&self, i: usize) {
        ip(&["-n", &self.switch(), "link", "set", &self.port(0, i), "up"]).expect("heal");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and their peers.
        for i in 0..self.nodes {
            let _ = ip(&["netns", "del", &self.node_ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.switch()]);
        for net in 0..2 {
            let _ = ip(&["link", "del", &self.host_if(net)]);
        }
    }
}
