//! The report as a document: sections of typed blocks (headings, paragraphs, key/value cards,
//! tables, charts, ticket lists, alerts), built once from a [`super::Report`] by
//! `report::sections` and walked by both renderers. A section's content is decided here once;
//! Markdown and HTML only decide how each kind of block looks.

use super::RateView;

/// The whole report page.
#[derive(Debug, Clone, Default)]
pub(super) struct Document {
    /// Page title.
    pub title: String,
    /// Loud warnings: before the title in HTML, right under it in Markdown, before anything else.
    pub warnings: Vec<String>,
    /// The line under the title (phase, time, schema).
    pub meta: Vec<Span>,
    /// Notices shown before the first section.
    pub notices: Vec<String>,
    /// The sections in reading order.
    pub sections: Vec<Section>,
}

/// One `##` section.
#[derive(Debug, Clone, Default)]
pub(super) struct Section {
    /// Its heading.
    pub title: String,
    /// Its content in order.
    pub blocks: Vec<Block>,
}

impl Section {
    /// An empty section titled `title`, filled with [`Section::push`].
    pub fn new(title: &str) -> Self {
        Section {
            title: title.to_string(),
            blocks: Vec::new(),
        }
    }

    /// Appends a block (builder style, so section functions read top to bottom).
    pub fn push(&mut self, block: Block) -> &mut Self {
        self.blocks.push(block);
        self
    }

    /// Appends a paragraph of plain text in `tone`: most of a section's sentences.
    pub fn para(&mut self, tone: Tone, sentence: impl Into<String>) -> &mut Self {
        self.push(Block::Para(tone, vec![text(sentence)]))
    }
}

/// Inline text: plain, emphasised or code. Renderers escape every kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Span {
    /// Plain text.
    Text(String),
    /// Bold.
    Strong(String),
    /// A command, a key, a URL shown as data.
    Code(String),
}

/// Plain text span.
pub(super) fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

/// Bold span.
pub(super) fn strong(s: impl Into<String>) -> Span {
    Span::Strong(s.into())
}

/// Code span.
pub(super) fn code(s: impl Into<String>) -> Span {
    Span::Code(s.into())
}

/// How a paragraph reads: neutral, all good, or something to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    /// Neutral text.
    Plain,
    /// Nothing to do (green in HTML).
    Good,
    /// Needs action (red in HTML, bold in Markdown).
    Bad,
}

/// One piece of a section.
#[derive(Debug, Clone)]
pub(super) enum Block {
    /// A `###` sub-heading.
    Subheading(String),
    /// A paragraph.
    Para(Tone, Vec<Span>),
    /// Headline figures: (value, label).
    Cards(Vec<(String, String)>),
    /// A bullet list, one line of spans per item.
    List(Vec<Vec<Span>>),
    /// A quoted message (the API's own words).
    Quote(String),
    /// Ticket keys (or similar ids): renderers show the first few and say how many more.
    Keys(Vec<String>),
    /// A table.
    Table(Table),
    /// Charts side by side (HTML draws them; Markdown shows bar data as tables).
    Charts(Vec<Chart>),
}

/// A table with a header row; cells are spans so a URL or a command can be code.
#[derive(Debug, Clone, Default)]
pub(super) struct Table {
    /// Column titles.
    pub head: Vec<String>,
    /// Which columns hold numbers (right-aligned).
    pub numeric: Vec<bool>,
    /// The rows.
    pub rows: Vec<Vec<Span>>,
}

impl Table {
    /// A table with these columns; `numeric` marks right-aligned ones.
    pub fn new(head: &[&str], numeric: &[bool]) -> Self {
        Table {
            head: head.iter().map(|h| (*h).to_string()).collect(),
            numeric: numeric.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Appends a row of plain-text cells.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(text).collect());
    }
}

/// A chart of the HTML page.
#[derive(Debug, Clone)]
pub(super) enum Chart {
    /// Horizontal bars, one per item.
    Bars(Bars),
    /// Units per minute over time against the limit.
    Rate {
        /// Caption.
        title: String,
        /// The series and the limit.
        view: RateView,
    },
}

/// Bar chart data: (label, value, value as text) per bar, largest first.
#[derive(Debug, Clone, Default)]
pub(super) struct Bars {
    /// Caption.
    pub title: String,
    /// Column titles when shown as a table (label, value).
    pub head: [String; 2],
    /// The bars.
    pub items: Vec<(String, f64, String)>,
}
