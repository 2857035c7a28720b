//! Computes a [`Report`] from the store: one paged walk over the tickets not loaded yet through
//! the pure mapping, the loaded ones counted from their rows and the intent journal, plus the
//! store's counters, failures, request log and run history. No network. [`build`] calls one small
//! function per part of the report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use model::TicketKey;
use store::{RunKind, Side, Store, TicketState};

use super::*;
use crate::config::{Settings, SourceAuth};
use crate::mapping::{MapContext, Mapped, Warning, by_id, map_ticket};

/// Tickets read per store page.
const PAGE: u32 = 500;
/// Desk360 list page size.
const LIST_PAGE: u64 = 20;
/// Derived subjects shown as examples.
const SUBJECT_EXAMPLES: usize = 20;
/// Tickets named in a `retry-failed --ticket` command before batches are used instead.
const RETRY_TICKETS_MAX: usize = 25;

/// Accumulates the per-ticket walk.
#[derive(Default)]
struct Walk {
    details: u64,
    by_channel: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
    by_priority: BTreeMap<String, u64>,
    routing: Routing,
    unroutable: BTreeMap<(String, String), Vec<String>>,
    agents: BTreeMap<i64, u64>,
    types: BTreeMap<i64, u64>,
    reasons: BTreeMap<i64, u64>,
    status_codes: BTreeMap<i64, u64>,
    priority_codes: BTreeMap<i64, u64>,
    content: ContentWarnings,
    cases: u64,
    writes_total: u64,
    writes_done: u64,
    writes_remaining: u64,
    /// Final status updates by their payload, for the cases not loaded yet: the loader sends
    /// them as bulk updates of up to [`deskie::BULK_MAX`] cases with the same values.
    finals_remaining: BTreeMap<String, u64>,
}

impl Walk {
    /// Counts the bulk final updates of the cases not loaded yet into the writes, once every
    /// ticket was walked.
    fn add_final_updates(&mut self) {
        let remaining: u64 = self
            .finals_remaining
            .values()
            .map(|n| n.div_ceil(deskie::BULK_MAX as u64))
            .sum();
        self.writes_remaining += remaining;
        self.writes_total += remaining;
    }

    /// Counts loaded tickets sharing a channel, status and priority: their route is the
    /// channel's (a channel mapped to `skip` since counts as skipped, as a mapping would say).
    fn loaded_group(&mut self, g: &store::LoadedGroup, mapping: &crate::config::MappingSettings) {
        let n = g.tickets;
        self.details += n;
        let channel = g.channel.clone().unwrap_or_else(|| "(none)".to_string());
        *self.by_status.entry(status_name(g.status)).or_default() += n;
        *self
            .by_priority
            .entry(priority_name(g.priority))
            .or_default() += n;
        match mapping.route(g.channel.as_deref()) {
            crate::config::ChannelRoute::Skip => {
                *self
                    .routing
                    .skipped_by_channel
                    .entry(channel.clone())
                    .or_default() += n;
            }
            route => {
                self.cases += n;
                *self
                    .routing
                    .cases_by_route
                    .entry(route.label())
                    .or_default() += n;
            }
        }
        *self.by_channel.entry(channel).or_default() += n;
    }
}

/// Why `target.source_id_field` matters, shown first by the report and logged by every run
/// without it.
pub(crate) const SOURCE_ID_FIELD_NOTICE: &str = "target.source_id_field is not set: when Deskie's answer to a case create is lost, the case can then only be looked for among the most recently changed cases (by customer, subject and time), which can fail to prove anything on a busy account and leave that ticket failed for you to check. Create a text custom field for cases in Deskie and name it in target.source_id_field (e.g. \"cf_900\"): each case is then found again with one read, whatever Deskie's search does.";

/// Names of the reference data, for the mapping and for naming gaps.
struct Refs {
    /// Products known to the store (empty before the first listing).
    product_names: BTreeMap<i64, String>,
    type_titles: BTreeMap<i64, String>,
    reason_titles: BTreeMap<i64, String>,
    agent_names: BTreeMap<i64, String>,
}

impl Refs {
    async fn read(store: &Store) -> Result<Refs> {
        Ok(Refs {
            product_names: by_id(store.products().await?, |p| (p.id, p.name)),
            type_titles: by_id(store.types().await?, |t| (t.id, t.title)),
            reason_titles: by_id(store.reasons().await?, |r| (r.id, r.title)),
            agent_names: by_id(store.agents().await?, |a| (a.id, a.name)),
        })
    }
}

/// What the run history says: the latest runs, and the time the real runs took.
struct History {
    runs: Vec<RunView>,
    /// Whether a real run (`run`, `retry-failed`) ever started.
    any_real_run: bool,
    /// Wall-clock time of the real runs.
    real_elapsed: f64,
    /// Wall-clock time of every run but `verify` (Desk360 is read by dry runs too).
    all_elapsed: f64,
    now: jiff::Timestamp,
}

pub(super) async fn build(store: &Store, settings: &Settings) -> Result<Report> {
    let counts = store.counts().await?;
    let refs = Refs::read(store).await?;
    let mut walk = walk(store, settings, &refs).await?;
    let state = |s: TicketState| counts.tickets.get(&s).copied().unwrap_or(0);
    let scope = scope(settings, &refs, &counts);
    let counts_section = counts_section(&counts, &scope, &refs, &mut walk);
    let desk360 = desk360_cost(
        store,
        settings,
        &counts,
        &scope,
        refs.product_names.is_empty(),
    )
    .await?;
    let deskie = deskie_cost(store, settings, &walk, state(TicketState::Pending)).await?;
    let cost = cost(deskie, desk360);
    let history = history(store).await?;
    let remaining =
        state(TicketState::Pending) + state(TicketState::Extracted) + state(TicketState::Loading);
    let phase = if counts_section.tickets == 0 && !history.any_real_run {
        Phase::Empty
    } else if !history.any_real_run && state(TicketState::Loaded) == 0 {
        Phase::Planned
    } else if remaining == 0 && cost.desk360.listing_complete {
        Phase::Finished
    } else {
        Phase::InProgress
    };
    let progress = if matches!(phase, Phase::InProgress | Phase::Finished) {
        Some(progress(store, &counts, &cost, &history, remaining).await?)
    } else {
        None
    };
    let failures = failures(store).await?;
    let caps = caps(settings, cost.deskie.cases);
    let mapping_gaps = mapping_gaps(&walk, &refs, settings);
    let routing = routing(&mut walk);
    let attachments = super::attachments::section(store, settings).await?;
    let mut alerts = alerts(
        settings,
        &caps,
        &routing,
        &failures,
        &cost,
        progress.as_ref(),
    );
    alerts.extend(super::attachments::alerts(&attachments));
    let content = content(store, std::mem::take(&mut walk.content)).await?;
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        generated_at: history.now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        phase,
        alerts,
        settings: settings_view(settings),
        counts: counts_section,
        routing,
        mapping_gaps,
        content,
        attachments,
        cost,
        progress,
        failures,
        caps,
        runs: history.runs,
        long_run: if matches!(phase, Phase::InProgress | Phase::Finished) {
            Some(super::longrun::long_run(store, &counts).await?)
        } else {
            None
        },
        verification: super::longrun::verification(store).await?,
    })
}

/// Maps every ticket not loaded yet (their plan is what is left to send) page by page; counts
/// loaded ones from their rows and their writes from the journal, never mapping them again (a
/// loaded ticket has a case, so only its route and counters matter).
async fn walk(store: &Store, settings: &Settings, refs: &Refs) -> Result<Walk> {
    let cx = MapContext {
        mapping: &settings.mapping,
        timezone: &settings.source.timezone,
        source_id_field: settings.target.source_id_field.as_deref(),
        type_titles: &refs.type_titles,
        reason_titles: &refs.reason_titles,
        attachments: settings.attachments.mode,
        inline: settings.attachments.inline,
        source_base: &settings.source.base_url,
    };
    let mut walk = Walk::default();
    let mut after: Option<TicketKey> = None;
    loop {
        let page = store.unloaded_tickets_page(after, PAGE).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.key);
        for ticket in &page {
            walk.ticket(ticket, &cx);
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    for group in store.loaded_ticket_groups().await? {
        walk.loaded_group(&group, &settings.mapping);
    }
    let done = store.loaded_writes(deskie::BULK_MAX as u64).await?;
    walk.writes_done += done.total();
    walk.writes_total += done.total();
    walk.add_final_updates();
    Ok(walk)
}

/// Products in scope: the configured list, else every product known, plus any with tickets.
fn scope(settings: &Settings, refs: &Refs, counts: &store::Counts) -> BTreeSet<i64> {
    let mut scope: BTreeSet<i64> = if settings.source.products.is_empty() {
        refs.product_names.keys().copied().collect()
    } else {
        settings.source.products.iter().copied().collect()
    };
    scope.extend(counts.products.iter().map(|p| p.product_id));
    scope
}

/// Tickets listed for one product, any state.
fn tickets_of(counts: &store::Counts, id: i64) -> u64 {
    counts
        .products
        .iter()
        .find(|p| p.product_id == id)
        .map(|p| p.tickets.values().sum())
        .unwrap_or(0)
}

/// The store's totals, per product in scope, and the walk's per-ticket breakdowns.
fn counts_section(
    counts: &store::Counts,
    scope: &BTreeSet<i64>,
    refs: &Refs,
    walk: &mut Walk,
) -> CountsSection {
    let state = |s: TicketState| counts.tickets.get(&s).copied().unwrap_or(0);
    let by_product = scope
        .iter()
        .map(|&id| {
            let p = counts.products.iter().find(|p| p.product_id == id);
            ProductLine {
                product_id: id,
                name: refs.product_names.get(&id).cloned(),
                tickets: tickets_of(counts, id),
                messages: p.map_or(0, |p| p.messages),
                notes: p.map_or(0, |p| p.notes),
                attachments: p.map_or(0, |p| p.attachments),
                attachment_bytes: p.map_or(0, |p| p.attachment_bytes),
            }
        })
        .collect();
    CountsSection {
        products: scope.len() as u64,
        tickets: counts.tickets.values().sum(),
        tickets_by_state: TicketState::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), state(*s)))
            .collect(),
        details_stored: walk.details,
        messages: counts.messages,
        notes: counts.notes,
        attachments: counts.attachments,
        attachment_bytes: counts.attachment_bytes,
        by_product,
        by_channel: std::mem::take(&mut walk.by_channel),
        by_status: std::mem::take(&mut walk.by_status),
        by_priority: std::mem::take(&mut walk.by_priority),
    }
}

/// Desk360 requests of the whole plan and of what is left, at the configured limit.
async fn desk360_cost(
    store: &Store,
    settings: &Settings,
    counts: &store::Counts,
    scope: &BTreeSet<i64>,
    no_products_yet: bool,
) -> Result<Desk360Cost> {
    let mut listing_complete = true;
    let mut unfinished_products = 0u64;
    let mut list_pages = 0u64;
    for &id in scope {
        list_pages += tickets_of(counts, id).div_ceil(LIST_PAGE).max(1);
        let complete = store.list_cursor(id).await?.is_some_and(|c| c.complete);
        if !complete {
            listing_complete = false;
            unfinished_products += 1;
        }
    }
    let tickets_total: u64 = counts.tickets.values().sum();
    let pending = counts
        .tickets
        .get(&TicketState::Pending)
        .copied()
        .unwrap_or(0);
    let reference_calls = 4 + u64::from(matches!(settings.source.auth, SourceAuth::Login { .. }));
    let total = list_pages + tickets_total + reference_calls;
    let remaining =
        pending + unfinished_products + if no_products_yet { reference_calls } else { 0 };
    let window = settings.source.window.as_secs_f64();
    let rpm = settings.source.rpm.max(1);
    let secs = |n: u64| n as f64 / f64::from(rpm) * window;
    Ok(Desk360Cost {
        products: scope.len() as u64,
        list_pages,
        details: tickets_total,
        reference_calls,
        requests_total: total,
        requests_remaining: remaining,
        listing_complete,
        requests_per_window: rpm,
        window_secs: window,
        requests_per_minute: f64::from(rpm) * 60.0 / window.max(f64::EPSILON),
        estimated_total_secs: secs(total),
        estimated_remaining_secs: secs(remaining),
    })
}

/// Deskie writes done and left (unextracted tickets estimated like the average stored one).
async fn deskie_cost(
    store: &Store,
    settings: &Settings,
    walk: &Walk,
    pending: u64,
) -> Result<DeskieCost> {
    let avg_writes = if walk.cases > 0 {
        walk.writes_total as f64 / walk.cases as f64
    } else {
        0.0
    };
    let routed_share = if walk.details > 0 {
        walk.cases as f64 / walk.details as f64
    } else {
        1.0
    };
    let est_cases = (pending as f64 * routed_share).round() as u64;
    let est_writes = (est_cases as f64 * avg_writes).round() as u64;
    let open_intents = store.open_intent_count().await?;
    let reads_planned = 1 + open_intents;
    let window = settings.target.window.as_secs_f64();
    let rpm = settings.target.rpm.max(1);
    let secs = |n: u64| n as f64 / f64::from(rpm) * window;
    let units_total = (walk.writes_total + est_writes) * 2 + 1;
    // Nothing left to write: no run is needed, so not even its credential check.
    let writes_left = walk.writes_remaining + est_writes;
    let units_remaining = if writes_left == 0 && open_intents == 0 {
        0
    } else {
        writes_left * 2 + reads_planned
    };
    Ok(DeskieCost {
        cases: walk.cases + est_cases,
        writes_total: walk.writes_total + est_writes,
        writes_done: walk.writes_done,
        writes_remaining: walk.writes_remaining,
        writes_estimated_unextracted: est_writes,
        reads_planned,
        units_total,
        units_remaining,
        units_per_window: rpm,
        window_secs: window,
        units_per_minute: f64::from(rpm) * 60.0 / window.max(f64::EPSILON),
        estimated_total_secs: secs(units_total),
        estimated_remaining_secs: secs(units_remaining),
    })
}

/// Both sides together: extraction and loading overlap, so the larger side sets the pace.
fn cost(deskie: DeskieCost, desk360: Desk360Cost) -> Cost {
    let pick = |d: f64, k: f64| {
        if k >= d {
            ("deskie".to_string(), k)
        } else {
            ("desk360".to_string(), d)
        }
    };
    let (bottleneck_total, estimated_total_secs) =
        pick(desk360.estimated_total_secs, deskie.estimated_total_secs);
    let (bottleneck_remaining, estimated_remaining_secs) = pick(
        desk360.estimated_remaining_secs,
        deskie.estimated_remaining_secs,
    );
    Cost {
        deskie,
        desk360,
        bottleneck_total,
        estimated_total_secs,
        bottleneck_remaining,
        estimated_remaining_secs,
    }
}

/// The latest runs and the time real runs took.
async fn history(store: &Store) -> Result<History> {
    let now = jiff::Timestamp::now();
    let records = store.last_runs(1_000).await?;
    let parse = store::stamp_time;
    let elapsed_of = |r: &store::RunRecord, newest: bool| -> Option<f64> {
        let start = parse(&r.started_at)?;
        let end = match &r.finished_at {
            Some(f) => parse(f)?,
            // Still running (or killed): only the newest run counts up to now.
            None if newest => now,
            None => return None,
        };
        Some(end.duration_since(start).as_secs_f64().max(0.0))
    };
    let real = |r: &store::RunRecord| matches!(r.kind, RunKind::Run | RunKind::RetryFailed);
    let runs = records
        .iter()
        .take(20)
        .map(|r| RunView {
            id: r.id.0,
            kind: r.kind.as_str().to_string(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            outcome: r.outcome.map(|o| o.as_str().to_owned()),
            elapsed_secs: r.finished_at.as_ref().and_then(|_| elapsed_of(r, false)),
        })
        .collect();
    let elapsed = |keep: &dyn Fn(&store::RunRecord) -> bool| -> f64 {
        records
            .iter()
            .enumerate()
            .filter(|(_, r)| keep(r))
            .filter_map(|(i, r)| elapsed_of(r, i == 0))
            .sum()
    };
    Ok(History {
        runs,
        any_real_run: records.iter().any(real),
        real_elapsed: elapsed(&real),
        all_elapsed: elapsed(&|r: &store::RunRecord| r.kind != RunKind::Verify),
        now,
    })
}

/// Done / failed / left of a started migration, with each side's observed rate.
async fn progress(
    store: &Store,
    counts: &store::Counts,
    cost: &Cost,
    history: &History,
    remaining: u64,
) -> Result<ProgressSection> {
    let state = |s: TicketState| counts.tickets.get(&s).copied().unwrap_or(0);
    let deskie = rate_view(
        store.request_stats(Side::Deskie).await?,
        cost.deskie.units_per_minute,
        history.real_elapsed,
    );
    let desk360 = rate_view(
        store.request_stats(Side::Desk360).await?,
        cost.desk360.requests_per_minute,
        history.all_elapsed,
    );
    let eta_observed_secs = deskie
        .avg_units_per_minute
        .filter(|r| *r > 0.0)
        .map(|r| cost.deskie.units_remaining as f64 / r * 60.0);
    Ok(ProgressSection {
        done: state(TicketState::Loaded),
        failed: state(TicketState::Failed),
        skipped: state(TicketState::Skipped),
        remaining,
        elapsed_secs: history.real_elapsed,
        eta_secs: cost.estimated_remaining_secs,
        eta_observed_secs,
        deskie,
        desk360,
    })
}

/// The plan's caps against the cases this migration creates.
fn caps(settings: &Settings, cases: u64) -> Caps {
    let plan = settings.target.plan;
    let agents = settings.target.agents.max(1);
    let retention_limit = u64::from(agents) * plan.cases_per_agent();
    let monthly_limit = u64::from(agents) * plan.new_cases_per_agent_month();
    Caps {
        plan,
        agents,
        cases,
        cases_per_agent: plan.cases_per_agent(),
        retention_limit,
        retention_exceeded: cases > retention_limit,
        cases_over_retention: cases.saturating_sub(retention_limit),
        new_cases_per_agent_month: plan.new_cases_per_agent_month(),
        monthly_limit,
        months_of_allowance: cases as f64 / monthly_limit.max(1) as f64,
        monthly_exceeded: cases > monthly_limit,
    }
}

/// Unmapped ids by kind, most used first, with what the default does.
fn mapping_gaps(walk: &Walk, refs: &Refs, settings: &Settings) -> MappingGaps {
    let gap = |m: &BTreeMap<i64, u64>, names: &BTreeMap<i64, String>| -> Vec<Gap> {
        let mut v: Vec<Gap> = m
            .iter()
            .map(|(id, n)| Gap {
                id: *id,
                name: names.get(id).cloned(),
                tickets: *n,
            })
            .collect();
        v.sort_by(|a, b| b.tickets.cmp(&a.tickets).then(a.id.cmp(&b.id)));
        v
    };
    let none = BTreeMap::new();
    MappingGaps {
        agents: gap(&walk.agents, &refs.agent_names),
        types: gap(&walk.types, &refs.type_titles),
        reasons: gap(&walk.reasons, &refs.reason_titles),
        status_codes: gap(&walk.status_codes, &none),
        priority_codes: gap(&walk.priority_codes, &none),
        defaults: GapDefaults {
            agents: format!(
                "messages, notes and assignments of unmapped agents go to Deskie staff {} (mapping.default_staff_id); add them to [mapping.agents] to keep authorship",
                settings.mapping.default_staff_id
            ),
            types: "the type is dropped; map it in [mapping.types] (label) or set mapping.type_field"
                .into(),
            reasons:
                "the reason is dropped; map it in [mapping.reasons] (label) or set mapping.reason_field"
                    .into(),
            codes: "the field is not sent and Deskie's default applies (status open, priority normal); add the code to [mapping.status] / [mapping.priority]".into(),
        },
    }
}

/// The walk's routing with the unroutable tickets grouped by route and reason, biggest first.
fn routing(walk: &mut Walk) -> Routing {
    let mut routing = std::mem::take(&mut walk.routing);
    routing.unroutable = std::mem::take(&mut walk.unroutable)
        .into_iter()
        .map(|((route, reason), tickets)| UnroutableGroup {
            route,
            reason,
            count: tickets.len() as u64,
            tickets,
        })
        .collect();
    routing
        .unroutable
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
    routing.skipped_total = routing.skipped_by_channel.values().sum();
    routing
}

/// The walk's content warnings plus what Desk360 sent that was carried over in a safer form.
async fn content(store: &Store, mut content: ContentWarnings) -> Result<ContentWarnings> {
    for (key, lines) in store.source_warnings().await? {
        for line in lines {
            content.source_warnings_total += 1;
            if content.source_warnings.len() < LIST_CAP {
                content.source_warnings.push(format!("{key}: {line}"));
            }
        }
    }
    Ok(content)
}

/// The settings the plan was computed with (no secrets).
fn settings_view(settings: &Settings) -> SettingsView {
    SettingsView {
        source_rpm: settings.source.rpm,
        source_window_secs: settings.source.window.as_secs_f64(),
        target_plan: settings.target.plan,
        target_agents: settings.target.agents,
        target_rpm: settings.target.rpm,
        target_window_secs: settings.target.window.as_secs_f64(),
        concurrency: settings.run.concurrency,
        timezone: settings.source.timezone_name.clone(),
        source_id_field: settings.target.source_id_field.clone(),
    }
}

/// Loud cap warnings first, then notices.
fn alerts(
    settings: &Settings,
    caps: &Caps,
    routing: &Routing,
    failures: &Failures,
    cost: &Cost,
    progress: Option<&ProgressSection>,
) -> Vec<Alert> {
    let mut alerts = cap_alerts(caps);
    let mut notice = |code: &str, message: String| {
        alerts.push(Alert {
            level: Level::Notice,
            code: code.into(),
            message,
        })
    };
    if settings.target.source_id_field.is_none() {
        notice("no_source_id_field", SOURCE_ID_FIELD_NOTICE.into());
    }
    if routing.unroutable_total > 0 {
        notice(
            "unroutable_tickets",
            format!(
                "{} tickets cannot be migrated through their channel (see Routing for the reason and the fix)",
                routing.unroutable_total
            ),
        );
    }
    if failures.tickets > 0 {
        notice(
            "failed_tickets",
            format!(
                "{} tickets failed in {} causes (see Failures for the API's messages and the retry commands)",
                failures.tickets,
                failures.groups.len()
            ),
        );
    }
    if !cost.desk360.listing_complete && cost.desk360.details > 0 {
        notice(
            "listing_incomplete",
            "not every product's ticket list has been read yet: totals grow as the listing goes on"
                .into(),
        );
    }
    if let Some(p) = progress
        && p.deskie.throttled > 0
    {
        notice(
            "deskie_throttled",
            format!(
                "Deskie answered 429 {} time(s); the run paused and went on. Many of them mean the account's budget is shared with other users or target.rpm is above the plan's limit",
                p.deskie.throttled
            ),
        );
    }
    alerts
}

/// The two cap warnings: data would be lost or the account blocked.
fn cap_alerts(caps: &Caps) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let plan = caps.plan;
    if caps.retention_exceeded {
        alerts.push(Alert {
            level: Level::Warning,
            code: "case_retention_cap".into(),
            message: format!(
                "this migration creates {} cases but the Deskie {} plan keeps at most {} per agent × {} agents = {}; Deskie deletes the oldest cases above that, so about {} migrated cases would be lost. Add agents or upgrade the plan before running, or migrate fewer products.",
                caps.cases,
                plan.as_str(),
                caps.cases_per_agent,
                caps.agents,
                caps.retention_limit,
                caps.cases_over_retention
            ),
        });
    }
    if caps.monthly_exceeded {
        alerts.push(Alert {
            level: Level::Warning,
            code: "monthly_new_case_limit".into(),
            message: format!(
                "this migration creates {} cases but the Deskie {} plan allows {} new cases per agent per month × {} agents = {} a month; the import alone takes {:.1} months of that allowance. Ask Deskie to lift the limit for the import, or add agents / upgrade the plan, before running.",
                caps.cases,
                plan.as_str(),
                caps.new_cases_per_agent_month,
                caps.agents,
                caps.monthly_limit,
                caps.months_of_allowance
            ),
        });
    }
    alerts
}

impl Walk {
    /// Maps one ticket not loaded yet and counts what its plan sends and warns about.
    fn ticket(&mut self, ticket: &model::Ticket, cx: &MapContext<'_>) {
        self.details += 1;
        let key = ticket.key.to_string();
        *self
            .by_channel
            .entry(
                ticket
                    .channel
                    .clone()
                    .unwrap_or_else(|| "(none)".to_string()),
            )
            .or_default() += 1;
        *self
            .by_status
            .entry(status_name(ticket.status))
            .or_default() += 1;
        *self
            .by_priority
            .entry(priority_name(ticket.priority))
            .or_default() += 1;

        let (mapped, warnings) = map_ticket(ticket, cx);
        match mapped {
            Mapped::Case(plan) => {
                self.cases += 1;
                *self
                    .routing
                    .cases_by_route
                    .entry(plan.route.label())
                    .or_default() += 1;
                // The create and every message (follow-up notes carrying files included), the
                // inline-image edits (`inline = "rehost"`); the final update is counted per bulk
                // request.
                let w = 1 + plan.steps.len() as u64 + plan.rehost.len() as u64;
                self.writes_total += w;
                self.writes_remaining += w;
                if let Some(update) = &plan.final_update {
                    let group = serde_json::to_string(update).unwrap_or_default();
                    *self.finals_remaining.entry(group).or_default() += 1;
                }
            }
            Mapped::Skipped { channel } => {
                *self.routing.skipped_by_channel.entry(channel).or_default() += 1;
            }
            Mapped::Unroutable { route, reason } => {
                self.routing.unroutable_total += 1;
                self.unroutable
                    .entry((route.label(), reason))
                    .or_default()
                    .push(key.clone());
            }
        }

        self.warnings(&key, warnings);
    }

    /// Counts a mapped ticket's warnings: each gap once per ticket, lossy content by item.
    fn warnings(&mut self, key: &str, warnings: Vec<Warning>) {
        // Count each gap once per ticket.
        let mut seen: Vec<(u8, i64)> = Vec::new();
        let c = &mut self.content;
        for w in warnings {
            let tag = match &w {
                Warning::UnmappedAgent { agent_id } => Some((0, *agent_id)),
                Warning::UnmappedType { type_id } => Some((1, *type_id)),
                Warning::UnmappedReason { reason_id } => Some((2, *reason_id)),
                Warning::UnmappedCode { field, code } => {
                    Some((if *field == "status" { 3 } else { 4 }, *code))
                }
                _ => None,
            };
            if let Some(t) = tag {
                if seen.contains(&t) {
                    continue;
                }
                seen.push(t);
                let map = match t.0 {
                    0 => &mut self.agents,
                    1 => &mut self.types,
                    2 => &mut self.reasons,
                    3 => &mut self.status_codes,
                    _ => &mut self.priority_codes,
                };
                *map.entry(t.1).or_default() += 1;
                continue;
            }
            match w {
                Warning::DerivedSubject { subject } => {
                    c.derived_subjects += 1;
                    if c.derived_subject_examples.len() < SUBJECT_EXAMPLES {
                        c.derived_subject_examples.push(DerivedSubject {
                            ticket: key.to_string(),
                            subject,
                        });
                    }
                }
                Warning::EmptyMessage { message_id } => {
                    c.empty_messages_total += 1;
                    if c.empty_messages.len() < LIST_CAP {
                        c.empty_messages.push(EmptyMessage {
                            ticket: key.to_string(),
                            message_id,
                        });
                    }
                }
                Warning::AttachmentTooLarge {
                    message_id,
                    name,
                    size,
                    url,
                } => {
                    c.oversize_attachments_total += 1;
                    c.oversize_attachment_bytes += size;
                    if c.oversize_attachments.len() < LIST_CAP {
                        c.oversize_attachments.push(OversizeAttachment {
                            ticket: key.to_string(),
                            message_id,
                            name,
                            size,
                            url,
                        });
                    }
                }
                _ => {}
            }
        }
    }
}

fn status_name(code: Option<i64>) -> String {
    match code {
        None => "(none)".into(),
        Some(0) => "open".into(),
        Some(1) => "resolved".into(),
        Some(2) => "waiting".into(),
        Some(c) => format!("code {c}"),
    }
}

fn priority_name(code: Option<i64>) -> String {
    match code {
        None => "(none)".into(),
        Some(0) => "low".into(),
        Some(1) => "medium".into(),
        Some(2) => "high".into(),
        Some(3) => "urgent".into(),
        Some(c) => format!("code {c}"),
    }
}

fn rate_view(stats: Vec<store::RequestStat>, limit_per_minute: f64, elapsed: f64) -> RateView {
    let requests = stats.iter().map(|s| s.requests).sum();
    let units: u64 = stats.iter().map(|s| s.units).sum();
    let avg = (elapsed >= 1.0 && units > 0).then(|| units as f64 / elapsed * 60.0);
    RateView {
        requests,
        units,
        throttled: stats.iter().map(|s| s.throttled).sum(),
        transient: stats.iter().map(|s| s.transient).sum(),
        limit_per_minute,
        avg_units_per_minute: avg,
        peak_units_per_minute: stats.iter().map(|s| s.units).max().unwrap_or(0),
        utilisation: avg
            .filter(|_| limit_per_minute > 0.0)
            .map(|a| a / limit_per_minute),
        series: stats
            .iter()
            .map(|s| RatePoint {
                minute_epoch: s.minute_epoch,
                requests: s.requests,
                units: s.units,
                throttled: s.throttled,
            })
            .collect(),
    }
}

/// The message with digit runs replaced by `#` and cut, so the same error on different tickets
/// groups together.
pub(super) fn pattern(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(200));
    let mut in_digits = false;
    for ch in message.chars().take(200) {
        if ch.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(ch);
        }
    }
    out
}

/// What failed tickets are grouped by: stage, step kind, code, class, masked message.
type GroupKey = (String, String, Option<String>, String, String);

async fn failures(store: &Store) -> Result<Failures> {
    let mut groups: HashMap<GroupKey, FailureGroup> = HashMap::new();
    let mut failed = 0u64;
    // Streamed: the groups keep each ticket's key, not its message and request.
    store
        .visit_failed_tickets(|f| {
            failed += 1;
            add_to_group(&mut groups, &f);
        })
        .await?;
    let mut groups: Vec<FailureGroup> = groups.into_values().collect();
    for g in &mut groups {
        g.batches.sort_unstable();
        g.retry_command = retry_command(g);
    }
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.stage.cmp(&b.stage))
            .then_with(|| a.step.cmp(&b.step))
            .then_with(|| a.pattern.cmp(&b.pattern))
    });
    let pages = store
        .page_failures()
        .await?
        .into_iter()
        .map(|f| PageFailure {
            product_id: f.product_id,
            page: f.page,
            code: f.record.code,
            message: f.record.message,
            attempts: f.attempts,
            last_seen: f.last_seen,
        })
        .collect();
    Ok(Failures {
        tickets: failed,
        groups,
        pages,
    })
}

/// Adds one failed ticket to the group of its cause (stage, step, code, class and the message
/// with its numbers masked).
fn add_to_group(groups: &mut HashMap<GroupKey, FailureGroup>, f: &store::FailedTicket) {
    let (stage, step, code, class, message) = match &f.failure {
        Some(x) => (
            x.record.stage.as_str().to_string(),
            x.record.step.kind(),
            x.record.code.clone(),
            x.record.class.as_str().to_string(),
            x.record.message.clone(),
        ),
        None => (
            "unknown".into(),
            "unknown".into(),
            None,
            "permanent".into(),
            "marked failed without a recorded failure (older version)".into(),
        ),
    };
    let pat = pattern(&message);
    let g = groups
        .entry((
            stage.clone(),
            step.clone(),
            code.clone(),
            class.clone(),
            pat.clone(),
        ))
        .or_insert_with(|| FailureGroup {
            stage,
            step,
            code,
            class,
            message,
            pattern: pat,
            count: 0,
            tickets: Vec::new(),
            batches: Vec::new(),
            retry_command: String::new(),
        });
    g.count += 1;
    g.tickets.push(f.key.to_string());
    if !g.batches.contains(&f.batch_id.0) {
        g.batches.push(f.batch_id.0);
    }
}

fn retry_command(g: &FailureGroup) -> String {
    let mut cmd = String::from("deskie-import retry-failed");
    if g.tickets.len() <= RETRY_TICKETS_MAX {
        for t in &g.tickets {
            cmd.push_str(" --ticket ");
            cmd.push_str(t);
        }
    } else {
        // Batches re-queue every failed ticket of the batch, which is a superset: still nothing
        // that succeeded is written again.
        for b in &g.batches {
            cmd.push_str(&format!(" --batch {b}"));
        }
    }
    if g.stage == "extract" {
        cmd.push_str(" && deskie-import run");
    }
    if g.step == "map" {
        cmd = format!("fix [mapping.channels] in the config, then: {cmd}");
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_group_messages_differing_in_numbers() {
        assert_eq!(
            pattern("case 123 has no field cf_900"),
            pattern("case 77 has no field cf_900")
        );
        assert_eq!(pattern("abc 12 x3"), "abc # x#");
    }

    fn step_kind(step: &str) -> String {
        store::FailureStep::from(step).kind()
    }

    #[test]
    fn steps_group_by_kind() {
        assert_eq!(step_kind("message:42"), "message");
        assert_eq!(step_kind("create"), "create");
    }
}
