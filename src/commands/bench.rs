//! `isolab compare`, `isolab bench` and `isolab report`.

use std::path::{Path, PathBuf};

use bench::matrix::BenchOptions;
use isolation::progress::Progress;

use crate::progress::Bar;
use report::compare::CompareOptions;

/// Width the table is laid out for when stdout is not a terminal and
/// `COLUMNS` is unset.
const DEFAULT_WIDTH: usize = 100;
/// Narrower than this, a table row cannot hold a metric and one column.
const MIN_WIDTH: usize = 40;

/// The table's width: `COLUMNS` when set, else the terminal's width when
/// stdout is one, else [`DEFAULT_WIDTH`]; never below [`MIN_WIDTH`].
fn table_width() -> usize {
    width_from(std::env::var("COLUMNS").ok().as_deref(), terminal_columns())
}

fn width_from(columns: Option<&str>, terminal: Option<usize>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&w| w > 0)
        .or(terminal)
        .unwrap_or(DEFAULT_WIDTH)
        .max(MIN_WIDTH)
}

/// Columns of the terminal on stdout, if stdout is a terminal.
fn terminal_columns() -> Option<usize> {
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass and
    // fails harmlessly (ENOTTY) when stdout is not a terminal.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// The main job: the quick matrix, the side-by-side table, the report.
pub fn compare(out: PathBuf, json: bool) -> anyhow::Result<i32> {
    let mut opts = CompareOptions {
        out_dir: out,
        ..CompareOptions::default()
    };
    opts.bench.oci_runtime = std::env::current_exe().ok();
    let progress = Bar::stderr();
    let c = report::compare::run(&opts, &progress)?;
    progress.finish();
    if json {
        println!("{}", c.to_json());
    } else {
        print!("{}", c.render_table(table_width()));
        println!();
        println!("matrix took {:.0} s", c.elapsed_s);
        println!("results: {}", c.results_file.display());
        println!("report:  {}", c.report_markdown.display());
        println!("         {}", c.report_html.display());
    }
    Ok(0)
}

/// The full (or quick) matrix, written to a results file (+ CSV); with
/// `json`, the results document is also printed to stdout instead of the table.
pub fn bench(quick: bool, runs: Option<u32>, out: &Path, json: bool) -> anyhow::Result<i32> {
    let mut opts = if quick {
        BenchOptions::quick()
    } else {
        BenchOptions::full()
    };
    if let Some(n) = runs {
        opts.rounds = n;
    }
    // This binary is the OCI runtime podman is given for the podman-isolab peer
    // (and, under the name isolab-vm, for podman-isolab-vm).
    opts.oci_runtime = std::env::current_exe().ok();
    let progress = Bar::stderr();
    let results = bench::matrix::run(&opts, &progress)?;
    progress.finish();
    let csv = bench::results::save(&results, out)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(0);
    }
    print!(
        "{}",
        report::compare::Table::from_results(&results).render(table_width())
    );
    println!();
    println!("results: {} (CSV: {})", out.display(), csv.display());
    Ok(0)
}

/// A report from one or more results files.
pub fn report(files: &[PathBuf], out: &Path) -> anyhow::Result<i32> {
    let results = files
        .iter()
        .map(|f| bench::results::load(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let written = report::write(&results, out)?;
    println!("report: {}", written.markdown.display());
    println!("        {}", written.html.display());
    println!(
        "charts: {} SVG, {} PNG in {}",
        written.svgs.len(),
        written.pngs.len(),
        out.display()
    );
    Ok(0)
}

/// `isolab bench --soak`: many runs per isolation, failures and leaks counted.
/// Exits 1 if anything failed or leaked.
pub fn soak(runs: Option<u32>) -> anyhow::Result<i32> {
    let mut opts = bench::soak::SoakOptions::default();
    if let Some(n) = runs {
        opts.runs = n;
    }
    let report = bench::soak::run(&opts);
    print!("{}", bench::soak::render(&report));
    Ok(if report.clean() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_beat_the_terminal_and_the_width_has_a_floor() {
        assert_eq!(width_from(Some("132"), Some(80)), 132);
        assert_eq!(width_from(None, Some(80)), 80);
        assert_eq!(width_from(None, None), DEFAULT_WIDTH);
        assert_eq!(width_from(Some("wide"), Some(90)), 90);
        assert_eq!(width_from(Some("0"), None), DEFAULT_WIDTH);
        assert_eq!(width_from(Some("10"), None), MIN_WIDTH);
    }
}
