//! Shared setup for the runtime tests: one runtime with small limits, and
//! the task components built from `tasks/`.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasp_engine::{CallContext, CallReport, Limits, Module, Runtime, RuntimeConfig};
use wasp_proto::Value;

/// Limits small enough that the evil guests hit them quickly.
pub fn test_limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        wall_time: Duration::from_secs(2),
        output_bytes: 64 << 10,
        result_bytes: 1 << 20,
        arg_bytes: 1 << 20,
        ..Limits::default()
    }
}

/// One runtime for a whole test binary, as an engine process has.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| runtime_with(true))
}

/// A runtime like [`runtime`] whose calls all take the `Val` path, item by
/// item, never the bulk path: what the bulk path is compared with.
pub fn val_path_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| runtime_with(false))
}

fn runtime_with(bulk_calls: bool) -> Runtime {
    Runtime::new(RuntimeConfig {
        limits: test_limits(),
        bulk_calls,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// Loads a task component by its artifact path.
pub fn load(path: &str) -> Arc<Module> {
    load_into(runtime(), path)
}

/// Loads a task component into [`val_path_runtime`].
pub fn load_val_path(path: &str) -> Arc<Module> {
    load_into(val_path_runtime(), path)
}

fn load_into(runtime: &Runtime, path: &str) -> Arc<Module> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    runtime
        .load_blocking(&bytes)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Calls a module of [`load_val_path`] and returns the whole report.
pub async fn call_val_path(module: &Arc<Module>, func: &str, args: &[Value]) -> CallReport {
    val_path_runtime().call(module, func, args, context()).await
}

/// The identity every test call runs as.
pub fn context() -> CallContext {
    CallContext {
        engine_id: 7,
        tenant: "default".into(),
        task_id: "task-1".into(),
    }
}

/// Calls and returns the whole report.
pub async fn call(module: &Arc<Module>, func: &str, args: &[Value]) -> CallReport {
    runtime().call(module, func, args, context()).await
}

/// Calls and returns the result, failing the test on a call error.
pub async fn call_ok(module: &Arc<Module>, func: &str, args: &[Value]) -> Option<Value> {
    let report = call(module, func, args).await;
    match report.result {
        Ok(value) => value,
        Err(err) => panic!(
            "{func} failed: {err}\nstderr: {}",
            String::from_utf8_lossy(&report.stderr)
        ),
    }
}

/// The error of a call that must fail, as text.
pub async fn call_err(module: &Arc<Module>, func: &str, args: &[Value]) -> String {
    match call(module, func, args).await.result {
        Ok(value) => panic!("{func} should have failed, returned {value:?}"),
        Err(err) => err.to_string(),
    }
}

/// Proves the runtime still serves: a fresh call of `area` succeeds.
pub async fn still_serving() {
    let area = load(wasp_task_artifacts::AREA);
    let result = call_ok(&area, "area", &[Value::S64(6), Value::S64(7)]).await;
    assert_eq!(result, Some(Value::S64(42)));
}
