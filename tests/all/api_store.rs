//! The integrations API's queries on both backends: users and roles, spaces and sites,
//! filtered installations, updates, space installations and unpublishing.

use serde_json::json;
use weft::store::{
    InstallationFilter, InstallationUpdate, NewInstallation, NewVersion, PlaceInstallationFilter, PlaceKind, Store,
    TokenKind,
};

use crate::support::{fresh_postgres, fresh_sqlite};

async fn directory_and_installations(store: &Store) {
    store.create_org("acme", "Acme").await.unwrap();
    store.create_org("bravo", "Bravo").await.unwrap();
    assert!(store.create_user("ada", "Ada").await.unwrap().is_some());
    assert!(store.create_user("ada", "Again").await.unwrap().is_none());
    store.set_member("acme", "ada", "member").await.unwrap();
    store.set_member("acme", "ada", "admin").await.unwrap();
    let memberships = store.memberships("ada").await.unwrap();
    assert_eq!((memberships.len(), memberships[0].role.as_str()), (1, "admin"));
    assert_eq!(store.members("acme").await.unwrap().len(), 1);

    for (kind, org, id) in
        [(PlaceKind::Space, "acme", "s1"), (PlaceKind::Space, "bravo", "s2"), (PlaceKind::Site, "acme", "w1")]
    {
        assert!(store.create_place(kind, id, org, id).await.unwrap().is_some());
    }
    assert!(store.create_place(PlaceKind::Space, "s1", "bravo", "x").await.unwrap().is_none());
    let (spaces, total) = store.places(PlaceKind::Space, "acme", "", 10).await.unwrap();
    assert_eq!((spaces.len(), total, spaces[0].id.as_str()), (1, 1, "s1"));

    let manifest = json!({"title": "Hello"});
    let version = NewVersion {
        name: "hello",
        org_id: "acme",
        visibility: "public",
        target: "all",
        manifest: &manifest,
        wasm: b"\0asm",
        artifact: b"compiled",
        sha256: "00",
        module: &weft::store::ModuleFacts { abi: 2, snapshot: true, snapshot_reason: None },
        source: None,
    };
    let hello = store.publish_version(version).await.unwrap().unwrap();
    store.set_integration_secrets(&hello.id, "v1:sealed").await.unwrap();
    let integration = store.integration("hello").await.unwrap().unwrap();
    assert_eq!(integration.sealed_secrets.as_deref(), Some("v1:sealed"));
    assert_eq!(store.integrations_with_visibility("public").await.unwrap().len(), 1);
    let private = NewVersion {
        name: "own",
        org_id: "bravo",
        visibility: "private",
        target: "all",
        manifest: &manifest,
        wasm: b"\0asm",
        artifact: b"compiled",
        sha256: "00",
        module: &weft::store::ModuleFacts { abi: 2, snapshot: true, snapshot_reason: None },
        source: None,
    };
    store.publish_version(private).await.unwrap().unwrap();
    let names = |list: Vec<weft::store::IntegrationRecord>| list.into_iter().map(|i| i.name).collect::<Vec<_>>();
    assert_eq!(names(store.integrations_available_to("bravo").await.unwrap()), ["hello", "own"]);
    assert_eq!(names(store.integrations_available_to("acme").await.unwrap()), ["hello"]);

    for (id, org) in [("inst_a", "acme"), ("inst_b", "bravo")] {
        assert!(matches!(store.create_installation(id, &hello, org).await.unwrap(), NewInstallation::Created(_)));
    }
    let again = store.create_installation("inst_c", &hello, "acme").await.unwrap();
    assert_eq!(again, NewInstallation::Exists("inst_a".into()), "one installation per organization");
    let update = InstallationUpdate {
        external_ids: Some(vec!["ext_1".into(), "100%".into()]),
        configuration: Some(json!({"k": "v"})),
        space_selection: Some("all".into()),
        ..Default::default()
    };
    let updated = store.update_installation("inst_a", &update).await.unwrap().unwrap();
    assert_eq!((updated.status.as_str(), updated.space_selection.as_str()), ("active", "all"));
    assert_eq!(updated.configuration, json!({"k": "v"}));
    let unchanged = store.update_installation("inst_a", &InstallationUpdate::default()).await.unwrap().unwrap();
    assert_eq!((unchanged.external_ids, unchanged.configuration), (updated.external_ids, updated.configuration));
    assert!(store.update_installation("inst_x", &InstallationUpdate::default()).await.unwrap().is_none());

    assert_eq!(count(store, InstallationFilter { integration_id: &hello.id, ..Default::default() }).await, (2, 2));
    assert_eq!(count(store, InstallationFilter { member: "ada", ..Default::default() }).await, (1, 1));
    assert_eq!(count(store, InstallationFilter { external_id: "ext_1", ..Default::default() }).await, (1, 1));
    assert_eq!(count(store, InstallationFilter { external_id: "100%", ..Default::default() }).await, (1, 1));
    assert_eq!(count(store, InstallationFilter { external_id: "ext%", ..Default::default() }).await, (0, 0));
    assert_eq!(count(store, InstallationFilter { org_id: "bravo", id: "inst_b", ..Default::default() }).await, (1, 1));
    assert_eq!(store.installation_by_id("inst_b").await.unwrap().unwrap().org_id, "bravo");

    store.install_on_place(PlaceKind::Space, "inst_a", "s1", "hello", "acme").await.unwrap();
    store.install_on_place(PlaceKind::Space, "inst_a", "s1", "hello", "acme").await.unwrap();
    store.install_on_place(PlaceKind::Space, "inst_b", "s2", "hello", "bravo").await.unwrap();
    store.install_on_place(PlaceKind::Site, "inst_a", "w1", "hello", "acme").await.unwrap();
    let filter = PlaceInstallationFilter { integration: "hello", ..Default::default() };
    let (page, total) = store.find_place_installations(PlaceKind::Space, &filter, "", 1).await.unwrap();
    assert_eq!((page.len(), total, page[0].target_id.as_str()), (1, 2, "s1"));
    let (page, _) = store.find_place_installations(PlaceKind::Space, &filter, "inst_a/s1", 10).await.unwrap();
    assert_eq!(page.iter().map(|p| p.target_id.as_str()).collect::<Vec<_>>(), ["s2"]);
    let mine = PlaceInstallationFilter { member: "ada", ..Default::default() };
    assert_eq!(store.find_place_installations(PlaceKind::Space, &mine, "", 10).await.unwrap().1, 1);
    assert_eq!(store.uninstall_from_place(PlaceKind::Site, "inst_a", "w1").await.unwrap().unwrap().target_id, "w1");
    assert!(store.uninstall_from_place(PlaceKind::Site, "inst_a", "w1").await.unwrap().is_none());

    store.put_token("hash-i", TokenKind::Installation, "inst_b", None).await.unwrap();
    assert!(store.delete_installation("inst_b").await.unwrap());
    assert!(store.token("hash-i").await.unwrap().is_none());
    assert_eq!(store.find_place_installations(PlaceKind::Space, &filter, "", 10).await.unwrap().1, 1);

    store.put_token("hash-n", TokenKind::Integration, &hello.id, None).await.unwrap();
    assert!(store.delete_integration(&hello.id).await.unwrap());
    assert!(!store.delete_integration(&hello.id).await.unwrap());
    assert!(store.integration("hello").await.unwrap().is_none());
    assert!(store.installation_by_id("inst_a").await.unwrap().is_none());
    assert!(store.token("hash-n").await.unwrap().is_none());
    assert_eq!(store.find_place_installations(PlaceKind::Space, &filter, "", 10).await.unwrap().1, 0);
}

/// How many installations match `filter`, counted and listed.
async fn count(store: &Store, filter: InstallationFilter<'_>) -> (i64, i64) {
    (
        store.count_matching_installations(&filter).await.unwrap(),
        store.find_installations(&filter, "", 10).await.unwrap().len() as i64,
    )
}

#[tokio::test]
async fn the_integrations_api_queries_work_on_sqlite() {
    let (store, _dir) = fresh_sqlite().await;
    directory_and_installations(&store).await;
}

#[tokio::test]
async fn the_integrations_api_queries_work_on_postgres() {
    let database = fresh_postgres().await;
    let store = Store::connect(&database.url).await.unwrap();
    directory_and_installations(&store).await;
}
