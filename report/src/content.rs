//! What the report says: builds the [`Document`] from one or more results files.

use super::catalog::{HEADLINES, Headline, ISOLATIONS, REFERENCES};
use super::charts::Chart;
use super::document::Document;
use bench::results::{Better, Ratio, Results, Status};
use bench::stats::Summary;

pub use super::figures::charts;

mod network;

pub(crate) use network::summary_lines as network_summary;

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

/// Every subject with a metric in any of the files: the isolations in
/// column order, then peers and any other subject in order of appearance.
pub fn subjects_present(all: &[Results]) -> Vec<String> {
    let mut out: Vec<String> = isolations_present(all)
        .into_iter()
        .map(String::from)
        .collect();
    for r in all {
        for m in &r.metrics {
            if !out.contains(&m.subject) {
                out.push(m.subject.clone());
            }
        }
    }
    out
}

/// The ratio of `subject` to native for a headline, if computed.
pub fn headline_ratio<'a>(r: &'a Results, h: &Headline, subject: &str) -> Option<&'a Ratio> {
    r.ratio(subject, "native", h.probe, h.metric, None)
}

/// What a ratio's 95% interval lets the report say: the one rule every
/// sentence about a ratio follows, so no two sentences contradict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The interval contains 1: no difference from native can be claimed.
    /// `wide` when it spans more than a factor 1.5 (too noisy to judge).
    Same {
        /// The interval spans more than a factor 1.5.
        wide: bool,
    },
    /// The interval excludes 1: `factor` times worse or better.
    Differs {
        /// Worse than native (in the metric's own direction).
        worse: bool,
        /// How many times (≥ 1).
        factor: f64,
    },
}

/// Applies the rule to a ratio.
pub fn verdict(ratio: &Ratio) -> Verdict {
    let s = &ratio.summary;
    if s.ci_low <= 1.0 && 1.0 <= s.ci_high {
        return Verdict::Same {
            wide: s.ci_low > 0.0 && s.ci_high / s.ci_low > 1.5,
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
    Verdict::Differs { worse, factor }
}

/// Plain words for a ratio, from [`verdict`].
pub fn judge(ratio: &Ratio) -> String {
    match verdict(ratio) {
        Verdict::Same { wide: true } => {
            "too noisy to judge: the interval contains 1 and is wide; more rounds would narrow it"
                .into()
        }
        Verdict::Same { wide: false } => "indistinguishable from native at this sample size".into(),
        Verdict::Differs { worse, factor } => {
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
    }
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
         per round from paired samples, so slow drift of the host affects both sides equally. \
         A † marks a value that is not like for like with native's; the reason is given beside it.",
        labels.join(", ")
    ));
    if let Some((chart, svg)) = charts.iter().find(|(c, _)| c.name == "spectrum") {
        chart_block(&mut doc, chart, svg);
    }
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
    if charts.iter().any(|(c, _)| c.name != "spectrum") {
        doc.heading(2, "Charts");
        doc.para(
            "Bars are medians and every point is one run: at n = 6 the points show the spread \
             more honestly than an interval would. Axes whose values span more than a decade are \
             logarithmic and say so; published figures are dashed lines or notes at the edge and \
             never set an axis's range. Each subject has one colour in every chart.",
        );
        for (chart, svg) in charts.iter().filter(|(c, _)| c.name != "spectrum") {
            chart_block(&mut doc, chart, svg);
            if let Some(h) = HEADLINES.iter().find(|h| h.id == chart.name) {
                verdicts(&mut doc, all, h);
            }
        }
    }
    peers_section(&mut doc, all);
    network::section(&mut doc, all);
    fio_section(&mut doc, all);
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
        let mut reasons: Vec<String> = Vec::new();
        for h in &HEADLINES {
            let mut unit = String::new();
            let mut cells = Vec::new();
            let native_kind = r
                .metric("native", h.probe, h.metric, None)
                .and_then(|n| n.kind.clone());
            for iso in &isos {
                let m = r.metric(iso, h.probe, h.metric, None);
                if let Some(m) = m {
                    unit = crate::compare::emulated_unit(&m.unit, emulated);
                }
                let why = m.and_then(|m| {
                    super::catalog::caveat(
                        iso,
                        h.probe,
                        h.metric,
                        m.kind.as_deref(),
                        native_kind.as_deref(),
                    )
                });
                let dagger = if why.is_some() { " †" } else { "" };
                if let Some(why) = why.filter(|w| !reasons.contains(w)) {
                    reasons.push(why);
                }
                cells.push(
                    m.map(|m| format!("{}{dagger} (n={})", fmt_summary(&m.summary), m.summary.n))
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
        doc.list(
            reasons
                .into_iter()
                .map(|w| format!("† not like for like: {w}."))
                .collect(),
        );
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

/// Where the io probe and fio disagree by more than this fraction, the
/// report says so.
pub const FIO_TOLERANCE: f64 = 0.2;

/// The io probe (native) against fio on the same directory and flags.
fn fio_section(doc: &mut Document, all: &[Results]) {
    let mut rows = Vec::new();
    let mut disagree = Vec::new();
    for r in all {
        for h in HEADLINES.iter().filter(|h| h.probe == "io") {
            let (Some(ours), Some(fio)) = (
                r.metric("native", h.probe, h.metric, None),
                r.metric(bench::fio::SUBJECT, h.probe, h.metric, None),
            ) else {
                continue;
            };
            let ratio = ours.summary.median / fio.summary.median;
            let off = (ratio - 1.0).abs() > FIO_TOLERANCE;
            if off {
                disagree.push(format!(
                    "{}{}: the probe measured {} {}, fio {} ({}% apart).",
                    if all.len() > 1 {
                        format!("`{}` ", r.label)
                    } else {
                        String::new()
                    },
                    h.title,
                    num(ours.summary.median),
                    ours.unit,
                    num(fio.summary.median),
                    num((ratio - 1.0).abs() * 100.0)
                ));
            }
            rows.push(vec![
                r.label.clone(),
                h.title.to_string(),
                ours.unit.clone(),
                fmt_summary(&ours.summary),
                num(fio.summary.median),
                format!("{}×", num(ratio)),
                if off { "no" } else { "yes" }.to_string(),
            ]);
        }
    }
    if rows.is_empty() {
        return;
    }
    doc.heading(2, "The io probe against fio");
    doc.para(format!(
        "fio ran once per run on a file in the same directory as the io probe, with the probe's \
         flags (O_DIRECT, 1 MiB sequential blocks, 4 KiB random reads, 4 KiB writes each followed \
         by fsync). Agreement is the native probe's median over fio's figure; beyond ±{:.0}% they \
         are said to disagree.",
        FIO_TOLERANCE * 100.0
    ));
    doc.table(
        [
            "host",
            "metric",
            "unit",
            "io probe (native)",
            "fio",
            "probe/fio",
            "agree?",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        3,
    );
    if disagree.is_empty() {
        doc.para("The probe and fio agree within 20% on every metric.");
    } else {
        doc.para(format!(
            "**They disagree by more than 20%** — read those rows of the probe with care \
             (fio's single run has no interval; a small file or a few operations make both noisy): {}",
            disagree.join(" ")
        ));
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
         runtime; `podman-*`: `podman run --rm` of a `FROM scratch` busybox image with that OCI runtime, \
         `podman-isolab` against `podman-runc` is the same front end with isolab or runc under it, \
         `podman-isolab-vm` boots the image in isolab's micro VM where the Linux guest runs) or to boot \
         the same tiny guest image and exit (VMMs), measured in the same interleaved rounds.",
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

/// A chart, with what to notice beside it and each † reason.
fn chart_block(doc: &mut Document, chart: &Chart, svg: &str) {
    let mut caption = chart.notice.clone();
    for note in &chart.notes {
        caption.push(' ');
        caption.push_str(note);
        if !note.ends_with('.') {
            caption.push('.');
        }
    }
    doc.blocks.push(super::document::Block::Chart {
        title: chart.title.clone(),
        caption,
        svg: svg.to_string(),
        svg_file: format!("{CHART_DIR}/{}.svg", chart.name),
        png_file: format!("{CHART_DIR}/{}.png", chart.name),
    });
}

/// Under a headline chart: each subject's ratio to native in words (one
/// rule, [`verdict`]), and the published reference held against it.
fn verdicts(doc: &mut Document, all: &[Results], h: &Headline) {
    let mut found = Vec::new();
    for r in all {
        for subject in subjects_present(std::slice::from_ref(r)) {
            let Some(x) = headline_ratio(r, h, &subject) else {
                continue;
            };
            let native_kind = r
                .metric("native", h.probe, h.metric, None)
                .and_then(|n| n.kind.as_deref());
            let dagger =
                super::catalog::caveat(&subject, h.probe, h.metric, x.kind.as_deref(), native_kind)
                    .map(|why| format!(" † not like for like: {why}"))
                    .unwrap_or_default();
            found.push(format!(
                "{}{subject}/native = {}: {}.{dagger}",
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
                    // The same interval as `judge` reads: it agrees when it
                    // reaches the published band, and differs otherwise.
                    let word = if agrees { "agrees" } else { "differs" };
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
    doc.list(verdict_items(&e.verdicts));
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

/// One line per capability: a name the doctor reports twice (the functional
/// probe and the summary, e.g. `linux_guest`) is one item with both details.
fn verdict_items(verdicts: &[bench::results::Verdict]) -> Vec<String> {
    let mut items: Vec<(String, bool, Vec<String>)> = Vec::new();
    for v in verdicts {
        match items.iter_mut().find(|(name, _, _)| *name == v.name) {
            Some((_, ok, details)) => {
                *ok &= v.ok;
                if !details.contains(&v.detail) {
                    details.push(v.detail.clone());
                }
            }
            None => items.push((v.name.clone(), v.ok, vec![v.detail.clone()])),
        }
    }
    items
        .into_iter()
        .map(|(name, ok, details)| {
            format!(
                "{}: {} — {}",
                name.replace('_', " "),
                if ok { "yes" } else { "no" },
                details.join("; ")
            )
        })
        .collect()
}

fn details_section(doc: &mut Document, all: &[Results]) {
    doc.heading(2, "Every metric");
    for r in all {
        if all.len() > 1 {
            doc.heading(3, format!("`{}`", r.label));
        }
        let one_level = r
            .metrics
            .windows(2)
            .all(|w| (w[0].summary.ci_level - w[1].summary.ci_level).abs() < 1e-9);
        let rows = r
            .metrics
            .iter()
            .map(|m| {
                let mut row = vec![
                    m.subject.clone(),
                    format!("{}/{}", m.probe, m.metric),
                    m.kind.clone().unwrap_or_default(),
                    m.unit.clone(),
                    fmt_summary(&m.summary),
                ];
                if !one_level {
                    row.push(format!("{:.1}%", m.summary.ci_level * 100.0));
                }
                row.push(m.summary.n.to_string());
                row.push(
                    m.samples
                        .iter()
                        .map(|v| num(*v))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                row
            })
            .collect();
        // One coverage for every row is said once, not repeated on each row.
        let mut header: Vec<String> = ["subject", "metric", "kind", "unit", "median [CI]"]
            .map(String::from)
            .to_vec();
        if let (true, Some(m)) = (one_level, r.metrics.first()) {
            doc.para(format!(
                "Every interval below covers the median with {:.1}% probability (n = {}).",
                m.summary.ci_level * 100.0,
                m.summary.n
            ));
        } else {
            header.push("CI coverage".into());
        }
        header.push("n".into());
        header.push("every sample".into());
        doc.table(header, rows, 4);
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
