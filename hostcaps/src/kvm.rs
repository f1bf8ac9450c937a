//! What kind of KVM this host has, from `/dev/kvm`, `/proc/cpuinfo` and the
//! loaded modules. The functional verdicts (CPL-0 speed, exception delivery)
//! come from `microvm::probe`.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The kind of KVM, judged from facts the host exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvmKind {
    /// The CPU has VT-x/AMD-V and `kvm_intel`/`kvm_amd` is loaded.
    Hardware,
    /// KVM without hardware virtualization underneath (e.g. `kvm_pvm`).
    SoftwareAssisted,
    /// No usable `/dev/kvm`.
    Unavailable,
}

/// Static facts about KVM on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvmFacts {
    /// `/dev/kvm` exists.
    pub device_present: bool,
    /// `/dev/kvm` opens read-write.
    pub device_openable: bool,
    /// The KVM modules loaded (`kvm_intel`, `kvm_amd`, `kvm_pvm`, …).
    pub modules: Vec<String>,
    /// `vmx` or `svm` in `/proc/cpuinfo`.
    pub cpu_flag: Option<String>,
    /// The verdict.
    pub kind: KvmKind,
}

/// Reads the KVM facts of this host.
pub fn facts() -> KvmFacts {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let modules = kvm_modules(Path::new("/sys/module"));
    let dev = Path::new("/dev/kvm");
    let device_present = dev.exists();
    let device_openable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .is_ok();
    classify(device_present, device_openable, &cpuinfo, modules)
}

/// The KVM-related module names under a `/sys/module`-like directory.
pub fn kvm_modules(sys_module: &Path) -> Vec<String> {
    let mut mods: Vec<String> = std::fs::read_dir(sys_module)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n == "kvm" || n.starts_with("kvm_"))
                .collect()
        })
        .unwrap_or_default();
    mods.sort();
    mods
}

/// The `vmx`/`svm` flag of the first CPU in a `/proc/cpuinfo` text, if any.
pub fn virt_flag(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|flags| {
            flags
                .split_whitespace()
                .find(|f| *f == "vmx" || *f == "svm")
        })
        .map(str::to_string)
}

/// Classifies from the raw facts; separate from [`facts`] so it is testable
/// against recorded fixtures.
pub fn classify(
    device_present: bool,
    device_openable: bool,
    cpuinfo: &str,
    modules: Vec<String>,
) -> KvmFacts {
    let cpu_flag = virt_flag(cpuinfo);
    let hw_module = modules.iter().any(|m| m == "kvm_intel" || m == "kvm_amd");
    let kind = if !device_openable {
        KvmKind::Unavailable
    } else if cpu_flag.is_some() && hw_module {
        KvmKind::Hardware
    } else {
        KvmKind::SoftwareAssisted
    };
    KvmFacts {
        device_present,
        device_openable,
        modules,
        cpu_flag,
        kind,
    }
}

/// The KVM API version (`KVM_GET_API_VERSION`), if `/dev/kvm` opens. Stable
/// KVM has answered 12 since Linux 2.6.22.
pub fn api_version() -> Option<i32> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .ok()?;
    // KVM_GET_API_VERSION is _IO(KVMIO, 0x00) with KVMIO = 0xAE.
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    // SAFETY: a valid open fd and an ioctl that takes no argument and writes no memory.
    let v = unsafe { libc::ioctl(f.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    (v >= 0).then_some(v)
}

/// `Ok` when `/dev/kvm` opens; the error says what the user can do.
pub fn device_usable() -> Result<(), String> {
    let f = facts();
    if f.device_openable {
        Ok(())
    } else if f.device_present {
        Err(
            "/dev/kvm exists but cannot be opened read-write (run as root or join the kvm group)"
                .into(),
        )
    } else {
        Err("/dev/kvm is missing (enable virtualization in firmware/cloud settings and load kvm_intel or kvm_amd)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PVM_CPUINFO: &str = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm\n";
    const VMX_CPUINFO: &str =
        "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce vmx smx est tm2 ssse3\n";

    #[test]
    fn pvm_host_is_software_assisted() {
        let f = classify(
            true,
            true,
            PVM_CPUINFO,
            vec!["kvm".into(), "kvm_pvm".into()],
        );
        assert_eq!(f.kind, KvmKind::SoftwareAssisted);
        assert_eq!(f.cpu_flag, None);
    }

    #[test]
    fn vmx_with_kvm_intel_is_hardware() {
        let f = classify(
            true,
            true,
            VMX_CPUINFO,
            vec!["kvm".into(), "kvm_intel".into()],
        );
        assert_eq!(f.kind, KvmKind::Hardware);
        assert_eq!(f.cpu_flag.as_deref(), Some("vmx"));
    }

    #[test]
    fn vmx_flag_without_hardware_module_is_not_hardware() {
        let f = classify(
            true,
            true,
            VMX_CPUINFO,
            vec!["kvm".into(), "kvm_pvm".into()],
        );
        assert_eq!(f.kind, KvmKind::SoftwareAssisted);
    }

    #[test]
    fn unopenable_device_is_unavailable() {
        let f = classify(true, false, VMX_CPUINFO, vec!["kvm_intel".into()]);
        assert_eq!(f.kind, KvmKind::Unavailable);
    }

    #[test]
    fn modules_are_read_from_a_sys_module_tree() {
        let dir = tempfile::tempdir().unwrap();
        for m in ["kvm", "kvm_pvm", "ext4", "kvmfoo"] {
            std::fs::create_dir(dir.path().join(m)).unwrap();
        }
        assert_eq!(
            kvm_modules(dir.path()),
            vec!["kvm".to_string(), "kvm_pvm".to_string()]
        );
    }
}
