//! The report's network section: every path the `net` probe took, its
//! round-trip latency and stream throughput, the ratio to native loopback
//! measured in the same rounds, NAT's extra cost over the plain bridge, and
//! why an isolation has no network row.

use bench::results::Results;

use super::{fmt_ratio, fmt_summary};
use crate::document::Document;

/// Appends the section when any results file has `net` metrics or a note
/// saying why the probe did not run.
pub(super) fn section(doc: &mut Document, all: &[Results]) {
    let mut rows = Vec::new();
    let mut nat_costs = Vec::new();
    for r in all {
        rows.extend(path_rows(r));
        nat_costs.extend(nat_cost(r));
    }
    let reasons: Vec<String> = all
        .iter()
        .flat_map(|r| r.notes.iter())
        .filter(|n| n.contains("net probe not run"))
        .cloned()
        .collect();
    if rows.is_empty() && reasons.is_empty() {
        return;
    }
    doc.heading(2, "Network");
    doc.para(
        "TCP request/response (one byte each way, many round trips: the p50 and p99 of every round trip) and \
         TCP stream throughput, against a peer isolab runs on the host side, outside the isolation. Paths: \
         `loopback` (native), `veth` (a /30 veth pair, no NAT), `bridge` (the container on a bridge, dialling \
         the bridge's host address), `bridge+nat` (the host reaching the container through a published port: \
         DNAT, Docker's default shape), `virtio-net+tap` (a VM).",
    );
    doc.table(
        vec![
            "host".into(),
            "subject".into(),
            "path".into(),
            "RR p50 µs".into(),
            "RR p99 µs".into(),
            "stream MB/s".into(),
            "p50 vs native".into(),
        ],
        rows,
        3,
    );
    doc.list(nat_costs);
    doc.list(reasons);
}

fn path_rows(r: &Results) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for m in r
        .metrics
        .iter()
        .filter(|m| m.probe == "net" && m.metric == "rr_p50_us")
    {
        let kind = m.kind.as_deref();
        let other = |metric: &str| {
            r.metric(&m.subject, "net", metric, kind)
                .map(|x| fmt_summary(&x.summary))
                .unwrap_or_else(|| "–".into())
        };
        let ratio = r
            .ratio(&m.subject, "native", "net", "rr_p50_us", kind)
            .map(|x| fmt_ratio(&x.summary))
            .unwrap_or_else(|| "–".into());
        rows.push(vec![
            r.label.clone(),
            m.subject.clone(),
            kind.unwrap_or("").to_string(),
            fmt_summary(&m.summary),
            other("rr_p99_us"),
            other("stream_mb_per_s"),
            ratio,
        ]);
    }
    rows
}

/// "NAT adds X µs per round trip" for every subject with both a `bridge`
/// and a `bridge+nat` path.
fn nat_cost(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    let subjects: Vec<&str> = r
        .metrics
        .iter()
        .filter(|m| {
            m.probe == "net" && m.metric == "rr_p50_us" && m.kind.as_deref() == Some("bridge+nat")
        })
        .map(|m| m.subject.as_str())
        .collect();
    for s in subjects {
        let (Some(nat), Some(plain)) = (
            r.metric(s, "net", "rr_p50_us", Some("bridge+nat")),
            r.metric(s, "net", "rr_p50_us", Some("bridge")),
        ) else {
            continue;
        };
        let extra = nat.summary.median - plain.summary.median;
        out.push(format!(
            "`{}` {s}: NAT (published port, DNAT) adds {extra:.1} µs to the median round trip over the \
             plain bridge ({:.1} → {:.1} µs, {:.2}×)",
            r.label,
            plain.summary.median,
            nat.summary.median,
            nat.summary.median / plain.summary.median.max(f64::MIN_POSITIVE)
        ));
    }
    out
}
