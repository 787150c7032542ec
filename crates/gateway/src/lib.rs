//! The gateway: Broker's one public HTTP surface. It keeps no state of its own; it authenticates
//! each request, checks scopes, and forwards to the owning service over gRPC, answering errors
//! as RFC 7807 problems (RFC 6749 JSON at the token endpoint).
//!
//! This file only wires the parts: `config` → `clients` and the token verifier ([`AppState`]) →
//! `routes` (one module per API area) → the cross-cutting `layers` → the listener.

mod auth;
mod clients;
mod config;
mod extract;
mod layers;
mod problem;
mod routes;
mod state;

pub use auth::Authenticated;
pub use clients::{Clients, Health};
pub use config::{GatewayConfig, SETTINGS};
pub use routes::ApiDoc;
pub use state::AppState;

use anyhow::Context;
use axum::Router;
use broker_common::Shutdown;
use broker_common::admin::AdminToken;
use broker_common::config::CommonConfig;
use tokio::net::TcpListener;

/// The gateway's router over `state`, with every route, fallback and layer.
pub fn router(state: AppState) -> Router {
    let routes = routes::api()
        .method_not_allowed_fallback(problem::method_not_allowed)
        .fallback(problem::not_found)
        .with_state(state);
    layers::apply(routes)
}

/// Serves the gateway on `listener` until `shutdown` fires, then lets in-flight requests finish.
pub async fn serve(
    common: &CommonConfig,
    config: GatewayConfig,
    admin: AdminToken,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let state = AppState::new(common, &config, admin)
        .with_context(|| format!("BROKER_TOKEN_URL {:?} is not a valid URL", config.token_url))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, token_url = %config.token_url, "gateway serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving the gateway")
}
