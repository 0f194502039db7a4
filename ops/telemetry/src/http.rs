//! The operator's HTTP surface: `/metrics` (Prometheus text exposition), `/healthz` (the
//! process runs) and `/readyz` (start-up finished, and the process's own probe, if it set one,
//! says it can do its work).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

/// A readiness check run on every `/readyz`: `Err` says why the process cannot do its work now.
pub type Probe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Shared state behind the operator endpoints.
#[derive(Clone)]
pub struct OpsState {
    registry: Registry,
    ready: Arc<AtomicBool>,
    probe: Arc<OnceLock<Probe>>,
}

impl OpsState {
    /// State serving `registry`, not ready until [`OpsState::set_ready`] is called.
    pub fn new(registry: Registry) -> Self {
        OpsState {
            registry,
            ready: Arc::new(AtomicBool::new(false)),
            probe: Arc::default(),
        }
    }

    /// Adds a check `/readyz` runs once start-up finished (set once; later calls are ignored).
    /// It must be quick: it runs on the HTTP server's threads.
    pub fn set_probe(&self, probe: Probe) {
        let _ = self.probe.set(probe);
    }

    /// Marks the process ready (or not) for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// The router with `/metrics`, `/healthz` and `/readyz`.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_owned())],
            e.to_string().into_bytes(),
        ),
    }
}

async fn readyz(State(state): State<OpsState>) -> (StatusCode, String) {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_owned());
    }
    match state.probe.get().map_or(Ok(()), |probe| probe()) {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn readyz_is_ready_after_start_up_while_the_probe_passes() {
        let state = OpsState::new(Registry::new());
        let failing = Arc::new(AtomicBool::new(false));
        let probe_failing = failing.clone();
        // (started, probe set, probe failing) → status and body.
        let cases = [
            (
                false,
                false,
                false,
                StatusCode::SERVICE_UNAVAILABLE,
                "starting\n",
            ),
            (true, false, false, StatusCode::OK, "ready\n"),
            (true, true, false, StatusCode::OK, "ready\n"),
            (
                true,
                true,
                true,
                StatusCode::SERVICE_UNAVAILABLE,
                "stalled\n",
            ),
            (
                false,
                true,
                true,
                StatusCode::SERVICE_UNAVAILABLE,
                "starting\n",
            ),
        ];
        for (started, probe, fails, status, body) in cases {
            state.set_ready(started);
            if probe {
                let f = probe_failing.clone();
                state.set_probe(Arc::new(move || {
                    if f.load(Ordering::Acquire) {
                        Err("stalled".to_owned())
                    } else {
                        Ok(())
                    }
                }));
            }
            failing.store(fails, Ordering::Release);
            let got = readyz(State(state.clone())).await;
            assert_eq!(
                (got.0, got.1.as_str()),
                (status, body),
                "{started} {probe} {fails}"
            );
        }
    }
}
