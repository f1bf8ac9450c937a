//! What to run: the [`VmConfig`] given to [`crate::run`].

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::boot;

/// A VM to run.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Guest RAM in bytes (one region at GPA 0, below the MMIO hole).
    pub memory_bytes: u64,
    /// Number of vCPUs (the tiny guest uses exactly one).
    pub vcpus: u8,
    /// The guest to boot.
    pub image: GuestImage,
    /// Host file backing the virtio-blk device, if any.
    pub disk: Option<PathBuf>,
    /// Wall-clock limit; the guest is stopped and [`crate::VmExit::Timeout`] reported.
    pub timeout: Duration,
    /// Copy the guest's serial output to this process's stdout as it arrives.
    pub serial_echo: bool,
    /// Back guest RAM with transparent huge pages where the host allows it.
    pub hugepages: bool,
    /// A virtio-net device on a host tap interface (Linux guest only).
    pub net: Option<NetConfig>,
}

/// A virtio-net device: the host's tap interface and the guest's address,
/// which the guest kernel configures itself (`ip=`), so `/init` needs no tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The tap interface to attach to, made and addressed by the caller.
    pub tap: String,
    /// The guest's MAC address.
    pub mac: [u8; 6],
    /// The guest's address.
    pub guest: Ipv4Addr,
    /// The host end's address, the guest's gateway.
    pub host: Ipv4Addr,
    /// Prefix length of the link (e.g. 30).
    pub prefix: u8,
}

impl NetConfig {
    /// The kernel's `ip=` parameter for this link, on the guest's `eth0`
    /// with no autoconfiguration:
    /// `ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>`.
    pub fn kernel_ip_param(&self) -> String {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix.min(32)))
            .unwrap_or(0);
        format!(
            "ip={}::{}:{}::eth0:off",
            self.guest,
            self.host,
            Ipv4Addr::from(mask)
        )
    }
}

/// The guest image.
#[derive(Debug, Clone)]
pub enum GuestImage {
    /// The freestanding tiny guest: an ELF entered at CPL 3 in long mode.
    Tiny {
        /// The ELF file.
        elf: PathBuf,
        /// Workload arguments, passed through `TinyBootInfo`.
        cmdline: String,
    },
    /// A Linux kernel (+ initramfs) on the 64-bit boot protocol.
    Linux(boot::linux::LinuxBoot),
}

impl VmConfig {
    /// A tiny-guest configuration with the defaults (128 MiB, one vCPU, 30 s).
    pub fn tiny(elf: impl Into<PathBuf>, cmdline: impl Into<String>) -> VmConfig {
        VmConfig {
            memory_bytes: 128 << 20,
            vcpus: 1,
            image: GuestImage::Tiny {
                elf: elf.into(),
                cmdline: cmdline.into(),
            },
            disk: None,
            timeout: Duration::from_secs(30),
            serial_echo: false,
            hugepages: false,
            net: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_parameter_names_guest_gateway_mask_and_device() {
        let n = NetConfig {
            tap: "il1t0".into(),
            mac: [2, 0, 10, 200, 0, 2],
            guest: Ipv4Addr::new(10, 200, 0, 2),
            host: Ipv4Addr::new(10, 200, 0, 1),
            prefix: 30,
        };
        assert_eq!(
            n.kernel_ip_param(),
            "ip=10.200.0.2::10.200.0.1:255.255.255.252::eth0:off"
        );
        let all = NetConfig { prefix: 0, ..n };
        assert!(all.kernel_ip_param().contains(":0.0.0.0:"));
    }
}
