//! The per-message file plan of `[attachments] mode = "upload"` (issue #12), pure: which files go
//! with the message, which follow in notes, which cannot go at all; and the inline images of a
//! message's HTML on Desk360 storage, found and rewritten with a real HTML rewriter (`lol_html`).
//!
//! Deskie takes 25 MB a file and 50 MB a request (page 001). A file over 25 MB cannot be sent: it
//! becomes a [`Warning::AttachmentTooLarge`] naming it (the report lists it with its ticket), never
//! silently dropped. The others go in source order, packed greedily into requests of at most
//! 50 MB: the first with the message itself, each further one as a follow-up note "files of the
//! message of <time>" right after it, so they stay next to the message they belong to. A file
//! whose size Desk360 did not say is planned at 25 MB (the most it may be), so a request never
//! exceeds 50 MB whatever its real size turns out to be; its real size is learned from the
//! download.

use std::collections::BTreeMap;

use jiff::Timestamp;
use model::Attachment;

use super::{MAX_FILE_BYTES, MAX_REQUEST_BYTES, Warning};

/// One follow-up note carrying files of a message that did not fit its request.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// The note's text: which message the files belong to.
    pub content: String,
    /// Its files, in source order.
    pub files: Vec<Attachment>,
}

/// Where one message's files go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFiles {
    /// Sent with the message (or the case create) itself.
    pub with_message: Vec<Attachment>,
    /// Sent after it, one note each.
    pub follow_ups: Vec<FollowUp>,
}

impl MessageFiles {
    /// Writes these files add to the plan besides the message itself (one per follow-up note).
    pub fn extra_writes(&self) -> usize {
        self.follow_ups.len()
    }

    /// Every file that will be sent, in order.
    pub fn all(&self) -> impl Iterator<Item = &Attachment> {
        self.with_message
            .iter()
            .chain(self.follow_ups.iter().flat_map(|f| f.files.iter()))
    }
}

/// The source id of the `k`-th follow-up note of message `message_id`: negative, so it never
/// meets a Desk360 message id (always positive), unique per (message, k), and stable across runs
/// (the journal and the id map key writes by it).
pub fn follow_up_id(message_id: i64, k: usize) -> i64 {
    let k = i64::try_from(k).unwrap_or(i64::MAX / 2048).min(1023);
    -(message_id.saturating_mul(1024).saturating_add(k + 1))
}

/// The text of a follow-up note for the message written at `at`.
pub fn follow_up_text(at: Timestamp) -> String {
    format!(
        "Files of the message of {}",
        at.strftime("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// The size a file is planned at: its declared size, or the most Deskie takes when unknown.
fn planned_size(a: &Attachment) -> u64 {
    a.size.unwrap_or(MAX_FILE_BYTES)
}

/// Plans the files of message `message_id` written at `at`; files over 25 MB become warnings.
pub fn plan_message_files(
    message_id: i64,
    at: Timestamp,
    files: &[Attachment],
    warnings: &mut Vec<Warning>,
) -> MessageFiles {
    let mut groups: Vec<Vec<Attachment>> = vec![Vec::new()];
    let mut used = 0u64;
    for a in files {
        if a.size.is_some_and(|s| s > MAX_FILE_BYTES) {
            warnings.push(Warning::AttachmentTooLarge {
                message_id,
                name: a.name.clone(),
                size: a.size.unwrap_or_default(),
                url: a.url.clone(),
            });
            continue;
        }
        let size = planned_size(a);
        let current_empty = groups.last().is_none_or(Vec::is_empty);
        if used + size > MAX_REQUEST_BYTES && !current_empty {
            groups.push(Vec::new());
            used = 0;
        }
        used += size;
        if let Some(g) = groups.last_mut() {
            g.push(a.clone());
        }
    }
    let mut groups = groups.into_iter();
    let with_message = groups.next().unwrap_or_default();
    let follow_ups = groups
        .filter(|g| !g.is_empty())
        .map(|files| FollowUp {
            content: follow_up_text(at),
            files,
        })
        .collect();
    MessageFiles {
        with_message,
        follow_ups,
    }
}

/// Whether `url` is on Desk360's storage: the API host itself, a `desk360.com` host, or the
/// S3 bucket page 004's file URLs point at (`desk-360.s3.amazonaws.com`).
pub fn is_desk360_storage(url: &str, api_base: &url::Url) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let same = u.host_str() == api_base.host_str()
        && u.port_or_known_default() == api_base.port_or_known_default();
    same || host == "desk360.com"
        || host.ends_with(".desk360.com")
        || host.starts_with("desk-360.")
        || host.starts_with("desk360.")
}

/// The `src` of every `<img>` in `html` that `is_storage` accepts, in document order, once each.
/// An HTML the rewriter cannot read yields no image (the message is sent as it is).
pub fn inline_images(html: &str, is_storage: impl Fn(&str) -> bool) -> Vec<String> {
    let found = std::cell::RefCell::new(Vec::<String>::new());
    let result = lol_html::rewrite_str(
        html,
        lol_html::RewriteStrSettings {
            element_content_handlers: vec![lol_html::element!("img[src]", |el| {
                if let Some(src) = el.get_attribute("src") {
                    let src = src.trim().to_owned();
                    if is_storage(&src) && !found.borrow().contains(&src) {
                        found.borrow_mut().push(src);
                    }
                }
                Ok(())
            })],
            ..lol_html::RewriteStrSettings::new()
        },
    );
    match result {
        Ok(_) => found.into_inner(),
        Err(_) => Vec::new(),
    }
}

/// `html` with every `<img src>` found in `replace` pointed at its new address; anything else
/// unchanged. `None` when the rewriter cannot read the HTML.
pub fn rewrite_inline_images(html: &str, replace: &BTreeMap<String, String>) -> Option<String> {
    lol_html::rewrite_str(
        html,
        lol_html::RewriteStrSettings {
            element_content_handlers: vec![lol_html::element!("img[src]", |el| {
                if let Some(src) = el.get_attribute("src")
                    && let Some(new) = replace.get(src.trim())
                {
                    el.set_attribute("src", new)?;
                }
                Ok(())
            })],
            ..lol_html::RewriteStrSettings::new()
        },
    )
    .ok()
}

/// An inline image as an attachment to upload with its message: named after the last segment
/// of its path (or `image-<n>`), size unknown until downloaded.
pub fn inline_attachment(src: &str, n: usize) -> Attachment {
    let name = url::Url::parse(src)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("image-{n}"));
    Attachment {
        url: src.to_owned(),
        name,
        kind: model::AttachmentKind::Image,
        size: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn file(name: &str, size: Option<u64>) -> Attachment {
        Attachment {
            url: format!("https://api.desk360.com/attachments/{name}"),
            name: name.to_owned(),
            kind: model::AttachmentKind::File,
            size,
        }
    }

    fn names(files: &[Attachment]) -> Vec<&str> {
        files.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn files_pack_into_requests_of_50_mb_in_order_and_big_ones_are_reported() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let files = [
            file("a", Some(20 * MB)),
            file("b", Some(20 * MB)),
            file("huge", Some(30 * MB)),
            file("c", Some(20 * MB)),
            file("d", Some(10 * MB)),
            file("e", None),
        ];
        let mut warnings = Vec::new();
        let plan = plan_message_files(7, at, &files, &mut warnings);
        assert_eq!(names(&plan.with_message), ["a", "b"]);
        assert_eq!(plan.follow_ups.len(), 2);
        assert_eq!(names(&plan.follow_ups[0].files), ["c", "d"]);
        // Unknown size planned at 25 MB: 30 + 25 > 50.
        assert_eq!(names(&plan.follow_ups[1].files), ["e"]);
        assert_eq!(plan.extra_writes(), 2);
        assert_eq!(
            plan.follow_ups[0].content,
            "Files of the message of 2023-11-14 22:13:20 UTC"
        );
        assert_eq!(
            warnings,
            vec![Warning::AttachmentTooLarge {
                message_id: 7,
                name: "huge".into(),
                size: 30 * MB,
                url: "https://api.desk360.com/attachments/huge".into(),
            }]
        );
        assert_eq!(plan.all().count(), 5);
    }

    #[test]
    fn exactly_50_mb_fits_one_request_and_no_files_plan_nothing() {
        let at = Timestamp::UNIX_EPOCH;
        let mut w = Vec::new();
        let plan = plan_message_files(
            1,
            at,
            &[file("a", Some(25 * MB)), file("b", Some(25 * MB))],
            &mut w,
        );
        assert_eq!(plan.with_message.len(), 2);
        assert!(plan.follow_ups.is_empty() && w.is_empty());
        assert_eq!(
            plan_message_files(1, at, &[], &mut w),
            MessageFiles::default()
        );
    }

    #[test]
    fn inline_images_on_desk360_storage_are_found_and_rewritten() {
        let base = url::Url::parse("https://api.desk360.com").unwrap();
        let html = r#"<p>See <img src="https://desk-360.s3.amazonaws.com/x/a.png" alt="a">
            and <IMG SRC='https://cdn.example.com/b.png'> and <img src="https://api.desk360.com/attachments/c.jpg">
            again <img src="https://desk-360.s3.amazonaws.com/x/a.png"></p><!-- <img src="https://api.desk360.com/no.png"> -->
            <code>&lt;img src="https://api.desk360.com/text.png"&gt;</code>"#;
        let found = inline_images(html, |u| is_desk360_storage(u, &base));
        assert_eq!(
            found,
            [
                "https://desk-360.s3.amazonaws.com/x/a.png",
                "https://api.desk360.com/attachments/c.jpg"
            ]
        );
        let mut map = BTreeMap::new();
        map.insert(
            found[0].clone(),
            "https://acme.deskie.io/files/1".to_owned(),
        );
        map.insert(
            found[1].clone(),
            "https://acme.deskie.io/files/2".to_owned(),
        );
        let out = rewrite_inline_images(html, &map).unwrap();
        assert!(!out.contains("desk-360.s3"), "{out}");
        assert!(
            out.contains(r#"<img src="https://acme.deskie.io/files/1" alt="a">"#),
            "{out}"
        );
        assert!(out.contains("https://acme.deskie.io/files/2"));
        assert!(out.contains("https://cdn.example.com/b.png"));
        // Comments and escaped text are not images and stay as they were.
        assert!(out.contains(r#"<!-- <img src="https://api.desk360.com/no.png"> -->"#));
        assert!(out.contains("https://api.desk360.com/text.png"));
        assert_eq!(inline_attachment(&found[1], 0).name, "c.jpg");
        assert_eq!(
            inline_attachment("https://api.desk360.com/", 3).name,
            "image-3"
        );
    }
}
