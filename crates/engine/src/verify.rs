//! `verify`: reads Deskie back and compares it with the store, so a team can prove before
//! switching over that nothing is missing, duplicated or out of order — at a cost that fits the
//! Deskie budget of a 2-million-ticket account.
//!
//! # How it spends its reads
//! 1. **Case level, a fraction of a read per case** — exists, not duplicated, not in the trash,
//!    status, priority. Deskie's plain case list is read page by page (`GET cases.json?limit=100
//!    &page=N`): page 001 ("Get a list of cases") documents pages of at most 100, the default
//!    order `updated_at_desc` and at most page 500, so one walk shows up to 50 000 cases at
//!    1 read per 100 cases. No filter is sent: the walk's meaning does not depend on how the
//!    account reads `custom_fields[…]` search or the `from_time`/`to_time` format (both ambiguous,
//!    see the sandbox's `SearchReading` / `TimeFilterReading`); the source key is compared here,
//!    exactly, from each listed case's `custom_fields`. Every stored case the walk did not show
//!    is then read by its id (`GET cases/{id}.json`, 1 read): the cases beyond the 50 000 the
//!    list can reach (an account above that degrades towards one read per case for the rest,
//!    oldest changes first), and any case that moved to page 1 while the walk went on (a case
//!    updated during the walk is skipped by the default order, never misreported). A 404 there
//!    is a missing case.
//!    Duplicates: a listed case carrying a stored ticket's source key that is not the case the
//!    store maps it to (holds under every search reading: no search is used); without
//!    `target.source_id_field`, a listed case with the same user, subject and creation time as a
//!    stored case that the store does not know (what a repeated create produces). A duplicate
//!    among cases the walk could not show (beyond 50 000, or moved during the walk) is not seen.
//! 2. **Message level, on a scope** — every case by default (the original contract), or
//!    `--sample N` cases drawn reproducibly from `--seed`, or the cases of `--product P` /
//!    updated since `--since DATE` (source time): the case's message list (`GET
//!    cases/{id}/messages.json`, pages of 100, one read for most cases) against the expected
//!    messages from the same pure mapping the loader used: missing, duplicated, out of order,
//!    unexpected.
//!
//! [`plan`] states the cost before anything is sent. Every page, case read and checked ticket is
//! recorded in the store as it completes (`verify_*` tables), so a killed `verify` started again
//! with the same scope resumes where it stopped; the findings go into the report.

use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::Arc;

use deskie::{CasePriority, CaseStatus, DeskieClient, DeskieError, MessageInfo};
use model::TicketKey;
use serde::Serialize;
use store::{LoadState, SeenCase, SeenVia, Store, TicketState, VerifyFinding};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clients::build_deskie;
use crate::error::{EngineError, Result};
use crate::mapping::{CasePlan, MapContext, Mapped, by_id, map_ticket, normalize_body};
use crate::open::Engine;

/// Cases a case-list page holds at most (page 001: "the maximum value of the limit parameter
/// is 100").
pub const LIST_PAGE: u64 = 100;
/// Last page the case list serves (page 001: "The maximum value of the page parameter is 500").
pub const LIST_MAX_PAGES: u64 = 500;
/// Messages a message-list page holds at most.
const MESSAGE_PAGE: u32 = 100;
/// Tickets read from the store per query while streaming.
const STORE_PAGE: u32 = 2_000;
/// Findings kept in a [`VerifyReport`] (the store keeps all of them).
const REPORT_FINDINGS: u32 = 1_000;

/// What to verify at message level. The default (no field set) checks every case's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Check the messages of this many cases, drawn reproducibly from `seed`.
    pub sample: Option<usize>,
    /// Seed of the sample draw: the same seed and store give the same cases.
    pub seed: u64,
    /// Only the cases of this Desk360 product.
    pub product: Option<i64>,
    /// Only tickets whose source `updated_at` is on or after this date (source time zone).
    pub since: Option<jiff::civil::Date>,
}

/// Reads a `--since` date (`YYYY-MM-DD`), with an error that shows the expected form.
pub fn parse_since(text: &str) -> std::result::Result<jiff::civil::Date, String> {
    text.trim()
        .parse::<jiff::civil::Date>()
        .map_err(|e| format!("`{text}` is not a date like 2024-01-31 ({e})"))
}

impl VerifyOptions {
    /// The canonical text of the scope: a verification with the same text resumes.
    pub fn scope_text(&self) -> String {
        format!(
            "sample={};seed={};product={};since={}",
            self.sample.map_or("all".to_string(), |n| n.to_string()),
            self.seed,
            self.product.map_or("all".to_string(), |p| p.to_string()),
            self.since.map_or("all".to_string(), |d| d.to_string())
        )
    }
}

/// The cost of a verification, stated before it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct VerifyPlan {
    /// Cases the store created in Deskie.
    pub cases: u64,
    /// Case-list pages to read: ⌈cases / 100⌉, at most 500 (more when the account holds cases
    /// this migration did not create).
    pub list_pages: u64,
    /// Cases read one by one: those beyond the 50 000 the list can show (plus, at run time, any
    /// case that moved during the walk).
    pub case_reads: u64,
    /// Cases whose messages are checked.
    pub message_cases: u64,
    /// Message-list pages to read (one per 100 messages of each case in scope).
    pub message_reads: u64,
    /// Sum of the three.
    pub total_reads: u64,
    /// `(list_pages + case_reads) / cases`: what the case-level checks cost per case.
    pub case_level_reads_per_case: f64,
    /// Minutes at the Deskie limit (reads cost 1 unit), when the limit is known.
    pub minutes_at_limit: f64,
}

impl VerifyPlan {
    /// The sentence the CLI prints before starting.
    pub fn to_text(&self) -> String {
        format!(
            "verify will read Deskie about {} times (≈ {:.1} min at the limit): case level — {} case-list page(s) of 100 + {} case(s) read one by one for {} cases ({:.3} reads a case); message level — {} message page(s) for {} case(s)",
            self.total_reads,
            self.minutes_at_limit,
            self.list_pages,
            self.case_reads,
            self.cases,
            self.case_level_reads_per_case,
            self.message_reads,
            self.message_cases
        )
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// The verification's id in the store.
    pub verify_id: i64,
    /// Whether every step completed (`false`: cancelled; the same command resumes).
    pub complete: bool,
    /// The cost stated before it started.
    pub plan: VerifyPlan,
    /// Cases checked at case level.
    pub cases_checked: u64,
    /// Cases whose messages were checked.
    pub checked: u64,
    /// Deskie reads spent (all attempts of this verification, including before a resume).
    pub reads: u64,
    /// Case-list pages read.
    pub list_reads: u64,
    /// Cases read one by one.
    pub case_reads: u64,
    /// Message-list pages read.
    pub message_reads: u64,
    /// Cases missing in Deskie (deleted permanently) or in its trash / spam.
    pub missing_cases: u64,
    /// Source messages with no copy in their case.
    pub missing: u64,
    /// Extra cases for one ticket, and source messages present more than once.
    pub duplicated: u64,
    /// Cases whose replies are not in source order.
    pub out_of_order: u64,
    /// Cases whose final status or priority differs from the source.
    pub mismatched: u64,
    /// Messages in a case that no source message explains (e.g. written in Deskie since).
    pub unexpected: u64,
    /// Findings by kind (see [`store::VerifyFinding::kind`]).
    pub by_kind: BTreeMap<String, u64>,
    /// One line per problem (the first 1 000), naming the ticket and the case.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is missing, duplicated, out of order or mismatched.
    pub fn ok(&self) -> bool {
        self.missing_cases == 0
            && self.missing == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.mismatched == 0
    }

    /// A short human summary.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "verify: {} cases checked ({} with their messages) with {} reads ({} list pages, {} case reads, {} message pages): {} missing cases, {} missing messages, {} duplicated, {} out of order, {} status/priority mismatches, {} unexpected messages{}\n",
            self.cases_checked,
            self.checked,
            self.reads,
            self.list_reads,
            self.case_reads,
            self.message_reads,
            self.missing_cases,
            self.missing,
            self.duplicated,
            self.out_of_order,
            self.mismatched,
            self.unexpected,
            if self.complete {
                ""
            } else {
                " (interrupted: run the same command to continue)"
            }
        );
        for p in self.problems.iter().take(200) {
            out.push_str("  ");
            out.push_str(p);
            out.push('\n');
        }
        if self.problems.len() > 200 {
            out.push_str(&format!("  … and {} more\n", self.problems.len() - 200));
        }
        out
    }
}

/// Reads every migrated case back from Deskie and compares it with the store: the case-level
/// walk plus every case's messages (the original contract of `verify`).
pub async fn verify(engine: &Engine) -> Result<VerifyReport> {
    run(engine, &VerifyOptions::default()).await
}

/// A ticket chosen for message-level checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Chosen {
    draw: u64,
    key: TicketKey,
    messages: u64,
}

/// splitmix64: a fixed, platform-independent mix, so a seed draws the same sample everywhere.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The draw of a ticket under a seed: the sample is the `n` smallest draws, which does not depend
/// on the order tickets are read in, and mostly keeps its cases when the store grows.
fn draw(seed: u64, key: TicketKey) -> u64 {
    mix(mix(seed ^ mix(key.product_id as u64)) ^ key.ticket_id as u64)
}

/// The tickets in the message-level scope, in key order, streamed from the store (memory: the
/// sample, or the scope's keys when no sample is asked).
async fn choose(store: &Store, options: &VerifyOptions) -> Result<Vec<Chosen>> {
    let since = options
        .since
        // The store writes Desk360's naive times as civil ISO datetimes (`YYYY-MM-DDTHH:MM:SS`).
        .map(|d| d.to_datetime(jiff::civil::Time::midnight()).to_string());
    let mut heap: BinaryHeap<Chosen> = BinaryHeap::new();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let rows = store
            .verify_scope_rows(options.product, since.as_deref(), after, STORE_PAGE)
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.key);
        for r in &rows {
            let c = Chosen {
                draw: draw(options.seed, r.key),
                key: r.key,
                messages: r.messages,
            };
            match options.sample {
                Some(n) => {
                    heap.push(c);
                    if heap.len() > n {
                        heap.pop();
                    }
                }
                None => all.push(c),
            }
        }
        if rows.len() < STORE_PAGE as usize {
            break;
        }
    }
    if options.sample.is_some() {
        all = heap.into_vec();
    }
    all.sort_by_key(|c| c.key);
    Ok(all)
}

/// Pages of a message list for `messages` stored replies and notes (the first message is one).
fn message_pages(messages: u64) -> u64 {
    messages.max(1).div_ceil(u64::from(MESSAGE_PAGE))
}

/// The cost of verifying with `options`, from the store alone (no request).
pub async fn plan(engine: &Engine, options: &VerifyOptions) -> Result<VerifyPlan> {
    let chosen = choose(engine.store(), options).await?;
    let cases = engine.store().stored_case_count().await?;
    Ok(plan_of(cases, &chosen, per_minute(engine)))
}

/// Deskie read units a minute at the configured limit.
fn per_minute(engine: &Engine) -> f64 {
    let t = &engine.settings().target;
    f64::from(t.rpm) * 60.0 / t.window.as_secs_f64().max(0.001)
}

fn plan_of(cases: u64, chosen: &[Chosen], per_minute: f64) -> VerifyPlan {
    let list_pages = cases.div_ceil(LIST_PAGE).clamp(1, LIST_MAX_PAGES);
    let case_reads = cases.saturating_sub(LIST_PAGE * LIST_MAX_PAGES);
    let message_reads: u64 = chosen.iter().map(|c| message_pages(c.messages)).sum();
    let total_reads = list_pages + case_reads + message_reads;
    VerifyPlan {
        cases,
        list_pages,
        case_reads,
        message_cases: chosen.len() as u64,
        message_reads,
        total_reads,
        case_level_reads_per_case: if cases == 0 {
            0.0
        } else {
            (list_pages + case_reads) as f64 / cases as f64
        },
        minutes_at_limit: if per_minute > 0.0 {
            total_reads as f64 / per_minute
        } else {
            0.0
        },
    }
}

/// Runs (or resumes) a verification with `options` and returns what it found.
pub async fn run(engine: &Engine, options: &VerifyOptions) -> Result<VerifyReport> {
    let settings = engine.settings();
    let store = engine.store();
    let (_, deskie_limiter) = engine.limiters();
    let client = build_deskie(settings, deskie_limiter, throttle::RetryPolicy::default())?;
    let cancel = engine.cancel_token();

    let chosen = choose(store, options).await?;
    let scope = options.scope_text();
    let record = match store.resumable_verify(&scope).await? {
        Some(r) => {
            tracing::info!(verify = r.id, "resuming an unfinished verification");
            r
        }
        None => {
            let cases = store.stored_case_count().await?;
            let plan = plan_of(cases, &chosen, per_minute(engine));
            let text = serde_json::to_string(&plan)
                .map_err(|e| EngineError::Internal(format!("verify plan: {e}")))?;
            store.begin_verify(&scope, &text).await?
        }
    };
    let id = record.id;
    let field = settings.target.source_id_field.as_deref();

    // 1. The case-list walk.
    let mut complete = true;
    if !record.list_done {
        complete &= walk_case_list(&client, store, id, record.next_page, field, &cancel).await?;
    }
    // 2. Cases the walk did not show, then the case-level findings.
    if complete && !record.cases_done {
        complete &=
            read_unseen(&client, store, id, field, settings.run.concurrency, &cancel).await?;
        if complete {
            let findings = case_findings(engine, id, field.is_some()).await?;
            store.finish_verify_cases(id, &findings).await?;
        }
    }
    // 3. Messages of the cases in scope.
    if complete {
        complete &= check_messages_in_scope(engine, &client, id, &chosen).await?;
    }
    if complete {
        store.finish_verify(id).await?;
    }
    report_of(store, id, complete).await
}

/// Builds the [`VerifyReport`] of verification `id` from the store.
pub async fn report_of(store: &Store, id: i64, complete: bool) -> Result<VerifyReport> {
    let record = store
        .verify_run(id)
        .await?
        .ok_or_else(|| EngineError::Internal(format!("verification {id} vanished")))?;
    let plan: VerifyPlan = serde_json::from_str(&record.plan).unwrap_or_default();
    let by_kind = store.verify_finding_counts(id).await?;
    let k = |name: &str| by_kind.get(name).copied().unwrap_or(0);
    let problems = store
        .verify_findings(id, REPORT_FINDINGS)
        .await?
        .into_iter()
        .map(|f| finding_line(&f))
        .collect();
    let checked = store.verify_done_keys(id).await?.len() as u64;
    Ok(VerifyReport {
        verify_id: id,
        complete,
        cases_checked: if record.cases_done { plan.cases } else { 0 },
        checked,
        reads: record.list_reads + record.case_reads + record.message_reads,
        list_reads: record.list_reads,
        case_reads: record.case_reads,
        message_reads: record.message_reads,
        missing_cases: k("missing_case") + k("trashed_case"),
        missing: k("missing_message"),
        duplicated: k("duplicated_case") + k("duplicated_message"),
        out_of_order: k("out_of_order"),
        mismatched: k("status") + k("priority"),
        unexpected: k("unexpected_message"),
        by_kind,
        problems,
        plan,
    })
}

/// One finding as a line of text.
pub fn finding_line(f: &VerifyFinding) -> String {
    match (f.key, f.case_id) {
        (Some(key), Some(case)) => format!("ticket {key} (case {case}): {}", f.detail),
        (Some(key), None) => format!("ticket {key}: {}", f.detail),
        (None, Some(case)) => format!("case {case}: {}", f.detail),
        (None, None) => f.detail.clone(),
    }
}

/// The ticket a source key names (`desk360:<product>:<ticket>`, a terminator after the ticket
/// id tolerated).
fn parse_source_key(text: &str) -> Option<TicketKey> {
    let rest = text.trim().strip_prefix("desk360:")?;
    let (product, ticket) = rest.split_once(':')?;
    let digits: String = ticket.chars().take_while(char::is_ascii_digit).collect();
    Some(TicketKey::new(product.parse().ok()?, digits.parse().ok()?))
}

fn seen_of(case: &deskie::Case, via: SeenVia, field: Option<&str>) -> SeenCase {
    SeenCase {
        case_id: case.case_id,
        via,
        found: true,
        status: case.status.clone(),
        priority: case.priority.clone(),
        source: field
            .and_then(|f| case.custom_field_text(f))
            .and_then(|t| parse_source_key(&t)),
        user_id: case.user_id,
        subject: case.subject.clone(),
        created_at: case.created_at.clone(),
        deleted: case.deleted.unwrap_or(false),
        spam: case.spam.unwrap_or(false),
    }
}

/// Reads the plain case list from `first_page` on, recording each page. Returns `false` when
/// cancelled.
async fn walk_case_list(
    client: &DeskieClient,
    store: &Store,
    id: i64,
    first_page: i64,
    field: Option<&str>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<bool> {
    let mut page = first_page.max(1) as u64;
    loop {
        if cancel.is_cancelled() {
            return Ok(false);
        }
        // No filter and no sort: the documented default order, whatever the account's readings.
        let query = deskie::CaseQuery {
            page: Some(page as u32),
            limit: Some(LIST_PAGE as u32),
            ..deskie::CaseQuery::default()
        };
        let list = tokio::select! {
            _ = cancel.cancelled() => return Ok(false),
            r = client.list_cases(&query) => match r {
                Ok(list) => list,
                // The run's limiter stops waiting when the run is cancelled.
                Err(DeskieError::Cancelled { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            },
        };
        let seen: Vec<SeenCase> = list
            .cases
            .iter()
            .map(|c| seen_of(c, SeenVia::List, field))
            .collect();
        let shown = (page - 1) * LIST_PAGE + seen.len() as u64;
        let done = seen.len() < LIST_PAGE as usize
            || page >= LIST_MAX_PAGES
            || list.total_count.is_some_and(|t| shown >= t);
        store
            .record_verify_page(id, &seen, page as i64 + 1, done)
            .await?;
        if done {
            return Ok(true);
        }
        page += 1;
    }
}

/// One of the reads allowed at once (`run.concurrency`), held by the task that makes it.
async fn acquire(semaphore: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
    (semaphore.clone().acquire_owned().await).map_err(|e| EngineError::Internal(e.to_string()))
}

/// Reads by id every stored case the walk did not show. Returns `false` when cancelled.
async fn read_unseen(
    client: &DeskieClient,
    store: &Store,
    id: i64,
    field: Option<&str>,
    concurrency: usize,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<bool> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let field = field.map(str::to_string);
    let mut after = None;
    loop {
        let batch = store.verify_unseen_cases(id, after, STORE_PAGE).await?;
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        after = Some(last.0);
        let mut tasks = tokio::task::JoinSet::new();
        for (_, case_id) in &batch {
            if cancel.is_cancelled() {
                break;
            }
            let permit = acquire(&semaphore).await?;
            let (client, store, field, case_id) =
                (client.clone(), store.clone(), field.clone(), *case_id);
            tasks.spawn(async move {
                let _permit = permit;
                let seen = match client.case(case_id).await {
                    Ok(case) => seen_of(&case, SeenVia::View, field.as_deref()),
                    Err(DeskieError::NotFound { .. }) => SeenCase {
                        case_id,
                        via: SeenVia::View,
                        found: false,
                        status: None,
                        priority: None,
                        source: None,
                        user_id: None,
                        subject: None,
                        created_at: None,
                        deleted: false,
                        spam: false,
                    },
                    // Stopped: nothing recorded, the next attempt reads it.
                    Err(DeskieError::Cancelled { .. }) => return Ok(()),
                    Err(e) => return Err(EngineError::from(e)),
                };
                store.record_verify_view(id, &seen).await?;
                Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| EngineError::Internal(format!("verify task: {e}")))??;
        }
        if cancel.is_cancelled() {
            return Ok(false);
        }
        if batch.len() < STORE_PAGE as usize {
            return Ok(true);
        }
    }
}

/// The final status and priority the loader makes a ticket's case reach: the mapping of the
/// source codes (the rule of `mapping::map_ticket`: create and final update carry the same).
fn expected_final(
    settings: &crate::config::Settings,
    status: Option<i64>,
    priority: Option<i64>,
) -> (Option<CaseStatus>, Option<CasePriority>) {
    let m = &settings.mapping;
    (
        status.and_then(|c| m.status.get(&c).copied()),
        priority.and_then(|c| m.priority.get(&c).copied()),
    )
}

/// Compares every stored case with what the walk and the direct reads saw.
async fn case_findings(
    engine: &Engine,
    id: i64,
    by_source_key: bool,
) -> Result<Vec<VerifyFinding>> {
    let store = engine.store();
    let mut findings = Vec::new();
    let mut after = None;
    loop {
        let rows = store.verify_case_rows(id, after, STORE_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.key);
        for row in &rows {
            let finding = |kind: &str, detail: String| VerifyFinding {
                kind: kind.to_string(),
                key: Some(row.key),
                case_id: Some(row.case_id),
                detail,
            };
            let Some(seen) = &row.seen else { continue };
            if !seen.found {
                findings.push(finding(
                    "missing_case",
                    format!("case #{} no longer exists in Deskie (404)", row.case_number),
                ));
                continue;
            }
            if seen.deleted || seen.spam {
                findings.push(finding(
                    "trashed_case",
                    format!(
                        "case #{} is in Deskie's {} (restore it)",
                        row.case_number,
                        if seen.deleted { "trash" } else { "spam" }
                    ),
                ));
            }
            if row.state != TicketState::Loaded {
                continue;
            }
            let (status, priority) = expected_final(engine.settings(), row.status, row.priority);
            if let Some(s) = status
                && seen.status.as_deref().and_then(CaseStatus::parse) != Some(s)
            {
                findings.push(finding(
                    "status",
                    format!(
                        "status is {:?}, the source says {}",
                        seen.status.as_deref().unwrap_or("(none)"),
                        s.as_str()
                    ),
                ));
            }
            if let Some(p) = priority
                && seen.priority.as_deref().and_then(CasePriority::parse) != Some(p)
            {
                findings.push(finding(
                    "priority",
                    format!(
                        "priority is {:?}, the source says {}",
                        seen.priority.as_deref().unwrap_or("(none)"),
                        p.as_str()
                    ),
                ));
            }
        }
        if rows.len() < STORE_PAGE as usize {
            break;
        }
    }
    for d in store.verify_duplicates(id, by_source_key).await? {
        findings.push(VerifyFinding {
            kind: "duplicated_case".into(),
            key: Some(d.key),
            case_id: Some(d.case_id),
            detail: format!(
                "another case, {}, is this ticket's too ({})",
                d.other_case_id,
                if by_source_key {
                    "it carries the ticket's source key"
                } else {
                    "same customer, subject and creation time"
                }
            ),
        });
    }
    Ok(findings)
}

/// Checks the messages of every chosen ticket not done yet. Returns `false` when cancelled.
async fn check_messages_in_scope(
    engine: &Engine,
    client: &DeskieClient,
    id: i64,
    chosen: &[Chosen],
) -> Result<bool> {
    let settings = engine.settings();
    let store = engine.store();
    let cancel = engine.cancel_token();
    let done: HashSet<TicketKey> = store.verify_done_keys(id).await?;
    let types = by_id(store.types().await?, |t| (t.id, t.title));
    let reasons = by_id(store.reasons().await?, |r| (r.id, r.title));
    let lookups = Arc::new((types, reasons));
    let semaphore = Arc::new(Semaphore::new(settings.run.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for c in chosen.iter().filter(|c| !done.contains(&c.key)) {
        if cancel.is_cancelled() {
            break;
        }
        let permit = acquire(&semaphore).await?;
        let state = store.load_ticket(c.key).await?;
        let loaded = store.ticket_state(c.key).await? == Some(TicketState::Loaded);
        let (client, store, lookups, settings) = (
            client.clone(),
            store.clone(),
            lookups.clone(),
            settings.clone(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            let Some(case) = state.case.clone() else {
                return Ok(());
            };
            let cx = MapContext {
                mapping: &settings.mapping,
                timezone: &settings.source.timezone,
                source_id_field: settings.target.source_id_field.as_deref(),
                type_titles: &lookups.0,
                reason_titles: &lookups.1,
                attachments: settings.attachments.mode,
                inline: settings.attachments.inline,
                source_base: &settings.source.base_url,
            };
            let plan = match map_ticket(&state.ticket, &cx).0 {
                Mapped::Case(p) => Some(p),
                _ => None,
            };
            let (messages, reads) = match read_messages(&client, case.case_id).await {
                Ok(x) => x,
                // A case deleted permanently: the case-level check reports it.
                Err(DeskieError::NotFound { .. }) => (Vec::new(), 1),
                // Stopped: nothing recorded, the next attempt checks it.
                Err(DeskieError::Cancelled { .. }) => return Ok(()),
                Err(e) => return Err(EngineError::from(e)),
            };
            let findings = match plan.as_deref() {
                Some(plan) => compare_messages(&state, plan, &messages, loaded),
                None => Vec::new(),
            };
            store
                .record_verify_ticket(id, state.ticket.key, &findings, reads)
                .await?;
            Ok(())
        });
        while let Some(done) = tasks.try_join_next() {
            done.map_err(|e| EngineError::Internal(format!("verify task: {e}")))??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| EngineError::Internal(format!("verify task: {e}")))??;
    }
    Ok(!cancel.is_cancelled())
}

/// Every message of a case and the pages it took (pages of 100 until `total_count`).
async fn read_messages(
    client: &DeskieClient,
    case_id: i64,
) -> std::result::Result<(Vec<MessageInfo>, u64), DeskieError> {
    let mut all: Vec<MessageInfo> = Vec::new();
    let mut ids = HashSet::new();
    let mut seen = 0u64;
    let mut reads = 0u64;
    for page in 1..=LIST_MAX_PAGES as u32 {
        let list = client.messages(case_id, page, MESSAGE_PAGE).await?;
        reads += 1;
        let count = list.messages.len() as u64;
        seen += count;
        for m in list.messages {
            if ids.insert(m.message_id) {
                all.push(m);
            }
        }
        let more = match list.total_count {
            Some(total) => seen < total,
            None => count >= u64::from(MESSAGE_PAGE),
        };
        if count == 0 || !more {
            break;
        }
    }
    Ok((all, reads))
}

/// Compares a case's messages with its ticket. Only a complete ticket (`loaded`) is expected to
/// have every message; a failed one is checked for duplicates and order only.
fn compare_messages(
    state: &LoadState,
    plan: &CasePlan,
    messages: &[MessageInfo],
    loaded: bool,
) -> Vec<VerifyFinding> {
    let key = state.ticket.key;
    let case_id = state.case.as_ref().map(|c| c.case_id);
    let mut out = Vec::new();
    let mut finding = |kind: &str, detail: String| {
        out.push(VerifyFinding {
            kind: kind.to_string(),
            key: Some(key),
            case_id,
            detail,
        });
    };
    // Expected messages: the first (from the create) and every step.
    let mut expected: Vec<(String, i64, bool, Option<jiff::Timestamp>, String)> = vec![(
        "first message".to_string(),
        plan.first_message_id,
        false,
        Some(plan.create.created_at),
        normalize_body(
            plan.create
                .content_html
                .as_deref()
                .or(plan.create.content.as_deref())
                .unwrap_or(""),
        ),
    )];
    for s in &plan.steps {
        expected.push((
            s.intent_name(),
            s.source_id(),
            s.is_note(),
            Some(s.created_at()),
            normalize_body(s.content()),
        ));
    }
    let mut used: HashSet<usize> = HashSet::new();
    let mut reply_positions = Vec::new();
    for (name, source_id, note, at, body) in &expected {
        let matches: Vec<usize> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_note() == *note && normalize_body(m.body()) == *body)
            .filter(|(_, m)| {
                m.created_at_ts().is_none() || at.is_none() || m.created_at_ts() == *at || *note
            })
            .map(|(i, _)| i)
            .filter(|i| !used.contains(i))
            .collect();
        match matches.len() {
            0 => {
                if loaded || state.sent.contains_key(source_id) {
                    finding("missing_message", format!("{name} is missing"));
                }
            }
            n => {
                if n > 1 {
                    finding("duplicated_message", format!("{name} is there {n} times"));
                }
                used.extend(matches.iter().copied());
                if !note {
                    reply_positions.push(matches[0]);
                }
            }
        }
    }
    // Replies must appear in source order (Deskie lists by time; equal times keep arrival).
    if reply_positions.windows(2).any(|w| w[0] > w[1]) {
        finding("out_of_order", "replies are out of order".to_string());
    }
    let extra = messages.len().saturating_sub(used.len());
    if extra > 0 {
        finding(
            "unexpected_message",
            format!("{extra} message(s) not from the source (written in Deskie since?)"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_keys_parse_with_or_without_a_terminator() {
        assert_eq!(
            parse_source_key("desk360:3:42"),
            Some(TicketKey::new(3, 42))
        );
        assert_eq!(
            parse_source_key("desk360:3:42;"),
            Some(TicketKey::new(3, 42))
        );
        assert_eq!(parse_source_key("other:3:42"), None);
        assert_eq!(parse_source_key("desk360:x:42"), None);
    }

    #[test]
    fn the_draw_is_reproducible_and_spreads() {
        let k = TicketKey::new(1, 2);
        assert_eq!(draw(7, k), draw(7, k));
        assert_ne!(draw(7, k), draw(8, k));
        assert_ne!(draw(7, k), draw(7, TicketKey::new(2, 1)));
    }

    #[test]
    fn the_case_level_cost_is_a_page_per_hundred_cases_then_degrades_beyond_the_last_page() {
        let p = plan_of(900, &[], 1500.0);
        assert_eq!((p.list_pages, p.case_reads), (9, 0));
        assert!(p.case_level_reads_per_case <= 0.01);
        // 2 M cases: the 500 pages show 50 000, the rest are read one by one.
        let p = plan_of(2_000_000, &[], 1500.0);
        assert_eq!((p.list_pages, p.case_reads), (500, 1_950_000));
        let chosen = [Chosen {
            draw: 0,
            key: TicketKey::new(1, 1),
            messages: 250,
        }];
        let p = plan_of(10, &chosen, 60.0);
        assert_eq!((p.list_pages, p.message_reads, p.total_reads), (1, 3, 4));
        assert!((p.minutes_at_limit - 4.0 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn message_pages_count_the_first_message() {
        assert_eq!(message_pages(0), 1);
        assert_eq!(message_pages(100), 1);
        assert_eq!(message_pages(101), 2);
    }

    #[test]
    fn scope_text_names_every_parameter() {
        let o = VerifyOptions {
            sample: Some(50),
            seed: 9,
            product: Some(3),
            since: Some(jiff::civil::date(2024, 1, 31)),
        };
        assert_eq!(
            o.scope_text(),
            "sample=50;seed=9;product=3;since=2024-01-31"
        );
        assert_eq!(
            VerifyOptions::default().scope_text(),
            "sample=all;seed=0;product=all;since=all"
        );
    }
}
