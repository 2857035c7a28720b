//! HTML rendering of a [`Report`]: ONE self-contained file — inline CSS, inline SVG charts, no
//! script and no external resource (URLs from the data are shown as escaped text, never as a
//! `src` or `href`), so it can be mailed, archived and opened offline.
//!
//! Charts: stored tickets by Desk360 channel and by status (bars), the estimated time per side
//! (bars), and for a real run the Deskie and Desk360 rate per minute against the limit (line plus
//! a dashed limit line).

use std::fmt::Write;

use super::*;

/// Ticket keys listed inline.
const INLINE_KEYS: usize = 60;

pub(super) fn render(r: &Report) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let _ = write_all(r, &mut o);
    o
}

/// Escapes text for HTML content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

fn keys(list: &[String]) -> String {
    let mut s = esc(&list
        .iter()
        .take(INLINE_KEYS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", "));
    if list.len() > INLINE_KEYS {
        let _ = write!(
            s,
            " … and {} more (see the JSON report)",
            list.len() - INLINE_KEYS
        );
    }
    s
}

/// A horizontal bar chart: one bar per item, value label at the end.
fn bar_chart(title: &str, items: &[(String, f64, String)]) -> String {
    let label_w = 130.0;
    let bar_w = 300.0;
    let row = 22.0;
    let width = label_w + bar_w + 90.0;
    let height = (items.len().max(1) as f64) * row + 8.0;
    let max = items.iter().map(|i| i.1).fold(0.0_f64, f64::max);
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        esc(title),
        esc(title)
    );
    if items.is_empty() {
        let _ = write!(
            s,
            "<text x=\"4\" y=\"16\" font-size=\"12\" fill=\"#5b6475\">no data</text>"
        );
    }
    for (i, (label, value, text)) in items.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = if max > 0.0 {
            (value / max * bar_w).max(if *value > 0.0 { 1.0 } else { 0.0 })
        } else {
            0.0
        };
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            s,
            "<text x=\"{lx}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1d2433\">{label}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" rx=\"2\" fill=\"{color}\"><title>{label}: {text}</title></rect>\
             <text x=\"{vx:.1}\" y=\"{ty}\" font-size=\"12\" fill=\"#3a4256\">{text}</text>",
            lx = label_w - 6.0,
            ty = y + 13.0,
            h = row - 6.0,
            vx = label_w + w + 5.0,
            label = esc(&truncate(label, 20)),
            text = esc(text),
        );
    }
    s.push_str("</svg></figure>");
    s
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

/// Units per minute over time against the limit: a polyline and a dashed limit line.
fn rate_chart(title: &str, v: &RateView) -> String {
    let (w, h) = (460.0, 200.0);
    let (left, right, top, bottom) = (48.0, 10.0, 10.0, 28.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
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
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">",
        esc(title),
        esc(title)
    );
    // Axes and y ticks.
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{yb}\" stroke=\"#8a93a5\"/><line x1=\"{left}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"#8a93a5\"/>",
        yb = top + ph,
        xr = left + pw
    );
    for k in 0..=4 {
        let val = ymax * f64::from(k) / 4.0;
        let y = y_of(val);
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{xr}\" y2=\"{y:.1}\" stroke=\"#eceff3\"/><text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5b6475\">{val:.0}</text>",
            xr = left + pw,
            tx = left - 4.0,
            ty = y + 3.0
        );
    }
    // The limit.
    let ly = y_of(v.limit_per_minute);
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{ly:.1}\" x2=\"{xr}\" y2=\"{ly:.1}\" stroke=\"#c62828\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/><text x=\"{xr}\" y=\"{lt:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#c62828\">limit {lim:.0}/min</text>",
        xr = left + pw,
        lt = ly - 4.0,
        lim = v.limit_per_minute
    );
    if n == 0 {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#5b6475\">no requests logged yet</text>",
            left + 10.0,
            top + ph / 2.0
        );
    } else {
        let points: Vec<String> = v
            .series
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x_of(i), y_of(p.units as f64)))
            .collect();
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#3b6fd8\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        for (i, p) in v.series.iter().enumerate() {
            let color = if p.throttled > 0 {
                "#c62828"
            } else {
                "#3b6fd8"
            };
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>{} units, {} requests, {} 429s</title></circle>",
                x_of(i),
                y_of(p.units as f64),
                p.units,
                p.requests,
                p.throttled
            );
        }
        let first = minute_label(v.series[0].minute_epoch);
        let last = minute_label(v.series[n - 1].minute_epoch);
        let _ = write!(
            s,
            "<text x=\"{left}\" y=\"{ty}\" font-size=\"10\" fill=\"#5b6475\">{first} UTC</text><text x=\"{xr}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5b6475\">{last}</text>",
            ty = h - 8.0,
            xr = left + pw
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn minute_label(epoch: i64) -> String {
    jiff::Timestamp::from_second(epoch)
        .map(|t| t.strftime("%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn card(o: &mut String, value: &str, label: &str) {
    let _ = write!(
        o,
        "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    );
}

fn table(o: &mut String, head: &[&str], rows: &[Vec<String>], numeric: &[bool]) {
    o.push_str("<table><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>");
    for row in rows {
        o.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(o, "<td{class}>{}</td>", esc(c));
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
}

fn write_all(r: &Report, o: &mut String) -> std::fmt::Result {
    write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>deskie-import report</title><style>{CSS}</style></head><body><main>"
    )?;
    // Loud warnings before anything else.
    for a in r.warnings() {
        write!(
            o,
            "<div class=\"warn\"><b>WARNING</b> {}</div>",
            esc(&a.message)
        )?;
    }
    write!(
        o,
        "<h1>deskie-import report</h1><div class=\"meta\">Phase: <b>{}</b> · generated {} · schema {}</div>",
        esc(r.phase.label()),
        esc(&r.generated_at),
        r.schema_version
    )?;
    for a in r.alerts.iter().filter(|a| a.level == Level::Notice) {
        write!(o, "<div class=\"notice\">{}</div>", esc(&a.message))?;
    }

    // ---- headline cards
    let c = &r.counts;
    let k = &r.cost;
    o.push_str("<h2>Summary</h2><div class=\"cards\">");
    card(o, &c.products.to_string(), "products");
    card(o, &c.tickets.to_string(), "tickets");
    card(o, &c.messages.to_string(), "messages");
    card(o, &c.notes.to_string(), "notes");
    card(
        o,
        &format!("{} ({})", c.attachments, fmt_bytes(c.attachment_bytes)),
        "attachments",
    );
    card(o, &k.deskie.cases.to_string(), "cases to exist in Deskie");
    card(
        o,
        &k.deskie.writes_total.to_string(),
        "Deskie writes (×2 units)",
    );
    card(
        o,
        &fmt_duration(k.estimated_remaining_secs),
        &format!("time left (bottleneck: {})", k.bottleneck_remaining),
    );
    o.push_str("</div>");

    // ---- charts
    o.push_str("<h2>Charts</h2><div class=\"charts\">");
    let bars = |m: &BTreeMap<String, u64>| -> Vec<(String, f64, String)> {
        let mut v: Vec<(String, f64, String)> = m
            .iter()
            .map(|(k, n)| (k.clone(), *n as f64, n.to_string()))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    o.push_str(&bar_chart(
        "Tickets by Desk360 channel",
        &bars(&c.by_channel),
    ));
    o.push_str(&bar_chart("Tickets by Desk360 status", &bars(&c.by_status)));
    let time = vec![
        (
            "Deskie, whole".to_string(),
            k.deskie.estimated_total_secs,
            fmt_duration(k.deskie.estimated_total_secs),
        ),
        (
            "Desk360, whole".to_string(),
            k.desk360.estimated_total_secs,
            fmt_duration(k.desk360.estimated_total_secs),
        ),
        (
            "Deskie, left".to_string(),
            k.deskie.estimated_remaining_secs,
            fmt_duration(k.deskie.estimated_remaining_secs),
        ),
        (
            "Desk360, left".to_string(),
            k.desk360.estimated_remaining_secs,
            fmt_duration(k.desk360.estimated_remaining_secs),
        ),
    ];
    o.push_str(&bar_chart("Planned time per side at the limits", &time));
    if let Some(p) = &r.progress {
        o.push_str(&rate_chart("Deskie units per minute vs limit", &p.deskie));
        o.push_str(&rate_chart(
            "Desk360 requests per minute vs limit",
            &p.desk360,
        ));
    }
    o.push_str("</div>");

    // ---- counts
    o.push_str("<h2>Counts</h2>");
    let rows: Vec<Vec<String>> = c
        .tickets_by_state
        .iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    table(o, &["state", "tickets"], &rows, &[false, true]);
    let rows: Vec<Vec<String>> = c
        .by_product
        .iter()
        .map(|p| {
            vec![
                p.product_id.to_string(),
                p.name.clone().unwrap_or_default(),
                p.tickets.to_string(),
                p.messages.to_string(),
                p.notes.to_string(),
                p.attachments.to_string(),
                fmt_bytes(p.attachment_bytes),
            ]
        })
        .collect();
    table(
        o,
        &[
            "product",
            "name",
            "tickets",
            "messages",
            "notes",
            "attachments",
            "bytes",
        ],
        &rows,
        &[true, false, true, true, true, true, true],
    );
    let rows: Vec<Vec<String>> = c
        .by_priority
        .iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    table(o, &["Desk360 priority", "tickets"], &rows, &[false, true]);

    // ---- routing
    let rt = &r.routing;
    o.push_str("<h2>Routing</h2>");
    let rows: Vec<Vec<String>> = rt
        .cases_by_route
        .iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    table(o, &["Deskie route", "cases"], &rows, &[false, true]);
    if rt.skipped_total > 0 {
        let rows: Vec<Vec<String>> = rt
            .skipped_by_channel
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect();
        table(
            o,
            &["skipped channel (mapped to skip)", "tickets"],
            &rows,
            &[false, true],
        );
    }
    if rt.unroutable_total == 0 {
        o.push_str("<p class=\"ok\">Every stored ticket can go through its route.</p>");
    } else {
        write!(
            o,
            "<p class=\"bad\">{} tickets cannot go:</p>",
            rt.unroutable_total
        )?;
        for g in &rt.unroutable {
            write!(
                o,
                "<h3>route {} · {} tickets</h3><p>{}</p><p class=\"keys\">{}</p>",
                esc(&g.route),
                g.count,
                esc(&g.reason),
                keys(&g.tickets)
            )?;
        }
    }

    // ---- gaps
    let g = &r.mapping_gaps;
    o.push_str("<h2>Mapping gaps</h2>");
    let mut any = false;
    for (title, list, default) in [
        ("Desk360 agents", &g.agents, &g.defaults.agents),
        ("Desk360 types", &g.types, &g.defaults.types),
        ("Desk360 reasons", &g.reasons, &g.defaults.reasons),
        ("Status codes", &g.status_codes, &g.defaults.codes),
        ("Priority codes", &g.priority_codes, &g.defaults.codes),
    ] {
        if list.is_empty() {
            continue;
        }
        any = true;
        write!(
            o,
            "<h3>{} without a mapping</h3><p>{}.</p>",
            esc(title),
            esc(default)
        )?;
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|x| {
                vec![
                    x.id.to_string(),
                    x.name.clone().unwrap_or_default(),
                    x.tickets.to_string(),
                ]
            })
            .collect();
        table(o, &["id", "name", "tickets"], &rows, &[true, false, true]);
    }
    if !any {
        o.push_str("<p class=\"ok\">Every agent, type, reason and code is mapped.</p>");
    }

    // ---- content
    let t = &r.content;
    o.push_str("<h2>Content warnings</h2>");
    write!(
        o,
        "<p>{} tickets have no subject; one is derived from the first message.</p>",
        t.derived_subjects
    )?;
    if !t.derived_subject_examples.is_empty() {
        let rows: Vec<Vec<String>> = t
            .derived_subject_examples
            .iter()
            .map(|d| vec![d.ticket.clone(), d.subject.clone()])
            .collect();
        table(o, &["ticket", "derived subject"], &rows, &[false, false]);
    }
    write!(
        o,
        "<p>{}</p>",
        esc(&super::attachments::oversize_sentence(
            &r.attachments.mode,
            t.oversize_attachments_total,
            t.oversize_attachment_bytes
        ))
    )?;
    if !t.oversize_attachments.is_empty() {
        // URLs are data: shown as text, never linked or loaded.
        let rows: Vec<Vec<String>> = t
            .oversize_attachments
            .iter()
            .map(|a| {
                vec![
                    a.ticket.clone(),
                    a.message_id.to_string(),
                    a.name.clone(),
                    fmt_bytes(a.size),
                    a.url.clone(),
                ]
            })
            .collect();
        table(
            o,
            &["ticket", "message", "name", "size", "url (text)"],
            &rows,
            &[false, true, false, true, false],
        );
    }
    write!(
        o,
        "<p>{} messages are empty; a placeholder text is sent.</p>",
        t.empty_messages_total
    )?;
    if !t.empty_messages.is_empty() {
        let list: Vec<String> = t
            .empty_messages
            .iter()
            .map(|e| format!("{} (message {})", e.ticket, e.message_id))
            .collect();
        write!(o, "<p class=\"keys\">{}</p>", keys(&list))?;
    }
    write!(
        o,
        "<p>{} things Desk360 sent were carried over in a safer form (e.g. a message of an unknown type kept as an internal note, never published).</p>",
        t.source_warnings_total
    )?;
    if !t.source_warnings.is_empty() {
        write!(o, "<p class=\"keys\">{}</p>", keys(&t.source_warnings))?;
    }

    super::attachments::html(&r.attachments, esc, o);

    // ---- cost
    o.push_str("<h2>Cost and duration</h2>");
    let rows = vec![
        vec![
            "limit".to_string(),
            format!(
                "{} units / {} s ({:.0}/min)",
                k.deskie.units_per_window, k.deskie.window_secs, k.deskie.units_per_minute
            ),
            format!(
                "{} requests / {} s ({:.0}/min)",
                k.desk360.requests_per_window, k.desk360.window_secs, k.desk360.requests_per_minute
            ),
        ],
        vec![
            "whole migration".to_string(),
            format!(
                "{} writes × 2 + 1 read = {} units",
                k.deskie.writes_total, k.deskie.units_total
            ),
            format!(
                "{} pages + {} details + {} reference = {} requests",
                k.desk360.list_pages,
                k.desk360.details,
                k.desk360.reference_calls,
                k.desk360.requests_total
            ),
        ],
        vec![
            "time at the limit".to_string(),
            fmt_duration(k.deskie.estimated_total_secs),
            fmt_duration(k.desk360.estimated_total_secs),
        ],
        vec![
            "left to do".to_string(),
            format!(
                "{} writes (+~{} not extracted) + {} reads = {} units",
                k.deskie.writes_remaining,
                k.deskie.writes_estimated_unextracted,
                k.deskie.reads_planned,
                k.deskie.units_remaining
            ),
            format!(
                "{} requests{}",
                k.desk360.requests_remaining,
                if k.desk360.listing_complete {
                    ""
                } else {
                    " (listing unfinished)"
                }
            ),
        ],
        vec![
            "time left at the limit".to_string(),
            fmt_duration(k.deskie.estimated_remaining_secs),
            fmt_duration(k.desk360.estimated_remaining_secs),
        ],
    ];
    table(
        o,
        &["", "Deskie (target)", "Desk360 (source)"],
        &rows,
        &[false, true, true],
    );
    write!(
        o,
        "<p>Extraction and loading overlap, so the total is the larger side. Whole migration: <b>{}</b> (bottleneck: <b>{}</b>). Left now: <b>{}</b> (bottleneck: <b>{}</b>). {} writes already done.</p>",
        esc(&fmt_duration(k.estimated_total_secs)),
        esc(&k.bottleneck_total),
        esc(&fmt_duration(k.estimated_remaining_secs)),
        esc(&k.bottleneck_remaining),
        k.deskie.writes_done
    )?;

    // ---- progress
    if let Some(p) = &r.progress {
        o.push_str("<h2>Progress</h2><div class=\"cards\">");
        card(o, &p.done.to_string(), "done");
        card(o, &p.failed.to_string(), "failed");
        card(o, &p.skipped.to_string(), "skipped");
        card(o, &p.remaining.to_string(), "remaining");
        card(o, &fmt_duration(p.elapsed_secs), "elapsed");
        card(o, &fmt_duration(p.eta_secs), "ETA at the limits");
        if let Some(e) = p.eta_observed_secs {
            card(o, &fmt_duration(e), "ETA at the observed rate");
        }
        o.push_str("</div>");
        let rows: Vec<Vec<String>> = [("Deskie", &p.deskie), ("Desk360", &p.desk360)]
            .iter()
            .map(|(name, v)| {
                vec![
                    name.to_string(),
                    v.requests.to_string(),
                    v.units.to_string(),
                    v.avg_units_per_minute
                        .map(|a| format!("{a:.0}"))
                        .unwrap_or_else(|| "–".into()),
                    v.peak_units_per_minute.to_string(),
                    format!("{:.0}", v.limit_per_minute),
                    v.utilisation
                        .map(|u| format!("{:.0} %", u * 100.0))
                        .unwrap_or_else(|| "–".into()),
                    v.throttled.to_string(),
                    v.transient.to_string(),
                ]
            })
            .collect();
        table(
            o,
            &[
                "side",
                "requests",
                "units",
                "avg/min",
                "peak/min",
                "limit/min",
                "use",
                "429s",
                "transient",
            ],
            &rows,
            &[false, true, true, true, true, true, true, true, true],
        );
    }

    super::longrun::html(r.long_run.as_ref(), r.verification.as_ref(), esc, o);

    // ---- failures
    let f = &r.failures;
    o.push_str("<h2>Failures</h2>");
    if f.groups.is_empty() && f.pages.is_empty() {
        o.push_str("<p class=\"ok\">None.</p>");
    }
    for g in &f.groups {
        write!(
            o,
            "<h3>{} × {} / {}{} ({})</h3><blockquote>{}</blockquote><p class=\"keys\">{}</p><p>retry: <code>{}</code></p>",
            g.count,
            esc(&g.stage),
            esc(&g.step),
            g.code
                .as_deref()
                .map(|c| format!(" / {}", esc(c)))
                .unwrap_or_default(),
            esc(&g.class),
            esc(&g.message),
            keys(&g.tickets),
            esc(&g.retry_command)
        )?;
    }
    if !f.pages.is_empty() {
        let rows: Vec<Vec<String>> = f
            .pages
            .iter()
            .map(|p| {
                vec![
                    p.product_id.to_string(),
                    p.page.map(|x| x.to_string()).unwrap_or_default(),
                    p.code.clone().unwrap_or_default(),
                    p.message.clone(),
                    p.attempts.to_string(),
                ]
            })
            .collect();
        o.push_str(
            "<p>Unread list pages (the next <code>deskie-import run</code> resumes there):</p>",
        );
        table(
            o,
            &["product", "page", "code", "message", "attempts"],
            &rows,
            &[true, true, false, false, true],
        );
    }

    // ---- caps
    let cp = &r.caps;
    o.push_str("<h2>Deskie account caps</h2>");
    let rows = vec![
        vec![
            "cases kept".to_string(),
            format!(
                "{} per agent × {} = {}",
                cp.cases_per_agent, cp.agents, cp.retention_limit
            ),
            cp.cases.to_string(),
            if cp.retention_exceeded {
                format!(
                    "EXCEEDED by {}: the oldest would be deleted",
                    cp.cases_over_retention
                )
            } else {
                "within".into()
            },
        ],
        vec![
            "new cases a month".to_string(),
            format!(
                "{} per agent × {} = {}",
                cp.new_cases_per_agent_month, cp.agents, cp.monthly_limit
            ),
            cp.cases.to_string(),
            if cp.monthly_exceeded {
                format!(
                    "EXCEEDED: {:.2} months of allowance",
                    cp.months_of_allowance
                )
            } else {
                format!("within ({:.2} months)", cp.months_of_allowance)
            },
        ],
    ];
    write!(
        o,
        "<p>Plan <b>{}</b>, {} agents.</p>",
        cp.plan.as_str(),
        cp.agents
    )?;
    table(
        o,
        &["cap", "limit", "cases of this migration", "verdict"],
        &rows,
        &[false, false, true, false],
    );

    // ---- settings and runs
    let s = &r.settings;
    o.push_str("<h2>Settings and runs</h2>");
    write!(
        o,
        "<p>Desk360 {} requests / {} s; Deskie {} plan, {} agents, {} units / {} s; concurrency {}; timezone {}; source id field {}.</p>",
        s.source_rpm,
        s.source_window_secs,
        s.target_plan.as_str(),
        s.target_agents,
        s.target_rpm,
        s.target_window_secs,
        s.concurrency,
        esc(&s.timezone),
        esc(s.source_id_field.as_deref().unwrap_or("(none)"))
    )?;
    let rows: Vec<Vec<String>> = r
        .runs
        .iter()
        .map(|run| {
            vec![
                run.id.to_string(),
                run.kind.clone(),
                run.started_at.clone(),
                run.finished_at.clone().unwrap_or_else(|| "–".into()),
                run.outcome
                    .clone()
                    .unwrap_or_else(|| "running or killed".into()),
                run.elapsed_secs
                    .map(fmt_duration)
                    .unwrap_or_else(|| "–".into()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table(
            o,
            &[
                "run",
                "kind",
                "started (UTC)",
                "finished",
                "outcome",
                "took",
            ],
            &rows,
            &[true, false, false, false, false, true],
        );
    }
    o.push_str("</main></body></html>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn bar_chart_scales_to_the_largest() {
        let svg = bar_chart(
            "t",
            &[
                ("a".into(), 10.0, "10".into()),
                ("b".into(), 5.0, "5".into()),
            ],
        );
        assert!(svg.contains("width=\"300.0\""));
        assert!(svg.contains("width=\"150.0\""));
    }
}
