//! The store on both backends: the same scenario against a fresh SQLite file and a fresh
//! PostgreSQL database.

use serde_json::json;
use weft::store::{
    EventFilter, EventRecord, NewInstallation, NewVersion, Store, installation_scope, integration_scope,
};

use crate::support::{fresh_postgres, fresh_sqlite};

async fn publish_install_and_log(store: &Store) {
    assert!(store.create_org("acme", "Acme").await.unwrap().is_some());
    assert!(store.create_org("acme", "Again").await.unwrap().is_none(), "org ids are unique");
    store.create_org("other", "Other").await.unwrap();

    let manifest = json!({"title": "Hello"});
    let facts = weft::store::ModuleFacts { abi: 2, snapshot: true, snapshot_reason: None };
    let version = |org_id| NewVersion {
        name: "hello",
        org_id,
        visibility: "private",
        target: "all",
        manifest: &manifest,
        wasm: b"\0asm",
        artifact: b"compiled",
        sha256: "00",
        module: &facts,
        source: None,
    };
    let hello = store.publish_version(version("acme")).await.unwrap().unwrap();
    assert_eq!(hello.current_version, 1);
    let second = store.publish_version(version("acme")).await.unwrap().unwrap();
    assert_eq!((second.current_version, &second.id), (2, &hello.id), "a new version keeps the identity");
    assert!(store.publish_version(version("other")).await.unwrap().is_none(), "only the owner publishes");
    let id = hello.id.as_str();
    assert_eq!(store.module_artifact(id, 2).await.unwrap().as_deref(), Some(&b"compiled"[..]));
    store.set_module_artifact(id, 2, b"recompiled").await.unwrap();
    assert_eq!(store.module_artifact(id, 2).await.unwrap().as_deref(), Some(&b"recompiled"[..]));
    assert_eq!(store.module_wasm(id, 1).await.unwrap().as_deref(), Some(&b"\0asm"[..]));
    // A JavaScript version keeps its bundle beside the snapshot; a WebAssembly one has none.
    let bundle = NewVersion { source: Some(b"export default {}"), ..version("acme") };
    let third = store.publish_version(bundle).await.unwrap().unwrap();
    assert_eq!(
        store.module_source(id, third.current_version).await.unwrap().as_deref(),
        Some(&b"export default {}"[..])
    );
    assert_eq!(store.module_source(id, 1).await.unwrap(), None);
    let versions = store.versions(id, 10).await.unwrap();
    let sources: Vec<Option<i64>> = versions.iter().map(|v| v.source_size).collect();
    assert_eq!(sources, [Some(17), None, None]);

    let NewInstallation::Created(installation) = store.create_installation("inst_1", &hello, "acme").await.unwrap()
    else {
        panic!("installed once")
    };
    assert_eq!(store.installation(id, "inst_1").await.unwrap(), Some(*installation));
    assert_eq!(store.count_installations(id).await.unwrap(), 1);

    let events: Vec<EventRecord> = (0..300)
        .map(|i| EventRecord {
            id: format!("evt_{i:04}"),
            integration_id: hello.id.clone(),
            integration: "hello".into(),
            installation_id: Some("inst_1".into()),
            event_type: "fetch".into(),
            // The last one was dead-lettered: `failed` lists it too.
            status: if i == 299 { "dead" } else { "success" }.into(),
            error_kind: None,
            error_message: None,
            response_status: Some(200),
            duration_us: i,
            logs: "[]".into(),
            created_at: i,
            payload: (i > 0).then(|| format!(r#"{{"type":"fetch","eventId":"evt_{i:04}"}}"#)),
        })
        .collect();
    store.insert_events(&events).await.unwrap();
    store.insert_events(&events[..5]).await.unwrap();
    let page = store.events(id, &EventFilter::default(), "", 10).await.unwrap();
    assert_eq!(page.total, 300, "re-inserting an event is a no-op");
    assert_eq!(page.events[0].id, "evt_0299");
    let next = store.events(id, &EventFilter::default(), &page.events[9].id, 10).await.unwrap();
    assert_eq!(next.events[0].id, "evt_0289");
    let seventh = store.event(id, "evt_0007").await.unwrap().unwrap();
    assert_eq!(seventh.duration_us, 7);
    assert_eq!(seventh.payload.as_deref(), Some(r#"{"type":"fetch","eventId":"evt_0007"}"#));
    assert_eq!(store.event(id, "evt_0000").await.unwrap().unwrap().payload, None);
    let only = |status, installation_id| EventFilter { status, installation_id, event_type: Some("fetch") };
    assert_eq!(store.events(id, &only(Some("success"), Some("inst_1")), "", 1).await.unwrap().total, 299);
    assert_eq!(store.events(id, &only(Some("failed"), None), "", 1).await.unwrap().total, 1);
    assert_eq!(store.events(id, &only(Some("dead"), None), "", 1).await.unwrap().total, 1);
    assert_eq!(store.events(id, &only(None, Some("inst_2")), "", 1).await.unwrap().total, 0);

    // kv entries go with their installation, then with their integration.
    store.create_installation("inst_2", &hello, "other").await.unwrap();
    for scope in [installation_scope("inst_1"), installation_scope("inst_2"), integration_scope(id)] {
        assert!(store.kv_set(&scope, "k", "1", 10).await.unwrap());
    }
    let has_key = |scope: String| async move { store.kv_get(&scope, "k").await.unwrap().is_some() };
    assert!(store.delete_installation("inst_1").await.unwrap());
    assert!(!has_key(installation_scope("inst_1")).await);
    assert!(has_key(installation_scope("inst_2")).await && has_key(integration_scope(id)).await);
    assert!(store.delete_integration(id).await.unwrap());
    assert!(!has_key(installation_scope("inst_2")).await && !has_key(integration_scope(id)).await);

    // The name is free again; whoever takes it gets a new identity, and nothing of the
    // old one: no versions, events, installations.
    let successor = store.publish_version(version("other")).await.unwrap().unwrap();
    assert_ne!(successor.id, hello.id);
    assert_eq!(successor.current_version, 1);
    assert!(store.events(id, &EventFilter::default(), "", 10).await.unwrap().events.is_empty());
    assert!(store.events(&successor.id, &EventFilter::default(), "", 10).await.unwrap().events.is_empty());
    assert_eq!(store.count_installations(&successor.id).await.unwrap(), 0);
    let gone = store.create_installation("inst_3", &hello, "acme").await.unwrap();
    assert_eq!(gone, NewInstallation::IntegrationGone, "the old id is gone");
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

async fn queue_claims_settles_and_dead_letters(store: &Store) {
    use weft::store::NewJob;
    let job = |id: &str, due_at: i64, key: Option<&str>| NewJob {
        id: id.into(),
        integration_id: "itg_hello".into(),
        integration: "hello".into(),
        installation_id: None,
        event: json!({"type": "task", "task": {"id": id}}),
        due_at,
        max_attempts: 2,
        idempotency_key: key.map(str::to_owned),
    };
    let now = weft::store::now_ms();
    let inserted = store
        .enqueue(&[job("a", now - 10, None), job("b", now - 20, Some("k")), job("later", now + 60_000, None)])
        .await
        .unwrap();
    assert_eq!(inserted, 3);
    assert_eq!(store.enqueue(&[job("b2", now, Some("k"))]).await.unwrap(), 0, "the idempotency key holds");

    let claimed = store.claim_jobs("w1", 60_000, 10).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["b", "a"], "due jobs, oldest due first; future ones wait");
    assert!(store.claim_jobs("w2", 60_000, 10).await.unwrap().is_empty(), "leased jobs are not claimed twice");

    store.complete_jobs("w1", &["b".to_owned()]).await.unwrap();
    assert_eq!(store.jobs("itg_hello", "done", 10).await.unwrap().len(), 1, "kept while its key must hold");
    store.retry_job("w1", "a", now - 1, "boom").await.unwrap();
    let again = store.claim_jobs("w2", 60_000, 10).await.unwrap();
    assert_eq!((again[0].id.as_str(), again[0].attempts), ("a", 2));
    store.bury_job("w2", "a", "boom again").await.unwrap();
    let dead = store.jobs("itg_hello", "dead", 10).await.unwrap();
    assert_eq!((dead[0].id.as_str(), dead[0].last_error.as_deref()), ("a", Some("boom again")));

    // An expired lease makes a job claimable by another worker.
    store.enqueue(&[job("c", now - 5, None)]).await.unwrap();
    assert_eq!(store.claim_jobs("w3", -1, 10).await.unwrap().len(), 1);
    let taken_over = store.claim_jobs("w4", 60_000, 10).await.unwrap();
    assert_eq!(taken_over.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["c"]);
    assert_eq!(store.release_owned_jobs("w4").await.unwrap(), 1);
    assert_eq!(store.queue_depth().await.unwrap(), 2, "c is queued again, `later` still waits");
}

#[tokio::test]
async fn the_queue_works_on_sqlite() {
    let (store, _dir) = fresh_sqlite().await;
    queue_claims_settles_and_dead_letters(&store).await;
}

#[tokio::test]
async fn the_queue_works_on_postgres() {
    let database = fresh_postgres().await;
    queue_claims_settles_and_dead_letters(&Store::connect(&database.url).await.unwrap()).await;
}
