//! The least an HTTP server can do on this machine for three of `scripts/bench`'s loads, with
//! hyper 1 on tokio's multi-threaded runtime (as token-issuer runs):
//! - a GET is answered with the same bytes every time (the JWKS load);
//! - a POST is answered with a fresh token: claims the size of ours, signed as token-issuer
//!   signs them, and nothing else: no client, no budget, no audit line. To `/eddsa` with an
//!   Ed25519 key on the worker (the client_credentials EdDSA load), to any other path with an
//!   RSA-2048 key on tokio's blocking pool (the RS256 load).
//!
//! The bench puts it under those loads beside token-issuer, so the rows show what is left
//! between our answer and a bare one.
//!
//!     http-floor PORT BODY_FILE

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, Ed25519KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// What a POST signs with: a key of each algorithm, and a counter for the tokens' `jti`.
struct Signer {
    rsa: RsaKeyPair,
    ed25519: Ed25519KeyPair,
    issued: AtomicU64,
}

#[derive(Clone, Copy)]
enum Alg {
    Rs256,
    EdDsa,
}

impl Signer {
    /// A token response around a compact JWS over claims shaped like token-issuer's access
    /// token.
    fn token(&self, alg: Alg) -> Option<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let jti = self.issued.fetch_add(1, Ordering::Relaxed);
        let claims = format!(
            r#"{{"iss":"http://127.0.0.1","sub":"bench","aud":"https://api.example.com","exp":{},"iat":{now},"jti":"{jti:032x}","client_id":"bench","scope":"read"}}"#,
            now + 300
        );
        let mut token = B64.encode(match alg {
            Alg::Rs256 => r#"{"alg":"RS256","kid":"bench-floor-key","typ":"at+jwt"}"#,
            Alg::EdDsa => r#"{"alg":"EdDSA","kid":"bench-floor-key","typ":"at+jwt"}"#,
        });
        token.push('.');
        B64.encode_string(claims, &mut token);
        let sig = match alg {
            Alg::Rs256 => {
                let mut sig = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        token.as_bytes(),
                        &mut sig,
                    )
                    .ok()?;
                sig
            }
            Alg::EdDsa => self.ed25519.sign(token.as_bytes()).as_ref().to_vec(),
        };
        token.push('.');
        B64.encode_string(sig, &mut token);
        Some(format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":300}}"#
        ))
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    body: Bytes,
    signer: Arc<Signer>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST {
        return Ok(json(body, "public, max-age=300"));
    }
    let alg = match request.uri().path() {
        "/eddsa" => Alg::EdDsa,
        _ => Alg::Rs256,
    };
    // Read, as a server must before it answers on the same connection.
    let token = match (request.into_body().collect().await, alg) {
        (Err(_), _) => None,
        (Ok(_), Alg::EdDsa) => signer.token(alg),
        (Ok(_), Alg::Rs256) => tokio::task::spawn_blocking(move || signer.token(alg))
            .await
            .ok()
            .flatten(),
    };
    let Some(token) = token else {
        let mut refused = Response::new(Full::new(Bytes::new()));
        *refused.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(refused);
    };
    Ok(json(Bytes::from(token), "no-store"))
}

fn json(body: Bytes, cache_control: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, body_file] = args.as_slice() else {
        return Err("usage: http-floor PORT BODY_FILE".into());
    };
    let body = Bytes::from(std::fs::read(body_file)?);
    let signer = Arc::new(Signer {
        rsa: RsaKeyPair::generate(KeySize::Rsa2048)?,
        ed25519: Ed25519KeyPair::generate()?,
        issued: AtomicU64::new(0),
    });
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
        let (body, signer) = (body.clone(), signer.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, body.clone(), signer.clone()));
            // A connection the client drops is over; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
