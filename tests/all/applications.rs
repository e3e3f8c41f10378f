//! Applications: lifecycle, credentials, OAuth client credentials, webhooks and signed,
//! durable delivery to a real receiver, parameters, and the private-apps API.

pub(crate) mod clients;
mod concurrency;
mod delivery_settings;
mod fairness;
mod oauth;
pub(crate) mod receiver;
mod redeliver;
mod rights;
mod upgrade;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use weft::config::ServerConfig;
use weft::server::Server;

use self::receiver::{public_key_signature_verifies, receiver, verify_space_signature, verify_standard_webhooks};
use crate::support::{ADMIN, PostgresDatabase, fresh_postgres};

/// A server of our own, so tests can call [`weft::applications::publish_event`] in process.
struct App {
    server: Option<Server>,
    url: String,
    client: reqwest::Client,
    _dir: TempDir,
    _postgres: Option<PostgresDatabase>,
}

async fn spawn() -> App {
    spawn_on(None).await
}

async fn spawn_on(postgres: Option<PostgresDatabase>) -> App {
    spawn_in(tempfile::tempdir().unwrap(), postgres).await
}

/// A server on the SQLite file in `dir` (kept from a stopped server), or on `postgres`.
async fn spawn_in(dir: TempDir, postgres: Option<PostgresDatabase>) -> App {
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", dir.path().join("weft.db").display()),
        admin_token: Some(ADMIN.into()),
        ..ServerConfig::default()
    };
    // The test receivers listen on loopback, which deliveries refuse by default.
    config.outbound.allow_private_addresses = true;
    if let Some(db) = &postgres {
        config.database_url = db.url.clone();
        config.secret_key = Some("11".repeat(32));
    }
    let server = Server::start(config).await.expect("server starts");
    App { url: server.url(), server: Some(server), client: reqwest::Client::new(), _dir: dir, _postgres: postgres }
}

impl App {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(Some(ADMIN), method, path, body).await
    }

    async fn call_as(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn create_org(&self, id: &str) {
        let (status, body) = self.call("POST", "/v1/orgs", Some(json!({"id": id, "title": id}))).await;
        assert_eq!(status, 201, "{body}");
    }

    /// Creates an application and returns it.
    async fn create_app(&self, body: Value) -> Value {
        let (status, app) = self.call("POST", "/api/http/applications", Some(body)).await;
        assert_eq!(status, 200, "{app}");
        app
    }

    async fn client_secret(&self, app_id: &str) -> String {
        let (status, secret) =
            self.call("GET", &format!("/api/http/applications/id:{app_id}/client-secret"), None).await;
        assert_eq!(status, 200, "{secret}");
        secret.as_str().unwrap().to_owned()
    }

    /// An access token for the application from `/oauth/token` (HTTP Basic).
    async fn app_token(&self, app: &Value) -> String {
        let secret = self.client_secret(app["id"].as_str().unwrap()).await;
        let response = self
            .client
            .post(format!("{}/oauth/token", self.url))
            .basic_auth(app["clientId"].as_str().unwrap(), Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "**")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn publish(&self, org: &str, event: Value) -> usize {
        let state = self.server.as_ref().unwrap().state();
        weft::applications::publish_event(state, org, &event).await.unwrap()
    }

    /// Polls an application's delivery log until `done` holds.
    async fn wait_deliveries(&self, app_id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.call("GET", &format!("/api/http/applications/{app_id}/deliveries"), None).await;
            assert_eq!(status, 200, "{body}");
            let data = body["data"].as_array().unwrap().clone();
            if done(&data) {
                return data;
            }
            assert!(Instant::now() < deadline, "deliveries never settled: {data:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_status(&self, app_id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, app) = self.call("GET", &format!("/api/http/applications/{app_id}"), None).await;
            if app["status"] == status {
                return;
            }
            assert!(Instant::now() < deadline, "application never became {status}: {app}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server and hands back its database directory.
    async fn stop_keeping_data(self) -> TempDir {
        self.stop_keeping_databases().await.0
    }

    /// Stops the server and hands back its database directory and PostgreSQL database, if any.
    async fn stop_keeping_databases(mut self) -> (TempDir, Option<PostgresDatabase>) {
        self.server.take().unwrap().stop().await.unwrap();
        (self._dir, self._postgres)
    }
}

/// Grants an application rights in the `global` context, as the operator.
async fn grant(app: &App, app_id: &str, codes: &[&str]) {
    let updates: Vec<Value> = codes.iter().map(|code| json!({"rightCode": code, "status": "GRANTED"})).collect();
    let path = format!("/api/http/applications/{app_id}/authorizations/authorized-rights");
    let (status, body) =
        app.call("PATCH", &path, Some(json!({"contextIdentifier": "global", "updates": updates}))).await;
    assert_eq!(status, 200, "{body}");
}

/// Creates a webhook subscribed to `Issue.Created` and returns its id.
async fn issue_webhook(app: &App, app_id: &str, extra: Value) -> String {
    let mut body = json!({
        "name": "issues",
        "subscriptions": [{"subjectCode": "Issue", "eventTypeCodes": ["Issue.Created"]}],
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, webhook) = app.call("POST", &format!("/api/http/applications/{app_id}/webhooks"), Some(body)).await;
    assert_eq!(status, 200, "{webhook}");
    webhook["webhook"]["id"].as_str().unwrap().to_owned()
}

fn issue_created() -> Value {
    json!({"type": "Issue.Created", "subject": "Issue", "issue": {"id": "ISS-1", "title": "Broken"}})
}

#[tokio::test]
async fn applications_are_created_listed_read_and_updated() {
    let app = spawn().await;
    let created = app.create_app(json!({"name": "Zeta bot", "endpointUri": "https://example.com/space"})).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["clientCredentialsFlowEnabled"], true);
    assert!(created["clientId"].as_str().unwrap().len() >= 16, "clientId is generated");
    assert!(created.get("clientSecret").is_none(), "the secret is only served by its own endpoint");
    // Every setting is shown, with the defaults: both signatures on, the code flow off.
    for (field, default) in [
        ("hasSigningKey", json!(true)),
        ("hasPublicKeySignature", json!(true)),
        ("hasVerificationToken", json!(false)),
        ("endpointSslVerification", json!(true)),
        ("codeFlowEnabled", json!(false)),
        ("codeFlowRedirectURIs", Value::Null),
        ("pkceRequired", Value::Null),
        ("description", Value::Null),
        ("errorMessage", Value::Null),
    ] {
        assert_eq!(created.get(field), Some(&default), "{field}: {created}");
    }
    assert!(created.get("state").is_none() && created.get("basicAuthPassword").is_none(), "{created}");
    let given = app.create_app(json!({"name": "alpha", "clientId": "my-client", "clientSecret": "s3cret-value"})).await;
    assert_eq!(given["clientId"], "my-client");
    assert_eq!(app.client_secret(given["id"].as_str().unwrap()).await, "s3cret-value");

    for path in [format!("/api/http/applications/{id}"), format!("/api/http/applications/id:{id}")] {
        let (status, body) = app.call("GET", &path, None).await;
        assert_eq!((status, body["name"].clone()), (200, json!("Zeta bot")));
    }
    let (status, body) = app.call("GET", "/api/http/applications/clientId:my-client", None).await;
    assert_eq!((status, body["name"].clone()), (200, json!("alpha")));

    let (status, page) = app.call("GET", "/api/http/applications/paged?$top=1", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((page["totalCount"].clone(), page["next"].clone()), (json!(2), json!("1")));
    assert_eq!(page["data"][0]["name"], "alpha", "ordered by name by default");
    let (_, page) = app.call("GET", "/api/http/applications/paged?$skip=1&$top=1", None).await;
    assert_eq!(page["data"][0]["name"], "Zeta bot");
    let (_, page) = app.call("GET", "/api/http/applications/paged?name=zeta", None).await;
    assert_eq!(page["totalCount"], 1);
    // Two applications created in the same millisecond tie on createdAt (and are then ordered
    // by id): newest first is exactly oldest first reversed, and the newer one leads whenever
    // their times differ.
    let names = |page: &Value| page["data"].as_array().unwrap().iter().map(|a| a["name"].clone()).collect::<Vec<_>>();
    let (_, oldest_first) = app.call("GET", "/api/http/applications/paged?ordering=CREATED", None).await;
    let (_, newest_first) = app.call("GET", "/api/http/applications/paged?ordering=CREATED_DESC", None).await;
    let mut reversed = names(&oldest_first);
    reversed.reverse();
    assert_eq!(names(&newest_first), reversed);
    if created["createdAt"] != given["createdAt"] {
        assert_eq!(newest_first["data"][0]["name"], "alpha");
    }
    let (_, page) = app.call("GET", "/api/http/applications/paged?owner=someone-else", None).await;
    assert_eq!(page["totalCount"], 0);

    let (status, updated) = app
        .call("PATCH", &format!("/api/http/applications/{id}"), Some(json!({"name": "Zeta 2", "endpointUri": null})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["name"].clone(), updated["endpointUri"].clone()), (json!("Zeta 2"), Value::Null));
    app.stop().await;
}

#[tokio::test]
async fn invalid_application_requests_get_clear_errors() {
    let app = spawn().await;
    let cases = [
        (json!({}), "name is required"),
        (json!({"name": "x".repeat(101)}), "name must be 1–100 characters"),
        (json!({"name": "a", "endpointUri": "ftp://x"}), "endpointUri must be an http(s) URL"),
        (json!({"name": "a", "clientSecret": "short"}), "clientSecret must be a string of 8–256 characters"),
        (json!({"name": "a", "bogus": 1}), "unknown field `bogus`"),
        (json!({"name": "a", "codeFlowEnabled": "yes"}), "codeFlowEnabled must be a boolean or null"),
        (json!({"name": "a", "description": 7}), "description must be a string or null"),
        (json!({"name": "a", "pkceRequired": [true]}), "pkceRequired must be a boolean or null"),
        (json!({"name": "a", "appLevelAuth": true}), "appLevelAuth must be a string or null"),
        (json!({"name": "a", "organization": "nope"}), "no organization `nope`"),
        (json!({"name": "a", "connectToSpace": true}), "connectToSpace needs an endpointUri"),
    ];
    for (body, message) in cases {
        let (status, error) = app.call("POST", "/api/http/applications", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {error}");
        assert_eq!(error["error"], "validation-error");
        assert!(error["error_description"].as_str().unwrap().contains(message), "{body} → {error}");
    }
    app.create_app(json!({"name": "a", "clientId": "dup"})).await;
    let (status, error) =
        app.call("POST", "/api/http/applications", Some(json!({"name": "b", "clientId": "dup"}))).await;
    assert_eq!((status, error["error"].clone()), (409, json!("conflict")));
    let (status, error) = app.call_as(None, "GET", "/api/http/applications/paged", None).await;
    assert_eq!((status, error["error"].clone()), (401, json!("authentication-required")));
    let (status, _) = app.call_as(Some("wrong"), "GET", "/api/http/applications/paged", None).await;
    assert_eq!(status, 401);
    let (status, error) = app.call("GET", "/api/http/applications/nope", None).await;
    assert_eq!((status, error["error"].clone()), (404, json!("not-found")));
    let (status, _) = app.call("GET", "/api/http/applications/paged?$top=0", None).await;
    assert_eq!(status, 400);
    let (status, error) = app.call("GET", "/api/http/applications/me", None).await;
    assert_eq!(status, 400, "the operator is not an application: {error}");
    let response = app
        .client
        .post(format!("{}/api/http/applications", app.url))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    app.stop().await;
}

#[tokio::test]
async fn client_credentials_make_an_application_act_as_itself_only() {
    let app = spawn().await;
    let first = app.create_app(json!({"name": "first"})).await;
    let second = app.create_app(json!({"name": "second"})).await;
    let token = app.app_token(&first).await;

    let (status, me) = app.call_as(Some(&token), "GET", "/api/http/applications/me", None).await;
    assert_eq!((status, me["id"].clone()), (200, first["id"].clone()));
    let (_, access) = app
        .call(
            "GET",
            &format!("/api/http/applications/{}/last-client-credentials-access", first["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(access["lastAccessTime"].is_string(), "{access}");

    let other = format!("/api/http/applications/{}", second["id"].as_str().unwrap());
    let (status, error) = app.call_as(Some(&token), "GET", &other, None).await;
    assert_eq!((status, error["error"].clone()), (403, json!("permission-denied")));
    let (status, _) = app.call_as(Some(&token), "GET", &format!("{other}/client-secret"), None).await;
    assert_eq!(status, 403);
    let (status, _) = app.call_as(Some(&token), "GET", "/api/http/applications/paged", None).await;
    assert_eq!(status, 403);
    let (status, _) = app.call_as(Some(&token), "POST", "/api/http/applications", Some(json!({"name": "x"}))).await;
    assert_eq!(status, 403);

    // Form fields work as well as HTTP Basic; failures use OAuth error codes.
    let secret = app.client_secret(second["id"].as_str().unwrap()).await;
    let client_id = second["clientId"].as_str().unwrap();
    let token_url = format!("{}/oauth/token", app.url);
    let form = |grant: &str, secret: &str| {
        vec![
            ("grant_type", grant.to_owned()),
            ("client_id", client_id.to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let ok = app.client.post(&token_url).form(&form("client_credentials", &secret)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = app.client.post(&token_url).form(&form("client_credentials", "nope")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");
    let grant = app.client.post(&token_url).form(&form("password", &secret)).send().await.unwrap();
    assert_eq!(grant.status(), 400);
    assert_eq!(grant.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    let anonymous = app.client.post(&token_url).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let (status, _) = app.call("PATCH", &other, Some(json!({"clientCredentialsFlowEnabled": false}))).await;
    assert_eq!(status, 200);
    let disabled = app.client.post(&token_url).form(&form("client_credentials", &secret)).send().await.unwrap();
    assert_eq!(disabled.status(), 400);
    assert_eq!(disabled.json::<Value>().await.unwrap()["error"], "unauthorized_client");
    app.stop().await;
}

#[tokio::test]
async fn secrets_are_shown_again_and_regenerated() {
    let app = spawn().await;
    let created = app.create_app(json!({"name": "s", "bearerAuthToken": "to-the-app", "basicAuthUsername": "u"})).await;
    assert_eq!(
        (created["hasBearerAuthToken"].clone(), created["basicAuthUsername"].clone()),
        (json!(true), json!("u"))
    );
    let base = format!("/api/http/applications/{}", created["id"].as_str().unwrap());
    let token = app.app_token(&created).await;
    let (status, error) = app.call_as(Some(&token), "GET", "/api/http/applications/me/client-secret", None).await;
    assert_eq!(status, 403, "an application reads its secrets only once granted: {error}");
    grant(&app, created["id"].as_str().unwrap(), &["Applications.ViewSecrets"]).await;
    for what in ["client-secret", "signing-key", "verification-token"] {
        let (_, before) = app.call("GET", &format!("{base}/{what}"), None).await;
        let (status, regenerated) = app.call("POST", &format!("{base}/{what}/regenerate"), None).await;
        assert_eq!(status, 200, "{what}");
        assert_ne!(before, regenerated, "{what} changes");
        let (_, after) = app.call_as(Some(&token), "GET", &format!("/api/http/applications/me/{what}"), None).await;
        assert_eq!(after, regenerated, "{what} is shown again");
    }
    let (_, bearer) = app.call("GET", &format!("{base}/bearer-token"), None).await;
    assert_eq!(bearer, "to-the-app");
    // The old client secret no longer works.
    let response = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .basic_auth(created["clientId"].as_str().unwrap(), Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, jwks) = app.call("GET", &format!("{base}/public-keys"), None).await;
    assert_eq!((status, jwks["keys"][0]["kty"].clone()), (200, json!("RSA")));
    app.stop().await;
}

#[tokio::test]
async fn permanent_tokens_are_shown_once_renamed_and_revoked() {
    let app = spawn().await;
    let created = app.create_app(json!({"name": "p"})).await;
    let base = format!("/api/http/applications/{}/permanent-tokens", created["id"].as_str().unwrap());
    let (status, token) = app.call("POST", &base, Some(json!({"name": "ci", "scope": "global:**"}))).await;
    assert_eq!(status, 200, "{token}");
    let secret = token["token"].as_str().unwrap().to_owned();
    let token_id = token["id"].as_str().unwrap();
    let (status, me) = app.call_as(Some(&secret), "GET", "/api/http/applications/me", None).await;
    assert_eq!((status, me["id"].clone()), (200, created["id"].clone()));

    let (_, list) = app.call("GET", &base, None).await;
    assert_eq!(list["totalCount"], 1);
    assert!(list["data"][0].get("token").is_none(), "the secret is never listed");
    assert!(list["data"][0]["lastAccess"].is_string(), "use is recorded");

    let (status, updated) = app
        .call(
            "PATCH",
            &format!("{base}/{token_id}"),
            Some(json!({"name": "deploy", "expires": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["name"].clone(), updated["scope"].clone()), (json!("deploy"), json!("global:**")));
    for bad in [json!({"expires": "yesterday"}), json!({"expires": "2000-01-01T00:00:00Z"}), json!({"name": ""})] {
        let (status, _) = app.call("PATCH", &format!("{base}/{token_id}"), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = app.call("POST", &base, Some(json!({"name": "x".repeat(101)}))).await;
    assert_eq!(status, 400);

    // The operator cannot "delete current"; the token itself can.
    let (status, _) = app.call("DELETE", &format!("{base}/current"), None).await;
    assert_eq!(status, 400);
    let (status, _) =
        app.call_as(Some(&secret), "DELETE", "/api/http/applications/me/permanent-tokens/current", None).await;
    assert_eq!(status, 200);
    let (status, _) = app.call_as(Some(&secret), "GET", "/api/http/applications/me", None).await;
    assert_eq!(status, 401);

    let (_, second) = app.call("POST", &base, Some(json!({"name": "two"}))).await;
    let path = format!("{base}/{}", second["id"].as_str().unwrap());
    assert_eq!(app.call("DELETE", &path, None).await.0, 200);
    assert_eq!(app.call("DELETE", &path, None).await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn parameters_belong_to_the_application_and_are_limited() {
    let app = spawn().await;
    let created = app.create_app(json!({"name": "params"})).await;
    let token = app.app_token(&created).await;
    let set = |key: String, value: String| {
        let token = token.clone();
        let app = &app;
        async move {
            app.call_as(
                Some(&token),
                "PATCH",
                &format!("/api/http/applications/parameters/{key}"),
                Some(json!({"value": value})),
            )
            .await
        }
    };
    assert_eq!(set("colour".into(), "blue".into()).await.0, 200);
    let (status, value) = app.call_as(Some(&token), "GET", "/api/http/applications/parameters/colour", None).await;
    assert_eq!((status, value), (200, json!("blue")));
    let (status, error) = app.call("GET", "/api/http/applications/parameters/colour", None).await;
    assert_eq!(status, 403, "the operator is not an application: {error}");

    let (status, error) = set("k".repeat(65), "v".into()).await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("1–64"), "{error}");
    let (status, error) = set("long".into(), "v".repeat(1001)).await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("1000"), "{error}");
    assert_eq!(set("k".repeat(64), "v".repeat(1000)).await.0, 200);

    for i in 2..100 {
        assert_eq!(set(format!("p{i}"), "x".into()).await.0, 200);
    }
    let (status, error) = set("one-too-many".into(), "x".into()).await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("at most 100 parameters"), "{error}");
    assert_eq!(set("colour".into(), "red".into()).await.0, 200, "updating an existing key is fine at the limit");

    let (status, _) = app.call_as(Some(&token), "DELETE", "/api/http/applications/parameters/colour", None).await;
    assert_eq!(status, 200);
    let (status, _) = app.call_as(Some(&token), "GET", "/api/http/applications/parameters/colour", None).await;
    assert_eq!(status, 404);

    // Another application sees none of them.
    let other = app.create_app(json!({"name": "other"})).await;
    let other_token = app.app_token(&other).await;
    let (status, _) = app.call_as(Some(&other_token), "GET", "/api/http/applications/parameters/p2", None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn webhook_payloads_carry_signatures_a_receiver_can_verify() {
    let app = spawn().await;
    app.create_org("acme").await;
    let hook = receiver(&[]).await;
    let created = app.create_app(json!({"name": "signed", "organization": "acme", "endpointUri": hook.url})).await;
    let app_id = created["id"].as_str().unwrap();
    let webhook_id = issue_webhook(&app, app_id, json!({})).await;
    let headers_path = format!("/api/http/applications/{app_id}/webhooks/{webhook_id}/custom-headers");
    let (status, _) = app.call("POST", &headers_path, Some(json!({"headers": {"X-Team": "core"}}))).await;
    assert_eq!(status, 200);

    assert_eq!(app.publish("acme", issue_created()).await, 1);
    assert_eq!(app.publish("acme", json!({"type": "Chat.Message"})).await, 0, "no subscription matches");
    let hit = hook.wait_for(1).await.remove(0);
    let payload = hit.json();
    assert_eq!(payload["className"], "WebhookRequestPayload");
    assert_eq!(payload["payload"]["issue"]["id"], "ISS-1");
    assert_eq!(payload["webhookId"], webhook_id);
    assert_eq!(hit.header("x-team"), "core");

    let (_, key) =
        app.call("GET", &format!("/api/http/applications/{app_id}/webhooks/{webhook_id}/signing-key"), None).await;
    let signing_key = key["signingKey"].as_str().unwrap();
    verify_space_signature(&hit, signing_key);
    verify_standard_webhooks(&hit, signing_key);
    let (_, jwks) = app.call("GET", &format!("/api/http/applications/{app_id}/public-keys"), None).await;
    assert!(public_key_signature_verifies(&hit, &jwks), "the JWKS verifies X-Space-Public-Key-Signature");

    // A tampered body fails every scheme.
    let mut tampered = hit.clone();
    tampered.body = tampered.body.replace("Broken", "Fixed");
    assert!(!public_key_signature_verifies(&tampered, &jwks));
    assert!(std::panic::catch_unwind(|| verify_space_signature(&tampered, signing_key)).is_err());

    let deliveries = app.wait_deliveries(app_id, |d| d.first().is_some_and(|d| d["status"] == "succeeded")).await;
    assert_eq!((deliveries[0]["attempts"].clone(), deliveries[0]["lastStatusCode"].clone()), (json!(1), json!(200)));
    app.stop().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_webhook_id() {
    let app = spawn().await;
    app.create_org("acme").await;
    let hook = receiver(&[500, 503]).await;
    let created = app.create_app(json!({"name": "retry", "organization": "acme", "endpointUri": hook.url})).await;
    let app_id = created["id"].as_str().unwrap();
    issue_webhook(&app, app_id, json!({})).await;
    app.publish("acme", issue_created()).await;
    let hits = hook.wait_for(3).await;
    assert_eq!(hits[0].header("webhook-id"), hits[2].header("webhook-id"));
    let deliveries = app.wait_deliveries(app_id, |d| d.first().is_some_and(|d| d["status"] == "succeeded")).await;
    assert_eq!(deliveries[0]["attempts"], 3);
    app.stop().await;
}

#[tokio::test]
async fn accepted_codes_succeed_and_deliveries_without_retries_fail_once() {
    let app = spawn().await;
    app.create_org("acme").await;
    let accepted = receiver(&[410]).await;
    let failing = receiver(&[500]).await;
    let created = app.create_app(json!({"name": "codes", "organization": "acme"})).await;
    let app_id = created["id"].as_str().unwrap();
    let accepting =
        issue_webhook(&app, app_id, json!({"endpoint": {"url": accepted.url}, "acceptedHttpResponseCodes": [410]}))
            .await;
    let no_retry = issue_webhook(&app, app_id, json!({"endpoint": {"url": failing.url}, "doRetries": false})).await;
    app.publish("acme", issue_created()).await;
    let deliveries = app.wait_deliveries(app_id, |d| d.len() == 2 && d.iter().all(|d| d["status"] != "pending")).await;
    let of = |id: &str| deliveries.iter().find(|d| d["webhookId"] == id).unwrap().clone();
    assert_eq!(
        (of(&accepting)["status"].clone(), of(&accepting)["lastStatusCode"].clone()),
        (json!("succeeded"), json!(410))
    );
    assert_eq!((of(&no_retry)["status"].clone(), of(&no_retry)["attempts"].clone()), (json!("failed"), json!(1)));
    assert_eq!(failing.hits().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn events_reach_only_enabled_matching_webhooks_of_the_same_organization() {
    let app = spawn().await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    let hook = receiver(&[]).await;
    let acme = app.create_app(json!({"name": "acme app", "organization": "acme", "endpointUri": hook.url})).await;
    let acme_id = acme["id"].as_str().unwrap();
    let webhook_id = issue_webhook(&app, acme_id, json!({})).await;
    assert_eq!(app.publish("globex", issue_created()).await, 0, "another organization's events stay there");

    let hook_path = format!("/api/http/applications/{acme_id}/webhooks/{webhook_id}");
    assert_eq!(app.call("PATCH", &hook_path, Some(json!({"enabled": false}))).await.0, 200);
    assert_eq!(app.publish("acme", issue_created()).await, 0, "disabled webhook");
    assert_eq!(app.call("PATCH", &hook_path, Some(json!({"enabled": true}))).await.0, 200);

    let (_, subscriptions) = app.call("GET", &format!("{hook_path}/subscriptions"), None).await;
    let subscription_path = format!("{hook_path}/subscriptions/{}", subscriptions[0]["id"].as_str().unwrap());
    assert_eq!(app.call("PATCH", &subscription_path, Some(json!({"enabled": false}))).await.0, 200);
    assert_eq!(app.publish("acme", issue_created()).await, 0, "disabled subscription");
    assert_eq!(app.call("DELETE", &subscription_path, None).await.0, 200);
    assert_eq!(app.call("DELETE", &subscription_path, None).await.0, 404);

    let (status, subscription) = app
        .call(
            "POST",
            &format!("{hook_path}/subscriptions"),
            Some(json!({"name": "all", "subscription": {"eventTypeCodes": ["*"]}})),
        )
        .await;
    assert_eq!(status, 200, "{subscription}");
    let (status, rights) = app
        .call(
            "POST",
            &format!("{hook_path}/subscriptions/{}/request-missing-rights", subscription["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((status, rights["missingRights"].clone()), (200, json!([])), "`*` names no subject");
    assert_eq!(app.publish("acme", json!({"type": "Anything"})).await, 1);
    hook.wait_for(1).await;

    assert_eq!(app.call("DELETE", &hook_path, None).await.0, 200);
    assert_eq!(app.publish("acme", issue_created()).await, 0, "archived webhook");
    let (_, list) = app.call("GET", &format!("/api/http/applications/{acme_id}/webhooks"), None).await;
    assert_eq!(list["totalCount"], 0);
    let (_, list) =
        app.call("GET", &format!("/api/http/applications/{acme_id}/webhooks?withArchived=true"), None).await;
    assert_eq!((list["totalCount"].clone(), list["data"][0]["webhook"]["archived"].clone()), (json!(1), json!(true)));
    assert_eq!(app.call("POST", &hook_path, None).await.0, 200, "restore");
    assert_eq!(app.publish("acme", json!({"type": "Anything"})).await, 1);
    hook.wait_for(2).await;
    app.stop().await;
}

#[tokio::test]
async fn webhook_requests_are_validated_and_scoped_to_their_application() {
    let app = spawn().await;
    let first = app.create_app(json!({"name": "first"})).await;
    let second = app.create_app(json!({"name": "second"})).await;
    let first_id = first["id"].as_str().unwrap();
    let hooks = format!("/api/http/applications/{first_id}/webhooks");
    let cases = [
        json!({}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "a", "endpoint": {"url": "not a url"}}),
        json!({"name": "a", "acceptedHttpResponseCodes": [99]}),
        json!({"name": "a", "doRetries": "no"}),
        json!({"name": "a", "subscriptions": [{"eventTypeCodes": [""]}]}),
        json!({"name": "a", "unknown": true}),
    ];
    for body in cases {
        let (status, error) = app.call("POST", &hooks, Some(body.clone())).await;
        assert_eq!((status, error["error"].clone()), (400, json!("validation-error")), "{body}");
    }
    let webhook_id = issue_webhook(&app, first_id, json!({"endpointAuth": {"bearerAuthToken": "hook-token"}})).await;
    let (status, token) = app.call("GET", &format!("{hooks}/{webhook_id}/bearer-token"), None).await;
    assert_eq!((status, token), (200, json!("hook-token")));
    let (status, _) = app
        .call("POST", &format!("{hooks}/{webhook_id}/custom-headers"), Some(json!({"headers": {"Authorization": "x"}})))
        .await;
    assert_eq!(status, 400, "reserved headers are refused");
    let (_, before) = app.call("GET", &format!("{hooks}/{webhook_id}/signing-key"), None).await;
    let (_, after) = app.call("POST", &format!("{hooks}/{webhook_id}/signing-key/regenerate"), None).await;
    assert_ne!(before["signingKey"], after["signingKey"]);
    assert!(after["standardWebhooksSecret"].as_str().unwrap().starts_with("whsec_"));

    // The webhook is not reachable through another application, nor by another application's token.
    let second_id = second["id"].as_str().unwrap();
    let (status, _) =
        app.call("GET", &format!("/api/http/applications/{second_id}/webhooks/{webhook_id}/signing-key"), None).await;
    assert_eq!(status, 404);
    let token = app.app_token(&second).await;
    let (status, _) = app.call_as(Some(&token), "GET", &hooks, None).await;
    assert_eq!(status, 403);
    let (status, _) = app.call_as(Some(&token), "GET", "/api/http/applications/me/webhooks", None).await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_connected_application_uninstalls_it_and_restore_brings_it_back() {
    let app = spawn().await;
    let hook = receiver(&[]).await;
    let created = app.create_app(json!({"name": "bye", "endpointUri": hook.url, "connectToSpace": true})).await;
    let app_id = created["id"].as_str().unwrap();
    assert_eq!(hook.wait_for(1).await[0].json()["className"], "InitPayload");
    let token = app.app_token(&created).await;
    let (status, _) = app.call("DELETE", &format!("/api/http/applications/{app_id}"), None).await;
    assert_eq!(status, 200);
    let hit = hook.wait_for(2).await.remove(1);
    assert_eq!(hit.json()["className"], "ApplicationUninstalledPayload");
    let (_, key) = app.call("GET", &format!("/api/http/applications/{app_id}/signing-key"), None).await;
    verify_space_signature(&hit, key.as_str().unwrap());
    app.wait_status(app_id, "archived").await;
    let (status, _) = app.call_as(Some(&token), "GET", "/api/http/applications/me", None).await;
    assert_eq!(status, 401, "an archived application's tokens are revoked");

    let (_, page) = app.call("GET", "/api/http/applications/paged", None).await;
    assert_eq!(page["totalCount"], 0);
    let (_, page) = app.call("GET", "/api/http/applications/paged?withArchived=true", None).await;
    assert_eq!(page["data"][0]["archived"], true);
    let (status, restored) = app.call("POST", &format!("/api/http/applications/{app_id}/restore"), None).await;
    assert_eq!((status, restored["status"].clone()), (200, json!("active")));
    app.app_token(&created).await;
    app.stop().await;
}

#[tokio::test]
async fn only_connected_applications_are_sent_the_uninstall_payload() {
    let app = spawn().await;
    let hook = receiver(&[]).await;
    let created = app.create_app(json!({"name": "single-org", "endpointUri": hook.url})).await;
    let app_id = created["id"].as_str().unwrap();
    assert_eq!(app.call("DELETE", &format!("/api/http/applications/{app_id}"), None).await.0, 200);
    let (_, shown) = app.call("GET", &format!("/api/http/applications/{app_id}"), None).await;
    assert_eq!(shown["status"], "archived", "archived at once");
    let (_, deliveries) = app.call("GET", &format!("/api/http/applications/{app_id}/deliveries"), None).await;
    assert_eq!(deliveries["totalCount"], 0, "nothing was sent: {deliveries}");
    assert!(hook.hits().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_unresponsive_application_is_archived_after_repeated_failures_or_force_removed() {
    let app = spawn().await;
    // The InitPayload succeeds; every uninstall attempt fails.
    let failing = receiver(&[200, 500, 500, 500, 500]).await;
    let created = app.create_app(json!({"name": "down", "endpointUri": failing.url, "connectToSpace": true})).await;
    let app_id = created["id"].as_str().unwrap();
    failing.wait_for(1).await;
    app.call("DELETE", &format!("/api/http/applications/{app_id}"), None).await;
    app.wait_status(app_id, "archived").await;
    assert_eq!(failing.hits().len(), 1 + weft::applications::UNINSTALL_ATTEMPTS as usize);

    // An endpoint that never answers: force-remove archives without waiting, but only once
    // the uninstall payload has failed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let stuck = app.create_app(json!({"name": "stuck", "endpointUri": dead_url, "connectToSpace": true})).await;
    let stuck_id = stuck["id"].as_str().unwrap();
    let force = format!("/api/http/applications/{stuck_id}/force-remove");
    let (status, error) = app.call("POST", &force, None).await;
    assert_eq!((status, error["error"].clone()), (409, json!("conflict")), "nothing failed yet: {error}");
    app.call("DELETE", &format!("/api/http/applications/{stuck_id}"), None).await;
    let (_, state) = app.call("GET", &format!("/api/http/applications/{stuck_id}"), None).await;
    assert_eq!(state["status"], "uninstalling", "deleting starts the uninstall");
    let token = app.app_token(&app.create_app(json!({"name": "bystander"})).await).await;
    let (status, _) = app.call_as(Some(&token), "POST", &force, None).await;
    assert_eq!(status, 403);
    app.wait_deliveries(stuck_id, |d| d.iter().any(|d| d["kind"] == "uninstall" && d["attempts"].as_i64() >= Some(1)))
        .await;
    let (status, _) = app.call("POST", &force, None).await;
    assert_eq!(status, 200);
    let (_, state) = app.call("GET", &format!("/api/http/applications/{stuck_id}"), None).await;
    assert_eq!(state["status"], "archived");
    let deliveries = app.wait_deliveries(stuck_id, |d| d.iter().all(|d| d["status"] != "pending")).await;
    assert!(deliveries.iter().all(|d| d["status"] != "succeeded"), "{deliveries:?}");
    app.stop().await;
}

#[tokio::test]
async fn connecting_to_space_sends_an_init_payload_with_the_state() {
    let app = spawn().await;
    let hook = receiver(&[]).await;
    let created = app
        .create_app(json!({
            "name": "multi", "endpointUri": hook.url, "connectToSpace": true, "state": "step-1",
            "hasVerificationToken": true,
        }))
        .await;
    let payload = hook.wait_for(1).await.remove(0).json();
    assert_eq!(payload["className"], "InitPayload");
    assert_eq!(payload["state"], "step-1");
    let token_path = format!("/api/http/applications/{}/verification-token", created["id"].as_str().unwrap());
    assert_eq!(payload["verificationToken"], app.call("GET", &token_path, None).await.1);
    assert_eq!(payload["clientId"], created["clientId"]);
    assert_eq!(payload["clientSecret"].as_str().unwrap(), app.client_secret(created["id"].as_str().unwrap()).await);
    app.stop().await;
}

#[tokio::test]
async fn health_errors_unfurls_and_ssh_keys_are_recorded() {
    let app = spawn().await;
    let created = app.create_app(json!({"name": "misc"})).await;
    let app_id = created["id"].as_str().unwrap();
    let token = app.app_token(&created).await;
    assert_eq!(app.call("POST", "/api/http/applications/report-application-as-healthy", None).await.0, 403);
    assert_eq!(
        app.call_as(Some(&token), "POST", "/api/http/applications/report-application-as-healthy", None).await.0,
        200
    );
    let (status, _) = app
        .call_as(
            Some(&token),
            "PATCH",
            "/api/http/applications/error-message",
            Some(json!({"message": "token expired"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, shown) = app.call("GET", &format!("/api/http/applications/{app_id}"), None).await;
    assert!(shown["lastHealthyAt"].is_string());
    assert_eq!(shown["errorMessage"], "token expired");
    assert!(shown.get("sshKeys").is_none() && shown.get("state").is_none(), "{shown}");

    let (status, _) = app
        .call_as(
            Some(&token),
            "PATCH",
            "/api/http/applications/unfurls/domains",
            Some(json!({"domains": ["example.com"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call_as(
            Some(&token),
            "POST",
            &format!("/api/http/applications/{app_id}/unfurl-domains/authorize"),
            Some(json!({"domains": ["example.com"], "approve": true})),
        )
        .await;
    assert_eq!(status, 403, "only the operator authorizes");
    let path = format!("/api/http/applications/{app_id}/unfurl-domains/authorize");
    assert_eq!(app.call("POST", &path, Some(json!({"domains": ["other.com"], "approve": true}))).await.0, 400);
    assert_eq!(app.call("POST", &path, Some(json!({"domains": ["example.com"], "approve": true}))).await.0, 200);
    let (_, domains) = app.call("GET", &format!("/api/http/applications/{app_id}/unfurl-domains"), None).await;
    assert_eq!(domains, json!([{"value": "example.com", "authorized": true}]));
    // A declaration replaces the list: each value once, in the order given, the kept one
    // still authorized.
    let redeclared = json!({"domains": ["new.example", "example.com", "new.example"]});
    let path = "/api/http/applications/unfurls/domains";
    assert_eq!(app.call_as(Some(&token), "PATCH", path, Some(redeclared)).await.0, 200);
    let (_, domains) = app.call("GET", &format!("/api/http/applications/{app_id}/unfurl-domains"), None).await;
    assert_eq!(
        domains,
        json!([{"value": "new.example", "authorized": false}, {"value": "example.com", "authorized": true}])
    );

    let keys = format!("/api/http/applications/{app_id}/ssh-keys");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f dev@laptop";
    let (status, added) = app.call("POST", &keys, Some(json!({"publicKey": key}))).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(app.call("POST", &keys, Some(json!({"publicKey": key}))).await.0, 409);
    assert_eq!(app.call("POST", &keys, Some(json!({"publicKey": "not a key"}))).await.0, 400);
    assert_eq!(app.call("POST", &keys, Some(json!({"key": key}))).await.0, 400, "the reference's field is publicKey");
    let fingerprint = added["fingerprint"].as_str().unwrap();
    let (_, listed) = app.call("GET", &keys, None).await;
    assert_eq!(listed[0]["comment"], "dev@laptop");
    let encoded: String = fingerprint.replace('/', "%2F").replace('+', "%2B");
    assert_eq!(app.call("DELETE", &format!("{keys}/{encoded}"), None).await.0, 200);
    assert_eq!(app.call("DELETE", &format!("{keys}/{encoded}"), None).await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn private_applications_are_created_and_listed_newest_first() {
    let app = spawn().await;
    let (status, first) = app
        .call(
            "POST",
            "/api/v1/applications",
            Some(json!({"name": "first", "page": "my-page", "generate_secret": true})),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let uris = first["redirect_uris"].as_array().unwrap();
    assert_eq!(uris[0], "http://localhost");
    assert_eq!(uris[1], format!("{}/pages/my-page", app.url));
    assert!(first["client_secret"].as_str().unwrap().len() >= 32);
    assert_eq!(first["page"]["slug"], "my-page");
    let (status, second) = app
        .call(
            "POST",
            "/api/v1/applications",
            Some(json!({"name": "second", "redirect_uris": ["https://app.example/cb"], "page": "p2"})),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["redirect_uris"], json!(["https://app.example/cb", format!("{}/pages/p2", app.url)]));
    assert_eq!(second["client_secret"], Value::Null);
    let (_, third) = app.call("POST", "/api/v1/applications", Some(json!({"name": "third"}))).await;
    assert_eq!(third["redirect_uris"], Value::Null);

    let (status, list) = app.call("GET", "/api/v1/applications", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["third", "second", "first"]);
    assert_eq!(list[2]["page_slug"], "my-page");

    let (status, error) = app
        .call("POST", "/api/v1/applications", Some(json!({"description": "d".repeat(501), "redirect_uris": ["nope"]})))
        .await;
    assert_eq!(status, 422);
    let kinds: Vec<&str> = error["detail"].as_array().unwrap().iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["missing", "string_too_long", "url_parsing"]);
    assert_eq!(error["detail"][0]["loc"], json!(["body", "name"]));
    let (status, error) = app.call("POST", "/api/v1/applications", Some(json!({"name": "x".repeat(101)}))).await;
    assert_eq!((status, error["detail"][0]["type"].clone()), (422, json!("string_too_long")));
    let (status, error) = app.call("POST", "/api/v1/applications", Some(json!({"name": ""}))).await;
    assert_eq!((status, error["detail"][0]["type"].clone()), (422, json!("string_too_short")));
    let (status, _) = app.call_as(None, "GET", "/api/v1/applications", None).await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test]
async fn the_core_flow_works_on_postgres() {
    let app = spawn_on(Some(fresh_postgres().await)).await;
    app.create_org("acme").await;
    let hook = receiver(&[500]).await;
    let created = app.create_app(json!({"name": "pg", "organization": "acme", "endpointUri": hook.url})).await;
    let app_id = created["id"].as_str().unwrap();
    let token = app.app_token(&created).await;
    let (status, me) = app.call_as(Some(&token), "GET", "/api/http/applications/me", None).await;
    assert_eq!((status, me["id"].clone()), (200, created["id"].clone()));
    let set =
        app.call_as(Some(&token), "PATCH", "/api/http/applications/parameters/k", Some(json!({"value": "v"}))).await;
    assert_eq!(set.0, 200);
    let (_, page) = app.call("GET", "/api/http/applications/paged?name=PG", None).await;
    assert_eq!(page["totalCount"], 1);
    let webhook_id = issue_webhook(&app, app_id, json!({})).await;
    assert_eq!(app.publish("acme", issue_created()).await, 1);
    let hits = hook.wait_for(2).await;
    let (_, key) =
        app.call("GET", &format!("/api/http/applications/{app_id}/webhooks/{webhook_id}/signing-key"), None).await;
    verify_space_signature(&hits[1], key["signingKey"].as_str().unwrap());
    verify_standard_webhooks(&hits[1], key["signingKey"].as_str().unwrap());
    let (_, jwks) = app.call("GET", &format!("/api/http/applications/{app_id}/public-keys"), None).await;
    assert!(public_key_signature_verifies(&hits[1], &jwks));
    let deliveries = app.wait_deliveries(app_id, |d| d.first().is_some_and(|d| d["status"] == "succeeded")).await;
    assert_eq!(deliveries[0]["attempts"], 2);
    app.call("DELETE", &format!("/api/http/applications/{app_id}"), None).await;
    app.wait_status(app_id, "archived").await;
    let (_, private) = app.call("POST", "/api/v1/applications", Some(json!({"name": "dev"}))).await;
    let (_, list) = app.call("GET", "/api/v1/applications", None).await;
    assert_eq!(list[0]["id"], private["id"]);
    app.stop().await;
}

#[tokio::test]
async fn ui_extensions_are_set_by_the_application_and_toggled_by_the_operator() {
    let app = spawn().await;
    let created = app.create_app(json!({"name": "ui"})).await;
    let app_id = created["id"].as_str().unwrap();
    let token = app.app_token(&created).await;
    let body = json!({"contextIdentifier": "global", "extensions": [{"className": "ChatBotUiExtensionIn"}]});
    assert_eq!(app.call("PATCH", "/api/http/applications/ui-extensions", Some(body.clone())).await.0, 403);
    assert_eq!(app.call_as(Some(&token), "PATCH", "/api/http/applications/ui-extensions", Some(body)).await.0, 200);
    let bad = json!({"extensions": ["not an object"]});
    assert_eq!(app.call_as(Some(&token), "PATCH", "/api/http/applications/ui-extensions", Some(bad)).await.0, 400);

    let base = format!("/api/http/applications/{app_id}/ui-extensions");
    let disable = json!({"contextIdentifier": "global"});
    let (status, _) =
        app.call_as(Some(&token), "PATCH", &format!("{base}/disable-for-everybody"), Some(disable.clone())).await;
    assert_eq!(status, 403, "an application does not toggle the UI for everybody");
    assert_eq!(app.call("PATCH", &format!("{base}/disable-for-everybody"), Some(disable.clone())).await.0, 200);
    let (status, _) = app.call("PATCH", &format!("{base}/disable-for-me"), Some(disable.clone())).await;
    assert_eq!(status, 403, "\"for me\" needs a user");
    let (status, shown) = app.call("GET", &format!("{base}?contextIdentifier=global"), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["extensions"][0]["className"], "ChatBotUiExtensionIn");
    assert_eq!((shown["enabledForEverybody"].clone(), shown["enabledForMe"].clone()), (json!(false), Value::Null));
    let (_, all) = app.call("GET", &base, None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // Disabled contexts are bounded per application: disabling one again changes nothing, the
    // 101st is refused naming the limit, and enabling one makes room.
    assert_eq!(app.call("PATCH", &format!("{base}/disable-for-everybody"), Some(disable.clone())).await.0, 200);
    for i in 1..100 {
        let body = json!({"contextIdentifier": format!("space:{i}")});
        assert_eq!(app.call("PATCH", &format!("{base}/disable-for-everybody"), Some(body)).await.0, 200, "{i}");
    }
    let over = json!({"contextIdentifier": "space:100"});
    let (status, error) = app.call("PATCH", &format!("{base}/disable-for-everybody"), Some(over.clone())).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error_description"].as_str().unwrap().contains("at most 100 contexts"), "{error}");
    assert_eq!(app.call("PATCH", &format!("{base}/enable-for-everybody"), Some(disable.clone())).await.0, 200);
    assert_eq!(app.call("PATCH", &format!("{base}/disable-for-everybody"), Some(over)).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn rights_are_requested_by_the_application_and_granted_by_the_operator() {
    let app = spawn().await;
    let created = app.create_app(json!({"name": "rights"})).await;
    let app_id = created["id"].as_str().unwrap();
    let token = app.app_token(&created).await;
    let base = format!("/api/http/applications/{app_id}/authorizations");
    let request = json!({"contextIdentifier": "global", "rightCodes": ["Profile.View", "Issue.Create"]});
    let (status, _) = app
        .call_as(
            Some(&token),
            "PATCH",
            "/api/http/applications/me/authorizations/authorized-rights/request-rights",
            Some(request),
        )
        .await;
    assert_eq!(status, 200);
    let (_, rights) = app.call("GET", &format!("{base}/authorized-rights?contextIdentifier=global"), None).await;
    assert!(rights.as_array().unwrap().iter().all(|r| r["status"] == "PENDING"), "{rights}");

    let grant = json!({"contextIdentifier": "global", "updates": [{"rightCode": "Profile.View", "status": "GRANTED"}]});
    let (status, _) =
        app.call_as(Some(&token), "PATCH", &format!("{base}/authorized-rights"), Some(grant.clone())).await;
    assert_eq!(status, 403, "an application cannot grant itself rights");
    assert_eq!(app.call("PATCH", &format!("{base}/authorized-rights"), Some(grant)).await.0, 200);
    let bad = json!({"updates": [{"rightCode": "X", "status": "MAYBE"}]});
    assert_eq!(app.call("PATCH", &format!("{base}/authorized-rights"), Some(bad)).await.0, 400);
    let (_, contexts) = app.call("GET", &format!("{base}/authorized-contexts"), None).await;
    assert_eq!(contexts, json!([{"contextIdentifier": "global"}]));
    let (_, authorized) = app
        .call("GET", "/api/http/applications/authorizations/authorized-applications?contextIdentifier=global", None)
        .await;
    assert_eq!(authorized[0]["id"], created["id"]);

    let required = json!({"rightCodesToAdd": ["Chat.Send"], "requestRightsInAuthorizedContexts": true});
    let (status, codes) = app.call("PATCH", &format!("{base}/required-rights"), Some(required)).await;
    assert_eq!((status, codes), (200, json!(["Chat.Send"])));
    let (_, rights) = app.call("GET", &format!("{base}/authorized-rights?contextIdentifier=global"), None).await;
    assert!(rights.as_array().unwrap().iter().any(|r| r["rightCode"] == "Chat.Send" && r["status"] == "PENDING"));
    let (_, codes) = app.call("GET", &format!("{base}/required-rights"), None).await;
    assert_eq!(codes, json!(["Chat.Send"]));

    assert_eq!(app.call("DELETE", &format!("{base}/authorized-rights?contextIdentifier=global"), None).await.0, 200);
    assert_eq!(app.call("DELETE", &format!("{base}/authorized-rights?contextIdentifier=global"), None).await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn authorized_links_reach_the_unfurl_queue_of_their_application() {
    let app = spawn().await;
    app.create_org("acme").await;
    let created = app.create_app(json!({"name": "unfurler", "organization": "acme"})).await;
    let app_id = created["id"].as_str().unwrap();
    let token = app.app_token(&created).await;
    let domains = json!({"domains": ["tracker.example"]});
    assert_eq!(
        app.call_as(Some(&token), "PATCH", "/api/http/applications/unfurls/domains", Some(domains)).await.0,
        200
    );
    let queue = "/api/http/applications/unfurls/queue?batchSize=10";
    let (status, error) = app.call_as(Some(&token), "GET", queue, None).await;
    assert_eq!(status, 403, "the queue needs Unfurls.Provide: {error}");
    grant(&app, app_id, &["Unfurls.Provide"]).await;
    let state = app.server.as_ref().unwrap().state();
    let link = "https://tracker.example/ISSUE-1";
    assert_eq!(weft::applications::queue_unfurl(state, "acme", link).await.unwrap(), 0, "not authorized yet");
    let approve = json!({"domains": ["tracker.example"], "approve": true});
    let path = format!("/api/http/applications/{app_id}/unfurl-domains/authorize");
    assert_eq!(app.call("POST", &path, Some(approve)).await.0, 200);
    let state = app.server.as_ref().unwrap().state();
    assert_eq!(weft::applications::queue_unfurl(state, "acme", link).await.unwrap(), 1);
    assert_eq!(weft::applications::queue_unfurl(state, "globex", link).await.unwrap(), 0);

    let (status, items) =
        app.call_as(Some(&token), "GET", "/api/http/applications/unfurls/queue?batchSize=10", None).await;
    assert_eq!(status, 200, "{items}");
    assert_eq!(items[0]["target"], link);
    let etag = items[0]["etag"].as_i64().unwrap();
    let (_, later) = app
        .call_as(
            Some(&token),
            "GET",
            &format!("/api/http/applications/unfurls/queue?batchSize=10&fromEtag={etag}"),
            None,
        )
        .await;
    assert_eq!(later, json!([]));
    assert_eq!(app.call_as(Some(&token), "GET", "/api/http/applications/unfurls/queue?batchSize=0", None).await.0, 400);
    assert_eq!(app.call("GET", "/api/http/applications/unfurls/queue?batchSize=10", None).await.0, 403);

    // The host product reports links it saw; matching ones reach the queue.
    let seen = json!({"organization": "acme", "links": ["https://tracker.example/ISSUE-2", "https://other.example/x"]});
    let (status, queued) = app.call("POST", "/api/http/applications/unfurls/links", Some(seen.clone())).await;
    assert_eq!((status, queued), (200, json!({"queued": 1})));
    assert_eq!(app.call_as(Some(&token), "POST", "/api/http/applications/unfurls/links", Some(seen)).await.0, 403);
    let (_, items) = app
        .call_as(
            Some(&token),
            "GET",
            &format!("/api/http/applications/unfurls/queue?batchSize=10&fromEtag={etag}"),
            None,
        )
        .await;
    assert_eq!(items[0]["target"], "https://tracker.example/ISSUE-2");

    let content = json!({"unfurls": [{"target": link, "unfurl": {"title": "Issue 1"}}]});
    assert_eq!(
        app.call_as(Some(&token), "POST", "/api/http/applications/unfurls/queue/content", Some(content)).await.0,
        200
    );
    let read = format!("/api/http/applications/unfurls/content?organization=acme&link={link}");
    let (status, shown) = app.call("GET", &read, None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown[0]["content"]["unfurl"]["title"], "Issue 1", "the host product reads posted content back");
    let auth = json!({"userId": "u1", "message": "log in", "url": "https://tracker.example/login"});
    let path = "/api/http/applications/unfurls/queue/request-external-auth";
    assert_eq!(app.call_as(Some(&token), "POST", path, Some(auth)).await.0, 200);
    let requests = "/api/http/applications/unfurls/external-auth-requests?organization=acme&userId=u1";
    assert_eq!(app.call("GET", requests, None).await.1[0]["request"]["message"], "log in");
    let path = "/api/http/applications/unfurls/queue/reset-external-auth-requests";
    assert_eq!(app.call_as(Some(&token), "POST", path, Some(json!({"userId": "u1"}))).await.0, 200);
    assert_eq!(app.call("GET", requests, None).await.1, json!([]));
    app.stop().await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    let app = spawn().await;
    app.create_org("acme").await;
    // A port with nothing listening yet: every attempt is refused until the receiver starts.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let url = format!("http://{addr}/hook");
    let created = app.create_app(json!({"name": "durable", "organization": "acme", "endpointUri": url})).await;
    let app_id = created["id"].as_str().unwrap().to_owned();
    issue_webhook(&app, &app_id, json!({})).await;
    app.publish("acme", issue_created()).await;
    let failed = app.wait_deliveries(&app_id, |d| d.first().is_some_and(|d| d["attempts"].as_i64() >= Some(1))).await;
    assert_eq!(failed[0]["status"], "pending", "{failed:?}");
    let dir = app.stop_keeping_data().await;

    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    let router = axum::Router::new().fallback(move |body: String| {
        let sink = sink.clone();
        async move { sink.lock().unwrap().push(body) }
    });
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let app = spawn_in(dir, None).await;
    let deliveries = app.wait_deliveries(&app_id, |d| d.first().is_some_and(|d| d["status"] == "succeeded")).await;
    assert!(deliveries[0]["attempts"].as_i64().unwrap() >= 2);
    assert_eq!(received.lock().unwrap().len(), 1);
    let payload: Value = serde_json::from_str(&received.lock().unwrap()[0]).unwrap();
    assert_eq!(payload["payload"]["issue"]["id"], "ISS-1");
    app.stop().await;
}
