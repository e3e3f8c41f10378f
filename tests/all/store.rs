//! The store on both backends: the same scenario against a fresh SQLite file and a fresh
//! PostgreSQL database.

use serde_json::json;
use weft::store::{EventRecord, NewVersion, Store};

use crate::support::{fresh_postgres, fresh_sqlite};

async fn publish_install_and_log(store: &Store) {
    assert!(store.create_org("acme", "Acme").await.unwrap().is_some());
    assert!(store.create_org("acme", "Again").await.unwrap().is_none(), "org ids are unique");
    store.create_org("other", "Other").await.unwrap();

    let manifest = json!({"title": "Hello"});
    let version = |org_id| NewVersion {
        name: "hello",
        org_id,
        visibility: "private",
        target: "all",
        manifest: &manifest,
        wasm: b"\0asm",
        artifact: b"compiled",
        sha256: "00",
    };
    assert_eq!(store.publish_version(version("acme")).await.unwrap().unwrap().current_version, 1);
    assert_eq!(store.publish_version(version("acme")).await.unwrap().unwrap().current_version, 2);
    assert!(store.publish_version(version("other")).await.unwrap().is_none(), "only the owner publishes");
    assert_eq!(store.module_artifact("hello", 2).await.unwrap().as_deref(), Some(&b"compiled"[..]));
    store.set_module_artifact("hello", 2, b"recompiled").await.unwrap();
    assert_eq!(store.module_artifact("hello", 2).await.unwrap().as_deref(), Some(&b"recompiled"[..]));
    assert_eq!(store.module_wasm("hello", 1).await.unwrap().as_deref(), Some(&b"\0asm"[..]));

    let installation = store.create_installation("inst_1", "hello", "acme").await.unwrap();
    assert_eq!(store.installation("hello", "inst_1").await.unwrap(), Some(installation));
    assert_eq!(store.count_installations("hello").await.unwrap(), 1);

    let events: Vec<EventRecord> = (0..300)
        .map(|i| EventRecord {
            id: format!("evt_{i:04}"),
            integration: "hello".into(),
            installation_id: Some("inst_1".into()),
            event_type: "fetch".into(),
            status: "success".into(),
            error_kind: None,
            error_message: None,
            response_status: Some(200),
            duration_us: i,
            logs: "[]".into(),
            created_at: i,
        })
        .collect();
    store.insert_events(&events).await.unwrap();
    store.insert_events(&events[..5]).await.unwrap();
    let page = store.events("hello", "", 10).await.unwrap();
    assert_eq!(page.total, 300, "re-inserting an event is a no-op");
    assert_eq!(page.events[0].id, "evt_0299");
    let next = store.events("hello", &page.events[9].id, 10).await.unwrap();
    assert_eq!(next.events[0].id, "evt_0289");
    assert_eq!(store.event("hello", "evt_0007").await.unwrap().unwrap().duration_us, 7);
}

#[tokio::test]
async fn the_store_works_on_sqlite() {
    let (store, _dir) = fresh_sqlite().await;
    publish_install_and_log(&store).await;
}

#[tokio::test]
async fn the_store_works_on_postgres() {
    let database = fresh_postgres().await;
    publish_install_and_log(&Store::connect(&database.url).await.unwrap()).await;
}
