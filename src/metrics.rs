//! Prometheus metrics through the `metrics` facade. The recorder is process-wide and
//! installed once; `/metrics` renders it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often the recorded latencies are folded into the histogram's buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The counters an alert watches exist from start, at zero, so an alert can be written and
/// tested before the first incident (a counter is otherwise born at its first event).
fn export_from_start() {
    for limit in [
        "login_ip",
        "login_account",
        "register",
        "refresh",
        "token",
        "in_flight",
    ] {
        metrics::counter!("issuer_rate_limited_total", "limit" => limit).absolute(0);
    }
    for grant in [
        "password",
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ] {
        for alg in ["RS256", "EdDSA"] {
            metrics::counter!("issuer_tokens_issued_total", "grant" => grant, "alg" => alg).absolute(0);
        }
    }
    for result in ["changed", "failed"] {
        metrics::counter!("issuer_keyset_reloads_total", "result" => result).absolute(0);
    }
    for name in [
        "issuer_requests_shed_total",
        "issuer_rate_limit_store_errors_total",
        "issuer_refresh_reuse_detected_total",
        "issuer_authorization_code_reuse_total",
        "issuer_login_failures_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
}

/// The installed recorder's handle; `None` when the embedding process installed its own
/// recorder first (the issuer's metrics then go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Latency as a histogram (aggregable across instances), from 0.5 ms to 10 s.
            let builder = PrometheusBuilder::new().set_buckets_for_metric(
                Matcher::Full("issuer_http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            );
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    export_from_start();
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(_) => {
                    tracing::warn!("another metrics recorder is installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Until it is folded into the buckets, every latency recorded is kept: without a scrape to
/// do it, 2 MiB more of memory per 100,000 requests, for good (measured: 22 MiB after 8 s of
/// JWKS answers). A thread of its own, as the recorder outlives any one async runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "cannot start the metrics upkeep; latencies are folded in at each scrape only");
    }
}

/// One answered request: counted by route, method and status, its latency by route.
pub fn http_request(route: &str, method: &'static str, status: StatusCode, elapsed: Duration) {
    ROUTES.with_borrow_mut(|routes| {
        let route_handles = match routes.get_mut(route) {
            Some(handles) => handles,
            None => routes.entry(route.to_owned()).or_insert_with(|| RouteHandles {
                duration: metrics::histogram!("issuer_http_request_duration_seconds", "route" => route.to_owned()),
                requests: HashMap::default(),
            }),
        };
        route_handles.duration.record(elapsed.as_secs_f64());
        route_handles
            .requests
            .entry((method, status.as_u16()))
            .or_insert_with(|| {
                metrics::counter!("issuer_http_requests_total", "route" => route.to_owned(), "method" => method, "status" => status.as_str().to_owned())
            })
            .increment(1);
    });
}

/// One access token issued, counted by grant and algorithm.
pub fn token_issued(grant: &'static str, alg: &'static str) {
    ISSUED.with_borrow_mut(|issued| {
        issued
            .entry((grant, alg))
            .or_insert_with(
                || metrics::counter!("issuer_tokens_issued_total", "grant" => grant, "alg" => alg),
            )
            .increment(1);
    });
}

/// A route's handles in the recorder. Kept per worker thread, as building a labelled key and
/// finding it in the recorder on every request cost 4 % of an EdDSA token's CPU; the labels
/// are bounded (the routes' paths, a fixed set of methods, the statuses the issuer answers),
/// so a fast hash that makes no claim against chosen keys will do: SipHash was a tenth of
/// the middleware's own work on a JWKS answer.
/// The handles belong to the global recorder, which is installed once and never replaced;
/// a thread-local recorder set later (`metrics::with_local_recorder`) would not see them.
struct RouteHandles {
    duration: Histogram,
    requests: HashMap<(&'static str, u16), Counter, Fast>,
}

type Fast = foldhash::fast::RandomState;

thread_local! {
    static ROUTES: RefCell<HashMap<String, RouteHandles, Fast>> = RefCell::default();
    /// `issuer_tokens_issued_total`'s handles, by grant and algorithm, as for the routes.
    static ISSUED: RefCell<HashMap<(&'static str, &'static str), Counter, Fast>> = RefCell::default();
}
