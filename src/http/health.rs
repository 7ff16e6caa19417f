//! `/healthz` (the process is alive), `/readyz` (the metadata store and the engine
//! answer), and `/metrics` (Prometheus text format).

use std::time::Duration;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Response, handler};
use serde_json::json;

use crate::app::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[handler]
pub(super) fn healthz() -> Response {
    Response::builder().content_type("application/json").body(json!({ "status": "ok" }).to_string())
}

/// Runs a readiness check with a timeout; logs the cause, reports only ok / error.
async fn check<F>(name: &str, check: F) -> bool
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(check = name, error = format!("{e:#}"), "readiness check failed");
            false
        }
        Err(_) => {
            tracing::warn!(check = name, "readiness check timed out");
            false
        }
    }
}

#[handler]
pub(super) async fn readyz(Data(state): Data<&AppState>) -> Response {
    let (store, engine) = tokio::join!(
        check("metadataStore", async { state.store.ping().await.map_err(anyhow::Error::from) }),
        check("engine", state.engine.ping()),
    );
    let word = |ok: bool| if ok { "ok" } else { "error" };
    let ready = store && engine;
    Response::builder()
        .status(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE })
        .content_type("application/json")
        .body(
            json!({
                "status": if ready { "ready" } else { "unavailable" },
                "checks": { "metadataStore": word(store), "engine": word(engine) },
            })
            .to_string(),
        )
}

#[handler]
pub(super) fn metrics(Data(state): Data<&AppState>) -> Response {
    Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}
