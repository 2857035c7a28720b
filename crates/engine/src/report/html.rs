//! HTML rendering of the report's [`Document`]: ONE self-contained file — inline CSS, inline
//! SVG charts, no script and no external resource (URLs from the data are shown as escaped text,
//! never as a `src` or `href`), so it can be mailed, archived and opened offline. The page comes
//! from `maud` templates, checked at compile time and escaping every value by default.
//!
//! Charts: stored tickets by Desk360 channel and by status (bars), the estimated time per side
//! (bars), and for a real run the Deskie and Desk360 rate per minute against the limit (line plus
//! a dashed limit line).

use maud::{Markup, PreEscaped, html};

use super::RateView;
use super::doc::{Block, Chart, Document, Section, Span, Table, Tone};

/// Ticket keys listed inline.
const INLINE_KEYS: usize = 60;

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;margin:0;background:#f5f6f8}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.meta{color:#5b6475;margin-bottom:16px}
.warn{background:#fff0f0;border:2px solid #c62828;color:#8e0000;padding:12px 16px;border-radius:6px;margin:10px 0;font-weight:600}
.warn b{font-size:16px;letter-spacing:.04em}
.notice{background:#fff8e1;border-left:4px solid #f0a500;padding:8px 12px;margin:6px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:10px 14px;min-width:140px}
.card .v{font-size:22px;font-weight:700}.card .l{color:#5b6475;font-size:12px}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d8dce3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{background:#fff;border:1px solid #d8dce3;border-radius:6px;margin:0;padding:8px 10px}
figcaption{font-weight:600;font-size:13px;margin-bottom:4px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.keys{color:#3a4256;font-size:12px}
.ok{color:#1b7f3b;font-weight:600}.bad{color:#c62828;font-weight:700}
"#;

const PALETTE: [&str; 8] = [
    "#3b6fd8", "#2e9e6a", "#e08a1e", "#8a56c9", "#d2493f", "#1aa3b5", "#9a7b3c", "#6b7488",
];

/// The whole page.
pub(super) fn render(d: &Document) -> String {
    html! {
        (PreEscaped("<!doctype html>"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (d.title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    // Loud warnings before anything else.
                    @for w in &d.warnings {
                        div.warn { b { "WARNING" } " " (w) }
                    }
                    h1 { (d.title) }
                    div.meta { (spans(&d.meta)) }
                    @for n in &d.notices {
                        div.notice { (n) }
                    }
                    @for s in &d.sections {
                        (section(s))
                    }
                }
            }
        }
    }
    .into_string()
}

/// One section: its heading and its blocks.
pub(super) fn section(s: &Section) -> Markup {
    html! {
        h2 { (s.title) }
        @for b in &s.blocks {
            (block(b))
        }
    }
}

fn block(b: &Block) -> Markup {
    html! {
        @match b {
            Block::Subheading(h) => h3 { (h) },
            Block::Para(tone, s) => p class=[tone_class(*tone)] { (spans(s)) },
            Block::Cards(cards) => div.cards {
                @for (value, label) in cards {
                    div.card { div.v { (value) } div.l { (label) } }
                }
            },
            Block::List(items) => ul {
                @for item in items { li { (spans(item)) } }
            },
            Block::Quote(q) => blockquote { (q) },
            Block::Keys(list) => p.keys { (keys(list)) },
            Block::Table(t) => (table(t)),
            Block::Charts(charts) => div.charts {
                @for c in charts {
                    @match c {
                        Chart::Bars(b) => (bar_chart(&b.title, &b.items)),
                        Chart::Rate { title, view } => (rate_chart(title, view)),
                    }
                }
            },
        }
    }
}

fn tone_class(t: Tone) -> Option<&'static str> {
    match t {
        Tone::Plain => None,
        Tone::Good => Some("ok"),
        Tone::Bad => Some("bad"),
    }
}

fn spans(list: &[Span]) -> Markup {
    html! {
        @for s in list {
            @match s {
                Span::Text(t) => (t),
                Span::Strong(t) => b { (t) },
                Span::Code(t) => code { (t) },
            }
        }
    }
}

fn table(t: &Table) -> Markup {
    let numeric = |i: usize| t.numeric.get(i).copied().unwrap_or(false);
    html! {
        table {
            tr { @for h in &t.head { th { (h) } } }
            @for row in &t.rows {
                tr {
                    @for (i, c) in row.iter().enumerate() {
                        td class=[numeric(i).then_some("n")] { (spans(std::slice::from_ref(c))) }
                    }
                }
            }
        }
    }
}

/// The first [`INLINE_KEYS`] keys, then how many more.
fn keys(list: &[String]) -> String {
    let mut s = list
        .iter()
        .take(INLINE_KEYS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > INLINE_KEYS {
        s.push_str(&format!(
            " … and {} more (see the JSON report)",
            list.len() - INLINE_KEYS
        ));
    }
    s
}

/// A horizontal bar chart: one bar per item, value label at the end.
fn bar_chart(title: &str, items: &[(String, f64, String)]) -> Markup {
    let (label_w, bar_w, row) = (130.0, 300.0, 22.0);
    let width = label_w + bar_w + 90.0;
    let height = (items.len().max(1) as f64) * row + 8.0;
    let max = items.iter().map(|i| i.1).fold(0.0_f64, f64::max);
    let bar = |value: f64| {
        if max > 0.0 {
            (value / max * bar_w).max(if value > 0.0 { 1.0 } else { 0.0 })
        } else {
            0.0
        }
    };
    html! {
        figure {
            figcaption { (title) }
            svg role="img" aria-label=(title) width=(width) height=(height)
                viewBox=(format!("0 0 {width} {height}")) {
                @if items.is_empty() {
                    text x="4" y="16" font-size="12" fill="#5b6475" { "no data" }
                }
                @for (i, (label, value, shown)) in items.iter().enumerate() {
                    @let y = i as f64 * row + 4.0;
                    @let w = bar(*value);
                    @let label = truncate(label, 20);
                    text x=(label_w - 6.0) y=(y + 13.0) font-size="12" text-anchor="end"
                        fill="#1d2433" { (label) }
                    rect x=(label_w) y=(y) width=(format!("{w:.1}")) height=(row - 6.0) rx="2"
                        fill=(PALETTE[i % PALETTE.len()]) { title { (label) ": " (shown) } }
                    text x=(format!("{:.1}", label_w + w + 5.0)) y=(y + 13.0) font-size="12"
                        fill="#3a4256" { (shown) }
                }
            }
        }
    }
}

/// Units per minute over time against the limit: a polyline and a dashed limit line.
fn rate_chart(title: &str, v: &RateView) -> Markup {
    let (w, h) = (460.0, 200.0);
    let (left, right, top, bottom) = (48.0, 10.0, 10.0, 28.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let max_units = v
        .series
        .iter()
        .map(|p| p.units as f64)
        .fold(0.0_f64, f64::max);
    let ymax = (max_units.max(v.limit_per_minute) * 1.1).max(1.0);
    let n = v.series.len();
    let x_of = |i: usize| {
        if n <= 1 {
            left + pw / 2.0
        } else {
            left + pw * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |val: f64| top + ph - val / ymax * ph;
    let f1 = |x: f64| format!("{x:.1}");
    let (xr, yb, ly) = (left + pw, top + ph, y_of(v.limit_per_minute));
    let points: Vec<String> = v
        .series
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x_of(i), y_of(p.units as f64)))
        .collect();
    html! {
        figure {
            figcaption { (title) }
            svg role="img" aria-label=(title) width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) {
                // Axes and y ticks.
                line x1=(left) y1=(top) x2=(left) y2=(yb) stroke="#8a93a5" {}
                line x1=(left) y1=(yb) x2=(xr) y2=(yb) stroke="#8a93a5" {}
                @for k in 0..=4 {
                    @let val = ymax * f64::from(k) / 4.0;
                    line x1=(left) y1=(f1(y_of(val))) x2=(xr) y2=(f1(y_of(val))) stroke="#eceff3" {}
                    text x=(left - 4.0) y=(f1(y_of(val) + 3.0)) font-size="10" text-anchor="end"
                        fill="#5b6475" { (format!("{val:.0}")) }
                }
                // The limit.
                line x1=(left) y1=(f1(ly)) x2=(xr) y2=(f1(ly)) stroke="#c62828" stroke-width="1.5"
                    stroke-dasharray="6 4" {}
                text x=(xr) y=(f1(ly - 4.0)) font-size="10" text-anchor="end" fill="#c62828" {
                    (format!("limit {:.0}/min", v.limit_per_minute))
                }
                @if n == 0 {
                    text x=(left + 10.0) y=(top + ph / 2.0) font-size="12" fill="#5b6475" {
                        "no requests logged yet"
                    }
                } @else {
                    polyline points=(points.join(" ")) fill="none" stroke="#3b6fd8" stroke-width="2" {}
                    @for (i, p) in v.series.iter().enumerate() {
                        circle cx=(f1(x_of(i))) cy=(f1(y_of(p.units as f64))) r="2.5"
                            fill=(if p.throttled > 0 { "#c62828" } else { "#3b6fd8" }) {
                            title { (format!("{} units, {} requests, {} 429s", p.units, p.requests, p.throttled)) }
                        }
                    }
                    text x=(left) y=(h - 8.0) font-size="10" fill="#5b6475" {
                        (minute_label(v.series[0].minute_epoch)) " UTC"
                    }
                    text x=(xr) y=(h - 8.0) font-size="10" text-anchor="end" fill="#5b6475" {
                        (minute_label(v.series[n - 1].minute_epoch))
                    }
                }
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn minute_label(epoch: i64) -> String {
    jiff::Timestamp::from_second(epoch)
        .map(|t| t.strftime("%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::doc::text;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        let page = spans(&[text("<a href=\"x\">&</a>")]).into_string();
        assert_eq!(page, "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }

    #[test]
    fn bar_chart_scales_to_the_largest() {
        let svg = bar_chart(
            "t",
            &[
                ("a".into(), 10.0, "10".into()),
                ("b".into(), 5.0, "5".into()),
            ],
        )
        .into_string();
        assert!(svg.contains("width=\"300.0\""));
        assert!(svg.contains("width=\"150.0\""));
    }
}
