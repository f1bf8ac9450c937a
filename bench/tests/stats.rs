//! Statistics with known inputs, and the results file against its documented
//! schema (bench/README.md).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod common;

use bench::results::{self, RESULTS_SCHEMA_VERSION};
use bench::stats::{self, median, median_ci_rank, paired_ratios, summarize};
use serde_json::Value;

#[test]
fn median_of_odd_even_and_dirty_inputs() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(
        median(&[f64::NAN, 5.0, f64::INFINITY, 1.0]),
        Some(3.0),
        "non-finite values are dropped"
    );
    assert_eq!(median(&[]), None);
}

#[test]
fn ci_for_ten_samples_is_second_to_ninth_order_statistic() {
    // Textbook: n = 10 gives [x(2), x(9)] with coverage 1 − 2·11/1024 = 97.85%.
    let samples: Vec<f64> = (1..=10).rev().map(f64::from).collect();
    let s = summarize(&samples).unwrap();
    assert_eq!((s.n, s.median, s.ci_low, s.ci_high), (10, 5.5, 2.0, 9.0));
    assert!((s.ci_level - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
    assert!(s.ci_is_full());
    assert_eq!((s.min, s.max, s.mean), (1.0, 10.0, 5.5));
}

#[test]
fn small_samples_get_the_range_and_an_honest_lower_coverage() {
    let s = summarize(&[10.0, 12.0, 11.0, 13.0, 9.0]).unwrap();
    assert_eq!((s.ci_low, s.ci_high), (9.0, 13.0));
    assert!(
        (s.ci_level - (1.0 - 2.0 / 32.0)).abs() < 1e-12,
        "n = 5 reaches only 93.75%"
    );
    assert!(!s.ci_is_full());
    // Six samples are the fewest whose range reaches 95%: 1 − 2/64 = 96.9%.
    let (k, cov) = median_ci_rank(6, 0.95);
    assert_eq!(k, 1);
    assert!(cov >= 0.95);
    // n = 9 is the first where the interval moves inwards.
    assert_eq!(median_ci_rank(9, 0.95).0, 2);
    assert_eq!(median_ci_rank(8, 0.95).0, 1);
}

#[test]
fn ratios_pair_by_round_and_skip_unpaired_or_zero() {
    let container = [(0, 10.0), (1, 22.0), (2, 30.0), (4, 50.0)];
    let native = [(1, 11.0), (0, 5.0), (2, 0.0), (3, 7.0), (4, 25.0)];
    // Round 2 has a zero denominator, round 3 no numerator: left out.
    assert_eq!(paired_ratios(&container, &native), [2.0, 2.0, 2.0]);
    let s = stats::paired_ratio_summary(&container, &native).unwrap();
    assert_eq!((s.n, s.median), (3, 2.0));
    assert!(stats::paired_ratio_summary(&container, &[]).is_none());
}

#[test]
fn pairing_cancels_drift_that_unpaired_medians_would_not() {
    // Both sides slow down by the same factor every round; the true ratio is 1.5.
    let drift = [1.0, 1.3, 0.8, 1.6, 1.1, 0.9, 1.4];
    let native: Vec<(u32, f64)> = drift
        .iter()
        .enumerate()
        .map(|(i, d)| (i as u32, 100.0 * d))
        .collect();
    let other: Vec<(u32, f64)> = drift
        .iter()
        .enumerate()
        .map(|(i, d)| (i as u32, 150.0 * d))
        .collect();
    let s = stats::paired_ratio_summary(&other, &native).unwrap();
    assert!((s.median - 1.5).abs() < 1e-12 && (s.ci_high - s.ci_low).abs() < 1e-12);
}

/// The JSON type names used in the schema documentation.
fn is_type(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "string|null" => v.is_string() || v.is_null(),
        "integer" => v.is_u64(),
        "number" => v.is_number(),
        "bool" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => panic!("unknown schema type {ty}"),
    }
}

fn check(obj: &Value, path: &str, fields: &[(&str, &str)]) {
    for (name, ty) in fields {
        let v = obj
            .get(name)
            .unwrap_or_else(|| panic!("{path}.{name} is missing"));
        assert!(is_type(v, ty), "{path}.{name} should be {ty}, is {v}");
    }
}

const SUMMARY: [(&str, &str); 8] = [
    ("n", "integer"),
    ("median", "number"),
    ("ci_low", "number"),
    ("ci_high", "number"),
    ("ci_level", "number"),
    ("min", "number"),
    ("max", "number"),
    ("mean", "number"),
];

#[test]
fn written_results_file_matches_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let original = common::synthetic("schema-host", 42, 6);
    let csv = results::save(&original, &path).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

    check(
        &doc,
        "$",
        &[
            ("schema_version", "integer"),
            ("label", "string"),
            ("created", "string"),
            ("environment", "object"),
            ("settings", "object"),
            ("subjects", "array"),
            ("metrics", "array"),
            ("ratios", "array"),
            ("notes", "array"),
        ],
    );
    assert_eq!(doc["schema_version"], RESULTS_SCHEMA_VERSION);
    let created = doc["created"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && &created[10..11] == "T",
        "{created}"
    );
    check(
        &doc["environment"],
        "environment",
        &[
            ("hostname", "string"),
            ("kernel", "string"),
            ("os", "string|null"),
            ("cpu_model", "string"),
            ("cpu_count", "integer"),
            ("memory_bytes", "integer"),
            ("governor", "string|null"),
            ("thp", "string|null"),
            ("isolab_version", "string"),
            ("git_commit", "string|null"),
            ("kvm_kind", "string"),
            ("kvm_modules", "array"),
            ("cgroup_mode", "string"),
            ("verdicts", "array"),
            ("verdict_source", "string"),
            ("tools", "array"),
        ],
    );
    assert!(
        ["hardware", "software-assisted", "unavailable"]
            .contains(&doc["environment"]["kvm_kind"].as_str().unwrap())
    );
    for v in doc["environment"]["verdicts"].as_array().unwrap() {
        check(
            v,
            "verdict",
            &[("name", "string"), ("ok", "bool"), ("detail", "string")],
        );
    }
    check(
        &doc["settings"],
        "settings",
        &[
            ("quick", "bool"),
            ("rounds", "integer"),
            ("warmup", "integer"),
            ("probes", "array"),
            ("workload_args", "array"),
            ("elapsed_s", "number"),
        ],
    );
    for s in doc["subjects"].as_array().unwrap() {
        check(
            s,
            "subject",
            &[("name", "string"), ("role", "string"), ("status", "string")],
        );
        let status = s["status"].as_str().unwrap();
        assert!(
            ["measured", "missing", "unsupported", "failed"].contains(&status),
            "{status}"
        );
        assert!(["isolation", "peer"].contains(&s["role"].as_str().unwrap()));
        if status != "measured" {
            check(s, "subject", &[("reason", "string")]);
        }
    }
    let mut samples = 0;
    for m in doc["metrics"].as_array().unwrap() {
        check(
            m,
            "metric",
            &[
                ("subject", "string"),
                ("probe", "string"),
                ("metric", "string"),
                ("unit", "string"),
                ("better", "string"),
                ("rounds", "array"),
                ("samples", "array"),
                ("summary", "object"),
            ],
        );
        assert!(["higher", "lower"].contains(&m["better"].as_str().unwrap()));
        assert_eq!(
            m["rounds"].as_array().unwrap().len(),
            m["samples"].as_array().unwrap().len()
        );
        assert!(
            m["samples"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_number)
        );
        if let Some(kind) = m.get("kind") {
            assert!(kind.is_string());
        }
        check(&m["summary"], "metric.summary", &SUMMARY);
        samples += m["samples"].as_array().unwrap().len();
    }
    for r in doc["ratios"].as_array().unwrap() {
        check(
            r,
            "ratio",
            &[
                ("numerator", "string"),
                ("denominator", "string"),
                ("probe", "string"),
                ("metric", "string"),
                ("better", "string"),
                ("summary", "object"),
            ],
        );
        check(&r["summary"], "ratio.summary", &SUMMARY);
    }
    let vmexit = doc["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["numerator"] == "vm-tiny" && r["metric"] == "round_trip_ns")
        .expect("vm-tiny/native syscall ratio");
    assert_eq!(
        (vmexit["kind"].as_str(), vmexit["denominator_kind"].as_str()),
        (Some("vmexit"), Some("syscall"))
    );

    // The CSV twin has a header and one row per sample.
    let csv_text = std::fs::read_to_string(csv).unwrap();
    assert_eq!(
        csv_text.lines().next().unwrap(),
        "label,subject,probe,metric,kind,unit,better,round,value"
    );
    assert_eq!(csv_text.lines().count(), samples + 1);

    // And it reads back to the same content (floats to within JSON's decimal round trip).
    let back = results::load(&path).unwrap();
    assert_eq!(
        (&back.label, &back.subjects, back.metrics.len()),
        (&original.label, &original.subjects, original.metrics.len())
    );
    for (a, b) in back.metrics.iter().zip(&original.metrics) {
        assert_eq!(a.key(), b.key());
        assert!((a.summary.median - b.summary.median).abs() <= 1e-9 * b.summary.median.abs());
    }
}

#[test]
fn asking_for_a_pair_twice_adds_no_second_ratio() {
    let mut r = common::synthetic("dedupe-host", 7, 6);
    let before = r.ratios.len();
    let runc = |r: &bench::results::Results| {
        r.ratios
            .iter()
            .filter(|x| x.numerator == "container" && x.denominator == "runc")
            .count()
    };
    let once = runc(&r);
    assert!(once > 0, "the synthetic results pair container with runc");
    r.add_ratios("container", "runc");
    assert_eq!(runc(&r), once);
    assert_eq!(r.ratios.len(), before);
}
