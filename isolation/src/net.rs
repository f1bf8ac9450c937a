//! What the backends do for the `net` probe: start its peer on the host
//! side ([`crate::netpeer`]), make the container's network, and tell the
//! workload where the peer is (typed [`NetTarget`]s in its `net_targets`,
//! `--net-dial PATH=ADDR:PORT` / `--net-accept PATH=PORT` on its command
//! line), each path named for the route it takes.
//!
//! | isolation | path | how |
//! | --- | --- | --- |
//! | native | `loopback` | probe dials the peer on `127.0.0.1` |
//! | container | `veth` | probe dials the peer on the host end of a `/30` veth |
//! | container | `bridge` | probe dials the peer on the bridge's host address |
//! | container | `bridge+nat` | the peer dials the bridge address at a published port; DNAT takes it to the probe's listener |
//! | vm (Linux guest) | `virtio-net+tap` | probe dials the peer on the host end of a `/30` tap, through the VMM's virtio-net device |

use std::net::{Ipv4Addr, SocketAddr};

use container::net::{Network, NetworkSpec, TapLink};
use workload::args::{Config, NetEndpoint, NetTarget, Probe};

use crate::IsolationError;
use crate::netpeer::Peer;

/// Container port the probe listens on behind the published port.
pub const PROBE_PORT: u16 = 7000;

/// Which container network (`--net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerNet {
    /// A `/30` veth to the host, no NAT.
    Veth,
    /// Docker's default shape: a bridge, MASQUERADE and a published port.
    Nat,
    /// Both, in one network namespace (what `isolab bench` measures).
    #[default]
    Both,
}

impl ContainerNet {
    /// The network spec: which links, and the published port.
    pub fn spec(self) -> NetworkSpec {
        let (veth, bridge) = match self {
            ContainerNet::Veth => (true, false),
            ContainerNet::Nat => (false, true),
            ContainerNet::Both => (true, true),
        };
        NetworkSpec {
            veth,
            bridge,
            publish: bridge.then_some(PROBE_PORT),
        }
    }
}

/// True when `cfg` runs the `net` probe and names no peer: the backend must
/// start one.
pub fn wants_peer(cfg: &Config) -> bool {
    cfg.probes.contains(&Probe::Net) && cfg.net_targets.is_empty()
}

/// The configuration without the `net` probe, its targets and its options
/// back at their defaults, for an isolation that has no network path to a
/// host-side peer; `None` when there is no `net` probe to remove.
/// `Err(reason)` when `net` was the only probe.
pub fn without_net(cfg: &Config, reason: &str) -> Option<Result<Config, String>> {
    if !cfg.probes.contains(&Probe::Net) {
        return None;
    }
    let defaults = Config::default();
    let mut out = cfg.clone();
    out.probes.retain(|p| *p != Probe::Net);
    out.net_targets.clear();
    out.net_round_trips = defaults.net_round_trips;
    out.net_stream_size = defaults.net_stream_size;
    Some(if out.probes.is_empty() {
        Err(reason.to_string())
    } else {
        Ok(out)
    })
}

/// The peers of one run and the targets that point the probe at them;
/// the peers stop when this is dropped.
#[derive(Debug, Default)]
pub struct NetPeers {
    /// Targets to append to the workload's `net_targets`.
    pub targets: Vec<NetTarget>,
    peers: Vec<Peer>,
}

impl NetPeers {
    fn dial_to(&mut self, path: &str, bind: Ipv4Addr) -> Result<(), IsolationError> {
        let peer =
            Peer::listen(SocketAddr::from((bind, 0))).map_err(|source| IsolationError::Io {
                context: format!("start the net probe's peer on {bind}"),
                source,
            })?;
        self.targets.push(NetTarget {
            path: path.to_string(),
            endpoint: NetEndpoint::Dial(peer.addr()),
        });
        self.peers.push(peer);
        Ok(())
    }

    /// `cfg` pointed at these peers: their targets appended to its own.
    pub fn point(&self, cfg: &Config) -> Config {
        let mut out = cfg.clone();
        out.net_targets.extend(self.targets.iter().cloned());
        out
    }

    /// Connections the peers served to the end.
    pub fn served(&self) -> u64 {
        self.peers.iter().map(Peer::served).sum()
    }
}

/// The native run's peer, on loopback.
pub fn native_peers() -> Result<NetPeers, IsolationError> {
    let mut p = NetPeers::default();
    p.dial_to("loopback", Ipv4Addr::LOCALHOST)?;
    Ok(p)
}

/// Path name of the Linux guest's route to its peer.
pub const VM_PATH: &str = "virtio-net+tap";

/// The Linux guest's tap link and its peer, on the tap's host address.
pub fn vm_network() -> Result<(TapLink, NetPeers), IsolationError> {
    let link = TapLink::create()?;
    let mut p = NetPeers::default();
    p.dial_to(VM_PATH, link.host)?;
    Ok((link, p))
}

/// The container's network and its peers: one per path the network has.
pub fn container_network(choice: ContainerNet) -> Result<(Network, NetPeers), IsolationError> {
    let network = Network::create(&choice.spec())?;
    let mut p = NetPeers::default();
    if let Some(l) = &network.p2p {
        p.dial_to("veth", l.host)?;
    }
    if let Some(b) = &network.bridged {
        p.dial_to("bridge", b.gateway)?;
        if let Some((host_port, cport)) = b.published {
            p.peers
                .push(Peer::dial(SocketAddr::from((b.gateway, host_port))));
            p.targets.push(NetTarget {
                path: "bridge+nat".to_string(),
                endpoint: NetEndpoint::Accept(cport),
            });
        }
    }
    Ok((network, p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(s: &str) -> Config {
        Config::from_args(s.split_whitespace()).unwrap()
    }

    #[test]
    fn a_peer_is_started_only_for_net_without_one() {
        assert!(wants_peer(&cfg("net --reps 2")));
        assert!(wants_peer(&cfg("cpu net")));
        assert!(!wants_peer(&cfg("cpu io")));
        assert!(!wants_peer(&cfg("all")));
        assert!(!wants_peer(&cfg("net --net-dial x=10.0.0.1:9")));
    }

    #[test]
    fn net_is_removed_with_its_options() {
        let r = without_net(
            &cfg("cpu net --net-round-trips 5 --reps 2 --net-stream-size=1M --net-accept p=9"),
            "x",
        );
        assert_eq!(r, Some(Ok(cfg("cpu --reps 2"))));
        assert_eq!(without_net(&cfg("cpu --reps 2"), "x"), None);
        assert_eq!(
            without_net(&cfg("net --reps 2"), "why"),
            Some(Err("why".into()))
        );
        assert_eq!(without_net(&cfg("net"), "why"), Some(Err("why".into())));
    }

    #[test]
    fn the_modes_build_the_links_they_name() {
        let v = ContainerNet::Veth.spec();
        assert!(v.veth && !v.bridge && v.publish.is_none());
        let n = ContainerNet::Nat.spec();
        assert!(!n.veth && n.bridge && n.publish == Some(PROBE_PORT));
        let b = ContainerNet::Both.spec();
        assert!(b.veth && b.bridge);
    }

    #[test]
    fn the_native_peer_is_on_loopback_and_appended_to_the_config() {
        let p = native_peers().unwrap();
        assert_eq!(p.targets.len(), 1);
        assert_eq!(p.targets[0].path, "loopback");
        assert!(
            matches!(p.targets[0].endpoint, NetEndpoint::Dial(a)
                if a.ip() == Ipv4Addr::LOCALHOST && a.port() != 0),
            "{:?}",
            p.targets
        );
        let own = NetTarget::parse("x=10.0.0.1:9", false).unwrap();
        let base = Config {
            net_targets: vec![own.clone()],
            ..cfg("net")
        };
        let pointed = p.point(&base);
        assert_eq!(pointed.net_targets, [own, p.targets[0].clone()]);
        let args = pointed.to_args();
        assert!(
            args.iter().any(|a| a.starts_with("loopback=127.0.0.1:")),
            "{args:?}"
        );
    }
}
