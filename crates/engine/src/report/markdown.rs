//! Markdown rendering of the report's [`Document`]: warnings first, then each section's blocks
//! as text. What the sections say is decided in `report::sections`; here only how each kind of
//! block looks in Markdown.

use super::doc::{Bars, Block, Chart, Document, Section, Span, Table, Tone};

/// Ticket keys listed inline before "… and N more".
const INLINE_KEYS: usize = 30;

/// The whole document as Markdown.
pub(super) fn render(d: &Document) -> String {
    let mut o = format!("# {}\n\n", d.title);
    for w in &d.warnings {
        o.push_str(&format!("> **WARNING:** {w}\n\n"));
    }
    o.push_str(&spans(&d.meta));
    o.push_str("\n\n");
    for n in &d.notices {
        o.push_str(&format!("- Notice: {n}\n"));
    }
    if !d.notices.is_empty() {
        o.push('\n');
    }
    for s in &d.sections {
        o.push_str(&section(s));
    }
    o
}

/// One section: its heading and its blocks, each followed by a blank line.
pub(super) fn section(s: &Section) -> String {
    let mut o = format!("## {}\n\n", s.title);
    for b in &s.blocks {
        block(b, &mut o);
    }
    o
}

fn block(b: &Block, o: &mut String) {
    match b {
        Block::Subheading(h) => o.push_str(&format!("### {h}\n\n")),
        Block::Para(Tone::Bad, s) => o.push_str(&format!("**{}**\n\n", spans(s))),
        Block::Para(_, s) => o.push_str(&format!("{}\n\n", spans(s))),
        Block::Cards(cards) => {
            for (value, label) in cards {
                o.push_str(&format!("- {label}: **{value}**\n"));
            }
            o.push('\n');
        }
        Block::List(items) => {
            for item in items {
                o.push_str(&format!("- {}\n", cell(&spans(item))));
            }
            o.push('\n');
        }
        Block::Quote(q) => o.push_str(&format!("> {}\n\n", cell(q))),
        Block::Keys(list) => o.push_str(&format!("tickets: {}\n\n", keys(list))),
        Block::Table(t) => table(t, o),
        Block::Charts(charts) => {
            // Rates are in the Progress table; bars become tables.
            for c in charts {
                if let Chart::Bars(b) = c {
                    table(&bars_table(b), o);
                }
            }
        }
    }
}

/// Inline spans: bold as `**…**`, code as `` `…` ``.
fn spans(list: &[Span]) -> String {
    list.iter()
        .map(|s| match s {
            Span::Text(t) => t.clone(),
            Span::Strong(t) => format!("**{t}**"),
            Span::Code(t) => format!("`{t}`"),
        })
        .collect()
}

/// A pipe table; numeric columns right-aligned.
fn table(t: &Table, o: &mut String) {
    o.push_str(&format!("| {} |\n|", t.head.join(" | ")));
    for i in 0..t.head.len() {
        let numeric = t.numeric.get(i).copied().unwrap_or(false);
        o.push_str(if numeric { "---:|" } else { "---|" });
    }
    o.push('\n');
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|s| cell(&spans(std::slice::from_ref(s))))
            .collect();
        o.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    o.push('\n');
}

/// The bar chart's data as a two-column table.
fn bars_table(b: &Bars) -> Table {
    let mut t = Table::new(&[b.head[0].as_str(), b.head[1].as_str()], &[false, true]);
    for (label, _, value) in &b.items {
        t.row([label.clone(), value.clone()]);
    }
    t
}

/// The first [`INLINE_KEYS`] keys, then how many more.
fn keys(list: &[String]) -> String {
    let shown: Vec<&str> = list.iter().take(INLINE_KEYS).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if list.len() > INLINE_KEYS {
        s.push_str(&format!(
            " … and {} more (see the JSON report)",
            list.len() - INLINE_KEYS
        ));
    }
    s
}

/// Escapes what would break a table cell or a list line.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
