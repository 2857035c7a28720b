//! The seeded generator: deterministic, and with the variety a real account has.

use std::collections::{BTreeMap, BTreeSet};

use sandbox::{generate, parse_refs};
use serde_json::Value;

#[test]
fn same_seed_same_dataset_other_seed_other_dataset() {
    let a = generate(42, 3, 300);
    let b = generate(42, 3, 300);
    assert_eq!(a, b);
    let c = generate(43, 3, 300);
    assert_ne!(a.tickets, c.tickets);
    assert_eq!(a.tickets.len(), 300);
}

#[test]
fn variety_of_a_real_account() {
    let ds = generate(7, 3, 2000);
    let n = ds.tickets.len() as f64;
    assert_eq!(ds.products.len(), 3);
    assert!(ds.agents.len() >= 8);
    assert!(!ds.types.is_empty() && !ds.reasons.is_empty());

    let mut channels = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    let mut priorities = BTreeSet::new();
    let mut per_product = BTreeMap::new();
    let (
        mut null_subject,
        mut no_email,
        mut agent_opened,
        mut notes,
        mut big,
        mut over_25mb,
        mut equal_ts,
    ) = (0, 0, 0, 0, 0, 0, 0);
    let mut lens = Vec::new();
    let mut markers = BTreeSet::new();
    for t in &ds.tickets {
        let d = &t.detail;
        channels.insert(d["channel"].as_str().expect("channel").to_owned());
        statuses.insert(t.status);
        priorities.insert(t.priority);
        *per_product.entry(t.product_id).or_insert(0) += 1;
        if d["subject"].is_null() {
            null_subject += 1;
        }
        if d["email"].is_null() {
            no_email += 1;
            if d["channel"] == "Phone" {
                assert!(d["phone"].is_string(), "Phone tickets carry a phone");
            }
        }
        let msgs = t.messages();
        lens.push(msgs.len());
        assert!((1..=30).contains(&msgs.len()));
        if msgs[0]["agent_id"].as_i64() != Some(0) {
            agent_opened += 1;
        }
        let mut prev = String::new();
        for (i, m) in msgs.iter().enumerate() {
            let html = m["message"].as_str().expect("html");
            let refs = parse_refs(html);
            assert_eq!(
                refs,
                vec![(t.product_id, t.ticket_id, i)],
                "one marker per message"
            );
            assert!(markers.insert(refs[0]), "unique bodies");
            if m["type"] == 6 {
                notes += 1;
                assert_ne!(m["agent_id"], 0, "notes come from agents");
            }
            if html.len() >= 100_000 {
                big += 1;
            }
            for g in ["images", "videos", "files", "others"] {
                for a in m["attachments"][g].as_array().expect("group") {
                    if a["size"].as_u64().expect("size") > 25 * 1024 * 1024 {
                        over_25mb += 1;
                    }
                }
            }
            let ts = m["created_at"].as_str().expect("ts").to_owned();
            assert_eq!(ts.len(), 19, "naive YYYY-MM-DD HH:MM:SS");
            assert!(ts >= prev, "messages increase in time");
            if ts == prev {
                equal_ts += 1;
            }
            prev = ts;
        }
        assert_eq!(d.get("last_message"), None);
        assert!(t.list.get("messages").is_none() && t.list["last_message"].is_string());
        assert_eq!(
            ds.ticket(t.product_id, t.ticket_id).map(|x| x.ticket_id),
            Some(t.ticket_id)
        );
    }
    for ch in [
        "Email",
        "Application",
        "Api",
        "Phone",
        "Web",
        "WhatsApp",
        "Facebook",
    ] {
        assert!(channels.contains(ch), "{ch}");
    }
    assert_eq!(statuses, BTreeSet::from([0, 1, 2]));
    assert_eq!(priorities, BTreeSet::from([0, 1, 2, 3]));
    assert!(per_product.values().all(|&c| c > 500));
    let share = |x: usize| x as f64 / n;
    assert!(
        (0.12..0.28).contains(&share(null_subject)),
        "null subjects {null_subject}"
    );
    assert!(
        (0.01..0.06).contains(&share(no_email)),
        "no email {no_email}"
    );
    assert!(
        (0.06..0.15).contains(&share(agent_opened)),
        "agent opened {agent_opened}"
    );
    assert!(
        notes > 100 && big >= 3 && over_25mb >= 3 && equal_ts > 50,
        "{notes} {big} {over_25mb} {equal_ts}"
    );
    lens.sort_unstable();
    let median = lens[lens.len() / 2];
    assert!((2..=6).contains(&median), "skewed small: median {median}");
    assert!(lens.iter().any(|&l| l >= 13), "a few long threads");
    let _: &Value = &ds.tickets[0].detail;
}
