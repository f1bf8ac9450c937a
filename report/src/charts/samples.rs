//! Medians as bars with every raw sample drawn as a point over them: at
//! n = 6 the points say more about spread than any interval would.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::frame::{self, Drawn, Legend, Mark, text};
use super::palette::colour;
use super::scale::{Axis, Scale, human};
use super::{Annotation, Chart, Group};

/// Space between groups, in slots.
const GAP: f64 = 0.6;
/// Grey of reference lines and their labels (no subject's colour).
const REFERENCE: RGBColor = RGBColor(90, 90, 90);

/// X centre of every slot, and the span of every group, in slot units.
fn layout(groups: &[Group]) -> (Vec<Vec<f64>>, Vec<(f64, f64)>, f64) {
    let mut cursor = 0.3;
    let (mut centres, mut spans) = (Vec::new(), Vec::new());
    for g in groups {
        let start = cursor;
        centres.push((0..g.slots.len()).map(|i| start + i as f64 + 0.5).collect());
        cursor += g.slots.len().max(1) as f64;
        spans.push((start, cursor));
        cursor += GAP;
    }
    (centres, spans, cursor - GAP + 0.3)
}

/// Draws a samples chart.
pub fn draw<DB: DrawingBackend>(
    c: &Chart,
    root: &DrawingArea<DB, Shift>,
    groups: &[Group],
    baseline: Option<&Annotation>,
    annotations: &[Annotation],
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let legend: Vec<Legend> = c
        .subjects()
        .into_iter()
        .map(|s| Legend {
            colour: colour(&s),
            label: s,
            mark: Mark::Swatch,
        })
        .collect();
    let area = frame::frame(root, &c.title, &legend, &c.notes)?;
    let values: Vec<f64> = groups
        .iter()
        .flat_map(|g| &g.slots)
        .flat_map(|s| s.samples.iter().copied().chain([s.median]))
        .chain(baseline.map(|b| b.value))
        .collect();
    let y = Axis::fit(&values, false, 0.14);
    let (centres, spans, width) = layout(groups);
    let x = Axis {
        scale: Scale::Linear,
        lo: 0.0,
        hi: width,
    };
    let mut chart = frame::plot(&area, (&x, ""), (&y, &y.title(&c.y_label)), false, false)?;
    if let Some(b) = baseline.and_then(|b| y.pos(b.value).map(|p| (b, p))) {
        let (b, p) = b;
        chart.draw_series([PathElement::new(
            vec![(x.lo, p), (x.hi, p)],
            REFERENCE.stroke_width(2),
        )])?;
        chart.draw_series([Text::new(
            b.label.clone(),
            (x.lo + 0.05, p),
            text(12, HPos::Left, VPos::Bottom).color(&REFERENCE),
        )])?;
    }
    for (g, group) in groups.iter().enumerate() {
        for (s, slot) in group.slots.iter().enumerate() {
            draw_slot(&mut chart, &y, slot, centres[g][s])?;
        }
    }
    let mut off = Vec::new();
    for a in annotations {
        let (x0, x1) = a
            .group
            .and_then(|g| spans.get(g).copied())
            .unwrap_or((x.lo, x.hi));
        match y.pos(a.value).filter(|_| y.contains(a.value)) {
            Some(p) => {
                chart.draw_series([DashedPathElement::new(
                    vec![(x0, p), (x1, p)],
                    6,
                    4,
                    REFERENCE.stroke_width(2),
                )])?;
                // A group's reference is labelled at the group's top-left,
                // clear of the values written above its bars.
                let (at, style) = match a.group {
                    Some(_) => (
                        (x0, y.hi - (y.hi - y.lo) * 0.01),
                        text(12, HPos::Left, VPos::Top),
                    ),
                    None => (
                        (x1, p + (y.hi - y.lo) * 0.01),
                        text(12, HPos::Right, VPos::Bottom),
                    ),
                };
                chart.draw_series([Text::new(
                    format!(
                        "{}{}",
                        a.label,
                        if a.group.is_some() { " (dashed)" } else { "" }
                    ),
                    at,
                    style.color(&REFERENCE),
                )])?;
            }
            None => off.push((y.pos(a.value).is_none_or(|p| p > y.hi), a.label.clone())),
        }
    }
    frame::off_scale(&mut chart, &x, &y, &off)?;
    labels(root, &chart, &y, groups, &centres, &spans)
}

/// One slot: the median as a pale bar with its value centred above, every
/// sample as a point spread across the bar.
fn draw_slot<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, frame::Coord>,
    y: &Axis,
    slot: &super::Slot,
    mid: f64,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let c = colour(&slot.subject);
    let Some(top) = y.pos(slot.median) else {
        return Ok(());
    };
    let (l, r) = (mid - 0.34, mid + 0.34);
    chart.draw_series([
        Rectangle::new([(l, y.lo), (r, top)], c.mix(0.3).filled()),
        Rectangle::new([(l, y.lo), (r, top)], c.stroke_width(1)),
    ])?;
    chart.draw_series([PathElement::new(
        vec![(l, top), (r, top)],
        BLACK.stroke_width(2),
    )])?;
    let n = slot.samples.len();
    let points: Vec<(f64, f64)> = slot
        .samples
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let dx = if n > 1 {
                (i as f64 / (n - 1) as f64 - 0.5) * 0.44
            } else {
                0.0
            };
            y.pos(*v).map(|p| (mid + dx, p))
        })
        .collect();
    chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
    chart.draw_series(
        points
            .iter()
            .map(|p| Circle::new(*p, 4, BLACK.mix(0.6).stroke_width(1))),
    )?;
    let highest = points.iter().map(|p| p.1).fold(top, f64::max);
    let dagger = if slot.dagger { " †" } else { "" };
    chart.draw_series([Text::new(
        format!("{}{dagger}", human(slot.median)),
        (mid, highest + (y.hi - y.lo) * 0.015),
        text(12, HPos::Center, VPos::Bottom),
    )])?;
    Ok(())
}

/// Slot labels under each slot and group labels under each group, centred.
fn labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, frame::Coord>,
    y: &Axis,
    groups: &[Group],
    centres: &[Vec<f64>],
    spans: &[(f64, f64)],
) -> Drawn
where
    DB::ErrorType: 'static,
{
    for (g, group) in groups.iter().enumerate() {
        let mut any_slot_label = false;
        for (s, slot) in group.slots.iter().enumerate() {
            if slot.label.is_empty() {
                continue;
            }
            any_slot_label = true;
            let (px, py) = chart.backend_coord(&(centres[g][s], y.lo));
            let dagger = if slot.dagger { "†" } else { "" };
            root.draw(&Text::new(
                format!("{}{dagger}", slot.label),
                (px, py + 6),
                text(12, HPos::Center, VPos::Top),
            ))?;
        }
        let (a, b) = spans[g];
        let (px, py) = chart.backend_coord(&((a + b) / 2.0, y.lo));
        let dagger = if !any_slot_label && group.slots.iter().any(|s| s.dagger) {
            "†"
        } else {
            ""
        };
        root.draw(&Text::new(
            format!("{}{dagger}", group.label),
            (px, py + if any_slot_label { 24 } else { 8 }),
            text(14, HPos::Center, VPos::Top),
        ))?;
    }
    Ok(())
}
