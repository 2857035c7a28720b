//! Shared harness of the engine's end-to-end tests: a sandbox on 127.0.0.1:0, a temp store and
//! settings pointing at both, and the expected outcome computed from the generator's data with
//! the same pure mapping the loader uses.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use engine::config::{self, SecretOverrides, Settings};
use engine::mapping::{CasePlan, MapContext, Mapped, map_ticket};
use sandbox::{Sandbox, SandboxConfig};

/// A running sandbox with settings that point at it.
pub struct Harness {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub settings: Settings,
    pub config_text: String,
}

/// Mapping used by every end-to-end test: every channel kind, unmapped agents on purpose.
pub const MAPPING: &str = r#"
[mapping]
default_staff_id = 100
agents = { "72" = 101, "74" = 102, "75" = 103, "80" = 104 }
channels = { "default" = "email", "Phone" = "calls", "Web" = "custom:481", "WhatsApp" = "custom:482", "Facebook" = "skip" }
"#;

/// Starts a sandbox and builds settings whose rate limits equal the sandbox's.
pub async fn start(cfg: SandboxConfig, extra: &str) -> Harness {
    let window = cfg.window;
    let (d_limit, k_limit) = (cfg.desk360_limit, cfg.deskie_limit);
    let sandbox = Sandbox::start(cfg).await.expect("sandbox starts");
    let creds = sandbox.credentials();
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        r#"
[source]
base_url = "{d}"
token = "{token}"
rpm = {d_limit}
window_secs = {w}
timeout_secs = 5
[target]
base_url = "{k}"
staff_email = "{email}"
api_key = "{key}"
plan = "pro"
agents = 1000
rpm = {k_limit}
window_secs = {w}
timeout_secs = 5
source_id_field = "cf_900"
{MAPPING}
[store]
path = "{store}"
[run]
concurrency = 8
reconcile_settle_secs = 0.3
{attachments}
{extra}
"#,
        // The suites written before #12 check the urls mode; attachment tests choose theirs.
        attachments = if extra.contains("[attachments]") {
            ""
        } else {
            "[attachments]\nmode = \"urls\""
        },
        d = sandbox.desk360_url(),
        k = sandbox.deskie_url(),
        token = creds.desk360_token,
        email = creds.deskie_staff_email,
        key = creds.deskie_api_key,
        w = window.as_secs_f64(),
        store = dir.path().join("store.sqlite").display(),
    );
    let settings = config::parse(
        &text,
        &dir.path().join("c.toml"),
        SecretOverrides::default(),
    )
    .expect("valid settings");
    Harness {
        sandbox,
        dir,
        settings,
        config_text: text,
    }
}

/// What the generator's tickets should become, by ticket.
pub fn expected(h: &Harness) -> BTreeMap<(i64, i64), Mapped> {
    let ds = h.sandbox.dataset();
    let types = BTreeMap::new();
    let reasons = BTreeMap::new();
    let cx = MapContext {
        mapping: &h.settings.mapping,
        timezone: &h.settings.source.timezone,
        source_id_field: h.settings.target.source_id_field.as_deref(),
        type_titles: &types,
        reason_titles: &reasons,
        attachments: h.settings.attachments.mode,
        inline: h.settings.attachments.inline,
        source_base: &h.settings.source.base_url,
    };
    ds.tickets
        .iter()
        .map(|t| {
            let raw = t.detail.to_string();
            let d = desk360::TicketDetail::from_json(&raw, "t").expect("generated ticket parses");
            let m = d
                .to_model(t.product_id)
                .expect("generated ticket normalizes");
            ((t.product_id, t.ticket_id), map_ticket(&m.ticket, &cx).0)
        })
        .collect()
}

/// The Deskie writes the generator's tickets need: the create and every message of each case,
/// plus the final status updates sent as bulk updates of up to ten cases with the same values.
pub fn expected_writes(h: &Harness) -> u64 {
    let mut writes = 0u64;
    let mut groups: BTreeMap<String, u64> = BTreeMap::new();
    for mapped in expected(h).values() {
        if let Mapped::Case(plan) = mapped {
            writes += 1 + plan.steps.len() as u64;
            if let Some(u) = &plan.final_update {
                *groups.entry(serde_json::to_string(u).unwrap()).or_default() += 1;
            }
        }
    }
    writes + groups.values().map(|n| n.div_ceil(10)).sum::<u64>()
}

/// Asserts Deskie holds exactly one case per migrated ticket, with every message once, in order,
/// with its original time and author, notes present, final status right, nobody emailed.
pub fn assert_exact(h: &Harness) -> (usize, usize) {
    assert_exact_with(h, false)
}

/// [`assert_exact`] for a run with `inline = "rehost"`: a message's HTML is compared as text,
/// since the `src` of its inline images was changed on purpose (see
/// [`assert_no_desk360_links`] for that side).
pub fn assert_exact_rehosted(h: &Harness) -> (usize, usize) {
    assert_exact_with(h, true)
}

fn assert_exact_with(h: &Harness, rehosted: bool) -> (usize, usize) {
    let snap = h.sandbox.deskie_snapshot();
    assert_eq!(snap.customer_emailed, 0, "no customer may be emailed");
    let expected = expected(h);
    let mut cases = 0;
    let mut updates_needed = 0;
    for ((p, t), mapped) in &expected {
        let found = snap.cases_of(*p, *t);
        match mapped {
            Mapped::Case(plan) => {
                assert_eq!(
                    found.len(),
                    1,
                    "ticket {p}/{t}: expected exactly one case, found {}",
                    found.len()
                );
                check_case(found[0], plan, *p, *t, rehosted);
                cases += 1;
                if plan.final_update.is_some() {
                    updates_needed += 1;
                }
            }
            _ => assert!(found.is_empty(), "ticket {p}/{t} must not be migrated"),
        }
    }
    assert_eq!(snap.cases.len(), cases, "no stray cases");
    (cases, updates_needed)
}

fn check_case(case: &sandbox::CaseSnapshot, plan: &CasePlan, p: i64, t: i64, rehosted: bool) {
    let create = serde_json::to_value(&plan.create).unwrap();
    if plan.create.initiator_id.is_some() {
        assert_eq!(
            case.initiator_id, plan.create.initiator_id,
            "{p}/{t} initiator"
        );
        if plan.create.user_email.is_some() {
            assert_eq!(case.case_email_id, Some(-1), "{p}/{t} case_email_id");
        }
    }
    let want_status = plan
        .create
        .status
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "open".into());
    assert_eq!(case.status, want_status, "{p}/{t} final status");
    if let Some(pr) = plan.create.priority {
        assert_eq!(case.priority, pr.as_str(), "{p}/{t} priority");
    }
    // The first message plus every step, in order, once.
    // (time, note?, body, the note's author)
    let mut want: Vec<(String, bool, String, Option<i64>)> = vec![(
        create["created_at"].as_str().unwrap().to_string(),
        false,
        plan.create
            .content_html
            .clone()
            .or(plan.create.content.clone())
            .unwrap(),
        None,
    )];
    for s in &plan.steps {
        let author = match s {
            engine::mapping::Step::Note { note, .. } => Some(note.staff_id),
            _ => None,
        };
        want.push((
            deskie::format_timestamp(s.created_at()),
            s.is_note(),
            s.content().to_string(),
            author,
        ));
    }
    // Deskie lists a case's messages by time (ties in arrival order); notes are written after
    // the replies, so they interleave by time in its view.
    want.sort_by_key(|w| deskie::parse_timestamp(&w.0));
    let got: Vec<(String, bool, String, Option<i64>)> = case
        .messages
        .iter()
        .map(|m| {
            let body = if m.content_html.is_empty() {
                m.content.clone()
            } else {
                m.content_html.clone()
            };
            (
                m.created_at.clone(),
                m.note,
                body,
                m.note.then_some(m.staff_id),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "{p}/{t}: message count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.1, w.1, "{p}/{t} message {i} note flag");
        if rehosted {
            assert_eq!(
                engine::mapping::html_to_text(&g.2),
                engine::mapping::html_to_text(&w.2),
                "{p}/{t} message {i} content"
            );
        } else {
            assert_eq!(g.2, w.2, "{p}/{t} message {i} content");
        }
        assert_eq!(g.3, w.3, "{p}/{t} message {i}: the note's author");
        let gt = deskie::parse_timestamp(&g.0);
        let wt = deskie::parse_timestamp(&w.0);
        assert_eq!(gt, wt, "{p}/{t} message {i} time");
    }
}

/// A sandbox config with a short window and the given size.
pub fn small(
    tickets: usize,
    window_ms: u64,
    desk360_limit: u32,
    deskie_limit: u32,
) -> SandboxConfig {
    SandboxConfig {
        seed: 7,
        products: 3,
        tickets,
        window: Duration::from_millis(window_ms),
        desk360_limit,
        deskie_limit,
        ..SandboxConfig::default()
    }
}

/// The same sandbox under the pessimistic combination of readings of the vendor pages (Link
/// with only `page`, exact-only custom-field search, time filters ignored, an agent reply sets
/// `waiting`, the note author read from `note_staff_id` only).
pub fn pessimistic(mut cfg: SandboxConfig) -> SandboxConfig {
    cfg.readings = sandbox::Readings::pessimistic();
    cfg
}

/// Runs the engine to completion with a bound.
pub async fn run(settings: &Settings, options: engine::RunOptions) -> engine::RunSummary {
    let engine = engine::Engine::open(settings.clone())
        .await
        .expect("store opens");
    tokio::time::timeout(Duration::from_secs(240), engine.run(options))
        .await
        .expect("run finishes in time")
        .expect("run succeeds")
}

/// Every file of a ticket's messages in the generated account: (name, size, sha256), files
/// over Deskie's 25 MB left out (they are reported, not sent).
pub fn expected_files(h: &Harness, p: i64, t: i64) -> Vec<(String, u64, String)> {
    let ds = h.sandbox.dataset();
    let ticket = ds.ticket(p, t).unwrap();
    let mut out = Vec::new();
    for m in ticket.messages() {
        let Some(groups) = m["attachments"].as_object() else {
            continue;
        };
        for f in groups.values().filter_map(|g| g.as_array()).flatten() {
            let url = f["url"].as_str().unwrap();
            let size = ds.attachment_size(url).unwrap();
            if size > engine::mapping::MAX_FILE_BYTES {
                continue;
            }
            out.push((
                f["name"].as_str().unwrap().to_owned(),
                size,
                ds.attachment_sha256(url).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

/// The files Deskie holds for a ticket's case: (name, size, sha256), sorted.
pub fn files_in_deskie(h: &Harness, p: i64, t: i64) -> Vec<(String, u64, String)> {
    let snap = h.sandbox.deskie_snapshot();
    let mut got: Vec<(String, u64, String)> = snap
        .cases_of(p, t)
        .iter()
        .flat_map(|c| c.messages.iter())
        .flat_map(|m| m.files.iter())
        .map(|f| (f.name.clone(), f.size, f.sha256.clone()))
        .collect();
    got.sort();
    got
}

/// Asserts no migrated message (HTML or text) links to the Desk360 emulator's storage.
pub fn assert_no_desk360_links(h: &Harness) {
    let storage = format!("{}/attachments/", h.sandbox.desk360_url());
    for case in &h.sandbox.deskie_snapshot().cases {
        for m in &case.messages {
            for body in [&m.content_html, &m.content] {
                assert!(
                    !body.contains(&storage),
                    "case {} message {} still links to Desk360 storage: {body}",
                    case.case_id,
                    m.message_id
                );
            }
        }
    }
}

/// Shows the image file `src` inline in a new reply and a new note of ticket `(p, t)`; returns
/// the HTML.
pub fn add_inline_image(h: &Harness, p: i64, t: i64, src: &str) -> String {
    let html = format!(r#"<p>Look: <img src="{src}" alt="shot"> here</p>"#);
    h.sandbox.append_message(p, t, 0, false, &html).unwrap();
    h.sandbox.append_message(p, t, 74, true, &html).unwrap();
    html
}

/// Tickets with a file on the Desk360 API host (behind the token or public), with that file's
/// URL: the ones an inline image can be made of.
pub fn tickets_with_api_files(h: &Harness) -> Vec<(i64, i64, String)> {
    let ds = h.sandbox.dataset();
    ds.tickets
        .iter()
        .filter_map(|t| {
            t.messages()
                .iter()
                .flat_map(|m| m["attachments"].as_object().cloned().unwrap_or_default())
                .flat_map(|(_, g)| g.as_array().cloned().unwrap_or_default())
                .filter_map(|f| f["url"].as_str().map(str::to_owned))
                .find(|u| u.contains("/attachments/") && !u.contains("signature="))
                .map(|u| (t.product_id, t.ticket_id, u))
        })
        .collect()
}

/// A limiter of `limit` requests a `window`, for the clients a test builds by hand.
pub fn limiter(name: &'static str, limit: u32, window: Duration) -> throttle::Limiter {
    throttle::Limiter::new(throttle::LimiterConfig::new(name, limit, window))
}

/// A Deskie client of the sandbox's staff account, metered by `limiter`.
pub fn deskie_client(h: &Harness, limiter: throttle::Limiter) -> deskie::DeskieClient {
    let creds = h.sandbox.credentials();
    deskie::DeskieClient::new(
        deskie::DeskieConfig::new(
            h.settings.target.base_url.clone(),
            creds.deskie_staff_email,
            creds.deskie_api_key.into(),
        ),
        limiter,
    )
    .unwrap()
}

/// A Desk360 client of the sandbox signing in with `auth`, metered by `limiter`.
pub async fn desk360_client(
    h: &Harness,
    auth: desk360::Auth,
    limiter: throttle::Limiter,
) -> desk360::Desk360Client {
    let config = desk360::Desk360Config::new(h.settings.source.base_url.clone(), auth);
    desk360::Desk360Client::connect(config, limiter)
        .await
        .unwrap()
}

/// The sandbox's static Desk360 token.
pub fn token_auth(h: &Harness) -> desk360::Auth {
    desk360::Auth::Token(h.sandbox.credentials().desk360_token.into())
}

/// The sandbox's Desk360 login (email and password).
pub fn login_auth(h: &Harness) -> desk360::Auth {
    let creds = h.sandbox.credentials();
    desk360::Auth::Login {
        email: creds.desk360_email,
        password: creds.desk360_password.into(),
    }
}

/// A dry run to completion.
pub async fn dry_run(settings: &Settings) -> engine::RunSummary {
    let options = engine::RunOptions {
        dry_run: true,
        ..engine::RunOptions::default()
    };
    run(settings, options).await
}

/// The first ticket `cfg` generates (the dataset is deterministic): the one a test gives large
/// files through `AttachmentSetup::large` before the sandbox starts.
pub fn first_ticket(cfg: &SandboxConfig) -> (i64, i64) {
    let first = &sandbox::generate(cfg.seed, cfg.products, cfg.tickets).tickets[0];
    (first.product_id, first.ticket_id)
}

/// A run to completion in which no ticket fails.
pub async fn run_without_failures(h: &Harness) -> engine::RunSummary {
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    summary
}
