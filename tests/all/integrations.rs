//! Listing public integrations, the integration token, secrets and unpublishing.

use serde_json::{Value, json};

use crate::api_support::{changed_setup, echo_wasm, error_message, publish_wasm_with, publish_with, user_token};
use crate::support::{hello_wasm, spawn_app};

fn names(list: &Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn public_integrations_are_listed_and_filtered() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let block = json!({"id": "card", "title": "Card", "domains": ["example.com"]});
    publish_with(
        &app,
        "alpha",
        "acme",
        json!({"visibility": "public", "categories": ["analytics"], "blocks": [block]}),
    )
    .await;
    publish_with(&app, "beta", "acme", json!({"visibility": "public", "title": "Beta Search"})).await;
    publish_with(&app, "gamma", "acme", json!({"visibility": "private"})).await;
    publish_with(&app, "delta", "acme", json!({"visibility": "unlisted"})).await;

    let (status, list) = app.call("GET", "/v1/integrations", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!((names(&list), list["count"].as_i64()), (vec!["alpha", "beta"], Some(2)));
    assert!(list["items"][0].get("token").is_none() && list["items"][0].get("script").is_none());

    let cases = [
        ("search=SEARCH", vec!["beta"]),
        ("search=alp", vec!["alpha"]),
        ("category=analytics", vec!["alpha"]),
        ("category=other", vec![]),
        ("blockDomain=example.com", vec!["alpha"]),
        ("blocks=true", vec!["alpha"]),
        ("blocks=false", vec!["beta"]),
    ];
    for (query, expected) in cases {
        let (status, list) = app.call("GET", &format!("/v1/integrations?{query}"), None).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(names(&list), expected, "{query}");
    }

    let (_, first) = app.call("GET", "/v1/integrations?limit=1", None).await;
    assert_eq!((names(&first), first["next"]["page"].as_str()), (vec!["alpha"], Some("alpha")));
    let (_, second) = app.call("GET", "/v1/integrations?limit=1&page=alpha", None).await;
    assert_eq!(names(&second), vec!["beta"]);

    for (query, field) in [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("blockDomain=bad%20domain", "blockDomain"),
        ("blocks=maybe", "blocks"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app.call("GET", &format!("/v1/integrations?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(error_message(&body).contains(field), "{query}: {body}");
    }
    let (status, _) = app.call_as(None, "GET", "/v1/integrations", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_integration_token_acts_as_the_integration() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let first = publish_with(&app, "hello", "acme", json!({})).await;
    let token = first["token"].as_str().unwrap().to_owned();

    let (status, body) = app.call_as(Some(&token), "GET", "/v1/integrations/hello", None).await;
    assert_eq!((status, body["name"].as_str()), (200, Some("hello")));
    let (status, body) = app.call_as(Some(&token), "GET", "/v1/integrations/hello/events", None).await;
    assert_eq!(status, 200, "{body}");
    // It may publish new versions of itself, but is no organization admin.
    let publish = crate::support::publish_body("acme", hello_wasm());
    let (status, body) = app.call_as(Some(&token), "POST", "/v1/integrations/hello", Some(publish.clone())).await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(2)), "{body}");
    let (status, body) = app.call_as(Some(&token), "POST", "/v1/integrations/other", Some(publish)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .call_as(Some(&token), "POST", "/v1/integrations/hello/installations", Some(json!({"organization": "acme"})))
        .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_given_only_to_the_module() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let secrets = json!({"API_KEY": "s3cret-value", "OTHER": "x"});
    let published = publish_wasm_with(&app, "echo", "acme", &echo_wasm(), json!({"secrets": secrets})).await;
    assert!(!published.to_string().contains("s3cret-value"));
    let (_, fetched) = app.call("GET", "/v1/integrations/echo", None).await;
    assert!(!fetched.to_string().contains("s3cret-value") && fetched.get("secrets").is_none(), "{fetched}");

    let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
    let (sealed,): (String,) =
        sqlx::query_as("SELECT secrets FROM integrations WHERE name = 'echo'").fetch_one(&pool).await.unwrap();
    assert!(sealed.starts_with("v1:") && !sealed.contains("s3cret"), "{sealed}");
    let manifest: (String,) =
        sqlx::query_as("SELECT manifest FROM integrations WHERE name = 'echo'").fetch_one(&pool).await.unwrap();
    assert!(!manifest.0.contains("s3cret"));

    let installation = app.install("echo", "acme").await;
    let id = installation["id"].as_str().unwrap();
    let path = format!("/v1/integrations/echo/installations/{id}");
    let (status, body) = app.call("PATCH", &path, Some(json!({"configuration": {"x": 1}}))).await;
    assert_eq!(status, 200, "{body}");
    let environment = changed_setup(&app, "echo", 2).await["environment"].clone();
    assert_eq!(environment["secrets"], secrets);
    assert_eq!(environment["installation"]["configuration"], json!({"x": 1}));

    // The environment's tokens work against the API, each within its own rights.
    let installation_token = environment["apiTokens"]["installation"].as_str().unwrap();
    let integration_token = environment["apiTokens"]["integration"].as_str().unwrap();
    let (status, body) = app.call_as(Some(installation_token), "GET", &path, None).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(id)), "{body}");
    let (status, body) = app.call_as(Some(integration_token), "GET", "/v1/integrations/echo/installations", None).await;
    assert_eq!((status, body["count"].as_i64()), (200, Some(1)), "{body}");
    let (status, _) = app.call_as(Some(installation_token), "GET", "/v1/integrations/echo/events", None).await;
    assert_eq!(status, 403);
    let mut forged = installation_token.to_owned();
    forged.push('A');
    let (status, _) = app.call_as(Some(&forged), "GET", &path, None).await;
    assert_eq!(status, 401);

    // Republishing without `secrets` keeps them; with `secrets` replaces them.
    publish_wasm_with(&app, "echo", "acme", &echo_wasm(), json!({})).await;
    let (sealed_again,): (String,) =
        sqlx::query_as("SELECT secrets FROM integrations WHERE name = 'echo'").fetch_one(&pool).await.unwrap();
    assert_eq!(sealed_again, sealed);
    let mut bad = crate::support::publish_body("acme", &echo_wasm());
    bad["secrets"] = json!({"": "x"});
    let (status, body) = app.call("POST", "/v1/integrations/echo", Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("secrets"));
    bad = crate::support::publish_body("acme", &echo_wasm());
    bad["secrets"] = json!({"A": 1});
    let (status, body) = app.call("POST", "/v1/integrations/echo", Some(bad)).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn unpublishing_removes_the_integration_its_installations_and_tokens() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    let token = publish_with(&app, "hello", "acme", json!({"visibility": "unlisted"})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let installation = app.install("hello", "acme").await;
    app.install("hello", "other").await;
    let member = user_token(&app, "mia", "acme", "member").await;
    let outsider = user_token(&app, "olga", "other", "admin").await;

    let (status, body) = app.call_as(Some(&member), "DELETE", "/v1/integrations/hello", None).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app.call_as(Some(&outsider), "DELETE", "/v1/integrations/hello", None).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app.call_as(None, "DELETE", "/v1/integrations/hello", None).await;
    assert_eq!(status, 401);

    let admin = user_token(&app, "ada", "acme", "admin").await;
    let (status, body) = app.call_as(Some(&admin), "DELETE", "/v1/integrations/hello", None).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = app.call("GET", "/v1/integrations/hello", None).await;
    assert_eq!(status, 404);
    let path = format!("/v1/integrations/hello/installations/{}", installation["id"].as_str().unwrap());
    let (status, _) = app.call("GET", &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call_as(Some(&token), "GET", "/v1/integrations/hello", None).await;
    assert_eq!(status, 401, "the integration token died with it");
    let (status, _) = app.call("DELETE", "/v1/integrations/hello", None).await;
    assert_eq!(status, 404);
    // The name is free again, for anyone.
    publish_with(&app, "hello", "other", json!({})).await;
}
