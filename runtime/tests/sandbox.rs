//! The runtime against small hand-written guests: the ABI, limits and failure kinds.

use std::sync::Arc;
use std::time::Duration;

use weft_runtime::{
    Error, FailureKind, Limits, LogLevel, NoHostServices, Outcome, Runtime, RuntimeConfig, ValidationError,
};

const INVOCATION: &[u8] = br#"{"abi":1,"event":{"eventId":"e1","type":"task","task":{}},"environment":{}}"#;

/// A guest whose `weft_handle` runs `body`; `extra` adds imports, data and functions.
fn guest(extra: &str, body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            (import "weft" "call" (func $call (param i32 i32) (result i64)))
            {extra}
            (memory (export "memory") 1)
            (func (export "weft_alloc") (param i32) (result i32) (i32.const 4096))
            (func (export "weft_handle") (param i32 i32) (result i64) {body}))"#
    ))
    .expect("test guest is valid WAT")
}

/// `(ptr << 32) | len` as WAT.
fn packed(ptr: u32, len: usize) -> String {
    format!("(i64.or (i64.shl (i64.const {ptr}) (i64.const 32)) (i64.const {len}))")
}

/// A data segment holding `text` at `ptr`, escaped for WAT.
fn data(ptr: u32, text: &str) -> String {
    format!("(data (i32.const {ptr}) \"{}\")", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

fn returning(outcome: &str) -> Vec<u8> {
    guest(&data(0, outcome), &packed(0, outcome.len()))
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig { max_instances: 8, ..RuntimeConfig::default() }).unwrap()
}

async fn run(runtime: &Runtime, wasm: &[u8], limits: Limits) -> weft_runtime::RunReport {
    let module = runtime.compile(wasm).expect("module validates");
    runtime.run(&module, INVOCATION, &limits, Arc::new(NoHostServices)).await.expect("a slot is free")
}

fn failure_kind(report: &weft_runtime::RunReport) -> FailureKind {
    report.result.as_ref().expect_err("the invocation should fail").kind
}

#[tokio::test]
async fn a_guest_response_is_decoded() {
    let report = run(&runtime(), &returning(r#"{"response":{"status":201,"body":"aGk="}}"#), Limits::default()).await;
    let Ok(Outcome::Response(response)) = report.result else { panic!("expected a response: {:?}", report.result) };
    assert_eq!((response.status, response.body.as_slice()), (201, &b"hi"[..]));
}

#[tokio::test]
async fn the_log_op_and_stdout_are_captured_in_order() {
    let log = r#"{"op":"log","level":"warn","message":"from the log op"}"#;
    let extra = format!(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
           {} {} {}
           (data (i32.const 200) "\2c\01\00\00\07\00\00\00")"#,
        data(0, "{}"),
        data(100, log),
        data(300, "stdout\n"),
    );
    let body = format!(
        "(drop (call $call (i32.const 100) (i32.const {}))) (drop (call $fd_write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 400))) {}",
        log.len(),
        packed(0, 2)
    );
    let report = run(&runtime(), &guest(&extra, &body), Limits::default()).await;
    assert_eq!(report.result, Ok(Outcome::None));
    let lines: Vec<_> = report.logs.iter().map(|l| (l.level, l.message.as_str())).collect();
    assert_eq!(lines, [(LogLevel::Warn, "from the log op"), (LogLevel::Info, "stdout")]);
}

#[tokio::test]
async fn an_infinite_loop_ends_with_timeout() {
    let limits = Limits { deadline: Duration::from_millis(100), ..Limits::default() };
    let report = run(&runtime(), &guest("", "(loop $l (br $l)) (unreachable)"), limits).await;
    assert_eq!(failure_kind(&report), FailureKind::Timeout);
}

#[tokio::test]
async fn growing_memory_past_the_limit_ends_with_memory_limit() {
    let body = "(block $refused (loop $grow (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $grow))) (unreachable)";
    let limits = Limits { memory_bytes: 4 << 20, ..Limits::default() };
    let report = run(&runtime(), &guest("", body), limits).await;
    assert_eq!(failure_kind(&report), FailureKind::MemoryLimit);
}

#[tokio::test]
async fn deep_recursion_ends_with_stack_overflow() {
    let extra = "(func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))";
    let report =
        run(&runtime(), &guest(extra, "(drop (call $down (i32.const 0))) (i64.const 0)"), Limits::default()).await;
    assert_eq!(failure_kind(&report), FailureKind::StackOverflow);
}

#[tokio::test]
async fn outcomes_outside_memory_or_not_json_are_bad_output() {
    let runtime = runtime();
    let out_of_bounds = guest("", &packed(65_000, 10_000));
    assert_eq!(failure_kind(&run(&runtime, &out_of_bounds, Limits::default()).await), FailureKind::BadOutput);
    let not_json = returning("hello");
    assert_eq!(failure_kind(&run(&runtime, &not_json, Limits::default()).await), FailureKind::BadOutput);
}

#[tokio::test]
async fn an_oversized_outcome_is_output_too_large() {
    let limits = Limits { output_bytes: 1000, ..Limits::default() };
    let report = run(&runtime(), &guest("", &packed(0, 2000)), limits).await;
    assert_eq!(failure_kind(&report), FailureKind::OutputTooLarge);
}

#[tokio::test]
async fn proc_exit_ends_with_exit() {
    let extra = r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#;
    let report = run(&runtime(), &guest(extra, "(call $exit (i32.const 3)) (unreachable)"), Limits::default()).await;
    assert_eq!(failure_kind(&report), FailureKind::Exit);
}

#[tokio::test]
async fn a_host_call_flood_ends_with_host_call_limit() {
    let request = r#"{"op":"log","message":"x"}"#;
    let body = format!(
        "(loop $flood (drop (call $call (i32.const 0) (i32.const {}))) (br $flood)) (unreachable)",
        request.len()
    );
    let limits = Limits { host_calls: 20, ..Limits::default() };
    let report = run(&runtime(), &guest(&data(0, request), &body), limits).await;
    assert_eq!(failure_kind(&report), FailureKind::HostCallLimit);
}

#[tokio::test]
async fn a_trap_in_weft_alloc_is_a_trap() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
            (func (export "weft_alloc") (param i32) (result i32) (unreachable))
            (func (export "weft_handle") (param i32 i32) (result i64) (i64.const 0)))"#,
    )
    .unwrap();
    assert_eq!(failure_kind(&run(&runtime(), &wasm, Limits::default()).await), FailureKind::Trap);
}

#[tokio::test]
async fn a_loop_in_initialize_ends_with_timeout() {
    let extra = r#"(func (export "_initialize") (loop $l (br $l)))"#;
    let limits = Limits { deadline: Duration::from_millis(100), ..Limits::default() };
    let report = run(&runtime(), &guest(extra, "(i64.const 0)"), limits).await;
    assert_eq!(failure_kind(&report), FailureKind::Timeout);
}

#[test]
fn publish_validation_names_each_problem() {
    let runtime = runtime();
    let check = |wat: &str| runtime.compile(&wat::parse_str(wat).unwrap()).err();
    assert_eq!(runtime.compile(b"hello").err(), Some(ValidationError::NotWasm));
    assert!(matches!(runtime.compile(b"\0asm\x01\0\0\0garbage").err(), Some(ValidationError::Compile(_))));
    assert_eq!(
        check(
            r#"(module (memory (export "memory") 1) (func (export "weft_alloc") (param i32) (result i32) (i32.const 0)))"#
        ),
        Some(ValidationError::MissingExport("weft_handle"))
    );
    assert_eq!(
        check(r#"(module (func (export "weft_alloc") (param i32) (result i32) (i32.const 0)))"#),
        Some(ValidationError::MissingExport("memory"))
    );
    assert!(matches!(
        check(
            r#"(module (memory (export "memory") 1)
                (func (export "weft_alloc") (param i32) (result i32) (i32.const 0))
                (func (export "weft_handle") (param i32) (result i64) (i64.const 0)))"#
        ),
        Some(ValidationError::WrongExport { name: "weft_handle", .. })
    ));
    let forbidden = guest(r#"(import "env" "socket" (func))"#, "(i64.const 0)");
    assert_eq!(
        runtime.compile(&forbidden).err(),
        Some(ValidationError::ForbiddenImport { module: "env".into(), name: "socket".into() })
    );
    let unknown_wasi = guest(r#"(import "wasi_snapshot_preview1" "sock_open_everything" (func))"#, "(i64.const 0)");
    assert!(matches!(runtime.compile(&unknown_wasi).err(), Some(ValidationError::Link(_))));
}

#[tokio::test]
async fn a_full_pool_answers_busy_instead_of_failing() {
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            max_instances: 1,
            queue_timeout: Duration::from_millis(50),
            ..Default::default()
        })
        .unwrap(),
    );
    let module = runtime.compile(&guest("", "(loop $l (br $l)) (unreachable)")).unwrap();
    let limits = Limits { deadline: Duration::from_secs(2), ..Limits::default() };
    let busy = {
        let (runtime, module, limits) = (runtime.clone(), module.clone(), limits.clone());
        tokio::spawn(async move { runtime.run(&module, INVOCATION, &limits, Arc::new(NoHostServices)).await })
    };
    // Wait until the looping guest holds the only slot; then another event must give up.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while runtime.idle_slots() > 0 {
        assert!(std::time::Instant::now() < deadline, "the looping guest never started");
        tokio::task::yield_now().await;
    }
    let second = runtime.run(&module, INVOCATION, &limits, Arc::new(NoHostServices)).await;
    assert!(matches!(second, Err(Error::Busy { slots: 1 })), "expected Busy");
    assert_eq!(failure_kind(&busy.await.unwrap().unwrap()), FailureKind::Timeout);
}

/// Every event starts from the module's memory as compiled, whatever the previous event in
/// the same pooled slot wrote: a byte of the data image and a word of a zero page beyond it
/// (the pool resets only the pages an instance wrote, where the kernel can tell).
#[tokio::test]
async fn each_event_sees_the_memory_as_compiled_not_the_previous_events_writes() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 2)
            (data (i32.const 16) "\02\00\00\00{}")
            (data (i32.const 32) "\01\00\00\00x")
            (data (i32.const 64) "\07")
            (func (export "weft_buffer") (result i64) (i64.const 0x0000100000001000))
            (func (export "weft_reserve") (param i32) (result i32) (i32.const 0))
            (func (export "weft_run") (param i32) (result i64) (local $fresh i32)
                (local.set $fresh (i32.and
                    (i32.eq (i32.load8_u (i32.const 64)) (i32.const 7))
                    (i32.eqz (i32.load (i32.const 70000)))))
                (i32.store8 (i32.const 64) (i32.const 9))
                (i32.store (i32.const 70000) (i32.const 1))
                ;; `{}` when the memory was as compiled, else an outcome that is not JSON.
                (if (result i64) (local.get $fresh)
                    (then (i64.const 0x0000001000000006))
                    (else (i64.const 0x0000002000000005)))))"#,
    )
    .unwrap();
    let runtime = Runtime::new(RuntimeConfig { max_instances: 1, ..RuntimeConfig::default() }).unwrap();
    let module = runtime.compile(&wasm).unwrap();
    for event in 0..5 {
        let report =
            runtime.run(&module, INVOCATION, &Limits::default(), Arc::new(NoHostServices)).await.expect("a free slot");
        assert!(matches!(report.result, Ok(Outcome::None)), "event {event}: {:?}", report.result);
    }
}
