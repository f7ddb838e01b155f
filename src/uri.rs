//! URI rules shared by settings, client registration and request parameters.

/// What an audience or RFC 8707 resource must be, for error messages.
pub const ABSOLUTE_URI_RULE: &str = "an absolute URI without a fragment (scheme:rest, e.g. \
     https://api.example.com, urn:example:api, spiffe://example.org/api)";

/// RFC 3986 §4.3 `absolute-URI`: `scheme ":" hier-part [ "?" query ]`, no fragment. Any scheme
/// (`https:`, `urn:`, `spiffe:`, `api:` …) — JWT `aud` is a StringOrURI. Refused: relative
/// references, fragments, whitespace, control and non-ASCII characters, an empty remainder,
/// and an http(s) URI without a host.
pub fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let host_ok = match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => rest
            .strip_prefix("//")
            .is_some_and(|r| !r.is_empty() && !r.starts_with(['/', '?'])),
        _ => true,
    };
    scheme_ok && host_ok && !rest.is_empty() && rest.bytes().all(is_uri_char) && !rest.contains('#')
}

/// RFC 3986's unreserved, reserved and percent characters.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_scheme_is_an_absolute_uri() {
        for ok in [
            "https://api.example.com",
            "https://api.example.com/v1?x=1",
            "http://localhost:8080",
            "urn:reports:api",
            "urn:ietf:params:oauth:token-type:jwt",
            "spiffe://example.org/ns/prod/sa/api",
            "api://3f2c1b9e-0000-4000-8000-000000000000",
            "x-custom+v1.api:thing",
        ] {
            assert!(is_absolute_uri(ok), "{ok}");
        }
    }

    #[test]
    fn relative_references_fragments_and_junk_are_refused() {
        for bad in [
            "",
            "api.example.com",
            "/relative/path",
            "//host/path",
            ":no-scheme",
            "1urn:starts-with-digit",
            "urn:",
            "https://api.example.com/#frag",
            "urn:example#frag",
            "https:///path",
            "https://",
            "https:api.example.com",
            "urn:with space",
            "urn:tab\there",
            "urn:new\nline",
            "urn:caf\u{e9}",
            "urn:\"quoted\"",
            "ur n:x",
        ] {
            assert!(!is_absolute_uri(bad), "{bad:?}");
        }
    }
}
