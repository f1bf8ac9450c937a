//! Charts drawn with plotters, each rendered twice from the same description:
//! SVG (for the HTML report) and PNG (for Markdown viewers and slides).
//!
//! Every chart colours a subject (an isolation or a peer) by
//! [`palette::colour`], whatever its position; draws every raw sample, not
//! only a summary; puts values spanning more than a decade on a log axis
//! ([`scale`]); and draws published reference figures as labelled
//! annotations that never set the axis range.
//!
//! PNG text is rasterized from the bundled DejaVu Sans, so rendering needs no
//! system fonts; the SVG names the same family and lets the viewer draw it.

mod ecdf;
mod frame;
pub mod palette;
mod samples;
pub mod scale;
mod spectrum;
mod stacked;

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Width and height of every chart, in pixels.
pub const SIZE: (u32, u32) = (900, 500);

pub(crate) const FONT: &str = "sans-serif";

/// One subject's values in a [`ChartKind::Samples`] chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Subject (sets the colour).
    pub subject: String,
    /// Text under the slot (empty: the group's label says it all).
    pub label: String,
    /// Every raw sample, drawn as a point.
    pub samples: Vec<f64>,
    /// The median, drawn as the bar.
    pub median: f64,
    /// Not like for like (marked †; the chart's notes say why).
    pub dagger: bool,
}

/// Slots side by side under one label on the x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Label under the group.
    pub label: String,
    /// Its slots.
    pub slots: Vec<Slot>,
}

/// A reference figure drawn on a chart; it never sets the axis range, and
/// when it falls outside the range it is written at the edge instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// Value on the y axis.
    pub value: f64,
    /// What it is and where it comes from.
    pub label: String,
    /// Only across this group (index), or across the whole chart.
    pub group: Option<usize>,
}

/// One subject's distribution in an ECDF.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Subject (sets the colour).
    pub subject: String,
    /// Legend text.
    pub label: String,
    /// Every raw sample.
    pub samples: Vec<f64>,
    /// Drawn dashed (a different measure than the solid lines).
    pub dashed: bool,
    /// Not like for like.
    pub dagger: bool,
}

/// One bar of a stacked chart.
#[derive(Debug, Clone, PartialEq)]
pub struct StackBar {
    /// Subject (colours its label).
    pub subject: String,
    /// Text under the bar.
    pub label: String,
    /// One value per part; `None` when that part is not measured.
    pub parts: Vec<Option<f64>>,
    /// Not like for like.
    pub dagger: bool,
}

/// A subject on the isolation spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Subject (sets the colour).
    pub subject: String,
    /// Text beside the marker.
    pub label: String,
    /// Start time (median).
    pub x: f64,
    /// Steady-state overhead; `None` when only its start was measured.
    pub y: Option<f64>,
    /// Not like for like.
    pub dagger: bool,
}

/// A published figure on the spectrum: a hollow marker on the x axis, never
/// a measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct RefPoint {
    /// What and whose.
    pub label: String,
    /// Its start time.
    pub x: f64,
}

/// What a chart shows.
#[derive(Debug, Clone, PartialEq)]
pub enum ChartKind {
    /// Medians as bars with every raw sample as a point, in groups.
    Samples {
        /// Groups along the x axis.
        groups: Vec<Group>,
        /// A baseline that belongs in range (e.g. "native = 1" on a ratio chart).
        baseline: Option<Annotation>,
        /// Published reference figures.
        annotations: Vec<Annotation>,
    },
    /// Empirical cumulative distributions on a log x axis.
    Ecdf {
        /// One line per subject and measure.
        lines: Vec<Line>,
        /// X axis unit.
        x_unit: String,
    },
    /// Stacked bars: one per subject, parts stacked.
    Stacked {
        /// Legend names of the parts, bottom first.
        parts: Vec<String>,
        /// The bars.
        bars: Vec<StackBar>,
    },
    /// Start time (x, log) against steady-state overhead (y).
    Spectrum {
        /// X axis unit.
        x_unit: String,
        /// Measured subjects.
        points: Vec<Point>,
        /// Published figures.
        references: Vec<RefPoint>,
    },
}

/// A chart description.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File stem (`boot`, `io_ratios`…).
    pub name: String,
    /// Title drawn above the plot (and nowhere else).
    pub title: String,
    /// Y axis title (unit; "log scale" is added when the axis is).
    pub y_label: String,
    /// The data.
    pub kind: ChartKind,
    /// Footnotes drawn under the plot (each † with its one-line reason).
    pub notes: Vec<String>,
    /// What to notice and why: printed beside the chart in the report.
    pub notice: String,
}

/// Registers the bundled font with plotters once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
            plotters::style::register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| "the bundled DejaVuSans.ttf could not be parsed".to_string())
        })
        .clone()
}

impl Chart {
    /// Renders the chart to an SVG string and writes the PNG to `png_path`.
    pub fn render(&self, png_path: &Path) -> Result<String, String> {
        register_font()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| e.to_string())?;
        }
        let root = BitMapBackend::new(png_path, SIZE).into_drawing_area();
        self.draw(&root)?;
        root.present()
            .map_err(|e| format!("{}: {e}", png_path.display()))?;
        Ok(svg)
    }

    /// The subjects this chart colours, in order of appearance.
    pub fn subjects(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |s: &str| {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        };
        match &self.kind {
            ChartKind::Samples { groups, .. } => groups
                .iter()
                .flat_map(|g| &g.slots)
                .for_each(|s| add(&s.subject)),
            ChartKind::Ecdf { lines, .. } => lines.iter().for_each(|l| add(&l.subject)),
            ChartKind::Stacked { bars, .. } => bars.iter().for_each(|b| add(&b.subject)),
            ChartKind::Spectrum { points, .. } => points.iter().for_each(|p| add(&p.subject)),
        }
        out
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match &self.kind {
            ChartKind::Samples {
                groups,
                baseline,
                annotations,
            } => samples::draw(self, root, groups, baseline.as_ref(), annotations),
            ChartKind::Ecdf { lines, x_unit } => ecdf::draw(self, root, lines, x_unit),
            ChartKind::Stacked { parts, bars } => stacked::draw(self, root, parts, bars),
            ChartKind::Spectrum {
                x_unit,
                points,
                references,
            } => spectrum::draw(self, root, x_unit, points, references),
        }
        .map_err(|e| format!("chart {}: {e}", self.name))
    }
}

/// A compact number for tables: three significant digits.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        // Tiny ratios (e.g. a page-cache fsync against a real one) keep their digits.
        format!("{v:.2e}")
    }
}
