//! The report writer end to end: files written, PNGs that decode and are not
//! blank, HTML that is self-contained, several hosts side by side, clear errors
//! for bad input files.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

#[path = "../../bench/tests/common/mod.rs"]
mod common;

use std::path::Path;

use bench::results::{self, ResultsError};
use report::{self, ReportError};

fn png_pixels(path: &Path) -> (u32, u32, Vec<u8>, png::ColorType) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("png exists"));
    let mut reader = decoder.read_info().expect("png header decodes");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame decodes");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf, info.color_type)
}

/// Variance of the grey level over all pixels: 0 for a blank image.
fn grey_variance(pixels: &[u8], channels: usize) -> f64 {
    let greys: Vec<f64> = pixels
        .chunks(channels)
        .map(|p| p.iter().take(3).map(|&c| f64::from(c)).sum::<f64>() / 3.0)
        .collect();
    let mean = greys.iter().sum::<f64>() / greys.len() as f64;
    greys.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / greys.len() as f64
}

#[test]
fn report_from_one_results_file_writes_every_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let r = common::synthetic("lab-host-1", 7, 7);
    let files = report::write(&[r], dir.path()).expect("report writes");

    let md = std::fs::read_to_string(&files.markdown).unwrap();
    for needle in [
        "## Summary",
        "container/native",
        "vm-tiny/native",
        "(n=7)",
        "What could not be measured here, and why",
        "vm-linux (isolation, not possible on this host): software-assisted KVM",
        "crun (peer, tried and failed): cgroups in hybrid mode not supported",
        "Felter et al. 2014",
        "125 ms",
        "not like for like",
        "## Environment",
        "kvm_pvm",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}");
    }

    // Every chart exists as SVG and PNG; the PNG decodes, has the chart size and is not blank.
    assert!(
        files.pngs.len() >= 12,
        "expected headline, breakdown, I/O and peer charts, got {}",
        files.pngs.len()
    );
    assert_eq!(files.pngs.len(), files.svgs.len());
    for png in &files.pngs {
        let (w, h, pixels, colour) = png_pixels(png);
        assert_eq!((w, h), report::charts::SIZE, "{}", png.display());
        let channels = match colour {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("unexpected colour type {other:?}"),
        };
        let variance = grey_variance(&pixels, channels);
        assert!(
            variance > 50.0,
            "{} looks blank (grey variance {variance:.1})",
            png.display()
        );
    }
    for svg in &files.svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(
            text.contains("<svg") && text.contains("</svg>"),
            "{}",
            svg.display()
        );
    }

    // The HTML embeds every chart as a data: image and loads nothing from elsewhere.
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert_eq!(html.matches("<img ").count(), files.svgs.len());
    assert_eq!(
        html.matches("src=\"data:image/svg+xml,").count(),
        html.matches("src=").count(),
        "report.html must be self-contained"
    );
    assert!(
        !html.contains("<link"),
        "report.html must be self-contained"
    );
    // Markdown charts are relative paths beside report.md.
    assert!(md.contains("](charts/spectrum.png)") && !md.contains("](/"));
    // Each chart kind of the issue exists.
    for name in [
        "spectrum",
        "start_ecdf",
        "memory_breakdown",
        "boot_breakdown",
        "io_ratios",
        "fsync_ratio",
        "start_latency",
    ] {
        assert!(
            files
                .pngs
                .iter()
                .any(|p| p.ends_with(format!("{name}.png"))),
            "no {name} chart"
        );
    }
    assert!(html.contains("<table>") && html.ends_with("</html>\n"));
}

#[test]
fn two_results_files_make_one_side_by_side_report() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::synthetic("student-a", 1, 6);
    let b = common::synthetic("student-b", 2, 8);
    // A chart left over from an earlier report in the same directory is removed.
    std::fs::create_dir_all(dir.path().join("charts")).unwrap();
    std::fs::write(dir.path().join("charts/stale.png"), b"old").unwrap();
    let files = report::write(&[a, b], dir.path()).expect("combined report writes");
    assert!(!dir.path().join("charts/stale.png").exists());
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("student-a: container/native") && md.contains("student-b: vm-tiny/native"));
    assert!(
        md.contains("## Environment: `student-a`") && md.contains("## Environment: `student-b`")
    );
    assert!(
        md.contains("(n=6)") || md.contains("| 6 |"),
        "run counts of the first file are shown"
    );
    assert!(
        md.contains("| 8 |"),
        "run counts of the second file are shown"
    );
    assert!(
        md.contains("## Do the runs agree?"),
        "two runs are checked against each other"
    );
    assert!(md.contains("CPU (SHA-256) container/native") && md.contains("yes: intervals overlap"));
}

#[test]
fn same_label_twice_is_disambiguated_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::synthetic("host", 1, 6);
    let mut b = common::synthetic("host", 2, 6);
    assert!(matches!(
        report::write(&[a.clone(), b.clone()], dir.path()),
        Err(ReportError::DuplicateLabel(l)) if l == "host"
    ));
    b.created = "2026-11-22T00:00:00Z".into();
    let files =
        report::write(&[a, b], dir.path()).expect("different runs of one host are told apart");
    let md = std::fs::read_to_string(files.markdown).unwrap();
    assert!(md.contains("host 2026-11-22T00:00:00Z"));
    assert!(matches!(
        report::write(&[], dir.path()),
        Err(ReportError::NoResults)
    ));
}

#[test]
fn malformed_and_newer_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("garbage.json");
    std::fs::write(&not_json, "this is not json").unwrap();
    let err = results::load(&not_json).unwrap_err();
    assert!(matches!(err, ResultsError::Malformed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("garbage.json is not an isolab results file"),
        "{err}"
    );

    let wrong_shape = dir.path().join("shape.json");
    std::fs::write(&wrong_shape, r#"{"schema_version": 1, "label": 3}"#).unwrap();
    assert!(matches!(
        results::load(&wrong_shape),
        Err(ResultsError::Malformed { .. })
    ));

    let mut newer = serde_json::to_value(common::synthetic("h", 3, 6)).unwrap();
    newer["schema_version"] = serde_json::json!(results::RESULTS_SCHEMA_VERSION + 1);
    newer["field_from_the_future"] = serde_json::json!(true);
    let newer_path = dir.path().join("newer.json");
    std::fs::write(&newer_path, newer.to_string()).unwrap();
    let err = results::load(&newer_path).unwrap_err();
    assert!(
        matches!(
            err,
            ResultsError::NewerSchema {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade isolab"), "{err}");

    let mut inconsistent = common::synthetic("h", 4, 6);
    inconsistent.metrics[0].rounds.pop();
    let bad_path = dir.path().join("inconsistent.json");
    std::fs::write(&bad_path, serde_json::to_string(&inconsistent).unwrap()).unwrap();
    let err = results::load(&bad_path).unwrap_err();
    assert!(
        matches!(err, ResultsError::Invalid { .. })
            && err.to_string().contains("6 samples but 5 rounds"),
        "{err}"
    );

    let missing = dir.path().join("absent.json");
    assert!(matches!(
        results::load(&missing),
        Err(ResultsError::Io { .. })
    ));
}

/// Chromium, or why the test cannot use it.
fn chromium(test: &str) -> Option<String> {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find_map(hostcaps::peers::which);
    let available = browser
        .clone()
        .ok_or_else(|| "chromium is not installed (apt-get install chromium)".to_string());
    hostcaps::testing::require(test, "chromium", available.map(|_| ()))
        .then(|| browser.unwrap().display().to_string())
}

/// Runs headless Chromium on `url` with `args`; returns stdout and stderr.
fn run_chromium(browser: &str, args: &[String], url: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {log}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), log)
}

/// Counts, after load, the images and those that did not load at their
/// natural size inside the viewport; the test reads the result from the DOM.
const CHECK: &str = r#"<script>
window.addEventListener('load', () => {
  const vw = document.documentElement.clientWidth;
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)
    || i.getBoundingClientRect().right > vw + 0.5 || i.getBoundingClientRect().width < 200)
    .map(i => i.alt + ':' + i.naturalWidth + ':' + Math.round(i.getBoundingClientRect().width));
  const pre = document.createElement('pre');
  pre.id = 'isolab-check';
  pre.textContent = 'IMAGES=' + imgs.length + ' SCROLL=' + document.documentElement.scrollWidth
    + ' VIEW=' + vw + ' BAD=[' + bad.join('|') + ']';
  document.body.appendChild(pre);
});
</script>"#;

/// Loads `html` in headless Chromium at two widths: no console errors, every
/// chart `<img>` loaded (naturalWidth > 0) and inside the viewport, no
/// horizontal scrolling; a full-page screenshot is kept under target/.
fn check_in_chromium(browser: &str, html: &Path, artifact: &str) {
    let page = std::fs::read_to_string(html).unwrap();
    let charts = page.matches("<img ").count();
    assert!(charts >= 10, "{}: only {charts} charts", html.display());
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("report.html");
    std::fs::write(
        &probe,
        page.replace("</body>", &format!("{CHECK}\n</body>")),
    )
    .unwrap();
    for width in [1280, 700] {
        let (dom, log) = run_chromium(
            browser,
            &[format!("--window-size={width},900"), "--dump-dom".into()],
            &format!("file://{}", probe.display()),
        );
        let console_errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("CONSOLE") && (l.contains("ERROR") || l.contains("rror")))
            .collect();
        assert!(
            console_errors.is_empty(),
            "console errors: {console_errors:?}"
        );
        let check = dom
            .split("id=\"isolab-check\">IMAGES=")
            .nth(1)
            .and_then(|s| s.split("</pre>").next())
            .unwrap_or_else(|| panic!("the check did not run at width {width}: {dom:.300}"));
        assert!(
            check.starts_with(&format!("{charts} ")) && check.ends_with("BAD=[]"),
            "width {width}: {check}"
        );
        let field = |k: &str| -> u32 {
            check
                .split(' ')
                .find_map(|f| f.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        assert!(field("SCROLL=") <= field("VIEW="), "width {width}: {check}");
    }
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(format!("{artifact}.png"));
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        browser,
        &[
            "--window-size=1280,6000".into(),
            "--hide-scrollbars".into(),
            format!("--screenshot={}", shot.display()),
        ],
        &format!("file://{}", html.display()),
    );
    let (w, h, pixels, colour) = png_pixels(&shot);
    let channels = if colour == png::ColorType::Rgba { 4 } else { 3 };
    assert!(w == 1280 && h == 6000, "{w}×{h}");
    assert!(grey_variance(&pixels, channels) > 50.0, "blank screenshot");
    println!("screenshot: {}", shot.display());
}

/// The committed sample report, and one rendered now from its results, in a
/// real browser.
#[test]
fn sample_report_renders_in_headless_chromium() {
    let Some(browser) = chromium("sample_report_renders_in_headless_chromium") else {
        return;
    };
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/sample");
    check_in_chromium(&browser, &sample.join("report.html"), "sample-committed");
    let dir = tempfile::tempdir().unwrap();
    let r = results::load(&sample.join("results.json")).unwrap();
    let files = report::write(&[r], dir.path()).unwrap();
    check_in_chromium(&browser, &files.html, "sample-rendered");
}

/// Two results files: each subject keeps one colour in every chart, the
/// same colour as in a single-file report.
#[test]
fn two_results_files_keep_one_colour_per_subject() {
    let a = common::synthetic("host-a", 1, 6);
    let mut b = common::synthetic("host-b", 2, 6);
    // The second file lacks the container: positions shift, colours must not.
    b.metrics.retain(|m| m.subject != "container");
    let charts = report::content::charts(&[a.clone(), b]);
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for chart in &charts {
        let svg = chart.render(&dir.path().join("c.png")).unwrap();
        for subject in chart.subjects() {
            let hex = report::charts::palette::hex(&subject).to_uppercase();
            assert!(
                svg.to_uppercase().contains(&hex),
                "{}: {subject} is not drawn in {hex}",
                chart.name
            );
            seen += 1;
        }
    }
    assert!(seen > 20, "only {seen} subject colours checked");
    assert_ne!(
        report::charts::palette::hex("container"),
        report::charts::palette::hex("vm-tiny")
    );
    // A subject the palette does not know gets the same colour every time.
    assert_eq!(
        report::charts::palette::hex("podman-runsc"),
        report::charts::palette::hex("podman-runsc")
    );
}

#[test]
fn compare_table_fits_100_columns_and_has_a_json_twin() {
    let r = common::synthetic("table-host", 11, 7);
    let table = report::compare::Table::from_results(&r);
    assert_eq!(table.columns, ["native", "container", "vm-tiny"]);
    assert_eq!(table.rows.len(), 10, "every headline row is present");
    let text = table.render(100);
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "line wider than 100 columns: {line:?}"
        );
    }
    assert!(
        text.contains("boot time")
            && text.contains("×native")
            && text.contains("Not measured: vm-linux")
    );
    // A narrow terminal still gets a table, just without ratio intervals.
    for line in table.render(80).lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cmp = report::compare::write(&r, dir.path()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&cmp.to_json()).unwrap();
    assert_eq!(json["table"]["rows"][0]["id"], "boot");
    let vm_boot = &json["table"]["rows"][0]["cells"][2];
    assert!(vm_boot["ratio_to_native"]["median"].as_f64().unwrap() > 5.0);
    // The peers' start latencies come with the summary, in text and JSON.
    let starts = text
        .lines()
        .skip_while(|l| !l.starts_with("Start latency: "))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        starts.contains("runc") && starts.contains("container"),
        "{text}"
    );
    let subjects: Vec<&str> = json["table"]["starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subject"].as_str().unwrap())
        .collect();
    assert!(
        subjects.contains(&"runc") && subjects.contains(&"container"),
        "{subjects:?}"
    );
    assert!(
        results::load(&cmp.results_file).is_ok() && cmp.results_file.with_extension("csv").exists()
    );
}

/// fio's figures beside the probe's: an agreement ratio per metric, and a
/// disagreement beyond 20% said in the text.
#[test]
fn fio_cross_check_is_shown_and_disagreement_called_out() {
    use bench::results::{Better, Metric, MetricKey};
    let mut r = common::synthetic("fio-host", 3, 6);
    for (metric, unit, better, factor) in [
        ("seq_write_mb_per_s", "MB/s", Better::Higher, 1.05),
        ("rand_read_iops", "IOPS", Better::Higher, 2.0),
    ] {
        let native = r
            .metric("native", "io", metric, None)
            .unwrap()
            .summary
            .median;
        r.metrics.push(
            Metric::from_samples(
                MetricKey {
                    subject: "fio".into(),
                    probe: "io".into(),
                    metric: metric.into(),
                    kind: Some("direct".into()),
                },
                unit,
                better,
                &[(0, native * factor)],
            )
            .unwrap(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let files = report::write(&[r], dir.path()).unwrap();
    let md = std::fs::read_to_string(files.markdown).unwrap();
    assert!(md.contains("## The io probe against fio"), "{md}");
    assert!(md.contains("| 0.952× | yes |"), "{md}");
    assert!(
        md.contains("| 0.5× | no |") || md.contains("| 0.500× | no |"),
        "{md}"
    );
    assert!(md.contains("They disagree by more than 20%") && md.contains("random read"));
}

/// `isolab bench`'s summary carries the network rows: the container's veth
/// against native loopback and NAT over the bridge, with their intervals.
#[test]
fn bench_summary_has_veth_ratio_and_nat_cost_with_intervals() {
    use bench::results::{Better, Metric, MetricKey};
    let mut r = common::synthetic("net-host", 5, 7);
    let rr = |subject: &str, kind: &str, samples: &[f64]| {
        let key = MetricKey {
            subject: subject.into(),
            probe: "net".into(),
            metric: "rr_p50_us".into(),
            kind: Some(kind.into()),
        };
        let pairs: Vec<(u32, f64)> = (0..).zip(samples.iter().copied()).collect();
        Metric::from_samples(key, "µs", Better::Lower, &pairs).unwrap()
    };
    r.metrics.extend([
        rr(
            "native",
            "loopback",
            &[22.0, 22.4, 22.1, 22.9, 22.5, 22.3, 22.6],
        ),
        rr(
            "container",
            "veth",
            &[25.6, 26.1, 25.8, 26.4, 26.0, 25.9, 26.2],
        ),
        rr(
            "container",
            "bridge",
            &[27.0, 27.4, 27.1, 27.3, 27.2, 27.5, 27.3],
        ),
        rr(
            "container",
            "bridge+nat",
            &[31.0, 31.2, 30.9, 31.1, 31.3, 31.0, 31.2],
        ),
    ]);
    r.ratios.clear();
    r.add_ratios("container", "native");
    let text = report::compare::Table::from_results(&r).render(200);
    let veth = text
        .lines()
        .find(|l| l.contains("container veth round trip"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(veth.contains("× native loopback [1.1"), "{veth}");
    assert!(veth.contains("worse than native"), "{veth}");
    let nat = text
        .lines()
        .find(|l| l.contains("NAT (published port, DNAT) adds"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(nat.contains("NAT/bridge 1.1") && nat.contains('['), "{nat}");
    // The host's label is the report's column, not a subject: not in the summary.
    assert!(nat.starts_with("Network: container: "), "{nat}");
}
