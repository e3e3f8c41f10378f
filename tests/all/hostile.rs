//! Hostile modules: each ends with its own error kind in the events log and a clear HTTP
//! status, while a healthy integration on the same server keeps answering.

use std::time::Duration;

use serde_json::Value;

use crate::support::{TestApp, hello_wasm, spawn_app_with};

fn hostile(name: &str) -> Vec<u8> {
    crate::support::fixture(&format!("hostile/{name}"))
}

async fn install(app: &TestApp, name: &str, wasm: &[u8]) -> String {
    app.publish(name, "acme", wasm).await;
    app.install(name, "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_hostile_module_fails_alone_with_its_own_error_kind() {
    let app = spawn_app_with(|config| {
        config.limits.deadline = Duration::from_millis(500);
        config.limits.memory_bytes = 16 << 20;
        config.limits.host_calls = 100;
    })
    .await;
    app.create_org("acme").await;
    let healthy = install(&app, "hello", hello_wasm()).await;
    let cases = [
        ("infinite_loop", "timeout", 504),
        ("loop_in_initialize", "timeout", 504),
        ("memory_grow", "memory_limit", 500),
        ("deep_recursion", "stack_overflow", 500),
        ("out_of_bounds_outcome", "bad_output", 500),
        ("huge_outcome", "output_too_large", 500),
        ("not_json_outcome", "bad_output", 500),
        ("trap_in_alloc", "trap", 500),
        ("proc_exit", "exit", 500),
        ("host_call_flood", "host_call_limit", 500),
        // Guest ABI v2.
        ("v2_init_traps", "trap", 500),
        ("v2_init_loops", "timeout", 504),
        ("v2_input_outside_memory", "bad_input", 500),
        ("v2_small_buffer", "bad_input", 500),
        ("v2_lying_outcome", "bad_output", 500),
    ];
    for (name, kind, status) in cases {
        let endpoint = install(&app, &name.replace('_', "-"), &hostile(name)).await;
        let attack = tokio::spawn({
            let client = app.client.clone();
            async move { client.get(endpoint).send().await.unwrap() }
        });
        // While the hostile module runs, the healthy one answers.
        let mut answered = 0;
        while !attack.is_finished() || answered == 0 {
            let response = app.client.get(&healthy).send().await.unwrap();
            assert_eq!(response.status(), 200, "hello stopped answering while {name} ran");
            answered += 1;
        }
        let response = attack.await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains(kind), "{name}: {body}");
        let events = app.wait_for_events(&name.replace('_', "-"), 1).await;
        assert_eq!(
            (events[0]["status"].as_str(), events[0]["error"]["kind"].as_str()),
            (Some("failed"), Some(kind)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_module_with_tens_of_thousands_of_functions_is_handled_at_publish() {
    // Calls back to back for as long as the compile takes: no rate limit to meet here.
    let app = spawn_app_with(|config| config.tenancy.fetch_rate = 0.0).await;
    app.create_org("acme").await;
    let healthy = install(&app, "hello", hello_wasm()).await;
    let functions: String = (0..30_000).map(|i| format!("(func (result i32) (i32.const {i}))\n")).collect();
    let wasm = wat::parse_str(format!(
        r#"(module {functions}
            (memory (export "memory") 1)
            (data (i32.const 0) "{{}}")
            (func (export "weft_alloc") (param i32) (result i32) (i32.const 4096))
            (func (export "weft_handle") (param i32 i32) (result i64) (i64.const 2)))"#
    ))
    .unwrap();
    let publish = tokio::spawn({
        let (client, url, body) = (app.client.clone(), app.url.clone(), crate::support::publish_body("acme", &wasm));
        async move {
            let response = client
                .post(format!("{url}/v1/integrations/many"))
                .bearer_auth(crate::support::ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    });
    let mut answered = 0;
    while !publish.is_finished() || answered == 0 {
        assert_eq!(app.client.get(&healthy).send().await.unwrap().status(), 200, "compiling blocked other events");
        answered += 1;
    }
    let (status, body) = publish.await.unwrap();
    // Accepted and runnable, or refused with the reason: never a crash or a hang.
    match status {
        200 => {
            let endpoint = app.install("many", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
            assert_eq!(app.client.get(&endpoint).send().await.unwrap().status(), 406);
        }
        400 => assert!(body["error"]["message"].is_string(), "{body}"),
        other => panic!("publishing a huge module answered {other}: {body}"),
    }
}

#[tokio::test]
async fn a_full_pool_answers_503_with_retry_after_instead_of_failing() {
    let app = spawn_app_with(|config| {
        config.runtime.max_instances = 1;
        config.runtime.queue_timeout = Duration::from_millis(100);
        // Long enough that a loaded machine still sees the slot taken while it polls.
        config.limits.deadline = Duration::from_secs(6);
        config.queue.enabled = false;
    })
    .await;
    app.create_org("acme").await;
    let healthy = install(&app, "hello", hello_wasm()).await;
    let spinning = install(&app, "spin", &hostile("infinite_loop")).await;
    let occupant = tokio::spawn({
        let client = app.client.clone();
        async move { client.get(spinning).send().await.unwrap().status().as_u16() }
    });
    // Poll until the spinning module holds the only slot and hello is turned away.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let response = loop {
        let response = app.client.get(&healthy).send().await.unwrap();
        if response.status() == 503 {
            break response;
        }
        assert!(std::time::Instant::now() < deadline, "the pool never filled (last: {})", response.status());
    };
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 503);
    assert_eq!(occupant.await.unwrap(), 504);
    assert_eq!(app.client.get(&healthy).send().await.unwrap().status(), 200, "the slot is free again");
}

#[tokio::test]
async fn v1_and_v2_modules_run_side_by_side_and_publish_says_which_abi_and_whether_snapshotted() {
    let app = spawn_app_with(|config| config.runtime.init_deadline = Duration::from_millis(300)).await;
    app.create_org("acme").await;
    let v2 = app.publish("hello", "acme", hello_wasm()).await;
    assert_eq!(v2["module"], serde_json::json!({"abi": 2, "snapshot": true, "language": "wasm"}));
    let v1_wasm = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1/hello.wasm")).unwrap();
    let v1 = app.publish("hello-v1", "acme", &v1_wasm).await;
    assert_eq!(v1["module"], serde_json::json!({"abi": 1, "snapshot": true, "language": "wasm"}));
    for (name, why) in [("v2_init_traps", "weft_init"), ("v2_init_loops", "300 ms")] {
        let answer = app.publish(&name.replace('_', "-"), "acme", &hostile(name)).await;
        assert_eq!((answer["module"]["abi"].as_u64(), answer["module"]["snapshot"].as_bool()), (Some(2), Some(false)));
        let reason = answer["module"]["snapshotReason"].as_str().unwrap();
        assert!(reason.contains(why), "{name}: {reason}");
    }
    for name in ["hello", "hello-v1"] {
        let endpoint = app.install(name, "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
        let response = app.client.post(format!("{endpoint}/some/path")).body(vec![0xff, 0, 1]).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let body: Value = response.json().await.unwrap();
        // The v1 SDK saw GitBook's lower-case method; today's SDK upper-cases it.
        assert!(body["method"].as_str().is_some_and(|m| m.eq_ignore_ascii_case("post")), "{name}: {body}");
        assert_eq!(body["path"], "/some/path", "{name}");
    }
}
