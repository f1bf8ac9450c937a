//! The environment block of a results file: what machine produced the numbers.

use serde::{Deserialize, Serialize};

/// A yes/no judgement about the host, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// What was judged (`kvm`, `linux_guest`, `tiny_guest`, `cgroups`, `user_namespaces`).
    pub name: String,
    /// Whether it works here.
    pub ok: bool,
    /// Why, in a sentence.
    pub detail: String,
}

/// A peer tool and its version, as found on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolVersion {
    /// Program name.
    pub name: String,
    /// First line of its version output; `None` when not installed.
    pub version: Option<String>,
}

/// The host a results file was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Host name.
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Distribution (`PRETTY_NAME` of `/etc/os-release`).
    pub os: Option<String>,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: usize,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// cpufreq governor of CPU 0, where the host exposes one.
    pub governor: Option<String>,
    /// Transparent huge pages mode (`always`, `madvise`, `never`).
    pub thp: Option<String>,
    /// isolab version.
    pub isolab_version: String,
    /// Git commit of the source tree, when built from a checkout.
    pub git_commit: Option<String>,
    /// KVM kind: `hardware`, `software-assisted` or `unavailable`.
    pub kvm_kind: String,
    /// Loaded KVM modules.
    pub kvm_modules: Vec<String>,
    /// cgroup layout: `v2`, `v1`, `hybrid` or `none`.
    pub cgroup_mode: String,
    /// Judgements in plain words.
    pub verdicts: Vec<Verdict>,
    /// Where the verdicts came from (`doctor`, or static host facts).
    pub verdict_source: String,
    /// Peer tools and their versions.
    pub tools: Vec<ToolVersion>,
    /// Why this host counts as emulated (QEMU TCG: every time measured here
    /// is an emulated time), or `None` for real hardware.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulated: Option<String>,
    /// The full doctor report, when available (its own schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor: Option<serde_json::Value>,
}

impl Environment {
    /// Reads the environment of this host. Never fails: unreadable facts are `None`/empty.
    pub fn collect() -> Environment {
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        let kvm = hostcaps::kvm::facts();
        let cgroup = hostcaps::cgroup::mode();
        Environment {
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into()),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            os: read("/etc/os-release").and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            }),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|| "unknown".into()),
            cpu_count: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_bytes: read("/proc/meminfo")
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("MemTotal:"))
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                })
                .map(|kib| kib * 1024)
                .unwrap_or(0),
            governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            thp: read("/sys/kernel/mm/transparent_hugepage/enabled").and_then(|t| bracketed(&t)),
            isolab_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git_commit(),
            kvm_kind: serde_name(&kvm.kind),
            kvm_modules: kvm.modules.clone(),
            cgroup_mode: serde_name(&cgroup),
            emulated: hostcaps::emulation::detect(),
            verdicts: static_verdicts(&kvm, cgroup),
            verdict_source: "static host facts (hostcaps)".into(),
            tools: hostcaps::peers::all()
                .into_iter()
                .map(|p| ToolVersion {
                    name: p.name,
                    version: p.version,
                })
                .collect(),
            doctor: None,
        }
    }

    /// Replaces the static verdicts with `isolab doctor`'s functional ones and
    /// keeps the whole doctor report.
    pub fn attach_doctor(&mut self, report: &isolation::doctor::DoctorReport) {
        use isolation::doctor::Status;
        let kvm = &report.kvm;
        let mut verdicts = vec![
            Verdict {
                name: "linux_guest".into(),
                ok: kvm.linux_guest,
                detail: if kvm.linux_guest {
                    "a Linux guest can boot here".into()
                } else {
                    format!(
                        "a Linux guest cannot boot here{}",
                        kvm.exception_detail
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    )
                },
            },
            Verdict {
                name: "tiny_guest".into(),
                ok: kvm.tiny_guest,
                detail: if kvm.tiny_guest {
                    "the tiny guest (workload at CPL 3) runs here".into()
                } else {
                    "the tiny guest cannot run here".into()
                },
            },
        ];
        verdicts.extend(report.checks.iter().map(|c| Verdict {
            name: c.name.clone(),
            ok: c.status == Status::Ok,
            detail: match (&c.status, &c.advice) {
                (Status::Ok, _) | (_, None) => c.detail.clone(),
                (_, Some(advice)) => format!("{} ({advice})", c.detail),
            },
        }));
        self.verdicts = verdicts;
        self.kvm_kind = serde_name(&kvm.kind);
        self.verdict_source = "isolab doctor".into();
        self.doctor = serde_json::to_value(report).ok();
    }

    /// The verdict called `name`, if present.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.name == name)
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The selected value of a sysfs choice list: `always [madvise] never` → `madvise`.
fn bracketed(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_string())
}

/// The serde name of a unit enum value (`SoftwareAssisted` → `software-assisted`).
fn serde_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

fn git_commit() -> Option<String> {
    // The checkout this crate was built from; absent for a packaged build.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = std::process::Command::new("git")
        .args(["-C", dir, "rev-parse", "--short=12", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Verdicts from static facts, used until the functional doctor report is
/// attached (which replaces them).
fn static_verdicts(
    kvm: &hostcaps::kvm::KvmFacts,
    cgroup: hostcaps::cgroup::CgroupMode,
) -> Vec<Verdict> {
    use hostcaps::cgroup::CgroupMode;
    use hostcaps::kvm::KvmKind;
    let (kvm_ok, kvm_detail) = match kvm.kind {
        KvmKind::Hardware => (
            true,
            "hardware virtualization (VT-x/AMD-V) backs /dev/kvm".to_string(),
        ),
        KvmKind::SoftwareAssisted => (
            true,
            format!(
                "/dev/kvm works but is software-assisted (modules: {}; no vmx/svm CPU flag): guest kernel code is emulated",
                kvm.modules.join(", ")
            ),
        ),
        KvmKind::Unavailable => (false, "no usable /dev/kvm".to_string()),
    };
    let linux = match kvm.kind {
        KvmKind::Hardware => (true, "a Linux guest can boot on hardware KVM".to_string()),
        KvmKind::SoftwareAssisted => (
            false,
            "a Linux guest cannot boot: this software-assisted KVM cannot deliver the guest kernel's exceptions and interrupts".to_string(),
        ),
        KvmKind::Unavailable => (false, "no KVM, so no VM guests".to_string()),
    };
    let tiny = if kvm.device_openable {
        (
            true,
            "the tiny guest runs its workload at CPL 3, which any KVM runs at native speed"
                .to_string(),
        )
    } else {
        (false, "no KVM, so no VM guests".to_string())
    };
    let cg = match cgroup {
        CgroupMode::V2 => (true, "cgroup v2 (unified)".to_string()),
        CgroupMode::Hybrid => (
            true,
            "hybrid cgroups: v1 controllers plus an empty cgroup2 mount".to_string(),
        ),
        CgroupMode::V1 => (true, "cgroup v1 only".to_string()),
        CgroupMode::None => (
            false,
            "no cgroup filesystem: containers run without resource limits".to_string(),
        ),
    };
    let userns = match hostcaps::namespaces::can_create(hostcaps::namespaces::Namespace::User) {
        Ok(()) => (true, "user namespaces can be created".to_string()),
        Err(e) => (false, format!("user namespaces cannot be created: {e}")),
    };
    [
        ("kvm", kvm_ok, kvm_detail),
        ("linux_guest", linux.0, linux.1),
        ("tiny_guest", tiny.0, tiny.1),
        ("cgroups", cg.0, cg.1),
        ("user_namespaces", userns.0, userns.1),
    ]
    .into_iter()
    .map(|(name, ok, detail)| Verdict {
        name: name.into(),
        ok,
        detail,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_choice() {
        assert_eq!(
            bracketed("always [madvise] never").as_deref(),
            Some("madvise")
        );
        assert_eq!(bracketed("none"), None);
    }
}
