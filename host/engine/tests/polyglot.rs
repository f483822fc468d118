//! The tasks written in C, Python and JavaScript (`tasks/c`, `tasks/python`,
//! `tasks/js`) through the runtime: the same inputs give the same results
//! as the Rust tasks, a guest that raises fails its own call with its
//! language's message, and a component that imports what the engine lacks
//! is refused at load, naming the interface.
//!
//! The components come from `scripts/build-polyglot` (which `scripts/test`
//! runs first); a missing one fails the test with the command to run.
//! Compiling a Python or JS component takes seconds (tens in a debug
//! build), so this file's runtime keeps compiled code in
//! `target/tasks/polyglot/compiled`, as an engine's disk cache does.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use common::{context, test_limits};
use wasp_engine::{CallContext, CallReport, LoadError, Module, Runtime, RuntimeConfig};
use wasp_proto::Value;
use wasp_task_artifacts as rust;

const LANGUAGES: [&str; 3] = ["c", "python", "js"];

/// The runtime of this file: the tests' limits, with a disk cache.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            limits: test_limits(),
            cache_dir: Some(rust::polyglot_dir().join("compiled")),
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

async fn call(module: &Arc<Module>, func: &str, args: &[Value]) -> CallReport {
    runtime().call(module, func, args, context()).await
}

async fn call_ok(module: &Arc<Module>, func: &str, args: &[Value]) -> Option<Value> {
    let report = call(module, func, args).await;
    match report.result {
        Ok(value) => value,
        Err(err) => panic!("{func}{args:?} failed: {err}"),
    }
}

/// Loads a Rust task component.
fn load_rust(path: &str) -> Arc<Module> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    runtime()
        .load_blocking(&bytes)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The runtime still serves: a fresh call of the Rust `area` succeeds.
async fn still_serving() {
    let area = load_rust(rust::AREA);
    let result = call_ok(&area, "area", &[Value::S64(6), Value::S64(7)]).await;
    assert_eq!(result, Some(Value::S64(42)));
}

fn read_artifact(lang: &str, name: &str) -> Vec<u8> {
    let path = rust::polyglot(lang, name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Loads a polyglot component, printing how long it took (compiling a
/// Python or JS component takes seconds).
fn load(lang: &str, name: &str) -> Arc<Module> {
    let bytes = read_artifact(lang, name);
    let started = Instant::now();
    let module = runtime()
        .load_blocking(&bytes)
        .unwrap_or_else(|err| panic!("{lang}/{name}.wasm: {err}"));
    eprintln!(
        "loaded {lang}/{name}.wasm ({} KiB) in {:?} ({:?})",
        bytes.len() / 1024,
        started.elapsed(),
        module.origin
    );
    module
}

/// Every language's component of a task, with the Rust one first.
fn all_languages(name: &str, rust_path: &str) -> Vec<(&'static str, Arc<Module>)> {
    let mut modules = vec![("rust", load_rust(rust_path))];
    modules.extend(LANGUAGES.iter().map(|&lang| (lang, load(lang, name))));
    modules
}

/// Calls `func` with each argument list on every language, asserting the
/// same result as Rust's.
async fn same_results(modules: &[(&str, Arc<Module>)], func: &str, inputs: &[Vec<Value>]) {
    same_results_where(modules, func, inputs, |_, _| true).await;
}

/// [`same_results`] for the languages and results `applies` accepts. Where
/// the Rust task fails (an overflow), every language must fail too, with
/// the same message.
async fn same_results_where(
    modules: &[(&str, Arc<Module>)],
    func: &str,
    inputs: &[Vec<Value>],
    applies: impl Fn(&str, &Option<Value>) -> bool,
) {
    let (_, reference) = &modules[0];
    for args in inputs {
        let want = call(reference, func, args).await.result;
        for (lang, module) in &modules[1..] {
            let got = call(module, func, args).await.result;
            match &want {
                Ok(want) if applies(lang, want) => {
                    let got = got.unwrap_or_else(|err| panic!("{lang}: {func}{args:?}: {err}"));
                    assert_eq!(&got, want, "{lang}: {func}{args:?}");
                }
                Ok(_) => {}
                Err(err) => {
                    let message = err.to_string();
                    let message = message.lines().nth(1).unwrap_or(&message);
                    let got = got.expect_err(&format!("{lang}: {func}{args:?} should fail"));
                    assert!(
                        got.to_string().contains(message),
                        "{lang}: {func}{args:?}: {got}, expected {message:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn area_matches_rust_in_every_language() {
    let modules = all_languages("area", rust::AREA);
    let sides = [-7i64, -1, 0, 1, 3, 6, 9, 1 << 31, i64::MAX];
    let inputs: Vec<Vec<Value>> = sides
        .iter()
        .flat_map(|&w| [0i64, 1, -1, 7].map(|h| vec![Value::S64(w), Value::S64(h)]))
        .collect();
    // componentize-js 0.23 aborts when a function returns a negative s64
    // ("Redirecting call to abort() to mozalloc_abort"); JavaScript gets the
    // non-negative results, and the trap is checked so that a fix shows.
    let js_can_return = |lang: &str, want: &Option<Value>| {
        lang != "js" || !matches!(want, Some(Value::S64(x)) if *x < 0)
    };
    same_results_where(&modules, "area", &inputs, js_can_return).await;
    let (_, js) = modules.last().expect("js is last");
    let report = call(js, "area", &[Value::S64(-7), Value::S64(1)]).await;
    let err = report
        .result
        .expect_err("a known componentize-js bug")
        .to_string();
    assert!(err.contains("mozalloc_abort"), "{err}");
}

#[tokio::test]
async fn pow10_matches_rust_in_every_language() {
    let modules = all_languages("pow10", rust::POW10);
    let inputs: Vec<Vec<Value>> = (-31..32i64).map(|x| vec![Value::S64(x)]).collect();
    same_results(&modules, "pow10", &inputs).await;
}

#[tokio::test]
async fn getpid_and_whoami_match_rust_in_every_language() {
    let modules = all_languages("getpid", rust::GETPID);
    same_results(&modules, "getpid", &[vec![]]).await;

    // whoami: the result, stdout, stderr and log lines all agree.
    let other = CallContext {
        engine_id: 3,
        tenant: "physics".into(),
        task_id: "t-99".into(),
    };
    let (_, reference) = &modules[0];
    let want = runtime()
        .call(reference, "whoami", &[], other.clone())
        .await;
    let want_result = want.result.expect("rust whoami");
    for (lang, module) in &modules[1..] {
        let got = runtime().call(module, "whoami", &[], other.clone()).await;
        assert_eq!(got.result.expect(lang), want_result, "{lang}");
        assert_eq!(got.stdout, want.stdout, "{lang}: stdout");
        assert_eq!(got.stderr, want.stderr, "{lang}: stderr");
        assert_eq!(got.logs, want.logs, "{lang}: logs");
    }
}

#[tokio::test]
async fn word_counts_match_rust_in_every_language() {
    let modules = all_languages("wordcount", rust::WORDCOUNT);
    let texts = [
        "",
        "   ",
        "The quick brown fox. The lazy dog! Isn't the fox quick? Ünïcode ÜNÏCODE 42 42",
        "it's IT'S its -- it's; a'b 'quoted' x_y 3.14 1,000",
        "Ζεύς ζεύς Москва МОСКВА straße Straße",
    ];
    let inputs: Vec<Vec<Value>> = texts
        .iter()
        .map(|text| vec![Value::String((*text).into())])
        .collect();
    same_results(&modules, "count-words", &inputs).await;

    // wasp:wordcount/corpus: the scatter step, then the reduce step.
    let texts: Vec<Value> = texts
        .iter()
        .map(|text| Value::String((*text).into()))
        .collect();
    same_results(&modules, "count-texts", &[vec![Value::List(texts.clone())]]).await;
    let (_, reference) = &modules[0];
    let mut parts = Vec::new();
    for half in texts.chunks(2) {
        let part = call_ok(reference, "count-texts", &[Value::List(half.to_vec())]).await;
        parts.push(part.expect("a list"));
    }
    let overflowing = Value::List(vec![Value::Record(vec![
        ("word".into(), Value::String("the".into())),
        ("count".into(), Value::U32(u32::MAX - 1)),
    ])]);
    parts.push(overflowing);
    same_results(&modules, "merge-counts", &[vec![Value::List(parts)]]).await;
}

#[tokio::test]
async fn a_raising_guest_fails_its_call_with_its_message_and_the_runtime_serves_on() {
    for lang in LANGUAGES {
        let pow10 = load(lang, "pow10");
        let report = call(&pow10, "pow10", &[Value::S64(100)]).await;
        let err = report
            .result
            .expect_err(&format!("{lang}: pow10(100) should overflow"))
            .to_string();
        assert!(err.starts_with("task trapped: "), "{lang}: {err}");
        assert!(
            err.contains("pow10 overflow: 100^10 does not fit in s64"),
            "{lang}: {err}"
        );
        // Each language reports the exception its own way: Python its
        // traceback, JavaScript the message and a stack, C what it printed.
        let native = match lang {
            "python" => "OverflowError",
            "js" => "pow10@pow10.js:",
            _ => "",
        };
        assert!(err.contains(native), "{lang}: {err}");

        // The same module and the runtime keep serving.
        let got = call_ok(&pow10, "pow10", &[Value::S64(2)]).await;
        assert_eq!(got, Some(Value::S64(1024)), "{lang}");
        still_serving().await;
    }
    // The context of the failed calls did not leak into later ones.
    let getpid = load("python", "getpid");
    let id = call_ok(&getpid, "getpid", &[]).await;
    assert_eq!(id, Some(Value::U32(context().engine_id)));
}

#[tokio::test]
async fn a_component_importing_wasi_http_is_refused_at_load() {
    // componentize-js's default features import wasi:http, which the
    // engine does not provide (build-polyglot disables them for the tasks).
    let bytes = read_artifact("js", "area-with-http");
    let err = runtime()
        .load_blocking(&bytes)
        .expect_err("wasi:http is not provided");
    let LoadError::MissingImport(detail) = &err else {
        panic!("expected a missing import, got {err:?}")
    };
    assert!(detail.contains("wasi:http/"), "{err}");
    assert!(
        err.to_string()
            .starts_with("the component needs an import this engine does not provide: "),
        "{err}"
    );
    // Not kept in the disk cache: an engine announces what it has cached
    // and is then never sent those bytes (issue 5).
    let hash = wasp_proto::ModuleHash::of(&bytes);
    assert!(!runtime().disk_cached_hashes().contains(&hash));
    still_serving().await;
}
