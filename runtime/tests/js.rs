//! JavaScript integrations through the real runtime: a bundle compiled by
//! `Runtime::compile_script` (the committed QuickJS engine, snapshotted after loading the
//! bundle), events delivered as GitBook's dispatcher delivers them, the web platform the
//! prelude provides, and hostile scripts.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use weft_runtime::{
    EventParts, FailureKind, HostError, HostServices, Input, Limits, LogLevel, OutboundRequest, OutboundResponse,
    Outcome, PreparedModule, RunReport, Runtime, RuntimeConfig, ScriptErrorKind,
};

static RUNTIME: LazyLock<Runtime> =
    LazyLock::new(|| Runtime::new(RuntimeConfig { max_instances: 8, ..RuntimeConfig::default() }).unwrap());

/// An integration written with plain JavaScript, shaped as `createIntegration`'s output:
/// the default export's `fetch` reads the dispatcher's form data.
const SCRIPT: &str = r#"
const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
console.log('loaded at the top level');
const routes = {
  async '/echo'(req, env) {
    const url = new URL(req.url);
    const body = await req.arrayBuffer();
    return Response.json({
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      digest: hex(await crypto.subtle.digest('SHA-256', body)),
      sha1: hex(await crypto.subtle.digest({ name: 'SHA-1' }, new TextEncoder().encode('abc'))),
      installation: env.installation && env.installation.id,
      header: req.headers.get('x-test'),
    }, { status: 201, headers: { 'x-route': 'echo' } });
  },
  async '/hmac'(req) {
    const enc = new TextEncoder();
    const key = await crypto.subtle.importKey('raw', enc.encode('secret'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    const signature = await crypto.subtle.sign('HMAC', key, enc.encode(await req.text()));
    const good = await crypto.subtle.verify('HMAC', key, signature, enc.encode('payload'));
    const bad = await crypto.subtle.verify('HMAC', key, signature, enc.encode('tampered'));
    const same = crypto.subtle.timingSafeEqual(enc.encode('abc'), enc.encode('abc'));
    return Response.json({ signature: hex(signature), good, bad, same });
  },
  '/random'() {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    return Response.json({ uuid: crypto.randomUUID(), bytes: hex(bytes), math: Math.random(), now: Date.now() });
  },
  '/log'() {
    console.log('hello %s', 'world', { a: 1 });
    console.warn('careful');
    console.error(new Error('shown with its stack'));
    return new Response('logged');
  },
  async '/timers'(req, env, ctx) {
    const order = [];
    setTimeout(() => order.push('timer 20'), 20);
    const cancelled = setTimeout(() => order.push('cancelled'), 5);
    clearTimeout(cancelled);
    setTimeout(() => order.push('timer 10'), 10);
    queueMicrotask(() => order.push('microtask'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    ctx.waitUntil(new Promise((resolve) => setTimeout(() => { console.log('waitUntil ran'); resolve(); }, 100)));
    return Response.json(order);
  },
  '/redirect'() { return Response.redirect('https://example.com/next?a=1', 301); },
  '/pollute'() {
    Object.prototype.polluted = 'yes';
    globalThis.leaked = 1;
    Array.prototype.push = () => 0;
    return new Response('polluted');
  },
  '/check'() {
    const list = [];
    list.push(1);
    return Response.json({ polluted: {}.polluted === undefined ? null : {}.polluted, leaked: globalThis.leaked === undefined ? null : 1, pushed: list.length });
  },
  async '/fetch'() {
    const r = await fetch('https://api.test/data?x=1', { method: 'POST', body: JSON.stringify({ a: 1 }), headers: { 'content-type': 'application/json' } });
    return new Response(await r.text(), { status: r.status, headers: { 'x-upstream': r.headers.get('x-upstream') } });
  },
  async '/fetch-refused'() {
    try { await fetch('http://169.254.169.254/latest/meta-data'); return new Response('reached'); }
    catch (e) { return new Response(e.message, { status: 502 }); }
  },
  '/web'() {
    const url = new URL('../b/c?x=1&y=two%20words#frag', 'https://Example.COM:443/a/d/e');
    url.searchParams.append('z', 'a b&c');
    const params = new URLSearchParams({ q: 'x y', n: '1' });
    const ctrl = new AbortController();
    let aborted = false;
    ctrl.signal.addEventListener('abort', () => { aborted = true; });
    ctrl.abort();
    const cloned = structuredClone({ d: new Date(0), m: new Map([[1, { x: [1, 2] }]]), bytes: new Uint8Array([1, 2]) });
    const headers = new Headers({ 'X-A': '1' });
    headers.append('x-a', '2');
    return Response.json({
      href: url.href, host: url.host, path: url.pathname, search: url.search, hash: url.hash, origin: url.origin,
      params: params.toString(),
      text: new TextDecoder().decode(new TextEncoder().encode('héllo ✓')),
      b64: btoa('hello'), unb64: atob('aGVsbG8='),
      aborted, reason: ctrl.signal.reason.name,
      cloned: [cloned.d.getTime(), cloned.m.get(1).x[1], cloned.bytes[1]],
      header: headers.get('x-a'),
      blob: new Blob(['ab', new Uint8Array([99])], { type: 'Text/Plain' }).size,
    });
  },
  '/stray'() { Promise.reject(new Error('nobody handles this')); return new Response('answered anyway'); },
  '/loop'() { while (true) {} },
  '/oom'() { const all = []; for (;;) all.push(new Array(1 << 16).fill(all.length)); },
  '/recurse'() { const down = (n) => down(n + 1) + 1; return new Response(String(down(0))); },
  '/never'() { return new Promise(() => {}); },
  '/throw'() { throw new TypeError('thrown on purpose'); },
  async '/reject'() { await null; throw new Error('rejected on purpose'); },
};

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname !== '/v1') return new Response('wrong version', { status: 400 });
    const form = await request.formData();
    const event = JSON.parse(form.get('event'));
    const environment = JSON.parse(form.get('environment'));
    if (event.type === 'fetch') {
      const req = new Request(event.request.url, {
        method: event.request.method,
        headers: new Headers(event.request.headers),
        body: form.get('fetch-body'),
      });
      const path = new URL(req.url).pathname;
      const route = routes[path.slice(path.indexOf('/fetch/') + 6)];
      if (!route) return new Response('no route', { status: 404 });
      return route(req, environment, ctx);
    }
    if (event.type === 'installation_setup') return new Response('OK');
    if (event.type === 'stray') { Promise.reject(new Error('nobody handles this')); return new Response('OK'); }
    if (event.type === 'refused') return new Response(JSON.stringify({ error: { message: 'not today' } }), { status: 422 });
    throw new Error(`unhandled event ${event.type}`);
  },
};
"#;

/// Answers `https://api.test/data` and refuses everything else, as the server's outbound
/// policy does for private addresses; records what it was asked.
#[derive(Default)]
struct Services {
    requests: Mutex<Vec<OutboundRequest>>,
}

#[weft_runtime::async_trait]
impl HostServices for Services {
    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, HostError> {
        self.requests.lock().unwrap().push(request.clone());
        if !request.url.starts_with("https://api.test/") {
            return Err(HostError::new("not_allowed", format!("{} is a private address", request.url)));
        }
        let headers = BTreeMap::from([("x-upstream".to_owned(), "yes".to_owned())]);
        let mut body = format!("{} {} ", request.method, request.url).into_bytes();
        body.extend_from_slice(&request.body);
        Ok(OutboundResponse { status: 202, headers, body })
    }
}

static MODULE: LazyLock<PreparedModule> =
    LazyLock::new(|| RUNTIME.compile_script(SCRIPT.as_bytes()).expect("the script compiles").module);

fn fetch_event(method: &str, path_and_query: &str) -> Value {
    json!({
        "type": "fetch",
        "eventId": "evt_1",
        "installationId": "inst_1",
        "request": {
            "method": method,
            "url": format!("https://weft.test/v1/integrations/demo/installations/inst_1/fetch{path_and_query}"),
            "path": path_and_query.split('?').next().unwrap(),
            "headers": {"x-test": "header value", "content-type": "application/octet-stream"},
        },
    })
}

const ENVIRONMENT: &str = r#"{"apiEndpoint":"https://weft.test","installation":{"id":"inst_1","configuration":{}}}"#;

async fn run_on(module: &PreparedModule, event: &Value, body: &[u8], limits: Limits, host: Arc<Services>) -> RunReport {
    let event = serde_json::to_vec(event).unwrap();
    let parts = EventParts { event: &event, environment: ENVIRONMENT.as_bytes(), body };
    RUNTIME.run_input(module, Input::Parts(parts), &limits, host, None).await.expect("a slot is free")
}

async fn run(event: &Value, body: &[u8]) -> RunReport {
    run_on(&MODULE, event, body, Limits::default(), Arc::default()).await
}

async fn fetch(path_and_query: &str, body: &[u8]) -> (u16, BTreeMap<String, String>, Vec<u8>, RunReport) {
    let report = run(&fetch_event("post", path_and_query), body).await;
    match &report.result {
        Ok(Outcome::Response(response)) => (response.status, response.headers.clone(), response.body.clone(), report),
        other => panic!("{path_and_query}: expected a response, got {other:?}; logs {:?}", report.logs),
    }
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn messages(report: &RunReport) -> Vec<(LogLevel, String)> {
    report.logs.iter().map(|line| (line.level, line.message.clone())).collect()
}

#[tokio::test]
async fn a_fetch_event_sees_path_query_body_and_environment() {
    let (status, headers, body, _) = fetch("/echo?a=1&b=two", b"\x00\xffbinary body").await;
    assert_eq!(status, 201);
    assert_eq!(headers.get("x-route").map(String::as_str), Some("echo"));
    assert_eq!(headers.get("content-type").map(String::as_str), Some("application/json"));
    let expected_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"\x00\xffbinary body"));
    assert_eq!(
        json_body(&body),
        json!({
            "method": "POST", "path": "/v1/integrations/demo/installations/inst_1/fetch/echo",
            "query": {"a": "1", "b": "two"}, "digest": expected_digest,
            "sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
            "installation": "inst_1", "header": "header value",
        })
    );
}

#[tokio::test]
async fn hmac_signs_and_verifies() {
    let (_, _, body, _) = fetch("/hmac", b"payload").await;
    assert_eq!(
        json_body(&body),
        json!({
            // HMAC-SHA256("secret", "payload")
            "signature": "b82fcb791acec57859b989b430a826488ce2e479fdf92326bd0a2e8375a42ba4",
            "good": true, "bad": false, "same": true,
        })
    );
}

#[tokio::test]
async fn randomness_and_time_come_from_the_host_in_each_event() {
    let (_, _, first, _) = fetch("/random", b"").await;
    let (_, _, second, _) = fetch("/random", b"").await;
    let (first, second) = (json_body(&first), json_body(&second));
    for field in ["uuid", "bytes", "math"] {
        assert_ne!(first[field], second[field], "{field} repeats across events");
    }
    let uuid = first["uuid"].as_str().unwrap();
    assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    assert!((now - first["now"].as_f64().unwrap()).abs() < 60_000.0, "Date.now() is not the host's clock");
}

#[tokio::test]
async fn console_goes_to_the_event_logs() {
    let (_, _, body, report) = fetch("/log", b"").await;
    assert_eq!(body, b"logged");
    let logs = messages(&report);
    assert!(logs.contains(&(LogLevel::Info, "hello world { a: 1 }".to_owned())), "{logs:?}");
    assert!(logs.contains(&(LogLevel::Warn, "careful".to_owned())), "{logs:?}");
    assert!(
        logs.iter().any(|(level, m)| *level == LogLevel::Error && m.starts_with("Error: shown with its stack\n")),
        "{logs:?}"
    );
    // The top-level line was logged at publish, not in each event.
    assert!(!logs.iter().any(|(_, m)| m.contains("loaded at the top level")), "{logs:?}");
}

#[tokio::test]
async fn top_level_logs_are_returned_by_compile_script() {
    let compiled = RUNTIME.compile_script(SCRIPT.as_bytes()).unwrap();
    assert_eq!(compiled.logs, vec![(LogLevel::Info, "loaded at the top level".to_owned())]);
    // The stored bytes compile to the same, already initialised module.
    let again = RUNTIME.compile(&compiled.wasm).unwrap();
    assert!(again.snapshot().taken());
    assert_eq!(again.abi_version(), 2);
    let event = serde_json::to_vec(&fetch_event("get", "/redirect")).unwrap();
    let parts = EventParts { event: &event, environment: b"{}", body: b"" };
    let report =
        RUNTIME.run_input(&again, Input::Parts(parts), &Limits::default(), Arc::new(Services::default()), None).await;
    assert!(matches!(report.unwrap().result, Ok(Outcome::Response(r)) if r.status == 301));
}

#[tokio::test]
async fn timers_microtasks_and_wait_until_run_within_the_event() {
    let (_, _, body, report) = fetch("/timers", b"").await;
    assert_eq!(json_body(&body), json!(["microtask", "timer 10", "timer 20"]));
    assert!(messages(&report).contains(&(LogLevel::Info, "waitUntil ran".to_owned())), "{:?}", report.logs);
}

#[tokio::test]
async fn response_redirect_sets_status_and_location() {
    let (status, headers, body, _) = fetch("/redirect", b"").await;
    assert_eq!((status, headers.get("location").map(String::as_str)), (301, Some("https://example.com/next?a=1")));
    assert!(body.is_empty());
}

#[tokio::test]
async fn the_web_platform_behaves_as_in_workers() {
    let (_, _, body, _) = fetch("/web", b"").await;
    assert_eq!(
        json_body(&body),
        json!({
            // Appending to searchParams serialises the whole query as form data, as in browsers.
            "href": "https://example.com/a/b/c?x=1&y=two+words&z=a+b%26c#frag",
            "host": "example.com", "path": "/a/b/c", "search": "?x=1&y=two+words&z=a+b%26c", "hash": "#frag",
            "origin": "https://example.com",
            "params": "q=x+y&n=1",
            "text": "héllo ✓", "b64": "aGVsbG8=", "unb64": "hello",
            "aborted": true, "reason": "AbortError",
            "cloned": [0, 2, 2],
            "header": "1, 2",
            "blob": 3,
        })
    );
}

#[tokio::test]
async fn fetch_goes_through_the_host_and_its_refusals() {
    let host = Arc::new(Services::default());
    let report = run_on(&MODULE, &fetch_event("get", "/fetch"), b"", Limits::default(), host.clone()).await;
    let Ok(Outcome::Response(response)) = &report.result else { panic!("{:?}", report.result) };
    assert_eq!(response.status, 202);
    assert_eq!(response.headers.get("x-upstream").map(String::as_str), Some("yes"));
    assert_eq!(response.body, br#"POST https://api.test/data?x=1 {"a":1}"#);
    let sent = host.requests.lock().unwrap()[0].clone();
    assert_eq!(sent.headers.get("content-type").map(String::as_str), Some("application/json"));

    let report = run_on(&MODULE, &fetch_event("get", "/fetch-refused"), b"", Limits::default(), host.clone()).await;
    let Ok(Outcome::Response(response)) = &report.result else { panic!("{:?}", report.result) };
    assert_eq!(response.status, 502);
    let message = String::from_utf8_lossy(&response.body);
    assert!(message.contains("169.254.169.254") && message.contains("not_allowed"), "{message}");
}

#[tokio::test]
async fn other_events_succeed_on_2xx_and_fail_otherwise() {
    let setup = json!({"type": "installation_setup", "eventId": "e", "installationId": "inst_1"});
    assert_eq!(run(&setup, b"").await.result, Ok(Outcome::None));
    let refused = json!({"type": "refused", "eventId": "e"});
    assert_eq!(run(&refused, b"").await.result, Ok(Outcome::Error { code: 422, message: "not today".into() }));
    let unknown = json!({"type": "space_view", "eventId": "e"});
    let report = run(&unknown, b"").await;
    assert_eq!(report.result, Ok(Outcome::Error { code: 500, message: "unhandled event space_view".into() }));
    assert!(
        messages(&report).iter().any(|(level, m)| *level == LogLevel::Error && m.contains("at ")),
        "{:?}",
        report.logs
    );
}

#[tokio::test]
async fn thrown_errors_and_rejections_fail_the_event_with_the_message() {
    let report = run(&fetch_event("get", "/throw"), b"").await;
    assert_eq!(report.result, Ok(Outcome::Error { code: 500, message: "TypeError: thrown on purpose".into() }));
    let report = run(&fetch_event("get", "/reject"), b"").await;
    assert_eq!(report.result, Ok(Outcome::Error { code: 500, message: "rejected on purpose".into() }));
    assert!(
        messages(&report).iter().any(|(_, m)| m.contains("rejected on purpose") && m.contains("integration.js")),
        "the stack names the bundle: {:?}",
        report.logs
    );
}

#[tokio::test]
async fn unhandled_rejections_are_logged_and_fail_events_other_than_fetch() {
    let (status, _, body, report) = fetch("/stray", b"").await;
    assert_eq!((status, body.as_slice()), (200, &b"answered anyway"[..]));
    let uncaught = |report: &RunReport| {
        messages(report).iter().any(|(level, m)| {
            *level == LogLevel::Error && m.starts_with("Uncaught (in promise) Error: nobody handles this\n")
        })
    };
    assert!(uncaught(&report), "{:?}", report.logs);
    let report = run(&json!({"type": "stray", "eventId": "e"}), b"").await;
    assert_eq!(
        report.result,
        Ok(Outcome::Error { code: 500, message: "unhandled rejection: nobody handles this".into() })
    );
    assert!(uncaught(&report), "{:?}", report.logs);
}

#[tokio::test]
async fn one_events_global_mutations_are_not_seen_by_the_next() {
    let (_, _, body, _) = fetch("/pollute", b"").await;
    assert_eq!(body, b"polluted");
    let (_, _, body, _) = fetch("/check", b"").await;
    assert_eq!(json_body(&body), json!({"polluted": null, "leaked": null, "pushed": 1}));
}

#[tokio::test]
async fn an_infinite_loop_ends_as_timeout() {
    let limits = Limits { deadline: Duration::from_millis(300), ..Limits::default() };
    let report = run_on(&MODULE, &fetch_event("get", "/loop"), b"", limits, Arc::default()).await;
    assert_eq!(report.result.unwrap_err().kind, FailureKind::Timeout);
    // The integration keeps answering.
    assert_eq!(fetch("/redirect", b"").await.0, 301);
}

#[tokio::test]
async fn growing_past_the_memory_limit_ends_as_memory_limit() {
    let limits = Limits { memory_bytes: 32 << 20, ..Limits::default() };
    let report = run_on(&MODULE, &fetch_event("get", "/oom"), b"", limits, Arc::default()).await;
    assert_eq!(report.result.unwrap_err().kind, FailureKind::MemoryLimit);
    assert_eq!(fetch("/redirect", b"").await.0, 301);
}

#[tokio::test]
async fn runaway_recursion_is_a_range_error_or_a_clean_trap() {
    let report = run(&fetch_event("get", "/recurse"), b"").await;
    match report.result {
        Ok(Outcome::Error { code: 500, message }) => assert!(message.contains("RangeError"), "{message}"),
        Err(failure) => assert!(matches!(failure.kind, FailureKind::StackOverflow | FailureKind::Trap), "{failure}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fetch("/redirect", b"").await.0, 301);
}

#[tokio::test]
async fn a_promise_that_never_settles_fails_cleanly() {
    let report = run(&fetch_event("get", "/never"), b"").await;
    let Ok(Outcome::Error { code: 500, message }) = report.result else { panic!("{:?}", report.result) };
    assert!(message.contains("never settled"), "{message}");
}

#[tokio::test]
async fn fetch_listeners_work_too() {
    let script = r#"
        addEventListener('fetch', (event) => {
          event.respondWith((async () => {
            const form = await event.request.formData();
            const e = JSON.parse(form.get('event'));
            return new Response(`listener saw ${e.type} ${form.get('fetch-body')}`);
          })());
        });
    "#;
    let module = RUNTIME.compile_script(script.as_bytes()).unwrap().module;
    let report = run_on(&module, &fetch_event("post", "/x"), b"body", Limits::default(), Arc::default()).await;
    let Ok(Outcome::Response(response)) = report.result else { panic!("{:?}", report.result) };
    assert_eq!(response.body, b"listener saw fetch body");
}

fn refused(script: &[u8]) -> weft_runtime::ScriptError {
    RUNTIME.compile_script(script).expect_err("the script is refused")
}

#[tokio::test]
async fn bad_bundles_are_refused_with_their_kind_message_and_line() {
    let error = refused(b"export default {\n  fetch() {\n    return 1 +;\n  }\n};\n");
    assert_eq!((error.kind, error.line), (ScriptErrorKind::Syntax, Some(3)), "{error}");
    assert!(error.message.contains("SyntaxError"), "{error}");

    let error = refused(b"const a = 1;\n\nthrow new Error('broken at load');\nexport default { fetch() {} };\n");
    assert_eq!((error.kind, error.line), (ScriptErrorKind::Threw, Some(3)), "{error}");
    assert!(error.message.contains("broken at load"), "{error}");

    for specifier in ["node:fs", "cloudflare:sockets", "lodash"] {
        let script =
            format!("// header\nimport x from '{specifier}';\nexport default {{ fetch() {{ return x; }} }};\n");
        let error = refused(script.as_bytes());
        assert_eq!((error.kind, error.line), (ScriptErrorKind::UnsupportedImport, Some(2)), "{error}");
        assert!(error.message.contains(&format!("'{specifier}'")), "{error}");
    }

    let error = refused(b"export const notAHandler = 1;\n");
    assert_eq!(error.kind, ScriptErrorKind::NoHandler, "{error}");

    let error = refused(b"export default { fetch() {} };\nconst seed = crypto.randomUUID();\n");
    assert_eq!((error.kind, error.line), (ScriptErrorKind::Threw, Some(2)), "{error}");
    assert!(error.message.contains("random values are not available while the script loads"), "{error}");

    let error = refused(b"while (true) {}\nexport default { fetch() {} };\n");
    assert_eq!(error.kind, ScriptErrorKind::Limit, "{error}");
}

#[tokio::test]
async fn a_20_mb_bundle_is_refused_as_too_large() {
    let mut script = b"export default { fetch() { return new Response('x'); } };\n//".to_vec();
    script.resize(20 << 20, b'x');
    let error = refused(&script);
    assert_eq!(error.kind, ScriptErrorKind::TooLarge);
    assert!(error.message.contains(&weft_runtime::MAX_SCRIPT_BYTES.to_string()), "{error}");
}
