//! Spaces, sites and installing on them; what a space or site has installed; statuses.

use serde_json::{Value, json};

use crate::api_support::{create_place, error_message, publish_with, user_token};
use crate::support::spawn_app;

fn ids<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list["items"].as_array().unwrap().iter().map(|i| i[field].as_str().unwrap()).collect()
}

/// The README's walk-through, as a user who administers their organization.
#[tokio::test]
async fn a_user_goes_from_nothing_to_an_integration_installed_on_a_space_and_a_site() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let (app, ada) = (&app, ada.clone());
        async move { app.call_as(Some(&ada), method, &path, body).await }
    };

    let block = json!({"id": "card", "title": "Card"});
    let mut body = crate::support::publish_body("acme", crate::support::hello_wasm());
    body["blocks"] = json!([block]);
    let (status, published) = call("POST", "/v1/integrations/hello".into(), Some(body)).await;
    assert_eq!(status, 200, "{published}");
    let (status, space) = call("POST", "/v1/orgs/acme/spaces".into(), Some(json!({"title": "Docs"}))).await;
    assert_eq!(status, 201, "{space}");
    let space_id = space["id"].as_str().unwrap().to_owned();
    assert!(space_id.starts_with("spc_"));
    let (status, site) = call("POST", "/v1/orgs/acme/sites".into(), Some(json!({"id": "www", "title": "WWW"}))).await;
    assert_eq!(status, 201, "{site}");
    let (status, list) = call("GET", "/v1/orgs/acme/spaces".into(), None).await;
    assert_eq!((status, ids(&list, "id")), (200, vec![space_id.as_str()]));
    let (status, list) = call("GET", "/v1/orgs/acme/sites".into(), None).await;
    assert_eq!((status, ids(&list, "id")), (200, vec!["www"]));

    let (status, installation) =
        call("POST", "/v1/integrations/hello/installations".into(), Some(json!({"organization": "acme"}))).await;
    assert_eq!(status, 201, "{installation}");
    let id = installation["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/integrations/hello/installations/{id}");

    let (status, on_space) = call("POST", format!("{base}/spaces"), Some(json!({"spaceId": space_id}))).await;
    assert_eq!(status, 201, "{on_space}");
    assert_eq!(
        (on_space["space"].as_str(), on_space["installation"].as_str()),
        (Some(space_id.as_str()), Some(id.as_str()))
    );
    let (status, again) =
        call("POST", format!("{base}/spaces?extended=true"), Some(json!({"spaceId": space_id}))).await;
    assert_eq!((status, again["space"]["title"].as_str()), (201, Some("Docs")), "installing twice is harmless");
    let (status, list) = call("GET", format!("{base}/spaces"), None).await;
    assert_eq!((status, ids(&list, "space"), list["count"].as_i64()), (200, vec![space_id.as_str()], Some(1)));
    let (status, one) = call("GET", format!("{base}/spaces/{space_id}?extended=true"), None).await;
    assert_eq!((status, one["space"]["id"].as_str()), (200, Some(space_id.as_str())));
    let (status, all) = call("GET", "/v1/integrations/hello/spaces".into(), None).await;
    assert_eq!((status, all["count"].as_i64()), (200, Some(1)));

    let (status, on_site) = call("POST", format!("{base}/sites"), Some(json!({"siteId": "www"}))).await;
    assert_eq!((status, on_site["site"].as_str()), (201, Some("www")), "{on_site}");
    let (status, list) = call("GET", format!("{base}/sites?extended=true"), None).await;
    assert_eq!((status, list["items"][0]["site"]["title"].as_str()), (200, Some("WWW")));
    let (status, _) = call("GET", format!("{base}/sites/www"), None).await;
    assert_eq!(status, 200);

    let (status, list) = call("GET", format!("/v1/spaces/{space_id}/integrations"), None).await;
    assert_eq!((status, ids(&list, "name")), (200, vec!["hello"]));
    let (status, list) = call("GET", format!("/v1/spaces/{space_id}/integrations?search=nomatch"), None).await;
    assert_eq!((status, list["count"].as_i64()), (200, Some(0)));
    let (status, blocks) = call("GET", format!("/v1/spaces/{space_id}/integration-blocks"), None).await;
    assert_eq!(status, 200, "{blocks}");
    assert_eq!((blocks[0]["name"].as_str(), blocks[0]["blocks"][0]["id"].as_str()), (Some("hello"), Some("card")));
    let (status, list) = call("GET", "/v1/orgs/acme/sites/www/integrations".into(), None).await;
    assert_eq!((status, ids(&list, "name")), (200, vec!["hello"]));
    let (status, scripts) = call("GET", "/v1/orgs/acme/sites/www/integration-scripts".into(), None).await;
    assert_eq!(status, 200);
    assert!(scripts[0]["script"].as_str().unwrap().ends_with(&format!("/installations/{id}/fetch/script.js")));
    assert_eq!(scripts[0]["cookies"], false);

    let (status, state) = call("GET", "/v1/orgs/acme/integrations/hello/installation_status".into(), None).await;
    assert_eq!(
        (status, state["status"].as_str(), state["installation"].as_str()),
        (200, Some("active"), Some(id.as_str()))
    );
    let (status, statuses) = call("GET", "/v1/orgs/acme/integrations/installations-status".into(), None).await;
    assert_eq!((status, statuses["count"].as_i64()), (200, Some(1)));
    assert_eq!(statuses["items"][0]["integration"]["name"], "hello");
    assert_eq!(statuses["items"][0]["target"], json!({"type": "organization", "organizationId": "acme"}));
    let on_space = format!("/v1/orgs/acme/integrations/installations-status?target=space&space={space_id}");
    let (_, statuses) = call("GET", on_space, None).await;
    assert_eq!(statuses["items"][0]["target"], json!({"type": "space", "spaceId": space_id}), "{statuses}");
    let (_, statuses) = call("GET", "/v1/orgs/acme/integrations/installations-status?target=site".into(), None).await;
    assert_eq!(statuses["items"][0]["target"], json!({"type": "site", "siteId": "www"}), "{statuses}");
    let (status, _) = call("GET", "/v1/orgs/acme/integrations/installations-status?site=www".into(), None).await;
    assert_eq!(status, 400, "site goes with target=site");

    let (status, _) = call("DELETE", format!("{base}/spaces/{space_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call("GET", format!("{base}/spaces/{space_id}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = call("DELETE", format!("{base}/sites/www"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call("DELETE", format!("{base}/sites/www"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn selecting_all_spaces_installs_on_every_space_now_and_later() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    publish_with(&app, "hello", "acme", json!({})).await;
    create_place(&app, "acme", "spaces", "one").await;
    let id = app.install("hello", "acme").await["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/integrations/hello/installations/{id}");
    let (status, body) = app.call("PATCH", &base, Some(json!({"space_selection": "all"}))).await;
    assert_eq!((status, body["space_selection"].as_str()), (200, Some("all")), "{body}");
    create_place(&app, "acme", "spaces", "two").await;
    create_place(&app, "acme", "sites", "www").await;
    let (_, list) = app.call("GET", &format!("{base}/spaces"), None).await;
    assert_eq!(ids(&list, "space"), vec!["one", "two"]);
    let (_, list) = app.call("GET", &format!("{base}/sites"), None).await;
    assert_eq!(list["count"].as_i64(), Some(0), "sites stay selected one by one");
    let (_, list) = app.call("GET", &format!("{base}/spaces?limit=1"), None).await;
    let page = list["next"]["page"].as_str().unwrap().to_owned();
    let (_, list) = app.call("GET", &format!("{base}/spaces?limit=1&page={page}"), None).await;
    assert_eq!(ids(&list, "space"), vec!["two"]);
}

#[tokio::test]
async fn the_target_limits_where_an_integration_can_be_installed() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    create_place(&app, "acme", "spaces", "docs").await;
    create_place(&app, "acme", "sites", "www").await;
    for (name, target, space_ok, site_ok) in [
        ("spaceonly", "space", true, false),
        ("siteonly", "site", false, true),
        ("orgonly", "organization", false, false),
    ] {
        publish_with(&app, name, "acme", json!({"target": target})).await;
        let id = app.install(name, "acme").await["id"].as_str().unwrap().to_owned();
        let base = format!("/v1/integrations/{name}/installations/{id}");
        let (status, body) = app.call("POST", &format!("{base}/spaces"), Some(json!({"spaceId": "docs"}))).await;
        assert_eq!(status, if space_ok { 201 } else { 400 }, "{name} on a space: {body}");
        let (status, body) = app.call("POST", &format!("{base}/sites"), Some(json!({"siteId": "www"}))).await;
        assert_eq!(status, if site_ok { 201 } else { 400 }, "{name} on a site: {body}");
        let (status, body) = app.call("PATCH", &base, Some(json!({"site_selection": "all"}))).await;
        assert_eq!(status, if site_ok { 200 } else { 400 }, "{name} selecting all sites: {body}");
        if !site_ok {
            assert!(error_message(&body).contains("site_selection"));
        }
    }
}

#[tokio::test]
async fn spaces_and_sites_are_checked_and_belong_to_one_organization() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    create_place(&app, "other", "spaces", "theirs").await;
    create_place(&app, "other", "sites", "their-site").await;
    publish_with(&app, "hello", "acme", json!({})).await;
    let id = app.install("hello", "acme").await["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/integrations/hello/installations/{id}");

    let cases = [
        ("spaces", json!({"spaceId": "theirs"}), 400, "spaceId: no space `theirs` in organization `acme`"),
        ("spaces", json!({"spaceId": "ghost"}), 400, "spaceId: no space `ghost`"),
        ("spaces", json!({}), 400, "missing field `spaceId`"),
        ("sites", json!({"siteId": "their-site"}), 400, "siteId: no site `their-site`"),
        ("sites", json!({"site": "x"}), 400, "unknown field `site`"),
    ];
    for (kind, body, status, message) in cases {
        let (got, answer) = app.call("POST", &format!("{base}/{kind}"), Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(error_message(&answer).contains(message), "{body}: {answer}");
    }
    let bad_places = [
        (json!({"title": ""}), "title"),
        (json!({"title": "x", "id": "bad id"}), "id `bad id`"),
        (json!({"title": "x", "id": "theirs"}), "taken"),
    ];
    for (body, message) in bad_places {
        let (status, answer) = app.call("POST", "/v1/orgs/acme/spaces", Some(body.clone())).await;
        assert!(status == 400 || status == 409, "{body}: {answer}");
        assert!(error_message(&answer).contains(message), "{body}: {answer}");
    }
    let (status, _) = app.call("POST", "/v1/orgs/ghost/spaces", Some(json!({"title": "x"}))).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("GET", "/v1/spaces/ghost/integrations", None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("GET", "/v1/orgs/acme/sites/their-site/integrations", None).await;
    assert_eq!(status, 404, "a site is only found under its own organization");
    let (status, body) = app.call("GET", "/v1/orgs/acme/integrations/nope/installation_status", None).await;
    assert_eq!(status, 404, "{body}");
    publish_with(&app, "unused", "acme", json!({})).await;
    let (status, body) = app.call("GET", "/v1/orgs/acme/integrations/unused/installation_status", None).await;
    assert_eq!(status, 404, "not installed: {body}");
}
