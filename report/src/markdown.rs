//! Renders a [`Document`] as GitHub-flavoured Markdown.

use super::document::{Block, Document};

/// The Markdown text of `doc`.
pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    for block in &doc.blocks {
        match block {
            Block::Heading(level, text) => {
                out.push_str(&"#".repeat(usize::from(*level).clamp(1, 6)));
                out.push(' ');
                out.push_str(text);
                out.push_str("\n\n");
            }
            Block::Paragraph(text) => {
                out.push_str(text);
                out.push_str("\n\n");
            }
            Block::List(items) => {
                for item in items {
                    out.push_str("- ");
                    out.push_str(item);
                    out.push('\n');
                }
                out.push('\n');
            }
            Block::Table {
                header,
                rows,
                numeric_from,
            } => {
                out.push_str(&row(header));
                let rule: Vec<String> = (0..header.len())
                    .map(|i| {
                        if i >= *numeric_from {
                            "---:".to_string()
                        } else {
                            "---".to_string()
                        }
                    })
                    .collect();
                out.push_str(&format!("| {} |\n", rule.join(" | ")));
                for r in rows {
                    out.push_str(&row(r));
                }
                out.push('\n');
            }
            Block::Chart {
                title,
                caption,
                svg_file,
                png_file,
                ..
            } => {
                // Relative paths: forge viewers resolve them beside report.md.
                out.push_str(&format!(
                    "![{title}]({png_file})\n\n{caption} ([SVG]({svg_file}))\n\n"
                ));
            }
        }
    }
    out
}

fn row(cells: &[String]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    format!("| {} |\n", cells.join(" | "))
}
