//! Limits under concurrency: many writers at once against one limit, on both backends, and
//! the limit holds exactly.

use weft::store::Store;

use crate::support::{fresh_postgres, fresh_sqlite};

/// 50 writers of 50 new keys race for a scope that holds 10.
async fn kv_key_limit_holds_under_concurrent_writers(store: &Store) {
    const LIMIT: i64 = 10;
    let mut writers = tokio::task::JoinSet::new();
    for n in 0..50 {
        let store = store.clone();
        writers.spawn(async move { store.kv_set("installation:inst_race", &format!("key-{n:02}"), "1", LIMIT).await });
    }
    let mut stored = 0;
    while let Some(result) = writers.join_next().await {
        stored += i64::from(result.unwrap().unwrap());
    }
    assert_eq!(stored, LIMIT, "writers told their key was stored");
    let keys = store.kv_list("installation:inst_race", "", 1000).await.unwrap();
    assert_eq!(keys.len() as i64, LIMIT, "keys actually stored");
    assert!(store.kv_set("installation:inst_race", &keys[0], "2", LIMIT).await.unwrap(), "a full scope still updates");
}

#[tokio::test]
async fn the_kv_key_limit_holds_under_concurrent_writers_on_sqlite() {
    let (store, _dir) = fresh_sqlite().await;
    kv_key_limit_holds_under_concurrent_writers(&store).await;
}

#[tokio::test]
async fn the_kv_key_limit_holds_under_concurrent_writers_on_postgres() {
    let database = fresh_postgres().await;
    kv_key_limit_holds_under_concurrent_writers(&Store::connect(&database.url).await.unwrap()).await;
}

/// 50 writers of 50 new parameters race for an application that holds 10.
async fn parameter_limit_holds_under_concurrent_writers(app: &crate::support::TestApp) {
    const LIMIT: i64 = 10;
    let (status, created) =
        app.call("POST", "/api/http/applications", Some(serde_json::json!({"name": "racer"}))).await;
    assert_eq!(status, 200, "{created}");
    let app_id = created["id"].as_str().unwrap().to_owned();
    let mut writers = tokio::task::JoinSet::new();
    for n in 0..50 {
        let (store, app_id) = (app.state().store.clone(), app_id.clone());
        writers.spawn(async move { store.set_app_parameter(&app_id, "", &format!("p{n:02}"), "v", LIMIT).await });
    }
    let mut stored = 0;
    while let Some(result) = writers.join_next().await {
        stored += i64::from(result.unwrap().unwrap().is_ok());
    }
    assert_eq!(stored, LIMIT, "writers told their parameter was stored");
    assert_eq!(app.state().store.app_parameters(&app_id, "").await.unwrap().len() as i64, LIMIT);
}

#[tokio::test]
async fn the_parameter_limit_holds_under_concurrent_writers_on_sqlite() {
    parameter_limit_holds_under_concurrent_writers(&crate::support::spawn_app().await).await;
}

#[tokio::test]
async fn the_parameter_limit_holds_under_concurrent_writers_on_postgres() {
    let database = fresh_postgres().await;
    let app = crate::support::spawn_app_with(|config| {
        config.database_url = database.url.clone();
        config.secret_key = Some("11".repeat(32));
    })
    .await;
    parameter_limit_holds_under_concurrent_writers(&app).await;
}
