//! Axes: linear, or logarithmic when the values span more than a decade, with
//! tick labels in human units (`0.5`, `3.9M`, never `0.500` or `3909530`).
//!
//! Charts draw in "plot space": a log axis plots `log10(v)`, so every chart
//! kind uses the same coordinate type and only this module knows the scale.

/// Linear or logarithmic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Zero-based linear axis.
    Linear,
    /// Base-10 logarithmic axis.
    Log,
}

/// An axis: its scale and its range in plot space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    /// Scale.
    pub scale: Scale,
    /// Lower end, in plot space.
    pub lo: f64,
    /// Upper end, in plot space.
    pub hi: f64,
}

/// Above this ratio of largest to smallest value, an axis is logarithmic.
pub const DECADE: f64 = 10.0;

impl Axis {
    /// The axis for `values` (only finite, and for a log axis positive, ones
    /// count): log when they span more than a decade or `force_log`;
    /// `headroom` is the fraction added above the largest value (for labels).
    /// Reference figures are deliberately not passed here: they never set the range.
    pub fn fit(values: &[f64], force_log: bool, headroom: f64) -> Axis {
        let positive: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let log = !positive.is_empty() && (force_log || max / min > DECADE);
        if log {
            let (lo, hi) = (min.log10(), max.log10());
            let span = (hi - lo).max(0.5);
            Axis {
                scale: Scale::Log,
                lo: lo - span * 0.08,
                hi: hi + span * headroom.max(0.05),
            }
        } else {
            let top = if max > 0.0 { max } else { 1.0 };
            Axis {
                scale: Scale::Linear,
                lo: 0.0,
                hi: top * (1.0 + headroom),
            }
        }
    }

    /// True for a log axis.
    pub fn is_log(&self) -> bool {
        self.scale == Scale::Log
    }

    /// `v` in plot space (`None` for a non-positive value on a log axis).
    pub fn pos(&self, v: f64) -> Option<f64> {
        match self.scale {
            Scale::Linear => v.is_finite().then_some(v),
            Scale::Log => (v > 0.0 && v.is_finite()).then(|| v.log10()),
        }
    }

    /// True when `v` lies inside the drawn range.
    pub fn contains(&self, v: f64) -> bool {
        self.pos(v).is_some_and(|p| p >= self.lo && p <= self.hi)
    }

    /// The value at plot position `p`.
    pub fn value(&self, p: f64) -> f64 {
        match self.scale {
            Scale::Linear => p,
            Scale::Log => 10f64.powf(p),
        }
    }

    /// Tick positions in plot space: 1-2-5 steps (decades only when a log
    /// axis spans more than three).
    pub fn ticks(&self) -> Vec<f64> {
        match self.scale {
            Scale::Log => {
                let mults: &[f64] = if self.hi - self.lo > 3.0 {
                    &[1.0]
                } else if self.hi - self.lo > 1.5 {
                    &[1.0, 3.0]
                } else {
                    &[1.0, 2.0, 5.0]
                };
                let mut out = Vec::new();
                for e in (self.lo.floor() as i32)..=(self.hi.ceil() as i32) {
                    for m in mults {
                        let p = (m * 10f64.powi(e)).log10();
                        if p >= self.lo && p <= self.hi {
                            out.push(p);
                        }
                    }
                }
                out
            }
            Scale::Linear => {
                let step = nice_step((self.hi - self.lo) / 5.0);
                let mut out = Vec::new();
                let mut t = (self.lo / step).ceil() * step;
                while t <= self.hi + step * 1e-9 {
                    out.push(t);
                    t += step;
                }
                out
            }
        }
    }

    /// The tick label at plot position `p`.
    pub fn label(&self, p: f64) -> String {
        human(self.value(p))
    }

    /// `unit` as an axis title, saying when the axis is logarithmic.
    pub fn title(&self, unit: &str) -> String {
        if self.is_log() {
            format!("{unit} (log scale)")
        } else {
            unit.to_string()
        }
    }
}

/// The 1-2-5 step nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// A number for a chart: three significant digits, trailing zeros dropped,
/// `k`/`M`/`G` from ten thousand up (`0.5`, `27.8k`, `3.91M`).
pub fn human(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !v.is_finite() {
        return "0".into();
    }
    for (scale, suffix) in [(1e9, "G"), (1e6, "M"), (1e4, "k")] {
        if a >= scale {
            let s = if suffix == "k" { 1e3 } else { scale };
            return format!("{}{suffix}", sig3(v / s));
        }
    }
    if a < 1e-3 {
        return format!("{v:.1e}");
    }
    sig3(v)
}

/// Three significant digits without trailing zeros.
fn sig3(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        (2 - a.log10().floor() as i32).max(0) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(0.5), "0.5");
        assert_eq!(human(3909530.0), "3.91M");
        assert_eq!(human(27764.0), "27.8k");
        assert_eq!(human(125.0), "125");
        assert_eq!(human(1.0), "1");
        assert_eq!(human(0.0123), "0.0123");
        assert_eq!(human(2500.0), "2500");
    }

    #[test]
    fn a_decade_or_more_makes_a_log_axis() {
        let a = Axis::fit(&[180.0, 200.0, 27764.0], false, 0.1);
        assert!(a.is_log());
        assert!(a.contains(180.0) && a.contains(27764.0));
        assert!(a.title("ns").ends_with("(log scale)"));
        let l = Axis::fit(&[0.8, 3.6], false, 0.1);
        assert!(!l.is_log() && l.lo == 0.0);
        // A reference outside the data is not in range: the data set it.
        assert!(!l.contains(125.0));
        for t in a.ticks() {
            assert!(!a.label(t).contains("e"), "{}", a.label(t));
        }
        assert!(!l.ticks().is_empty());
    }
}
