//! Networking: `lo` up inside the new network namespace (ioctl, no allocation,
//! runs in the child), the optional veth pair to the host (made by the
//! parent with `ip`, removed when the run ends), and whole networks made
//! before the container ([`network`]: a point-to-point veth, or a bridge with
//! NAT and a published port) with the removal of what a killed run left
//! ([`leftovers`]); and a VM's tap link ([`tap`]) from the same address pool.

pub mod leftovers;
pub mod network;
pub mod tap;

pub use network::{Bridged, Network, NetworkSpec, PointToPoint};
pub use tap::TapLink;

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;

use crate::{Error, Result};

/// Name of the container side of the veth pair.
pub const GUEST_IF: &[u8] = b"eth0";

fn ifreq(name: &[u8]) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.iter().take(libc::IFNAMSIZ - 1))
    {
        *dst = *src as libc::c_char;
    }
    req
}

struct Sock(libc::c_int);

impl Sock {
    fn new() -> io::Result<Sock> {
        // SAFETY: socket(2) with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(Sock(fd))
        }
    }
    fn ioctl(&self, req: libc::c_ulong, ifr: &mut libc::ifreq) -> io::Result<()> {
        // SAFETY: ifr is a valid ifreq for these SIOC* requests.
        if unsafe { libc::ioctl(self.0, req, ifr as *mut libc::ifreq) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

/// Sets interface `name` up.
pub fn link_up(name: &[u8]) -> io::Result<()> {
    let s = Sock::new()?;
    let mut req = ifreq(name);
    s.ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    s.ioctl(libc::SIOCSIFFLAGS, &mut req)
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it as sockaddr_in.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Gives interface `name` an IPv4 address and netmask, and sets it up.
pub fn configure(name: &[u8], addr: Ipv4Addr, netmask: Ipv4Addr) -> io::Result<()> {
    let s = Sock::new()?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_addr = sockaddr(addr);
    s.ioctl(libc::SIOCSIFADDR, &mut req)?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_netmask = sockaddr(netmask);
    s.ioctl(libc::SIOCSIFNETMASK, &mut req)?;
    link_up(name)
}

/// Addresses of one veth pair: a /30 per container, derived from the child's pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethAddrs {
    /// Host-side interface name.
    pub host_if: String,
    /// Host-side address.
    pub host: Ipv4Addr,
    /// Container-side address.
    pub guest: Ipv4Addr,
}

impl VethAddrs {
    /// The pair for container init `pid`.
    pub fn for_pid(pid: i32) -> VethAddrs {
        let k = (pid.unsigned_abs() % 16_384) as u16;
        let base = Ipv4Addr::new(
            10,
            200 + (k >> 14) as u8,
            (k >> 6) as u8,
            ((k & 63) * 4) as u8,
        );
        let b = u32::from(base);
        VethAddrs {
            host_if: format!("isl{pid}"),
            host: Ipv4Addr::from(b + 1),
            guest: Ipv4Addr::from(b + 2),
        }
    }
}

/// A veth pair whose host end is deleted on drop (the guest end dies with its namespace).
#[derive(Debug)]
pub struct Veth {
    /// The addresses.
    pub addrs: VethAddrs,
    live: bool,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| Error::Network(format!("cannot run `ip` (iproute2): {e}")))?;
    if !out.status.success() {
        return Err(Error::Network(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Runs `iptables -w ARGS` (the nf_tables or legacy backend, whichever the
/// host's `iptables` is).
fn iptables(args: &[&str]) -> Result<()> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(|e| Error::Network(format!("cannot run `iptables`: {e}")))?;
    if !out.status.success() {
        return Err(Error::Network(format!(
            "`iptables {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// `iptables -w ARGS`, true when it succeeded.
fn iptables_quiet(args: &[&str]) -> bool {
    iptables(args).is_ok()
}

/// The output of `iptables -w ARGS`, if it ran and succeeded.
fn iptables_output(args: &[&str]) -> Option<String> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Veth {
    /// Creates the pair with its container end (`eth0`) inside the network namespace of `pid`.
    pub fn create(pid: i32) -> Result<Veth> {
        let addrs = VethAddrs::for_pid(pid);
        let pid_s = pid.to_string();
        ip(&[
            "link",
            "add",
            &addrs.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &pid_s,
        ])?;
        let veth = Veth { addrs, live: true };
        let cidr = format!("{}/30", veth.addrs.host);
        ip(&["addr", "add", &cidr, "dev", &veth.addrs.host_if])?;
        ip(&["link", "set", &veth.addrs.host_if, "up"])?;
        Ok(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let present = std::path::Path::new("/sys/class/net")
            .join(&self.addrs.host_if)
            .exists();
        if self.live
            && present
            && let Err(e) = ip(&["link", "del", &self.addrs.host_if])
        {
            tracing::warn!(error = %e, "veth left behind");
        }
        self.live = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_addresses_are_a_private_slash_30() {
        let a = VethAddrs::for_pid(1234);
        assert_eq!(u32::from(a.guest) - u32::from(a.host), 1);
        assert_eq!(u32::from(a.host) & 3, 1);
        assert!(a.host.is_private());
        assert!(a.host_if.len() < libc::IFNAMSIZ);
        assert_ne!(VethAddrs::for_pid(1235).host, a.host);
    }
}
