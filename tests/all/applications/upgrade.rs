//! Upgrading a database whose applications keep authorizations, the unfurl queue, unfurl
//! content and external-auth requests (before migration 20261210000000), and UI extensions,
//! the disabled-for-everybody flags, unfurl domains and patterns, required rights and ssh keys
//! (before 20261213000000) in their settings JSON carries all of it into the tables of their
//! own, on SQLite and PostgreSQL, and the settings left in the JSON still load.

use serde_json::{Value, json};
use sqlx::any::AnyPoolOptions;

use super::{App, spawn_in, spawn_on};
use crate::support::{PostgresDatabase, fresh_postgres};

/// The tables the migrations create, dependents first.
const TABLES: [&str; 10] = [
    "application_authorized_rights",
    "application_auth_contexts",
    "application_unfurl_queue",
    "application_unfurl_content",
    "application_auth_requests",
    "application_ui_extensions",
    "application_ui_disabled",
    "application_unfurl_targets",
    "application_required_rights",
    "application_ssh_keys",
];

async fn settings_json_moves_into_tables(postgres: Option<PostgresDatabase>) {
    let app = spawn_on(postgres).await;
    app.create_org("acme").await;
    let created = app.create_app(json!({"name": "old", "organization": "acme"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (dir, postgres) = app.stop_keeping_databases().await;

    // Put the database back as it was before the migration, with the data in the JSON.
    let url = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("weft.db").display()),
    };
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    for table in TABLES {
        sqlx::query(&format!("DROP TABLE {table}")).execute(&pool).await.unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version IN (20261210000000, 20261213000000)")
        .execute(&pool)
        .await
        .unwrap();
    let settings: String =
        sqlx::query_scalar("SELECT settings FROM applications WHERE id = $1").bind(&id).fetch_one(&pool).await.unwrap();
    let mut settings: Value = serde_json::from_str(&settings).unwrap();
    settings["authorizations"] =
        json!({"global": {"Unfurls.Provide": "GRANTED", "Issue.View": "PENDING"}, "project:KEY": {}});
    settings["unfurlQueue"] = json!([
        {"etag": 1, "target": "https://tracker.example/1", "createdAt": 1_700_000_000_000_i64},
        {"etag": 2, "target": "https://tracker.example/2", "createdAt": 1_700_000_000_001_i64},
    ]);
    settings["unfurlContent"] = json!([{"target": "https://tracker.example/1", "unfurl": {"title": "One"}}]);
    settings["externalAuthRequests"] = json!([{"userId": "u1", "message": "log in"}, {"message": "anyone"}]);
    settings["unfurlDomains"] = json!([
        {"value": "tracker.example", "authorized": true},
        {"value": "other.example", "authorized": false},
        {"value": "tracker.example", "authorized": true},
    ]);
    settings["unfurlPatterns"] = json!([
        {"value": "https://issues.example/ISS-", "authorized": false},
        {"value": "https://issues.example/PRJ-", "authorized": true},
    ]);
    settings["uiExtensions"] = json!({"project:KEY": [{"className": "IssueMenu"}], "global": []});
    settings["uiDisabledForEverybody"] = json!({"global": true, "project:KEY": false});
    settings["requiredRights"] = json!(["Issue.View", "Chat.Send"]);
    settings["sshKeys"] = json!([
        {"fingerprint": "SHA256:one", "comment": "laptop", "publicKey": "ssh-ed25519 AAAA1"},
        {"fingerprint": "SHA256:two", "comment": null, "publicKey": "ssh-ed25519 AAAA2"},
    ]);
    settings["hasSigningKey"] = Value::Null;
    settings["description"] = json!("from before");
    sqlx::query("UPDATE applications SET settings = $2 WHERE id = $1")
        .bind(&id)
        .bind(settings.to_string())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let app: App = spawn_in(dir, postgres).await;
    let base = format!("/api/http/applications/{id}");
    let (_, rights) = app.call("GET", &format!("{base}/authorizations/authorized-rights"), None).await;
    assert_eq!(
        rights,
        json!([{"rightCode": "Issue.View", "status": "PENDING"}, {"rightCode": "Unfurls.Provide", "status": "GRANTED"}])
    );
    let (_, contexts) = app.call("GET", &format!("{base}/authorizations/authorized-contexts"), None).await;
    assert_eq!(contexts, json!([{"contextIdentifier": "global"}, {"contextIdentifier": "project:KEY"}]));

    // The grant was carried over: the application may read its queue, which kept its etags.
    let token = app.app_token(&created).await;
    let queue = "/api/http/applications/unfurls/queue?batchSize=10";
    let (status, items) = app.call_as(Some(&token), "GET", queue, None).await;
    assert_eq!(status, 200, "{items}");
    assert_eq!(
        items,
        json!([
            {"etag": 1, "target": "https://tracker.example/1", "createdAt": 1_700_000_000_000_i64},
            {"etag": 2, "target": "https://tracker.example/2", "createdAt": 1_700_000_000_001_i64},
        ])
    );
    let seen = json!({"organization": "acme", "links": ["https://tracker.example/3"]});
    assert_eq!(app.call("POST", "/api/http/applications/unfurls/links", Some(seen)).await.0, 200);
    let (_, items) = app.call_as(Some(&token), "GET", &format!("{queue}&fromEtag=2"), None).await;
    assert_eq!(items[0]["etag"], 3, "new links continue after the carried ones: {items}");

    let read = "/api/http/applications/unfurls/content?organization=acme&link=https://tracker.example/1";
    let (_, content) = app.call("GET", read, None).await;
    assert_eq!(
        content,
        json!([{"applicationId": id, "content": {"target": "https://tracker.example/1", "unfurl": {"title": "One"}}}])
    );
    let asked = "/api/http/applications/unfurls/external-auth-requests?organization=acme";
    assert_eq!(app.call("GET", asked, None).await.1.as_array().map(Vec::len), Some(2));
    let (_, of_u1) = app.call("GET", &format!("{asked}&userId=u1"), None).await;
    assert_eq!(of_u1, json!([{"applicationId": id, "request": {"userId": "u1", "message": "log in"}}]));

    // The lists, in their order, each entry once, authorizations and flags kept.
    let (_, domains) = app.call("GET", &format!("{base}/unfurl-domains"), None).await;
    assert_eq!(
        domains,
        json!([{"value": "tracker.example", "authorized": true}, {"value": "other.example", "authorized": false}])
    );
    let (_, patterns) = app.call("GET", &format!("{base}/unfurl-patterns"), None).await;
    assert_eq!(
        patterns,
        json!([
            {"value": "https://issues.example/ISS-", "authorized": false},
            {"value": "https://issues.example/PRJ-", "authorized": true},
        ])
    );
    let (_, ui) = app.call("GET", &format!("{base}/ui-extensions"), None).await;
    assert_eq!(
        ui,
        json!([
            {"contextIdentifier": "global", "extensions": [], "enabledForEverybody": false, "enabledForMe": null},
            {"contextIdentifier": "project:KEY", "extensions": [{"className": "IssueMenu"}],
             "enabledForEverybody": true, "enabledForMe": null},
        ])
    );
    let (_, required) = app.call("GET", &format!("{base}/authorizations/required-rights"), None).await;
    assert_eq!(required, json!(["Issue.View", "Chat.Send"]));
    let (_, keys) = app.call("GET", &format!("{base}/ssh-keys"), None).await;
    assert_eq!(
        keys,
        json!([
            {"fingerprint": "SHA256:one", "comment": "laptop", "publicKey": "ssh-ed25519 AAAA1"},
            {"fingerprint": "SHA256:two", "comment": null, "publicKey": "ssh-ed25519 AAAA2"},
        ])
    );
    // A pattern authorized before the upgrade queues links by itself.
    let seen =
        json!({"organization": "acme", "links": ["https://issues.example/PRJ-1", "https://issues.example/ISS-1"]});
    let (_, queued) = app.call("POST", "/api/http/applications/unfurls/links", Some(seen)).await;
    assert_eq!(queued, json!({"queued": 1}), "only the link the pattern prefixes");

    // What stays in the JSON loads as typed settings, nulls as they were; the lists are gone.
    let (status, shown) = app.call("GET", &base, None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!((shown["description"].clone(), shown["hasSigningKey"].clone()), (json!("from before"), Value::Null));
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let settings: String =
        sqlx::query_scalar("SELECT settings FROM applications WHERE id = $1").bind(&id).fetch_one(&pool).await.unwrap();
    pool.close().await;
    let settings: Value = serde_json::from_str(&settings).unwrap();
    for moved in
        ["uiExtensions", "uiDisabledForEverybody", "unfurlDomains", "unfurlPatterns", "requiredRights", "sshKeys"]
    {
        assert!(settings.get(moved).is_none(), "{moved} left the settings JSON: {settings}");
    }
    app.stop().await;
}

#[tokio::test]
async fn settings_json_moves_into_tables_on_sqlite() {
    settings_json_moves_into_tables(None).await;
}

#[tokio::test]
async fn settings_json_moves_into_tables_on_postgres() {
    settings_json_moves_into_tables(Some(fresh_postgres().await)).await;
}
