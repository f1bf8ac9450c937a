//! The report's network section: every path the `net` probe took, its
//! round-trip latency and stream throughput, the ratio to native loopback
//! measured in the same rounds, NAT's extra cost over the plain bridge, and
//! why an isolation has no network row.

use bench::results::{Metric, Ratio, Results};
use bench::stats::paired_ratio_summary;

use super::{Verdict, fmt_ratio, fmt_summary, num, verdict};
use crate::document::Document;

/// Appends the section when any results file has `net` metrics or a note
/// saying why the probe did not run.
pub(super) fn section(doc: &mut Document, all: &[Results]) {
    let mut rows = Vec::new();
    let mut nat_costs = Vec::new();
    for r in all {
        rows.extend(path_rows(r));
        nat_costs.extend(
            nat_cost(r)
                .into_iter()
                .map(|(subject, words)| format!("`{}` {subject}: {words}", r.label)),
        );
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

/// NAT's cost over the plain bridge for every subject with both a `bridge`
/// and a `bridge+nat` path: the subject and the words [`nat_words`] chooses.
fn nat_cost(r: &Results) -> Vec<(String, String)> {
    let subjects: Vec<&str> = r
        .metrics
        .iter()
        .filter(|m| {
            m.probe == "net" && m.metric == "rr_p50_us" && m.kind.as_deref() == Some("bridge+nat")
        })
        .map(|m| m.subject.as_str())
        .collect();
    subjects
        .into_iter()
        .filter_map(|s| {
            let nat = r.metric(s, "net", "rr_p50_us", Some("bridge+nat"))?;
            let plain = r.metric(s, "net", "rr_p50_us", Some("bridge"))?;
            Some((s.to_string(), nat_words(nat, plain)?))
        })
        .collect()
}

/// The network lines of `isolab bench`'s summary: every isolab subject's
/// `veth` round trip against native loopback, and NAT's cost over the
/// bridge, each with its interval and in the words of [`verdict`].
pub(crate) fn summary_lines(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    for ratio in r.ratios.iter().filter(|x| {
        x.denominator == "native"
            && x.probe == "net"
            && x.metric == "rr_p50_us"
            && x.kind.as_deref() == Some("veth")
    }) {
        out.push(format!(
            "Network: {} veth round trip (p50) {}× native loopback [{}–{}]: {}.",
            ratio.numerator,
            num(ratio.summary.median),
            num(ratio.summary.ci_low),
            num(ratio.summary.ci_high),
            super::judge(ratio)
        ));
    }
    // One host's summary: its label (the report's column) would read as a subject here.
    out.extend(
        nat_cost(r)
            .into_iter()
            .map(|(subject, words)| format!("Network: {subject}: {words}.")),
    );
    out
}

/// The round-trip ratio `bridge+nat / bridge` of one subject, paired by
/// round like every other ratio in the report; `None` when no round has both.
pub(crate) fn nat_ratio(nat: &Metric, plain: &Metric) -> Option<Ratio> {
    Some(Ratio {
        numerator: nat.subject.clone(),
        denominator: plain.subject.clone(),
        probe: nat.probe.clone(),
        metric: nat.metric.clone(),
        kind: nat.kind.clone(),
        denominator_kind: plain.kind.clone(),
        better: nat.better,
        summary: paired_ratio_summary(&nat.pairs(), &plain.pairs())?,
    })
}

/// What NAT costs over the plain bridge, said only as far as the ratio's
/// interval allows ([`verdict`]): an extra in µs only when the interval
/// lies above 1, never a negative "adds" from medians within noise.
pub(crate) fn nat_words(nat: &Metric, plain: &Metric) -> Option<String> {
    let ratio = nat_ratio(nat, plain)?;
    let detail = format!(
        "{} → {} µs median round trip, NAT/bridge {}",
        num(plain.summary.median),
        num(nat.summary.median),
        fmt_ratio(&ratio.summary)
    );
    Some(match verdict(&ratio) {
        Verdict::Differs { worse: true, .. } => format!(
            "NAT (published port, DNAT) adds {:.1} µs to the median round trip over the plain \
             bridge ({detail})",
            plain.summary.median * (ratio.summary.median - 1.0)
        ),
        Verdict::Differs {
            worse: false,
            factor,
        } => format!(
            "the NAT path was {}× faster than the plain bridge in this run, so no extra cost of \
             NAT shows ({detail})",
            num(factor)
        ),
        Verdict::Same { wide: false } => format!(
            "NAT (published port, DNAT) is indistinguishable from the bridge in this run ({detail})"
        ),
        Verdict::Same { wide: true } => format!(
            "NAT against the plain bridge is too noisy to judge in this run; more rounds would \
             narrow it ({detail})"
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bench::results::{Better, MetricKey};

    fn rr(kind: &str, samples: &[f64]) -> Metric {
        let pairs: Vec<(u32, f64)> = samples
            .iter()
            .copied()
            .zip(0..)
            .map(|(v, i)| (i, v))
            .collect();
        let key = MetricKey {
            subject: "container".into(),
            probe: "net".into(),
            metric: "rr_p50_us".into(),
            kind: Some(kind.into()),
        };
        Metric::from_samples(key, "µs", Better::Lower, &pairs).unwrap()
    }

    #[test]
    fn nat_within_noise_is_indistinguishable_not_a_negative_cost() {
        // The run that printed "adds -18.6 µs": NAT's median below the
        // bridge's, but the per-round ratios straddle 1.
        let plain = rr("bridge", &[40.0, 52.0, 61.0, 70.0, 45.0, 58.0, 66.0]);
        let nat = rr("bridge+nat", &[44.0, 35.0, 66.0, 47.0, 40.0, 63.0, 45.0]);
        assert!(nat.summary.median - plain.summary.median < -10.0);
        let words = nat_words(&nat, &plain).unwrap();
        assert!(!words.contains("adds"), "{words}");
        assert!(!words.contains('-'), "{words}");
        assert!(
            words.contains("indistinguishable from the bridge in this run")
                || words.contains("too noisy to judge"),
            "{words}"
        );
    }

    #[test]
    fn nat_cost_is_stated_when_the_interval_excludes_one() {
        let plain = rr("bridge", &[27.0, 27.4, 27.1, 27.3, 27.2, 27.5, 27.3]);
        let nat = rr("bridge+nat", &[31.0, 31.2, 30.9, 31.1, 31.3, 31.0, 31.2]);
        let words = nat_words(&nat, &plain).unwrap();
        assert!(
            words.starts_with("NAT (published port, DNAT) adds "),
            "{words}"
        );
        let extra: f64 = words["NAT (published port, DNAT) adds ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((3.0..4.5).contains(&extra), "{words}");
    }

    #[test]
    fn nat_faster_than_the_bridge_claims_no_cost() {
        let plain = rr("bridge", &[31.0, 31.2, 30.9, 31.1, 31.3, 31.0, 31.2]);
        let nat = rr("bridge+nat", &[27.0, 27.4, 27.1, 27.3, 27.2, 27.5, 27.3]);
        let words = nat_words(&nat, &plain).unwrap();
        assert!(words.contains("no extra cost of NAT shows"), "{words}");
        assert!(!words.contains("adds"), "{words}");
    }
}
