//! Health probes in ASP.NET's health-check shape: `/health` says the process is alive (no
//! dependencies, for liveness probes); `/health/ready` asks every backend over the standard gRPC
//! health service (for readiness probes and load balancers).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clients::Health;
use crate::state::AppState;

/// The answer of the liveness probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `Healthy`: a process that can answer is alive.
    status: Health,
}

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

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The gateway is alive", body = Liveness)))]
pub async fn live() -> Json<Liveness> {
    Json(Liveness {
        status: Health::Healthy,
    })
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
