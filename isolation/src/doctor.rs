//! `isolab doctor`: what this host can and cannot do, precisely, and what the
//! user can do about each missing piece.
//!
//! The JSON form is versioned by [`DOCTOR_SCHEMA_VERSION`]; the fields are
//! documented on the types below and in `bench/README.md`.

use serde::{Deserialize, Serialize};

use hostcaps::cgroup::CgroupMode;
use hostcaps::kvm::KvmKind;
use hostcaps::namespaces::Namespace;

/// Where KVM cannot run a Linux guest: the emulated test host can.
pub const TESTHOST_HINT: &str = "run the VM labs in the emulated test host (slow; its times are \
    emulated): `isolab testhost run -- isolab probe --isolation vm --guest linux all`";

/// Version of the doctor JSON schema.
pub const DOCTOR_SCHEMA_VERSION: u32 = 1;

/// Status of one line of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works.
    Ok,
    /// Works with a limitation the user should know about.
    Limited,
    /// Not available.
    Missing,
}

/// One line of the report: a named check, its status and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier, e.g. `kvm.device`, `namespace.user`, `cgroup.memory`.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What the user can do, for lines that are not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// Whether guest CPL-0 code runs at hardware speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cpl0 {
    /// Within a small factor of CPL-3 speed.
    Native,
    /// Far slower than CPL 3: the hypervisor emulates kernel-mode code.
    Emulated,
}

/// The KVM section: static facts plus the functional probes' verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvmReport {
    /// `hardware`, `software-assisted` or `unavailable`.
    pub kind: KvmKind,
    /// `/dev/kvm` exists.
    pub device_present: bool,
    /// `/dev/kvm` opens read-write.
    pub device_openable: bool,
    /// `KVM_GET_API_VERSION` (12 on every current kernel).
    pub api_version: Option<i32>,
    /// KVM modules loaded.
    pub modules: Vec<String>,
    /// `vmx`/`svm` CPU flag, if present.
    pub cpu_flag: Option<String>,
    /// Guest CPL-0 speed, from the timed loop probe.
    pub guest_cpl0: Option<Cpl0>,
    /// CPL-0 time per iteration divided by CPL-3 time per iteration.
    pub cpl0_slowdown: Option<f64>,
    /// Whether an `int3` through a long-mode IDT reached its handler.
    pub guest_exceptions_delivered: Option<bool>,
    /// What the exception probe saw.
    pub exception_detail: Option<String>,
    /// Can a Linux guest boot here (needs CPL 0 at speed and exception delivery)?
    pub linux_guest: bool,
    /// Can the tiny guest (CPL 3, no exceptions) run here?
    pub tiny_guest: bool,
    /// Wall time the functional probes took, in milliseconds.
    pub probe_ms: Option<f64>,
    /// Why the functional probes could not run, if they could not.
    pub probe_error: Option<String>,
}

/// The cgroup section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupReport {
    /// `v2`, `v1`, `hybrid` or `none`.
    pub mode: CgroupMode,
    /// Usable controllers among cpu, memory, pids, io/blkio, each with the hierarchy that provides it.
    pub controllers: Vec<ControllerReport>,
}

/// One cgroup controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerReport {
    /// Controller name (`memory`, `cpu`, `pids`, `io` or `blkio`).
    pub name: String,
    /// `v1` or `v2`, when mounted.
    pub hierarchy: Option<String>,
    /// A child group could be created and removed.
    pub can_create_child: bool,
    /// The error, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// Always [`DOCTOR_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// isolab's version.
    pub isolab_version: String,
    /// Running as root.
    pub root: bool,
    /// Host kernel release.
    pub kernel: String,
    /// KVM facts and verdicts.
    pub kvm: KvmReport,
    /// cgroup facts.
    pub cgroup: CgroupReport,
    /// Namespace name → creatable.
    pub namespaces: Vec<(String, bool)>,
    /// Unprivileged users may create user namespaces.
    pub unprivileged_userns: bool,
    /// Transparent huge pages mode.
    pub thp: Option<String>,
    /// Peer tools found.
    pub peers: Vec<hostcaps::peers::Peer>,
    /// Why this host counts as emulated (every time measured here is an
    /// emulated time), or `None`.
    #[serde(default)]
    pub emulated: Option<String>,
    /// Every check, in display order.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The check named `name`, if present.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// The functional KVM probe results doctor needs, decoupled from microvm's
/// type so the verdict logic can be unit-tested with recorded numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Functional {
    /// CPL-0 / CPL-3 time per loop iteration.
    pub cpl0_slowdown: f64,
    /// `int3` reached its handler.
    pub exceptions_delivered: bool,
    /// What the exception probe saw.
    pub exception_detail: String,
    /// A CPL-3 guest did port I/O and exited cleanly.
    pub cpl3_guest_ok: bool,
    /// microvm's own verdicts.
    pub linux_guest: bool,
    /// See `linux_guest`.
    pub tiny_guest: bool,
    /// How long the probes took.
    pub elapsed_ms: f64,
}

fn functional() -> Result<Functional, String> {
    let p = microvm::probe::functional_once()?;
    Ok(Functional {
        cpl0_slowdown: p.cpl0_slowdown,
        exceptions_delivered: p.exceptions_delivered,
        exception_detail: p.exception_detail.clone(),
        cpl3_guest_ok: p.cpl3_guest_ok,
        linux_guest: p.linux_guest_supported(),
        tiny_guest: p.tiny_guest_supported(),
        elapsed_ms: p.elapsed.as_secs_f64() * 1e3,
    })
}

/// Builds the KVM section from static facts and (when KVM is usable) the probes.
pub fn kvm_report(
    facts: hostcaps::kvm::KvmFacts,
    api_version: Option<i32>,
    probe: Option<Result<Functional, String>>,
) -> KvmReport {
    let mut r = KvmReport {
        kind: facts.kind,
        device_present: facts.device_present,
        device_openable: facts.device_openable,
        api_version,
        modules: facts.modules,
        cpu_flag: facts.cpu_flag,
        guest_cpl0: None,
        cpl0_slowdown: None,
        guest_exceptions_delivered: None,
        exception_detail: None,
        linux_guest: false,
        tiny_guest: false,
        probe_ms: None,
        probe_error: None,
    };
    match probe {
        Some(Ok(f)) => {
            r.guest_cpl0 = Some(
                if f.cpl0_slowdown >= microvm::probe::KvmProbe::EMULATED_SLOWDOWN {
                    Cpl0::Emulated
                } else {
                    Cpl0::Native
                },
            );
            r.cpl0_slowdown = Some(f.cpl0_slowdown);
            r.guest_exceptions_delivered = Some(f.exceptions_delivered);
            r.exception_detail = Some(f.exception_detail);
            // Both the probes and microvm must agree before we promise a Linux boot.
            r.linux_guest =
                f.linux_guest && f.exceptions_delivered && r.guest_cpl0 == Some(Cpl0::Native);
            r.tiny_guest = f.tiny_guest && f.cpl3_guest_ok;
            r.probe_ms = Some(f.elapsed_ms);
        }
        Some(Err(e)) => r.probe_error = Some(e),
        None => {}
    }
    r
}

fn cgroup_report() -> CgroupReport {
    let mounts = hostcaps::cgroup::mounts();
    let mode = hostcaps::cgroup::mode_of(&mounts);
    let v2 = hostcaps::cgroup::v2_root(&mounts)
        .map(|p| (p.to_path_buf(), hostcaps::cgroup::v2_controllers(p)));
    let mut controllers = Vec::new();
    for (v2name, v1name) in [
        ("cpu", "cpu"),
        ("memory", "memory"),
        ("pids", "pids"),
        ("io", "blkio"),
    ] {
        let (hierarchy, root, name) = match &v2 {
            Some((root, ctl)) if ctl.iter().any(|c| c == v2name) => {
                (Some("v2"), Some(root.clone()), v2name)
            }
            _ => match hostcaps::cgroup::v1_root(&mounts, v1name) {
                Some(root) => (Some("v1"), Some(root.to_path_buf()), v1name),
                None => (None, None, v1name),
            },
        };
        let created = match &root {
            Some(root) => hostcaps::cgroup::can_create_child(root),
            None => Err(format!(
                "no `{v2name}` controller in the v2 hierarchy and no v1 `{v1name}` mount"
            )),
        };
        controllers.push(ControllerReport {
            name: name.to_string(),
            hierarchy: hierarchy.map(str::to_string),
            can_create_child: created.is_ok(),
            error: created.err(),
        });
    }
    CgroupReport { mode, controllers }
}

/// Runs every check. Takes well under a second.
pub fn run() -> DoctorReport {
    let facts = hostcaps::kvm::facts();
    let probe = facts.device_openable.then(functional);
    let kvm = kvm_report(facts, hostcaps::kvm::api_version(), probe);
    let namespaces: Vec<(Namespace, Result<(), String>)> = Namespace::ALL
        .iter()
        .map(|&ns| (ns, hostcaps::namespaces::can_create(ns)))
        .collect();
    let userns = hostcaps::namespaces::unprivileged_userns_allowed();
    let cgroup = cgroup_report();
    let peers = hostcaps::peers::all();
    let emulated = hostcaps::emulation::detect();
    let mut checks = Vec::new();
    if let Some(why) = &emulated {
        checks.push(emulated_check(why));
    }
    kvm_checks(&kvm, &mut checks);
    cgroup_checks(&cgroup, &mut checks);
    namespace_checks(&namespaces, &userns, &mut checks);
    let thp = feature_checks(&mut checks);
    peer_checks(&peers, &mut checks);
    DoctorReport {
        schema_version: DOCTOR_SCHEMA_VERSION,
        isolab_version: env!("CARGO_PKG_VERSION").into(),
        root: hostcaps::is_root(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        kvm,
        cgroup,
        namespaces: namespaces
            .iter()
            .map(|(ns, r)| (ns.name().to_string(), r.is_ok()))
            .collect(),
        unprivileged_userns: userns.is_ok(),
        thp,
        peers,
        emulated,
        checks,
    }
}

/// The warning that every time measured on this host is emulated.
fn emulated_check(why: &str) -> Check {
    Check {
        name: "host.emulated".into(),
        status: Status::Limited,
        detail: format!("this host is emulated: {why}"),
        advice: Some(
            "what runs here works as on hardware, but every time measured here is emulated: \
             use it for function, measure speed on real hardware"
                .into(),
        ),
    }
}

/// One line per namespace kind, then unprivileged user namespaces.
fn namespace_checks(
    namespaces: &[(Namespace, Result<(), String>)],
    userns: &Result<(), String>,
    checks: &mut Vec<Check>,
) {
    for (ns, r) in namespaces {
        checks.push(from_result(
            &format!("namespace.{}", ns.name()),
            "can be created",
            r,
            || match ns {
                Namespace::Time => "needs Linux 5.6 or newer".into(),
                Namespace::User => "enable user namespaces (user.max_user_namespaces > 0)".into(),
                _ => format!(
                    "the kernel lacks CONFIG_{}_NS or a security policy forbids it",
                    ns.name().to_uppercase()
                ),
            },
        ));
    }
    checks.push(from_result(
        "namespace.user.unprivileged",
        "unprivileged users may create user namespaces",
        userns,
        || "only matters for rootless use; isolab runs as root here".into(),
    ));
}

/// Kernel features the container backend uses (seccomp, overlayfs, tun)
/// and the huge-page mode; returns the latter for the report.
fn feature_checks(checks: &mut Vec<Check>) -> Option<String> {
    checks.push(from_result(
        "seccomp",
        "seccomp filters supported",
        &hostcaps::features::seccomp(),
        || "rebuild the kernel with CONFIG_SECCOMP_FILTER=y".into(),
    ));
    checks.push(from_result(
        "overlayfs",
        "overlay filesystem available",
        &hostcaps::features::overlayfs(),
        || "modprobe overlay".into(),
    ));
    checks.push(from_result(
        "tun",
        "/dev/net/tun present",
        &hostcaps::features::tun(),
        || "modprobe tun".into(),
    ));
    let thp = hostcaps::features::thp_mode();
    checks.push(Check {
        name: "thp".into(),
        status: if thp.is_some() {
            Status::Ok
        } else {
            Status::Limited
        },
        detail: format!(
            "transparent huge pages: {}",
            thp.as_deref().unwrap_or("not readable")
        ),
        advice: thp
            .is_none()
            .then(|| "guest memory is backed by 4 KiB pages".into()),
    });
    thp
}

/// One line per peer tool, with the package that provides a missing one.
fn peer_checks(peers: &[hostcaps::peers::Peer], checks: &mut Vec<Check>) {
    for p in peers {
        checks.push(Check {
            name: format!("peer.{}", p.name),
            status: if p.path.is_some() {
                Status::Ok
            } else {
                Status::Missing
            },
            detail: match (&p.path, &p.version) {
                (Some(path), v) => format!(
                    "{} ({})",
                    path.display(),
                    v.as_deref().unwrap_or("version unknown")
                ),
                (None, _) => "not found on PATH".into(),
            },
            advice: p
                .path
                .is_none()
                .then(|| format!("apt-get install {}", peer_package(&p.name))),
        });
    }
}

fn peer_package(name: &str) -> &str {
    match name {
        "bwrap" => "bubblewrap",
        "qemu-system-x86_64" => "qemu-system-x86",
        "busybox" => "busybox-static",
        other => other,
    }
}

fn from_result(
    name: &str,
    ok: &str,
    r: &Result<(), String>,
    advice: impl FnOnce() -> String,
) -> Check {
    match r {
        Ok(()) => Check {
            name: name.into(),
            status: Status::Ok,
            detail: ok.into(),
            advice: None,
        },
        Err(e) => Check {
            name: name.into(),
            status: Status::Missing,
            detail: e.clone(),
            advice: Some(advice()),
        },
    }
}

/// The KVM lines: the device, the kind of KVM, the functional probes'
/// verdicts, and which guests can run.
fn kvm_checks(k: &KvmReport, checks: &mut Vec<Check>) {
    checks.push(kvm_device_check(k));
    checks.push(kvm_kind_check(k));
    kvm_probe_checks(k, checks);
    guest_checks(k, checks);
}

/// Whether `/dev/kvm` opens, and what to do when it does not.
fn kvm_device_check(k: &KvmReport) -> Check {
    if k.device_openable {
        Check {
            name: "kvm.device".into(),
            status: Status::Ok,
            detail: format!(
                "/dev/kvm opens, API version {}",
                k.api_version.map_or("?".into(), |v| v.to_string())
            ),
            advice: None,
        }
    } else {
        Check {
            name: "kvm.device".into(),
            status: Status::Missing,
            detail: if k.device_present { "/dev/kvm exists but cannot be opened" } else { "/dev/kvm is missing" }.into(),
            advice: Some("enable VT-x/AMD-V (or nested virtualization on a cloud VM), load kvm_intel or kvm_amd, run as root or join the kvm group".into()),
        }
    }
}

/// Hardware or software-assisted KVM, with the evidence.
fn kvm_kind_check(k: &KvmReport) -> Check {
    let kind_detail = format!(
        "{} (modules: {}; cpu flag: {})",
        match k.kind {
            KvmKind::Hardware => "hardware",
            KvmKind::SoftwareAssisted => "software-assisted",
            KvmKind::Unavailable => "unavailable",
        },
        if k.modules.is_empty() {
            "none".into()
        } else {
            k.modules.join(", ")
        },
        k.cpu_flag.as_deref().unwrap_or("none"),
    );
    Check {
        name: "kvm.kind".into(),
        status: match k.kind {
            KvmKind::Hardware => Status::Ok,
            KvmKind::SoftwareAssisted => Status::Limited,
            KvmKind::Unavailable => Status::Missing,
        },
        detail: kind_detail,
        advice: (k.kind != KvmKind::Hardware)
            .then(|| "full Linux guests need hardware virtualization (bare metal, or a cloud VM with nested VT-x/AMD-V)".into()),
    }
}

/// What the functional probes saw: their failure, CPL-0 speed, exceptions.
fn kvm_probe_checks(k: &KvmReport, checks: &mut Vec<Check>) {
    if let Some(e) = &k.probe_error {
        checks.push(Check {
            name: "kvm.probes".into(),
            status: Status::Missing,
            detail: format!("functional probes failed: {e}"),
            advice: Some("run `RUST_LOG=debug isolab doctor` and report the output".into()),
        });
    }
    if let (Some(cpl0), Some(ratio)) = (k.guest_cpl0, k.cpl0_slowdown) {
        checks.push(Check {
            name: "kvm.guest_cpl0".into(),
            status: if cpl0 == Cpl0::Native {
                Status::Ok
            } else {
                Status::Limited
            },
            detail: match cpl0 {
                Cpl0::Native => format!("native (CPL 0 runs at {ratio:.1}× the time of CPL 3)"),
                Cpl0::Emulated => format!("emulated (≈{ratio:.0}× slower than CPL 3)"),
            },
            advice: (cpl0 == Cpl0::Emulated)
                .then(|| "guest kernels crawl here; the tiny guest keeps its work at CPL 3".into()),
        });
    }
    if let Some(delivered) = k.guest_exceptions_delivered {
        checks.push(Check {
            name: "kvm.guest_exceptions".into(),
            status: if delivered {
                Status::Ok
            } else {
                Status::Limited
            },
            detail: format!(
                "{} ({})",
                if delivered {
                    "delivered"
                } else {
                    "not delivered"
                },
                k.exception_detail.as_deref().unwrap_or("")
            ),
            advice: (!delivered)
                .then(|| "a Linux guest stops at its first interrupt on this host".into()),
        });
    }
}

/// The two verdicts: can a Linux guest boot, can the tiny guest run.
fn guest_checks(k: &KvmReport, checks: &mut Vec<Check>) {
    for (name, ok, what) in [
        ("linux_guest", k.linux_guest, "a Linux guest boot to /init"),
        (
            "tiny_guest",
            k.tiny_guest,
            "the tiny guest (CPL 3, no interrupts)",
        ),
    ] {
        checks.push(Check {
            name: name.into(),
            status: if ok { Status::Ok } else { Status::Missing },
            detail: format!("{}: {what}", if ok { "supported" } else { "unsupported" }),
            advice: (!ok).then(|| {
                if name == "linux_guest" {
                    format!("compare and bench fall back to the tiny guest; use a host with hardware KVM, or {TESTHOST_HINT}")
                } else {
                    format!("needs a usable /dev/kvm; or {TESTHOST_HINT}")
                }
            }),
        });
    }
}

fn cgroup_checks(c: &CgroupReport, checks: &mut Vec<Check>) {
    checks.push(Check {
        name: "cgroup.mode".into(),
        status: match c.mode {
            CgroupMode::V2 | CgroupMode::V1 | CgroupMode::Hybrid => Status::Ok,
            CgroupMode::None => Status::Missing,
        },
        detail: match c.mode {
            CgroupMode::V2 => "v2 (unified)",
            CgroupMode::V1 => "v1",
            CgroupMode::Hybrid => {
                "hybrid (v1 controllers + an empty v2 mount); isolab uses the v1 controllers"
            }
            CgroupMode::None => "no cgroup filesystem mounted",
        }
        .into(),
        advice: (c.mode == CgroupMode::None).then(|| "mount cgroup2 at /sys/fs/cgroup".into()),
    });
    for ctl in &c.controllers {
        checks.push(Check {
            name: format!("cgroup.{}", ctl.name),
            status: if ctl.can_create_child { Status::Ok } else { Status::Missing },
            detail: match (&ctl.hierarchy, &ctl.error) {
                (Some(h), None) => format!("{h} controller, child groups can be created"),
                (_, Some(e)) => e.clone(),
                (None, None) => "not available".into(),
            },
            advice: (!ctl.can_create_child).then(|| {
                format!("enable it: echo +{} > /sys/fs/cgroup/cgroup.subtree_control (v2), or mount the v1 controller", ctl.name)
            }),
        });
    }
}

/// Renders the report as a human table: status, name, detail, and advice
/// under any line that is not ok.
pub fn render(r: &DoctorReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "isolab doctor {} — kernel {}, {}",
        r.isolab_version,
        r.kernel,
        if r.root { "root" } else { "not root" }
    );
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
    for c in &r.checks {
        let mark = match c.status {
            Status::Ok => "ok     ",
            Status::Limited => "limited",
            Status::Missing => "MISSING",
        };
        let _ = writeln!(out, "{mark}  {:width$}  {}", c.name, c.detail);
        if let Some(a) = &c.advice {
            let _ = writeln!(out, "         {:width$}  → {a}", "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostcaps::kvm::KvmFacts;

    fn pvm_facts() -> KvmFacts {
        KvmFacts {
            device_present: true,
            device_openable: true,
            modules: vec!["kvm".into(), "kvm_pvm".into()],
            cpu_flag: None,
            kind: KvmKind::SoftwareAssisted,
        }
    }

    // Numbers recorded on the project's kvm_pvm machines.
    fn pvm_probe() -> Functional {
        Functional {
            cpl0_slowdown: 4600.0,
            exceptions_delivered: false,
            exception_detail: "KVM_EXIT_INTERNAL_ERROR during delivery".into(),
            cpl3_guest_ok: true,
            linux_guest: false,
            tiny_guest: true,
            elapsed_ms: 40.0,
        }
    }

    #[test]
    fn software_assisted_verdicts() {
        let k = kvm_report(pvm_facts(), Some(12), Some(Ok(pvm_probe())));
        assert_eq!(k.guest_cpl0, Some(Cpl0::Emulated));
        assert!(!k.linux_guest);
        assert!(k.tiny_guest);
        let mut checks = Vec::new();
        kvm_checks(&k, &mut checks);
        let kind = checks.iter().find(|c| c.name == "kvm.kind").unwrap();
        assert!(kind.detail.starts_with("software-assisted"));
        let lg = checks.iter().find(|c| c.name == "linux_guest").unwrap();
        assert_eq!(lg.status, Status::Missing);
        assert!(lg.advice.is_some());
    }

    #[test]
    fn hardware_kvm_with_fast_cpl0_supports_linux() {
        let facts = KvmFacts {
            cpu_flag: Some("vmx".into()),
            modules: vec!["kvm_intel".into()],
            kind: KvmKind::Hardware,
            ..pvm_facts()
        };
        let probe = Functional {
            cpl0_slowdown: 1.02,
            exceptions_delivered: true,
            linux_guest: true,
            ..pvm_probe()
        };
        let k = kvm_report(facts, Some(12), Some(Ok(probe)));
        assert_eq!(k.guest_cpl0, Some(Cpl0::Native));
        assert!(k.linux_guest && k.tiny_guest);
    }

    #[test]
    fn linux_guest_needs_both_probes_to_agree() {
        // Exceptions delivered but CPL 0 emulated: still no Linux guest.
        let probe = Functional {
            exceptions_delivered: true,
            linux_guest: true,
            ..pvm_probe()
        };
        assert!(!kvm_report(pvm_facts(), Some(12), Some(Ok(probe))).linux_guest);
    }

    #[test]
    fn a_host_without_a_linux_guest_is_pointed_at_the_test_host() {
        let k = kvm_report(pvm_facts(), Some(12), Some(Ok(pvm_probe())));
        let mut checks = Vec::new();
        kvm_checks(&k, &mut checks);
        let linux = checks.iter().find(|c| c.name == "linux_guest").unwrap();
        assert_eq!(linux.status, Status::Missing);
        assert!(
            linux
                .advice
                .as_deref()
                .unwrap()
                .contains("isolab testhost run"),
            "{linux:?}"
        );
    }

    #[test]
    fn failed_probe_is_reported_not_hidden() {
        let k = kvm_report(pvm_facts(), Some(12), Some(Err("boom".into())));
        assert!(!k.tiny_guest && !k.linux_guest);
        let mut checks = Vec::new();
        kvm_checks(&k, &mut checks);
        assert!(
            checks
                .iter()
                .any(|c| c.name == "kvm.probes" && c.detail.contains("boom"))
        );
    }

    #[test]
    fn render_puts_advice_under_missing_lines() {
        let r = DoctorReport {
            schema_version: DOCTOR_SCHEMA_VERSION,
            isolab_version: "0".into(),
            root: true,
            kernel: "6.1".into(),
            kvm: kvm_report(pvm_facts(), Some(12), None),
            cgroup: CgroupReport {
                mode: CgroupMode::None,
                controllers: vec![],
            },
            namespaces: vec![],
            unprivileged_userns: true,
            thp: None,
            emulated: None,
            peers: vec![],
            checks: vec![Check {
                name: "x".into(),
                status: Status::Missing,
                detail: "gone".into(),
                advice: Some("fix it".into()),
            }],
        };
        let text = render(&r);
        assert!(text.contains("MISSING  x  gone"));
        assert!(text.contains("→ fix it"));
    }
}
