//! The headline metrics every report and the `compare` table show, in order,
//! with what each one means and the published reference points.

/// A headline metric: where to find it in a results file and how to explain it.
#[derive(Debug, Clone, Copy)]
pub struct Headline {
    /// Stable identifier (used in JSON and chart file names).
    pub id: &'static str,
    /// Row title.
    pub title: &'static str,
    /// Probe in the results file.
    pub probe: &'static str,
    /// Metric in the results file.
    pub metric: &'static str,
    /// Mechanism behind the differences, for the "what this shows" section.
    pub explains: &'static str,
    /// Published reference point to hold this host's numbers against, if any.
    pub reference: Option<&'static str>,
}

/// The headline rows, in table order.
pub const HEADLINES: [Headline; 10] = [
    Headline {
        id: "boot",
        title: "boot time",
        probe: "boot",
        metric: "total_ms",
        explains: "Time from asking for a run to the workload's ready marker. Native pays only for fork and exec; \
                   a container adds namespaces, a root filesystem and cgroups; a VM adds the VMM, guest memory set-up \
                   and, for a Linux guest, a whole kernel boot.",
        reference: Some("Firecracker's published target is ≤ 125 ms from API call to guest init."),
    },
    Headline {
        id: "idle_memory",
        title: "idle memory",
        probe: "memory",
        metric: "idle_peak_rss_mib",
        explains: "Peak resident memory of the host-side processes while the workload idles. A container's workload \
                   is an ordinary process, so only the runtime is added; a VM adds the VMM and every guest page the \
                   guest touched.",
        reference: Some("Firecracker's published target is ≤ 5 MiB of VMM overhead per micro VM."),
    },
    Headline {
        id: "cpu",
        title: "CPU (SHA-256)",
        probe: "cpu",
        metric: "ops_per_s",
        explains: "Pure computation never leaves user mode, so neither namespaces nor hardware virtualization should \
                   change it: any difference is noise or frequency scaling.",
        reference: Some(
            "Felter et al. 2014: CPU-bound work (LINPACK) runs at native speed in both Docker and KVM.",
        ),
    },
    Headline {
        id: "syscall",
        title: "syscall / VM exit",
        probe: "syscall",
        metric: "round_trip_ns",
        explains: "Natively and in a container this is one system call (containers share the host kernel, so the cost \
                   is the same); in the tiny VM it is a VM exit to the VMM and back, which costs far more.",
        reference: None,
    },
    Headline {
        id: "mem_bw",
        title: "mem bandwidth",
        probe: "mem",
        metric: "copy_gb_per_s",
        explains: "STREAM copy: once pages are mapped, memory bandwidth is the hardware's, whatever the isolation.",
        reference: Some(
            "Felter et al. 2014: STREAM bandwidth is the same natively, in Docker and in KVM.",
        ),
    },
    Headline {
        id: "first_touch",
        title: "first touch",
        probe: "mem",
        metric: "first_touch_ns_per_page",
        explains: "The first write to each page takes a page fault. In a VM with two-level paging the fault may also \
                   populate the host's mapping of guest memory (an EPT/NPT violation handled by the host). \
                   The tiny guest maps all its RAM at boot and takes no page faults of its own, so only the \
                   host's side (if any) remains.",
        reference: None,
    },
    Headline {
        id: "seq_write",
        title: "seq write",
        probe: "io",
        metric: "seq_write_mb_per_s",
        explains: "Sequential writes. Natively and in a container they reach the host's filesystem directly (same \
                   kernel, same page cache); in a VM each request crosses virtio-blk and the VMM.",
        reference: None,
    },
    Headline {
        id: "seq_read",
        title: "seq read",
        probe: "io",
        metric: "seq_read_mb_per_s",
        explains: "Sequential reads. Whether the page cache was bypassed (`direct`) or not (`buffered`) matters more \
                   than the isolation: a buffered read measures memory, not the disk.",
        reference: None,
    },
    Headline {
        id: "rand_read",
        title: "random read",
        probe: "io",
        metric: "rand_read_iops",
        explains: "Random 4 KiB reads are dominated by per-request cost, which is where a VM's exits and the VMM's \
                   emulation show most.",
        reference: Some(
            "Felter et al. 2014: Docker ≈ native; KVM delivered about half the random-read IOPS.",
        ),
    },
    Headline {
        id: "fsync",
        title: "fsync (p50)",
        probe: "io",
        metric: "fsync_p50_us",
        explains: "Latency of making one page durable: a flush to the host's storage, plus a VM exit and a host \
                   fsync for a VM.",
        reference: None,
    },
];

/// The reference papers the report names.
pub const REFERENCES: [&str; 2] = [
    "W. Felter, A. Ferreira, R. Rajamony, J. Rubio: An Updated Performance Comparison of Virtual Machines and Linux Containers, IBM Research Report RC25482, 2014 (and ISPASS 2015).",
    "A. Agache et al.: Firecracker: Lightweight Virtualization for Serverless Applications, NSDI 2020.",
];

/// The isolation subjects, in column order.
pub const ISOLATIONS: [&str; 4] = ["native", "container", "vm-tiny", "vm-linux"];

/// Why `subject`'s value of `probe`/`metric` is not like for like with
/// native's (marked † wherever it is shown), if it is not. `kind` and
/// `native_kind` are the variants measured (`vmexit` against `syscall`).
pub fn caveat(
    subject: &str,
    probe: &str,
    metric: &str,
    kind: Option<&str>,
    native_kind: Option<&str>,
) -> Option<String> {
    let fixed = match (subject, probe, metric) {
        ("vm-tiny", "boot", _) => {
            Some("the tiny guest has no OS: its \"boot\" is VMM set-up and a jump to the workload")
        }
        ("vm-tiny" | "qemu-microvm", "start", _) => {
            Some("boots the OS-less tiny guest, not a Linux kernel")
        }
        ("vm-tiny", "mem", "first_touch_ns_per_page") => {
            Some("the tiny guest's RAM is mapped at boot, so it takes no page faults of its own")
        }
        _ => None,
    };
    if let Some(why) = fixed {
        return Some(format!("{subject} {probe}: {why}"));
    }
    if subject == "native" || kind == native_kind || native_kind.is_none() {
        return None;
    }
    let kind = kind.unwrap_or("?");
    let what = match kind {
        "vmexit" => "a VM exit to the VMM and back, not a system call".to_string(),
        "buffered" => "through the host page cache, which native bypasses".to_string(),
        other => format!("`{other}` against native `{}`", native_kind.unwrap_or("?")),
    };
    Some(format!("{subject} {probe}: {what}"))
}
