//! Mapping rules, one recipe case per test.

use super::*;
use crate::config::{self, SecretOverrides};
use model::{Attachment, AttachmentKind, TicketKey};

fn settings(extra: &str) -> config::Settings {
    // The recipe tests below are about the urls mode; upload-mode tests say so in `extra`.
    let attachments = if extra.contains("[attachments]") {
        ""
    } else {
        "[attachments]\nmode = \"urls\""
    };
    let text = format!(
        r#"
[source]
token = "t"
timezone = "Europe/Istanbul"
[target]
base_url = "https://acme.deskie.io"
staff_email = "a@acme.example"
api_key = "k"
source_id_field = "cf_900"
[mapping]
default_staff_id = 100
agents = {{ "74" = 101 }}
types = {{ "3" = 501 }}
reason_field = "cf_901"
channels = {{ "default" = "email", "Phone" = "calls", "Web" = "custom:481", "Facebook" = "skip" }}
{extra}
{attachments}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    config::parse(
        &text,
        &dir.path().join("c.toml"),
        SecretOverrides::default(),
    )
    .unwrap()
}

fn at(s: &str) -> model::SourceTime {
    s.parse().unwrap()
}

/// A customer's reply.
fn customer(id: i64, body: &str, t: &str) -> Message {
    msg(id, Author::Customer, MessageKind::Reply, body, t)
}

/// A reply of agent `agent`.
fn agent(id: i64, agent: i64, body: &str, t: &str) -> Message {
    msg(id, Author::Agent(agent), MessageKind::Reply, body, t)
}

/// An internal note of agent `agent`.
fn note(id: i64, agent: i64, body: &str, t: &str) -> Message {
    msg(id, Author::Agent(agent), MessageKind::Note, body, t)
}

fn msg(id: i64, author: Author, kind: MessageKind, body: &str, t: &str) -> Message {
    Message {
        id,
        author,
        kind,
        body: body.to_string(),
        created_at: at(t),
        attachments: vec![],
    }
}

fn ticket(channel: &str, messages: Vec<Message>) -> Ticket {
    Ticket {
        key: TicketKey::new(1, 42),
        subject: Some("Refund".into()),
        customer_name: Some("Ada".into()),
        customer_email: Some("ada@example.com".into()),
        customer_phone: Some("+90 555 123 4567".into()),
        channel: Some(channel.into()),
        platform: None,
        status: Some(1),
        priority: Some(3),
        agent_id: Some(74),
        type_id: Some(3),
        reason_id: Some(5),
        created_at: at("2021-01-02T10:00:00"),
        updated_at: "2021-01-03 10:00:00".into(),
        messages,
    }
}

fn map(t: &Ticket, s: &config::Settings) -> (Mapped, Vec<Warning>) {
    let types = BTreeMap::new();
    let reasons: BTreeMap<i64, String> = [(5, "Billing".to_string())].into_iter().collect();
    let cx = MapContext {
        mapping: &s.mapping,
        timezone: &s.source.timezone,
        source_id_field: s.target.source_id_field.as_deref(),
        type_titles: &types,
        reason_titles: &reasons,
        attachments: s.attachments.mode,
        inline: s.attachments.inline,
        source_base: &s.source.base_url,
    };
    map_ticket(t, &cx)
}

/// The create request as the API receives it.
fn create_json(p: &CasePlan) -> serde_json::Value {
    serde_json::to_value(&p.create).unwrap()
}

fn plan(m: Mapped) -> CasePlan {
    match m {
        Mapped::Case(p) => *p,
        other => panic!("expected a case, got {other:?}"),
    }
}

#[test]
fn customer_initiated_email_case_follows_the_recipe() {
    let s = settings("");
    let t = ticket(
        "Email",
        vec![
            customer(1, "<p>Hi</p>", "2021-01-02 10:00:00"),
            agent(2, 74, "<p>Hello</p>", "2021-01-02 11:00:00"),
            note(3, 99, "internal", "2021-01-02 11:30:00"),
            customer(4, "thanks", "2021-01-02 12:00:00"),
        ],
    );
    let (m, w) = map(&t, &s);
    let p = plan(m);
    let create = create_json(&p);
    assert_eq!(create["user_email"], "ada@example.com");
    assert_eq!(create["subject"], "Refund");
    assert_eq!(create["content_html"], "<p>Hi</p>");
    // 10:00 in Istanbul (+03:00) is 07:00 UTC.
    assert_eq!(create["created_at"], "Sat, 02 Jan 2021 07:00:00 +0000");
    assert!(create.get("initiator_id").is_none());
    assert!(create.get("case_email_id").is_none());
    assert_eq!(create["staff_id"], 101);
    assert_eq!(create["status"], "closed");
    assert_eq!(create["priority"], "critical");
    assert_eq!(create["custom_fields"]["cf_900"], "desk360:1:42;");
    assert_eq!(create["custom_fields"]["cf_901"], "Billing");
    assert_eq!(create["labels"], serde_json::json!([501]));
    assert_eq!(create["do_not_send_email"], true);
    // Replies in order, the note last.
    let names: Vec<_> = p.steps.iter().map(Step::intent_name).collect();
    assert_eq!(names, ["message:2", "message:4", "note:3"]);
    let agent = p.steps[0].message_for(7).unwrap();
    let agent = serde_json::to_value(&agent).unwrap();
    assert_eq!(agent["staff_id"], 101);
    assert_eq!(agent["do_not_send_email"], true);
    assert!(agent.get("user_id").is_none());
    let customer = serde_json::to_value(p.steps[1].message_for(7).unwrap()).unwrap();
    assert_eq!(customer["user_id"], 7);
    assert!(customer.get("staff_id").is_none());
    // The note's unmapped agent falls back to the default staff id, with a warning.
    match &p.steps[2] {
        Step::Note { note, .. } => assert_eq!(note.staff_id, 100),
        other => panic!("{other:?}"),
    }
    assert!(w.contains(&Warning::UnmappedAgent { agent_id: 99 }));
    // A customer message after the create may reopen the case: one final update to closed.
    assert_eq!(
        p.final_update.as_ref().and_then(|u| u.status),
        Some(CaseStatus::Closed)
    );
    assert_eq!(p.writes(), 5);
}

#[test]
fn agent_initiated_email_case_has_initiator_and_case_email_id() {
    let s = settings("");
    let t = ticket(
        "Email",
        vec![agent(1, 74, "We noticed…", "2021-01-02 10:00:00")],
    );
    let p = plan(map(&t, &s).0);
    let create = create_json(&p);
    assert_eq!(create["initiator_id"], 101);
    assert_eq!(create["case_email_id"], -1);
    assert!(p.steps.is_empty());
    assert!(
        p.final_update.is_none(),
        "no later message: the create's status stands"
    );
}

#[test]
fn calls_get_plain_text_and_phone() {
    let s = settings("");
    let t = ticket(
        "Phone",
        vec![
            customer(
                1,
                "<p>Line&nbsp;one<br>two &amp; three</p>",
                "2021-01-02 10:00:00",
            ),
            agent(2, 74, "<b>ok</b>", "2021-01-02 10:05:00"),
        ],
    );
    let p = plan(map(&t, &s).0);
    let create = create_json(&p);
    assert_eq!(create["user_phone"], "+90 555 123 4567");
    assert_eq!(create["content"], "Line one\ntwo & three");
    assert!(create.get("content_html").is_none());
    assert!(create.get("user_email").is_none());
    let m = serde_json::to_value(p.steps[0].message_for(1).unwrap()).unwrap();
    assert_eq!(m["content"], "ok");
}

#[test]
fn custom_channel_uses_user_custom_id_and_channel() {
    let s = settings("");
    let t = ticket("Web", vec![customer(1, "hi", "2021-01-02 10:00:00")]);
    let p = plan(map(&t, &s).0);
    let create = create_json(&p);
    assert_eq!(create["user_custom_id"], "ada@example.com");
    assert_eq!(create["user_custom_channel"], "481");
    assert_eq!(create["content_html"], "hi");
}

#[test]
fn a_ticket_without_email_is_unroutable_with_a_fix() {
    let s = settings("");
    let mut t = ticket("Email", vec![customer(1, "hi", "2021-01-02 10:00:00")]);
    t.customer_email = None;
    match map(&t, &s).0 {
        Mapped::Unroutable { route, reason } => {
            assert_eq!(route, ChannelRoute::Email);
            assert!(reason.contains("[mapping.channels]"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn skip_and_only_notes() {
    let s = settings("");
    let t = ticket("Facebook", vec![customer(1, "hi", "2021-01-02 10:00:00")]);
    assert_eq!(
        map(&t, &s).0,
        Mapped::Skipped {
            channel: "Facebook".into()
        }
    );
    let t = ticket("Email", vec![note(1, 74, "n", "2021-01-02 10:00:00")]);
    assert!(matches!(map(&t, &s).0, Mapped::Unroutable { .. }));
}

#[test]
fn null_subject_is_derived_from_the_first_message() {
    let s = settings("");
    let mut t = ticket(
        "Email",
        vec![customer(
            1,
            "<p>  My app 🚀 crashes</p><p>details</p>",
            "2021-01-02 10:00:00",
        )],
    );
    t.subject = None;
    let (m, w) = map(&t, &s);
    assert_eq!(plan(m).create.subject, "My app 🚀 crashes");
    assert!(
        w.iter()
            .any(|w| matches!(w, Warning::DerivedSubject { .. }))
    );
    t.messages[0].body = "<p> </p>".into();
    assert_eq!(plan(map(&t, &s).0).create.subject, "Desk360 ticket #42");
}

#[test]
fn equal_timestamps_keep_source_order_by_id() {
    let s = settings("");
    let t = ticket(
        "Email",
        vec![
            customer(5, "c", "2021-01-02 10:00:01"),
            customer(3, "a", "2021-01-02 10:00:00"),
            agent(4, 74, "b", "2021-01-02 10:00:01"),
        ],
    );
    let p = plan(map(&t, &s).0);
    assert_eq!(p.first_message_id, 3);
    let ids: Vec<_> = p.steps.iter().map(Step::source_id).collect();
    assert_eq!(ids, [4, 5]);
}

#[test]
fn every_reply_after_the_create_gets_the_final_status() {
    // What a reply does to the status is not documented (a customer reply may reopen the case,
    // an agent reply may set it waiting): any reply after the create makes the status uncertain.
    let s = settings("");
    let mut t = ticket(
        "Email",
        vec![
            customer(1, "a", "2021-01-02 10:00:00"),
            customer(2, "b", "2021-01-02 10:00:05"),
        ],
    );
    t.status = Some(0);
    assert_eq!(
        plan(map(&t, &s).0).final_update.and_then(|u| u.status),
        Some(CaseStatus::Open)
    );
    t.status = Some(1);
    t.messages[1].author = Author::Agent(74);
    assert_eq!(
        plan(map(&t, &s).0).final_update.and_then(|u| u.status),
        Some(CaseStatus::Closed)
    );
    // A note does not touch the status: no update after notes only.
    t.messages[1].kind = MessageKind::Note;
    assert!(plan(map(&t, &s).0).final_update.is_none());
}

#[test]
fn oversized_attachments_are_reported_not_sent() {
    let s = settings("");
    let mut first = customer(1, "files", "2021-01-02 10:00:00");
    let file = |name: &str, mb: u64| Attachment {
        url: format!("https://files.example/{name}"),
        name: name.into(),
        kind: AttachmentKind::File,
        size: Some(mb * 1024 * 1024),
    };
    first.attachments = vec![
        file("a.pdf", 20),
        file("huge.mov", 30),
        file("b.pdf", 20),
        file("c.pdf", 20),
    ];
    let t = ticket("Email", vec![first]);
    let (m, w) = map(&t, &s);
    let p = plan(m);
    assert_eq!(
        p.create.attachment_urls,
        ["https://files.example/a.pdf", "https://files.example/b.pdf"]
    );
    let too_large: Vec<_> = w
        .iter()
        .filter_map(|w| match w {
            Warning::AttachmentTooLarge { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(too_large, ["huge.mov", "c.pdf"]);
}

#[test]
fn dst_gap_does_not_fail() {
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    // 2021-03-28 02:30 does not exist in Berlin.
    let ts = to_timestamp(at("2021-03-28T02:30:00"), &tz);
    assert_eq!(ts.to_string(), "2021-03-28T01:30:00Z");
}

#[test]
fn an_explicit_offset_is_kept_whatever_the_configured_zone() {
    // source.timezone is Istanbul (+03:00); these values carry their own offsets.
    let s = settings("");
    let t = ticket(
        "Email",
        vec![
            customer(1, "<p>Hi</p>", "2021-01-17 15:58:41+05:00"),
            agent(2, 74, "<p>Hello</p>", "2021-01-17T12:00:00Z"),
        ],
    );
    let p = plan(map(&t, &s).0);
    let create = create_json(&p);
    assert_eq!(create["created_at"], "Sun, 17 Jan 2021 10:58:41 +0000");
    assert_eq!(p.steps[0].created_at().to_string(), "2021-01-17T12:00:00Z");
    for zone in ["UTC", "America/New_York", "Asia/Tokyo"] {
        let tz = TimeZone::get(zone).unwrap();
        assert_eq!(
            to_timestamp(at("2021-01-17 15:58:41+0300"), &tz).to_string(),
            "2021-01-17T12:58:41Z"
        );
    }
}

#[test]
fn naive_and_exact_times_are_ordered_by_instant() {
    // 14:00 naive in Istanbul is 11:00Z, after 10:30Z though it reads earlier than 13:30+03.
    let s = settings("");
    let t = ticket(
        "Email",
        vec![
            customer(1, "a", "2021-01-02 10:00:00"),
            customer(2, "c", "2021-01-02 14:00:00"),
            agent(3, 74, "b", "2021-01-02T10:30:00Z"),
        ],
    );
    let p = plan(map(&t, &s).0);
    let ids: Vec<_> = p.steps.iter().map(Step::source_id).collect();
    assert_eq!(ids, [3, 2]);
}

#[test]
fn html_to_text_is_readable() {
    assert_eq!(
        html_to_text("<div>a</div><div>b &lt;c&gt; &#128512; &#x1F600;</div>"),
        "a\nb <c> 😀 😀"
    );
    assert_eq!(html_to_text("x < y & z"), "x < y & z");
}

/// A real email body: a head with a stylesheet, a tracking script and a comment before the text.
const EMAIL_BODY: &str = "<!DOCTYPE html><html><head><title>Mail</title>\
<style>p { color: red; } .x::before { content: 'styled'; }</style>\
<script>var track = 'script text';</script></head>\
<body><!-- Outlook conditional comment --><style>td { padding: 0 }</style>\
<p>Printer &amp; scanner <b>offline</b></p><script>alert('late script')</script>\
<p>Since <a href=\"https://x.example\">yesterday</a>.</p></body></html>";

#[test]
fn style_script_and_comments_never_reach_the_text() {
    let text = html_to_text(EMAIL_BODY);
    assert_eq!(text, "Printer & scanner offline\n\nSince yesterday.");
    for hidden in [
        "color", "padding", "styled", "track", "script", "Outlook", "Mail",
    ] {
        assert!(!text.contains(hidden), "{hidden:?} leaked into {text:?}");
    }
}

#[test]
fn a_derived_subject_skips_style_script_and_comments() {
    assert_eq!(derive_subject(EMAIL_BODY, 7), "Printer & scanner offline");
    let only_hidden = "<style>p{}</style><script>x()</script><!-- note -->";
    assert_eq!(derive_subject(only_hidden, 7), "Desk360 ticket #7");
}

#[test]
fn a_calls_message_from_html_mail_carries_only_the_visible_text() {
    let s = settings("");
    let t = ticket(
        "Phone",
        vec![customer(1, EMAIL_BODY, "2021-01-02 10:00:00")],
    );
    let p = plan(map(&t, &s).0);
    let create = create_json(&p);
    assert_eq!(
        create["content"],
        "Printer & scanner offline\n\nSince yesterday."
    );
}

#[test]
fn plain_text_bodies_keep_their_lines_and_entities_are_decoded() {
    assert_eq!(
        html_to_text("Hello\r\nmy order  is late"),
        "Hello\nmy order is late"
    );
    assert_eq!(derive_subject("Hello\nmy order is late", 1), "Hello");
    assert_eq!(html_to_text("caf&eacute; &euro;5 &hellip;"), "café €5 …");
    assert_eq!(
        html_to_text("<ul><li>one</li><li>two</li></ul>"),
        "one\ntwo"
    );
    assert_eq!(html_to_text("a<br><br><br><br>b"), "a\n\nb");
}

#[test]
fn bodies_compare_equal_whatever_the_markup_and_line_breaks() {
    use crate::mapping::normalize_body;
    assert_eq!(
        normalize_body("<p>Line one<br>two &amp; three</p>"),
        normalize_body("Line one\ntwo & three")
    );
    assert_eq!(normalize_body("  a \n b "), "a b");
    assert_ne!(normalize_body("<p>a</p>"), normalize_body("<p>b</p>"));
}

#[test]
fn upload_mode_plans_files_per_write_follow_up_notes_and_inline_edits() {
    let s = settings("[attachments]\nmode = \"upload\"\ninline = \"rehost\"");
    let file = |name: &str, mb: u64| Attachment {
        url: format!("https://desk-360.s3.amazonaws.com/{name}"),
        name: name.into(),
        kind: AttachmentKind::File,
        size: Some(mb * 1024 * 1024),
    };
    let mut first = customer(
        1,
        r#"<p>see <img src="https://desk-360.s3.amazonaws.com/shot.png"></p>"#,
        "2021-01-02 10:00:00",
    );
    first.attachments = vec![file("a.pdf", 20), file("huge.mov", 30), file("b.pdf", 20)];
    let mut reply = agent(2, 74, "answer", "2021-01-02 11:00:00");
    reply.attachments = vec![file("c.pdf", 1)];
    let t = ticket("Email", vec![first, reply]);
    let (m, w) = map(&t, &s);
    let p = plan(m);
    assert!(p.create.attachment_urls.is_empty());
    // The inline image (unknown size, planned at 25 MB) goes first with the create, then a.pdf;
    // b.pdf does not fit the 50 MB request and follows in a note right after.
    let names =
        |id: i64| -> Vec<String> { p.uploads[&id].iter().map(|a| a.name.clone()).collect() };
    assert_eq!(names(1), ["shot.png", "a.pdf"]);
    let follow = files::follow_up_id(1, 0);
    assert_eq!(names(follow), ["b.pdf"]);
    assert_eq!(p.steps[0].source_id(), follow);
    assert!(p.steps[0].is_note());
    assert!(p.steps[0].content().starts_with("Files of the message of"));
    assert_eq!(p.steps[1].source_id(), 2);
    assert_eq!(names(2), ["c.pdf"]);
    assert_eq!(
        p.rehost[&1],
        [(
            "https://desk-360.s3.amazonaws.com/shot.png".to_string(),
            "shot.png".to_string()
        )]
    );
    // create + follow-up note + reply + final update + one inline edit.
    assert_eq!(p.writes(), 1 + 2 + 1 + 1);
    assert!(
        w.iter()
            .any(|w| matches!(w, Warning::AttachmentTooLarge { name, .. } if name == "huge.mov"))
    );
}

mod properties {
    //! Properties of the mapping over arbitrary tickets: it never panics, every message is
    //! written exactly once (the first reply by the create, the others as steps), replies keep
    //! source order and come before notes, no internal note is ever made public, and every
    //! agent write carries `do_not_send_email`.
    use proptest::prelude::*;

    use super::*;

    fn arb_message(id: i64) -> impl Strategy<Value = Message> {
        (
            prop_oneof![Just(None), (1i64..4).prop_map(Some)],
            any::<bool>(),
            "[a-z <>/]{0,12}",
            0u32..5_000,
        )
            .prop_map(move |(agent, note, body, secs)| {
                let t = jiff::civil::date(2021, 3, 1)
                    .at(0, 0, 0, 0)
                    .checked_add(jiff::SignedDuration::from_secs(i64::from(secs / 10) * 10))
                    .unwrap();
                Message {
                    id,
                    author: match agent {
                        Some(a) => Author::Agent(70 + a),
                        None => Author::Customer,
                    },
                    kind: if note {
                        MessageKind::Note
                    } else {
                        MessageKind::Reply
                    },
                    body,
                    created_at: model::SourceTime::Naive(t),
                    attachments: vec![],
                }
            })
    }

    fn arb_ticket() -> impl Strategy<Value = Ticket> {
        (
            prop::sample::select(vec!["Email", "Phone", "Web", "Facebook", "Other"]),
            prop::collection::vec(any::<u8>(), 0..8),
            prop_oneof![Just(None), (0i64..4).prop_map(Some)],
            any::<bool>(),
        )
            .prop_flat_map(|(channel, ids, status, has_email)| {
                let n = ids.len();
                let messages: Vec<_> = (0..n).map(|i| arb_message(i as i64 + 1)).collect();
                (Just(channel), messages, Just(status), Just(has_email))
            })
            .prop_map(|(channel, messages, status, has_email)| {
                let mut t = ticket(channel, messages);
                t.status = status;
                if !has_email {
                    t.customer_email = None;
                }
                t
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

        #[test]
        fn every_message_is_written_once_in_order_and_notes_stay_internal(t in arb_ticket()) {
            let s = settings("");
            let (mapped, _) = map(&t, &s);
            let Mapped::Case(plan) = mapped else { return Ok(()) };
            // The first reply opens the case; every other message is one step, once.
            let mut written: Vec<i64> = vec![plan.first_message_id];
            written.extend(plan.steps.iter().map(Step::source_id));
            let mut sorted = written.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), written.len(), "a message written twice");
            prop_assert_eq!(written.len(), t.messages.len(), "a message left out");
            let first = t.messages.iter().find(|m| m.id == plan.first_message_id).unwrap();
            prop_assert_eq!(first.kind, MessageKind::Reply, "a note opened a public case");
            // Notes stay notes, replies stay replies.
            for step in &plan.steps {
                let m = t.messages.iter().find(|m| m.id == step.source_id()).unwrap();
                prop_assert_eq!(step.is_note(), m.kind == MessageKind::Note);
                if let Step::Agent { message, .. } = step {
                    prop_assert_eq!(message.do_not_send_email, Some(true));
                }
            }
            // Replies in source order, then notes.
            let kinds: Vec<bool> = plan.steps.iter().map(Step::is_note).collect();
            prop_assert!(kinds.windows(2).all(|w| !w[0] || w[1]), "a reply after a note");
            let reply_times: Vec<_> = plan.steps.iter().filter(|s| !s.is_note()).map(Step::created_at).collect();
            prop_assert!(reply_times.windows(2).all(|w| w[0] <= w[1]), "replies out of order");
            // Any reply after the create makes the final status uncertain: it is set.
            let replies_after = plan.steps.iter().any(|s| !s.is_note());
            prop_assert_eq!(plan.final_update.is_some(), replies_after);
            if let Some(u) = &plan.final_update {
                prop_assert_eq!(u.status, Some(plan.create.status.unwrap_or(CaseStatus::Open)));
            }
            prop_assert_eq!(plan.create.do_not_send_email, Some(true));
        }
    }
}
