//! The noisy-neighbour benchmark of issue 12: does a tenant flooding the
//! cluster with long tasks slow down another tenant of the same weight with
//! short ones? Fair share promises each of two busy tenants half of the
//! engine time; this measures what the quiet tenant's latency and
//! throughput become when the other one takes every engine it can get.
//!
//! ```text
//! noisy [--quick] [--modes off,on] [--out PATH]
//! ```
//!
//! On a real local cluster of 2 engines (`wasp cluster start -n 2
//! --daemon`), two tenants of weight 1, `a` and `b` (`wasp tenant add`):
//!
//! 1. `cpu(n)` (`tasks/rust/cpu`) is calibrated on the cluster, alone, to
//!    about 100 ms (A's tasks) and about 1 ms (B's) a call;
//! 2. **B alone**: B makes 1,000 `apply_sync(cpu, n_1ms)` round trips, one
//!    at a time (each latency recorded), then one `map` of 1,000 items at
//!    chunksize 1 (its wall time, `T` on 2 engines);
//! 3. A floods: 10,000 tasks of `cpu(n_100ms)` (maps of 50 at chunksize 1,
//!    not waited for) with, after every 50, one `spin` of `tasks/rust/evil`
//!    that never returns and is stopped by its 1 s wall-time limit (those
//!    fail with a timeout, as they should; they are not errors here);
//! 4. once A's tasks hold both engines, **B beside A**: B's round trips and
//!    map again, as in 2;
//! 5. A's unfinished tasks are aborted and the cluster stopped.
//!
//! The goals: B's p99 beside A at most 2x B's p99 alone, and B's map beside
//! A within 2x of its fair half of the cluster (half the cluster takes
//! about `2T`, so at most `2 x 2T`). Both are measured in each mode, each
//! mode in a fresh cluster: without time slicing (`off`, `--time-slice
//! off`) and with it
//! (`on`: `wasp cluster start --time-slice on`, the default, an engine may run another
//! tenant's task beside a running one, switching at epoch ticks). The
//! calibration of the first mode serves every mode, so all run the same
//! work. `--quick` cuts B's counts to 200 and A's flood to 2,000 tasks (a
//! smoke run). Prints a markdown table and writes `results/noisy.json`.
//!
//! Run with `cargo build --release -j2 -p wasp-cli -p wasp-bench --bin wasp
//! --bin noisy && target/release/noisy` (the wasp binary must sit beside
//! this one).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use wasp_bench::cluster::Cluster;
use wasp_bench::workloads::{self, percentile, unix_us};
use wasp_client::{AsyncResult, Client, ClientError, Module};
use wasp_proto::msg::{ErrorKind, TaskMeta};
use wasp_proto::{TaskId, Value};
use wasp_task_artifacts as tasks;

/// Engines of the cluster.
const ENGINES: u32 = 2;
/// Seconds of CPU in one of A's tasks.
const A_TASK_S: f64 = 0.100;
/// Seconds of CPU in one of B's tasks.
const B_TASK_S: f64 = 0.001;
/// One of A's spinning tasks after every this many of its CPU tasks.
const SPIN_EVERY: usize = 50;
/// The wall-time limit that stops each spinning task.
const SPIN_LIMIT: Duration = Duration::from_secs(1);
/// Goal: B's p99 beside A over B's p99 alone, at most.
const P99_GOAL: f64 = 2.0;
/// Goal: B's map beside A over its fair half (twice its map alone), at
/// most.
const MAP_GOAL: f64 = 2.0;
/// How long B waits for one round trip, and anything else waits, before
/// the run is called stuck (not a figure).
const PATIENCE: Duration = Duration::from_secs(300);
/// How long A's flood runs alone, once it holds every engine, before B is
/// timed beside it.
const SETTLE: Duration = Duration::from_millis(500);

/// How much work a run does.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// A's CPU tasks (spinning ones come on top, one per [`SPIN_EVERY`]).
    a_tasks: usize,
    /// B's `apply_sync` round trips in each phase.
    b_applies: usize,
    /// Items of B's map (chunksize 1) in each phase.
    b_items: usize,
}

impl Plan {
    /// The issue's counts, or a smoke run's.
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                a_tasks: 2_000,
                b_applies: 200,
                b_items: 200,
            }
        } else {
            Self {
                a_tasks: 10_000,
                b_applies: 1_000,
                b_items: 1_000,
            }
        }
    }

    /// The counts, for the JSON's meta.
    fn to_json(self) -> Json {
        json!({
            "a_cpu_tasks": self.a_tasks,
            "a_spin_tasks": self.a_tasks.div_ceil(SPIN_EVERY),
            "b_applies": self.b_applies,
            "b_map_items": self.b_items,
        })
    }
}

/// Whether the controller runs with time slicing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Plain: an engine runs one task at a time, to its end.
    Off,
    /// `--time-slice`: an engine may run another tenant's task beside a
    /// running one.
    On,
}

impl Mode {
    /// `off` or `on`, as `--modes` names them.
    fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "off" => Ok(Self::Off),
            "on" => Ok(Self::On),
            other => bail!("unknown mode {other:?} (expected off or on)"),
        }
    }

    /// The mode's name in the table and the JSON.
    fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
        }
    }

    /// The `wasp cluster start` flags of the mode.
    fn flags(self) -> &'static [&'static str] {
        match self {
            Self::Off => &["--time-slice", "off"],
            Self::On => &["--time-slice", "on"],
        }
    }
}

/// The command line.
struct Options {
    /// A smoke run: [`Plan::new`]'s cut counts.
    quick: bool,
    /// The modes to run, in order, each in a fresh cluster.
    modes: Vec<Mode>,
    /// Where the JSON goes.
    out: PathBuf,
}

/// Parses `[--quick] [--modes off,on] [--out PATH]`.
fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        quick: false,
        modes: vec![Mode::Off, Mode::On],
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/noisy.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--modes" => {
                let list = args.next().context("--modes needs a list, e.g. off,on")?;
                options.modes = list
                    .split(',')
                    .map(|m| Mode::parse(m.trim()))
                    .collect::<anyhow::Result<_>>()?;
                if options.modes.is_empty() {
                    bail!("--modes needs at least one of off, on");
                }
            }
            "--out" => options.out = args.next().context("--out needs a path")?.into(),
            other => {
                bail!("unknown argument {other:?} (expected --quick, --modes off,on or --out PATH)")
            }
        }
    }
    Ok(options)
}

/// Runs the benchmark on a multi-thread runtime; an error is printed whole.
fn main() -> ExitCode {
    wasp_bench::options::block_on_main(run())
}

/// Every mode, then the table and the JSON.
async fn run() -> anyhow::Result<()> {
    let options = options()?;
    let plan = Plan::new(options.quick);
    let command = wasp_bench::report::command_line("noisy");
    let mut meta = wasp_bench::report::run_meta("noisy", &command, options.quick);
    let started = Instant::now();
    let cpu = Module::from_file(tasks::CPU)?;
    let evil = Module::from_file(tasks::EVIL)?;
    check_time_slice_flag()?;

    let mut calibration = None;
    let mut modes = Vec::new();
    for &mode in &options.modes {
        eprintln!("== time slicing {}", mode.name());
        let figures = run_mode(mode, plan, &cpu, &evil, &mut calibration)
            .await
            .with_context(|| format!("time slicing {}", mode.name()))?;
        modes.push(figures);
    }

    println!("{}", table(plan, &modes));
    meta.insert("engines".into(), json!(ENGINES));
    meta.insert("plan".into(), plan.to_json());
    meta.insert(
        "calibration".into(),
        calibration.map_or(Json::Null, Calibration::to_json),
    );
    meta.insert("spin_every".into(), json!(SPIN_EVERY));
    meta.insert("spin_limit_s".into(), json!(SPIN_LIMIT.as_secs_f64()));
    meta.insert(
        "goals".into(),
        json!({
            "p99_beside_a_over_alone_at_most": P99_GOAL,
            "map_beside_a_over_twice_alone_at_most": MAP_GOAL,
        }),
    );
    let results = json!({
        "meta": meta,
        "modes": modes.iter().map(ModeFigures::to_json).collect::<Vec<_>>(),
        "loadavg_at_end": std::fs::read_to_string("/proc/loadavg").ok().map(|l| l.trim().to_owned()),
        "seconds": started.elapsed().as_secs_f64(),
    });
    wasp_bench::report::write_json(&options.out, &results)?;
    eprintln!("wrote {}", options.out.display());
    Ok(())
}

/// Fails at once, rather than when a mode's cluster starts, when the
/// `wasp` binary has no `--time-slice on|off` flag.
fn check_time_slice_flag() -> anyhow::Result<()> {
    let wasp = wasp_bench::cluster::wasp_binary()?;
    let out = std::process::Command::new(&wasp)
        .args(["cluster", "start", "--help"])
        .output()
        .with_context(|| format!("running {} cluster start --help", wasp.display()))?;
    if !String::from_utf8_lossy(&out.stdout).contains("--time-slice") {
        bail!(
            "{} has no `cluster start --time-slice on|off` flag: rebuild it",
            wasp.display()
        );
    }
    Ok(())
}

/// One mode, in a cluster of its own: B alone, then B beside A's flood.
async fn run_mode(
    mode: Mode,
    plan: Plan,
    cpu: &Module,
    evil: &Module,
    calibration: &mut Option<Calibration>,
) -> anyhow::Result<ModeFigures> {
    let cluster = Cluster::start_with(ENGINES, mode.flags())?;
    let admin = cluster.client().await?;
    let a = cluster.add_tenant("a", 1).await?;
    let b = cluster.add_tenant("b", 1).await?;
    // Every module compiled on every engine (and uploaded for each tenant)
    // before anything is timed.
    load_everywhere(&a, &[cpu, evil]).await?;
    load_everywhere(&b, &[cpu]).await?;

    let calibrated = match *calibration {
        Some(calibrated) => calibrated,
        None => {
            let calibrated = Calibration::measure(&b, cpu).await?;
            eprintln!(
                "calibrated: cpu({}) takes {:.1} ms (A's task), cpu({}) takes {:.3} ms (B's)",
                calibrated.n_long,
                calibrated.long_s * 1e3,
                calibrated.n_short,
                calibrated.short_s * 1e3,
            );
            *calibration = Some(calibrated);
            calibrated
        }
    };
    let b_work = BWork::new(calibrated.n_short);
    b_work.warm_up(&b, cpu).await?;

    eprintln!("B alone");
    let alone = b_work.measure(&b, cpu, plan).await?;

    eprintln!("A floods");
    let mut flood = Flood::submit(&a, cpu, evil, calibrated.n_long, plan.a_tasks).await?;
    flood.wait_accepted().await?;
    let busy_after_s = wait_busy(&admin).await?;
    tokio::time::sleep(SETTLE).await;

    eprintln!("B beside A");
    let window_start = unix_us();
    let beside = b_work.measure(&b, cpu, plan).await?;
    let window = (window_start, unix_us());
    let a_figures = flood.tally(window).await;
    flood.abort(&a).await?;

    drop((admin, a, b));
    cluster.stop()?;
    Ok(ModeFigures {
        mode,
        alone,
        beside,
        a: a_figures,
        busy_after_s,
    })
}

/// Loads (compiles and caches) `modules` on every engine, as `client`'s
/// tenant.
async fn load_everywhere(client: &Client, modules: &[&Module]) -> anyhow::Result<()> {
    let all = client.view(client.ids().await?);
    for module in modules {
        all.load(module).await?;
    }
    Ok(())
}

/// Waits until every engine holds at least one task (the admin sees every
/// tenant's load); returns how long that took, in seconds.
async fn wait_busy(admin: &Client) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        let status = admin.status().await?;
        if status.engines.len() >= ENGINES as usize
            && status.engines.iter().all(|e| e.outstanding >= 1)
        {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > PATIENCE {
            bail!("A's tasks did not reach every engine in {PATIENCE:?}: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The step counts of `cpu(n)` for A's and B's tasks, and what a call of
/// each took on the cluster alone (the engine's own start and end times).
#[derive(Clone, Copy, Debug)]
struct Calibration {
    /// About [`A_TASK_S`] of CPU.
    n_long: u64,
    /// About [`B_TASK_S`] of CPU.
    n_short: u64,
    /// Seconds one call of `cpu(n_long)` took (median of three).
    long_s: f64,
    /// Seconds one call of `cpu(n_short)` took (median of three).
    short_s: f64,
}

impl Calibration {
    /// Times a probe, scales it to A's task length, times that and scales
    /// again (a short probe overstates the per-step cost by the call's
    /// fixed costs), then takes B's from A's.
    async fn measure(client: &Client, cpu: &Module) -> anyhow::Result<Self> {
        const PROBE: u64 = 2_000_000;
        let steps_for = |n: u64, seconds: f64, target: f64| -> anyhow::Result<u64> {
            if seconds <= 0.0 || !seconds.is_finite() {
                bail!("cpu({n}) took {seconds} s: cannot calibrate");
            }
            Ok(((n as f64 * target / seconds) as u64).max(1))
        };
        let probe_s = workloads::cpu_seconds(client, cpu, PROBE).await?;
        let guess = steps_for(PROBE, probe_s, A_TASK_S)?;
        let guess_s = workloads::cpu_seconds(client, cpu, guess).await?;
        let n_long = steps_for(guess, guess_s, A_TASK_S)?;
        let n_short = steps_for(n_long, A_TASK_S, B_TASK_S)?;
        Ok(Self {
            n_long,
            n_short,
            long_s: workloads::cpu_seconds(client, cpu, n_long).await?,
            short_s: workloads::cpu_seconds(client, cpu, n_short).await?,
        })
    }

    /// The figures, for the JSON's meta.
    fn to_json(self) -> Json {
        json!({
            "n_100ms": self.n_long,
            "n_1ms": self.n_short,
            "call_ms_n_100ms": self.long_s * 1e3,
            "call_ms_n_1ms": self.short_s * 1e3,
        })
    }
}

/// B's work: `cpu(n)` with `n` for about 1 ms, and the value it returns.
struct BWork {
    /// Steps of each call.
    n: u64,
    /// What each call returns.
    expected: Value,
}

impl BWork {
    /// B's work for `n` steps, its expected result computed here.
    fn new(n: u64) -> Self {
        Self {
            n,
            expected: Value::U64(cpu_here(n)),
        }
    }

    /// The arguments of one call.
    fn args(&self) -> Vec<Value> {
        vec![Value::U64(self.n)]
    }

    /// A few round trips, untimed, so that the first timed one pays for
    /// nothing new.
    async fn warm_up(&self, b: &Client, cpu: &Module) -> anyhow::Result<()> {
        let lview = b.load_balanced_view();
        for _ in 0..20 {
            self.check(lview.apply_sync(cpu, "cpu", self.args()).await?)?;
        }
        Ok(())
    }

    /// Fails unless `result` is what `cpu(n)` returns.
    fn check(&self, result: Option<Value>) -> anyhow::Result<()> {
        if result.as_ref() != Some(&self.expected) {
            bail!(
                "cpu({}) returned {result:?}, expected {:?}",
                self.n,
                self.expected
            );
        }
        Ok(())
    }

    /// B's two figures: `applies` round trips one at a time (each
    /// latency), then the wall time of a map of `items` (chunksize 1),
    /// from the call to the last result; every result checked.
    async fn measure(&self, b: &Client, cpu: &Module, plan: Plan) -> anyhow::Result<BFigures> {
        let lview = b.load_balanced_view();
        let mut latencies_ms = Vec::with_capacity(plan.b_applies);
        let mut stages = Vec::with_capacity(plan.b_applies);
        for _ in 0..plan.b_applies {
            let started = Instant::now();
            let sent_us = unix_us();
            let mut pending = lview.apply_async(cpu, "cpu", self.args()).await?;
            let result = pending.get_one(Some(PATIENCE)).await?;
            latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
            let received_us = unix_us();
            if let Some(Some(meta)) = pending.metadata().first() {
                stages.push(Stages::of(sent_us, meta, received_us));
            }
            self.check(result)?;
        }
        latencies_ms.sort_by(f64::total_cmp);

        let items = vec![Value::U64(self.n); plan.b_items];
        let started = Instant::now();
        let results = lview
            .with_chunksize(1)
            .map_async(cpu, "cpu", vec![items])
            .await?
            .get(Some(PATIENCE))
            .await?;
        let map_s = started.elapsed().as_secs_f64();
        if results.len() != plan.b_items {
            bail!("{} results for {} items", results.len(), plan.b_items);
        }
        for result in results {
            self.check(result)?;
        }
        Ok(BFigures {
            latencies_ms,
            stages,
            map_s,
        })
    }
}

/// The `cpu` task's loop (`tasks/rust/cpu`), run here to check its results.
fn cpu_here(n: u64) -> u64 {
    let mut s: u64 = 0;
    for i in 0..n {
        s = s.wrapping_mul(31).wrapping_add(i) % 1_000_003;
    }
    s
}

/// B's figures in one phase.
struct BFigures {
    /// Every round trip, in milliseconds, sorted.
    latencies_ms: Vec<f64>,
    /// Where each round trip's time went, in submission order.
    stages: Vec<Stages>,
    /// The map's wall time, in seconds.
    map_s: f64,
}

impl BFigures {
    /// The median round trip, in milliseconds.
    fn median_ms(&self) -> f64 {
        percentile(&self.latencies_ms, 0.5)
    }

    /// The p99 round trip, in milliseconds.
    fn p99_ms(&self) -> f64 {
        percentile(&self.latencies_ms, 0.99)
    }

    /// The figures and every round trip, for the JSON.
    fn to_json(&self) -> Json {
        json!({
            "applies": self.latencies_ms.len(),
            "median_ms": self.median_ms(),
            "p99_ms": self.p99_ms(),
            "max_ms": self.latencies_ms.last().copied(),
            "map_s": self.map_s,
            "stages_ms": Stages::summary(&self.stages),
            "latencies_ms": self
                .latencies_ms
                .iter()
                .map(|ms| (ms * 1e3).round() / 1e3)
                .collect::<Vec<_>>(),
        })
    }
}

/// Where one round trip's time went, in milliseconds, by the clocks of
/// the client and of the tasks' metadata (one machine, one clock): to the
/// controller, waiting for and travelling to an engine, running, and back.
#[derive(Clone, Copy, Debug)]
struct Stages {
    to_controller: f64,
    to_start: f64,
    run: f64,
    back: f64,
}

impl Stages {
    fn of(sent_us: u64, meta: &TaskMeta, received_us: u64) -> Self {
        let ms = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e3;
        Self {
            to_controller: ms(sent_us, meta.submitted_us),
            to_start: ms(meta.submitted_us, meta.started_us),
            run: ms(meta.started_us, meta.completed_us),
            back: ms(meta.completed_us, received_us),
        }
    }

    /// Each stage's median and p99, and those of the round trips at or
    /// above the p99 (where the tail's time went).
    fn summary(stages: &[Stages]) -> Json {
        let total = |s: &Stages| s.to_controller + s.to_start + s.run + s.back;
        let mut by_total = stages.to_vec();
        by_total.sort_by(|a, b| total(a).total_cmp(&total(b)));
        let tail = &by_total[by_total.len() * 99 / 100..];
        let stage = |pick: fn(&Stages) -> f64| {
            let mut all: Vec<f64> = stages.iter().map(pick).collect();
            all.sort_by(f64::total_cmp);
            let tail_mean = tail.iter().map(pick).sum::<f64>() / tail.len().max(1) as f64;
            json!({
                "median": percentile(&all, 0.5),
                "p99": percentile(&all, 0.99),
                "mean_in_tail": tail_mean,
            })
        };
        let slowest: Vec<Json> = by_total
            .iter()
            .rev()
            .take(10)
            .map(|s| json!([s.to_controller, s.to_start, s.run, s.back]))
            .collect();
        json!({
            "to_controller": stage(|s| s.to_controller),
            "to_start": stage(|s| s.to_start),
            "run": stage(|s| s.run),
            "back": stage(|s| s.back),
            "slowest_10": slowest,
        })
    }
}

/// A's flood: maps of [`SPIN_EVERY`] CPU tasks, each followed by one
/// spinning task, submitted in that order (a tenant's tasks are dealt in
/// order), so spins keep coming while B is timed.
struct Flood {
    /// The maps of CPU tasks, in submission order.
    maps: Vec<AsyncResult>,
    /// The spinning tasks, one after each map.
    spins: Vec<AsyncResult>,
}

/// What A's flood did while B was timed beside it.
#[derive(Debug, Default)]
struct AFigures {
    /// CPU tasks finished by the end of B's phase.
    cpu_finished: usize,
    /// Spinning tasks stopped by their time limit, as intended.
    spins_timed_out: usize,
    /// Anything else that ended A's tasks (a CPU task failing, a spin
    /// returning or failing otherwise): a bench error, reported.
    unexpected: Vec<String>,
    /// The share of engine time (both engines) A's tasks spanned during
    /// B's phase, from their start and end times (with time slicing, a
    /// task's span includes the time it was suspended).
    busy_share: f64,
}

impl Flood {
    /// Submits `tasks` CPU tasks of `cpu(n)` and the spinning ones among
    /// them, without waiting for any.
    async fn submit(
        a: &Client,
        cpu: &Module,
        evil: &Module,
        n: u64,
        tasks: usize,
    ) -> anyhow::Result<Self> {
        let cpu_view = a.load_balanced_view().with_chunksize(1);
        let spin_view = a.load_balanced_view().with_timeout(SPIN_LIMIT);
        let (mut maps, mut spins) = (Vec::new(), Vec::new());
        let mut left = tasks;
        while left > 0 {
            let batch = left.min(SPIN_EVERY);
            maps.push(
                cpu_view
                    .map_async(cpu, "cpu", vec![vec![Value::U64(n); batch]])
                    .await?,
            );
            spins.push(spin_view.apply_async(evil, "spin", vec![]).await?);
            left -= batch;
        }
        Ok(Self { maps, spins })
    }

    /// Waits until the controller has accepted every task of the flood.
    async fn wait_accepted(&mut self) -> anyhow::Result<()> {
        for result in self.maps.iter_mut().chain(self.spins.iter_mut()) {
            if !result.wait_accepted(Some(PATIENCE)).await {
                bail!("A's tasks were not accepted in {PATIENCE:?}");
            }
        }
        Ok(())
    }

    /// What has finished, and A's share of the engines over `window`
    /// (Unix microseconds).
    async fn tally(&mut self, window: (u64, u64)) -> AFigures {
        let mut figures = AFigures::default();
        let mut busy_us = 0u64;
        for (result, spin) in self
            .maps
            .iter_mut()
            .map(|r| (r, false))
            .chain(self.spins.iter_mut().map(|r| (r, true)))
        {
            let finished = result.progress();
            for meta in result.metadata().into_iter().flatten() {
                let start = meta.started_us.max(window.0);
                let end = meta.completed_us.min(window.1);
                busy_us += end.saturating_sub(start);
            }
            if spin {
                if finished == 1 {
                    match result.get_one(Some(Duration::ZERO)).await {
                        Err(ClientError::Remote(err)) if err.kind == ErrorKind::Timeout => {
                            figures.spins_timed_out += 1;
                        }
                        Err(err) => figures.unexpected.push(format!("a spin failed: {err}")),
                        Ok(value) => figures
                            .unexpected
                            .push(format!("a spin returned {value:?}")),
                    }
                }
            } else {
                figures.cpu_finished += finished;
                if result.ready()
                    && let Err(err) = result.get(Some(Duration::ZERO)).await
                {
                    figures.unexpected.push(format!("a CPU task failed: {err}"));
                }
            }
        }
        let span_us = window.1.saturating_sub(window.0) * u64::from(ENGINES);
        figures.busy_share = busy_us as f64 / span_us.max(1) as f64;
        figures
    }

    /// Aborts every task of the flood not finished yet, so that the
    /// cluster stops at once rather than after A's backlog.
    async fn abort(&self, a: &Client) -> anyhow::Result<()> {
        let mut unfinished: Vec<TaskId> = Vec::new();
        for result in self.maps.iter().chain(&self.spins) {
            let meta = result.metadata();
            unfinished.extend(
                result
                    .msg_ids()
                    .iter()
                    .zip(meta)
                    .filter(|(_, m)| m.is_none())
                    .map(|(id, _)| *id),
            );
        }
        if !unfinished.is_empty() {
            a.abort(&unfinished).await.context("aborting A's flood")?;
        }
        Ok(())
    }
}

/// One mode's figures.
struct ModeFigures {
    /// Time slicing off or on.
    mode: Mode,
    /// B before A's flood.
    alone: BFigures,
    /// B during A's flood.
    beside: BFigures,
    /// What A's flood did meanwhile.
    a: AFigures,
    /// Seconds from the flood accepted to A's tasks on every engine.
    busy_after_s: f64,
}

impl ModeFigures {
    /// B's p99 beside A over B's p99 alone.
    fn p99_ratio(&self) -> f64 {
        self.beside.p99_ms() / self.alone.p99_ms()
    }

    /// B's map beside A over its fair half of the cluster: twice its map
    /// alone.
    fn map_ratio(&self) -> f64 {
        self.beside.map_s / (2.0 * self.alone.map_s)
    }

    /// The mode's figures, ratios and goals, for the JSON.
    fn to_json(&self) -> Json {
        json!({
            "time_slice": self.mode.name(),
            "cluster_flags": self.mode.flags(),
            "b_alone": self.alone.to_json(),
            "b_beside_a": self.beside.to_json(),
            "p99_beside_over_alone": self.p99_ratio(),
            "map_beside_over_twice_alone": self.map_ratio(),
            "p99_goal_met": self.p99_ratio() <= P99_GOAL,
            "map_goal_met": self.map_ratio() <= MAP_GOAL,
            "a": {
                "busy_after_accepted_s": self.busy_after_s,
                "cpu_tasks_finished": self.a.cpu_finished,
                "spins_timed_out": self.a.spins_timed_out,
                "busy_share_during_b": self.a.busy_share,
                "unexpected": self.a.unexpected,
            },
        })
    }
}

/// The markdown table: a row per mode.
fn table(plan: Plan, modes: &[ModeFigures]) -> String {
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    let mut out = format!(
        "## Noisy neighbour: tenant B (1 ms tasks) beside tenant A's flood \
         (100 ms tasks, 1 s spins), {ENGINES} engines, equal weights\n\n\
         | time slicing | B alone: median | p99 | map of {items} | B beside A: median | p99 | map of {items} \
         | p99 / alone p99 (<= {P99_GOAL}) | map / (2 x alone map) (<= {MAP_GOAL}) | goals met? |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        items = plan.b_items,
    );
    for m in modes {
        out.push_str(&format!(
            "| {} | {:.3} ms | {:.3} ms | {:.3} s | {:.3} ms | {:.3} ms | {:.3} s | {:.2}x | {:.2}x | p99 {}, map {} |\n",
            m.mode.name(),
            m.alone.median_ms(),
            m.alone.p99_ms(),
            m.alone.map_s,
            m.beside.median_ms(),
            m.beside.p99_ms(),
            m.beside.map_s,
            m.p99_ratio(),
            m.map_ratio(),
            met(m.p99_ratio() <= P99_GOAL),
            met(m.map_ratio() <= MAP_GOAL),
        ));
    }
    out.push_str(&format!(
        "\n{} round trips (`apply_sync`, one at a time) and a map of {} items (chunksize 1) each phase; \
         A: {} CPU tasks and one 1 s spin after every {SPIN_EVERY}.\n",
        plan.b_applies, plan.b_items, plan.a_tasks,
    ));
    for m in modes {
        out.push_str(&format!(
            "\n- {}: while B was timed, A finished {} CPU tasks and {} spins (stopped by their limit), \
             and its tasks spanned {:.0}% of the engines' time",
            m.mode.name(),
            m.a.cpu_finished,
            m.a.spins_timed_out,
            m.a.busy_share * 100.0,
        ));
        if !m.a.unexpected.is_empty() {
            out.push_str(&format!(
                "; **{} unexpected outcomes**, the first: {}",
                m.a.unexpected.len(),
                m.a.unexpected[0]
            ));
        }
    }
    out.push('\n');
    out
}
