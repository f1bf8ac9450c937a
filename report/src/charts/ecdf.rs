//! Empirical cumulative distributions on a log x axis: how start times are
//! spread, not only where their medians are.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::frame::{self, Drawn, Legend, Mark};
use super::palette::colour;
use super::scale::{Axis, Scale};
use super::{Chart, Line};

/// Draws an ECDF chart.
pub fn draw<DB: DrawingBackend>(
    c: &Chart,
    root: &DrawingArea<DB, Shift>,
    lines: &[Line],
    x_unit: &str,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Legend> = lines
        .iter()
        .map(|l| Legend {
            label: format!("{}{}", l.label, if l.dagger { " †" } else { "" }),
            colour: colour(&l.subject),
            mark: if l.dashed { Mark::Dashed } else { Mark::Line },
        })
        .collect();
    let area = frame::frame(root, &c.title, &legend, &c.notes)?;
    let all: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.samples.iter().copied())
        .collect();
    let x = Axis::fit(&all, true, 0.05);
    let y = Axis {
        scale: Scale::Linear,
        lo: 0.0,
        hi: 1.04,
    };
    let mut chart = frame::plot(&area, (&x, &x.title(x_unit)), (&y, &c.y_label), true, true)?;
    for l in lines {
        let mut s: Vec<f64> = l.samples.iter().filter_map(|v| x.pos(*v)).collect();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        let mut path = Vec::new();
        for (i, v) in s.iter().enumerate() {
            path.push((*v, i as f64 / n));
            path.push((*v, (i + 1) as f64 / n));
        }
        let style = colour(&l.subject).stroke_width(2);
        if l.dashed {
            chart.draw_series([DashedPathElement::new(path, 6, 4, style)])?;
        } else {
            chart.draw_series([PathElement::new(path, style)])?;
        }
        chart.draw_series(
            s.iter().enumerate().map(|(i, v)| {
                Circle::new((*v, (i + 1) as f64 / n), 3, colour(&l.subject).filled())
            }),
        )?;
    }
    Ok(())
}
