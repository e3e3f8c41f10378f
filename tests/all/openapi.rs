//! The OpenAPI document matches the router, and the docs page renders it.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{repo_root, spawn_app};

/// The surfaces the document covers: `/v1`, the applications API (both) and OAuth.
const DOCUMENTED_PREFIXES: &[&str] =
    &["/v1", "/api/http/applications", "/api/v1/applications", "/oauth", "/.well-known"];

/// Every documented path registered with `.route("…")` in src/api.rs and src/api/**.rs.
fn routed_paths() -> BTreeSet<String> {
    let mut files = vec![repo_root().join("src/api.rs")];
    let mut dirs = vec![repo_root().join("src/api")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut paths = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        // `.route(` possibly followed by a line break before the string literal.
        for (i, _) in source.match_indices(".route(") {
            let rest = source[i + ".route(".len()..].trim_start();
            if let Some(literal) = rest.strip_prefix('"') {
                let path = &literal[..literal.find('"').unwrap()];
                if DOCUMENTED_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
                    paths.insert(path.replace("{*", "{"));
                }
            }
        }
    }
    paths
}

#[tokio::test]
async fn the_document_lists_every_routed_endpoint_and_only_those() {
    let app = spawn_app().await;
    let (status, document) = app.call_as(None, "GET", "/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let documented: BTreeMap<String, BTreeSet<String>> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| (path.clone(), item.as_object().unwrap().keys().cloned().collect()))
        .collect();

    let routed = routed_paths();
    assert!(routed.len() > 30, "the source scan found only {routed:?}");
    let missing: Vec<&String> = routed.iter().filter(|p| !documented.contains_key(*p)).collect();
    assert!(missing.is_empty(), "routed but not in /v1/openapi.json: {missing:?}");

    // Each documented method is routed and each other method is not (405).
    for (path, methods) in &documented {
        let concrete: String =
            path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            let (status, body) = app.call_as(None, &method.to_uppercase(), &concrete, None).await;
            let unrouted =
                status == 405 || (status == 404 && body["error"]["message"].as_str() == Some("no such endpoint"));
            assert_eq!(
                unrouted,
                !methods.contains(method),
                "{method} {path}: documented {}, answered {status} {body}",
                methods.contains(method)
            );
        }
    }
}

#[tokio::test]
async fn the_docs_page_renders_every_path_without_outside_scripts() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/v1/docs", app.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    let (_, document) = app.call_as(None, "GET", "/v1/openapi.json", None).await;
    for path in document["paths"].as_object().unwrap().keys() {
        assert!(html.contains(&format!("<code>{path}</code>")), "{path} is missing from /v1/docs");
    }
}
