//! Renders a [`Document`] as one self-contained HTML page: styles inline and
//! every chart's SVG embedded as a `data:` image, so the file can be mailed
//! or handed in alone and every chart is an `<img>` a browser sizes and checks.

use super::document::{Block, Document};

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;max-width:1000px;margin:2em auto;\
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:.9em;display:block;max-width:100%;\
overflow-x:auto}p,li{overflow-wrap:anywhere}\
th,td{border:1px solid #bbb;padding:.25em .6em}th{background:#eee}td.n{text-align:right;\
font-variant-numeric:tabular-nums}code{background:#f3f3f3;padding:0 .2em}figure{margin:1.5em 0}\
figure img{max-width:100%;height:auto;display:block}figcaption{font-size:.95em;color:#333;\
margin-top:.4em}";

/// The HTML page for `doc`.
pub fn render(doc: &Document, title: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    for block in &doc.blocks {
        match block {
            Block::Heading(level, text) => {
                let l = level.clamp(&1, &6);
                out.push_str(&format!("<h{l}>{}</h{l}>\n", inline(text)));
            }
            Block::Paragraph(text) => out.push_str(&format!("<p>{}</p>\n", inline(text))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table {
                header,
                rows,
                numeric_from,
            } => {
                out.push_str("<table>\n<thead><tr>");
                for h in header {
                    out.push_str(&format!("<th>{}</th>", inline(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        let class = if i >= *numeric_from {
                            " class=\"n\""
                        } else {
                            ""
                        };
                        out.push_str(&format!("<td{class}>{}</td>", inline(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Chart {
                title,
                caption,
                svg,
                ..
            } => {
                let (w, h) = crate::charts::SIZE;
                out.push_str(&format!(
                    "<figure>\n<img alt=\"{}\" width=\"{w}\" height=\"{h}\" src=\"data:image/svg+xml,{}\">\n\
                     <figcaption>{}</figcaption>\n</figure>\n",
                    escape(title),
                    data_uri_encode(strip_xml_declaration(svg)),
                    inline(caption)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text and turns `` `code` `` spans into `<code>`.
fn inline(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// Percent-encodes `text` for a `data:` URI inside a double-quoted
/// attribute: everything but unreserved ASCII and a few safe marks.
fn data_uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 11 / 10);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b" -_.~=:;,/()'!*@$+".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An inline `<svg>` must not carry the `<?xml …?>` prologue.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uris_escape_what_would_end_the_attribute() {
        let e = data_uri_encode("<svg a=\"1\">#é%</svg>");
        assert!(!e.contains('"') && !e.contains('<') && !e.contains('#'));
        assert!(e.contains("%C3%A9") && e.contains("%25"));
    }

    #[test]
    fn escapes_and_marks_code() {
        assert_eq!(
            inline("a < b & `x<y`"),
            "a &lt; b &amp; <code>x&lt;y</code>"
        );
    }
}
