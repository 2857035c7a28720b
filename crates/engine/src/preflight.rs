//! `preflight`: checks both live accounts before a migration and probes how the live Deskie reads
//! the points its pages leave open, then records the findings so `run` follows them.
//!
//! Read-only checks: both credentials, Deskie's rate limit from its headers against the configured
//! plan, Desk360's page size and whether page 2's `Link` keeps a query parameter we sent (one
//! harmless `order=desc` on page 1, for this check only; the run itself sends none).
//!
//! The probe (skipped with `--no-probe`) writes one case, to a customer under `.invalid` (no mail
//! can be delivered there), agent-initiated with every do-not-send field, adds an agent reply, a
//! customer reply and two notes (one naming its author only in `note_staff_id`, one only in
//! `staff_id`), reads them back, searches for the case by its custom field (plain, substring,
//! `^…^`) and by creation time, then deletes the case permanently (trash first if a plain delete
//! only trashes it) and the user it created. The probe is journaled in the store before it is
//! created, so a preflight killed halfway deletes the leftover at its next start.
//!
//! A finding with no fallback (Deskie ignores `created_at`; `source_id_field` not kept or not
//! searchable; no exact case lookup at all) is *blocking*: `run` refuses to start (exit 2) until
//! a later preflight finds otherwise.

use deskie::{
    Case, CaseQuery, CaseStatus, Content, DeskieClient, DeskieError, NewCase, NewMessage,
    NoteAuthorField,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use throttle::RetryPolicy;

use crate::Engine;
use crate::clients::{build_desk360, build_deskie};
use crate::error::{EngineError, Result};

/// Deskie units the probe spends at most (writes cost 2): create 2, agent reply 2, read 1,
/// customer reply 2, two notes 4, message list 1, three searches 3, two time filters 2, delete 2,
/// read-back 1, a second delete and read if the first only trashed 3, user delete 2.
pub const PROBE_UNITS_MAX: u32 = 25;

/// The probe's case date: far in the past, so a server that stamps "now" instead is obvious.
const PROBE_CREATED_AT: &str = "2001-02-03T04:05:06Z";

/// What a preflight will cost, stated before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PreflightCost {
    /// Desk360 requests (credentials, products, one list page).
    pub desk360_requests: u32,
    /// Deskie units at most (credentials 1, plus the probe).
    pub deskie_units: u32,
    /// Deskie writes at most (each costs 2 units).
    pub deskie_writes: u32,
}

/// The cost of a preflight with or without its probe.
pub fn cost(probe: bool) -> PreflightCost {
    PreflightCost {
        desk360_requests: 3,
        deskie_units: 1 + if probe { PROBE_UNITS_MAX } else { 0 },
        deskie_writes: if probe { 9 } else { 0 },
    }
}

/// How Deskie's `custom_fields[cf_N]` filter matched the probe (page 002 "search", page 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchFinding {
    /// Substring by default, `^…^` exact.
    Caret,
    /// Exact value only; `^` is an ordinary character.
    ExactOnly,
    /// Substring; `^` is an ordinary character.
    SubstringOnly,
    /// The exact value did not find the probe (the filter is ignored or the field not searchable).
    NotFound,
}

/// Which note field set the note's author (page 001 "Add a note").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteAuthorFinding {
    /// Both fields are read.
    Either,
    /// Only `note_staff_id`.
    NoteStaffIdOnly,
    /// Only `staff_id`.
    StaffIdOnly,
    /// Neither: notes are credited to the API agent.
    Neither,
}

/// What Deskie's `from_time` / `to_time` did with Unix seconds (page 001, table lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFilterFinding {
    /// Filtered by creation time as sent.
    UnixSeconds,
    /// Refused the form (400).
    Rejected,
    /// Accepted and ignored.
    Ignored,
}

/// What a permanent delete did (page 001 "Delete permanently a case").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteFinding {
    /// The case was gone after one DELETE.
    Permanent,
    /// The first DELETE only trashed it (or was refused until trashed): trash, then delete.
    TrashFirst,
}

/// Everything a preflight found; recorded in the store as JSON, read back by `run` and
/// `rollback`. `None` means not checked (no probe, or the check was impossible).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// Deskie answered the credentials.
    pub deskie_ok: bool,
    /// Desk360 answered the credentials.
    pub desk360_ok: bool,
    /// The configured Deskie rate (units a minute).
    pub configured_rpm: u32,
    /// The limit in force after Deskie's first answer (its `rate_limit_per_minute` header, or the
    /// configured rate when it sent none).
    pub header_rpm: Option<u32>,
    /// Tickets on Desk360's first list page (20 documented), when there was a product.
    pub desk360_page_size: Option<usize>,
    /// Whether page 2's `Link` kept our `order=desc`; `None`: a single page, nothing to see.
    pub link_keeps_query: Option<bool>,
    /// `target.source_id_field` as configured.
    pub source_id_field: Option<String>,
    /// Whether the probe case kept the value written into `source_id_field`.
    pub source_field_kept: Option<bool>,
    /// Whether the case kept its `created_at`.
    pub case_created_at_kept: Option<bool>,
    /// Whether the replies kept their `created_at`.
    pub message_created_at_kept: Option<bool>,
    /// How the custom-field filter matched.
    pub search: Option<SearchFinding>,
    /// Which note field set the author.
    pub note_author: Option<NoteAuthorFinding>,
    /// The case status after an agent reply to an `open` case.
    pub status_after_agent_reply: Option<String>,
    /// What the creation-time filter did.
    pub time_filter: Option<TimeFilterFinding>,
    /// What a permanent delete did.
    pub delete: Option<DeleteFinding>,
    /// Whether the probe case and user were deleted.
    pub probe_cleaned: Option<bool>,
}

/// One line of the preflight table: check · what we found · what the run will do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRow {
    /// The check.
    pub check: String,
    /// What was found.
    pub found: String,
    /// What the run will do about it.
    pub action: String,
    /// True when the run refuses to start because of it.
    pub blocking: bool,
}

/// One row of the table.
fn row(check: &str, found: String, action: &str, blocking: bool) -> CheckRow {
    CheckRow {
        check: check.into(),
        found,
        action: action.into(),
        blocking,
    }
}

impl Findings {
    /// The table the binary prints, one row per check.
    pub fn rows(&self) -> Vec<CheckRow> {
        let mut rows = vec![
            row(
                "Deskie credentials",
                ok_text(self.deskie_ok),
                "requests act as target.staff_email",
                false,
            ),
            row(
                "Desk360 credentials",
                ok_text(self.desk360_ok),
                "the token (or login) is used as configured",
                false,
            ),
            self.rate_limit_row(),
            self.page_size_row(),
            self.link_row(),
            self.source_field_row(),
            self.created_at_row(),
        ];
        rows.extend(self.search_row());
        rows.push(self.note_author_row());
        rows.push(self.status_row());
        rows.push(self.time_filter_row());
        rows.push(self.delete_row());
        rows.extend(self.probe_row());
        rows
    }

    /// Deskie's rate limit from its headers against the configured one.
    fn rate_limit_row(&self) -> CheckRow {
        match self.header_rpm {
            Some(h) if h != self.configured_rpm => row(
                "Deskie rate limit",
                format!(
                    "headers say {h}/min, configured {}/min",
                    self.configured_rpm
                ),
                "follows the headers; fix target.plan / agents / rpm to match",
                false,
            ),
            Some(h) => row(
                "Deskie rate limit",
                format!("{h}/min, as configured (or no header)"),
                "spends up to it",
                false,
            ),
            None => row(
                "Deskie rate limit",
                format!("no header; configured {}/min", self.configured_rpm),
                "spends the configured rate, slows down on 429",
                false,
            ),
        }
    }

    /// Desk360's list page size against the documented 20.
    fn page_size_row(&self) -> CheckRow {
        match self.desk360_page_size {
            Some(n) => row(
                "Desk360 page size",
                format!("{n} tickets on page 1 (documented: 20)"),
                "one batch per page, whatever its size",
                false,
            ),
            None => row(
                "Desk360 page size",
                "no product to look at".into(),
                "nothing to migrate",
                false,
            ),
        }
    }

    /// Whether Desk360's `Link` to page 2 kept our query.
    fn link_row(&self) -> CheckRow {
        row(
            "Desk360 Link keeps our query",
            match self.link_keeps_query {
                Some(true) => "yes".into(),
                Some(false) => "no: page 2 carries only page".into(),
                None => "single page, cannot tell".into(),
            },
            "lists in the default order with no query of its own: exact either way",
            false,
        )
    }

    /// Whether `source_id_field` exists and keeps a value (blocking when it does not).
    fn source_field_row(&self) -> CheckRow {
        let field = self.source_id_field.clone().unwrap_or_default();
        match (&self.source_id_field, self.source_field_kept) {
            (None, _) => row(
                "source_id_field",
                "not configured".into(),
                "finds a lost create among the most recently changed cases (documented default sort) by customer, subject and time; set it for one-read lookups",
                false,
            ),
            (Some(_), None) => row(
                "source_id_field",
                format!("{field}: not checked (no probe); Deskie's pages list no case fields"),
                "writes the source key into it",
                false,
            ),
            (Some(_), Some(true)) => row(
                "source_id_field",
                format!("{field} exists and keeps its value"),
                "writes the source key into every case",
                false,
            ),
            (Some(_), Some(false)) => row(
                "source_id_field",
                format!("{field} did not keep the probe's value"),
                "refuses to run: create a text custom field for cases and name it, or remove the key",
                true,
            ),
        }
    }

    /// Whether cases and messages keep their original times (blocking when they do not).
    fn created_at_row(&self) -> CheckRow {
        let kept = |v: Option<bool>| match v {
            Some(true) => "kept".to_string(),
            Some(false) => "IGNORED (server time instead)".to_string(),
            None => "not checked".to_string(),
        };
        let dates_ignored =
            self.case_created_at_kept == Some(false) || self.message_created_at_kept == Some(false);
        row(
            "created_at",
            format!(
                "case {}, messages {}",
                kept(self.case_created_at_kept),
                kept(self.message_created_at_kept)
            ),
            if dates_ignored {
                "refuses to run: every message would carry today's date (ask Deskie support)"
            } else {
                "sends every original time"
            },
            dates_ignored,
        )
    }

    /// How the custom-field filter matched; only with a `source_id_field` (blocking when the
    /// exact value finds nothing).
    fn search_row(&self) -> Option<CheckRow> {
        self.source_id_field.as_ref()?;
        let (found, action, blocking) = match self.search {
            Some(SearchFinding::Caret) => (
                "substring, ^…^ exact",
                "looks up the plain key and checks hits exactly",
                false,
            ),
            Some(SearchFinding::ExactOnly) => (
                "exact only (^ is literal)",
                "looks up the plain key (exact here)",
                false,
            ),
            Some(SearchFinding::SubstringOnly) => (
                "substring only (^ is literal)",
                "looks up the plain key and checks hits exactly",
                false,
            ),
            Some(SearchFinding::NotFound) => (
                "the exact value did not find the case",
                "refuses to run: the field is not searchable; use a text field, or remove source_id_field",
                true,
            ),
            None => (
                "not checked",
                "looks up the plain key and checks hits exactly",
                false,
            ),
        };
        Some(row("custom-field filter", found.into(), action, blocking))
    }

    /// Which note field sets the author.
    fn note_author_row(&self) -> CheckRow {
        row(
            "note author field",
            match self.note_author {
                Some(NoteAuthorFinding::Either) => "note_staff_id or staff_id".into(),
                Some(NoteAuthorFinding::NoteStaffIdOnly) => "note_staff_id only".into(),
                Some(NoteAuthorFinding::StaffIdOnly) => "staff_id only".into(),
                Some(NoteAuthorFinding::Neither) => "neither: notes show the API agent".into(),
                None => "not checked".into(),
            },
            if self.note_author == Some(NoteAuthorFinding::Neither) {
                "sends both; notes will show the importing agent as author"
            } else {
                "sends the author in both fields"
            },
            false,
        )
    }

    /// What an agent reply did to an open case's status.
    fn status_row(&self) -> CheckRow {
        row(
            "status after an agent reply",
            match &self.status_after_agent_reply {
                Some(s) if s == "open" => "unchanged (open)".into(),
                Some(s) => format!("{s} (was open)"),
                None => "not checked".into(),
            },
            "every case with a reply after its create gets its final status after its last message (bulk updates of 10)",
            false,
        )
    }

    /// What the creation-time filter did with Unix seconds.
    fn time_filter_row(&self) -> CheckRow {
        row(
            "creation-time filter",
            match self.time_filter {
                Some(TimeFilterFinding::UnixSeconds) => "Unix seconds work".into(),
                Some(TimeFilterFinding::Rejected) => "Unix seconds refused".into(),
                Some(TimeFilterFinding::Ignored) => "ignored".into(),
                None => "not checked".into(),
            },
            "not used: no lookup depends on the time filter's format",
            false,
        )
    }

    /// What a permanent delete did, and so how rollback deletes.
    fn delete_row(&self) -> CheckRow {
        row(
            "permanent delete",
            match self.delete {
                Some(DeleteFinding::Permanent) => "one DELETE removes a case".into(),
                Some(DeleteFinding::TrashFirst) => "a DELETE only trashed it".into(),
                None => "not checked".into(),
            },
            match self.delete {
                Some(DeleteFinding::TrashFirst) => "rollback trashes, then deletes",
                _ => "rollback deletes (bulk, 10 a request)",
            },
            false,
        )
    }

    /// Whether the probe cleaned up after itself; only after a probe.
    fn probe_row(&self) -> Option<CheckRow> {
        let cleaned = self.probe_cleaned?;
        Some(row(
            "probe left behind",
            if cleaned {
                "nothing: case and user deleted".into()
            } else {
                "the probe case or user could not be deleted".into()
            },
            if cleaned {
                "—"
            } else {
                "delete the case to *.invalid by hand; the next preflight tries again"
            },
            false,
        ))
    }

    /// The first finding the run cannot work around, as one line; `None` when the run may go.
    pub fn blocking(&self) -> Option<String> {
        self.rows()
            .into_iter()
            .find(|r| r.blocking)
            .map(|r| format!("preflight found {}: {} — {}", r.check, r.found, r.action))
    }
}

fn ok_text(ok: bool) -> String {
    if ok {
        "accepted".into()
    } else {
        "not checked".into()
    }
}

/// What `preflight` returns to the binary.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    /// The findings (also recorded in the store).
    pub findings: Findings,
    /// Whether the probe ran.
    pub probed: bool,
    /// Deskie units this preflight spent.
    pub deskie_units: u64,
    /// Desk360 requests it sent.
    pub desk360_requests: u64,
}

/// The findings of the newest preflight that probed, with when they were recorded.
pub async fn recorded(engine: &Engine) -> Result<Option<(String, Findings)>> {
    let Some(record) = engine.store().last_preflight(true).await? else {
        return Ok(None);
    };
    let findings = serde_json::from_str(&record.findings).map_err(|e| {
        EngineError::Internal(format!(
            "the recorded preflight findings cannot be read: {e}"
        ))
    })?;
    Ok(Some((record.recorded_at, findings)))
}

/// Runs the checks (and the probe when `probe`), records the findings in the store and returns
/// them. Errors only when an account refuses the credentials or the store fails; a probe step
/// that fails is cleaned up before the error is returned.
pub async fn run(engine: &Engine, probe: bool) -> Result<PreflightReport> {
    let settings = engine.settings();
    let retry = RetryPolicy {
        max_transient_retries: settings.run.max_retries,
        ..RetryPolicy::default()
    };
    let (d_limiter, k_limiter) = engine.limiters();
    let (d_before, k_before) = (d_limiter.stats(), k_limiter.stats());
    let mut f = Findings {
        configured_rpm: settings.target.rpm,
        source_id_field: settings.target.source_id_field.clone(),
        ..Findings::default()
    };

    let deskie = build_deskie(settings, k_limiter.clone(), retry)?;
    deskie.check_credentials().await?;
    f.deskie_ok = true;
    // The limiter follows `rate_limit_per_minute` from the first answer on.
    f.header_rpm = Some(k_limiter.stats().limit);

    let desk360 = build_desk360(settings, d_limiter.clone(), retry).await?;
    desk360.me().await?;
    f.desk360_ok = true;
    let product = match settings.source.products.first() {
        Some(p) => Some(*p),
        None => desk360.products().await?.first().map(|p| p.id),
    };
    if let Some(product) = product {
        // One harmless parameter, for this check only: the run itself sends none.
        let url = format!("{}?order=desc", desk360.first_page_url(product));
        let page = desk360.ticket_page(&url).await?;
        f.desk360_page_size = Some(page.tickets.len() + page.invalid.len());
        f.link_keeps_query = page.next.as_deref().map(|next| {
            url::Url::parse(next).is_ok_and(|u| {
                u.query_pairs()
                    .any(|(k, v)| k == "order" && v.eq_ignore_ascii_case("desc"))
            })
        });
    }

    if probe {
        clean_leftovers(engine, &deskie).await?;
        probe_deskie(engine, &deskie, &mut f).await?;
    }

    let text = serde_json::to_string(&f)
        .map_err(|e| EngineError::Internal(format!("cannot encode the findings: {e}")))?;
    engine.store().record_preflight(probe, &text).await?;
    let (d_after, k_after) = (d_limiter.stats(), k_limiter.stats());
    Ok(PreflightReport {
        findings: f,
        probed: probe,
        deskie_units: k_after.units - k_before.units,
        desk360_requests: d_after.requests - d_before.requests,
    })
}

/// Deletes what a killed preflight left behind (case by its recorded id, or found by its
/// marker in `source_id_field`).
async fn clean_leftovers(engine: &Engine, deskie: &DeskieClient) -> Result<()> {
    for leftover in engine.store().open_probes().await? {
        let mut case_id = leftover.case_id;
        let mut user_id = leftover.user_id;
        if case_id.is_none()
            && let Some(field) = &engine.settings().target.source_id_field
            && let deskie::CaseLookup::Found(case) = deskie
                .lookup_case_by_custom_field(field, std::slice::from_ref(&leftover.marker))
                .await?
        {
            case_id = Some(case.case_id);
            user_id = case.user_id;
        }
        if let Some(id) = case_id {
            delete_case_fully(deskie, id).await?;
        } else {
            tracing::warn!(
                address = %leftover.address,
                "an earlier preflight may have left a probe case for this address; delete it by hand if present"
            );
        }
        if let Some(user) = user_id {
            delete_user_quietly(deskie, user).await?;
        }
        engine.store().probe_cleaned(leftover.id).await?;
    }
    Ok(())
}

/// Writes the probe case, reads it back, and always tries to delete it.
async fn probe_deskie(engine: &Engine, deskie: &DeskieClient, f: &mut Findings) -> Result<()> {
    let settings = engine.settings();
    let nonce = format!(
        "{:x}{:x}",
        Timestamp::now().as_nanosecond(),
        std::process::id()
    );
    let address = format!("deskie-import-probe-{nonce}@probe.invalid");
    let marker = format!("preflight-{nonce}-probe");
    let probe_id = engine.store().open_probe(&address, &marker).await?;
    let t0: Timestamp = PROBE_CREATED_AT
        .parse()
        .map_err(|e| EngineError::Internal(format!("probe time: {e}")))?;
    let staff = settings.mapping.default_staff_id;

    // Agent-initiated Email case: initiator_id, case_email_id = -1, do_not_send_email = true
    // (recipe 003 §1.1 b), to an address under .invalid that can never receive mail.
    let mut create = NewCase::email(
        &address,
        "deskie-import preflight probe (deleted automatically)",
        "<p>deskie-import preflight probe: the importer deletes this case within seconds.</p>",
        t0,
        Some(staff),
    );
    create.status = Some(CaseStatus::Open);
    create.user_full_name = Some("deskie-import probe".into());
    if let Some(field) = &settings.target.source_id_field {
        create.custom_fields.insert(field.clone(), marker.clone());
    }
    let case = deskie.create_case(&create).await?;
    engine
        .store()
        .probe_created(probe_id, case.case_id, case.user_id)
        .await?;

    let outcome = probe_steps(deskie, &case, &create, &marker, staff, t0, f).await;

    // Clean up whatever happened above.
    let cleaned = async {
        f.delete = Some(delete_case_fully(deskie, case.case_id).await?);
        if let Some(user) = case.user_id {
            delete_user_quietly(deskie, user).await?;
        }
        Ok::<_, EngineError>(())
    }
    .await;
    f.probe_cleaned = Some(cleaned.is_ok());
    if cleaned.is_ok() {
        engine.store().probe_cleaned(probe_id).await?;
    }
    outcome?;
    cleaned
}

/// The probe's writes and reads after the create; fills in the findings.
async fn probe_steps(
    deskie: &DeskieClient,
    case: &Case,
    create: &NewCase,
    marker: &str,
    staff: i64,
    t0: Timestamp,
    f: &mut Findings,
) -> Result<()> {
    f.case_created_at_kept = Some(case.created_at_ts() == Some(t0));
    if let Some(field) = &f.source_id_field {
        f.source_field_kept = Some(case.custom_field_text(field).as_deref() == Some(marker));
    }
    probe_messages(deskie, case, staff, t0, f).await?;
    if let Some(field) = f.source_id_field.clone() {
        f.search = Some(probe_search(deskie, case, &field, marker).await?);
    }
    let created = case.created_at_ts().unwrap_or(create.created_at);
    f.time_filter = Some(probe_time_filter(deskie, case, created).await?);
    Ok(())
}

/// An agent reply (then the status it left), a customer reply and a note by each author field,
/// read back as stored: whether replies keep their times and which note field sets the author.
async fn probe_messages(
    deskie: &DeskieClient,
    case: &Case,
    staff: i64,
    t0: Timestamp,
    f: &mut Findings,
) -> Result<()> {
    let hour = SignedDuration::from_hours(1);
    let agent_at = t0 + hour;
    let agent = NewMessage::from_agent(
        staff,
        Content::Html("<p>probe: agent reply</p>".into()),
        agent_at,
    );
    let agent_msg = deskie.add_message(case.case_id, &agent).await?;
    let after_agent = deskie.case(case.case_id).await?;
    f.status_after_agent_reply = after_agent.status.clone();

    let customer_at = t0 + hour * 2;
    let customer_msg = match case.user_id {
        Some(user) => Some(
            deskie
                .add_message(
                    case.case_id,
                    &NewMessage::from_customer(
                        user,
                        Content::Html("<p>probe: customer reply</p>".into()),
                        customer_at,
                    ),
                )
                .await?,
        ),
        None => None,
    };
    let note_a = deskie
        .add_probe_note(
            case.case_id,
            NoteAuthorField::NoteStaffId,
            staff,
            "probe: note A",
        )
        .await?;
    let note_b = deskie
        .add_probe_note(
            case.case_id,
            NoteAuthorField::StaffId,
            staff,
            "probe: note B",
        )
        .await?;

    // Read back what the server stored (not what it answered).
    let messages = deskie.all_messages(case.case_id).await?;
    let stored = |id: i64| messages.iter().find(|m| m.message_id == id);
    let mut kept = stored(agent_msg.message_id).and_then(|m| m.created_at_ts()) == Some(agent_at);
    if let Some(c) = &customer_msg {
        kept &= stored(c.message_id).and_then(|m| m.created_at_ts()) == Some(customer_at);
    }
    f.message_created_at_kept = Some(kept);
    let author = |id: i64| stored(id).and_then(|m| m.staff_id) == Some(staff);
    f.note_author = Some(
        match (author(note_a.message_id), author(note_b.message_id)) {
            (true, true) => NoteAuthorFinding::Either,
            (true, false) => NoteAuthorFinding::NoteStaffIdOnly,
            (false, true) => NoteAuthorFinding::StaffIdOnly,
            (false, false) => NoteAuthorFinding::Neither,
        },
    );
    Ok(())
}

/// How the custom-field filter matches: the probe's marker searched exactly, by a substring,
/// and between carets (page 002 "search").
async fn probe_search(
    deskie: &DeskieClient,
    case: &Case,
    field: &str,
    marker: &str,
) -> Result<SearchFinding> {
    let finds = |value: String| async move {
        let mut q = CaseQuery {
            limit: Some(100),
            ..CaseQuery::default()
        };
        q.custom_fields.insert(field.to_string(), value);
        let list = deskie.list_cases(&q).await?;
        Ok::<_, DeskieError>(list.cases.iter().any(|c| c.case_id == case.case_id))
    };
    let middle = marker
        .trim_start_matches("preflight-")
        .trim_end_matches("-probe")
        .to_string();
    let exact = finds(marker.to_string()).await?;
    let substring = finds(middle).await?;
    let caret = finds(format!("^{marker}^")).await?;
    Ok(match (exact, substring, caret) {
        (false, _, _) => SearchFinding::NotFound,
        (true, true, true) => SearchFinding::Caret,
        (true, true, false) => SearchFinding::SubstringOnly,
        (true, false, _) => SearchFinding::ExactOnly,
    })
}

/// The creation-time filter in the form the client sends (Unix seconds): a window around the
/// case's creation must find it, one a day later must not.
async fn probe_time_filter(
    deskie: &DeskieClient,
    case: &Case,
    created: Timestamp,
) -> Result<TimeFilterFinding> {
    let window = |from: Timestamp, to: Timestamp| {
        let q = CaseQuery {
            limit: Some(100),
            from_time: Some(from),
            to_time: Some(to),
            ..CaseQuery::default()
        };
        async move {
            match deskie.list_cases(&q).await {
                Ok(list) => Ok(Some(list.cases.iter().any(|c| c.case_id == case.case_id))),
                Err(DeskieError::Rejected { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    };
    let hour = SignedDuration::from_hours(1);
    let second = SignedDuration::from_secs(1);
    let inside = window(created - second, created + second).await?;
    let outside = window(created + hour * 24, created + hour * 48).await?;
    Ok(match (inside, outside) {
        (None, _) | (_, None) => TimeFilterFinding::Rejected,
        (Some(true), Some(false)) => TimeFilterFinding::UnixSeconds,
        _ => TimeFilterFinding::Ignored,
    })
}

/// Deletes a case for good: one DELETE, a read to confirm; a case still there (in the trash)
/// or a delete refused is trashed, then deleted again and confirmed. Returns what it took.
pub(crate) async fn delete_case_fully(
    deskie: &DeskieClient,
    case_id: i64,
) -> std::result::Result<DeleteFinding, EngineError> {
    match deskie.delete_cases(&[case_id]).await {
        Ok(()) | Err(DeskieError::NotFound { .. }) => {}
        Err(DeskieError::Rejected { .. }) => {
            trash_then_delete(deskie, case_id).await?;
            return confirm_gone(deskie, case_id)
                .await
                .map(|()| DeleteFinding::TrashFirst);
        }
        Err(e) => return Err(e.into()),
    }
    match deskie.case(case_id).await {
        Err(DeskieError::NotFound { .. }) => Ok(DeleteFinding::Permanent),
        Ok(_) => {
            trash_then_delete(deskie, case_id).await?;
            confirm_gone(deskie, case_id)
                .await
                .map(|()| DeleteFinding::TrashFirst)
        }
        Err(e) => Err(e.into()),
    }
}

async fn trash_then_delete(deskie: &DeskieClient, case_id: i64) -> Result<()> {
    match deskie.trash_cases(&[case_id]).await {
        Ok(_) | Err(DeskieError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    match deskie.delete_cases(&[case_id]).await {
        Ok(()) | Err(DeskieError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn confirm_gone(deskie: &DeskieClient, case_id: i64) -> Result<()> {
    match deskie.case(case_id).await {
        Err(DeskieError::NotFound { .. }) => Ok(()),
        Ok(_) => Err(EngineError::Internal(format!(
            "Deskie case {case_id} is still there after a trash and a permanent delete"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn delete_user_quietly(deskie: &DeskieClient, user_id: i64) -> Result<()> {
    match deskie.delete_user(user_id).await {
        Ok(()) | Err(DeskieError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
