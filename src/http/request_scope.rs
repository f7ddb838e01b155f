//! The request being handled: its id, client address, method and path, set by the request
//! middleware for the whole of its handling. Every log line written meanwhile names them
//! (`cli::logging`), and a server error's body carries the id. A task-local, not a tracing
//! span: a span per request cost an eighth of a JWKS answer's CPU, spent even when nothing
//! is logged, which is nearly always.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;

use axum::http::{HeaderName, HeaderValue, Method, Uri};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct RequestScope {
    /// Visible ASCII, so also a header value.
    pub id: HeaderValue,
    pub client_ip: Option<IpAddr>,
    pub method: Method,
    /// The path only is ever shown: query strings are not logged.
    pub uri: Uri,
}

impl RequestScope {
    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }

    /// The fields of the request, in the order the logs show them: `(name, value)`. Text,
    /// not `Display`: written through `fmt`, they were half of an audit line's cost
    /// (BENCHMARKS.md, round 15).
    pub fn fields(&self, mut field: impl FnMut(&str, &str) -> fmt::Result) -> fmt::Result {
        field("request_id", self.id())?;
        if let Some(ip) = self.client_ip {
            field("client_ip", &ip_text(ip))?;
        }
        field("method", self.method.as_str())?;
        field("path", self.uri.path())
    }
}

/// `ip` as text, an IPv4 address number by number (`Ipv4Addr`'s `Display` goes through
/// `fmt` for each of them).
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, n) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if n >= 100 {
            text.push(char::from(b'0' + n / 100));
        }
        if n >= 10 {
            text.push(char::from(b'0' + n / 10 % 10));
        }
        text.push(char::from(b'0' + n % 10));
    }
    text
}

tokio::task_local! {
    static CURRENT: RequestScope;
}

/// Runs `handling` as the request `scope`.
pub fn scope<F: Future>(scope: RequestScope, handling: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(scope, handling)
}

/// `read` of the request being handled; `None` outside one.
pub fn with_current<R>(read: impl FnOnce(&RequestScope) -> R) -> Option<R> {
    CURRENT.try_with(read).ok()
}

/// The id of the request being handled; empty outside one.
pub fn current_id() -> String {
    with_current(|scope| scope.id().to_owned()).unwrap_or_default()
}

/// Runs `f` as the request `scope`, outside any task.
#[cfg(test)]
pub fn sync_scope<R>(scope: RequestScope, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(scope, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn an_address_reads_as_its_display(octets: [u8; 4], segments: [u16; 8]) {
            for ip in [IpAddr::from(octets), IpAddr::from(segments)] {
                proptest::prop_assert_eq!(ip_text(ip), ip.to_string());
            }
        }
    }
}
