//! The isolation spectrum: each subject at its start time (x, log) and its
//! steady-state overhead against native (y), so the tradeoff between
//! containers and VMs is one picture. Published figures are hollow markers
//! on the x axis, never placed as if measured.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::frame::{self, Drawn, Legend, Mark, text};
use super::palette::colour;
use super::scale::Axis;
use super::{Chart, Point, RefPoint};

const REFERENCE: RGBColor = RGBColor(90, 90, 90);

/// Draws the spectrum.
pub fn draw<DB: DrawingBackend>(
    c: &Chart,
    root: &DrawingArea<DB, Shift>,
    x_unit: &str,
    points: &[Point],
    references: &[RefPoint],
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let mut legend: Vec<Legend> = c
        .subjects()
        .into_iter()
        .map(|s| Legend {
            colour: colour(&s),
            label: s,
            mark: Mark::Swatch,
        })
        .collect();
    if points.iter().any(|p| p.y.is_none()) {
        legend.push(Legend {
            label: "start only (overhead not measured)".into(),
            colour: REFERENCE,
            mark: Mark::Cross,
        });
    }
    if !references.is_empty() {
        legend.push(Legend {
            label: "published, not measured here".into(),
            colour: REFERENCE,
            mark: Mark::Hollow,
        });
    }
    let area = frame::frame(root, &c.title, &legend, &c.notes)?;
    let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
    let x = Axis::fit(&xs, true, 0.35);
    let ys: Vec<f64> = points.iter().filter_map(|p| p.y).chain([1.0]).collect();
    let mut y = Axis::fit(&ys, false, 0.15);
    if !y.is_log() {
        // Overhead ratios start at 1 (native); a zero-based axis wastes the plot.
        y.lo = 0.0;
    }
    let mut chart = frame::plot(
        &area,
        (&x, &x.title(x_unit)),
        (&y, &y.title(&c.y_label)),
        true,
        false,
    )?;
    let floor = y.lo + (y.hi - y.lo) * 0.04;
    for p in points {
        let Some(px) = x.pos(p.x) else { continue };
        let col = colour(&p.subject);
        let py = p.y.and_then(|v| y.pos(v));
        match py {
            Some(py) => {
                chart.draw_series([Circle::new((px, py), 7, col.filled())])?;
                chart.draw_series([Circle::new((px, py), 7, BLACK.stroke_width(1))])?;
            }
            None => {
                chart.draw_series([Cross::new((px, floor), 6, col.stroke_width(3))])?;
            }
        }
        let ty = py.unwrap_or(floor);
        chart.draw_series([Text::new(
            format!("{}{}", p.label, if p.dagger { " †" } else { "" }),
            (px + (x.hi - x.lo) * 0.012, ty),
            text(12, HPos::Left, VPos::Bottom),
        )])?;
    }
    let mut off = Vec::new();
    for r in references {
        match x.pos(r.x).filter(|_| x.contains(r.x)) {
            Some(px) => {
                chart.draw_series([DashedPathElement::new(
                    vec![(px, y.lo), (px, y.hi)],
                    5,
                    5,
                    REFERENCE.stroke_width(1),
                )])?;
                chart.draw_series([Circle::new((px, floor), 7, REFERENCE.stroke_width(2))])?;
                // Written on the side of the line with more room.
                let left_half = px < (x.lo + x.hi) / 2.0;
                let (dx, h) = if left_half {
                    ((x.hi - x.lo) * 0.01, HPos::Left)
                } else {
                    (-(x.hi - x.lo) * 0.01, HPos::Right)
                };
                chart.draw_series([Text::new(
                    r.label.clone(),
                    (px + dx, y.hi - (y.hi - y.lo) * 0.02),
                    text(12, h, VPos::Top).color(&REFERENCE),
                )])?;
            }
            None => off.push((true, format!("{} at {} {x_unit}", r.label, r.x))),
        }
    }
    frame::off_scale(&mut chart, &x, &y, &off)
}
