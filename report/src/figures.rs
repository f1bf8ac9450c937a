//! Which charts a report has, built from the results: the isolation
//! spectrum, one samples chart per headline metric, boot and memory
//! breakdowns, the start-time distributions, I/O relative to native (higher-
//! and lower-is-better apart) and start latency against peers.
//!
//! Subjects are whatever the results hold (isolations and any peer), so a
//! new peer appears in every chart with its own colour without changes here.

use bench::results::{Better, Metric, Results};

use crate::catalog::{self, HEADLINES, Headline};
use crate::charts::{Annotation, Chart, ChartKind, Group, Line, Point, RefPoint, Slot, StackBar};
use crate::content::{headline_ratio, subjects_present};

/// Firecracker's published boot target, in ms (NSDI 2020).
pub const FIRECRACKER_BOOT_MS: f64 = 125.0;
/// Firecracker's published VMM memory overhead target, in MiB.
pub const FIRECRACKER_OVERHEAD_MIB: f64 = 5.0;

/// Chart descriptions for the results (stems are unique file names). Real
/// and emulated hosts never share a chart: with both, only the real ones
/// are drawn; charts of emulated hosts alone say so in their titles.
pub fn charts(all: &[Results]) -> Vec<Chart> {
    let real: Vec<Results> = all
        .iter()
        .filter(|r| r.environment.emulated.is_none())
        .cloned()
        .collect();
    if real.is_empty() {
        let mut out = charts_of(all);
        for c in &mut out {
            c.title.push_str(" — emulated host");
            c.y_label = crate::compare::emulated_unit(&c.y_label, true);
        }
        return out;
    }
    charts_of(&real)
}

fn charts_of(all: &[Results]) -> Vec<Chart> {
    let mut out: Vec<Chart> = spectrum(all).into_iter().collect();
    for h in &HEADLINES {
        out.extend(headline(all, h));
        if h.id == "boot" {
            out.extend(boot_breakdown(all));
            out.extend(start_ecdf(all));
        }
        if h.id == "idle_memory" {
            out.extend(memory_breakdown(all));
        }
    }
    out.extend(io_ratios(all));
    out.extend(fsync_ratio(all));
    out.extend(start_latency(all));
    out
}

/// `label: subject` when several files are drawn, else the subject.
fn name(all: &[Results], r: &Results, subject: &str) -> String {
    if all.len() > 1 {
        format!("{}: {subject}", r.label)
    } else {
        subject.to_string()
    }
}

/// The † reason of `m`, against native's variant of the same metric.
fn caveat_of(r: &Results, m: &Metric) -> Option<String> {
    let native_kind = r
        .metric("native", &m.probe, &m.metric, None)
        .and_then(|n| n.kind.as_deref());
    catalog::caveat(
        &m.subject,
        &m.probe,
        &m.metric,
        m.kind.as_deref(),
        native_kind,
    )
}

/// Notes under a chart: each distinct † reason once.
fn dagger_notes(reasons: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in reasons {
        let line = format!("† {r}");
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// One group per subject measured in `probe`/`metric`, one slot per file.
fn groups_of(all: &[Results], probe: &str, metric: &str) -> (Vec<Group>, Vec<String>) {
    let mut reasons = Vec::new();
    let mut groups = Vec::new();
    for subject in subjects_present(all) {
        let slots: Vec<Slot> = all
            .iter()
            .filter_map(|r| {
                let m = r.metric(&subject, probe, metric, None)?;
                let why = caveat_of(r, m);
                reasons.extend(why.clone());
                Some(Slot {
                    subject: subject.clone(),
                    label: if all.len() > 1 {
                        r.label.clone()
                    } else {
                        String::new()
                    },
                    samples: m.samples.clone(),
                    median: m.summary.median,
                    dagger: why.is_some(),
                })
            })
            .collect();
        if !slots.is_empty() {
            groups.push(Group {
                label: subject,
                slots,
            });
        }
    }
    (groups, reasons)
}

fn better_word(better: Better) -> &'static str {
    match better {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    }
}

fn headline(all: &[Results], h: &Headline) -> Option<Chart> {
    let first = all
        .iter()
        .find_map(|r| r.metrics.iter().find(|m| m.is(h.probe, h.metric, None)))?;
    let (groups, reasons) = groups_of(all, h.probe, h.metric);
    let annotations = match h.id {
        "boot" => vec![Annotation {
            value: FIRECRACKER_BOOT_MS,
            label: "Firecracker's published boot target ≤125 ms".into(),
            group: None,
        }],
        "idle_memory" => vec![Annotation {
            value: FIRECRACKER_OVERHEAD_MIB,
            label: "Firecracker's published VMM overhead target ≤5 MiB".into(),
            group: None,
        }],
        _ => Vec::new(),
    };
    Some(Chart {
        name: h.id.to_string(),
        title: format!("{} ({})", h.title, better_word(first.better)),
        y_label: first.unit.clone(),
        kind: ChartKind::Samples {
            groups,
            baseline: None,
            annotations,
        },
        notes: dagger_notes(reasons),
        notice: h.explains.to_string(),
    })
}

/// Start time of a subject: its `start` probe where measured (the same
/// `/bin/true` or tiny image for isolab and peers), else its boot to ready.
fn start_metric<'a>(r: &'a Results, subject: &str) -> Option<&'a Metric> {
    r.metric(subject, "start", "wall_ms", None)
        .or_else(|| r.metric(subject, "boot", "total_ms", None))
}

/// Steady-state slowdown against native: the geometric mean over CPU,
/// memory bandwidth and syscall of how many times worse than native (1 =
/// native), from the paired ratios. `None` when none was measured.
fn slowdown(r: &Results, subject: &str) -> Option<(f64, bool)> {
    if subject == "native" {
        return Some((1.0, false));
    }
    let mut logs = Vec::new();
    let mut dagger = false;
    for h in HEADLINES
        .iter()
        .filter(|h| ["cpu", "mem_bw", "syscall"].contains(&h.id))
    {
        let Some(x) = headline_ratio(r, h, subject) else {
            continue;
        };
        dagger |= x.denominator_kind.is_some();
        let worse = match x.better {
            Better::Higher => 1.0 / x.summary.median,
            Better::Lower => x.summary.median,
        };
        if worse.is_finite() && worse > 0.0 {
            logs.push(worse.ln());
        }
    }
    (!logs.is_empty()).then(|| ((logs.iter().sum::<f64>() / logs.len() as f64).exp(), dagger))
}

fn spectrum(all: &[Results]) -> Option<Chart> {
    let mut points = Vec::new();
    let mut reasons = Vec::new();
    for r in all {
        for subject in subjects_present(std::slice::from_ref(r)) {
            let Some(m) = start_metric(r, &subject) else {
                continue;
            };
            let slow = slowdown(r, &subject);
            let why = caveat_of(r, m);
            if slow.is_some_and(|s| s.1) {
                reasons.push(format!(
                    "{subject} overhead: its syscall figure is a VM exit, not a system call"
                ));
            }
            reasons.extend(why.clone());
            points.push(Point {
                label: name(all, r, &subject),
                subject,
                x: m.summary.median,
                y: slow.map(|s| s.0),
                dagger: why.is_some() || slow.is_some_and(|s| s.1),
            });
        }
    }
    if points.is_empty() {
        return None;
    }
    let linux_measured = all.iter().any(|r| {
        r.environment.emulated.is_none() && r.metric("vm-linux", "boot", "total_ms", None).is_some()
    });
    let mut notes = dagger_notes(reasons);
    let mut references = Vec::new();
    if !linux_measured {
        notes.push(
            "The Linux VM was not measured on hardware here; Firecracker's published boot is shown instead."
                .into(),
        );
        references.push(RefPoint {
            label: "Firecracker Linux VM ≤125 ms (published, not measured here)".into(),
            x: FIRECRACKER_BOOT_MS,
        });
    }
    Some(Chart {
        name: "spectrum".into(),
        title: "The isolation spectrum: start time against steady-state overhead".into(),
        y_label: "slowdown vs native (CPU, mem, syscall)".into(),
        kind: ChartKind::Spectrum {
            x_unit: "start time, ms".into(),
            points,
            references,
        },
        notes,
        notice: "Left is faster to start, low is closer to native once running. Containers sit \
                 beside native on both axes: they are ordinary processes of the host kernel, so \
                 only their set-up (namespaces, root filesystem, cgroups) costs time. A VM pays \
                 for its VMM and guest at start and for every exit to the VMM while it runs \
                 (the syscall probe becomes a VM exit); CPU work and memory bandwidth stay \
                 native. Start time is each subject's `start` probe (`/bin/true`, or the tiny \
                 image for VMMs) where measured, else its boot to the ready marker; peers \
                 measured only at start sit on the bottom edge."
            .into(),
    })
}

fn boot_breakdown(all: &[Results]) -> Option<Chart> {
    let mut bars = Vec::new();
    let mut reasons = Vec::new();
    for r in all {
        for subject in subjects_present(std::slice::from_ref(r)) {
            let Some(total) = r.metric(&subject, "boot", "total_ms", None) else {
                continue;
            };
            let part = |metric: &str| {
                r.metric(&subject, "boot", metric, None)
                    .map(|m| m.summary.median)
            };
            let (setup, kernel) = (part("setup_ms"), part("kernel_ms"));
            let rest = total.summary.median - setup.unwrap_or(0.0) - kernel.unwrap_or(0.0);
            let why = caveat_of(r, total);
            reasons.extend(why.clone());
            bars.push(StackBar {
                label: name(all, r, &subject),
                subject,
                parts: vec![setup, kernel, Some(rest.max(0.0))],
                dagger: why.is_some(),
            });
        }
    }
    if bars.is_empty() {
        return None;
    }
    Some(Chart {
        name: "boot_breakdown".into(),
        title: "Where boot time goes (medians)".into(),
        y_label: "ms".into(),
        kind: ChartKind::Stacked {
            parts: [
                "runtime / VMM set-up",
                "guest kernel",
                "until the ready marker",
            ]
            .map(String::from)
            .to_vec(),
            bars,
        },
        notes: dagger_notes(reasons),
        notice: "A container's time is set-up (namespaces, mounts, cgroups) before exec; a VM's \
                 is the VMM building the guest and, for a Linux guest, the guest kernel booting \
                 — usually the largest part. The tiny guest has no kernel, so its bar is set-up \
                 only."
            .into(),
    })
}

fn start_ecdf(all: &[Results]) -> Option<Chart> {
    let mut lines = Vec::new();
    let mut reasons = Vec::new();
    for r in all {
        for subject in subjects_present(std::slice::from_ref(r)) {
            for (probe, metric, what, dashed) in [
                ("boot", "total_ms", "boot", false),
                ("start", "wall_ms", "start", true),
            ] {
                if let Some(m) = r.metric(&subject, probe, metric, None) {
                    let why = caveat_of(r, m);
                    reasons.extend(why.clone());
                    lines.push(Line {
                        label: format!("{} {what}", name(all, r, &subject)),
                        subject: subject.clone(),
                        samples: m.samples.clone(),
                        dashed,
                        dagger: why.is_some(),
                    });
                }
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    Some(Chart {
        name: "start_ecdf".into(),
        title: "Distribution of boot and start times".into(),
        y_label: "share of runs at or below".into(),
        kind: ChartKind::Ecdf {
            lines,
            x_unit: "ms".into(),
        },
        notes: dagger_notes(reasons),
        notice: "Each line climbs by one step per run: a steep line is a predictable start, a \
                 long tail to the right is the occasional slow one a median hides. Solid lines \
                 are boot to the workload's ready marker; dashed lines are the whole start of \
                 `/bin/true` (or the tiny image for VMMs), the measure the peers share."
            .into(),
    })
}

fn memory_breakdown(all: &[Results]) -> Option<Chart> {
    let mut bars = Vec::new();
    for r in all {
        for subject in subjects_present(std::slice::from_ref(r)) {
            let get = |metric: &str| {
                r.metric(&subject, "memory", metric, None)
                    .map(|m| m.summary.median)
            };
            let (overhead, touched) = (get("overhead_mib"), get("guest_touched_mib"));
            let workload = if overhead.is_some() || touched.is_some() {
                None
            } else {
                get("idle_peak_rss_mib")
            };
            if overhead.is_none() && touched.is_none() && workload.is_none() {
                continue;
            }
            bars.push(StackBar {
                label: name(all, r, &subject),
                subject,
                parts: vec![overhead, touched, workload],
                dagger: false,
            });
        }
    }
    if bars.is_empty() {
        return None;
    }
    Some(Chart {
        name: "memory_breakdown".into(),
        title: "What idle memory is made of (medians)".into(),
        y_label: "MiB".into(),
        kind: ChartKind::Stacked {
            parts: [
                "VMM overhead",
                "guest RAM touched (guest kernel + workload)",
                "workload process (peak RSS)",
            ]
            .map(String::from)
            .to_vec(),
            bars,
        },
        notes: vec![
            "Not measured: the container runtime's own process; the guest kernel apart from the workload inside a VM."
                .into(),
        ],
        notice: "Natively and in a container the workload is an ordinary process: its resident \
                 memory is all there is to count (the runtime that set the container up is not \
                 measured). A VM adds the VMM's own memory and every guest page the guest has \
                 touched — its kernel and the workload together, which the host cannot tell apart."
            .into(),
    })
}

/// Per-round ratios `num/den`, paired by round.
fn paired(num: &Metric, den: &Metric) -> Vec<f64> {
    num.pairs()
        .iter()
        .filter_map(|(round, v)| {
            den.pairs()
                .iter()
                .find(|(r, _)| r == round)
                .map(|(_, d)| v / d)
        })
        .filter(|x| x.is_finite())
        .collect()
}

/// A ratio-to-native chart of the headlines `ids`: one group per metric,
/// one slot per subject (and file).
fn ratio_groups(all: &[Results], ids: &[&str]) -> (Vec<Group>, Vec<String>) {
    let mut groups = Vec::new();
    let mut reasons = Vec::new();
    for h in HEADLINES.iter().filter(|h| ids.contains(&h.id)) {
        let mut slots = Vec::new();
        for r in all {
            for subject in subjects_present(std::slice::from_ref(r)) {
                let (Some(x), Some(m), Some(n)) = (
                    headline_ratio(r, h, &subject),
                    r.metric(&subject, h.probe, h.metric, None),
                    r.metric("native", h.probe, h.metric, None),
                ) else {
                    continue;
                };
                let why = caveat_of(r, m);
                reasons.extend(why.clone());
                slots.push(Slot {
                    label: name(all, r, &subject),
                    subject,
                    samples: paired(m, n),
                    median: x.summary.median,
                    dagger: why.is_some(),
                });
            }
        }
        if !slots.is_empty() {
            groups.push(Group {
                label: h.title.to_string(),
                slots,
            });
        }
    }
    (groups, reasons)
}

fn io_ratios(all: &[Results]) -> Option<Chart> {
    let (groups, reasons) = ratio_groups(all, &["seq_write", "seq_read", "rand_read"]);
    if groups.is_empty() {
        return None;
    }
    let rand = groups.iter().position(|g| g.label == "random read");
    Some(Chart {
        name: "io_ratios".into(),
        title: "I/O throughput relative to native (higher is better)".into(),
        y_label: "ratio to native".into(),
        kind: ChartKind::Samples {
            groups,
            baseline: Some(Annotation {
                value: 1.0,
                label: "native = 1".into(),
                group: None,
            }),
            annotations: rand
                .map(|g| Annotation {
                    value: 0.5,
                    label: "Felter 2014: KVM ≈ 0.5×".into(),
                    group: Some(g),
                })
                .into_iter()
                .collect(),
        },
        notes: dagger_notes(reasons),
        notice: "Above 1 is faster than native. A container reaches the host's filesystem \
                 directly, so its ratios sit at 1; a VM's every request crosses virtio-blk and \
                 the VMM, which shows most on small random reads (per-request cost). A VM whose \
                 disk goes through the host page cache can even beat native's direct I/O: that \
                 is the cache, not the VM."
            .into(),
    })
}

fn fsync_ratio(all: &[Results]) -> Option<Chart> {
    let (groups, reasons) = ratio_groups(all, &["fsync"]);
    if groups.is_empty() {
        return None;
    }
    Some(Chart {
        name: "fsync_ratio".into(),
        title: "fsync latency relative to native (lower is better)".into(),
        y_label: "ratio to native".into(),
        kind: ChartKind::Samples {
            groups,
            baseline: Some(Annotation {
                value: 1.0,
                label: "native = 1".into(),
                group: None,
            }),
            annotations: Vec::new(),
        },
        notes: dagger_notes(reasons),
        notice: "Below 1 is faster than native. Making a page durable costs a flush to the \
                 host's storage; a VM adds an exit and the VMM's own fsync. A ratio far below 1 \
                 means the flush never reached a disk (a page-cache-backed guest disk)."
            .into(),
    })
}

fn start_latency(all: &[Results]) -> Option<Chart> {
    let (groups, reasons) = groups_of(all, "start", "wall_ms");
    if groups.is_empty() {
        return None;
    }
    Some(Chart {
        name: "start_latency".into(),
        title: "Start latency: isolab against peers (lower is better)".into(),
        y_label: "ms".into(),
        kind: ChartKind::Samples {
            groups,
            baseline: None,
            annotations: Vec::new(),
        },
        notes: dagger_notes(reasons),
        notice: "Whole-process wall time to start `/bin/true` in the same busybox root \
                 filesystem (container runtimes) or to boot the same tiny guest image and exit \
                 (VMMs), measured in the same interleaved rounds. Runtimes that fork a shim or \
                 parse a bundle pay for it here."
            .into(),
    })
}
