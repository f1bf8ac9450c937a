//! One colour per subject, the same in every chart, the HTML and the legend.
//!
//! Known subjects take a fixed colour from the Okabe–Ito palette (chosen to
//! stay distinguishable with the common colour-vision deficiencies); any
//! other subject — a peer added later — gets a colour from Paul Tol's muted
//! palette picked by a hash of its name, so it is the same in every report
//! without anyone editing this file.

use plotters::style::RGBColor;

/// Fixed colours of the subjects isolab knows (Okabe–Ito).
const KNOWN: [(&str, RGBColor); 8] = [
    ("native", RGBColor(0, 0, 0)),
    ("container", RGBColor(230, 159, 0)),
    ("vm-tiny", RGBColor(86, 180, 233)),
    ("vm-linux", RGBColor(0, 114, 178)),
    ("runc", RGBColor(0, 158, 115)),
    ("crun", RGBColor(213, 94, 0)),
    ("runsc", RGBColor(204, 121, 167)),
    ("qemu-microvm", RGBColor(136, 34, 85)),
];

/// Colours for every other subject (Paul Tol's muted scheme, minus the
/// shades already close to a fixed colour above).
const HASHED: [RGBColor; 7] = [
    RGBColor(51, 34, 136),
    RGBColor(68, 170, 153),
    RGBColor(17, 119, 51),
    RGBColor(153, 153, 51),
    RGBColor(221, 204, 119),
    RGBColor(204, 102, 119),
    RGBColor(170, 68, 153),
];

/// The colour of `subject`, the same wherever it is drawn.
pub fn colour(subject: &str) -> RGBColor {
    KNOWN
        .iter()
        .find(|(name, _)| *name == subject)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| HASHED[(fnv1a(subject) % HASHED.len() as u64) as usize])
}

/// `#rrggbb` of [`colour`], for the HTML.
pub fn hex(subject: &str) -> String {
    let RGBColor(r, g, b) = colour(subject);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// FNV-1a: stable across builds and platforms (std's hasher is not).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Fills of the parts of a stacked bar (components, not subjects): greys and
/// a hatch-free blue-grey, so they never read as a subject's colour.
pub const PARTS: [RGBColor; 4] = [
    RGBColor(80, 80, 80),
    RGBColor(140, 160, 185),
    RGBColor(190, 190, 190),
    RGBColor(225, 215, 180),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_subjects_are_fixed_and_unknown_ones_stable() {
        assert_eq!(hex("container"), "#e69f00");
        assert_eq!(colour("podman-crun"), colour("podman-crun"));
        // Different known subjects never share a colour.
        for (i, (a, ca)) in KNOWN.iter().enumerate() {
            for (b, cb) in &KNOWN[i + 1..] {
                assert_ne!(ca, cb, "{a} and {b}");
            }
        }
        // A hashed colour is one of the hashed palette, never a fixed one.
        let c = colour("some-future-peer");
        assert!(HASHED.contains(&c) && !KNOWN.iter().any(|(_, k)| *k == c));
    }
}
