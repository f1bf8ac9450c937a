//! What every chart shares: the title, a legend row under it, the footnotes
//! under the plot, and the plot's coordinates (plot space on both axes, ticks
//! placed and labelled by [`Axis`]).

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::FONT;
use super::scale::Axis;

/// The coordinates every chart draws in.
pub type Coord = Cartesian2d<Ticked, Ticked>;

/// A linear plot-space range whose ticks are exactly the ones [`Axis`]
/// chose (plotters' own would land on log-space fractions like 0.5).
#[derive(Debug, Clone)]
pub struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let f = if span > 0.0 {
            (value - self.lo) / span
        } else {
            0.0
        };
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.ticks.clone()
    }
}

/// The result every drawing step returns.
pub type Drawn<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// A filled square.
    Swatch,
    /// A solid line.
    Line,
    /// A dashed line.
    Dashed,
    /// A hollow circle (a published figure).
    Hollow,
    /// A cross (measured start, no overhead).
    Cross,
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Legend {
    /// Text.
    pub label: String,
    /// Colour.
    pub colour: RGBColor,
    /// Marker.
    pub mark: Mark,
}

/// A text style: `size` px, anchored at `h`/`v`.
pub fn text(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK).pos(Pos::new(h, v))
}

/// Draws the title, legend and footnotes; returns the area left for the plot.
pub fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[Legend],
    notes: &[String],
) -> Drawn<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, 8),
        text(20, HPos::Center, VPos::Top),
    ))?;
    let rows = legend_rows(legend, w as i32 - 40);
    for (r, row) in rows.iter().enumerate() {
        let y = 42 + r as i32 * 18;
        let mut x = 20;
        for item in row {
            draw_mark(root, item, (x, y))?;
            root.draw(&Text::new(
                item.label.clone(),
                (x + 18, y),
                text(13, HPos::Left, VPos::Center),
            ))?;
            x += legend_width(item);
        }
    }
    let top = 34 + rows.len() as u32 * 18;
    let bottom = notes.len() as u32 * 16 + 4;
    for (i, note) in notes.iter().enumerate() {
        root.draw(&Text::new(
            note.clone(),
            (12, (h - bottom) as i32 + 2 + i as i32 * 16),
            text(12, HPos::Left, VPos::Top),
        ))?;
    }
    Ok(root.margin(top, bottom, 0, 0))
}

fn draw_mark<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    item: &Legend,
    (x, y): (i32, i32),
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let c = item.colour;
    match item.mark {
        Mark::Swatch => root.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            c.mix(0.45).filled(),
        ))?,
        Mark::Line => root.draw(&PathElement::new(
            vec![(x, y), (x + 14, y)],
            c.stroke_width(3),
        ))?,
        Mark::Dashed => root.draw(&DashedPathElement::new(
            vec![(x, y), (x + 14, y)],
            4,
            3,
            c.stroke_width(3),
        ))?,
        Mark::Hollow => root.draw(&Circle::new((x + 6, y), 5, c.stroke_width(2)))?,
        Mark::Cross => root.draw(&Cross::new((x + 6, y), 5, c.stroke_width(2)))?,
    }
    if item.mark == Mark::Swatch {
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            c.stroke_width(2),
        ))?;
    }
    Ok(())
}

fn legend_width(item: &Legend) -> i32 {
    // DejaVu Sans at 13 px averages about 7.5 px per character.
    26 + (item.label.chars().count() as f64 * 7.5) as i32
}

/// Legend entries wrapped into rows no wider than `width` pixels.
fn legend_rows(legend: &[Legend], width: i32) -> Vec<Vec<Legend>> {
    let mut rows: Vec<Vec<Legend>> = Vec::new();
    let mut used = 0;
    for item in legend {
        let w = legend_width(item);
        match rows.last_mut() {
            Some(row) if used + w <= width => row.push(item.clone()),
            _ => {
                rows.push(vec![item.clone()]);
                used = 0;
            }
        }
        used += w;
    }
    rows
}

/// The plot's coordinates and mesh. `x_ticks: false` leaves the x axis
/// unlabelled for charts that write their own labels under it.
pub fn plot<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (x, x_title): (&Axis, &str),
    (y, y_title): (&Axis, &str),
    x_ticks: bool,
    percent_y: bool,
) -> Drawn<ChartContext<'a, DB, Coord>>
where
    DB::ErrorType: 'static,
{
    let x_keys = if x_ticks { x.ticks() } else { Vec::new() };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(if x_ticks { 44 } else { 46 })
        .y_label_area_size(74)
        .build_cartesian_2d(
            Ticked {
                lo: x.lo,
                hi: x.hi,
                ticks: x_keys,
            },
            Ticked {
                lo: y.lo,
                hi: y.hi,
                ticks: y.ticks(),
            },
        )?;
    let (xa, ya) = (*x, *y);
    let x_fmt = move |v: &f64| xa.label(*v);
    let y_fmt = move |v: &f64| {
        if percent_y {
            format!("{:.0}%", v * 100.0)
        } else {
            ya.label(*v)
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.12))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_label_style((FONT, 13))
        .y_label_style((FONT, 13))
        .y_desc(y_title)
        .axis_desc_style((FONT, 14));
    if x_ticks {
        mesh.x_desc(x_title);
    } else {
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    Ok(chart)
}

/// Reference figures outside the plotted range, written at the plot's top
/// (above) or bottom (below) edge: they never stretch the axis.
pub fn off_scale<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Coord>,
    x: &Axis,
    y: &Axis,
    notes: &[(bool, String)],
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let (mut above, mut below) = (0, 0);
    let step = (y.hi - y.lo) * 0.055;
    for (is_above, label) in notes {
        let (pos, text_style) = if *is_above {
            above += 1;
            (
                y.hi - step * f64::from(above - 1) - step * 0.2,
                text(12, HPos::Right, VPos::Top),
            )
        } else {
            below += 1;
            (
                y.lo + step * f64::from(below - 1) + step * 0.2,
                text(12, HPos::Right, VPos::Bottom),
            )
        };
        let arrow = if *is_above { "↑" } else { "↓" };
        chart.draw_series([Text::new(
            format!("{arrow} {label} (off this scale)"),
            (x.hi - (x.hi - x.lo) * 0.01, pos),
            text_style.color(&RGBColor(90, 90, 90)),
        )])?;
    }
    Ok(())
}
