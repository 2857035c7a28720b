//! The report's sections, each a small function from the [`Report`] to typed blocks
//! ([`super::doc`]): what every rendering says is decided here once, so Markdown and HTML cannot
//! drift apart.

use super::doc::{Bars, Block, Chart, Document, Section, Span, Table, Tone, code, strong, text};
use super::*;

/// The whole document, warnings first, sections in reading order.
pub(super) fn document(r: &Report) -> Document {
    let mut sections = vec![summary(r), charts(r), counts(r), routing(r), gaps(r)];
    sections.push(content(r));
    sections.push(super::attachments::doc_section(&r.attachments));
    sections.push(cost(r));
    if let Some(p) = &r.progress {
        sections.push(progress(p));
    }
    sections.extend(super::longrun::sections(
        r.long_run.as_ref(),
        r.verification.as_ref(),
    ));
    sections.extend([failures(&r.failures), caps(&r.caps), settings_and_runs(r)]);
    Document {
        title: "deskie-import report".into(),
        warnings: r.warnings().map(|a| a.message.clone()).collect(),
        meta: vec![
            text("Phase: "),
            strong(r.phase.label()),
            text(format!(
                " · generated {} · schema {}",
                r.generated_at, r.schema_version
            )),
        ],
        notices: r
            .alerts
            .iter()
            .filter(|a| a.level == Level::Notice)
            .map(|a| a.message.clone())
            .collect(),
        sections,
    }
}

/// Headline figures and the summary lines (without the warnings, already shown first).
fn summary(r: &Report) -> Section {
    let c = &r.counts;
    let k = &r.cost;
    let mut s = Section::new("Summary");
    s.push(Block::Cards(vec![
        (c.products.to_string(), "products".into()),
        (c.tickets.to_string(), "tickets".into()),
        (c.messages.to_string(), "messages".into()),
        (c.notes.to_string(), "notes".into()),
        (
            format!("{} ({})", c.attachments, fmt_bytes(c.attachment_bytes)),
            "attachments".into(),
        ),
        (
            k.deskie.cases.to_string(),
            "cases to exist in Deskie".into(),
        ),
        (
            k.deskie.writes_total.to_string(),
            "Deskie writes (×2 units)".into(),
        ),
        (
            fmt_duration(k.estimated_remaining_secs),
            format!("time left (bottleneck: {})", k.bottleneck_remaining),
        ),
    ]));
    s.push(Block::List(
        r.summary_lines()
            .into_iter()
            .filter(|l| !l.starts_with("WARNING:"))
            .map(|l| vec![text(l)])
            .collect(),
    ));
    s
}

/// A count per key, largest first, as bars.
fn bars(title: &str, key: &str, m: &BTreeMap<String, u64>) -> Chart {
    let mut items: Vec<(String, f64, String)> = m
        .iter()
        .map(|(k, n)| (k.clone(), *n as f64, n.to_string()))
        .collect();
    items.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Chart::Bars(Bars {
        title: title.into(),
        head: [key.into(), "tickets".into()],
        items,
    })
}

/// Tickets by channel and status, time per side, and the request rates of a real run.
fn charts(r: &Report) -> Section {
    let c = &r.counts;
    let k = &r.cost;
    let time = |label: &str, secs: f64| (label.to_string(), secs, fmt_duration(secs));
    let mut charts = vec![
        bars(
            "Tickets by Desk360 channel",
            "Desk360 channel",
            &c.by_channel,
        ),
        bars("Tickets by Desk360 status", "Desk360 status", &c.by_status),
        Chart::Bars(Bars {
            title: "Planned time per side at the limits".into(),
            head: ["side".into(), "time at the limit".into()],
            items: vec![
                time("Deskie, whole", k.deskie.estimated_total_secs),
                time("Desk360, whole", k.desk360.estimated_total_secs),
                time("Deskie, left", k.deskie.estimated_remaining_secs),
                time("Desk360, left", k.desk360.estimated_remaining_secs),
            ],
        }),
    ];
    if let Some(p) = &r.progress {
        charts.push(Chart::Rate {
            title: "Deskie units per minute vs limit".into(),
            view: p.deskie.clone(),
        });
        charts.push(Chart::Rate {
            title: "Desk360 requests per minute vs limit".into(),
            view: p.desk360.clone(),
        });
    }
    let mut s = Section::new("Charts");
    s.push(Block::Charts(charts));
    s
}

/// A two-column table of a count per key.
fn count_table(key: &str, value: &str, m: &BTreeMap<String, u64>) -> Block {
    let mut t = Table::new(&[key, value], &[false, true]);
    for (k, v) in m {
        t.row([k.clone(), v.to_string()]);
    }
    Block::Table(t)
}

/// What the store holds: totals, per state, per product, per priority.
fn counts(r: &Report) -> Section {
    let c = &r.counts;
    let mut s = Section::new("Counts");
    s.para(
        Tone::Plain,
        format!(
            "{} products, {} tickets ({} with details stored), {} messages, {} notes, {} attachments ({}).",
            c.products,
            c.tickets,
            c.details_stored,
            c.messages,
            c.notes,
            c.attachments,
            fmt_bytes(c.attachment_bytes)
        ),
    );
    s.push(count_table("state", "tickets", &c.tickets_by_state));
    let mut t = Table::new(
        &[
            "product",
            "name",
            "tickets",
            "messages",
            "notes",
            "attachments",
            "bytes",
        ],
        &[true, false, true, true, true, true, true],
    );
    for p in &c.by_product {
        t.row([
            p.product_id.to_string(),
            p.name.clone().unwrap_or_default(),
            p.tickets.to_string(),
            p.messages.to_string(),
            p.notes.to_string(),
            p.attachments.to_string(),
            fmt_bytes(p.attachment_bytes),
        ]);
    }
    s.push(Block::Table(t));
    s.push(count_table("Desk360 priority", "tickets", &c.by_priority));
    s
}

/// Cases per route, tickets skipped on purpose, tickets that cannot go and why.
fn routing(r: &Report) -> Section {
    let rt = &r.routing;
    let mut s = Section::new("Routing");
    s.push(count_table("Deskie route", "cases", &rt.cases_by_route));
    if rt.skipped_total > 0 {
        s.push(count_table(
            "skipped channel (mapped to skip)",
            "tickets",
            &rt.skipped_by_channel,
        ));
    }
    if rt.unroutable_total == 0 {
        s.para(Tone::Good, "Every stored ticket can go through its route.");
        return s;
    }
    s.para(
        Tone::Bad,
        format!("{} tickets cannot go:", rt.unroutable_total),
    );
    for g in &rt.unroutable {
        s.push(Block::Subheading(format!(
            "route {} · {} tickets",
            g.route, g.count
        )));
        s.para(Tone::Plain, &g.reason);
        s.push(Block::Keys(g.tickets.clone()));
    }
    s
}

/// Desk360 ids without a mapping, with what the default does.
fn gaps(r: &Report) -> Section {
    let g = &r.mapping_gaps;
    let mut s = Section::new("Mapping gaps");
    not_loaded_only(r, &mut s);
    let before = s.blocks.len();
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
        s.push(Block::Subheading(format!("{title} without a mapping")));
        s.para(Tone::Plain, format!("{default}."));
        let mut t = Table::new(&["id", "name", "tickets"], &[true, false, true]);
        for x in list {
            t.row([
                x.id.to_string(),
                x.name.clone().unwrap_or_default(),
                x.tickets.to_string(),
            ]);
        }
        s.push(Block::Table(t));
    }
    if s.blocks.len() == before {
        s.para(Tone::Good, "Every agent, type, reason and code is mapped.");
    }
    s
}

/// Says that a section covers the tickets not loaded yet, once some are loaded: loaded tickets
/// are counted from their rows and the journal, not mapped again (the report's cost at scale).
fn not_loaded_only(r: &Report, s: &mut Section) {
    let loaded = r
        .counts
        .tickets_by_state
        .get("loaded")
        .copied()
        .unwrap_or(0);
    if loaded > 0 {
        s.para(
            Tone::Plain,
            format!(
                "For the tickets not loaded yet; the {loaded} loaded tickets are not mapped again."
            ),
        );
    }
}

/// Lossy content: derived subjects, oversize attachments, empty messages, source warnings.
fn content(r: &Report) -> Section {
    let t = &r.content;
    let mut s = Section::new("Content warnings");
    not_loaded_only(r, &mut s);
    s.para(
        Tone::Plain,
        format!(
            "{} tickets have no subject; one is derived from the first message's first line.",
            t.derived_subjects
        ),
    );
    if !t.derived_subject_examples.is_empty() {
        let mut table = Table::new(&["ticket", "derived subject"], &[false, false]);
        for d in &t.derived_subject_examples {
            table.row([d.ticket.clone(), d.subject.clone()]);
        }
        s.push(Block::Table(table));
    }
    s.para(
        Tone::Plain,
        super::attachments::oversize_sentence(
            &r.attachments.mode,
            t.oversize_attachments_total,
            t.oversize_attachment_bytes,
        ),
    );
    if !t.oversize_attachments.is_empty() {
        s.push(Block::Table(oversize_table(&t.oversize_attachments)));
    }
    s.para(
        Tone::Plain,
        format!(
            "{} messages are empty; a placeholder text is sent.",
            t.empty_messages_total
        ),
    );
    if !t.empty_messages.is_empty() {
        s.push(Block::Keys(
            t.empty_messages
                .iter()
                .map(|e| format!("{} (message {})", e.ticket, e.message_id))
                .collect(),
        ));
    }
    s.para(
        Tone::Plain,
        format!(
            "{} things Desk360 sent were carried over in a safer form (e.g. a message of an unknown type kept as an internal note, never published).",
            t.source_warnings_total
        ),
    );
    if !t.source_warnings.is_empty() {
        s.push(Block::List(
            t.source_warnings.iter().map(|w| vec![text(w)]).collect(),
        ));
    }
    s
}

/// The files Deskie will not take; URLs are data, shown as code, never linked.
fn oversize_table(list: &[OversizeAttachment]) -> Table {
    let mut t = Table::new(
        &["ticket", "message", "name", "size", "url (text)"],
        &[false, true, false, true, false],
    );
    for a in list {
        t.rows.push(vec![
            text(&a.ticket),
            text(a.message_id.to_string()),
            text(&a.name),
            text(fmt_bytes(a.size)),
            code(&a.url),
        ]);
    }
    t
}

/// Requests and durations on both sides, whole and left, with the bottleneck.
fn cost(r: &Report) -> Section {
    let k = &r.cost;
    let mut t = Table::new(
        &["", "Deskie (target)", "Desk360 (source)"],
        &[false, true, true],
    );
    t.row([
        "limit".to_string(),
        format!(
            "{} units / {} s ({:.0}/min)",
            k.deskie.units_per_window, k.deskie.window_secs, k.deskie.units_per_minute
        ),
        format!(
            "{} requests / {} s ({:.0}/min)",
            k.desk360.requests_per_window, k.desk360.window_secs, k.desk360.requests_per_minute
        ),
    ]);
    t.row([
        "whole migration".to_string(),
        format!(
            "{} writes × 2 + 1 read = {} units",
            k.deskie.writes_total, k.deskie.units_total
        ),
        format!(
            "{} list pages + {} details + {} reference = {} requests",
            k.desk360.list_pages,
            k.desk360.details,
            k.desk360.reference_calls,
            k.desk360.requests_total
        ),
    ]);
    t.row([
        "time at the limit".to_string(),
        fmt_duration(k.deskie.estimated_total_secs),
        fmt_duration(k.desk360.estimated_total_secs),
    ]);
    t.row([
        "left to do".to_string(),
        left_deskie(&k.deskie),
        format!(
            "{} requests{}",
            k.desk360.requests_remaining,
            if k.desk360.listing_complete {
                ""
            } else {
                " (listing unfinished: more to come)"
            }
        ),
    ]);
    t.row([
        "time left at the limit".to_string(),
        fmt_duration(k.deskie.estimated_remaining_secs),
        fmt_duration(k.desk360.estimated_remaining_secs),
    ]);
    let mut s = Section::new("Cost and duration");
    s.push(Block::Table(t));
    s.push(Block::Para(Tone::Plain, cost_conclusion(k)));
    s
}

/// "N writes + ~M (not extracted yet) + R reads = U units".
fn left_deskie(d: &DeskieCost) -> String {
    let estimated = if d.writes_estimated_unextracted > 0 {
        format!(" + ~{} (not extracted yet)", d.writes_estimated_unextracted)
    } else {
        String::new()
    };
    format!(
        "{} writes{estimated} + {} reads = {} units",
        d.writes_remaining, d.reads_planned, d.units_remaining
    )
}

/// The sentence under the cost table: totals, bottlenecks, cases, writes done.
fn cost_conclusion(k: &Cost) -> Vec<Span> {
    vec![
        text("Extraction and loading overlap, so the total is the larger side. Whole migration: "),
        strong(fmt_duration(k.estimated_total_secs)),
        text(" (bottleneck: "),
        strong(&k.bottleneck_total),
        text("). Left now: "),
        strong(fmt_duration(k.estimated_remaining_secs)),
        text(" (bottleneck: "),
        strong(&k.bottleneck_remaining),
        text(format!(
            "). {} cases; {} writes already done.",
            k.deskie.cases, k.deskie.writes_done
        )),
    ]
}

/// Done / failed / left, elapsed, ETA, and each side's request rate against its limit.
fn progress(p: &ProgressSection) -> Section {
    let mut cards = vec![
        (p.done.to_string(), "done".to_string()),
        (p.failed.to_string(), "failed".into()),
        (p.skipped.to_string(), "skipped".into()),
        (p.remaining.to_string(), "remaining".into()),
        (fmt_duration(p.elapsed_secs), "elapsed".into()),
        (fmt_duration(p.eta_secs), "ETA at the limits".into()),
    ];
    if let Some(e) = p.eta_observed_secs {
        cards.push((fmt_duration(e), "ETA at the observed rate".into()));
    }
    let mut t = Table::new(
        &[
            "side",
            "requests",
            "units",
            "avg units/min",
            "peak/min",
            "limit/min",
            "use",
            "429s",
            "transient",
        ],
        &[false, true, true, true, true, true, true, true, true],
    );
    for (name, v) in [("Deskie", &p.deskie), ("Desk360", &p.desk360)] {
        t.row([
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
        ]);
    }
    let mut s = Section::new("Progress");
    s.push(Block::Cards(cards));
    s.push(Block::Table(t));
    s
}

/// Failed tickets grouped by cause with the API's message and the retry command; unread pages.
fn failures(f: &Failures) -> Section {
    let mut s = Section::new("Failures");
    if f.groups.is_empty() && f.pages.is_empty() {
        s.para(Tone::Good, "None.");
    }
    for g in &f.groups {
        s.push(Block::Subheading(format!(
            "{} × {} / {}{} ({})",
            g.count,
            g.stage,
            g.step,
            g.code
                .as_deref()
                .map(|c| format!(" / {c}"))
                .unwrap_or_default(),
            g.class
        )));
        s.push(Block::Quote(g.message.clone()));
        s.push(Block::Keys(g.tickets.clone()));
        s.push(Block::Para(
            Tone::Plain,
            vec![text("retry: "), code(&g.retry_command)],
        ));
    }
    if !f.pages.is_empty() {
        s.push(Block::Para(
            Tone::Plain,
            vec![
                text("Unread list pages (the next "),
                code("deskie-import run"),
                text(" resumes there):"),
            ],
        ));
        let mut t = Table::new(
            &[
                "product",
                "page",
                "code",
                "message",
                "attempts",
                "last (UTC)",
            ],
            &[true, true, false, false, true, false],
        );
        for p in &f.pages {
            t.row([
                p.product_id.to_string(),
                p.page.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
                p.code.clone().unwrap_or_default(),
                p.message.clone(),
                p.attempts.to_string(),
                p.last_seen.clone(),
            ]);
        }
        s.push(Block::Table(t));
    }
    s
}

/// The Deskie account's case caps against this migration.
fn caps(cp: &Caps) -> Section {
    let mut t = Table::new(
        &["cap", "limit", "cases of this migration", "verdict"],
        &[false, false, true, false],
    );
    let kept = if cp.retention_exceeded {
        format!(
            "EXCEEDED by {}: the oldest would be deleted",
            cp.cases_over_retention
        )
    } else {
        "within".into()
    };
    let retention = (cp.cases_per_agent, cp.retention_limit);
    cap_row(&mut t, cp, "cases kept", retention, kept);
    let monthly = if cp.monthly_exceeded {
        format!(
            "EXCEEDED: {:.2} months of allowance",
            cp.months_of_allowance
        )
    } else {
        format!("within ({:.2} months)", cp.months_of_allowance)
    };
    let monthly_limit = (cp.new_cases_per_agent_month, cp.monthly_limit);
    cap_row(&mut t, cp, "new cases a month", monthly_limit, monthly);
    let mut s = Section::new("Deskie account caps");
    s.push(Block::Para(
        Tone::Plain,
        vec![
            text("Plan "),
            strong(cp.plan.as_str()),
            text(format!(
                ", {} agents, {} cases from this migration.",
                cp.agents, cp.cases
            )),
        ],
    ));
    s.push(Block::Table(t));
    s
}

/// One cap's row: its name, its limit (`per_agent` × the agents = `limit`), this migration's
/// cases and the verdict.
fn cap_row(t: &mut Table, cp: &Caps, cap: &str, (per_agent, limit): (u64, u64), verdict: String) {
    t.row([
        cap.to_string(),
        format!("{per_agent} per agent × {} = {limit}", cp.agents),
        cp.cases.to_string(),
        verdict,
    ]);
}

/// The settings the plan assumed and the latest runs.
fn settings_and_runs(r: &Report) -> Section {
    let st = &r.settings;
    let mut s = Section::new("Settings and runs");
    s.para(
        Tone::Plain,
        format!(
            "Desk360 {} requests / {} s; Deskie {} plan, {} agents, {} units / {} s; concurrency {}; timezone {}; source id field {}.",
            st.source_rpm,
            st.source_window_secs,
            st.target_plan.as_str(),
            st.target_agents,
            st.target_rpm,
            st.target_window_secs,
            st.concurrency,
            st.timezone,
            st.source_id_field.as_deref().unwrap_or("(none)")
        ),
    );
    if r.runs.is_empty() {
        return s;
    }
    let mut t = Table::new(
        &[
            "run",
            "kind",
            "started (UTC)",
            "finished",
            "outcome",
            "took",
        ],
        &[true, false, false, false, false, true],
    );
    for run in &r.runs {
        t.row([
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
        ]);
    }
    s.push(Block::Table(t));
    s
}
