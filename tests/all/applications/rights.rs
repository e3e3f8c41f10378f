//! Rights and scopes: each right of the applications API has a caller it is allowed to and
//! one it is denied to (403 naming it); token scopes narrow what a token may do; lists show
//! what the caller may see; user tokens unlock profile parameters and "for me" toggles;
//! private applications belong to their creator.

use serde_json::{Value, json};

use super::oauth::user_with_token;
use super::{App, spawn};

/// Asserts `status` and, for a 403, that the message names `right`.
fn assert_right(answer: &(u16, Value), status: u16, right: &str, what: &str) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    if status == 403 {
        let description = answer.1["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(right), "{what}: the refusal names {right}: {description}");
    }
}

struct World {
    app: App,
    admin: String,
    member: String,
    outsider: String,
    app_id: String,
    app_token: String,
}

async fn world() -> World {
    let app = spawn().await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    let admin = user_with_token(&app, "ada", "acme", "admin").await;
    let member = user_with_token(&app, "bob", "acme", "member").await;
    let outsider = user_with_token(&app, "eve", "globex", "admin").await;
    let (status, created) = app
        .call_as(
            Some(&admin),
            "POST",
            "/api/http/applications",
            Some(json!({"name": "acme app", "organization": "acme"})),
        )
        .await;
    assert_eq!(status, 200, "an org admin creates applications of the org: {created}");
    assert_eq!(created["owner"]["id"], "ada");
    let app_id = created["id"].as_str().unwrap().to_owned();
    let app_token = app.app_token(&created).await;
    World { app, admin, member, outsider, app_id, app_token }
}

#[tokio::test]
async fn each_right_is_allowed_to_its_holders_and_denied_to_others() {
    let w = world().await;
    let (app, id) = (&w.app, w.app_id.as_str());
    let base = format!("/api/http/applications/{id}");
    let call = |token: &str, method: &'static str, path: String, body: Option<Value>| {
        let token = token.to_owned();
        async move { app.call_as(Some(&token), method, &path, body).await }
    };

    // Applications.Create: an org admin, not a member, not an application.
    let create = json!({"name": "x", "organization": "acme"});
    assert_right(
        &call(&w.admin, "POST", "/api/http/applications".into(), Some(create.clone())).await,
        200,
        "",
        "admin creates",
    );
    for token in [&w.member, &w.app_token] {
        let answer = call(token, "POST", "/api/http/applications".into(), Some(create.clone())).await;
        assert_right(&answer, 403, "Applications.Create", "member or app creates");
    }
    // Applications.View: members read; other organizations do not.
    assert_right(&call(&w.member, "GET", base.clone(), None).await, 200, "", "member views");
    assert_right(&call(&w.outsider, "GET", base.clone(), None).await, 403, "Applications.View", "outsider views");
    // Applications.Update: admins and the application itself; not members.
    let rename = Some(json!({"name": "renamed"}));
    assert_right(&call(&w.admin, "PATCH", base.clone(), rename.clone()).await, 200, "", "admin updates");
    assert_right(
        &call(&w.app_token, "PATCH", "/api/http/applications/me".into(), rename.clone()).await,
        200,
        "",
        "app updates itself",
    );
    assert_right(&call(&w.member, "PATCH", base.clone(), rename).await, 403, "Applications.Update", "member updates");
    // Applications.ViewSecrets: separate from viewing.
    let secret = format!("{base}/client-secret");
    assert_right(&call(&w.admin, "GET", secret.clone(), None).await, 200, "", "admin reads the secret");
    assert_right(
        &call(&w.member, "GET", secret.clone(), None).await,
        403,
        "Applications.ViewSecrets",
        "member reads the secret",
    );
    assert_right(
        &call(&w.app_token, "GET", secret, None).await,
        403,
        "Applications.ViewSecrets",
        "ungranted app reads its secret",
    );
    // Unfurls.Authorize.
    let token = w.app_token.clone();
    app.call_as(
        Some(&token),
        "PATCH",
        "/api/http/applications/unfurls/domains",
        Some(json!({"domains": ["a.example"]})),
    )
    .await;
    let approve = Some(json!({"domains": ["a.example"], "approve": true}));
    let authorize = format!("{base}/unfurl-domains/authorize");
    assert_right(
        &call(&w.admin, "POST", authorize.clone(), approve.clone()).await,
        200,
        "",
        "admin authorizes unfurls",
    );
    assert_right(
        &call(&w.member, "POST", authorize.clone(), approve.clone()).await,
        403,
        "Unfurls.Authorize",
        "member authorizes",
    );
    assert_right(
        &call(&w.app_token, "POST", authorize, approve).await,
        403,
        "Unfurls.Authorize",
        "app authorizes itself",
    );
    // Unfurls.Provide: the application, once granted.
    let queue = "/api/http/applications/unfurls/queue?batchSize=1".to_owned();
    assert_right(
        &call(&w.app_token, "GET", queue.clone(), None).await,
        403,
        "Unfurls.Provide",
        "ungranted app reads its queue",
    );
    // Permissions.Grant: admins grant; members and the application itself do not.
    let rights = format!("{base}/authorizations/authorized-rights");
    let grant_body = Some(json!({"updates": [{"rightCode": "Unfurls.Provide", "status": "GRANTED"}]}));
    assert_right(
        &call(&w.member, "PATCH", rights.clone(), grant_body.clone()).await,
        403,
        "Permissions.Grant",
        "member grants",
    );
    assert_eq!(call(&w.app_token, "PATCH", rights.clone(), grant_body.clone()).await.0, 403, "an app grants itself");
    assert_right(&call(&w.admin, "PATCH", rights, grant_body).await, 200, "", "admin grants");
    assert_right(&call(&w.app_token, "GET", queue, None).await, 200, "", "granted app reads its queue");
    // UI for everybody needs Permissions.Grant too.
    let everybody = format!("{base}/ui-extensions/disable-for-everybody");
    assert_right(
        &call(&w.member, "PATCH", everybody.clone(), Some(json!({}))).await,
        403,
        "Permissions.Grant",
        "member disables for everybody",
    );
    assert_right(&call(&w.admin, "PATCH", everybody, Some(json!({}))).await, 200, "", "admin disables for everybody");
    // Applications.Delete: admins; not members, not the application itself (ungranted).
    assert_right(&call(&w.member, "DELETE", base.clone(), None).await, 403, "Applications.Delete", "member deletes");
    assert_right(
        &call(&w.app_token, "DELETE", "/api/http/applications/me".into(), None).await,
        403,
        "Applications.Delete",
        "app deletes itself",
    );
    assert_right(&call(&w.admin, "DELETE", base, None).await, 200, "", "admin deletes");
    w.app.stop().await;
}

#[tokio::test]
async fn a_token_scope_limits_what_it_may_do() {
    let w = world().await;
    let tokens = format!("/api/http/applications/{}/permanent-tokens", w.app_id);
    let (status, token) =
        w.app.call("POST", &tokens, Some(json!({"name": "read only", "scope": "Applications.View"}))).await;
    assert_eq!(status, 200, "{token}");
    let token = token["token"].as_str().unwrap();
    assert_eq!(w.app.call_as(Some(token), "GET", "/api/http/applications/me", None).await.0, 200);
    let answer = w.app.call_as(Some(token), "PATCH", "/api/http/applications/me", Some(json!({"name": "n"}))).await;
    assert_right(&answer, 403, "Applications.Update", "a View-scoped token updates");
    w.app.stop().await;
}

#[tokio::test]
async fn lists_show_what_the_caller_may_see_filtered_by_owner_and_managed() {
    let w = world().await;
    let app = &w.app;
    app.create_app(json!({"name": "operator app", "organization": "globex"})).await;
    let hook = super::receiver::receiver(&[]).await;
    app.create_app(
        json!({"name": "connected", "organization": "acme", "endpointUri": hook.url, "connectToSpace": true}),
    )
    .await;
    let names = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_owned()).collect()
    };
    let (_, page) = app.call_as(Some(&w.member), "GET", "/api/http/applications/paged", None).await;
    assert_eq!(names(&page), ["acme app", "connected"], "a member sees their organization's applications");
    let (_, page) = app.call_as(Some(&w.outsider), "GET", "/api/http/applications/paged", None).await;
    assert_eq!(names(&page), ["operator app"], "an admin of globex sees globex's, not acme's");
    let (_, page) = app.call("GET", "/api/http/applications/paged?withManaged=false", None).await;
    assert_eq!(names(&page), ["acme app", "operator app"], "withManaged=false leaves connected applications out");
    let (_, page) = app.call("GET", "/api/http/applications/paged?owner=id:ada", None).await;
    assert_eq!(names(&page), ["acme app"]);
    let (_, page) = app.call("GET", "/api/http/applications/paged?owner=admin", None).await;
    assert_eq!(names(&page), ["connected", "operator app"]);
    let (_, page) = app.call_as(Some(&w.admin), "GET", "/api/http/applications/paged?owner=me", None).await;
    assert_eq!(names(&page), ["acme app"]);
    let answer = app.call_as(Some(&w.app_token), "GET", "/api/http/applications/paged", None).await;
    assert_eq!(answer.0, 403);
    w.app.stop().await;
}

#[tokio::test]
async fn private_applications_belong_to_the_user_who_created_them() {
    let w = world().await;
    let app = &w.app;
    let (status, mine) =
        app.call_as(Some(&w.member), "POST", "/api/v1/applications", Some(json!({"name": "bob's"}))).await;
    assert_eq!(status, 201, "{mine}");
    app.call_as(Some(&w.outsider), "POST", "/api/v1/applications", Some(json!({"name": "eve's"}))).await;
    let (_, list) = app.call_as(Some(&w.member), "GET", "/api/v1/applications", None).await;
    assert_eq!(list, json!([{"id": mine["id"], "name": "bob's", "page_slug": null}]));
    let (_, list) = app.call("GET", "/api/v1/applications", None).await;
    assert_eq!(list, json!([]), "the operator's list holds only the operator's");
    // The reference's other way to authenticate: the `token` cookie.
    let response = app
        .client
        .get(format!("{}/api/v1/applications", app.url))
        .header("cookie", format!("theme=dark; token={}", w.outsider))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list[0]["name"], "eve's");
    w.app.stop().await;
}

/// A user token issued to the application through the authorization-code flow.
async fn user_token_for(app: &App, client_id: &str, client_secret: &str, user_token: &str) -> String {
    let redirect = "http://127.0.0.1:9/cb";
    let form = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("decision", "allow"),
        ("user_token", user_token),
    ];
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = no_redirects.post(format!("{}/oauth/authorize", app.url)).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let location = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").expect("a code").1.to_string();
    let token = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .basic_auth(client_id, Some(client_secret))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", redirect)])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    token.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn user_tokens_unlock_profile_parameters_and_for_me_toggles_per_user() {
    let w = world().await;
    let app = &w.app;
    let path = format!("/api/http/applications/{}", w.app_id);
    let settings = json!({"codeFlowEnabled": true, "codeFlowRedirectURIs": "http://127.0.0.1:9/cb"});
    assert_eq!(app.call("PATCH", &path, Some(settings)).await.0, 200);
    let (_, created) = app.call("GET", &path, None).await;
    let client_id = created["clientId"].as_str().unwrap();
    let secret = app.client_secret(&w.app_id).await;
    let ada = user_token_for(app, client_id, &secret, &w.admin).await;
    let bob = user_token_for(app, client_id, &secret, &w.member).await;

    let profile = "/api/http/applications/parameters/profile";
    let set = Some(json!({"value": "dark"}));
    assert_eq!(app.call_as(Some(&ada), "PATCH", &format!("{profile}/theme"), set.clone()).await.0, 200);
    let (status, mine) = app.call_as(Some(&ada), "GET", profile, None).await;
    assert_eq!((status, mine), (200, json!([{"key": "theme", "value": "dark"}])));
    assert_eq!(app.call_as(Some(&bob), "GET", profile, None).await.1, json!([]), "each user has their own");
    let answer = app.call_as(Some(&w.app_token), "GET", profile, None).await;
    assert_eq!(answer.0, 403, "an app token has no profile: {}", answer.1);
    let answer = app.call_as(Some(&ada), "GET", "/api/http/applications/parameters/theme", None).await;
    assert_eq!(answer.0, 403, "app parameters take an app token, not a user token");
    assert_eq!(app.call_as(Some(&ada), "PATCH", &format!("{profile}/{}", "k".repeat(65)), set).await.0, 400);
    assert_eq!(app.call_as(Some(&ada), "DELETE", &format!("{profile}/theme"), None).await.0, 200);
    assert_eq!(app.call_as(Some(&ada), "DELETE", &format!("{profile}/theme"), None).await.0, 404);

    let ui = format!("{path}/ui-extensions");
    let global = Some(json!({"contextIdentifier": "global"}));
    assert_eq!(app.call_as(Some(&bob), "PATCH", &format!("{ui}/disable-for-me"), global.clone()).await.0, 200);
    let shown = |token: String| {
        let ui = ui.clone();
        async move { app.call_as(Some(&token), "GET", &format!("{ui}?contextIdentifier=global"), None).await.1 }
    };
    assert_eq!(shown(w.member.clone()).await["enabledForMe"], false, "bob turned it off for himself");
    assert_eq!(shown(w.admin.clone()).await["enabledForMe"], true, "ada did not");
    assert_eq!(shown(bob.clone()).await["enabledForMe"], false, "bob's user token issued to the app sees his toggle");
    assert_eq!(app.call_as(Some(&bob), "PATCH", &format!("{ui}/enable-for-me"), global).await.0, 200);
    assert_eq!(shown(w.member.clone()).await["enabledForMe"], true);
    w.app.stop().await;
}

#[tokio::test]
async fn missing_rights_of_a_subscription_are_computed_and_requested() {
    let w = world().await;
    let app = &w.app;
    let hooks = format!("/api/http/applications/{}/webhooks", w.app_id);
    let body = json!({"name": "h", "subscriptions": [{"subjectCode": "Issue", "eventTypeCodes": ["Issue.Created", "Chat.Message"]}]});
    let (status, webhook) = app.call("POST", &hooks, Some(body)).await;
    assert_eq!(status, 200, "{webhook}");
    let path = format!(
        "{hooks}/{}/subscriptions/{}/request-missing-rights",
        webhook["webhook"]["id"].as_str().unwrap(),
        webhook["subscriptions"][0]["id"].as_str().unwrap()
    );
    let (status, missing) = app.call_as(Some(&w.app_token), "POST", &path, None).await;
    assert_eq!((status, missing["missingRights"].clone()), (200, json!(["Chat.View", "Issue.View"])));
    let rights = format!("/api/http/applications/{}/authorizations/authorized-rights", w.app_id);
    let (_, pending) = app.call("GET", &rights, None).await;
    assert_eq!(
        pending,
        json!([{"rightCode": "Chat.View", "status": "PENDING"}, {"rightCode": "Issue.View", "status": "PENDING"}])
    );
    let grant = json!({"updates": [{"rightCode": "Issue.View", "status": "GRANTED"}]});
    assert_eq!(app.call_as(Some(&w.admin), "PATCH", &rights, Some(grant)).await.0, 200);
    let (_, missing) = app.call_as(Some(&w.app_token), "POST", &path, None).await;
    assert_eq!(missing["missingRights"], json!(["Chat.View"]));
    w.app.stop().await;
}
