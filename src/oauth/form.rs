//! `application/x-www-form-urlencoded` parameters and HTTP Basic client credentials.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::OAuthError;

/// Request parameters; RFC 6749 §3.2: none may repeat — except RFC 8707's `resource` —
/// and empty ones count as absent.
#[derive(Default)]
pub struct FormParams {
    /// Sorted by name, and searched: our forms carry a handful, and hashing each name cost
    /// more than the search (BENCHMARKS.md, round 15).
    params: Vec<(String, String)>,
    resources: Vec<String>,
}

const REPEATABLE: &str = "resource";

/// Names only: values include secrets, assertions and tokens.
impl std::fmt::Debug for FormParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.params.iter().map(|(name, _)| name))
            .finish()
    }
}
impl FormParams {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let (mut params, mut resources) = (Vec::<(String, String)>::new(), Vec::new());
        for (name, value) in pairs(body) {
            if value.is_empty() {
                continue;
            }
            if name == REPEATABLE {
                resources.push(value.into_owned());
                continue;
            }
            params.push((name.into_owned(), value.into_owned()));
        }
        // Sorted, a repeated name sits next to itself.
        params.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        if let Some(pair) = params.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter {} is repeated",
                pair[0].0
            )));
        }
        Ok(Self { params, resources })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let found = self.params.binary_search_by(|(seen, _)| seen.as_str().cmp(name));
        found.ok().map(|i| self.params[i].1.as_str())
    }

    /// Every value of the one repeatable parameter, `resource`.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        match name {
            REPEATABLE => self.resources.iter().map(String::as_str).collect(),
            _ => self.get(name).into_iter().collect(),
        }
    }
    /// The parameters among `names` that were sent, in that order (what a form carries on).
    pub fn pick(&self, names: &[&'static str]) -> Vec<(&'static str, String)> {
        names
            .iter()
            .filter_map(|name| self.get(name).map(|v| (*name, v.to_owned())))
            .collect()
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("missing parameter {name}")))
    }
}

/// The name-value pairs of a form body, decoded: `form_urlencoded::parse`'s output, but a
/// name or value without `+` or `%` (a token, an id, a grant type) is only checked for UTF-8,
/// without form_urlencoded's byte-by-byte search for escapes (4 % of an introspection's CPU,
/// BENCHMARKS.md round 10).
fn pairs(body: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (form_decode(&pair[..eq]), form_decode(&pair[eq + 1..])),
            None => (form_decode(pair), Cow::Borrowed("")),
        })
}

/// One form-encoded name or value: `+` is a space, `%XX` a byte, and bytes that are not
/// UTF-8 become U+FFFD (WHATWG URL, application/x-www-form-urlencoded parsing). Decoded in one
/// pass into one buffer.
fn form_decode(bytes: &[u8]) -> Cow<'_, str> {
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return Cow::Borrowed(text);
        }
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        decoded.push(match b {
            b'+' => b' ',
            b'%' => match (bytes.get(i).and_then(hex), bytes.get(i + 1).and_then(hex)) {
                (Some(high), Some(low)) => {
                    i += 2;
                    high << 4 | low
                }
                // Not an escape: the `%` stays, and what follows is read as it is.
                _ => b'%',
            },
            b => b,
        });
    }
    match String::from_utf8(decoded) {
        Ok(text) => Cow::Owned(text),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(digit: &u8) -> Option<u8> {
    char::from(*digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// Client id and secret from `Authorization: Basic`, each form-decoded (RFC 6749 §2.3.1).
pub struct BasicCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

pub fn parse_basic_credentials(header: &str) -> Result<BasicCredentials, OAuthError> {
    let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
    let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient(
            "client authentication must use Basic".into(),
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(BasicCredentials {
        client_id: form_decode(id.as_bytes()).into_owned(),
        client_secret: form_decode(secret.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_invalid_requests() {
        let err = FormParams::parse(b"grant_type=a&grant_type=b").expect_err("repeated");
        assert_eq!(err.code(), "invalid_request");
        let ok = FormParams::parse(b"grant_type=refresh_token&scope=").expect("valid");
        assert_eq!(ok.get("grant_type"), Some("refresh_token"));
        assert_eq!(ok.get("scope"), None);
    }

    #[test]
    fn every_parameter_of_a_long_form_is_found_and_a_late_repeat_refused() {
        let form: Vec<String> = (0..300).rev().map(|i| format!("p{i}=v{i}")).collect();
        let params = FormParams::parse(form.join("&").as_bytes()).expect("valid");
        for i in 0..300 {
            assert_eq!(params.get(&format!("p{i}")), Some(format!("v{i}").as_str()));
        }
        assert_eq!(params.get("p300"), None);
        let repeated = format!("{}&p150=again&resource=a&resource=b", form.join("&"));
        let err = FormParams::parse(repeated.as_bytes()).expect_err("repeated");
        assert_eq!(err.code(), "invalid_request");
        let resources = format!("{}&resource=a&resource=b", form.join("&"));
        let ok = FormParams::parse(resources.as_bytes()).expect("resources repeat");
        assert_eq!(ok.get_all("resource"), ["a", "b"]);
    }

    proptest::proptest! {
        /// Any body, escapes, pluses, stray `=` and bytes that are not UTF-8 included, reads
        /// as form_urlencoded reads it.
        #[test]
        fn pairs_read_as_form_urlencoded_does(
            body in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"&=+%2aF\xff\xc3\xa9 x".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..40,
            )
        ) {
            let ours: Vec<_> = pairs(&body).collect();
            let theirs: Vec<_> = form_urlencoded::parse(&body).collect();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // id "a b", secret "p:w%" form-encoded as a+b and p%3Aw%25.
        let header = format!("Basic {}", STANDARD.encode("a+b:p%3Aw%25"));
        let creds = parse_basic_credentials(&header).expect("valid");
        assert_eq!(creds.client_id, "a b");
        assert_eq!(creds.client_secret, "p:w%");
        // Each is one value: a bare `&` or `=` in it is not a separator.
        let header = format!("Basic {}", STANDARD.encode("a&b:x=y&z"));
        let creds = parse_basic_credentials(&header).expect("valid");
        assert_eq!(
            (creds.client_id.as_str(), creds.client_secret.as_str()),
            ("a&b", "x=y&z")
        );
        assert!(parse_basic_credentials("Bearer x").is_err());
        assert!(parse_basic_credentials("Basic !!!").is_err());
    }
}
