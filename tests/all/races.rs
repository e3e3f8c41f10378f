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
