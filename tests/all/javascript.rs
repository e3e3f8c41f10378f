//! JavaScript integrations (issue 20): GitBook's own CLI publishes a bundle written with
//! `@gitbook/runtime`, weft evaluates and snapshots it in its JavaScript engine at publish,
//! and every event runs in a fresh instance of that snapshot. The example
//! `examples/gitbook-hello` end to end (its npm dependencies come from
//! `scripts/install-clients`), `weft publish`/`check` in a GitBook project, the publish
//! refusals, and the hostile suite over HTTP.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api_support::user_token;
use crate::gitbook_cli::gitbook_with_env;
use crate::support::{ADMIN, TestApp, hello_wasm, repo_root, spawn_app_with};

/// The example's `HELLO_SECRET`, given to the CLIs as the manifest's `${{ env.HELLO_SECRET }}`.
const SECRET: &str = "hello-s3cret";

/// `examples/gitbook-hello`, with its npm dependencies installed.
fn example_dir() -> PathBuf {
    let dir = repo_root().join("examples/gitbook-hello");
    assert!(
        dir.join("node_modules/@gitbook/runtime").is_dir(),
        "{} has no node_modules: run scripts/install-clients (scripts/test does)",
        dir.display()
    );
    dir
}

/// A server whose queue retries quickly; private addresses stay refused to guests.
async fn app() -> TestApp {
    let app = spawn_app_with(|config| {
        config.queue.backoff_base = Duration::from_millis(20);
        config.queue.max_attempts = 3;
        config.queue.poll_interval = Duration::from_millis(20);
    })
    .await;
    app.create_org("acme").await;
    app
}

/// Publishes `script` (JavaScript source, as `gitbook publish` sends it) as `name` of acme.
async fn publish_script(app: &TestApp, name: &str, script: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({
        "title": "JavaScript",
        "description": "A hand-written Workers-style module.",
        "organization": "acme",
        "runtime": "v2",
        "script": script,
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    app.call("POST", &format!("/v1/integrations/{name}"), Some(body)).await
}

/// Publishes and installs `script`; returns the installation's public endpoint.
async fn install_script(app: &TestApp, name: &str, script: &str, extra: Value) -> String {
    let (status, answer) = publish_script(app, name, script, extra).await;
    assert_eq!(status, 200, "{answer}");
    app.install(name, "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned()
}

/// What the example's fetch route answers for `POST {endpoint}/greet/there?name=ada&n=2`.
async fn check_example_fetch(app: &TestApp, endpoint: &str, installation: &str) {
    let body = b"the body to digest".as_slice();
    let response = app.client.post(format!("{endpoint}/greet/there?name=ada&n=2")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let path = reqwest::Url::parse(&format!("{endpoint}/greet/there")).unwrap().path().to_owned();
    assert_eq!(
        answer,
        json!({
            "method": "POST",
            "path": path,
            "query": {"name": "ada", "n": "2"},
            "bodySha256": hex::encode(Sha256::digest(body)),
            "installation": installation,
            "greeting": "hello",
            "secret": SECRET,
        })
    );
}

/// Waits for the `installation_setup` events of `name`, `count` of them, oldest first.
async fn setups(app: &TestApp, name: &str, count: usize) -> Vec<Value> {
    app.wait_for_matching_events(name, count, |e| e["type"] == "installation_setup").await
}

#[tokio::test]
async fn gitbooks_cli_publishes_the_example_whose_fetch_and_setup_run_and_call_back_into_weft() {
    let app = app().await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    let home = tempfile::tempdir().unwrap();
    let publish =
        gitbook_with_env(&app, home.path(), &example_dir(), Some(&ada), &["publish"], &[("HELLO_SECRET", SECRET)])
            .await;
    assert!(publish.success, "{}{}", publish.stdout, publish.stderr);
    assert!(publish.stdout.contains(r#"Integration "gitbook-hello" published"#), "{}", publish.stdout);
    let (status, versions) = app.call("GET", "/v1/integrations/gitbook-hello/versions", None).await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions["items"][0]["language"], "javascript", "{versions}");

    let installation = app.install("gitbook-hello", "acme").await;
    let id = installation["id"].as_str().unwrap();
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();
    check_example_fetch(&app, endpoint, id).await;

    // installation_setup ran (through the queue) and, with the installation's token from
    // its environment, set the installation's external id through weft's API — on
    // 127.0.0.1, which is otherwise refused to guests on this server.
    let setup = &setups(&app, "gitbook-hello", 1).await[0];
    assert_eq!(setup["event"]["status"], "success", "{setup}");
    let (status, shown) = app.call("GET", &format!("/v1/integrations/gitbook-hello/installations/{id}"), None).await;
    assert_eq!((status, &shown["externalIds"]), (200, &json!([format!("hello:{id}")])), "{shown}");
    // And the fetch route reads it back through `context.api`.
    let response = app.client.get(format!("{endpoint}/installation")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, json!({"id": id, "externalIds": [format!("hello:{id}")]}));
}

#[tokio::test]
async fn a_failing_installation_setup_is_retried_through_the_queue_then_dead_lettered() {
    let app = app().await;
    let (status, answer) = weft_publish_example(&app).await;
    assert!(status.status.success(), "{answer}");
    // `fail` as the greeting makes the example's installation_setup throw: @gitbook/runtime
    // answers 500, the event fails, and the queue runs it again.
    let (status, installation) = app
        .call(
            "POST",
            "/v1/integrations/gitbook-hello/installations",
            Some(json!({"organization": "acme", "configuration": {"greeting": "fail"}})),
        )
        .await;
    assert_eq!(status, 201, "{installation}");
    let id = installation["id"].as_str().unwrap();
    // The install's own attempt, then the queue's three.
    let events = setups(&app, "gitbook-hello", 4).await;
    assert!(events.iter().all(|e| e["event"]["status"] == "failed"), "{events:#?}");
    assert_eq!(events[3]["event"]["deadLetter"], true, "{:#}", events[3]);
    let logs = crate::support::log_messages(&events[3]).join("\n");
    assert!(logs.contains(&format!("setup of {id} fails on purpose")), "{logs}");
    let (status, dead) = app.call("GET", "/v1/integrations/gitbook-hello/tasks?status=dead", None).await;
    assert_eq!((status, &dead["items"][0]["attempts"]), (200, &json!(3)), "{dead}");

    // A good configuration: installation_setup answers 200 and the change is kept.
    let path = format!("/v1/integrations/gitbook-hello/installations/{id}");
    let (status, changed) = app.call("PATCH", &path, Some(json!({"configuration": {"greeting": "hi"}}))).await;
    assert_eq!((status, &changed["configuration"]["greeting"]), (200, &json!("hi")), "{changed}");
}

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// `weft ARGS` in `dir` against `app`, with the example's secret in its environment and
/// `path` as PATH when given.
async fn weft(app: &TestApp, dir: &Path, args: &[&str], path: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(WEFT);
    command
        .args(args)
        .current_dir(dir)
        .env("WEFT_API_URL", &app.url)
        .env("WEFT_TOKEN", ADMIN)
        .env("HELLO_SECRET", SECRET);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.output().await.expect("run weft")
}

/// `weft publish --json` of the example: its output and what it printed.
async fn weft_publish_example(app: &TestApp) -> (Output, Value) {
    let output = weft(app, &example_dir(), &["publish", "--json"], None).await;
    let printed = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| json!(format!("{}", String::from_utf8_lossy(&output.stderr))));
    (output, printed)
}

#[tokio::test]
async fn weft_publish_and_check_bundle_a_gitbook_project_as_gitbooks_cli_does() {
    let app = app().await;
    let check = weft(&app, &example_dir(), &["check", "--json"], None).await;
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let checked: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(
        (&checked["name"], &checked["module"]["language"], &checked["module"]["snapshot"]),
        (&json!("gitbook-hello"), &json!("javascript"), &json!(true)),
        "{checked}"
    );

    let (output, published) = weft_publish_example(&app).await;
    assert!(output.status.success(), "{published}");
    assert_eq!(published["version"], 1, "{published}");
    let module = &published["integration"]["module"];
    assert_eq!((&module["language"], &module["snapshot"]), (&json!("javascript"), &json!(true)), "{published}");
    let installation = app.install("gitbook-hello", "acme").await;
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();
    check_example_fetch(&app, endpoint, installation["id"].as_str().unwrap()).await;

    // Without Node.js, or without the project's npm packages, the author is told what to do.
    let no_node = tempfile::tempdir().unwrap();
    let output = weft(&app, &example_dir(), &["publish"], Some(no_node.path().to_str().unwrap())).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("`node` is not on PATH"), "{stderr}");
    let bare = tempfile::tempdir().unwrap();
    std::fs::copy(example_dir().join("gitbook-manifest.yaml"), bare.path().join("gitbook-manifest.yaml")).unwrap();
    let output = weft(&app, bare.path(), &["publish"], None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("cannot find the npm package"), "{stderr}");
}

/// A Workers-style module as GitBook's dispatcher calls it, without @gitbook/runtime: the
/// route is the last segment of a fetch event's path; `body` is the route's statements.
fn module(routes: &str) -> String {
    format!(
        r#"
export default {{
  async fetch(request, env, ctx) {{
    const form = await request.formData();
    const event = JSON.parse(form.get('event'));
    if (event.type !== 'fetch') return new Response('OK');
    const url = new URL(event.request.url);
    const route = url.pathname.split('/').pop();
    const target = url.searchParams.get('url');
    {routes}
    return new Response('no route ' + route, {{ status: 404 }});
  }}
}};
"#
    )
}

#[tokio::test]
async fn a_bundle_is_refused_at_publish_naming_its_error_and_line() {
    let app = app().await;
    let cases = [
        ("syntax", "export default {\n  fetch() {\n    return 1 +;\n  }\n};\n", "syntax_error", "line 3"),
        (
            "throws",
            "const x = 1;\nthrow new Error('broken at load');\nexport default {};\n",
            "script_error",
            "broken at load",
        ),
        (
            "node-import",
            "import fs from 'node:fs';\nexport default { fetch() { return fs; } };\n",
            "unsupported_import",
            "node:fs",
        ),
        (
            "cloudflare-import",
            "import { connect } from 'cloudflare:sockets';\nexport default { fetch() { return connect; } };\n",
            "unsupported_import",
            "cloudflare:sockets",
        ),
    ];
    for (name, script, kind, expected) in cases {
        let (status, answer) = publish_script(&app, name, script, json!({})).await;
        assert_eq!(status, 400, "{name}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("script ({kind}): ")) && message.contains(expected), "{name}: {message}");
        assert_eq!(app.call("GET", &format!("/v1/integrations/{name}"), None).await.0, 404, "{name}");
    }
    // The line of an error thrown at load.
    let (_, answer) = publish_script(&app, "throws", cases[1].1, json!({})).await;
    assert!(answer["error"]["message"].as_str().unwrap().contains("line 2"), "{answer}");

    // GitBook's first runtime is not what weft runs: the field is named.
    let (status, answer) = publish_script(&app, "old", &module(""), json!({"runtime": "v1"})).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().starts_with("runtime: `v1`"), "{answer}");

    // A 20 MB bundle.
    let huge = format!("{}\n// {}\n", module(""), "x".repeat(20 << 20));
    let (status, answer) = publish_script(&app, "huge", &huge, json!({})).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("script (too_large)") && message.contains("bytes"), "{message}");
    assert_eq!(app.call("GET", "/v1/integrations/huge", None).await.0, 404);
}

#[tokio::test]
async fn each_hostile_script_fails_alone_with_its_kind_while_a_healthy_integration_answers() {
    let app = spawn_app_with(|config| {
        config.limits.deadline = Duration::from_millis(1000);
        config.limits.memory_bytes = 64 << 20;
    })
    .await;
    app.create_org("acme").await;
    let healthy =
        install_script(&app, "healthy", &module("if (route === 'ok') return new Response('ok');"), json!({})).await;
    let hostile = module(
        r#"
    if (route === 'loop') { while (true) {} }
    if (route === 'memory') { const kept = []; while (true) kept.push(new Uint8Array(8 << 20).fill(kept.length)); }
    if (route === 'recursion') { const f = (n) => f(n + 1) + 1; return new Response(String(f(0))); }
    if (route === 'never') { await new Promise(() => {}); }
    if (route === 'fetch') {
      try {
        const upstream = await fetch(target);
        return new Response('reached ' + upstream.status);
      } catch (error) {
        return new Response('refused: ' + error.message, { status: 502 });
      }
    }
    if (route === 'pollute') { Object.prototype.polluted = 'yes'; globalThis.count = (globalThis.count || 0) + 1; return new Response('polluted'); }
    if (route === 'check') { return Response.json({ polluted: ({}).polluted ?? null, count: globalThis.count ?? null }); }
"#,
    );
    // Its connect-src lists every host it tries: only the address rules refuse them.
    let csp = json!({"contentSecurityPolicy": "connect-src 127.0.0.1 169.254.169.254 localhost"});
    let endpoint = install_script(&app, "hostile", &hostile, csp).await;

    let healthy_answers = || async {
        let response = app.client.get(format!("{healthy}/ok")).send().await.unwrap();
        assert_eq!(response.status(), 200, "the healthy integration stopped answering");
    };
    // Each failure: the status and the kind in the answer and in the events log.
    // (route, HTTP status, part of the answer's message, the events log's error kind)
    let cases = [
        ("loop", 504, "timeout", "timeout"),
        ("memory", 500, "memory_limit", "memory_limit"),
        // Nothing left to run can settle it: the engine says so at once, without waiting
        // for the deadline.
        ("never", 500, "never settled", "handler_error"),
        ("recursion", 500, "stack_overflow", "stack_overflow"),
    ];
    for (i, (route, status, said, kind)) in cases.into_iter().enumerate() {
        let attack = tokio::spawn({
            let (client, url) = (app.client.clone(), format!("{endpoint}/{route}"));
            async move { client.get(url).send().await.unwrap() }
        });
        let mut answered = 0;
        while !attack.is_finished() || answered == 0 {
            healthy_answers().await;
            answered += 1;
        }
        let response = attack.await.unwrap();
        let answered = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(answered, status, "{route}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(said), "{route}: {body}");
        let events = app.wait_for_events("hostile", i + 1).await;
        assert_eq!(
            (events[0]["status"].as_str(), events[0]["error"]["kind"].as_str()),
            (Some("failed"), Some(kind)),
            "{route}: {}",
            events[0]
        );
    }

    // The address rules hold for JavaScript's fetch: loopback (not weft's own origin),
    // the metadata address, and a name that resolves to loopback.
    let server_port: u16 = app.url.rsplit(':').next().unwrap().parse().unwrap();
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = elsewhere.local_addr().unwrap().port();
    assert_ne!(other_port, server_port);
    for (target, said) in [
        (format!("http://127.0.0.1:{other_port}/"), "not a public address"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "not a public address"),
        (format!("http://localhost:{other_port}/"), "non-public"),
    ] {
        let response = app.client.get(format!("{endpoint}/fetch")).query(&[("url", &target)]).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 502, "{target}: {text}");
        assert!(text.starts_with("refused: ") && text.contains(said), "{target}: {text}");
        healthy_answers().await;
    }
    // weft's own origin is reachable from the same script.
    let own = app.client.get(format!("{endpoint}/fetch")).query(&[("url", format!("{}/healthz", app.url))]);
    assert_eq!(own.send().await.unwrap().text().await.unwrap(), "reached 200");

    // One event's global mutations are never seen by the next.
    assert_eq!(app.client.get(format!("{endpoint}/pollute")).send().await.unwrap().text().await.unwrap(), "polluted");
    let check: Value = app.client.get(format!("{endpoint}/check")).send().await.unwrap().json().await.unwrap();
    assert_eq!(check, json!({"polluted": null, "count": null}));

    // And a WebAssembly integration on the same server is untouched by all of it.
    app.publish("hello", "acme", hello_wasm()).await;
    let hello = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    assert_eq!(app.client.get(hello).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_javascript_version_whose_compiled_code_is_lost_is_compiled_again_from_its_stored_snapshot() {
    let app = app().await;
    let script = module("if (route === 'hi') return new Response('hi after a restart');");
    let endpoint = install_script(&app, "again", &script, json!({})).await;
    let endpoint = endpoint.trim_start_matches(&app.url).to_owned();
    let database_url = app.database_url.clone();
    let _dir = app.stop().await;
    // No artifact file, no stored artifact: only the stored snapshot is left to run.
    let artifacts = format!("{}.artifacts", database_url.strip_prefix("sqlite://").unwrap());
    std::fs::remove_dir_all(&artifacts).unwrap();
    let store = weft::store::Store::connect(&database_url).await.unwrap();
    let again = store.integration("again").await.unwrap().unwrap();
    store.set_module_artifact(&again.id, 1, b"made by another engine").await.unwrap();
    let source = store.module_source(&again.id, 1).await.unwrap();
    assert_eq!(source.as_deref(), Some(script.as_bytes()), "the bundle is kept beside its snapshot");
    drop(store);

    let url = database_url.clone();
    let app = spawn_app_with(move |config| config.database_url = url).await;
    let response = app.client.get(format!("{}{endpoint}/hi", app.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hi after a restart");
}

#[tokio::test]
async fn weft_check_and_publish_take_a_bundle_named_by_weft_toml() {
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = "name = \"bundled\"\ntitle = \"Bundled\"\ndescription = \"A bundle.\"\norganization = \"acme\"\n\
                    script = \"dist/bundle.js\"\n";
    std::fs::write(dir.path().join("weft.toml"), manifest).unwrap();
    std::fs::create_dir(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/bundle.js"), "export default {\n  fetch() {\n    return 1 +;\n  }\n};\n")
        .unwrap();
    let output = weft(&app, dir.path(), &["check"], None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("syntax_error") && stderr.contains("line 3"), "{stderr}");

    std::fs::write(dir.path().join("dist/bundle.js"), module("if (route === 'b') return new Response('bundled');"))
        .unwrap();
    let output = weft(&app, dir.path(), &["check", "--json"], None).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let checked: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(checked["module"]["language"], "javascript", "{checked}");
    let output = weft(&app, dir.path(), &["publish"], None).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let endpoint = app.install("bundled", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    assert_eq!(app.client.get(format!("{endpoint}/b")).send().await.unwrap().text().await.unwrap(), "bundled");
}
