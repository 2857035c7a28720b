//! Reading response headers: the `Link` header that carries the next page, and the rate-limit
//! headers that keep the shared limiter in line with Desk360's own accounting.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use throttle::RateInfo;

/// One `Link` header entry: the target as written and its parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkValue {
    pub uri: String,
    pub params: Vec<(String, String)>,
}

impl LinkValue {
    /// Whether the `rel` parameter lists `rel` (relation types are space-separated and
    /// case-insensitive, RFC 8288 §3.3).
    fn has_rel(&self, rel: &str) -> bool {
        self.params
            .iter()
            .filter(|(name, _)| name == "rel")
            .any(|(_, v)| {
                v.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
            })
    }
}

/// Parses one `Link` header value (RFC 8288): comma-separated `<uri>; name=value; name="quoted"`
/// entries. Commas inside `<…>` or quotes do not split entries. Malformed pieces are skipped,
/// never a panic.
pub(crate) fn parse_link_header(value: &str) -> Vec<LinkValue> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    while i < chars.len() {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        if chars[i] != '<' {
            // Garbage before an entry: skip to the next comma that is not inside quotes.
            let mut quoted = false;
            while i < chars.len() && (quoted || chars[i] != ',') {
                if chars[i] == '"' {
                    quoted = !quoted;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        i += 1;
        let start = i;
        while i < chars.len() && chars[i] != '>' {
            i += 1;
        }
        if i >= chars.len() {
            break; // unterminated <…
        }
        let uri: String = chars[start..i].iter().collect::<String>().trim().to_owned();
        i += 1;
        let mut params = Vec::new();
        loop {
            skip_ws(&mut i);
            if i >= chars.len() {
                break;
            }
            match chars[i] {
                ',' => {
                    i += 1;
                    break;
                }
                ';' => {
                    i += 1;
                    skip_ws(&mut i);
                    let ns = i;
                    while i < chars.len() && !matches!(chars[i], '=' | ';' | ',') {
                        i += 1;
                    }
                    let name = chars[ns..i]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .trim_end_matches('*')
                        .to_ascii_lowercase();
                    let mut val = String::new();
                    if i < chars.len() && chars[i] == '=' {
                        i += 1;
                        skip_ws(&mut i);
                        if i < chars.len() && chars[i] == '"' {
                            i += 1;
                            while i < chars.len() && chars[i] != '"' {
                                if chars[i] == '\\' && i + 1 < chars.len() {
                                    i += 1;
                                }
                                val.push(chars[i]);
                                i += 1;
                            }
                            i += 1; // closing quote (or end)
                        } else {
                            let vs = i;
                            while i < chars.len() && !matches!(chars[i], ';' | ',') {
                                i += 1;
                            }
                            val = chars[vs..i].iter().collect::<String>().trim().to_owned();
                        }
                    }
                    if !name.is_empty() {
                        params.push((name, val));
                    }
                }
                _ => {
                    // Stray characters after a parameter: skip them.
                    i += 1;
                }
            }
        }
        out.push(LinkValue { uri, params });
    }
    out
}

/// The `rel=next` target of every `Link` header of a response, as written, if any.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_link_header)
        .find(|l| l.has_rel("next") && !l.uri.is_empty())
        .map(|l| l.uri)
}

/// Reads `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` and `Retry-After`.
pub(crate) fn rate_info(headers: &HeaderMap) -> RateInfo {
    rate_info_at(headers, SystemTime::now())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// [`rate_info`] with an explicit "now", for tests.
pub(crate) fn rate_info_at(headers: &HeaderMap, now: SystemTime) -> RateInfo {
    RateInfo {
        limit: header(headers, "x-ratelimit-limit").and_then(RateInfo::parse_count),
        remaining: header(headers, "x-ratelimit-remaining").and_then(RateInfo::parse_count),
        reset_after: header(headers, "x-ratelimit-reset").and_then(|v| reset_after(v, now)),
        retry_after: header(headers, "retry-after").and_then(RateInfo::parse_seconds),
    }
}

/// `X-RateLimit-Reset` is documented as a Unix epoch time (the sandbox sends fractions). A value
/// too small to be an epoch (before 2001) is read as seconds from now, which some servers send
/// instead; a reset already past means the window has just ended.
fn reset_after(value: &str, now: SystemTime) -> Option<Duration> {
    let reset: f64 = value.trim().parse().ok()?;
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    if reset < 1_000_000_000.0 {
        return RateInfo::parse_seconds(value);
    }
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let left = (reset - now).clamp(0.0, 86_400.0);
    Some(Duration::from_secs_f64(left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn documented_link_form() {
        let h = map(&[(
            "Link",
            "<https://api.desk360.com/v1/products/1/tickets?page=2>; rel=next",
        )]);
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.desk360.com/v1/products/1/tickets?page=2")
        );
    }

    #[test]
    fn several_links_quotes_and_spacing() {
        let h = map(&[(
            "link",
            r#"<https://x.test/a?page=1&x=1,2>;rel="prev" , <https://x.test/a?page=3&order=asc> ;  REL = "last NEXT"; title="a, b; c", <https://x.test/z>; rel=next"#,
        )]);
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://x.test/a?page=3&order=asc")
        );
        let links = parse_link_header(
            r#"<https://x.test/a?page=1&x=1,2>;rel="prev" , <u2>; title="a, b; c"; rel=next"#,
        );
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].uri, "https://x.test/a?page=1&x=1,2");
        assert_eq!(
            links[1].params[0],
            ("title".to_owned(), "a, b; c".to_owned())
        );
    }

    #[test]
    fn next_in_a_second_header_and_absent_next() {
        let h = map(&[
            ("Link", "<https://x.test/first>; rel=first"),
            ("Link", "<https://x.test/p2>; rel=\"next\""),
        ]);
        assert_eq!(next_link(&h).as_deref(), Some("https://x.test/p2"));
        let h = map(&[("Link", "<https://x.test/p1>; rel=prev")]);
        assert_eq!(next_link(&h), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
        // rel=nextpage is not next.
        let h = map(&[("Link", "<https://x.test/p1>; rel=nextpage")]);
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "<",
            ">",
            "<a",
            "a>; rel=next",
            ";;;",
            "<a>; rel=\"next",
            "<a>; =next",
            "<a>; rel",
            ",,,<b>;rel=next,,",
            "\"<c>\"; rel=next, <d>; rel=next",
            "<>; rel=next",
        ] {
            let _ = parse_link_header(s);
        }
        assert_eq!(
            parse_link_header(",,,<b>;rel=next,,")[0].uri,
            "b".to_owned()
        );
        // A quoted garbage entry is skipped and the following real one found.
        let h = map(&[("Link", "\"<c>, x\"; rel=next, <d>; rel=next")]);
        assert_eq!(next_link(&h).as_deref(), Some("d"));
        let h = map(&[("Link", "<>; rel=next")]);
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn rate_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = map(&[
            ("X-RateLimit-Limit", "180"),
            ("X-RateLimit-Remaining", "178"),
            ("X-RateLimit-Reset", "1700000026.5"),
            ("Retry-After", "26"),
        ]);
        let info = rate_info_at(&h, now);
        assert_eq!(info.limit, Some(180));
        assert_eq!(info.remaining, Some(178));
        assert_eq!(info.reset_after, Some(Duration::from_millis(26_500)));
        assert_eq!(info.retry_after, Some(Duration::from_secs(26)));

        // A reset in the past: the window just ended.
        let h = map(&[("x-ratelimit-reset", "1699999990")]);
        assert_eq!(rate_info_at(&h, now).reset_after, Some(Duration::ZERO));
        // A small value is read as seconds from now.
        let h = map(&[("x-ratelimit-reset", "0.25"), ("retry-after", "0.5")]);
        let info = rate_info_at(&h, now);
        assert_eq!(info.reset_after, Some(Duration::from_millis(250)));
        assert_eq!(info.retry_after, Some(Duration::from_millis(500)));
        // Garbage is ignored.
        let h = map(&[("x-ratelimit-limit", "lots"), ("x-ratelimit-reset", "soon")]);
        assert_eq!(rate_info_at(&h, now), RateInfo::default());
    }
}

#[cfg(test)]
mod properties {
    //! Any well-formed `Link` header finds its `next`; no input makes the parser panic.

    use super::*;
    use proptest::prelude::*;
    use reqwest::header::{HeaderName, HeaderValue};

    /// A URI without `>`, the only character that ends one.
    fn uri() -> impl Strategy<Value = String> {
        "https://x\\.test/[a-z0-9/]{0,12}(\\?[a-z]{1,5}=[a-z0-9,;]{0,6}(&[a-z]{1,5}=[a-z0-9,;]{0,6}){0,3})?"
    }

    /// A `name=value` parameter other than `rel`: plain token or quoted string with separators.
    fn param() -> impl Strategy<Value = String> {
        (
            "(title|type|hreflang|media|x-page)",
            prop_oneof!["[a-z0-9]{1,8}", "\"[a-z ,;=<>]{0,12}\""],
        )
            .prop_map(|(n, v)| format!("{n}={v}"))
    }

    /// A relation list other than `next` (`nextpage` must not count).
    fn other_rel() -> impl Strategy<Value = String> {
        prop::collection::vec("(prev|first|last|nextpage|self|up)", 1..3).prop_map(|r| r.join(" "))
    }

    /// One link entry: its URI, its params in some order, the rel value quoted or not.
    fn entry(rel: String, uri: String, params: Vec<String>, quoted: bool, ws: bool) -> String {
        let rel = if quoted || rel.contains(' ') {
            format!("rel=\"{rel}\"")
        } else {
            format!("rel={rel}")
        };
        let sep = if ws { " ; " } else { ";" };
        let mut parts = params;
        parts.insert(parts.len() / 2, rel);
        format!("<{uri}>{sep}{}", parts.join(sep))
    }

    proptest! {
        #[test]
        fn any_well_formed_link_finds_next(
            others in prop::collection::vec(
                (other_rel(), uri(), prop::collection::vec(param(), 0..3), any::<bool>(), any::<bool>()),
                0..4,
            ),
            next_uri in uri(),
            next_params in prop::collection::vec(param(), 0..3),
            next_extra_rel in prop::option::of("(prev|last|NEXT|Next)"),
            quoted in any::<bool>(),
            ws in any::<bool>(),
            position in 0usize..5,
            split_headers in any::<bool>(),
        ) {
            let rel = match next_extra_rel {
                Some(extra) if extra.eq_ignore_ascii_case("next") => extra,
                Some(extra) => format!("{extra} next"),
                None => "next".to_owned(),
            };
            let mut entries: Vec<String> = others
                .into_iter()
                .map(|(r, u, p, q, w)| entry(r, u, p, q, w))
                .collect();
            let at = position.min(entries.len());
            entries.insert(at, entry(rel, next_uri.clone(), next_params, quoted, ws));
            let mut headers = HeaderMap::new();
            if split_headers {
                for e in &entries {
                    headers.append(HeaderName::from_static("link"), HeaderValue::from_str(e).unwrap());
                }
            } else {
                let joined = entries.join(if ws { " , " } else { "," });
                headers.append(HeaderName::from_static("link"), HeaderValue::from_str(&joined).unwrap());
            }
            prop_assert_eq!(next_link(&headers), Some(next_uri));
        }

        #[test]
        fn garbage_never_panics(s in ".{0,200}") {
            let _ = parse_link_header(&s);
        }

        #[test]
        fn link_like_garbage_never_panics(s in "[<>;,=\" a-z\\\\]{0,80}") {
            let links = parse_link_header(&s);
            for l in links {
                prop_assert!(!l.uri.contains('>'));
            }
        }
    }
}
