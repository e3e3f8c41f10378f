//! Taking access away: revoked tokens, deleted users, removed members and a rotated admin
//! token each fail their very next request.

use serde_json::{Value, json};

use crate::api_support::{publish_with, user_token};
use crate::support::{ADMIN, TestApp, spawn_app, spawn_app_with};

/// The ids of a token list answer.
fn ids(list: &Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().map(|token| token["id"].as_str().unwrap()).collect()
}

async fn status(app: &TestApp, token: &str, path: &str) -> u16 {
    app.call_as(Some(token), "GET", path, None).await.0
}

#[tokio::test]
async fn a_revoked_user_token_fails_its_next_request_and_the_others_keep_working() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let first = user_token(&app, "ada", "acme", "admin").await;
    let (created, second) = app.call_as(Some(&first), "POST", "/v1/users/ada/tokens", None).await;
    assert_eq!(created, 201, "{second}");
    let second_token = second["token"].as_str().unwrap().to_owned();

    let (listed, list) = app.call_as(Some(&second_token), "GET", "/v1/users/ada/tokens", None).await;
    assert_eq!(listed, 200, "{list}");
    assert_eq!(ids(&list).len(), 2);
    assert!(!list.to_string().contains(&first) && list["items"][0].get("token").is_none(), "no secrets: {list}");
    let first_id = ids(&list).into_iter().find(|id| *id != second["id"]).unwrap().to_owned();

    let (revoked, body) =
        app.call_as(Some(&second_token), "DELETE", &format!("/v1/users/ada/tokens/{first_id}"), None).await;
    assert_eq!(revoked, 204, "{body}");
    assert_eq!(status(&app, &first, "/v1/orgs/acme").await, 401);
    assert_eq!(status(&app, &second_token, "/v1/orgs/acme").await, 200);
    let (again, _) =
        app.call_as(Some(&second_token), "DELETE", &format!("/v1/users/ada/tokens/{first_id}"), None).await;
    assert_eq!(again, 404);

    // Another user may neither list nor revoke ada's tokens.
    let bob = user_token(&app, "bob", "acme", "admin").await;
    assert_eq!(status(&app, &bob, "/v1/users/ada/tokens").await, 403);
    let path = format!("/v1/users/ada/tokens/{}", second["id"].as_str().unwrap());
    assert_eq!(app.call_as(Some(&bob), "DELETE", &path, None).await.0, 403);
}

#[tokio::test]
async fn a_deleted_user_and_a_removed_member_lose_access_at_once() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    let mia = user_token(&app, "mia", "acme", "member").await;
    assert_eq!(status(&app, &mia, "/v1/orgs/acme/members").await, 200);

    // An org admin removes a member: the member's token no longer reaches the organization.
    assert_eq!(app.call_as(Some(&mia), "DELETE", "/v1/orgs/acme/members/ada", None).await.0, 403);
    let (removed, body) = app.call_as(Some(&ada), "DELETE", "/v1/orgs/acme/members/mia", None).await;
    assert_eq!(removed, 204, "{body}");
    assert_eq!(status(&app, &mia, "/v1/orgs/acme/members").await, 403);
    assert_eq!(app.call_as(Some(&ada), "DELETE", "/v1/orgs/acme/members/mia", None).await.0, 404);

    // Only the operator deletes users; their tokens die with them.
    assert_eq!(app.call_as(Some(&ada), "DELETE", "/v1/users/mia", None).await.0, 403);
    assert_eq!(app.call("DELETE", "/v1/users/ada", None).await.0, 204);
    assert_eq!(status(&app, &ada, "/v1/orgs/acme").await, 401);
    assert_eq!(app.call("DELETE", "/v1/users/ada", None).await.0, 404);
    let (_, members) = app.call("GET", "/v1/orgs/acme/members", None).await;
    assert_eq!(members["count"], 0, "{members}");
}

#[tokio::test]
async fn an_integration_rotates_its_own_token() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let old = publish_with(&app, "rotating", "acme", json!({})).await["token"].as_str().unwrap().to_owned();
    let (created, new) = app.call_as(Some(&old), "POST", "/v1/integrations/rotating/tokens", None).await;
    assert_eq!(created, 201, "{new}");
    let new_token = new["token"].as_str().unwrap().to_owned();
    let (_, list) = app.call_as(Some(&new_token), "GET", "/v1/integrations/rotating/tokens", None).await;
    let old_id = ids(&list).into_iter().find(|id| *id != new["id"]).unwrap().to_owned();
    let path = format!("/v1/integrations/rotating/tokens/{old_id}");
    assert_eq!(app.call_as(Some(&new_token), "DELETE", &path, None).await.0, 204);
    assert_eq!(status(&app, &old, "/v1/integrations/rotating/installations").await, 401);
    assert_eq!(status(&app, &new_token, "/v1/integrations/rotating/installations").await, 200);

    // A member of the organization may not mint the integration's tokens.
    let mia = user_token(&app, "mia", "acme", "member").await;
    assert_eq!(app.call_as(Some(&mia), "POST", "/v1/integrations/rotating/tokens", None).await.0, 403);
}

#[tokio::test]
async fn rotating_the_admin_token_retires_the_old_one() {
    let app = spawn_app().await;
    let database_url = app.database_url.clone();
    let _dir = app.stop().await;
    let url = database_url.clone();
    let app = spawn_app_with(move |config| {
        config.database_url = url;
        config.admin_token = Some("rotated-admin-token".into());
    })
    .await;
    assert_eq!(status(&app, ADMIN, "/v1/orgs/none").await, 401, "the old admin token is retired");
    assert_eq!(status(&app, "rotated-admin-token", "/v1/orgs/none").await, 404);
}
