//! The tasks in C, Python and JavaScript on a real cluster (issue 5): the
//! same inputs give the Rust tasks' results; a task that traps or raises
//! fails its own call with its language's message and the engine serves
//! on; a component importing an interface the engine lacks is refused at
//! load, naming it; an engine restarted on its disk cache gets no module
//! bytes and loads the compiled code from disk.
//!
//! The components come from `scripts/build-polyglot` (which `scripts/test`
//! runs first). A Python or JavaScript component takes seconds to compile,
//! so each test runs one engine, and the first one's engine keeps compiled
//! code in `target/tasks/polyglot/compiled`, the disk cache that
//! `host/engine/tests/polyglot.rs` fills with the same engine configuration.

use wasp_client::{Client, ClientError, Module};
use wasp_proto::msg::ErrorKind;
use wasp_proto::{EngineId, Value};
use wasp_task_artifacts as rust;

mod common;
use common::{Cluster, wasp};

const LANGUAGES: [&str; 3] = ["c", "python", "js"];

/// A task in another language, as a client module.
fn polyglot(lang: &str, name: &str) -> Module {
    let path = rust::polyglot(lang, name);
    Module::from_file(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The Rust task, then the same task in every other language.
fn every_language(name: &str, rust_path: &str) -> Vec<(&'static str, Module)> {
    let mut modules = vec![("rust", Module::from_file(rust_path).expect("rust task"))];
    modules.extend(LANGUAGES.map(|lang| (lang, polyglot(lang, name))));
    modules
}

/// Maps `func` over `inputs` (argument lists) in every language, in chunks
/// of 4, asserting each language's results equal Rust's.
async fn same_as_rust(rc: &Client, modules: &[(&str, Module)], func: &str, inputs: &[Vec<Value>]) {
    let lview = rc.load_balanced_view().with_chunksize(4);
    // map takes one sequence per parameter.
    let arity = inputs.first().map_or(0, Vec::len);
    let sequences: Vec<Vec<Value>> = (0..arity)
        .map(|i| inputs.iter().map(|args| args[i].clone()).collect())
        .collect();
    let (_, reference) = &modules[0];
    let want = lview
        .map(reference, func, sequences.clone())
        .await
        .unwrap_or_else(|err| panic!("rust {func}: {err}"));
    assert_eq!(want.len(), inputs.len());
    for (lang, module) in &modules[1..] {
        let got = lview
            .map(module, func, sequences.clone())
            .await
            .unwrap_or_else(|err| panic!("{lang} {func}: {err}"));
        assert_eq!(got, want, "{lang}: {func}");
    }
}

fn s64s(values: &[i64]) -> Vec<Value> {
    values.iter().copied().map(Value::S64).collect()
}

fn string(text: &str) -> Value {
    Value::String(text.into())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_language_on_a_cluster() {
    let cluster = Cluster::start_cached(1, &rust::polyglot_dir().join("compiled"));
    let rc = cluster.client().await;

    // area: componentize-js 0.23 aborts returning a negative s64 (pinned
    // in host/engine/tests/polyglot.rs), so the sides are non-negative.
    let sides = [0i64, 1, 3, 7, 1 << 20, 1 << 31];
    let inputs: Vec<Vec<Value>> = sides
        .iter()
        .flat_map(|&w| sides.iter().map(move |&h| s64s(&[w, h])))
        .collect();
    same_as_rust(&rc, &every_language("area", rust::AREA), "area", &inputs).await;

    let inputs: Vec<Vec<Value>> = (-31..32).map(|x| s64s(&[x])).collect();
    same_as_rust(&rc, &every_language("pow10", rust::POW10), "pow10", &inputs).await;

    let texts = [
        "",
        "The quick brown fox. The lazy dog! Isn't the fox quick? 42 42",
        "it's IT'S its -- it's; a'b 'quoted' x_y 3.14 1,000",
        "Ζεύς ζεύς Москва МОСКВА straße Straße Ünïcode ÜNÏCODE",
    ];
    let wordcount = every_language("wordcount", rust::WORDCOUNT);
    let inputs: Vec<Vec<Value>> = texts.iter().map(|t| vec![string(t)]).collect();
    same_as_rust(&rc, &wordcount, "count-words", &inputs).await;

    // Counting Words' scatter and reduce: count-texts per half of the
    // corpus, then merge-counts of the halves, the same in every language.
    let halves: Vec<Vec<Value>> = texts
        .chunks(2)
        .map(|half| vec![Value::List(half.iter().map(|t| string(t)).collect())])
        .collect();
    same_as_rust(&rc, &wordcount, "count-texts", &halves).await;
    let lview = rc.load_balanced_view();
    let (_, reference) = &wordcount[0];
    let mut parts = Vec::new();
    for half in &halves {
        let counts = lview
            .apply_sync(reference, "count-texts", half.clone())
            .await;
        parts.push(counts.expect("count-texts").expect("a list"));
    }
    same_as_rust(&rc, &wordcount, "merge-counts", &[vec![Value::List(parts)]]).await;

    a_failing_task_fails_its_call_and_the_engine_serves_on(&rc).await;
    a_missing_import_is_refused_at_load_naming_it(&rc).await;
}

/// `boom` in every language: the call fails with the language's own
/// report of the message; the next call on the same engine succeeds.
async fn a_failing_task_fails_its_call_and_the_engine_serves_on(rc: &Client) {
    let lview = rc.load_balanced_view();
    let boom = [("rust", Module::from_file(rust::BOOM).expect("rust boom"))]
        .into_iter()
        .chain(LANGUAGES.map(|lang| (lang, polyglot(lang, "boom"))));
    for (lang, module) in boom {
        let message = format!("{lang} is out of cheese");
        let err = lview
            .apply_sync(&module, "boom", vec![string(&message)])
            .await
            .expect_err("boom fails");
        let ClientError::Remote(remote) = &err else {
            panic!("{lang}: not a remote error: {err}")
        };
        assert_eq!(remote.kind, ErrorKind::Trap, "{lang}: {remote}");
        let engine: EngineId = remote.engine.expect("an engine ran it");
        let text = remote.message.as_str();
        assert!(text.starts_with("task trapped: "), "{lang}: {text}");
        assert!(text.contains(&format!("boom: {message}")), "{lang}: {text}");
        // How each language reports it: Rust's panic, Python's traceback
        // with the exception's type, JavaScript's stack, C's stderr.
        let native = match lang {
            "rust" => "panicked at",
            "python" => "ValueError: boom: ",
            "js" => "boom@",
            _ => "",
        };
        assert!(text.contains(native), "{lang}: {text}");

        // The same engine serves the next call, of the same module.
        let echoed = rc
            .view(vec![engine])
            .apply_sync(&module, "echo", vec![string("still here")])
            .await
            .unwrap_or_else(|err| panic!("{lang}: echo after boom: {err}"));
        assert_eq!(echoed, string("still here"), "{lang}");
    }
}

/// componentize-js's default features import wasi:http, which engines do
/// not provide: loading it fails clearly, naming the interface.
async fn a_missing_import_is_refused_at_load_naming_it(rc: &Client) {
    let with_http = polyglot("js", "area-with-http");
    let err = rc
        .load_balanced_view()
        .apply_sync(&with_http, "area", s64s(&[3, 7]))
        .await
        .expect_err("wasi:http is not provided");
    let text = err.to_string();
    assert!(
        text.contains("the component needs an import this engine does not provide: "),
        "{text}"
    );
    assert!(text.contains("wasi:http/"), "{text}");
    // Pushed explicitly (DirectView load), the same refusal.
    let ids = rc.ids().await.expect("ids");
    let err = rc.view(ids).load(&with_http).await.expect_err("refused");
    assert!(err.to_string().contains("wasi:http/"), "{err}");
    // The engine serves on.
    let area = polyglot("js", "area");
    let got = rc
        .load_balanced_view()
        .apply_sync(&area, "area", s64s(&[6, 7]))
        .await;
    assert_eq!(got.expect("area after the refusal"), Some(Value::S64(42)));
}

/// An 18 MB Python component runs through the cluster, and an engine
/// restarted on the same disk cache announces it as compiled: the
/// controller sends it no module bytes, and it runs from the cached code.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_engine_loads_a_python_module_from_its_disk_cache() {
    let cluster = Cluster::start(1);
    let area = polyglot("python", "area");
    assert!(area.bytes().len() > 10 << 20, "a large component");
    {
        let rc = cluster.client().await;
        let got = rc
            .load_balanced_view()
            .apply_sync(&area, "area", s64s(&[3, 7]))
            .await;
        assert_eq!(got.expect("python area"), Some(Value::S64(21)));
        let status = rc.status().await.expect("status");
        assert!(
            status.engines[0].module_bytes_sent >= area.bytes().len() as u64,
            "{:?}",
            status.engines
        );
    }
    let out = wasp(&cluster.dir, &["cluster", "stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wasp(&cluster.dir, &["cluster", "start", "-n", "1", "--daemon"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rc = cluster.client().await;
    let got = rc
        .load_balanced_view()
        .apply_sync(&area, "area", s64s(&[6, 7]))
        .await;
    assert_eq!(
        got.expect("python area after a restart"),
        Some(Value::S64(42))
    );
    let status = rc.status().await.expect("status");
    assert_eq!(
        status.engines[0].module_bytes_sent, 0,
        "the restarted engine had the module compiled on disk: {:?}",
        status.engines
    );
}

/// The module size limit is a setting of `wasp cluster start` (passed to
/// the controller and the engines): under a 1 MiB limit an 18 MB Python
/// component is refused, naming the limit and the flag, while a 50 KB C
/// one runs.
#[tokio::test(flavor = "multi_thread")]
async fn the_module_size_limit_is_a_cluster_setting() {
    let cluster = Cluster::start_with(1, &["--max-module-size", "1MiB"]);
    let rc = cluster.client().await;
    let lview = rc.load_balanced_view();
    let err = lview
        .apply_sync(&polyglot("python", "area"), "area", s64s(&[3, 7]))
        .await
        .expect_err("over the limit");
    let text = err.to_string();
    assert!(
        text.contains("over the controller's module size limit (max_module_size = 1048576 bytes"),
        "{text}"
    );
    assert!(text.contains("--max-module-size"), "{text}");
    // The oversized frame ended that connection; a new one is served.
    let rc = cluster.client().await;
    let got = rc
        .load_balanced_view()
        .apply_sync(&polyglot("c", "area"), "area", s64s(&[3, 7]))
        .await;
    assert_eq!(got.expect("C area"), Some(Value::S64(21)));
}
