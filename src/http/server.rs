//! The accept loop: plain HTTP or TLS per the settings, HTTP/1.1 and HTTP/2, a bound on how
//! long a client may take to send its headers or finish a handshake, and a graceful stop.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures_util::FutureExt as _;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tower::ServiceExt as _;

use super::deadline::ConnectionTimer;
use crate::app::{AppState, StartError};
use crate::config::Settings;

/// How long a stop waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The addresses the service listens on, bound first — so a busy port is reported before
/// any migration runs or key is made — but listened on only once the service is ready, so
/// nothing connects to (and no TCP health check passes on) an instance still starting.
pub struct Listeners {
    main: (SocketAddr, TcpSocket),
    /// `ISSUER_ADMIN_BIND`: metrics and probes, plain HTTP.
    admin: Option<(SocketAddr, TcpSocket)>,
}

const BACKLOG: u32 = 1024;

fn bind_error(setting: &'static str, addr: SocketAddr, source: std::io::Error) -> StartError {
    let hint = match source.kind() {
        std::io::ErrorKind::AddrInUse => format!("set {setting} to a free address"),
        std::io::ErrorKind::PermissionDenied => {
            format!("ports below 1024 need privileges; set {setting} to another address")
        }
        _ => format!("check {setting}"),
    };
    StartError::Bind {
        setting,
        addr,
        source,
        hint,
    }
}

impl Listeners {
    pub fn bind(settings: &Settings) -> Result<Self, StartError> {
        let bind = |setting: &'static str, addr: SocketAddr| {
            let socket = match addr {
                SocketAddr::V4(_) => TcpSocket::new_v4(),
                SocketAddr::V6(_) => TcpSocket::new_v6(),
            };
            socket
                .and_then(|socket| {
                    // As std's listener does: a restart need not wait out TIME_WAIT.
                    socket.set_reuseaddr(true)?;
                    socket.bind(addr)?;
                    Ok((addr, socket))
                })
                .map_err(|source| bind_error(setting, addr, source))
        };
        Ok(Self {
            main: bind("ISSUER_BIND", settings.bind)?,
            admin: settings
                .admin_bind
                .map(|addr| bind("ISSUER_ADMIN_BIND", addr))
                .transpose()?,
        })
    }

    /// Starts accepting connections: the main listener and the admin one, if any.
    pub fn listen(self) -> Result<(TcpListener, Option<TcpListener>), StartError> {
        let listen = |setting: &'static str, (addr, socket): (SocketAddr, TcpSocket)| {
            socket
                .listen(BACKLOG)
                .map_err(|source| bind_error(setting, addr, source))
        };
        Ok((
            listen("ISSUER_BIND", self.main)?,
            self.admin
                .map(|admin| listen("ISSUER_ADMIN_BIND", admin))
                .transpose()?,
        ))
    }
}

/// Bound listeners with the application behind them.
pub struct Server {
    listener: TcpListener,
    /// `ISSUER_ADMIN_BIND`: metrics and probes, plain HTTP.
    admin: Option<TcpListener>,
    app: Arc<AppState>,
}

impl Server {
    /// Serves on listeners the caller bound (tests bind port 0 before building the app).
    pub fn new(listener: TcpListener, admin: Option<TcpListener>, app: Arc<AppState>) -> Self {
        Self { listener, admin, app }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        // A client that has not sent its request headers (or finished its TLS handshake)
        // within the request timeout is disconnected: slow-loris connections cannot pile up.
        let patience = self.app.settings.request_timeout;
        // One stop for both listeners: the admin one closes when the main one does.
        let (stop, stopped) = tokio::sync::watch::channel(());
        let admin = self.admin.map(|listener| {
            let router = super::admin_router(self.app.clone());
            let answer = move |_peer, request| router.clone().oneshot(request);
            let mut stopped = stopped.clone();
            let stop = async move {
                let _ = stopped.changed().await;
            };
            tokio::spawn(serve(listener, answer, None, patience, stop))
        });
        let shutdown = async move {
            shutdown.await;
            drop(stop);
        };
        let tls = self.app.tls.as_ref().map(|t| t.acceptor());
        let edge = super::service(self.app);
        let answer = move |peer, request| edge.answer(peer, request).map(Ok);
        let served = serve(self.listener, answer, tls, patience, shutdown).await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        served
    }
}

/// Serves `listener` with `answer` (the client's address, its request; a tower service's
/// answer, which cannot fail), over TLS when given an acceptor, until `shutdown`.
async fn serve<A, Answered>(
    listener: TcpListener,
    answer: A,
    tls: Option<tokio_rustls::TlsAcceptor>,
    patience: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    A: Fn(IpAddr, Request) -> Answered + Clone + Send + Sync + 'static,
    Answered: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let mut http1 = http1::Builder::new();
    // Used only through `serve_connection`, which gives each connection a timer of its own.
    http1.header_read_timeout(patience);
    // HTTP/2 connections are pinged when idle and closed when the peer stops answering.
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(patience)
        .keep_alive_timeout(patience);
    let protocols = Arc::new(Protocols { http1, http2 });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (answer, protocols, tls, watcher) =
            (answer.clone(), protocols.clone(), tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            // The protocol is settled here, within the patience, never by sniffing without a
            // deadline: the HTTP/1 header deadline and the HTTP/2 pings only start once it is
            // known.
            let served = match tls {
                None => {
                    let Some(h2) = opens_http2(&tcp, patience).await else {
                        return;
                    };
                    serve_connection(TokioIo::new(tcp), h2, peer.ip(), answer, &protocols, watcher).await
                }
                Some(acceptor) => {
                    let Some(stream) = handshake(&acceptor, tcp, peer, patience).await else {
                        return;
                    };
                    // ALPN has chosen the protocol.
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_connection(TokioIo::new(stream), h2, peer.ip(), answer, &protocols, watcher).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}

/// How connections of each protocol are served.
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

/// Serves one connection in the protocol it speaks, with `answer`, until it ends or the
/// server stops. hyper's own connection for that protocol, not hyper-util's `auto`, which
/// puts a layer able to read either under every read.
async fn serve_connection<I, A, Answered>(
    io: I,
    h2: bool,
    peer: IpAddr,
    answer: A,
    protocols: &Protocols,
    watcher: Watcher,
) -> hyper::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    A: Fn(IpAddr, Request) -> Answered + Clone + Send + Sync + 'static,
    Answered: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        answer(peer, request.map(Body::new))
    });
    if h2 {
        watcher.watch(protocols.http2.serve_connection(io, service)).await
    } else {
        // Per connection: its header deadlines share one `Sleep` (`http::deadline`).
        let mut http1 = protocols.http1.clone();
        http1.timer(ConnectionTimer::default());
        watcher.watch(http1.serve_connection(io, service)).await
    }
}

/// Whether a plain-HTTP client speaks HTTP/2, told by its first bytes (RFC 9113 §3.4: HTTP/2
/// opens with the preface). `None` when it sends nothing, closes, or stops part-way through
/// the preface within `patience`.
async fn opens_http2(tcp: &TcpStream, patience: Duration) -> Option<bool> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let deadline = tokio::time::Instant::now() + patience;
    let mut first = [0u8; PREFACE.len()];
    let mut pause = Duration::from_millis(10);
    loop {
        let seen = match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
            Ok(Ok(seen)) if seen > 0 => seen,
            _ => return None,
        };
        if first[..seen] != PREFACE[..seen] {
            return Some(false);
        }
        if seen == PREFACE.len() {
            return Some(true);
        }
        // Part of the preface: peek answers at once while those bytes wait, so pause before
        // looking again, longer each time. Clients send the preface in one piece; only a
        // stalling one gets here, and it is let go at the deadline.
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep_until((tokio::time::Instant::now() + pause).min(deadline)).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    patience: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(patience, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, %peer, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}
