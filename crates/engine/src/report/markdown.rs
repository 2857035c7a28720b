//! Markdown rendering of a [`Report`]: warnings first, then one section per question a support
//! lead asks (what is there, where does it go, what is lost, how long, what failed).

use std::fmt::Write;

use super::*;

/// Ticket keys listed inline before "… and N more".
const INLINE_KEYS: usize = 30;

pub(super) fn render(r: &Report) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail; `let _` keeps the renderer free of unwraps.
    let _ = write_all(r, &mut o);
    o
}

fn keys(list: &[String]) -> String {
    let shown: Vec<&str> = list.iter().take(INLINE_KEYS).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if list.len() > INLINE_KEYS {
        let _ = write!(
            s,
            " … and {} more (see the JSON report)",
            list.len() - INLINE_KEYS
        );
    }
    s
}

/// Escapes what would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn write_all(r: &Report, o: &mut String) -> std::fmt::Result {
    writeln!(o, "# deskie-import report\n")?;
    for a in r.warnings() {
        writeln!(o, "> **WARNING:** {}\n", a.message)?;
    }
    writeln!(
        o,
        "Phase: **{}** · generated {} · schema {}\n",
        r.phase.label(),
        r.generated_at,
        r.schema_version
    )?;
    for a in r.alerts.iter().filter(|a| a.level == Level::Notice) {
        writeln!(o, "- Notice: {}", a.message)?;
    }
    if r.alerts.iter().any(|a| a.level == Level::Notice) {
        writeln!(o)?;
    }

    writeln!(o, "## Summary\n")?;
    for l in r.summary_lines() {
        if !l.starts_with("WARNING:") {
            writeln!(o, "- {l}")?;
        }
    }
    writeln!(o)?;

    // ---- counts
    let c = &r.counts;
    writeln!(o, "## Counts\n")?;
    writeln!(
        o,
        "{} products, {} tickets ({} with details stored), {} messages, {} notes, {} attachments ({}).\n",
        c.products,
        c.tickets,
        c.details_stored,
        c.messages,
        c.notes,
        c.attachments,
        fmt_bytes(c.attachment_bytes)
    )?;
    writeln!(o, "| state | tickets |\n|---|---:|")?;
    for (k, v) in &c.tickets_by_state {
        writeln!(o, "| {k} | {v} |")?;
    }
    writeln!(o)?;
    writeln!(
        o,
        "| product | name | tickets | messages | notes | attachments | bytes |\n|---:|---|---:|---:|---:|---:|---:|"
    )?;
    for p in &c.by_product {
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            p.product_id,
            cell(p.name.as_deref().unwrap_or("")),
            p.tickets,
            p.messages,
            p.notes,
            p.attachments,
            fmt_bytes(p.attachment_bytes)
        )?;
    }
    writeln!(o)?;
    for (title, map) in [
        ("Desk360 channel", &c.by_channel),
        ("Desk360 status", &c.by_status),
        ("Desk360 priority", &c.by_priority),
    ] {
        writeln!(o, "| {title} | tickets |\n|---|---:|")?;
        for (k, v) in map {
            writeln!(o, "| {} | {v} |", cell(k))?;
        }
        writeln!(o)?;
    }

    // ---- routing
    let rt = &r.routing;
    writeln!(o, "## Routing\n")?;
    writeln!(o, "| Deskie route | cases |\n|---|---:|")?;
    for (k, v) in &rt.cases_by_route {
        writeln!(o, "| {k} | {v} |")?;
    }
    writeln!(o)?;
    if rt.skipped_total > 0 {
        writeln!(o, "Skipped on purpose (channel mapped to `skip`):\n")?;
        for (k, v) in &rt.skipped_by_channel {
            writeln!(o, "- `{}`: {v} tickets", cell(k))?;
        }
        writeln!(o)?;
    }
    if rt.unroutable_total == 0 {
        writeln!(o, "Every stored ticket can go through its route.\n")?;
    } else {
        writeln!(o, "**{} tickets cannot go:**\n", rt.unroutable_total)?;
        for g in &rt.unroutable {
            writeln!(
                o,
                "- route `{}`, {} tickets: {}\n  - tickets: {}",
                g.route,
                g.count,
                g.reason,
                keys(&g.tickets)
            )?;
        }
        writeln!(o)?;
    }

    // ---- gaps
    let g = &r.mapping_gaps;
    writeln!(o, "## Mapping gaps\n")?;
    let mut any = false;
    for (title, list, default) in [
        ("Desk360 agents", &g.agents, &g.defaults.agents),
        ("Desk360 types", &g.types, &g.defaults.types),
        ("Desk360 reasons", &g.reasons, &g.defaults.reasons),
        ("status codes", &g.status_codes, &g.defaults.codes),
        ("priority codes", &g.priority_codes, &g.defaults.codes),
    ] {
        if list.is_empty() {
            continue;
        }
        any = true;
        writeln!(o, "**{title} without a mapping** — {default}.\n")?;
        writeln!(o, "| id | name | tickets |\n|---:|---|---:|")?;
        for x in list {
            writeln!(
                o,
                "| {} | {} | {} |",
                x.id,
                cell(x.name.as_deref().unwrap_or("")),
                x.tickets
            )?;
        }
        writeln!(o)?;
    }
    if !any {
        writeln!(o, "None: every agent, type, reason and code is mapped.\n")?;
    }

    // ---- content
    let t = &r.content;
    writeln!(o, "## Content warnings\n")?;
    writeln!(
        o,
        "- {} tickets have no subject; one is derived from the first message's first line.",
        t.derived_subjects
    )?;
    for d in &t.derived_subject_examples {
        writeln!(o, "  - {}: “{}”", d.ticket, cell(&d.subject))?;
    }
    writeln!(
        o,
        "- {}",
        super::attachments::oversize_sentence(
            &r.attachments.mode,
            t.oversize_attachments_total,
            t.oversize_attachment_bytes
        )
    )?;
    if !t.oversize_attachments.is_empty() {
        writeln!(
            o,
            "\n| ticket | message | name | size | url |\n|---|---:|---|---:|---|"
        )?;
        for a in &t.oversize_attachments {
            writeln!(
                o,
                "| {} | {} | {} | {} | `{}` |",
                a.ticket,
                a.message_id,
                cell(&a.name),
                fmt_bytes(a.size),
                cell(&a.url)
            )?;
        }
        writeln!(o)?;
    }
    writeln!(
        o,
        "- {} messages are empty; a placeholder text is sent.",
        t.empty_messages_total
    )?;
    if !t.empty_messages.is_empty() {
        let list: Vec<String> = t
            .empty_messages
            .iter()
            .map(|e| format!("{} (message {})", e.ticket, e.message_id))
            .collect();
        writeln!(o, "  - {}", keys(&list))?;
    }
    writeln!(
        o,
        "- {} things Desk360 sent were carried over in a safer form (e.g. a message of an unknown type kept as an internal note, never published).",
        t.source_warnings_total
    )?;
    for w in &t.source_warnings {
        writeln!(o, "  - {}", cell(w))?;
    }
    writeln!(o)?;

    super::attachments::markdown(&r.attachments, o)?;

    // ---- cost
    let k = &r.cost;
    writeln!(o, "## Cost and duration\n")?;
    writeln!(
        o,
        "| | Deskie (target) | Desk360 (source) |\n|---|---:|---:|"
    )?;
    writeln!(
        o,
        "| limit | {} units / {} s ({:.0}/min) | {} requests / {} s ({:.0}/min) |",
        k.deskie.units_per_window,
        k.deskie.window_secs,
        k.deskie.units_per_minute,
        k.desk360.requests_per_window,
        k.desk360.window_secs,
        k.desk360.requests_per_minute
    )?;
    writeln!(
        o,
        "| whole migration | {} writes × 2 + 1 read = {} units | {} list pages + {} details + {} reference = {} requests |",
        k.deskie.writes_total,
        k.deskie.units_total,
        k.desk360.list_pages,
        k.desk360.details,
        k.desk360.reference_calls,
        k.desk360.requests_total
    )?;
    writeln!(
        o,
        "| time at the limit | {} | {} |",
        fmt_duration(k.deskie.estimated_total_secs),
        fmt_duration(k.desk360.estimated_total_secs)
    )?;
    writeln!(
        o,
        "| left to do | {} writes{} + {} reads = {} units | {} requests{} |",
        k.deskie.writes_remaining,
        if k.deskie.writes_estimated_unextracted > 0 {
            format!(
                " + ~{} (not extracted yet)",
                k.deskie.writes_estimated_unextracted
            )
        } else {
            String::new()
        },
        k.deskie.reads_planned,
        k.deskie.units_remaining,
        k.desk360.requests_remaining,
        if k.desk360.listing_complete {
            ""
        } else {
            " (listing unfinished: more to come)"
        }
    )?;
    writeln!(
        o,
        "| time left at the limit | {} | {} |",
        fmt_duration(k.deskie.estimated_remaining_secs),
        fmt_duration(k.desk360.estimated_remaining_secs)
    )?;
    writeln!(
        o,
        "\nExtraction and loading overlap, so the total is the larger side. Whole migration: **{}** (bottleneck: **{}**). Left now: **{}** (bottleneck: **{}**). {} cases; {} writes already done.\n",
        fmt_duration(k.estimated_total_secs),
        k.bottleneck_total,
        fmt_duration(k.estimated_remaining_secs),
        k.bottleneck_remaining,
        k.deskie.cases,
        k.deskie.writes_done
    )?;

    // ---- progress
    if let Some(p) = &r.progress {
        writeln!(o, "## Progress\n")?;
        writeln!(
            o,
            "{} done, {} failed, {} skipped, {} remaining. Elapsed {}; ETA {} at the limits{}.\n",
            p.done,
            p.failed,
            p.skipped,
            p.remaining,
            fmt_duration(p.elapsed_secs),
            fmt_duration(p.eta_secs),
            p.eta_observed_secs
                .map(|e| format!(", {} at the observed rate", fmt_duration(e)))
                .unwrap_or_default()
        )?;
        writeln!(
            o,
            "| side | requests | units | avg units/min | peak/min | limit/min | use | 429s | transient |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for (name, v) in [("Deskie", &p.deskie), ("Desk360", &p.desk360)] {
            writeln!(
                o,
                "| {name} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                v.requests,
                v.units,
                v.avg_units_per_minute
                    .map(|a| format!("{a:.0}"))
                    .unwrap_or_else(|| "–".into()),
                v.peak_units_per_minute,
                v.limit_per_minute,
                v.utilisation
                    .map(|u| format!("{:.0} %", u * 100.0))
                    .unwrap_or_else(|| "–".into()),
                v.throttled,
                v.transient
            )?;
        }
        writeln!(o)?;
    }

    super::longrun::markdown(r.long_run.as_ref(), r.verification.as_ref(), o)?;

    // ---- failures
    let f = &r.failures;
    writeln!(o, "## Failures\n")?;
    if f.groups.is_empty() && f.pages.is_empty() {
        writeln!(o, "None.\n")?;
    }
    for g in &f.groups {
        writeln!(
            o,
            "### {} × {} / {}{} ({})\n",
            g.count,
            g.stage,
            g.step,
            g.code
                .as_deref()
                .map(|c| format!(" / {c}"))
                .unwrap_or_default(),
            g.class
        )?;
        writeln!(o, "> {}\n", cell(&g.message))?;
        writeln!(o, "- tickets: {}", keys(&g.tickets))?;
        writeln!(o, "- retry: `{}`\n", g.retry_command)?;
    }
    if !f.pages.is_empty() {
        writeln!(
            o,
            "Unread list pages (the next `deskie-import run` resumes there):\n"
        )?;
        for p in &f.pages {
            writeln!(
                o,
                "- product {} page {}: {} ({} attempts, last {})",
                p.product_id,
                p.page.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
                cell(&p.message),
                p.attempts,
                p.last_seen
            )?;
        }
        writeln!(o)?;
    }

    // ---- caps
    let cp = &r.caps;
    writeln!(o, "## Deskie account caps\n")?;
    writeln!(
        o,
        "Plan **{}**, {} agents, {} cases from this migration.\n",
        cp.plan.as_str(),
        cp.agents,
        cp.cases
    )?;
    writeln!(
        o,
        "- Kept cases: {} per agent → {} ({}).",
        cp.cases_per_agent,
        cp.retention_limit,
        if cp.retention_exceeded {
            format!(
                "**EXCEEDED by {}: the oldest would be deleted**",
                cp.cases_over_retention
            )
        } else {
            "within".into()
        }
    )?;
    writeln!(
        o,
        "- New cases a month: {} per agent → {}; the import takes {:.2} months of it ({}).\n",
        cp.new_cases_per_agent_month,
        cp.monthly_limit,
        cp.months_of_allowance,
        if cp.monthly_exceeded {
            "**EXCEEDED**"
        } else {
            "within"
        }
    )?;

    // ---- settings and runs
    let s = &r.settings;
    writeln!(o, "## Settings and runs\n")?;
    writeln!(
        o,
        "Desk360 {} requests / {} s; Deskie {} plan, {} agents, {} units / {} s; concurrency {}; timezone {}; source id field {}.\n",
        s.source_rpm,
        s.source_window_secs,
        s.target_plan.as_str(),
        s.target_agents,
        s.target_rpm,
        s.target_window_secs,
        s.concurrency,
        s.timezone,
        s.source_id_field.as_deref().unwrap_or("(none)")
    )?;
    if !r.runs.is_empty() {
        writeln!(
            o,
            "| run | kind | started (UTC) | finished | outcome | took |\n|---:|---|---|---|---|---:|"
        )?;
        for run in &r.runs {
            writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                run.id,
                run.kind,
                run.started_at,
                run.finished_at.as_deref().unwrap_or("–"),
                run.outcome.as_deref().unwrap_or("running or killed"),
                run.elapsed_secs
                    .map(fmt_duration)
                    .unwrap_or_else(|| "–".into())
            )?;
        }
    }
    Ok(())
}
