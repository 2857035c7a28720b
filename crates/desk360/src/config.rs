//! How the Desk360 client is set up: where the API lives, how to authenticate, how long to wait.
//!
//! Everything here holds or guards credentials, so `Debug` is written by hand and the base URL is
//! checked before any request: a token must never travel over plain HTTP to a real host.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use throttle::RetryPolicy;
use url::Url;

use crate::error::Desk360Error;

/// How the client proves who it is. Desk360 accepts a bearer token made in the panel, or trades
/// an email and password for one at `/v1/login` (when password access is enabled).
#[derive(Clone)]
pub enum Auth {
    /// A panel-made API token, sent as `Authorization: Bearer …`.
    Token(SecretString),
    /// Email and password, exchanged once for a token when the client connects.
    Login {
        /// The agent's login email (not a secret, but kept out of logs anyway).
        email: String,
        /// The agent's password.
        password: SecretString,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hand-written so no future change to `secrecy` or to this enum can leak a credential.
        match self {
            Auth::Token(_) => f.write_str("Auth::Token([redacted])"),
            Auth::Login { .. } => {
                f.write_str("Auth::Login { email: [redacted], password: [redacted] }")
            }
        }
    }
}

/// Everything the client needs to talk to one Desk360 account.
#[derive(Clone)]
pub struct Desk360Config {
    /// `https://api.desk360.com`, or a loopback `http://` URL for the sandbox. A path prefix is
    /// kept (`http://127.0.0.1:9000/desk360` → `…/desk360/v1/products`).
    pub base_url: Url,
    /// Credentials.
    pub auth: Auth,
    /// Whole-request timeout; the connect timeout is derived from it (at most 10 s, see
    /// [`transport::http_client`]), so a dead host is noticed quickly while a slow page still
    /// has the full time.
    pub timeout: Duration,
    /// Bounds for retrying transient failures and 429s.
    pub retry: RetryPolicy,
}

impl Desk360Config {
    /// A configuration with a 30 s timeout and the default retry policy.
    pub fn new(base_url: Url, auth: Auth) -> Self {
        Self {
            base_url,
            auth,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for Desk360Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Desk360Config")
            .field("base_url", &self.base_url.as_str())
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Checks the base URL and returns it without query, fragment or trailing slash, so endpoint
/// paths can be appended to it.
pub(crate) fn normalize_base_url(url: &Url) -> Result<String, Desk360Error> {
    let config = |reason: String| Desk360Error::Config { reason };
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(config(format!(
            "source base_url {url} is not an http(s) URL with a host"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if transport::is_loopback(url) => {}
        "http" => {
            return Err(config(format!(
                "source base_url {url} uses plain http:// to a non-loopback host; the API token \
                 would travel unencrypted. Use https:// (plain http is allowed only for \
                 127.0.0.1, ::1 or localhost, i.e. the sandbox)"
            )));
        }
        other => {
            return Err(config(format!(
                "source base_url {url} has scheme {other:?}; expected https://"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config(
            "source base_url must not carry credentials; use the token or email/password settings"
                .to_owned(),
        ));
    }
    let mut clean = url.clone();
    clean.set_query(None);
    clean.set_fragment(None);
    Ok(clean.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) -> Result<String, Desk360Error> {
        normalize_base_url(&Url::parse(s).unwrap())
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        assert_eq!(
            check("https://api.desk360.com").unwrap(),
            "https://api.desk360.com"
        );
        assert_eq!(
            check("https://api.desk360.com/").unwrap(),
            "https://api.desk360.com"
        );
        assert_eq!(
            check("http://127.0.0.1:8080/desk360/").unwrap(),
            "http://127.0.0.1:8080/desk360"
        );
        assert!(check("http://localhost:1").is_ok());
        assert!(check("http://[::1]:1").is_ok());
    }

    #[test]
    fn plain_http_elsewhere_is_refused() {
        let err = check("http://api.desk360.com").unwrap_err();
        assert!(matches!(err, Desk360Error::Config { .. }));
        assert!(err.to_string().contains("plain http://"), "{err}");
        assert!(check("http://10.0.0.1").is_err());
        assert!(check("ftp://api.desk360.com").is_err());
        assert!(check("https://user:pw@api.desk360.com").is_err());
    }

    #[test]
    fn debug_redacts_credentials() {
        let cfg = Desk360Config::new(
            Url::parse("https://api.desk360.com").unwrap(),
            Auth::Login {
                email: "boss@example.com".into(),
                password: SecretString::from("hunter2-pass"),
            },
        );
        let s = format!("{cfg:?}");
        assert!(
            !s.contains("hunter2-pass") && !s.contains("boss@example.com"),
            "{s}"
        );
        let t = format!("{:?}", Auth::Token(SecretString::from("tok-SECRET-123")));
        assert!(!t.contains("tok-SECRET-123"), "{t}");
    }
}
