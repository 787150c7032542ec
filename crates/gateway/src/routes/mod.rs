//! The public HTTP API, one module per area. Each module owns its paths (`routes()`), its
//! request and response shapes, and their OpenAPI description; handlers only translate between
//! HTTP and the owning service's gRPC contract.

use axum::Router;

use crate::state::AppState;

mod admin;
mod health;
mod openapi;
mod token;
mod whoami;

pub use openapi::ApiDoc;

/// Every public route of the gateway.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(token::routes())
        .merge(admin::routes())
        .merge(whoami::routes())
        .merge(openapi::routes())
}
