//! Crash loop of the real binary: `deskie-import run` is SIGKILLed again and again, at points
//! spread over every stage (listing and extraction, loading, final updates), each kill decided by
//! progress observed in the sandbox's journal — never by wall-clock sleeps. After every kill the
//! store must pass `PRAGMA integrity_check`; then a last run finishes and a Jepsen-style check
//! compares the sandbox's Deskie with the Desk360 source through the generator's
//! `ref:p<product>t<ticket>m<index>` markers, independently of the program's own mapping:
//! - lost: a source ticket without a case, a source message without a Deskie message;
//! - duplicated: two cases for one ticket, one source message in two Deskie messages;
//! - unexpected: a case or message in Deskie that no source ticket or message accounts for.
//!
//! All three must be empty. The sandbox loses 3 % of the write responses (applied, then the
//! connection drops), so kills also land next to writes of unknown outcome.
//!
//! Short by default (24 kills, well under CI's budget); `DESKIE_CRASH_LOOP_KILLS=200` runs a long
//! one. The kill points per stage are printed (`--nocapture` shows them).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{
    ConfigSpec, failed_keys, not_skipped, path_arg, show, signal, spawn_bin, start_sandbox,
    status_json, wait_child, write_config,
};
use sandbox::{Faults, JournalEntry, Sandbox, SandboxConfig, Server};

/// Kills of the default (CI) loop; the environment variable overrides it.
const DEFAULT_KILLS: usize = 24;
const KILLS_ENV: &str = "DESKIE_CRASH_LOOP_KILLS";

/// Bound of one killed run's wait for its kill point, and of the final runs.
const RUN_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Desk360 list pages and ticket details.
    Extraction,
    /// Deskie case creations and messages.
    Loading,
    /// Deskie final status/priority updates.
    FinalUpdates,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Extraction, Stage::Loading, Stage::FinalUpdates];

    fn name(self) -> &'static str {
        match self {
            Stage::Extraction => "listing/extraction",
            Stage::Loading => "loading",
            Stage::FinalUpdates => "final updates",
        }
    }

    /// The stage a journal entry is progress of, if any.
    fn of(e: &JournalEntry) -> Option<Stage> {
        match (e.server, e.method.as_str()) {
            (Server::Desk360, "GET") if e.path.contains("/tickets") && e.status == 200 => {
                Some(Stage::Extraction)
            }
            (Server::Deskie, "POST") => Some(Stage::Loading),
            (Server::Deskie, "PUT") => Some(Stage::FinalUpdates),
            _ => None,
        }
    }
}

fn kills_wanted() -> usize {
    std::env::var(KILLS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_KILLS)
}

fn spawn_run(config: &Path) -> Child {
    spawn_bin(&["run", "--quiet", "--config", &path_arg(config)])
}

/// The config of both loops: every channel goes to custom channel 481 (which needs an email or
/// a phone to identify the user) except Facebook, which is skipped; `sections` follow `[run]`.
fn write_loop_config(
    dir: &Path,
    sandbox: &Sandbox,
    sections: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let store_path = dir.join("store.sqlite");
    let store = path_arg(&store_path);
    let rest =
        format!("[run]\nconcurrency = 8\nmax_retries = 3\nreconcile_settle_secs = 0.5\n{sections}");
    let spec = ConfigSpec {
        api_key: None,
        token: None,
        mapping: concat!(
            r#"agents = { "72" = 101, "74" = 102, "75" = 103 }"#,
            "\n",
            r#"channels = { "default" = "custom:481", "Facebook" = "skip" }"#
        ),
        store: &store,
        rest: &rest,
    };
    let config = write_config(&dir.join("deskie-import.toml"), sandbox, &spec);
    (config, store_path)
}

/// Progress of one run per stage, from the journal (cleared before each run).
fn progress(sb: &Sandbox) -> BTreeMap<Stage, usize> {
    let mut counts = BTreeMap::new();
    for e in sb.journal() {
        if let Some(stage) = Stage::of(&e) {
            *counts.entry(stage).or_insert(0) += 1;
        }
    }
    counts
}

/// Opens the store after a kill and runs `PRAGMA integrity_check`.
async fn integrity(store_path: &Path) -> Vec<String> {
    engine::status::check_store_file(store_path).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loop_over_every_stage_loses_and_duplicates_nothing() {
    let kills = kills_wanted();
    let sandbox = start_sandbox(SandboxConfig {
        seed: 23,
        products: 2,
        // Enough work that the loop does not run out of it before its last kill.
        tickets: (kills * 10).clamp(240, 4000),
        window: Duration::from_secs(1),
        // Extraction slow enough that several kills land in it.
        desk360_limit: 40,
        deskie_limit: 1500,
        latency: Duration::from_millis(4),
        jitter: Duration::from_millis(2),
        faults: Faults {
            drop_after_commit_rate: 0.03,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (config, store_path) = write_loop_config(dir.path(), &sandbox, "");

    // The kill loop: kill i aims at stage i mod 3 after a few of its requests (1..=5, varied);
    // when that stage is over (extraction finished, say), another stage's progress decides.
    let mut points: Vec<(Stage, usize)> = Vec::new();
    let mut finished_early = 0;
    let mut i = 0;
    while points.len() < kills {
        // The last kills go to a stage no kill has reached yet (final updates wait for groups
        // of cases to fill, so a short run can end every time before its first one), without
        // letting another stage's progress decide.
        let missing = Stage::ALL
            .into_iter()
            .find(|stage| !points.iter().any(|(s, _)| s == stage));
        let (aim, insist) = match missing {
            Some(stage) if kills - points.len() <= 3 => (stage, true),
            _ => (Stage::ALL[i % 3], false),
        };
        let after = 1 + (i * 7) % 5;
        i += 1;
        sandbox.clear_journal();
        let child = spawn_run(&config);
        let pid = child.id();
        let start = Instant::now();
        let mut child = Some(child);
        let killed_at = loop {
            let seen = progress(&sandbox);
            let aimed = seen.get(&aim).copied().unwrap_or(0);
            let (busiest, most) = seen
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(s, n)| (*s, *n))
                .unwrap_or((aim, 0));
            if aimed >= after {
                break Some((aim, aimed));
            }
            // Final updates go out in bulk (≤ 10 cases a request) once enough cases wait for
            // the same status: give that stage more patience before another stage decides.
            let patience = if aim == Stage::FinalUpdates { 60 } else { 12 };
            if !insist && most >= patience + after {
                break Some((busiest, most));
            }
            let c = child.as_mut().unwrap();
            if c.try_wait().unwrap().is_some() {
                break None;
            }
            assert!(start.elapsed() < RUN_LIMIT, "run {i} made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let child = child.take().unwrap();
        match killed_at {
            Some(point) => {
                signal(pid, "-KILL");
                let out = wait_child(child, Duration::from_secs(30)).await;
                if out.status.code().is_some() {
                    // It ended on its own just before the signal (a zombie takes it quietly).
                    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", show(&out));
                    finished_early += 1;
                    break;
                }
                points.push(point);
            }
            None => {
                // The migration finished between two polls: nothing left to kill.
                let out = wait_child(child, Duration::from_secs(30)).await;
                assert!(
                    matches!(out.status.code(), Some(0 | 3)),
                    "{}\nkills so far {points:?}",
                    show(&out)
                );
                finished_early += 1;
                break;
            }
        }
        let report = integrity(&store_path).await;
        assert_eq!(report, vec!["ok"], "integrity after kill {}", points.len());
    }

    // Tickets with neither an email nor a phone cannot be routed anywhere: the source says so,
    // they fail with a mapping reason every time and must never reach Deskie.
    let ds = sandbox.dataset();
    let has = |t: &sandbox::TicketData, field: &str| {
        t.detail[field]
            .as_str()
            .is_some_and(|v| !v.trim().is_empty())
    };
    let unroutable: BTreeSet<(i64, i64)> = ds
        .tickets
        .iter()
        .filter(|t| not_skipped(t))
        .filter(|t| !has(t, "email") && !has(t, "phone"))
        .map(|t| (t.product_id, t.ticket_id))
        .collect();

    // A last run (or a few, if a lost response left a transient failure) finishes: exit 0, or
    // 3 with exactly the unroutable tickets failed.
    let mut last = None;
    for _ in 0..3 {
        sandbox.clear_journal();
        let out = wait_child(spawn_run(&config), RUN_LIMIT).await;
        let status = status_json(&path_arg(&config)).await;
        let failed = failed_keys(&status);
        let want = if unroutable.is_empty() { 0 } else { 3 };
        let done = out.status.code() == Some(want) && failed == unroutable;
        last = Some((out, status));
        if done {
            break;
        }
    }
    let (last, status) = last.unwrap();
    let want = if unroutable.is_empty() { 0 } else { 3 };
    assert_eq!(
        last.status.code(),
        Some(want),
        "{}\n{status:#}\nkills {points:?}",
        show(&last)
    );
    // Exit 3 also means "something is left": only the unroutable tickets may have failed.
    assert_eq!(
        failed_keys(&status),
        unroutable,
        "only the unroutable tickets fail\n{status:#}\nkills {points:?}"
    );
    assert_eq!(integrity(&store_path).await, vec!["ok"]);

    // Jepsen-style check of Deskie against the source.
    let snap = sandbox.deskie_snapshot();
    assert_eq!(snap.customer_emailed, 0, "no customer may be emailed");
    let migratable: BTreeMap<(i64, i64), usize> = ds
        .tickets
        .iter()
        .filter(|t| not_skipped(t))
        .filter(|t| !unroutable.contains(&(t.product_id, t.ticket_id)))
        .map(|t| ((t.product_id, t.ticket_id), t.messages().len()))
        .collect();
    let mut lost: Vec<String> = Vec::new();
    let mut duplicated: Vec<String> = Vec::new();
    let mut unexpected: Vec<String> = Vec::new();
    let mut written: BTreeMap<(i64, i64, usize), usize> = BTreeMap::new();
    for case in &snap.cases {
        let Some(key) = case.source_ticket.filter(|k| migratable.contains_key(k)) else {
            unexpected.push(format!("case {} ({:?})", case.case_id, case.source_ticket));
            continue;
        };
        for m in &case.messages {
            let refs: BTreeSet<(i64, i64, usize)> = sandbox::parse_refs(&m.content_html)
                .into_iter()
                .chain(sandbox::parse_refs(&m.content))
                .collect();
            if refs.is_empty() {
                unexpected.push(format!("message {} of case {}", m.message_id, case.case_id));
            }
            for r in refs {
                if (r.0, r.1) != key || r.2 >= migratable[&key] {
                    unexpected.push(format!(
                        "message {} of case {} carries {r:?}",
                        m.message_id, case.case_id
                    ));
                } else {
                    *written.entry(r).or_insert(0) += 1;
                }
            }
        }
    }
    for (&(p, t), &messages) in &migratable {
        match snap.cases_of(p, t).len() {
            0 => lost.push(format!("ticket {p}/{t}")),
            1 => {}
            n => duplicated.push(format!("ticket {p}/{t}: {n} cases")),
        }
        for m in 0..messages {
            match written.get(&(p, t, m)).copied().unwrap_or(0) {
                0 => lost.push(format!("message {p}/{t}#{m}")),
                1 => {}
                n => duplicated.push(format!("message {p}/{t}#{m} written {n} times")),
            }
        }
    }
    for stage in Stage::ALL {
        let at: Vec<usize> = points
            .iter()
            .filter(|(s, _)| *s == stage)
            .map(|(_, n)| *n)
            .collect();
        println!(
            "kills during {}: {} (after {:?} of its requests)",
            stage.name(),
            at.len(),
            at
        );
    }
    println!(
        "{} kills, {} runs finished on their own; {} tickets ({} unroutable by the source), {} \
         messages checked: lost {}, duplicated {}, unexpected {}",
        points.len(),
        finished_early,
        migratable.len(),
        unroutable.len(),
        written.len(),
        lost.len(),
        duplicated.len(),
        unexpected.len()
    );
    if !(lost.is_empty() && duplicated.is_empty() && unexpected.is_empty()) {
        // Keep the store and the run logs for the post-mortem.
        let kept = dir.keep();
        println!("store and logs kept in {}", kept.display());
    }
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
    assert!(
        points.len() >= kills.min(20),
        "at least 20 kills: {points:?}"
    );
    for stage in Stage::ALL {
        assert!(
            points.iter().any(|(s, _)| *s == stage),
            "a kill during {}: {points:?}",
            stage.name()
        );
    }
}

/// Files of a generated ticket as `(name, size, sha256)`, those over Deskie's 25 MB a file left
/// out (reported, never sent).
fn source_files(ds: &sandbox::Dataset, t: &sandbox::TicketData) -> Vec<(String, u64, String)> {
    const MAX_FILE_BYTES: u64 = 25 * 1024 * 1024;
    let mut out = Vec::new();
    for m in t.messages() {
        let Some(groups) = m["attachments"].as_object() else {
            continue;
        };
        for f in groups.values().filter_map(|g| g.as_array()).flatten() {
            let url = f["url"].as_str().unwrap();
            let size = ds.attachment_size(url).unwrap();
            if size <= MAX_FILE_BYTES {
                let name = f["name"].as_str().unwrap().to_owned();
                out.push((name, size, ds.attachment_sha256(url).unwrap()));
            }
        }
    }
    out
}

/// `[attachments] mode = "upload"` with `inline = "rehost"`, SIGKILLed a few times while files
/// stream from Desk360 into Deskie and inline images are re-pointed (`DESKIE_CRASH_LOOP_KILLS`
/// raises it: one kill here per four of the main loop, at least three): afterwards every file
/// is in Deskie exactly once with its size and checksum (inline images once per message that
/// shows them), no message is there twice, and no message links to Desk360 storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loop_while_uploading_files_and_rehosting_keeps_every_file_once() {
    let kills = (kills_wanted() / 4).max(3);
    let sandbox = start_sandbox(SandboxConfig {
        seed: 29,
        products: 2,
        tickets: 40,
        window: Duration::from_secs(1),
        desk360_limit: 1000,
        deskie_limit: 1500,
        latency: Duration::from_millis(4),
        attachments: sandbox::AttachmentSetup {
            behind_token_share: 0.3,
            signed_share: 0.2,
            ..sandbox::AttachmentSetup::default()
        },
        faults: Faults {
            drop_after_commit_rate: 0.03,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    // Inline images: a file of the ticket on the Desk360 API host, shown in a new reply and a
    // new note of four tickets.
    let storage = format!("{}/attachments/", sandbox.desk360_url());
    let mut inline: BTreeMap<(i64, i64), String> = BTreeMap::new();
    for t in sandbox.dataset().tickets.iter() {
        let reachable = ["email", "phone"]
            .iter()
            .any(|f| t.detail[*f].as_str().is_some_and(|v| !v.trim().is_empty()))
            && not_skipped(t);
        if !reachable {
            continue;
        }
        let src = t
            .messages()
            .iter()
            .flat_map(|m| m["attachments"].as_object().cloned().unwrap_or_default())
            .flat_map(|(_, g)| g.as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["url"].as_str().map(str::to_owned))
            .find(|u| u.starts_with(&storage) && !u.contains("signature="));
        if let Some(src) = src
            && inline.len() < 4
        {
            inline.insert((t.product_id, t.ticket_id), src);
        }
    }
    for ((p, t), src) in &inline {
        let html = format!(r#"<p>Look: <img src="{src}" alt="shot"> here</p>"#);
        sandbox.append_message(*p, *t, 0, false, &html).unwrap();
        sandbox.append_message(*p, *t, 74, true, &html).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let attachments = "[attachments]\nmode = \"upload\"\ninline = \"rehost\"\n";
    let (config, store_path) = write_loop_config(dir.path(), &sandbox, attachments);

    // Kill after a varying number of Deskie writes (file uploads, edits, updates) of each run.
    let mut done_kills = 0;
    while done_kills < kills {
        sandbox.clear_journal();
        let after = 6 + (done_kills * 5) % 9;
        let child = spawn_run(&config);
        let pid = child.id();
        let mut child = Some(child);
        let start = Instant::now();
        let kill = loop {
            let writes = sandbox
                .journal()
                .iter()
                .filter(|e| e.server == Server::Deskie && e.method != "GET")
                .count();
            if writes >= after {
                break true;
            }
            if child.as_mut().unwrap().try_wait().unwrap().is_some() {
                break false;
            }
            assert!(start.elapsed() < RUN_LIMIT, "a run made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let child = child.take().unwrap();
        if kill {
            signal(pid, "-KILL");
        }
        let out = wait_child(child, Duration::from_secs(30)).await;
        if out.status.code().is_some() {
            assert!(matches!(out.status.code(), Some(0 | 3)), "{}", show(&out));
            break;
        }
        done_kills += 1;
        let report = integrity(&store_path).await;
        assert_eq!(report, vec!["ok"], "integrity after kill {done_kills}");
    }
    for _ in 0..3 {
        let out = wait_child(spawn_run(&config), RUN_LIMIT).await;
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", show(&out));
        if out.status.code() == Some(0) {
            break;
        }
    }
    eprintln!("attachment crash loop: {done_kills} kills");
    assert!(done_kills >= 2, "killed {done_kills} times");

    let ds = sandbox.dataset();
    let snap = sandbox.deskie_snapshot();
    let mut migrated = 0;
    let mut files_checked = 0;
    for t in &ds.tickets {
        let cases = snap.cases_of(t.product_id, t.ticket_id);
        assert!(
            cases.len() <= 1,
            "ticket {}/{}: {} cases",
            t.product_id,
            t.ticket_id,
            cases.len()
        );
        let Some(case) = cases.first() else { continue };
        migrated += 1;
        let mut want = source_files(&ds, t);
        if let Some(src) = inline.get(&(t.product_id, t.ticket_id)) {
            let name = src.rsplit('/').next().unwrap().to_owned();
            let file = (
                name,
                ds.attachment_size(src).unwrap(),
                ds.attachment_sha256(src).unwrap(),
            );
            want.push(file.clone());
            want.push(file);
        }
        want.sort();
        let mut got: Vec<(String, u64, String)> = case
            .messages
            .iter()
            .flat_map(|m| m.files.iter())
            .map(|f| (f.name.clone(), f.size, f.sha256.clone()))
            .collect();
        got.sort();
        let messages: Vec<String> = case
            .messages
            .iter()
            .map(|m| {
                let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
                format!(
                    "#{} note={} at={} files={names:?} text={:?}",
                    m.message_id,
                    m.note,
                    m.created_at,
                    m.content.chars().take(40).collect::<String>()
                )
            })
            .collect();
        assert_eq!(
            got,
            want,
            "ticket {}/{}: files; the case's messages:\n{}",
            t.product_id,
            t.ticket_id,
            messages.join("\n")
        );
        files_checked += got.len();
        let mut seen = BTreeSet::new();
        for m in &case.messages {
            for body in [&m.content_html, &m.content] {
                assert!(
                    !body.contains(&storage),
                    "ticket {}/{} message {} links Desk360 storage: {body}",
                    t.product_id,
                    t.ticket_id,
                    m.message_id
                );
            }
            let key = (
                m.note,
                m.created_at.clone(),
                m.content.clone(),
                m.content_html.clone(),
            );
            assert!(
                seen.insert(key),
                "ticket {}/{}: message {} is there twice",
                t.product_id,
                t.ticket_id,
                m.message_id
            );
        }
    }
    assert!(
        migrated * 2 > ds.tickets.len(),
        "{migrated} tickets migrated"
    );
    assert!(files_checked >= 20, "{files_checked} files checked");
    assert!(
        inline.len() >= 2,
        "inline images on {} tickets",
        inline.len()
    );
}
