//! Every delivery setting has its effect on what the receiver gets: the signature settings
//! choose the headers (checked with the JWKS, by hand and with PyPI `standardwebhooks`),
//! `payloadFields` and `payloadTemplate` shape the body, subscription `filters` choose the
//! events.

use serde_json::{Value, json};

use super::clients::run_python_async;
use super::receiver::{
    Hit, public_key_signature_verifies, receiver, tls_receiver, verify_space_signature, verify_standard_webhooks,
};
use super::{App, issue_created, issue_webhook, spawn};

/// The headers of a hit as a JSON object, for the Python clients.
fn headers_json(hit: &Hit) -> Value {
    hit.headers.iter().map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap()))).collect()
}

/// The webhook's signing key and its Standard Webhooks secret.
async fn webhook_keys(app: &App, app_id: &str, webhook_id: &str) -> (String, String) {
    let path = format!("/api/http/applications/{app_id}/webhooks/{webhook_id}/signing-key");
    let (status, key) = app.call("GET", &path, None).await;
    assert_eq!(status, 200, "{key}");
    (key["signingKey"].as_str().unwrap().to_owned(), key["standardWebhooksSecret"].as_str().unwrap().to_owned())
}

/// Creates an application of `acme` with `settings`, subscribed to Issue.Created at `url`.
async fn subscribed_app(app: &App, name: &str, url: &str, settings: Value) -> (String, String, String) {
    let mut body = json!({"name": name, "organization": "acme", "endpointUri": url});
    for (key, value) in settings.as_object().unwrap() {
        body[key] = value.clone();
    }
    let created = app.create_app(body).await;
    let app_id = created["id"].as_str().unwrap().to_owned();
    let webhook_id = issue_webhook(app, &app_id, json!({})).await;
    (app_id, webhook_id, created["clientId"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn signature_settings_choose_the_headers_each_delivery_carries() {
    let app = spawn().await;
    app.create_org("acme").await;
    let hook = receiver(&[]).await;
    let cases = [
        ("defaults", json!({})),
        ("no-public-key", json!({"hasPublicKeySignature": false})),
        ("no-signing-key", json!({"hasSigningKey": false})),
        ("none", json!({"appLevelAuth": "NONE"})),
        ("token-only", json!({"appLevelAuth": "VERIFICATION_TOKEN"})),
    ];
    let mut apps = Vec::new();
    for (name, settings) in &cases {
        apps.push(subscribed_app(&app, name, &hook.url, settings.clone()).await);
    }
    assert_eq!(app.publish("acme", issue_created()).await, cases.len());
    let hits = hook.wait_for(cases.len()).await;
    let (_, jwks) = app.call("GET", &format!("/api/http/applications/{}/public-keys", apps[0].0), None).await;
    let (_, token_only) = app.call("GET", &format!("/api/http/applications/{}", apps[4].0), None).await;
    let hit_of = |app_id: &str| -> Hit {
        let client_id = &apps.iter().find(|(id, _, _)| id == app_id).unwrap().2;
        let hit = hits.iter().find(|hit| hit.json()["clientId"] == client_id.as_str());
        hit.unwrap_or_else(|| panic!("no delivery for {app_id}")).clone()
    };

    // Defaults: every scheme, each verifiable, Standard Webhooks by the real library.
    let defaults = hit_of(&apps[0].0);
    let (key, secret) = webhook_keys(&app, &apps[0].0, &apps[0].1).await;
    verify_space_signature(&defaults, &key);
    verify_standard_webhooks(&defaults, &key);
    assert!(public_key_signature_verifies(&defaults, &jwks));
    let mut tampered = defaults.clone();
    tampered.body = tampered.body.replace("Broken", "Fixed");
    let messages = json!([
        {"headers": headers_json(&defaults), "body": defaults.body},
        {"headers": headers_json(&tampered), "body": tampered.body},
    ]);
    let verdicts =
        run_python_async("verify_webhooks.py", vec![], json!({"secret": secret, "messages": messages})).await;
    assert_eq!(verdicts[0], true, "standardwebhooks accepts the delivery: {verdicts}");
    assert_ne!(verdicts[1], true, "standardwebhooks refuses a tampered body");

    let no_public_key = hit_of(&apps[1].0);
    assert!(no_public_key.headers.get("x-space-public-key-signature").is_none());
    verify_space_signature(&no_public_key, &webhook_keys(&app, &apps[1].0, &apps[1].1).await.0);

    let no_signing_key = hit_of(&apps[2].0);
    for absent in ["x-space-signature", "webhook-signature", "webhook-id"] {
        assert!(no_signing_key.headers.get(absent).is_none(), "{absent} is sent without a signing key");
    }
    assert!(public_key_signature_verifies(&no_signing_key, &jwks));

    for hit in [hit_of(&apps[3].0), hit_of(&apps[4].0)] {
        for absent in ["x-space-timestamp", "x-space-signature", "x-space-public-key-signature", "webhook-signature"] {
            assert!(hit.headers.get(absent).is_none(), "{absent} is sent with appLevelAuth NONE/VERIFICATION_TOKEN");
        }
    }
    assert!(hit_of(&apps[3].0).json().get("verificationToken").is_none());
    let (_, verification) =
        app.call("GET", &format!("/api/http/applications/{}/verification-token", apps[4].0), None).await;
    assert_eq!(hit_of(&apps[4].0).json()["verificationToken"], verification);
    assert_eq!(
        (token_only["hasVerificationToken"].clone(), token_only["hasSigningKey"].clone()),
        (json!(true), json!(false))
    );
    app.stop().await;
}

#[tokio::test]
async fn payload_fields_trim_the_payload_and_templates_replace_the_body() {
    let app = spawn().await;
    app.create_org("acme").await;
    let trimmed = receiver(&[]).await;
    let templated = receiver(&[]).await;
    let text = receiver(&[]).await;
    let created = app.create_app(json!({"name": "shapes", "organization": "acme"})).await;
    let app_id = created["id"].as_str().unwrap();
    issue_webhook(&app, app_id, json!({"endpoint": {"url": trimmed.url}, "payloadFields": "issue.id, type"})).await;
    let template = r#"{"text": "{{issue.title}} ({{issue.id}}) \{{literal}}"}"#;
    let templated_id =
        issue_webhook(&app, app_id, json!({"endpoint": {"url": templated.url}, "payloadTemplate": template})).await;
    issue_webhook(&app, app_id, json!({"endpoint": {"url": text.url}, "payloadTemplate": "New: {{issue.title}}"}))
        .await;
    app.publish("acme", issue_created()).await;

    let payload = trimmed.wait_for(1).await[0].json();
    assert_eq!(payload["className"], "WebhookRequestPayload");
    assert_eq!(payload["payload"], json!({"issue": {"id": "ISS-1"}, "type": "Issue.Created"}));
    let hit = templated.wait_for(1).await.remove(0);
    assert_eq!(hit.body, r#"{"text": "Broken (ISS-1) {{literal}}"}"#);
    assert_eq!(hit.header("content-type"), "application/json");
    verify_space_signature(&hit, &webhook_keys(&app, app_id, &templated_id).await.0);
    let hit = text.wait_for(1).await.remove(0);
    assert_eq!((hit.body.as_str(), hit.header("content-type").as_str()), ("New: Broken", "text/plain; charset=utf-8"));

    let hooks = format!("/api/http/applications/{app_id}/webhooks");
    for (body, message) in [
        (json!({"name": "x", "payloadFields": "a..b"}), "payloadFields"),
        (json!({"name": "x", "payloadTemplate": "{{unclosed"}), "payloadTemplate"),
        (json!({"name": "x", "payloadFields": "a", "payloadTemplate": "b"}), "alternatives"),
    ] {
        let (status, error) = app.call("POST", &hooks, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert!(error["error_description"].as_str().unwrap().contains(message), "{body} → {error}");
    }
    app.stop().await;
}

#[tokio::test]
async fn subscription_filters_choose_the_events_a_webhook_receives() {
    let app = spawn().await;
    app.create_org("acme").await;
    let hook = receiver(&[]).await;
    let created = app.create_app(json!({"name": "filtered", "organization": "acme", "endpointUri": hook.url})).await;
    let app_id = created["id"].as_str().unwrap();
    let hooks = format!("/api/http/applications/{app_id}/webhooks");
    let filter = json!([{"field": "issue.status", "values": ["open", "reopened"]}]);
    let body =
        json!({"name": "open issues", "subscriptions": [{"eventTypeCodes": ["Issue.Updated"], "filters": filter}]});
    let (status, webhook) = app.call("POST", &hooks, Some(body)).await;
    assert_eq!(status, 200, "{webhook}");
    let event = |status: &str| json!({"type": "Issue.Updated", "issue": {"id": status, "status": status}});
    assert_eq!(app.publish("acme", event("closed")).await, 0, "the filter refuses a closed issue");
    assert_eq!(app.publish("acme", json!({"type": "Issue.Updated"})).await, 0, "a missing field matches nothing");
    assert_eq!(app.publish("acme", event("reopened")).await, 1);
    let hit = hook.wait_for(1).await.remove(0);
    assert_eq!(hit.json()["payload"]["issue"]["status"], "reopened");

    let bad =
        json!({"name": "x", "subscriptions": [{"eventTypeCodes": [], "filters": [{"className": "ChannelFilter"}]}]});
    let (status, error) = app.call("POST", &hooks, Some(bad)).await;
    assert_eq!(status, 400);
    assert!(error["error_description"].as_str().unwrap().contains("subscription.filters[0]"), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn settings_weft_cannot_honour_are_refused_naming_the_field() {
    let app = spawn().await;
    for (body, field) in [
        (json!({"name": "k", "sslKeystoreAuth": "corp"}), "sslKeystoreAuth"),
        (json!({"name": "k", "appLevelAuth": "KERBEROS"}), "appLevelAuth"),
    ] {
        let (status, error) = app.call("POST", "/api/http/applications", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert!(error["error_description"].as_str().unwrap().starts_with(field), "{body} → {error}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_connected_application_is_updated_only_by_itself() {
    let app = spawn().await;
    let hook = receiver(&[]).await;
    let created = app.create_app(json!({"name": "multi", "endpointUri": hook.url, "connectToSpace": true})).await;
    let path = format!("/api/http/applications/{}", created["id"].as_str().unwrap());
    let (status, error) = app.call("PATCH", &path, Some(json!({"name": "renamed"}))).await;
    assert_eq!((status, error["error"].clone()), (403, json!("permission-denied")), "{error}");
    let token = app.app_token(&created).await;
    let (status, updated) =
        app.call_as(Some(&token), "PATCH", "/api/http/applications/me", Some(json!({"name": "renamed"}))).await;
    assert_eq!((status, updated["name"].clone()), (200, json!("renamed")));
    app.stop().await;
}

/// Endpoint credentials and custom headers reach the endpoint: a webhook's own credentials and
/// headers; the application's credentials for a webhook that posts to the application's
/// endpoint without credentials of its own; never the application's credentials at a webhook's
/// own endpoint.
#[tokio::test]
async fn endpoint_credentials_and_custom_headers_are_sent_where_they_belong() {
    let app = spawn().await;
    app.create_org("acme").await;
    let hook = receiver(&[]).await;
    let own_endpoint = json!({"endpoint": {"url": hook.url}});
    // (name, application settings, webhook body, custom headers, the Authorization expected)
    let cases = [
        ("app-bearer", json!({"bearerAuthToken": "app-token"}), json!({}), None, Some("Bearer app-token".to_owned())),
        (
            "app-basic",
            json!({"basicAuthUsername": "ada", "basicAuthPassword": "pw"}),
            json!({}),
            None,
            Some(format!("Basic {}", base64_of("ada:pw"))),
        ),
        (
            "hook-own",
            json!({"bearerAuthToken": "app-token"}),
            json!({"endpointAuth": {"bearerAuthToken": "hook-token"}}),
            Some(json!({"X-Custom": "v1"})),
            Some("Bearer hook-token".to_owned()),
        ),
        ("hook-elsewhere", json!({"bearerAuthToken": "app-secret"}), own_endpoint.clone(), None, None),
    ];
    let mut client_ids = Vec::new();
    for (name, settings, webhook, headers, _) in &cases {
        let mut body = json!({"name": name, "organization": "acme", "endpointUri": hook.url});
        for (key, value) in settings.as_object().unwrap() {
            body[key] = value.clone();
        }
        let created = app.create_app(body).await;
        let app_id = created["id"].as_str().unwrap();
        let webhook_id = issue_webhook(&app, app_id, webhook.clone()).await;
        if let Some(headers) = headers {
            let path = format!("/api/http/applications/{app_id}/webhooks/{webhook_id}/custom-headers");
            let (status, answer) = app.call("POST", &path, Some(json!({"headers": headers}))).await;
            assert_eq!(status, 200, "{answer}");
        }
        client_ids.push(created["clientId"].as_str().unwrap().to_owned());
    }
    assert_eq!(app.publish("acme", issue_created()).await, cases.len());
    let hits = hook.wait_for(cases.len()).await;
    for ((name, _, _, headers, expected), client_id) in cases.iter().zip(&client_ids) {
        let hit = hits.iter().find(|hit| hit.json()["clientId"] == client_id.as_str()).expect(name);
        let sent = hit.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(&sent, expected, "{name}: Authorization");
        let custom = hit.headers.get("x-custom").map(|v| v.to_str().unwrap().to_owned());
        let expected_custom = headers.as_ref().map(|h| h["X-Custom"].as_str().unwrap().to_owned());
        assert_eq!(custom, expected_custom, "{name}: custom header");
    }
    app.stop().await;
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `endpointSslVerification` and a webhook's `endpoint.sslVerification` decide whether a
/// delivery checks the endpoint's certificate: a self-signed one is refused by default and
/// accepted where verification is off, at the application's endpoint or a webhook's own.
#[tokio::test]
async fn ssl_verification_settings_decide_whether_a_self_signed_endpoint_is_reached() {
    let app = spawn().await;
    app.create_org("acme").await;
    let hook = tls_receiver().await;
    let own_endpoint = json!({"doRetries": false, "endpoint": {"url": hook.url, "sslVerification": false}});
    // (name, application settings, webhook body, whether the receiver is reached)
    let cases = [
        ("verifying", json!({}), json!({"doRetries": false}), false),
        ("app-unverified", json!({"endpointSslVerification": false}), json!({"doRetries": false}), true),
        ("hook-unverified", json!({}), own_endpoint, true),
    ];
    let mut apps = Vec::new();
    for (name, settings, webhook, _) in &cases {
        let mut body = json!({"name": name, "organization": "acme", "endpointUri": hook.url});
        for (key, value) in settings.as_object().unwrap() {
            body[key] = value.clone();
        }
        let created = app.create_app(body).await;
        let app_id = created["id"].as_str().unwrap().to_owned();
        issue_webhook(&app, &app_id, webhook.clone()).await;
        apps.push((app_id, created["clientId"].as_str().unwrap().to_owned()));
    }
    assert_eq!(app.publish("acme", issue_created()).await, cases.len());
    let hits = hook.wait_for(2).await;
    for ((name, _, _, reached), (app_id, client_id)) in cases.iter().zip(&apps) {
        let log = app.wait_deliveries(app_id, |data| data.first().is_some_and(|d| d["status"] != "pending")).await;
        let received = hits.iter().any(|hit| hit.json()["clientId"] == client_id.as_str());
        assert_eq!(received, *reached, "{name}: reached the self-signed endpoint");
        let expected = if *reached { "succeeded" } else { "failed" };
        assert_eq!(log[0]["status"], expected, "{name}: {}", log[0]);
    }
    assert_eq!(hook.hits().len(), 2, "the verifying delivery never got past the handshake");
    app.stop().await;
}
