//! `runtime`: times wasp's engine runtime on the seed tasks, each figure
//! beside plain wasmtime doing the least the same job needs.
//!
//! ```text
//! cargo run --release -p wasp-bench --bin runtime -j2 [-- [--quick] [--out PATH] [--task NAME]...]
//! ```
//!
//! Prints a markdown table and writes the figures to
//! `bench/results/runtime.json` (or `--out`). `--quick` cuts every budget
//! tenfold, for a smoke run; `--task` times only the named tasks (for
//! profiling one). See `bench/README.md` for the figures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail, ensure};
use serde_json::json;
use wasmtime::component::{Component, Val};
use wasp_bench::bare::{self, Bare};
use wasp_bench::options::{self, Filter, Options};
use wasp_bench::report::{self, Row};
use wasp_bench::timing::{self, RuntimeBudgets};
use wasp_engine::convert::{from_val, to_val};
use wasp_engine::{CallContext, Module, Origin, Runtime, RuntimeConfig};
use wasp_proto::{ModuleHash, Value};

/// Where the figures go unless `--out` says otherwise.
const DEFAULT_OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results/runtime.json");

/// How the bare engine is set up, for the report.
const BARE_ENGINE: &str = "wasmtime Engine configured as wasp's (pooling allocator, same pool and stack sizes, async); \
epoch interruption ON with no ticker (deadline never reached); linker: wasmtime_wasi::p2::add_to_linker_async \
plus trivial wasp:task identity/log functions; store: WasiCtx::builder().build() and a ResourceTable";

/// One seed task and the call timed on it.
struct Seed {
    task: &'static str,
    path: &'static str,
    /// The exported interface holding `func`.
    interface: &'static str,
    func: &'static str,
    args: Vec<Value>,
    expected: Value,
}

fn seeds() -> Vec<Seed> {
    let vector: Vec<f64> = (0..1024).map(|i| f64::from(i) * 0.25 - 100.0).collect();
    let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    vec![
        Seed {
            task: "area",
            path: wasp_task_artifacts::AREA,
            interface: "wasp:area/area",
            func: "area",
            args: vec![Value::S64(3), Value::S64(7)],
            expected: Value::S64(21),
        },
        Seed {
            task: "pow10",
            path: wasp_task_artifacts::POW10,
            interface: "wasp:pow10/pow10",
            func: "pow10",
            args: vec![Value::S64(7)],
            expected: Value::S64(282_475_249),
        },
        Seed {
            task: "norm",
            path: wasp_task_artifacts::NORM,
            interface: "wasp:norm/norm",
            func: "norm",
            args: vec![
                Value::List(vector.into_iter().map(Value::F64).collect()),
                Value::F64(2.0),
            ],
            expected: Value::F64(norm),
        },
        Seed {
            task: "getpid",
            path: wasp_task_artifacts::GETPID,
            interface: "wasp:getpid/getpid",
            func: "getpid",
            args: vec![],
            expected: Value::U32(0),
        },
    ]
}

fn main() -> ExitCode {
    options::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let options = Options::parse(
        std::env::args().skip(1),
        DEFAULT_OUT,
        &Filter {
            flag: "--task",
            needs: "a task name",
            metavar: "NAME",
        },
    )?;
    // One thread, as a task call runs on one: nothing migrates mid-sample.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    let budgets = RuntimeBudgets::new(options.quick);
    let defaults = RuntimeConfig::default();
    let bare = Bare::new(&defaults.limits, defaults.max_instances)
        .map_err(anyhow::Error::from)
        .context("cannot set up the bare engine")?;

    let mut meta = report::run_meta(
        "runtime",
        "cargo run --release -p wasp-bench --bin runtime -j2",
        options.quick,
    );
    println!("bare limit: {BARE_ENGINE}\n");
    let mut rows = Vec::new();
    let seeds = seeds();
    let seeds: Vec<Seed> = seeds
        .into_iter()
        .filter(|s| options.includes(s.task))
        .collect();
    ensure!(!seeds.is_empty(), "no task matches {:?}", options.only);
    for seed in seeds {
        eprintln!("timing {} ...", seed.task);
        let task_rows = tokio
            .block_on(bench_task(&seed, &budgets, &bare))
            .with_context(|| format!("task {}", seed.task))?;
        rows.extend(task_rows);
    }
    println!("{}", report::markdown(&rows));

    meta.insert("tokio".into(), json!("current_thread"));
    meta.insert("bare_engine".into(), json!(BARE_ENGINE));
    meta.insert(
        "statistic".into(),
        json!("median and p99 of per-iteration times (or of per-batch means when calls_per_sample > 1); ratio of medians"),
    );
    report::write_json(&options.out, &report::to_json(meta.into(), &rows))?;
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

async fn bench_task(
    seed: &Seed,
    budgets: &RuntimeBudgets,
    bare: &Bare,
) -> anyhow::Result<Vec<Row>> {
    let bytes = std::fs::read(seed.path).with_context(|| format!("cannot read {}", seed.path))?;
    let hash = ModuleHash::of(&bytes);
    let row = |figure, wasp, bare_label, bare, target| Row {
        task: seed.task.to_owned(),
        figure,
        wasp,
        bare_label,
        bare,
        target,
    };
    let mut rows = Vec::new();

    // Prime a cache directory, checking that everything works before timing.
    let cache = tempfile::tempdir()?;
    let primer = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })?;
    let module = primer.load_blocking(&bytes)?;
    ensure!(
        module.origin == Origin::Compiled,
        "a fresh cache compiled nothing"
    );
    let artifact = only_artifact(cache.path())?;
    let component = Component::new(bare.engine(), &bytes).map_err(anyhow::Error::from)?;
    let pre = bare.pre(&component).map_err(anyhow::Error::from)?;
    let index = bare::export_index(&component, seed.interface, seed.func)
        .with_context(|| format!("no export {}#{}", seed.interface, seed.func))?;
    let params: Vec<Val> = seed.args.iter().map(to_val).collect();
    check(seed, wasp_call(&primer, &module, seed).await?)?;
    let val = bare::fresh_call(bare.engine(), &pre, &index, &params)
        .await
        .map_err(anyhow::Error::from)?;
    check(seed, from_val(val)?)?;

    // 1. Compile: `load_blocking` on a new runtime with an empty cache,
    // beside wasmtime compiling the same bytes.
    let (wasp, limit) = timing::compare_paired(
        &budgets.compile,
        &mut || {
            let dir = tempfile::tempdir().expect("a temporary directory was made before timing");
            let runtime = runtime_on(dir.path());
            ((dir, runtime), ())
        },
        &mut async |(dir, runtime): (tempfile::TempDir, Runtime)| {
            let module = runtime.load_blocking(&bytes).expect("loaded before timing");
            assert_eq!(module.origin, Origin::Compiled);
            (dir, runtime, module)
        },
        &mut async |()| Component::new(bare.engine(), &bytes).expect("compiled before timing"),
    )
    .await;
    rows.push(row(
        "compile (`load_blocking`, empty cache)",
        wasp,
        "`Component::new`",
        limit,
        None,
    ));

    // 2. Warm load from disk: a new runtime (new engine, empty in-memory
    // cache) on the primed directory, beside wasmtime's own load of the
    // same artifact into a new engine of the same configuration.
    let defaults = RuntimeConfig::default();
    let mut fresh = || {
        let runtime = runtime_on(cache.path());
        let engine = bare::engine(&defaults.limits, defaults.max_instances)
            .expect("the bare engine was set up before timing");
        (runtime, engine)
    };
    let mut deserialize = async |engine: wasmtime::Engine| {
        // SAFETY: the artifact was compiled moments ago by `primer`, whose
        // engine has this configuration, into a private temporary directory.
        #[expect(
            unsafe_code,
            reason = "loading our own freshly compiled artifact, as the limit"
        )]
        let loaded = unsafe { Component::deserialize_file(&engine, &artifact) };
        (
            engine,
            loaded.expect("a fresh artifact of this configuration deserializes"),
        )
    };
    let (wasp, limit) = timing::compare_paired(
        &budgets.load,
        &mut fresh,
        &mut async |runtime: Runtime| {
            let module = runtime.load_blocking(&bytes).expect("loaded before timing");
            assert_eq!(module.origin, Origin::DiskCache);
            (runtime, module)
        },
        &mut deserialize,
    )
    .await;
    rows.push(row(
        "warm load from disk (`load_blocking`)",
        wasp,
        "`Component::deserialize_file`",
        limit,
        Some(2.0),
    ));
    let (wasp, limit) = timing::compare_paired(
        &budgets.load,
        &mut fresh,
        &mut async |runtime: Runtime| {
            let module = runtime.cached(&hash).expect("the artifact is cached");
            assert_eq!(module.origin, Origin::DiskCache);
            (runtime, module)
        },
        &mut deserialize,
    )
    .await;
    rows.push(row(
        "warm load by hash (`cached`)",
        wasp,
        "`Component::deserialize_file`",
        limit,
        None,
    ));

    // 3. Fresh store per call.
    let (wasp, limit) = timing::compare(
        &budgets.call,
        &mut async || {
            primer
                .call(&module, seed.func, &seed.args, CallContext::default())
                .await
        },
        &mut async || bare::fresh_call(bare.engine(), &pre, &index, &params).await,
    )
    .await;
    rows.push(row(
        "fresh-store call (`Runtime::call`)",
        wasp,
        "bare fresh store + instantiate + call",
        limit,
        Some(1.5),
    ));

    // 4. Calls on one live instance.
    let mut instance = primer
        .instantiate(&module, CallContext::default())
        .await
        .map_err(|report| anyhow::anyhow!("cannot instantiate: {:?}", report.result))?;
    let reused = instance.call(seed.func, &seed.args).await.result?;
    check(seed, reused.context("the function returned nothing")?)?;
    let mut store = bare::store(bare.engine());
    let bare_instance = pre
        .instantiate_async(&mut store)
        .await
        .map_err(anyhow::Error::from)?;
    let func = bare::get_func(&mut store, &bare_instance, &index).map_err(anyhow::Error::from)?;
    let (wasp, limit) = timing::compare(
        &budgets.call,
        &mut async || instance.call(seed.func, &seed.args).await,
        &mut async || bare::call(&mut store, func, &params).await,
    )
    .await;
    rows.push(row(
        "reused-instance call (`TaskInstance::call`)",
        wasp,
        "bare `Func::call_async` on one instance",
        limit,
        Some(2.0),
    ));
    Ok(rows)
}

/// One call through wasp, its result or why it failed.
async fn wasp_call(
    runtime: &Runtime,
    module: &std::sync::Arc<Module>,
    seed: &Seed,
) -> anyhow::Result<Value> {
    let report = runtime
        .call(module, seed.func, &seed.args, CallContext::default())
        .await;
    report.result?.context("the function returned nothing")
}

/// Checks a result against the seed's expected value (floats to a relative
/// 1e-12, as the guest may sum in another order).
fn check(seed: &Seed, got: Value) -> anyhow::Result<()> {
    let same = match (&got, &seed.expected) {
        (Value::F64(a), Value::F64(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        (a, b) => a == b,
    };
    ensure!(
        same,
        "{} returned {got:?}, expected {:?}",
        seed.func,
        seed.expected
    );
    Ok(())
}

/// The one compiled artifact in a fresh cache directory.
fn only_artifact(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            found.push(path);
        }
    }
    match <[PathBuf; 1]>::try_from(found) {
        Ok([path]) => Ok(path),
        Err(found) => bail!(
            "expected one artifact in {}, found {found:?}",
            dir.display()
        ),
    }
}
