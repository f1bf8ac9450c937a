//! A container network made before the container: a named network
//! namespace with a point-to-point veth to the host, and/or Docker's default
//! shape — a bridge, the container's veth on it, MASQUERADE for traffic
//! leaving through another interface and a DNAT rule for a published port.
//!
//! Everything is complete before the container's first instruction (no race
//! with the program), and the container joins the namespace by being cloned
//! from a thread that has entered it ([`Network::spawn`]). Every name carries
//! the run's pid (see [`super::leftovers`]), so `isolab clean` can remove what a
//! killed run left; dropping a [`Network`] removes it all.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::leftovers::{Names, chain_rules};
use super::{ip, iptables};
use crate::spec::{ContainerSpec, NetMode};
use crate::{Error, Result, Running};

/// What to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetworkSpec {
    /// A `/30` point-to-point veth (`eth0` inside), no NAT.
    pub veth: bool,
    /// A bridge with the container's `eth1` on it, MASQUERADE, and (if set)
    /// this container port published on the bridge's host address.
    pub bridge: bool,
    /// Container TCP port to publish through DNAT (bridge only).
    pub publish: Option<u16>,
}

/// The point-to-point link's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointToPoint {
    /// Host end's interface.
    pub host_if: String,
    /// Host end's address (`/30`).
    pub host: Ipv4Addr,
    /// The container's `eth0` address.
    pub guest: Ipv4Addr,
}

/// The bridge network's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridged {
    /// The bridge interface.
    pub bridge_if: String,
    /// The host end of the container's veth, a port of the bridge.
    pub port_if: String,
    /// The bridge's (host's) address, the container's default gateway.
    pub gateway: Ipv4Addr,
    /// The container's `eth1` address.
    pub guest: Ipv4Addr,
    /// The subnet (`/29`).
    pub subnet: Ipv4Addr,
    /// Published port: (host port on `gateway`, container port).
    pub published: Option<(u16, u16)>,
}

/// A network namespace and everything attached to it; removed on drop.
#[derive(Debug)]
pub struct Network {
    names: Names,
    /// The point-to-point link, if asked for.
    pub p2p: Option<PointToPoint>,
    /// The bridge network, if asked for.
    pub bridged: Option<Bridged>,
    removed: bool,
}

/// First address of the pool every run's subnets come from.
const POOL: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 0);
/// Addresses per run: a `/30` for the veth and a `/29` for the bridge in one `/28`.
const BLOCK: u32 = 16;
const BLOCKS: u32 = 65_536 / BLOCK;
/// Networks made by this process so far (part of every name).
pub(super) static SEQ: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// Builds the network `spec` asks for, in a fresh `/28` of `10.200.0.0/16`
    /// that no host address or route overlaps.
    pub fn create(spec: &NetworkSpec) -> Result<Network> {
        if !spec.veth && !spec.bridge {
            return Err(Error::Network("a network needs a veth or a bridge".into()));
        }
        if spec.publish.is_some() && !spec.bridge {
            return Err(Error::Network("a published port needs the bridge".into()));
        }
        let seq = SEQ.fetch_add(1, Ordering::Relaxed) % 1000;
        let names = Names::new(std::process::id() as i32, seq);
        let _lock = AllocLock::take()?;
        let base = free_block(names.pid, seq)?;
        let mut net = Network {
            names,
            p2p: None,
            bridged: None,
            removed: false,
        };
        // On any error below, drop removes what was made so far.
        net.build(spec, base)?;
        Ok(net)
    }

    fn build(&mut self, spec: &NetworkSpec, base: u32) -> Result<()> {
        let ns = self.names.netns.clone();
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        if spec.veth {
            let p = PointToPoint {
                host_if: self.names.veth.clone(),
                host: Ipv4Addr::from(base + 1),
                guest: Ipv4Addr::from(base + 2),
            };
            self.p2p = Some(p.clone());
            link_pair(&ns, &p.host_if, "eth0")?;
            ip(&["addr", "add", &format!("{}/30", p.host), "dev", &p.host_if])?;
            ip(&["link", "set", &p.host_if, "up"])?;
            ns_addr(&ns, "eth0", p.guest, 30)?;
        }
        if spec.bridge {
            let b = Bridged {
                bridge_if: self.names.bridge.clone(),
                port_if: self.names.port.clone(),
                subnet: Ipv4Addr::from(base + 8),
                gateway: Ipv4Addr::from(base + 9),
                guest: Ipv4Addr::from(base + 10),
                published: None,
            };
            self.bridged = Some(b.clone());
            ip(&["link", "add", &b.bridge_if, "type", "bridge"])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/29", b.gateway),
                "dev",
                &b.bridge_if,
            ])?;
            ip(&["link", "set", &b.bridge_if, "up"])?;
            link_pair(&ns, &b.port_if, "eth1")?;
            ip(&["link", "set", &b.port_if, "master", &b.bridge_if])?;
            ip(&["link", "set", &b.port_if, "up"])?;
            ns_addr(&ns, "eth1", b.guest, 29)?;
            default_route(&ns, b.gateway)?;
            self.nat(&b, spec.publish)?;
        } else if let Some(p) = &self.p2p {
            default_route(&ns, p.host)?;
        }
        Ok(())
    }

    /// Docker's rules: MASQUERADE what leaves the subnet through another
    /// interface; DNAT `gateway:host_port` to the container's port, for
    /// connections from outside (PREROUTING) and from the host (OUTPUT).
    fn nat(&mut self, b: &Bridged, publish: Option<u16>) -> Result<()> {
        let (dnat, post) = (self.names.chain.clone(), self.names.post_chain.clone());
        iptables(&["-t", "nat", "-N", &post])?;
        iptables(&["-t", "nat", "-N", &dnat])?;
        let subnet = format!("{}/29", b.subnet);
        iptables(&[
            "-t",
            "nat",
            "-A",
            &post,
            "-s",
            &subnet,
            "!",
            "-o",
            &b.bridge_if,
            "-j",
            "MASQUERADE",
        ])?;
        let published = match publish {
            Some(cport) => {
                let hport = free_port(b.gateway)?;
                let to = format!("{}:{cport}", b.guest);
                iptables(&[
                    "-t",
                    "nat",
                    "-A",
                    &dnat,
                    "-p",
                    "tcp",
                    "-d",
                    &b.gateway.to_string(),
                    "--dport",
                    &hport.to_string(),
                    "-j",
                    "DNAT",
                    "--to-destination",
                    &to,
                ])?;
                Some((hport, cport))
            }
            None => None,
        };
        for (parent, rule) in chain_rules(&self.names, b.gateway) {
            let mut args = vec!["-t", "nat", "-A", parent];
            args.extend(rule.iter().map(String::as_str));
            iptables(&args)?;
        }
        if let Some(br) = &mut self.bridged {
            br.published = published;
        }
        Ok(())
    }

    /// The network namespace's name (`ip netns`).
    pub fn netns(&self) -> &str {
        &self.names.netns
    }

    /// Starts `spec` inside this network: the calling thread enters the
    /// namespace, clones the container (which then shares it instead of
    /// getting a new one, so `spec.net` is ignored), and returns to its own.
    pub fn spawn(&self, spec: &ContainerSpec) -> Result<Running> {
        let mut spec = spec.clone();
        spec.net = NetMode::Host;
        let _inside = EnterNetns::enter(&self.names.netns)?;
        crate::spawn(&spec)
    }

    /// Runs `f` on the calling thread inside this network's namespace, then
    /// returns the thread to its own: sockets made in `f` stay in the
    /// container's network (how a benchmark dials out of it or listens in it),
    /// and threads started in `f` start there.
    pub fn within<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _inside = EnterNetns::enter(&self.names.netns)?;
        Ok(f())
    }

    /// Removes everything; also done on drop. Returns what could not be removed.
    pub fn remove(&mut self) -> Vec<String> {
        if self.removed {
            return Vec::new();
        }
        self.removed = true;
        super::leftovers::remove(&self.names)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for e in self.remove() {
            tracing::warn!("network left behind: {e}");
        }
    }
}

/// A veth pair with its second end inside `ns` as `inside`.
fn link_pair(ns: &str, host_if: &str, inside: &str) -> Result<()> {
    ip(&[
        "link", "add", host_if, "type", "veth", "peer", "name", inside, "netns", ns,
    ])
}

/// The namespace's default route, through `via` (the bridge or the veth's host end).
fn default_route(ns: &str, via: Ipv4Addr) -> Result<()> {
    ip(&["-n", ns, "route", "add", "default", "via", &via.to_string()])
}

fn ns_addr(ns: &str, dev: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/{prefix}"),
        "dev",
        dev,
    ])?;
    ip(&["-n", ns, "link", "set", dev, "up"])
}

/// A TCP port free on `addr` (and on the wildcard address) right now.
fn free_port(addr: Ipv4Addr) -> Result<u16> {
    std::net::TcpListener::bind((addr, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Network(format!("no free port on {addr}: {e}")))
}

/// Held while a block is chosen and claimed, so two runs on one host do not
/// pick the same one. The lock is a unix socket bound to an abstract name:
/// it leaves no file anywhere, and the kernel releases it when the holder
/// exits, however it exits. Abstract names are per network namespace; every
/// run allocates from the host's, where its bridge and veth live.
pub(super) struct AllocLock {
    _socket: std::os::unix::net::UnixListener,
}

/// The abstract socket name held by the allocating run.
const ALLOC_LOCK_NAME: &[u8] = b"isolab-net-alloc";

/// How long a run waits for another run's allocation (a few `ip` calls).
const ALLOC_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl AllocLock {
    pub(super) fn take() -> Result<AllocLock> {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(ALLOC_LOCK_NAME)
            .map_err(|e| Error::host("name the network lock", e))?;
        let deadline = std::time::Instant::now() + ALLOC_LOCK_WAIT;
        loop {
            match std::os::unix::net::UnixListener::bind_addr(&addr) {
                Ok(socket) => return Ok(AllocLock { _socket: socket }),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(Error::host("take the network lock", e)),
            }
        }
    }
}

/// The first `/28` of the pool, from a start derived from (pid, seq), that
/// no host address or route overlaps.
pub(super) fn free_block(pid: i32, seq: u32) -> Result<u32> {
    let used = used_ranges();
    let start = (pid.unsigned_abs().wrapping_mul(31).wrapping_add(seq * 7)) % BLOCKS;
    (0..BLOCKS)
        .map(|i| u32::from(POOL) + ((start + i) % BLOCKS) * BLOCK)
        .find(|&b| {
            !used
                .iter()
                .any(|&(net, mask)| (b & mask) == net || (net & !(BLOCK - 1)) == b)
        })
        .ok_or_else(|| Error::Network("no free /28 left in 10.200.0.0/16".into()))
}

/// (network, mask) of every IPv4 route and address of the host's namespace.
fn used_ranges() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    // /proc/net/route: destination and mask as little-endian hex.
    if let Ok(t) = std::fs::read_to_string("/proc/net/route") {
        for l in t.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
            if let (Some(d), Some(m)) =
                (f.get(1).and_then(|s| hex(s)), f.get(7).and_then(|s| hex(s)))
                && m != 0
            {
                out.push((d & m, m));
            }
        }
    }
    // Every address on any interface, as a /32 (routes cover the subnets).
    if let Ok(o) = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
    {
        for w in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            if let Some((a, _)) = w.split_once('/')
                && let Ok(a) = a.parse::<Ipv4Addr>()
            {
                out.push((u32::from(a), u32::MAX));
            }
        }
    }
    out
}

/// The calling thread inside a named network namespace until dropped.
struct EnterNetns {
    home: OwnedFd,
}

fn open_ns(path: &str) -> Result<OwnedFd> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::host(format!("open {path}"), e))
}

impl EnterNetns {
    fn enter(name: &str) -> Result<EnterNetns> {
        let home = open_ns("/proc/thread-self/ns/net")?;
        let target = open_ns(&format!("/run/netns/{name}"))?;
        // SAFETY: setns on a namespace fd we own; a network namespace may be
        // changed per thread.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::host(
                "enter the network namespace",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(EnterNetns { home })
    }
}

impl Drop for EnterNetns {
    fn drop(&mut self) {
        // SAFETY: as in `enter`, back to the namespace the thread came from.
        if unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            // A thread stuck in the container's namespace would make every
            // later socket of this thread land there: not recoverable.
            panic!(
                "cannot return to the host network namespace: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
