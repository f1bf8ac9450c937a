//! `isolab compare`, `isolab bench` and `isolab report`.

use std::path::{Path, PathBuf};

use bench::matrix::{BenchOptions, Progress};
use report::compare::CompareOptions;

/// Terminal width the table is laid out for.
const TABLE_WIDTH: usize = 100;

/// The main job: the quick matrix, the side-by-side table, the report.
pub fn compare(out: PathBuf, json: bool) -> anyhow::Result<i32> {
    let opts = CompareOptions {
        out_dir: out,
        ..CompareOptions::default()
    };
    let progress = Progress::stderr();
    let c = report::compare::run(&opts, &progress)?;
    progress.bar().finish_and_clear();
    if json {
        println!("{}", c.to_json());
    } else {
        print!("{}", c.render_table(TABLE_WIDTH));
        println!();
        println!("matrix took {:.0} s", c.elapsed_s);
        println!("results: {}", c.results_file.display());
        println!("report:  {}", c.report_markdown.display());
        println!("         {}", c.report_html.display());
    }
    Ok(0)
}

/// The full (or quick) matrix, written to a results file (+ CSV).
pub fn bench(quick: bool, runs: Option<u32>, out: &Path) -> anyhow::Result<i32> {
    let mut opts = if quick {
        BenchOptions::quick()
    } else {
        BenchOptions::full()
    };
    if let Some(n) = runs {
        opts.rounds = n;
    }
    let progress = Progress::stderr();
    let results = bench::matrix::run(&opts, &progress)?;
    progress.bar().finish_and_clear();
    let csv = bench::results::save(&results, out)?;
    print!(
        "{}",
        report::compare::Table::from_results(&results).render(TABLE_WIDTH)
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
