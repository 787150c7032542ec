//! The public HTTP API, one module per area. Each module owns its paths (`routes()`), its
//! request and response shapes, and their OpenAPI description; handlers only translate between
//! HTTP and the owning service's gRPC contract.

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::state::AppState;

mod access_list_memberships;
mod access_lists;
mod admin;
mod events;
mod filetransfer;
mod health;
mod openapi;
mod openapi_rules;
mod paging;
mod resources;
mod service_owners;
mod token;
mod whoami;

pub use openapi::ApiDoc;

/// Access-registry bodies are small JSON documents; a larger one is refused (413) before it is
/// buffered.
const REGISTRY_BODY_LIMIT: usize = 1024 * 1024;

/// Every public route of the gateway.
pub fn api() -> Router<AppState> {
    let registry = Router::new()
        .merge(service_owners::routes())
        .merge(resources::routes())
        .merge(access_lists::routes())
        .merge(access_list_memberships::routes())
        .layer(DefaultBodyLimit::max(REGISTRY_BODY_LIMIT));
    Router::new()
        .merge(health::routes())
        .merge(token::routes())
        .merge(admin::routes())
        .merge(registry)
        .merge(filetransfer::routes())
        .merge(events::routes())
        .merge(whoami::routes())
        .merge(openapi::routes())
}
