//! Which hosts are this machine, and which URLs may receive a credential.
//!
//! Plain `http://` is allowed only to loopback hosts (the sandbox): anywhere else a token or API
//! key would cross the network in clear. A URL a server hands back (a next-page link, an
//! attachment) may carry the credential only when it is on the configured host.

use url::{Host, Url};

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback_host<S: AsRef<str>>(host: &Host<S>) -> bool {
    match host {
        Host::Domain(d) => d.as_ref().eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Whether `url` points at this machine, where plain HTTP cannot be sniffed on the network.
pub fn is_loopback(url: &Url) -> bool {
    url.host().is_some_and(|h| is_loopback_host(&h))
}

/// Whether `url` is on the same origin as `base` (scheme, host, port), counting the loopback
/// spellings (`127.0.0.1`, `::1`, `localhost`) as one host: the sandbox may write its links with
/// another spelling than the configuration.
pub fn same_origin(url: &Url, base: &Url) -> bool {
    url.origin() == base.origin()
        || (is_loopback(url)
            && is_loopback(base)
            && url.scheme() == base.scheme()
            && url.port_or_known_default() == base.port_or_known_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn loopback_hosts() {
        for s in [
            "http://127.0.0.1:1",
            "http://127.1.2.3",
            "http://[::1]:8",
            "http://LOCALHOST/x",
        ] {
            assert!(is_loopback(&url(s)), "{s}");
        }
        for s in [
            "http://10.0.0.1",
            "https://api.desk360.com",
            "http://localhost.evil.com",
        ] {
            assert!(!is_loopback(&url(s)), "{s}");
        }
        assert!(!is_loopback(&url("mailto:a@b.c")));
    }

    #[test]
    fn same_origin_counts_loopback_aliases() {
        let base = url("http://127.0.0.1:9000/desk360");
        assert!(same_origin(
            &url("http://127.0.0.1:9000/v1/x?page=2"),
            &base
        ));
        assert!(same_origin(&url("http://localhost:9000/v1/x"), &base));
        assert!(same_origin(&url("http://[::1]:9000/"), &base));
        assert!(!same_origin(&url("http://localhost:9001/"), &base));
        assert!(!same_origin(&url("https://localhost:9000/"), &base));
        let real = url("https://api.desk360.com");
        assert!(same_origin(&url("https://api.desk360.com:443/v1"), &real));
        assert!(!same_origin(
            &url("https://desk-360.s3.amazonaws.com/f"),
            &real
        ));
    }
}
