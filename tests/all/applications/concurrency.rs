//! Concurrent updates, toggles, secret regenerations, unfurl posts and authorizations, UI
//! extension registrations, unfurl domain and pattern declarations and required-rights
//! changes at one application lose nothing and resurrect nothing, on SQLite and on PostgreSQL.

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

    unfurls_and_authorizations_lose_nothing(&app).await;
    lists_lose_nothing(&app).await;
    webhook_writes_lose_nothing(&app).await;
    app.stop().await;
}

/// Links the host product reports, unfurl content and external-auth requests the application
/// posts, rights granted, requested and withdrawn, and settings updates, all at once at one
/// application: every write is kept, nothing deleted comes back.
async fn unfurls_and_authorizations_lose_nothing(app: &App) {
    app.create_org("acme").await;
    let created = app.create_app(json!({"name": "unfurler", "organization": "acme"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let token = app.app_token(&created).await;
    let base = format!("/api/http/applications/{id}");
    let rights = format!("{base}/authorizations/authorized-rights");
    let domains = json!({"domains": ["tracker.example"]});
    assert_eq!(
        app.call_as(Some(&token), "PATCH", "/api/http/applications/unfurls/domains", Some(domains)).await.0,
        200
    );
    let approve = json!({"domains": ["tracker.example"], "approve": true});
    assert_eq!(app.call("POST", &format!("{base}/unfurl-domains/authorize"), Some(approve)).await.0, 200);
    let provide = json!({"updates": [{"rightCode": "Unfurls.Provide", "status": "GRANTED"}]});
    assert_eq!(app.call("PATCH", &rights, Some(provide)).await.0, 200);
    for i in 0..WRITERS {
        let doomed = json!({"contextIdentifier": format!("doomed-{i}"), "rightCodes": ["Doomed.Right"]});
        assert_eq!(app.call("PATCH", &format!("{rights}/request-rights"), Some(doomed)).await.0, 200);
    }

    let link = |i: usize| format!("https://tracker.example/ISSUE-{i}");
    let seen = (0..WRITERS).map(|i| {
        let body = json!({"organization": "acme", "links": [link(i)]});
        app.call("POST", "/api/http/applications/unfurls/links", Some(body))
    });
    let content = (0..WRITERS).map(|i| {
        let body = json!({"unfurls": [{"target": link(i), "unfurl": {"n": i}}]});
        app.call_as(Some(&token), "POST", "/api/http/applications/unfurls/queue/content", Some(body))
    });
    let auth_requests = (0..WRITERS).map(|i| {
        let body = json!({"userId": format!("u{i}"), "message": "log in"});
        app.call_as(Some(&token), "POST", "/api/http/applications/unfurls/queue/request-external-auth", Some(body))
    });
    let grants = (0..WRITERS).map(|i| {
        let body = json!({"updates": [{"rightCode": format!("Granted.R{i}"), "status": "GRANTED"}]});
        app.call("PATCH", &rights, Some(body))
    });
    let requests = (0..WRITERS).map(|i| {
        let body = json!({"contextIdentifier": format!("ctx-{i}"), "rightCodes": [format!("Asked.R{i}")]});
        app.call_as(
            Some(&token),
            "PATCH",
            "/api/http/applications/me/authorizations/authorized-rights/request-rights",
            Some(body),
        )
    });
    let doomed: Vec<String> = (0..WRITERS).map(|i| format!("{rights}?contextIdentifier=doomed-{i}")).collect();
    let withdrawals = doomed.iter().map(|path| app.call("DELETE", path, None));
    let renames = (0..WRITERS).map(|i| app.call("PATCH", &base, Some(json!({"description": format!("u-{i}")}))));
    let (seen, content, auth_requests, grants, requests, withdrawals, renames) = tokio::join!(
        join_all(seen),
        join_all(content),
        join_all(auth_requests),
        join_all(grants),
        join_all(requests),
        join_all(withdrawals),
        join_all(renames)
    );
    for (status, body) in
        content.iter().chain(&auth_requests).chain(&grants).chain(&requests).chain(&withdrawals).chain(&renames)
    {
        assert_eq!(*status, 200, "{body}");
    }
    for (status, body) in &seen {
        assert_eq!((*status, body), (200, &json!({"queued": 1})));
    }

    let (_, queue) = app.call_as(Some(&token), "GET", "/api/http/applications/unfurls/queue?batchSize=100", None).await;
    let queue = queue.as_array().unwrap();
    let mut targets: Vec<&str> = queue.iter().map(|item| item["target"].as_str().unwrap()).collect();
    targets.sort_unstable();
    let mut expected: Vec<String> = (0..WRITERS).map(link).collect();
    expected.sort_unstable();
    assert_eq!(targets, expected, "every reported link is queued once");
    let etags: Vec<i64> = queue.iter().map(|item| item["etag"].as_i64().unwrap()).collect();
    assert!(etags.windows(2).all(|pair| pair[0] < pair[1]), "etags grow: {etags:?}");
    for i in 0..WRITERS {
        let read = format!("/api/http/applications/unfurls/content?organization=acme&link={}", link(i));
        let (_, shown) = app.call("GET", &read, None).await;
        assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
        assert_eq!(shown[0]["content"]["unfurl"]["n"], i);
        let asked = format!("/api/http/applications/unfurls/external-auth-requests?organization=acme&userId=u{i}");
        assert_eq!(app.call("GET", &asked, None).await.1.as_array().map(Vec::len), Some(1));
    }

    let (_, global) = app.call("GET", &format!("{rights}?contextIdentifier=global"), None).await;
    let granted = global.as_array().unwrap().iter().filter(|r| r["status"] == "GRANTED").count();
    assert_eq!(granted, WRITERS + 1, "every grant is kept: {global}");
    let (_, listed) = app.call("GET", &format!("{base}/authorizations/authorized-contexts"), None).await;
    let mut contexts: Vec<&str> =
        listed.as_array().unwrap().iter().map(|c| c["contextIdentifier"].as_str().unwrap()).collect();
    contexts.sort_unstable();
    let mut expected: Vec<String> = (0..WRITERS).map(|i| format!("ctx-{i}")).chain(["global".to_owned()]).collect();
    expected.sort_unstable();
    assert_eq!(contexts, expected, "every requested context is kept and no withdrawn one came back");
    for i in 0..WRITERS {
        let (_, asked) = app.call("GET", &format!("{rights}?contextIdentifier=ctx-{i}"), None).await;
        assert_eq!(asked, json!([{"rightCode": format!("Asked.R{i}"), "status": "PENDING"}]));
    }
    let (_, shown) = app.call("GET", &base, None).await;
    let descriptions: Vec<Value> = (0..WRITERS).map(|i| json!(format!("u-{i}"))).collect();
    assert!(descriptions.contains(&shown["description"]), "{shown}");
}

/// UI extensions registered and toggled, unfurl domains and patterns declared and authorized,
/// required rights added and removed, all at once with settings updates and secret
/// regenerations at one application: each list ends as its writes say, nothing removed comes
/// back, and no update or regeneration undoes a list write (or the other way round).
async fn lists_lose_nothing(app: &App) {
    let created = app.create_app(json!({"name": "lists"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let token = app.app_token(&created).await;
    let base = format!("/api/http/applications/{id}");
    let as_app =
        |method: &'static str, path: &'static str, body: Value| app.call_as(Some(&token), method, path, Some(body));
    let (domains_path, patterns_path, extensions_path) = (
        "/api/http/applications/unfurls/domains",
        "/api/http/applications/unfurls/patterns",
        "/api/http/applications/ui-extensions",
    );
    let required = format!("{base}/authorizations/required-rights");

    // Before: declared and authorized targets, contexts disabled for everybody that get
    // enabled during the race, required rights that get removed during it.
    let declared = json!({"domains": ["keep.example", "drop.example"]});
    assert_eq!(as_app("PATCH", domains_path, declared).await.0, 200);
    let patterns = json!({"patterns": ["https://keep.example/", "https://drop.example/"]});
    assert_eq!(as_app("PATCH", patterns_path, patterns).await.0, 200);
    for (path, body) in [
        ("unfurl-domains", json!({"domains": ["keep.example", "drop.example"], "approve": true})),
        ("unfurl-patterns", json!({"patterns": ["https://keep.example/", "https://drop.example/"], "approve": true})),
    ] {
        assert_eq!(app.call("POST", &format!("{base}/{path}/authorize"), Some(body)).await.0, 200);
    }
    for i in 0..WRITERS {
        let body = json!({"contextIdentifier": format!("was-off-{i}")});
        assert_eq!(app.call("PATCH", &format!("{base}/ui-extensions/disable-for-everybody"), Some(body)).await.0, 200);
    }
    let old: Vec<String> = (0..WRITERS).map(|i| format!("Old.R{i}")).collect();
    let body = json!({"rightCodesToAdd": old.iter().chain(["Kept.Right".to_owned()].iter()).collect::<Vec<_>>()});
    assert_eq!(app.call("PATCH", &required, Some(body)).await.0, 200);

    let (disable, enable) =
        (format!("{base}/ui-extensions/disable-for-everybody"), format!("{base}/ui-extensions/enable-for-everybody"));
    let registrations = (0..WRITERS).map(|i| {
        let body = json!({"contextIdentifier": format!("ctx-{i}"), "extensions": [{"n": i}]});
        app.call_as(Some(&token), "PATCH", extensions_path, Some(body))
    });
    let toggles = (0..WRITERS).map(|i| {
        let (path, context) =
            if i % 2 == 0 { (&disable, format!("ctx-{i}")) } else { (&enable, format!("was-off-{i}")) };
        app.call("PATCH", path, Some(json!({"contextIdentifier": context})))
    });
    let domain_lists: Vec<Value> =
        (0..WRITERS).map(|i| json!(["keep.example".to_owned(), format!("d{i}.example")])).collect();
    let declarations = (0..WRITERS).map(|i| {
        let (path, body) = if i % 2 == 0 {
            (domains_path, json!({"domains": domain_lists[i]}))
        } else {
            (patterns_path, json!({"patterns": ["https://keep.example/", format!("https://p{i}.example/")]}))
        };
        app.call_as(Some(&token), "PATCH", path, Some(body))
    });
    let rights_changes = (0..WRITERS).map(|i| {
        let body = json!({"rightCodesToAdd": [format!("New.R{i}")], "rightCodesToRemove": [format!("Old.R{i}")]});
        app.call("PATCH", &required, Some(body))
    });
    let updates = (0..WRITERS).map(|i| app.call("PATCH", &base, Some(json!({"description": format!("l-{i}")}))));
    let regenerate: Vec<String> = (0..WRITERS)
        .map(|i| format!("{base}/{}/regenerate", if i % 2 == 0 { "client-secret" } else { "signing-key" }))
        .collect();
    let secrets = regenerate.iter().map(|path| app.call("POST", path, None));
    let (registrations, toggles, declarations, rights_changes, updates, secrets) = tokio::join!(
        join_all(registrations),
        join_all(toggles),
        join_all(declarations),
        join_all(rights_changes),
        join_all(updates),
        join_all(secrets)
    );
    for (status, body) in
        registrations.iter().chain(&toggles).chain(&declarations).chain(&rights_changes).chain(&updates).chain(&secrets)
    {
        assert_eq!(*status, 200, "{body}");
    }

    let (_, ui) = app.call("GET", &format!("{base}/ui-extensions"), None).await;
    let ui = ui.as_array().unwrap();
    assert_eq!(ui.len(), WRITERS, "every context's registration is kept: {ui:?}");
    for (i, context) in (0..WRITERS).map(|i| (i, format!("ctx-{i}"))) {
        let shown = ui.iter().find(|c| c["contextIdentifier"] == context.as_str()).unwrap();
        assert_eq!(shown["extensions"], json!([{"n": i}]));
        assert_eq!(shown["enabledForEverybody"], i % 2 != 0, "{shown}");
        let query = format!("{base}/ui-extensions?contextIdentifier=was-off-{i}");
        let (_, was_off) = app.call("GET", &query, None).await;
        assert_eq!(was_off["enabledForEverybody"], i % 2 != 0, "an enabled context stays enabled: {was_off}");
    }

    // Each declaration replaces its list whole: the last one wins, never a mix of two; the kept
    // entry keeps its authorization, new ones start unauthorized, the dropped one is gone.
    let (_, domains) = app.call("GET", &format!("{base}/unfurl-domains"), None).await;
    let values: Vec<Value> = domains.as_array().unwrap().iter().map(|d| d["value"].clone()).collect();
    assert!(domain_lists.contains(&json!(values)), "one declared list, whole: {domains}");
    assert_eq!(domains[0], json!({"value": "keep.example", "authorized": true}), "{domains}");
    assert_eq!(domains[1]["authorized"], false, "{domains}");
    let (_, patterns) = app.call("GET", &format!("{base}/unfurl-patterns"), None).await;
    assert_eq!(patterns.as_array().map(Vec::len), Some(2), "{patterns}");
    assert_eq!(patterns[0], json!({"value": "https://keep.example/", "authorized": true}), "{patterns}");
    assert_ne!(patterns[1]["value"], "https://drop.example/", "{patterns}");
    let again = json!({"domains": ["keep.example", "drop.example"]});
    assert_eq!(as_app("PATCH", domains_path, again).await.0, 200);
    let (_, domains) = app.call("GET", &format!("{base}/unfurl-domains"), None).await;
    assert_eq!(
        domains,
        json!([{"value": "keep.example", "authorized": true}, {"value": "drop.example", "authorized": false}]),
        "a dropped domain declared again does not get its old authorization back"
    );

    let (_, rights) = app.call("GET", &required, None).await;
    let mut rights: Vec<String> = rights.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    rights.sort_unstable();
    let mut expected: Vec<String> = (0..WRITERS).map(|i| format!("New.R{i}")).chain(["Kept.Right".into()]).collect();
    expected.sort_unstable();
    assert_eq!(rights, expected, "every added right is kept, no removed one came back");

    let (_, shown) = app.call("GET", &base, None).await;
    let descriptions: Vec<Value> = (0..WRITERS).map(|i| json!(format!("l-{i}"))).collect();
    assert!(descriptions.contains(&shown["description"]), "{shown}");
    let current = app.client_secret(&id).await;
    let issued: Vec<&str> = secrets.iter().step_by(2).map(|(_, s)| s.as_str().unwrap()).collect();
    assert!(issued.contains(&current.as_str()), "the secret is one a regeneration returned");
}

/// Updates of a webhook (settings and endpoint credentials), custom-header changes and
/// signing-key regenerations all at once at one webhook: none brings back what another
/// replaced.
async fn webhook_writes_lose_nothing(app: &App) {
    let created = app.create_app(json!({"name": "hooked", "endpointUri": "https://example.com/"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, hook) =
        app.call("POST", &format!("/api/http/applications/{id}/webhooks"), Some(json!({"name": "h"}))).await;
    assert_eq!(status, 200, "{hook}");
    let base = format!("/api/http/applications/{id}/webhooks/{}", hook["webhook"]["id"].as_str().unwrap());
    let (_, original) = app.call("GET", &format!("{base}/signing-key"), None).await;
    let (regenerate, headers) = (format!("{base}/signing-key/regenerate"), format!("{base}/custom-headers"));

    let updates = (0..WRITERS).map(|i| {
        let body = json!({"description": format!("w-{i}"), "endpointAuth": {"bearerAuthToken": format!("t-{i}")}});
        app.call("PATCH", &base, Some(body))
    });
    let header_sets =
        (0..WRITERS).map(|i| app.call("POST", &headers, Some(json!({"headers": {"X-Writer": format!("{i}")}}))));
    let regenerations = (0..WRITERS).map(|_| app.call("POST", &regenerate, None));
    let (updates, header_sets, regenerations) =
        tokio::join!(join_all(updates), join_all(header_sets), join_all(regenerations));
    for (status, body) in updates.iter().chain(&header_sets).chain(&regenerations) {
        assert_eq!(*status, 200, "{body}");
    }

    let (_, key) = app.call("GET", &format!("{base}/signing-key"), None).await;
    let issued: Vec<&Value> = regenerations.iter().map(|(_, body)| &body["signingKey"]).collect();
    assert!(issued.contains(&&key["signingKey"]), "no update brought an older signing key back");
    assert_ne!(key["signingKey"], original["signingKey"]);
    let (_, token) = app.call("GET", &format!("{base}/bearer-token"), None).await;
    let tokens: Vec<Value> = (0..WRITERS).map(|i| json!(format!("t-{i}"))).collect();
    assert!(tokens.contains(&token), "no header change lost the credentials an update set: {token}");
    let (_, shown) = app.call("GET", &headers, None).await;
    let sets: Vec<Value> = (0..WRITERS).map(|i| json!({"X-Writer": format!("{i}")})).collect();
    assert!(sets.contains(&shown["headers"]), "no update lost the custom headers a change set: {shown}");
}

#[tokio::test]
async fn concurrent_writes_lose_nothing_on_sqlite() {
    nothing_is_lost_or_resurrected(spawn().await).await;
}

#[tokio::test]
async fn concurrent_writes_lose_nothing_on_postgres() {
    nothing_is_lost_or_resurrected(spawn_on(Some(fresh_postgres().await)).await).await;
}
