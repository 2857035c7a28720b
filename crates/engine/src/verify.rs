//! `verify`: reads Deskie back and compares it with the store, so a team can prove before
//! switching over that nothing is missing, duplicated or out of order.
//!
//! For every ticket that has a case it reads the case (final status and priority), its message
//! list, and — when `target.source_id_field` is configured — searches the source key to catch a
//! second case for the same ticket. Expected content comes from the same pure mapping the loader
//! used, so the comparison is exact. Reads only (GET, 1 unit each), through the Deskie limiter.

use std::collections::HashSet;
use std::sync::Arc;

use deskie::{DeskieClient, MessageInfo};
use serde::Serialize;
use store::{LoadState, TicketState};
use tokio::sync::Semaphore;

use crate::error::{EngineError, Result};
use crate::mapping::{CasePlan, MapContext, Mapped, map_ticket, normalize_body};
use crate::run::{Engine, build_deskie};

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Cases checked.
    pub checked: u64,
    /// Deskie reads spent.
    pub reads: u64,
    /// Source messages with no copy in their case.
    pub missing: u64,
    /// Source messages (or tickets) present more than once.
    pub duplicated: u64,
    /// Replies whose order in the case differs from the source.
    pub out_of_order: u64,
    /// Cases whose final status or priority differs from the source.
    pub mismatched: u64,
    /// Messages in a case that no source message explains (e.g. written in Deskie since).
    pub unexpected: u64,
    /// One line per problem, naming the ticket and the case.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is missing, duplicated, out of order or mismatched.
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.out_of_order == 0 && self.mismatched == 0
    }

    /// A short human summary.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "verify: {} cases checked with {} reads: {} missing, {} duplicated, {} out of order, {} status/priority mismatches, {} unexpected messages\n",
            self.checked,
            self.reads,
            self.missing,
            self.duplicated,
            self.out_of_order,
            self.mismatched,
            self.unexpected
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

    fn merge(&mut self, other: VerifyReport) {
        self.checked += other.checked;
        self.reads += other.reads;
        self.missing += other.missing;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.mismatched += other.mismatched;
        self.unexpected += other.unexpected;
        self.problems.extend(other.problems);
    }
}

/// Reads every migrated case back from Deskie and compares it with the store.
pub async fn verify(engine: &Engine) -> Result<VerifyReport> {
    let settings = engine.settings();
    let store = engine.store();
    let (_, deskie_limiter) = engine.limiters();
    let client = build_deskie(settings, deskie_limiter, throttle::RetryPolicy::default())?;
    let types = store
        .types()
        .await?
        .into_iter()
        .map(|t| (t.id, t.title))
        .collect();
    let reasons = store
        .reasons()
        .await?
        .into_iter()
        .map(|r| (r.id, r.title))
        .collect();
    let lookups = Arc::new((types, reasons));
    let semaphore = Arc::new(Semaphore::new(settings.run.concurrency));
    let mut report = VerifyReport::default();
    let mut tasks = tokio::task::JoinSet::new();

    let mut keys = store.ticket_keys(TicketState::Loaded).await?;
    keys.extend(store.ticket_keys(TicketState::Failed).await?);
    keys.sort();
    for key in keys {
        if engine.cancel_token().is_cancelled() {
            break;
        }
        let state = store.load_ticket(key).await?;
        if state.case.is_none() {
            continue;
        }
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let client = client.clone();
        let lookups = lookups.clone();
        let settings = settings.clone();
        let loaded = store.ticket_state(key).await? == Some(TicketState::Loaded);
        tasks.spawn(async move {
            let _permit = permit;
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
            check_case(
                &client,
                settings.target.source_id_field.as_deref(),
                &state,
                plan.as_deref(),
                loaded,
            )
            .await
        });
        while let Some(done) = tasks.try_join_next() {
            report.merge(joined(done)?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        report.merge(joined(done)?);
    }
    report.problems.sort();
    Ok(report)
}

fn joined(
    r: std::result::Result<Result<VerifyReport>, tokio::task::JoinError>,
) -> Result<VerifyReport> {
    r.map_err(|e| EngineError::Internal(format!("verify task: {e}")))?
}

/// Checks one case against its ticket. Only a complete ticket (`loaded`) is expected to have
/// every message and the final status; a failed one is checked for duplicates and order only.
async fn check_case(
    client: &DeskieClient,
    source_id_field: Option<&str>,
    state: &LoadState,
    plan: Option<&CasePlan>,
    loaded: bool,
) -> Result<VerifyReport> {
    let mut r = VerifyReport {
        checked: 1,
        ..VerifyReport::default()
    };
    let key = state.ticket.key;
    let Some(case) = &state.case else {
        return Ok(r);
    };
    let label = format!("ticket {key} (case {} #{})", case.case_id, case.case_number);

    if let Some(field) = source_id_field {
        r.reads += 1;
        let list = client
            .list_cases(&deskie::CaseQuery {
                limit: Some(10),
                custom_fields: [(field.to_string(), format!("^{}^", key.source_id()))]
                    .into_iter()
                    .collect(),
                ..deskie::CaseQuery::default()
            })
            .await?;
        let same: Vec<i64> = list
            .cases
            .iter()
            .filter(|c| c.custom_field_text(field).as_deref() == Some(key.source_id().as_str()))
            .map(|c| c.case_id)
            .collect();
        if same.len() > 1 {
            r.duplicated += 1;
            r.problems.push(format!(
                "{label}: {} cases carry this ticket's source key: {same:?}",
                same.len()
            ));
        }
    }

    r.reads += 1;
    let remote = client.case(case.case_id).await?;
    r.reads += 1;
    let messages: Vec<MessageInfo> = client.all_messages(case.case_id).await?;

    let Some(plan) = plan else {
        return Ok(r);
    };
    if loaded {
        let want_status = plan
            .final_update
            .as_ref()
            .and_then(|u| u.status)
            .or(plan.create.status);
        if let Some(s) = want_status
            && remote.status_value() != Some(s)
        {
            r.mismatched += 1;
            r.problems.push(format!(
                "{label}: status is {:?}, the source says {}",
                remote.status,
                s.as_str()
            ));
        }
        if let Some(p) = plan.create.priority
            && remote.priority_value() != Some(p)
        {
            r.mismatched += 1;
            r.problems.push(format!(
                "{label}: priority is {:?}, the source says {}",
                remote.priority,
                p.as_str()
            ));
        }
    }

    // Expected messages: the first (from the create) and every step.
    let mut expected: Vec<(String, bool, Option<jiff::Timestamp>, String)> = vec![(
        "first message".to_string(),
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
            s.is_note(),
            Some(s.created_at()),
            normalize_body(s.content()),
        ));
    }
    let mut used: HashSet<usize> = HashSet::new();
    let mut reply_positions = Vec::new();
    for (name, note, at, body) in &expected {
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
                if loaded || state.sent.contains_key(&source_id_of(name)) {
                    r.missing += 1;
                    r.problems.push(format!("{label}: {name} is missing"));
                }
            }
            n => {
                if n > 1 {
                    r.duplicated += 1;
                    r.problems
                        .push(format!("{label}: {name} is there {n} times"));
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
        r.out_of_order += 1;
        r.problems
            .push(format!("{label}: replies are out of order"));
    }
    let extra = messages.len().saturating_sub(used.len());
    if extra > 0 {
        r.unexpected += extra as u64;
        r.problems.push(format!(
            "{label}: {extra} message(s) not from the source (written in Deskie since?)"
        ));
    }
    Ok(r)
}

fn source_id_of(step_name: &str) -> i64 {
    step_name
        .split_once(':')
        .and_then(|(_, id)| id.parse().ok())
        .unwrap_or(-1)
}
