//! What the report says: builds the [`Document`] from one or more results files.

use super::catalog::{HEADLINES, Headline, ISOLATIONS, REFERENCES};
use super::charts::{Bar, Chart, ChartKind, Reference, Series};
use super::document::Document;
use bench::results::{Better, Ratio, Results, Status};
use bench::stats::Summary;

mod network;

/// Formats a summary as `median [low–high]`, with three significant digits.
pub fn fmt_summary(s: &Summary) -> String {
    format!("{} [{}–{}]", num(s.median), num(s.ci_low), num(s.ci_high))
}

/// Formats a ratio as `1.02× [0.99–1.05]`.
pub fn fmt_ratio(s: &Summary) -> String {
    format!("{}× [{}–{}]", num(s.median), num(s.ci_low), num(s.ci_high))
}

/// Three significant digits, no exponent for everyday magnitudes.
pub fn num(v: f64) -> String {
    super::charts::short_number(v)
}

/// Isolations present in any of the files, in column order.
pub fn isolations_present(all: &[Results]) -> Vec<&'static str> {
    ISOLATIONS
        .into_iter()
        .filter(|iso| {
            all.iter()
                .any(|r| r.metrics.iter().any(|m| m.subject == *iso))
        })
        .collect()
}

/// The ratio of `subject` to native for a headline, if computed.
pub fn headline_ratio<'a>(r: &'a Results, h: &Headline, subject: &str) -> Option<&'a Ratio> {
    r.ratio(subject, "native", h.probe, h.metric, None)
}

/// Plain words for a ratio: "about the same", "1.8× slower"…
pub fn judge(ratio: &Ratio) -> String {
    let s = &ratio.summary;
    if s.ci_low <= 1.0 && 1.0 <= s.ci_high {
        return if s.ci_low > 0.0 && s.ci_high / s.ci_low > 1.5 {
            "indistinguishable from native, but the interval is wide: more rounds would narrow it"
                .into()
        } else {
            "indistinguishable from native at this sample size".into()
        };
    }
    let worse = match ratio.better {
        Better::Higher => s.median < 1.0,
        Better::Lower => s.median > 1.0,
    };
    let factor = if s.median >= 1.0 {
        s.median
    } else {
        1.0 / s.median
    };
    let size = if factor < 1.1 {
        format!("{:.0}%", (factor - 1.0) * 100.0)
    } else {
        format!("{}×", num(factor))
    };
    format!(
        "{size} {} than native",
        if worse { "worse" } else { "better" }
    )
}

/// Directory, relative to the report, holding the chart files.
pub const CHART_DIR: &str = "charts";

/// Builds the whole report from the results and the rendered charts (with their SVG source).
pub fn build(all: &[Results], charts: &[(Chart, String)]) -> Document {
    let mut doc = Document::default();
    doc.heading(1, "isolab report: native vs container vs micro VM");
    let labels: Vec<String> = all
        .iter()
        .map(|r| format!("`{}` ({})", r.label, r.created))
        .collect();
    doc.para(format!(
        "One workload, run natively, in isolab's container runtime and in isolab's KVM micro VM, \
         measured in interleaved rounds on the same host. Results: {}. Every number is the median \
         with its 95% confidence interval in brackets and the number of runs (n); ratios are computed \
         per round from paired samples, so slow drift of the host affects both sides equally.",
        labels.join(", ")
    ));
    // Emulated times never stand beside real ones: each kind gets its own
    // summary (and agreement) section; a lone kind is the whole report.
    let (real, emulated): (Vec<Results>, Vec<Results>) = all
        .iter()
        .cloned()
        .partition(|r| r.environment.emulated.is_none());
    for r in &emulated {
        doc.para(format!(
            "**Emulated host** `{}` ({}): every time and rate of this run was measured under \
             emulation — each instruction of the host, and so of its guests, emulated by QEMU's \
             TCG. It shows what works, not how fast, and its numbers are kept apart from real \
             hosts' below.",
            r.label,
            r.environment.emulated.as_deref().unwrap_or("")
        ));
    }
    for group in [&real, &emulated] {
        if group.is_empty() {
            continue;
        }
        if !real.is_empty() && !emulated.is_empty() && std::ptr::eq(group, &emulated) {
            doc.heading(2, "Emulated hosts (not comparable with the hosts above)");
        }
        summary_section(&mut doc, group);
        if group.len() > 1 {
            agreement_section(&mut doc, group);
        }
    }
    not_measured_section(&mut doc, all);
    if !charts.is_empty() {
        doc.heading(2, "Charts");
        doc.para(
            "Bars are medians; black whiskers are 95% confidence intervals for the median. \
             Numbers above the bars are the medians.",
        );
        for (chart, svg) in charts {
            doc.blocks.push(super::document::Block::Chart {
                title: chart.title.clone(),
                svg: svg.clone(),
                svg_file: format!("{CHART_DIR}/{}.svg", chart.name),
                png_file: format!("{CHART_DIR}/{}.png", chart.name),
            });
        }
    }
    peers_section(&mut doc, all);
    network::section(&mut doc, all);
    explain_section(&mut doc, all);
    for r in all {
        environment_section(&mut doc, r, all.len() > 1);
    }
    details_section(&mut doc, all);
    method_section(&mut doc, all);
    doc.heading(2, "References");
    doc.list(REFERENCES.iter().map(|s| s.to_string()).collect());
    doc
}

fn summary_section(doc: &mut Document, all: &[Results]) {
    let isos = isolations_present(all);
    doc.heading(2, "Summary");
    if let [r] = all {
        doc.para(format!(
            "Host `{}`: median [95% CI] per isolation, and ratio to native.",
            r.label
        ));
        let mut header = vec!["metric".to_string(), "unit".to_string()];
        for iso in &isos {
            header.push(iso.to_string());
            if *iso != "native" {
                header.push(format!("{iso}/native"));
            }
        }
        let emulated = r.environment.emulated.is_some();
        let mut rows = Vec::new();
        for h in &HEADLINES {
            let mut unit = String::new();
            let mut cells = Vec::new();
            for iso in &isos {
                let m = r.metric(iso, h.probe, h.metric, None);
                if let Some(m) = m {
                    unit = crate::compare::emulated_unit(&m.unit, emulated);
                }
                cells.push(
                    m.map(|m| format!("{} (n={})", fmt_summary(&m.summary), m.summary.n))
                        .unwrap_or("–".into()),
                );
                if *iso != "native" {
                    cells.push(
                        headline_ratio(r, h, iso)
                            .map(|x| fmt_ratio(&x.summary))
                            .unwrap_or("–".into()),
                    );
                }
            }
            if cells.iter().any(|c| c != "–") {
                let mut row = vec![h.title.to_string(), unit];
                row.extend(cells);
                rows.push(row);
            }
        }
        doc.table(header, rows, 2);
    } else {
        doc.para(
            "Several hosts side by side: the ratio to native on each host (median [95% CI]). \
             Ratios travel between machines better than absolute numbers do.",
        );
        let mut header = vec!["metric".to_string()];
        for r in all {
            for iso in isos.iter().filter(|i| **i != "native") {
                header.push(format!("{}: {iso}/native", r.label));
            }
        }
        let mut rows = Vec::new();
        for h in &HEADLINES {
            let mut row = vec![h.title.to_string()];
            for r in all {
                for iso in isos.iter().filter(|i| **i != "native") {
                    row.push(
                        headline_ratio(r, h, iso)
                            .map(|x| fmt_ratio(&x.summary))
                            .unwrap_or("–".into()),
                    );
                }
            }
            if row.iter().skip(1).any(|c| c != "–") {
                rows.push(row);
            }
        }
        doc.table(header, rows, 1);
    }
}

/// Whether the ratios of several runs agree: their confidence intervals overlap.
/// Run-to-run noise is shown, not hidden.
fn agreement_section(doc: &mut Document, all: &[Results]) {
    let first = &all[0];
    let mut rows = Vec::new();
    for h in &HEADLINES {
        for iso in ISOLATIONS.iter().filter(|i| **i != "native") {
            let ratios: Vec<Option<&Ratio>> =
                all.iter().map(|r| headline_ratio(r, h, iso)).collect();
            let present: Vec<&Ratio> = ratios.iter().flatten().copied().collect();
            if present.len() < 2 {
                continue;
            }
            let overlap = present
                .iter()
                .all(|a| present.iter().all(|b| a.summary.overlaps(&b.summary)));
            let mut row = vec![format!("{} {iso}/native", h.title)];
            row.extend(
                ratios
                    .iter()
                    .map(|x| x.map(|x| fmt_ratio(&x.summary)).unwrap_or("–".into())),
            );
            row.push(
                if overlap {
                    "yes: intervals overlap"
                } else {
                    "no: intervals are disjoint"
                }
                .into(),
            );
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return;
    }
    doc.heading(2, "Do the runs agree?");
    doc.para(format!(
        "Each ratio to native per results file; the runs agree on a ratio when their 95% intervals overlap. \
         Disagreement between machines is expected (different hardware); between two runs on one machine \
         (`{}` …) it means the noise is larger than the intervals admit.",
        first.label
    ));
    let mut header = vec!["ratio".to_string()];
    header.extend(all.iter().map(|r| r.label.clone()));
    header.push("agree?".into());
    doc.table(header, rows, 1);
}

fn not_measured_section(doc: &mut Document, all: &[Results]) {
    let mut items = Vec::new();
    for r in all {
        for s in r
            .subjects
            .iter()
            .filter(|s| s.status != Status::Measured || s.reason.is_some())
        {
            let what = match s.status {
                Status::Missing => "not installed",
                Status::Unsupported => "not possible on this host",
                Status::Failed => "tried and failed",
                Status::Measured => "partly measured",
            };
            items.push(format!(
                "{}{} ({}, {what}): {}",
                if all.len() > 1 {
                    format!("`{}`: ", r.label)
                } else {
                    String::new()
                },
                s.name,
                s.role,
                s.reason.as_deref().unwrap_or("no reason recorded")
            ));
        }
        for n in &r.notes {
            let prefix = if all.len() > 1 {
                format!("`{}`: ", r.label)
            } else {
                String::new()
            };
            items.push(format!("{prefix}{n}"));
        }
    }
    doc.heading(2, "What could not be measured here, and why");
    if items.is_empty() {
        doc.para("Everything isolab knows how to measure was measured.");
    } else {
        doc.list(items);
    }
}

fn peers_section(doc: &mut Document, all: &[Results]) {
    let mut rows = Vec::new();
    for r in all {
        for m in r.metrics.iter().filter(|m| m.probe == "start") {
            let versus: Vec<String> = r
                .ratios
                .iter()
                .filter(|x| x.probe == "start" && x.numerator == m.subject)
                .map(|x| format!("{} vs {}", fmt_ratio(&x.summary), x.denominator))
                .collect();
            let version = r
                .subjects
                .iter()
                .find(|s| s.name == m.subject)
                .and_then(|s| s.version.clone());
            rows.push(vec![
                r.label.clone(),
                m.subject.clone(),
                version.unwrap_or_else(|| "isolab".into()),
                format!("{} {} (n={})", fmt_summary(&m.summary), m.unit, m.summary.n),
                versus.join("; "),
            ]);
        }
    }
    if rows.is_empty() {
        return;
    }
    doc.heading(2, "Start latency against peers");
    doc.para(
        "Whole-process wall time to start `/bin/true` (containers: same busybox root filesystem for every \
         runtime) or to boot the same tiny guest image and exit (VMMs), measured in the same interleaved rounds.",
    );
    doc.table(
        vec![
            "host".into(),
            "subject".into(),
            "version".into(),
            "start (median [CI])".into(),
            "ours/peer".into(),
        ],
        rows,
        3,
    );
}

fn explain_section(doc: &mut Document, all: &[Results]) {
    doc.heading(2, "What this shows");
    for h in &HEADLINES {
        let measured = all
            .iter()
            .any(|r| r.metrics.iter().any(|m| m.is(h.probe, h.metric, None)));
        if !measured {
            continue;
        }
        doc.heading(3, h.title);
        doc.para(h.explains);
        let mut found = Vec::new();
        for r in all {
            for iso in ISOLATIONS.iter().filter(|i| **i != "native") {
                if let Some(x) = headline_ratio(r, h, iso) {
                    let kinds = match (&x.kind, &x.denominator_kind) {
                        (Some(a), Some(b)) => {
                            format!(" (`{a}` against native `{b}`: not like for like)")
                        }
                        _ => String::new(),
                    };
                    found.push(format!(
                        "{}{iso}/native = {}: {}{kinds}.",
                        if all.len() > 1 {
                            format!("`{}` ", r.label)
                        } else {
                            String::new()
                        },
                        fmt_ratio(&x.summary),
                        judge(x)
                    ));
                }
            }
        }
        doc.list(found);
        if let Some(reference) = h.reference {
            let verdicts: Vec<String> = all.iter().filter_map(|r| agreement(h, r)).collect();
            let mut text = format!("Published reference: {reference}");
            if !verdicts.is_empty() {
                text.push_str(" This host: ");
                text.push_str(&verdicts.join(" "));
            }
            doc.para(text);
        }
    }
}

/// Where this host agrees with the published reference point, in words.
fn agreement(h: &Headline, r: &Results) -> Option<String> {
    let prefix = format!("`{}`", r.label);
    let vm = ["vm-linux", "vm-tiny"]
        .into_iter()
        .find(|v| r.metric(v, h.probe, h.metric, None).is_some());
    match h.id {
        "boot" => {
            let v = vm?;
            let m = r.metric(v, h.probe, h.metric, None)?;
            let within = m.summary.ci_high <= 125.0;
            Some(format!(
                "{prefix} {v} boots in {} ms, {} the 125 ms target{}.",
                num(m.summary.median),
                if within { "within" } else { "above" },
                if v == "vm-tiny" {
                    " (but the tiny guest has no kernel to boot, unlike Firecracker's Linux guest)"
                } else {
                    ""
                }
            ))
        }
        "idle_memory" => {
            let v = vm?;
            let m = r.metric(v, "memory", "overhead_mib", None)?;
            Some(format!(
                "{prefix} {v}: VMM overhead {} MiB, {} the 5 MiB target.",
                num(m.summary.median),
                if m.summary.ci_high <= 5.0 {
                    "within"
                } else {
                    "above"
                }
            ))
        }
        "cpu" | "mem_bw" | "rand_read" => {
            let mut parts = Vec::new();
            for iso in ["container", "vm-tiny", "vm-linux"] {
                if let Some(x) = headline_ratio(r, h, iso) {
                    let s = &x.summary;
                    let near_native = s.ci_low <= 1.05 && s.ci_high >= 0.95;
                    let expected_native = !(h.id == "rand_read" && iso.starts_with("vm"));
                    let agrees = if expected_native {
                        near_native
                    } else {
                        // "About half": accept a ratio between a third and two thirds.
                        s.ci_low <= 0.67 && s.ci_high >= 0.33
                    };
                    // An interval spanning more than a factor 1.5 cannot confirm or refute anything.
                    let word = if s.ci_low > 0.0 && s.ci_high / s.ci_low > 1.5 {
                        "is too noisy to judge"
                    } else if agrees {
                        "agrees"
                    } else {
                        "differs"
                    };
                    parts.push(format!("{iso} {word} ({})", fmt_ratio(s)));
                }
            }
            (!parts.is_empty()).then(|| format!("{prefix}: {}.", parts.join(", ")))
        }
        _ => None,
    }
}

fn environment_section(doc: &mut Document, r: &Results, several: bool) {
    let e = &r.environment;
    doc.heading(
        2,
        if several {
            format!("Environment: `{}`", r.label)
        } else {
            "Environment".to_string()
        },
    );
    let gib = e.memory_bytes as f64 / (1u64 << 30) as f64;
    let rows = vec![
        vec!["host".into(), e.hostname.clone()],
        vec!["kernel".into(), e.kernel.clone()],
        vec![
            "distribution".into(),
            e.os.clone().unwrap_or("unknown".into()),
        ],
        vec!["CPU".into(), format!("{} × {}", e.cpu_count, e.cpu_model)],
        vec!["memory".into(), format!("{gib:.1} GiB")],
        vec![
            "CPU frequency governor".into(),
            e.governor.clone().unwrap_or("not exposed".into()),
        ],
        vec![
            "transparent huge pages".into(),
            e.thp.clone().unwrap_or("not exposed".into()),
        ],
        vec![
            "KVM".into(),
            format!("{} (modules: {})", e.kvm_kind, e.kvm_modules.join(", ")),
        ],
        vec!["cgroups".into(), e.cgroup_mode.clone()],
        vec![
            "emulated".into(),
            e.emulated
                .clone()
                .map_or("no".into(), |why| format!("yes: {why}")),
        ],
        vec![
            "isolab".into(),
            format!(
                "{} (commit {})",
                e.isolab_version,
                e.git_commit.as_deref().unwrap_or("unknown")
            ),
        ],
    ];
    doc.table(vec!["".into(), "value".into()], rows, 9);
    doc.para(format!(
        "What this host can do (from {}):",
        e.verdict_source
    ));
    doc.list(
        e.verdicts
            .iter()
            .map(|v| {
                format!(
                    "{}: {} — {}",
                    v.name.replace('_', " "),
                    if v.ok { "yes" } else { "no" },
                    v.detail
                )
            })
            .collect(),
    );
    let tools: Vec<String> = e
        .tools
        .iter()
        .map(|t| {
            format!(
                "{}: {}",
                t.name,
                t.version.as_deref().unwrap_or("not installed")
            )
        })
        .collect();
    doc.para(format!("Peer tools: {}.", tools.join("; ")));
}

fn details_section(doc: &mut Document, all: &[Results]) {
    doc.heading(2, "Every metric");
    for r in all {
        if all.len() > 1 {
            doc.heading(3, format!("`{}`", r.label));
        }
        let rows = r
            .metrics
            .iter()
            .map(|m| {
                vec![
                    m.subject.clone(),
                    format!("{}/{}", m.probe, m.metric),
                    m.kind.clone().unwrap_or_default(),
                    m.unit.clone(),
                    fmt_summary(&m.summary),
                    format!("{:.1}%", m.summary.ci_level * 100.0),
                    m.summary.n.to_string(),
                ]
            })
            .collect();
        doc.table(
            [
                "subject",
                "metric",
                "kind",
                "unit",
                "median [CI]",
                "CI coverage",
                "n",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            4,
        );
    }
}

fn method_section(doc: &mut Document, all: &[Results]) {
    doc.heading(2, "Method");
    let mut items = Vec::new();
    for r in all {
        let s = &r.settings;
        items.push(format!(
            "{}{} measured rounds after {} warm-up round(s){}; every round runs each subject once, in the same \
             interleaved order (A B C A B C…). Probes: {}; workload arguments: `{}`. The matrix took {:.0} s.",
            if all.len() > 1 { format!("`{}`: ", r.label) } else { String::new() },
            s.rounds,
            s.warmup,
            if s.quick { " (`--quick`)" } else { "" },
            s.probes.join(", "),
            s.workload_args.join(" "),
            s.elapsed_s
        ));
    }
    items.push(
        "Confidence intervals are distribution-free: the order statistics x(k) and x(n−k+1) around the \
         median, with k chosen from the binomial distribution so that the interval covers the true median with \
         at least 95% probability. With fewer than 6 runs that is impossible; the interval is then the full \
         range and its lower coverage is shown in the table of every metric."
            .to_string(),
    );
    items.push(
        "A probe's own repetitions inside one run are summarised by their median, which is one sample here; \
         the spread between runs (process start, placement, caches) is what the interval reflects."
            .to_string(),
    );
    doc.list(items);
}

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
    let mut out = Vec::new();
    let isos = isolations_present(all);
    for h in &HEADLINES {
        let series: Vec<Series> = all
            .iter()
            .map(|r| Series {
                name: r.label.clone(),
                bars: isos
                    .iter()
                    .map(|iso| {
                        r.metric(iso, h.probe, h.metric, None)
                            .map(|m| bar(&m.summary))
                    })
                    .collect(),
            })
            .collect();
        if series.iter().all(|s| s.bars.iter().all(Option::is_none)) {
            continue;
        }
        let unit = all
            .iter()
            .find_map(|r| {
                r.metrics
                    .iter()
                    .find(|m| m.is(h.probe, h.metric, None))
                    .map(|m| m.unit.clone())
            })
            .unwrap_or_default();
        let reference = match h.id {
            "boot" => Some(Reference {
                value: 125.0,
                label: "Firecracker target: 125 ms".into(),
            }),
            _ => None,
        };
        out.push(Chart {
            name: h.id.to_string(),
            title: format!("{} ({})", h.title, better_word(all, h)),
            y_label: unit,
            kind: ChartKind::Bars {
                groups: isos.iter().map(|s| s.to_string()).collect(),
                series,
                reference,
            },
        });
    }
    if let Some(c) = boot_breakdown(all, &isos) {
        out.push(c);
    }
    if let Some(c) = io_ratios(all, &isos) {
        out.push(c);
    }
    if let Some(c) = start_latency(all) {
        out.push(c);
    }
    out
}

fn better_word(all: &[Results], h: &Headline) -> &'static str {
    let better = all.iter().find_map(|r| {
        r.metrics
            .iter()
            .find(|m| m.is(h.probe, h.metric, None))
            .map(|m| m.better)
    });
    match better {
        Some(Better::Lower) => "lower is better",
        _ => "higher is better",
    }
}

fn bar(s: &Summary) -> Bar {
    Bar {
        value: s.median,
        low: s.ci_low,
        high: s.ci_high,
    }
}

fn boot_breakdown(all: &[Results], isos: &[&str]) -> Option<Chart> {
    let mut names = Vec::new();
    let (mut setup, mut kernel, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for r in all {
        for iso in isos {
            let Some(total) = r.metric(iso, "boot", "total_ms", None) else {
                continue;
            };
            let s = r
                .metric(iso, "boot", "setup_ms", None)
                .map_or(0.0, |m| m.summary.median);
            let k = r
                .metric(iso, "boot", "kernel_ms", None)
                .map_or(0.0, |m| m.summary.median);
            names.push(if all.len() > 1 {
                format!("{} {iso}", r.label)
            } else {
                iso.to_string()
            });
            setup.push(s);
            kernel.push(k);
            rest.push((total.summary.median - s - k).max(0.0));
        }
    }
    (!names.is_empty()).then(|| Chart {
        name: "boot_breakdown".into(),
        title: "Boot time breakdown (medians)".into(),
        y_label: "ms".into(),
        kind: ChartKind::Stacked {
            bars: names,
            parts: [
                ("runtime / VMM set-up", setup),
                ("guest kernel", kernel),
                ("until ready marker", rest),
            ]
            .into_iter()
            // A part no bar has (no guest kernel anywhere) would only clutter the legend.
            .filter(|(_, v)| v.iter().any(|x| *x > 0.0))
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        },
    })
}

fn io_ratios(all: &[Results], isos: &[&str]) -> Option<Chart> {
    let io: Vec<&Headline> = HEADLINES.iter().filter(|h| h.probe == "io").collect();
    let mut series = Vec::new();
    for r in all {
        for iso in isos.iter().filter(|i| **i != "native") {
            let bars: Vec<Option<Bar>> = io
                .iter()
                .map(|h| headline_ratio(r, h, iso).map(|x| bar(&x.summary)))
                .collect();
            if bars.iter().any(Option::is_some) {
                let name = if all.len() > 1 {
                    format!("{} {iso}", r.label)
                } else {
                    iso.to_string()
                };
                series.push(Series { name, bars });
            }
        }
    }
    (!series.is_empty()).then(|| Chart {
        name: "io_ratios".into(),
        title: "I/O relative to native (1 = native)".into(),
        y_label: "ratio to native".into(),
        kind: ChartKind::Bars {
            groups: io.iter().map(|h| h.title.to_string()).collect(),
            series,
            reference: Some(Reference {
                value: 1.0,
                label: "native".into(),
            }),
        },
    })
}

fn start_latency(all: &[Results]) -> Option<Chart> {
    let mut subjects: Vec<String> = Vec::new();
    for r in all {
        for m in r
            .metrics
            .iter()
            .filter(|m| m.probe == "start" && m.metric == "wall_ms")
        {
            if !subjects.contains(&m.subject) {
                subjects.push(m.subject.clone());
            }
        }
    }
    if subjects.is_empty() {
        return None;
    }
    let series = all
        .iter()
        .map(|r| Series {
            name: r.label.clone(),
            bars: subjects
                .iter()
                .map(|s| {
                    r.metric(s, "start", "wall_ms", None)
                        .map(|m| bar(&m.summary))
                })
                .collect(),
        })
        .collect();
    Some(Chart {
        name: "start_latency".into(),
        title: "Start latency: isolab against peers (lower is better)".into(),
        y_label: "ms".into(),
        kind: ChartKind::Bars {
            groups: subjects,
            series,
            reference: None,
        },
    })
}
