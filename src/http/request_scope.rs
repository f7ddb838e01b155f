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

    /// The fields of the request, in the order the logs show them: `(name, value)`.
    pub fn fields(&self, mut field: impl FnMut(&str, &dyn fmt::Display) -> fmt::Result) -> fmt::Result {
        field("request_id", &self.id())?;
        if let Some(ip) = &self.client_ip {
            field("client_ip", ip)?;
        }
        field("method", &self.method)?;
        field("path", &self.uri.path())
    }
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
