//! A small document model the report is built in once and rendered twice
//! (Markdown and HTML), so both say exactly the same thing.

/// One block of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading; level 1 is the title.
    Heading(u8, String),
    /// A paragraph of plain text (`` `code` `` spans are kept as such).
    Paragraph(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A table; columns from `numeric_from` on are right-aligned.
    Table {
        /// Column titles.
        header: Vec<String>,
        /// Cells.
        rows: Vec<Vec<String>>,
        /// First numeric column.
        numeric_from: usize,
    },
    /// A chart, as files beside the report and as inline SVG.
    Chart {
        /// Title (drawn in the chart itself; Markdown's alt text).
        title: String,
        /// What to notice, and each † reason: printed beside the chart.
        caption: String,
        /// SVG source (inlined into the HTML).
        svg: String,
        /// SVG file name, relative to the report.
        svg_file: String,
        /// PNG file name, relative to the report.
        png_file: String,
    },
}

/// A report document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
}

impl Document {
    /// Appends a heading.
    pub fn heading(&mut self, level: u8, text: impl Into<String>) {
        self.blocks.push(Block::Heading(level, text.into()));
    }

    /// Appends a paragraph.
    pub fn para(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    /// Appends a list (nothing when empty).
    pub fn list(&mut self, items: Vec<String>) {
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }

    /// Appends a table (nothing when it has no rows).
    pub fn table(&mut self, header: Vec<String>, rows: Vec<Vec<String>>, numeric_from: usize) {
        if !rows.is_empty() {
            self.blocks.push(Block::Table {
                header,
                rows,
                numeric_from,
            });
        }
    }
}
