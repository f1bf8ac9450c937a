//! Container networks: the point-to-point veth, the bridge with NAT and a
//! published port, and that nothing is left after a run or a clean.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use container::net::leftovers::{self, Leftover, Names};
use container::net::{Network, NetworkSpec};
use container::{ContainerSpec, Stdio};

fn tools(test: &str) -> bool {
    if !common::ready(test) {
        return false;
    }
    let have = |tool: &str| {
        std::process::Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let avail = if have("ip") && have("iptables") {
        Ok(())
    } else {
        Err("needs `ip` (iproute2) and `iptables`".to_string())
    };
    hostcaps::testing::require(test, "iptables", avail)
}

/// Everything of network `names` that exists on the host.
fn present(n: &Names) -> Vec<String> {
    let mut out = Vec::new();
    for link in [&n.veth, &n.bridge, &n.port] {
        if Path::new("/sys/class/net").join(link).exists() {
            out.push(link.clone());
        }
    }
    if Path::new("/run/netns").join(&n.netns).exists() {
        out.push(n.netns.clone());
    }
    let rules = std::process::Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    out.extend(
        rules
            .lines()
            .filter(|l| l.contains(&n.chain))
            .map(String::from),
    );
    out
}

fn names_of(net: &Network) -> Names {
    let (pid, seq) = Names::parse(net.netns()).unwrap();
    Names::new(pid, seq)
}

/// Accepts one connection on `l` and returns what it sent.
fn accept_text(l: &TcpListener) -> String {
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn both_paths_reach_the_host_and_the_published_port_reaches_the_container() {
    let test = "both_paths_reach_the_host_and_the_published_port_reaches_the_container";
    if !tools(test) {
        return;
    }
    let net = Network::create(&NetworkSpec {
        veth: true,
        bridge: true,
        publish: Some(7000),
    })
    .unwrap();
    let names = names_of(&net);
    let p2p = net.p2p.clone().unwrap();
    let br = net.bridged.clone().unwrap();
    let (host_port, cport) = br.published.unwrap();
    assert_eq!(cport, 7000);
    assert!(p2p.host.is_private() && br.gateway.is_private());

    let veth_l = TcpListener::bind((p2p.host, 0)).unwrap();
    let bridge_l = TcpListener::bind((br.gateway, 0)).unwrap();
    let script = format!(
        "echo via-veth | nc {} {} && echo via-bridge | nc {} {} && nc -l -p 7000 -e echo via-nat",
        p2p.host,
        veth_l.local_addr().unwrap().port(),
        br.gateway,
        bridge_l.local_addr().unwrap().port(),
    );
    let rootfs = common::busybox_rootfs();
    let spec = ContainerSpec::with_rootfs(rootfs.path(), "/bin/sh")
        .args(["-c", script.as_str()])
        .stdout(Stdio::Piped)
        .stderr(Stdio::Piped);
    let running = net.spawn(&spec).unwrap();
    assert_eq!(accept_text(&veth_l).trim(), "via-veth");
    assert_eq!(accept_text(&bridge_l).trim(), "via-bridge");
    // Through DNAT: the host dials its own bridge address at the published port.
    let published = SocketAddr::from((br.gateway, host_port));
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        if let Ok(mut s) = TcpStream::connect_timeout(&published, Duration::from_secs(1)) {
            let mut t = String::new();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.read_to_string(&mut t);
            if !t.is_empty() {
                break t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the published port never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(text.trim(), "via-nat");
    let report = running.wait().unwrap();
    assert!(report.success(), "{report:?}");
    assert!(!present(&names).is_empty());
    drop(net);
    assert_eq!(present(&names), Vec::<String>::new());
}

#[test]
fn a_network_whose_owner_is_gone_is_found_and_cleaned() {
    let test = "a_network_whose_owner_is_gone_is_found_and_cleaned";
    if !tools(test) {
        return;
    }
    let mut net = Network::create(&NetworkSpec {
        veth: true,
        bridge: true,
        publish: Some(80),
    })
    .unwrap();
    let names = names_of(&net);
    let me = std::process::id() as i32;
    // As `isolab clean` sees it once this process is dead.
    let found: Vec<Leftover> = leftovers::scan(|pid| pid != me)
        .into_iter()
        .filter(|l| match l {
            Leftover::Netns(n) | Leftover::Link(n) | Leftover::Chain(n) => {
                Names::parse(n) == Some((names.pid, names.seq))
            }
        })
        .collect();
    assert_eq!(found.len(), 6, "{found:?}"); // netns, 3 links, 2 chains
    // A live owner's network is never a leftover.
    assert!(
        leftovers::scan(|_| true).is_empty(),
        "{:?}",
        leftovers::scan(|_| true)
    );
    for l in &found {
        leftovers::remove_leftover(l).unwrap();
    }
    assert_eq!(present(&names), Vec::<String>::new());
    assert!(
        net.remove().is_empty(),
        "removing again finds nothing to fail on"
    );
    let _ = std::io::stdout().flush();
}

#[test]
fn an_impossible_network_is_refused_by_name() {
    let e = Network::create(&NetworkSpec::default()).unwrap_err();
    assert!(e.to_string().contains("veth or a bridge"), "{e}");
    let e = Network::create(&NetworkSpec {
        veth: true,
        bridge: false,
        publish: Some(1),
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("published port needs the bridge"),
        "{e}"
    );
}

#[test]
fn a_vm_tap_link_is_addressed_and_removed_on_drop() {
    let test = "a_vm_tap_link_is_addressed_and_removed_on_drop";
    if !tools(test) {
        return;
    }
    let link = container::net::TapLink::create().unwrap();
    let me = std::process::id() as i32;
    assert_eq!(Names::parse(&link.name).map(|(p, _)| p), Some(me));
    let dev = Path::new("/sys/class/net").join(&link.name);
    assert!(
        dev.join("tun_flags").exists(),
        "{} is not a tun/tap",
        link.name
    );
    let addrs = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &link.name])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&addrs.stdout).into_owned();
    assert!(addrs.contains(&format!("{}/30", link.host)), "{addrs}");
    assert_eq!(u32::from(link.guest), u32::from(link.host) + 1);
    assert_eq!(
        link.guest_mac()[0] & 0x03,
        0x02,
        "locally administered unicast"
    );
    drop(link);
    assert!(!dev.exists(), "tap left after drop");
}

#[test]
fn a_tap_left_by_a_killed_run_is_cleaned() {
    let test = "a_tap_left_by_a_killed_run_is_cleaned";
    if !tools(test) {
        return;
    }
    // A pid that is surely dead: a child that has been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id() as i32;
    child.wait().unwrap();
    // What `isolab probe --isolation vm net` leaves when killed with -9: a
    // persistent tap named for its pid.
    let name = Names::tap(dead, 0);
    let made = std::process::Command::new("ip")
        .args(["tuntap", "add", "dev", &name, "mode", "tap"])
        .status()
        .unwrap();
    assert!(made.success());
    let dev = Path::new("/sys/class/net").join(&name);
    assert!(dev.exists());
    let found = container::clean::scan();
    let ours = Leftover::Link(name.clone());
    let listed = found.net.contains(&ours);
    if !listed {
        // Remove it ourselves before failing, so the test leaves nothing.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &name])
            .status();
    }
    assert!(listed, "{found:?}");
    leftovers::remove_leftover(&ours).unwrap();
    assert!(!dev.exists(), "clean left {name}");
}

/// Names in the temp dir that start with `isolab`.
fn isolab_temp_entries() -> std::collections::BTreeSet<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("isolab"))
        .collect()
}

#[test]
fn allocating_networks_leaves_no_file_in_the_temp_dir() {
    let test = "allocating_networks_leaves_no_file_in_the_temp_dir";
    if !tools(test) {
        return;
    }
    // The lock file older builds left behind: gone, and never made again.
    let old_lock = std::env::temp_dir().join("isolab-net.lock");
    let _ = std::fs::remove_file(&old_lock);
    let before = isolab_temp_entries();
    // Two in a row: the allocation lock is taken and released twice.
    let spec = NetworkSpec {
        veth: true,
        bridge: false,
        publish: None,
    };
    let a = Network::create(&spec).unwrap();
    let b = Network::create(&spec).unwrap();
    assert_ne!(a.netns(), b.netns());
    drop((a, b));
    assert!(!old_lock.exists(), "{} was made", old_lock.display());
    let added: Vec<String> = isolab_temp_entries().difference(&before).cloned().collect();
    assert_eq!(added, Vec::<String>::new(), "left in the temp dir");
}
