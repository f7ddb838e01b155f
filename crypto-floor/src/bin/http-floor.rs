//! The least an HTTP server can do for a JWKS request on this machine: hyper 1 on tokio's
//! multi-threaded runtime (as token-issuer runs), answering every request with the same bytes
//! and nothing else. `scripts/bench` puts it under the JWKS load beside token-issuer, so the
//! JWKS rows show what is left between our answer and a bare one.
//!
//!     http-floor PORT BODY_FILE

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, body_file] = args.as_slice() else {
        return Err("usage: http-floor PORT BODY_FILE".into());
    };
    let body = Bytes::from(std::fs::read(body_file)?);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port.parse()?))).await?;
    loop {
        // Like token-issuer's listener: one failed accept (a full file table, a connection
        // reset before it was taken) ends that connection, not the server.
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("http-floor: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Only latency depends on it.
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let answer = service_fn(move |_: Request<hyper::body::Incoming>| {
                let mut response = Response::new(Full::new(body.clone()));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
                async move { Ok::<_, Infallible>(response) }
            });
            // A connection the client drops is over; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), answer)
                .await;
        });
    }
}
