//! Configuring, filtering and uninstalling installations, and installation tokens.

use serde_json::json;
use weft::store::{Store, TokenKind};

use crate::api_support::{
    changed_setup, echo_wasm, echoed_invocation, error_message, publish_wasm_with, user_token, wait_for_event,
};
use crate::support::{fixture, spawn_app};

#[tokio::test]
async fn a_configuration_is_checked_against_the_schema_and_a_valid_one_runs_setup() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let schema = json!({"account": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 2},
            "port": {"type": "integer", "minimum": 1, "maximum": 10},
            "mode": {"type": "string", "enum": ["fast", "slow"]}
        }
    }});
    publish_wasm_with(&app, "echo", "acme", &echo_wasm(), json!({"configurations": schema})).await;
    let id = app.install("echo", "acme").await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/integrations/echo/installations/{id}");

    let bad = [
        (json!({"configuration": {}}), "configuration.name is required"),
        (json!({"configuration": {"name": "x"}}), "configuration.name must be at least 2 characters"),
        (json!({"configuration": {"name": "ok", "port": 11}}), "configuration.port must be at most 10"),
        (json!({"configuration": {"name": "ok", "port": "1"}}), "configuration.port must be of type integer"),
        (json!({"configuration": {"name": "ok", "mode": "medium"}}), "configuration.mode must be one of"),
        (json!({"configuration": "text"}), "configuration must be an object"),
        (json!({"externalIds": ["1", "2", "3", "4", "5", "6"]}), "externalIds must hold at most 5"),
        (json!({"externalIds": [""]}), "externalIds"),
        (json!({"space_selection": "some"}), "unknown variant `some`"),
        (json!({"status": "paused"}), "unknown field `status`"),
    ];
    for (body, message) in bad {
        let (status, answer) = app.call("PATCH", &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(error_message(&answer).contains(message), "{body}: {answer}");
    }
    let (_, unchanged) = app.call("GET", &path, None).await;
    assert_eq!(unchanged["configuration"], json!({}));

    let configuration = json!({"name": "acme", "port": 3, "mode": "fast"});
    let (status, updated) = app
        .call("PATCH", &path, Some(json!({"configuration": configuration, "externalIds": ["ext-1", "ext_2"]})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((&updated["configuration"], updated["status"].as_str()), (&configuration, Some("active")));
    assert_eq!(updated["externalIds"], json!(["ext-1", "ext_2"]));
    let invocation = changed_setup(&app, "echo", 2).await;
    assert_eq!(invocation["event"]["previous"], json!({"status": "active", "configuration": {}}));
    assert_eq!(invocation["environment"]["installation"]["configuration"], configuration);

    // externalId filters the list; `_` and `%` are matched literally.
    for (external_id, count) in [("ext-1", 1), ("ext_2", 1), ("ext%", 0), ("ext_1", 0), ("nope", 0)] {
        let (status, list) =
            app.call("GET", &format!("/v1/integrations/echo/installations?externalId={external_id}"), None).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["count"].as_i64(), Some(count), "{external_id}: {list}");
    }
    let (status, _) = app.call("PATCH", "/v1/integrations/echo/installations/inst_nope", Some(json!({}))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_setup_that_fails_without_refusing_keeps_the_configuration_and_is_retried_through_the_queue() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    publish_wasm_with(&app, "trap", "acme", &fixture("trap"), json!({})).await;
    let body = json!({"organization": "acme", "configuration": {"a": 1}});
    let (status, installation) = app.call("POST", "/v1/integrations/trap/installations", Some(body)).await;
    assert_eq!(status, 201, "{installation}");
    assert_eq!(installation["configuration"], json!({"a": 1}));
    let path = format!("/v1/integrations/trap/installations/{}", installation["id"].as_str().unwrap());
    let (status, updated) = app.call("PATCH", &path, Some(json!({"configuration": {"a": 2}}))).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["configuration"], json!({"a": 2}));

    // Two runs during the calls, then at least one queued retry of each.
    let events = app.wait_for_matching_events("trap", 4, |e| e["type"] == "installation_setup").await;
    assert!(events.iter().all(|e| e["event"]["status"] == "failed"), "{events:?}");
}

#[tokio::test]
async fn installation_tokens_are_minted_only_by_the_integration_and_reach_only_their_installation() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    let published = publish_wasm_with(&app, "echo", "acme", &echo_wasm(), json!({"visibility": "unlisted"})).await;
    let integration_token = published["token"].as_str().unwrap().to_owned();
    let first = app.install("echo", "acme").await["id"].as_str().unwrap().to_owned();
    let second = app.install("echo", "other").await["id"].as_str().unwrap().to_owned();
    let tokens = format!("/v1/integrations/echo/installations/{first}/tokens");

    let admin = user_token(&app, "ada", "acme", "admin").await;
    for token in [Some(crate::support::ADMIN), Some(admin.as_str())] {
        let (status, body) = app.call_as(token, "POST", &tokens, None).await;
        assert_eq!(status, 403, "{body}");
        assert!(error_message(&body).contains("integration token"));
    }
    let (status, _) = app.call_as(None, "POST", &tokens, None).await;
    assert_eq!(status, 401);
    let (status, _) =
        app.call_as(Some(&integration_token), "POST", "/v1/integrations/echo/installations/inst_x/tokens", None).await;
    assert_eq!(status, 404);

    let (status, minted) = app.call_as(Some(&integration_token), "POST", &tokens, None).await;
    assert_eq!(status, 200, "{minted}");
    assert!(minted["expiresAt"].as_str().is_some());
    let token = minted["token"].as_str().unwrap();

    let (status, own) =
        app.call_as(Some(token), "GET", &format!("/v1/integrations/echo/installations/{first}"), None).await;
    assert_eq!((status, own["id"].as_str()), (200, Some(first.as_str())));
    let (status, _) =
        app.call_as(Some(token), "GET", &format!("/v1/integrations/echo/installations/{second}"), None).await;
    assert_eq!(status, 403);
    let (status, list) = app.call_as(Some(token), "GET", "/v1/integrations/echo/installations", None).await;
    assert_eq!((status, list["count"].as_i64()), (200, Some(1)), "{list}");
    let (status, _) = app
        .call_as(Some(token), "PATCH", &format!("/v1/integrations/echo/installations/{second}"), Some(json!({})))
        .await;
    assert_eq!(status, 403);
    let (status, _) =
        app.call_as(Some(token), "POST", &format!("/v1/integrations/echo/installations/{first}/tokens"), None).await;
    assert_eq!(status, 403, "an installation token cannot mint more");

    // An expired token is refused.
    let store = Store::connect(&app.database_url).await.unwrap();
    store.put_token(&weft::auth::hash_token("expired-token"), TokenKind::Installation, &first, Some(1)).await.unwrap();
    let (status, body) =
        app.call_as(Some("expired-token"), "GET", &format!("/v1/integrations/echo/installations/{first}"), None).await;
    assert_eq!((status, error_message(&body)), (401, "invalid or expired token"));
}

#[tokio::test]
async fn uninstalling_runs_installation_deleted_and_forgets_the_installation() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    publish_wasm_with(&app, "echo", "acme", &echo_wasm(), json!({})).await;
    let id = app.install("echo", "acme").await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/integrations/echo/installations/{id}");
    let member = user_token(&app, "mia", "acme", "member").await;

    let (status, _) = app.call_as(None, "DELETE", &path, None).await;
    assert_eq!(status, 401);
    let (status, _) = app.call_as(Some(&member), "DELETE", &path, None).await;
    assert_eq!(status, 403);
    let (status, body) = app.call("DELETE", &path, None).await;
    assert_eq!(status, 204, "{body}");
    let event = wait_for_event(&app, "echo", "installation_deleted").await;
    assert_eq!(echoed_invocation(&event)["environment"]["installation"]["id"], id.as_str());
    let (status, _) = app.call("GET", &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("DELETE", &path, None).await;
    assert_eq!(status, 404);
}
