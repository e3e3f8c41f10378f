//! The runtime's real host (`weft.call` linked into wasmtime, with an in-memory
//! `HostServices`) against the host-call contract's conformance suite; the SDK's `MockHost`
//! runs the same cases (sdk-guest/src/testing.rs).
//!
//! A small driver guest sends each request through `weft.call`, copies the answer out with
//! `weft.result` and prints one stdout line per request: `@R<answer>` or `@E<-code>`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use weft_runtime::abi::conformance::{self, Answer, MemoryKv};
use weft_runtime::{
    FailureKind, HostError, HostServices, Limits, LogLevel, OutboundRequest, OutboundResponse, Runtime, RuntimeConfig,
};

/// The driver: the invocation is a list of frames `[u32 len][request bytes]`.
const DRIVER: &str = r#"(module
    (import "weft" "call" (func $call (param i32 i32) (result i64)))
    (import "weft" "result" (func $result (param i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 64)
    (data (i32.const 0) "{}")
    (global $out i32 (i32.const 1048576))
    (func $print (param $ptr i32) (param $len i32)
        (i32.store (i32.const 16) (local.get $ptr))
        (i32.store (i32.const 20) (local.get $len))
        (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
    (func (export "weft_alloc") (param i32) (result i32) (i32.const 65536))
    (func (export "weft_handle") (param $ptr i32) (param $len i32) (result i64)
        (local $end i32) (local $n i64) (local $flen i32)
        (local.set $end (i32.add (local.get $ptr) (local.get $len)))
        (block $done (loop $next
            (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
            (local.set $flen (i32.load (local.get $ptr)))
            (local.set $n (call $call (i32.add (local.get $ptr) (i32.const 4)) (local.get $flen)))
            (i32.store8 (global.get $out) (i32.const 64))
            (if (i64.ge_s (local.get $n) (i64.const 0))
                (then
                    (i32.store8 (i32.add (global.get $out) (i32.const 1)) (i32.const 82))
                    (call $result (i32.add (global.get $out) (i32.const 2)))
                    (i32.store8 (i32.add (i32.add (global.get $out) (i32.const 2)) (i32.wrap_i64 (local.get $n))) (i32.const 10))
                    (call $print (global.get $out) (i32.add (i32.wrap_i64 (local.get $n)) (i32.const 3))))
                (else
                    (i32.store8 (i32.add (global.get $out) (i32.const 1)) (i32.const 69))
                    (i32.store8 (i32.add (global.get $out) (i32.const 2)) (i32.sub (i32.const 48) (i32.wrap_i64 (local.get $n))))
                    (i32.store8 (i32.add (global.get $out) (i32.const 3)) (i32.const 10))
                    (call $print (global.get $out) (i32.const 4))))
            (local.set $ptr (i32.add (local.get $ptr) (i32.add (i32.const 4) (local.get $flen))))
            (br $next)))
        (i64.const 2)))"#;

/// The in-memory services: the contract's reference kv store and one outbound route.
#[derive(Default)]
struct InMemory {
    kv: Mutex<MemoryKv>,
}

#[weft_runtime::async_trait]
impl HostServices for InMemory {
    async fn kv_get(&self, key: &str) -> Result<Option<Value>, HostError> {
        Ok(self.kv.lock().unwrap().get(key).and_then(|text| serde_json::from_str(text).ok()))
    }

    async fn kv_set(&self, key: &str, value: Value) -> Result<(), HostError> {
        self.kv.lock().unwrap().set(key, value.to_string()).map_err(Into::into)
    }

    async fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        self.kv.lock().unwrap().delete(key);
        Ok(())
    }

    async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, HostError> {
        Ok(self.kv.lock().unwrap().list(prefix))
    }

    async fn queue_task(&self, _task: Value, _schedule_secs: u32) -> Result<(), HostError> {
        Ok(())
    }

    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, HostError> {
        if request.url != conformance::FETCH_URL {
            return Err(HostError::new("not_allowed", "no route"));
        }
        let headers: BTreeMap<String, String> =
            conformance::FETCH_HEADERS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Ok(OutboundResponse { status: conformance::FETCH_STATUS, headers, body: conformance::FETCH_BODY.to_vec() })
    }
}

#[tokio::test]
async fn the_real_host_passes_the_host_call_conformance_suite() {
    let max_limits = Limits { host_calls: 100_000, log_bytes: 16 << 20, ..RuntimeConfig::default().max_limits };
    let runtime = Runtime::new(RuntimeConfig { max_instances: 2, max_limits, ..RuntimeConfig::default() }).unwrap();
    let module = runtime.compile(&wat::parse_str(DRIVER).unwrap()).expect("the driver validates");
    let mut failures = Vec::new();
    for case in conformance::cases() {
        let mut input = Vec::new();
        for step in &case.steps {
            input.extend_from_slice(&(step.request.len() as u32).to_le_bytes());
            input.extend_from_slice(&step.request);
        }
        let limits = Limits { host_calls: case.host_calls, log_bytes: 16 << 20, ..Limits::default() };
        let report = runtime.run(&module, &input, &limits, Arc::new(InMemory::default())).await.unwrap();
        let mut answers = Vec::new();
        let mut logs = Vec::new();
        for line in &report.logs {
            match line.message.strip_prefix('@') {
                Some(answer) if line.level == LogLevel::Info && answer.starts_with('R') => {
                    answers.push(Answer::Result(answer.as_bytes()[1..].to_vec()));
                }
                Some(answer) if line.level == LogLevel::Info && answer.starts_with('E') => {
                    answers.push(Answer::Code(-answer[1..].parse::<i64>().unwrap()));
                }
                _ => logs.push((line.level, line.message.clone())),
            }
        }
        match &report.result {
            Err(failure) if failure.kind == FailureKind::HostCallLimit => answers.push(Answer::Trap),
            Err(failure) => panic!("case `{}` failed: {failure}", case.name),
            Ok(_) => {}
        }
        if let Err(failure) = case.check(&answers, &logs) {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
