//! The OpenAPI 3.1 document of the `/v1` API (`GET /v1/openapi.json`) and a plain HTML page
//! rendering it (`GET /v1/docs`, no scripts, no CDN).
//!
//! The document is generated from [`ROUTES`], a table kept next to the routers; the test
//! `tests/all/openapi.rs` fails when a route of the router is missing from the table or a
//! documented method is not routed.

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(|| async { Json(document()) })).route("/v1/docs", get(docs))
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token.
    Public,
    /// Any valid token (what it sees depends on the token).
    Token,
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method, lowercase.
    pub method: &'static str,
    /// The path as routed (axum syntax, `{*rest}` for a wildcard).
    pub path: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Authentication.
    pub access: Access,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// JSON body fields, if it takes a body.
    pub body: Option<&'static str>,
    /// The success status.
    pub ok: u16,
}

const fn route(method: &'static str, path: &'static str, summary: &'static str, ok: u16) -> Route {
    Route { method, path, summary, access: Access::Token, query: &[], body: None, ok }
}

const PAGE: &[&str] = &["page", "limit"];
/// GitBook's integration search parameters, on both integration lists.
const INTEGRATION_SEARCH: &[&str] =
    &["page", "limit", "search", "category", "blockDomain", "blocks", "contentSources", "owner", "scope", "target"];
const FETCH: &str = "/v1/integrations/{integrationName}/installations/{installationId}/fetch";
const INSTALLATION: &str = "/v1/integrations/{integrationName}/installations/{installationId}";

/// Every `/v1` route, and the operations endpoints.
pub const ROUTES: &[Route] = &[
    Route { access: Access::Public, ..route("get", "/v1/openapi.json", "This OpenAPI 3.1 document", 200) },
    Route { access: Access::Public, ..route("get", "/v1/docs", "This document as an HTML page", 200) },
    Route { body: Some("id, name"), ..route("post", "/v1/users", "Create a user (operator)", 201) },
    route("get", "/v1/user", "Get the user the token acts for (the operator for the admin token)", 200),
    route("delete", "/v1/users/{userId}", "Delete a user, their memberships and tokens (operator)", 204),
    route("post", "/v1/users/{userId}/tokens", "Create a user API token, shown once (operator or the user)", 201),
    route("get", "/v1/users/{userId}/tokens", "List a user's API tokens, without secrets (operator or the user)", 200),
    route("delete", "/v1/users/{userId}/tokens/{tokenId}", "Revoke a user's API token (operator or the user)", 204),
    Route { body: Some("id, title"), ..route("post", "/v1/orgs", "Create an organization (operator)", 201) },
    route("get", "/v1/orgs/{organizationId}", "Get an organization", 200),
    route("get", "/v1/orgs/{organizationId}/members", "List an organization's members", 200),
    Route {
        body: Some("userId, role (admin | member)"),
        ..route("post", "/v1/orgs/{organizationId}/members", "Add a member or change their role (org admin)", 200)
    },
    route("delete", "/v1/orgs/{organizationId}/members/{userId}", "Remove a member (org admin)", 204),
    Route { query: PAGE, ..route("get", "/v1/orgs/{organizationId}/spaces", "List an organization's spaces", 200) },
    Route {
        body: Some("title, id?"),
        ..route("post", "/v1/orgs/{organizationId}/spaces", "Create a space (org admin)", 201)
    },
    Route { query: PAGE, ..route("get", "/v1/orgs/{organizationId}/sites", "List an organization's sites", 200) },
    Route {
        body: Some("title, id?"),
        ..route("post", "/v1/orgs/{organizationId}/sites", "Create a site (org admin)", 201)
    },
    Route { query: INTEGRATION_SEARCH, ..route("get", "/v1/integrations", "List all public integrations", 200) },
    Route {
        query: INTEGRATION_SEARCH,
        ..route(
            "get",
            "/v1/orgs/{organizationId}/integrations",
            "List all public integrations along with the organization's own",
            200,
        )
    },
    route("get", "/v1/integrations/{integrationName}", "Get a specific integration by its name", 200),
    Route {
        body: Some(
            "title, description, script, organization, icon?, summary?, previewImages?, visibility?, target?, \
             contentSecurityPolicy?, scopes?, categories?, blocks?, contentSources?, configurations?, externalLinks?, \
             secrets?, limits?, events?, schedules?, runtime? (v1 | v2, ignored)",
        ),
        ..route("post", "/v1/integrations/{integrationName}", "Publish an integration", 200)
    },
    route("delete", "/v1/integrations/{integrationName}", "Unpublish an integration", 204),
    route(
        "post",
        "/v1/integrations/{integrationName}/tokens",
        "Create an integration API token, shown once (org admin or the integration)",
        201,
    ),
    route(
        "get",
        "/v1/integrations/{integrationName}/tokens",
        "List an integration's API tokens, without secrets (org admin or the integration)",
        200,
    ),
    route(
        "delete",
        "/v1/integrations/{integrationName}/tokens/{tokenId}",
        "Revoke an integration's API token (org admin or the integration)",
        204,
    ),
    Route {
        query: &["page", "limit", "externalId"],
        ..route("get", "/v1/integrations/{integrationName}/installations", "List installations of an integration", 200)
    },
    Route {
        body: Some("organization, configuration?"),
        ..route(
            "post",
            "/v1/integrations/{integrationName}/installations",
            "Install integration on a target organization",
            201,
        )
    },
    route("get", INSTALLATION, "Get a specific integration's installation by its ID", 200),
    Route {
        body: Some("externalIds?, space_selection?, site_selection?, configuration?"),
        ..route("patch", INSTALLATION, "Update external IDs and configurations of an installation", 200)
    },
    route("delete", INSTALLATION, "Uninstall the integration from a target organization", 204),
    route(
        "post",
        "/v1/integrations/{integrationName}/installations/{installationId}/tokens",
        "Create an integration installation API token (integration token only)",
        200,
    ),
    Route {
        query: &["page", "limit", "externalId", "extended"],
        ..route("get", "/v1/integrations/{integrationName}/spaces", "List space installations of an integration", 200)
    },
    Route {
        query: &["page", "limit", "externalId", "extended"],
        ..route("get", "/v1/integrations/{integrationName}/sites", "List site installations of an integration", 200)
    },
    Route {
        query: &["page", "limit", "extended"],
        ..route(
            "get",
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces",
            "List installations on spaces for an installation",
            200,
        )
    },
    Route {
        query: &["extended"],
        body: Some("spaceId"),
        ..route(
            "post",
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces",
            "Install integration on a space using an existing installation",
            201,
        )
    },
    Route {
        query: &["extended"],
        ..route(
            "get",
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces/{spaceId}",
            "Get a specific integration's space installation",
            200,
        )
    },
    Route {
        query: &["extended"],
        body: Some("configuration?, externalIds?"),
        ..route(
            "patch",
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces/{spaceId}",
            "Update the configuration and external IDs of a space installation",
            200,
        )
    },
    route(
        "delete",
        "/v1/integrations/{integrationName}/installations/{installationId}/spaces/{spaceId}",
        "Remove an installation from a space",
        204,
    ),
    Route {
        query: &["page", "limit", "extended"],
        ..route(
            "get",
            "/v1/integrations/{integrationName}/installations/{installationId}/sites",
            "List installations on sites for an installation",
            200,
        )
    },
    Route {
        query: &["extended"],
        body: Some("siteId"),
        ..route(
            "post",
            "/v1/integrations/{integrationName}/installations/{installationId}/sites",
            "Install integration on a site using an existing installation",
            201,
        )
    },
    Route {
        query: &["extended"],
        ..route(
            "get",
            "/v1/integrations/{integrationName}/installations/{installationId}/sites/{siteId}",
            "Get a specific integration's site installation",
            200,
        )
    },
    Route {
        query: &["extended"],
        body: Some("configuration?, externalIds?"),
        ..route(
            "patch",
            "/v1/integrations/{integrationName}/installations/{installationId}/sites/{siteId}",
            "Update the configuration and external IDs of a site installation",
            200,
        )
    },
    route(
        "delete",
        "/v1/integrations/{integrationName}/installations/{installationId}/sites/{siteId}",
        "Remove an installation from a site",
        204,
    ),
    Route {
        query: &["page", "limit", "status", "type", "installation"],
        ..route("get", "/v1/integrations/{integrationName}/events", "List all integration events", 200)
    },
    route(
        "get",
        "/v1/integrations/{integrationName}/events/{eventId}",
        "Get a specific integration event by its id",
        200,
    ),
    route("get", "/v1/integrations/{integrationName}/dev", "Read an integration's development mode", 200),
    Route {
        body: Some("tunnelUrl (1–256), all?"),
        ..route("put", "/v1/integrations/{integrationName}/dev", "Update an integration to be in development mode", 204)
    },
    route("delete", "/v1/integrations/{integrationName}/dev", "Disable the development mode on an integration", 204),
    Route {
        query: &["all"],
        ..route(
            "get",
            "/v1/integrations/{integrationName}/dev/connect",
            "Open the dev-mode reverse tunnel (WebSocket upgrade)",
            101,
        )
    },
    Route {
        query: &["status", "installation"],
        ..route(
            "get",
            "/v1/integrations/{integrationName}/events/stream",
            "Stream the integration's events as they are recorded (server-sent events)",
            200,
        )
    },
    Route {
        body: Some("task, schedule? (seconds, ≤ 86400), idempotencyKey?"),
        ..route(
            "post",
            "/v1/integrations/{integrationName}/tasks",
            "Queue a task for an integration to be executed later",
            204,
        )
    },
    Route {
        query: &["status", "limit", "page"],
        ..route("get", "/v1/integrations/{integrationName}/tasks", "List an integration's queued or dead tasks", 200)
    },
    route(
        "post",
        "/v1/integrations/{integrationName}/tasks/{taskId}/retry",
        "Run a dead-lettered task again (integration or org admin; 409 when not dead)",
        200,
    ),
    Route {
        query: &["page", "limit", "search"],
        ..route("get", "/v1/user/integrations", "List every integration the token can see and operate", 200)
    },
    Route {
        query: &["limit"],
        ..route("get", "/v1/integrations/{integrationName}/versions", "List an integration's published versions", 200)
    },
    Route {
        query: &["window"],
        ..route("get", "/v1/stats", "Event and queue figures of the whole server (operator)", 200)
    },
    Route {
        query: &["window"],
        ..route(
            "get",
            "/v1/orgs/{organizationId}/stats",
            "Event and queue figures of an organization's integrations",
            200,
        )
    },
    Route {
        query: &["window"],
        ..route("get", "/v1/integrations/{integrationName}/stats", "Event and queue figures of an integration", 200)
    },
    Route {
        body: Some("type, spaceId?, siteId?, payload?"),
        ..route(
            "post",
            "/v1/orgs/{organizationId}/events",
            "Report a host product event to the organization's subscribed installations",
            202,
        )
    },
    Route {
        query: &["search"],
        ..route("get", "/v1/spaces/{spaceId}/integrations", "List integrations enabled in a space", 200)
    },
    route("get", "/v1/spaces/{spaceId}/integration-blocks", "List integration blocks for a space", 200),
    Route {
        query: &["search"],
        ..route(
            "get",
            "/v1/orgs/{organizationId}/sites/{siteId}/integrations",
            "List integrations enabled in a site",
            200,
        )
    },
    route(
        "get",
        "/v1/orgs/{organizationId}/sites/{siteId}/integration-scripts",
        "List the scripts to embed in published content for a site",
        200,
    ),
    route(
        "get",
        "/v1/orgs/{organizationId}/integrations/{integrationName}/installation_status",
        "Get the status of an integration installation in an organization",
        200,
    ),
    Route {
        query: &["page", "limit", "target", "space", "site"],
        ..route(
            "get",
            "/v1/orgs/{organizationId}/integrations/installations-status",
            "List the integrations installed in an organization, on its spaces or on its sites",
            200,
        )
    },
    Route {
        query: &["page", "limit", "search"],
        ..route(
            "get",
            "/v1/orgs/{organizationId}/installations",
            "List an organization's installations, each with its integration",
            200,
        )
    },
    fetch("get", FETCH),
    fetch("post", FETCH),
    fetch("put", FETCH),
    fetch("patch", FETCH),
    fetch("delete", FETCH),
    fetch("get", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/"),
    fetch("post", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/"),
    fetch("put", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/"),
    fetch("patch", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/"),
    fetch("delete", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/"),
    fetch("get", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/{*path}"),
    fetch("post", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/{*path}"),
    fetch("put", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/{*path}"),
    fetch("patch", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/{*path}"),
    fetch("delete", "/v1/integrations/{integrationName}/installations/{installationId}/fetch/{*path}"),
    integration_fetch("get", "/v1/integrations/{integrationName}/fetch"),
    integration_fetch("post", "/v1/integrations/{integrationName}/fetch"),
    integration_fetch("put", "/v1/integrations/{integrationName}/fetch"),
    integration_fetch("patch", "/v1/integrations/{integrationName}/fetch"),
    integration_fetch("delete", "/v1/integrations/{integrationName}/fetch"),
    integration_fetch("get", "/v1/integrations/{integrationName}/fetch/"),
    integration_fetch("post", "/v1/integrations/{integrationName}/fetch/"),
    integration_fetch("put", "/v1/integrations/{integrationName}/fetch/"),
    integration_fetch("patch", "/v1/integrations/{integrationName}/fetch/"),
    integration_fetch("delete", "/v1/integrations/{integrationName}/fetch/"),
    integration_fetch("get", "/v1/integrations/{integrationName}/fetch/{*path}"),
    integration_fetch("post", "/v1/integrations/{integrationName}/fetch/{*path}"),
    integration_fetch("put", "/v1/integrations/{integrationName}/fetch/{*path}"),
    integration_fetch("patch", "/v1/integrations/{integrationName}/fetch/{*path}"),
    integration_fetch("delete", "/v1/integrations/{integrationName}/fetch/{*path}"),
    Route { access: Access::Public, ..route("get", "/healthz", "Liveness: the process answers", 200) },
    Route {
        access: Access::Public,
        ..route("get", "/readyz", "Readiness: the database answers and shutdown has not begun (503 otherwise)", 200)
    },
    route("get", "/metrics", "Prometheus metrics (operator, unless the server runs with --metrics-public)", 200),
];

const fn fetch(method: &'static str, path: &'static str) -> Route {
    Route {
        access: Access::Public,
        ..route(method, path, "An installation's public endpoint: runs a `fetch` event and relays the answer", 200)
    }
}

const fn integration_fetch(method: &'static str, path: &'static str) -> Route {
    Route {
        access: Access::Public,
        ..route(
            method,
            path,
            "The integration's public endpoint (`urls.publicEndpoint`): runs a `fetch` event with no installation",
            200,
        )
    }
}

/// An axum path in OpenAPI form (`{*rest}` becomes `{rest}`).
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| name.trim_start_matches('*').to_owned())
        .collect()
}

fn status_text(status: u16) -> &'static str {
    match status {
        101 => "Switching protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        303 => "See other",
        _ => "Answer",
    }
}

fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    parameters.extend(route.query.iter().map(|name| {
        let schema = match *name {
            "limit" => json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
            "blocks" | "extended" | "all" => json!({ "type": "boolean" }),
            _ => json!({ "type": "string" }),
        };
        json!({ "name": name, "in": "query", "required": false, "schema": schema })
    }));
    let mut responses = Map::new();
    let ok = if matches!(route.ok, 101 | 204) {
        json!({ "description": status_text(route.ok) })
    } else {
        json!({ "description": status_text(route.ok), "content": { "application/json": { "schema": { "type": "object" } } } })
    };
    responses.insert(route.ok.to_string(), ok);
    let errors: &[u16] = if route.access == Access::Public { &[404] } else { &[400, 401, 403, 404] };
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({
                "description": "Error",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
            }),
        );
    }
    let id: String = format!("{}{}", route.method, route.path)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut op = json!({
        "operationId": id,
        "summary": route.summary,
        "tags": [route.path.split('/').nth(2).unwrap_or("v1")],
        "parameters": parameters,
        "responses": responses,
    });
    if route.access == Access::Public {
        op["security"] = json!([]);
    }
    if let Some(fields) = route.body {
        op["requestBody"] = json!({
            "required": true,
            "description": format!("JSON object with: {fields}"),
            "content": { "application/json": { "schema": { "type": "object" } } },
        });
    }
    op
}

/// The applications surfaces answer errors in their own shapes (see ARCHITECTURE.md).
fn applications_errors(path: &str, operation: &mut Value) {
    let schema = if path.starts_with("/api/v1/") {
        "PrivateAppsError"
    } else if path.starts_with("/api/http/") || path.starts_with("/oauth/") {
        "ApplicationsError"
    } else {
        return;
    };
    for (_, response) in operation["responses"].as_object_mut().into_iter().flatten() {
        if response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error" {
            response["content"]["application/json"]["schema"]["$ref"] = json!(format!("#/components/schemas/{schema}"));
        }
    }
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES.iter().chain(super::applications::ROUTES) {
        let item = paths.entry(openapi_path(route.path)).or_insert_with(|| json!({}));
        item[route.method] = operation(route);
        applications_errors(route.path, &mut item[route.method]);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "weft integrations API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Publish, install and run WebAssembly integrations, in the shapes of the GitBook \
                            integrations API. Lists are {items, next: {page}, count}; errors are \
                            {error: {code, message}}.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "ApplicationsError": {
                    "type": "object",
                    "required": ["error", "error_description"],
                    "properties": { "error": { "type": "string" }, "error_description": { "type": "string" } },
                },
                "PrivateAppsError": {
                    "type": "object",
                    "required": ["detail"],
                    "properties": { "detail": {} },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": { "code": { "type": "integer" }, "message": { "type": "string" } },
                        },
                    },
                },
            },
        },
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The document rendered as one HTML page.
async fn docs() -> Html<String> {
    let document = document();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>weft API</title><style>\
         body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}\
         code{background:#f4f4f4;padding:0 .2rem}.op{border-top:1px solid #ddd;padding:.6rem 0}\
         .m{display:inline-block;min-width:4rem;font-weight:bold;text-transform:uppercase}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>{}</h1><p>{}</p><p>Machine-readable: <a href=\"/v1/openapi.json\">/v1/openapi.json</a></p>",
        escape(document["info"]["title"].as_str().unwrap_or("")),
        escape(document["info"]["description"].as_str().unwrap_or(""))
    ));
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            html.push_str(&format!(
                "<div class=\"op\"><span class=\"m\">{}</span> <code>{}</code> — {}",
                escape(method),
                escape(path),
                escape(op["summary"].as_str().unwrap_or(""))
            ));
            let parameters: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "<code>{}</code> ({})",
                        escape(p["name"].as_str().unwrap_or("")),
                        p["in"].as_str().unwrap_or("")
                    )
                })
                .collect();
            if !parameters.is_empty() {
                html.push_str(&format!("<br>Parameters: {}", parameters.join(", ")));
            }
            if let Some(body) = op["requestBody"]["description"].as_str() {
                html.push_str(&format!("<br>Body: {}", escape(body)));
            }
            let statuses: Vec<&str> =
                op["responses"].as_object().into_iter().flatten().map(|(s, _)| s.as_str()).collect();
            html.push_str(&format!("<br>Responses: {}", statuses.join(", ")));
            if op.get("security").is_some() {
                html.push_str(" · no token needed");
            }
            html.push_str("</div>");
        }
    }
    html.push_str("</body></html>");
    Html(html)
}
