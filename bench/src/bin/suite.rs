//! The benchmark suite of issue 6: every scenario for wasp and for
//! ipyparallel, Dask distributed and Ray in one run, a markdown table of the
//! figures with wasp's ratio to the best peer and the targets, and
//! `results/suite.json` and `results/suite.md`.
//!
//! Driven by `scripts/bench`, which builds this binary and `wasp` in
//! release and makes the peers' virtualenv:
//!
//! ```text
//! suite [--quick] [--skip-peers] [--python PATH] [--out DIR]
//! ```
//!
//! `--quick` cuts every sample count (a smoke run, not figures to quote);
//! `--skip-peers` runs wasp alone; `--python` is the peers' interpreter
//! (default `target/peers-venv/bin/python`); `--out` is where the results
//! go (default `bench/results`). See `bench/README.md` for what each
//! scenario measures.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use wasp_bench::cluster::Cluster;
use wasp_bench::compare::{self, Better, PEER_NAMES, Row, Target};
use wasp_bench::peers::{self, PEERS};
use wasp_bench::schedsim;
use wasp_bench::workloads::{self, loadavg};
use wasp_sched::Scheme;

const ENGINES: u32 = 2;

/// Sample counts: the full run's, or a smoke run's.
struct Plan {
    rtt_calls: usize,
    map1_items: i64,
    map100_items: i64,
    cpu_rounds: usize,
    push_firsts: usize,
    push_cached: usize,
    big_push_firsts: usize,
    big_push_cached: usize,
    cold_samples: usize,
    queued_items: u64,
    sched_engines: u32,
    sched_tasks: u64,
    peer_items: u32,
    peer_cold_samples: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                rtt_calls: 200,
                map1_items: 1_000,
                map100_items: 20_000,
                cpu_rounds: 2,
                push_firsts: 2,
                push_cached: 10,
                big_push_firsts: 1,
                big_push_cached: 3,
                cold_samples: 1,
                queued_items: 1_000_000,
                sched_engines: 1_000,
                sched_tasks: 200_000,
                peer_items: 1_000,
                peer_cold_samples: 1,
            }
        } else {
            Self {
                rtt_calls: 1_000,
                map1_items: 5_000,
                map100_items: 100_000,
                cpu_rounds: 5,
                push_firsts: 5,
                push_cached: 20,
                big_push_firsts: 2,
                big_push_cached: 5,
                cold_samples: 3,
                queued_items: 1_000_000,
                sched_engines: 1_000,
                sched_tasks: 1_000_000,
                peer_items: 5_000,
                peer_cold_samples: 3,
            }
        }
    }
}

struct Args {
    quick: bool,
    skip_peers: bool,
    python: PathBuf,
    out: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut args = Args {
        quick: false,
        skip_peers: false,
        python: repo.join("target/peers-venv/bin/python"),
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--skip-peers" => args.skip_peers = true,
            "--python" => args.python = it.next().context("--python needs a path")?.into(),
            "--out" => args.out = it.next().context("--out needs a folder")?.into(),
            other => bail!(
                "unknown argument {other:?}; usage: suite [--quick] [--skip-peers] [--python PATH] [--out DIR]"
            ),
        }
    }
    // Absolute, since the peers run in scratch folders; not canonical, since
    // a virtualenv's python is a symlink that must keep its own path.
    args.python = std::path::absolute(&args.python)?;
    Ok(args)
}

/// The Python component of `area`, when `scripts/build-polyglot` made it.
fn python_area() -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tasks/polyglot/python/area.wasm");
    path.is_file().then_some(path)
}

/// The scenarios on a running 2-engine cluster.
async fn wasp_cluster_scenarios(plan: &Plan) -> anyhow::Result<Json> {
    let tasks = workloads::Tasks::load()?;
    let cluster = Cluster::start(ENGINES)?;
    let client = cluster.client().await?;
    eprintln!("== wasp: warm-up");
    workloads::warm_up(&client, &tasks).await?;
    eprintln!("== wasp: apply_sync round trip ({} calls)", plan.rtt_calls);
    let rtt = workloads::round_trip(&client, &tasks.area, plan.rtt_calls).await?;
    eprintln!("== wasp: map");
    let map1 = workloads::map_rate(&client, &tasks.pow10, plan.map1_items, 1).await?;
    let map100 = workloads::map_rate(&client, &tasks.pow10, plan.map100_items, 100).await?;
    eprintln!("== wasp: sleep_here");
    let sleep = workloads::sleep_ratio(&client, &tasks.sleep).await?;
    eprintln!("== wasp: CPU-bound speedup ({} rounds)", plan.cpu_rounds);
    let cpu = workloads::cpu_speedup(&client, &tasks.cpu, plan.cpu_rounds).await?;
    eprintln!("== wasp: module push");
    let push_area = workloads::module_push(
        &client,
        tasks.area.bytes(),
        plan.push_firsts,
        plan.push_cached,
    )
    .await?;
    let push_python = match python_area() {
        Some(path) => {
            let bytes = std::fs::read(&path)?;
            workloads::module_push(&client, &bytes, plan.big_push_firsts, plan.big_push_cached)
                .await?
        }
        None => Json::Null,
    };
    drop(client);
    cluster.stop()?;
    Ok(json!({
        "rtt": rtt,
        "map_chunk1_tasks_per_s": map1,
        "map_chunk1_items": plan.map1_items,
        "map_chunk100_items_per_s": map100,
        "map_chunk100_items": plan.map100_items,
        "sleep_serial_over_wall": sleep,
        "cpu": cpu,
        "push_area": push_area,
        "push_python_area": push_python,
    }))
}

async fn wasp_scenarios(plan: &Plan) -> anyhow::Result<Json> {
    let mut figures = wasp_cluster_scenarios(plan).await?;
    let tasks = workloads::Tasks::load()?;
    eprintln!("== wasp: cold start ({} samples each)", plan.cold_samples);
    figures["cold_start"] = workloads::cold_start(ENGINES, &tasks.area, plan.cold_samples).await?;
    eprintln!(
        "== wasp: controller memory, {} tasks queued",
        plan.queued_items
    );
    figures["queued"] = workloads::queued_memory(&tasks.pow10, plan.queued_items).await?;
    eprintln!(
        "== wasp: scheduler simulation, {} engines",
        plan.sched_engines
    );
    figures["sched"] =
        schedsim::decisions_per_second(Scheme::default(), plan.sched_engines, plan.sched_tasks)?;
    Ok(figures)
}

/// Every peer's scenarios and cold start; a failure is recorded, not fatal.
async fn peer_scenarios(plan: &Plan, python: &std::path::Path) -> anyhow::Result<Json> {
    let mut all = serde_json::Map::new();
    for peer in &PEERS {
        eprintln!("== {}: scenarios ({} items)", peer.name, plan.peer_items);
        let scenarios = peers::scenarios(python, peer, plan.peer_items, ENGINES)
            .await
            .unwrap_or_else(|err| {
                eprintln!("{} failed: {err:#}", peer.name);
                json!({"error": format!("{err:#}")})
            });
        eprintln!("== {}: cold start", peer.name);
        let cold = peers::cold_start(python, peer, plan.peer_cold_samples)
            .await
            .unwrap_or_else(|err| {
                eprintln!("{} cold start failed: {err:#}", peer.name);
                json!({"error": format!("{err:#}")})
            });
        all.insert(
            peer.name.to_owned(),
            json!({"scenarios": scenarios, "cold_start": cold}),
        );
    }
    Ok(Json::Object(all))
}

/// One row of the table: where its figures are in the raw JSON.
struct Spec {
    figure: &'static str,
    unit: &'static str,
    better: Better,
    /// Path to wasp's figure in [`wasp_scenarios`]'s JSON.
    wasp: &'static [&'static str],
    /// Path to each peer's figure in [`peer_scenarios`]'s JSON, if peers
    /// have one.
    peers: &'static [&'static str],
    /// wasp's figure is in bytes, shown in MB.
    bytes: bool,
    target: Target,
}

const fn spec(
    figure: &'static str,
    unit: &'static str,
    better: Better,
    wasp: &'static [&'static str],
    peers: &'static [&'static str],
    target: Target,
) -> Spec {
    Spec {
        figure,
        unit,
        better,
        wasp,
        peers,
        bytes: false,
        target,
    }
}

/// The table, in order. Sizes in figure names are the full run's (the
/// quick run queues a million too, and simulates 1,000 engines too).
const SPECS: &[Spec] = &[
    spec(
        "apply_sync round trip, median",
        "ms",
        Better::Lower,
        &["rtt", "median_ms"],
        &["scenarios", "rtt_ms_median"],
        Target::RatioAtMost(0.1),
    ),
    spec(
        "apply_sync round trip, p99",
        "ms",
        Better::Lower,
        &["rtt", "p99_ms"],
        &["scenarios", "rtt_ms_p99"],
        Target::None,
    ),
    spec(
        "map, chunksize 1",
        "tasks/s",
        Better::Higher,
        &["map_chunk1_tasks_per_s"],
        &["scenarios", "map_chunk1_tasks_per_s"],
        Target::RatioAtLeast(20.0),
    ),
    spec(
        "map, chunksize 100",
        "items/s",
        Better::Higher,
        &["map_chunk100_items_per_s"],
        // The peers' key says tasks; they count items.
        &["scenarios", "map_chunk100_tasks_per_s"],
        Target::RatioAtLeast(10.0),
    ),
    spec(
        "sleep_here, serial_time / wall_time",
        "",
        Better::Higher,
        &["sleep_serial_over_wall"],
        &["scenarios", "sleep_serial_over_wall"],
        Target::AtLeast(1.98),
    ),
    spec(
        "64 x 20 ms CPU items, speedup",
        "",
        Better::Higher,
        &["cpu", "speedup"],
        &["scenarios", "cpu_64x20ms_speedup"],
        Target::AtLeast(1.85),
    ),
    spec(
        "cold start to first result, cold compile cache",
        "s",
        Better::Lower,
        &["cold_start", "cold_cache_s_median"],
        &["cold_start", "median_s"],
        Target::RatioAtMost(0.2),
    ),
    spec(
        "cold start to first result, warm compile cache",
        "s",
        Better::Lower,
        &["cold_start", "warm_cache_s_median"],
        &["cold_start", "median_s"],
        Target::RatioAtMost(0.2),
    ),
    spec(
        "cold start and stop, cold compile cache (the span the peers' figure covers)",
        "s",
        Better::Lower,
        &["cold_start", "cold_cache_with_stop_s_median"],
        &["cold_start", "median_s"],
        Target::None,
    ),
    spec(
        "module push to 2 engines, first (area, Rust)",
        "ms",
        Better::Lower,
        &["push_area", "first_ms_median"],
        &[],
        Target::None,
    ),
    spec(
        "module push to 2 engines, cached (area, Rust)",
        "ms",
        Better::Lower,
        &["push_area", "cached_ms_median"],
        &[],
        Target::None,
    ),
    spec(
        "module push to 2 engines, first (area, Python)",
        "ms",
        Better::Lower,
        &["push_python_area", "first_ms_median"],
        &[],
        Target::None,
    ),
    spec(
        "module push to 2 engines, cached (area, Python)",
        "ms",
        Better::Lower,
        &["push_python_area", "cached_ms_median"],
        &[],
        Target::None,
    ),
    Spec {
        bytes: true,
        ..spec(
            "controller RSS, 1,000,000 tasks queued",
            "MB",
            Better::Lower,
            &["queued", "rss_bytes"],
            &[],
            Target::Below(500.0),
        )
    },
    Spec {
        bytes: true,
        ..spec(
            "controller peak RSS (VmHWM) in that run",
            "MB",
            Better::Lower,
            &["queued", "hwm_bytes"],
            &[],
            Target::Below(500.0),
        )
    },
    spec(
        "scheduler decisions/s, simulation, 1,000 engines",
        "/s",
        Better::Higher,
        &["sched", "decisions_per_s"],
        &[],
        Target::None,
    ),
];

/// The number at `path` in `json`.
fn lookup(json: &Json, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(json, |v, key| v.get(key))
        .and_then(Json::as_f64)
}

/// The table's rows from the raw figures; a row nothing measured (the
/// Python push without `scripts/build-polyglot`) is left out.
fn rows(wasp: &Json, peers: &Json) -> Vec<Row> {
    SPECS
        .iter()
        .map(|spec| Row {
            figure: spec.figure.to_owned(),
            unit: spec.unit,
            better: spec.better,
            wasp: lookup(wasp, spec.wasp).map(|v| if spec.bytes { v / 1e6 } else { v }),
            peers: PEER_NAMES.map(|name| match spec.peers {
                [] => None,
                path => lookup(&peers[name], path),
            }),
            target: spec.target,
        })
        .filter(|row| row.wasp.is_some() || row.peers.iter().any(Option::is_some))
        .collect()
}

/// The machine and the moment, for reading the figures later.
fn meta(args: &Args, plan: &Plan) -> Json {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_owned())
    };
    let command = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    json!({
        "date": command("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "git_commit": command("git", &["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"]),
        "quick": args.quick,
        "skip_peers": args.skip_peers,
        "engines": ENGINES,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": field(&read("/proc/cpuinfo"), "model name"),
        "memory": field(&read("/proc/meminfo"), "MemTotal"),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "loadavg_at_start": loadavg(),
        "rtt_calls": plan.rtt_calls,
        "peer_items": plan.peer_items,
    })
}

async fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let plan = Plan::new(args.quick);
    // Before minutes of wasp scenarios, not after.
    if !args.skip_peers && !args.python.is_file() {
        bail!(
            "no peers' Python at {} (scripts/bench makes it; or pass --skip-peers)",
            args.python.display()
        );
    }
    let started = Instant::now();
    let mut meta = meta(&args, &plan);

    let wasp = wasp_scenarios(&plan).await?;
    let peers = if args.skip_peers {
        Json::Null
    } else {
        peer_scenarios(&plan, &args.python).await?
    };
    let rows = rows(&wasp, &peers);
    meta["duration_s"] = json!(started.elapsed().as_secs_f64());
    // Other work on the machine moves every figure: say how busy it was.
    meta["loadavg_at_end"] = json!(loadavg());

    let title = format!(
        "## wasp against its peers, {ENGINES} engines\n\n\
         {}, {} CPUs ({}), load average {} at start and {} at end, {:.0} s{}{}\n\n",
        meta["date"].as_str().unwrap_or("?"),
        meta["cpus"],
        meta["cpu_model"].as_str().unwrap_or("?"),
        meta["loadavg_at_start"].as_str().unwrap_or("?"),
        meta["loadavg_at_end"].as_str().unwrap_or("?"),
        started.elapsed().as_secs_f64(),
        if args.quick { ", --quick" } else { "" },
        if args.skip_peers {
            ", peers skipped"
        } else {
            ""
        },
    );
    let table = compare::markdown(&rows);
    println!("{title}{table}");
    eprintln!("suite took {:.0} s", started.elapsed().as_secs_f64());

    std::fs::create_dir_all(&args.out)?;
    let results = json!({
        "meta": meta,
        "rows": compare::to_json(&rows),
        "wasp": wasp,
        "peers": peers,
    });
    let json_path = args.out.join("suite.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let md_path = args.out.join("suite.md");
    std::fs::write(&md_path, format!("{title}{table}"))
        .with_context(|| format!("writing {}", md_path.display()))?;
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("suite: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
