//! Error text: short excerpts of bodies, and transport failures described without their URL.

/// The first `max` characters of `s`, cut on a character boundary, with `…` when cut: a body
/// quoted in an error stays readable and bounded.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A transport failure as one line: its kind and the chain of causes. The error's own text is
/// left out because it holds the URL, whose query may carry customer data.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "body error"
    } else if error.is_builder() {
        "invalid request"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_on_char_boundary() {
        let s = "é".repeat(300);
        let e = excerpt(&s, 200);
        assert_eq!(e.chars().count(), 201);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("short", 200), "short");
        assert_eq!(excerpt("", 3), "");
    }
}
