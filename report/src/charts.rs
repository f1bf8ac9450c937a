//! Charts drawn with plotters, each rendered twice from the same description:
//! SVG (embedded in the HTML report) and PNG (for Markdown viewers and slides).
//!
//! PNG text is rasterized from the bundled DejaVu Sans, so rendering needs no
//! system fonts; the SVG names the same family and lets the viewer draw it.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::prelude::*;

/// Width and height of every chart, in pixels.
pub const SIZE: (u32, u32) = (860, 460);

const FONT: &str = "sans-serif";

/// Series colours: distinguishable, and readable when printed in grey.
const PALETTE: [RGBColor; 8] = [
    RGBColor(55, 110, 175),
    RGBColor(230, 130, 30),
    RGBColor(60, 160, 90),
    RGBColor(200, 60, 60),
    RGBColor(140, 100, 180),
    RGBColor(130, 90, 70),
    RGBColor(210, 110, 170),
    RGBColor(110, 110, 110),
];

/// A value with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Bar height (the median).
    pub value: f64,
    /// Lower end of the error bar.
    pub low: f64,
    /// Upper end of the error bar.
    pub high: f64,
}

/// One series of a grouped bar chart: a value (or nothing) per group.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// One entry per group.
    pub bars: Vec<Option<Bar>>,
}

/// A horizontal reference line (e.g. "native = 1" or a published target).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Y value.
    pub value: f64,
    /// Legend text.
    pub label: String,
}

/// What a chart shows.
#[derive(Debug, Clone, PartialEq)]
pub enum ChartKind {
    /// Grouped bars with 95% CI error bars.
    Bars {
        /// Group names along the x axis.
        groups: Vec<String>,
        /// Series, drawn side by side within each group.
        series: Vec<Series>,
        /// Optional reference line.
        reference: Option<Reference>,
    },
    /// Stacked bars (e.g. the boot-time breakdown): one bar per name, parts stacked.
    Stacked {
        /// Bar names along the x axis.
        bars: Vec<String>,
        /// Parts: legend name and one value per bar.
        parts: Vec<(String, Vec<f64>)>,
    },
}

/// A chart description.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File stem (`boot`, `io_ratios`…).
    pub name: String,
    /// Title drawn above the plot.
    pub title: String,
    /// Y axis label (with unit).
    pub y_label: String,
    /// The data.
    pub kind: ChartKind,
}

/// Registers the bundled font with plotters once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
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

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match &self.kind {
            ChartKind::Bars {
                groups,
                series,
                reference,
            } => self.draw_bars(root, groups, series, reference.as_ref()),
            ChartKind::Stacked { bars, parts } => self.draw_stacked(root, bars, parts),
        }
        .map_err(|e| format!("chart {}: {e}", self.name))
    }

    fn draw_bars<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        groups: &[String],
        series: &[Series],
        reference: Option<&Reference>,
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let top = series
            .iter()
            .flat_map(|s| s.bars.iter().flatten())
            .map(|b| b.high.max(b.value))
            .chain(reference.map(|r| r.value))
            .fold(0.0f64, f64::max);
        let y_max = if top > 0.0 { top * 1.18 } else { 1.0 };
        let n = groups.len().max(1);
        let mut chart = self.bar_axes(root, groups, n, y_max, 15)?;

        let s_count = series.len().max(1);
        let width = 0.8 / s_count as f64;
        // A single series is coloured per group, so each isolation keeps its colour.
        let per_group_colour = series.len() == 1;
        for (si, s) in series.iter().enumerate() {
            let slot = Slot {
                index: si,
                width,
                per_group_colour,
            };
            draw_series_bars(&mut chart, s, &slot, y_max)?;
        }
        if let Some(r) = reference {
            let v = r.value;
            chart
                .draw_series([PathElement::new(
                    vec![(0, v), (x(n as f64), v)],
                    RED.stroke_width(1),
                )])?
                .label(r.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 12, y)], RED.stroke_width(2))
                });
        }
        if !per_group_colour || reference.is_some() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font((FONT, 13))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
        Ok(())
    }

    /// A bar chart's frame: caption, `n` group slots named by `groups` in
    /// `x_label_size` text, values up to `y_max`, and the mesh.
    fn bar_axes<'a, DB: DrawingBackend>(
        &self,
        root: &'a DrawingArea<DB, Shift>,
        groups: &[String],
        n: usize,
        y_max: f64,
        x_label_size: u32,
    ) -> Result<ChartContext<'a, DB, BarCoord>, Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let keys: Vec<i32> = (0..n).map(|g| x(g as f64 + 0.5)).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d((0..x(n as f64)).with_key_points(keys), 0.0..y_max)?;
        let names = groups.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|v| names.get((*v / UNIT) as usize).cloned().unwrap_or_default())
            .x_label_style((FONT, x_label_size))
            .y_desc(self.y_label.as_str())
            .y_label_formatter(&|v| short_number(*v))
            .y_label_style((FONT, 13))
            .axis_desc_style((FONT, 15))
            .draw()?;
        Ok(chart)
    }

    fn draw_stacked<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        bars: &[String],
        parts: &[(String, Vec<f64>)],
    ) -> Result<(), Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let n = bars.len().max(1);
        let totals: Vec<f64> = (0..n)
            .map(|b| {
                parts
                    .iter()
                    .map(|(_, v)| v.get(b).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect();
        let top = totals.iter().copied().fold(0.0f64, f64::max);
        let y_max = if top > 0.0 { top * 1.25 } else { 1.0 };
        let mut chart = self.bar_axes(root, bars, n, y_max, 14)?;
        let mut base = vec![0.0f64; n];
        for (pi, (name, values)) in parts.iter().enumerate() {
            let c = PALETTE[pi % PALETTE.len()];
            let rects: Vec<_> = (0..n)
                .map(|b| {
                    let v = values.get(b).copied().unwrap_or(0.0).max(0.0);
                    let r = Rectangle::new(
                        [
                            (x(b as f64 + 0.2), base[b]),
                            (x(b as f64 + 0.8), base[b] + v),
                        ],
                        c.filled(),
                    );
                    base[b] += v;
                    r
                })
                .collect();
            chart
                .draw_series(rects)?
                .label(name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart.draw_series(totals.iter().enumerate().map(|(b, t)| {
            Text::new(
                short_number(*t),
                (x(b as f64 + 0.4), t + y_max * 0.05),
                (FONT, 12).into_font(),
            )
        }))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, 13))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        Ok(())
    }
}

/// Sub-divisions of one group on the x axis: plotters formats integer axes
/// with custom key points, so positions are kept as integers.
const UNIT: i32 = 1000;

/// The coordinates of a bar chart: group slots on x, values on y.
type BarCoord = Cartesian2d<WithKeyPoints<RangedCoordi32>, RangedCoordf64>;

/// Where one series sits inside each group, and how it is coloured.
struct Slot {
    /// The series' position among the series.
    index: usize,
    /// Width of one series' bar, in groups.
    width: f64,
    /// A single series: colour by group, and no legend entry.
    per_group_colour: bool,
}

/// One series' bars, its legend entry, and each bar's error bar and label.
fn draw_series_bars<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, BarCoord>,
    s: &Series,
    slot: &Slot,
    y_max: f64,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (si, width, per_group_colour) = (slot.index, slot.width, slot.per_group_colour);
    let colour = |g: usize| PALETTE[if per_group_colour { g } else { si } % PALETTE.len()];
    let rects: Vec<_> = s
        .bars
        .iter()
        .enumerate()
        .filter_map(|(g, b)| b.map(|b| (g, b)))
        .map(|(g, b)| {
            let x0 = g as f64 + 0.1 + si as f64 * width;
            Rectangle::new(
                [(x(x0), 0.0), (x(x0 + width * 0.92), b.value)],
                colour(g).filled(),
            )
        })
        .collect();
    let anno = chart.draw_series(rects)?;
    if !per_group_colour {
        let c = colour(0);
        anno.label(s.name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    for (g, b) in s
        .bars
        .iter()
        .enumerate()
        .filter_map(|(g, b)| b.map(|b| (g, b)))
    {
        let mid = g as f64 + 0.1 + si as f64 * width + width * 0.46;
        draw_error_bar(chart, &b, mid, width, y_max)?;
    }
    Ok(())
}

/// The confidence interval of `b` as a capped line at `mid`, with the
/// value written above it.
fn draw_error_bar<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, BarCoord>,
    b: &Bar,
    mid: f64,
    width: f64,
    y_max: f64,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let cap = width * 0.12;
    let style = BLACK.stroke_width(2);
    chart.draw_series([
        PathElement::new(vec![(x(mid), b.low), (x(mid), b.high)], style),
        PathElement::new(vec![(x(mid - cap), b.low), (x(mid + cap), b.low)], style),
        PathElement::new(vec![(x(mid - cap), b.high), (x(mid + cap), b.high)], style),
    ])?;
    chart.draw_series([Text::new(
        short_number(b.value),
        (x(mid - width * 0.3), b.high + y_max * 0.01),
        (FONT, 12)
            .into_font()
            .color(&BLACK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Bottom,
            )),
    )])?;
    Ok(())
}

/// X position of a fractional group coordinate.
fn x(groups: f64) -> i32 {
    (groups * f64::from(UNIT)).round() as i32
}

/// A compact number for labels: three significant digits.
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
