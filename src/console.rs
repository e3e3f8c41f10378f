//! The web console at `/console`: a small single-page app (one HTML shell, one script, one
//! stylesheet, embedded in the binary) that signs in with a weft token and calls the same
//! JSON API as every other client — no private endpoints, no cookies.
//!
//! The token stays in the tab's `sessionStorage` and travels only in the `Authorization`
//! header of the script's own requests, so a cross-site form or link carries no credential
//! (nothing to forge) and a URL never holds it. Every console response carries a strict
//! Content-Security-Policy (no inline script or style, nothing from another origin) and
//! refuses framing.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const INDEX: &str = include_str!("console/assets/index.html");
const SCRIPT: &str = include_str!("console/assets/console.js");
const STYLE: &str = include_str!("console/assets/console.css");
const ICON: &str = include_str!("console/assets/icon.svg");

/// The console's routes (stateless: the page's script talks to the API).
pub fn router() -> Router {
    Router::new()
        .route("/console", get(|| async { asset(INDEX, "text/html; charset=utf-8") }))
        .route("/console/", get(|| async { Redirect::permanent("/console") }))
        .route("/console/console.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/console/console.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/console/icon.svg", get(|| async { asset(ICON, "image/svg+xml") }))
        .route(
            "/console/{*rest}",
            get(|| async { secured((StatusCode::NOT_FOUND, "no such console page").into_response()) }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    secured(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Adds the console's security headers. Assets change only with the binary, so the browser
/// revalidates (`no-cache`) rather than keeping a stale script beside a newer server.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
