//! The gateway: Broker's one public HTTP surface. It keeps no state of its own; it authenticates
//! each request, checks scopes, and forwards to the owning service over gRPC, answering errors
//! as RFC 7807 problems (RFC 6749 JSON at the token endpoint).
//!
//! This file only wires the parts: service URLs → `clients` and the token verifier ([`AppState`]) →
//! `routes` (one module per API area) → the cross-cutting `layers` → the listener.

mod auth;
mod binding;
mod clients;
mod conditional;
mod layers;
mod negotiation;
mod problem;
mod routes;
mod state;

pub use auth::Authenticated;
pub use clients::{Clients, Health};
pub use routes::ApiDoc;
pub use state::AppState;

use anyhow::Context;
use axum::Router;
use axum::ServiceExt;
use axum::serve::ListenerExt;
use broker_common::Shutdown;
use broker_common::admin::AdminToken;
use broker_common::config::{CommonConfig, ServiceUrls};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

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
    config: ServiceUrls,
    admin: AdminToken,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let state = AppState::new(common, &config, admin).with_context(|| {
        format!(
            "BROKER_TOKEN_URL {:?}, BROKER_ACCESS_URL {:?}, BROKER_FILETRANSFER_URL {:?} or \
             BROKER_EVENTS_URL {:?} is not a valid URL",
            config.token_url, config.access_url, config.filetransfer_url, config.events_url
        )
    })?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        token_url = %config.token_url,
        access_url = %config.access_url,
        filetransfer_url = %config.filetransfer_url,
        events_url = %config.events_url,
        "gateway serving"
    );
    // Small answers (tokens, problems) must not wait on Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    // ASP.NET routes `…/filetransfer/` as `…/filetransfer`; so do we, before routing.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(state));
    axum::serve(
        listener,
        ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
    .context("serving the gateway")
}
