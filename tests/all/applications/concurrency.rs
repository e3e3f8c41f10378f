//! Concurrent updates, toggles and secret regenerations at one application lose nothing and
//! resurrect nothing, on SQLite and on PostgreSQL.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::{App, spawn, spawn_on};
use crate::support::fresh_postgres;

const WRITERS: usize = 16;

fn ssh_key(i: usize) -> String {
    let mut blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
    blob.extend((0..32).map(|b| (b as u8).wrapping_mul(7).wrapping_add(i as u8)));
    format!("ssh-ed25519 {}", BASE64.encode(blob))
}

async fn nothing_is_lost_or_resurrected(app: App) {
    let created = app.create_app(json!({"name": "busy"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let token = app.app_token(&created).await;
    let original_secret = app.client_secret(&id).await;
    let base = format!("/api/http/applications/{id}");
    let (keys_path, toggle_path, secret_path) = (
        format!("{base}/ssh-keys"),
        format!("{base}/ui-extensions/disable-for-everybody"),
        format!("{base}/client-secret/regenerate"),
    );

    let keys = (0..WRITERS).map(|i| app.call("POST", &keys_path, Some(json!({"publicKey": ssh_key(i)}))));
    let extensions = (0..WRITERS).map(|i| {
        let body = json!({"contextIdentifier": format!("ctx-{i}"), "extensions": [{"n": i}]});
        app.call_as(Some(&token), "PATCH", "/api/http/applications/ui-extensions", Some(body))
    });
    let toggles = (0..WRITERS).map(|i| {
        let body = json!({"contextIdentifier": format!("ctx-{i}")});
        app.call("PATCH", &toggle_path, Some(body))
    });
    let renames = (0..WRITERS).map(|i| app.call("PATCH", &base, Some(json!({"description": format!("d-{i}")}))));
    let secrets = (0..WRITERS).map(|_| app.call("POST", &secret_path, None));
    let (keys, extensions, toggles, renames, secrets) =
        tokio::join!(join_all(keys), join_all(extensions), join_all(toggles), join_all(renames), join_all(secrets));
    for (status, body) in keys.iter().chain(&extensions).chain(&toggles).chain(&renames).chain(&secrets) {
        assert_eq!(*status, 200, "{body}");
    }

    let (_, listed) = app.call("GET", &format!("{base}/ssh-keys"), None).await;
    assert_eq!(listed.as_array().unwrap().len(), WRITERS, "every concurrently added ssh key is kept");
    let (_, all) = app.call("GET", &format!("{base}/ui-extensions"), None).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), WRITERS, "every context's extensions are kept");
    assert!(all.iter().all(|c| c["enabledForEverybody"] == false), "every toggle is kept: {all:?}");
    let (_, shown) = app.call("GET", &base, None).await;
    let descriptions: Vec<Value> = (0..WRITERS).map(|i| json!(format!("d-{i}"))).collect();
    assert!(descriptions.contains(&shown["description"]), "{shown}");

    let current = app.client_secret(&id).await;
    let issued: Vec<&str> = secrets.iter().map(|(_, s)| s.as_str().unwrap()).collect();
    assert!(issued.contains(&current.as_str()), "the secret is one that a regeneration returned");
    assert_ne!(current, original_secret, "no update brought the original secret back");
    let client_id = created["clientId"].as_str().unwrap();
    let exchange = |secret: String| {
        app.client
            .post(format!("{}/oauth/token", app.url))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(exchange(original_secret).await.unwrap().status(), 401);
    assert_eq!(exchange(current).await.unwrap().status(), 200);

    // An update racing an uninstall does not set the status back.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let connected = app.create_app(json!({"name": "leaving", "endpointUri": dead, "connectToSpace": true})).await;
    let connected_id = connected["id"].as_str().unwrap();
    let its_token = app.app_token(&connected).await;
    let path = format!("/api/http/applications/{connected_id}");
    let (deleted, updated) = tokio::join!(
        app.call("DELETE", &path, None),
        app.call_as(Some(&its_token), "PATCH", "/api/http/applications/me", Some(json!({"description": "still here"})))
    );
    assert_eq!(deleted.0, 200);
    assert!(matches!(updated.0, 200 | 401), "{updated:?}");
    let (_, shown) = app.call("GET", &path, None).await;
    assert_ne!(shown["status"], "active", "the update did not undo the uninstall: {shown}");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_writes_lose_nothing_on_sqlite() {
    nothing_is_lost_or_resurrected(spawn().await).await;
}

#[tokio::test]
async fn concurrent_writes_lose_nothing_on_postgres() {
    nothing_is_lost_or_resurrected(spawn_on(Some(fresh_postgres().await)).await).await;
}
