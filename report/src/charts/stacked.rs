//! Stacked bars: what a subject's total is made of (boot phases, memory
//! components). Parts have their own neutral fills; the subject colours the
//! bar's outline and label.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::frame::{self, Drawn, Legend, Mark, text};
use super::palette::{PARTS, colour};
use super::scale::{Axis, Scale, human};
use super::{Chart, StackBar};

/// Draws a stacked chart. Always linear: stacked parts on a log axis would
/// misstate their shares.
pub fn draw<DB: DrawingBackend>(
    c: &Chart,
    root: &DrawingArea<DB, Shift>,
    parts: &[String],
    bars: &[StackBar],
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Legend> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| Legend {
            label: p.clone(),
            colour: PARTS[i % PARTS.len()],
            mark: Mark::Swatch,
        })
        .collect();
    let area = frame::frame(root, &c.title, &legend, &c.notes)?;
    let totals: Vec<f64> = bars
        .iter()
        .map(|b| b.parts.iter().flatten().map(|v| v.max(0.0)).sum())
        .collect();
    let y = Axis::fit(&totals, false, 0.14);
    let y = Axis {
        scale: Scale::Linear,
        ..y
    };
    let x = Axis {
        scale: Scale::Linear,
        lo: 0.0,
        hi: bars.len().max(1) as f64,
    };
    let mut chart = frame::plot(&area, (&x, ""), (&y, &y.title(&c.y_label)), false, false)?;
    for (i, b) in bars.iter().enumerate() {
        let (l, r) = (i as f64 + 0.2, i as f64 + 0.8);
        let mut base = 0.0;
        for (pi, v) in b.parts.iter().enumerate() {
            let Some(v) = v.map(|v| v.max(0.0)) else {
                continue;
            };
            chart.draw_series([
                Rectangle::new([(l, base), (r, base + v)], PARTS[pi % PARTS.len()].filled()),
                Rectangle::new([(l, base), (r, base + v)], WHITE.stroke_width(1)),
            ])?;
            base += v;
        }
        chart.draw_series([Rectangle::new(
            [(l, 0.0), (r, base)],
            colour(&b.subject).stroke_width(2),
        )])?;
        chart.draw_series([Text::new(
            format!("{}{}", human(totals[i]), if b.dagger { " †" } else { "" }),
            (i as f64 + 0.5, totals[i] + (y.hi - y.lo) * 0.015),
            text(12, HPos::Center, VPos::Bottom),
        )])?;
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            format!("{}{}", b.label, if b.dagger { "†" } else { "" }),
            (px, py + 8),
            text(13, HPos::Center, VPos::Top),
        ))?;
    }
    Ok(())
}
