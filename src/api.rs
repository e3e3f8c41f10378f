//! The HTTP API under `/v1`, in the shapes of the GitBook integrations reference.
//!
//! One module per resource, each with a `router()`. Errors are `{"error":{"code":N,"message":"…"}}`;
//! lists are `{"items":[…],"next":{"page":"…"},"count":N}`.

mod admin;
mod applications;
mod catalog;
mod dev;
mod error;
mod events;
mod extract;
mod fetch;
mod health;
mod ingest;
mod installations;
mod integrations;
mod openapi;
mod orgs;
mod page;
mod places;
mod schema;
mod stats;
mod tasks;
mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use error::ApiError;
pub use fetch::failure_status;

use crate::state::AppState;

/// Largest JSON body of the management API (publish has its own, larger limit).
const MAX_API_BODY_BYTES: usize = 1 << 20;

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let max_publish_body = state.runtime.config().max_module_bytes.div_ceil(3) * 4 + MAX_API_BODY_BYTES;
    let max_fetch_body = state.max_fetch_body_bytes;
    Router::new()
        .merge(orgs::router())
        .merge(installations::router())
        .merge(events::router())
        .merge(admin::router())
        .merge(places::router())
        .merge(openapi::router())
        .merge(tasks::router())
        .merge(catalog::router())
        .merge(stats::router())
        .merge(tokens::router())
        .merge(ingest::router())
        .merge(dev::router())
        .merge(health::router())
        .layer(DefaultBodyLimit::max(MAX_API_BODY_BYTES))
        .merge(integrations::router().layer(DefaultBodyLimit::max(max_publish_body)))
        .merge(fetch::router().layer(DefaultBodyLimit::max(max_fetch_body)))
        .merge(applications::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(state)
}

use crate::shapes::timestamp;

/// Where the API's objects are, for [`crate::shapes`].
fn urls(state: &AppState) -> crate::shapes::Urls<'_> {
    crate::shapes::Urls { base: &state.public_url }
}
