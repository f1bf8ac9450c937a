//! The report writer: `report.md`, `report.html` (self-contained) and charts
//! as SVG and PNG, from one results file or several laid side by side; and
//! `compare`, the main job (matrix, then the terminal table and the report).

pub mod catalog;
pub mod charts;
pub mod compare;
pub mod content;
pub mod document;
pub mod figures;
pub mod html;
pub mod markdown;

use std::path::{Path, PathBuf};

use bench::results::Results;

/// Errors writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Nothing to report on.
    #[error("no results given: pass at least one results file")]
    NoResults,
    /// Two results files have the same label, so their columns would be ambiguous.
    #[error("two results files are both labelled {0:?}; give each run a distinct label")]
    DuplicateLabel(String),
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A chart could not be drawn.
    #[error("drawing chart {chart}: {message}")]
    Chart {
        /// Chart name.
        chart: String,
        /// What failed.
        message: String,
    },
}

/// The files a report consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// Chart SVGs.
    pub svgs: Vec<PathBuf>,
    /// Chart PNGs.
    pub pngs: Vec<PathBuf>,
}

/// Writes the report for `results` into `out_dir` (created if needed).
/// Several results are laid side by side; labels must be distinct.
pub fn write(results: &[Results], out_dir: &Path) -> Result<ReportFiles, ReportError> {
    if results.is_empty() {
        return Err(ReportError::NoResults);
    }
    let results = distinct_labels(results)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let chart_dir = out_dir.join(content::CHART_DIR);
    std::fs::create_dir_all(&chart_dir).map_err(io(&chart_dir))?;
    remove_old_charts(&chart_dir).map_err(io(&chart_dir))?;

    let mut rendered = Vec::new();
    let (mut svgs, mut pngs) = (Vec::new(), Vec::new());
    for chart in content::charts(&results) {
        let png = chart_dir.join(format!("{}.png", chart.name));
        let svg_path = chart_dir.join(format!("{}.svg", chart.name));
        let svg = chart.render(&png).map_err(|message| ReportError::Chart {
            chart: chart.name.clone(),
            message,
        })?;
        std::fs::write(&svg_path, &svg).map_err(io(&svg_path))?;
        tracing::debug!(chart = %chart.name, "chart written");
        svgs.push(svg_path);
        pngs.push(png);
        rendered.push((chart, svg));
    }

    let doc = content::build(&results, &rendered);
    let markdown = out_dir.join("report.md");
    std::fs::write(&markdown, markdown::render(&doc)).map_err(io(&markdown))?;
    let html = out_dir.join("report.html");
    std::fs::write(&html, html::render(&doc, "isolab report")).map_err(io(&html))?;
    Ok(ReportFiles {
        markdown,
        html,
        svgs,
        pngs,
    })
}

/// Charts of an earlier report in the same directory would be mistaken for
/// this one's; only chart files (`.svg`, `.png`) are removed.
fn remove_old_charts(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_chart = path.extension().is_some_and(|e| e == "svg" || e == "png");
        if is_chart && path.is_file() {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Labels must tell files apart; identical labels from different runs get
/// their creation time appended, true duplicates are refused.
fn distinct_labels(results: &[Results]) -> Result<Vec<Results>, ReportError> {
    let mut out: Vec<Results> = results.to_vec();
    for i in 0..out.len() {
        if out[..i].iter().any(|r| r.label == out[i].label) {
            let label = format!("{} {}", out[i].label, out[i].created);
            if out[..i].iter().any(|r| {
                r.label == label || (r.label == out[i].label && r.created == out[i].created)
            }) {
                return Err(ReportError::DuplicateLabel(out[i].label.clone()));
            }
            out[i].label = label;
        }
    }
    Ok(out)
}
