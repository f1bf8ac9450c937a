//! The `isolab compare` engine: a short but statistically honest matrix, a
//! side-by-side table (native, container, VM, with ratios to native) for the
//! terminal and as JSON, and the full report written to a directory.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ReportError;
use crate::catalog::HEADLINES;
use crate::content::num;
use bench::matrix::{self, BenchError, BenchOptions};
use bench::results::{self, Better, Results, ResultsError, Status};
use isolation::progress::Progress;

/// What `isolab compare` runs and where it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Report directory (default `reports/latest`).
    pub out_dir: PathBuf,
    /// The matrix; by default the quick one.
    pub bench: BenchOptions,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            out_dir: PathBuf::from("reports/latest"),
            bench: BenchOptions::quick(),
        }
    }
}

/// Errors of `isolab compare`.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The matrix could not run.
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// The results file could not be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// A ratio to native with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioCell {
    /// Median of the paired ratios.
    pub median: f64,
    /// Lower end of its 95% CI.
    pub ci_low: f64,
    /// Upper end of its 95% CI.
    pub ci_high: f64,
}

/// One isolation's value for one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Median.
    pub median: f64,
    /// Lower end of the 95% CI.
    pub ci_low: f64,
    /// Upper end of the 95% CI.
    pub ci_high: f64,
    /// Runs.
    pub n: usize,
    /// Variant (`syscall`/`vmexit`, `direct`/`buffered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Ratio to native, for non-native columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_native: Option<RatioCell>,
}

/// One headline metric across the isolations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Stable identifier.
    pub id: String,
    /// Title.
    pub title: String,
    /// Unit.
    pub unit: String,
    /// Which direction is better.
    pub better: Better,
    /// One cell per column (`None`: not measured).
    pub cells: Vec<Option<Cell>>,
}

/// The side-by-side table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// Isolation columns, native first.
    pub columns: Vec<String>,
    /// Rows in headline order.
    pub rows: Vec<Row>,
    /// Subjects that could not be measured, with the reason.
    pub not_measured: Vec<(String, String)>,
    /// Why the host counts as emulated (its times are emulated times).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulated: Option<String>,
    /// Start latency of isolab and the peers (`start` probe), as in the
    /// report's peer table.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<StartRow>,
    /// The container's veth round trip against native loopback and NAT's
    /// cost over the bridge, with their intervals (the `net` probe).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
}

/// One subject's start latency and its ratios to the peers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartRow {
    /// `container`, `vm-tiny`, `runc`, `crun`, `bwrap`, `qemu-microvm`.
    pub subject: String,
    /// Unit of the cell (ms).
    pub unit: String,
    /// Median and 95% CI.
    pub cell: Cell,
    /// `(peer, ours/peer median)` for isolab's own subjects.
    pub versus: Vec<(String, f64)>,
}

fn start_rows(r: &Results) -> Vec<StartRow> {
    r.metrics
        .iter()
        .filter(|m| m.probe == "start")
        .map(|m| StartRow {
            subject: m.subject.clone(),
            unit: m.unit.clone(),
            cell: Cell {
                median: m.summary.median,
                ci_low: m.summary.ci_low,
                ci_high: m.summary.ci_high,
                n: m.summary.n,
                kind: None,
                ratio_to_native: None,
            },
            versus: r
                .ratios
                .iter()
                .filter(|x| x.probe == "start" && x.numerator == m.subject)
                .map(|x| (x.denominator.clone(), x.summary.median))
                .collect(),
        })
        .collect()
}

impl Table {
    /// Builds the table from a results file.
    pub fn from_results(r: &Results) -> Table {
        let columns: Vec<String> = crate::content::isolations_present(std::slice::from_ref(r))
            .into_iter()
            .map(String::from)
            .collect();
        let mut rows = Vec::new();
        for h in &HEADLINES {
            let cells: Vec<Option<Cell>> = columns
                .iter()
                .map(|c| {
                    let m = r.metric(c, h.probe, h.metric, None)?;
                    let ratio = (c != "native")
                        .then(|| crate::content::headline_ratio(r, h, c))
                        .flatten()
                        .map(|x| RatioCell {
                            median: x.summary.median,
                            ci_low: x.summary.ci_low,
                            ci_high: x.summary.ci_high,
                        });
                    Some(Cell {
                        median: m.summary.median,
                        ci_low: m.summary.ci_low,
                        ci_high: m.summary.ci_high,
                        n: m.summary.n,
                        kind: m.kind.clone(),
                        ratio_to_native: ratio,
                    })
                })
                .collect();
            let Some(first) = columns
                .iter()
                .find_map(|c| r.metric(c, h.probe, h.metric, None))
            else {
                continue;
            };
            rows.push(Row {
                id: h.id.into(),
                title: h.title.into(),
                unit: first.unit.clone(),
                better: first.better,
                cells,
            });
        }
        let not_measured = r
            .subjects
            .iter()
            .filter(|s| s.status != Status::Measured)
            .map(|s| (s.name.clone(), s.reason.clone().unwrap_or_default()))
            .collect();
        Table {
            columns,
            rows,
            not_measured,
            emulated: r.environment.emulated.clone(),
            starts: start_rows(r),
            network: crate::content::network_summary(r),
        }
    }

    /// Renders the table for a terminal `width` columns wide (never wider):
    /// medians with the CI half-width in percent, and ratios to native with
    /// their CI; narrower terminals drop the ratio intervals first.
    pub fn render(&self, width: usize) -> String {
        for detail in [true, false] {
            let text = self.render_with(detail);
            if text.lines().all(|l| l.chars().count() <= width) {
                return text + &self.footer(width);
            }
        }
        let clipped: Vec<String> = self
            .render_with(false)
            .lines()
            .map(|l| l.chars().take(width).collect())
            .collect();
        clipped.join("\n") + "\n" + &self.footer(width)
    }

    fn render_with(&self, detail: bool) -> String {
        let mut header = vec!["metric".to_string(), "unit".to_string()];
        for c in &self.columns {
            header.push(c.clone());
            if c != "native" {
                header.push("×native".into());
            }
        }
        let mut grid = vec![header];
        for row in &self.rows {
            let mut line = vec![
                row.title.clone(),
                emulated_unit(&row.unit, self.emulated.is_some()),
            ];
            for (c, cell) in self.columns.iter().zip(&row.cells) {
                let native_kind = row
                    .cells
                    .first()
                    .and_then(|n| n.as_ref())
                    .and_then(|n| n.kind.as_deref());
                let differs = cell
                    .as_ref()
                    .is_some_and(|x| row_caveat(row, c, x, native_kind).is_some());
                let marker = if differs { "†" } else { "" };
                line.push(
                    cell.as_ref()
                        .map_or("–".into(), |x| format!("{}{marker}", value_cell(x))),
                );
                if c != "native" {
                    let ratio = cell.as_ref().and_then(|x| x.ratio_to_native);
                    line.push(ratio.map_or("–".into(), |x| ratio_cell(&x, detail)));
                }
            }
            grid.push(line);
        }
        let cols = grid[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &grid {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i < 2 {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    fn footer(&self, width: usize) -> String {
        let n = self
            .rows
            .iter()
            .flat_map(|r| r.cells.iter().flatten())
            .map(|c| c.n)
            .min()
            .unwrap_or(0);
        let mut lines = vec![format!(
            "Median ±95% CI half-width; ×native: median of per-round ratios [95% CI]; n ≥ {n} runs each."
        )];
        if let Some(why) = &self.emulated {
            lines.push(format!(
                "EMULATED HOST ({why}): every time and rate above is an emulated one; it shows \
                 what works, not how fast, and is not comparable with a real host's."
            ));
        }
        let marked: Vec<String> = self
            .rows
            .iter()
            .flat_map(|r| {
                let native = r
                    .cells
                    .first()
                    .and_then(|c| c.as_ref())
                    .and_then(|c| c.kind.clone());
                self.columns
                    .iter()
                    .zip(&r.cells)
                    .skip(1)
                    .filter_map(move |(col, c)| row_caveat(r, col, c.as_ref()?, native.as_deref()))
            })
            .collect();
        for why in marked {
            lines.push(format!("† not like for like: {why}."));
        }
        if !self.starts.is_empty() {
            let starts: Vec<String> = self
                .starts
                .iter()
                .map(|s| {
                    let versus: Vec<String> = s
                        .versus
                        .iter()
                        .map(|(peer, x)| format!("{}× {peer}", num(*x)))
                        .collect();
                    let versus = if versus.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", versus.join(", "))
                    };
                    format!("{} {} {}{versus}", s.subject, value_cell(&s.cell), s.unit)
                })
                .collect();
            lines.push(format!("Start latency: {}.", starts.join("; ")));
        }
        lines.extend(self.network.iter().cloned());
        for (name, reason) in &self.not_measured {
            lines.push(format!("Not measured: {name}: {reason}"));
        }
        lines
            .iter()
            .map(|l| wrap(l, width))
            .collect::<Vec<_>>()
            .join("")
    }
}

/// Why the `column` cell of `row` is not like for like with native's.
fn row_caveat(row: &Row, column: &str, cell: &Cell, native_kind: Option<&str>) -> Option<String> {
    let h = HEADLINES.iter().find(|h| h.id == row.id)?;
    crate::catalog::caveat(column, h.probe, h.metric, cell.kind.as_deref(), native_kind)
}

/// The unit, marked `(emulated)` on an emulated host for everything timed
/// (all but sizes).
pub fn emulated_unit(unit: &str, emulated: bool) -> String {
    if emulated && unit != "MiB" {
        format!("{unit} (emulated)")
    } else {
        unit.to_string()
    }
}

fn value_cell(c: &Cell) -> String {
    let half = if c.median != 0.0 {
        (c.ci_high - c.ci_low) / 2.0 / c.median.abs() * 100.0
    } else {
        0.0
    };
    format!("{} ±{half:.0}%", num(c.median))
}

fn ratio_cell(r: &RatioCell, detail: bool) -> String {
    if detail {
        format!("{} [{}–{}]", num(r.median), num(r.ci_low), num(r.ci_high))
    } else {
        num(r.median)
    }
}

/// Wraps `text` at spaces so no line exceeds `width` characters.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from("  ");
        }
        if !line.is_empty() && line != "  " {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// What `isolab compare` produced.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The side-by-side table.
    pub table: Table,
    /// The results file (JSON; CSV beside it).
    pub results_file: PathBuf,
    /// `report.md`.
    pub report_markdown: PathBuf,
    /// `report.html`.
    pub report_html: PathBuf,
    /// Wall time of the matrix, in seconds.
    pub elapsed_s: f64,
}

impl Comparison {
    /// The terminal table, at most `width` columns wide.
    pub fn render_table(&self, width: usize) -> String {
        self.table.render(width)
    }

    /// The JSON twin of the table and file locations.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("comparison always serializes")
    }
}

/// Runs the short matrix, writes `results.json` (+ CSV) and the report into
/// `out_dir`, and returns the table.
pub fn run(opts: &CompareOptions, progress: &dyn Progress) -> Result<Comparison, CompareError> {
    let kernel_note = ensure_linux_kernel(progress);
    let mut results = matrix::run(&opts.bench, progress)?;
    results.notes.extend(kernel_note);
    write(&results, &opts.out_dir)
}

/// Builds the guest kernel on first use, but only where a Linux guest can
/// boot (a build takes minutes and would be wasted elsewhere). Returns a note
/// when the build was attempted and failed; the matrix then records vm-linux
/// as unsupported with the backend's own reason.
fn ensure_linux_kernel(progress: &dyn Progress) -> Option<String> {
    if !isolation::doctor::run().kvm.linux_guest {
        return None;
    }
    match isolation::kernel::cached_path() {
        Ok(Some(_)) => None,
        _ => {
            progress.message("building the guest kernel (first use only)");
            isolation::kernel::build(progress)
                .err()
                .map(|e| format!("vm-linux: building the guest kernel failed: {e}"))
        }
    }
}

/// Writes the results and report of an already-run matrix into `out_dir`.
pub fn write(results: &Results, out_dir: &Path) -> Result<Comparison, CompareError> {
    let results_file = out_dir.join("results.json");
    results::save(results, &results_file)?;
    let files = crate::write(std::slice::from_ref(results), out_dir)?;
    Ok(Comparison {
        table: Table::from_results(results),
        results_file,
        report_markdown: files.markdown,
        report_html: files.html,
        elapsed_s: results.settings.elapsed_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_respects_width() {
        let text = "Not measured: vm-linux: a Linux guest cannot boot on this software-assisted KVM host at all";
        for line in wrap(text, 30).lines() {
            assert!(line.chars().count() <= 30, "{line:?}");
        }
    }

    #[test]
    fn cells_show_relative_ci() {
        let c = Cell {
            median: 100.0,
            ci_low: 95.0,
            ci_high: 105.0,
            n: 5,
            kind: None,
            ratio_to_native: None,
        };
        assert_eq!(value_cell(&c), "100 ±5%");
        let r = RatioCell {
            median: 1.5,
            ci_low: 1.25,
            ci_high: 1.75,
        };
        assert_eq!(ratio_cell(&r, true), "1.50 [1.25–1.75]");
        assert_eq!(ratio_cell(&r, false), "1.50");
    }
}
