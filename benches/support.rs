//! What several benches share, included with `#[path = "support.rs"] mod support;`.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use weft::store::{InstallationRecord, IntegrationRecord};

/// hello.wasm, built with the project's guest build script when missing.
pub fn hello_wasm() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("examples/target/wasm32-wasip1/release/hello.wasm");
    if !path.exists() {
        let status = Command::new("bash").arg(root.join("scripts/build-examples")).arg("hello").status();
        assert!(status.is_ok_and(|s| s.success()), "scripts/build-examples hello failed");
    }
    std::fs::read(path).expect("hello.wasm")
}

/// The invocation the server would hand hello for `GET …/fetch/bench`, written by the
/// server's own code: `weft::environments::encode` (sealed API tokens, the integration with
/// its owner organization, the installation with its configuration: GitBook's shapes)
/// inside `weft::dispatch::invocation`.
#[allow(dead_code)] // not every bench sends events
pub fn hello_invocation() -> Vec<u8> {
    let event = json!({"eventId": "evt_bench", "type": "fetch", "request": {
        "method": "get", "installationId": "inst_x", "url": "http://127.0.0.1/v1/integrations/hello/installations/inst_x/fetch/bench",
        "path": "/bench", "query": "", "headers": {"accept": "*/*"}, "body": ""}});
    let integration = IntegrationRecord {
        id: "itg_bench".into(),
        name: "hello".into(),
        org_id: "org_bench".into(),
        visibility: "private".into(),
        target: "organization".into(),
        current_version: 1,
        manifest: json!({}),
        created_at: 0,
        updated_at: 0,
        sealed_secrets: None,
    };
    let installation = InstallationRecord {
        id: "inst_x".into(),
        integration_id: "itg_bench".into(),
        integration: "hello".into(),
        org_id: "org_bench".into(),
        status: "active".into(),
        configuration: json!({"greeting": "hi"}),
        external_ids: Vec::new(),
        created_at: 0,
        updated_at: 0,
        space_selection: "selected".into(),
        site_selection: "selected".into(),
        spaces: 0,
    };
    let secrets = weft::crypto::SecretBox::new([7; 32]);
    let owner = weft::store::OrgRecord { id: "org_bench".into(), title: "Bench".into(), created_at: 0 };
    let environment =
        weft::environments::encode("http://127.0.0.1", &secrets, &integration, Some(&installation), Some(&owner));
    weft::dispatch::invocation(&event, &environment)
}
