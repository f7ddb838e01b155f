//! Redirect URIs: which may be registered, and when a presented one matches a registered one
//! (exactly, string for string — RFC 9700 §4.1.3 — but for a native app's loopback port).

use crate::uri::is_absolute_uri;

/// Why a redirect URI cannot be registered, or `Ok`.
pub fn check_registered(uri: &str) -> Result<(), &'static str> {
    if !is_absolute_uri(uri) {
        return Err("not an absolute URI without a fragment");
    }
    if uri.contains('*') {
        return Err("wildcards are not allowed; register each URI");
    }
    let (scheme, rest) = uri.split_once(':').unwrap_or_default();
    match scheme {
        "https" => {
            let authority = rest.trim_start_matches('/').split(['/', '?']).next().unwrap_or_default();
            if authority.contains('@') {
                return Err("user information (…@) is not allowed");
            }
            Ok(())
        }
        "http" if loopback(uri).is_some() || is_localhost(rest) => Ok(()),
        "http" => Err("http is allowed only for loopback (127.0.0.1, [::1], localhost); use https"),
        // RFC 8252 §7.1: a native app's private-use scheme is a reverse domain name.
        _ if scheme.contains('.') => Ok(()),
        _ => Err("use https, http on loopback, or a native app's reverse-domain scheme (com.example.app:/callback)"),
    }
}

fn is_localhost(rest: &str) -> bool {
    let Some(after) = rest.strip_prefix("//localhost") else {
        return false;
    };
    port_then_path(after).is_some()
}

/// After a host: an optional `:port`, then nothing, a path or a query; what follows the port.
fn port_then_path(after_host: &str) -> Option<&str> {
    let rest = match after_host.strip_prefix(':') {
        Some(port) => {
            let digits = port.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=5).contains(&digits) {
                return None;
            }
            &port[digits..]
        }
        None => after_host,
    };
    (rest.is_empty() || rest.starts_with(['/', '?'])).then_some(rest)
}

/// A loopback IP redirect URI (`http://127.0.0.1…`, `http://[::1]…`) as (host, what follows
/// the port).
fn loopback(uri: &str) -> Option<(&'static str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    ["127.0.0.1", "[::1]"].into_iter().find_map(|host| {
        rest.strip_prefix(host)
            .and_then(port_then_path)
            .map(|tail| (host, tail))
    })
}

/// `uri` with `pairs` added to its query.
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}

/// Whether a redirect to `uri` proves which app receives it: only an https URI does. A
/// loopback port or an app's own scheme can be claimed by any program on the device
/// (RFC 8252 §8.6).
pub fn proves_the_app(uri: &str) -> bool {
    uri.starts_with("https://")
}

/// The CSP source that allows a form post ending at `uri`: its origin; any port of a loopback
/// IP; an app's own scheme. None for what is no origin.
pub fn csp_source(uri: &str) -> Option<String> {
    if let Some((host, _)) = loopback(uri) {
        return Some(format!("http://{host}:*"));
    }
    let (scheme, rest) = uri.split_once(':')?;
    let source = match rest.strip_prefix("//") {
        Some(rest) => format!(
            "{scheme}://{}",
            rest.split(['/', '?', '#']).next().unwrap_or_default()
        ),
        None => format!("{scheme}:"),
    };
    // Registered URIs were checked (no '@', no spaces); a source must not break the policy.
    source
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-+:/[]".contains(&b))
        .then_some(source)
}

/// Whether `presented` is one of `registered`: the same string, or for a loopback IP the same
/// but for the port, which a native app picks when it starts (RFC 8252 §7.3).
pub fn matches(registered: &[String], presented: &str) -> bool {
    registered.iter().any(|r| {
        r == presented
            || match (loopback(r), loopback(presented)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_takes_https_loopback_and_app_schemes_only() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?tenant=1",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8765/callback",
            "http://[::1]:8765/cb",
            "http://localhost:3000/login/generic_oauth",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(check_registered(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://app.example.com/callback",
            "http://127.0.0.1.evil.com/cb",
            "http://localhost.evil.com/cb",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "https://app.example.com/*",
            "https://user@app.example.com/cb",
            "/relative/callback",
            "javascript:alert(1)",
            "data:text/html,hi",
            "myapp:/cb",
            "",
        ] {
            assert!(check_registered(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn form_targets_are_origins() {
        for (uri, source) in [
            (
                "https://app.example.com:8443/cb?x=1",
                Some("https://app.example.com:8443"),
            ),
            ("http://127.0.0.1:5555/cb", Some("http://127.0.0.1:*")),
            ("http://[::1]/cb", Some("http://[::1]:*")),
            ("com.example.app:/cb", Some("com.example.app:")),
            ("https://a.example;script-src/", None),
        ] {
            assert_eq!(csp_source(uri).as_deref(), source, "{uri}");
        }
    }

    #[test]
    fn only_the_exact_uri_or_a_loopback_port_matches() {
        let registered = vec![
            "https://app.example.com/callback".to_owned(),
            "http://127.0.0.1/cb".to_owned(),
            "http://[::1]:9000/cb?x=1".to_owned(),
        ];
        for ok in [
            "https://app.example.com/callback",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51234/cb",
            "http://[::1]/cb?x=1",
            "http://[::1]:1/cb?x=1",
        ] {
            assert!(matches(&registered, ok), "{ok}");
        }
        for bad in [
            "https://evil.example.com/callback",
            "https://app.example.com/callback/extra",
            "https://app.example.com/callback?next=https://evil.example.com",
            "https://app.example.com/callback#x",
            "https://app.example.com:444/callback",
            "https://app.example.com@evil.example.com/callback",
            "https://APP.example.com/callback",
            "http://app.example.com/callback",
            "http://127.0.0.1:80@evil.example.com/cb",
            "http://127.0.0.1:51234/cb/",
            "http://127.0.0.1:51234/other",
            "http://127.0.0.1:999999/cb",
            "http://localhost:51234/cb",
            "http://[::1]:9000/cb",
            "",
        ] {
            assert!(!matches(&registered, bad), "{bad}");
        }
    }
}
