//! A persistent tap interface on the host with a `/30` from the pool the
//! container networks use, for a VM's virtio-net device: the VMM attaches
//! to it by name, the host end has the first address and the guest the
//! second. Named `il<pid>t<seq>` (see [`super::leftovers`]) so `isolab
//! clean` removes it after a kill; dropping a [`TapLink`] removes it.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use super::ip;
use super::leftovers::Names;
use super::network::{AllocLock, SEQ, free_block};
use crate::Result;

/// A tap interface and its point-to-point addresses; removed on drop.
#[derive(Debug)]
pub struct TapLink {
    /// The interface name (`il<pid>t<seq>`).
    pub name: String,
    /// The host end's address (`/30`).
    pub host: Ipv4Addr,
    /// The guest's address.
    pub guest: Ipv4Addr,
    removed: bool,
}

/// Prefix length of the link.
pub const PREFIX: u8 = 30;

impl TapLink {
    /// Makes the tap, in a free `/28` of `10.200.0.0/16` (its first `/30`
    /// is used), with the host address on it and the link up.
    pub fn create() -> Result<TapLink> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed) % 1000;
        let pid = std::process::id() as i32;
        let name = Names::tap(pid, seq);
        let _lock = AllocLock::take()?;
        let base = free_block(pid, seq)?;
        let mut link = TapLink {
            name,
            host: Ipv4Addr::from(base + 1),
            guest: Ipv4Addr::from(base + 2),
            removed: true,
        };
        ip(&["tuntap", "add", "dev", &link.name, "mode", "tap"])?;
        // From here on, drop removes it (also when a step below fails).
        link.removed = false;
        let addr = format!("{}/{PREFIX}", link.host);
        ip(&["addr", "add", &addr, "dev", &link.name])?;
        ip(&["link", "set", &link.name, "up"])?;
        Ok(link)
    }

    /// A locally administered MAC for the guest, from its address.
    pub fn guest_mac(&self) -> [u8; 6] {
        let [a, b, c, d] = self.guest.octets();
        [0x02, 0x00, a, b, c, d]
    }

    /// Removes the interface; also done on drop. Returns what could not be removed.
    pub fn remove(&mut self) -> Vec<String> {
        if std::mem::replace(&mut self.removed, true) {
            return Vec::new();
        }
        let exists = std::path::Path::new("/sys/class/net")
            .join(&self.name)
            .exists();
        if exists && let Err(e) = ip(&["link", "del", &self.name]) {
            return vec![e.to_string()];
        }
        Vec::new()
    }
}

impl Drop for TapLink {
    fn drop(&mut self) {
        for e in self.remove() {
            tracing::warn!("tap left behind: {e}");
        }
    }
}
