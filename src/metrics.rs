//! Prometheus metrics through the `metrics` facade. The recorder is process-wide and
//! installed once; `/metrics` renders it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

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
