//! `polyglot`: what a task's language costs the engine: compile time, warm
//! load time from the disk cache, and fresh-instance call time, for the
//! same tasks (`area`, `pow10`) in Rust, C, Python and JavaScript.
//!
//! ```text
//! cargo run --release -p wasp-bench --bin polyglot -j2 [-- [--quick] [--out PATH] [--lang LANG]...]
//! ```
//!
//! The C, Python and JavaScript components come from
//! `./scripts/build-polyglot` (`target/tasks/polyglot/<lang>/<task>.wasm`),
//! the Rust ones from `wasp-task-artifacts`. Prints a markdown table and
//! writes the figures to `bench/results/polyglot.json` (or `--out`).
//! `--quick` cuts every budget tenfold; `--lang` times only the named
//! languages. See `bench/README.md` for the figures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, ensure};
use serde_json::json;
use wasp_bench::options::{self, Filter, Options};
use wasp_bench::report::{self, human};
use wasp_bench::timing::{self, Budget, RuntimeBudgets, Stats};
use wasp_engine::{CallContext, Module, Origin, Runtime, RuntimeConfig};
use wasp_proto::Value;

/// Where the figures go unless `--out` says otherwise.
const DEFAULT_OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results/polyglot.json");

const LANGUAGES: [&str; 4] = ["rust", "c", "python", "js"];

/// One call timed on a task, in every language.
struct Call {
    task: &'static str,
    func: &'static str,
    args: Vec<Value>,
    expected: Value,
    rust: &'static str,
}

fn calls() -> Vec<Call> {
    vec![
        Call {
            task: "area",
            func: "area",
            args: vec![Value::S64(3), Value::S64(7)],
            expected: Value::S64(21),
            rust: wasp_task_artifacts::AREA,
        },
        Call {
            task: "pow10",
            func: "pow10",
            args: vec![Value::S64(7)],
            expected: Value::S64(282_475_249),
            rust: wasp_task_artifacts::POW10,
        },
    ]
}

/// The component of `call`'s task in `lang`.
fn component(lang: &str, call: &Call) -> PathBuf {
    match lang {
        "rust" => PathBuf::from(call.rust),
        _ => wasp_task_artifacts::polyglot(lang, call.task),
    }
}

/// The figures of one task in one language.
struct Row {
    lang: &'static str,
    task: &'static str,
    wasm_bytes: u64,
    compile: Stats,
    warm_load: Stats,
    fresh_call: Stats,
}

fn main() -> ExitCode {
    options::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let options = Options::parse(
        std::env::args().skip(1),
        DEFAULT_OUT,
        &Filter {
            flag: "--lang",
            needs: "rust, c, python or js",
            metavar: "LANG",
        },
    )?;
    let langs: Vec<&'static str> = LANGUAGES
        .into_iter()
        .filter(|lang| options.includes(lang))
        .collect();
    ensure!(!langs.is_empty(), "no language matches {:?}", options.only);
    // One thread, as a task call runs on one: nothing migrates mid-sample.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    let budgets = RuntimeBudgets::new(options.quick);
    let mut meta = report::run_meta(
        "polyglot",
        "cargo run --release -p wasp-bench --bin polyglot -j2",
        options.quick,
    );

    let mut rows = Vec::new();
    for lang in langs {
        for call in calls() {
            eprintln!("timing {lang} {} ...", call.task);
            let row = tokio
                .block_on(bench(lang, &call, &budgets))
                .with_context(|| format!("{lang} {}", call.task))?;
            rows.push(row);
        }
    }
    println!("{}", markdown(&rows));

    meta.insert("tokio".into(), json!("current_thread"));
    meta.insert(
        "runtime".into(),
        json!("wasp_engine::Runtime with RuntimeConfig::default()"),
    );
    meta.insert("calls".into(), json!("area(3, 7) and pow10(7)"));
    meta.insert(
        "statistic".into(),
        json!("median and p99 of per-iteration times (or of per-batch means when calls_per_sample > 1)"),
    );
    let json = json!({
        "meta": meta,
        "rows": rows.iter().map(|row| json!({
            "language": row.lang,
            "task": row.task,
            "wasm_bytes": row.wasm_bytes,
            "compile": stats_json(&row.compile),
            "warm_load": stats_json(&row.warm_load),
            "fresh_call": stats_json(&row.fresh_call),
        })).collect::<Vec<_>>(),
    });
    report::write_json(&options.out, &json)?;
    println!("figures written to {}", options.out.display());
    Ok(())
}

/// A new runtime caching in `dir`.
fn runtime_on(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("the same configuration set up a runtime before timing")
}

/// Samples `op` on a fresh input from `setup` each time, the setup
/// untimed: [`timing::compare_paired`] beside an operation that does
/// nothing, whose figures are dropped.
async fn measure_with_setup<I, O>(
    budget: &Budget,
    setup: &mut impl FnMut() -> I,
    op: &mut impl AsyncFnMut(I) -> O,
) -> Stats {
    let (stats, _) =
        timing::compare_paired(budget, &mut || (setup(), ()), op, &mut async |()| ()).await;
    stats
}

async fn bench(lang: &'static str, call: &Call, budgets: &RuntimeBudgets) -> anyhow::Result<Row> {
    let path = component(lang, call);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;

    // Prime a cache directory, checking the call before timing.
    let cache = tempfile::tempdir()?;
    let primer = runtime_on(cache.path());
    let module = primer.load_blocking(&bytes)?;
    ensure!(
        module.origin == Origin::Compiled,
        "a fresh cache compiled nothing"
    );
    let got = fresh_call(&primer, &module, call).await.result?;
    ensure!(
        got.as_ref() == Some(&call.expected),
        "{} returned {got:?}, expected {:?}",
        call.func,
        call.expected
    );

    // 1. Compile: `load_blocking` on a new runtime with an empty cache.
    let compile = measure_with_setup(
        &budgets.compile,
        &mut || {
            let dir = tempfile::tempdir().expect("a temporary directory was made before timing");
            let runtime = runtime_on(dir.path());
            (dir, runtime)
        },
        &mut async |(dir, runtime): (tempfile::TempDir, Runtime)| {
            let module = runtime.load_blocking(&bytes).expect("loaded before timing");
            assert_eq!(module.origin, Origin::Compiled);
            (dir, runtime, module)
        },
    )
    .await;

    // 2. Warm load: a new runtime (empty in-memory cache) on the primed
    // directory, as an engine restarted on its disk cache.
    let warm_load = measure_with_setup(
        &budgets.load,
        &mut || runtime_on(cache.path()),
        &mut async |runtime: Runtime| {
            let module = runtime.load_blocking(&bytes).expect("loaded before timing");
            assert_eq!(module.origin, Origin::DiskCache);
            (runtime, module)
        },
    )
    .await;

    // 3. A call in a fresh sandbox: new store, instantiation, the call.
    let fresh_call = timing::measure(&budgets.call, &mut async || {
        fresh_call(&primer, &module, call).await
    })
    .await;

    Ok(Row {
        lang,
        task: call.task,
        wasm_bytes: bytes.len() as u64,
        compile,
        warm_load,
        fresh_call,
    })
}

async fn fresh_call(
    runtime: &Runtime,
    module: &Arc<Module>,
    call: &Call,
) -> wasp_engine::CallReport {
    runtime
        .call(module, call.func, &call.args, CallContext::default())
        .await
}

fn stats_json(stats: &Stats) -> serde_json::Value {
    json!({
        "median_ns": stats.median_ns.round(),
        "p99_ns": stats.p99_ns.round(),
        "samples": stats.samples,
        "calls_per_sample": stats.batch,
    })
}

/// The rows as a markdown table: medians, with p99 in parentheses.
fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| language | task | .wasm | compile | warm load (disk cache) | fresh-instance call |\n\
         |---|---|---|---|---|---|\n",
    );
    let cell = |stats: &Stats| format!("{} (p99 {})", human(stats.median_ns), human(stats.p99_ns));
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} KiB | {} | {} | {} |\n",
            row.lang,
            row.task,
            row.wasm_bytes.div_ceil(1024),
            cell(&row.compile),
            cell(&row.warm_load),
            cell(&row.fresh_call),
        ));
    }
    out
}
