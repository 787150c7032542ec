//! Health probes: `/health` says the process is alive (no dependencies, for liveness probes)
//! with Altinn's text; `/health/ready` (ours) asks every backend over the standard gRPC health
//! service (for readiness probes and load balancers).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clients::Health;
use crate::state::AppState;

/// Altinn's answer to `GET /health`.
const LIVE: &str = "Environment properly configured";

/// The answer of the readiness probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `Healthy` when every check is.
    status: Health,
    /// Each backend's health by name (`token`, …).
    checks: BTreeMap<&'static str, Health>,
}

/// The health routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
}

/// Liveness: the process answers, with Altinn's text.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The gateway is alive", body = String,
        content_type = "text/plain", example = "Environment properly configured")))]
pub async fn live() -> &'static str {
    LIVE
}

/// Readiness: every backend service answers and serves.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, description = "Every backend is ready", body = Readiness),
    (status = 503, description = "A backend is not ready; `checks` says which", body = Readiness),
))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let checks = state.clients.readiness().await;
    let ready = checks.values().all(|health| *health == Health::Healthy);
    let (code, status) = if ready {
        (StatusCode::OK, Health::Healthy)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Health::Unhealthy)
    };
    (code, Json(Readiness { status, checks }))
}
