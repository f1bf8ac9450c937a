//! What the backends do for the `net` probe: start its peer on the host
//! side ([`crate::netpeer`]), make the container's network, and tell the
//! workload where the peer is (`--net-dial PATH=ADDR:PORT`,
//! `--net-accept PATH=PORT`), each path named for the route it takes.
//!
//! | isolation | path | how |
//! | --- | --- | --- |
//! | native | `loopback` | probe dials the peer on `127.0.0.1` |
//! | container | `veth` | probe dials the peer on the host end of a `/30` veth |
//! | container | `bridge` | probe dials the peer on the bridge's host address |
//! | container | `bridge+nat` | the peer dials the bridge address at a published port; DNAT takes it to the probe's listener |

use std::net::{Ipv4Addr, SocketAddr};

use container::net::{Network, NetworkSpec};
use workload::args::{Command, Probe};

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

/// True when `args` run the `net` probe and name no peer: the backend must
/// start one. (Arguments that do not parse are left to the workload.)
pub fn wants_peer(args: &[String]) -> bool {
    match workload::args::parse(args.iter().map(String::as_str)) {
        Ok(Command::Run(cfg)) => cfg.probes.contains(&Probe::Net) && cfg.net_targets.is_empty(),
        _ => false,
    }
}

/// The workload arguments without the `net` probe and its options, for an
/// isolation that has no network path to a host-side peer; `None` when
/// there is no `net` probe to remove. `Err(reason)` when `net` was the
/// only probe.
pub fn without_net(args: &[String], reason: &str) -> Option<Result<Vec<String>, String>> {
    let mut out = Vec::new();
    let mut found = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "net" {
            found = true;
        } else if let Some(opt) = a.strip_prefix("--net-") {
            // `--net-x=v` carries its value; `--net-x v` takes the next word.
            if !opt.contains('=') {
                it.next();
            }
        } else {
            out.push(a.clone());
        }
    }
    if !found {
        return None;
    }
    let other_probe = match workload::args::parse(out.iter().map(String::as_str)) {
        Ok(Command::Run(cfg)) => !cfg.probes.is_empty(),
        Err(workload::args::ArgError::NoProbes) => false,
        _ => true,
    };
    Some(if other_probe {
        Ok(out)
    } else {
        Err(reason.to_string())
    })
}

/// The peers of one run and the arguments that point the probe at them;
/// the peers stop when this is dropped.
#[derive(Debug, Default)]
pub struct NetPeers {
    /// Workload arguments to append.
    pub args: Vec<String>,
    peers: Vec<Peer>,
}

impl NetPeers {
    fn dial_to(&mut self, path: &str, bind: Ipv4Addr) -> Result<(), IsolationError> {
        let peer =
            Peer::listen(SocketAddr::from((bind, 0))).map_err(|source| IsolationError::Io {
                context: format!("start the net probe's peer on {bind}"),
                source,
            })?;
        self.args.push("--net-dial".into());
        self.args.push(format!("{path}={}", peer.addr()));
        self.peers.push(peer);
        Ok(())
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
            p.args.push("--net-accept".into());
            p.args.push(format!("bridge+nat={cport}"));
        }
    }
    Ok((network, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn a_peer_is_started_only_for_net_without_one() {
        assert!(wants_peer(&words("net --reps 2")));
        assert!(wants_peer(&words("cpu net")));
        assert!(!wants_peer(&words("cpu io")));
        assert!(!wants_peer(&words("all")));
        assert!(!wants_peer(&words("net --net-dial x=10.0.0.1:9")));
        assert!(!wants_peer(&words("net --bogus")));
    }

    #[test]
    fn net_is_removed_with_its_options() {
        let r = without_net(
            &words("cpu net --net-round-trips 5 --reps 2 --net-stream-size=1M"),
            "x",
        );
        assert_eq!(r, Some(Ok(words("cpu --reps 2"))));
        assert_eq!(without_net(&words("cpu --reps 2"), "x"), None);
        assert_eq!(
            without_net(&words("net --reps 2"), "why"),
            Some(Err("why".into()))
        );
        assert_eq!(without_net(&words("net"), "why"), Some(Err("why".into())));
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
    fn the_native_peer_is_on_loopback() {
        let p = native_peers().unwrap();
        assert_eq!(p.args[0], "--net-dial");
        assert!(p.args[1].starts_with("loopback=127.0.0.1:"), "{:?}", p.args);
    }
}
