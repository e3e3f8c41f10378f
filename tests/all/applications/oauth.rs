//! OAuth 2.0 end to end with a real third-party client (PyPI `authlib`, driven by
//! `tests/clients/oauth_flows.py`): authorization code with PKCE, refresh rotation, reused
//! codes and refresh tokens, wrong redirect URIs, public clients, the implicit flow,
//! revocation and client credentials; and what a user token unlocks.

use serde_json::{Value, json};

use super::clients::run_python_async;
use super::{App, spawn};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A user `id` who administers `acme` (created here), and a token of theirs.
pub async fn user_with_token(app: &App, id: &str, org: &str, role: &str) -> String {
    let (status, body) = app.call("POST", "/v1/users", Some(json!({"id": id, "name": id}))).await;
    assert_eq!(status, 201, "{body}");
    let members = format!("/v1/orgs/{org}/members");
    let (status, body) = app.call("POST", &members, Some(json!({"userId": id, "role": role}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, token) = app.call("POST", &format!("/v1/users/{id}/tokens"), None).await;
    assert_eq!(status, 201, "{token}");
    token["token"].as_str().unwrap().to_owned()
}

/// Creates an application with `settings` and returns its client id, secret and redirect URI.
async fn client(app: &App, name: &str, settings: Value) -> Value {
    let mut body = json!({"name": name, "organization": "acme"});
    for (key, value) in settings.as_object().unwrap() {
        body[key] = value.clone();
    }
    let created = app.create_app(body).await;
    let secret = app.client_secret(created["id"].as_str().unwrap()).await;
    json!({"client_id": created["clientId"], "client_secret": secret, "redirect_uri": REDIRECT})
}

#[tokio::test]
async fn every_oauth_flow_works_with_authlib_and_refuses_what_the_rfcs_refuse() {
    let app = spawn().await;
    app.create_org("acme").await;
    let user_token = user_with_token(&app, "ada", "acme", "admin").await;
    // Registered for the implicit flow too, which stays disabled.
    let code = json!({"codeFlowEnabled": true, "codeFlowRedirectURIs": REDIRECT, "implicitFlowRedirectURIs": REDIRECT});
    let apps = json!({
        "code": client(&app, "code", code.clone()).await,
        "pkce_required": client(&app, "pkce", json!({"codeFlowEnabled": true, "codeFlowRedirectURIs": REDIRECT, "pkceRequired": true})).await,
        "public": client(&app, "public", json!({"codeFlowEnabled": true, "codeFlowRedirectURIs": REDIRECT, "publicClientsAllowed": true})).await,
        "implicit": client(&app, "implicit", json!({"implicitFlowEnabled": true, "implicitFlowRedirectURIs": REDIRECT})).await,
    });
    let input = json!({"base": app.url, "user_token": user_token, "apps": apps});
    let seen = run_python_async("oauth_flows.py", vec![], input).await;

    assert_eq!(seen["metadata"]["issuer"], app.url.as_str());
    assert_eq!(seen["metadata"]["code_challenge_methods_supported"], json!(["S256"]));
    // Authorization code with PKCE.
    assert_eq!((seen["code_redirect_status"].clone(), seen["code_state_matches"].clone()), (json!(303), json!(true)));
    assert_eq!((seen["code_token_type"].clone(), seen["code_has_refresh"].clone()), (json!("Bearer"), json!(true)));
    assert_eq!(seen["code_me"], 200, "a user token issued to the application reads its user's profile parameters");
    assert_eq!(seen["code_reused"], "invalid_grant");
    assert_eq!(seen["code_reuse_revoked_token"], 401, "a reused code revokes the tokens issued for it");
    // Refresh tokens rotate; a rotated one used again revokes the grant.
    assert_eq!((seen["refresh_rotated"].clone(), seen["refresh_new_token_works"].clone()), (json!(true), json!(200)));
    assert_eq!(seen["refresh_reused"], "invalid_grant");
    assert_eq!(seen["refresh_reuse_revoked_grant"], 401);
    // PKCE.
    assert_eq!(seen["pkce_wrong_verifier"], "invalid_grant");
    assert_eq!(seen["pkce_missing_verifier"], "invalid_grant");
    assert_eq!(seen["pkce_required_redirect"], json!([303, "invalid_request"]));
    // Redirect URIs: an unregistered one is never redirected to; the token request must repeat it.
    assert_eq!(seen["wrong_redirect_page"], json!([400, null]));
    assert_eq!(seen["wrong_redirect_token"], "invalid_grant");
    // Consent.
    assert_eq!(seen["denied"], json!([303, "access_denied", true]));
    assert_eq!(seen["bad_sign_in"], 401);
    // Public clients and the implicit flow.
    assert_eq!(seen["public_me"], 200);
    assert_eq!(seen["public_needs_secret_for_client_credentials"], "invalid_client");
    assert_eq!(seen["implicit"], json!([true, "Bearer", true, 200]));
    assert_eq!(seen["implicit_disabled"][0], 303);
    let location = seen["implicit_disabled"][1].as_str().unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}#error=unauthorized_client&")), "{location}");
    // Revocation.
    assert_eq!(seen["revoked_access"], 401);
    assert_eq!(seen["revoked_refresh_grant"], json!([401, "invalid_grant"]));
    // Client credentials.
    assert_eq!(
        (seen["client_credentials"].clone(), seen["wrong_secret"].clone()),
        (json!("Bearer"), json!("invalid_client"))
    );
    app.stop().await;
}

#[tokio::test]
async fn codes_and_tokens_of_an_archived_application_stop_working() {
    let app = spawn().await;
    app.create_org("acme").await;
    let user_token = user_with_token(&app, "ada", "acme", "admin").await;
    let created = app
        .create_app(
            json!({"name": "c", "organization": "acme", "codeFlowEnabled": true, "codeFlowRedirectURIs": REDIRECT}),
        )
        .await;
    let authorize = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}&state=s1",
        app.url,
        created["clientId"].as_str().unwrap()
    );
    let page = app.client.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.text().await.unwrap().contains("asks to act for you"));
    let form = [
        ("response_type", "code"),
        ("client_id", created["clientId"].as_str().unwrap()),
        ("redirect_uri", REDIRECT),
        ("decision", "allow"),
        ("user_token", user_token.as_str()),
    ];
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = no_redirects.post(format!("{}/oauth/authorize", app.url)).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let code = reqwest::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    assert_eq!(
        app.call("DELETE", &format!("/api/http/applications/{}", created["id"].as_str().unwrap()), None).await.0,
        200
    );
    let secret = "irrelevant";
    let exchange = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .basic_auth(created["clientId"].as_str().unwrap(), Some(secret))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(exchange.status(), 401, "an archived application is no client any more");
    let page = app.client.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn the_consent_page_signs_a_user_in_and_consents_in_a_real_browser() {
    use base64::Engine as _;
    use sha2::Digest as _;

    let app = spawn().await;
    // The client's redirect URI: a real server on loopback the browser lands on.
    let client_site = super::receiver::receiver(&[]).await;
    let browser_redirect = client_site.url.as_str();
    app.create_org("acme").await;
    let user_token = user_with_token(&app, "ada", "acme", "admin").await;
    let created = app
        .create_app(json!({
            "name": "Calendar sync", "organization": "acme",
            "codeFlowEnabled": true, "codeFlowRedirectURIs": browser_redirect, "pkceRequired": true,
        }))
        .await;
    let client_id = created["clientId"].as_str().unwrap();
    let verifier = "a-long-enough-code-verifier-for-pkce-0123456789-abcdefghijklmnop";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
    let authorize = format!(
        "{}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={browser_redirect}&state=st4te\
         &scope=Applications.View&code_challenge={challenge}&code_challenge_method=S256",
        app.url
    );
    let input = json!({"authorizeUrl": authorize, "userToken": user_token, "redirectPrefix": browser_redirect});
    let seen = super::clients::run_node_async("consent_page.mjs", input).await;

    assert_eq!((seen["status"].clone(), seen["frameOptions"].clone()), (json!(200), json!("DENY")));
    assert_eq!(seen["title"], "Authorize application · weft");
    assert_eq!(seen["appName"], "Calendar sync");
    assert_eq!(seen["scopes"], json!(["Applications.View"]));
    assert_eq!(seen["wrongTokenStatus"], 401);
    assert!(seen["wrongTokenAlert"].as_str().unwrap().contains("not a valid weft user token"), "{seen}");
    let allowed = reqwest::Url::parse(seen["allowedUrl"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = allowed.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some("st4te"));
    let denied = reqwest::Url::parse(seen["deniedUrl"].as_str().unwrap()).unwrap();
    assert!(denied.query_pairs().any(|(k, v)| k == "error" && v == "access_denied"), "{denied}");

    let secret = app.client_secret(created["id"].as_str().unwrap()).await;
    let exchange = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query["code"].as_str()),
            ("redirect_uri", browser_redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(exchange.status(), 200);
    let token: Value = exchange.json().await.unwrap();
    assert_eq!(token["scope"], "Applications.View");
    let access = token["access_token"].as_str().unwrap();
    let (status, shown) = app
        .call_as(Some(access), "GET", &format!("/api/http/applications/{}", created["id"].as_str().unwrap()), None)
        .await;
    assert_eq!((status, shown["name"].clone()), (200, json!("Calendar sync")), "the browser-issued token acts for ada");
    app.stop().await;
}
