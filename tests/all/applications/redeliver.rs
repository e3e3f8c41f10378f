//! "Redeliver": a settled delivery is sent again, through the same worker and signatures,
//! and only by callers who may update the application.

use serde_json::json;

use super::oauth::user_with_token;
use super::receiver::receiver;
use super::{issue_created, issue_webhook, spawn_on};
use crate::support::fresh_postgres;

#[tokio::test]
async fn a_failed_delivery_is_sent_again_on_request() {
    a_failed_delivery_is_sent_again(false).await;
}

#[tokio::test]
async fn a_failed_delivery_is_sent_again_on_request_on_postgres() {
    a_failed_delivery_is_sent_again(true).await;
}

async fn a_failed_delivery_is_sent_again(postgres: bool) {
    let app = spawn_on(if postgres { Some(fresh_postgres().await) } else { None }).await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    let failing_once = receiver(&[500]).await;
    let created = app.create_app(json!({"name": "redeliver", "organization": "acme"})).await;
    let app_id = created["id"].as_str().unwrap();
    issue_webhook(&app, app_id, json!({"endpoint": {"url": failing_once.url}, "doRetries": false})).await;
    app.publish("acme", issue_created()).await;
    let failed = app.wait_deliveries(app_id, |d| d.first().is_some_and(|d| d["status"] == "failed")).await;
    let delivery_id = failed[0]["id"].as_str().unwrap();
    let redeliver = format!("/api/http/applications/{app_id}/deliveries/{delivery_id}/redeliver");

    let outsider = user_with_token(&app, "eve", "globex", "admin").await;
    let (status, body) = app.call_as(Some(&outsider), "POST", &redeliver, None).await;
    assert_eq!(status, 403, "another organization's admin holds no right on the application: {body}");
    assert_eq!(body["error"], "permission-denied");
    let (status, _) =
        app.call("POST", &format!("/api/http/applications/{app_id}/deliveries/whd_none/redeliver"), None).await;
    assert_eq!(status, 404);

    let (status, again) = app.call("POST", &redeliver, None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["status"].clone(), again["attempts"].clone()), (json!("pending"), json!(0)));
    let delivered = app.wait_deliveries(app_id, |d| d.first().is_some_and(|d| d["status"] == "succeeded")).await;
    assert_eq!((delivered[0]["id"].clone(), delivered[0]["lastStatusCode"].clone()), (json!(delivery_id), json!(200)));
    let hits = failing_once.wait_for(2).await;
    assert_eq!(hits[0].json(), hits[1].json(), "the same payload is sent again");
    app.stop().await;
}
