//! Prometheus metrics through the `metrics` facade. The recorder is process-wide and
//! installed once; `/metrics` renders it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The installed recorder's handle; `None` when the embedding process installed its own
/// recorder first (the issuer's metrics then go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(_) => {
                    tracing::warn!("another metrics recorder is installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}
