//! Who may do what: 401 without a valid token, 403 without the right, and no way for one
//! organization to read or change another's installations, configurations or events.

use serde_json::{Value, json};

use crate::api_support::{create_place, error_message, publish_with, user_token};
use crate::support::{TestApp, publish_body, spawn_app};

/// Two organizations sharing an unlisted integration of acme's, each with an installation
/// on a space and a site of its own; acme also has a private integration.
struct World {
    app: TestApp,
    /// acme's admin, acme's member, bravo's admin.
    ada: String,
    mia: String,
    bob: String,
    inst_a: String,
    inst_b: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("bravo").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    let mia = user_token(&app, "mia", "acme", "member").await;
    let bob = user_token(&app, "bob", "bravo", "admin").await;
    publish_with(&app, "shared", "acme", json!({"visibility": "unlisted"})).await;
    publish_with(&app, "secret", "acme", json!({"visibility": "private"})).await;
    for (org, space, site) in [("acme", "spc-a", "site-a"), ("bravo", "spc-b", "site-b")] {
        create_place(&app, org, "spaces", space).await;
        create_place(&app, org, "sites", site).await;
    }
    let inst_a = app.install("shared", "acme").await["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .call_as(Some(&bob), "POST", "/v1/integrations/shared/installations", Some(json!({"organization": "bravo"})))
        .await;
    assert_eq!(status, 201, "an unlisted integration is installable by anyone who knows its name: {body}");
    let inst_b = body["id"].as_str().unwrap().to_owned();
    for (inst, space, site) in [(&inst_a, "spc-a", "site-a"), (&inst_b, "spc-b", "site-b")] {
        let base = format!("/v1/integrations/shared/installations/{inst}");
        let (status, body) = app.call("POST", &format!("{base}/spaces"), Some(json!({"spaceId": space}))).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = app.call("POST", &format!("{base}/sites"), Some(json!({"siteId": site}))).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) =
            app.call("PATCH", &base, Some(json!({"configuration": {"owner": space}, "externalIds": [space]}))).await;
        assert_eq!(status, 200, "{body}");
    }
    World { app, ada, mia, bob, inst_a, inst_b }
}

/// Requests against `org`'s resources (its installation `inst`, space, site).
fn requests_on(org: &str, inst: &str, space: &str, site: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let base = format!("/v1/integrations/shared/installations/{inst}");
    vec![
        ("GET", format!("/v1/orgs/{org}"), None),
        ("GET", format!("/v1/orgs/{org}/members"), None),
        ("POST", format!("/v1/orgs/{org}/members"), Some(json!({"userId": "bob", "role": "admin"}))),
        ("GET", format!("/v1/orgs/{org}/spaces"), None),
        ("POST", format!("/v1/orgs/{org}/spaces"), Some(json!({"title": "x"}))),
        ("GET", format!("/v1/orgs/{org}/sites"), None),
        ("POST", format!("/v1/orgs/{org}/sites"), Some(json!({"title": "x"}))),
        ("GET", base.clone(), None),
        ("PATCH", base.clone(), Some(json!({"configuration": {"owner": "intruder"}}))),
        ("DELETE", base.clone(), None),
        ("GET", format!("{base}/spaces"), None),
        ("POST", format!("{base}/spaces"), Some(json!({"spaceId": space}))),
        ("GET", format!("{base}/spaces/{space}"), None),
        ("DELETE", format!("{base}/spaces/{space}"), None),
        ("GET", format!("{base}/sites"), None),
        ("POST", format!("{base}/sites"), Some(json!({"siteId": site}))),
        ("GET", format!("{base}/sites/{site}"), None),
        ("DELETE", format!("{base}/sites/{site}"), None),
        ("GET", format!("/v1/spaces/{space}/integrations"), None),
        ("GET", format!("/v1/spaces/{space}/integration-blocks"), None),
        ("GET", format!("/v1/orgs/{org}/sites/{site}/integrations"), None),
        ("GET", format!("/v1/orgs/{org}/sites/{site}/integration-scripts"), None),
        ("GET", format!("/v1/orgs/{org}/integrations/shared/installation_status"), None),
        ("GET", format!("/v1/orgs/{org}/integrations/installations-status"), None),
        ("POST", "/v1/integrations/shared/installations".into(), Some(json!({"organization": org}))),
    ]
}

#[tokio::test]
async fn one_organization_can_never_read_or_change_another_organizations_installations() {
    let w = world().await;
    // bravo's admin against acme, and acme's admin (the publisher!) against bravo.
    for (token, org, inst, space, site) in
        [(&w.bob, "acme", &w.inst_a, "spc-a", "site-a"), (&w.ada, "bravo", &w.inst_b, "spc-b", "site-b")]
    {
        for (method, path, body) in requests_on(org, inst, space, site) {
            let (status, answer) = w.app.call_as(Some(token), method, &path, body).await;
            assert_eq!(status, 403, "{method} {path} from outside `{org}`: {answer}");
            assert!(!answer.to_string().contains("\"owner\""), "{method} {path} leaked a configuration: {answer}");
        }
    }
    // Nothing changed: both configurations and installations are intact.
    for (inst, owner) in [(&w.inst_a, "spc-a"), (&w.inst_b, "spc-b")] {
        let (status, body) = w.app.call("GET", &format!("/v1/integrations/shared/installations/{inst}"), None).await;
        assert_eq!((status, &body["configuration"]), (200, &json!({"owner": owner})));
    }

    // Listings show each caller only its own organization's installations.
    for (token, inst, space) in [(&w.bob, &w.inst_b, "spc-b"), (&w.ada, &w.inst_a, "spc-a")] {
        let (_, list) = w.app.call_as(Some(token), "GET", "/v1/integrations/shared/installations", None).await;
        assert_eq!((list["count"].as_i64(), list["items"][0]["id"].as_str()), (Some(1), Some(inst.as_str())), "{list}");
        let (_, list) = w.app.call_as(Some(token), "GET", "/v1/integrations/shared/spaces", None).await;
        assert_eq!((list["count"].as_i64(), list["items"][0]["space"].as_str()), (Some(1), Some(space)), "{list}");
        let other_external = if space == "spc-a" { "spc-b" } else { "spc-a" };
        let (_, list) = w
            .app
            .call_as(
                Some(token),
                "GET",
                &format!("/v1/integrations/shared/installations?externalId={other_external}"),
                None,
            )
            .await;
        assert_eq!(list["count"].as_i64(), Some(0), "{list}");
    }

    // bravo may not install its own installation on acme's space either.
    let (status, body) = w
        .app
        .call_as(
            Some(&w.bob),
            "POST",
            &format!("/v1/integrations/shared/installations/{}/spaces", w.inst_b),
            Some(json!({"spaceId": "spc-a"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // The events log is the publisher's: bravo cannot read it.
    for path in ["/v1/integrations/shared/events", "/v1/integrations/shared/events/evt_x"] {
        let (status, body) = w.app.call_as(Some(&w.bob), "GET", path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _) = w.app.call_as(Some(&w.mia), "GET", "/v1/integrations/shared/events", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn private_integrations_are_invisible_outside_their_organization() {
    let w = world().await;
    let bob = Some(w.bob.as_str());
    let (status, body) = w.app.call_as(bob, "GET", "/v1/integrations/secret", None).await;
    assert_eq!((status, error_message(&body)), (404, "no integration `secret`"));
    let install = json!({"organization": "bravo"});
    let (status, _) = w.app.call_as(bob, "POST", "/v1/integrations/secret/installations", Some(install)).await;
    assert_eq!(status, 404);
    let (status, _) = w.app.call_as(bob, "GET", "/v1/integrations/secret/installations", None).await;
    assert_eq!(status, 404);
    // The task and token endpoints of a private integration answer as if there were none,
    // exactly as for a name nobody has.
    for name in ["secret", "nobody-has-this"] {
        for (method, path) in [("GET", "tasks"), ("POST", "tasks"), ("GET", "tokens"), ("POST", "tokens")] {
            let body = (method == "POST" && path == "tasks").then(|| json!({"task": {}}));
            let (status, answer) = w.app.call_as(bob, method, &format!("/v1/integrations/{name}/{path}"), body).await;
            assert_eq!((status, error_message(&answer)), (404, format!("no integration `{name}`").as_str()));
        }
    }
    let (status, body) = w.app.call_as(bob, "GET", "/v1/integrations/shared", None).await;
    assert_eq!((status, body["visibility"].as_str()), (200, Some("unlisted")));
    let (status, list) = w.app.call_as(bob, "GET", "/v1/integrations", None).await;
    assert_eq!((status, list["count"].as_i64()), (200, Some(0)), "unlisted and private are not listed");
    let (status, _) = w.app.call_as(Some(&w.mia), "GET", "/v1/integrations/secret", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn members_read_and_only_admins_change() {
    let w = world().await;
    let mia = Some(w.mia.as_str());
    for (method, path, body) in requests_on("acme", &w.inst_a, "spc-a", "site-a") {
        let (status, answer) = w.app.call_as(mia, method, &path, body).await;
        let expected = if method == "GET" { 200 } else { 403 };
        assert_eq!(status, expected, "member: {method} {path}: {answer}");
    }
    let (status, _) = w.app.call_as(mia, "POST", "/v1/integrations/new", Some(publish_body("acme", b"x"))).await;
    assert_eq!(status, 403, "members do not publish");
    let (status, _) = w.app.call_as(mia, "DELETE", "/v1/integrations/shared", None).await;
    assert_eq!(status, 403);

    // acme's admin may publish for acme, but not for bravo.
    let ada = Some(w.ada.as_str());
    let body = publish_body("acme", crate::support::hello_wasm());
    let (status, answer) = w.app.call_as(ada, "POST", "/v1/integrations/mine", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let body = publish_body("bravo", crate::support::hello_wasm());
    let (status, _) = w.app.call_as(ada, "POST", "/v1/integrations/theirs", Some(body)).await;
    assert_eq!(status, 403);
    let (status, body) =
        w.app.call_as(ada, "POST", "/v1/orgs/acme/members", Some(json!({"userId": "mia", "role": "boss"}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("role"));
    let (status, body) =
        w.app.call_as(ada, "POST", "/v1/orgs/acme/members", Some(json!({"userId": "ghost", "role": "admin"}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("userId"));
    let (status, body) =
        w.app.call_as(ada, "POST", "/v1/orgs/acme/members", Some(json!({"userId": "mia", "role": "admin"}))).await;
    assert_eq!((status, body["role"].as_str()), (200, Some("admin")));
    // The promotion takes effect at once.
    let (status, _) = w.app.call_as(mia, "POST", "/v1/orgs/acme/spaces", Some(json!({"title": "Mine"}))).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn the_operator_endpoints_refuse_users() {
    let w = world().await;
    let ada = Some(w.ada.as_str());
    let (status, body) = w.app.call_as(ada, "POST", "/v1/users", Some(json!({"id": "eve", "name": "Eve"}))).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = w.app.call_as(ada, "POST", "/v1/orgs", Some(json!({"id": "new", "title": "New"}))).await;
    assert_eq!(status, 403);
    let (status, _) = w.app.call_as(ada, "POST", "/v1/users/bob/tokens", None).await;
    assert_eq!(status, 403, "a user cannot mint another user's tokens");
    let (status, body) = w.app.call_as(ada, "POST", "/v1/users/ada/tokens", None).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = w.app.call("POST", "/v1/users/ghost/tokens", None).await;
    assert_eq!(status, 404);
    let (status, body) = w.app.call("POST", "/v1/users", Some(json!({"id": "ada", "name": "Again"}))).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = w.app.call("POST", "/v1/users", Some(json!({"id": "bad id", "name": "X"}))).await;
    assert_eq!(status, 400, "{body}");
}

/// Every documented endpoint that needs a token answers 401 without one or with a wrong one.
/// The message of an error body in its surface's shape: `/v1`, the applications API
/// (`error_description`) or the private applications API (`detail`).
fn any_error_message(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["error_description"].as_str())
        .or_else(|| body["detail"].as_str())
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test]
async fn every_endpoint_wants_a_valid_token() {
    let app = spawn_app().await;
    let (status, document) = app.call_as(None, "GET", "/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("security").is_some_and(|s| s == &json!([])) {
                continue;
            }
            let concrete: String =
                path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
            let body = matches!(method.as_str(), "post" | "patch" | "put").then(|| json!({}));
            let method = method.to_uppercase();
            let (status, answer) = app.call_as(None, &method, &concrete, body.clone()).await;
            assert_eq!(status, 401, "{method} {concrete} without a token: {answer}");
            assert!(any_error_message(&answer).contains("Authorization"), "{method} {concrete}: {answer}");
            let (status, answer) = app.call_as(Some("wrong-token"), &method, &concrete, body.clone()).await;
            assert_eq!((status, any_error_message(&answer)), (401, "invalid or expired token"), "{method} {concrete}");
            let (status, _) = app.call_as(Some("wfe_v1:AAAA"), &method, &concrete, body).await;
            assert_eq!(status, 401, "{method} {concrete} with a forged sealed token");
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} endpoints were checked");
}
