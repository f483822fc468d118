//! The big-values benchmark of issue 13 ("Measure"): what a large argument
//! costs in wasp beside ipyparallel, Dask distributed and Ray, every system
//! in the same run, each with 2 engines (workers).
//!
//! ```text
//! bigvalues [--quick] [--skip-peers] [--no-same-host] [--python PATH] [--out PATH]
//! ```
//!
//! 1. **`apply_sync(norm, A, 2)`**, A a million float64 (8 MB): median and
//!    p99 of 20 calls after 2 warm-ups. wasp sends A as a typed list
//!    (`Value::from(Vec<f64>)`, its raw bytes on the wire) and, for
//!    contrast, as a list of a million `Value::F64` items; the peers send a
//!    numpy array (`lview.apply_sync`, `client.submit`, `f.remote`, and Ray
//!    once more with `ray.put(A)` done untimed and the ref passed). Goal:
//!    wasp's typed median at most a third of the best peer's.
//! 2. **Push of 100 MB** (12,500,000 float64) to both engines: wasp's
//!    `DirectView::push`, ipyparallel's `dv.push(..., block=True)`, Dask's
//!    `client.scatter(A, broadcast=True)`; median of 5 after one warm-up.
//!    Goal: wasp at least twice as fast as the best peer. If wasp refuses
//!    100 MB, the error is the figure and the largest size that passes
//!    (halving) is measured as well.
//! 3. **The floor**: the same bytes through a bare QUIC connection on
//!    loopback in this process (wasp's own endpoints and transport
//!    settings, one stream, no codec), and a copy of them into a fresh
//!    `Vec`, as into a wasm memory; wasp's distance to each is a ratio.
//! 4. **Memory**: the peak resident set (`VmHWM`) of this process (the
//!    client), the controller and each engine during each wasp phase,
//!    above its resident set just before (idle), per byte of the argument,
//!    plus what the client holds outside its resident set at the phase's
//!    end (its spare memory file, `same_host::spill`). Goal: at most 3x
//!    the argument. Each phase runs in a fresh cluster, and every peak is
//!    reset (`/proc/PID/clear_refs`) when it starts.
//!
//! `--quick` cuts the counts to 5 calls and 2 pushes (a smoke run, not
//! figures to quote); `--skip-peers` runs wasp and the floors alone;
//! `--no-same-host` starts wasp's clusters with `--no-same-host`, so that
//! every value goes through QUIC as it would between hosts (by default a
//! big value goes between processes on this host as a memory file,
//! `wasp_net::same_host`);
//! `--python` is the peers' interpreter (default
//! `target/peers-venv/bin/python`, made as `scripts/bench` makes it, with
//! numpy). Prints a markdown table and writes `results/bigvalues.json`.
//!
//! Run with `cargo build --release -j2 -p wasp-cli -p wasp-bench --bin wasp
//! --bin bigvalues && target/release/bigvalues` (the wasp binary must sit
//! beside this one).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use wasp_bench::cluster::Cluster;
use wasp_bench::peers;
use wasp_bench::workloads::{self, loadavg, unix_us};
use wasp_client::{Client, Module};
use wasp_net::SelfSignedCert;
use wasp_net::quinn;
use wasp_proto::msg::{Arg, TaskMeta};
use wasp_proto::{Array, EngineId, Value};
use wasp_task_artifacts as tasks;

/// Engines of each cluster, and workers of each peer's.
const ENGINES: u32 = 2;
/// Items of A, the argument of `norm` (8 MB of float64).
const NORM_ELEMENTS: usize = 1_000_000;
/// Items of the pushed value (100 MB of float64).
const PUSH_ELEMENTS: usize = 12_500_000;
/// Untimed calls before the timed ones.
const WARM_UPS: usize = 2;
/// Goal: the best peer's median over wasp's typed median, at least.
const NORM_GOAL: f64 = 3.0;
/// Goal: the best peer's push median over wasp's, at least.
const PUSH_GOAL: f64 = 2.0;
/// Goal: a process's peak above idle over the argument's size, at most.
const MEMORY_GOAL: f64 = 3.0;
/// How long one call or push may take before the run is called stuck.
const PATIENCE: Duration = Duration::from_secs(300);
/// The smallest push tried when 100 MB is refused (128 KB of float64).
const SMALLEST_PUSH: usize = 1 << 14;
/// Bytes in a megabyte, as the table counts them.
const MB: f64 = 1e6;

/// How much work a run does.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Timed `norm` calls of each system (after [`WARM_UPS`]).
    norm_calls: usize,
    /// Timed pushes of each system (after one untimed).
    push_reps: usize,
}

impl Plan {
    /// The issue's counts, or a smoke run's.
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                norm_calls: 5,
                push_reps: 2,
            }
        } else {
            Self {
                norm_calls: 20,
                push_reps: 5,
            }
        }
    }

    /// The counts, for the JSON's meta.
    fn to_json(self) -> Json {
        json!({
            "norm_elements": NORM_ELEMENTS,
            "norm_calls": self.norm_calls,
            "norm_warm_ups": WARM_UPS,
            "push_elements": PUSH_ELEMENTS,
            "push_reps": self.push_reps,
            "push_warm_ups": 1,
        })
    }
}

/// The command line.
struct Options {
    /// A smoke run: [`Plan::new`]'s cut counts.
    quick: bool,
    /// wasp and the floors alone.
    skip_peers: bool,
    /// The peers' Python, with ipyparallel, Dask, Ray and numpy.
    python: PathBuf,
    /// Where the JSON goes.
    out: PathBuf,
    /// Every value through QUIC, even on this host (`wasp cluster start
    /// --no-same-host`).
    no_same_host: bool,
}

/// Whether the clusters run with `--no-same-host` (set once, from the
/// command line, before the first cluster starts).
static NO_SAME_HOST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The `wasp cluster start` flags of every wasp phase's cluster.
fn cluster_flags() -> &'static [&'static str] {
    if NO_SAME_HOST.load(std::sync::atomic::Ordering::Relaxed) {
        &["--no-same-host"]
    } else {
        &[]
    }
}

/// Parses `[--quick] [--skip-peers] [--no-same-host] [--python PATH] [--out PATH]`.
fn options() -> anyhow::Result<Options> {
    let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut options = Options {
        quick: false,
        skip_peers: false,
        python: bench.join("../target/peers-venv/bin/python"),
        out: bench.join("results/bigvalues.json"),
        no_same_host: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--skip-peers" => options.skip_peers = true,
            "--no-same-host" => options.no_same_host = true,
            "--python" => options.python = args.next().context("--python needs a path")?.into(),
            "--out" => options.out = args.next().context("--out needs a path")?.into(),
            other => bail!(
                "unknown argument {other:?}; usage: bigvalues [--quick] [--skip-peers] [--no-same-host] [--python PATH] [--out PATH]"
            ),
        }
    }
    // Absolute, since the peers run in scratch folders; not canonical, since
    // a virtualenv's python is a symlink that must keep its own path.
    options.python = std::path::absolute(&options.python)?;
    Ok(options)
}

/// Runs the benchmark on a multi-thread runtime; an error is printed whole.
fn main() -> ExitCode {
    wasp_bench::options::block_on_main(run())
}

/// wasp's phases, the floors, the peers, then the table and the JSON.
async fn run() -> anyhow::Result<()> {
    let options = options()?;
    let plan = Plan::new(options.quick);
    NO_SAME_HOST.store(options.no_same_host, std::sync::atomic::Ordering::Relaxed);
    let command = wasp_bench::report::command_line("bigvalues");
    let mut meta = wasp_bench::report::run_meta("bigvalues", &command, options.quick);
    let started = Instant::now();
    let norm = Module::from_file(tasks::NORM)?;
    let a = data(NORM_ELEMENTS);
    let expected = norm2(&a);

    eprintln!("== wasp: apply_sync(norm, A, 2), A a typed list");
    let typed = wasp_norm(&norm, &a, expected, plan.norm_calls, Form::Typed).await?;
    eprintln!("== wasp: apply_sync(norm, A, 2), A a list of Value::F64");
    let per_item = wasp_norm(&norm, &a, expected, plan.norm_calls, Form::PerItem).await?;
    eprintln!("== wasp: apply_sync(norm, Reference(\"a\"), 2), A pushed once");
    let pushed = wasp_norm(&norm, &a, expected, plan.norm_calls, Form::Pushed).await?;
    eprintln!("== wasp: push of {} MB", PUSH_ELEMENTS * 8 / 1_000_000);
    let push = wasp_push(plan.push_reps).await;

    eprintln!("== floors");
    let mut floor_sizes = vec![NORM_ELEMENTS * 8, PUSH_ELEMENTS * 8];
    if let Some(fallback) = &push.fallback {
        floor_sizes.push(fallback.argument_bytes);
    }
    let mut floors = Vec::new();
    for &bytes in &floor_sizes {
        let reps = if bytes > NORM_ELEMENTS * 8 {
            plan.push_reps
        } else {
            plan.norm_calls
        };
        floors.push(Floor::quic(bytes, reps).await?);
        floors.push(Floor::memcpy(bytes, reps));
    }

    let peers = if options.skip_peers {
        None
    } else {
        Some(peer_figures(&options.python, plan).await)
    };

    let report = Report {
        typed,
        per_item,
        pushed,
        push,
        floors,
        peers,
    };
    println!("{}", report.table(plan));

    meta.insert("engines".into(), json!(ENGINES));
    meta.insert(
        "wasp_transport".into(),
        json!(if options.no_same_host {
            "QUIC only (--no-same-host)"
        } else {
            "same-host channel (memory files) where it reaches"
        }),
    );
    meta.insert("plan".into(), plan.to_json());
    meta.insert(
        "goals".into(),
        json!({
            "best_peer_norm_median_over_wasp_typed_at_least": NORM_GOAL,
            "best_peer_push_median_over_wasp_at_least": PUSH_GOAL,
            "peak_above_idle_over_argument_at_most": MEMORY_GOAL,
        }),
    );
    if !options.skip_peers {
        meta.insert("python".into(), json!(options.python));
    }
    let results = json!({
        "meta": meta,
        "wasp": {
            "norm_typed": report.typed.to_json(),
            "norm_per_item": report.per_item.to_json(),
            "norm_pushed": report.pushed.to_json(),
            "push": report.push.to_json(),
        },
        "floors": report.floors.iter().map(Floor::to_json).collect::<Vec<_>>(),
        "peers": report.peers,
        "summary": report.summary(),
        "loadavg_at_end": loadavg(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    wasp_bench::report::write_json(&options.out, &results)?;
    eprintln!("wrote {}", options.out.display());
    Ok(())
}

/// `n` float64s that are not all alike (so that nothing compresses or
/// shortcuts them) and the same in every run.
fn data(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7919) % 10_007) as f64 * 1e-4)
        .collect()
}

/// The 2-norm, to check the `norm` task's answers (within rounding: the
/// task sums in eight running sums).
fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The namespace name A is pushed under for [`Form::Pushed`].
const PUSHED_NAME: &str = "a";

/// How wasp's client sends A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `Value::from(Vec<f64>)`: a typed list, its raw bytes on the wire.
    Typed,
    /// `Value::List` of a `Value::F64` per item: a tagged node each.
    PerItem,
    /// Pushed to every engine once, untimed, and passed as
    /// `reference("a")`: wasp's counterpart of Ray's `ray.put(A)` row.
    Pushed,
}

impl Form {
    /// The argument, built from the client's own `a` (a copy: each call
    /// consumes its value, as a user's `Value::from(vec)` would), or the
    /// reference to the pushed `a`.
    fn arg(self, a: &[f64]) -> Arg {
        match self {
            Self::Typed => Arg::Value(Value::from(a.to_vec())),
            Self::PerItem => Arg::Value(Value::List(a.iter().map(|&x| Value::F64(x)).collect())),
            Self::Pushed => wasp_client::reference(PUSHED_NAME),
        }
    }

    /// The row's name in the table and the JSON.
    fn name(self) -> &'static str {
        match self {
            Self::Typed => "wasp, typed list (Value::from(Vec<f64>))",
            Self::PerItem => "wasp, per item (Value::List of Value::F64)",
            Self::Pushed => "wasp, A pushed to the engines once (untimed), reference(\"a\") passed",
        }
    }
}

/// One wasp phase, in a cluster of its own: its timings and what it cost
/// each process in memory.
struct Phase {
    /// What was timed.
    name: String,
    /// Bytes of the argument (8 per float64).
    argument_bytes: usize,
    /// Each timed call or push, in milliseconds.
    samples_ms: Vec<f64>,
    /// Each process's peak during the phase.
    memory: Vec<ProcessPeak>,
    /// For `norm`: where each timed call's time went.
    stages: Option<Stages>,
    /// Each hop of the timed calls or pushes on the wire, from the
    /// receivers' logs.
    hops: Option<Hops>,
    /// `/proc/loadavg` when the phase started.
    loadavg: String,
    /// For a push: whether each engine's value, pulled back after the
    /// phase, equals what was pushed (`Err` says why it could not be
    /// checked).
    verified: Option<Result<(), String>>,
}

/// A figure made of timed samples: a wasp phase or a floor.
trait Timed {
    /// Each timed sample, in milliseconds.
    fn samples_ms(&self) -> &[f64];

    /// The median of the samples, in milliseconds.
    fn median_ms(&self) -> f64 {
        workloads::median(self.samples_ms())
    }

    /// The p99 of the samples, in milliseconds.
    fn p99_ms(&self) -> f64 {
        workloads::p99(self.samples_ms())
    }
}

impl Timed for Phase {
    fn samples_ms(&self) -> &[f64] {
        &self.samples_ms
    }
}

impl Phase {
    /// The phase's figures, for the JSON.
    fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "argument_bytes": self.argument_bytes,
            "samples_ms": self.samples_ms,
            "median_ms": self.median_ms(),
            "p99_ms": self.p99_ms(),
            "memory": self.memory.iter().map(|p| p.to_json(self.argument_bytes)).collect::<Vec<_>>(),
            "stages": self.stages.as_ref().map(Stages::to_json),
            "hops": self.hops.as_ref().map(Hops::to_json),
            "loadavg_at_start": self.loadavg,
            "verified": self.verified.as_ref().map(|v| match v {
                Ok(()) => json!(true),
                Err(why) => json!({"error": why}),
            }),
        })
    }
}

/// `apply_sync(norm, A, 2)` on a load-balanced view, `calls` times after
/// [`WARM_UPS`], A sent in `form`; each answer is checked.
async fn wasp_norm(
    module: &Module,
    a: &[f64],
    expected: f64,
    calls: usize,
    form: Form,
) -> anyhow::Result<Phase> {
    let cluster = Cluster::start_logging_hops(ENGINES, cluster_flags())?;
    let client = cluster.client().await?;
    // Compiled on both engines before anything is measured.
    let everyone = client.view(client.ids().await?);
    everyone.load(module).await?;
    if form == Form::Pushed {
        // Before the memory window opens: the engines' idle holds A, as
        // the peers' object store holds `ray.put(A)`.
        everyone
            .push(vec![(PUSHED_NAME.to_owned(), Value::from(a.to_vec()))])
            .await?;
    }
    let loadavg = loadavg();
    let window = MemoryWindow::open(&processes(&cluster)?)?;
    let lview = client.load_balanced_view();
    let mut samples_ms = Vec::with_capacity(calls);
    let mut stages = Stages::default();
    let mut first_peaks = None;
    for i in 0..WARM_UPS + calls {
        // Built before the clock starts: the peers' A exists before their
        // call too.
        let arg = form.arg(a);
        let sent_us = unix_us();
        let started = Instant::now();
        let mut result = lview
            .apply_args(module, "norm", vec![arg, Value::F64(2.0).into()])
            .await?;
        let answer = result.get_one(Some(PATIENCE)).await?;
        let elapsed = started.elapsed();
        let received_us = unix_us();
        match answer {
            Some(Value::F64(got)) if (got - expected).abs() <= 1e-9 * expected => {}
            other => bail!("norm(A, 2) returned {other:?}, expected {expected}"),
        }
        if first_peaks.is_none() {
            first_peaks = Some(window.peaks()?);
        }
        if i >= WARM_UPS {
            samples_ms.push(elapsed.as_secs_f64() * 1e3);
            if let Some(Some(meta)) = result.metadata().first() {
                stages.add(sent_us, meta, received_us);
            }
        }
    }
    let memory = window.close(first_peaks)?;
    let hops = Hops::of_last(&cluster, calls, 1)?;
    drop(client);
    cluster.stop()?;
    Ok(Phase {
        name: format!("apply_sync(norm, A, 2): {}", form.name()),
        argument_bytes: a.len() * 8,
        samples_ms,
        memory,
        stages: Some(stages),
        hops,
        loadavg,
        verified: None,
    })
}

/// Each hop of a phase's timed calls or pushes on the wire, as the
/// receivers logged it (`wasp_net::framed::HOP_LOG`): from a frame's first
/// byte to its last, the controller's from the client, the engines' from
/// the controller; comparable with the QUIC floor of the same bytes.
struct Hops {
    /// Client to controller, ms.
    to_controller: Vec<f64>,
    /// Controller to an engine, ms.
    to_engine: Vec<f64>,
}

impl Hops {
    /// The hops of the last `timed` calls or pushes of `cluster`, each
    /// going to `engines` engines (1 for a call, every engine for a
    /// push); `None` if the logs hold fewer.
    fn of_last(cluster: &Cluster, timed: usize, engines: usize) -> anyhow::Result<Option<Self>> {
        let reads = cluster.hop_reads()?;
        // The last `n` hops into the controller, or into the engines.
        let last = |into_engines: bool, n: usize| -> Option<Vec<f64>> {
            let ms: Vec<f64> = reads
                .iter()
                .filter(|r| r.role.starts_with("engine") == into_engines)
                .map(|r| r.ms)
                .collect();
            ms.len().checked_sub(n).map(|skip| ms[skip..].to_vec())
        };
        let to_controller = last(false, timed);
        let to_engine = last(true, timed * engines);
        Ok(to_controller
            .zip(to_engine)
            .map(|(to_controller, to_engine)| Self {
                to_controller,
                to_engine,
            }))
    }

    /// The figures, for the JSON.
    fn to_json(&self) -> Json {
        json!({
            "client_to_controller_ms": self.to_controller,
            "client_to_controller_ms_median": workloads::median(&self.to_controller),
            "controller_to_engine_ms": self.to_engine,
            "controller_to_engine_ms_median": workloads::median(&self.to_engine),
        })
    }

    /// One line for the table, beside the floor's median `floor_ms`.
    fn line(&self, floor_ms: f64) -> String {
        let (to_controller, to_engine) = (
            workloads::median(&self.to_controller),
            workloads::median(&self.to_engine),
        );
        format!(
            "on the wire (first byte to last, as received): client to controller {to_controller:.1} ms ({:.1}x the floor), controller to engine {to_engine:.1} ms ({:.1}x)",
            to_controller / floor_ms,
            to_engine / floor_ms,
        )
    }
}

/// Where the time of each timed `norm` call went, from the task's
/// metadata (every process reads the same machine's clock).
#[derive(Default)]
struct Stages {
    /// From the client's call to the controller holding the task, ms.
    to_controller: Vec<f64>,
    /// From there to the engine starting it (queue, forwarding, decode), ms.
    to_start: Vec<f64>,
    /// The engine's run: the argument into the guest, the call, the
    /// result out, ms.
    run: Vec<f64>,
    /// From the engine's end to the client holding the result, ms.
    back: Vec<f64>,
}

impl Stages {
    /// Adds one call: sent at `sent_us`, its result received at
    /// `received_us`.
    fn add(&mut self, sent_us: u64, meta: &TaskMeta, received_us: u64) {
        let ms = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e3;
        self.to_controller.push(ms(sent_us, meta.submitted_us));
        self.to_start.push(ms(meta.submitted_us, meta.started_us));
        self.run.push(ms(meta.started_us, meta.completed_us));
        self.back.push(ms(meta.completed_us, received_us));
    }

    /// The median of each stage, for the JSON and the table.
    fn to_json(&self) -> Json {
        json!({
            "calls": self.run.len(),
            "to_controller_ms_median": workloads::median(&self.to_controller),
            "controller_to_engine_start_ms_median": workloads::median(&self.to_start),
            "engine_run_ms_median": workloads::median(&self.run),
            "engine_end_to_client_ms_median": workloads::median(&self.back),
        })
    }

    /// One line for the table.
    fn line(&self) -> String {
        format!(
            "client to controller {:.1} ms, controller to engine start {:.1} ms, \
             engine run {:.1} ms, engine end to client {:.1} ms",
            workloads::median(&self.to_controller),
            workloads::median(&self.to_start),
            workloads::median(&self.run),
            workloads::median(&self.back),
        )
    }
}

/// wasp's push: 100 MB, or the error that refused it and the largest size
/// that passed.
struct Push {
    /// The push of [`PUSH_ELEMENTS`], or its error.
    full: Result<Phase, String>,
    /// Sizes (float64 items) refused on the way down, with their errors.
    refused: Vec<(usize, String)>,
    /// When the full push failed: the largest halved size that passed.
    fallback: Option<Phase>,
}

impl Push {
    /// The figures, for the JSON.
    fn to_json(&self) -> Json {
        json!({
            "full": match &self.full {
                Ok(phase) => phase.to_json(),
                Err(err) => json!({"elements": PUSH_ELEMENTS, "bytes": PUSH_ELEMENTS * 8, "error": err}),
            },
            "refused": self.refused.iter().map(|(n, err)| json!({"elements": n, "bytes": n * 8, "error": err})).collect::<Vec<_>>(),
            "fallback": self.fallback.as_ref().map(Phase::to_json),
        })
    }
}

/// Pushes [`PUSH_ELEMENTS`] float64s; if that fails, halves until a push
/// passes. Each size gets a fresh cluster, so that a failure that broke a
/// connection does not fail the next size too.
async fn wasp_push(reps: usize) -> Push {
    let full = wasp_push_size(PUSH_ELEMENTS, reps)
        .await
        .map_err(|err| format!("{err:#}"));
    let mut push = Push {
        full,
        refused: Vec::new(),
        fallback: None,
    };
    if let Err(err) = &push.full {
        eprintln!("the push of {PUSH_ELEMENTS} float64s failed: {err}");
        let mut n = PUSH_ELEMENTS / 2;
        while n >= SMALLEST_PUSH {
            eprintln!("== wasp: push of {n} float64s");
            match wasp_push_size(n, reps).await {
                Ok(phase) => {
                    push.fallback = Some(phase);
                    break;
                }
                Err(err) => {
                    push.refused.push((n, format!("{err:#}")));
                    n /= 2;
                }
            }
        }
    }
    push
}

/// `DirectView::push` of `n` float64s as `x` to both engines: one untimed,
/// then `reps` timed; then each engine's `x` is pulled back and compared.
async fn wasp_push_size(n: usize, reps: usize) -> anyhow::Result<Phase> {
    let b = data(n);
    let cluster = Cluster::start_logging_hops(ENGINES, cluster_flags())?;
    let client = cluster.client().await?;
    let ids = client.ids().await?;
    let all = client.view(ids.clone());
    let loadavg = loadavg();
    let window = MemoryWindow::open(&processes(&cluster)?)?;
    let mut samples_ms = Vec::with_capacity(reps);
    let mut first_peaks = None;
    for i in 0..1 + reps {
        // A user's `Value::from(vec)` moves the vector; the copy is made
        // before the clock starts.
        let value = Value::from(b.clone());
        let started = Instant::now();
        all.push(vec![("x".to_owned(), value)])
            .await
            .with_context(|| format!("pushing {n} float64s ({} MB)", n * 8 / 1_000_000))?;
        if i >= 1 {
            samples_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        if first_peaks.is_none() {
            first_peaks = Some(window.peaks()?);
        }
    }
    let memory = window.close(first_peaks)?;
    let hops = Hops::of_last(&cluster, reps, ENGINES as usize)?;
    let verified = Some(verify_push(&client, &ids, &b).await);
    drop((all, client));
    cluster.stop()?;
    Ok(Phase {
        name: format!(
            "DirectView::push(x = {} MB of float64) to {ENGINES} engines",
            n * 8 / 1_000_000
        ),
        argument_bytes: n * 8,
        samples_ms,
        memory,
        stages: None,
        hops,
        loadavg,
        verified,
    })
}

/// Pulls `x` back from each engine, one at a time, and compares it with
/// what was pushed.
async fn verify_push(client: &Client, ids: &[EngineId], b: &[f64]) -> Result<(), String> {
    for &id in ids {
        let values = client
            .view(vec![id])
            .pull("x")
            .await
            .map_err(|err| format!("pulling x from engine {id}: {err}"))?;
        match values.first() {
            Some(Value::Array(array)) if matches!(&**array, Array::F64(v) if v == b) => {}
            Some(other) => {
                return Err(format!(
                    "engine {id} holds a {} as x, not the {} float64s pushed",
                    other.kind(),
                    b.len()
                ));
            }
            None => return Err(format!("engine {id} returned no x")),
        }
    }
    Ok(())
}

/// A process whose memory a phase measures.
#[derive(Clone, Debug)]
struct Process {
    /// `client` (this process), `controller` or `engine-N`.
    role: String,
    /// Its process id.
    pid: u32,
}

/// This process, the cluster's controller and its engines (from the
/// cluster's `cluster.pids`).
fn processes(cluster: &Cluster) -> anyhow::Result<Vec<Process>> {
    let mut all = vec![
        Process {
            role: "client".into(),
            pid: std::process::id(),
        },
        Process {
            role: "controller".into(),
            pid: cluster.controller_pid()?,
        },
    ];
    let engines = cluster.pids("engine")?;
    if engines.len() != ENGINES as usize {
        bail!(
            "cluster.pids names {} engines, expected {ENGINES}",
            engines.len()
        );
    }
    for (i, pid) in engines.into_iter().enumerate() {
        all.push(Process {
            role: format!("engine-{i}"),
            pid,
        });
    }
    Ok(all)
}

/// The processes' resident sets when a phase starts, their peaks reset.
struct MemoryWindow {
    /// Each process, its resident set at the start, and whether its peak
    /// could be reset.
    idle: Vec<(Process, u64, bool)>,
}

impl MemoryWindow {
    /// Resets each process's peak (`VmHWM`) to its present resident set
    /// (writing `5` to `/proc/PID/clear_refs`), then reads that resident
    /// set: the idle figure.
    fn open(processes: &[Process]) -> anyhow::Result<Self> {
        let mut idle = Vec::new();
        for process in processes {
            let reset = std::fs::write(format!("/proc/{}/clear_refs", process.pid), "5").is_ok();
            let (rss, _) = workloads::process_memory(process.pid)?;
            idle.push((process.clone(), rss, reset));
        }
        Ok(Self { idle })
    }

    /// Each process's peak so far, in the order of `open`'s processes.
    fn peaks(&self) -> anyhow::Result<Vec<u64>> {
        self.idle
            .iter()
            .map(|(process, ..)| Ok(workloads::process_memory(process.pid)?.1))
            .collect()
    }

    /// Each process's peak since [`MemoryWindow::open`] (since its start,
    /// where the reset failed), with its peak after the phase's first call
    /// (`first`, from [`MemoryWindow::peaks`]), which tells what one call
    /// costs from what the calls after it add.
    fn close(self, first: Option<Vec<u64>>) -> anyhow::Result<Vec<ProcessPeak>> {
        let first = first.unwrap_or_default();
        self.idle
            .into_iter()
            .enumerate()
            .map(|(i, (process, idle_rss, reset))| {
                let (_, peak) = workloads::process_memory(process.pid)?;
                // The client's spare memory file (`same_host::spill`) is
                // memory it holds outside its resident set.
                let unmapped = if process.pid == std::process::id() {
                    wasp_net::same_host::spare_bytes() as u64
                } else {
                    0
                };
                Ok(ProcessPeak {
                    process,
                    idle_rss,
                    first_call_peak: first.get(i).copied(),
                    peak,
                    unmapped,
                    reset,
                })
            })
            .collect()
    }
}

/// One process's memory during a phase.
struct ProcessPeak {
    /// Which process.
    process: Process,
    /// Its resident set when the phase started, in bytes.
    idle_rss: u64,
    /// Its peak resident set once the phase's first call (or push) was
    /// done, in bytes.
    first_call_peak: Option<u64>,
    /// Its peak resident set during the phase, in bytes.
    peak: u64,
    /// Memory it held at the end of the phase outside its resident set, in
    /// bytes (the client's spare memory file), counted as above idle.
    unmapped: u64,
    /// Whether the peak was reset at the start (else it is the peak since
    /// the process started).
    reset: bool,
}

impl ProcessPeak {
    /// Bytes of the peak above idle.
    fn above_idle(&self) -> u64 {
        self.peak.saturating_sub(self.idle_rss) + self.unmapped
    }

    /// The peak above idle over the argument's size.
    fn per_argument(&self, argument_bytes: usize) -> f64 {
        self.above_idle() as f64 / argument_bytes as f64
    }

    /// The figures, for the JSON.
    fn to_json(&self, argument_bytes: usize) -> Json {
        json!({
            "role": self.process.role,
            "pid": self.process.pid,
            "idle_rss_bytes": self.idle_rss,
            "peak_after_first_call_bytes": self.first_call_peak,
            "peak_bytes": self.peak,
            "unmapped_bytes": self.unmapped,
            "above_idle_bytes": self.above_idle(),
            "above_idle_over_argument": self.per_argument(argument_bytes),
            "goal_met": self.per_argument(argument_bytes) <= MEMORY_GOAL,
            "peak_reset_at_start": self.reset,
        })
    }
}

impl Timed for Floor {
    fn samples_ms(&self) -> &[f64] {
        &self.samples_ms
    }
}

/// A floor: the least the same bytes cost without wasp.
struct Floor {
    /// What was timed.
    name: String,
    /// `quic` or `memcpy`.
    kind: &'static str,
    /// Bytes moved.
    bytes: usize,
    /// Each timed transfer or copy, in milliseconds.
    samples_ms: Vec<f64>,
}

impl Floor {
    /// `bytes` sent `reps` times (after [`WARM_UPS`]) over one QUIC
    /// connection on loopback between two endpoints of this process, built
    /// as wasp builds its own (`wasp_net`: the same receive windows and
    /// TLS): each on a new stream, written whole, read whole into a fresh
    /// `Vec` by the server, which answers one byte; timed from opening the
    /// stream to that byte.
    async fn quic(bytes: usize, reps: usize) -> anyhow::Result<Self> {
        let cert = SelfSignedCert::generate(vec!["localhost".to_owned()])?;
        let server = wasp_net::server_endpoint(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), &cert)?;
        let addr = server.local_addr()?;
        let serving = tokio::spawn(serve_floor(server, bytes));
        let endpoint = wasp_net::client_endpoint()?;
        let connection = wasp_net::connect(&endpoint, addr, &cert.fingerprint()).await?;
        let payload = vec![0x5a_u8; bytes];
        let mut samples_ms = Vec::with_capacity(reps);
        for i in 0..WARM_UPS + reps {
            let started = Instant::now();
            let (mut send, mut recv) = connection.open_bi().await?;
            send.write_all(&payload).await?;
            send.finish()?;
            let ack = recv.read_to_end(1).await?;
            let elapsed = started.elapsed();
            if ack != [1] {
                bail!(
                    "the floor's server answered {ack:?}, not [1]: it did not read {bytes} bytes"
                );
            }
            if i >= WARM_UPS {
                samples_ms.push(elapsed.as_secs_f64() * 1e3);
            }
        }
        connection.close(quinn::VarInt::from_u32(0), b"done");
        endpoint.wait_idle().await;
        serving.abort();
        Ok(Self {
            name: format!("QUIC loopback, {} MB, one stream", bytes / 1_000_000),
            kind: "quic",
            bytes,
            samples_ms,
        })
    }

    /// `bytes` of float64 copied `reps` times (after [`WARM_UPS`]) into a
    /// fresh `Vec`, as an engine copies an argument into a new wasm memory.
    fn memcpy(bytes: usize, reps: usize) -> Self {
        let source = data(bytes / 8);
        let mut samples_ms = Vec::with_capacity(reps);
        for i in 0..WARM_UPS + reps {
            let started = Instant::now();
            let mut copy: Vec<f64> = Vec::with_capacity(source.len());
            copy.extend_from_slice(&source);
            let copy = std::hint::black_box(copy);
            let elapsed = started.elapsed();
            // Freed after the clock stops.
            drop(copy);
            if i >= WARM_UPS {
                samples_ms.push(elapsed.as_secs_f64() * 1e3);
            }
        }
        Self {
            name: format!("memcpy {} MB into a fresh Vec", bytes / 1_000_000),
            kind: "memcpy",
            bytes,
            samples_ms,
        }
    }

    /// The figures, for the JSON.
    fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "kind": self.kind,
            "bytes": self.bytes,
            "samples_ms": self.samples_ms,
            "median_ms": self.median_ms(),
            "p99_ms": self.p99_ms(),
        })
    }
}

/// The floor's server: accepts one connection and, on each stream, reads
/// everything (at most `bytes`) and answers one byte, until the client
/// closes.
async fn serve_floor(server: quinn::Endpoint, bytes: usize) {
    let Some(incoming) = server.accept().await else {
        return;
    };
    let Ok(connection) = incoming.await else {
        return;
    };
    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
        let Ok(received) = recv.read_to_end(bytes).await else {
            return;
        };
        let ack: &[u8] = if received.len() == bytes { &[1] } else { &[0] };
        drop(received);
        if send.write_all(ack).await.is_err() || send.finish().is_err() {
            return;
        }
    }
}

/// Every peer's script; a failure is recorded as `{"error": ...}`, not
/// fatal.
async fn peer_figures(python: &Path, plan: Plan) -> Json {
    let engines = ENGINES.to_string();
    let norm = [
        NORM_ELEMENTS.to_string(),
        plan.norm_calls.to_string(),
        WARM_UPS.to_string(),
    ];
    let push = [PUSH_ELEMENTS.to_string(), plan.push_reps.to_string()];
    let both: Vec<&str> = norm
        .iter()
        .chain(&push)
        .map(String::as_str)
        .chain([engines.as_str()])
        .collect();
    let norm_only: Vec<&str> = norm
        .iter()
        .map(String::as_str)
        .chain([engines.as_str()])
        .collect();
    let runs: [(&str, &str, &[&str]); 3] = [
        ("ipyparallel", "bigvalues_ipp.py", &both),
        ("dask", "bigvalues_dask.py", &both),
        ("ray", "bigvalues_ray.py", &norm_only),
    ];
    let mut all = serde_json::Map::new();
    for (name, script, args) in runs {
        eprintln!("== {name}: {script} {}", args.join(" "));
        let mut figures = peers::json_script(python, script, args)
            .await
            .unwrap_or_else(|err| {
                eprintln!("{name} failed: {err:#}");
                json!({"error": format!("{err:#}")})
            });
        figures["loadavg_at_end"] = json!(loadavg());
        all.insert(name.to_owned(), figures);
    }
    Json::Object(all)
}

/// One peer's figure, from its script's JSON.
struct PeerRow {
    /// `ipyparallel`, `dask`, `ray`, ...
    system: &'static str,
    /// What it timed, in its own API.
    call: &'static str,
    /// Median, p99 (milliseconds) and sample count, or why there are none.
    figures: Result<(f64, f64, usize), String>,
    /// Whether the row times the same thing as wasp's, so that it counts
    /// for the goal (Ray's `ray.put` once does not: A is not sent in the
    /// timed call).
    comparable: bool,
}

impl PeerRow {
    /// The row of `peers[system][key]`.
    fn of(
        peers: &Json,
        system: &'static str,
        key: &str,
        call: &'static str,
        comparable: bool,
    ) -> Self {
        let figure = &peers[system][key];
        let error = peers[system]["error"]
            .as_str()
            .or_else(|| figure["error"].as_str());
        let figures = match (
            error,
            figure["median_ms"].as_f64(),
            figure["p99_ms"].as_f64(),
            figure["samples_ms"].as_array(),
        ) {
            (Some(err), ..) => Err(err.to_owned()),
            (None, Some(median), Some(p99), Some(samples)) => Ok((median, p99, samples.len())),
            _ => Err(format!("no {key} figure in {system}'s output")),
        };
        Self {
            system,
            call,
            figures,
            comparable,
        }
    }

    /// The median, if measured.
    fn median_ms(&self) -> Option<f64> {
        self.figures.as_ref().ok().map(|f| f.0)
    }
}

/// The smallest median among `rows` that count for the goal, and whose.
fn best(rows: &[PeerRow]) -> Option<(f64, &'static str)> {
    rows.iter()
        .filter(|r| r.comparable)
        .filter_map(|r| r.median_ms().map(|m| (m, r.system)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// Every figure of the run.
struct Report {
    /// `apply_sync(norm, A, 2)`, A a typed list.
    typed: Phase,
    /// The same, A a list of `Value::F64`.
    per_item: Phase,
    /// `norm` with A pushed once and passed by reference.
    pushed: Phase,
    /// The push.
    push: Push,
    /// The floors.
    floors: Vec<Floor>,
    /// The peers' raw figures (`None` with `--skip-peers`).
    peers: Option<Json>,
}

impl Report {
    /// The peers' `norm` rows (none with `--skip-peers`).
    fn norm_rows(&self) -> Vec<PeerRow> {
        let Some(peers) = &self.peers else {
            return Vec::new();
        };
        vec![
            PeerRow::of(
                peers,
                "ipyparallel",
                "norm",
                "`lview.apply_sync(np.linalg.norm, A, 2)`",
                true,
            ),
            PeerRow::of(
                peers,
                "dask",
                "norm",
                "`client.submit(np.linalg.norm, A, 2, pure=False).result()`",
                true,
            ),
            PeerRow::of(peers, "ray", "norm", "`ray.get(f.remote(A, 2))`", true),
            PeerRow::of(
                peers,
                "ray",
                "norm_put",
                "`ray.get(f.remote(ref, 2))`, `ref = ray.put(A)` once, untimed",
                false,
            ),
        ]
    }

    /// The peers' push rows (none with `--skip-peers`).
    fn push_rows(&self) -> Vec<PeerRow> {
        let Some(peers) = &self.peers else {
            return Vec::new();
        };
        vec![
            PeerRow::of(
                peers,
                "ipyparallel",
                "push",
                "`dv.push({'x': A}, block=True)`",
                true,
            ),
            PeerRow::of(
                peers,
                "dask",
                "push",
                "`wait(client.scatter(A, broadcast=True, hash=False))`",
                true,
            ),
        ]
    }

    /// The floor of `kind` for `bytes`.
    fn floor(&self, kind: &str, bytes: usize) -> Option<&Floor> {
        self.floors
            .iter()
            .find(|f| f.kind == kind && f.bytes == bytes)
    }

    /// The push phase that passed: the full one, else the fallback.
    fn push_phase(&self) -> Option<&Phase> {
        self.push.full.as_ref().ok().or(self.push.fallback.as_ref())
    }

    /// The ratios and goals, for the JSON.
    fn summary(&self) -> Json {
        let norm_rows = self.norm_rows();
        let typed = self.typed.median_ms();
        let norm_best = best(&norm_rows);
        let with_put = norm_rows
            .iter()
            .filter_map(|r| r.median_ms().map(|m| (m, r.system)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let push_rows = self.push_rows();
        let push_best = best(&push_rows);
        let push_full = self.push.full.as_ref().ok();
        let floor_ratio = |kind: &str, phase: Option<&Phase>| {
            phase.and_then(|p| {
                self.floor(kind, p.argument_bytes)
                    .map(|f| p.median_ms() / f.median_ms())
            })
        };
        let memory = [&self.typed, &self.per_item, &self.pushed]
            .into_iter()
            .chain(self.push_phase())
            .map(|phase| {
                json!({
                    "phase": phase.name,
                    "worst_above_idle_over_argument": phase
                        .memory
                        .iter()
                        .map(|p| p.per_argument(phase.argument_bytes))
                        .fold(0.0, f64::max),
                    "goal_met": phase
                        .memory
                        .iter()
                        .all(|p| p.per_argument(phase.argument_bytes) <= MEMORY_GOAL),
                })
            })
            .collect::<Vec<_>>();
        json!({
            "norm": {
                "wasp_typed_median_ms": typed,
                "wasp_per_item_median_ms": self.per_item.median_ms(),
                "wasp_pushed_once_median_ms": self.pushed.median_ms(),
                "ray_put_over_wasp_pushed_once": norm_rows
                    .iter()
                    .find(|r| !r.comparable)
                    .and_then(PeerRow::median_ms)
                    .map(|m| m / self.pushed.median_ms()),
                "best_peer": norm_best.map(|b| b.1),
                "best_peer_median_ms": norm_best.map(|b| b.0),
                "best_peer_over_wasp_typed": norm_best.map(|b| b.0 / typed),
                "goal_met": norm_best.map(|b| b.0 / typed >= NORM_GOAL),
                "best_peer_including_ray_put": with_put.map(|b| b.1),
                "best_peer_including_ray_put_over_wasp_typed": with_put.map(|b| b.0 / typed),
                "goal_met_including_ray_put": with_put.map(|b| b.0 / typed >= NORM_GOAL),
            },
            "push": {
                "wasp_100mb_median_ms": push_full.map(Phase::median_ms),
                "wasp_100mb_error": self.push.full.as_ref().err(),
                "best_peer": push_best.map(|b| b.1),
                "best_peer_median_ms": push_best.map(|b| b.0),
                "best_peer_over_wasp": push_best.zip(push_full).map(|(b, w)| b.0 / w.median_ms()),
                "goal_met": push_best.zip(push_full).map(|(b, w)| b.0 / w.median_ms() >= PUSH_GOAL),
            },
            "floor": {
                "wasp_typed_over_quic_8mb": floor_ratio("quic", Some(&self.typed)),
                "wasp_typed_over_memcpy_8mb": floor_ratio("memcpy", Some(&self.typed)),
                "wasp_push_over_quic_same_size": floor_ratio("quic", self.push_phase()),
                "wasp_push_over_memcpy_same_size": floor_ratio("memcpy", self.push_phase()),
            },
            "memory": memory,
        })
    }

    /// The markdown tables, one per figure.
    fn table(&self, plan: Plan) -> String {
        let mut out = String::new();
        out.push_str(if cluster_flags().is_empty() {
            "wasp's clusters move big values between processes on this host as memory files \
             (the same-host channel).\n\n"
        } else {
            "wasp's clusters run with --no-same-host: every value goes through QUIC, as \
             between hosts.\n\n"
        });
        self.norm_table(plan, &mut out);
        self.push_table(plan, &mut out);
        self.floor_table(&mut out);
        self.memory_table(&mut out);
        out
    }

    /// Figure 1: `apply_sync(norm, A, 2)`.
    fn norm_table(&self, plan: Plan, out: &mut String) {
        let typed = self.typed.median_ms();
        out.push_str(&format!(
            "## apply_sync(norm, A, 2), A = {NORM_ELEMENTS} float64 ({} MB), {ENGINES} engines\n\n\
             {} calls after {WARM_UPS} warm-ups (with up to 50 samples, p99 is the slowest). \
             `this / wasp typed` is the row's median over wasp's typed median \
             (below 1x: faster than wasp).\n\n\
             | system | call | median | p99 | calls | this / wasp typed |\n\
             |---|---|---|---|---|---|\n",
            NORM_ELEMENTS * 8 / 1_000_000,
            plan.norm_calls,
        ));
        for (name, phase, call) in [
            (
                "wasp, typed list",
                &self.typed,
                "`lview.apply_async(&norm, \"norm\", vec![Value::from(a), Value::F64(2.0)])`, `get_one`",
            ),
            (
                "wasp, per item",
                &self.per_item,
                "the same, A as `Value::List(a.iter().map(\\|&x\\| Value::F64(x)).collect())`",
            ),
            (
                "wasp, A pushed once",
                &self.pushed,
                "`lview.apply_args(&norm, \"norm\", vec![reference(\"a\"), 2.0])` after `rc.view(ids).push(a)` once, untimed",
            ),
        ] {
            out.push_str(&format!(
                "| {name} | {call} | {:.2} ms | {:.2} ms | {} | {:.2}x |\n",
                phase.median_ms(),
                phase.p99_ms(),
                phase.samples_ms.len(),
                phase.median_ms() / typed,
            ));
        }
        let rows = self.norm_rows();
        for row in &rows {
            push_peer_row(out, row, |m| format!("{:.2}x", m / typed));
        }
        out.push_str("\nwasp's medians by stage (task metadata):\n");
        for (name, phase) in [
            ("typed", &self.typed),
            ("per item", &self.per_item),
            ("pushed once", &self.pushed),
        ] {
            if let Some(stages) = &phase.stages {
                out.push_str(&format!("- {name}: {}\n", stages.line()));
            }
        }
        match best(&rows) {
            Some((median, system)) => out.push_str(&format!(
                "\nGoal: wasp's typed median at most 1/{NORM_GOAL} of the best peer's \
                 (of those sending A with each call: {system}, {median:.2} ms): \
                 best peer / wasp typed = {:.2}x, met? {}.\n",
                median / typed,
                yes_no(median / typed >= NORM_GOAL),
            )),
            None => out.push_str("\nGoal: no peer figures (--skip-peers or every peer failed).\n"),
        }
        if let Some(put) = rows.iter().find(|r| !r.comparable)
            && let Some(median) = put.median_ms()
        {
            out.push_str(&format!(
                "Against Ray with `ray.put(A)` done once beforehand (A not sent in the timed call): \
                 {:.2}x, {}. Like for like, wasp with A pushed once: Ray's `ray.put` row / wasp's = {:.2}x.\n",
                median / typed,
                if median / typed >= NORM_GOAL {
                    "met"
                } else {
                    "not met"
                },
                median / self.pushed.median_ms(),
            ));
        }
        out.push('\n');
    }

    /// Figure 2: the push.
    fn push_table(&self, plan: Plan, out: &mut String) {
        out.push_str(&format!(
            "## Push of {} MB of float64 ({PUSH_ELEMENTS} values) to {ENGINES} engines\n\n\
             {} pushes after 1 warm-up. `this / wasp` is the row's median over wasp's \
             (below 1x: faster than wasp).\n\n\
             | system | call | median | p99 | pushes | this / wasp |\n\
             |---|---|---|---|---|---|\n",
            PUSH_ELEMENTS * 8 / 1_000_000,
            plan.push_reps,
        ));
        let rows = self.push_rows();
        let best_peer = best(&rows);
        let call = "`rc.view(ids).push(vec![(\"x\".into(), Value::from(vec))])`";
        match &self.push.full {
            Ok(phase) => out.push_str(&format!(
                "| wasp | {call} | {:.1} ms | {:.1} ms | {} | {} |\n",
                phase.median_ms(),
                phase.p99_ms(),
                phase.samples_ms.len(),
                "1.00x",
            )),
            Err(err) => out.push_str(&format!(
                "| wasp | {call} | **failed**: {} | - | - | - |\n",
                one_line(err)
            )),
        }
        for (n, err) in &self.push.refused {
            out.push_str(&format!(
                "| wasp, {} MB | the same | **failed**: {} | - | - | - |\n",
                n * 8 / 1_000_000,
                one_line(err)
            ));
        }
        if let Some(phase) = &self.push.fallback {
            out.push_str(&format!(
                "| wasp, {:.1} MB (largest that passed) | the same | {:.1} ms | {:.1} ms | {} | - |\n",
                phase.argument_bytes as f64 / MB,
                phase.median_ms(),
                phase.p99_ms(),
                phase.samples_ms.len(),
            ));
        }
        let wasp = self.push.full.as_ref().ok().map(Phase::median_ms);
        for row in &rows {
            push_peer_row(out, row, |m| {
                wasp.map_or("-".to_owned(), |wasp| format!("{:.2}x", m / wasp))
            });
        }
        match (best_peer, wasp) {
            (Some((median, system)), Some(wasp)) => out.push_str(&format!(
                "\nGoal: wasp at least {PUSH_GOAL}x faster than the best peer ({system}, {median:.1} ms): \
                 {:.2}x, met? {}.\n",
                median / wasp,
                yes_no(median / wasp >= PUSH_GOAL),
            )),
            (_, None) => out.push_str("\nGoal: not measurable, wasp's 100 MB push failed.\n"),
            (None, _) => out.push_str("\nGoal: no peer figures (--skip-peers or every peer failed).\n"),
        }
        if let Some(Err(why)) = self.push_phase().and_then(|p| p.verified.as_ref()) {
            out.push_str(&format!(
                "The pushed value could not be checked: {}\n",
                one_line(why)
            ));
        }
        out.push('\n');
    }

    /// Figure 3: the floors.
    fn floor_table(&self, out: &mut String) {
        out.push_str(
            "## The floor: the same bytes without wasp (this process, loopback)\n\n\
             | floor | median | p99 | samples | wasp figure | wasp median | wasp / floor |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for floor in &self.floors {
            let wasp = if floor.bytes == self.typed.argument_bytes {
                Some(("apply_sync(norm, A, 2), typed", &self.typed))
            } else {
                self.push_phase()
                    .filter(|p| p.argument_bytes == floor.bytes)
                    .map(|p| ("push to 2 engines", p))
            };
            let (label, median, ratio) = match wasp {
                Some((label, phase)) => (
                    label,
                    format!("{:.2} ms", phase.median_ms()),
                    format!("{:.1}x", phase.median_ms() / floor.median_ms()),
                ),
                None => ("-", "-".to_owned(), "-".to_owned()),
            };
            out.push_str(&format!(
                "| {} | {:.2} ms | {:.2} ms | {} | {label} | {median} | {ratio} |\n",
                floor.name,
                floor.median_ms(),
                floor.p99_ms(),
                floor.samples_ms.len(),
            ));
        }
        out.push('\n');
        for (label, phase) in [
            ("apply_sync(norm, A, 2), typed", Some(&self.typed)),
            ("push to 2 engines", self.push_phase()),
        ] {
            let Some(phase) = phase else { continue };
            let floor = self.floor("quic", phase.argument_bytes);
            if let (Some(hops), Some(floor)) = (&phase.hops, floor) {
                out.push_str(&format!(
                    "- {label}, each hop {}\n",
                    hops.line(floor.median_ms())
                ));
            }
        }
        out.push('\n');
    }

    /// Figure 4: memory.
    fn memory_table(&self, out: &mut String) {
        out.push_str(&format!(
            "## Peak resident memory above idle, per byte of the argument (goal <= {MEMORY_GOAL}x)\n\n\
             `held outside RSS` is the client's spare memory file at the phase's end (`same_host::spill`), counted in `above idle`.\n\n\
             | phase | process | argument | idle RSS | peak after 1st call, above idle | peak RSS | held outside RSS | above idle | above idle / argument | met? |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        ));
        let phases = [
            ("apply norm, typed", &self.typed),
            ("apply norm, per item", &self.per_item),
            ("apply norm, A pushed once", &self.pushed),
        ];
        let push = self.push_phase().map(|p| ("push", p));
        for (label, phase) in phases.into_iter().chain(push) {
            for p in &phase.memory {
                let ratio = p.per_argument(phase.argument_bytes);
                let first = p.first_call_peak.map_or("-".to_owned(), |peak| {
                    format!("{:.1} MB", peak.saturating_sub(p.idle_rss) as f64 / MB)
                });
                out.push_str(&format!(
                    "| {label} | {}{} | {:.1} MB | {:.1} MB | {first} | {:.1} MB | {:.1} MB | {:.1} MB | {:.2}x | {} |\n",
                    p.process.role,
                    if p.reset { "" } else { " (peak since start)" },
                    phase.argument_bytes as f64 / MB,
                    p.idle_rss as f64 / MB,
                    p.peak as f64 / MB,
                    p.unmapped as f64 / MB,
                    p.above_idle() as f64 / MB,
                    ratio,
                    yes_no(ratio <= MEMORY_GOAL),
                ));
            }
        }
    }
}

/// A peer's row: its figures, or its error, and `ratio` of its median.
fn push_peer_row(out: &mut String, row: &PeerRow, ratio: impl Fn(f64) -> String) {
    match &row.figures {
        Ok((median, p99, n)) => out.push_str(&format!(
            "| {} | {} | {median:.2} ms | {p99:.2} ms | {n} | {} |\n",
            row.system,
            row.call,
            ratio(*median),
        )),
        Err(err) => out.push_str(&format!(
            "| {} | {} | **failed**: {} | - | - | - |\n",
            row.system,
            row.call,
            one_line(err)
        )),
    }
}

/// `yes`, or a bold `no`.
fn yes_no(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// An error's text on one table line.
fn one_line(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}
