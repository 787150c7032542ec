//! The gateway: Broker's one public HTTP surface. It keeps no state of its own; it authenticates
//! each request, checks scopes, and forwards to the owning service over gRPC, answering errors
//! as RFC 7807 problems (RFC 6749 JSON at the token endpoint).
//!
//! This file only wires the parts: service URLs → `clients` and the token verifier ([`AppState`]) →
//! `routes` (one module per API area) → the `rate_limit`s → the cross-cutting `layers` → the
//! listener (`server`, with its connection limits).

mod auth;
mod binding;
mod clients;
mod conditional;
pub mod config;
mod layers;
mod negotiation;
mod problem;
pub mod rate_limit;
mod routes;
mod server;
mod state;

pub use auth::{Authenticated, TokenGrace};
pub use clients::{Clients, Health};
pub use config::{GatewayConfig, SETTINGS};
pub use routes::ApiDoc;
pub use state::AppState;

use anyhow::Context;
use axum::Router;
use broker_common::Shutdown;
use broker_common::admin::AdminToken;
use broker_common::config::{CommonConfig, ServiceUrls};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// The gateway's router over `state`, with every route, fallback and layer.
pub fn router(state: AppState) -> Router {
    let mut routes = routes::api();
    if !state.rate_limits.is_off() {
        let limiter = rate_limit::Limiter {
            limits: state.rate_limits.clone(),
            verifier: state.verifier.clone(),
        };
        routes = routes.route_layer(axum::middleware::from_fn_with_state(
            limiter,
            rate_limit::limit,
        ));
    }
    let routes = routes
        .method_not_allowed_fallback(problem::method_not_allowed)
        .fallback(problem::not_found)
        .with_state(state);
    layers::apply(routes)
}

/// Serves the gateway on `listener` until `shutdown` fires, then lets in-flight requests finish.
pub async fn serve(
    common: &CommonConfig,
    config: ServiceUrls,
    gateway: &GatewayConfig,
    admin: AdminToken,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let (limits, rate_limits) = gateway.parsed()?;
    let state = AppState::new(common, &config, admin).with_context(|| {
        format!(
            "BROKER_TOKEN_URL {:?}, BROKER_ACCESS_URL {:?}, BROKER_FILETRANSFER_URL {:?} or \
             BROKER_EVENTS_URL {:?} is not a valid URL",
            config.token_url, config.access_url, config.filetransfer_url, config.events_url
        )
    })?;
    let state = state
        .with_rate_limits(rate_limits)
        .with_tus_token_grace(gateway.tus_token_grace());
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        token_url = %config.token_url,
        access_url = %config.access_url,
        filetransfer_url = %config.filetransfer_url,
        events_url = %config.events_url,
        ?limits,
        rate_limits = ?state.rate_limits,
        tus_token_grace = ?state.tus_token_grace.0,
        "gateway serving"
    );
    // ASP.NET routes `…/filetransfer/` as `…/filetransfer`; so do we, before routing.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(state));
    server::serve(listener, app, limits, shutdown).await;
    Ok(())
}
